"""Normalisation: batch, layer and group norm, and local response normalization."""

from __future__ import annotations

from pydantic import Field, StrictBool

from .. import shapes
from .base import (
    Cost,
    LayerParams,
    LayerType,
    Number,
    PositiveInt,
    Shape,
    register,
    same_shape,
)


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


class LayerNormParams(LayerParams):
    """`layernorm`: normalise each pixel over its channels only (channels-last, as ConvNeXt's
    LayerNorm2d; on a flat 1x1xN input it is ordinary LayerNorm), with no running statistics.
    `eps` defaults to 1e-6 as ConvNeXt and Flax use (PyTorch's nn.LayerNorm uses 1e-5: set
    `eps=1e-5` to match it). `scale` (gamma) and `center` (beta) are per-channel parameters."""

    eps: Number = Field(1e-6, gt=0)
    scale: StrictBool = True
    center: StrictBool = True


class GroupNormParams(LayerParams):
    """`groupnorm 32`: split the channels into `groups` groups and normalise each over its
    (height, width, channels / groups) values, per example (Wu & He 2018; PyTorch's
    nn.GroupNorm, whose eps 1e-5 is the default). The channels must divide by `groups`.
    `scale` (gamma) and `center` (beta) are per-channel parameters; no running statistics."""

    groups: PositiveInt = 32
    eps: Number = Field(1e-5, gt=0)
    scale: StrictBool = True
    center: StrictBool = True


def affine_cost(p: LayerNormParams | GroupNormParams, inputs: list[Shape], out: Shape) -> Cost:
    """Per-channel gamma and beta; normalising counts no multiply-adds (as batch norm)."""
    channels = inputs[0][2]
    return Cost(params=channels * (int(p.scale) + int(p.center)))


def groupnorm_shape(p: GroupNormParams, inputs: list[Shape]) -> Shape:
    return shapes.groupnorm_shape(inputs[0], p.groups)


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
register(
    LayerType(
        "layernorm",
        LayerNormParams,
        same_shape,
        affine_cost,
        label="layer norm",
        aliases=("ln", "layer_norm"),
        example="layernorm",
    )
)
register(
    LayerType(
        "groupnorm",
        GroupNormParams,
        groupnorm_shape,
        affine_cost,
        positional=("groups",),
        label="group norm",
        aliases=("gn", "group_norm"),
        example="groupnorm 4",
    )
)
