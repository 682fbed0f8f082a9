"""Every bad spec ends in ONE clear message, exit code 2 and no Python traceback.

The message starts ``error: FILE:LINE:COLUMN:`` at the offending token, then names the row or
block path and the field, says what was expected, and offers ``did you mean ...`` for typos.
Expected positions are always derived from the spec text itself (`at` finds a marker substring),
never copied from netspec's output.

A case may carry ``xfail=REASON`` (strict) while netspec falls short of it; none does today.
"""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from netspec.cli import main
from netspec.expand import MAX_REPEAT
from netspec.load import MAX_DEPTH, MAX_NODES, load_yaml
from netspec.parse import MAX_BLOCK_DEPTH
from netspec.specfile import resolve_source

HEAD = "name: t\ninput: [32, 32, 3]\nvars:\n  num_classes: 10\n"
"""A valid start of a spec: 32x32x3 input and one variable; cases append `layers` etc."""

INCEPTION = """\
blocks:
  inception:
    args: [n1x1, n3x3red, n3x3, n5x5red, n5x5, pool_proj]
    concat:
      - 1x1: conv 1x1 $n1x1
      - 3x3: [reduce: conv 1x1 $n3x3red, conv: conv 3x3 $n3x3 padding=same]
      - 5x5: [reduce: conv 1x1 $n5x5red, conv: conv 5x5 $n5x5 padding=same]
      - pool_proj: [pool: maxpool 3x3/1 padding=1, conv: conv 1x1 $pool_proj]
"""


# ---------------------------------------------------------------------------------------------
# Helpers


def at(text: str, marker: str, occurrence: int = 1, shift: int = 0) -> tuple[int, int]:
    """1-based (line, column) of the `occurrence`-th `marker` in `text`, `shift` characters in."""
    index = -1
    for _ in range(occurrence):
        index = text.index(marker, index + 1)
    index += shift
    line = text.count("\n", 0, index) + 1
    column = index - (text.rfind("\n", 0, index) + 1) + 1
    return line, column


def run_cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    """Run `netspec ARGV` in-process; (exit code, stdout, stderr)."""
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def assert_one_error(
    code: int,
    out: str,
    err: str,
    where: str,
    phrases: tuple[str, ...] = (),
    absent: tuple[str, ...] = (),
) -> None:
    """Exit code 2, nothing on stdout, and exactly one `error: WHERE: ...` on stderr."""
    assert "Traceback" not in out + err
    assert code == 2, err
    assert out == ""
    assert err.startswith(f"error: {where}: "), err
    assert err.count("error:") == 1, err
    for phrase in phrases:
        assert phrase in err
    for phrase in absent:
        assert phrase not in err


@dataclass(frozen=True)
class Case:
    text: str
    marker: str
    """The error must point at the first character of this substring..."""
    occurrence: int = 1
    """...at its occurrence-th appearance in `text`..."""
    shift: int = 0
    """...this many characters into it."""
    phrases: tuple[str, ...] = ()
    absent: tuple[str, ...] = ()
    args: tuple[str, ...] = ()


def case(
    id: str,
    text: str,
    marker: str,
    *phrases: str,
    occurrence: int = 1,
    shift: int = 0,
    absent: tuple[str, ...] = (),
    args: tuple[str, ...] = (),
    xfail: str | None = None,
) -> object:
    marks = [pytest.mark.xfail(strict=True, reason=xfail)] if xfail else []
    spec = Case(text, marker, occurrence, shift, phrases, absent, args)
    return pytest.param(spec, id=id, marks=marks)


def layers(*rows: str, head: str = HEAD) -> str:
    """`head` followed by a `layers:` table of the given rows."""
    return head + "layers:\n" + "".join(f"  - {row}\n" for row in rows)


# ---------------------------------------------------------------------------------------------
# The cases: one spec text each, where the error must point, and what it must say

KEY_NOT_VALUE = (
    "points at the key of `{}`, not at the bad value `{}` (right for an unknown key, not for a "
    "bad value; `if=yes` does point at its value)"
)
TWO_KEY_DEFAULT = (
    HEAD + "blocks:\n  b:\n    args: [{a: 1, b: 2}]\n    layers:\n      - r: relu\n"
    "layers:\n  - x: b\n"
)
UNCLOSED = "name: t\ninput: [32, 32, 3\nlayers:\n  - c: relu\n"

SYNTAX = [
    case(
        "syntax-bad-indent",
        layers("conv1: conv 3x3 16") + "   - bad: relu\n",
        "- bad",
        "invalid YAML",
        "check the indentation",
    ),
    case(
        "syntax-second-colon",
        "name: a: b\ninput: [32, 32, 3]\nlayers:\n  - c: relu\n",
        ": b",
        "invalid YAML",
        "put a space after each `key:`",
    ),
    case(
        "syntax-tab-indent",
        "name: t\ninput: [32, 32, 3]\nlayers:\n\t- c: relu\n",
        "\t",
        "invalid YAML",
        "indent with spaces",
    ),
    case(
        "syntax-unclosed-list",
        UNCLOSED,
        ":\n  - c",  # where the parser finds that the `[` of line 2 is never closed
        "invalid YAML",
        "in the list that starts at line {}, column {}".format(*at(UNCLOSED, "[")),
        "close the list with `]`",
    ),
    case(
        "duplicate-top-level-key",
        layers("conv1: conv 3x3 16") + "layers:\n  - gap: global_avgpool\n",
        "layers",
        "duplicate key 'layers'",
        f"first defined at line {at(HEAD + 'layers', 'layers')[0]}",
        occurrence=2,
    ),
    case(
        "duplicate-key-in-row",
        layers("conv1: conv 3x3 16\n    conv1: conv 3x3 32"),
        "conv1",
        "duplicate key 'conv1'",
        occurrence=2,
    ),
    case(
        "duplicate-row-name",
        layers("c: conv 3x3 8", "c: relu"),
        "c: relu",
        "duplicate row name 'c'",
        "give every row of a sequence its own name",
    ),
]

