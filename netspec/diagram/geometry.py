"""A laid-out diagram: rectangles, text lines and edge paths in px, top-left origin, y down.
The SVG and matplotlib writers draw exactly this."""

from __future__ import annotations

from dataclasses import dataclass

from .model import Box, Cluster

Point = tuple[float, float]
Command = tuple[str, tuple[float, ...]]
"""A path step as SVG writes it: ("M", (x, y)), ("L", (x, y)) or ("C", (x1, y1, x2, y2, x, y))."""


@dataclass(frozen=True)
class Rect:
    """x, y: the top-left corner; w, h: width and height; all px."""

    x: float
    y: float
    w: float
    h: float

    @property
    def right(self) -> float:
        return self.x + self.w

    @property
    def bottom(self) -> float:
        return self.y + self.h

    @property
    def cx(self) -> float:
        return self.x + self.w / 2

    def moved(self, dx: float, dy: float) -> Rect:
        return Rect(self.x + dx, self.y + dy, self.w, self.h)


@dataclass(frozen=True)
class TextLine:
    """One line of text: `x` its anchor (centre, or left with anchor 'start'), `y` its
    baseline, `size` px."""

    text: str
    x: float
    y: float
    size: float
    bold: bool = False
    color: str = "#1f1f1f"
    anchor: str = "middle"


@dataclass(frozen=True)
class PlacedBox:
    box: Box
    rect: Rect
    lines: tuple[TextLine, ...]


@dataclass(frozen=True)
class PlacedCluster:
    cluster: Cluster
    rect: Rect
    lines: tuple[TextLine, ...]


@dataclass(frozen=True)
class PlacedEdge:
    """An edge from box `source` to box `target`: its path and its arrowhead (tip first)."""

    source: str
    target: str
    path: tuple[Command, ...]
    arrow: tuple[Point, Point, Point]
    train_only: bool = False


@dataclass(frozen=True)
class Drawing:
    """Everything to draw, in px: `width` x `height`, with clusters under edges under boxes."""

    width: float
    height: float
    title: tuple[TextLine, ...]
    clusters: tuple[PlacedCluster, ...]
    edges: tuple[PlacedEdge, ...]
    boxes: tuple[PlacedBox, ...]
