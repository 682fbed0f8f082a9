"""`training.batch_size: auto`: the largest batch whose train step fits the device's memory.

As Ultralytics' AutoBatch, but from XLA's memory analysis of the compiled step instead of trial
runs: the run's own train step (its optimizer and its state, dtype, auxiliary heads, frozen rows
and remat) is compiled, not run, at batch sizes that are powers of two, and the largest whose
peak fits `memory.FITS_SHARE` of the device's memory is chosen. A backend that reports no memory
limit (CPU) is measured against the host's available RAM.

The search (`largest_fitting`): batch 1 must fit (else a SpecError), then batch 2; the last
two sizes that fit give the step's bytes per example, which point at the next power of two to
try, until one power fits and the next does not. It ends on the power of two that doubling from 1
would stop at (the step's peak grows with the batch), in fewer compilations (about five instead
of up to thirteen). No refinement between powers of two: at most half the memory is left unused,
and the batch stays a size that accelerators tile well and that the usual learning-rate recipes
assume.

With several devices the step is compiled as it runs, data parallel over all of them
(parameters replicated, the batch split, the gradient all-reduce included), and its peak per
device decides; the global batch is the per-device size times the device count. A
multi-process run needs a number. A resumed run keeps the batch it chose (config.json's
`training.batch_size`).
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .. import memory as memory_module
from ..errors import SpecError
from ..memory import FITS_SHARE, StepMemory, is_out_of_memory, step_memory

if TYPE_CHECKING:
    from ..compiled import Compiled
    from .config import TrainingConfig
    from .loop import PreparedRun, TrainOptions

MAX_AUTO_BATCH = 4096
"""The largest global batch `auto` chooses (it is also at most the training set)."""

Measure = Callable[[int], StepMemory | None]
"""Batch size -> XLA's memory analysis of the train step at that batch (None: XLA ran out of
memory compiling it)."""


@dataclass(frozen=True)
class AutoBatch:
    """The batch `auto` chose, and why. Sizes in bytes; `measured` maps each batch size
    compiled (per device) to its step's peak (None: out of memory when compiling)."""

    per_device: int
    devices: int
    peak_bytes: int
    memory_bytes: int
    memory_source: str
    """`device` (the device's own limit) or `host` (available RAM: no device limit reported)."""
    cap: int
    """The largest per-device power of two allowed (MAX_AUTO_BATCH and the training set)."""
    cap_reason: str
    """What sets the cap: `the training set of 1,618 examples` or `at most 4096`."""
    measured: dict[int, int | None]

    @property
    def batch(self) -> int:
        """The global batch: per device x devices."""
        return self.per_device * self.devices

    @property
    def usable_bytes(self) -> int:
        return int(FITS_SHARE * self.memory_bytes)

    @property
    def capped(self) -> bool:
        """Whether the cap, not the memory, stopped it."""
        return self.per_device == self.cap

    def to_json(self, config: TrainingConfig, dtype: str) -> dict[str, Any]:
        """config.json's `batch_size_auto` record."""
        return {
            "batch": self.batch,
            "per_device": self.per_device,
            "devices": self.devices,
            "peak_bytes": self.peak_bytes,
            "usable_bytes": self.usable_bytes,
            "memory_bytes": self.memory_bytes,
            "memory": "device" if self.memory_source == "device" else "host RAM available",
            "limited_by": "cap" if self.capped else "memory",
            "dtype": dtype,
            "optimizer": config.optimizer.name,
            "remat": config.remat,
            "measured_peak_bytes": {str(b): peak for b, peak in sorted(self.measured.items())},
        }

    def describe(self, config: TrainingConfig, dtype: str) -> str:
        """The line `netspec train` prints."""
        batch = (
            f"{self.batch} ({self.per_device} per device x {self.devices} devices)"
            if self.devices > 1
            else str(self.batch)
        )
        peak, usable = size_text(self.peak_bytes), size_text(self.usable_bytes)
        details = [f"step peak {peak} of {usable} usable", dtype, config.optimizer.name]
        if config.remat:
            details.append(f"remat {config.remat}")
        if self.capped:
            details.append(f"capped by {self.cap_reason}")
        line = f"batch_size auto: {batch} ({', '.join(details)})"
        if self.memory_source == "host":
            line += f"; the device reports no memory limit: {FITS_SHARE:.0%} of the available RAM"
        return line


