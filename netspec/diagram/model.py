"""What a diagram shows, before any geometry: boxes (a table row, a run of a repeated row's
copies, or one layer of an expanded row), clusters (expanded rows) and the edges between boxes,
taken from the Graph's node inputs. Text here is as the spec gives it; escaping is the writer's."""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from ..analyze import Report
from ..errors import SpecError, did_you_mean
from ..graph import INPUT, Graph, Node, Row
from ..layers import format_shape
from .text import clean

ALL = "all"
"""`--expand all` expands every row made of more than one layer."""

INPUT_KEY = "input"
SEQUENCE_WORDS = {"layers": "sequence"}
STYLE_OF_OP = {
    "conv": "conv",
    "conv_transpose": "conv",
    "maxpool": "pool",
    "avgpool": "pool",
    "global_avgpool": "pool",
    "upsample": "pool",
    "batchnorm": "norm",
    "lrn": "norm",
    "layernorm": "norm",
    "groupnorm": "norm",
    "dense": "dense",
    "concat": "merge",
    "add": "merge",
    "multiply": "merge",
}
NO_ACTIVATION = {None, "none", "linear", "identity"}


@dataclass(frozen=True)
class Box:
    """One drawn box. `lines` are its text (the first, the name, drawn bold); `style` picks its
    colour (input, conv, pool, norm, dense, merge, block, other); `cluster` is the key of the
    expanded row it sits in, if any; `note` a marked last line (train-only heads)."""

    key: str
    lines: tuple[str, ...]
    style: str
    row: str
    nodes: tuple[str, ...]
    train_only: bool = False
    note: str = ""
    cluster: str | None = None


@dataclass(frozen=True)
class Cluster:
    """An expanded row (or one copy of a repeated row): a frame around its layers' boxes,
    titled with the row's name, type and output size."""

    key: str
    lines: tuple[str, ...]
    row: str
    train_only: bool = False
    note: str = ""


@dataclass(frozen=True)
class Diagram:
    """Boxes in the order of their first layer (the input first), clusters, and the distinct
    box-to-box edges: (source key, target key), a target reading a source's output."""

    title: str
    boxes: tuple[Box, ...]
    clusters: tuple[Cluster, ...]
    edges: tuple[tuple[str, str], ...]


def window_text(attrs: dict[str, Any]) -> str:
    """`7x7/2`, `3x3` (stride 1 left out), `1x7`; "" for a layer without a kernel."""
    if "kernel" not in attrs:
        return ""
    kernel = attrs["kernel"] if isinstance(attrs["kernel"], tuple) else (attrs["kernel"],) * 2
    stride = attrs.get("stride") or 1
    stride = stride if isinstance(stride, tuple) else (stride, stride)
    text = f"{kernel[0]}x{kernel[1]}"
    if stride != (1, 1):
        text += "/" + (str(stride[0]) if stride[0] == stride[1] else f"{stride[0]}x{stride[1]}")
    return text


def layer_text(node: Node) -> str:
    """A layer as the compact row form writes it: `conv 7x7/2 relu`, `dropout 0.4`."""
    attrs = dict(node.attrs)
    words = [str(attrs.get("fn", node.op)) if node.op == "activation" else node.op]
    words.append(window_text(attrs))
    if node.op in ("dropout", "drop_path"):
        words.append(f"{attrs.get('rate', '')}")
    if (attrs.get("groups") or 1) > 1:
        words.append(f"groups={attrs['groups']}")
    if attrs.get("activation") not in NO_ACTIVATION:
        words.append(str(attrs["activation"]))
    return " ".join(w for w in words if w)


def repeat_index(row: Row, node: Node) -> int | None:
    """Which copy of a repeated row `node` belongs to (from its trail `row[i] > ...`)."""
    match = re.match(re.escape(row.name) + r"\[(\d+)\]", node.trail)
    return int(match.group(1)) if match else None


@dataclass(frozen=True)
class Target:
    """What one `--expand` name selects: a whole row, or one copy of a repeated row."""

    row: str
    copy: int | None = None


