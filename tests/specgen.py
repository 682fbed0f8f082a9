"""Random netspec specs over the whole grammar, and the oracle that judges each one.

`generate(seed)` writes one spec as YAML text (plus `--set` overrides) the way a new user might:
a small input, `vars` with expressions, `defaults`, `blocks` with arguments and defaults (blocks
calling blocks), rows in the compact and the mapping form, named and unnamed, odd row names,
`repeat` with `$i`, `if` (true, and false on rows that would be invalid if switched on), `from`
(names, `input`, lists, variables), inline sequences, `concat`/`add` branch lists, `aux` heads
and `expect` columns. The generator tracks shapes so that most untouched specs are valid; then
about half of the specs get one plausible mistake (a misspelt type, key or word, a YAML 1.1
boolean, an undefined variable, a bad number, a missing `flatten`, a wrong expectation, ...)
and/or random token mutations (drop, duplicate or swap a token, misspell a word). Everything is
deterministic from the seed.

`judge(spec, folder)` is the oracle. It compiles the spec as `netspec compile` does (the
analysis, then the abstract Flax cross-check) and accepts exactly two outcomes:

- rejected: a `SpecError` located at a line and column inside the spec file (an error about a
  `--set` override may have no location), not a "netspec bug" message;
- accepted: the module built by `Compiled.build(seed=0)`, run on a random batch (train=False,
  and train=True when the spec has auxiliary heads), agrees with the analysis on its own
  terms: every row's parameter and statistic count under the row's path in the module's state
  (so shared weights cannot hide), no parameter outside the rows, the total, every layer's
  input and output shape as the module saw them while running, every row's output shape, the
  output's shape, and all outputs finite.

Anything else (another exception, a disagreement) is a failure with a signature: the exception
type, where netspec raised it and its message with names and numbers blanked out.
"""

from __future__ import annotations

import contextlib
import math
import random
import re
import traceback
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

Shape = tuple[int, int, int]

# ---------------------------------------------------------------------------------------------
# Names a user might pick (and some that only a fuzzer would)

PLAIN_ROW_NAMES = [
    "conv1",
    "conv2",
    "stem",
    "pool1",
    "pool",
    "bn1",
    "norm",
    "act",
    "relu1",
    "stage1",
    "stage2",
    "stage3",
    "block",
    "head",
    "fc",
    "fc1",
    "drop",
    "mix",
    "res",
    "cat",
    "side",
    "proj",
    "branch",
    "trunk",
    "body",
    "features",
    "classifier",
    "out",
    "a",
    "b",
    "c",
    "d",
    "e",
    "p",
    "q",
    "r",
    "s",
]
ODD_ROW_NAMES = [
    "3a",
    "_3a",
    "1x1",
    "3x3",
    "class",
    "class_",
    "x",
    "x_",
    "self",
    "def",
    "lambda",
    "None",
    "True",
    "train",
    "kw",
    "rngs",
    "dtype",
    "in_shape",
    "out_shape",
    "shape",
    "logits",
    "jnp",
    "jax",
    "nnx",
    "np",
    "math",
    "i",
    "item",
    "items",
    "Group",
    "Conv",
    "Dense",
    "range",
    "len",
    "main",
    "loss_weights",
    "window",
    "concat_shape",
    "_",
    "__init__",
    "__call__",
    "n__x",
    "super",
    "print",
    "object",
    "type",
    "list",
    "conv_2",
    "layer0",
    "b0",
    "input_",
    "heads",
    "eval",
    "sow",
    "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
]
BAD_ROW_NAMES = ["ﬁ", "a²", "ä", "1", "007", "input", "from", "if", "repeat", "aux", "expect"]
VAR_NAMES = {
    "w": [
        "w",
        "width",
        "base",
        "filters",
        "c0",
        "x",
        "self",
        "dtype",
        "rngs",
        "kw",
        "i",
        "in_shape",
        "train",
        "math",
        "len",
        "class_",
        "Conv",
        "Dense",
        "BatchNorm",
        "MaxPool",
        "Activation",
        "Concat",
        "Add",
        "concat_shape",
        "window",
        "spec_text",
        "read_scalar",
        "Unit",
        "Net",
        "T",
        "shape",
        "item",
        "logits",
        "param_dtype",
    ],
    "classes": ["classes", "num_classes", "n_out", "k", "logits", "out_shape"],
    "flag": ["flag", "use_bn", "on", "enabled", "deep", "jnp"],
}
BLOCK_NAMES = [
    "unit",
    "res",
    "mix",
    "stage",
    "head",
    "sep",
    "skip",
    "basic",
    "conv_block",
    "down",
    "cell",
    "layer",
    "group",
    "Group",
    "net",
    "t",
    "concat",
    "activation",
    "math",
    "jnp",
    "Add",
    "_b",
    "b2",
    "3x",
    "block",
]
SPEC_NAMES = [
    "t",
    "net",
    "tiny",
    "cifar",
    "small",
    "my_net",
    "group",
    "Group",
    "conv",
    "unit",
    "3d",
    "ﬁnet",
    "class",
]
LAYER_TYPES = [
    "conv",
    "convolution",
    "maxpool",
    "avgpool",
    "global_avgpool",
    "gap",
    "lrn",
    "batchnorm",
    "bn",
    "batch_norm",
    "dropout",
    "flatten",
    "dense",
    "linear",
    "fc",
    "relu",
    "relu6",
    "tanh",
    "sigmoid",
    "softmax",
    "gelu",
    "silu",
    "elu",
    "leaky_relu",
    "softplus",
    "activation",
    "concat",
    "add",
    "zeropad",
    "pad",
]
ACTIVATIONS = [
    *("relu", "relu6", "tanh", "sigmoid", "gelu", "silu", "elu", "leaky_relu", "softplus"),
    *("hardswish", "hardsigmoid", "mish", "gelu_tanh"),
]
MISSPELLINGS = {
    "conv": ["cnov", "Conv", "conv2d", "convolution2d"],
    "maxpool": ["maxpol", "max_pool", "MaxPool"],
    "avgpool": ["avg_pool", "avgpol"],
    "dense": ["dens", "Dense", "linaer"],
    "batchnorm": ["batchnrom", "BatchNorm"],
    "bn": ["BN", "nb"],
    "relu": ["reul", "ReLU", "rleu"],
    "dropout": ["droput", "Dropout"],
    "flatten": ["flaten", "Flatten"],
    "global_avgpool": ["global_avg_pool", "globalavgpool"],
    "gap": ["gpa"],
    "concat": ["concatenate", "cat"],
    "add": ["sum", "plus"],
    "same": ["sam", "SAME", "Same"],
    "valid": ["vaild", "VALID"],
    "padding": ["paddin", "pad", "padding_mode"],
    "stride": ["strid", "strides"],
    "filters": ["filter", "features", "channels"],
    "kernel": ["kernal", "kernel_size", "size"],
    "activation": ["activaton", "act"],
    "units": ["unit", "features"],
    "rate": ["p", "rat"],
    "from": ["form", "frm", "inputs"],
    "repeat": ["repeats", "times"],
    "layers": ["layer", "layres"],
    "blocks": ["block", "blcoks"],
    "vars": ["var", "variables"],
    "defaults": ["default", "defualts"],
    "args": ["argz", "arguments"],
    "input": ["inputs", "input_shape"],
    "ceil": ["cel", "ceiling"],
    "true": ["True", "yes", "on"],
    "false": ["False", "no", "off"],
}
WEIRD_NUMBERS = [
    "0",
    "-1",
    "-8",
    "1.5",
    "2.5",
    "1e400",
    "-1e400",
    ".nan",
    ".inf",
    "-.inf",
    "9" * 320,
    "1001",
    "100000",
    "0x10",
    "0o17",
    "1_000",
    "+8",
    "8.0",
    "1e1",
    "${1/0}",
    "${9 ** 9 ** 9}",
    "${10 ** 18 + 1}",
    "${-3}",
    "${0.5}",
    "${'8'}",
    "${[8]}",
    "${none}",
    "${true}",
]


# ---------------------------------------------------------------------------------------------
# Shape arithmetic (the generator's own, only to keep untouched specs mostly valid)


