"""Expand a parsed spec (`SpecTree`) into a Graph of uniquely named nodes.

The expander evaluates what the parser left to values: variables (with `--set` overrides),
block arguments and defaults, `if` and `repeat`, and each layer's parameters (validated by the
layer's params model). Scoping (docs/spec-format.md):
- variables: the spec's `vars`; inside a block, also its arguments; inside a repeated row,
  also `i`, the 0-based repetition index;
- defaults: the spec's, then those of the block a row is written in (lexical);
- each row reads the previous row's output unless it says `from`; a row switched off by `if`
  passes its input through; auxiliary rows (`aux=w`) are train-only heads and do not continue
  the chain.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from .analyze import infer_node
from .errors import Location, SpecError, did_you_mean, raise_all
from .expr import ROW_INPUT, ExprError, evaluate_pieces, resolve_variables
from .graph import INPUT, Expectation, Graph, Head, Node, Row
from .layers import ALIASES, REGISTRY, LayerType, Shape
from .load import resolve_scalar
from .parse import VarText
from .rowsyntax import ExpectedCount
from .shapes import parse_window
from .spec import parse_input_size
from .tree import (
    BlockCall,
    Defaults,
    Expect,
    LayerCall,
    RowNode,
    Sequence,
    SpecTree,
    Template,
    Value,
)
from .validation import validate_model

MAX_NODES = 20_000
MAX_REPEAT = 1_000
OUTPUT_SIZE_PATTERN = r"\d+[x×]\d+[x×]\d+"


class TooManyNodes(SpecError):
    """The expansion passed MAX_NODES; a `repeat` that caused it re-raises at its count."""


@dataclass
class Scope:
    """Where rows are being expanded: variables, defaults, names and the node-name prefix."""

    variables: Mapping[str, Any]
    defaults: tuple[Defaults, ...]
    prefix: str
    trail: str
    table_row: str
    input: str
    outputs: dict[str, str] = field(default_factory=dict)
    parent: Scope | None = None
    train_only: bool = False
    row_input: str | None = None
    """The node a row reads (its first input): `in.c` in the row's values is its channels."""

    def lookup(self, name: str) -> str:
        scope: Scope | None = self
        while scope is not None:
            if name in scope.outputs:
                return scope.outputs[name]
            if name == INPUT:
                return scope.input
            scope = scope.parent
        raise KeyError(name)  # the parser checked every `from` name

    def child(self, **changes: Any) -> Scope:
        values = {
            "variables": self.variables,
            "defaults": self.defaults,
            "prefix": self.prefix,
            "trail": self.trail,
            "table_row": self.table_row,
            "input": self.input,
            "parent": None,
            "train_only": self.train_only,
        }
        values.update(changes)
        return Scope(**values)


class RowVariables(Mapping[str, Any]):
    """A row's variables with `in` (its input shape `[H, W, C]`), inferred only when read."""

    def __init__(self, variables: Mapping[str, Any], input_shape: Callable[[], Shape]) -> None:
        self.variables = variables
        self.input_shape = input_shape

    def __getitem__(self, name: str) -> Any:
        if name == ROW_INPUT:
            return list(self.input_shape())
        return self.variables[name]

    def __contains__(self, name: object) -> bool:
        return name == ROW_INPUT or name in self.variables

    def __iter__(self) -> Iterator[str]:
        yield from self.variables
        yield ROW_INPUT

    def __len__(self) -> int:
        return len(self.variables) + 1


