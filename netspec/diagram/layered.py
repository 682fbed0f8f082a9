"""Layered (Sugiyama) layout of one level of a diagram with grandalf: vertices of given sizes,
top to bottom, each edge running down through a reserved slot in every layer it passes.

grandalf ranks the vertices (longest path from the sources), orders each layer to reduce edge
crossings (barycentre sweeps) and places them with Brandes & Köpf's method, honouring each
vertex's width. This module only feeds it and reads the result back into plain numbers; bands
(the y range of each layer) are recomputed here, every vertex at the top of its layer (a box
beside a tall expanded block stays next to the row it reads).
"""

from __future__ import annotations

import itertools
from collections.abc import Collection, Hashable, Mapping, Sequence
from dataclasses import dataclass, field

from grandalf.graphs import Edge, Graph, Vertex
from grandalf.layouts import SugiyamaLayout

from .style import EDGE_CLEARANCE, X_SPACE, Y_SPACE

Key = Hashable


@dataclass
class Layered:
    """A layout: vertex centres (x, y) and layers (`rank`); `bands[r]` is the (top, bottom) of
    layer r; `slots[(a, b)]` the x of edge a -> b in each layer it crosses, top to bottom.
    Coordinates start at 0, 0; `width` and `height` are the extent."""

    centers: dict[Key, tuple[float, float]] = field(default_factory=dict)
    sizes: dict[Key, tuple[float, float]] = field(default_factory=dict)
    rank: dict[Key, int] = field(default_factory=dict)
    bands: list[tuple[float, float]] = field(default_factory=list)
    slots: dict[tuple[Key, Key], list[float]] = field(default_factory=dict)
    width: float = 0.0
    height: float = 0.0

    def top(self, key: Key) -> float:
        return self.centers[key][1] - self.sizes[key][1] / 2

    def bottom(self, key: Key) -> float:
        return self.centers[key][1] + self.sizes[key][1] / 2

    def extent(self, rank: int) -> tuple[float, float]:
        """Left and right end of what layer `rank` holds, edge slots included."""
        xs = [
            (x - self.sizes[k][0] / 2, x + self.sizes[k][0] / 2)
            for k, (x, _) in self.centers.items()
            if self.rank[k] == rank
        ]
        for (a, _), slots in self.slots.items():
            if self.rank[a] < rank <= self.rank[a] + len(slots):
                x = slots[rank - self.rank[a] - 1]
                xs.append((x - EDGE_CLEARANCE / 2, x + EDGE_CLEARANCE / 2))
        return min(x for x, _ in xs), max(x for _, x in xs)


class _View:
    """The size and (after layout) centre grandalf reads and writes on each vertex."""

    def __init__(self, w: float, h: float) -> None:
        self.w, self.h = w, h
        self.xy: tuple[float, float] = (0.0, 0.0)


def layered(
    sizes: Mapping[Key, tuple[float, float]],
    edges: Sequence[tuple[Key, Key]],
    light: Collection[Key] = (),
    ports: Mapping[Key, tuple[float, float]] | None = None,
) -> Layered:
    """Lay out vertices of `sizes` (key -> (width, height), in the order given) joined by
    `edges` (acyclic; a -> b draws a above b). Unconnected parts sit side by side. `light`
    vertices (train-only heads) step aside for the others when a layer is straightened;
    `ports` gives a vertex's (in, out) x, relative to its centre, where edges enter and leave
    it (an expanded block's entry and exit; 0 when not given)."""
    vertices = {key: Vertex(key) for key in sizes}
    for key, vertex in vertices.items():
        vertex.view = _View(*sizes[key])
    links = {}
    for a, b in edges:
        links[(a, b)] = Edge(vertices[a], vertices[b])
    graph = Graph(list(vertices.values()), list(links.values()))
    result = Layered(sizes=dict(sizes))
    offset = 0.0
    for part in graph.C:
        ranks: dict[Key, int] = {}
        xs: dict[Key, float] = {}
        lo, hi = _sugiyama(part, links, ranks, xs, result.slots)
        lo, hi = straighten(ranks, xs, result, links, set(light), ports or {})
        for key in ranks:
            xs[key] += offset - lo
        for pair, slots in result.slots.items():
            if pair[0] in ranks:
                result.slots[pair] = [x + offset - lo for x in slots]
        result.rank.update(ranks)
        result.centers.update({key: (x, 0.0) for key, x in xs.items()})
        offset += hi - lo + X_SPACE
    result.width = max(offset - X_SPACE, 0.0)
    _place_bands(result)
    return result


def _sugiyama(
    part: object,
    links: Mapping[tuple[Key, Key], Edge],
    ranks: dict[Key, int],
    xs: dict[Key, float],
    slots: dict[tuple[Key, Key], list[float]],
) -> tuple[float, float]:
    """Lay out one connected part; fill ranks, x centres and edge slots; return its x extent."""
    layout = SugiyamaLayout(part)
    layout.xspace = X_SPACE
    layout.yspace = Y_SPACE
    layout.dw, layout.dh = EDGE_CLEARANCE, 1.0  # the slot a passing edge keeps in a layer
    layout.init_all()
    layout.draw(3)
    lo, hi = float("inf"), float("-inf")
    for vertex in part.sV:
        x = vertex.view.xy[0]
        xs[vertex.data] = x
        ranks[vertex.data] = layout.grx[vertex].rank
        lo, hi = min(lo, x - vertex.view.w / 2), max(hi, x + vertex.view.w / 2)
    for pair, edge in links.items():
        if edge not in layout.ctrls or pair[0] not in xs:
            continue
        control = layout.ctrls[edge]
        first, last = ranks[pair[0]], ranks[pair[1]]
        slots[pair] = [control[r].view.xy[0] for r in range(first + 1, last)]
        lo = min([lo, *(x - EDGE_CLEARANCE / 2 for x in slots[pair])])
        hi = max([hi, *(x + EDGE_CLEARANCE / 2 for x in slots[pair])])
    return lo, hi


