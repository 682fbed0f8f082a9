"""Protocol Buffers text format (what Caffe's .prototxt files are written in), read as data.

`parse(text, file)` returns a `Message`: its fields in file order, each a `Field` with a name, a
value (a scalar: str, int, float or an enum word; or a nested `Message`) and its location. No
schema is needed: a field is a message when `{` follows its name (`layer {`, `param: {`), a
scalar otherwise; repeated fields are repeated entries. Comments (`# ...`) and commas between
fields are skipped. Strings take C escapes; nothing in the file is run.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from ..errors import Location, SpecError

TOKEN = re.compile(
    r"""
    (?P<space>[ \t\r\f\v]+|\n) |
    (?P<comment>\#[^\n]*) |
    (?P<string>"(?:[^"\\\n]|\\.)*"|'(?:[^'\\\n]|\\.)*') |
    (?P<number>[-+]?(?:
        \d+\.\d*(?:[eE][-+]?\d+)? | \.\d+(?:[eE][-+]?\d+)? | \d+[eE][-+]?\d+ |
        0[xX][0-9a-fA-F]+ | \d+
    )[fF]?) |
    (?P<word>[-+]?[A-Za-z_][A-Za-z0-9_.]*) |
    (?P<punct>[{}<>:;,\[\]])
    """,
    re.VERBOSE,
)
ESCAPES = {"n": "\n", "t": "\t", "r": "\r", '"': '"', "'": "'", "\\": "\\", "0": "\0"}


@dataclass
class Field:
    name: str
    value: Any
    """str (strings), int, float, str (enum words and true/false), or a nested Message."""
    location: Location
    quoted: bool = False
    """True for a string literal, False for a bare word (an enum value such as MAX)."""


@dataclass
class Message:
    fields: list[Field] = field(default_factory=list)
    location: Location | None = None

    def all(self, name: str) -> list[Field]:
        return [f for f in self.fields if f.name == name]

    def get(self, name: str) -> Field | None:
        """The last entry of `name` (protobuf: a repeated scalar's last value wins)."""
        entries = self.all(name)
        return entries[-1] if entries else None

    def value(self, name: str, default: Any = None) -> Any:
        entry = self.get(name)
        return default if entry is None else entry.value

    def values(self, name: str) -> list[Any]:
        return [f.value for f in self.all(name)]


@dataclass
class _Token:
    kind: str
    text: str
    location: Location


def tokenize(text: str, file: str) -> list[_Token]:
    tokens, line, start, position = [], 1, 0, 0
    while position < len(text):
        match = TOKEN.match(text, position)
        where = Location(file, line, position - start + 1)
        if match is None:
            raise SpecError(f"unexpected character {text[position]!r}", where)
        kind = match.lastgroup or ""
        if kind == "space" and match.group() == "\n":
            line, start = line + 1, match.end()
        elif kind not in ("space", "comment"):
            tokens.append(_Token(kind, match.group(), where))
        position = match.end()
    tokens.append(_Token("end", "", Location(file, line, position - start + 1)))
    return tokens


def parse(text: str, file: str) -> Message:
    """The whole file as one Message (SpecError at the first token that does not fit)."""
    tokens = tokenize(text, file)
    message, index = _message(tokens, 0, None)
    if tokens[index].kind != "end":
        raise SpecError(f"unexpected {tokens[index].text!r}", tokens[index].location)
    return message


def _message(tokens: list[_Token], index: int, closer: str | None) -> tuple[Message, int]:
    message = Message(location=tokens[max(index - 1, 0)].location)
    while True:
        token = tokens[index]
        if token.kind == "end":
            if closer is not None:
                opened = message.location
                raise SpecError(
                    f"the file ends before the {closer!r} that closes the message opened at line "
                    f"{opened.line if opened else '?'}",
                    token.location,
                )
            return message, index
        if token.kind == "punct" and token.text == closer:
            return message, index + 1
        if token.kind == "punct" and token.text in ",;":
            index += 1
            continue
        if token.kind != "word":
            raise SpecError(f"expected a field name, got {token.text!r}", token.location)
        index += 1
        following = tokens[index]
        if following.kind == "punct" and following.text == ":":
            index += 1
            following = tokens[index]
        if following.kind == "punct" and following.text in "{<":
            inner, index = _message(tokens, index + 1, "}" if following.text == "{" else ">")
            message.fields.append(Field(token.text, inner, token.location))
        elif following.kind == "punct" and following.text == "[":
            values, index = _list(tokens, index + 1)
            message.fields.extend(Field(token.text, v, token.location, q) for v, q in values)
        else:
            value, quoted = _scalar(following)
            index += 1
            while quoted and tokens[index].kind == "string":  # "a" "b" is "ab"
                more, _ = _scalar(tokens[index])
                value, index = value + more, index + 1
            message.fields.append(Field(token.text, value, token.location, quoted))


def _list(tokens: list[_Token], index: int) -> tuple[list[tuple[Any, bool]], int]:
    values = []
    while not (tokens[index].kind == "punct" and tokens[index].text == "]"):
        if tokens[index].kind == "punct" and tokens[index].text == ",":
            index += 1
            continue
        if tokens[index].kind == "end":
            raise SpecError("the file ends inside a [...] list", tokens[index].location)
        values.append(_scalar(tokens[index]))
        index += 1
    return values, index + 1


def _scalar(token: _Token) -> tuple[Any, bool]:
    if token.kind == "string":
        return _unescape(token.text[1:-1], token.location), True
    if token.kind == "number":
        text = token.text.rstrip("fF") if not token.text.lower().startswith("0x") else token.text
        if text.lower().startswith(("0x", "-0x", "+0x")):
            return int(text, 16), False
        if re.fullmatch(r"[-+]?\d+", text):
            return int(text), False
        return float(text), False
    if token.kind == "word":
        lowered = token.text.lower().lstrip("-+")
        if lowered in ("inf", "infinity", "nan"):
            return float(token.text), False
        return token.text, False
    raise SpecError(
        f"expected a value, got {token.text or 'the end of the file'!r}", token.location
    )


def _unescape(body: str, where: Location) -> str:
    out, i = [], 0
    while i < len(body):
        char = body[i]
        if char != "\\":
            out.append(char)
            i += 1
            continue
        nxt = body[i + 1] if i + 1 < len(body) else ""
        if re.fullmatch(r"[0-7]{3}", body[i + 1 : i + 4]):
            out.append(chr(int(body[i + 1 : i + 4], 8)))
            i += 4
        elif nxt and nxt in ESCAPES:
            out.append(ESCAPES[nxt])
            i += 2
        elif nxt and nxt in "xX" and re.fullmatch(r"[0-9a-fA-F]{2}", body[i + 2 : i + 4]):
            out.append(chr(int(body[i + 2 : i + 4], 16)))
            i += 4
        else:
            raise SpecError(f"unknown escape '\\{nxt}' in a string", where)
    return "".join(out)
