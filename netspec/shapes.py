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
    """Element-wise sum `(H, W, C)`: inputs of that one shape, or `1x1xC` / `HxWx1` inputs
    broadcast against it (see `broadcast_shape`)."""
    return broadcast_shape("add", *shapes)


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


# --- norms, gates and regularisers


def _broadcasts(shape: Shape, full: Shape) -> bool:
    """Whether `shape` equals `full` or broadcasts against it as a `1x1xC` per-channel gate or
    an `HxWx1` per-pixel mask."""
    h, w, c = full
    return tuple(shape) == tuple(full) or tuple(shape) in ((1, 1, c), (h, w, 1))


def _broadcast_hint(shape: Shape, full: Shape) -> str:
    """What would make `shape` fit an element-wise merge with `full`."""
    h, w, c = full
    if tuple(shape[:2]) == (1, 1) and (h, w) != (1, 1):
        return (
            f"a 1x1xC gate must have the channels of the input it scales ({c}, not {shape[2]}): "
            f"give the layer that makes the gate {c} filters"
        )
    if tuple(shape[:2]) != (h, w):
        hint = "the branches downsample differently: give the shortcut the same stride"
        return hint + (f" and a 1x1 conv to {c} channels" if shape[2] not in (1, c) else "")
    return f"project the shortcut with a 1x1 conv to the same number of channels ({c})"


def broadcast_shape(op: str, *shapes: Shape) -> Shape:
    """The output of an element-wise merge (`op` is `add` or `multiply`): the full `(H, W, C)`
    one input has. Every other input has that shape too, or is a `(1, 1, C)` per-channel gate
    or an `(H, W, 1)` per-pixel mask broadcast over it; anything else is a ShapeError whose
    hint fits the mismatch (stride, 1x1 projection, gate channels)."""
    if not shapes:
        raise ShapeError(f"{op} needs at least one input")
    full = (max(s[0] for s in shapes), max(s[1] for s in shapes), max(s[2] for s in shapes))
    if all(_broadcasts(s, full) for s in shapes) and any(tuple(s) == full for s in shapes):
        return full
    listed = ", ".join(format_shape(s) for s in shapes)
    message = f"{op} needs equal shapes, or 1x1xC / HxWx1 inputs to broadcast, but gets {listed}"
    if all(_broadcasts(s, full) for s in shapes):
        raise ShapeError(
            message,
            hint=f"no input has the full shape {format_shape(full)}: a 1x1xC or HxWx1 input "
            "broadcasts only against an HxWxC one",
        )
    if not any(tuple(s) == full for s in shapes):
        full = max(shapes, key=lambda s: s[0] * s[1] * s[2])  # the first largest
    odd = next(s for s in shapes if not _broadcasts(s, full))
    raise ShapeError(message, hint=_broadcast_hint(odd, full))


def multiply_shape(*shapes: Shape) -> Shape:
    """Element-wise product `(H, W, C)`, e.g. a squeeze-excitation gate `1x1xC` times the
    `HxWxC` features it scales (see `broadcast_shape`)."""
    return broadcast_shape("multiply", *shapes)


