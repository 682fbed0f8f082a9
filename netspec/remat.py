"""Rematerialisation (`training.remat`, `netspec bench --remat`): recompute rows in the backward
pass instead of keeping their activations, trading compute for memory.

A built network calls one module per top-level row (a layer, a block, or each repetition of a
`repeat=` row); `apply_remat` makes those calls checkpointed with `flax.nnx.remat` (jax.checkpoint
lifted to NNX: the module's variables go in and the updated ones come out, so batch-norm
statistics and dropout RNG counters update as without it). Only the module's input is kept for the
backward pass; its activations are recomputed there. The parameters and their paths do not change
(the call is swapped on the instance's class, not wrapped in a new module), so checkpoints, weight
files, frozen groups and the optimizer state are the same with or without remat.

Modes:
  blocks: the rows that are blocks (a `blocks:` entry, or a `repeat=` row of one or of an inline
          list; each repetition on its own). Single-layer rows are left alone: checkpointing one
          layer keeps its input instead of its output, which saves little.
  rows:   every top-level row, single layers included. A row written inline as a list of layers
          (`conv2: [reduce: conv 1x1 64, conv: conv 3x3 192]`) has no call of its own: each of
          its layers is checkpointed (in `blocks` mode, only the blocks among them).

XLA:CPU removes optimization barriers early in its pipeline (its `cse_barrier_expander` pass),
before common-subexpression elimination, which then merges the recomputation back into the
forward pass: jax.checkpoint saves nothing there. A train step of a network with remat is
compiled on CPU with that pass disabled (`step_compiler_options`); GPUs and TPUs keep the
barriers until after scheduling and need nothing.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    from .compiled import Compiled

RematMode = Literal["rows", "blocks"]
REMAT_MODES: tuple[str, ...] = ("rows", "blocks")

REMAT_MARK = "_netspec_remat"
"""Class attribute (True) of the checkpointed subclasses `remat_class` makes."""
_SUBCLASS = "_netspec_remat_class"
"""Class attribute of a module class: its checkpointed subclass, once made."""

KEEP_BARRIERS = {"xla_disable_hlo_passes": "cse_barrier_expander"}
"""XLA:CPU compiler option that keeps jax.checkpoint's optimization barriers (see above)."""


def remat_class(cls: type) -> type:
    """The subclass of module class `cls` whose `__call__(x, train)` is `cls.__call__` under
    `nnx.remat` (`train` static); made once per class."""
    from flax import nnx

    found = cls.__dict__.get(_SUBCLASS)
    if found is not None:
        return found
    checkpointed = nnx.remat(cls.__call__, static_argnums=(2,))  # (self, x, train)

    def __call__(self: Any, x: Any, train: bool = False) -> Any:
        return checkpointed(self, x, train)

    found = type(
        cls.__name__,
        (cls,),
        {
            "__call__": __call__,
            "__module__": cls.__module__,
            "__qualname__": cls.__qualname__,
            "__doc__": cls.__doc__,
            REMAT_MARK: True,
        },
    )
    setattr(cls, _SUBCLASS, found)
    return found


def called_modules(node: Any) -> Iterator[Any]:
    """The modules a network's `__call__` calls for one top-level row attribute: the module
    itself, each item of an `nnx.List` (repetitions), or, in a `Group` (a row written inline),
    the modules called for each of its members."""
    from flax import nnx

    from .flax_layers import Group

    if isinstance(node, nnx.List):
        for item in node:
            yield from called_modules(item)
    elif isinstance(node, Group):
        for child in vars(node).values():
            if isinstance(child, nnx.Module | nnx.List):
                yield from called_modules(child)
    elif isinstance(node, nnx.Module):
        yield node


def is_layer(module: Any) -> bool:
    """Whether `module` is one of netspec's layers (not a generated block class)."""
    from .flax_layers import FLAX_MODULES

    return any(type(module) is cls for cls in FLAX_MODULES.values())


def apply_remat(model: Any, compiled: Compiled, mode: str) -> int:
    """Checkpoint the row calls of a model built from `compiled` (`mode`: rows or blocks, see
    the module's docstring), in place; returns how many modules were checkpointed."""
    from .pysource import identifier

    if mode not in REMAT_MODES:
        raise ValueError(f"remat must be one of {', '.join(REMAT_MODES)}, got {mode!r}")
    count = 0
    for row in compiled.graph.rows:
        for module in called_modules(getattr(model, identifier(row.name), None)):
            if getattr(type(module), REMAT_MARK, False) or (mode == "blocks" and is_layer(module)):
                continue
            module.__class__ = remat_class(type(module))
            count += 1
    return count


def uses_remat(graphdef: Any) -> bool:
    """Whether a model's graph definition (`nnx.split`'s) holds checkpointed modules."""
    return any(
        getattr(getattr(node, "type", None), REMAT_MARK, False)
        for node in getattr(graphdef, "nodes", ())
    )


def step_compiler_options(graphdef: Any) -> dict[str, str] | None:
    """XLA compiler options for a train step of the model `graphdef` defines: `KEEP_BARRIERS`
    on CPU when it checkpoints rows, else None."""
    import jax

    if jax.default_backend() == "cpu" and uses_remat(graphdef):
        return dict(KEEP_BARRIERS)
    return None
