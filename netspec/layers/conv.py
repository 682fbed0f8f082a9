"""2-D convolution: square or asymmetric kernels, stride, padding, groups, dilation, bias."""

from __future__ import annotations

from pydantic import StrictBool, model_validator

from .. import shapes
from ..shapes import pair
from .base import (
    Activation,
    Cost,
    LayerParams,
    LayerType,
    Padding,
    Pair,
    PositiveInt,
    Shape,
    register,
)


class ConvParams(LayerParams):
    """`conv 3x3/2 64`: `filters` output channels, `kernel` (h, w), `stride`, `padding`
    (`same` as TensorFlow/Flax, `valid`, or explicit pixels as Caffe/PyTorch), `groups`
    (AlexNet's two towers are groups=2), `dilation`, `bias`, and a fused `activation`."""

    filters: PositiveInt
    kernel: Pair
    stride: Pair = 1
    padding: Padding = "valid"
    dilation: Pair = 1
    groups: PositiveInt = 1
    bias: StrictBool = True
    activation: Activation = "none"

    @model_validator(mode="after")
    def _groups_divide_filters(self) -> ConvParams:
        if self.filters % self.groups:
            raise ValueError(
                f"filters ({self.filters}) must be divisible by groups ({self.groups})"
            )
        return self


def conv_shape(p: ConvParams, inputs: list[Shape]) -> Shape:
    (shape,) = inputs
    return shapes.conv_shape(shape, p.filters, p.kernel, p.stride, p.padding, p.dilation, p.groups)


def conv_cost(p: ConvParams, inputs: list[Shape], out: Shape) -> Cost:
    kh, kw = pair(p.kernel)
    per_output = kh * kw * inputs[0][2] // p.groups
    weights = per_output * p.filters
    return Cost(
        params=weights + (p.filters if p.bias else 0),
        macs=out[0] * out[1] * out[2] * per_output,
    )


register(
    LayerType(
        "conv",
        ConvParams,
        conv_shape,
        conv_cost,
        positional=("window", "filters"),
        label="convolution",
        weighted=True,
        aliases=("convolution",),
        example="conv 3x3/2 32 same relu",
        example_input=(32, 32, 3),
    )
)
