"""Proof by generation, the fast version: every generated spec (tests/specgen.py) is either
rejected with one SpecError located inside the file, or accepted, built and run, and then agrees
with the analysis row by row (parameters by path, shapes as the module saw them) with finite
outputs. Any other exception, or a disagreement, fails the test with the spec that caused it.

The long version is benchmarks/spec_campaign.py (thousands of specs, failures shrunk).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from types import SimpleNamespace

import pytest

import netspec

from .specgen import GeneratedSpec, Verdict, Writer, compare, generate, judge

pytestmark = pytest.mark.xdist_group("generated_specs")

SEEDS = range(64)
"""About half are accepted and built (~1 s each on a 2-core CPU), half rejected (milliseconds)."""


def explain(spec: GeneratedSpec, verdict: Verdict) -> str:
    """What a failing spec was, what happened and where, for the assertion message."""
    sets = " ".join(f"--set {o}" for o in spec.overrides)
    return (
        f"seed {spec.seed} ({', '.join(spec.notes) or 'unmutated'}){' ' + sets if sets else ''}\n"
        f"{verdict.signature}\n{verdict.message}\nat {verdict.frame}\n"
        f"--- spec ---\n{spec.text}--- detail ---\n{verdict.detail[-2000:]}"
    )


@pytest.mark.parametrize("seed", SEEDS)
def test_a_generated_spec_is_rejected_with_a_location_or_agrees_with_its_module(
    seed: int, tmp_path: Path
) -> None:
    spec = generate(seed)
    verdict = judge(spec, tmp_path)
    assert verdict.outcome in ("rejected", "agreed", "too_big"), explain(spec, verdict)


def test_the_generator_is_deterministic_and_covers_the_grammar() -> None:
    specs = [generate(seed) for seed in range(300)]
    assert [s.text for s in specs[:20]] == [generate(seed).text for seed in range(20)]
    text = "\n".join(s.text for s in specs)
    features = [
        "vars:", "defaults:", "blocks:", "args: [", "concat:", "add:", "repeat", "${2 if i == 0",
        "if=", "if: ", "from=", "from: ", "from=[", "aux", "expect", "-> ", "{type: ", "type: ",
        "${", "$", "//", "ceil(", "max(", "dropout", "batchnorm", "bn", "maxpool", "avgpool",
        "global_avgpool", "gap", "flatten", "dense", "zeropad", "lrn", "relu", "softmax",
        "padding=", "same", "valid", "groups=", "dilation=", "rounding", "ceil", "input",
        "description:", "dtype:", "act", "$in.c", "${in.c * 2}", "groups=$in.c",
    ]  # fmt: skip
    assert [f for f in features if f not in text] == []
    assert sum(bool(s.overrides) for s in specs) > 30
    assert sum(not s.notes for s in specs) > 100, "too few specs are left as written"
    assert sum(bool(s.notes) for s in specs) > 100, "too few specs get a mistake or mutation"
    assert any("- conv" in s.text or "- relu" in s.text for s in specs)  # unnamed rows


def test_most_unmutated_specs_are_valid(tmp_path: Path) -> None:
    """The generator's own shape tracking keeps untouched specs mostly valid (else the oracle
    would mostly see rejections). Compile only: no build."""
    from netspec.compiled import compile_with

    accepted = 0
    for seed in range(60):
        spec = Writer(seed).write()
        path = tmp_path / f"{seed}.yaml"
        path.write_text(spec.text, encoding="utf-8")
        try:
            compile_with(str(path), spec.overrides)
            accepted += 1
        except netspec.SpecError:
            pass
    assert accepted >= 40


SMALL = """\
name: t
input: [8, 8, 3]
layers:
  - a: conv 3x3 4 same
  - b: conv 3x3 4 same
  - g: gap
  - fc: dense 3
"""


def test_the_oracle_sees_a_count_that_differs(tmp_path: Path) -> None:
    compiled = netspec.compile(SMALL)
    rows = list(compiled.report.rows)
    rows[1] = dataclasses.replace(rows[1], params=rows[1].params + 1)
    wrong = SimpleNamespace(
        graph=compiled.graph,
        report=dataclasses.replace(compiled.report, rows=tuple(rows)),
        network_class=compiled.network_class,
        dtype=None,
        param_dtype="float32",
    )
    kinds = {kind for kind, _ in compare(wrong)}
    assert "row params" in kinds and "total params" in kinds


def test_the_oracle_sees_shared_weights(tmp_path: Path) -> None:
    """Two rows holding one module: nnx counts its parameters once, under the first row, so the
    second row has none under its own path."""
    compiled = netspec.compile(SMALL.replace("4 same", "3 same"))  # b could run a's weights
    network = compiled.network_class()

    class Shared(network):  # type: ignore[misc, valid-type]
        def __init__(self, *args: object, **kwargs: object) -> None:
            super().__init__(*args, **kwargs)
            self.b = self.a

    shared = SimpleNamespace(
        graph=compiled.graph,
        report=compiled.report,
        network_class=lambda: Shared,
        dtype=None,
        param_dtype="float32",
    )
    problems = compare(shared)
    assert any(kind == "row params" and "'b'" in message for kind, message in problems)


def test_the_oracle_sees_a_shape_that_differs() -> None:
    compiled = netspec.compile(SMALL)
    nodes = [
        dataclasses.replace(n, output_shape=(7, 7, 4)) if n.name == "b" else n
        for n in compiled.report.nodes
    ]
    wrong = SimpleNamespace(
        graph=compiled.graph,
        report=dataclasses.replace(compiled.report, nodes=tuple(nodes)),
        network_class=compiled.network_class,
        dtype=None,
        param_dtype="float32",
    )
    kinds = {kind for kind, _ in compare(wrong)}
    assert {"layer output shape", "layer input shape"} <= kinds
