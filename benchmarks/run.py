"""netspec-compiled models against hand-written Flax NNX, timed side by side in one process.

    python benchmarks/run.py [--models lenet5 resnet18_cifar] [--batch 64] [--rounds 7]
                             [--steps 10] [--dtype float32] [--write BENCHMARKS.md]

Both models go through the identical jitted train step (netspec.train.steps: forward, loss,
backward, SGD with momentum, batch-norm statistics, donated buffers), so any difference is
the model code. Rounds alternate (compiled, hand-written, compiled, ...) so that machine noise
hits both alike; each round times `steps` steps and the median round is reported.
"""

from __future__ import annotations

import argparse
import platform
import statistics
import sys
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import optax
from flax import nnx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from handwritten_flax import MODELS

import netspec
from netspec.train.steps import initial_state, make_steps

ROOT = Path(__file__).resolve().parent.parent


def count(model: nnx.Module) -> int:
    return sum(x.size for x in jax.tree.leaves(nnx.state(model, nnx.Param)))


class Runner:
    """One model's compiled train step on fixed synthetic data."""

    def __init__(self, model: nnx.Module, batch: int, shape: tuple, classes: int) -> None:
        tx = optax.sgd(0.01, momentum=0.9)
        graphdef, self.state = initial_state(model, tx)
        steps = make_steps(graphdef, tx, {"main": 1.0}, 0.0)
        self.images = jax.random.normal(jax.random.key(0), (batch, *shape))
        self.labels = jax.random.randint(jax.random.key(1), (batch,), 0, classes)
        self.mask = jnp.ones((batch,))
        start = time.perf_counter()
        self.step = steps.train.lower(self.state, self.images, self.labels, self.mask).compile()
        self.compile_s = time.perf_counter() - start

    def run(self, steps: int) -> float:
        """Seconds per step over `steps` steps (waited for at the end)."""
        start = time.perf_counter()
        for _ in range(steps):
            self.state = self.step(self.state, self.images, self.labels, self.mask)
        jax.block_until_ready(self.state.sums)
        return (time.perf_counter() - start) / steps


def compare(name: str, batch: int, rounds: int, steps: int, dtype: str) -> dict:
    compiled = netspec.compile(name, dtype=None if dtype == "float32" else dtype)
    ours = compiled.build(seed=0)
    theirs = MODELS[name](rngs=nnx.Rngs(0))
    if count(ours) != count(theirs):
        raise SystemExit(f"{name}: {count(ours):,} parameters vs hand-written {count(theirs):,}")
    shape, classes = compiled.graph.input_shape, compiled.report.output_shape[2]
    runners = {
        "netspec": Runner(ours, batch, shape, classes),
        "flax": Runner(theirs, batch, shape, classes),
    }
    for runner in runners.values():
        runner.run(3)  # warm-up
    times: dict[str, list[float]] = {k: [] for k in runners}
    for _ in range(rounds):
        for key, runner in runners.items():
            times[key].append(runner.run(steps))
    medians = {k: statistics.median(v) for k, v in times.items()}
    return {
        "model": name,
        "params": count(ours),
        "batch": batch,
        "dtype": dtype,
        "netspec_ms": medians["netspec"] * 1e3,
        "flax_ms": medians["flax"] * 1e3,
        "ratio": medians["netspec"] / medians["flax"],
        "netspec_images_per_sec": batch / medians["netspec"],
        "compile_s": runners["netspec"].compile_s,
    }


def machine() -> str:
    cpu = platform.processor() or "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    device = jax.devices()[0]
    return (
        f"{device.platform} backend ({device.device_kind}), {cpu}, "
        f"{len(jax.devices())} device(s); jax {jax.__version__}, python "
        f"{platform.python_version()}"
    )


def table(results: list[dict]) -> str:
    lines = [
        "| model | params | batch | dtype | netspec ms/step | hand-written Flax ms/step "
        "| ratio | netspec images/s | compile s |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for r in results:
        lines.append(
            f"| {r['model']} | {r['params']:,} | {r['batch']} | {r['dtype']} | "
            f"{r['netspec_ms']:.2f} | {r['flax_ms']:.2f} | {r['ratio']:.3f} | "
            f"{r['netspec_images_per_sec']:,.0f} | {r['compile_s']:.1f} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", nargs="+", default=list(MODELS))
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--dtype", default="float32")
    parser.add_argument("--write", type=Path, help="also write this markdown file")
    args = parser.parse_args()
    results = [compare(m, args.batch, args.rounds, args.steps, args.dtype) for m in args.models]
    text = table(results)
    print(machine())
    print(text)
    if args.write:
        args.write.write_text(text + "\n")


if __name__ == "__main__":
    main()