UNKNOWN_FIELDS = [
    case(
        "unknown-top-level-key",
        HEAD + "layerz:\n  - c: relu\n" + "layers:\n  - conv1: conv 3x3 16\n",
        "layerz",
        "unknown key 'layerz'",
        "did you mean 'layers'?",
    ),
    case(
        "unknown-block-key",
        HEAD
        + "blocks:\n  b:\n    argz: [x]\n    layers:\n      - c: conv 3x3 $x\n"
        + "layers:\n  - b1: b 4\n",
        "argz",
        "blocks.b: unknown key 'argz'",
        "did you mean 'args'?",
    ),
    case(
        "unknown-block-key-body",
        HEAD + "blocks:\n  b:\n    layer:\n      - c: relu\nlayers:\n  - x: b\n",
        "layer:",
        "unknown key 'layer'",
        "did you mean 'layers'?",
    ),
    case(
        "unknown-layer-param-compact",
        layers("conv1: conv 3x3 16 paddin=same"),
        "paddin=",
        "conv1: paddin: conv has no parameter 'paddin'",
        "did you mean 'padding'?",
    ),
    case(
        "unknown-layer-param-mapping",
        layers("conv1: {type: conv, kernel: 3, filters: 16, strid: 2}"),
        "strid",
        "conv1: strid: conv has no parameter 'strid'",
        "did you mean 'stride'?",
    ),
    case(
        "unknown-defaults-param",
        HEAD + "defaults:\n  conv: {activaton: relu}\n" + "layers:\n  - conv1: conv 3x3 16\n",
        "activaton",
        "defaults: conv has no parameter 'activaton'",
        "did you mean 'activation'?",
    ),
    case(
        "unknown-defaults-layer-type",
        HEAD + "defaults:\n  cnov: {activation: relu}\n" + "layers:\n  - conv1: conv 3x3 16\n",
        "cnov",
        "defaults for unknown layer type 'cnov'",
        "did you mean 'conv'?",
    ),
    case(
        "unknown-expectation-key",
        layers("c: conv 3x3 8\n    expect: {outptu: 30x30x8}"),
        "outptu",
        "unknown expectation 'outptu'",
        "did you mean 'output'?",
    ),
    case(
        "missing-required-key",
        "name: t\ninput: [32, 32, 3]\n",
        "name",
        "missing required key 'layers'",
    ),
]

WRONG_TYPES = [
    case(
        "filters-word-mapping",
        layers("conv1: {type: conv, kernel: 3, filters: sixty}"),
        "sixty",
        "conv1: filters: expected a whole number, got 'sixty'",
    ),
    case(
        "filters-word-compact",
        layers("conv1: conv 3x3 sixty"),
        "sixty",
        "conv1: filters: expected a whole number, got 'sixty'",
    ),
    case(
        "filters-word-quoted-row",
        layers('conv1: "conv 3x3 sixty"'),
        "sixty",
        "conv1: filters: expected a whole number, got 'sixty'",
    ),
    case(
        "input-two-numbers",
        "name: t\ninput: [224, 224]\nlayers:\n  - c: conv 3x3 8\n",
        "[224",
        "input must be [height, width, channels]",
        "input: [224, 224, 3]",
    ),
    case(
        "input-word",
        "name: t\ninput: [224, 224, three]\nlayers:\n  - c: conv 3x3 8\n",
        "[224",
        "input must be [height, width, channels]",
    ),
    case(
        "filters-fraction",
        layers("conv1: {type: conv, kernel: 3, filters: 64.5}"),
        "64.5",
        "conv1: filters: must be a whole number, got 64.5",
    ),
    case(
        "window-not-a-window",
        layers("c: conv 3by3 8"),
        "3by3",
        "expected a window like 3x3, 7x7/2 or 1x7, got '3by3'",
    ),
    case(
        "activation-typo",
        layers("c: conv 3x3 8 activation=rleu"),
        "rleu",
        "c: activation: must be one of none, linear, relu",
        "did you mean 'relu'?",
    ),
    case(
        "padding-typo",
        layers("c: conv 3x3 8 padding=sam"),
        "sam",
        "c: padding: must be same, valid, or pixels",
        "got 'sam'",
        "did you mean 'same'?",
    ),
    case(
        "too-many-positional-values",
        layers("c: conv 3x3 8 9"),
        "9\n",
        "unexpected value 9 for conv",
        "conv is written `conv KxK/S FILTERS key=value ...`",
    ),
    case(
        "filters-true",
        layers("conv1: {type: conv, kernel: 3, filters: true}"),
        "true",
        "conv1: filters:",
        "expected a whole number, got true",
    ),
    case(
        "alpha-true",
        layers("n: {type: lrn, alpha: true}"),
        "true",
        "n: alpha:",
        "number",
    ),
    case(
        "rate-true",
        layers("d: {type: dropout, rate: true}"),
        "true",
        "d: rate:",
        "number",
        absent=("less than 1",),
    ),
    case(
        "row-that-is-a-number",
        layers("42"),
        "42",
        "row",
        absent=("dictionary",),
    ),
    case(
        "row-that-is-a-number-in-a-block",
        HEAD + "blocks:\n  b:\n    layers:\n      - 42\nlayers:\n  - x: b\n",
        "42",
        "row",
        absent=("dictionary",),
    ),
    case(
        "empty-row",
        layers("conv1:"),
        "conv1",
        "row 'conv1' is empty",
    ),
    case(
        "row-with-two-names",
        layers("a: conv 3x3 8\n    b: conv 3x3 8"),
        "a: conv",
        "a row needs exactly one name key",
        "found a, b",
    ),
    case(
        "empty-table",
        HEAD + "layers: []\n",
        "[]",
        "layers",
        absent=("List should have",),
    ),
    case(
        "row-named-input",
        layers("input: relu"),
        "input: relu",
        "'input'",
        absent=("duplicate",),
    ),
    case(
        "variable-name-with-dash",
        "name: t\ninput: [32, 32, 3]\nvars:\n  my-var: 3\n" + "layers:\n  - c: relu\n",
        "my-var",
        "'my-var' may only use letters, digits and '_'",
        absent=("[key]",),
    ),
    case(
        "block-argument-default-with-two-keys",
        TWO_KEY_DEFAULT,
        "{a: 1",
        "args",
    ),
    case(
        "block-argument-default-empty",
        HEAD + "blocks:\n  b:\n    args: [{}]\n    layers:\n      - r: relu\nlayers:\n  - x: b\n",
        "{}",
        "args",
    ),
    case(
        "number-with-too-many-digits-in-a-row",
        layers("c: conv 3x3 " + "9" * 5000),
        "9999",
        "too many digits",
    ),
]