def window_out(
    n: int, k: int, s: int, pad: str | int, dilation: int = 1, ceil: bool = False
) -> int:
    """Output size of a sliding window; 0 when it does not fit."""
    span = dilation * (k - 1) + 1
    if pad == "same":
        return -(-n // s)
    p = 0 if pad == "valid" else int(pad)
    if n + 2 * p < span:
        return 0
    if not ceil:
        return (n + 2 * p - span) // s + 1
    out = -(-(n + 2 * p - span) // s) + 1
    if (out - 1) * s >= n + p:
        out -= 1
    return out


# ---------------------------------------------------------------------------------------------
# The spec as rows, rendered to YAML text


@dataclass
class Row:
    """One row (or branch) before rendering.

    `body` is a compact string, a mapping (key -> value text), a list of Rows (an inline
    sequence) or `(kind, [Row, ...])` for `concat` / `add` branches. `opts` are row options
    (`from`, `repeat`, `if`, `aux`, `expect`) as YAML value text; `style` says where they are
    written: "compact" (`key=value` / `->` in the string), "beside" (keys beside the name) or
    "inside" (keys inside a mapping body).
    """

    name: str | None
    body: Any
    opts: dict[str, str] = field(default_factory=dict)
    style: str = "compact"
    flow: bool = True


FLOW_SPECIALS = set("[]{},")
START_SPECIALS = set("[]{}&*!|>'\"%@`#,?:-")


def scalar(text: str, flow: bool = False) -> str:
    """`text` as a YAML plain scalar where that reads back as the same string, else quoted."""
    needs = (
        not text
        or (text[0] in START_SPECIALS and not re.match(r"-?\d|-\.", text))
        or ": " in text
        or " #" in text
        or text.endswith(":")
        or text != text.strip()
        or (flow and any(c in FLOW_SPECIALS for c in text))
    )
    if not needs:
        return text
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def value(text: str, flow: bool = False) -> str:
    """A YAML value: flow lists (`[1, 3]`, `[a, b]`) as they are, other text as `scalar`."""
    if re.fullmatch(r"\[[^\[\]{}]*\]|\[\[[^{}]*\]\]", text):
        return text
    return scalar(text, flow)


def name_key(name: str) -> str:
    return scalar(name, flow=True)


def compact_text(row: Row) -> str:
    """A compact body with its options written in it."""
    text = row.body
    expect = None
    for key, value in row.opts.items():
        if key == "expect":
            expect = value
        else:
            text += f" {key}={value}"
    if expect is not None:
        text += f" -> {expect}"
    return text


def simple(row: Row) -> bool:
    """A row that fits on one line inside a flow list."""
    return isinstance(row.body, str) and (not row.opts or row.style == "compact")


def flow_item(row: Row) -> str:
    body = scalar(compact_text(row), flow=True)
    return f"{name_key(row.name)}: {body}" if row.name is not None else body


def render_rows(rows: list[Row], indent: int) -> list[str]:
    lines: list[str] = []
    for row in rows:
        lines += render_row(row, indent)
    return lines


def render_row(row: Row, indent: int) -> list[str]:
    """YAML lines of one sequence entry `- ...` at `indent` spaces."""
    pad = " " * indent
    key = f"{name_key(row.name)}:" if row.name is not None else None
    inner = " " * (indent + 4)
    body = row.body
    opts = dict(row.opts)
    lines: list[str]
    if isinstance(body, str):
        text = compact_text(row) if row.style == "compact" or key is None else body
        if row.style == "compact" or key is None:
            opts = {}
        lines = [f"{pad}- {key} {scalar(text)}" if key else f"{pad}- {scalar(text)}"]
    elif isinstance(body, dict):
        entries = dict(body)
        if row.style == "inside":
            entries.update(opts)
            opts = {}
        if key is None:  # an unnamed mapping row: a mistake a user could make
            inside = ", ".join(f"{k}: {value(v, flow=True)}" for k, v in entries.items())
            lines = [f"{pad}- {{{inside}}}"]
        elif row.flow:
            inside = ", ".join(f"{k}: {value(v, flow=True)}" for k, v in entries.items())
            lines = [f"{pad}- {key} {{{inside}}}"]
        else:
            lines = [f"{pad}- {key}"] + [f"{inner}{k}: {value(v)}" for k, v in entries.items()]
    elif isinstance(body, list):
        if key is None or (row.flow and all(simple(r) for r in body)):
            if all(simple(r) for r in body):
                inside = ", ".join(flow_item(r) for r in body)
                lines = [f"{pad}- {key + ' ' if key else ''}[{inside}]"]
            else:
                lines = [f"{pad}- {key or 'seq:'}", *render_rows(body, indent + 4)]
        else:
            lines = [f"{pad}- {key}", *render_rows(body, indent + 4)]
    else:
        kind, branches = body
        if key is None:
            lines = [f"{pad}- {kind}:", *render_rows(branches, indent + 4)]
        else:
            lines = [f"{pad}- {key}", f"{inner}{kind}:", *render_rows(branches, indent + 6)]
    if key is not None:
        lines += [f"{pad}  {k}: {value(v)}" for k, v in opts.items()]
    return lines


# ---------------------------------------------------------------------------------------------
# Blocks the generator knows how to call


@dataclass
class Block:
    """A block definition and how to call it on a shape."""

    name: str
    lines: list[str]
    params: list[str]
    call: Callable[[Shape], tuple[list[str], dict[str, str], Shape] | None]
    """input shape -> (positional texts, keyword texts, output shape), None if it cannot."""
    spatial: bool = True
    """Whether it needs a spatial (not yet flattened) input."""
    single: Callable[[Shape, int], Shape | None] | None = None
    """(input shape, first argument) -> output when called with only its first argument."""


@dataclass
class GeneratedSpec:
    """One generated spec: its text, `--set` overrides, seed and what was done to it."""

    seed: int
    text: str
    overrides: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


class Writer:
    """Writes one spec from a seeded random generator."""

    def __init__(self, seed: int) -> None:
        self.seed = seed
        self.rng = random.Random(seed)
        self.notes: list[str] = []
        self.vars: dict[str, Any] = {}
        """Variable name -> its effective value (after overrides)."""
        self.role: dict[str, str] = {}
        """Role (w, classes, flag, ...) -> the variable's name."""
        self.var_lines: list[str] = []
        self.overrides: list[str] = []
        self.blocks: list[Block] = []
        self.conv_padding = "valid"
        self.used_names: set[str] = set()
        self.counter = 0

    # ---- small choices -------------------------------------------------------------------

    def chance(self, p: float) -> bool:
        return self.rng.random() < p

    def pick(self, options: list[Any] | tuple[Any, ...]) -> Any:
        return self.rng.choice(list(options))

    def row_name(self, odd: float = 0.08) -> str | None:
        """A fresh row name, sometimes an odd one, sometimes none (auto-named)."""
        if self.chance(0.18):
            return None
        pool = ODD_ROW_NAMES if self.chance(odd) else PLAIN_ROW_NAMES
        if self.chance(0.01):
            pool = BAD_ROW_NAMES
        for _ in range(20):
            name = self.pick(pool)
            if name not in self.used_names:
                self.used_names.add(name)
                return name
        return self.fresh("r")

    def fresh(self, name: str) -> str:
        """`name`, or `name` with a number when a row already has it."""
        while name in self.used_names:
            self.counter += 1
            name = f"{name.rstrip('0123456789')}{self.counter}"
        self.used_names.add(name)
        return name

    def named(self) -> str:
        """A row name for a row that must have one (rarely left out: a mistake then)."""
        return self.row_name() or self.fresh(self.pick(PLAIN_ROW_NAMES))

    def int_text(self, value: int, extra: dict[str, int] | None = None) -> str:
        """`value` as a literal, a variable or an expression over the spec's variables."""
        if self.chance(0.55):
            return str(value)
        ints = {
            name: v
            for name, v in {**self.vars, **(extra or {})}.items()
            if isinstance(v, int) and not isinstance(v, bool) and v > 0
        }
        options: list[str] = []
        for name, v in ints.items():
            if v == value:
                options += [f"${name}", f"${{{name}}}", f"${{{name} * 1}}"]
            if 2 * v == value:
                options += [f"${{{name} * 2}}", f"${{2*{name}}}"]
            if v // 2 == value and v % 2 == 0:
                options += [f"${{{name} // 2}}", f"${{{name} / 2}}", f"${{int({name} / 2)}}"]
            if max(1, v // 4) == value:
                options.append(f"${{max(1, {name} // 4)}}")
            if math.ceil(v / 3) == value:
                options.append(f"${{ceil({name} / 3)}}")
            if min(v, value) == value:
                options.append(f"${{min({name}, {value})}}")
            options.append(
                f"${{{name} + {value - v}}}" if value >= v else f"${{{name} - {v - value}}}"
            )
        if "xs" in self.vars and value in self.vars["xs"]:
            options.append(f"${{xs[{self.vars['xs'].index(value)}]}}")
        options += [f"${{{value}}}", f"${{abs(-{value})}}", f"${{round({value}.4)}}"]
        if self.role.get("flag"):
            flag = self.role["flag"]
            options.append(f"${{{value} if {flag} else {value}}}")
        return self.pick(options)

    def window_text(self, kh: int, kw: int, s: int) -> str:
        """`KxK[/S]`, sometimes with expressions in it."""
        if self.chance(0.06) and self.role.get("w"):
            k = f"${{{kh}}}" if self.chance(0.5) else str(kh)
            text = f"{k}x{kw}"
        else:
            text = f"{kh}x{kw}" if kh != kw or self.chance(0.9) else str(kh)
        if s != 1 or self.chance(0.1):
            text += f"/{self.int_text(s) if self.chance(0.1) else s}"
        return text

    # ---- the top of the file ---------------------------------------------------------------

    def make_vars(self) -> None:
        w = self.pick([4, 4, 6, 8, 8])
        classes = self.pick([2, 3, 5, 10])
        flag = self.chance(0.5)
        for role, value in (("w", w), ("classes", classes), ("flag", flag)):
            if role != "w" and self.chance(0.15):
                continue
            name = self.pick(VAR_NAMES[role]) if self.chance(0.2) else VAR_NAMES[role][0]
            if name in self.vars:
                continue
            self.vars[name] = value
            self.role[role] = name
            shown = str(value).lower() if isinstance(value, bool) else str(value)
            self.var_lines.append(f"{name}: {shown}")
        w_name = self.role["w"]
        if self.chance(0.4):
            self.vars["wide"] = 2 * w
            self.var_lines.append(
                "wide: "
                + scalar(self.pick(["${W * 2}", "${2 * W}", "${W + W}"]).replace("W", w_name))
            )
        if self.chance(0.3):
            self.vars["half"] = w // 2
            self.var_lines.append(
                "half: "
                + scalar(
                    self.pick(["${W // 2}", "${max(1, W // 2)}", "${int(W / 2)}"]).replace(
                        "W", w_name
                    )
                )
            )
        if self.chance(0.25):
            self.vars["third"] = math.ceil(w / 3)
            self.var_lines.append(f"third: {scalar('${ceil(W / 3)}'.replace('W', w_name))}")
        if self.chance(0.1):
            self.vars["act"] = self.pick(["relu", "gelu", "tanh"])
            self.var_lines.append(f"act: {self.vars['act']}")
        if self.chance(0.3):
            self.vars["xs"] = [2, 3]
            self.var_lines.append("xs: [2, 3]")
        if self.chance(0.2):
            self.vars["depth"] = self.pick([1, 2])
            self.var_lines.append(f"depth: {self.vars['depth']}")
        if self.chance(0.15):
            self.vars["rate"] = 0.25
            self.var_lines.append(f"rate: {self.pick(['0.25', '2.5e-1', '${1 / 4}'])}")
        if self.chance(0.1):
            self.var_lines.append(
                self.pick(
                    [
                        "note: hello",
                        "eps: .nan",
                        "big: " + "9" * 320,
                        "tiny: 1e-400",
                        "s: '$$5'",
                        "empty:",
                        "lst: []",
                    ]
                )
            )
        # overrides, as `netspec compile --set` would pass them
        if self.chance(0.2):
            role = self.pick([r for r in self.role if r != "flag"] or ["w"])
            name = self.role[role]
            value = self.pick([4, 8, 6]) if role == "w" else self.pick([2, 7])
            self.overrides.append(f"{name}={value}")
            self.vars[name] = value
            if role == "w":
                self.vars.update(
                    {
                        k: v
                        for k, v in (
                            ("wide", 2 * value),
                            ("half", value // 2),
                            ("third", math.ceil(value / 3)),
                        )
                        if k in self.vars
                    }
                )
        if "flag" in self.role and self.chance(0.15):
            value = not self.vars[self.role["flag"]]
            self.overrides.append(f"{self.role['flag']}={'true' if value else 'false'}")
            self.vars[self.role["flag"]] = value

    def make_defaults(self) -> list[str]:
        entries = []
        if self.chance(0.3):
            conv = {}
            if self.chance(0.6):
                conv["padding"] = "same"
                self.conv_padding = "same"
            if self.chance(0.4):
                conv["activation"] = self.pick(["relu", "gelu", "tanh"])
                if "act" in self.vars and self.chance(0.5):
                    conv["activation"] = '"$act"'
            if self.chance(0.3):
                conv["bias"] = "false"
                if "flag" in self.role and self.chance(0.4):
                    conv["bias"] = f'"${self.role["flag"]}"'
            if conv:
                entries.append("conv: {" + ", ".join(f"{k}: {v}" for k, v in conv.items()) + "}")
        if self.chance(0.12):
            entries.append("maxpool: {rounding: ceil}")
        if self.chance(0.12):
            entries.append("dense: {activation: relu}")
        if self.chance(0.08):
            entries.append(
                self.pick(
                    [
                        "batchnorm: {eps: 1e-3}",
                        "batchnorm: {momentum: 0.99}",
                        "dropout: {rate: 0.1}",
                    ]
                )
            )
        return entries

    # ---- blocks ----------------------------------------------------------------------------

    def block_name(self) -> str:
        taken = {b.name for b in self.blocks}
        for _ in range(20):
            name = self.pick(BLOCK_NAMES[:12]) if self.chance(0.85) else self.pick(BLOCK_NAMES)
            if name not in taken:
                return name
        return f"blk{len(self.blocks)}"

    def arg_name(self, plain: str) -> str:
        return (
            self.pick(
                [
                    "self",
                    "x",
                    "i",
                    "kw",
                    "in_shape",
                    "dtype",
                    "train",
                    "f_",
                    "Conv",
                    "BatchNorm",
                    "Activation",
                    "window",
                    "spec_text",
                    "read_scalar",
                    "concat_shape",
                    "shape",
                    "Unit",
                    "Net",
                ]
            )
            if self.chance(0.08)
            else plain
        )

    def make_blocks(self) -> None:
        kinds = ["unit", "res", "mix", "skip", "outer", "head", "sep", "stack", "resid"]
        for _ in range(self.pick([0, 0, 1, 1, 2, 3])):
            kind = self.pick(kinds)
            builder = getattr(self, f"block_{kind}")
            block = builder(self.block_name())
            if block is not None:
                self.blocks.append(block)

    def block_header(self, name: str, args: list[str], defaults: str | None = None) -> list[str]:
        lines = [f"  {name_key(name)}:"]
        if self.chance(0.2):
            lines.append(
                "    doc: "
                + scalar(
                    self.pick(["a block", "conv, bn, relu", "Figure 2 (b): a # not a comment"])
                )
            )
        if args or self.chance(0.3):
            lines.append(f"    args: [{', '.join(args)}]")
        if defaults:
            lines.append(f"    defaults:\n      {defaults}")
        return lines

    def block_unit(self, name: str) -> Block:
        f, s = self.arg_name("f"), "s"
        bias = self.chance(0.3)
        conv = self.pick(
            [
                f"conv 3x3/${s} ${f} same",
                f"conv 3x3/${s} ${f} padding=1",
                f"conv 3x3/${{{s}}} ${{{f}}} padding=same",
            ]
        )
        rows = [
            Row(self.pick(["conv", None]), conv),
            Row(self.pick(["bn", None, "norm"]), self.pick(["bn", "batchnorm"])),
            Row(None, self.pick(["relu", "activation relu"])),
        ]
        lines = self.block_header(name, [f, f"{{{s}: 1}}"], "conv: {bias: false}" if bias else None)
        lines += ["    layers:", *render_rows(rows, 6)]

        def call(shape: Shape) -> tuple[list[str], dict[str, str], Shape] | None:
            h, w, _ = shape
            filters = self.pick([4, 8, self.vars.get(self.role["w"], 4)])
            stride = 2 if min(h, w) >= 6 and self.chance(0.3) else 1
            kw = {s: str(stride)} if stride != 1 or self.chance(0.2) else {}
            return [self.int_text(filters)], kw, (-(-h // stride), -(-w // stride), filters)

        return Block(name, lines, [f, s], call, single=lambda sh, v: (sh[0], sh[1], v))

    def block_res(self, name: str) -> Block:
        f, s, project = self.arg_name("filters"), "stride", "project"
        main = [
            Row("conv1", f"conv 3x3/${s} ${f} same"),
            Row("bn1", "bn"),
            Row("relu", "relu"),
            Row("conv2", f"conv 3x3 ${f} same"),
            Row("bn2", "bn"),
        ]
        shortcut = [
            Row("conv", f"conv 1x1/${s} ${f} same if=${project}"),
            Row("bn", f"bn if=${project}"),
        ]
        branches = [Row("main", main, flow=False), Row("shortcut", shortcut, flow=False)]
        lines = self.block_header(name, [f, f"{{{s}: 1}}", f"{{{project}: false}}"])
        if self.chance(0.5):
            lines += [
                "    layers:",
                *render_rows([Row("residual", ("add", branches)), Row("relu", "relu")], 6),
            ]
        else:
            lines += ["    add:", *render_rows(branches, 6)]

        def call(shape: Shape) -> tuple[list[str], dict[str, str], Shape] | None:
            h, w, c = shape
            stride = 2 if min(h, w) >= 6 and self.chance(0.3) else 1
            filters = c if stride == 1 and self.chance(0.5) and c <= 16 else self.pick([4, 8])
            kw: dict[str, str] = {}
            if stride != 1:
                kw[s] = str(stride)
            if stride != 1 or filters != c:
                kw[project] = "true"
            elif self.chance(0.2):
                kw[project] = "false"
            return [self.int_text(filters)], kw, (-(-h // stride), -(-w // stride), filters)

        return Block(
            name, lines, [f, s, project], call, single=lambda sh, v: sh if sh[2] == v else None
        )

    def block_mix(self, name: str) -> Block:
        a, b = "a", self.arg_name("b")
        pool = self.pick(["maxpool 3x3/1 padding=1", "avgpool 3x3/1 same", "maxpool 3x3/1 same"])
        branches = [
            Row(self.pick(["b1x1", None]), f"conv 1x1 ${a}"),
            Row(
                self.pick(["b3x3", None]),
                [Row("reduce", f"conv 1x1 ${b}"), Row("conv", f"conv 3x3 ${b} padding=same")],
            ),
            Row(self.pick(["pool_proj", None]), [Row(None, pool), Row(None, f"conv 1x1 ${a}")]),
        ]
        lines = [*self.block_header(name, [a, b]), "    concat:", *render_rows(branches, 6)]

        def call(shape: Shape) -> tuple[list[str], dict[str, str], Shape] | None:
            h, w, _ = shape
            x, y = self.pick([2, 4]), self.pick([2, 4, 6])
            if self.chance(0.2):
                return [self.int_text(x)], {b: str(y)}, (h, w, 2 * x + y)
            return [self.int_text(x), self.int_text(y)], {}, (h, w, 2 * x + y)

        return Block(name, lines, [a, b], call)

    def block_skip(self, name: str) -> Block:
        c = self.arg_name("c")
        branches = [
            Row("main", [Row(None, f"conv 3x3 ${c} same"), Row(None, "bn")], flow=self.chance(0.5)),
            Row("identity", []),
        ]
        lines = [*self.block_header(name, [c]), "    add:", *render_rows(branches, 6)]

        def call(shape: Shape) -> tuple[list[str], dict[str, str], Shape] | None:
            return [self.int_text(shape[2])], {}, shape

        return Block(name, lines, [c], call, single=lambda sh, v: sh if sh[2] == v else None)

    def block_sep(self, name: str) -> Block:
        c, f = "channels", "f"
        depthwise = self.pick(
            [f"conv 3x3 ${c} same groups=${c}", "conv 3x3 $in.c same groups=$in.c"]
        )
        rows = [Row("dw", depthwise), Row("pw", f"conv 1x1 ${f} relu")]
        lines = [*self.block_header(name, [c, f"{{{f}: 8}}"]), "    layers:", *render_rows(rows, 6)]

        def call(shape: Shape) -> tuple[list[str], dict[str, str], Shape] | None:
            h, w, ch = shape
            f_value = self.pick([4, 8])
            kw = {f: str(f_value)} if f_value != 8 else {}
            return [self.int_text(ch)], kw, (h, w, f_value)

        return Block(
            name,
            lines,
            [c, f],
            call,
            single=lambda sh, v: (sh[0], sh[1], 8) if sh[2] == v else None,
        )

    def block_stack(self, name: str) -> Block:
        """A block repeating a row by its own argument, with rows under conditions on it."""
        c, n = self.arg_name("c"), "n"
        rows = [
            Row("convs", f"conv 3x3 ${c} same repeat=${n}"),
            Row("extra", f"relu if=${{{n} > 1}}"),
            Row("norm", f"bn if=${{{n} == 1}}"),
        ]
        lines = [*self.block_header(name, [c, f"{{{n}: 2}}"]), "    layers:"]
        lines += render_rows(rows, 6)

        def call(shape: Shape) -> tuple[list[str], dict[str, str], Shape] | None:
            filters = self.pick([4, 8])
            kw = {n: self.pick(["1", "3"])} if self.chance(0.4) else {}
            return [self.int_text(filters)], kw, (shape[0], shape[1], filters)

        return Block(name, lines, [c, n], call, single=lambda sh, v: (sh[0], sh[1], v))

    def block_resid(self, name: str) -> Block:
        """A residual block written with `from` inside, repeated rows reading `$i`."""
        c = self.arg_name("c")
        rows = [
            Row("a", f"conv 3x3 ${c} same"),
            Row("b", "dropout ${0.1 * i} repeat=2" if self.chance(0.5) else "bn"),
            Row("s", self.pick(["add from=[input, b]", "add from=[b, input]", "add from=[a, b]"])),
            Row("t", "relu from=s" if self.chance(0.3) else "relu"),
        ]
        lines = [*self.block_header(name, [c]), "    layers:", *render_rows(rows, 6)]

        def call(shape: Shape) -> tuple[list[str], dict[str, str], Shape] | None:
            return [self.int_text(shape[2])], {}, shape

        return Block(name, lines, [c], call, single=lambda sh, v: sh if sh[2] == v else None)

    def block_outer(self, name: str) -> Block | None:
        """A block that calls another block with one argument (the rest at their defaults)."""
        inner = [b for b in self.blocks if b.single is not None]
        if not inner:
            return None
        callee = self.pick(inner)
        f = self.arg_name("f")
        rows = [
            Row(self.pick(["first", "a", None]), f"conv 1x1 ${f}"),
            Row(self.pick(["inner", "b", None]), f"{callee.name} ${f}"),
        ]
        lines = [*self.block_header(name, [f]), "    layers:", *render_rows(rows, 6)]

        def call(shape: Shape) -> tuple[list[str], dict[str, str], Shape] | None:
            filters = self.pick([4, 8])
            assert callee.single is not None
            out = callee.single((shape[0], shape[1], filters), filters)
            return None if out is None else ([self.int_text(filters)], {}, out)

        return Block(name, lines, [f], call)

    def block_head(self, name: str) -> Block:
        classes = self.role.get("classes")
        units = f"${classes}" if classes else "10"
        rows = [
            Row(None, self.pick(["gap", "global_avgpool", "flatten"])),
            Row(None, "dropout 0.2"),
            Row(self.pick(["fc", "classifier"]), f"dense {units}"),
        ]
        lines = [*self.block_header(name, []), "    layers:", *render_rows(rows, 6)]
        n = self.vars.get(classes, 10) if classes else 10

        def call(shape: Shape) -> tuple[list[str], dict[str, str], Shape] | None:
            if "flatten" in rows[0].body and shape[0] * shape[1] * shape[2] > 4096:
                return None
            return [], {}, (1, 1, n)

        return Block(name, lines, [], call, spatial=False)

    # ---- rows ------------------------------------------------------------------------------

    def conv_row(self, shape: Shape, in_block: bool = False) -> tuple[Row, Shape] | None:
        h, w, c = shape
        k = self.pick([1, 3, 3, 3, 5]) if min(h, w) >= 5 else self.pick([1, 3])
        kh, kw = (k, k) if self.chance(0.85) else self.pick([(1, 3), (3, 1), (2, 3)])
        s = 2 if min(h, w) >= 8 and self.chance(0.3) else 1
        filters = self.pick([2, 4, 6, 8, 8, 12, 16])
        pad: str | int = (
            self.pick(["same", "same", "valid", 1])
            if kh == kw == 3
            else self.pick(["same", "valid"])
        )
        words: list[str] = []
        effective = pad
        if pad == "same":
            words.append(self.pick(["same", "padding=same"]))
        elif pad == "valid":
            if self.conv_padding == "same" and self.chance(0.5):
                effective = "same"
            else:
                words.append(
                    self.pick(["valid", "padding=valid"])
                    if self.conv_padding == "same" or self.chance(0.3)
                    else ""
                )
        else:
            words.append(f"padding={pad}")
        dilation = 2 if kh == kw == 3 and pad == "same" and self.chance(0.08) else 1
        if dilation > 1:
            words.append("dilation=2")
        if self.chance(0.3):
            words.append(
                self.pick(["relu", "activation=relu", f"activation={self.pick(ACTIVATIONS)}"])
            )
        if self.chance(0.1):
            words.append("bias=false")
        if c % 2 == 0 and filters % 2 == 0 and self.chance(0.06):
            words.append("groups=2")
        filters_text = self.int_text(filters)
        if c <= 16 and self.chance(0.08):  # filters from the input's channels (`in.c`)
            factor = self.pick([1, 2])
            filters, filters_text = c * factor, "$in.c" if factor == 1 else "${in.c * 2}"
            if "groups=2" not in words and self.chance(0.5):
                words.append("groups=$in.c")  # depthwise (or a channel multiplier of 2)
        oh = window_out(h, kh, s, effective, dilation)
        ow = window_out(w, kw, s, effective, dilation)
        if oh < 1 or ow < 1:
            return None
        if self.chance(0.2):  # the mapping form
            kernel = str(kh) if kh == kw else f"[{kh}, {kw}]"
            if (kh, kw) == (2, 3) and "xs" in self.vars and self.chance(0.7):
                kernel = self.pick(["$xs", "${xs}", "${[xs[0], 3]}"])
            body = {
                "type": self.pick(["conv", "conv", "convolution"]),
                "filters": filters_text,
                "kernel": kernel,
            }
            if s != 1:
                body["stride"] = str(s)
            for word in filter(None, words):
                key, _, value = word.partition("=")
                if not value:
                    key, value = (
                        ("padding", word) if word in ("same", "valid") else ("activation", word)
                    )
                body[key] = value
            return Row(self.named() if self.chance(0.95) else None, body, flow=self.chance(0.7)), (
                oh,
                ow,
                filters,
            )
        words = sorted(filter(None, words), key=lambda word: "=" in word)  # flags first
        text = " ".join(["conv", self.window_text(kh, kw, s), filters_text, *words])
        return Row(self.row_name(), text), (oh, ow, filters)

    def pool_row(self, shape: Shape) -> tuple[Row, Shape] | None:
        h, w, c = shape
        kind = self.pick(["maxpool", "maxpool", "avgpool"])
        form = self.pick(
            ["2x2", "2x2", "3x3/2", "3x3/2 padding=1", "3x3/1 padding=1", "3x3/2 ceil", "2x2/1"]
        )
        if kind == "avgpool" and self.chance(0.2):
            form += " count_include_pad=false"
        k = int(form[0])
        s = int(form.split("/")[1][0]) if "/" in form else k
        p = 1 if "padding=1" in form else 0
        ceil = "ceil" in form
        oh, ow = window_out(h, k, s, p, ceil=ceil), window_out(w, k, s, p, ceil=ceil)
        if oh < 1 or ow < 1:
            return None
        if self.chance(0.15):
            body = {"type": kind, "kernel": str(k), "stride": str(s)}
            if p:
                body["padding"] = str(p)
            if ceil:
                body["rounding"] = "ceil"
            return Row(self.named() if self.chance(0.95) else None, body, flow=self.chance(0.6)), (
                oh,
                ow,
                c,
            )
        return Row(self.row_name(), f"{kind} {form}"), (oh, ow, c)

    def same_shape_row(self, shape: Shape, spatial: bool = True) -> Row:
        """A row that keeps the shape: batch norm, an activation, dropout, LRN."""
        options = [
            "bn",
            "batchnorm",
            "batch_norm eps=1e-3",
            "bn momentum=0.99",
            "relu",
            "gelu",
            "tanh",
            "sigmoid",
            "softmax",
            "silu",
            "elu",
            "leaky_relu",
            "softplus",
            "relu6",
            "activation relu",
            f"activation {self.pick(ACTIVATIONS)}",
            "dropout 0.5",
            "dropout 0.1",
            "dropout rate=0.3",
        ]
        if spatial:
            options += ["lrn 5", "lrn 3 alpha=1e-4 beta=0.75", "lrn 5 alpha=2e-4 k=2"]
        if "rate" in self.vars:
            options.append("dropout $rate")
        text = self.pick(options)
        if self.chance(0.12):
            kind, *rest = text.split()
            body = {"type": kind}
            if kind == "activation":
                body["fn"] = rest[0]
            elif kind == "dropout" and rest:
                body["rate"] = rest[0].split("=")[-1]
            return Row(self.named() if self.chance(0.95) else None, body, flow=self.chance(0.7))
        return Row(self.row_name(), text)

    def pad_row(self, shape: Shape) -> tuple[Row, Shape]:
        h, w, c = shape
        text, (dh, dw) = self.pick(
            [
                ("zeropad 1", (2, 2)),
                ("pad [1, 2]", (2, 4)),
                ("zeropad [[0, 1], [1, 0]]", (1, 1)),
                ("zeropad padding=2", (4, 4)),
            ]
        )
        return Row(self.row_name(), text), (h + dh, w + dw, c)

    def seq_row(self, shape: Shape) -> tuple[Row, Shape] | None:
        out = self.conv_row(shape)
        if out is None:
            return None
        first, shape2 = out
        rows = [first, self.same_shape_row(shape2), self.same_shape_row(shape2)]
        for r in rows:
            if not isinstance(r.body, str) or self.chance(0.5):
                r.name = None if isinstance(r.body, str) else (r.name or "m")
        names = [r.name for r in rows if r.name]
        if len(set(names)) != len(names):
            for i, r in enumerate(rows):
                if r.name:
                    r.name = f"{r.name}{i}"
        name = self.row_name() or self.fresh("seq")
        return Row(name, rows, flow=self.chance(0.6)), shape2

    def concat_row(self, shape: Shape) -> tuple[Row, Shape] | None:
        h, w, _c = shape
        branches = []
        total = 0
        for i in range(self.pick([2, 2, 3])):
            f = self.pick([2, 4])
            total += f
            choice = self.pick(["1x1", "3x3", "seq", "pool"])
            label = self.pick([f"b{i}x", None, f"br{i}"])
            if choice == "1x1":
                branches.append(Row(label, f"conv 1x1 {self.int_text(f)}"))
            elif choice == "3x3":
                branches.append(Row(label, f"conv 3x3 {f} same"))
            elif choice == "seq":
                branches.append(
                    Row(label, [Row(None, f"conv 1x1 {f}"), Row(None, f"conv 3x3 {f} padding=1")])
                )
            else:
                branches.append(
                    Row(label, [Row(None, "maxpool 3x3/1 padding=1"), Row(None, f"conv 1x1 {f}")])
                )
        return Row(self.row_name() or self.fresh("mixed"), ("concat", branches)), (h, w, total)

    def add_row(self, shape: Shape) -> tuple[Row, Shape] | None:
        _h, _w, c = shape
        main = [Row(None, f"conv 3x3 {c} same"), Row(None, "bn")]
        if c > 16:
            return None
        short: list[Row] = [] if self.chance(0.6) else [Row(None, f"conv 1x1 {c}")]
        branches = [
            Row(self.pick(["main", None]), main, flow=self.chance(0.5)),
            Row("shortcut", short),
        ]
        if self.chance(0.2):
            branches.append(Row("third", f"conv 1x1 {c}"))
        row = Row(self.row_name() or self.fresh("res"), ("add", branches))
        if self.chance(0.25):
            row.opts["repeat"] = self.pick(["2", "${1 + 1}"])
            row.style = "beside"
        return row, shape

    def residual_seq_row(self, shape: Shape) -> tuple[Row, Shape] | None:
        """`[conv, bn, add from=[input, bn], relu]`: a residual written as a sequence, where
        `input` is the sequence's input; sometimes repeated, with `$i` inside."""
        c = shape[2]
        if c > 16:
            return None
        rows = [
            Row("c", f"conv 3x3 {self.int_text(c)} same"),
            Row("n", self.pick(["bn", "dropout ${0.1 * i}", "relu"])),
            Row("s", "add from=[input, n]"),
            Row(None, "relu"),
        ]
        repeat = self.chance(0.5)
        if not repeat and "$" in rows[1].body:
            rows[1].body = "bn"
        row = Row(self.row_name() or self.fresh("resid"), rows, flow=self.chance(0.3))
        if repeat:
            row.opts["repeat"] = self.pick(["2", "3", "$depth" if "depth" in self.vars else "2"])
            row.style = "beside"
        return row, shape

    def typed_by_variable_row(self, shape: Shape) -> tuple[Row, Shape] | None:
        """A row whose type (or activation word) comes from a string variable."""
        if "act" not in self.vars:
            self.vars["act"] = self.pick(["relu", "gelu", "tanh"])
            self.var_lines.append(f"act: {self.vars['act']}")
            if self.chance(0.3):
                self.overrides.append(f"act={self.pick(['silu', 'elu', 'sigmoid'])}")
        text = self.pick(["$act", "activation $act", "activation fn=$act", "${act}"])
        if self.chance(0.3):
            made = self.conv_row(shape)
            if made and isinstance(made[0].body, str):
                made[0].body += " activation=$act"
                return made
        return Row(self.named(), text), shape

    def block_row(self, shape: Shape, flat: bool) -> tuple[Row, Shape] | None:
        options = [b for b in self.blocks if b.spatial != flat or not b.spatial]
        if not options:
            return None
        block = self.pick(options)
        call = block.call(shape)
        if call is None:
            return None
        positional, keywords, out = call
        row = Row(self.row_name(), "")
        if self.chance(0.15) and block.params:
            body = {"type": block.name}
            for param, value in zip(block.params, positional, strict=False):
                body[param] = value
            body.update(keywords)
            row.body, row.flow = body, self.chance(0.6)
        else:
            row.body = " ".join(
                [block.name, *positional, *(f"{k}={v}" for k, v in keywords.items())]
            )
        if out == shape and self.chance(0.25):
            row.opts["repeat"] = self.pick(
                ["2", "3", "${1 + 1}", "$depth" if "depth" in self.vars else "2"]
            )
        return row, out

    def strided_repeat_row(self, shape: Shape) -> tuple[Row, Shape] | None:
        h, w, _c = shape
        if min(h, w) < 6:
            return None
        f = self.pick([4, 8])
        n = self.pick([2, 3])
        text = f"conv 3x3/${{2 if i == 0 else 1}} {self.int_text(f)} same"
        if self.chance(0.3):
            text = f"conv 3x3/${{[2, 1, 1][i]}} {f} same"
        row = Row(
            self.row_name() or self.fresh("stage"),
            text,
            {"repeat": str(n)},
            style=self.pick(["compact", "beside"]),
        )
        return row, (-(-h // 2), -(-w // 2), f)

    def if_row(self, shape: Shape, flat: bool, named: dict[str, Shape] | None = None) -> Row:
        """A shape-keeping row under `if`, or a row switched off that would be wrong if on,
        or one reading another row than the previous one (what does a skipped row pass on?)."""
        flag = self.role.get("flag")
        if flag is None or self.chance(0.3):
            cond, on = self.pick(
                [("false", False), ("true", True), ("${1 > 2}", False), ("${2 > 1}", True)]
            )
        else:
            value = bool(self.vars[flag])
            cond, on = self.pick(
                [
                    (f"${flag}", value),
                    (f"${{not {flag}}}", not value),
                    (f"${{{flag} and {self.role['w']} >= 4}}", value),
                ]
            )
        if not on and self.chance(0.6):
            junk = self.pick(
                [
                    "cnov 3x3 8",
                    "conv 3x3 8 from=nosuch",
                    "dense 10" if not flat else "conv 99x99 8",
                    "relu from=nosuch",
                    "maxpool 64x64",
                    "unknown_block 3",
                    "conv 3x3 ${nosuch}",
                    "dropout 1.5",
                    "add from=[nosuch, input]",
                ]
            )
            self.notes.append("off-row")
            return Row(
                self.row_name() or self.fresh("off"),
                junk,
                {"if": cond},
                style=self.pick(["compact", "beside"]),
            )
        row = self.same_shape_row(shape, spatial=not flat)
        if isinstance(row.body, dict) and row.name is None:
            row.name = self.fresh("cond")
        row.opts["if"] = cond
        others = [n for n, s in (named or {}).items() if s == shape and re.fullmatch(r"\w+", n)]
        if others and self.chance(0.4):
            row.opts["from"] = self.pick(others)
        row.style = (
            self.pick(["compact", "beside", "inside"])
            if isinstance(row.body, dict)
            else self.pick(["compact", "beside"])
        )
        if row.name is None:
            row.style = "compact"
        return row

    # ---- the table -------------------------------------------------------------------------

    def make_layers(self, input_shape: Shape) -> list[Row]:
        shape = input_shape
        rows: list[Row] = []
        named: dict[str, Shape] = {"input": input_shape}
        target = self.pick([1, 2, 3, 3, 4, 5, 6])

        def add(row: Row, out: Shape) -> None:
            rows.append(row)
            if row.name is not None and "aux" not in row.opts:
                named[row.name] = out

        for _ in range(target):
            makers: list[tuple[float, Callable[[Shape], tuple[Row, Shape] | None]]] = [
                (5, lambda shape: self.conv_row(shape)),
                (2, lambda shape: self.pool_row(shape)),
                (2, lambda shape: (self.same_shape_row(shape), shape)),
                (0.5, lambda shape: self.pad_row(shape)),
                (1.5, lambda shape: self.seq_row(shape)),
                (1, lambda shape: self.concat_row(shape)),
                (1, lambda shape: self.add_row(shape)),
                (0.7, lambda shape: self.residual_seq_row(shape)),
                (0.4, lambda shape: self.typed_by_variable_row(shape)),
                (2.5 if self.blocks else 0, lambda shape: self.block_row(shape, False)),
                (0.7, lambda shape: self.strided_repeat_row(shape)),
                (0.8, lambda shape: (self.if_row(shape, False, named), shape)),
                (1, lambda shape: self.merge_row(named, shape)),
                (0.6, lambda shape: self.from_row(named)),
                (0.5, lambda shape: self.aux_row(named)),
            ]
            made = self.weighted(makers, shape)
            if made is None:
                continue
            row, out = made
            if "aux" in row.opts:
                rows.append(row)
                continue
            if self.chance(0.15) and "repeat" not in row.opts and "if" not in row.opts:
                row.opts["expect"] = f"{out[0]}x{out[1]}x{out[2]}"
                row.style = (
                    "compact" if isinstance(row.body, str) and self.chance(0.7) else "beside"
                )
                if row.name is None:
                    row.name = self.fresh(f"e{len(rows)}")
            add(row, out)
            shape = out
        if self.chance(0.12):
            return rows or [Row(None, "relu")]  # a fully convolutional net: spatial output
        # to a flat vector, then the classifier
        if self.blocks and self.chance(0.15):
            heads = [b for b in self.blocks if not b.spatial]
            if heads:
                call = heads[0].call(shape)
                if call is not None:
                    rows.append(Row(self.row_name(), heads[0].name))
                    return rows
        if shape[0] * shape[1] * shape[2] <= 2048 and self.chance(0.4):
            rows.append(Row(self.row_name(), self.pick(["flatten", "flatten"])))
            shape = (1, 1, shape[0] * shape[1] * shape[2])
        else:
            rows.append(
                Row(self.row_name(), self.pick(["global_avgpool", "gap", "global_avgpool"]))
            )
            shape = (1, 1, shape[2])
        for _ in range(self.pick([0, 0, 1, 2])):
            choice = self.pick(["dense", "same", "if", "block"])
            if choice == "dense":
                units = self.pick([8, 16])
                rows.append(
                    Row(
                        self.row_name(),
                        " ".join(
                            [
                                self.pick(["dense", "fc", "linear"]),
                                self.int_text(units),
                                self.pick(["relu", "", "activation=tanh"]),
                            ]
                        ).strip(),
                    )
                )
                shape = (1, 1, units)
            elif choice == "same":
                rows.append(self.same_shape_row(shape, spatial=False))
            elif choice == "if":
                rows.append(self.if_row(shape, flat=True))
            else:
                made = self.block_row(shape, True)
                if made:
                    rows.append(made[0])
                    shape = made[1]
        classes = self.role.get("classes")
        units = f"${classes}" if classes and self.chance(0.8) else str(self.pick([10, 3]))
        rows.append(
            Row(
                self.row_name(),
                f"dense {units}" if self.chance(0.85) else {"type": "dense", "units": units},
            )
        )
        if self.chance(0.2):
            last = rows[-1]
            softmax = Row(self.row_name(), "softmax")
            if self.chance(0.4) and len(rows) > 1:
                flag = self.role.get("flag")
                key, text = self.pick(
                    [
                        ("if", f"${flag}" if flag else "false"),
                        ("repeat", "2"),
                        ("from", last.name or ""),
                        ("aux", "0.5"),
                    ]
                )
                if text:
                    softmax.name = softmax.name or self.fresh("prob")
                    softmax.opts[key] = text
                    if key == "aux":
                        softmax.opts["from"] = last.name or rows[-2].name or "input"
                    softmax.style = "beside"
            rows.append(softmax)
        return rows

    def weighted(self, makers: list[tuple[float, Callable[[Shape], Any]]], shape: Shape) -> Any:
        """The first row one of `makers` (picked by weight) makes for `shape`; 4 tries."""
        total = sum(w for w, _ in makers)
        for _ in range(4):
            x = self.rng.random() * total
            for weight, make in makers:
                x -= weight
                if x < 0:
                    made = make(shape)
                    if made is not None:
                        return made
                    break
        return None

    def merge_row(self, named: dict[str, Shape], shape: Shape) -> tuple[Row, Shape] | None:
        names = list(named)
        last = next(reversed(named))
        pairs = [(a, b) for a in names for b in names if a < b and named[a] == named[b]]
        cat_pairs = [
            (a, b) for a in names for b in names if a != b and named[a][:2] == named[b][:2]
        ]
        if pairs and self.chance(0.5):
            a, b = self.pick(pairs)
            out = named[a]
            kind = "add"
        elif cat_pairs:
            a, b = self.pick(cat_pairs)
            out = (named[a][0], named[a][1], named[a][2] + named[b][2])
            kind = "concat"
        else:
            return None
        sources = f"[{a}, {b}]"
        if a == last and self.chance(0.3):
            pass
        row = Row(
            self.row_name() or self.fresh(kind),
            kind,
            {"from": sources},
            style=self.pick(["compact", "beside"]),
        )
        if row.style == "compact" and any(not re.fullmatch(r"[A-Za-z0-9_]+", n) for n in (a, b)):
            row.style = "beside"
        if row.style == "beside" and row.name is None:
            row.name = self.fresh(kind)
        return row, out

    def from_row(self, named: dict[str, Shape]) -> tuple[Row, Shape] | None:
        source = self.pick(list(named))
        made = (
            self.conv_row(named[source])
            if self.chance(0.7)
            else (self.same_shape_row(named[source]), named[source])
        )
        if made is None:
            return None
        row, out = made
        value = source
        if source != "input" and "src" not in self.vars and self.chance(0.1):
            self.var_lines.append(f"src: {source}")
            self.vars["src"] = source
            value = "$src"
        row.opts["from"] = value if self.chance(0.8) else f"[{value}]"
        if not re.fullmatch(r"[A-Za-z0-9_$]+", source) or isinstance(row.body, dict):
            row.style = (
                "beside" if not isinstance(row.body, dict) else self.pick(["beside", "inside"])
            )
        if row.style != "compact" and row.name is None:
            row.name = self.fresh("from_" + str(len(named)))
        return row, out

    def aux_row(self, named: dict[str, Shape]) -> tuple[Row, Shape] | None:
        source = self.pick([n for n in named if n != "input"] or ["input"])
        weight = self.pick(["0.3", "0.5", "1", "0", "${0.1 * 3}"])
        heads = [b for b in self.blocks if not b.spatial]
        classes = self.role.get("classes")
        units = f"${classes}" if classes else "3"
        if heads and self.chance(0.5):
            row = Row(self.row_name() or self.fresh("aux_head"), heads[0].name)
        else:
            row = Row(
                self.row_name() or self.fresh("side"),
                [Row(None, "gap"), Row(None, f"dense {units}")],
                flow=self.chance(0.6),
            )
            if row.name is None:
                row.name = self.fresh("side")
        row.opts = {"from": source, "aux": weight}
        row.style = (
            "beside"
            if not isinstance(row.body, str) or not re.fullmatch(r"[A-Za-z0-9_]+", source)
            else self.pick(["compact", "beside"])
        )
        if row.name is None:
            row.style = "compact"
        return row, (1, 1, 1)

    # ---- the whole spec --------------------------------------------------------------------

    def write(self) -> GeneratedSpec:
        h = self.pick([8, 12, 16, 16, 24, 32])
        w = h if self.chance(0.85) else self.pick([8, 16, 32])
        c = self.pick([1, 3, 3])
        self.make_vars()
        defaults = self.make_defaults()
        self.make_blocks()
        rows = self.make_layers((h, w, c))
        name = self.pick(SPEC_NAMES[:5]) if self.chance(0.85) else self.pick(SPEC_NAMES)
        lines = []
        if self.chance(0.1):
            lines.append("# yaml-language-server: $schema=netspec.schema.json")
        lines.append(f"name: {scalar(name)}")
        if self.chance(0.2):
            lines.append(
                "description: "
                + scalar(
                    self.pick(["a tiny net", "Table 1: conv, pool # and more", "ünïcode ☃", "x: y"])
                )
            )
        lines.append("input: " + (f"[{h}, {w}, {c}]" if self.chance(0.6) else f"{h}x{w}x{c}"))
        if self.chance(0.05):
            lines.append(f"dtype: {self.pick(['bfloat16', 'float16', 'float32'])}")
        if self.chance(0.05):
            lines.append(f"param_dtype: {self.pick(['bfloat16', 'float32'])}")
        if self.var_lines:
            if self.chance(0.2) and all("${" not in v and "'" not in v for v in self.var_lines):
                lines.append("vars: {" + ", ".join(self.var_lines) + "}")
            else:
                lines += ["vars:"] + [f"  {v}" for v in self.var_lines]
        if defaults:
            lines += ["defaults:"] + [f"  {d}" for d in defaults]
        if self.blocks:
            lines.append("blocks:")
            for block in self.blocks:
                lines += block.lines
        lines.append("layers:")
        lines += render_rows(rows, 2)
        if self.chance(0.05):
            lines.append("training: {epochs: 1, batch_size: 8}")
        return GeneratedSpec(self.seed, "\n".join(lines) + "\n", list(self.overrides), self.notes)


# ---------------------------------------------------------------------------------------------
# Mistakes and mutations on the text

TOKEN = re.compile(r"\$\{[^}\n]*\}|[^\s\[\]{},:=]+|[\[\]{},:=]")


def mutate(spec: GeneratedSpec, rng: random.Random) -> GeneratedSpec:
    """One plausible mistake and/or random token mutations, chosen by `rng`."""
    text, overrides, notes = spec.text, list(spec.overrides), list(spec.notes)
    roll = rng.random()
    if roll < 0.45:
        return spec
    if roll < 0.8:
        text, overrides, note = mistake(text, overrides, rng)
        notes.append(note)
    else:
        for _ in range(rng.choice([1, 1, 2, 3])):
            text, note = token_mutation(text, rng)
            notes.append(note)
    return GeneratedSpec(spec.seed, text, overrides, notes)


def layer_lines(lines: list[str]) -> list[int]:
    """Indices of the lines after `layers:` and of block rows (lines starting with `- `)."""
    return [i for i, line in enumerate(lines) if line.lstrip().startswith("- ")]


def replace_word(
    text: str, rng: random.Random, words: dict[str, list[str]]
) -> tuple[str, str] | None:
    """Replace one occurrence of one of `words` (whole word) by one of its alternatives."""
    hits = [
        (m.start(), m.group(0))
        for m in re.finditer(r"(?<![\w$])[A-Za-z_]+(?![\w])", text)
        if m.group(0) in words
    ]
    if not hits:
        return None
    start, word = rng.choice(hits)
    new = rng.choice(words[word])
    return text[:start] + new + text[start + len(word) :], f"{word}->{new}"


def mistake(text: str, overrides: list[str], rng: random.Random) -> tuple[str, list[str], str]:
    """One mistake a new user could make; returns (text, overrides, what was done)."""
    lines = text.rstrip("\n").split("\n")
    kind = rng.choice(
        [
            "misspell-type", "misspell-key", "misspell-word", "yaml11-bool", "undefined-var",
            "bad-number", "no-flatten", "wrong-expect", "from-unknown", "from-later",
            "duplicate-row", "bad-input", "reserved-name", "unicode-name", "repeat-bad",
            "aux-bad", "set-unknown", "set-bad-value", "block-args", "block-self-call",
            "tab-indent", "unclosed", "dense-spatial", "stride-too-far", "expect-in-block",
            "if-bad", "drop-line", "duplicate-line", "i-outside-repeat", "empty-row",
            "concat-one-branch", "kernel-too-big", "zero-division",
        ]
    )  # fmt: skip
    joined = "\n".join(lines)
    result: tuple[str, str] | None = None
    table = lines.index("layers:") if "layers:" in lines else len(lines)
    rows = [i for i in layer_lines(lines) if i > table]
    if kind == "misspell-type":
        result = replace_word(
            joined, rng, {k: v for k, v in MISSPELLINGS.items() if k in LAYER_TYPES}
        )
    elif kind == "misspell-key":
        keys = (
            "padding",
            "stride",
            "filters",
            "kernel",
            "activation",
            "units",
            "rate",
            "from",
            "repeat",
            "layers",
            "blocks",
            "vars",
            "defaults",
            "args",
            "input",
        )
        result = replace_word(joined, rng, {k: MISSPELLINGS[k] for k in keys})
    elif kind == "misspell-word":
        result = replace_word(
            joined, rng, {k: MISSPELLINGS[k] for k in ("same", "valid", "relu", "ceil")}
        )
    elif kind == "yaml11-bool":
        result = replace_word(
            joined,
            rng,
            {"true": ["yes", "on", "True", "TRUE", "y"], "false": ["no", "off", "False", "n"]},
        )
        if result is None:
            result = add_to_row(
                lines,
                rows,
                rng,
                rng.choice(["bias=no", "if=yes", "scale=off", "count_include_pad=no"]),
            )
    elif kind == "undefined-var":
        refs = [m for m in re.finditer(r"\$\{?([A-Za-z_]\w*)", joined)]
        if refs:
            m = rng.choice(refs)
            name = m.group(1)
            new = rng.choice([name + "s", name[:-1] or "q", name.upper(), name + "_", "nosuch"])
            result = joined[: m.start(1)] + new + joined[m.end(1) :], f"${name}->${new}"
    elif kind in ("bad-number", "kernel-too-big", "stride-too-far"):
        numbers = [m for m in re.finditer(r"(?<![\w.$])\d+(?:\.\d+)?(?![\w.])", joined)]
        numbers = [
            m
            for m in numbers
            if joined.rfind("\n", 0, m.start()) > joined.find("\nlayers:") or kind == "bad-number"
        ]
        if numbers:
            m = rng.choice(numbers)
            new = (
                rng.choice(WEIRD_NUMBERS)
                if kind == "bad-number"
                else ("99x99" if kind == "kernel-too-big" else "3x3/16")
            )
            if kind != "bad-number":
                windows = [
                    w
                    for w in re.finditer(r"\b\d+x\d+(?:/\d+)?\b", joined)
                    if not re.match(r"\d+x\d+x", joined[w.start() :])
                ]
                if windows:
                    w = rng.choice(windows)
                    result = joined[: w.start()] + new + joined[w.end() :], f"{w.group(0)}->{new}"
            else:
                result = joined[: m.start()] + new + joined[m.end() :], f"{m.group(0)}->{new}"
    elif kind == "no-flatten":
        for word in ("flatten", "global_avgpool", "gap"):
            idx = [i for i in rows if re.search(rf"(:\s|- ){word}\s*$", lines[i])]
            if idx:
                i = rng.choice(idx)
                return (
                    "\n".join(lines[:i] + lines[i + 1 :]) + "\n",
                    overrides,
                    f"{kind}: dropped {word}",
                )
    elif kind == "wrong-expect" and rows:
        result = add_to_row(
            lines,
            rows,
            rng,
            rng.choice(
                [
                    "-> 7x7x7",
                    "-> 1x1x10 5",
                    "-> 8x8 ",
                    "-> lots",
                    "->",
                    "-> 8x8x4 ~1K 2M",
                    "-> 8×8×4",
                ]
            ),
        )
    elif kind in ("from-unknown", "from-later") and rows:
        target = (
            "nosuch"
            if kind == "from-unknown"
            else rng.choice(["fc", "head", "out", "classifier", "dense"])
        )
        result = add_to_row(
            lines,
            rows,
            rng,
            rng.choice(
                [f"from={target}", f"from=[{target}, input]", "from=input", "from=[]", "from=${1}"]
            ),
        )
    elif kind == "duplicate-row" and rows:
        i = rng.choice(rows)
        lines.insert(i + 1, lines[i])
        return "\n".join(lines) + "\n", overrides, kind
    elif kind == "bad-input":
        i = next((j for j, line in enumerate(lines) if line.startswith("input:")), 0)
        lines[i] = "input: " + rng.choice(
            [
                "[32, 32]",
                "32x32",
                "[0, 8, 3]",
                "[8.5, 8, 3]",
                "[-8, 8, 3]",
                "[8, 8, 3, 1]",
                "8x8x3x1",
                "${8}x8x3",
                "[$w, $w, 3]",
                "[true, 8, 3]",
                "[" + "9" * 320 + ", 8, 3]",
                "[1, 1, 1]",
                "[8, 8, 0]",
                "eight",
            ]
        )
        return "\n".join(lines) + "\n", overrides, kind
    elif kind in ("reserved-name", "unicode-name") and rows:
        i = rng.choice(rows)
        new = rng.choice(
            ["input", "from", "if", "1", "007", "aux"]
            if kind == "reserved-name"
            else ["a²", "ﬁ", "é", "名前", "a-b", "a.b", "a b", "", "~"]
        )
        line = lines[i]
        m = re.match(r"(\s*- )([^:\s]+)(:)", line)
        if m:
            lines[i] = m.group(1) + new + line[m.end(2) :]
        else:
            lines[i] = re.sub(r"^(\s*- )", rf"\g<1>{new}: ", line)
        return "\n".join(lines) + "\n", overrides, f"{kind}: {new}"
    elif kind == "repeat-bad" and rows:
        result = add_to_row(
            lines,
            rows,
            rng,
            "repeat="
            + rng.choice(["0", "-1", "2.5", "1001", "$flag", "two", "${10 ** 9}", "1e3", ".nan"]),
        )
    elif kind == "aux-bad" and rows:
        result = add_to_row(
            lines,
            rows,
            rng,
            "aux=" + rng.choice(["-1", "yes", "true", ".inf", ".nan", "0.3 from=input"]),
        )
    elif kind == "set-unknown":
        return (
            text,
            [
                *overrides,
                rng.choice(
                    ["wdith=3", "num_clases=5", "nosuch=1", "=5", "w", "w==3", "training.epochs=2"]
                ),
            ],
            kind,
        )
    elif kind == "set-bad-value":
        names = (
            re.findall(r"^  (\w+):", joined.split("\nvars:")[1].split("\n" + "d")[0], re.M)
            if "\nvars:" in joined
            else []
        )
        name = rng.choice(names) if names else "w"
        return (
            text,
            [
                *overrides,
                f"{name}="
                + rng.choice(
                    [
                        "ten",
                        "[1, 2",
                        "[1, 2]",
                        "yes",
                        ".nan",
                        "-4",
                        "0",
                        "9" * 320,
                        "1e400",
                        "${w}",
                        "'8'",
                        "",
                    ]
                ),
            ],
            kind,
        )
    elif kind == "block-args" and "blocks:" in lines:
        result = replace_word(joined, rng, {}) or None
        calls = [
            i
            for i in rows
            if any(
                re.search(rf"(:\s|- )({re.escape(b)})(\s|$)", lines[i]) for b in block_names(lines)
            )
        ]
        if calls:
            i = rng.choice(calls)
            choice = rng.random()
            if choice < 0.4:
                lines[i] = (
                    re.sub(r" \S+$", "", lines[i]) if lines[i].count(" ") > 4 else lines[i] + " 3"
                )
            elif choice < 0.7:
                lines[i] += rng.choice([" 4 4 4", " nosuch=2", " f=3", " s=2 s=1"])
            else:
                lines[i] += " " + rng.choice(["${x}", "[1, 2]", "true", "$i"])
            return "\n".join(lines) + "\n", overrides, kind
    elif kind == "block-self-call" and "blocks:" in lines:
        names = block_names(lines)
        if names:
            b = rng.choice(names)
            start = next(i for i, line in enumerate(lines) if line == f"  {b}:")
            body = next(
                (
                    i
                    for i in range(start, len(lines))
                    if lines[i].strip() in ("layers:", "concat:", "add:")
                ),
                None,
            )
            if body is not None and lines[body].strip() == "layers:":
                callee = rng.choice([b, *names])
                lines.insert(body + 1, f"      - again: {callee}")
                return "\n".join(lines) + "\n", overrides, f"{kind} {callee}"
    elif kind == "tab-indent" and rows:
        i = rng.choice(rows)
        lines[i] = "\t" + lines[i].lstrip(" ") if rng.random() < 0.5 else " " + lines[i]
        return "\n".join(lines) + "\n", overrides, kind
    elif kind == "unclosed":
        brackets = [m.start() for m in re.finditer(r"[\]}]", joined)]
        if brackets:
            at = rng.choice(brackets)
            return joined[:at] + joined[at + 1 :] + "\n", overrides, kind
    elif kind == "dense-spatial" and rows:
        i = rng.choice(rows[: max(1, len(rows) // 2)])
        lines.insert(i + 1, re.match(r"\s*", lines[i]).group(0) + "- early: dense 10")
        return "\n".join(lines) + "\n", overrides, kind
    elif kind == "expect-in-block" and "blocks:" in lines:
        idx = [i for i in layer_lines(lines) if i < table]
        if idx:
            result = add_to_row(lines, idx, rng, "-> 8x8x8")
    elif kind == "if-bad" and rows:
        result = add_to_row(
            lines,
            rows,
            rng,
            "if="
            + rng.choice(
                ["yes", "1", "$nosuch", "${1/0}", "[true]", "${'a' < 1}", "none", "${none}"]
            ),
        )
    elif kind == "drop-line":
        i = rng.randrange(len(lines))
        return "\n".join(lines[:i] + lines[i + 1 :]) + "\n", overrides, f"{kind} {i + 1}"
    elif kind == "duplicate-line":
        i = rng.randrange(len(lines))
        lines.insert(i, lines[i])
        return "\n".join(lines) + "\n", overrides, f"{kind} {i + 1}"
    elif kind == "i-outside-repeat" and rows:
        result = add_to_row(lines, rows, rng, rng.choice(["groups=${i + 1}", "if=${i == 0}"]))
    elif kind == "empty-row" and rows:
        i = rng.choice(rows)
        lines[i] = re.sub(r":\s.*$", ":", lines[i]) if ": " in lines[i] else lines[i] + " []"
        return "\n".join(lines) + "\n", overrides, kind
    elif kind == "concat-one-branch":
        idx = [i for i, line in enumerate(lines) if line.strip() in ("concat:", "add:")]
        if idx:
            i = rng.choice(idx)
            lines[i] = lines[i] + " [conv 1x1 4]"
            j = i + 1
            depth = len(lines[i]) - len(lines[i].lstrip())
            while j < len(lines) and len(lines[j]) - len(lines[j].lstrip()) > depth:
                del lines[j]
            return "\n".join(lines) + "\n", overrides, kind
    elif kind == "zero-division" and rows:
        result = add_to_row(
            lines,
            rows,
            rng,
            rng.choice(["groups=${1 // 0}", "dilation=${1 % 0}", "repeat=${2 / 0}"]),
        )
    if result is None:
        new, note = token_mutation(text, rng)
        return new, overrides, f"{kind} (fallback: {note})"
    new, note = result
    return new + ("\n" if not new.endswith("\n") else ""), overrides, f"{kind}: {note}"


def block_names(lines: list[str]) -> list[str]:
    if "blocks:" not in lines:
        return []
    start = lines.index("blocks:")
    names = []
    for line in lines[start + 1 :]:
        if line and not line.startswith(" "):
            break
        m = re.match(r"  ([^\s:#]+):\s*$", line)
        if m:
            names.append(m.group(1))
    return names


def add_to_row(
    lines: list[str], rows: list[int], rng: random.Random, extra: str
) -> tuple[str, str] | None:
    """Append `extra` to a compact row's text (`- name: conv 3x3 8` -> `... extra`)."""
    compact = [
        i
        for i in rows
        if re.search(r"(- |: )[a-z_]\w*( |$)", lines[i])
        and not lines[i].rstrip().endswith((":", "]", "}", '"'))
    ]
    if not compact:
        return None
    i = rng.choice(compact)
    lines = list(lines)
    lines[i] = lines[i].rstrip() + " " + extra
    return "\n".join(lines), extra


def token_mutation(text: str, rng: random.Random) -> tuple[str, str]:
    """Drop, duplicate, swap or misspell one token of one line."""
    lines = text.rstrip("\n").split("\n")
    for _ in range(10):
        i = rng.randrange(len(lines))
        tokens = list(TOKEN.finditer(lines[i]))
        if tokens:
            break
    else:
        return text, "no tokens"
    line = lines[i]
    op = rng.choice(["drop", "duplicate", "swap", "misspell", "misspell", "number"])
    t = rng.randrange(len(tokens))
    tok = tokens[t]
    if op == "drop":
        line = line[: tok.start()] + line[tok.end() :]
    elif op == "duplicate":
        line = line[: tok.end()] + " " + tok.group(0) + line[tok.end() :]
    elif op == "swap" and len(tokens) > 1:
        u = tokens[t + 1] if t + 1 < len(tokens) else tokens[t - 1]
        a, b = sorted([tok, u], key=lambda m: m.start())
        line = (
            line[: a.start()]
            + b.group(0)
            + line[a.end() : b.start()]
            + a.group(0)
            + line[b.end() :]
        )
    elif op == "number":
        line = line[: tok.start()] + rng.choice(WEIRD_NUMBERS) + line[tok.end() :]
    else:
        word = tok.group(0)
        if len(word) > 1:
            j = rng.randrange(len(word))
            how = rng.choice(["delete", "insert", "transpose", "case"])
            if how == "delete":
                word = word[:j] + word[j + 1 :]
            elif how == "insert":
                word = word[:j] + rng.choice("aeiorstx_0²") + word[j:]
            elif how == "transpose" and j + 1 < len(word):
                word = word[:j] + word[j + 1] + word[j] + word[j + 2 :]
            else:
                word = word.swapcase()
        line = line[: tok.start()] + word + line[tok.end() :]
    lines[i] = line
    return "\n".join(lines) + "\n", f"{op} line {i + 1}"


def generate(seed: int) -> GeneratedSpec:
    """The spec of `seed`: written, then maybe given a mistake or mutations."""
    spec = Writer(seed).write()
    return mutate(spec, random.Random(seed * 7919 + 1))


# ---------------------------------------------------------------------------------------------
# The oracle

MAX_PARAMS = 3_000_000
MAX_ACTIVATION = 1_000_000
MAX_NODES = 600
"""Accepted specs over these sizes are counted as too big to build, not built."""
DTYPES = {"float32", "bfloat16", "float16"}


@dataclass
class Verdict:
    """What became of one spec. `outcome`: rejected, agreed, too_big or failure; a failure has
    a `signature` (one per bug, as far as blanking names and numbers can tell)."""

    outcome: str
    signature: str = ""
    message: str = ""
    frame: str = ""
    phase: str = ""
    detail: str = ""


def normalize(message: str) -> str:
    """A message's first line with its specifics blanked, so one bug gives one signature."""
    text = message.strip().split("\n")[0]
    text = re.sub(r"'[^']*'|\"[^\"]*\"", "'…'", text)
    text = re.sub(r"\b(layer|row|at|under|node) [^\s:,]+", r"\1 X", text)
    text = re.sub(r"\d+(x\d+)*", "N", text)
    text = re.sub(r"\(N(, N)*,?\)", "(N…)", text)
    return text[:140]


def show_frame(frame: traceback.FrameSummary) -> str:
    name = frame.filename
    if not name.startswith("<"):
        name = "/".join(Path(name).parts[-2:])
    return f"{name}:{frame.lineno} in {frame.name}: {(frame.line or '').strip()[:100]}"


def last_frames(error: BaseException) -> tuple[str, str]:
    """(the traceback's last frame, the place in netspec or its generated code it came from)."""
    frames = traceback.extract_tb(error.__traceback__)
    if not frames:
        return "", ""
    ours = [f for f in frames if "/netspec/" in f.filename or f.filename.startswith("<netspec")]
    mine = ours[-1] if ours else frames[-1]
    name = mine.filename if mine.filename.startswith("<") else Path(mine.filename).name
    if name.startswith("<netspec"):
        name = "<generated>"
    return show_frame(frames[-1]), f"{name}:{mine.name}"


def failure(error: BaseException, phase: str, problem: str | None = None) -> Verdict:
    """A Verdict for an exception that should not have happened (or a SpecError that is wrong
    in itself: `problem` says how)."""
    last, where = last_frames(error)
    try:
        message = str(error)
    except Exception as inner:  # the message itself failed
        message = f"<str() failed: {type(inner).__name__}: {inner}>"
    kind = type(error).__name__ + (f" ({problem})" if problem else "")
    text = getattr(error, "message", message)
    return Verdict(
        "failure",
        f"{kind} at {where}: {normalize(str(text))}",
        message.split("\n")[0][:400],
        last,
        phase,
        "".join(traceback.format_exception(error))[-4000:],
    )


def location_problem(error: Any, text: str, path: Path) -> str | None:
    """Why a SpecError's location is not a place inside the spec file, or None if it is. An
    error about a `--set` override may have no location: the override is not in the file."""
    location = error.location
    if location is None:
        about = f"{error.message} {error.path or ''} {error.field or ''}"
        return None if "--set" in about else "no location"
    if str(location.file) != str(path):
        return "location in another file"
    lines = text.split("\n")
    if not 1 <= location.line <= len(lines):
        return "line outside the file"
    if not 1 <= location.column <= len(lines[location.line - 1]) + 1:
        return "column outside its line"
    return None


def judge_error(error: Any, text: str, path: Path, phase: str) -> Verdict:
    """A SpecError: a proper rejection, or a failure when it is unlocated or a netspec bug."""
    try:
        rendered = str(error)
    except Exception as inner:
        return failure(inner, phase, "str(SpecError) raised")
    if str(error.message).startswith("netspec bug"):
        return failure(error, phase, f"netspec bug found by the {phase}")
    if "Traceback" in rendered:
        return failure(error, phase, "traceback in the message")
    problem = location_problem(error, text, path)
    if problem:
        return failure(error, phase, problem)
    return Verdict("rejected", message=rendered.split("\n")[0][:400], phase=phase)


def judge(spec: GeneratedSpec, folder: Path) -> Verdict:
    """Compile, check, build and run one spec; see the module docstring for what passes."""
    from netspec import SpecError
    from netspec.check import check_against_flax
    from netspec.compiled import compile_with

    path = folder / "spec.yaml"
    path.write_text(spec.text, encoding="utf-8")
    try:
        compiled = compile_with(str(path), spec.overrides)
    except SpecError as error:
        return judge_error(error, spec.text, path, "compile")
    except Exception as error:  # any other exception is what we are looking for
        return failure(error, "compile")
    try:
        check_against_flax(compiled)
    except SpecError as error:
        return judge_error(error, spec.text, path, "check")
    except Exception as error:
        return failure(error, "check")
    report = compiled.report
    biggest = max((math.prod(n.output_shape) for n in report.nodes), default=0)
    if report.params > MAX_PARAMS or biggest > MAX_ACTIVATION or len(report.nodes) > MAX_NODES:
        return Verdict("too_big", detail=f"{report.params} params, {biggest} activations")
    try:
        problems = compare(compiled)
    except Exception as error:
        return failure(error, "build/run")
    if problems:
        what, message = problems[0]
        details = "\n".join(m for _, m in problems[:20])
        return Verdict("failure", f"disagree: {what}", message, phase="compare", detail=details)
    return Verdict("agreed")


@contextlib.contextmanager
def recording(
    classes: set[type], paths: dict[int, tuple], calls: dict[tuple, tuple]
) -> Iterator[None]:
    """While active, each call of a module in `paths` (id -> path; of one of `classes`) records
    (input shapes, output shape) under its path, without the batch dimension."""
    patched: dict[type, Any] = {}
    active: set[int] = set()

    def wrap(original: Any) -> Any:
        def call(self: Any, x: Any, *args: Any, **kwargs: Any) -> Any:
            key = id(self)
            if key in active or key not in paths:
                return original(self, x, *args, **kwargs)
            active.add(key)
            try:
                y = original(self, x, *args, **kwargs)
            finally:
                active.discard(key)
            many = isinstance(x, list | tuple)
            ins = [tuple(v.shape[1:]) for v in x] if many else [tuple(x.shape[1:])]
            calls[paths[key]] = (ins, tuple(y.shape[1:]) if hasattr(y, "shape") else None)
            return y

        return call

    for cls in classes:
        if "__call__" in cls.__dict__:
            patched[cls] = cls.__dict__["__call__"]
            cls.__call__ = wrap(patched[cls])
    try:
        yield
    finally:
        for cls, original in patched.items():
            cls.__call__ = original


def state_path(name: str) -> tuple[str | int, ...]:
    """Where a row's or layer's variables live in the module's state: the documented mapping
    (`3a` -> `_3a`, `class` -> `class_`, repeat indices as list indices), as netspec's own
    check computes it."""
    try:
        from netspec.check import state_path as netspec_state_path
    except ImportError:
        from netspec.pysource import identifier

        return tuple(int(p) if p.isdigit() else identifier(p) for p in name.split("/"))
    return netspec_state_path(name)


@dataclass
class Run:
    """One forward pass of a freshly built module, with what was recorded during it."""

    train: bool
    output: Any
    calls: dict[tuple, tuple]
    params: dict[tuple, int]
    stats: dict[tuple, int]


def run_module(compiled: Any, train: bool) -> Run:
    """Build the generated module with nnx.Rngs(0) and run it on a random batch, recording every
    layer's input and output shapes and every variable's size by path. Building and running
    are one jitted program, compiled unoptimised (it runs once)."""
    import jax
    import jax.numpy as jnp
    import numpy as np
    from flax import nnx

    cls = compiled.network_class()
    dtypes = {"float32": jnp.float32, "bfloat16": jnp.bfloat16, "float16": jnp.float16}
    dtype = dtypes.get(getattr(compiled, "dtype", None) or "")
    param_dtype = dtypes.get(getattr(compiled, "param_dtype", None) or "float32", jnp.float32)
    calls: dict[tuple, tuple] = {}
    params: dict[tuple, int] = {}
    stats: dict[tuple, int] = {}

    def sizes(model: Any, kind: Any, into: dict[tuple, int]) -> None:
        for path, variable in nnx.to_flat_state(nnx.state(model, kind)):
            into[tuple(path)] = sum(int(leaf.size) for leaf in jax.tree.leaves(variable))

    def run(x: Any) -> Any:
        model = cls(dtype=dtype, param_dtype=param_dtype, rngs=nnx.Rngs(0))
        sizes(model, nnx.Param, params)
        sizes(model, nnx.BatchStat, stats)
        modules = list(nnx.iter_modules(model))
        paths = {id(m): tuple(p) for p, m in modules if p}
        with recording({type(m) for _, m in modules}, paths, calls):
            return model(x, train=train)

    batch = np.random.default_rng(1).standard_normal((2, *compiled.graph.input_shape))
    compiler_options = {"xla_backend_optimization_level": 0}
    output = jax.jit(run, compiler_options=compiler_options)(batch.astype(np.float32))
    return Run(train, output, calls, params, stats)


def compare(compiled: Any) -> list[tuple[str, str]]:
    """Build the module, run it, and list every disagreement with the analysis as
    (kind, message)."""
    import numpy as np

    graph, report = compiled.graph, compiled.report
    problems: list[tuple[str, str]] = []
    runs = [run_module(compiled, train) for train in ((False, True) if graph.heads else (False,))]

    # parameters and statistics, by path: each row owns what is under its name
    params, stats = runs[0].params, runs[0].stats
    covered: set[tuple] = set()
    for row, row_report in zip(graph.rows, report.rows, strict=True):
        prefix = state_path(row.name)
        where = "/".join(map(str, prefix))
        for what, found_in, expected in (
            ("params", params, row_report.params),
            ("state", stats, row_report.state),
        ):
            under = [p for p in found_in if p[: len(prefix)] == prefix]
            covered.update(under)
            found = sum(found_in[p] for p in under)
            if found != expected:
                problems.append(
                    (
                        f"row {what}",
                        f"row {row.name!r}: the module has {found:,} {what} under {where}, "
                        f"the analysis counts {expected:,}",
                    )
                )
    stray = sorted((set(params) | set(stats)) - covered, key=str)
    if stray:
        at = "/".join(map(str, stray[0]))
        problems.append(("stray variables", f"the module has variables at {at} outside every row"))
    if sum(params.values()) != report.params:
        problems.append(
            (
                "total params",
                f"the module has {sum(params.values()):,} params, the analysis {report.params:,}",
            )
        )

    # shapes, as the module saw them while it ran
    shapes: dict[str, Shape] = {"input": graph.input_shape}
    shapes.update({n.name: n.output_shape for n in report.nodes})
    consumers: dict[str, list[tuple[tuple, int]]] = {}
    for node in graph.nodes:
        for index, source in enumerate(node.inputs):
            consumers.setdefault(source, []).append((state_path(node.name), index))
    for run in runs:
        mode = "train" if run.train else "eval"
        calls = run.calls
        for node in graph.nodes:
            path = state_path(node.name)
            if path not in calls:
                continue
            ins, got = calls[path]
            wanted_ins = [shapes[i] for i in node.inputs]
            if got != shapes[node.name]:
                problems.append(
                    (
                        "layer output shape",
                        f"{mode}: layer {node.name} outputs {got}, the analysis says "
                        f"{shapes[node.name]}",
                    )
                )
            if ins != wanted_ins:
                problems.append(
                    (
                        "layer input shape",
                        f"{mode}: layer {node.name} gets {ins}, the analysis says it reads "
                        f"{list(node.inputs)} of {wanted_ins}",
                    )
                )
        for row, row_report in zip(graph.rows, report.rows, strict=True):
            expected = row_report.output_shape
            seen = calls.get(state_path(row.output), (None, None))[1]
            if seen is None:  # an inline add or concat: what its readers got
                readers = consumers.get(row.output, [])
                seen = next((calls[p][0][i] for p, i in readers if p in calls), None)
            if seen is not None and seen != expected:
                problems.append(
                    (
                        "row output shape",
                        f"{mode}: row {row.name} outputs {seen}, the analysis says {expected}",
                    )
                )
        outputs = run.output if isinstance(run.output, dict) else {"main": run.output}
        for head, value in outputs.items():
            if head == "main":
                wanted = report.output_shape
            else:
                wanted = next((r.output_shape for r in report.rows if r.name == head), None)
            got = tuple(value.shape[1:])
            if wanted is not None and got not in (
                wanted,
                wanted[2:] if wanted[:2] == (1, 1) else wanted,
            ):
                problems.append(
                    ("output shape", f"{mode}: output {head} is {got}, the analysis says {wanted}")
                )
            if not np.isfinite(np.asarray(value, dtype=np.float32)).all():
                problems.append(("non-finite output", f"{mode}: output {head} is not finite"))
        if run.train and set(outputs) != {"main", *(h.row for h in graph.heads)}:
            heads = [h.row for h in graph.heads]
            problems.append(
                ("heads", f"train outputs {sorted(outputs)}, the analysis has heads {heads}")
            )
    return problems