def size_text(size: float) -> str:
    """Bytes as `9.1 GB`, `312.4 MB` or `64 kB`."""
    if size >= 1e9:
        return f"{size / 1e9:,.1f} GB"
    return f"{size / 1e6:,.1f} MB" if size >= 1e6 else f"{size / 1e3:,.0f} kB"


def host_memory() -> int | None:
    """Bytes of RAM this process could still take: /proc/meminfo's MemAvailable, less where a
    cgroup (v2) limit leaves less; else the free physical pages (os.sysconf); None if unknown."""
    available: int | None = None
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                available = int(line.split()[1]) * 1024  # kB
                break
    except (OSError, ValueError, IndexError):
        available = None
    try:
        limit = Path("/sys/fs/cgroup/memory.max").read_text().strip()
        used = int(Path("/sys/fs/cgroup/memory.current").read_text().strip())
        if limit != "max":
            left = max(int(limit) - used, 0)
            available = left if available is None else min(available, left)
    except (OSError, ValueError):
        pass
    if available is None:
        try:
            available = os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
        except (ValueError, OSError, AttributeError):
            return None
    return available


def memory_limit() -> tuple[int, str]:
    """(bytes, "device") where the device reports its memory, else (bytes, "host"): the host's
    available RAM (a CPU backend holds its buffers there)."""
    limit = memory_module.device_memory()
    if limit:
        return limit, "device"
    host = host_memory()
    if host:
        return host, "host"
    raise SpecError(
        "auto cannot tell how much memory this device has",
        field="training.batch_size",
        hint="give the batch size as a number",
    )


def largest_fitting(measure: Measure, usable: int, cap: int) -> tuple[int, dict[int, int | None]]:
    """The largest power of two up to `cap` (a power of two) whose step's peak (`measure`) is at
    most `usable` bytes, 0 if batch 1 does not fit; and the peak of each batch compiled (None:
    out of memory compiling).

    Between the largest power known to fit (`fitting`) and the smallest known not to (`failing`,
    at first 2 x cap), it tries the power of two that the last two fitting sizes extrapolate to
    (straight line through their peaks), kept strictly between the two; each try moves one of
    them, until `failing` is `2 x fitting`. With a peak that grows with the batch this is the
    power that doubling from 1 stops at, in fewer compilations."""
    peaks: dict[int, int | None] = {}

    def fits(batch: int) -> bool:
        if batch not in peaks:
            found = measure(batch)
            peaks[batch] = None if found is None else found.peak_bytes
        peak = peaks[batch]
        return peak is not None and peak <= usable

    if not fits(1):
        return 0, peaks
    if cap < 2 or not fits(2):
        return 1, peaks
    fitting, failing = 2, 2 * cap
    while 2 * fitting < failing:
        small, large = sorted(b for b, peak in peaks.items() if peak is not None and fits(b))[-2:]
        small_peak, large_peak = peaks[small], peaks[large]
        assert small_peak is not None and large_peak is not None
        per_example = max((large_peak - small_peak) / (large - small), 1.0)
        estimate = large + (usable - large_peak) / per_example
        batch = 2 * fitting
        while 2 * batch < failing and 2 * batch <= estimate:
            batch *= 2
        if fits(batch):
            fitting = batch
        else:
            failing = batch
    return fitting, peaks


