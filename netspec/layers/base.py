"""The layer registry: one `LayerType` per spec layer type, with its params model and its rules.

Shapes are `(height, width, channels)` tuples of ints; a flat vector of N features is `(1, 1, N)`.
Costs are counted per example: parameters (trainable), state (non-trainable buffers such as
batch-norm running statistics) and multiply-accumulates (MACs, the GoogLeNet paper's "ops").
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Annotated, Any, Literal, get_args, get_origin

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field

from ..shapes import resolve_padding, window_output

Shape = tuple[int, int, int]


class ShapeError(ValueError):
    """A layer cannot take the shapes it is given; the message says why and what would work."""

    def __init__(self, message: str, hint: str | None = None, field: str | None = None) -> None:
        super().__init__(message)
        self.hint = hint
        self.field = field


def number_check(kind: str) -> Callable[[Any], Any]:
    """A validator refusing booleans and quoted text where a number is wanted (pydantic would
    take `true` as 1 and '64' as 64); a whole float such as 64.0 from `${w / 2}` passes."""

    def check(value: Any) -> Any:
        if isinstance(value, bool | str):
            shown = str(value).lower() if isinstance(value, bool) else repr(value)
            raise ValueError(f"expected {kind}, got {shown}")
        return value

    return check


Integer = Annotated[int, BeforeValidator(number_check("a whole number"))]
Number = Annotated[float, BeforeValidator(number_check("a number"))]
PositiveInt = Annotated[Integer, Field(ge=1)]
NonNegativeInt = Annotated[Integer, Field(ge=0)]
Pair = Annotated[
    PositiveInt | tuple[PositiveInt, PositiveInt],
    Field(description="a positive integer, or [height, width] such as [1, 7]"),
]
"""A square size `3` or an asymmetric `(height, width)` such as `(1, 7)`."""

ExplicitPadding = (
    NonNegativeInt
    | tuple[NonNegativeInt, NonNegativeInt]
    | tuple[tuple[NonNegativeInt, NonNegativeInt], tuple[NonNegativeInt, NonNegativeInt]]
)
"""`p` on every side, `(ph, pw)` per axis, or `((top, bottom), (left, right))`."""

Padding = Annotated[
    Literal["same", "valid"] | ExplicitPadding,
    Field(description="same, valid, or pixels: p, [ph, pw] or [[top, bottom], [left, right]]"),
]

Activation = Literal[
    "none",
    "linear",
    "relu",
    "relu6",
    "tanh",
    "sigmoid",
    "softmax",
    "gelu",
    "silu",
    "elu",
    "leaky_relu",
    "softplus",
]


class LayerParams(BaseModel):
    """Base of every layer's parameters: unknown fields are errors, booleans are strict."""

    model_config = ConfigDict(extra="forbid", frozen=True)


def sliding_window_shape(
    shape: Shape,
    kernel: tuple[int, int],
    stride: tuple[int, int],
    padding: Any,
    dilation: tuple[int, int] = (1, 1),
    ceil: bool = False,
) -> tuple[int, int]:
    """Output `(height, width)` of a window op; raises ShapeError when the window does not fit."""
    pads = resolve_padding(padding, shape, kernel, stride, dilation)
    sizes = []
    for axis, name in enumerate(("height", "width")):
        span = dilation[axis] * (kernel[axis] - 1) + 1
        padded = shape[axis] + pads[axis][0] + pads[axis][1]
        if span > padded:
            raise ShapeError(
                f"the {kernel[0]}x{kernel[1]} window (span {span}) is larger than the input {name} "
                f"{shape[axis]}" + (f" padded to {padded}" if padded != shape[axis] else ""),
                hint="use padding=same, a smaller kernel, or remove a downsampling layer before it",
                field="kernel",
            )
        sizes.append(
            window_output(shape[axis], kernel[axis], stride[axis], pads[axis], dilation[axis], ceil)
        )
    return (sizes[0], sizes[1])


def require_flat(shape: Shape, layer: str) -> int:
    """The feature count of a flat `(1, 1, N)` input; raises ShapeError for a spatial one."""
    if shape[0] != 1 or shape[1] != 1:
        raise ShapeError(
            f"{layer} needs a flat input (1x1xN) but gets {format_shape(shape)}",
            hint="add a `flatten` or `global_avgpool` row before it",
        )
    return shape[2]


def format_shape(shape: Shape) -> str:
    """`(28, 28, 256)` -> `28x28x256`, as the paper prints output sizes."""
    return "x".join(str(d) for d in shape)


@dataclass(frozen=True)
class Cost:
    """What one layer costs for one example: trainable params, buffers, multiply-accumulates."""

    params: int = 0
    state: int = 0
    macs: int = 0


@dataclass(frozen=True)
class LayerType:
    """One spec layer type: its params model and how to compute its shape and its cost.

    `positional` names the fields that bare tokens of the compact row form fill, in order;
    a `window` entry reads `KxK[/S]` into `kernel` (and `stride`).
    `presets` are fixed params for alias types such as `relu` (an `activation` with fn=relu).
    """

    name: str
    params: type[LayerParams]
    output_shape: Callable[[Any, list[Shape]], Shape]
    cost: Callable[[Any, list[Shape], Shape], Cost] = lambda p, i, o: Cost()
    positional: tuple[str, ...] = ()
    label: str = ""
    inputs: tuple[int, int | None] = (1, 1)
    weighted: bool = False
    presets: dict[str, Any] = field(default_factory=dict)
    flax_class: str = ""
    """The class in netspec.flax_layers that runs this layer (generated code instantiates it)."""

    @property
    def table_label(self) -> str:
        return self.label or self.name

    def flag_values(self) -> dict[str, str]:
        """Bare words a compact row may use for Literal fields, e.g. `same` -> padding."""
        flags: dict[str, str] = {}
        for name, info in self.params.model_fields.items():
            for word in literal_words(info.annotation):
                flags.setdefault(word, name)
        return flags


def literal_words(annotation: Any) -> list[str]:
    """All string literals inside a (possibly nested Union/Annotated) type annotation."""
    if get_origin(annotation) is Literal:
        return [a for a in get_args(annotation) if isinstance(a, str)]
    words: list[str] = []
    for arg in get_args(annotation):
        words.extend(literal_words(arg))
    return words


REGISTRY: dict[str, LayerType] = {}


def register(layer: LayerType) -> LayerType:
    """Add a layer type; a name registered twice is a programming error."""
    if layer.name in REGISTRY:
        raise RuntimeError(f"layer type {layer.name!r} is registered twice")
    REGISTRY[layer.name] = layer
    return layer