def resolve_expand(graph: Graph, names: Iterable[str]) -> set[Target]:
    """The rows (or copies) that `names` select: row names, block names, `row[i]`, `all`.
    An unknown name is a SpecError with the closest known name as its hint."""
    copies = {row.name: repeat_count(graph, row) for row in graph.rows}
    kinds: dict[str, list[str]] = {}
    for row in graph.rows:
        if len(row.nodes) > 1:
            kinds.setdefault(row.kind, []).append(row.name)
    targets: set[Target] = set()
    for name in names:
        match = re.fullmatch(r"(\w+)\[(\d+)\]", name)
        if name == ALL:
            targets |= {Target(row.name) for row in graph.rows}
        elif name in copies:
            targets.add(Target(name))
        elif name in kinds:
            targets |= {Target(row) for row in kinds[name]}
        elif match and match.group(1) in copies and int(match.group(2)) < copies[match.group(1)]:
            targets.add(Target(match.group(1), int(match.group(2))))
        elif match and copies.get(match.group(1)):
            row, count = match.group(1), copies[match.group(1)]
            raise SpecError(
                f"row {row!r} has {count} copies, {row}[0] to {row}[{count - 1}]: "
                f"no {name!r} to expand",
                field="--expand",
            )
        else:
            known = [*copies, *kinds, ALL]
            known += [f"{row}[{i}]" for row, n in copies.items() for i in range(n)]
            hint = did_you_mean(name, known) or (
                "give a row name, a block name, ROW[i] for one copy of a repeated row, or 'all'"
            )
            raise SpecError(
                f"no row or block {name!r} to expand in {graph.name!r}",
                field="--expand",
                hint=hint,
            )
    return targets


def repeat_count(graph: Graph, row: Row) -> int:
    """How many copies a repeated row has (0 for a row without `repeat`)."""
    indices = {repeat_index(row, graph.node(n)) for n in row.nodes}
    return 0 if None in indices else len(indices)