YAML11 = [
    case(
        "bias-no-compact",
        layers("conv1: conv 3x3 16 bias=no"),
        "no\n",
        "conv1: bias: must be true or false, got 'no'",
        "write true or false",
    ),
    case(
        "bias-no-mapping",
        layers("conv1: {type: conv, kernel: 3, filters: 16, bias: no}"),
        "no}",
        "conv1: bias: must be true or false, got 'no'",
        "write true or false",
    ),
    case(
        "bias-off-compact",
        layers("conv1: conv 3x3 16 bias=off"),
        "off",
        "conv1: bias: must be true or false, got 'off'",
        "write true or false",
    ),
    case(
        "if-yes",
        layers("c: conv 3x3 16 if=yes"),
        "yes",
        "c: if: expected true or false, got 'yes'",
        "yes/no/on/off are not booleans",
    ),
    case(
        "bias-no-in-defaults",
        HEAD + "defaults:\n  conv: {bias: no}\n" + "layers:\n  - conv1: conv 3x3 16\n",
        "no}",
        "bias: must be true or false, got 'no'",
        "write true or false",
    ),
    case(
        "bias-no-in-block-defaults",
        HEAD
        + "blocks:\n  b:\n    defaults:\n      conv: {bias: no}\n    layers:\n"
        + "      - c: conv 3x3 8\nlayers:\n  - x: b\n",
        "no}",
        "bias: must be true or false, got 'no'",
        "write true or false",
    ),
    case(
        "alpha-not-a-number",
        layers("n: lrn 5 alpha=1e-3x"),
        "1e-3x",
        "n: alpha: expected a number, got '1e-3x'",
    ),
]

VARIABLES = [
    case(
        "undefined-variable",
        layers("conv1: conv 3x3 16", "gap: global_avgpool", "fc: dense $num_clases"),
        "num_clases",
        "fc: dense: undefined variable 'num_clases'",
        "did you mean 'num_classes'?",
    ),
    case(
        "undefined-variable-in-expression",
        layers("conv1: conv 3x3 ${num_clases * 2}"),
        "num_clases",
        "undefined variable 'num_clases'",
        "did you mean 'num_classes'?",
    ),
    case(
        "undefined-variable-in-vars",
        "name: t\ninput: [32, 32, 3]\nvars:\n  a: ${num_clases}\n  num_classes: 3\n"
        + "layers:\n  - c: conv 3x3 $a\n",
        "num_clases",
        "vars: a: undefined variable 'num_clases'",
        "did you mean 'num_classes'?",
    ),
    case(
        "undefined-block-argument",
        HEAD
        + "blocks:\n  b:\n    args: [filters]\n    layers:\n      - c: conv 3x3 $filtres\n"
        + "layers:\n  - x: b 8\n",
        "filtres",
        "b > c: conv: undefined variable 'filtres'",
        "did you mean 'filters'?",
    ),
    case(
        "cyclic-variables",
        "name: t\ninput: [32, 32, 3]\nvars:\n  a: ${b}\n  b: ${a}\nlayers:\n  - c: conv 3x3 $a\n",
        "${b}",
        "vars: a: variables form a cycle: a -> b -> a",
    ),
    case(
        "self-referencing-variable",
        "name: t\ninput: [32, 32, 3]\nvars:\n  a: ${a + 1}\nlayers:\n  - c: conv 3x3 $a\n",
        "${a",
        "variables form a cycle: a -> a",
    ),
    case(
        "set-unknown-variable",
        layers("conv1: conv 3x3 16"),
        "vars:",
        "the spec has no variable 'num_clases'",
        "did you mean 'num_classes'?",
        args=("--set", "num_clases=5"),
    ),
    case(
        "expression-syntax",
        layers("c: conv 3x3 ${1 +}"),
        "+}",
        "invalid expression '1 +'",
        shift=1,  # the expression ends where an operand is missing
    ),
    case(
        "expression-unbalanced",
        layers("c: conv 3x3 ${num_classes"),
        "{num",
        "'{' is never closed",
    ),
    case(
        "expression-function-not-allowed",
        layers("c: conv 3x3 ${open('x')}"),
        "open",
        "function 'open' is not allowed in expressions",
    ),
]

