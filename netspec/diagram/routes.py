"""Edge paths: down through a layered layout's layers, or around the columns of a wrapped one.

Inside a layer an edge runs straight down at its port or slot, where nothing else stands;
between layers (Y_SPACE of empty space) it bends in one S-curve. So no edge crosses a box.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence

from .geometry import Command, Point
from .layered import Layered
from .style import ARROW_LENGTH, ARROW_WIDTH

CORNER_RADIUS = 8.0
"""Rounding of the corners of an edge that turns around a column, px."""


def curve(start: Point, end: Point) -> Command:
    """An S-curve from `start` down to `end`, vertical at both ends."""
    middle = (start[1] + end[1]) / 2
    return ("C", (start[0], middle, end[0], middle, end[0], end[1]))


def through_layers(
    layout: Layered, source: Hashable, target: Hashable, x_out: float, x_in: float
) -> list[Command]:
    """From the bottom of `source` at x_out, through the slots of the edge, to the top of
    `target` at x_in (the layout's own coordinates)."""
    y = layout.bottom(source)
    path: list[Command] = [("M", (x_out, y))]
    x, y = x_out, max(y, layout.bands[layout.rank[source]][1])
    path.append(("L", (x, y)))
    first = layout.rank[source] + 1
    for offset, slot in enumerate(layout.slots.get((source, target), ())):
        top, bottom = layout.bands[first + offset]
        path += [curve((x, y), (slot, top)), ("L", (slot, bottom))]
        x, y = slot, bottom
    top = layout.bands[layout.rank[target]][0]
    path += [curve((x, y), (x_in, top)), ("L", (x_in, layout.top(target)))]
    return path


def orthogonal(points: Sequence[Point]) -> list[Command]:
    """A path of horizontal and vertical runs through `points`, its corners rounded."""
    path: list[Command] = [("M", points[0])]
    for before, corner, after in zip(points, points[1:], points[2:], strict=False):
        radius = min(CORNER_RADIUS, _distance(before, corner) / 2, _distance(corner, after) / 2)
        enter = _towards(corner, before, radius)
        leave = _towards(corner, after, radius)
        path += [("L", enter), ("C", (*corner, *corner, *leave))]
    path.append(("L", points[-1]))
    return path


def _distance(a: Point, b: Point) -> float:
    return abs(a[0] - b[0]) + abs(a[1] - b[1])


def _towards(start: Point, end: Point, length: float) -> Point:
    total = _distance(start, end) or 1.0
    return (
        start[0] + (end[0] - start[0]) * length / total,
        start[1] + (end[1] - start[1]) * length / total,
    )


def moved(path: Sequence[Command], dx: float, dy: float) -> list[Command]:
    """`path` shifted by dx, dy."""
    return [
        (op, tuple(v + (dx if i % 2 == 0 else dy) for i, v in enumerate(values)))
        for op, values in path
    ]


def joined(*parts: Sequence[Command]) -> list[Command]:
    """Paths one after another: each part's starting move is dropped after the first."""
    path: list[Command] = []
    for part in parts:
        path += [step for step in part if not (path and step[0] == "M")]
    return path


def end_of(path: Sequence[Command]) -> Point:
    values = path[-1][1]
    return (values[-2], values[-1])


def arrowhead(tip: Point) -> tuple[Point, Point, Point]:
    """A downward arrowhead with its tip at `tip` (edges enter boxes from above)."""
    x, y = tip
    return (tip, (x - ARROW_WIDTH / 2, y - ARROW_LENGTH), (x + ARROW_WIDTH / 2, y - ARROW_LENGTH))
