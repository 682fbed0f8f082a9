"""Transposed 2-D convolution ("deconvolution"), as PyTorch's ConvTranspose2d."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, StrictBool

from .. import shapes
from ..shapes import pair
from .base import (
    Activation,
    Cost,
    LayerParams,
    LayerType,
    NonNegativeInt,
    Pair,
    PositiveInt,
    Shape,
    register,
)


class ConvTransposeParams(LayerParams):
    """`conv_transpose 4x4/2 64 padding=1`: the transpose (gradient) of a strided conv, which
    upsamples. Output `(H - 1) * stride - 2 * padding + kernel + output_padding` per axis, as
    PyTorch's ConvTranspose2d (`padding` pixels are cropped from each side of the full output,
    `output_padding` < stride added back at the bottom/right); `padding=same` gives
    `H * stride` as TensorFlow/Keras Conv2DTranspose. `groups`, `bias` and a fused
    `activation` as conv. Params `kh * kw * C * filters / groups` (+ filters); MACs
    `H * W * C * (filters / groups) * kh * kw` (each input value meets the `kh * kw * filters /
    groups` weights of its group), as fvcore counts a transposed conv."""

    filters: PositiveInt
    kernel: Pair
    stride: Pair = 1
    padding: Literal["same"] | NonNegativeInt | tuple[NonNegativeInt, NonNegativeInt] = Field(
        0,
        description="pixels p or [ph, pw] cropped from both sides (PyTorch), or same "
        "(output: input x stride)",
    )
    output_padding: NonNegativeInt | tuple[NonNegativeInt, NonNegativeInt] = Field(
        0, description="pixels added at the bottom/right, p or [ph, pw]; each below the stride"
    )
    groups: PositiveInt = 1
    bias: StrictBool = True
    activation: Activation = "none"


def conv_transpose_shape(p: ConvTransposeParams, inputs: list[Shape]) -> Shape:
    (shape,) = inputs
    return shapes.conv_transpose_shape(
        shape, p.filters, p.kernel, p.stride, p.padding, p.output_padding, p.groups
    )


def conv_transpose_cost(p: ConvTransposeParams, inputs: list[Shape], out: Shape) -> Cost:
    """Weights `kh * kw * C * filters / groups` (+ filters biases); each input value meets
    `kh * kw * filters / groups` weights (fvcore's count for a transposed conv)."""
    kh, kw = pair(p.kernel)
    h, w, c = inputs[0]
    weights = kh * kw * c * (p.filters // p.groups)
    return Cost(params=weights + (p.filters if p.bias else 0), macs=h * w * weights)


register(
    LayerType(
        "conv_transpose",
        ConvTransposeParams,
        conv_transpose_shape,
        conv_transpose_cost,
        positional=("window", "filters"),
        label="transposed convolution",
        weighted=True,
        aliases=("deconv", "convtranspose", "conv2d_transpose", "conv_transpose2d"),
        example="conv_transpose 3x3/2 8 relu padding=1 output_padding=1",
    )
)
