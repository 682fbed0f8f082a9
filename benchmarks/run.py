"""netspec-compiled models against hand-written Flax NNX, Keras 3 and PyTorch, side by side.

    python benchmarks/run.py [--models lenet5 resnet18_cifar googlenet resnet50]
                             [--frameworks netspec flax keras torch torch.compile]
                             [--batch 32] [--dtype float32|bfloat16] [--rounds 5] [--steps 5]
                             [--write FILE.md] [--json FILE.json]

Every implementation runs the same training step: forward in training mode, softmax
cross-entropy (plus 0.3 x each auxiliary head for GoogLeNet), backward, SGD with momentum 0.9,
batch-norm statistics; same batch of synthetic data, same precision. netspec and hand-written
Flax go through the identical jitted step (netspec.train.steps, buffers donated), so their
difference is the model code; Keras runs its own compiled `fit` step (handwritten_keras.py),
PyTorch eager and `torch.compile` their own loops (handwritten_torch.py). Parameter counts must
match netspec's or the model is not compared.

Each implementation lives in its own worker process (so no framework's idle thread pool
competes with another's work). Rounds alternate between them, each timing `steps` steps, the
order rotating from round to round, so machine noise hits all alike; the median round is
reported, and ratios are netspec's median over the other's (below 1: netspec is faster).
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import json
import multiprocessing
import os
import platform
import statistics
import sys
import time
import traceback
from collections.abc import Callable
from importlib import metadata
from pathlib import Path
from typing import Any, Protocol

import jax
import jax.numpy as jnp
import optax
from flax import nnx

sys.path.insert(0, str(Path(__file__).resolve().parent))

import netspec
from netspec.train.steps import initial_state, make_steps

MODELS = ("lenet5", "resnet18_cifar", "googlenet", "resnet50")
FRAMEWORKS = ("netspec", "flax", "keras", "torch", "torch.compile")


class Runner(Protocol):
    """One implementation's train step on fixed synthetic data (see the module docstring)."""

    label: str
    params: int
    compile_s: float

    def run(self, steps: int) -> float:
        """Seconds per step over `steps` steps, the device waited for at the end."""
        ...


def count_params(model: nnx.Module) -> int:
    return sum(x.size for x in jax.tree.leaves(nnx.state(model, nnx.Param)))


class FlaxRunner:
    """A Flax NNX module in netspec's jitted train step (the one `netspec train` runs)."""

    def __init__(self, label: str, model: nnx.Module, batch: int, shape: tuple, classes: int):
        self.label = label
        self.params = count_params(model)
        tx = optax.sgd(0.01, momentum=0.9)
        graphdef, self.state = initial_state(model, tx)
        weights = getattr(model, "loss_weights", None) or {"main": 1.0, "aux1": 0.3, "aux2": 0.3}
        steps = make_steps(graphdef, tx, weights, 0.0)
        self.images = jax.random.normal(jax.random.key(0), (batch, *shape))
        self.labels = jax.random.randint(jax.random.key(1), (batch,), 0, classes)
        self.mask = jnp.ones((batch,))
        start = time.perf_counter()
        self.step = steps.train.lower(self.state, self.images, self.labels, self.mask).compile()
        self.compile_s = time.perf_counter() - start

    def run(self, steps: int) -> float:
        start = time.perf_counter()
        for _ in range(steps):
            self.state = self.step(self.state, self.images, self.labels, self.mask)
        jax.block_until_ready(self.state.sums)
        return (time.perf_counter() - start) / steps


def jax_dtype(dtype: str) -> Any:
    return None if dtype == "float32" else jnp.dtype(dtype)


def netspec_runner(model: str, batch: int, dtype: str) -> Runner:
    compiled = netspec.compile(model)
    built = compiled.build(seed=0, dtype=jax_dtype(dtype))
    classes = compiled.report.output_shape[2]
    return FlaxRunner("netspec", built, batch, compiled.graph.input_shape, classes)


