"""Channel-wise rearrangements: a channel slice and ShuffleNet's channel shuffle."""

from __future__ import annotations

from pydantic import Field

from .. import shapes
from .base import Integer, LayerParams, LayerType, PositiveInt, Shape, register


class SliceParams(LayerParams):
    """`slice 0 58`: keep the channels `[start, stop)` of the input (ShuffleNet v2's channel
    split is `slice 0 58` and `slice 58`); output HxWx(stop - start). Negative values count
    from the end as in Python (`slice -8` keeps the last 8); an unset `stop` is the last
    channel. Out-of-range or empty slices are errors (Python would clip them)."""

    start: Integer = Field(0, description="first channel kept (negative: from the end)")
    stop: Integer | None = Field(
        None, description="channel after the last kept (negative: from the end); unset: the end"
    )


def slice_shape(p: SliceParams, inputs: list[Shape]) -> Shape:
    return shapes.slice_shape(inputs[0], p.start, p.stop)


class SplitParams(LayerParams):
    """`split 2 1`: piece `index` (0-based) of the input's channels cut into `parts` equal
    pieces, as `torch.chunk`; ShuffleNet v2's channel split is `split 2 0` and `split 2 1`,
    each a row that later rows read by name. The channels must divide by `parts`."""

    parts: PositiveInt = Field(description="how many equal pieces the channels are cut into")
    index: Integer = Field(description="which piece this row keeps, 0 to parts - 1")


def split_shape(p: SplitParams, inputs: list[Shape]) -> Shape:
    return shapes.split_shape(inputs[0], p.parts, p.index)


class ChannelShuffleParams(LayerParams):
    """`channel_shuffle 2`: ShuffleNet's shuffle of `groups` channel groups. Channel
    `g * (C / groups) + j` moves to `j * groups + g`: the order of torchvision's
    `channel_shuffle` (reshape to (groups, C / groups), transpose, flatten)."""

    groups: PositiveInt


def channel_shuffle_shape(p: ChannelShuffleParams, inputs: list[Shape]) -> Shape:
    return shapes.channel_shuffle_shape(inputs[0], p.groups)


register(
    LayerType(
        "slice",
        SliceParams,
        slice_shape,
        positional=("start", "stop"),
        label="channel slice",
        aliases=("channel_slice",),
        example="slice 4 12",
    )
)
register(
    LayerType(
        "split",
        SplitParams,
        split_shape,
        positional=("parts", "index"),
        label="channel split",
        aliases=("chunk",),
        example="split 2 1",
    )
)
register(
    LayerType(
        "channel_shuffle",
        ChannelShuffleParams,
        channel_shuffle_shape,
        positional=("groups",),
        label="channel shuffle",
        aliases=("shuffle",),
        example="channel_shuffle 4",
    )
)
