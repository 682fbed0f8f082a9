"""The spec language as one located syntax tree: what `parse` makes and every consumer reads.

`parse.py` reads the YAML once and checks everything that does not depend on variable values
(names, layer types, argument names and counts, `from` targets, expression syntax); the
expander (`expand.py`) evaluates the tree into a Graph, and the Flax emitter (`emit.py`) turns
the same tree into source. Nodes are frozen; every node keeps where it was written.

A `Value` is one value as written: a literal (int, float, bool, None, str, or a tuple of
Values for a list) or a template: a string with `$name` / `${expression}` references, kept as
its pieces, each expression already parsed and checked.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass, field
from typing import Any, Literal

from .errors import Location


@dataclass(frozen=True)
class Reference:
    """`$name` or `${expression}` inside a template: the checked expression tree, its text,
    and its character offset in the template (errors point there)."""

    expression: str
    tree: ast.expr = field(compare=False, repr=False)
    offset: int


@dataclass(frozen=True)
class Template:
    """A string with references: literal pieces and `Reference`s in order.

    One reference alone (blanks around it aside) gives the referenced value with its type;
    otherwise the values are interpolated as text and, where `reread` (compact-row tokens),
    the text is read again as a YAML scalar (`1${x}` -> 12).
    """

    pieces: tuple[str | Reference, ...]
    reread: bool = False
    shift: int = 0
    """Characters between the value's location and its text (1 after an opening quote)."""

    @property
    def single(self) -> Reference | None:
        """The one reference when the template is nothing else."""
        refs = [p for p in self.pieces if isinstance(p, Reference)]
        rest = "".join(p for p in self.pieces if isinstance(p, str))
        return refs[0] if len(refs) == 1 and not rest.strip() else None


@dataclass(frozen=True)
class Value:
    """A value as written, and where. `raw` is a literal, a tuple of Values, or a Template."""

    raw: Any
    location: Location | None = None

    @property
    def is_literal(self) -> bool:
        if isinstance(self.raw, Template):
            return False
        if isinstance(self.raw, tuple):
            return all(v.is_literal for v in self.raw)
        return True

    def literal(self) -> Any:
        """The plain value of a literal (lists as Python lists)."""
        if isinstance(self.raw, tuple):
            return [v.literal() for v in self.raw]
        return self.raw


@dataclass(frozen=True)
class Window:
    """A window written as one value (`3x3/2`, `${k}x${k}`, or a block argument `$kernel`):
    kernel and stride are read from its text when it is evaluated."""

    value: Value


@dataclass(frozen=True)
class LayerCall:
    """A row calling a layer type: its arguments bound to the type's fields.

    `type` is the layer type name (canonical), or for a type chosen by a variable
    (`${pool}pool`) the template with `candidates` listing the types it may name.
    `arguments` maps field -> Value; `windows` are window values still to be read (they set
    kernel and stride). `defaults` lists the defaults mappings visible to the row."""

    type: str
    type_value: Value
    candidates: tuple[str, ...]
    arguments: tuple[tuple[str, Value], ...]
    windows: tuple[Window, ...]
    location: Location | None
    key_locations: tuple[tuple[str, Location | None], ...] = ()


@dataclass(frozen=True)
class BlockCall:
    """A row calling a block: its arguments by name (defaults not filled in)."""

    block: str
    arguments: tuple[tuple[str, Value], ...]
    location: Location | None
    positional_words: tuple[str, ...] = ()


@dataclass(frozen=True)
class Sequence:
    """Rows one after another (`layers`), or branches merged by `concat` / `add`."""

    kind: Literal["layers", "concat", "add"]
    rows: tuple[RowNode, ...]
    location: Location | None


Body = LayerCall | BlockCall | Sequence


@dataclass(frozen=True)
class Expect:
    """A row's expected output size, params and MACs, each a Value (or None)."""

    parts: tuple[Value | None, Value | None, Value | None]
    location: Location | None


@dataclass(frozen=True)
class RowNode:
    """One entry of a sequence or branch list.

    `inputs` are the names `from` gives (None: the previous row, or a branch's input),
    resolved statically against the rows visible here. `line` and `comment` are the source
    line and its YAML comment (the generated code repeats them)."""

    name: str
    explicit_name: bool
    body: Body
    location: Location | None
    body_location: Location | None
    inputs: tuple[str, ...] | None = None
    inputs_location: Location | None = None
    condition: Value | None = None
    repeat: Value | None = None
    aux: Value | None = None
    expect: Expect | None = None
    type_word: str = ""
    source_text: str = ""
    comment: str = ""


@dataclass(frozen=True)
class Defaults:
    """Default parameters per layer type: type -> ((field, Value), ...)."""

    entries: tuple[tuple[str, tuple[tuple[str, Value], ...]], ...] = ()

    def for_layer(self, layer: str) -> tuple[tuple[str, Value], ...]:
        for name, entry in self.entries:
            if name == layer:
                return entry
        return ()


@dataclass(frozen=True)
class Argument:
    """A block argument: its name and its default (None: required)."""

    name: str
    default: Value | None
    location: Location | None


@dataclass(frozen=True)
class BlockNode:
    """A reusable block: arguments, its own defaults, one body, and its doc text."""

    name: str
    arguments: tuple[Argument, ...]
    defaults: Defaults
    body: Sequence
    doc: str
    location: Location | None
    free_variables: tuple[str, ...] = ()
    """Spec variables the block reads (itself or through blocks it calls), in `vars` order."""


@dataclass(frozen=True)
class SpecTree:
    """A whole spec, parsed: the one representation the expander and the emitter read."""

    name: str
    filename: str
    input: Value
    variables: tuple[tuple[str, Value], ...]
    defaults: Defaults
    blocks: tuple[BlockNode, ...]
    layers: Sequence
    dtype: str | None = None
    param_dtype: str = "float32"
    location: Location | None = None
    vars_location: Location | None = None

    def block(self, name: str) -> BlockNode:
        for block in self.blocks:
            if block.name == name:
                return block
        raise KeyError(name)