class Expander:
    """Evaluates a SpecTree into nodes, table rows and auxiliary heads."""

    def __init__(self, tree: SpecTree) -> None:
        self.tree = tree
        self.nodes: list[Node] = []
        self.rows: list[Row] = []
        self.heads: list[Head] = []
        self.shapes: dict[str, Shape] = {}
        self.shaped = 0  # how many of self.nodes have their shape in self.shapes
        self.errors: list[SpecError] = []  # top-level rows that failed, reported together

    def shape_of(self, name: str) -> Shape:
        """A node's output shape, inferring the nodes emitted so far as the analysis does
        (only rows that read `in` need it while expanding)."""
        while name not in self.shapes:
            node = self.nodes[self.shaped]
            self.shapes[node.name] = infer_node(node, self.shapes)[0]
            self.shaped += 1
        return self.shapes[name]

    # ---- values ----------------------------------------------------------------------------

    def evaluate(self, value: Value, scope: Scope, what: str) -> Any:
        """A Value with the scope's variables: lists item by item, templates evaluated."""
        raw = value.raw
        if isinstance(raw, tuple):
            return [self.evaluate(v, scope, what) for v in raw]
        if not isinstance(raw, Template):
            return raw
        try:
            result = evaluate_pieces(raw.pieces, self.variables_of(scope))
        except ExprError as error:
            raise error.with_context(
                location=value.location.shifted(error.offset + raw.shift)
                if value.location
                else None,
                path=scope.trail,
                field=what,
            ) from None
        if raw.reread and raw.single is None and isinstance(result, str):
            try:
                return resolve_scalar(result)
            except ValueError:
                raise SpecError(
                    f"the number {result[:20]}... has too many digits",
                    value.location,
                    path=scope.trail,
                    field=what,
                ) from None
        return result

    def variables_of(self, scope: Scope) -> Mapping[str, Any]:
        """What an expression in `scope` reads: the variables, and `in` within a row."""
        source = scope.row_input
        if source is None:
            return scope.variables
        return RowVariables(scope.variables, lambda: self.shape_of(source))

    def condition(self, value: Value, scope: Scope) -> bool:
        result = self.evaluate(value, scope, "if")
        if not isinstance(result, bool):
            raise SpecError(
                f"expected true or false, got {result!r}",
                value.location,
                path=scope.trail,
                field="if",
                hint="YAML 1.1 words such as yes/no/on/off are not booleans here"
                if isinstance(result, str)
                else None,
            )
        return result

    def aux_weight(self, value: Value | None, scope: Scope) -> float | None:
        if value is None:
            return None
        result = self.evaluate(value, scope, "aux")
        if (
            isinstance(result, bool)
            or not isinstance(result, int | float)
            or not result >= 0
            or result == float("inf")
        ):
            raise SpecError(
                f"expected the auxiliary loss weight (a finite number >= 0), got {result!r}",
                value.location,
                path=scope.trail,
                field="aux",
                hint="e.g. aux=0.3 as GoogLeNet weighs its two auxiliary heads",
            )
        return float(result)

    def repeat_count(self, value: Value | None, scope: Scope) -> int | None:
        if value is None:
            return None
        result = self.evaluate(value, scope, "repeat")
        if isinstance(result, bool) or not isinstance(result, int) or result < 1:
            raise SpecError(
                f"expected a repeat count >= 1, got {result!r}",
                value.location,
                path=scope.trail,
                field="repeat",
                hint="write a whole number; `//` divides to a whole number"
                if isinstance(result, float)
                else None,
            )
        if result > MAX_REPEAT:
            raise SpecError(
                f"repeat count {result} is larger than the limit of {MAX_REPEAT}",
                value.location,
                path=scope.trail,
                field="repeat",
            )
        return result

    # ---- rows ------------------------------------------------------------------------------

    def sequence(self, sequence: Sequence, scope: Scope, top_level: bool = False) -> str:
        """Rows one after another; returns the name of the last main-path output."""
        chain = scope.input
        for row in sequence.rows:
            row_scope = scope.child(
                trail=f"{scope.trail} > {row.name}".lstrip(" >"),
                table_row=row.name if top_level else scope.table_row,
                parent=scope.parent,
            )
            row_scope.outputs = scope.outputs
            start = len(self.nodes)
            try:
                output, is_aux = self.row(row, row_scope, chain)
            except SpecError as error:
                if not top_level or isinstance(error, TooManyNodes):
                    raise
                # Report it with the other rows' problems; the rows after it read the row
                # before it (their values rarely depend on its shape).
                self.errors.append(error)
                del self.nodes[start:]
                self.shaped = min(self.shaped, start)
                scope.outputs[row.name] = chain
                continue
            scope.outputs[row.name] = output
            if top_level:
                self.record_row(row, output, start, is_aux, row_scope)
            if not is_aux:
                chain = output
        return chain

    def row(self, row: RowNode, scope: Scope, chain: str) -> tuple[str, bool]:
        """One row (maybe repeated); returns (output node, whether it is an auxiliary head).
        A row switched off by `if` passes `chain` (the previous row's output) through."""
        inputs = [scope.lookup(n) for n in row.inputs] if row.inputs else [chain]
        scope.row_input = inputs[0]
        if row.condition is not None and not self.condition(row.condition, scope):
            return chain, False
        weight = self.aux_weight(row.aux, scope)
        if weight is not None:
            scope.train_only = True
        count = self.repeat_count(row.repeat, scope)
        path = f"{scope.prefix}{row.name}"
        if count is None:
            output = self.body(row, scope, inputs, path)
        else:
            current, start = inputs, len(self.nodes)
            for i in range(count):
                copy = scope.child(
                    variables={**scope.variables, "i": i}, trail=f"{scope.trail}[{i}]"
                )
                copy.parent, copy.outputs = scope.parent, scope.outputs
                copy.row_input = current[0]
                try:
                    output = self.body(row, copy, current, f"{path}/{i}")
                except TooManyNodes:
                    per_copy = max((len(self.nodes) - start) // max(i, 1), 1)
                    assert row.repeat is not None
                    raise TooManyNodes(
                        f"repeat={count} of about {per_copy} layers each expands past the limit "
                        f"of {MAX_NODES} layers",
                        row.repeat.location,
                        path=scope.trail,
                        field="repeat",
                        hint="lower the repeat count",
                    ) from None
                current = [output]
        if weight is not None:
            self.heads.append(Head(scope.table_row, output, weight))
        return output, weight is not None

    def body(self, row: RowNode, scope: Scope, inputs: list[str], path: str) -> str:
        body = row.body
        if isinstance(body, LayerCall):
            return self.layer(body, row, scope, inputs, path)
        if isinstance(body, BlockCall):
            return self.block(body, row, scope, inputs, path)
        return self.inline(body, scope, inputs[0], path)

    def inline(self, sequence: Sequence, scope: Scope, source: str, path: str) -> str:
        """An inline sequence (`layers`) or parallel branches merged by `concat` / `add`."""
        child = scope.child(prefix=path + "/", input=source, parent=scope)
        if sequence.kind == "layers":
            return self.sequence(sequence, child)
        outputs = []
        for row in sequence.rows:
            branch = child.child(trail=f"{child.trail} > {row.name}", parent=child)
            branch.outputs = child.outputs
            output, _ = self.row(row, branch, source)
            child.outputs[row.name] = output
            outputs.append(output)
        return self.emit(
            f"{path}/{sequence.kind}", sequence.kind, {}, outputs, sequence.location, scope
        )

    # ---- layers and blocks -----------------------------------------------------------------

    def layer_type(self, call: LayerCall, scope: Scope) -> LayerType:
        if call.type:
            return REGISTRY[call.type]
        word = self.evaluate(call.type_value, scope, "type")
        canonical = ALIASES.get(str(word), str(word))
        if canonical not in call.candidates:
            raise SpecError(
                f"unknown layer type '{word}'",
                call.type_value.location,
                path=scope.trail,
                field="type",
                hint=did_you_mean(str(word), call.candidates)
                or "this type word can name " + ", ".join(call.candidates),
            )
        return REGISTRY[canonical]

    def layer(
        self, call: LayerCall, row: RowNode, scope: Scope, inputs: list[str], path: str
    ) -> str:
        layer = self.layer_type(call, scope)
        values: dict[str, Any] = {}
        locations: dict[str, Location | None] = {}
        for window in call.windows:
            text = self.evaluate(window.value, scope, "kernel")
            parsed = parse_window(text) if isinstance(text, str | int) else None
            if parsed is None:
                raise SpecError(
                    f"expected a window like 3x3, 7x7/2 or 1x7, got {text!r}",
                    window.value.location,
                    path=scope.trail,
                    field="kernel",
                )
            for key, v in parsed.items():
                values[key], locations[key] = v, window.value.location
        for key, value in call.arguments:
            if key in values:
                raise SpecError(
                    f"'{key}' is given twice (in the window and as {key}=)",
                    value.location,
                    path=scope.trail,
                    field=key,
                )
            values[key] = self.evaluate(value, scope, key)
            locations[key] = value.location
        defaults, default_locations = self.defaults_for(layer.name, scope)
        merged = {**defaults, **values, **layer.presets}
        all_locations = {**default_locations, **locations}
        params = validate_model(
            layer.params,
            merged,
            all_locations,
            call.location,
            scope.trail,
            layer.name,
            dict(call.key_locations),
        )
        return self.emit(
            path,
            layer.name,
            params.model_dump(),
            inputs,
            call.location,
            scope,
            {k: v for k, v in all_locations.items() if v is not None},
        )

    def defaults_for(
        self, layer: str, scope: Scope
    ) -> tuple[dict[str, Any], dict[str, Location | None]]:
        """The defaults that apply to a row of this layer type, and where each was written."""
        merged: dict[str, Any] = {}
        locations: dict[str, Location | None] = {}
        for defaults in scope.defaults:
            for key, value in defaults.for_layer(layer):
                merged[key] = self.evaluate(value, scope, key)
                locations[key] = value.location
        return merged, locations

    def block(
        self, call: BlockCall, row: RowNode, scope: Scope, inputs: list[str], path: str
    ) -> str:
        block = self.tree.block(call.block)
        bound = {key: self.evaluate(value, scope, key) for key, value in call.arguments}
        for argument in block.arguments:
            if argument.name not in bound and argument.default is not None:
                bound[argument.name] = argument.default.literal()
        inner = Scope(
            variables={**self.variables, **bound},
            defaults=(self.tree.defaults, block.defaults),
            prefix=path + "/",
            trail=f"{scope.trail} > {call.block}",
            table_row=scope.table_row,
            input=inputs[0],
            train_only=scope.train_only,
        )
        if block.body.kind == "layers":
            return self.sequence(block.body, inner)
        return self.inline(block.body, inner, inputs[0], path)

    def emit(
        self,
        name: str,
        op: str,
        attrs: dict[str, Any],
        inputs: list[str],
        location: Location | None,
        scope: Scope,
        field_origins: dict[str, Location] | None = None,
    ) -> str:
        if len(self.nodes) >= MAX_NODES:
            raise TooManyNodes(
                f"the spec expands to more than {MAX_NODES} layers",
                location,
                path=scope.trail,
                hint="check repeat counts and blocks that call blocks",
            )
        self.nodes.append(
            Node(
                name,
                op,
                attrs,
                tuple(inputs),
                scope.table_row,
                location,
                scope.trail,
                scope.train_only,
                field_origins or {},
            )
        )
        return name

    # ---- the table -------------------------------------------------------------------------

    def record_row(self, row: RowNode, output: str, start: int, is_aux: bool, scope: Scope) -> None:
        nodes = tuple(n.name for n in self.nodes[start:])
        kind, label, window, args = "", "", "", ()
        body = row.body
        if isinstance(body, LayerCall | BlockCall) and row.type_word:
            canonical = ALIASES.get(row.type_word, row.type_word)
            kind = canonical
            if isinstance(body, LayerCall) and canonical in REGISTRY:
                label = REGISTRY[canonical].table_label
                window = self.window_label(nodes)
            else:
                label = canonical
                args = body.positional_words if isinstance(body, BlockCall) else ()
        elif isinstance(body, Sequence):
            kind = body.kind
            label = "sequence" if kind == "layers" else kind
        expect = self.expectation(row.expect, row, scope) if row.expect else None
        self.rows.append(
            Row(row.name, kind, label, nodes, output, row.location, window, args, is_aux, expect)
        )

    def window_label(self, nodes: tuple[str, ...]) -> str:
        if len(nodes) != 1:
            return ""
        attrs = self.nodes[-1].attrs
        if "kernel" not in attrs:
            return ""
        kernel = attrs["kernel"] if isinstance(attrs["kernel"], tuple) else (attrs["kernel"],) * 2
        stride = attrs.get("stride") or kernel
        stride = stride if isinstance(stride, tuple) else (stride, stride)
        return f"{kernel[0]}x{kernel[1]}/" + (
            str(stride[0]) if stride[0] == stride[1] else f"{stride[0]}x{stride[1]}"
        )

    def expectation(self, expect: Expect, row: RowNode, scope: Scope) -> Expectation:
        """Output size, params and MACs as text, variables substituted (`-> 1x1x$classes`)."""
        values = [
            None if part is None else str(self.evaluate(part, scope, "expect"))
            for part in expect.parts
        ]
        locations = [part.location if part else None for part in expect.parts]
        output, *counts = values

        if output is not None and not re.fullmatch(OUTPUT_SIZE_PATTERN, output):
            raise SpecError(
                f"expect needs an output size like 28x28x256 first, got {output!r}",
                locations[0],
                path=row.name,
                field="expect",
            )
        for what, text, location in zip(("params", "MACs"), counts, locations[1:], strict=True):
            if text is not None and ExpectedCount.parse(text) is None:
                raise SpecError(
                    f"cannot read the expected {what} {text!r}",
                    location,
                    path=row.name,
                    field="expect",
                    hint="write a count like 61706, 2.7K, 128M or ~159Ki (K = 1000, Ki = 1024, "
                    "~ allows 2%)",
                )
        return Expectation(
            values[0], values[1], values[2], locations[0] or expect.location, tuple(locations)
        )

    # ---- the spec --------------------------------------------------------------------------

    def resolve_variables(self, overrides: Mapping[str, Any]) -> dict[str, Any]:
        defined = dict(self.tree.variables)
        unknown = [k for k in overrides if k not in defined]
        if unknown:
            key = unknown[0]
            raise SpecError(
                f"--set {key}=...: the spec has no variable '{key}'",
                self.tree.vars_location or self.tree.location,
                hint=did_you_mean(key, defined)
                or (
                    "its variables: " + ", ".join(defined)
                    if defined
                    else "this spec defines no `vars`"
                ),
            )
        definitions = {
            name: value.raw.text if isinstance(value.raw, VarText) else value.literal()
            for name, value in defined.items()
        }
        try:
            return resolve_variables({**definitions, **overrides})
        except ExprError as error:
            name = error.field
            value = defined.get(name) if name in defined and name not in overrides else None
            shift = value.raw.shift if value and isinstance(value.raw, VarText) else 0
            raise error.with_context(
                location=value.location.shifted(error.offset + shift)
                if value and value.location
                else self.tree.vars_location,
                path="vars",
            ) from None

    def input_shape(self) -> tuple[int, int, int]:
        value = self.tree.input
        scope = Scope(self.variables, (), "", "input", "", INPUT)
        raw = self.evaluate(value, scope, "input")
        try:
            raw = parse_input_size(raw)
        except ValueError:  # more digits than Python converts
            raw = None
        if (
            not isinstance(raw, list)
            or len(raw) != 3
            or not all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in raw)
            or max(raw) > 1_000_000
        ):
            raise SpecError(
                "input must be [height, width, channels] with positive integers up to "
                f"1000000, got {shorten(raw)}",
                value.location,
                field="input",
                hint="e.g. input: [224, 224, 3] or input: 224x224x3",
            )
        return (raw[0], raw[1], raw[2])

    def expand(self, overrides: Mapping[str, Any]) -> Graph:
        self.variables = self.resolve_variables(overrides)
        input_shape = self.input_shape()
        scope = Scope(self.variables, (self.tree.defaults,), "", "", "", INPUT)
        self.shapes = {INPUT: input_shape}
        output = self.sequence(self.tree.layers, scope, top_level=True)
        raise_all(self.errors)
        return Graph(
            self.tree.name,
            input_shape,
            tuple(self.nodes),
            tuple(self.rows),
            output,
            tuple(self.heads),
            dict(self.variables),
            self.tree.filename,
        )


def shorten(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def expand(tree: SpecTree, overrides: Mapping[str, Any] | None = None) -> Graph:
    """The Graph of a parsed spec with variable overrides (values, not `--set` text)."""
    return Expander(tree).expand(overrides or {})


__all__ = ["MAX_NODES", "MAX_REPEAT", "expand"]
