"""Zero padding around the height and width axes."""

from __future__ import annotations

from pydantic import Field

from ..shapes import explicit_padding
from .base import ExplicitPadding, LayerParams, LayerType, Shape, register


class ZeroPadParams(LayerParams):
    """`zeropad 3`: add zeros; `p`, `[ph, pw]` or `[[top, bottom], [left, right]]` pixels."""

    padding: ExplicitPadding = Field(
        description="pixels: p, [ph, pw] or [[top, bottom], [left, right]]"
    )


def zeropad_shape(p: ZeroPadParams, inputs: list[Shape]) -> Shape:
    (top, bottom), (left, right) = explicit_padding(p.padding)
    h, w, c = inputs[0]
    return (h + top + bottom, w + left + right, c)


register(
    LayerType(
        "zeropad",
        ZeroPadParams,
        zeropad_shape,
        positional=("padding",),
        label="zero padding",
        flax_class="ZeroPad",
    )
)
