"""Shape inference and cost accounting over a Graph: the data behind the paper-style table."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .errors import Location, SpecError, SpecWarning, raise_all
from .graph import INPUT, Graph, Node, Row
from .layers import REGISTRY, Cost, Shape, ShapeError, format_shape
from .rowsyntax import ExpectedCount


@dataclass(frozen=True)
class NodeReport:
    """One layer instance with its inferred output shape (H, W, C) and its cost per example."""

    name: str
    op: str
    output_shape: Shape
    params: int
    state: int
    macs: int
    train_only: bool


@dataclass(frozen=True)
class RowReport:
    """One table row: output shape, depth (weight layers on its longest path), totals."""

    name: str
    type: str
    label: str
    window: str
    args: tuple[Any, ...]
    output_shape: Shape
    depth: int
    params: int
    state: int
    macs: int
    train_only: bool


@dataclass(frozen=True)
class Report:
    """The analysis of a whole network. `params` counts every trainable parameter (auxiliary
    heads included); `inference_params` leaves out train-only rows; `state` counts buffers
    such as batch-norm running statistics. MACs are multiply-accumulates per example."""

    name: str
    input_shape: Shape
    rows: tuple[RowReport, ...]
    nodes: tuple[NodeReport, ...]
    output_shape: Shape
    heads: tuple[tuple[str, float], ...]
    warnings: tuple[SpecWarning, ...] = ()

    @property
    def params(self) -> int:
        return sum(r.params for r in self.rows)

    @property
    def inference_params(self) -> int:
        return sum(r.params for r in self.rows if not r.train_only)

    @property
    def state(self) -> int:
        return sum(r.state for r in self.rows)

    @property
    def macs(self) -> int:
        return sum(r.macs for r in self.rows if not r.train_only)

    @property
    def train_macs(self) -> int:
        return sum(r.macs for r in self.rows)

    def to_json(self) -> dict[str, Any]:
        """The `netspec compile --json` object; shapes as [H, W, C] lists."""
        return {
            "name": self.name,
            "input_shape": list(self.input_shape),
            "output_shape": list(self.output_shape),
            "rows": [
                {
                    "name": r.name,
                    "type": r.type,
                    "output_shape": list(r.output_shape),
                    "params": r.params,
                    "macs": r.macs,
                    "train_only": r.train_only,
                    "depth": r.depth,
                    "state": r.state,
                    "window": r.window,
                    "args": list(r.args),
                }
                for r in self.rows
            ],
            "params": self.params,
            "inference_params": self.inference_params,
            "state": self.state,
            "macs": self.macs,
            "flops": 2 * self.macs,
            "train_macs": self.train_macs,
            "heads": [{"row": row, "weight": weight} for row, weight in self.heads],
            "warnings": [str(warning) for warning in self.warnings],
        }


def node_error(node: Node, message: str, hint: str | None = None) -> SpecError:
    return SpecError(message, node.origin, path=node.trail, hint=hint)


def infer_node(node: Node, shapes: dict[str, Shape]) -> tuple[Shape, Cost]:
    layer = REGISTRY[node.op]
    inputs = [shapes[name] for name in node.inputs]
    params = layer.params.model_validate(dict(node.attrs))
    try:
        shape = layer.output_shape(params, inputs)
    except ShapeError as error:
        given = ", ".join(format_shape(s) for s in inputs)
        message = str(error) if given in str(error) else f"{error} (input {given})"
        location = node.field_origins.get(error.field or "", node.origin)
        raise SpecError(
            message, location, path=node.trail, field=error.field, hint=error.hint
        ) from None
    if min(shape) < 1:
        raise node_error(
            node,
            f"{node.op} turns {format_shape(inputs[0])} into {format_shape(shape)}: "
            "the size reaches zero",
            "the input is too small for this many downsampling steps: use a larger input, "
            "padding=same, or fewer strided layers",
        )
    return shape, layer.cost(params, inputs, shape)


def row_depth(row: Row, graph: Graph) -> int:
    """Weight layers (conv, dense) on the longest path through the row, as the paper counts."""
    members = set(row.nodes)
    depth: dict[str, int] = {}
    for name in row.nodes:
        node = graph.node(name)
        before = max((depth.get(i, 0) for i in node.inputs if i in members), default=0)
        depth[name] = before + int(REGISTRY[node.op].weighted)
    return max(depth.values(), default=0)


def check_expectation(row: Row, report: RowReport) -> None:
    """Compare a row with what its `expect` says; the error points at the part that differs."""
    expect = row.expect
    if expect is None:
        return
    where = list(expect.origins) + [expect.origin] * 3
    if expect.output is not None:
        wanted = expect.output.replace("×", "x")
        if wanted != format_shape(report.output_shape):
            raise SpecError(
                f"row '{row.name}' should give {wanted} but gives "
                f"{format_shape(report.output_shape)}",
                where[0] or expect.origin,
                path=row.name,
                field="expect",
            )
    for index, what, text, actual in (
        (1, "params", expect.params, report.params),
        (2, "MACs", expect.macs, report.macs),
    ):
        count = ExpectedCount.parse(text) if text is not None else None
        if count is not None and not count.matches(actual):
            raise SpecError(
                f"row '{row.name}' should have {what} {count.describe()} but has {actual:,}",
                where[index] or expect.origin,
                path=row.name,
                field="expect",
            )


def unread_outputs(graph: Graph) -> tuple[SpecWarning, ...]:
    """A warning for each layer whose output no layer reads and that is neither the network's
    output nor an auxiliary head: its parameters are counted and trained for nothing (a
    squeeze-and-excitation gate that multiplies nothing, a branch left out of a merge). One
    warning per place in the spec, however many times a block repeats it."""
    read = {name for node in graph.nodes for name in node.inputs}
    read |= {graph.output, *(head.output for head in graph.heads)}
    found: dict[Location | None, list[Node]] = {}
    for node in graph.nodes:
        if node.name not in read:
            found.setdefault(node.origin, []).append(node)
    warnings = []
    for location, nodes in found.items():
        times = f" (in {len(nodes)} places)" if len(nodes) > 1 else ""
        warnings.append(
            SpecWarning(
                f"the output of this {nodes[0].op} row is never read{times}: no row takes it "
                "as input, and it is not the network's output or an auxiliary head",
                location,
                path=nodes[0].trail,
                hint="read it with `from=` (e.g. `multiply from=[x, gate]`), make it a head "
                "with `aux=`, or remove the row",
            )
        )
    return tuple(warnings)


def analyze(graph: Graph) -> Report:
    """Infer every node's shape and cost, aggregate them per row, check the expectations."""
    shapes: dict[str, Shape] = {INPUT: graph.input_shape}
    node_reports: dict[str, NodeReport] = {}
    for node in graph.nodes:
        shape, cost = infer_node(node, shapes)
        shapes[node.name] = shape
        node_reports[node.name] = NodeReport(
            node.name, node.op, shape, cost.params, cost.state, cost.macs, node.train_only
        )
    rows = []
    mismatches: list[SpecError] = []
    for row in graph.rows:
        members = [node_reports[n] for n in row.nodes]
        report = RowReport(
            row.name,
            row.kind,
            row.label,
            row.window,
            row.args,
            shapes[row.output],
            row_depth(row, graph),
            sum(m.params for m in members),
            sum(m.state for m in members),
            sum(m.macs for m in members),
            row.train_only,
        )
        try:
            check_expectation(row, report)
        except SpecError as mismatch:  # every row's numbers are known: report each that differs
            mismatches.append(mismatch)
        rows.append(report)
    raise_all(mismatches)
    return Report(
        graph.name,
        graph.input_shape,
        tuple(rows),
        tuple(node_reports.values()),
        shapes[graph.output],
        tuple((h.row, h.weight) for h in graph.heads),
        unread_outputs(graph),
    )