def flax_runner(model: str, batch: int, dtype: str) -> Runner:
    from handwritten_flax import MODELS as FLAX_MODELS

    compiled = netspec.compile(model)
    built = FLAX_MODELS[model](dtype=jax_dtype(dtype), rngs=nnx.Rngs(0))
    classes = compiled.report.output_shape[2]
    return FlaxRunner("flax", built, batch, compiled.graph.input_shape, classes)


def module_runner(module: str, **options: Any) -> Callable[[str, int, str], Runner]:
    """A runner from a benchmarks module's `make_runner`, imported only when used."""

    def make(model: str, batch: int, dtype: str) -> Runner:
        return importlib.import_module(module).make_runner(model, batch, dtype, **options)

    return make


MAKERS: dict[str, Callable[[str, int, str], Runner]] = {
    "netspec": netspec_runner,
    "flax": flax_runner,
    "keras": module_runner("handwritten_keras"),
    # PyTorch runs channels-last on a GPU (cuDNN's tensor-core kernels), NCHW on a CPU.
    "torch": module_runner("handwritten_torch", compiled=False),
    "torch.compile": module_runner("handwritten_torch", compiled=True),
}


class RemoteRunner:
    """A Runner living in its own process, driven over a pipe. Each implementation gets a
    process so that one framework's idle threads (PyTorch's OpenMP pool spins after each op,
    XLA has its own pool) never compete with another's work: rounds still alternate, but only
    the process being timed is busy."""

    def __init__(self, name: str, model: str, batch: int, dtype: str) -> None:
        context = multiprocessing.get_context("spawn")
        self.conn, child = context.Pipe()
        self.process = context.Process(
            target=serve, args=(child, name, model, batch, dtype), daemon=True
        )
        self.process.start()
        child.close()
        reply = self._receive()
        self.label, self.params, self.compile_s = (
            reply["label"],
            reply["params"],
            reply["compile_s"],
        )

    def _receive(self) -> dict:
        try:
            reply = self.conn.recv()
        except EOFError:
            self.process.join()
            raise RuntimeError(f"worker exited with code {self.process.exitcode}") from None
        if "error" in reply:
            raise RuntimeError(reply["error"])
        return reply

    def run(self, steps: int) -> float:
        self.conn.send(steps)
        return self._receive()["seconds"]

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.conn.send(None)
        self.process.join(timeout=60)
        if self.process.is_alive():
            self.process.kill()


def serve(conn: Any, name: str, model: str, batch: int, dtype: str) -> None:
    """Worker process: build one runner, then time `steps` on request until told to stop."""
    try:
        runner = MAKERS[name](model, batch, dtype)
    except Exception as error:  # reported to the parent as "did not work"
        traceback.print_exc(file=sys.stderr)
        conn.send({"error": f"{type(error).__name__}: {error}".splitlines()[0][:200]})
        return
    conn.send({"label": runner.label, "params": runner.params, "compile_s": runner.compile_s})
    while (steps := conn.recv()) is not None:
        conn.send({"seconds": runner.run(steps)})