NAMES = [
    case(
        "unknown-layer-type",
        layers("conv1: cnov 3x3 64"),
        "cnov",
        "conv1: unknown layer type or block 'cnov'",
        "did you mean 'conv'?",
    ),
    case(
        "unknown-layer-type-mapping",
        layers("conv1: {type: cnov, kernel: 3, filters: 64}"),
        "cnov",
        "unknown layer type or block 'cnov'",
        "did you mean 'conv'?",
    ),
    case(
        "unknown-block",
        layers("3a: inceptoin 64 96 128 16 32 32", head=HEAD + INCEPTION),
        "inceptoin",
        "3a: unknown layer type or block 'inceptoin'",
        "did you mean 'inception'?",
    ),
    case(
        "block-missing-argument",
        layers("3a: inception 64 96 128 16 32", head=HEAD + INCEPTION),
        "inception 64",
        "block 'inception' takes 6 argument(s)",
        "but got 5: missing pool_proj",
        "write `inception n1x1 n3x3red n3x3 n5x5red n5x5 pool_proj`",
    ),
    case(
        "block-extra-argument",
        layers("3a: inception 64 96 128 16 32 32 7", head=HEAD + INCEPTION),
        "7\n",
        "block 'inception' takes 6 argument(s)",
        "but got 7",
    ),
    case(
        "block-unknown-keyword",
        layers("3a: inception 64 96 128 16 32 pool_prj=32", head=HEAD + INCEPTION),
        "pool_prj",
        "block 'inception' has no argument 'pool_prj'",
        "did you mean 'pool_proj'?",
    ),
    case(
        "block-unknown-keyword-mapping",
        HEAD
        + "blocks:\n  b:\n    args: [f]\n    layers:\n      - c: conv 3x3 $f\n"
        + "layers:\n  - x: {type: b, g: 3}\n",
        "g: 3",
        "block 'b' has no argument 'g'",
    ),
    case(
        "from-unknown-row",
        layers("conv1: conv 3x3 16", "c2: conv 3x3 16 from=conv"),
        "conv\n",
        "c2: from: no earlier row named 'conv' to read from",
        "did you mean 'conv1'?",
    ),
    case(
        "from-unknown-row-mapping",
        layers("c: conv 3x3 16", "d: {type: conv, kernel: 3, filters: 8}\n    from: cc"),
        "cc",
        "d: from: no earlier row named 'cc' to read from",
        "did you mean 'c'?",
    ),
    case(
        "from-unknown-row-in-list",
        layers("a: relu", "b: relu", "s: add from=[a, bb]"),
        "[a, bb]",
        "no earlier row named 'bb'",
        "did you mean 'b'?",
    ),
]

SHAPES = [
    case(
        "add-channel-mismatch",
        layers(
            "conv1: conv 3x3 16 padding=same",
            "res:\n      add:\n        - a: conv 3x3 16 padding=same\n"
            "        - b: conv 3x3 32 padding=same",
        ),
        "add:",
        "add needs equal shapes, or 1x1xC / HxWx1 inputs to broadcast, but gets 32x32x16, 32x32x32",
        "project the shortcut with a 1x1 conv",
    ),
    case(
        "concat-spatial-mismatch",
        layers(
            "cat:\n      concat:\n        - a: conv 3x3 16 padding=same\n"
            "        - b: conv 3x3/2 16 padding=same"
        ),
        "concat:",
        "concat inputs differ in height x width: 32x32x16, 16x16x16",
    ),
    case(
        "kernel-larger-than-input",
        layers("conv1: conv 33x33 16"),
        "33x33",
        "the 33x33 window (span 33) is larger than the input height 32",
        "use padding=same",
    ),
    case(
        "too-many-stride-2-pools",
        layers(*(f"p{i}: maxpool 2x2" for i in range(6))),
        "maxpool 2x2\n",
        "p5: kernel: ",
        "is larger than the input height 1",
        "1x1x3",
        "remove a downsampling layer",
        occurrence=6,  # 32 -> 16 -> 8 -> 4 -> 2 -> 1: the sixth pool has nothing left
        shift=len("maxpool "),  # at the window that does not fit
    ),
    case(
        "too-many-stride-2-convs",
        layers(*(f"c{i}: conv 3x3/2 8" for i in range(6))),
        "conv 3x3/2 8",
        "c4: kernel: ",
        "is larger than the input height 1",
        "1x1x8",
        occurrence=5,  # 32 -> 15 -> 7 -> 3 -> 1: the fifth 3x3 conv does not fit
        shift=len("conv "),  # at the window that does not fit
    ),
    case(
        "dense-on-spatial-input",
        layers("conv1: conv 3x3 16", "fc: dense 10"),
        "dense",
        "fc: ",
        "dense needs a flat input (1x1xN) but gets 30x30x16",
        "add a `flatten` or `global_avgpool` row",
    ),
    case(
        "add-with-one-input",
        layers("a: conv 3x3 8 padding=same", "s: add"),
        "add\n",
        "add takes at least 2 input(s), got 1",
    ),
    case(
        "conv-with-two-inputs",
        layers("a: relu", "b: relu", "d: conv 3x3 8 from=[a, b]"),
        "conv 3x3 8 from",
        "conv takes 1 input(s), got 2",
    ),
    case(
        "groups-do-not-divide-input",
        layers("c: conv 3x3 4 groups=2"),
        "conv 3x3 4",
        "input channels (3) are not divisible by groups (2)",
    ),
]

