"""Geometry for a Diagram: each expanded row laid out in its frame, then the top level (boxes
and frames) laid out in layers, wrapped into columns when it is tall, then every edge routed."""

from __future__ import annotations

from collections.abc import Hashable, Iterable, Sequence
from dataclasses import dataclass

from .boxes import box_lines, box_size
from .clusters import POINT, Entry, Exit, Frame, baseline, frame
from .columns import columns
from .geometry import Command, Drawing, PlacedBox, PlacedCluster, PlacedEdge, Rect, TextLine
from .layered import Layered, layered
from .model import Diagram
from .routes import arrowhead, end_of, joined, moved, orthogonal, through_layers
from .style import (
    GUTTER,
    LINE_HEIGHT,
    MARGIN,
    MUTED,
    PORT_SPACING,
    TEXT_SIZE,
    TITLE_SIZE,
    Y_SPACE,
)
from .text import text_width

Pair = tuple[Hashable, Hashable]


def unique(items: Iterable[Pair]) -> list[Pair]:
    return list(dict.fromkeys(items))


def spread(
    layout: Layered, edges: Sequence[Pair], boxes: set[Hashable], wrapped: set[Pair]
) -> tuple[dict[Pair, float], dict[Pair, float]]:
    """The x where each edge leaves its source and enters its target (layout coordinates):
    several edges at one side of a box sit side by side, ordered by where they go, so that
    they neither overlap nor cross at the box. Points (entries, exits) and frames are left
    to the caller."""
    leave: dict[Hashable, list[Pair]] = {}
    enter: dict[Hashable, list[Pair]] = {}
    for edge in edges:
        leave.setdefault(edge[0], []).append(edge)
        enter.setdefault(edge[1], []).append(edge)

    def toward(edge: Pair, end: int) -> float:
        if edge in wrapped:
            return float("inf") if end == 1 else float("-inf")
        slots = layout.slots.get(edge)
        if slots:
            return slots[0] if end == 1 else slots[-1]
        return layout.centers[edge[end]][0]

    ports: list[dict[Pair, float]] = [{}, {}]
    for side, groups in ((0, leave), (1, enter)):
        for key, group in groups.items():
            if key not in boxes:
                continue
            group = sorted(group, key=lambda e, side=side: toward(e, 1 - side))
            x, width = layout.centers[key][0], layout.sizes[key][0]
            step = min(PORT_SPACING, (width - 24) / max(len(group) - 1, 1))
            xs = [x + (i - (len(group) - 1) / 2) * step for i in range(len(group))]
            # An edge to a box straight above or below keeps the middle: the path runs straight.
            straight = [i for i, e in enumerate(group) if abs(toward(e, 1 - side) - x) < 0.5]
            if straight:
                shift = x - xs[straight[0]]
                if all(abs(p + shift - x) <= width / 2 - 12 for p in xs):
                    xs = [p + shift for p in xs]
            for edge, port in zip(group, xs, strict=True):
                ports[side][edge] = port
    return ports[0], ports[1]


@dataclass
class Placement:
    """Where the top-level layout went: each layer's shift (dx, dy) into the drawing."""

    outer: Layered
    shift: list[tuple[float, float]]
    column_of: list[int]
    column_bottom: list[float]
    column_right: list[float]
    top: float

    def at(self, key: Hashable) -> tuple[float, float]:
        """Centre of top-level `key` in the drawing."""
        x, y = self.outer.centers[key]
        dx, dy = self.shift[self.outer.rank[key]]
        return x + dx, y + dy


