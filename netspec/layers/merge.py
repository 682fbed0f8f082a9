"""Merging several inputs: channel concatenation and element-wise addition."""

from __future__ import annotations

from .. import shapes
from .base import LayerParams, LayerType, Shape, register


class ConcatParams(LayerParams):
    """`concat`: join inputs along channels; heights and widths must agree."""


def concat_shape(p: ConcatParams, inputs: list[Shape]) -> Shape:
    return shapes.concat_shape(*inputs)


class AddParams(LayerParams):
    """`add`: element-wise sum (residual connections); all inputs must have one shape."""


def add_shape(p: AddParams, inputs: list[Shape]) -> Shape:
    return shapes.add_shape(*inputs)


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
