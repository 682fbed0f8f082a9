"""Dense, flatten, dropout, drop path, layer scale and the element-wise activations."""

from __future__ import annotations

from typing import get_args

from pydantic import Field, StrictBool

from .. import shapes
from .base import (
    Activation,
    Cost,
    LayerParams,
    LayerType,
    Number,
    PositiveInt,
    Shape,
    register,
    same_shape,
)


class DenseParams(LayerParams):
    """`dense 1000`: a fully connected layer on a flat input (paper: "linear")."""

    units: PositiveInt
    bias: StrictBool = True
    activation: Activation = "none"


def dense_shape(p: DenseParams, inputs: list[Shape]) -> Shape:
    return shapes.dense_shape(inputs[0], p.units)


def dense_cost(p: DenseParams, inputs: list[Shape], out: Shape) -> Cost:
    features = inputs[0][2]
    return Cost(params=features * p.units + (p.units if p.bias else 0), macs=features * p.units)


class FlattenParams(LayerParams):
    """`flatten`: HxWxC -> 1x1x(H*W*C), in row-major (height, width, channel) order."""


def flatten_shape(p: FlattenParams, inputs: list[Shape]) -> Shape:
    return shapes.flatten_shape(inputs[0])


class DropoutParams(LayerParams):
    """`dropout 0.4`: zero a fraction `rate` of activations in training only."""

    rate: Number = Field(ge=0, lt=1)


class DropPathParams(LayerParams):
    """`drop_path 0.1`: stochastic depth, in training only: zero each example's whole input
    with probability `rate` and scale the kept ones by 1 / (1 - rate); identity in eval. Put
    it on a residual branch, before the `add`."""

    rate: Number = Field(ge=0, lt=1)


class LayerScaleParams(LayerParams):
    """`layer_scale 1e-6`: multiply each channel by a learnable factor (gamma, C parameters)
    that starts at `init` (ConvNeXt's default 1e-6, CaiT's LayerScale)."""

    init: Number = 1e-6


def layer_scale_cost(p: LayerScaleParams, inputs: list[Shape], out: Shape) -> Cost:
    """One factor per channel; the element-wise product counts no multiply-adds."""
    return Cost(params=inputs[0][2])


class ActivationParams(LayerParams):
    """`relu`, `tanh`, ...: an element-wise function (`fn`); softmax is over channels."""

    fn: Activation


register(
    LayerType(
        "dense",
        DenseParams,
        dense_shape,
        dense_cost,
        positional=("units",),
        label="linear",
        weighted=True,
        aliases=("linear", "fc"),
        example="dense 10 softmax",
        example_input=(1, 1, 256),
    )
)
register(LayerType("flatten", FlattenParams, flatten_shape, example="flatten"))
register(
    LayerType("dropout", DropoutParams, same_shape, positional=("rate",), example="dropout 0.4")
)
register(
    LayerType(
        "drop_path",
        DropPathParams,
        same_shape,
        positional=("rate",),
        label="drop path",
        aliases=("stochastic_depth",),
        example="drop_path 0.1",
    )
)
register(
    LayerType(
        "layer_scale",
        LayerScaleParams,
        same_shape,
        layer_scale_cost,
        positional=("init",),
        label="layer scale",
        example="layer_scale 1e-6",
    )
)
register(
    LayerType(
        "activation", ActivationParams, same_shape, positional=("fn",), example="activation gelu"
    )
)
for _fn in get_args(Activation):
    if _fn not in ("none", "linear"):
        register(
            LayerType(
                _fn,
                ActivationParams,
                same_shape,
                presets={"fn": _fn},
                example=_fn,
                preset_of="activation",
            )
        )