def divisors_text(number: int) -> str:
    """`12` -> `1, 2, 3, 4, 6 or 12`: what a group or piece count may be."""
    small = [d for d in range(1, int(number**0.5) + 1) if number % d == 0]
    divisors = [str(d) for d in sorted({*small, *(number // d for d in small)})]
    return ", ".join(divisors[:-1]) + (" or " if len(divisors) > 1 else "") + divisors[-1]


def groupnorm_shape(shape: Shape, groups: int) -> Shape:
    """The input shape; ShapeError unless its channels split evenly into `groups`."""
    channels = shape[2]
    if channels % groups:
        listed = divisors_text(channels)
        noun = "channel" if channels == 1 else "channels"
        raise ShapeError(
            f"groupnorm: {channels} {noun} do not split into {groups} groups",
            hint=f"{channels} {noun} split into {listed} groups",
            field="groups",
        )
    return shape


# --- spatial layers (upsample, conv_transpose, slice, channel_shuffle)


def upsample_shape(
    shape: Shape, factor: int | Sequence[int] | None = None, size: int | Sequence[int] | None = None
) -> Shape:
    """`(H, W, C)` -> `(H * fh, W * fw, C)` for a `factor` (unset: 2), or `(*size, C)` for a
    fixed `size`; ShapeError when both are given."""
    if factor is not None and size is not None:
        raise ShapeError(
            "upsample takes a factor or a size, not both",
            hint="drop factor to resize to a fixed size, or drop size to scale by the factor",
            field="size",
        )
    if size is not None:
        height, width = pair(size)
        return (height, width, shape[2])
    fh, fw = pair(factor if factor is not None else 2)
    return (shape[0] * fh, shape[1] * fw, shape[2])


def conv_transpose_crops(
    shape: Shape,
    kernel: tuple[int, int],
    stride: tuple[int, int],
    padding: Any = 0,
    output_padding: int | Sequence[int] = 0,
) -> tuple[tuple[int, int], tuple[int, int]]:
    """Pixels a transposed convolution removes from each side of its full output
    `(H - 1) * stride + kernel`, as `((top, bottom), (left, right))`; negative: added.

    Pixels `p` (PyTorch's ConvTranspose2d) remove `p` on both sides, less `output_padding` at
    the bottom/right; `same` (TensorFlow/Keras Conv2DTranspose) leaves `H * stride`, removing
    `(kernel - stride) // 2` at the top/left and the rest at the bottom/right.
    """
    extra = pair(output_padding)
    if padding == "same":
        crops = []
        for axis in (0, 1):
            total = kernel[axis] - stride[axis]
            low = max(total, 0) // 2
            crops.append((low, total - low))
        return (crops[0], crops[1])
    ph, pw = pair(padding)
    return ((ph, ph - extra[0]), (pw, pw - extra[1]))


def conv_transpose_shape(
    shape: Shape,
    filters: int,
    kernel: int | Sequence[int],
    stride: int | Sequence[int] = 1,
    padding: Any = 0,
    output_padding: int | Sequence[int] = 0,
    groups: int = 1,
) -> Shape:
    """`(H, W, C)` -> `((H - 1) * stride - 2 * padding + kernel + output_padding, ..., filters)`
    per axis (PyTorch's ConvTranspose2d), or `(H * stride, W * stride, filters)` for `same`.
    ShapeError unless groups divide both channel counts and output_padding < stride."""
    kernel_hw, stride_hw, extra = pair(kernel), pair(stride), pair(output_padding)
    if shape[2] % groups:
        raise ShapeError(
            f"input channels ({shape[2]}) are not divisible by groups ({groups})",
            hint="make the previous layer's channel count a multiple of groups",
            field="groups",
        )
    if filters % groups:
        raise ShapeError(
            f"filters ({filters}) are not divisible by groups ({groups})",
            hint="use a multiple of groups as filters",
            field="filters",
        )
    if padding == "same" and extra != (0, 0):
        raise ShapeError(
            "output_padding has no meaning with padding=same (the output is input x stride)",
            hint="drop output_padding, or give padding in pixels",
            field="output_padding",
        )
    if extra[0] >= stride_hw[0] or extra[1] >= stride_hw[1]:
        raise ShapeError(
            f"output_padding {format_shape(extra)} must be smaller than the stride "
            f"{format_shape(stride_hw)}",
            hint="output_padding only picks one of the `stride` output sizes that a strided "
            "conv maps to the same input size: use 0 .. stride - 1",
            field="output_padding",
        )
    crops = conv_transpose_crops(shape, kernel_hw, stride_hw, padding, extra)
    sizes = []
    for axis, name in enumerate(("height", "width")):
        full = (shape[axis] - 1) * stride_hw[axis] + kernel_hw[axis]
        size = full - crops[axis][0] - crops[axis][1]
        if size < 1:
            raise ShapeError(
                f"padding {crops[axis][0]} crops the whole output {name} ({full} before cropping)",
                hint=f"use padding up to {(full - 1 + extra[axis]) // 2} here, or padding=same "
                "(output: input x stride)",
                field="padding",
            )
        sizes.append(size)
    return (sizes[0], sizes[1], int(filters))


def slice_bounds(shape: Shape, start: int = 0, stop: int | None = None) -> tuple[int, int]:
    """The channel range `[start, stop)` that `start` and `stop` pick from `shape`: negative
    values count from the last channel as in Python, an unset `stop` is the channel count.
    ShapeError unless it is a non-empty range inside the input."""
    channels = shape[2]
    first = start + channels if start < 0 else start
    last = channels if stop is None else stop + channels if stop < 0 else stop
    if not 0 <= first < channels:
        raise ShapeError(
            f"slice start {start} is outside the input's {channels} channels",
            hint=f"channels are numbered 0 to {channels - 1} (negative: from the end, "
            f"-{channels} to -1)",
            field="start",
        )
    if not first < last <= channels:
        raise ShapeError(
            f"slice stop {stop} leaves no channels after start {start} of {channels}"
            if last <= first
            else f"slice stop {stop} is beyond the input's {channels} channels",
            hint=f"stop must be in {first + 1} .. {channels} (negative: from the end); leave it "
            "unset to take every channel from start on",
            field="stop",
        )
    return (first, last)


def slice_shape(shape: Shape, start: int = 0, stop: int | None = None) -> Shape:
    """`(H, W, C)` -> `(H, W, stop - start)`, the channels `[start, stop)` (see `slice_bounds`)."""
    first, last = slice_bounds(shape, start, stop)
    return (shape[0], shape[1], last - first)


def split_bounds(shape: Shape, parts: int, index: int) -> tuple[int, int]:
    """The channel range `[start, stop)` of piece `index` of `parts` equal pieces; ShapeError
    unless the channels divide by `parts` and `0 <= index < parts`."""
    channels = shape[2]
    if channels % parts:
        raise ShapeError(
            f"split: {channels} channels do not cut into {parts} equal pieces",
            hint=f"use parts that divide {channels} ({divisors_text(channels)}), or "
            "`slice START STOP` for unequal pieces",
            field="parts",
        )
    if not 0 <= index < parts:
        raise ShapeError(
            f"split: piece {index} does not exist; there are {parts} (0 to {parts - 1})",
            hint="the second number is the piece to keep, counted from 0",
            field="index",
        )
    size = channels // parts
    return index * size, (index + 1) * size


def split_shape(shape: Shape, parts: int, index: int) -> Shape:
    """`(H, W, C)` -> `(H, W, C / parts)`: one of `parts` equal channel pieces."""
    start, stop = split_bounds(shape, parts, index)
    return (shape[0], shape[1], stop - start)


def channel_shuffle_shape(shape: Shape, groups: int) -> Shape:
    """The input shape; ShapeError unless its channels split evenly into `groups`."""
    channels = shape[2]
    if channels % groups:
        raise ShapeError(
            f"channel_shuffle: {channels} channels do not split into {groups} groups",
            hint=f"use groups that divide {channels} ({divisors_text(channels)}), or change the "
            "previous layer's channel count",
            field="groups",
        )
    return shape
