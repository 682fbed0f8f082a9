"""An expanded row's frame: its layers laid out inside, its title on top.

Edges from outside enter the frame at its top edge, at an entry point above the layers that
read them (one per outside source), and leave it at its bottom edge below the layer they come
from. The title sits at the top left, moved right (or the layers moved) so that no entering
edge runs through it.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from dataclasses import dataclass

from .geometry import TextLine
from .layered import Layered, layered
from .model import Cluster
from .style import CLUSTER_PAD, LINE_HEIGHT, NAME_SIZE, TEXT_SIZE, TRAIN, X_SPACE
from .text import text_width

POINT = (2.0, 2.0)
"""Size of an entry or exit point, px."""
CAP_HEIGHT = 0.73
"""DejaVu Sans capital height, em: text is centred on its line by it."""


@dataclass(frozen=True)
class Entry:
    """Where edges from outside unit `source` come in."""

    source: Hashable


@dataclass(frozen=True)
class Exit:
    """Where the output of inner box `source` leaves the frame."""

    source: Hashable


@dataclass
class Frame:
    """A laid-out cluster: its size, the inner layout and where the inner layout's (0, 0) lies
    in the frame (`dx`, `dy`); title lines relative to the frame's top-left corner."""

    cluster: Cluster
    inner: Layered
    width: float
    height: float
    dx: float
    dy: float
    title: list[TextLine]

    def ports(self) -> tuple[float, float]:
        """Mean x of the entries and of the exits, relative to the frame's centre."""
        means = []
        for kind in (Entry, Exit):
            xs = [x for k, (x, _) in self.inner.centers.items() if isinstance(k, kind)]
            means.append(self.dx + sum(xs) / len(xs) - self.width / 2 if xs else 0.0)
        return means[0], means[1]


def baseline(top: float, size: float) -> float:
    """The baseline of a line of text at `size` px whose line box starts at `top`."""
    return top + (LINE_HEIGHT + CAP_HEIGHT) * size / 2


def title_lines(cluster: Cluster) -> list[tuple[str, float, bool, str]]:
    """(text, size, bold, colour) of each title line."""
    lines = [(cluster.lines[0], NAME_SIZE, True, "#1f1f1f")]
    lines += [(text, TEXT_SIZE, False, "#555555") for text in cluster.lines[1:]]
    if cluster.note:
        lines.append((cluster.note, TEXT_SIZE, True, TRAIN))
    return lines


def frame(
    cluster: Cluster,
    sizes: dict[Hashable, tuple[float, float]],
    edges: Sequence[tuple[Hashable, Hashable]],
) -> Frame:
    """Lay out a cluster's boxes (`sizes`, entry and exit points included) and its title."""
    inner = layered(sizes, edges)
    spec = title_lines(cluster)
    title_w = max(text_width(text, size, bold) for text, size, bold, _ in spec)
    title_h = sum(size * LINE_HEIGHT for _, size, _, _ in spec)
    entries = [inner.centers[k][0] for k in inner.centers if isinstance(k, Entry)]
    # The layers move right if an entering edge would otherwise run through the title.
    first_entry = min(entries, default=float("inf"))
    dx = max(CLUSTER_PAD, CLUSTER_PAD + title_w + X_SPACE / 2 - first_entry)
    width = max(dx + inner.width + CLUSTER_PAD, 2 * CLUSTER_PAD + title_w)
    dy = CLUSTER_PAD + title_h + 4.0
    height = dy + inner.height + CLUSTER_PAD
    title, top = [], CLUSTER_PAD
    for text, size, bold, color in spec:
        title.append(TextLine(text, CLUSTER_PAD, baseline(top, size), size, bold, color, "start"))
        top += size * LINE_HEIGHT
    return Frame(cluster, inner, width, height, dx, dy, title)
