"""Expand a spec's rows, blocks, repeats and variables into a Graph of uniquely named nodes.

Scoping rules (documented in docs/spec-format.md):
- variables: the spec's `vars` (with `--set` overrides); inside a block, also its arguments;
  inside a repeated row, also `i`, the 0-based repetition index;
- defaults: the spec's, then those of the block a row is written in (lexical);
- `from` names rows of the current sequence or of enclosing inline sequences, or `input`;
- each row reads the previous row's output unless it says `from`; auxiliary rows (`aux=w`)
  are train-only heads and do not continue the chain.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any, NamedTuple

from pydantic import ValidationError

from .errors import Location, SpecError, did_you_mean
from .expr import ExprError, resolve_variables, substitute
from .graph import INPUT, Expectation, Graph, Head, Node, Row
from .layers import ALIASES, REGISTRY, LayerType
from .load import YamlMap, YamlSeq, load_yaml, resolve_scalar
from .pysource import identifier
from .rowsyntax import CompactRow, ExpectedCount, Token, TokenError, parse_compact, tokenize
from .shapes import parse_window
from .spec import ROW_OPTIONS, BlockDef, SpecModel, parse_input_size
from .validation import describe_validation_error, validate_model

MAX_NODES = 20_000
MAX_REPEAT = 1_000
MAX_BLOCK_DEPTH = 32
COMPOSITES = ("concat", "add", "layers")
EXPECTATIONS = ("output", "params", "macs")


@dataclass
class Field:
    """A value as written in the spec, with where it was written."""

    value: Any
    location: Location | None
    quoted_offset: int = 0


@dataclass
class Scope:
    """What the rows of one sequence can see."""

    variables: Mapping[str, Any]
    defaults: tuple[Mapping[str, Any], ...]
    prefix: str
    trail: str
    table_row: str
    input: str
    names: dict[str, str] = field(default_factory=dict)
    name_locations: dict[str, Location | None] = field(default_factory=dict)
    parent: Scope | None = None
    train_only: bool = False
    block_stack: tuple[str, ...] = ()

    def lookup(self, name: str) -> str | None:
        scope: Scope | None = self
        while scope is not None:
            if name in scope.names:
                return scope.names[name]
            if name == INPUT:
                return scope.input
            scope = scope.parent
        return None

    def visible_names(self) -> list[str]:
        names: list[str] = [INPUT]
        scope: Scope | None = self
        while scope is not None:
            names.extend(scope.names)
            scope = scope.parent
        return names


class TooManyNodes(SpecError):
    """The expansion passed MAX_NODES; a `repeat` that caused it re-raises at its count."""


class Keyword(NamedTuple):
    """A `key=value` argument: its value, where the value and where the key is written."""

    value: Any
    location: Location | None
    key_location: Location | None


@dataclass
class RowItem:
    """One entry of a sequence or branch list, taken apart."""

    name: str
    body: Any
    body_location: Location | None
    options: dict[str, Field]
    location: Location | None
    explicit_name: bool
    compact: CompactRow | None = None


class Resolver:
    """Walks the located YAML data of one spec and emits nodes, rows and heads."""

    def __init__(self, data: YamlMap, model: SpecModel, filename: str, source: str) -> None:
        self.data = data
        self.model = model
        self.filename = filename
        self.lines = source.splitlines()
        self.nodes: list[Node] = []
        self.rows: list[Row] = []
        self.heads: list[Head] = []
        raw_blocks = data.get("blocks") or YamlMap()
        self.blocks: dict[str, tuple[BlockDef, YamlMap]] = {
            name: (model.blocks[name], raw_blocks[name]) for name in model.blocks
        }

    # ---- locations -------------------------------------------------------------------------

    def value_location(self, container: Any, key: Any) -> Location | None:
        if isinstance(container, YamlMap):
            return container.value_locs.get(key)
        if (
            isinstance(container, YamlSeq)
            and isinstance(key, int)
            and key < len(container.item_locs)
        ):
            return container.item_locs[key]
        return None

    def quote_shift(self, location: Location | None) -> int:
        """1 when the scalar at `location` is quoted (token offsets start after the quote)."""
        if location is None or location.line > len(self.lines):
            return 0
        line = self.lines[location.line - 1]
        index = location.column - 1
        return 1 if index < len(line) and line[index] in "'\"" else 0

    def token_location(self, base: Location | None, offset: int) -> Location | None:
        if base is None:
            return None
        return base.shifted(offset + self.quote_shift(base))

    # ---- values ----------------------------------------------------------------------------

    def evaluate(self, raw: Any, location: Location | None, scope: Scope, what: str) -> Any:
        """Substitute variables in a value written in the spec; recurse into lists."""
        if isinstance(raw, list):
            return [self.evaluate(v, location, scope, what) for v in raw]
        if not isinstance(raw, str) or "$" not in raw:
            return raw
        try:
            value = substitute(raw, scope.variables)
        except ExprError as error:
            raise error.with_context(
                location=self.token_location(location, error.offset) if location else None,
                path=scope.trail,
                field=what,
            ) from None
        return value

    def evaluate_token(self, token: Token, base: Location | None, scope: Scope, what: str) -> Any:
        """A token's value: variables substituted, then read as a YAML 1.2 scalar or list."""
        location = self.token_location(base, token.offset)
        value: Any = token.text
        if "$" in value:
            try:
                value = substitute(value, scope.variables)
            except ExprError as error:
                raise error.with_context(
                    location=location.shifted(error.offset) if location else None,
                    path=scope.trail,
                    field=what,
                ) from None
        if isinstance(value, str):
            value = self.parse_token_value(value, location, scope, what)
        return value

    def parse_token_value(
        self, text: str, location: Location | None, scope: Scope, what: str
    ) -> Any:
        if text.startswith("["):
            try:
                return load_yaml(text, self.filename)
            except SpecError as error:
                raise SpecError(
                    f"cannot read the list {text!r}: {error.message}",
                    location,
                    path=scope.trail,
                    field=what,
                ) from None
        try:
            return resolve_scalar(text)
        except ValueError:  # Python refuses to convert integers of more than 4300 digits
            raise SpecError(
                f"the number {text[:20]}... has too many digits",
                location,
                path=scope.trail,
                field=what,
            ) from None

    # ---- rows ------------------------------------------------------------------------------

    def split_item(
        self, item: Any, location: Location | None, index: int, scope: Scope, auto_names: list[str]
    ) -> RowItem:
        """Take a sequence entry apart into name, body and row options."""
        if isinstance(item, YamlMap):
            names = [k for k in item if k not in ROW_OPTIONS]
            if not names and len(item) == 1:
                (key,) = item
                raise SpecError(
                    f"'{key}' is a row option, so it cannot be a row name",
                    item.key_locs.get(key) or location,
                    path=scope.trail,
                    hint=f"rename the row (e.g. `{key}_head`); reserved: " + ", ".join(ROW_OPTIONS),
                )
            if len(names) != 1:
                keys = ", ".join(names) or "none"
                raise SpecError(
                    f"a row needs exactly one name key (besides {', '.join(ROW_OPTIONS)}); "
                    f"found {keys}",
                    location,
                    path=scope.trail,
                    hint="write `- conv1: conv 7x7/2 64`, one row per list item",
                )
            (name,) = names
            options = {k: Field(item[k], item.value_locs.get(k)) for k in item if k in ROW_OPTIONS}
            self.check_name(name, item.key_locs.get(name), scope)
            return RowItem(
                name, item[name], item.value_locs.get(name), options, item.key_locs.get(name), True
            )
        if isinstance(item, str | YamlSeq | list):
            return RowItem(auto_names[index], item, location, {}, location, False)
        raise SpecError(
            f"a row must be a string like `conv 3x3 64` or a mapping `name: ...`, "
            f"not {type_name(item)}",
            location,
            path=scope.trail,
        )

    def check_name(self, name: str, location: Location | None, scope: Scope) -> None:
        if not isinstance(name, str) or not re.fullmatch(r"[A-Za-z0-9_]+", name):
            raise SpecError(
                f"row name {name!r} may only use the letters A-Z and a-z, digits and '_'",
                location,
                path=scope.trail,
                hint="names become Python attributes and parameter paths, "
                "e.g. inception_3a/3x3/conv",
            )
        if name.isdigit():
            raise SpecError(
                f"row name '{name}' is only digits, which parameter paths use for repeat indices",
                location,
                path=scope.trail,
                hint=f"start it with a letter, e.g. `layer{name}`",
            )
        if name == INPUT:
            raise SpecError(
                f"'{INPUT}' is reserved: it names the input of the network or block",
                location,
                path=scope.trail,
                hint="rename the row, e.g. `stem`",
            )
        if name in scope.names:
            first = scope.name_locations.get(name)
            where = f" (first used at line {first.line})" if first else ""
            raise SpecError(
                f"duplicate row name '{name}'{where}",
                location,
                path=scope.trail,
                hint="give every row of a sequence its own name",
            )
        attribute = identifier(name)
        for other in scope.names:
            if identifier(other) == attribute:
                first = scope.name_locations.get(other)
                where = f" (line {first.line})" if first else ""
                raise SpecError(
                    f"row names '{other}'{where} and '{name}' both become the Python "
                    f"attribute '{attribute}' of the generated module",
                    location,
                    path=scope.trail,
                    hint="rename one of them",
                )

    def expand_sequence(
        self, items: Any, location: Location | None, scope: Scope, top_level: bool = False
    ) -> str:
        """Expand rows one after another; returns the name of the last main-path output."""
        if not isinstance(items, list):
            raise SpecError(
                f"expected a list of rows, got {type_name(items)}", location, path=scope.trail
            )
        names = auto_names(items, "layer")
        chain = scope.input
        for index, raw in enumerate(items):
            item_location = self.value_location(items, index) or location
            item = self.gather_options(
                self.split_item(raw, item_location, index, scope, names), scope
            )
            item_scope = replace(scope, trail=f"{scope.trail} > {item.name}".lstrip(" >"))
            if top_level:
                item_scope.table_row = item.name
            start = len(self.nodes)
            output, is_aux = self.expand_row(item, item_scope, chain, top_level)
            scope.names[item.name] = output
            scope.name_locations[item.name] = item.location
            if top_level:
                self.record_row(item, output, start, is_aux, item_scope)
            if not is_aux:
                chain = output
        return chain

    def expand_row(
        self, item: RowItem, scope: Scope, chain: str, top_level: bool
    ) -> tuple[str, bool]:
        """Expand one row (maybe repeated); returns (output node, whether it is an aux head)."""
        body, options, compact = item.body, item.options, item.compact
        if "if" in options and not self.option_bool(options["if"], scope, "if"):
            return chain, False
        weight = self.option_aux(options.get("aux"), scope)
        if weight is not None:
            scope = replace(scope, train_only=True)
        if "expect" in options and not top_level:
            raise SpecError(
                "`expect` is only checked on rows of the top-level table",
                options["expect"].location,
                path=scope.trail,
                hint="move the expectation to the table row that contains this one",
            )
        inputs = self.option_from(options.get("from"), scope, chain)
        repeat = self.option_repeat(options.get("repeat"), scope)

        if repeat is None:
            output = self.expand_body(
                item, body, compact, scope, inputs, f"{scope.prefix}{item.name}"
            )
        else:
            output = None
            current = inputs
            start = len(self.nodes)
            for i in range(repeat):
                repeat_scope = replace(
                    scope, variables={**scope.variables, "i": i}, trail=f"{scope.trail}[{i}]"
                )
                try:
                    output = self.expand_body(
                        item, body, compact, repeat_scope, current, f"{scope.prefix}{item.name}/{i}"
                    )
                except TooManyNodes:
                    per_copy = max((len(self.nodes) - start) // max(i, 1), 1)
                    raise TooManyNodes(
                        f"repeat={repeat} of about {per_copy} layers each expands past the limit "
                        f"of {MAX_NODES} layers",
                        self.option_location(options["repeat"]),
                        path=scope.trail,
                        field="repeat",
                        hint="lower the repeat count",
                    ) from None
                current = [output]
            assert output is not None
        if weight is not None:
            self.heads.append(Head(scope.table_row if top_level else item.name, output, weight))
        return output, weight is not None

    def gather_options(self, item: RowItem, scope: Scope) -> RowItem:
        """Parse a compact body once and collect the row options wherever they are written:
        beside the name, as `key=value` / `->` in the compact form, or inside a mapping body."""
        body, options = item.body, dict(item.options)
        compact = None
        if isinstance(body, str):
            compact = self.parse_row_string(body, item.body_location, scope)
            for key in ROW_OPTIONS:
                if key in compact.keywords:
                    options[key] = Field(compact.keywords.pop(key), item.body_location)
            if compact.expect:
                options["expect"] = Field(compact.expect, item.body_location)
        elif isinstance(body, YamlMap):
            for key in ROW_OPTIONS:
                if key in body:
                    options[key] = Field(body[key], body.value_locs.get(key))
        elif body is None:
            raise SpecError(
                f"row '{item.name}' is empty",
                item.location,
                path=scope.trail,
                hint=f"write e.g. `- {item.name}: conv 3x3 64`",
            )
        return replace(item, options=options, compact=compact)

    def parse_row_string(self, text: str, location: Location | None, scope: Scope) -> CompactRow:
        try:
            return parse_compact(text)
        except TokenError as error:
            raise SpecError(
                error.message,
                self.token_location(location, error.offset),
                path=scope.trail,
                hint=error.hint,
            ) from None

    # ---- row options -----------------------------------------------------------------------

    def option_value(self, option: Field, scope: Scope, what: str) -> tuple[Any, Location | None]:
        if isinstance(option.value, Token):
            location = self.token_location(option.location, option.value.offset)
            return self.evaluate_token(option.value, option.location, scope, what), location
        return self.evaluate(option.value, option.location, scope, what), option.location

    def option_location(self, option: Field) -> Location | None:
        if isinstance(option.value, Token):
            return self.token_location(option.location, option.value.offset)
        return option.location

    def option_bool(self, option: Field, scope: Scope, what: str) -> bool:
        value, location = self.option_value(option, scope, what)
        if not isinstance(value, bool):
            raise SpecError(
                f"expected true or false, got {value!r}",
                location,
                path=scope.trail,
                field=what,
                hint="YAML 1.1 words such as yes/no/on/off are not booleans here"
                if isinstance(value, str)
                else None,
            )
        return value

    def option_aux(self, option: Field | None, scope: Scope) -> float | None:
        if option is None:
            return None
        value, location = self.option_value(option, scope, "aux")
        if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
            raise SpecError(
                f"expected the auxiliary loss weight (a number >= 0), got {value!r}",
                location,
                path=scope.trail,
                field="aux",
                hint="e.g. aux=0.3 as GoogLeNet weighs its two auxiliary heads",
            )
        return float(value)

    def option_repeat(self, option: Field | None, scope: Scope) -> int | None:
        if option is None:
            return None
        value, location = self.option_value(option, scope, "repeat")
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise SpecError(
                f"expected a repeat count >= 1, got {value!r}",
                location,
                path=scope.trail,
                field="repeat",
            )
        if value > MAX_REPEAT:
            raise SpecError(
                f"repeat count {value} is larger than the limit of {MAX_REPEAT}",
                location,
                path=scope.trail,
                field="repeat",
            )
        return value

    def option_from(self, option: Field | None, scope: Scope, chain: str) -> list[str]:
        if option is None:
            return [chain]
        value, location = self.option_value(option, scope, "from")
        names = value if isinstance(value, list) else [value]
        if not names:
            raise SpecError(
                "`from` needs at least one row name", location, path=scope.trail, field="from"
            )
        resolved = []
        for name in names:
            target = scope.lookup(str(name)) if isinstance(name, str | int) else None
            if target is None:
                hint = did_you_mean(str(name), scope.visible_names())
                raise SpecError(
                    f"no earlier row named {name!r} to read from",
                    location,
                    path=scope.trail,
                    field="from",
                    hint=hint or "from= names an earlier row of this sequence, or `input`",
                )
            resolved.append(target)
        return resolved

    # ---- bodies ----------------------------------------------------------------------------

    def expand_body(
        self,
        item: RowItem,
        body: Any,
        compact: CompactRow | None,
        scope: Scope,
        inputs: list[str],
        path: str,
    ) -> str:
        if compact is not None:
            kind = self.evaluate_token(compact.type, item.body_location, scope, "type")
            return self.expand_call(str(kind), compact, None, item, scope, inputs, path)
        if isinstance(body, list):
            return self.expand_inline("layers", body, item.body_location, scope, inputs, path)
        if isinstance(body, YamlMap):
            composites = [k for k in COMPOSITES if k in body]
            if "type" in body:
                if composites:
                    raise SpecError(
                        f"a row has either `type` or `{composites[0]}`, not both",
                        item.body_location,
                        path=scope.trail,
                    )
                kind = self.evaluate(body["type"], body.value_locs.get("type"), scope, "type")
                return self.expand_call(str(kind), None, body, item, scope, inputs, path)
            if len(composites) == 1:
                kind = composites[0]
                extra = [k for k in body if k not in (kind, *ROW_OPTIONS)]
                if extra:
                    raise SpecError(
                        f"unexpected key '{extra[0]}' in a `{kind}` row",
                        body.key_locs.get(extra[0]),
                        path=scope.trail,
                        hint=f"a `{kind}` row holds only its list and " + ", ".join(ROW_OPTIONS),
                    )
                return self.expand_inline(
                    kind, body[kind], body.key_locs.get(kind), scope, inputs, path
                )
            raise SpecError(
                "a mapping row needs `type` (a layer or block) or one of "
                + ", ".join(f"`{k}`" for k in COMPOSITES),
                item.body_location,
                path=scope.trail,
                hint=did_you_mean(next(iter(body), ""), ("type", *COMPOSITES)),
            )
        raise SpecError(
            f"a row body must be a string, a list or a mapping, not {type_name(body)}",
            item.body_location,
            path=scope.trail,
        )

    def expand_inline(
        self,
        kind: str,
        items: Any,
        location: Location | None,
        scope: Scope,
        inputs: list[str],
        path: str,
    ) -> str:
        """An inline sequence (`layers`) or parallel branches merged by `concat` / `add`."""
        source = self.single_input(inputs, kind, location, scope)
        child = Scope(
            scope.variables,
            scope.defaults,
            path + "/",
            scope.trail,
            scope.table_row,
            source,
            parent=scope,
            train_only=scope.train_only,
            block_stack=scope.block_stack,
        )
        if kind == "layers":
            return self.expand_sequence(items, location, child)
        if not isinstance(items, list) or len(items) < 2:
            raise SpecError(
                f"`{kind}` needs a list of at least two branches", location, path=scope.trail
            )
        names = auto_names([None] * len(items), "b")
        outputs = []
        for index, raw in enumerate(items):
            branch_location = self.value_location(items, index) or location
            item = self.gather_options(
                self.split_item(raw, branch_location, index, child, names), child
            )
            branch_scope = replace(child, trail=f"{child.trail} > {item.name}")
            output, is_aux = self.expand_row(item, branch_scope, source, False)
            if is_aux:
                raise SpecError(
                    "an auxiliary head cannot be a branch", branch_location, path=branch_scope.trail
                )
            child.names[item.name] = output
            child.name_locations[item.name] = item.location
            outputs.append(output)
        return self.emit(f"{path}/{kind}", kind, {}, outputs, location, scope)

    def single_input(
        self, inputs: list[str], what: str, location: Location | None, scope: Scope
    ) -> str:
        if len(inputs) != 1:
            raise SpecError(
                f"`{what}` reads one input, but `from` names {len(inputs)}",
                location,
                path=scope.trail,
                field="from",
                hint="merge them first with an `add` or `concat` row",
            )
        return inputs[0]

    def expand_call(
        self,
        kind: str,
        compact: CompactRow | None,
        mapping: YamlMap | None,
        item: RowItem,
        scope: Scope,
        inputs: list[str],
        path: str,
    ) -> str:
        type_location = (
            self.token_location(item.body_location, compact.type.offset)
            if compact
            else mapping.value_locs.get("type")
            if mapping
            else None
        )
        canonical = ALIASES.get(kind, kind)
        if canonical in REGISTRY:
            return self.expand_layer(
                REGISTRY[canonical], compact, mapping, item, scope, inputs, path
            )
        if kind in self.blocks:
            return self.expand_block(kind, compact, mapping, item, scope, inputs, path)
        known = [*REGISTRY, *ALIASES, *self.blocks]
        raise SpecError(
            f"unknown layer type or block '{kind}'",
            type_location,
            path=scope.trail,
            hint=did_you_mean(kind, known)
            or "layer types: "
            + ", ".join(sorted(REGISTRY))
            + ("; blocks: " + ", ".join(self.blocks) if self.blocks else ""),
        )

    def collect_arguments(
        self,
        compact: CompactRow | None,
        mapping: YamlMap | None,
        item: RowItem,
        scope: Scope,
        what: str,
    ) -> tuple[list[tuple[Any, Location | None]], dict[str, Keyword]]:
        """Evaluated positional and keyword arguments of a row, each with its location."""
        positional: list[tuple[Any, Location | None]] = []
        keywords: dict[str, Keyword] = {}
        if compact is not None:
            base = item.body_location
            for token in compact.positional:
                positional.append(
                    (
                        self.evaluate_token(token, base, scope, what),
                        self.token_location(base, token.offset),
                    )
                )
            for key, token in compact.keywords.items():
                keywords[key] = Keyword(
                    self.evaluate_token(token, base, scope, key),
                    self.token_location(base, token.offset),
                    self.token_location(base, token.offset - len(key) - 1),
                )
        elif mapping is not None:
            for key in mapping:
                if key in ("type", *ROW_OPTIONS):
                    continue
                location = mapping.value_locs.get(key)
                value = self.evaluate(mapping[key], location, scope, key)
                keywords[key] = Keyword(value, location, mapping.key_locs.get(key))
        return positional, keywords

    def expand_layer(
        self,
        layer: LayerType,
        compact: CompactRow | None,
        mapping: YamlMap | None,
        item: RowItem,
        scope: Scope,
        inputs: list[str],
        path: str,
    ) -> str:
        positional, keywords = self.collect_arguments(compact, mapping, item, scope, layer.name)
        values: dict[str, Any] = {}
        locations: dict[str, Location | None] = {}
        key_locations = {key: keyword.key_location for key, keyword in keywords.items()}
        self.assign_positional(layer, positional, values, locations, item, scope)
        for key, (value, location, _) in keywords.items():
            if key in values:
                raise SpecError(
                    f"'{key}' is given twice (positionally and as {key}=)",
                    location,
                    path=scope.trail,
                    field=key,
                )
            if key == "window":
                window = parse_window(str(value))
                if window is None:
                    raise SpecError(
                        f"window {value!r} is not KxK or KxK/S",
                        location,
                        path=scope.trail,
                        field=key,
                    )
                for k, v in window.items():
                    values[k], locations[k] = v, location
                continue
            values[key], locations[key] = value, location
        for key in layer.presets:
            if key in values:
                raise SpecError(
                    f"'{layer.name}' fixes {key}={layer.presets[key]}",
                    locations[key],
                    path=scope.trail,
                    field=key,
                )
        defaults, default_locations = self.defaults_for(layer.name, scope)
        merged = {**defaults, **values, **layer.presets}
        params = validate_model(
            layer.params,
            merged,
            {**default_locations, **locations},
            item.body_location,
            scope.trail,
            layer.name,
            key_locations,
        )
        count = layer.inputs
        if len(inputs) < count[0] or (count[1] is not None and len(inputs) > count[1]):
            expected = f"at least {count[0]}" if count[1] is None else str(count[0])
            raise SpecError(
                f"{layer.name} takes {expected} input(s), got {len(inputs)}",
                item.body_location,
                path=scope.trail,
                field="from",
                hint=(
                    f"name them: `{layer.name} from=[a, b]`"
                    if count[0] > 1
                    else "merge the inputs first with an `add` or `concat` row"
                ),
            )
        return self.emit(
            path,
            layer.name,
            params.model_dump(),
            inputs,
            item.body_location,
            scope,
            {k: v for k, v in {**default_locations, **locations}.items() if v is not None},
        )

    def assign_positional(
        self,
        layer: LayerType,
        positional: list[tuple[Any, Location | None]],
        values: dict[str, Any],
        locations: dict[str, Location | None],
        item: RowItem,
        scope: Scope,
    ) -> None:
        """Fill fields from bare tokens: the layer's positional slots in order, and flag words."""
        flags = layer.flag_values()
        slots = [s for s in layer.positional if s not in layer.presets]
        for value, location in positional:
            if isinstance(value, str) and value in flags and flags[value] not in values:
                values[flags[value]], locations[flags[value]] = value, location
                continue
            if not slots:
                usage = usage_of(layer)
                raise SpecError(
                    f"unexpected value {value!r} for {layer.name}",
                    location,
                    path=scope.trail,
                    hint=f"{layer.name} is written `{usage}`",
                )
            slot = slots.pop(0)
            if slot == "window":
                window = parse_window(str(value)) if isinstance(value, str | int) else None
                if window is None:
                    raise SpecError(
                        f"expected a window like 3x3, 7x7/2 or 1x7, got {value!r}",
                        location,
                        path=scope.trail,
                        field="kernel",
                        hint=f"{layer.name} is written `{usage_of(layer)}`",
                    )
                for key, v in window.items():
                    values[key], locations[key] = v, location
            else:
                values[slot], locations[slot] = value, location

    def defaults_for(
        self, layer: str, scope: Scope
    ) -> tuple[dict[str, Any], dict[str, Location | None]]:
        """The defaults that apply to a row of this layer type, and where each was written."""
        merged: dict[str, Any] = {}
        locations: dict[str, Location | None] = {}
        for defaults in scope.defaults:
            entry = defaults.get(layer)
            if isinstance(entry, Mapping):
                for key, raw in entry.items():
                    location = entry.value_locs.get(key) if isinstance(entry, YamlMap) else None
                    merged[key] = self.evaluate(raw, location, scope, key)
                    locations[key] = location
        return merged, locations

    def expand_block(
        self,
        name: str,
        compact: CompactRow | None,
        mapping: YamlMap | None,
        item: RowItem,
        scope: Scope,
        inputs: list[str],
        path: str,
    ) -> str:
        block, raw = self.blocks[name]
        if name in scope.block_stack:
            cycle = " -> ".join([*scope.block_stack[scope.block_stack.index(name) :], name])
            raise SpecError(
                f"block '{name}' uses itself: {cycle}",
                item.body_location,
                path=scope.trail,
                hint="blocks may nest but not recurse",
            )
        if len(scope.block_stack) >= MAX_BLOCK_DEPTH:
            raise SpecError(
                f"blocks nest more than {MAX_BLOCK_DEPTH} deep",
                item.body_location,
                path=scope.trail,
            )
        positional, keywords = self.collect_arguments(compact, mapping, item, scope, name)
        arguments = self.bind_arguments(name, block, positional, keywords, item, scope)
        source = self.single_input(inputs, name, item.body_location, scope)
        block_defaults = raw.get("defaults") or YamlMap()
        self.check_defaults(block_defaults, f"blocks.{name}.defaults")
        body_kind, _ = block.body()
        body_location = raw.value_locs.get(body_kind)
        inner = Scope(
            variables={**self.global_variables, **arguments},
            defaults=(*self.global_defaults, block_defaults),
            prefix=path + "/",
            trail=f"{scope.trail} > {name}",
            table_row=scope.table_row,
            input=source,
            train_only=scope.train_only,
            block_stack=(*scope.block_stack, name),
        )
        if body_kind == "layers":
            return self.expand_sequence(raw[body_kind], body_location, inner)
        return self.expand_inline(body_kind, raw[body_kind], body_location, inner, [source], path)

    def bind_arguments(
        self,
        name: str,
        block: BlockDef,
        positional: list[tuple[Any, Location | None]],
        keywords: dict[str, Keyword],
        item: RowItem,
        scope: Scope,
    ) -> dict[str, Any]:
        params: list[tuple[str, Any, bool]] = []
        for entry in block.args:
            if isinstance(entry, str):
                params.append((entry, None, False))
            else:
                ((key, default),) = entry.items()
                params.append((key, default, True))
        names = [p[0] for p in params]
        signature = f"{name} " + " ".join(p[0] if not p[2] else f"{p[0]}={p[1]}" for p in params)
        if len(positional) > len(params):
            raise SpecError(
                f"block '{name}' takes {len(params)} argument(s) ({', '.join(names)}) "
                f"but got {len(positional)}",
                positional[len(params)][1],
                path=scope.trail,
                hint=f"write `{signature}`",
            )
        bound: dict[str, Any] = {}
        for (key, _, _), (value, _) in zip(params, positional, strict=False):
            bound[key] = value
        for key, (value, _, location) in keywords.items():
            if key not in names:
                raise SpecError(
                    f"block '{name}' has no argument '{key}'",
                    location,
                    path=scope.trail,
                    hint=did_you_mean(key, names) or f"write `{signature}`",
                )
            if key in bound:
                raise SpecError(f"argument '{key}' is given twice", location, path=scope.trail)
            bound[key] = value
        missing = [p[0] for p in params if p[0] not in bound and not p[2]]
        if missing:
            raise SpecError(
                f"block '{name}' takes {len(params)} argument(s) ({', '.join(names)}) "
                f"but got {len(bound)}: missing {', '.join(missing)}",
                item.body_location,
                path=scope.trail,
                hint=f"write `{signature}`",
            )
        for key, default, has_default in params:
            if key not in bound and has_default:
                bound[key] = default
        return bound

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

    # ---- top level -------------------------------------------------------------------------

    def record_row(
        self, item: RowItem, output: str, start: int, is_aux: bool, scope: Scope
    ) -> None:
        nodes = tuple(n.name for n in self.nodes[start:])
        body = item.body
        kind, label, window, args = "", "", "", ()
        compact = item.compact
        type_word = (
            compact.type.text
            if compact
            else body.get("type")
            if isinstance(body, YamlMap)
            else None
        )
        if isinstance(type_word, str):
            canonical = ALIASES.get(type_word, type_word)
            kind = canonical
            if canonical in REGISTRY:
                label = REGISTRY[canonical].table_label
                window = self.window_label(nodes)
            else:
                label = canonical
                args = tuple(t.text for t in compact.positional) if compact else ()
        elif isinstance(body, YamlMap):
            kind = next((k for k in COMPOSITES if k in body), "")
            label = kind if kind != "layers" else "sequence"
        else:
            kind, label = "layers", "sequence"
        expect = None
        if "expect" in item.options:
            expect = self.parse_expectation(item, scope)
        self.rows.append(
            Row(item.name, kind, label, nodes, output, item.location, window, args, is_aux, expect)
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

    def parse_expectation(self, item: RowItem, scope: Scope) -> Expectation:
        """The row's expectation: output size, params and MACs, each with where it is written,
        variables substituted (`-> 1x1x$num_classes` works)."""
        option = item.options["expect"]
        raw = option.value
        parts: list[tuple[Any, Location | None]]
        if isinstance(raw, list) and raw and isinstance(raw[0], Token):
            parts = [(t.text, self.token_location(option.location, t.offset)) for t in raw]
        elif isinstance(raw, YamlMap):
            unknown = [k for k in raw if k not in EXPECTATIONS]
            if unknown:
                raise SpecError(
                    f"unknown expectation '{unknown[0]}'",
                    raw.key_locs.get(unknown[0]),
                    path=item.name,
                    hint=did_you_mean(unknown[0], EXPECTATIONS)
                    or "expect takes output, params and macs",
                )
            parts = [(raw.get(k), raw.value_locs.get(k)) for k in EXPECTATIONS]
        elif isinstance(raw, str | int):
            parts = [
                (t.text, self.token_location(option.location, t.offset)) for t in tokenize(str(raw))
            ]
        else:
            raise SpecError(
                "expect is a string such as `28x28x256 159K 128M` (output, params, MACs) or a "
                "mapping {output: ..., params: ..., macs: ...}",
                option.location,
                path=item.name,
                field="expect",
            )
        if len(parts) > 3:
            raise SpecError(
                "expect takes at most three values: output size, params, MACs",
                parts[3][1],
                path=item.name,
                field="expect",
            )
        parts += [(None, None)] * (3 - len(parts))
        values = [
            None if value is None else str(self.evaluate(value, location, scope, "expect"))
            for value, location in parts
        ]
        self.check_expectation_form(values, [loc for _, loc in parts], item.name)
        return Expectation(*values, parts[0][1] or option.location, tuple(loc for _, loc in parts))

    def check_expectation_form(
        self, values: list[str | None], locations: list[Location | None], row: str
    ) -> None:
        output, *counts = values
        if output is not None and not re.fullmatch(r"\d+[x×]\d+[x×]\d+", output):
            raise SpecError(
                f"expect needs an output size like 28x28x256 first, got {output!r}",
                locations[0],
                path=row,
                field="expect",
            )
        for what, text, location in zip(("params", "MACs"), counts, locations[1:], strict=True):
            if text is not None and ExpectedCount.parse(text) is None:
                raise SpecError(
                    f"cannot read the expected {what} {text!r}",
                    location,
                    path=row,
                    field="expect",
                    hint="write a count like 61706, 2.7K, 128M or ~159Ki (K = 1000, Ki = 1024, "
                    "~ allows 2%)",
                )

    def check_defaults(self, defaults: Any, where: str) -> None:
        if not isinstance(defaults, Mapping):
            return
        for layer, entry in defaults.items():
            canonical = ALIASES.get(layer, layer)
            location = defaults.key_locs.get(layer) if isinstance(defaults, YamlMap) else None
            if canonical not in REGISTRY:
                raise SpecError(
                    f"defaults for unknown layer type '{layer}'",
                    location,
                    path=where,
                    hint=did_you_mean(layer, [*REGISTRY, *ALIASES]),
                )
            if canonical != layer:
                raise SpecError(
                    f"write defaults under the layer type '{canonical}'", location, path=where
                )
            fields = REGISTRY[canonical].params.model_fields
            for key in entry:
                if key not in fields:
                    key_location = entry.key_locs.get(key) if isinstance(entry, YamlMap) else None
                    raise SpecError(
                        f"{layer} has no parameter '{key}'",
                        key_location,
                        path=where,
                        hint=did_you_mean(key, fields) or f"{layer} takes: " + ", ".join(fields),
                    )

    def resolve(self, overrides: Mapping[str, Any]) -> Graph:
        raw_vars = self.data.get("vars") or YamlMap()
        unknown = [k for k in overrides if k not in raw_vars]
        if unknown:
            key = unknown[0]
            raise SpecError(
                f"--set {key}=...: the spec has no variable '{key}'",
                self.data.key_locs.get("vars") or self.data.loc,
                hint=did_you_mean(key, raw_vars)
                or (
                    "its variables: " + ", ".join(raw_vars)
                    if raw_vars
                    else "this spec defines no `vars`"
                ),
            )
        definitions = {**raw_vars, **overrides}
        try:
            self.global_variables = resolve_variables(definitions)
        except ExprError as error:
            name = error.field
            location = raw_vars.value_locs.get(name) if name in raw_vars else None
            raise error.with_context(
                location=location.shifted(error.offset + self.quote_shift(location))
                if location
                else self.data.key_locs.get("vars"),
                path="vars",
            ) from None
        spec_defaults = self.data.get("defaults") or YamlMap()
        self.check_defaults(spec_defaults, "defaults")
        self.global_defaults: tuple[Mapping[str, Any], ...] = (spec_defaults,)
        input_shape = self.input_shape()
        scope = Scope(self.global_variables, self.global_defaults, "", "", "", INPUT)
        layers_location = self.data.value_locs.get("layers")
        output = self.expand_sequence(self.data["layers"], layers_location, scope, top_level=True)
        return Graph(
            self.model.name,
            input_shape,
            tuple(self.nodes),
            tuple(self.rows),
            output,
            tuple(self.heads),
            dict(self.global_variables),
            self.filename,
        )

    def input_shape(self) -> tuple[int, int, int]:
        location = self.data.value_locs.get("input")
        scope = Scope(self.global_variables, (), "", "input", "", INPUT)
        raw = parse_input_size(self.data["input"])
        if isinstance(raw, str):
            raw = self.evaluate(raw, location, scope, "input")
            raw = parse_input_size(raw)
        values = (
            [self.evaluate(v, location, scope, "input") for v in raw]
            if isinstance(raw, list)
            else raw
        )
        if (
            not isinstance(values, list)
            or len(values) != 3
            or not all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in values)
        ):
            raise SpecError(
                f"input must be [height, width, channels] with positive integers, got {values!r}",
                location,
                field="input",
                hint="e.g. input: [224, 224, 3] or input: 224x224x3",
            )
        return (values[0], values[1], values[2])


def auto_names(items: list[Any], prefix: str) -> list[str]:
    """Names for unnamed entries: their type (`conv`), numbered when it repeats (`conv_1`)."""
    kinds = []
    for i, item in enumerate(items):
        if isinstance(item, str) and item.split():
            kinds.append(item.split()[0].replace("$", "").replace("{", "").replace("}", ""))
        else:
            kinds.append(f"{prefix}{i}")
    kinds = [k if k.replace("_", "a").isalnum() else f"{prefix}{i}" for i, k in enumerate(kinds)]
    counts = {k: kinds.count(k) for k in kinds}
    seen: dict[str, int] = {}
    names = []
    for kind in kinds:
        if counts[kind] == 1:
            names.append(kind)
        else:
            names.append(f"{kind}_{seen.get(kind, 0)}")
            seen[kind] = seen.get(kind, 0) + 1
    return names


def type_name(value: Any) -> str:
    if isinstance(value, Mapping):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    if value is None:
        return "nothing (null)"
    return f"{type(value).__name__} {value!r}"


def usage_of(layer: LayerType) -> str:
    slots = [
        {"window": "KxK/S"}.get(s, s.upper()) for s in layer.positional if s not in layer.presets
    ]
    return " ".join([layer.name, *slots, "key=value ..."])


def resolve_spec(
    data: YamlMap, filename: str, source: str, overrides: Mapping[str, Any] | None = None
) -> Graph:
    """Validate the structure of loaded spec data and expand it into a Graph."""
    if not isinstance(data, YamlMap):
        raise SpecError(
            f"a spec is a mapping with `name`, `input` and `layers`, not {type_name(data)}",
            getattr(data, "loc", None) or Location(filename, 1, 1),
        )
    try:
        model = SpecModel.model_validate(dict(data))
    except ValidationError as error:
        raise describe_validation_error(error, data, "spec") from None
    return Resolver(data, model, filename, source).resolve(overrides or {})


__all__ = ["MAX_BLOCK_DEPTH", "MAX_NODES", "MAX_REPEAT", "resolve_spec"]
