"""The layer registry: one `LayerType` per spec layer type, with its params model and its rules.

Shapes are `(height, width, channels)` tuples of ints; a flat vector of N features is `(1, 1, N)`.
Costs are counted per example: parameters (trainable), state (non-trainable buffers such as
batch-norm running statistics) and multiply-accumulates (MACs, the GoogLeNet paper's "ops").
Shape rules themselves live in netspec.shapes (pure Python), which the Flax layers call too.
"""

from __future__ import annotations

import ast
import functools
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal, get_args, get_origin

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field

from ..shapes import ShapeError as ShapeError  # re-exported: layer modules raise it
from ..shapes import format_shape as format_shape

Shape = tuple[int, int, int]


MAX_WHOLE_NUMBER = 2**31 - 1
"""The largest whole number a layer field takes (sizes, counts, paddings)."""


def number_check(kind: str, whole: bool = False) -> Callable[[Any], Any]:
    """A validator refusing booleans and quoted text where a number is wanted (pydantic would
    take `true` as 1 and '64' as 64). A whole-number field refuses floats, 64.0 included: the
    spec's one rule is that `/` divides to a float and `//` to a whole number, so the analysis
    and the generated code (which passes values as they are) read the same number."""

    def check(value: Any) -> Any:
        if isinstance(value, bool | str):
            shown = str(value).lower() if isinstance(value, bool) else repr(value)
            raise ValueError(f"expected {kind}, got {shown}")
        if whole and isinstance(value, float):
            raise ValueError(
                f"must be {kind}, got {value!r} (`/` divides to a float; `//` to a whole number)"
            )
        if isinstance(value, float) and not math.isfinite(value):
            raise ValueError(f"must be a finite number, got {value!r}")
        if whole and isinstance(value, int) and abs(value) > MAX_WHOLE_NUMBER:
            raise ValueError(f"must be {kind} up to {MAX_WHOLE_NUMBER}, got a larger one")
        return value

    return check


Integer = Annotated[int, BeforeValidator(number_check("a whole number", whole=True))]
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
    "gelu_tanh",
    "hardswish",
    "hardsigmoid",
    "mish",
]


class LayerParams(BaseModel):
    """Base of every layer's parameters: unknown fields are errors, booleans are strict."""

    model_config = ConfigDict(extra="forbid", frozen=True)


def same_shape(p: object, inputs: list[Shape]) -> Shape:
    """The shape rule of element-wise layers: the output has the input's shape."""
    return inputs[0]


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
    a `window` entry reads `KxK[/S]` into `kernel` (and `stride`). `aliases` are other names
    users may write for it (`bn` for batchnorm). `presets` are fixed params for shortcut types
    such as `relu`, which is `preset_of="activation"` with fn=relu and runs on its Flax module.
    `example` is a compact row of this type that works on an `example_input` input (a
    multi-input type reads `from=[input, input]`): the docs show it and the registry tests
    build it.
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
    aliases: tuple[str, ...] = ()
    example: str = ""
    example_input: Shape = (8, 8, 16)
    preset_of: str = ""

    @property
    def table_label(self) -> str:
        return self.label or self.name

    @property
    def flax_name(self) -> str:
        """The name its Flax module is registered under: its own, or its `preset_of` type's."""
        return self.preset_of or self.name

    @property
    def flax_class(self) -> str:
        """The class in netspec.flax_layers that runs this layer (generated code instantiates
        it): the one decorated `@flax_module(flax_name)`."""
        classes = flax_class_names()
        if self.flax_name not in classes:
            raise LookupError(
                f"no Flax module is registered for layer type {self.flax_name!r}: decorate its "
                f"class in netspec/flax_layers.py with @flax_module({self.flax_name!r})"
            )
        return classes[self.flax_name]

    def flag_values(self) -> dict[str, str]:
        """Bare words a compact row may use for Literal fields, e.g. `same` -> padding."""
        return _flag_values(self.params)


@functools.cache
def _flag_values(params: type[BaseModel]) -> dict[str, str]:
    """`LayerType.flag_values`, worked out once per params model (callers must not change it)."""
    flags: dict[str, str] = {}
    for name, info in params.model_fields.items():
        for word in literal_words(info.annotation):
            flags.setdefault(word, name)
    return flags


@functools.cache
def flax_class_names() -> dict[str, str]:
    """Spec layer type -> class name, from the `@flax_module("type")` decorators in
    netspec/flax_layers.py. Read from its source, so generating code needs no JAX import; the
    registry tests check it equals flax_layers.FLAX_MODULES."""
    path = Path(__file__).resolve().parent.parent / "flax_layers.py"
    names: dict[str, str] = {}
    for node in ast.parse(path.read_text(encoding="utf-8")).body:
        if not isinstance(node, ast.ClassDef):
            continue
        for decorator in node.decorator_list:
            if (
                isinstance(decorator, ast.Call)
                and isinstance(decorator.func, ast.Name)
                and decorator.func.id == "flax_module"
            ):
                for arg in decorator.args:
                    if isinstance(arg, ast.Constant) and isinstance(arg.value, str):
                        names[arg.value] = node.name
    return names


def literal_words(annotation: Any) -> list[str]:
    """All string literals inside a (possibly nested Union/Annotated) type annotation."""
    if get_origin(annotation) is Literal:
        return [a for a in get_args(annotation) if isinstance(a, str)]
    words: list[str] = []
    for arg in get_args(annotation):
        words.extend(literal_words(arg))
    return words


REGISTRY: dict[str, LayerType] = {}
"""Every layer type by name, in registration order (netspec.layers imports its modules)."""

ALIASES: dict[str, str] = {}
"""Other names users write for a layer type (Keras, Caffe and paper spellings) -> its name."""


def register(layer: LayerType) -> LayerType:
    """Add a layer type and its aliases; refuse a name or alias that is already taken, and a
    type without an example row (the docs and the registry tests use it)."""
    taken = {name: f"layer type {name!r}" for name in REGISTRY}
    taken.update({alias: f"an alias of {target!r}" for alias, target in ALIASES.items()})
    for word in (layer.name, *layer.aliases):
        if word in taken:
            what = "name" if word == layer.name else "alias"
            raise RuntimeError(
                f"cannot register layer type {layer.name!r}: its {what} {word!r} is already "
                f"{taken[word]}"
            )
    if len(set(layer.aliases)) != len(layer.aliases):
        raise RuntimeError(f"layer type {layer.name!r} lists an alias twice: {layer.aliases}")
    if not layer.example:
        raise RuntimeError(
            f"layer type {layer.name!r} has no example row (e.g. example={layer.name + ' ...'!r})"
        )
    if layer.preset_of and layer.preset_of not in REGISTRY:
        raise RuntimeError(
            f"layer type {layer.name!r} is a preset of {layer.preset_of!r}, which is not "
            "registered (yet): register that type first, in the same module"
        )
    REGISTRY[layer.name] = layer
    ALIASES.update(dict.fromkeys(layer.aliases, layer.name))
    return layer
