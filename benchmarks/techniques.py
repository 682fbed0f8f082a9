"""Each speed technique of the train step measured before and after, side by side.

    python benchmarks/techniques.py [--only donate split sync dtype prefetch layout]
                                    [--rounds 5] [--steps 5]

Every comparison builds both variants in one process and alternates them round by round; the
median round is reported with the ratio after / before (below 1: the technique is faster).

- donate: the train step donating its state buffers (netspec's default) vs copying them;
  also XLA's own memory accounting of the compiled step (bytes aliased, peak temporaries).
- split: the whole step in one jit vs gradients in one jit and the optimizer update in another.
- sync: reading the loss on the host after every step vs only at the end (netspec reads
  metrics at most 4 times a second).
- dtype: bfloat16 compute with float32 parameters vs float32 throughout.
- prefetch: batches from the real pipeline put on the device two steps ahead
  (`prefetch_to_device`) vs put just before their step, with a host metrics read every step as
  a progress bar would do at high step rates.
- layout: a ResNet-50 3x3 convolution (forward and backward) in NHWC (netspec's layout) vs
  NCHW.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx

import netspec
from netspec.train.datasets import load_dataset
from netspec.train.pipeline import Pipeline
from netspec.train.prefetch import prefetch_to_device
from netspec.train.steps import cross_entropy, initial_state, make_steps

Timer = Callable[[int], float]
"""Runs n steps, returns seconds per step (device waited for)."""


def alternate(before: Timer, after: Timer, rounds: int, steps: int) -> tuple[float, float]:
    """Median seconds per step of each, in alternating rounds after one warm-up round."""
    before(1)
    after(1)
    times: tuple[list[float], list[float]] = ([], [])
    for _ in range(rounds):
        times[0].append(before(steps))
        times[1].append(after(steps))
    return statistics.median(times[0]), statistics.median(times[1])


def synthetic(compiled: netspec.Compiled, batch: int) -> tuple[jax.Array, ...]:
    shape = (batch, *compiled.graph.input_shape)
    classes = compiled.report.output_shape[2]
    images = jax.random.normal(jax.random.key(0), shape)
    labels = jax.random.randint(jax.random.key(1), (batch,), 0, classes)
    return images, labels, jnp.ones((batch,))


def step_timer(model: str, batch: int, *, donate: bool = True, dtype=None, sync: bool = False):
    """A Timer over netspec's train step, and the compiled step itself."""
    compiled = netspec.compile(model)
    tx = optax.sgd(0.01, momentum=0.9)
    graphdef, state = initial_state(compiled.build(seed=0, dtype=dtype), tx)
    train = make_steps(graphdef, tx, {"main": 1.0}, 0.0, donate=donate).train
    data = synthetic(compiled, batch)
    step = train.lower(state, *data).compile()
    holder = {"state": state}

    def run(n: int) -> float:
        start = time.perf_counter()
        for _ in range(n):
            holder["state"] = step(holder["state"], *data)
            if sync:
                float(holder["state"].sums["loss"])
        jax.block_until_ready(holder["state"].sums)
        return (time.perf_counter() - start) / n

    return run, step


def split_timer(model: str, batch: int) -> Timer:
    """Gradients and the optimizer update as two jitted functions (the 'before')."""
    compiled = netspec.compile(model)
    tx = optax.sgd(0.01, momentum=0.9)
    graphdef, params, rest = nnx.split(compiled.build(seed=0), nnx.Param, ...)
    opt_state = tx.init(params)
    images, labels, mask = synthetic(compiled, batch)

    @jax.jit
    def grads_of(params, rest):
        def loss_fn(params):
            model = nnx.merge(graphdef, params, rest, copy=True)
            logits = model(images, train=True)
            _, _, new_rest = nnx.split(model, nnx.Param, ...)
            return cross_entropy(logits, labels, mask, 0.0).mean(), new_rest

        return jax.grad(loss_fn, has_aux=True)(params)

    @jax.jit
    def update(grads, opt_state, params):
        updates, opt_state = tx.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), opt_state

    holder = {"params": params, "rest": rest, "opt": opt_state}

    def run(n: int) -> float:
        start = time.perf_counter()
        for _ in range(n):
            grads, holder["rest"] = grads_of(holder["params"], holder["rest"])
            holder["params"], holder["opt"] = update(grads, holder["opt"], holder["params"])
        jax.block_until_ready(holder["params"])
        return (time.perf_counter() - start) / n

    return run


