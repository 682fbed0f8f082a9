"""`in.h`, `in.w`, `in.c`: a row's values can read the shape of the row's input.

Expected numbers come from the convolution formulas (weights kh*kw*cin/groups*cout + bias),
written here, never from netspec's output; each spec is also built and judged by the oracle
of the generated-spec test (the module agrees with the analysis row by row)."""

from __future__ import annotations

from pathlib import Path

import pytest

from netspec import SpecError, analyze_spec

from .specgen import GeneratedSpec, judge

pytestmark = pytest.mark.xdist_group("generated_specs")


def conv_params(k: int, cin: int, cout: int, groups: int = 1, bias: bool = True) -> int:
    return k * k * (cin // groups) * cout + (cout if bias else 0)


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "spec.yaml"
    path.write_text(text)
    return path


INVERTED = """name: t
input: [16, 16, 8]
defaults:
  conv: {padding: same, bias: false}
blocks:
  inverted:
    args: [out, {t: 6}, {s: 1}]
    layers:
      - expand: conv 1x1 ${in.c * t} if=${t != 1}
      - dw: conv 3x3/$s $in.c groups=$in.c
      - project: conv 1x1 $out
      - add from=[input, project] if=${s == 1 and in.c == out}
layers:
  - a: inverted 8 t=1
  - b: inverted 16 s=2
  - c: inverted 16
  - d: conv 3x3 ${in.c // 2} repeat=2
  - e: conv 1x1 ${in.h + in.w}
"""


def test_depthwise_and_residual_conditions_read_the_input(tmp_path: Path) -> None:
    report = analyze_spec(write(tmp_path, INVERTED))
    rows = {r.name: r for r in report.rows}
    # a: no expansion (t=1): depthwise over 8 channels, project to 8, residual kept.
    assert rows["a"].params == conv_params(3, 8, 8, groups=8, bias=False) + conv_params(
        1, 8, 8, bias=False
    )
    # b: expand 8 -> 48, depthwise stride 2 over 48, project to 16; no residual (stride 2).
    assert rows["b"].params == (
        conv_params(1, 8, 48, bias=False)
        + conv_params(3, 48, 48, groups=48, bias=False)
        + conv_params(1, 48, 16, bias=False)
    )
    assert rows["b"].output_shape == (8, 8, 16)
    # c: expand 16 -> 96; the residual is there because in.c == out == 16.
    assert rows["c"].params == (
        conv_params(1, 16, 96, bias=False)
        + conv_params(3, 96, 96, groups=96, bias=False)
        + conv_params(1, 96, 16, bias=False)
    )
    adds = [n.name for n in report.nodes if n.op == "add"]
    assert adds == ["a/add", "c/add"]
    # d: each copy halves the channels of its own input: 16 -> 8 -> 4.
    assert rows["d"].params == conv_params(3, 16, 8, bias=False) + conv_params(3, 8, 4, bias=False)
    assert rows["d"].output_shape == (8, 8, 4)
    # e: filters = height + width of its input.
    assert rows["e"].output_shape == (8, 8, 16)


SPECS = {
    "inverted-residual": INVERTED,
    "condition-and-repeat-count": "name: t\ninput: [8, 8, 6]\nlayers:\n"
    "  - a: conv 1x1 ${in.c * 2} if=${in.c < 8}\n"
    "  - b: relu repeat=${in.c // 6}\n"
    "  - c: {type: conv, filters: '$in.c', kernel: 3, groups: '${in.c // 2}'}\n",
    "branches-and-inline-rows": "name: t\ninput: [8, 8, 4]\nlayers:\n"
    "  - m:\n      concat:\n        - conv 1x1 $in.c\n        - [conv 1x1 ${in.c * 2}, "
    "conv 3x3 $in.c same groups=$in.c]\n"
    "  - g: conv 1x1 ${in.c // 3}\n",
    "repeated-composite-row": "name: t\ninput: [8, 8, 4]\nlayers:\n"
    "  - r: [conv 3x3 ${in.c + 2} same, relu]\n    repeat: 3\n",
}


@pytest.mark.parametrize("text", SPECS.values(), ids=SPECS.keys())
def test_the_module_agrees_with_the_analysis(text: str, tmp_path: Path) -> None:
    verdict = judge(GeneratedSpec(0, text, {}, []), tmp_path)
    assert verdict.outcome == "agreed", verdict


def test_composite_rows_and_branches_read_their_own_inputs(tmp_path: Path) -> None:
    report = analyze_spec(write(tmp_path, SPECS["branches-and-inline-rows"]))
    rows = {r.name: r for r in report.rows}
    # branch 1: 1x1 4->4; branch 2: 1x1 4->8, then depthwise 3x3 over 8 channels.
    assert rows["m"].params == (
        conv_params(1, 4, 4) + conv_params(1, 4, 8) + conv_params(3, 8, 8, groups=8)
    )
    assert rows["m"].output_shape == (8, 8, 12)
    assert rows["g"].output_shape == (8, 8, 4)
    report = analyze_spec(write(tmp_path, SPECS["repeated-composite-row"]))
    # each copy adds 2 channels to its own input: 4 -> 6 -> 8 -> 10
    assert report.rows[0].params == sum(conv_params(3, c, c + 2) for c in (4, 6, 8))
    report = analyze_spec(write(tmp_path, SPECS["condition-and-repeat-count"]))
    rows = {r.name: r for r in report.rows}
    assert rows["a"].output_shape == (8, 8, 12)
    assert rows["c"].params == conv_params(3, 12, 12, groups=6)


@pytest.mark.parametrize(
    ("line", "column", "words"),
    [
        ("vars: {a: '${in.c}'}\nlayers:\n  - c: conv 1x1 $a\n", (3, 14), "known only in a row"),
        (
            "defaults:\n  conv: {groups: '$in.c'}\nlayers:\n  - c: conv 1x1 3\n",
            (4, 20),
            "known only in a row",
        ),
        ("layers:\n  - c: conv 1x1 4 -> 8x8x${in.c}\n", (4, 28), "known only in a row"),
        ("layers:\n  - c: conv 1x1 ${in.x}\n", (4, 22), "no '.x'"),
        ("layers:\n  - c: conv 1x1 $in\n", (4, 18), "in.h, in.w or in.c"),
    ],
    ids=["vars", "defaults", "expect", "unknown-axis", "bare-in"],
)
def test_in_where_there_is_no_row_input_is_a_located_error(
    line: str, column: tuple[int, int], words: str, tmp_path: Path
) -> None:
    path = write(tmp_path, "name: t\ninput: [8, 8, 3]\n" + line)
    with pytest.raises(SpecError) as caught:
        analyze_spec(path)
    error = caught.value
    assert error.location is not None
    assert (error.location.line, error.location.column) == column, str(error)
    assert words in str(error)


def test_an_undefined_name_lists_the_variables_and_the_inputs_axes(tmp_path: Path) -> None:
    text = "name: t\ninput: [8, 8, 3]\nvars: {width: 4}\nlayers:\n  - d: conv 3x3 $zzz\n"
    with pytest.raises(SpecError) as caught:
        analyze_spec(write(tmp_path, text))
    assert caught.value.hint == "defined variables: width; the row's input: in.h, in.w, in.c"
