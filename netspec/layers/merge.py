"""Merging several inputs: channel concatenation, element-wise addition and multiplication."""

from __future__ import annotations

from .. import shapes
from .base import LayerParams, LayerType, Shape, register


class ConcatParams(LayerParams):
    """`concat`: join inputs along channels; heights and widths must agree."""


def concat_shape(p: ConcatParams, inputs: list[Shape]) -> Shape:
    return shapes.concat_shape(*inputs)


class AddParams(LayerParams):
    """`add`: element-wise sum (residual connections) of inputs of one shape HxWxC; a 1x1xC
    (per-channel) or HxWx1 (per-pixel) input is broadcast over it."""


def add_shape(p: AddParams, inputs: list[Shape]) -> Shape:
    return shapes.add_shape(*inputs)


class MultiplyParams(LayerParams):
    """`multiply`: element-wise product of inputs of one shape HxWxC; a 1x1xC (per-channel,
    e.g. a squeeze-excitation gate) or HxWx1 (per-pixel) input is broadcast over it. Counts
    no multiply-adds (as torchvision's GFLOPs)."""


def multiply_shape(p: MultiplyParams, inputs: list[Shape]) -> Shape:
    return shapes.multiply_shape(*inputs)


register(
    LayerType(
        "concat",
        ConcatParams,
        concat_shape,
        inputs=(2, None),
        label="concat",
        example="concat from=[input, input]",
    )
)
register(
    LayerType(
        "add",
        AddParams,
        add_shape,
        inputs=(2, None),
        label="add",
        example="add from=[input, input]",
    )
)
register(
    LayerType(
        "multiply",
        MultiplyParams,
        multiply_shape,
        inputs=(2, None),
        label="multiply",
        aliases=("mul",),
        example="multiply from=[input, input]",
    )
)