class Builder:
    """Collects boxes, clusters and the node -> box map while walking the rows."""

    def __init__(self, graph: Graph, report: Report) -> None:
        self.graph = graph
        self.shapes = {n.name: format_shape(n.output_shape) for n in report.nodes}
        self.heads = {head.row: head.weight for head in graph.heads}
        self.boxes: list[Box] = []
        self.clusters: list[Cluster] = []
        self.box_of: dict[str, str] = {INPUT: INPUT_KEY}

    def note(self, row: Row) -> str:
        if not row.train_only:
            return ""
        weight = self.heads.get(row.name)
        return "train only" + (f", loss weight {weight:g}" if weight is not None else "")

    def output_of(self, row: Row, nodes: Sequence[str]) -> str:
        """The node of `nodes` whose output leaves them: the row's output, or the last one
        another layer outside `nodes` reads."""
        if row.output in nodes:
            return row.output
        members = set(nodes)
        read = {i for node in self.graph.nodes if node.name not in members for i in node.inputs}
        leaving = [n for n in nodes if n in read]
        return leaving[-1] if leaving else nodes[-1]

    def kind_text(self, row: Row, copies: int) -> str:
        """`conv 7x7/2 relu` for a one-layer row, `inception 64 96 128 16 32 32` for a block,
        with `×3` for a repeated row's copies."""
        if len(row.nodes) == 1 or (copies and len(row.nodes) == repeat_count(self.graph, row)):
            text = layer_text(self.graph.node(row.nodes[0]))
            return text + (f" ×{copies}" if copies > 1 else "")
        words = [SEQUENCE_WORDS.get(row.kind, row.kind or row.label), *map(str, row.args)]
        if copies > 1:
            words.append(f"×{copies}")
        return " ".join(words)

    def add_box(
        self,
        key: str,
        lines: Sequence[str],
        style: str,
        row: Row,
        nodes: Sequence[str],
        cluster: str | None = None,
    ) -> None:
        note = self.note(row) if cluster is None else ""
        if len(lines) > 2 and lines[1] == lines[0]:  # `relu: relu`: the type says nothing new
            lines = [lines[0], *lines[2:]]
        box = Box(
            key,
            tuple(clean(line) for line in lines if line),
            style,
            row.name,
            tuple(nodes),
            row.train_only,
            note,
            cluster,
        )
        self.boxes.append(box)
        for name in nodes:
            self.box_of[name] = key

    def collapsed(self, row: Row, nodes: Sequence[str], name: str, copies: int) -> None:
        """One box for `nodes`: the whole row, or a run of its copies."""
        single = len(row.nodes) == 1 or len(row.nodes) == repeat_count(self.graph, row)
        style = STYLE_OF_OP.get(self.graph.node(row.nodes[0]).op, "other") if single else "block"
        shape = self.shapes[self.output_of(row, nodes)]
        self.add_box(f"row:{name}", [name, self.kind_text(row, copies), shape], style, row, nodes)

    def expanded(
        self, row: Row, nodes: Sequence[str], name: str, prefix: str, copies: int = 0
    ) -> None:
        """A cluster titled `name` with one box per layer of `nodes` (`copies` of the row's
        block, 0 or 1 for one)."""
        if len(nodes) == 1:
            node = self.graph.node(nodes[0])
            style = STYLE_OF_OP.get(node.op, "other")
            self.add_box(f"row:{name}", [name, layer_text(node), self.shapes[node.name]], style,
                         row, nodes)  # fmt: skip
            return
        key = f"cluster:{name}"
        title = f"{self.kind_text(row, copies)}  →  {self.shapes[self.output_of(row, nodes)]}"
        self.clusters.append(
            Cluster(key, (clean(name), clean(title)), row.name, row.train_only, self.note(row))
        )
        for name_ in nodes:
            node = self.graph.node(name_)
            inner = name_[len(prefix) :] if name_.startswith(prefix) else name_
            style = STYLE_OF_OP.get(node.op, "other")
            lines = [inner or node.op, layer_text(node), self.shapes[name_]]
            self.add_box(f"node:{name_}", lines, style, row, [name_], cluster=key)

    def row(self, row: Row, targets: set[Target]) -> None:
        copies = repeat_count(self.graph, row)
        if Target(row.name) in targets:
            if copies:
                for i, nodes in enumerate(self.copies(row, copies)):
                    self.expanded(row, nodes, f"{row.name}[{i}]", f"{row.name}/{i}/")
            else:
                self.expanded(row, row.nodes, row.name, f"{row.name}/", copies)
            return
        chosen = {t.copy for t in targets if t.row == row.name}
        if not chosen:
            self.collapsed(row, row.nodes, row.name, copies)
            return
        run: list[int] = []
        groups = self.copies(row, copies)
        for i in [*range(copies), None]:
            if i is not None and i not in chosen:
                run.append(i)
                continue
            if run:
                name = f"{row.name}[{run[0]}" + (f"-{run[-1]}]" if len(run) > 1 else "]")
                self.collapsed(row, [n for j in run for n in groups[j]], name, len(run))
                run = []
            if i is not None:
                self.expanded(row, groups[i], f"{row.name}[{i}]", f"{row.name}/{i}/")

    def copies(self, row: Row, count: int) -> list[list[str]]:
        groups: list[list[str]] = [[] for _ in range(count)]
        for name in row.nodes:
            index = repeat_index(row, self.graph.node(name))
            groups[index if index is not None else 0].append(name)
        return groups

    def edges(self) -> tuple[tuple[str, str], ...]:
        seen: dict[tuple[str, str], None] = {}
        for node in self.graph.nodes:
            target = self.box_of[node.name]
            for name in node.inputs:
                source = self.box_of[name]
                if source != target:
                    seen[(source, target)] = None
        return tuple(seen)


def build_diagram(graph: Graph, report: Report, expand: Iterable[str] = ()) -> Diagram:
    """The boxes, clusters and edges of `graph`, with the rows `expand` names drawn layer by
    layer (see `resolve_expand`)."""
    targets = resolve_expand(graph, expand)
    builder = Builder(graph, report)
    builder.boxes.append(
        Box(INPUT_KEY, ("input", format_shape(report.input_shape)), "input", "", ())
    )
    for row in graph.rows:
        if row.nodes:  # (a row switched off by `if` draws nothing: its reader reads past it)
            builder.row(row, targets)
    return Diagram(
        clean(graph.name), tuple(builder.boxes), tuple(builder.clusters), builder.edges()
    )
