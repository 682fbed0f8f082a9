"""Rematerialisation (`training.remat`, `netspec bench --remat`): the train step's memory (XLA's
analysis) and time with and without it, in one process.

    python benchmarks/remat.py resnet18_cifar:32 googlenet:8 [--modes off,blocks,rows]
        [--rounds 5] [--steps 5] [--json]

Each spec's train step (`netspec bench`'s: SGD with momentum, synthetic data, buffers donated)
is compiled once per mode; then `rounds` rounds time `steps` steps of each mode in turn (a
shared machine's load falls on every mode alike), each step waited for. Reported per mode: XLA's
argument, temporary and peak bytes, the median step time over every timed step, and its ratio to
`off` within each round (the median of the rounds' ratios).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import statistics
import time


def measure(spec: str, batch: int, modes: list[str], rounds: int, steps: int) -> dict:
    import jax

    from netspec.bench import Setup, timed
    from netspec.compiled import compile_with
    from netspec.memory import step_memory

    compiled = compile_with(spec, [])
    runs = {}
    for mode in modes:
        remat = None if mode == "off" else mode
        setup = Setup(dataclasses.replace(compiled, remat=remat))
        started = time.perf_counter()
        step = setup.lower(batch).compile()
        compile_s = time.perf_counter() - started
        images, labels, mask = setup.batch(batch)
        holder = {"state": setup.state}

        def one(step=step, holder=holder, images=images, labels=labels, mask=mask):
            holder["state"] = step(holder["state"], images, labels, mask)
            return holder["state"].sums

        timed(one, 2)  # warm-up
        runs[mode] = {"memory": step_memory(step), "compile_s": compile_s, "run": one}
    times: dict[str, list[float]] = {mode: [] for mode in modes}
    ratios: dict[str, list[float]] = {mode: [] for mode in modes}
    for _ in range(rounds):
        medians = {}
        for mode in modes:
            seconds = timed(runs[mode]["run"], steps)
            times[mode] += seconds
            medians[mode] = statistics.median(seconds)
        for mode in modes:
            ratios[mode].append(medians[mode] / medians[modes[0]])
    result = {"spec": spec, "batch": batch, "device": jax.devices()[0].device_kind, "modes": {}}
    for mode in modes:
        memory = runs[mode]["memory"]
        result["modes"][mode] = {
            "argument_mb": memory.argument_bytes / 1e6,
            "temp_mb": memory.temp_bytes / 1e6,
            "peak_mb": memory.peak_bytes / 1e6,
            "compile_s": runs[mode]["compile_s"],
            "ms_per_step": statistics.median(times[mode]) * 1e3,
            "time_ratio": statistics.median(ratios[mode]),
            "round_ratios": ratios[mode],
        }
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="+", metavar="SPEC:BATCH")
    parser.add_argument("--modes", default="off,blocks")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    modes = args.modes.split(",")
    assert modes[0] == "off", "the first mode is the reference: off"
    results = []
    for item in args.runs:
        spec, _, batch = item.rpartition(":")
        result = measure(spec, int(batch), modes, args.rounds, args.steps)
        results.append(result)
        if args.json:
            continue
        print(f"{spec} batch {batch} on {result['device']}:")
        print(f"  {'remat':<7} {'temp MB':>9} {'peak MB':>9} {'ms/step':>9} {'x off':>7}")
        for mode, row in result["modes"].items():
            print(
                f"  {mode:<7} {row['temp_mb']:>9.1f} {row['peak_mb']:>9.1f} "
                f"{row['ms_per_step']:>9.1f} {row['time_ratio']:>7.2f}"
            )
    if args.json:
        print(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
