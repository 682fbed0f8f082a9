"""Independent problems are reported together, ordered by line, capped with a count."""

from __future__ import annotations

import random
import re
import subprocess
import sys

import pytest

from netspec import SpecError, analyze_spec
from netspec.diagnose import find_errors
from netspec.errors import SHOWN_AT_ONCE
from netspec.layers import ALIASES, REGISTRY

from .conftest import ROOT
from .specgen import Writer

NINE_TYPOS = """\
name: typos
input: 32x32x3
optimiser: sgd
defaults:
  conv: {activaton: relu}
training:
  epochs: ten
  optimiser: adam
layers:
  - c1: cnov 3x3 16
  - c2: conv 3x3 16 kernl=3
  - c3: {type: conv, filters: 8, kernl: 3}
  - c5: {type: conv, filters: 8, kernel: 3, bias: no}
  - p: maxpool 2x2
  - c4: conv 3x3 32 activaton=relu
  - d: dropout 1.5
  - fc: dense 10
"""
# (line, what the message must name) for each typo, in file order.
EXPECTED = [
    (3, "optimiser"),
    (5, "activaton"),
    (7, "ten"),
    (8, "optimiser"),
    (10, "cnov"),
    (11, "kernl"),
    (12, "kernl"),
    (13, "'no'"),
    (15, "activaton"),
    (16, "1.5"),
]


def test_every_unknown_key_field_type_and_bad_value_in_one_run():
    errors = find_errors(NINE_TYPOS, "typos.yaml")
    assert [e.location.line for e in errors] == [line for line, _ in EXPECTED]
    for error, (_, word) in zip(errors, EXPECTED, strict=True):
        assert word in str(error)
    assert "under `training:`" in str(errors[0])  # `optimiser` at the top level


def test_a_bad_variable_stops_before_the_rows_that_read_it():
    text = """\
name: deps
input: 16x16x3
vars: {width: ${nope + 1}}
layers:
  - a: conv 3x3 $width
  - b: cnov 3x3 8
  - fc: dense 10
"""
    errors = find_errors(text, "d.yaml")
    # the variable's error and the row's own, never "a: filters: ..." following from the first
    assert [e.location.line for e in errors] == [3, 6]


def test_the_command_prints_them_all_and_exits_2(tmp_path):
    path = tmp_path / "typos.yaml"
    path.write_text(NINE_TYPOS)
    result = subprocess.run(
        [sys.executable, "-m", "netspec", "compile", str(path), "--no-check"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert f"{len(EXPECTED)} errors" in result.stderr
    lines = [int(line.split(":")[1]) for line in result.stderr.splitlines() if ".yaml:" in line]
    assert lines == sorted(lines) == [line for line, _ in EXPECTED]


def test_value_errors_of_several_rows_come_together():
    text = """\
name: values
input: 16x16x3
layers:
  - a: conv 3x3 8
  - b: {type: conv, filters: 8, kernel: 3, bias: no}
  - c: dropout 1.5
  - d: conv 3x3 0
  - fc: dense 10
"""
    errors = find_errors(text, "v.yaml")
    assert [e.location.line for e in errors] == [5, 6, 7]
    assert [e.path for e in errors] == ["b", "c", "d"]


def test_a_failed_row_named_in_from_gives_no_second_error():
    text = """\
name: deps
input: 16x16x3
layers:
  - a: cnov 3x3 8
  - b: conv 3x3 8
  - c: {from: a, add: [[conv 1x1 8], []]}
  - fc: dense 10
"""
    errors = find_errors(text, "d.yaml")
    assert len(errors) == 1
    assert "cnov" in str(errors[0])


def test_many_errors_are_capped_with_a_count():
    rows = "".join(f"  - r{i}: cnov 3x3 8\n" for i in range(SHOWN_AT_ONCE + 7))
    text = f"name: many\ninput: 16x16x3\nlayers:\n{rows}"
    with pytest.raises(SpecError) as caught:
        analyze_spec(text)
    shown = str(caught.value)
    assert shown.startswith(f"{SHOWN_AT_ONCE + 7} errors:")
    assert shown.count("unknown layer type") == SHOWN_AT_ONCE
    assert shown.rstrip().endswith("... and 7 more errors")


def test_compile_checks_the_training_section_without_jax(tmp_path):
    path = tmp_path / "t.yaml"
    path.write_text(
        "name: t\ninput: 8x8x1\ntraining:\n  optimizer: {name: adam, b1: 0.8}\n"
        "  epochs: ten\nlayers:\n  - fc: dense 3\n"
    )
    code = (
        "import sys; from netspec.cli import main;"
        f"code = main(['compile', {str(path)!r}, '--no-check']);"
        "sys.stderr.write(f'|{code}|{\"jax\" in sys.modules}')"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    )
    assert "t.yaml:5:11" in result.stderr and "ten" in result.stderr
    assert result.stderr.endswith("|2|False")


def misspell_rows(text: str, rng: random.Random, count: int) -> tuple[str, list[int]] | None:
    """`text` with the layer type of `count` random top-level compact rows replaced by an
    unknown word, and the (1-based) lines changed; None when it has too few such rows."""
    lines = text.splitlines()
    if "layers:" not in lines:
        return None
    start = lines.index("layers:")
    known = set(REGISTRY) | set(ALIASES)
    candidates = [
        index
        for index in range(start + 1, len(lines))
        if (match := re.match(r"^  - \w+: (\w+)( |$)", lines[index])) and match[1] in known
    ]
    if len(candidates) < count:
        return None
    picked = sorted(rng.sample(candidates, count))
    for index in picked:
        match = re.match(r"^  - \w+: (\w+)", lines[index])
        assert match is not None
        lines[index] = lines[index][: match.start(1)] + "zzqq" + lines[index][match.end(1) :]
    return "\n".join(lines) + "\n", [index + 1 for index in picked]


def test_generated_specs_report_exactly_the_rows_broken_in_them():
    """Valid generated specs (tests/specgen.py) with 2 or 3 rows' types misspelt: exactly
    those rows are reported, and nothing that follows from them."""
    checked = 0
    for seed in range(120):
        spec = Writer(seed).write()
        if spec.overrides or find_errors(spec.text, "g.yaml"):
            continue
        rng = random.Random(seed)
        broken = misspell_rows(spec.text, rng, rng.choice([2, 3]))
        if broken is None:
            continue
        text, lines = broken
        errors = find_errors(text, "g.yaml")
        assert [e.location.line for e in errors] == lines, (seed, [str(e) for e in errors])
        assert all("zzqq" in e.message for e in errors)
        checked += 1
    assert checked >= 30


def test_every_row_whose_expectation_differs_is_named(tmp_path):
    text = (ROOT / "specs" / "lenet5.yaml").read_text()
    # LeNet-5's C1 has 5*5*6 + 6 = 156 parameters and S4 gives 5x5x16: claim otherwise.
    text = text.replace("-> 28x28x6  156 ", "-> 28x28x6  157 ").replace("-> 5x5x16", "-> 5x5x17")
    errors = find_errors(text, "lenet5.yaml")
    assert len(errors) == 2
    assert "157" in str(errors[0]) and "156" in str(errors[0])
    assert "5x5x17" in str(errors[1]) and "5x5x16" in str(errors[1])
