"""`netspec bench`: time the compiled train step (and inference) on synthetic data.

The step is the one `netspec train` runs (forward, loss with auxiliary heads, backward, SGD
with momentum, batch-norm statistics; buffers donated; rows recomputed in the backward pass
where the compiled spec's `remat` says so, as `--remat`); a per-pixel network (output H x W x K)
gets random per-pixel labels and the per-pixel step. Each timed step waits for its result,
so a step's time is what the device spent on it; the median over the timed steps is reported.
"""

from __future__ import annotations

import statistics
import time
from dataclasses import asdict, dataclass
from typing import Any

from .errors import SpecError
from .memory import (
    StepMemory,
    device_memory,
    fitting_batch,
    is_out_of_memory,
    out_of_memory,
    step_memory,
    tree_bytes,
)

# Dense bf16 / fp32 peak FLOP/s of accelerators whose peak is published (NVIDIA datasheets).
PEAK_FLOPS = {
    "H100": {"bfloat16": 989e12, "float32": 67e12},
    "H200": {"bfloat16": 989e12, "float32": 67e12},
    "A100": {"bfloat16": 312e12, "float32": 19.5e12},
}


@dataclass(frozen=True)
class BenchResult:
    """Timings of one spec at one batch size and dtype; times in milliseconds."""

    spec: str
    device: str
    batch: int
    dtype: str
    compile_s: float
    ms_per_step: float
    ms_per_step_p90: float
    images_per_sec: float
    inference_ms: float
    inference_images_per_sec: float
    train_flops_per_step: float
    mfu: float | None
    memory: dict[str, int] | None = None
    """The train step's XLA memory analysis (`StepMemory.to_json`) and `state_bytes`, the
    parameters, batch-norm statistics and optimizer state."""
    device_memory_bytes: int | None = None
    remat: str | None = None
    """`--remat`: rows or blocks recomputed in the backward pass (`netspec.remat`); None: off."""

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def peak_flops(device: Any, dtype: str) -> float | None:
    """The device's published peak for `dtype`, or None (CPUs, unknown accelerators)."""
    kind = getattr(device, "device_kind", "")
    for name, peaks in PEAK_FLOPS.items():
        if name in kind:
            return peaks.get(dtype)
    return None


def timed(run: Any, repeats: int) -> list[float]:
    """Seconds per call, each call waited for."""
    import jax

    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        jax.block_until_ready(run())
        times.append(time.perf_counter() - start)
    return times


class Setup:
    """The train step of `compiled` and its state, for batches of synthetic images."""

    def __init__(self, compiled: Any, dtype: str = "float32") -> None:
        import optax

        from .train.segmentation import is_per_pixel, make_segmentation_steps, zero_sums
        from .train.steps import initial_state, make_steps

        self.compiled = compiled
        model = compiled.build(seed=0, dtype=None if dtype == "float32" else dtype)
        tx = optax.sgd(0.01, momentum=0.9)
        height, width, classes = compiled.report.output_shape
        self.classes = classes
        self.per_pixel = is_per_pixel(compiled.report.output_shape)
        self.label_tail: tuple[int, ...] = (height, width) if self.per_pixel else ()
        if self.per_pixel:  # labels per pixel, as `netspec train`
            graphdef, self.state = initial_state(model, tx, zero_sums(classes))
            self.train = make_segmentation_steps(graphdef, tx, classes, ignore_index=255)
        else:
            graphdef, self.state = initial_state(model, tx)
            self.train = make_steps(graphdef, tx, model.loss_weights, 0.0)

    def batch(self, batch: int) -> tuple[Any, Any, Any]:
        """Random images, labels and a mask of ones for `batch` examples."""
        import jax
        import jax.numpy as jnp

        shape = (batch, *self.compiled.graph.input_shape)
        images = jax.random.normal(jax.random.key(0), shape, jnp.float32)
        labels = jax.random.randint(jax.random.key(1), (batch, *self.label_tail), 0, self.classes)
        return images, labels, jnp.ones((batch,), jnp.float32)

    def lower(self, batch: int) -> Any:
        """The train step lowered for `batch` (shapes only: nothing of the batch is allocated)."""
        import jax
        import jax.numpy as jnp

        images = jax.ShapeDtypeStruct((batch, *self.compiled.graph.input_shape), jnp.float32)
        labels = jax.ShapeDtypeStruct((batch, *self.label_tail), jnp.int32)
        mask = jax.ShapeDtypeStruct((batch,), jnp.float32)
        return self.train.train.lower(self.state, images, labels, mask)

    def memory(self, batch: int) -> StepMemory | None:
        """XLA's memory analysis of the train step at `batch`, compiled and not run."""
        return step_memory(self.lower(batch).compile())


