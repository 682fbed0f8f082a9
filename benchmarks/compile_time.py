"""Where the time of `netspec compile SPEC` goes, command by command and phase by phase.

    python benchmarks/compile_time.py [SPEC] [--repeats 5]

Whole commands (fresh interpreters, median of `repeats`): the interpreter alone; `netspec
compile --no-check`; `netspec compile` with the Flax check cache off (every run traces the
module); `netspec compile` with a warm check cache. Then one run's phases, timed in-process in
the order the command runs them: importing netspec's CLI, reading and resolving the spec,
analysing it, rendering the table, importing JAX and Flax, and the abstract Flax check.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def command_seconds(argv: list[str], repeats: int, env: dict[str, str]) -> float:
    """Median wall seconds of running `argv` in a fresh process."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        subprocess.run(argv, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, check=True)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def phases(spec: str) -> list[tuple[str, float]]:
    """Seconds of each phase of one checked compile, in this (fresh) process."""
    marks = [("start", time.perf_counter())]

    def mark(name: str) -> None:
        marks.append((name, time.perf_counter()))

    from netspec import cli  # noqa: F401  (the command's own import)

    mark("import netspec's CLI (no JAX)")
    from netspec.compiled import compile_with

    mark("import the compiler")
    compiled = compile_with(spec, [], None, None)
    mark("read, validate, resolve and analyse the spec")
    from netspec.table import print_report

    with contextlib.redirect_stdout(io.StringIO()):
        print_report(compiled.report)
    mark("render the table")
    import jax  # noqa: F401
    from flax import nnx  # noqa: F401

    mark("import JAX and Flax")
    from netspec.check import check_against_flax

    check_against_flax(compiled)
    mark("trace the Flax module abstractly (the check)")
    return [(name, t - marks[i][1]) for i, (name, t) in enumerate(marks[1:])]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("spec", nargs="?", default="specs/googlenet.yaml")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--phases-only", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.phases_only:
        for name, seconds in phases(args.spec):
            print(f"| {name} | {seconds:.3f} |")
        return

    netspec = [sys.executable, "-m", "netspec", "compile", args.spec]
    with tempfile.TemporaryDirectory() as cache:
        warm = {**os.environ, "NETSPEC_CACHE": cache}
        subprocess.run(netspec, cwd=ROOT, env=warm, stdout=subprocess.DEVNULL, check=True)
        off = {**os.environ, "NETSPEC_CACHE": "off"}
        rows = [
            ("python -c pass (the interpreter alone)", [sys.executable, "-c", "pass"], off),
            ("netspec compile --no-check", [*netspec, "--no-check"], off),
            ("netspec compile (check cache off: traces the module)", netspec, off),
            ("netspec compile (check cached from an earlier run)", netspec, warm),
        ]
        print(f"| command ({args.spec}) | median s |\n| --- | --- |")
        for what, argv, env in rows:
            print(f"| {what} | {command_seconds(argv, args.repeats, env):.2f} |", flush=True)
    print("\n| phase of one checked compile, in process | s |\n| --- | --- |", flush=True)
    subprocess.run(
        [sys.executable, __file__, args.spec, "--phases-only"],
        cwd=ROOT,
        env={**os.environ, "NETSPEC_CACHE": "off"},
        check=True,
    )


if __name__ == "__main__":
    main()
