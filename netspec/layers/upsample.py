"""Upsampling by an integer factor or to a fixed size: nearest neighbour or bilinear."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from .. import shapes
from .base import LayerParams, LayerType, Pair, Shape, register


class UpsampleParams(LayerParams):
    """`upsample 2`, `upsample 2 bilinear`, `upsample size=[14, 14]`: scale height and width by
    an integer `factor` (unset: 2; `[fh, fw]` per axis) or resize to a fixed `size`, not both.
    `mode` as PyTorch's `F.interpolate`: `nearest` repeats each pixel `factor` times, and to a
    `size` takes source pixel `min(floor(i * float32(in / out)), in - 1)` for output pixel `i`
    (PyTorch's rounding, computed in float32); `bilinear` uses half-pixel centres
    (`align_corners=False`) with no antialiasing. No parameters; 0 multiply-adds (no weights:
    fvcore counts 1 flop per output value for nearest and 4 for bilinear, not as MACs)."""

    factor: Pair | None = Field(
        None, description="a positive integer, or [height, width]; unset: 2, unless size is set"
    )
    size: Pair | None = Field(
        None, description="the output [height, width], or one integer for both; instead of factor"
    )
    mode: Literal["nearest", "bilinear"] = "nearest"


def upsample_shape(p: UpsampleParams, inputs: list[Shape]) -> Shape:
    return shapes.upsample_shape(inputs[0], p.factor, p.size)


register(
    LayerType(
        "upsample",
        UpsampleParams,
        upsample_shape,
        positional=("factor",),
        label="upsample",
        aliases=("upsampling", "interpolate"),
        example="upsample 2 bilinear",
    )
)
