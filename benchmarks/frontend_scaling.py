"""How the front end's time grows with the number of rows: a ratio, not a timed test.

    python benchmarks/frontend_scaling.py [--small 1999] [--large 19990] [--repeats 3]

For each size it writes a spec of that many rows (unnamed and named rows, a block called
from a tenth of them, variables and expressions), then times, in this process, each phase:
loading the YAML, parsing it into the SpecTree, expanding it into the Graph, analysing it, and
emitting the Flax source (best of `repeats`). Linear phases give a ratio near large/small; the
issue's target is the whole front end within 10x for 10x the rows. It also times how soon a spec
with 90,000 rows (beyond the 20,000-row cap) is refused.
"""

from __future__ import annotations

import argparse
import gc
import time

from netspec.analyze import analyze
from netspec.emit import generate
from netspec.errors import SpecError
from netspec.expand import expand
from netspec.load import load_yaml
from netspec.parse import parse_spec
from netspec.specfile import paused_gc


def spec_text(rows: int) -> str:
    """A spec of `rows` rows (and one block row) on a 4x4x4 input that keeps its shape: 3x3
    same convs, a tenth of them calls of a one-row block, a third unnamed; one layer per row."""
    lines = [
        "name: scaling",
        "input: 4x4x4",
        "vars: {width: 4, double: '${width * 2}'}",
        "blocks:",
        "  pair:",
        "    args: [w]",
        "    layers:",
        "      - a: conv 3x3 ${w} same",
        "layers:",
    ]
    for index in range(rows):
        if index % 10 == 0:
            lines.append(f"  - block{index}: pair $width")
        elif index % 3 == 0:
            lines.append("  - conv 3x3 $width same")  # unnamed: auto-named conv_N
        else:
            lines.append(f"  - row{index}: conv 3x3 ${{double // 2}} same relu")
    return "\n".join(lines) + "\n"


def phase_seconds(text: str, repeats: int) -> dict[str, float]:
    """Best-of-`repeats` seconds of each front-end phase on `text`."""
    best: dict[str, float] = {}
    for _ in range(repeats):
        gc.collect()
        with paused_gc():  # as `netspec compile` runs the front end
            marks = phase_marks(text)
        names = ("load YAML", "parse", "expand", "analyse", "emit Flax source")
        for name, start, end in zip(names, marks, marks[1:], strict=False):
            best[name] = min(best.get(name, float("inf")), end - start)
    best["whole front end"] = sum(best.values())
    return best


def phase_marks(text: str) -> list[float]:
    """perf_counter() before and after each phase of one front-end run."""
    marks = [time.perf_counter()]
    data = load_yaml(text.encode(), "scaling.yaml")
    marks.append(time.perf_counter())
    tree = parse_spec(data, "scaling.yaml", text)
    marks.append(time.perf_counter())
    graph = expand(tree)
    marks.append(time.perf_counter())
    report = analyze(graph)
    marks.append(time.perf_counter())
    generate(tree, graph, report)
    marks.append(time.perf_counter())
    return marks


def refusal_seconds(rows: int) -> tuple[float, str]:
    """Seconds until a spec of `rows` rows is refused, and the message."""
    text = spec_text(rows)
    start = time.perf_counter()
    try:
        parse_spec(load_yaml(text.encode(), "big.yaml"), "big.yaml", text)
    except SpecError as error:
        return time.perf_counter() - start, error.message
    return time.perf_counter() - start, "accepted"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--small", type=int, default=1999)
    parser.add_argument("--large", type=int, default=19990)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    small = phase_seconds(spec_text(args.small), args.repeats)
    large = phase_seconds(spec_text(args.large), args.repeats)
    print(f"| phase | {args.small:,} rows (s) | {args.large:,} rows (s) | ratio |")
    print("|---|---:|---:|---:|")
    for name in small:
        print(
            f"| {name} | {small[name]:.3f} | {large[name]:.3f} | {large[name] / small[name]:.1f} |"
        )
    seconds, message = refusal_seconds(90_000)
    print(f"\n90,000 rows refused in {seconds:.2f} s: {message}")


if __name__ == "__main__":
    main()