def memory_table(
    compiled: Any, batches: list[int], dtype: str = "float32"
) -> list[tuple[int, StepMemory | None]]:
    """The train step's memory at each batch size, compiling it without running it."""
    setup = Setup(compiled, dtype)
    table = []
    for batch in batches:
        try:
            table.append((batch, setup.memory(batch)))
        except Exception as error:
            if not is_out_of_memory(error):
                raise
            table.append((batch, None))
    return table


def bench(
    compiled: Any, batch: int = 32, steps: int = 20, warmup: int = 3, dtype: str = "float32"
) -> BenchResult:
    """Compile the train step for `batch` synthetic images and time `steps` of it. A step that
    runs out of device memory ends in a SpecError saying what it needs and what fits."""
    setup = Setup(compiled, dtype)
    memory: StepMemory | None = None
    try:
        start = time.perf_counter()
        step = setup.lower(batch).compile()
        compile_s = time.perf_counter() - start
        memory = step_memory(step)
        return timed_bench(setup, step, batch, steps, warmup, dtype, compile_s, memory)
    except Exception as error:
        if not is_out_of_memory(error):
            raise
        raise bench_out_of_memory(error, setup, batch, memory, dtype) from None


def bench_out_of_memory(
    error: BaseException, setup: Setup, batch: int, memory: StepMemory | None, dtype: str
) -> SpecError:
    available = device_memory()

    def measure(size: int) -> StepMemory | None:
        try:
            return setup.memory(size)
        except Exception as again:
            if is_out_of_memory(again):
                return None
            raise

    if memory is None:
        memory = measure(batch)
    smaller = fitting_batch(measure, batch, available) if available else None
    return out_of_memory(
        error,
        batch,
        memory,
        available,
        smaller,
        dtype_option="--dtype bfloat16" if dtype == "float32" else "a smaller dtype",
        smaller_option="--batch {batch}",
    )


def timed_bench(
    setup: Setup,
    step: Any,
    batch: int,
    steps: int,
    warmup: int,
    dtype: str,
    compile_s: float,
    memory: StepMemory | None,
) -> BenchResult:
    import jax

    compiled = setup.compiled
    images, labels, mask = setup.batch(batch)
    holder = {"state": setup.state}
    state_bytes = tree_bytes((setup.state.params, setup.state.rest, setup.state.opt_state))

    def one_step() -> Any:
        holder["state"] = step(holder["state"], images, labels, mask)
        return holder["state"].sums

    timed(one_step, warmup)
    train_times = timed(one_step, steps)
    params, rest = holder["state"].params, holder["state"].rest
    predict = setup.train.predict.lower(params, rest, images).compile()
    timed(lambda: predict(params, rest, images), warmup)
    infer_times = timed(lambda: predict(params, rest, images), steps)

    median = statistics.median(train_times)
    inference = statistics.median(infer_times)
    # A training step costs about three forward passes (forward, two backward products).
    flops = 3 * 2 * compiled.report.train_macs * batch
    peak = peak_flops(jax.devices()[0], dtype)
    return BenchResult(
        spec=compiled.name,
        device=describe_device(),
        batch=batch,
        dtype=dtype,
        compile_s=compile_s,
        ms_per_step=median * 1e3,
        ms_per_step_p90=sorted(train_times)[int(0.9 * (len(train_times) - 1))] * 1e3,
        images_per_sec=batch / median,
        inference_ms=inference * 1e3,
        inference_images_per_sec=batch / inference,
        train_flops_per_step=flops,
        mfu=flops / median / peak if peak else None,
        memory={**memory.to_json(), "state_bytes": state_bytes} if memory else None,
        device_memory_bytes=device_memory(),
        remat=compiled.remat,
    )


def describe_device() -> str:
    import jax

    devices = jax.devices()
    kind = devices[0].device_kind
    return f"{len(devices)} x {kind}" if len(devices) > 1 else kind
