"""Memory of a compiled step (XLA's memory analysis) and a clear message when a step runs out.

XLA plans every buffer of a compiled program ahead of time; `Compiled.memory_analysis()` reports
the sizes: the arguments (for the train step: parameters, optimizer state, batch-norm statistics
and the batch), the outputs (the new state), the temporaries (activations kept for the backward
pass, gradients, workspace) and the bytes of outputs that reuse argument buffers (donation).
The step's peak is about arguments + outputs + temporaries - aliased bytes.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

from .errors import SpecError

MB = 1e6
FITS_SHARE = 0.9
"""A step fits a device when its peak is at most this share of the device's memory (the rest
is for the runtime, the next batch being copied in, fragmentation)."""


@dataclass(frozen=True)
class StepMemory:
    """Bytes of one compiled step, from XLA's analysis."""

    argument_bytes: int
    output_bytes: int
    temp_bytes: int
    generated_code_bytes: int
    alias_bytes: int

    @property
    def peak_bytes(self) -> int:
        return self.argument_bytes + self.output_bytes + self.temp_bytes - self.alias_bytes

    def to_json(self) -> dict[str, int]:
        return {**asdict(self), "peak_bytes": self.peak_bytes}


def step_memory(compiled_step: Any) -> StepMemory | None:
    """The memory analysis of a compiled step (`jitted.lower(...).compile()`), or None where the
    backend gives none."""
    try:
        stats = compiled_step.memory_analysis()
    except (AttributeError, NotImplementedError, RuntimeError):
        return None
    if stats is None:
        return None
    return StepMemory(
        argument_bytes=int(stats.argument_size_in_bytes),
        output_bytes=int(stats.output_size_in_bytes),
        temp_bytes=int(stats.temp_size_in_bytes),
        generated_code_bytes=int(stats.generated_code_size_in_bytes),
        alias_bytes=int(stats.alias_size_in_bytes),
    )


def device_memory(device: Any = None) -> int | None:
    """Bytes the device lets a program use (`memory_stats()["bytes_limit"]`); None where the
    backend does not say (CPU)."""
    import jax

    device = device if device is not None else jax.devices()[0]
    try:
        stats = device.memory_stats()
    except (AttributeError, NotImplementedError, RuntimeError):
        return None
    limit = (stats or {}).get("bytes_limit")
    return int(limit) if limit else None


def tree_bytes(tree: Any) -> int:
    """Bytes of the arrays in a pytree (parameters, optimizer state, ...)."""
    import jax

    return sum(
        int(leaf.nbytes) for leaf in jax.tree_util.tree_leaves(tree) if hasattr(leaf, "nbytes")
    )


def is_out_of_memory(error: BaseException) -> bool:
    """Whether `error` is XLA running out of device memory (status RESOURCE_EXHAUSTED)."""
    text = str(error)
    return "RESOURCE_EXHAUSTED" in text or "out of memory" in text.lower()


def fitting_batch(
    measure: Callable[[int], StepMemory | None], batch: int, limit: int, tries: int = 8
) -> int | None:
    """The largest of batch/2, batch/4, ... whose step's peak (`measure(b)`, compiling only)
    fits FITS_SHARE of `limit` bytes; None if none of the first `tries` does."""
    candidate = batch // 2
    for _ in range(tries):
        if candidate < 1:
            return None
        memory = measure(candidate)
        if memory is not None and memory.peak_bytes <= FITS_SHARE * limit:
            return candidate
        candidate //= 2
    return None


def megabytes(size: float) -> str:
    return f"{size / MB:,.0f} MB"


def out_of_memory(
    error: BaseException,
    batch: int,
    needed: StepMemory | None,
    available: int | None,
    smaller: int | None,
    *,
    what: str = "train step",
    dtype_option: str = "--set training.dtype=bfloat16",
    smaller_option: str = "--set training.batch_size={batch}",
    extra: str | None = None,
) -> SpecError:
    """The SpecError for a step that ran out of device memory: what it needs, what the device
    has, what to try."""
    needs = (
        f"it needs about {megabytes(needed.peak_bytes)} at batch {batch} "
        f"({megabytes(needed.argument_bytes)} arguments, {megabytes(needed.temp_bytes)} "
        "activations and temporaries)"
        if needed is not None
        else f"at batch {batch}"
    )
    has = f"; the device has {megabytes(available)}" if available else ""
    tries = []
    if smaller is not None:
        tries.append(f"batch {smaller} fits ({smaller_option.format(batch=smaller)})")
    else:
        tries.append(f"a smaller batch ({smaller_option.format(batch=max(batch // 2, 1))} or less)")
    tries.append(f"bfloat16 activations ({dtype_option})")
    tries.append("a smaller input size or network")
    hint = "try " + "; ".join(tries)
    if extra:
        hint += f". {extra}"
    status = next((line for line in str(error).splitlines() if line.strip()), "")
    return SpecError(
        f"the {what} ran out of device memory: {needs}{has} ({status.strip()[:200]})", hint=hint
    )


def lowered_at(jitted: Any, state: Any, batch_args: tuple[Any, ...], batch: int) -> Any:
    """`jitted(state, *batch_args)` lowered with the batch arguments resized to `batch` along
    their first axis (shapes only)."""
    import jax

    resized = [jax.ShapeDtypeStruct((batch, *arg.shape[1:]), arg.dtype) for arg in batch_args]
    return jitted.lower(state, *resized)
