"""The compact row form: `conv 7x7/2 64 padding=3 -> 112x112x64 ~2.7Ki ~34M`.

A row string is whitespace-separated tokens: the type, positional arguments, `key=value`
options, and after `->` the optional expectations (output size, params, MACs). Tokens keep
their character offset so errors can point at the exact column. `${...}` and `[...]` groups
may contain spaces.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field

from .errors import SpecError

KEYWORD = re.compile(r"^([A-Za-z_][A-Za-z0-9_]*)=(.*)$", re.S)


@dataclass(frozen=True)
class Token:
    """One token of a row string and its 0-based character offset in that string."""

    text: str
    offset: int


@dataclass
class CompactRow:
    """A row string split into its parts; values are still raw text (variables unresolved)."""

    type: Token
    positional: list[Token] = field(default_factory=list)
    keywords: dict[str, Token] = field(default_factory=dict)
    expect: list[Token] = field(default_factory=list)


class TokenError(SpecError):
    """A row string that cannot be split; `offset` is where in the string the problem is."""

    def __init__(self, message: str, offset: int, hint: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.offset = offset


def tokenize(text: str) -> list[Token]:
    """Split on whitespace outside `${...}` and `[...]` groups."""
    tokens: list[Token] = []
    start: int | None = None
    depth = 0
    opener: list[tuple[str, int]] = []
    for i, char in enumerate(text):
        if char in "[{":
            opener.append((char, i))
            depth += 1
        elif char in "]}":
            if not opener or opener[-1][0] != {"]": "[", "}": "{"}[char]:
                raise TokenError(f"unbalanced '{char}'", i)
            opener.pop()
            depth -= 1
        if char.isspace() and depth == 0:
            if start is not None:
                tokens.append(Token(text[start:i], start))
                start = None
        elif start is None:
            start = i
    if opener:
        char, where = opener[-1]
        raise TokenError(f"'{char}' is never closed", where)
    if start is not None:
        tokens.append(Token(text[start:], start))
    return tokens


def parse_compact(text: str) -> CompactRow:
    """Split a row string into type, positional args, `key=value` options and expectations."""
    tokens = tokenize(text)
    if not tokens:
        raise TokenError("empty row: expected a layer type or block name, e.g. `conv 3x3 64`", 0)
    head, *rest = tokens
    if head.text == "->" or KEYWORD.match(head.text):
        raise TokenError(
            f"a row starts with its layer type or block name, not '{head.text}'",
            head.offset,
            hint="e.g. `conv 3x3 64` or `inception 64 96 128 16 32 32`",
        )
    row = CompactRow(type=head)
    arrow = False
    for token in rest:
        if token.text == "->":
            if arrow:
                raise TokenError("'->' appears twice", token.offset)
            arrow = True
            continue
        if arrow:
            row.expect.append(token)
            continue
        match = KEYWORD.match(token.text)
        if match and not token.text.startswith("${"):
            key, value = match.groups()
            if key in row.keywords:
                raise TokenError(f"'{key}' is given twice in this row", token.offset)
            row.keywords[key] = Token(value, token.offset + len(key) + 1)
        elif row.keywords:
            raise TokenError(
                f"positional value '{token.text}' after key=value options",
                token.offset,
                hint="put positional values right after the type",
            )
        else:
            row.positional.append(token)
    if arrow and not row.expect:
        raise TokenError(
            "'->' must be followed by the expected output size, e.g. -> 28x28x256", len(text)
        )
    return row


SIZE_SUFFIX = {"": 1, "K": 10**3, "M": 10**6, "G": 10**9, "Ki": 2**10, "Mi": 2**20, "Gi": 2**30}
COUNT = re.compile(r"^(~)?([0-9]+(?:\.[0-9]+)?)(K|M|G|Ki|Mi|Gi)?$")
RELATIVE_TOLERANCE = 0.02


@dataclass(frozen=True)
class ExpectedCount:
    """A count as a paper prints it: `128M`, `~159Ki`, `61706`.

    It matches when the value rounds to the printed digits (half a unit of the last digit), or,
    with a leading `~`, when it is within 2% (papers round loosely). `K/M/G` are powers of 1000,
    `Ki/Mi/Gi` powers of 1024 (GoogLeNet's Table 1 counts parameters in Ki).
    """

    text: str
    value: float
    unit: float
    approximate: bool

    @classmethod
    def parse(cls, text: str) -> ExpectedCount | None:
        match = COUNT.match(text)
        if not match:
            return None
        tilde, number, suffix = match.groups()
        decimals = len(number.split(".")[1]) if "." in number else 0
        scale = SIZE_SUFFIX[suffix or ""]
        return cls(text, float(number) * scale, scale * 10.0**-decimals, tilde is not None)

    def matches(self, actual: int) -> bool:
        if self.approximate:
            return math.isclose(actual, self.value, rel_tol=RELATIVE_TOLERANCE)
        return abs(actual - self.value) <= self.unit / 2

    def describe(self) -> str:
        if self.approximate:
            return f"{self.text} (within 2% of {self.value:,.0f})"
        return f"{self.text} (±{self.unit / 2:,.0f})" if self.unit > 1 else self.text