EXPECT = [
    case(
        "expect-wrong-output",
        layers("conv1: conv 3x3 16 -> 32x32x16"),
        "32x32x16",
        "conv1: expect: row 'conv1' should give 32x32x16 but gives 30x30x16",
    ),
    case(
        "expect-wrong-output-mapping",
        layers("conv1: conv 3x3 16\n    expect: 32x32x16"),
        "32x32x16",
        "row 'conv1' should give 32x32x16 but gives 30x30x16",
    ),
    case(
        "expect-wrong-params",
        layers("conv1: conv 3x3 16 -> 30x30x16 400"),
        "400",
        "row 'conv1' should have params 400 but has 448",
    ),
    case(
        "expect-unreadable-count",
        layers("c: conv 3x3 8 -> 30x30x8 lots"),
        "lots",
        "cannot read the expected params 'lots'",
    ),
    case(
        "expect-a-list",
        layers("c: relu\n    expect: [1, 2]"),
        "[1, 2]",
        "expect",
        absent=("should give [1, but",),
    ),
    case(
        "arrow-without-expectation",
        layers("c: conv 3x3 8 ->"),
        "\n",
        "'->' must be followed by the expected output size",
        occurrence=HEAD.count("\n") + 2,  # the end of the row's line
    ),
]


def chain_of_blocks(depth: int) -> str:
    """Blocks b0 -> b1 -> ... -> b{depth}, each calling the next; no cycle."""
    blocks = "".join(f"  b{i}:\n    layers:\n      - x: b{i + 1}\n" for i in range(depth))
    return HEAD + "blocks:\n" + blocks + f"  b{depth}:\n    layers:\n      - x: relu\n"


def alias_bomb() -> str:
    """Each line is ten aliases of the one before: a..d make ~12k nodes, e alone ~111k."""
    lines = ["a: &a [x, x, x, x, x, x, x, x, x, x]"]
    for previous, name in zip("abcd", "bcde", strict=True):
        lines.append(f"{name}: &{name} [" + ", ".join([f"*{previous}"] * 10) + "]")
    return "name: t\ninput: [32, 32, 3]\n" + "\n".join(lines) + "\nlayers:\n  - c: relu\n"


THIRTY_RELUS = "".join(f"      - r{i}: relu\n" for i in range(30))

RUNAWAY = [
    case(
        "repeat-too-large",
        layers("conv1: conv 3x3 16 padding=same repeat=100000"),
        "100000",
        f"conv1: repeat: repeat count 100000 is larger than the limit of {MAX_REPEAT}",
    ),
    case(
        "repeat-too-large-through-variable",
        "name: t\ninput: [32, 32, 3]\nvars:\n  n: 100000\nlayers:\n  - c: relu repeat=$n\n",
        "$n",
        f"repeat count 100000 is larger than the limit of {MAX_REPEAT}",
    ),
    case(
        "repeat-zero",
        layers("c: conv 3x3 8 repeat=0"),
        "repeat=0",
        "expected a repeat count >= 1, got 0",
        shift=len("repeat="),
    ),
    case(
        "expansion-over-the-node-cap",
        HEAD
        + "blocks:\n  big:\n    layers:\n"
        + THIRTY_RELUS
        + "layers:\n  - x: big repeat=1000\n",
        "1000",
        "expands past the limit",
    ),
    case(
        "block-calls-itself",
        HEAD + "blocks:\n  a:\n    layers:\n      - x: a\nlayers:\n  - z: a\n",
        "a\nlayers",
        "block 'a' uses itself: a -> a",
        "blocks may nest but not recurse",
    ),
    case(
        "blocks-call-each-other",
        HEAD
        + "blocks:\n  a:\n    layers:\n      - x: b\n  b:\n    layers:\n      - y: a\n"
        + "layers:\n  - z: a\n",
        "a\nlayers",
        "block 'a' uses itself: a -> b -> a",
    ),
    case(
        "blocks-nest-too-deep",
        chain_of_blocks(MAX_BLOCK_DEPTH + 8) + "layers:\n  - x: b0\n",
        # b0..b31 are open when b31 calls b32: that call is one too many
        f"b{MAX_BLOCK_DEPTH}\n",
        f"blocks nest more than {MAX_BLOCK_DEPTH} deep",
    ),
    case(
        "yaml-nested-too-deep",
        # the root mapping and `vars` are levels 1 and 2, so the (MAX_DEPTH - 1)-th `[` is the
        # first node nested deeper than MAX_DEPTH
        "name: t\ninput: [32, 32, 3]\nvars:\n  deep: " + "[" * 200 + "]" * 200 + "\n"
        "layers:\n  - c: relu\n",
        "[",
        f"nested more than {MAX_DEPTH} levels deep",
        occurrence=1 + MAX_DEPTH - 1,  # the first `[` is the one of `input`
    ),
    case(
        "unsafe-tag-on-a-mapping",
        layers("c: !!python/object:os.system {a: 1}"),
        "!!python",
        "tag !!python/object:os.system is not allowed",
    ),
    case(
        "local-tag",
        layers("c: !relu x"),
        "!relu",
        "tag !relu is not allowed",
    ),
    case(
        "undefined-alias",
        "name: t\ninput: [32, 32, 3]\nlayers: *nope\n",
        "*nope",
        "invalid YAML",
        "define the anchor (`&name`)",
    ),
    case(
        "second-document",
        layers("c: relu") + "---\nname: u\n",
        "---",
        "a second YAML document starts here",
    ),
]

