"""Pure-Python shape rules, the one copy the analysis and the Flax layers both call.

Shapes are `(height, width, channels)`; a flat vector of N features is `(1, 1, N)`. Each
`*_shape` rule takes the input shape (or the input shapes, for merges) and the layer's
parameters, returns the output shape and raises ShapeError for input it cannot take.
netspec.layers adapts them to its params models; netspec.flax_layers computes `out_shape` with
them. This module imports nothing but the standard library: `netspec compile --emit flax`
copies it into ejected source files.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

Shape = tuple[int, int, int]


class ShapeError(ValueError):
    """A layer cannot take the shapes it is given; the message says why and what would work.

    `hint` suggests a fix; `field` names the parameter at fault (the analysis points there).
    """

    def __init__(self, message: str, hint: str | None = None, field: str | None = None) -> None:
        super().__init__(message)
        self.hint = hint
        self.field = field


def format_shape(shape: Sequence[int]) -> str:
    """`(28, 28, 256)` -> `28x28x256`, as the paper prints output sizes."""
    return "x".join(str(d) for d in shape)


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


# ----------------------------------------------------------------------------- shape rules


def window_shape(
    shape: Shape,
    kernel: tuple[int, int],
    stride: tuple[int, int],
    padding: Any,
    dilation: tuple[int, int] = (1, 1),
    ceil: bool = False,
) -> tuple[int, int]:
    """Output `(height, width)` of a window op on `shape`; ShapeError when the window does not
    fit the (padded) input."""
    pads = resolve_padding(padding, shape, kernel, stride, dilation)
    sizes = []
    for axis, name in enumerate(("height", "width")):
        span = dilation[axis] * (kernel[axis] - 1) + 1
        padded = shape[axis] + pads[axis][0] + pads[axis][1]
        if span > padded:
            raise ShapeError(
                f"the {kernel[0]}x{kernel[1]} window (span {span}) is larger than the input {name} "
                f"{shape[axis]}" + (f" padded to {padded}" if padded != shape[axis] else ""),
                hint="use padding=same, a smaller kernel, or remove a downsampling layer before it",
                field="kernel",
            )
        sizes.append(
            window_output(shape[axis], kernel[axis], stride[axis], pads[axis], dilation[axis], ceil)
        )
    return (sizes[0], sizes[1])


def conv_shape(
    shape: Shape,
    filters: int,
    kernel: int | Sequence[int],
    stride: int | Sequence[int] = 1,
    padding: Any = "valid",
    dilation: int | Sequence[int] = 1,
    groups: int = 1,
) -> Shape:
    """`(H, W, C)` -> `(H', W', filters)`; the input channels must divide into `groups`."""
    if shape[2] % groups:
        raise ShapeError(
            f"input channels ({shape[2]}) are not divisible by groups ({groups})",
            hint="make the previous layer's channel count a multiple of groups",
        )
    h, w = window_shape(shape, pair(kernel), pair(stride), padding, pair(dilation))
    return (h, w, int(filters))


def pool_shape(
    shape: Shape,
    kernel: int | Sequence[int],
    stride: int | Sequence[int] | None = None,
    padding: Any = "valid",
    rounding: str = "floor",
) -> Shape:
    """`(H, W, C)` -> `(H', W', C)`; `stride` defaults to `kernel`, `rounding` floor or ceil."""
    strides = pair(stride if stride is not None else kernel)
    h, w = window_shape(shape, pair(kernel), strides, padding, ceil=rounding == "ceil")
    return (h, w, shape[2])


def global_pool_shape(shape: Shape) -> Shape:
    """`(H, W, C)` -> `(1, 1, C)`."""
    return (1, 1, shape[2])


def flat_features(shape: Shape, layer: str) -> int:
    """The feature count N of a flat `(1, 1, N)` input; ShapeError for a spatial one."""
    if shape[0] != 1 or shape[1] != 1:
        raise ShapeError(
            f"{layer} needs a flat input (1x1xN) but gets {format_shape(shape)}",
            hint="add a `flatten` or `global_avgpool` row before it",
        )
    return shape[2]


def dense_shape(shape: Shape, units: int) -> Shape:
    """`(1, 1, N)` -> `(1, 1, units)`."""
    flat_features(shape, "dense")
    return (1, 1, int(units))


def flatten_shape(shape: Shape) -> Shape:
    """`(H, W, C)` -> `(1, 1, H*W*C)`."""
    h, w, c = shape
    return (1, 1, h * w * c)


def zeropad_shape(shape: Shape, padding: int | Sequence[Any]) -> Shape:
    """`(H, W, C)` -> `(H + top + bottom, W + left + right, C)`."""
    (top, bottom), (left, right) = explicit_padding(padding)
    h, w, c = shape
    return (h + top + bottom, w + left + right, c)


def lrn_shape(shape: Shape, size: int) -> Shape:
    """The input shape; ShapeError unless `size` is odd (the window is centred on a channel)."""
    if size % 2 == 0:
        raise ShapeError(
            f"lrn size must be odd to centre the window, got {size}",
            hint="use size 5, as AlexNet and GoogLeNet do",
        )
    return shape


def concat_shape(*shapes: Shape) -> Shape:
    """Channel concatenation: `(H, W, C1), (H, W, C2), ...` -> `(H, W, C1 + C2 + ...)`."""
    if not shapes:
        raise ShapeError("concat needs at least one input")
    if len({tuple(s[:2]) for s in shapes}) > 1:
        raise ShapeError(
            "concat inputs differ in height x width: " + ", ".join(format_shape(s) for s in shapes),
            hint="give every branch the same stride and padding (e.g. padding=same)",
        )
    return (shapes[0][0], shapes[0][1], sum(s[2] for s in shapes))


def add_shape(*shapes: Shape) -> Shape:
    """Element-wise sum: every input has one shape `(H, W, C)`, which is the output's."""
    if not shapes:
        raise ShapeError("add needs at least one input")
    if len({tuple(s) for s in shapes}) > 1:
        listed = ", ".join(format_shape(s) for s in shapes)
        channel_only = len({tuple(s[:2]) for s in shapes}) == 1
        raise ShapeError(
            f"add needs equal shapes but gets {listed}",
            hint=(
                "project the shortcut with a 1x1 conv to the same number of channels"
                if channel_only
                else "the branches downsample differently: give the shortcut the same stride"
            ),
        )
    return shapes[0]


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
