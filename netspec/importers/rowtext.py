"""One imported layer as the compact text of a netspec row (`conv 7x7/2 64 padding=3 relu`).

Values only: numbers as literals, booleans as true/false, words only from the layer type's own
vocabulary (`same`, `ceil`, `relu`), lists of those. A reader's string that is not such a word
never reaches the spec (ValueError), so a model file cannot smuggle text into the table.
"""

from __future__ import annotations

import math
import re
from typing import Any

from ..layers import REGISTRY

POOLS = ("maxpool", "avgpool")
VARIABLE = re.compile(r"\$[A-Za-z_][A-Za-z0-9_]*")


def default_of(op: str, name: str) -> Any:
    """The field's default in the layer type (None when it is required or unset)."""
    info = REGISTRY[op].params.model_fields[name]
    return None if info.is_required() else info.default


def words_of(op: str) -> set[str]:
    """The bare words this type's fields take (`same`, `valid`, `ceil`, `relu`, ...)."""
    return set(REGISTRY[op].flag_values())


def value_text(op: str, value: Any) -> str:
    """A field value as compact-row text."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(f"a non-finite number {value!r}")
        if value.is_integer() and abs(value) < 1e15:
            return f"{value:.1f}"
        return repr(value)
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(value_text(op, v) for v in value) + "]"
    if isinstance(value, str) and (value in words_of(op) or VARIABLE.fullmatch(value)):
        return value
    raise ValueError(f"{op}: {value!r} is not a value netspec writes into a spec")


def _pair(value: Any) -> tuple[Any, Any]:
    return (value[0], value[1]) if isinstance(value, (list, tuple)) else (value, value)


def window_text(kernel: Any, stride: Any, implied: Any) -> str:
    """`KxK`, `KHxKW`, with `/S` or `/SHxSW` unless the stride is the one the type implies
    (1 for convolutions, the kernel for pooling)."""
    kh, kw = _pair(kernel)
    text = f"{kh}x{kw}"
    if stride is not None and _pair(stride) != _pair(implied):
        sh, sw = _pair(stride)
        text += f"/{sh}" if sh == sw else f"/{sh}x{sw}"
    return text


def row_text(op: str, fields: dict[str, Any], defaults: dict[str, Any] | None = None) -> str:
    """`op` with `fields` in compact form; fields equal to what the row would get anyway (the
    spec's `defaults` for this type, else the type's own default) are left out."""
    defaults = defaults or {}
    # a field the reader left out has the type's default, which the spec's may not be
    fields = {**{k: default_of(op, k) for k in defaults if k not in fields}, **fields}
    layer = REGISTRY[op]
    parts = [op]
    written: set[str] = set()
    for positional in layer.positional:
        if positional == "window":
            window = (fields.get("kernel"), fields.get("stride"))
            if "kernel" not in fields or any(isinstance(v, str) for v in window):
                break  # a block argument: kernel=$k stride=$s
            implied = fields["kernel"] if op in POOLS else 1
            parts.append(window_text(fields["kernel"], fields.get("stride", implied), implied))
            written |= {"kernel", "stride"}
        elif positional in fields and not _is_default(op, positional, fields, defaults):
            parts.append(value_text(op, fields[positional]))
            written.add(positional)
        else:
            break
    options = []
    for name in layer.params.model_fields:
        if name in written or name not in fields or _is_default(op, name, fields, defaults):
            continue
        value = fields[name]
        if name == "activation" and value in words_of(op):
            parts.append(value)  # a bare word, with the positional values: `relu`
        else:
            options.append(f"{name}={value_text(op, value)}")
    parts += options
    unknown = set(fields) - set(layer.params.model_fields)
    if unknown:
        raise ValueError(f"{op} has no field(s) {sorted(unknown)}")
    return " ".join(parts)


def _is_default(op: str, name: str, fields: dict[str, Any], defaults: dict[str, Any]) -> bool:
    value = fields[name]
    if name in defaults:
        return value == defaults[name]
    if REGISTRY[op].params.model_fields[name].is_required():
        return False
    return value == default_of(op, name)