CASES = SYNTAX + UNKNOWN_FIELDS + WRONG_TYPES + YAML11 + VARIABLES + NAMES + SHAPES + EXPECT
CASES += RUNAWAY

ONE_READING = [
    # Each was accepted by the analysis and then crashed or disagreed in the generated model.
    case(
        "true-division-in-padding",
        layers("c: conv 3x3 4 padding=${num_classes / 4}"),
        "${num_classes / 4}",
        "c: padding:",
        "got 2.5",
    ),
    case(
        "true-division-gives-a-float-for-a-whole-number",
        layers("c: conv 3x3 ${num_classes / 2}"),
        "${num_classes / 2}",
        "c: filters: must be a whole number, got 5.0",
        "`//` to a whole number",
    ),
    case(
        "repeat-by-true-division",
        layers("c: conv 3x3 4 padding=same repeat=${num_classes / 4}"),
        "${num_classes / 4}",
        "c: repeat: expected a repeat count >= 1, got 2.5",
    ),
    case(
        "number-of-320-digits",
        layers("c: conv 3x3 " + "9" * 320),
        "9" * 20,
        "c: filters: must be a whole number up to 2147483647",
    ),
    case(
        "max-of-one-number",
        layers("c: conv 3x3 ${max(4)}"),
        "max(4)",
        "max() takes a list, or two or more values",
    ),
    case(
        "switched-off-row-with-a-misspelt-type",
        HEAD.replace("vars:\n", "vars:\n  extra: false\n")
        + "layers:\n  - c: conv 3x3 8\n  - x: cnov 3x3 8 if=$extra\n",
        "cnov",
        "x: unknown layer type or block 'cnov'",
        "did you mean 'conv'?",
    ),
    case(
        "switched-off-row-reading-an-unknown-row",
        HEAD.replace("vars:\n", "vars:\n  extra: false\n")
        + "layers:\n  - c: conv 3x3 8\n  - x: conv 3x3 8 from=nosuch if=$extra\n",
        "nosuch",
        "x: from: no earlier row named 'nosuch' to read from",
    ),
    case(
        "from-through-a-variable",
        HEAD.replace("vars:\n", "vars:\n  src: c\n")
        + "layers:\n  - c: conv 3x3 4\n  - d: conv 3x3 4\n  - e: add from=[$src, d]\n",
        "[$src",
        "`from` names rows as they are written; it cannot use variables",
    ),
    case(
        "aux-head-inside-an-inline-sequence",
        layers("c: conv 3x3 4", "s: [gap, {h: dense 3 aux=0.3}]", "g: gap"),
        "0.3",
        "s > h: aux: auxiliary heads (`aux`) belong to rows of the top-level table",
    ),
    case(
        "undefined-variable-in-an-uncalled-block",
        HEAD + "blocks:\n  b:\n    layers:\n      - c: conv 3x3 $widht\n" + "layers:\n  - gap\n",
        "widht",
        "b > c: conv: undefined variable 'widht'",
    ),
    case(
        "variables-that-meet-as-python-names",
        HEAD.replace("vars:\n", "vars:\n  Conv: 4\n  Conv_v: 5\n") + "layers:\n  - gap\n",
        "Conv_v",
        "'Conv' and 'Conv_v' both become the Python name 'Conv_v'",
    ),
    case(
        "repeated-multi-input-layer",
        layers("a: conv 3x3 4 same", "b: conv 3x3 4 same", "s: add from=[a, b] repeat=2"),
        "2\n",
        "s: repeat: a `add` row cannot be repeated",
    ),
    case(
        "layer-parameter-not-a-number",
        layers("c: conv 3x3 4", "n: lrn 3 k=.nan"),
        ".nan",
        "n: k: must be a finite number, got nan",
    ),
    case(
        "auxiliary-head-named-main",
        layers("c: conv 3x3 4", "main: gap aux=1", "g: gap"),
        "main:",
        "an auxiliary head cannot be named 'main'",
    ),
    case(
        "column-inside-a-row-written-over-two-lines",
        HEAD + "layers:\n  - a: conv 3x3 4\n      padding=same 5\n",
        "5\n",
        "positional value '5' after key=value options",
    ),
]
CASES += ONE_READING


def _case_location(c: Case, path: Path) -> str:
    line, column = at(c.text, c.marker, c.occurrence, c.shift)
    return f"{path}:{line}:{column}"


@pytest.mark.parametrize("c", CASES)
def test_bad_spec_gives_one_located_error(c: Case, tmp_path: Path, capsys) -> None:
    path = tmp_path / "spec.yaml"
    path.write_text(c.text, encoding="utf-8")
    code, out, err = run_cli(capsys, "compile", str(path), *c.args)
    assert_one_error(code, out, err, _case_location(c, path), c.phrases, c.absent)


def alias_bomb_positions(text: str) -> tuple[int, set[int]]:
    """The line of `e:` and the columns of its ten `*d` aliases: one of them crosses the cap."""
    line = at(text, "e: &e")[0]
    aliases = [at(text, "*d", k) for k in range(1, text.count("*d") + 1)]
    return line, {column for row, column in aliases if row == line}


