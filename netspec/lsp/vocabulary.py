"""The words a spec may use: layer types and their fields, and the spec's own blocks, variables
and rows (from its last successful parse, completed by what the current text shows)."""

from __future__ import annotations

import functools
import inspect
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property

from ..docs import compact_form, show_value, type_section
from ..layers import ALIASES, REGISTRY, LayerType
from ..layers.base import literal_words
from ..spec import ROW_OPTIONS, SpecModel
from ..tree import Template, Value
from . import outline

TOP_LEVEL_KEYS: tuple[str, ...] = tuple(SpecModel.model_fields)
BLOCK_KEYS = ("args", "defaults", "doc", "layers", "concat", "add")
OPTION_HELP = {
    "from": "read earlier rows instead of the previous one (`from=[a, b]` for several)",
    "repeat": "the row N times in a chain; `i` is the repetition (0, 1, ...)",
    "if": "keep the row only when true; a skipped row passes its input through",
    "aux": "a train-only auxiliary head with this loss weight",
    "expect": "output size, params and MACs to check, e.g. `28x28x256 ~159Ki 128M`",
}
INPUT_FIELDS = {"in.h": "the row input's height", "in.w": "its width", "in.c": "its channels"}


def layer_type(word: str) -> LayerType | None:
    """The layer type a word names (a name or an alias), if any."""
    return REGISTRY.get(ALIASES.get(word, word))


def layer_words() -> dict[str, str]:
    """Every word that names a layer type -> its canonical name."""
    return {**{name: name for name in REGISTRY}, **ALIASES}


def fields_of(layer: LayerType) -> dict[str, str]:
    """The fields a row of this type may set -> a short description (its default)."""
    described = {}
    for name, info in layer.params.model_fields.items():
        if name in layer.presets:
            continue
        if info.is_required():
            described[name] = "required"
        else:
            described[name] = f"default {show_value(info.default)}"
    return described


def field_values(layer: LayerType, name: str) -> list[str]:
    """The words a field takes, when it takes a fixed set of them (`padding`: same, valid)."""
    info = layer.params.model_fields.get(name)
    if info is None:
        return []
    words = literal_words(info.annotation)
    if info.annotation is bool:
        words = [*words, "true", "false"]
    return list(dict.fromkeys(words))


@functools.cache
def layer_markdown(name: str) -> str:
    """A layer type's documentation: compact form, docstring, fields, example."""
    layer = REGISTRY[name]
    presets = [p for p in REGISTRY.values() if p.preset_of == layer.name]
    base = REGISTRY.get(layer.preset_of) if layer.preset_of else None
    lines = [f"`{compact_form(layer)} key=value ...`", ""]
    if base is not None:
        fixed = ", ".join(f"`{k}={show_value(v)}`" for k, v in layer.presets.items())
        lines += [f"The `{base.name}` layer with {fixed}.", ""]
    else:
        lines += type_section(layer, presets)[2:]
    lines += [f"Example: `{REGISTRY[name].example}`"]
    return "\n".join(lines).strip()


@dataclass(frozen=True)
class BlockInfo:
    """A block of the spec: its arguments in order and its doc text."""

    name: str
    arguments: tuple[str, ...] = ()
    doc: str = ""


@dataclass
class Vocabulary:
    """The spec's own names: variables (-> value as text), blocks, and (read when asked for)
    the table's row names."""

    lines: list[str]
    variables: dict[str, str] = field(default_factory=dict)
    blocks: dict[str, BlockInfo] = field(default_factory=dict)
    analysed_rows: tuple[str, ...] = ()

    @cached_property
    def rows(self) -> list[str]:
        names = dict.fromkeys(self.analysed_rows)
        names.update(dict.fromkeys(outline.row_names(self.lines)))
        return list(names)

    def block_markdown(self, name: str) -> str:
        block = self.blocks[name]
        lines = [f"`{' '.join([name, *block.arguments])}`  (block)"]
        if block.doc:
            lines += ["", inspect.cleandoc(block.doc)]
        return "\n".join(lines)


def value_text(value: Value) -> str:
    """A variable's value as the spec writes it."""
    if isinstance(value.raw, Template):
        pieces = value.raw.pieces
        return "".join(p if isinstance(p, str) else "${" + p.expression + "}" for p in pieces)
    if isinstance(value.raw, tuple):
        return "[" + ", ".join(value_text(v) for v in value.raw) + "]"
    return show_value(value.raw)


def vocabulary(
    lines: list[str],
    variables: Mapping[str, str],
    blocks: Mapping[str, BlockInfo],
    rows: tuple[str, ...] = (),
) -> Vocabulary:
    """The names of the last parse (variables with their values, blocks, analysed rows) and
    those the current text adds (a block or a variable being written)."""
    found = Vocabulary(lines, dict(variables), dict(blocks), rows)
    for name, text in outline.variables(lines).items():
        found.variables.setdefault(name, text)
    for name, where in outline.blocks(lines).items():
        if name not in found.blocks:
            found.blocks[name] = BlockInfo(name, tuple(outline.block_arguments(lines, where)))
    return found


__all__ = [
    "BLOCK_KEYS",
    "INPUT_FIELDS",
    "OPTION_HELP",
    "ROW_OPTIONS",
    "TOP_LEVEL_KEYS",
    "BlockInfo",
    "Vocabulary",
    "field_values",
    "fields_of",
    "layer_markdown",
    "layer_type",
    "layer_words",
    "vocabulary",
]