def _place_bands(result: Layered) -> None:
    """Stack the layers top to bottom, each as tall as its tallest vertex, Y_SPACE apart;
    vertices hang from the top of their layer."""
    count = max(result.rank.values(), default=-1) + 1
    heights = [0.0] * count
    for key, rank in result.rank.items():
        heights[rank] = max(heights[rank], result.sizes[key][1])
    y = 0.0
    for height in heights:
        result.bands.append((y, y + height))
        y += height + Y_SPACE
    result.height = max(y - Y_SPACE, 0.0)
    for key, (x, _) in result.centers.items():
        top, _ = result.bands[result.rank[key]]
        result.centers[key] = (x, top + result.sizes[key][1] / 2)


HEAVY = 1e6
"""Weight of a vertex's wish to stand under what it reads, against 1 for an edge's slot or a
train-only head: the main path runs straight, and side heads and passing edges move."""


def straighten(
    ranks: dict[Key, int],
    xs: dict[Key, float],
    result: Layered,
    links: Mapping[tuple[Key, Key], Edge],
    light: set[Key],
    ports: Mapping[Key, tuple[float, float]],
) -> tuple[float, float]:
    """Re-place each layer, top to bottom, keeping grandalf's order: every vertex as near as
    the layer allows to the mean x of what it reads (weighted: see HEAVY; with their `ports`,
    edges then run straight down), each edge slot to the slot or vertex above it. Returns the
    new x extent.

    Brandes & Köpf centre a vertex between its children, so a row with a side head (GoogLeNet's
    4a, read by 4b and aux1) pushes the main path sideways; this pass undoes that. Each layer
    is a weighted least-squares fit under the order and spacing constraints, solved exactly by
    pool-adjacent-violators."""
    pairs = [pair for pair in links if pair[0] in ranks]
    items: dict[int, list[tuple[object, float, float, list[object]]]] = {}
    position: dict[object, float] = dict(xs)
    for key, rank in ranks.items():
        above: list[object] = []
        for a, b in pairs:
            if b == key:
                slots = result.slots.get((a, b), [])
                above.append(((a, b), len(slots) - 1) if slots else a)
        weight = 1.0 if key in light else HEAVY
        items.setdefault(rank, []).append((key, result.sizes[key][0], weight, above))
    for (a, b), slots in result.slots.items():
        if a not in ranks:
            continue
        for i, x in enumerate(slots):
            slot = ((a, b), i)
            position[slot] = x
            above = [((a, b), i - 1) if i else a]
            items.setdefault(ranks[a] + 1 + i, []).append((slot, EDGE_CLEARANCE, 1.0, above))
    for rank in sorted(items):
        layer = sorted(items[rank], key=lambda item: position[item[0]])
        wanted = [
            sum(position[u] + ports.get(u, (0.0, 0.0))[1] for u in above) / len(above)
            - ports.get(key, (0.0, 0.0))[0]
            if above
            else position[key]
            for key, _, _, above in layer
        ]
        placed = fit_in_order(wanted, [w for _, w, _, _ in layer], [g for _, _, g, _ in layer])
        for (key, _, _, _), x in zip(layer, placed, strict=True):
            position[key] = x
    for key in xs:
        xs[key] = position[key]
    for (a, b), slots in result.slots.items():
        if a in ranks:
            result.slots[(a, b)] = [position[((a, b), i)] for i in range(len(slots))]
    lefts = [position[k] - w / 2 for layer in items.values() for k, w, _, _ in layer]
    rights = [position[k] + w / 2 for layer in items.values() for k, w, _, _ in layer]
    return min(lefts), max(rights)


def fit_in_order(
    wanted: Sequence[float], widths: Sequence[float], weights: Sequence[float]
) -> list[float]:
    """x for items of `widths` in this order, at least X_SPACE apart, minimising the weighted
    squared distance to `wanted` (pool-adjacent-violators on x minus the spacing before)."""
    offsets = [0.0]
    for left, right in itertools.pairwise(widths):
        offsets.append(offsets[-1] + (left + right) / 2 + X_SPACE)
    targets = [w - o for w, o in zip(wanted, offsets, strict=True)]
    blocks: list[list[float]] = []  # [mean, weight, count]
    for target, weight in zip(targets, weights, strict=True):
        blocks.append([target, weight, 1])
        while len(blocks) > 1 and blocks[-2][0] > blocks[-1][0]:
            mean, weight_, count = blocks.pop()
            last = blocks[-1]
            total = last[1] + weight_
            last[0] = (last[0] * last[1] + mean * weight_) / total
            last[1], last[2] = total, last[2] + count
    fitted = [mean for mean, _, count in blocks for _ in range(int(count))]
    return [f + o for f, o in zip(fitted, offsets, strict=True)]
