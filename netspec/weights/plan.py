"""Pair a weight source's layers with netspec's and check every tensor, before anything loads.

Pairing goes by name where names are known (a name map for a zoo spec, another netspec run, a
NumPy dict keyed by the spec's rows), otherwise by execution order: netspec's layers with
variables (the table top to bottom) against the source's layers in the file's order. Each pair
must agree on kind and every shape. The one tolerated difference is the output layer's number
of classes (ImageNet's 1000 against a data set's 5): that layer keeps its fresh initialisation
(a new head), as do auxiliary heads the source lacks. Anything else — a left-over, missing or
mismatched tensor — is one error naming both sides, and nothing is loaded.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..errors import SpecError
from .convert import Mismatch, convert
from .source import SourceLayer, WeightSource
from .targets import TargetLayer

LOADED, NEW_HEAD, KEPT = "loaded", "new head", "kept"


@dataclass(frozen=True)
class Assignment:
    """What happens to one netspec layer: loaded from `source`, or kept as initialised."""

    target: TargetLayer
    source: SourceLayer | None
    values: dict[str, np.ndarray]
    status: str
    note: str = ""


@dataclass
class LoadPlan:
    """Every netspec layer with variables and where its values come from."""

    source: WeightSource
    pairing: str
    layout: str
    assignments: list[Assignment] = field(default_factory=list)

    @property
    def loaded(self) -> int:
        """How many values (parameters and statistics) the plan takes from the source."""
        return sum(
            int(value.size)
            for a in self.assignments
            for name, value in a.values.items()
            if a.source is not None and name in a.source.tensors  # not Keras's filled-in scale
        )

    @property
    def new_head(self) -> list[str]:
        return [a.target.name for a in self.assignments if a.status == NEW_HEAD]

    def summary(self) -> str:
        """`N values, paired by ...; new head: fc` in one line."""
        text = f"{self.loaded:,} values, paired {self.pairing}"
        return text + (f"; new head: {', '.join(self.new_head)}" if self.new_head else "")

    def apply(self) -> None:
        """Set every planned value on its module (all were checked before)."""
        import jax.numpy as jnp

        for assignment in self.assignments:
            for name, value in assignment.values.items():
                variable = getattr(assignment.target.module, name)
                old = variable.get_value()
                variable.set_value(jnp.asarray(value, dtype=old.dtype))

    def rows(self) -> list[dict[str, Any]]:
        """The dry-run table: netspec layer, its variables, the source's layer and tensors."""
        table = []
        for a in self.assignments:
            shapes = a.target.variables()
            table.append(
                {
                    "layer": a.target.name,
                    "op": a.target.op,
                    "shapes": " ".join(
                        dict.fromkeys("x".join(map(str, s)) for s in shapes.values())
                    ),
                    "source": a.source.name if a.source else "",
                    "tensors": list(a.source.keys.values()) if a.source else [],
                    "status": a.status + (f" ({a.note})" if a.note else ""),
                }
            )
        return table


def make_plan(
    targets: list[TargetLayer],
    source: WeightSource,
    names: dict[str, str] | None,
    pairing: str,
) -> LoadPlan:
    """Pair `targets` with `source` (by `names`: netspec node -> source layer, else in order)
    and convert every pair; raise SpecError on the first disagreement."""
    unknown = [layer for layer in source.layers if layer.kind == "unknown"]
    if unknown:
        raise SpecError(
            f"layer {unknown[0].describe()} holds tensors netspec does not know how to load "
            f"({', '.join(unknown[0].keys.values())})",
            path=source.description,
        )
    pairs = _by_name(targets, source, names) if names is not None else _in_order(targets, source)
    layout = _layout(pairs, source)
    plan = LoadPlan(source, pairing, layout)
    for target, theirs in pairs:
        plan.assignments.append(_assign(target, theirs, layout, source))
    return plan


def _by_name(
    targets: list[TargetLayer], source: WeightSource, names: dict[str, str]
) -> list[tuple[TargetLayer, SourceLayer | None]]:
    available = source.by_name()
    pairs: list[tuple[TargetLayer, SourceLayer | None]] = []
    for target in targets:
        wanted = names.get(target.name)
        theirs = available.pop(wanted, None) if wanted is not None else None
        if theirs is None and not (target.train_only or target.head):
            where = f"its layer {wanted!r}" if wanted else "a layer of that name"
            raise SpecError(
                f"{target.describe()} finds no weights: the source holds no {where}",
                path=source.description,
                hint=_left_over_hint(available),
            )
        pairs.append((target, theirs))
    if available:
        extra = next(iter(available.values()))
        raise SpecError(
            f"{len(available)} of the source's layers pair with no netspec layer, the first "
            f"{extra.describe()}",
            path=source.description,
            hint="netspec loads all of a source or nothing: use a spec with those layers",
        )
    return pairs


