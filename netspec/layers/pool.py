"""Max and average pooling with explicit rounding, and global average pooling."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, StrictBool

from .. import shapes
from .base import LayerParams, LayerType, Padding, Pair, Shape, register


class PoolParams(LayerParams):
    """`maxpool 3x3/2 ceil`: `kernel`, `stride` (defaults to the kernel, as in Keras and PyTorch),
    `padding`, and `rounding` of the output size: `floor` (PyTorch, Keras) or `ceil` (Caffe).
    `count_include_pad` (average pooling only): divide by the full window, padding included."""

    kernel: Pair
    stride: Pair | None = Field(
        None, description="a positive integer, or [height, width]; unset: the kernel"
    )
    padding: Padding = "valid"
    rounding: Literal["floor", "ceil"] = "floor"
    count_include_pad: StrictBool = True


def pool_shape(p: PoolParams, inputs: list[Shape]) -> Shape:
    (shape,) = inputs
    return shapes.pool_shape(shape, p.kernel, p.stride, p.padding, p.rounding)


class GlobalPoolParams(LayerParams):
    """`global_avgpool`: the mean over height and width; output 1x1xC."""


def global_pool_shape(p: GlobalPoolParams, inputs: list[Shape]) -> Shape:
    return shapes.global_pool_shape(inputs[0])


register(
    LayerType(
        "maxpool",
        PoolParams,
        pool_shape,
        positional=("window",),
        label="max pool",
        example="maxpool 3x3/2 ceil",
    )
)
register(
    LayerType(
        "avgpool",
        PoolParams,
        pool_shape,
        positional=("window",),
        label="avg pool",
        example="avgpool 3x3/1 padding=1 count_include_pad=false",
    )
)
register(
    LayerType(
        "global_avgpool",
        GlobalPoolParams,
        global_pool_shape,
        label="global avg pool",
        aliases=("gap",),
        example="global_avgpool",
    )
)