def prefetch_timer(model: str, batch: int, ahead: int) -> Timer:
    """The train loop fed by the real pipeline (built-in digits at the model's input size)."""
    compiled = netspec.compile(model)
    shape = compiled.graph.input_shape
    data = load_dataset("digits", shape)
    pipeline = Pipeline(data.train, shape, batch, train=True, workers=2)
    tx = optax.sgd(0.01, momentum=0.9)
    graphdef, state = initial_state(compiled.build(seed=0), tx)
    train = make_steps(graphdef, tx, {"main": 1.0}, 0.0).train
    holder = {"state": state, "epoch": 0}

    def put(batch):
        return tuple(jax.device_put(np.asarray(a)) for a in batch)

    def run(n: int) -> float:
        done = 0
        start = time.perf_counter()
        while done < n:
            batches = prefetch_to_device(pipeline.epoch(holder["epoch"]), put, ahead)
            for images, labels, mask in batches:
                holder["state"] = train(holder["state"], images, labels, mask)
                float(holder["state"].sums["loss"])
                done += 1
                if done == n:
                    batches.close()
                    break
            holder["epoch"] += 1
        return (time.perf_counter() - start) / n

    return run


def layout_timer(layout: str, batch: int) -> Timer:
    """conv3x3 64->64 at 56x56 (ResNet-50 conv2_x), forward and both gradients."""
    key = jax.random.key(0)
    x = jax.random.normal(key, (batch, 56, 56, 64) if layout == "NHWC" else (batch, 64, 56, 56))
    w = jax.random.normal(key, (3, 3, 64, 64) if layout == "NHWC" else (64, 64, 3, 3))
    numbers = ("NHWC", "HWIO", "NHWC") if layout == "NHWC" else ("NCHW", "OIHW", "NCHW")

    @jax.jit
    def step(x, w):
        def loss(x, w):
            y = jax.lax.conv_general_dilated(x, w, (1, 1), "SAME", dimension_numbers=numbers)
            return jnp.sum(y * y)

        return jax.grad(loss, argnums=(0, 1))(x, w)

    def run(n: int) -> float:
        start = time.perf_counter()
        for _ in range(n):
            out = step(x, w)
        jax.block_until_ready(out)
        return (time.perf_counter() - start) / n

    return run


def memory_line(step) -> str:
    stats = step.memory_analysis()
    if stats is None:
        return "no memory analysis on this backend"
    return (
        f"aliased {stats.alias_size_in_bytes / 1e6:.1f} MB, outputs "
        f"{stats.output_size_in_bytes / 1e6:.1f} MB, "
        f"temporaries {stats.temp_size_in_bytes / 1e6:.1f} MB"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    choices = ["donate", "split", "sync", "dtype", "prefetch", "layout"]
    parser.add_argument("--only", nargs="+", default=choices, choices=choices)
    parser.add_argument("--model", default="resnet18_cifar")
    parser.add_argument("--small-model", default="lenet5")
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--steps", type=int, default=5)
    args = parser.parse_args()
    device = jax.devices()[0]
    print(f"{device.platform} ({device.device_kind}); batch {args.batch}\n")
    print("| technique | model | before ms/step | after ms/step | after / before | note |")
    print("| --- | --- | --- | --- | --- | --- |")
    r, s, m, small = args.rounds, args.steps, args.model, args.small_model

    def row(what: str, model: str, pair: tuple[float, float], note: str = "") -> None:
        before, after = pair
        print(
            f"| {what} | {model} | {before * 1e3:.2f} | {after * 1e3:.2f} | "
            f"{after / before:.3f} | {note} |",
            flush=True,
        )

    if "donate" in args.only:
        copied, copied_step = step_timer(m, args.batch, donate=False)
        donated, donated_step = step_timer(m, args.batch, donate=True)
        note = f"copied: {memory_line(copied_step)}; donated: {memory_line(donated_step)}"
        row("donated state buffers", m, alternate(copied, donated, r, s), note)
    if "split" in args.only:
        one, _ = step_timer(small, args.batch)
        row(
            "one jit for the whole step",
            small,
            alternate(split_timer(small, args.batch), one, r, s),
        )
        one, _ = step_timer(m, args.batch)
        row("one jit for the whole step", m, alternate(split_timer(m, args.batch), one, r, s))
    if "sync" in args.only:
        synced, _ = step_timer(small, args.batch, sync=True)
        free, _ = step_timer(small, args.batch)
        row("no host read per step", small, alternate(synced, free, r, 4 * s))
    if "dtype" in args.only:
        fp32, _ = step_timer(m, args.batch)
        bf16, _ = step_timer(m, args.batch, dtype=jnp.bfloat16)
        row("bfloat16 compute, float32 params", m, alternate(fp32, bf16, r, s))
    if "prefetch" in args.only:
        inline = prefetch_timer(small, args.batch, 0)
        ahead = prefetch_timer(small, args.batch, 2)
        row("prefetch 2 batches to device", small, alternate(inline, ahead, r, 4 * s))
    if "layout" in args.only:
        nchw, nhwc = layout_timer("NCHW", args.batch), layout_timer("NHWC", args.batch)
        row("NHWC instead of NCHW", "conv 3x3 64 at 56x56", alternate(nchw, nhwc, r, s))


if __name__ == "__main__":
    main()
