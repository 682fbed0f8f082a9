"""Normalisation: batch norm and local response normalization."""

from __future__ import annotations

from pydantic import Field, StrictBool

from .. import shapes
from .base import Cost, LayerParams, LayerType, Number, PositiveInt, Shape, register, same_shape


class BatchNormParams(LayerParams):
    """`bn`: normalise each channel. `momentum` weighs the old running statistics
    (Flax/Keras convention: 0.9 here equals PyTorch's momentum=0.1). `scale` (gamma) and
    `center` (beta) are the trainable parameters; running mean and variance are state."""

    eps: Number = Field(1e-5, gt=0)
    momentum: Number = Field(0.9, ge=0, le=1)
    scale: StrictBool = True
    center: StrictBool = True


def batchnorm_cost(p: BatchNormParams, inputs: list[Shape], out: Shape) -> Cost:
    channels = inputs[0][2]
    return Cost(params=channels * (int(p.scale) + int(p.center)), state=2 * channels)


class LRNParams(LayerParams):
    """`lrn 5`: local response normalization across channels, as Caffe defines it:
    `x / (k + alpha/size * sum of x^2 over `size` neighbouring channels) ** beta`.
    (AlexNet's paper writes alpha without the division by size: multiply it by size here.)"""

    size: PositiveInt = 5
    alpha: Number = Field(1e-4, ge=0)
    beta: Number = 0.75
    k: Number = 1.0


def lrn_shape(p: LRNParams, inputs: list[Shape]) -> Shape:
    return shapes.lrn_shape(inputs[0], p.size)


register(
    LayerType(
        "batchnorm",
        BatchNormParams,
        same_shape,
        batchnorm_cost,
        label="batch norm",
        aliases=("bn", "batch_norm"),
        example="bn",
    )
)
register(
    LayerType(
        "lrn", LRNParams, lrn_shape, positional=("size",), label="LRN", example="lrn 5 alpha=1e-4"
    )
)
