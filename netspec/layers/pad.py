"""Zero padding around the height and width axes."""

from __future__ import annotations

from pydantic import Field

from .. import shapes
from .base import ExplicitPadding, LayerParams, LayerType, Shape, register


class ZeroPadParams(LayerParams):
    """`zeropad 3`: add zeros; `p`, `[ph, pw]` or `[[top, bottom], [left, right]]` pixels."""

    padding: ExplicitPadding = Field(
        description="pixels: p, [ph, pw] or [[top, bottom], [left, right]]"
    )


def zeropad_shape(p: ZeroPadParams, inputs: list[Shape]) -> Shape:
    return shapes.zeropad_shape(inputs[0], p.padding)


register(
    LayerType(
        "zeropad",
        ZeroPadParams,
        zeropad_shape,
        positional=("padding",),
        label="zero padding",
        aliases=("pad",),
        example="zeropad [[1, 2], [0, 3]]",
    )
)