def step_measure(
    compiled: Compiled, config: TrainingConfig, task: Any, devices: int = 1
) -> Measure:
    """XLA's memory analysis of the run's train step at a per-device batch size, compiled and
    not run; with `devices` > 1, the step over the first `devices` devices as `Parallel` runs
    it (state replicated, the batch split on `data`), whose analysis is per device.
    The step is made as `loop.fit` makes it: the config's optimizer (with frozen groups), the
    compiled spec's dtype and remat, batch norm frozen in frozen rows, the auxiliary heads'
    weights, `task`'s steps and sums (per image or per pixel); the state is shapes only. The
    learning-rate schedule does not change the memory: it is built for one step per epoch."""
    import jax
    import jax.numpy as jnp
    from flax import nnx

    from ..remat import apply_remat
    from .finetune import freeze_batchnorm, param_groups
    from .optim import build_optimizer
    from .steps import initial_state

    groups = param_groups(compiled, config)
    tx, _ = build_optimizer(config, 1, groups.labels(compiled) if groups.active else None)
    made: dict[str, Any] = {}

    def make_state() -> Any:
        # `compiled.build` without its initialisation program (a jit of its own, which cannot
        # run inside eval_shape): the constructor's defaults are the compiled dtypes.
        model = compiled.network_class()(rngs=nnx.Rngs(config.seed))
        if compiled.remat:
            apply_remat(model, compiled, compiled.remat)
        if groups.active:
            freeze_batchnorm(compiled, model, groups)
        made["graphdef"], state = initial_state(model, tx, task.zero_sums())
        made["weights"] = {**model.loss_weights, **config.aux_weights}
        return state

    state = jax.eval_shape(make_state)  # nothing allocated
    steps = task.steps(made["graphdef"], tx, made["weights"], config.label_smoothing)
    label_tail = tuple(getattr(task, "label_shape", ())) if task.per_pixel else ()
    input_shape = tuple(compiled.graph.input_shape)
    split: Any = None
    if devices > 1:
        import numpy as np
        from jax.sharding import Mesh, NamedSharding, PartitionSpec

        mesh = Mesh(np.array(jax.devices()[:devices]), ("data",))
        copies, split = (
            NamedSharding(mesh, PartitionSpec()),
            NamedSharding(mesh, PartitionSpec("data")),
        )
        state = jax.tree.map(
            lambda s: jax.ShapeDtypeStruct(s.shape, s.dtype, sharding=copies), state
        )

    def measure(batch: int) -> StepMemory | None:
        total = batch * devices

        def shaped(shape: tuple[int, ...], dtype: Any) -> Any:
            return jax.ShapeDtypeStruct((total, *shape), dtype, sharding=split)

        images = shaped(input_shape, jnp.float32)
        labels = shaped(label_tail, jnp.int32)
        mask = shaped((), jnp.float32)
        try:
            found = step_memory(steps.train.lower(state, images, labels, mask).compile())
        except Exception as error:
            if is_out_of_memory(error):
                return None
            raise
        if found is None:
            raise SpecError(
                f"auto needs XLA's memory analysis, which the "
                f"{jax.default_backend()} backend does not give",
                field="training.batch_size",
                hint="give the batch size as a number",
            )
        return found

    return measure


def choose(
    compiled: Compiled, config: TrainingConfig, task: Any, train_size: int, devices: int
) -> AutoBatch:
    """Measure the run's train step and choose its batch (`largest_fitting`): per device at most
    MAX_AUTO_BATCH and the training set, split over `devices`. SpecError if batch 1 does not
    fit."""
    limit, source = memory_limit()
    usable = int(FITS_SHARE * limit)
    most = min(MAX_AUTO_BATCH, train_size) // devices
    if most < 1:
        raise SpecError(
            f"auto needs at least one training example per device "
            f"({train_size} for {devices} devices)",
            field="training.batch_size",
        )
    cap = 1
    while cap * 2 <= most:
        cap *= 2
    reason = (
        f"the training set of {train_size:,} examples"
        if train_size < MAX_AUTO_BATCH
        else f"at most {MAX_AUTO_BATCH}"
    )
    measure = step_measure(compiled, config, task, devices)
    per_device, peaks = largest_fitting(measure, usable, cap)
    if per_device < 1:
        one = peaks.get(1)
        needs = (
            f"its train step needs {size_text(one)} at batch 1"
            if one is not None
            else "XLA ran out of memory compiling its train step at batch 1"
        )
        where = "of the device's memory" if source == "device" else "of the available RAM"
        raise SpecError(
            f"auto found no batch that fits: {needs}, and "
            f"{FITS_SHARE:.0%} {where} is {size_text(usable)}",
            field="training.batch_size",
            hint="try " + "; ".join(smaller_steps(compiled, config)),
        )
    peak = peaks[per_device]
    assert peak is not None
    return AutoBatch(per_device, devices, peak, limit, source, cap, reason, peaks)