def compare(
    model: str,
    frameworks: list[str],
    batch: int,
    dtype: str,
    rounds: int,
    steps: int,
    in_process: bool = False,
):
    """Median seconds per step of each framework on `model`, with what failed and why.
    `in_process` runs every implementation in this process instead (JAX-only comparisons:
    one process, one XLA runtime, nothing between them but the model code)."""
    expected = netspec.compile(model).report.params
    runners: dict[str, Any] = {}
    failed: dict[str, str] = {}

    def start(name: str) -> Any:
        if in_process:
            return MAKERS[name](model, batch, dtype)
        return RemoteRunner(name, model, batch, dtype)

    def close(runner: Any) -> None:
        if isinstance(runner, RemoteRunner):
            runner.close()

    try:
        for name in frameworks:
            try:
                runner = start(name)
            except RuntimeError as error:
                failed[name] = str(error)
                continue
            runners[name] = runner
            if runner.params != expected:
                failed[name] = f"{runner.params:,} parameters, netspec has {expected:,}"
                close(runners.pop(name))
        for runner in runners.values():
            runner.run(2)  # warm-up after compilation
        times: dict[str, list[float]] = {name: [] for name in runners}
        names = list(runners)
        for round_ in range(rounds):
            # Rotate who goes first: each implementation follows every other one equally often
            # (whatever one leaves behind, warm caches or spinning threads, hits all alike).
            shift = round_ % len(names)
            for name in names[shift:] + names[:shift]:
                times[name].append(runners[name].run(steps))
    finally:
        for runner in runners.values():
            close(runner)
    return {
        "model": model,
        "params": expected,
        "batch": batch,
        "dtype": dtype,
        "ms": {name: statistics.median(t) * 1e3 for name, t in times.items()},
        "compile_s": {name: r.compile_s for name, r in runners.items()},
        "failed": failed,
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
    versions = []
    for name in ("jax", "flax", "keras", "torch"):
        with contextlib.suppress(metadata.PackageNotFoundError):
            versions.append(f"{name} {metadata.version(name)}")
    return (
        f"{device.platform} ({device.device_kind}), {cpu}, {os.cpu_count()} CPU cores; "
        f"{', '.join(versions)}, python {platform.python_version()}"
    )


def table(results: list[dict], frameworks: list[str]) -> str:
    others = [f for f in frameworks if f != "netspec"]
    head = ["model", "params", "batch", "dtype"] + [f"{f} ms/step" for f in frameworks]
    head += [f"netspec / {f}" for f in others] + ["netspec images/s"]
    lines = ["| " + " | ".join(head) + " |", "|" + " --- |" * len(head)]
    for r in results:
        ms = r["ms"]
        cells = [r["model"], f"{r['params']:,}", str(r["batch"]), r["dtype"]]
        cells += [f"{ms[f]:.1f}" if f in ms else "did not work" for f in frameworks]
        ours = ms.get("netspec")
        cells += [f"{ours / ms[f]:.3f}" if ours and f in ms else "–" for f in others]
        cells.append(f"{r['batch'] / ours * 1e3:,.0f}" if ours else "–")
        lines.append("| " + " | ".join(cells) + " |")
    notes = [
        f"- {r['model']} / {name}: {why}" for r in results for name, why in r["failed"].items()
    ]
    compile_lines = [
        f"- {r['model']}: "
        + ", ".join(f"{name} {seconds:.1f} s" for name, seconds in r["compile_s"].items())
        for r in results
    ]
    text = "\n".join(lines)
    text += "\n\nFirst step (compile) time:\n" + "\n".join(compile_lines)
    if notes:
        text += "\n\nDid not work:\n" + "\n".join(notes)
    return text


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", nargs="+", default=list(MODELS), choices=MODELS)
    parser.add_argument("--frameworks", nargs="+", default=list(FRAMEWORKS), choices=FRAMEWORKS)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--dtype", default="float32", choices=["float32", "bfloat16"])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument(
        "--in-process", action="store_true", help="no worker processes (JAX frameworks only)"
    )
    parser.add_argument("--write", type=Path, help="write the machine, command and table here")
    parser.add_argument("--json", type=Path, help="write the raw results here")
    args = parser.parse_args()
    frameworks = ["netspec", *[f for f in args.frameworks if f != "netspec"]]
    results = []
    for model in args.models:
        results.append(
            compare(
                model, frameworks, args.batch, args.dtype, args.rounds, args.steps, args.in_process
            )
        )
        print(
            f"{model}: " + ", ".join(f"{k} {v:.1f} ms" for k, v in results[-1]["ms"].items()),
            file=sys.stderr,
            flush=True,
        )
    command = "python benchmarks/run.py " + " ".join(sys.argv[1:])
    text = f"Machine: {machine()}\n\n```bash\n{command}\n```\n\n{table(results, frameworks)}\n"
    print(text)
    if args.write:
        args.write.write_text(text)
    if args.json:
        args.json.write_text(json.dumps({"machine": machine(), "results": results}, indent=1))


if __name__ == "__main__":
    main()
