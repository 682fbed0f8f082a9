"""How spec values read as text and text reads back as a value, for netspec and generated code.

Pure Python (no YAML, no pydantic): ejected standalone files inline this module, so the
generated code interpolates `${...}` into text exactly as the expander does.
"""

from __future__ import annotations

import math
import re

_NULL = re.compile(r"~|null|Null|NULL|")
_TRUE = re.compile(r"true|True|TRUE")
_FALSE = re.compile(r"false|False|FALSE")
_INT = re.compile(r"[-+]?[0-9]+")
_OCT = re.compile(r"0o[0-7]+")
_HEX = re.compile(r"0x[0-9a-fA-F]+")
_FLOAT = re.compile(r"[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?")
_INF = re.compile(r"[-+]?\.(inf|Inf|INF)")
_NAN = re.compile(r"\.(nan|NaN|NAN)")


def format_value(value: object) -> str:
    """A value as interpolated into text: `64`, `0.5`, `true`, `none`, `[1, 'a']`."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "none"
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, list | tuple):
        return (
            "[" + ", ".join(repr(v) if isinstance(v, str) else format_value(v) for v in value) + "]"
        )
    return str(value)


def spec_text(*parts: object) -> str:
    """Literal text and values joined as a spec template joins them (`conv${k}`)."""
    return "".join(p if isinstance(p, str) else format_value(p) for p in parts)


def read_scalar(text: str) -> object:
    """Text read as a plain YAML 1.2 core-schema scalar: null, bool, int, float, else the text."""
    if _NULL.fullmatch(text):
        return None
    if _TRUE.fullmatch(text):
        return True
    if _FALSE.fullmatch(text):
        return False
    if _INT.fullmatch(text):
        return int(text, 10)  # may raise ValueError past Python's digit limit
    if _OCT.fullmatch(text):
        return int(text[2:], 8)
    if _HEX.fullmatch(text):
        return int(text[2:], 16)
    if _FLOAT.fullmatch(text):
        return float(text)
    if _INF.fullmatch(text):
        return -math.inf if text.startswith("-") else math.inf
    return math.nan if _NAN.fullmatch(text) else text