def test_alias_bomb_stops_at_an_alias_of_the_line_that_explodes(tmp_path: Path, capsys) -> None:
    text = alias_bomb()
    path = tmp_path / "spec.yaml"
    path.write_text(text, encoding="utf-8")
    code, out, err = run_cli(capsys, "compile", str(path))
    line, columns = alias_bomb_positions(text)
    assert len(columns) == 10
    where = err.removeprefix(f"error: {path}:").split(":")[:2]
    assert int(where[0]) == line, err
    assert int(where[1]) in columns, err
    phrase = f"the document expands to more than {MAX_NODES} nodes (an alias bomb?)"
    assert_one_error(code, out, err, f"{path}:{where[0]}:{where[1]}", (phrase,))


def test_case_markers_are_where_the_tests_think() -> None:
    """Guard the derivations above: each marker exists at least `occurrence` times."""
    for param in CASES:
        (c,) = param.values
        at(c.text, c.marker, c.occurrence, c.shift)
    assert at("ab\ncd", "d") == (2, 2)
    assert at("ab\ncd\ncd", "cd", 2, 1) == (3, 2)
    assert at("x\n\ty", "\t") == (2, 1)


# ---------------------------------------------------------------------------------------------
# What is not YAML text at all


BAD_FILES = [
    pytest.param(b"", (1, 1), "file is empty", id="empty-file"),
    pytest.param(b"\n\n   \n", (1, 1), "file is empty", id="blank-lines"),
    pytest.param(b"# nothing\n# here\n", (1, 1), "file is empty", id="comments-only"),
    pytest.param(
        "name: caf\xe9\ninput: [32, 32, 3]\nlayers:\n  - c: relu\n".encode("latin-1"),
        at("name: caf\xe9", "\xe9"),
        "byte 0xE9 here is not valid UTF-8",
        id="latin-1-file",
    ),
    pytest.param(
        b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(64),
        (1, 1),
        "file looks like a binary file, not YAML",
        id="png-bytes",
    ),
    pytest.param(
        "name: t\n".encode("utf-16"), (1, 1), "the file must be UTF-8 text", id="utf-16-file"
    ),
    pytest.param(
        b"name: t\x07\ninput: [32, 32, 3]\nlayers:\n  - c: relu\n",
        at("name: t\x07", "\x07"),
        "character U+0007 is not allowed",
        id="control-character",
    ),
    pytest.param(b"- a\n- b\n", (1, 1), "a spec is a mapping", id="document-is-a-list"),
    pytest.param(b"hello\n", (1, 1), "a spec is a mapping", id="document-is-a-word"),
]


@pytest.mark.parametrize(("data", "where", "phrase"), BAD_FILES)
def test_file_that_is_no_spec(data: bytes, where, phrase, tmp_path: Path, capsys) -> None:
    path = tmp_path / "spec.yaml"
    path.write_bytes(data)
    code, out, err = run_cli(capsys, "compile", str(path))
    assert_one_error(code, out, err, f"{path}:{where[0]}:{where[1]}", (phrase,))


@pytest.mark.parametrize(
    "tag",
    [
        "!!python/object/apply:os.system ['touch {flag}']",
        "!!python/object/apply:subprocess.call [['touch', '{flag}']]",
        "!!python/name:os.system",
    ],
    ids=["os.system", "subprocess", "python-name"],
)
def test_unsafe_yaml_tags_are_refused_and_run_nothing(tag, tmp_path: Path, capsys) -> None:
    flag = tmp_path / "pwned"
    text = f"name: {tag.format(flag=flag)}\ninput: [32, 32, 3]\nlayers:\n  - c: relu\n"
    path = tmp_path / "spec.yaml"
    path.write_text(text, encoding="utf-8")
    code, out, err = run_cli(capsys, "compile", str(path))
    line, column = at(text, "!!python")
    assert_one_error(code, out, err, f"{path}:{line}:{column}", ("is not allowed",))
    assert not flag.exists()


# ---------------------------------------------------------------------------------------------
# YAML 1.1 surprises that must NOT be errors: 1e-3 is a float


def test_exponent_without_dot_is_a_float(tmp_path: Path, capsys) -> None:
    text = layers("n: lrn 5 alpha=1e-3", "m: {type: lrn, alpha: 1e-3}", "o: lrn 5 beta=$b")
    text = text.replace("num_classes: 10", "num_classes: 10\n  b: 1e-3")
    assert load_yaml(text, "spec.yaml")["layers"][1]["m"]["alpha"] == 0.001
    graph = resolve_source(text)
    alphas = [(n.attrs["alpha"], n.attrs["beta"]) for n in graph.nodes]
    assert alphas == [(0.001, 0.75), (0.001, 0.75), (0.0001, 0.001)]
    assert all(type(a) is float and type(b) is float for a, b in alphas)
    path = tmp_path / "spec.yaml"
    path.write_text(text, encoding="utf-8")
    code, _, err = run_cli(capsys, "compile", str(path))
    assert (code, err) == (0, "")


# ---------------------------------------------------------------------------------------------
# The command line itself: --set and the file path


@pytest.mark.parametrize("pair", ["num_classes", "=5", " =5"])
def test_set_without_name_equals_value(pair, write_spec, capsys) -> None:
    path = write_spec(layers("c: relu"))
    code, out, err = run_cli(capsys, "compile", str(path), "--set", pair)
    assert "Traceback" not in out + err
    assert code == 2
    assert err.startswith("error: --set ")
    assert "NAME=VALUE" in err
    assert "<spec>" not in err