def _left_over_hint(available: dict[str, SourceLayer]) -> str:
    names = list(available)[:6]
    return f"its layers not yet paired: {', '.join(names)}{' ...' if len(available) > 6 else ''}"


def _in_order(
    targets: list[TargetLayer], source: WeightSource
) -> list[tuple[TargetLayer, SourceLayer | None]]:
    if not source.ordered:
        raise SpecError(
            "keeps its tensors sorted by name, not in the order the network runs them, so it "
            "pairs only by name: with a zoo spec's name map or the spec's own layer names",
            path=source.description,
            hint="for another architecture, save the state_dict with torch.save (.pth)",
        )
    main = [t for t in targets if not t.train_only]
    theirs = list(source.layers)
    if len(theirs) == len(targets):
        return list(zip(targets, theirs, strict=True))
    if len(theirs) == len(main):
        paired = iter(theirs)
        return [(t, None if t.train_only else next(paired)) for t in targets]
    counted = f"{len(main)}" + (
        f" ({len(targets)} with auxiliary heads)" if main != targets else ""
    )
    shorter = min(len(main), len(theirs))
    first = (
        main[shorter].describe()
        if len(main) > shorter
        else f"the source's {theirs[shorter].describe()}"
    )
    raise SpecError(
        f"netspec's network has {counted} layers with variables, the source "
        f"{len(theirs)}; the first without a partner in execution order: {first}",
        path=source.description,
        hint="is it the same architecture? `--dry-run` shows the pairing up to there",
    )


def _layout(pairs: list[tuple[TargetLayer, SourceLayer | None]], source: WeightSource) -> str:
    """The source's layout; for a Caffe-converted file, the one its kernels fit."""
    if source.layout != "caffe_or_tf":
        return source.layout
    votes = {"keras": 0, "torch": 0}
    for target, theirs in pairs:
        kernel = theirs.tensors.get("kernel") if theirs is not None else None
        wanted = target.variables().get("kernel")
        if kernel is None or wanted is None or target.op not in ("conv", "dense"):
            continue
        as_is = tuple(kernel.shape) == wanted
        flipped = kernel.transpose(2, 3, 1, 0) if kernel.ndim == 4 else kernel.T
        transposed = tuple(flipped.shape) == wanted
        if as_is != transposed:
            votes["keras" if as_is else "torch"] += 1
    if votes["keras"] and votes["torch"]:
        raise SpecError(
            "its kernels mix TensorFlow's layout (HWIO, dense in x out) and Caffe's (OIHW, "
            "dense out x in)",
            path=source.description,
        )
    return "torch" if votes["torch"] else "keras"


def _assign(
    target: TargetLayer, theirs: SourceLayer | None, layout: str, source: WeightSource
) -> Assignment:
    if theirs is None:
        why = "auxiliary head, not in the source" if target.train_only else "not in the source"
        return Assignment(target, None, {}, NEW_HEAD if target.head else KEPT, why)
    try:
        return Assignment(target, theirs, convert(target, theirs, layout), LOADED)
    except Mismatch as mismatch:
        classes = _other_classes(target, theirs, layout)
        if target.head and classes is not None:
            note = f"{classes} -> {_classes(target)} outputs"
            return Assignment(target, theirs, {}, NEW_HEAD, note)
        raise SpecError(
            f"{target.describe()} and the source's {theirs.describe()} do not match: {mismatch}",
            target.origin,
            path=None if target.origin else source.description,
            hint=f"source: {source.description}",
        ) from None


def _classes(target: TargetLayer) -> int:
    return int(target.attrs.get("units") or target.attrs.get("filters"))


def _other_classes(target: TargetLayer, theirs: SourceLayer, layout: str) -> int | None:
    """The source layer's output count if it differs from `target`'s in that alone."""
    kernel, bias = theirs.tensors.get("kernel"), theirs.tensors.get("bias")
    wanted = target.variables().get("kernel")
    if kernel is None or wanted is None or target.op not in ("dense", "conv"):
        return None
    outputs = int(bias.shape[0]) if bias is not None else None
    if outputs is None:
        outputs = int(kernel.shape[0] if layout == "torch" else kernel.shape[-1])
    mine = _classes(target)
    if (
        outputs == mine
        or kernel.size % outputs
        or kernel.size // outputs != np.prod(wanted) // mine
    ):
        return None
    return outputs
