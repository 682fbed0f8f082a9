"""netspec's side of a weight import: the layers that hold variables, in execution order."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..compiled import Compiled
from ..emit import state_path
from ..errors import Location
from ..graph import INPUT
from ..layers import REGISTRY

SHAPE_PRESERVING = frozenset(
    {"dropout", "activation", "drop_path", "batchnorm"}
    | {name for name, layer in REGISTRY.items() if layer.preset_of == "activation"}
)
"""Ops that keep each feature where it is, between a flatten and a dense layer (or a batch norm
on the flat vector, whose per-feature values are permuted like the dense layer's rows)."""
FLATTENED_OPS = ("dense", "batchnorm")


@dataclass(frozen=True)
class TargetLayer:
    """A netspec layer with variables: its node, input shape (H, W, C) and its Flax module.

    `flattened` is a dense layer's input before a flatten (H, W, C), None otherwise: a kernel
    from a framework that flattens C, H, W needs its rows permuted. `head` marks the layer that
    produces the network's output (or an auxiliary head's).
    """

    name: str
    op: str
    attrs: dict[str, Any]
    in_shape: tuple[int, int, int]
    module: Any
    origin: Location | None
    train_only: bool
    head: bool
    flattened: tuple[int, int, int] | None = None

    def variables(self) -> dict[str, tuple[int, ...]]:
        """The module's variables that a source must supply, by name, with their shapes."""
        from flax import nnx

        found = {}
        for field, value in vars(self.module).items():
            if isinstance(value, nnx.Variable) and hasattr(value.get_value(), "shape"):
                found[field] = tuple(value.get_value().shape)
        return found

    def describe(self) -> str:
        shape = "x".join(map(str, self.in_shape))
        return f"netspec layer {self.name!r} ({self.op}, input {shape})"


def module_at(model: Any, node_name: str) -> Any:
    """The submodule of `model` that holds node `node_name`'s variables."""
    module = model
    for part in state_path(node_name):
        module = module[part] if isinstance(part, int) else getattr(module, part)
    return module


def target_layers(compiled: Compiled, model: Any) -> list[TargetLayer]:
    """Every layer holding parameters or statistics, in the analysis' (execution) order: the
    table's rows top to bottom, branches in order, auxiliary heads where they attach."""
    graph = compiled.graph
    shapes = {INPUT: graph.input_shape} | {n.name: n.output_shape for n in compiled.report.nodes}
    heads = {_last_weight_layer(compiled, graph.output)}
    heads |= {_last_weight_layer(compiled, head.output) for head in graph.heads}
    layers = []
    for report in compiled.report.nodes:
        if not (report.params or report.state):
            continue
        node = graph.node(report.name)
        layers.append(
            TargetLayer(
                node.name,
                node.op,
                dict(node.attrs),
                tuple(shapes[node.inputs[0]]),
                module_at(model, node.name),
                node.origin,
                report.train_only,
                node.name in heads,
                _flattened_input(compiled, node.name, shapes) if node.op in FLATTENED_OPS else None,
            )
        )
    return layers


def _flattened_input(
    compiled: Compiled, name: str, shapes: dict[str, Any]
) -> tuple[int, int, int] | None:
    graph = compiled.graph
    source = graph.node(name).inputs[0]
    while source != INPUT and graph.node(source).op in SHAPE_PRESERVING:
        source = graph.node(source).inputs[0]
    if source == INPUT or graph.node(source).op != "flatten":
        return None
    before = shapes[graph.node(source).inputs[0]]
    return tuple(before) if before[0] * before[1] > 1 else None


def _last_weight_layer(compiled: Compiled, output: str) -> str | None:
    """The layer with parameters nearest the output `output`, following first inputs back."""
    graph = compiled.graph
    params = {n.name: n.params for n in compiled.report.nodes}
    name = output
    while name != INPUT:
        if params.get(name):
            return name
        node = graph.node(name)
        if not node.inputs:
            return None
        name = node.inputs[0]
    return None
