"""Max and average pooling with explicit rounding, and global average pooling."""

from __future__ import annotations

from typing import Literal

from pydantic import StrictBool

from ..shapes import pair
from .base import LayerParams, LayerType, Padding, Pair, Shape, register, sliding_window_shape


class PoolParams(LayerParams):
    """`maxpool 3x3/2 ceil`: `kernel`, `stride` (defaults to the kernel, as in Keras and PyTorch),
    `padding`, and `rounding` of the output size: `floor` (PyTorch, Keras) or `ceil` (Caffe).
    `count_include_pad` (average pooling only): divide by the full window, padding included."""

    kernel: Pair
    stride: Pair | None = None
    padding: Padding = "valid"
    rounding: Literal["floor", "ceil"] = "floor"
    count_include_pad: StrictBool = True

    @property
    def strides(self) -> tuple[int, int]:
        return pair(self.stride if self.stride is not None else self.kernel)


def pool_shape(p: PoolParams, inputs: list[Shape]) -> Shape:
    (shape,) = inputs
    h, w = sliding_window_shape(
        shape, pair(p.kernel), p.strides, p.padding, ceil=p.rounding == "ceil"
    )
    return (h, w, shape[2])


class GlobalPoolParams(LayerParams):
    """`global_avgpool`: the mean over height and width; output 1x1xC."""


def global_pool_shape(p: GlobalPoolParams, inputs: list[Shape]) -> Shape:
    return (1, 1, inputs[0][2])


register(
    LayerType(
        "maxpool",
        PoolParams,
        pool_shape,
        positional=("window",),
        label="max pool",
        flax_class="MaxPool",
    )
)
register(
    LayerType(
        "avgpool",
        PoolParams,
        pool_shape,
        positional=("window",),
        label="avg pool",
        flax_class="AvgPool",
    )
)
register(
    LayerType(
        "global_avgpool",
        GlobalPoolParams,
        global_pool_shape,
        label="global avg pool",
        flax_class="GlobalAvgPool",
    )
)
