"""What netspec tells an author beyond hard errors: expressions inside `[...]` flow lists, the
message for `->` after a `[...]` row, and the warning for a row whose output nothing reads."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from netspec import SpecError, analyze_spec
from netspec.load import load_yaml, mask_expressions

HEAD = "name: t\ninput: [8, 8, 3]\n"


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "spec.yaml"
    path.write_text(text)
    return path


def test_expressions_inside_flow_lists_read_as_in_block_form(tmp_path: Path) -> None:
    flow = HEAD + "vars: {t: 2}\nlayers:\n  - a: [conv 3x3 ${t * 4} same, relu]\n"
    block = HEAD + "vars: {t: 2}\nlayers:\n  - a:\n      - conv 3x3 ${t * 4} same\n      - relu\n"
    flow_report = analyze_spec(write(tmp_path, flow))
    block_report = analyze_spec(write(tmp_path, block))
    # 3x3 conv from 3 to 8 channels with bias: 3*3*3*8 + 8
    assert flow_report.params == block_report.params == 3 * 3 * 3 * 8 + 8
    assert flow_report.output_shape == (8, 8, 8)


def test_a_flow_mapping_takes_expressions_too(tmp_path: Path) -> None:
    text = HEAD + "vars: {t: 3}\nlayers:\n  - m: {type: conv, filters: ${t * 2}, kernel: 1}\n"
    assert analyze_spec(write(tmp_path, text)).output_shape == (8, 8, 6)


def test_an_error_inside_a_masked_expression_points_at_its_column(tmp_path: Path) -> None:
    text = HEAD + "layers:\n  - a: [conv 3x3 ${nope * 4} same, relu]\n"
    with pytest.raises(SpecError) as caught:
        analyze_spec(write(tmp_path, text))
    line = text.splitlines()[3]
    assert caught.value.location is not None
    assert caught.value.location.line == 4
    assert caught.value.location.column == line.index("nope") + 1
    assert "nope" in caught.value.message


def test_masking_keeps_every_value_and_position() -> None:
    text = (
        "a: [x ${b * 2}, '${c}', \"${d}\"]\nq: ${'q'}\nb: {k: ${e}}\nc: |\n  ${f} text\n'${g}': 1\n"
    )
    masked, originals = mask_expressions(text)
    assert len(masked) == len(text)
    assert [i for i, ch in enumerate(masked) if ch == "\n"] == [
        i for i, ch in enumerate(text) if ch == "\n"
    ]
    assert "${'q'}" in masked  # with quotes: left as written
    assert sorted(originals.values()) == ["${b * 2}", "${c}", "${d}", "${e}", "${f}", "${g}"]
    data = load_yaml(text, "x.yaml")
    assert data["a"] == ["x ${b * 2}", "${c}", "${d}"]
    assert data["q"] == "${'q'}"
    assert data["b"] == {"k": "${e}"}
    assert data["c"] == "${f} text\n"
    assert data["${g}"] == 1


def test_arrow_after_a_flow_row_says_what_to_write(tmp_path: Path) -> None:
    text = HEAD + "layers:\n  - a: [conv 3x3 8 same, relu] -> 8x8x8\n"
    with pytest.raises(SpecError) as caught:
        analyze_spec(write(tmp_path, text))
    error = caught.value
    assert error.location is not None and error.location.line == 4
    assert "-> 8x8x8" in error.message
    assert error.hint is not None and "expect:" in error.hint
    # ... and what the hint says to write works
    fixed = HEAD + "layers:\n  - a: [conv 3x3 8 same, relu]\n    expect: 8x8x8\n"
    assert analyze_spec(write(tmp_path, fixed)).output_shape == (8, 8, 8)


UNREAD = HEAD + (
    "blocks:\n  se:\n    layers:\n      - c: conv 3x3 8 same\n      - pool: gap\n"
    "      - gate: conv 1x1 8 sigmoid\n      - out: relu from=c\n"
    "layers:\n  - a: se repeat=2\n  - b: se\n  - side: conv 1x1 2 from=a\n  - head: gap from=b\n"
)


def test_a_row_nobody_reads_warns_once_per_place(tmp_path: Path) -> None:
    report = analyze_spec(write(tmp_path, UNREAD))
    places = sorted((w.location.line, w.location.column) for w in report.warnings if w.location)
    lines = UNREAD.splitlines()
    gate = (lines.index("      - gate: conv 1x1 8 sigmoid") + 1, 15)
    side = (lines.index("  - side: conv 1x1 2 from=a") + 1, 11)
    assert places == [gate, side]
    gate_warning = next(w for w in report.warnings if w.location.line == gate[0])
    assert "3 places" in gate_warning.message  # a[0], a[1] and b


def test_heads_and_the_output_do_not_warn(tmp_path: Path) -> None:
    text = HEAD + "layers:\n  - c: conv 3x3 4\n  - side: [gap, dense 2]\n"
    text += "    from: c\n    aux: 0.3\n  - g: gap\n  - dense 3\n"
    assert analyze_spec(write(tmp_path, text)).warnings == ()


def test_compile_prints_the_warning_and_succeeds(tmp_path: Path) -> None:
    path = write(tmp_path, UNREAD)
    result = subprocess.run(
        [sys.executable, "-m", "netspec", "compile", str(path), "--no-check"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert f"warning: {path}:" in result.stderr
    assert "never read" in result.stderr