def test_set_without_name_equals_value_exits_2(write_spec, capsys) -> None:
    """The part of the above that holds today."""
    path = write_spec(layers("c: relu"))
    code, out, err = run_cli(capsys, "compile", str(path), "--set", "num_classes")
    assert code == 2 and out == "" and "Traceback" not in err
    assert "expected NAME=VALUE, e.g. --set num_classes=5" in err


def test_set_with_an_unclosed_list(write_spec, capsys) -> None:
    path = write_spec(layers("c: relu"))
    code, out, err = run_cli(capsys, "compile", str(path), "--set", "num_classes=[1, 2")
    assert code == 2 and out == "" and "Traceback" not in err
    assert err.startswith("error: --set num_classes")
    assert "close the list with `]`" in err


def test_set_with_a_bad_value_is_reported_where_it_is_used(write_spec, capsys) -> None:
    text = layers("g: global_avgpool", "d: dense $num_classes")
    path = write_spec(text)
    code, out, err = run_cli(capsys, "compile", str(path), "--set", "num_classes=ten")
    line, column = at(text, "$num_classes")
    assert_one_error(
        code, out, err, f"{path}:{line}:{column}", ("d: units: expected a whole number, got 'ten'",)
    )


def test_missing_file_names_the_path_first(tmp_path: Path, capsys) -> None:
    path = tmp_path / "nope.yaml"
    code, out, err = run_cli(capsys, "compile", str(path))
    assert code == 2 and out == ""
    assert err.startswith(f"error: {path}: ")
    assert "<spec>" not in err


def test_directory_names_the_path_first(tmp_path: Path, capsys) -> None:
    code, out, err = run_cli(capsys, "compile", str(tmp_path))
    assert code == 2 and out == ""
    assert err.startswith(f"error: {tmp_path}")
    assert "directory" in err
    assert "<spec>" not in err


def test_unnamed_table_rows_are_named_after_their_type(write_spec, capsys) -> None:
    path = write_spec(layers("conv 3x3 16", "relu", "conv 3x3 8"))
    assert main(["compile", str(path), "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)["rows"]
    assert [r["name"] for r in rows] == ["conv_0", "relu", "conv_1"]


def test_missing_file_exits_2_with_a_hint(tmp_path: Path, capsys) -> None:
    code, out, err = run_cli(capsys, "compile", str(tmp_path / "nope.yaml"))
    assert code == 2 and out == "" and "Traceback" not in err
    assert "no such spec file" in err
    assert err.count("error:") == 1


# ---------------------------------------------------------------------------------------------
# End to end: a real process, its exit code and its stderr


def run_process(tmp_path: Path, *argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "netspec", *argv],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


E2E = [
    pytest.param(layers("conv1: cnov 3x3 64"), (), "cnov", "did you mean 'conv'?", id="typo"),
    pytest.param(
        layers("fc: dense $num_clases"), (), "num_clases", "did you mean 'num_classes'?", id="var"
    ),
    pytest.param(
        layers("c: conv 3x3 8"),
        ("--set", "num_clases=5"),
        "vars:",
        "no variable 'num_clases'",
        id="set-unknown-variable",
    ),
    pytest.param(
        TWO_KEY_DEFAULT,
        (),
        "{a: 1",
        "args",
        id="block-default-with-two-keys",
    ),
    pytest.param(
        layers("c: conv 3x3 " + "9" * 5000),
        (),
        "9999",
        "too many digits",
        id="5000-digit-number",
    ),
]


@pytest.mark.parametrize(("text", "args", "marker", "phrase"), E2E)
def test_end_to_end_exit_code_2_and_no_traceback(text, args, marker, phrase, tmp_path) -> None:
    (tmp_path / "spec.yaml").write_text(text, encoding="utf-8")
    result = run_process(tmp_path, "compile", "spec.yaml", *args)
    line, column = at(text, marker)
    assert "Traceback" not in result.stderr + result.stdout
    assert result.returncode == 2, result.stderr
    assert result.stdout == ""
    assert result.stderr.startswith(f"error: spec.yaml:{line}:{column}: "), result.stderr
    assert phrase in result.stderr


def test_end_to_end_alias_bomb(tmp_path: Path) -> None:
    text = alias_bomb()
    (tmp_path / "spec.yaml").write_text(text, encoding="utf-8")
    result = run_process(tmp_path, "compile", "spec.yaml")
    line, columns = alias_bomb_positions(text)
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert any(result.stderr.startswith(f"error: spec.yaml:{line}:{c}: ") for c in columns)


def test_end_to_end_unsafe_tag_runs_nothing(tmp_path: Path) -> None:
    flag = tmp_path / "pwned"
    text = f"name: !!python/object/apply:os.system ['touch {flag}']\ninput: [32, 32, 3]\n"
    (tmp_path / "spec.yaml").write_text(text + "layers:\n  - c: relu\n", encoding="utf-8")
    result = run_process(tmp_path, "compile", "spec.yaml")
    line, column = at(text, "!!python")
    assert result.returncode == 2
    assert result.stderr.startswith(f"error: spec.yaml:{line}:{column}: ")
    assert "Traceback" not in result.stderr
    assert not flag.exists()


def test_end_to_end_missing_file(tmp_path: Path) -> None:
    result = run_process(tmp_path, "compile", "missing.yaml")
    assert result.returncode == 2
    assert "no such spec file" in result.stderr
    assert "Traceback" not in result.stderr
