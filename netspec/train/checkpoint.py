"""Checkpoints of a training run with orbax: the latest (for --resume) and the best by val_acc.

A checkpoint holds the whole training state (parameters, batch-norm statistics, the dropout
RNG, optimizer state, step counters, partial epoch sums) and a JSON record of where training
stood. Orbax writes each step to a temporary folder and renames it when complete, so a crash
never leaves a half-written checkpoint that looks finished; one damaged afterwards is
detected on restore and the previous good one is used, with a message saying so.
"""

from __future__ import annotations

import logging
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jax
import numpy as np

log = logging.getLogger("netspec.train")


def to_storable(tree: Any) -> Any:
    """Typed PRNG keys become their raw uint32 data (orbax stores plain arrays)."""
    return jax.tree.map(
        lambda x: (
            jax.random.key_data(x)
            if hasattr(x, "dtype") and jax.dtypes.issubdtype(x.dtype, jax.dtypes.prng_key)
            else x
        ),
        tree,
    )


def from_storable(stored: Any, like: Any) -> Any:
    """Re-wrap raw key data where `like` (the live state) holds typed PRNG keys."""

    def restore(saved: Any, reference: Any) -> Any:
        if hasattr(reference, "dtype") and jax.dtypes.issubdtype(
            reference.dtype, jax.dtypes.prng_key
        ):
            return jax.random.wrap_key_data(saved, impl=jax.random.key_impl(reference))
        return saved

    return jax.tree.map(restore, stored, like)


class Checkpoints:
    """`run_dir/checkpoints/latest/<step>` (two kept) and `run_dir/checkpoints/best/<step>`."""

    def __init__(self, run_dir: Path) -> None:
        import orbax.checkpoint as ocp

        self.ocp = ocp
        root = (run_dir / "checkpoints").absolute()
        options = dict(create=True, enable_async_checkpointing=False, cleanup_tmp_directories=True)
        self.latest = ocp.CheckpointManager(
            root / "latest", options=ocp.CheckpointManagerOptions(max_to_keep=2, **options)
        )
        self.best = ocp.CheckpointManager(
            root / "best", options=ocp.CheckpointManagerOptions(max_to_keep=1, **options)
        )

    def save(self, step: int, state: Any, record: dict[str, Any], best: bool = False) -> None:
        """Save the state (and the record of where training is) as `step`."""
        args = self.ocp.args.Composite(
            state=self.ocp.args.StandardSave(to_storable(state)),
            record=self.ocp.args.JsonSave(record),
        )
        manager = self.best if best else self.latest
        if step in manager.all_steps():
            shutil.rmtree(Path(manager.directory) / str(step), ignore_errors=True)
            manager.reload()
        manager.save(step, args=args, force=True)
        manager.wait_until_finished()

    def restore(
        self, like: Any, best: bool = False, report: Callable[[str], None] = log.warning
    ) -> tuple[Any, dict[str, Any]] | None:
        """The newest checkpoint that restores cleanly, as (state, record); None if there is
        none. A damaged newer one is reported through `report` and skipped."""
        manager = self.best if best else self.latest
        abstract = jax.tree.map(
            lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=getattr(x, "sharding", None)),
            to_storable(like),
        )
        for step in sorted(manager.all_steps(), reverse=True):
            try:
                restored = manager.restore(
                    step,
                    args=self.ocp.args.Composite(
                        state=self.ocp.args.StandardRestore(abstract),
                        record=self.ocp.args.JsonRestore(),
                    ),
                )
                check_finite(restored["state"])  # raw key data: plain arrays only
                return from_storable(restored["state"], like), dict(restored["record"])
            except Exception as error:  # any damage: unreadable files, bad shapes, NaN
                report(
                    f"checkpoint {Path(manager.directory) / str(step)} is damaged "
                    f"({type(error).__name__}: {str(error).splitlines()[0][:160]}); "
                    "using the previous one"
                )
        return None

    def close(self) -> None:
        self.latest.close()
        self.best.close()


def check_finite(state: Any) -> None:
    floats = [
        x
        for x in jax.tree.leaves(state)
        if hasattr(x, "dtype") and np.issubdtype(x.dtype, np.floating)
    ]
    if not all(np.all(np.isfinite(np.asarray(x))) for x in floats):
        raise ValueError("the checkpoint holds NaN or Inf values")
