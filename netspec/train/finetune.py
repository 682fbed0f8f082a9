"""Fine-tuning: weights from elsewhere (`--init-from`), frozen rows, a backbone learning rate.

`training.freeze` names rows (a list, `{until: ROW}`, or `backbone`: every row but the heads);
their parameters get no update (optax `set_to_zero`) and their batch norms run in inference
mode (running statistics, not updated). `training.backbone_lr_scale` multiplies the update of
the other non-head rows. The parameter groups are one optax `multi_transform`, labelled by row.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import jax

from ..compiled import Compiled
from ..errors import SpecError, did_you_mean
from ..pysource import identifier
from ..weights.targets import target_layers
from .config import FreezeUntil, TrainingConfig

FROZEN, BACKBONE, HEAD = "frozen", "backbone", "head"


def head_rows(compiled: Compiled) -> set[str]:
    """The rows that hold the output layer (the last with parameters) and auxiliary heads."""
    graph = compiled.graph
    rows = {row.name for row in graph.rows if row.train_only}
    for layer in target_layers(compiled, _abstract_model(compiled)):
        if layer.head:
            rows.add(graph.node(layer.name).row)
    return rows


def _abstract_model(compiled: Compiled) -> Any:
    from flax import nnx

    return nnx.eval_shape(lambda: compiled.network_class()(rngs=nnx.Rngs(0)))


def frozen_rows(compiled: Compiled, config: TrainingConfig) -> list[str]:
    """The rows `training.freeze` names, in table order (SpecError for an unknown row)."""
    order = [row.name for row in compiled.graph.rows]
    freeze = config.freeze
    if freeze is None:
        return []
    if freeze == "backbone":
        heads = head_rows(compiled)
        return [row for row in order if row not in heads]
    named = [freeze.until] if isinstance(freeze, FreezeUntil) else list(freeze)
    for name in named:
        if name not in order:
            raise SpecError(
                f"names {name!r}, which is not a row of {compiled.name}",
                field="training.freeze",
                hint=did_you_mean(name, order) or f"rows: {', '.join(order[:12])} ...",
            )
    if isinstance(freeze, FreezeUntil):
        # auxiliary heads branch off the main path: `until` freezes the path, not them
        aux = {row.name for row in compiled.graph.rows if row.train_only}
        return [row for row in order[: order.index(freeze.until) + 1] if row not in aux]
    return [row for row in order if row in named]


@dataclass(frozen=True)
class ParamGroups:
    """Which rows are frozen, trained at the backbone rate, or trained at the full rate."""

    frozen: tuple[str, ...]
    backbone: tuple[str, ...]
    scale: float

    def label_of(self, row: str) -> str:
        if row in self.frozen:
            return FROZEN
        return BACKBONE if row in self.backbone else HEAD

    def labels(self, compiled: Compiled) -> Callable[[Any], Any]:
        """params -> the same tree of group labels, by the row each parameter belongs to."""
        rows = {identifier(row.name): row.name for row in compiled.graph.rows}

        def label(path: tuple, _: Any) -> str:
            first = path[0]
            key = getattr(first, "key", getattr(first, "name", first))
            return self.label_of(rows.get(str(key), ""))

        return lambda params: jax.tree_util.tree_map_with_path(label, params)

    @property
    def active(self) -> bool:
        return bool(self.frozen) or (bool(self.backbone) and self.scale != 1.0)


def param_groups(compiled: Compiled, config: TrainingConfig) -> ParamGroups:
    frozen = frozen_rows(compiled, config)
    heads = head_rows(compiled) if config.backbone_lr_scale != 1.0 else set()
    backbone = tuple(
        row.name
        for row in compiled.graph.rows
        if row.name not in frozen and row.name not in heads and config.backbone_lr_scale != 1.0
    )
    return ParamGroups(tuple(frozen), backbone, float(config.backbone_lr_scale))


def freeze_batchnorm(compiled: Compiled, model: Any, groups: ParamGroups) -> int:
    """Put every batch norm in a frozen row in inference mode; returns how many."""
    count = 0
    for layer in target_layers(compiled, model):
        if layer.op == "batchnorm" and compiled.graph.node(layer.name).row in groups.frozen:
            layer.module.frozen = True
            count += 1
    return count


def group_sizes(compiled: Compiled, params: Any, groups: ParamGroups) -> dict[str, int]:
    """Parameters per group (frozen, backbone, head)."""
    sizes = {FROZEN: 0, BACKBONE: 0, HEAD: 0}
    labels = groups.labels(compiled)(params)
    for label, value in zip(jax.tree.leaves(labels), jax.tree.leaves(params), strict=True):
        sizes[label] += int(value.size)
    return sizes


@dataclass
class Initialisation:
    """What `--init-from` will load, checked against the network before the run starts."""

    source: Any
    """The `weights.WeightSource` read from the file (read once)."""
    plan: Any
    """The `weights.LoadPlan` against the network's shapes (an abstract model)."""
    by: str


def check_init(compiled: Compiled, init_from: str, by: str) -> Initialisation:
    """Read `init_from` and pair it with the network; SpecError (naming both sides) if any
    tensor is left over, missing or mismatched."""
    from ..weights import plan_weights, read_source

    source = read_source(init_from)
    return Initialisation(source, plan_weights(compiled, _abstract_model(compiled), source, by), by)


def load_init(compiled: Compiled, model: Any, init: Initialisation) -> Any:
    """Load the checked weights into the built `model`; returns the plan applied."""
    from ..weights import plan_weights

    plan = plan_weights(compiled, model, init.source, init.by)
    plan.apply()
    return plan


def describe_groups(sizes: dict[str, int], groups: ParamGroups, norms: int) -> str:
    """One line: parameters trained, at the backbone rate, frozen."""
    parts = [f"{sizes[HEAD]:,} parameters train at the full learning rate"]
    if sizes[BACKBONE]:
        parts.append(f"{sizes[BACKBONE]:,} at {groups.scale:g}x ({_rows(len(groups.backbone))})")
    if sizes[FROZEN] or groups.frozen:
        frozen = f"{sizes[FROZEN]:,} frozen ({_rows(len(groups.frozen))}"
        if norms:
            frozen += f"; {norms} batch norm{'' if norms == 1 else 's'} in inference mode"
        parts.append(frozen + ")")
    return "fine-tuning: " + ", ".join(parts)


def _rows(count: int) -> str:
    return f"{count} row{'' if count == 1 else 's'}"


def describe_spec_groups(compiled: Compiled, config: TrainingConfig) -> str | None:
    """`describe_groups` from the analysis alone (no model built), for `netspec compile`; None
    when the training section freezes nothing and trains every row at one rate."""
    if config.freeze is None and config.backbone_lr_scale == 1.0:
        return None
    groups = param_groups(compiled, config)
    sizes = {FROZEN: 0, BACKBONE: 0, HEAD: 0}
    for row in compiled.report.rows:
        sizes[groups.label_of(row.name)] += row.params
    norms = sum(
        1
        for node in compiled.report.nodes
        if node.op == "batchnorm" and compiled.graph.node(node.name).row in groups.frozen
    )
    return describe_groups(sizes, groups, norms)