def place(outer: Layered, edges: Sequence[Pair], top: float) -> tuple[Placement, set[Pair]]:
    """Cut the layers into columns and shift each column into place; return the placement
    and the edges that jump from one column to the next."""
    count = len(outer.bands)
    crossing: list[list[Pair]] = [[] for _ in range(count)]
    for a, b in edges:
        for r in range(outer.rank[a], outer.rank[b]):
            crossing[r].append((a, b))
    cuts = [
        r
        for r in range(count - 1)
        if len(crossing[r]) == 1 and outer.rank[crossing[r][0][1]] == r + 1
    ]
    extents = [outer.extent(r) for r in range(count)]
    starts = columns(outer.bands, extents, cuts)
    shift: list[tuple[float, float]] = [(0.0, 0.0)] * count
    column_of, bottoms, rights = [0] * count, [], []
    x = MARGIN
    for c, (first, last) in enumerate(zip(starts, [*starts[1:], count], strict=True)):
        left = min(extents[r][0] for r in range(first, last))
        right = max(extents[r][1] for r in range(first, last))
        for r in range(first, last):
            shift[r] = (x - left, top - outer.bands[first][0])
            column_of[r] = c
        bottoms.append(outer.bands[last - 1][1] - outer.bands[first][0] + top)
        rights.append(x + right - left)
        x += right - left + GUTTER
    wrapped = {crossing[s - 1][0] for s in starts[1:]}
    return Placement(outer, shift, column_of, bottoms, rights, top), wrapped


def header(diagram: Diagram, subtitle: str) -> tuple[TextLine, ...]:
    first = baseline(MARGIN, TITLE_SIZE)
    second = baseline(MARGIN + TITLE_SIZE * LINE_HEIGHT, TEXT_SIZE)
    lines = [TextLine(diagram.title, MARGIN, first, TITLE_SIZE, True, anchor="start")]
    if subtitle:
        lines.append(TextLine(subtitle, MARGIN, second, TEXT_SIZE, False, MUTED, "start"))
    return tuple(lines)


def lay_out(diagram: Diagram, subtitle: str = "") -> Drawing:
    """Place every box, frame and edge of `diagram` (px), under a title and `subtitle`."""
    boxes = {box.key: box for box in diagram.boxes}
    sizes = {key: box_size(box) for key, box in boxes.items()}
    unit = {key: box.cluster or key for key, box in boxes.items()}
    frames = {c.key: cluster_frame(diagram, c.key, sizes, unit) for c in diagram.clusters}
    units = list(dict.fromkeys(unit[box.key] for box in diagram.boxes))
    outer_sizes = {
        u: sizes[u] if u in sizes else (frames[u].width, frames[u].height) for u in units
    }
    outer_edges = unique((unit[s], unit[t]) for s, t in diagram.edges if unit[s] != unit[t])
    light = {box.cluster or box.key for box in diagram.boxes if box.train_only}
    outer = layered(outer_sizes, outer_edges, light, {k: f.ports() for k, f in frames.items()})
    title = header(diagram, subtitle)
    top = MARGIN + sum(line.size * LINE_HEIGHT for line in title) + Y_SPACE
    placement, wrapped = place(outer, outer_edges, top)
    out_ports, in_ports = spread(outer, outer_edges, set(sizes), wrapped)

    rects: dict[Hashable, Rect] = {}
    for u in units:
        (cx, cy), (w, h) = placement.at(u), outer_sizes[u]
        rects[u] = Rect(cx - w / 2, cy - h / 2, w, h)
    placed_clusters = []
    inner_ports = {}
    for key, f in frames.items():
        r = rects[key]
        placed_clusters.append(
            PlacedCluster(f.cluster, r, tuple(moved_line(t, r.x, r.y) for t in f.title))
        )
        inner_ports[key] = spread(f.inner, inner_pairs(diagram, key, unit), set(sizes), set())
        for k, (x, y) in f.inner.centers.items():
            if k in sizes:
                w, h = sizes[k]
                rects[k] = Rect(r.x + f.dx + x - w / 2, r.y + f.dy + y - h / 2, w, h)

    def inner_path(cluster: Hashable, a: Hashable, b: Hashable) -> list[Command]:
        f, r = frames[cluster], rects[cluster]
        out, into = inner_ports[cluster]
        x_out = out.get((a, b), f.inner.centers[a][0])
        x_in = into.get((a, b), f.inner.centers[b][0])
        return moved(through_layers(f.inner, a, b, x_out, x_in), r.x + f.dx, r.y + f.dy)

    edges = []
    for s, t in diagram.edges:
        a, b = unit[s], unit[t]
        if a == b:
            path = inner_path(a, s, t)
        else:
            parts: list[list[Command]] = []
            if a in frames:
                parts.append(inner_path(a, s, Exit(s)))
                x_out = end_of(parts[-1])[0]
                parts.append([("L", (x_out, rects[a].bottom))])
            else:
                x_out = out_ports[(a, b)] + placement.shift[outer.rank[a]][0]
            if b in frames:
                f = frames[b]
                entry_x, entry_y = f.inner.centers[Entry(a)]
                x_in = rects[b].x + f.dx + entry_x
            else:
                x_in = in_ports[(a, b)] + placement.shift[outer.rank[b]][0]
            parts.append(outer_path(placement, rects, (a, b), x_out, x_in, wrapped))
            if b in frames:
                parts.append([("L", (x_in, rects[b].y + frames[b].dy + entry_y))])
                parts.append(inner_path(b, Entry(a), t))
            path = joined(*parts)
        edges.append(PlacedEdge(s, t, tuple(path), arrowhead(end_of(path)), boxes[t].train_only))

    placed_boxes = tuple(
        PlacedBox(box, rects[box.key], box_lines(box, rects[box.key])) for box in diagram.boxes
    )
    width = max(
        max(placement.column_right) + MARGIN,
        max(text_width(line.text, line.size, line.bold) for line in title) + 2 * MARGIN,
    )
    height = max(placement.column_bottom) + Y_SPACE / 2 + MARGIN
    return Drawing(width, height, title, tuple(placed_clusters), tuple(edges), placed_boxes)