def smaller_steps(compiled: Compiled, config: TrainingConfig) -> list[str]:
    """What could make the train step smaller, as options to try."""
    tries = []
    if (compiled.dtype or "float32") == "float32":
        tries.append("bfloat16 activations (--set training.dtype=bfloat16)")
    if not config.remat:
        tries.append("recomputing blocks' activations (--set training.remat=blocks)")
    elif config.remat == "blocks":
        tries.append("recomputing every row's activations (--set training.remat=rows)")
    tries.append("a smaller input size or network, or a device with more memory")
    return tries


def resumed_batch(options: TrainOptions) -> tuple[int, dict[str, Any] | None] | None:
    """A resumed run's batch size and `batch_size_auto` record, from its config.json; None
    when not resuming (or the run holds no batch size)."""
    if not options.resume or options.out is None:
        return None
    saved = options.run_config
    if saved is None:
        if not (options.out / "config.json").is_file():
            return None
        from .rundiff import run_config

        saved = run_config(options.out)
    batch = (saved.get("training") or {}).get("batch_size")
    if not isinstance(batch, int) or isinstance(batch, bool) or batch < 1:
        return None
    record = saved.get("batch_size_auto")
    return batch, record if isinstance(record, dict) else None


def settle(prepared: PreparedRun, report: Callable[[str], None]) -> PreparedRun:
    """`loop.fit`'s first step: the train step's memory options applied to a prepared run.
    `training.remat` goes to the compiled spec (its `build` checkpoints the rows);
    `training.batch_size: auto` becomes a number: a resumed run's own, else the one `choose`
    measures (said with `report`), with the batch's split over the devices
    (`prepared.parallel`) and config.json's record (`prepared.batch_size_auto`)."""
    import jax

    from .distributed import Parallel

    config = prepared.config
    compiled = prepared.compiled
    if (config.remat or None) != compiled.remat:
        compiled = dataclasses.replace(compiled, remat=config.remat or None)
    saved = resumed_batch(prepared.options)
    if config.batch_size != "auto":
        record = saved[1] if saved is not None and saved[0] == config.batch_size else None
        return dataclasses.replace(prepared, compiled=compiled, batch_size_auto=record)
    dtype = compiled.dtype or "float32"
    if saved is not None:
        batch, record = saved  # not measured again: the run's data order depends on it
        how = ", chosen when it started" if record else ""
        report(f"batch_size auto: {batch} (the run's own{how})")
    else:
        if jax.process_count() > 1:
            raise SpecError(
                "auto measures the step on one process's devices; a "
                "multi-process run needs a number",
                field="training.batch_size",
                hint="--set training.batch_size=N (a multiple of the device count)",
            )
        from .loop import PerImage

        task = prepared.task or PerImage(len(prepared.dataset.class_names))
        devices = jax.device_count()
        chosen = choose(compiled, config, task, len(prepared.dataset.train), devices)
        report(chosen.describe(config, dtype))
        batch, record = chosen.batch, chosen.to_json(config, dtype)
    return dataclasses.replace(
        prepared,
        compiled=compiled,
        config=config.model_copy(update={"batch_size": batch}),
        parallel=Parallel.create(batch),
        batch_size_auto=record,
    )


def provisional_batch(config: TrainingConfig) -> int:
    """`training.batch_size` for `Parallel.create` before `settle`: the number given, or for
    `auto` one example per device until `settle` measures the step."""
    import jax

    return jax.device_count() if config.batch_size == "auto" else int(config.batch_size)
