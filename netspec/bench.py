"""`netspec bench`: time the compiled train step (and inference) on synthetic data.

The step is the one `netspec train` runs (forward, loss with auxiliary heads, backward, SGD
with momentum, batch-norm statistics; buffers donated); a per-pixel network (output H x W x K)
gets random per-pixel labels and the per-pixel step. Each timed step waits for its result,
so a step's time is what the device spent on it; the median over the timed steps is reported.
"""

from __future__ import annotations

import statistics
import time
from dataclasses import asdict, dataclass
from typing import Any

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


def bench(
    compiled: Any, batch: int = 32, steps: int = 20, warmup: int = 3, dtype: str = "float32"
) -> BenchResult:
    """Compile the train step for `batch` synthetic images and time `steps` of it."""
    import jax
    import jax.numpy as jnp
    import optax

    from .train.segmentation import is_per_pixel, make_segmentation_steps, zero_sums
    from .train.steps import initial_state, make_steps

    model = compiled.build(seed=0, dtype=None if dtype == "float32" else dtype)
    tx = optax.sgd(0.01, momentum=0.9)
    height, width, classes = compiled.report.output_shape
    if is_per_pixel(compiled.report.output_shape):  # labels per pixel, as `netspec train`
        graphdef, state = initial_state(model, tx, zero_sums(classes))
        train = make_segmentation_steps(graphdef, tx, classes, ignore_index=255)
        label_shape: tuple[int, ...] = (batch, height, width)
    else:
        graphdef, state = initial_state(model, tx)
        train = make_steps(graphdef, tx, model.loss_weights, 0.0)
        label_shape = (batch,)
    shape = (batch, *compiled.graph.input_shape)
    images = jax.random.normal(jax.random.key(0), shape, jnp.float32)
    labels = jax.random.randint(jax.random.key(1), label_shape, 0, classes)
    mask = jnp.ones((batch,), jnp.float32)

    start = time.perf_counter()
    step = train.train.lower(state, images, labels, mask).compile()
    compile_s = time.perf_counter() - start
    holder = {"state": state}

    def one_step() -> Any:
        holder["state"] = step(holder["state"], images, labels, mask)
        return holder["state"].sums

    timed(one_step, warmup)
    train_times = timed(one_step, steps)
    params, rest = holder["state"].params, holder["state"].rest
    predict = train.predict.lower(params, rest, images).compile()
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
    )


def describe_device() -> str:
    import jax

    devices = jax.devices()
    kind = devices[0].device_kind
    return f"{len(devices)} x {kind}" if len(devices) > 1 else kind