def outer_path(
    placement: Placement,
    rects: dict[Hashable, Rect],
    edge: Pair,
    x_out: float,
    x_in: float,
    wrapped: set[Pair],
) -> list[Command]:
    """The top-level stretch of an edge, drawing coordinates: down through the layers, or
    (for an edge to the next column) down, across the gutter, up and over."""
    a, b = edge
    if edge in wrapped:
        column = placement.column_of[placement.outer.rank[a]]
        low = placement.column_bottom[column] + Y_SPACE / 2
        gutter = placement.column_right[column] + GUTTER / 2
        high = placement.top - Y_SPACE / 2
        return orthogonal(
            [
                (x_out, rects[a].bottom),
                (x_out, low),
                (gutter, low),
                (gutter, high),
                (x_in, high),
                (x_in, rects[b].y),
            ]
        )
    dx, dy = placement.shift[placement.outer.rank[a]]
    return moved(through_layers(placement.outer, a, b, x_out - dx, x_in - dx), dx, dy)


def inner_pairs(diagram: Diagram, cluster: Hashable, unit: dict[str, Hashable]) -> list[Pair]:
    """The edges of a cluster's own layout: between its boxes, from entries, to exits."""
    pairs: list[Pair] = []
    for s, t in diagram.edges:
        if unit[s] == unit[t] == cluster:
            pairs.append((s, t))
        elif unit[t] == cluster:
            pairs.append((Entry(unit[s]), t))
        elif unit[s] == cluster:
            pairs.append((s, Exit(s)))
    return unique(pairs)


def cluster_frame(
    diagram: Diagram,
    cluster: Hashable,
    sizes: dict[str, tuple[float, float]],
    unit: dict[str, Hashable],
) -> Frame:
    pairs = inner_pairs(diagram, cluster, unit)
    inner_sizes: dict[Hashable, tuple[float, float]] = {}
    for a, _ in pairs:
        if isinstance(a, Entry):
            inner_sizes[a] = POINT
    for box in diagram.boxes:
        if box.cluster == cluster:
            inner_sizes[box.key] = sizes[box.key]
    for _, b in pairs:
        if isinstance(b, Exit):
            inner_sizes[b] = POINT
    info = next(c for c in diagram.clusters if c.key == cluster)
    return frame(info, inner_sizes, pairs)


def moved_line(line: TextLine, dx: float, dy: float) -> TextLine:
    return TextLine(
        line.text, line.x + dx, line.y + dy, line.size, line.bold, line.color, line.anchor
    )
