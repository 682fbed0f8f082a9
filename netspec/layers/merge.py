"""Merging several inputs: channel concatenation and element-wise addition."""

from __future__ import annotations

from .base import LayerParams, LayerType, Shape, ShapeError, format_shape, register


class ConcatParams(LayerParams):
    """`concat`: join inputs along channels; heights and widths must agree."""


def concat_shape(p: ConcatParams, inputs: list[Shape]) -> Shape:
    spatial = {s[:2] for s in inputs}
    if len(spatial) > 1:
        raise ShapeError(
            "concat inputs differ in height x width: " + ", ".join(format_shape(s) for s in inputs),
            hint="give every branch the same stride and padding (e.g. padding=same)",
        )
    return (inputs[0][0], inputs[0][1], sum(s[2] for s in inputs))


class AddParams(LayerParams):
    """`add`: element-wise sum (residual connections); all inputs must have one shape."""


def add_shape(p: AddParams, inputs: list[Shape]) -> Shape:
    if len(set(inputs)) > 1:
        shapes = ", ".join(format_shape(s) for s in inputs)
        channel_only = len({s[:2] for s in inputs}) == 1
        raise ShapeError(
            f"add needs equal shapes but gets {shapes}",
            hint=(
                "project the shortcut with a 1x1 conv to the same number of channels"
                if channel_only
                else "the branches downsample differently: give the shortcut the same stride"
            ),
        )
    return inputs[0]


register(
    LayerType(
        "concat", ConcatParams, concat_shape, inputs=(2, None), label="concat", flax_class="Concat"
    )
)
register(LayerType("add", AddParams, add_shape, inputs=(2, None), label="add", flax_class="Add"))
