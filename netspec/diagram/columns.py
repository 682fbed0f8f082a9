"""Wrapping a tall layered drawing into side-by-side columns, as a newspaper sets text.

A column may end only after a layer that one edge alone leaves, into the next layer (the
chain of a network between two table rows); that edge then runs down, across the gutter and up
into the next column. Among the ways to cut into 1..MAX_COLUMNS columns, each with the
tallest column as short as it can be, the one whose height / width is nearest TARGET_RATIO
wins, as long as each added column makes the drawing clearly shorter (a tall expanded block
cannot be cut: more columns beside it would only scatter the short rows). A drawing no
taller than WRAP_ABOVE times its width stays one column.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from .style import GUTTER, MAX_COLUMNS, TARGET_RATIO, WRAP_ABOVE, Y_SPACE

SHORTER = 0.85
"""Another column is worth it only if the tallest column becomes at most this tall."""


def columns(
    bands: Sequence[tuple[float, float]],
    extents: Sequence[tuple[float, float]],
    cuts: Sequence[int],
) -> list[int]:
    """The first layer of each column. `bands` are the layers' (top, bottom), `extents` their
    (left, right), `cuts` the layers after which a column may end."""
    if not bands:
        return [0]
    height = bands[-1][1] - bands[0][0]
    width = max(r for _, r in extents) - min(left for left, _ in extents)
    if height <= WRAP_ABOVE * max(width, 1.0) or not cuts:
        return [0]
    best, best_score = [0], abs(math.log(height / max(width, 1.0) / TARGET_RATIO))
    tallest = height
    for count in range(2, min(MAX_COLUMNS, len(cuts) + 1) + 1):
        starts = balanced(bands, sorted(cuts), count)
        w, h = size(bands, extents, starts)
        if h > SHORTER * tallest:  # one more column must make the drawing clearly shorter
            break
        tallest = h
        score = abs(math.log(h / w / TARGET_RATIO))
        if score < best_score:
            best, best_score = starts, score
    return best


def balanced(bands: Sequence[tuple[float, float]], cuts: Sequence[int], count: int) -> list[int]:
    """The starts of `count` columns, cut after layers in `cuts`, that make the tallest column
    as short as it can be (dynamic programming over the allowed cuts)."""
    ends = [*cuts, len(bands) - 1]
    starts = [0, *(c + 1 for c in cuts)]

    def tall(first: int, last: int) -> float:
        return bands[last][1] - bands[first][0]

    # cost[k][j]: least tallest column for layers 0..ends[j] in k + 1 columns
    inf = float("inf")
    cost = [[tall(0, end) for end in ends]]
    choice: list[list[int]] = [[-1] * len(ends)]
    for _ in range(1, count):
        row, picks = [inf] * len(ends), [-1] * len(ends)
        for j, end in enumerate(ends):
            for i in range(j):
                value = max(cost[-1][i], tall(starts[i + 1], end))
                if value < row[j]:
                    row[j], picks[j] = value, i
        cost.append(row)
        choice.append(picks)
    result, j = [], len(ends) - 1
    for k in range(count - 1, 0, -1):
        i = choice[k][j]
        if i < 0:
            break
        result.append(starts[i + 1])
        j = i
    return [0, *reversed(result)]


def size(
    bands: Sequence[tuple[float, float]],
    extents: Sequence[tuple[float, float]],
    starts: Sequence[int],
) -> tuple[float, float]:
    """Width and height of the drawing cut into columns at `starts` (gutters included)."""
    width, height = 0.0, 0.0
    for first, last in zip(starts, [*starts[1:], len(bands)], strict=True):
        lefts, rights = zip(*extents[first:last], strict=True)
        width += max(rights) - min(lefts) + GUTTER
        height = max(height, bands[last - 1][1] - bands[first][0])
    return width - GUTTER, height + Y_SPACE  # (room for the edges turning around)
