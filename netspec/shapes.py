"""Pure-Python shape arithmetic for sliding windows, shared by the analysis and the Flax layers.

Shapes are `(height, width, channels)`. This module imports nothing but the standard library:
`netspec compile --emit flax` copies it into ejected source files.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

Shape = tuple[int, int, int]


def pair(value: int | Sequence[int]) -> tuple[int, int]:
    """`3` -> `(3, 3)`; `(1, 7)` stays."""
    if isinstance(value, int):
        return (value, value)
    return (int(value[0]), int(value[1]))


def explicit_padding(value: int | Sequence[Any]) -> tuple[tuple[int, int], tuple[int, int]]:
    """Normalise explicit padding to `((top, bottom), (left, right))`."""
    if isinstance(value, int):
        return ((value, value), (value, value))
    first, second = value
    if isinstance(first, int):
        return ((first, first), (int(second), int(second)))
    return ((int(first[0]), int(first[1])), (int(second[0]), int(second[1])))


def window_output(
    size: int, kernel: int, stride: int, pads: tuple[int, int], dilation: int, ceil: bool
) -> int:
    """Output length of a sliding window along one axis (the textbook formula).

    `floor((size + pad_total - dilation*(kernel-1) - 1) / stride) + 1`, or with `ceil` rounding as
    Caffe does, dropping a last window that would start entirely inside the padding.
    """
    span = dilation * (kernel - 1) + 1
    room = size + pads[0] + pads[1] - span
    if room < 0:
        return 0
    out = (-(-room // stride) if ceil else room // stride) + 1
    if ceil and (out - 1) * stride >= size + pads[0]:
        out -= 1
    return out


def same_padding(size: int, kernel: int, stride: int, dilation: int) -> tuple[int, int]:
    """TF/Flax "SAME" padding along one axis: output `ceil(size/stride)`, extra pad after."""
    span = dilation * (kernel - 1) + 1
    out = -(-size // stride)
    total = max((out - 1) * stride + span - size, 0)
    return (total // 2, total - total // 2)


def resolve_padding(
    padding: Any,
    shape: Shape,
    kernel: tuple[int, int],
    stride: tuple[int, int],
    dilation: tuple[int, int] = (1, 1),
) -> tuple[tuple[int, int], tuple[int, int]]:
    """The `((top, bottom), (left, right))` padding that `padding` means for this input."""
    if padding == "valid":
        return ((0, 0), (0, 0))
    if padding == "same":
        return (
            same_padding(shape[0], kernel[0], stride[0], dilation[0]),
            same_padding(shape[1], kernel[1], stride[1], dilation[1]),
        )
    return explicit_padding(padding)


def concat_shape(*shapes: Shape) -> Shape:
    """Channel concatenation: equal height and width, channels added."""
    return (shapes[0][0], shapes[0][1], sum(s[2] for s in shapes))


WINDOW_TOKEN = re.compile(r"^(\d+)(?:x(\d+))?(?:/(\d+)(?:x(\d+))?)?$")


def parse_window(token: str | int) -> dict[str, Any] | None:
    """`7x7/2` -> {kernel: (7, 7), stride: (2, 2)}; `1x7` -> {kernel: (1, 7)}; `3` -> {kernel:
    (3, 3)}; anything else -> None."""
    match = WINDOW_TOKEN.match(str(token))
    if not match or isinstance(token, bool):
        return None
    kh, kw, sh, sw = match.groups()
    out: dict[str, Any] = {"kernel": (int(kh), int(kw or kh))}
    if sh is not None:
        out["stride"] = (int(sh), int(sw or sh))
    return out


def window(token: str | int) -> dict[str, Any]:
    """`parse_window` for generated code, where a block argument carries the window text."""
    parsed = parse_window(token)
    if parsed is None:
        raise ValueError(f"{token!r} is not a window such as 3, 3x3, 1x7 or 3x3/2")
    return parsed
