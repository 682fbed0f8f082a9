"""Read a spec's located YAML data once into a `SpecTree`, checking all that values do not decide.

The parser takes every row apart (name, options, compact or mapping form), binds positional
arguments to layer fields (flag words, windows), binds block arguments, resolves `from` names
against the rows visible at that point, and checks every `${...}` against the variables in
scope. Rows switched off by `if` get the same checks. What depends on variable values (numbers
in range, shapes) is checked when the tree is expanded (`expand.py`).

Rules decided here (docs/spec-format.md, "One reading of a spec"):
- a flag word (`relu`, `same`) counts only when written as a word; `$var` fills the next slot;
- `from` names rows as written (no variables);
- auxiliary heads (`aux=`) and expectations (`expect`) are rows of the top-level table;
- a layer type chosen by a variable (`${pool}pool`) names layer types written the same way.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field, replace
from typing import Any, TypeVar

from pydantic import ValidationError

from .errors import Location, SpecError, SpecErrors, did_you_mean, raise_all
from .expr import ROW_INPUT, ExprError, check_expression, split_template
from .graph import INPUT
from .layers import ALIASES, REGISTRY, LayerType
from .load import YamlMap, YamlSeq, load_yaml, resolve_scalar
from .prelude import variable_identifier
from .pysource import identifier
from .rowsyntax import CompactRow, Token, TokenError, parse_compact, tokenize
from .shapes import parse_window
from .spec import ROW_OPTIONS, SpecModel
from .tree import (
    Argument,
    BlockCall,
    BlockNode,
    Defaults,
    Expect,
    LayerCall,
    Reference,
    RowNode,
    Sequence,
    SpecTree,
    Template,
    Value,
    Window,
)
from .validation import describe_validation_errors

T = TypeVar("T")

MAX_ROWS = 20_000
"""Rows (written, before repeats) a spec may have; checked before any row is read."""
MAX_BLOCK_DEPTH = 32
COMPOSITES = ("concat", "add", "layers")
EXPECTATIONS = ("output", "params", "macs")


@dataclass
class Names:
    """The rows a sequence has named so far, and the sequence it sits in (for `from`)."""

    parent: Names | None = None
    rows: dict[str, Location | None] = field(default_factory=dict)
    attributes: dict[str, str] = field(default_factory=dict)

    def visible(self, name: str) -> bool:
        names: Names | None = self
        while names is not None:
            if name in names.rows:
                return True
            names = names.parent
        return name == INPUT

    def all(self) -> list[str]:
        found: list[str] = [INPUT]
        names: Names | None = self
        while names is not None:
            found.extend(names.rows)
            names = names.parent
        return found


@dataclass(frozen=True)
class Context:
    """What a row being parsed can see: variable names, defaults, rows for `from`."""

    variables: frozenset[str]
    defaults: tuple[Defaults, ...]
    trail: str
    top_level: bool = False
    block: str | None = None


class Parser:
    """Turns the located YAML data of one spec into a SpecTree."""

    def __init__(self, data: YamlMap, model: SpecModel, filename: str, source: str) -> None:
        self.data = data
        self.model = model
        self.filename = filename
        self.lines = source.splitlines()
        raw_blocks = data.get("blocks") or YamlMap()
        self.raw_blocks: dict[str, YamlMap] = {name: raw_blocks[name] for name in model.blocks}
        self.block_args: dict[str, tuple[Argument, ...]] = {}
        self.calls: dict[str, list[tuple[str, Location | None, str]]] = {}
        self.row_count = 0
        self.errors: list[SpecError] = []
        """Problems found so far; parsing goes on past a bad row, variable or block."""
        self.structural = False
        """Whether a problem lies outside the table's own rows (a variable, a default, a
        block), so that expanding the rest would report problems that follow from it."""

    def attempt(self, parse: Callable[[], T], fallback: T) -> T:
        """`parse()`, or `fallback` with its SpecError kept, so independent problems (each
        row, variable, block) are all reported in one run."""
        try:
            return parse()
        except SpecError as error:
            self.errors.append(error)
            self.structural = True
            return fallback

    # ---- locations -------------------------------------------------------------------------

    def quote_shift(self, location: Location | None) -> int:
        """1 when the scalar at `location` is quoted (token offsets start after the quote)."""
        if location is None or location.line > len(self.lines):
            return 0
        line = self.lines[location.line - 1]
        index = location.column - 1
        return 1 if index < len(line) and line[index] in "'\"" else 0

    def token_location(self, base: Location | None, offset: int) -> Location | None:
        """Where character `offset` of the scalar starting at `base` is written. A plain
        scalar written over several lines is folded (each line break and the next line's
        indentation read as one space), so the offset is walked back through the lines."""
        if base is None:
            return None
        line, column = base.line, base.column - 1 + self.quote_shift(base)
        remaining = offset
        while 0 < line <= len(self.lines):
            text = self.lines[line - 1].rstrip()
            room = len(text) - column
            if remaining <= room or line == len(self.lines):
                return Location(base.file, line, column + remaining + 1)
            remaining -= room + 1
            line += 1
            following = self.lines[line - 1]
            column = len(following) - len(following.lstrip())
        return base.shifted(offset + self.quote_shift(base))

    def source_text(self, location: Location | None) -> tuple[str, str]:
        """The row's line without `- ` and its comment, and the comment."""
        if location is None or location.line > len(self.lines):
            return "", ""
        text = self.lines[location.line - 1]
        match = re.search(r"\s#\s?(.*)$", text)
        note = match.group(1).strip() if match and not text.lstrip().startswith("#") else ""
        code = re.sub(r"\s+#.*$", "", text.strip())
        return (code[2:] if code.startswith("- ") else code), note

    # ---- values ----------------------------------------------------------------------------

    def template(
        self,
        text: str,
        names: Collection[str],
        location: Location | None,
        shift: int,
        ctx: Context,
        what: str,
        reread: bool,
    ) -> Template:
        """A string with references, each expression checked against the names in scope."""
        pieces: list[str | Reference] = []
        try:
            for piece in split_template(text):
                if isinstance(piece, str):
                    if pieces and isinstance(pieces[-1], str):
                        pieces[-1] += piece
                    else:
                        pieces.append(piece)
                    continue
                try:
                    tree = check_expression(piece.expression, names)
                except ExprError as error:
                    error.offset += piece.offset
                    raise
                pieces.append(Reference(piece.expression, tree, piece.offset))
        except ExprError as error:
            raise error.with_context(
                location=location.shifted(error.offset + shift) if location else None,
                path=ctx.trail,
                field=what,
            ) from None
        return Template(tuple(pieces), reread, shift)

    def value(self, raw: Any, location: Location | None, ctx: Context, what: str) -> Value:
        """A value written in YAML (mapping rows, defaults, options): lists item by item."""
        if isinstance(raw, list):
            locations = getattr(raw, "item_locs", [])
            return Value(
                tuple(
                    self.value(item, locations[i] if i < len(locations) else location, ctx, what)
                    for i, item in enumerate(raw)
                ),
                location,
            )
        if isinstance(raw, str) and "$" in raw:
            shift = self.quote_shift(location)
            template = self.template(raw, ctx.variables, location, shift, ctx, what, False)
            if all(isinstance(p, str) for p in template.pieces):
                return Value("".join(template.pieces), location)  # only `$$`
            return Value(template, location)
        return Value(raw, location)

    def token_value(self, token: Token, base: Location | None, ctx: Context, what: str) -> Value:
        """A compact-row token: variables kept as a template (read as a YAML scalar after
        interpolation), otherwise read now as a YAML 1.2 scalar or a `[...]` list."""
        location = self.token_location(base, token.offset)
        text = token.text
        if "$" in text:
            if text.startswith("[") and text.endswith("]"):
                return self.token_list(text, location, ctx, what)
            template = self.template(text, ctx.variables, location, 0, ctx, what, True)
            if all(isinstance(p, str) for p in template.pieces):
                return Value(self.scalar("".join(template.pieces), location, ctx, what), location)
            return Value(template, location)
        return Value(self.scalar(text, location, ctx, what), location)

    def token_list(self, text: str, location: Location | None, ctx: Context, what: str) -> Value:
        """`[$a, 2]`: items split at top-level commas, each read as a token."""
        items: list[Value] = []
        depth, start = 0, 1
        for index, char in enumerate(text[1:-1], start=1):
            if char in "[{":
                depth += 1
            elif char in "]}":
                depth -= 1
            elif char == "," and depth == 0:
                items.append(self.list_item(text, start, index, location, ctx, what))
                start = index + 1
        if text[start:-1].strip() or items:
            items.append(self.list_item(text, start, len(text) - 1, location, ctx, what))
        return Value(tuple(items), location)

    def list_item(
        self, text: str, start: int, end: int, location: Location | None, ctx: Context, what: str
    ) -> Value:
        piece = text[start:end]
        stripped = piece.strip()
        offset = start + len(piece) - len(piece.lstrip())
        return self.token_value(Token(stripped, offset), location, ctx, what)

    def scalar(self, text: str, location: Location | None, ctx: Context, what: str) -> Any:
        if text.startswith("["):
            try:
                return load_yaml(text, self.filename)
            except SpecError as error:
                raise SpecError(
                    f"cannot read the list {text!r}: {error.message}",
                    location,
                    path=ctx.trail,
                    field=what,
                ) from None
        try:
            return resolve_scalar(text)
        except ValueError:  # Python refuses to convert integers of more than 4300 digits
            raise SpecError(
                f"the number {text[:20]}... has too many digits",
                location,
                path=ctx.trail,
                field=what,
            ) from None

    # ---- rows ------------------------------------------------------------------------------

    def sequence(
        self,
        items: Any,
        location: Location | None,
        ctx: Context,
        names: Names,
        kind: str = "layers",
    ) -> Sequence:
        """Rows one after another, or (`concat` / `add`) parallel branches."""
        if kind != "layers" and (not isinstance(items, list) or len(items) < 2):
            raise SpecError(
                f"`{kind}` needs a list of at least two branches", location, path=ctx.trail
            )
        if not isinstance(items, list):
            raise SpecError(
                f"expected a list of rows, got {type_name(items)}", location, path=ctx.trail
            )
        self.row_count += len(items)
        if self.row_count > MAX_ROWS:
            raise SpecError(
                f"the spec has more than {MAX_ROWS} rows",
                location,
                path=ctx.trail,
                hint="split it into blocks, or use repeat=",
            )
        auto = (
            auto_names(items, "layer") if kind == "layers" else auto_names([None] * len(items), "b")
        )
        scope = Names(parent=names)
        rows = []
        item_locs = getattr(items, "item_locs", [])
        for index, raw in enumerate(items):
            item_location = (item_locs[index] if index < len(item_locs) else None) or location
            try:
                row = self.row(raw, item_location, auto[index], ctx, scope, kind)
            except SpecError as error:
                if self.row_count > MAX_ROWS:
                    raise
                self.errors.append(error)
                self.structural |= not ctx.top_level
                # later rows may still name it in `from` without a second, dependent error
                scope.rows[written_name(raw, auto[index])] = item_location
                continue
            scope.rows[row.name] = row.location
            rows.append(row)
        return Sequence(kind, tuple(rows), location)  # type: ignore[arg-type]

    def row(
        self, raw: Any, location: Location | None, auto: str, ctx: Context, names: Names, kind: str
    ) -> RowNode:
        name, body, body_location, options, row_location, explicit = self.split_item(
            raw, location, auto, ctx, names
        )
        row_ctx = replace(
            ctx,
            trail=f"{ctx.trail} > {name}".lstrip(" >"),
            top_level=False,
            variables=ctx.variables | {ROW_INPUT},  # `in.c`: the row's input shape
        )
        compact: CompactRow | None = None
        if isinstance(body, str):
            compact = self.parse_row_string(body, body_location, row_ctx)
            for key in ROW_OPTIONS:
                if key in compact.keywords:
                    token = compact.keywords.pop(key)
                    options[key] = ("token", token, body_location)
            if compact.expect:
                options["expect"] = ("tokens", compact.expect, body_location)
        elif isinstance(body, YamlMap):
            for key in ROW_OPTIONS:
                if key in body:
                    options[key] = ("yaml", body[key], body.value_locs.get(key))
        elif body is None:
            raise SpecError(
                f"row '{name}' is empty",
                row_location,
                path=row_ctx.trail,
                hint=f"write e.g. `- {name}: conv 3x3 64`",
            )
        if kind != "layers" and "aux" in options:
            raise SpecError("an auxiliary head cannot be a branch", location, path=row_ctx.trail)
        if not ctx.top_level:
            for key, what in (("aux", "auxiliary heads"), ("expect", "expectations")):
                if key in options:
                    raise SpecError(
                        f"{what} (`{key}`) belong to rows of the top-level table",
                        self.option_location(options[key]),
                        path=row_ctx.trail,
                        field=key,
                        hint="move it to the table row that contains this one"
                        if key == "expect"
                        else "write the head as a row of `layers:`",
                    )
        if "aux" in options and name == "main":
            raise SpecError(
                "an auxiliary head cannot be named 'main': in training the module returns the "
                "main output under that name",
                row_location,
                path=row_ctx.trail,
                hint="rename the head, e.g. `main_aux`",
            )
        inputs, inputs_location = self.option_from(options.get("from"), row_ctx, names)
        in_repeat = "repeat" in options
        body_ctx = replace(row_ctx, variables=row_ctx.variables | {"i"}) if in_repeat else row_ctx
        condition = self.option(options.get("if"), row_ctx, "if")
        repeat = self.option(options.get("repeat"), row_ctx, "repeat")
        aux = self.option(options.get("aux"), row_ctx, "aux")
        expect = (
            self.expectation(
                options["expect"], replace(row_ctx, variables=row_ctx.variables - {ROW_INPUT})
            )
            if "expect" in options
            else None
        )
        # Rows inside a repeated row read only each other and the copy's input: every copy is
        # one instance of the same class in the generated code.
        body_names = Names() if in_repeat else names
        parsed, type_word = self.body(
            body, compact, body_location, body_ctx, body_names, inputs, name
        )
        if (
            repeat is not None
            and isinstance(parsed, LayerCall)
            and REGISTRY[parsed.candidates[0]].inputs[0] > 1
        ):
            raise SpecError(
                f"a `{parsed.candidates[0]}` row cannot be repeated: each copy after the first "
                "would read only the copy before it",
                repeat.location,
                path=row_ctx.trail,
                field="repeat",
                hint="write the rows out, each with its own from=[...]",
            )
        source_text, note = self.source_text(row_location if explicit else location)
        return RowNode(
            name=name,
            explicit_name=explicit,
            body=parsed,
            location=row_location,
            body_location=body_location,
            inputs=inputs,
            inputs_location=inputs_location,
            condition=condition,
            repeat=repeat,
            aux=aux,
            expect=expect,
            type_word=type_word,
            source_text=source_text,
            comment=note,
        )

    def split_item(
        self, item: Any, location: Location | None, auto: str, ctx: Context, names: Names
    ) -> tuple[str, Any, Location | None, dict[str, Any], Location | None, bool]:
        """(name, body, body location, options, name location, explicit name)."""
        if isinstance(item, YamlMap):
            keys = [k for k in item if k not in ROW_OPTIONS]
            if not keys and len(item) == 1:
                (key,) = item
                raise SpecError(
                    f"'{key}' is a row option, so it cannot be a row name",
                    item.key_locs.get(key) or location,
                    path=ctx.trail,
                    hint=f"rename the row (e.g. `{key}_head`); reserved: " + ", ".join(ROW_OPTIONS),
                )
            if len(keys) != 1:
                shown = ", ".join(str(k) for k in keys) or "none"
                raise SpecError(
                    f"a row needs exactly one name key (besides {', '.join(ROW_OPTIONS)}); "
                    f"found {shown}",
                    location,
                    path=ctx.trail,
                    hint="write `- conv1: conv 7x7/2 64`, one row per list item",
                )
            (name,) = keys
            options = {
                k: ("yaml", item[k], item.value_locs.get(k)) for k in item if k in ROW_OPTIONS
            }
            self.check_name(name, item.key_locs.get(name), ctx, names)
            return (
                name,
                item[name],
                item.value_locs.get(name),
                options,
                item.key_locs.get(name),
                True,
            )
        if isinstance(item, str | YamlSeq | list):
            self.check_name(auto, location, ctx, names)
            return auto, item, location, {}, location, False
        raise SpecError(
            f"a row must be a string like `conv 3x3 64` or a mapping `name: ...`, "
            f"not {type_name(item)}",
            location,
            path=ctx.trail,
        )

    def check_name(self, name: Any, location: Location | None, ctx: Context, names: Names) -> None:
        if not isinstance(name, str) or not re.fullmatch(r"[A-Za-z0-9_]+", name):
            raise SpecError(
                f"row name {name!r} may only use the letters A-Z and a-z, digits and '_'",
                location,
                path=ctx.trail,
                hint="names become Python attributes and parameter paths, "
                "e.g. inception_3a/3x3/conv",
            )
        if name.isdigit():
            raise SpecError(
                f"row name '{name}' is only digits, which parameter paths use for repeat indices",
                location,
                path=ctx.trail,
                hint=f"start it with a letter, e.g. `layer{name}`",
            )
        if name == INPUT:
            raise SpecError(
                f"'{INPUT}' is reserved: it names the input of the network or block",
                location,
                path=ctx.trail,
                hint="rename the row, e.g. `stem`",
            )
        if name in names.rows:
            first = names.rows.get(name)
            where = f" (first used at line {first.line})" if first else ""
            raise SpecError(
                f"duplicate row name '{name}'{where}",
                location,
                path=ctx.trail,
                hint="give every row of a sequence its own name",
            )
        attribute = identifier(name)
        other = names.attributes.get(attribute)
        if other is not None:
            first = names.rows.get(other)
            where = f" (line {first.line})" if first else ""
            raise SpecError(
                f"row names '{other}'{where} and '{name}' both become the Python "
                f"attribute '{attribute}' of the generated module",
                location,
                path=ctx.trail,
                hint="rename one of them",
            )
        names.attributes[attribute] = name

    def parse_row_string(self, text: str, location: Location | None, ctx: Context) -> CompactRow:
        try:
            return parse_compact(text)
        except TokenError as error:
            raise SpecError(
                error.message,
                self.token_location(location, error.offset),
                path=ctx.trail,
                hint=error.hint,
            ) from None

    # ---- row options -----------------------------------------------------------------------

    def option_location(self, option: tuple[str, Any, Location | None]) -> Location | None:
        form, raw, location = option
        if form == "token":
            return self.token_location(location, raw.offset)
        if form == "tokens":
            return self.token_location(location, raw[0].offset)
        return location

    def option(
        self, option: tuple[str, Any, Location | None] | None, ctx: Context, what: str
    ) -> Value | None:
        if option is None:
            return None
        form, raw, location = option
        if form == "token":
            return self.token_value(raw, location, ctx, what)
        return self.value(raw, location, ctx, what)

    def option_from(
        self, option: tuple[str, Any, Location | None] | None, ctx: Context, names: Names
    ) -> tuple[tuple[str, ...] | None, Location | None]:
        """`from` names, checked against the rows visible here (they are written, not computed)."""
        if option is None:
            return None, None
        location = self.option_location(option)
        value = self.option(option, ctx, "from")
        assert value is not None
        if not value.is_literal:
            raise SpecError(
                "`from` names rows as they are written; it cannot use variables",
                location,
                path=ctx.trail,
                field="from",
                hint="write the row names, e.g. from=[a, b]; choose between rows with `if=`",
            )
        raw = value.literal()
        listed = raw if isinstance(raw, list) else [raw]
        if not listed:
            raise SpecError(
                "`from` needs at least one row name", location, path=ctx.trail, field="from"
            )
        found = []
        for name in listed:
            if (
                not isinstance(name, str | int)
                or isinstance(name, bool)
                or not names.visible(str(name))
            ):
                hint = did_you_mean(str(name), names.all())
                raise SpecError(
                    f"no earlier row named {name!r} to read from",
                    location,
                    path=ctx.trail,
                    field="from",
                    hint=hint or "from= names an earlier row of this sequence, or `input`",
                )
            found.append(str(name))
        return tuple(found), location

    def expectation(self, option: tuple[str, Any, Location | None], ctx: Context) -> Expect:
        """The row's expectation: output size, params and MACs, each with where it is written."""
        form, raw, location = option
        parts: list[Value | None]
        if form == "tokens":
            parts = [self.expect_token(t, location, ctx) for t in raw]
        elif isinstance(raw, YamlMap):
            unknown = [k for k in raw if k not in EXPECTATIONS]
            if unknown:
                raise SpecError(
                    f"unknown expectation '{unknown[0]}'",
                    raw.key_locs.get(unknown[0]),
                    path=ctx.trail,
                    hint=did_you_mean(unknown[0], EXPECTATIONS)
                    or "expect takes output, params and macs",
                )
            parts = [
                self.value(raw.get(k), raw.value_locs.get(k), ctx, "expect") if k in raw else None
                for k in EXPECTATIONS
            ]
        elif isinstance(raw, str | int) and not isinstance(raw, bool):
            parts = [self.expect_token(t, location, ctx) for t in tokenize(str(raw))]
        else:
            raise SpecError(
                "expect is a string such as `28x28x256 159K 128M` (output, params, MACs) or a "
                "mapping {output: ..., params: ..., macs: ...}",
                location,
                path=ctx.trail,
                field="expect",
            )
        if len(parts) > 3:
            raise SpecError(
                "expect takes at most three values: output size, params, MACs",
                parts[3].location if parts[3] else location,
                path=ctx.trail,
                field="expect",
            )
        parts += [None] * (3 - len(parts))
        return Expect((parts[0], parts[1], parts[2]), location)

    def expect_token(self, token: Token, base: Location | None, ctx: Context) -> Value:
        """An expectation as text (`1.50M` keeps its digits), variables kept as a template."""
        return self.value(token.text, self.token_location(base, token.offset), ctx, "expect")

    # ---- bodies ----------------------------------------------------------------------------

    def body(
        self,
        body: Any,
        compact: CompactRow | None,
        location: Location | None,
        ctx: Context,
        names: Names,
        inputs: tuple[str, ...] | None,
        name: str,
    ) -> tuple[LayerCall | BlockCall | Sequence, str]:
        """The row's body, and the type word it was written with ('' for composites)."""
        if compact is not None:
            type_value = self.token_value(compact.type, location, ctx, "type")
            type_location = self.token_location(location, compact.type.offset)
            positional = [
                self.token_value(t, location, ctx, compact.type.text) for t in compact.positional
            ]
            keywords = {
                key: (
                    self.token_value(token, location, ctx, key),
                    self.token_location(location, token.offset - len(key) - 1),
                )
                for key, token in compact.keywords.items()
            }
            call = self.call(type_value, type_location, positional, keywords, location, ctx, inputs)
            if isinstance(call, BlockCall):
                call = replace(call, positional_words=tuple(t.text for t in compact.positional))
            return call, compact.type.text
        if isinstance(body, list):
            self.single_input(inputs, "layers", location, ctx)
            return self.sequence(body, location, ctx, Names(parent=names)), ""
        if isinstance(body, YamlMap):
            composites = [k for k in COMPOSITES if k in body]
            if "type" in body:
                if composites:
                    raise SpecError(
                        f"a row has either `type` or `{composites[0]}`, not both",
                        location,
                        path=ctx.trail,
                    )
                type_location = body.value_locs.get("type")
                type_value = self.value(body["type"], type_location, ctx, "type")
                keywords = {
                    key: (
                        self.value(body[key], body.value_locs.get(key), ctx, key),
                        body.key_locs.get(key),
                    )
                    for key in body
                    if key not in ("type", *ROW_OPTIONS)
                }
                call = self.call(type_value, type_location, [], keywords, location, ctx, inputs)
                word = body["type"] if isinstance(body["type"], str) else ""
                return call, word
            if len(composites) == 1:
                kind = composites[0]
                extra = [k for k in body if k not in (kind, *ROW_OPTIONS)]
                if extra:
                    raise SpecError(
                        f"unexpected key '{extra[0]}' in a `{kind}` row",
                        body.key_locs.get(extra[0]),
                        path=ctx.trail,
                        hint=f"a `{kind}` row holds only its list and " + ", ".join(ROW_OPTIONS),
                    )
                self.single_input(inputs, kind, body.key_locs.get(kind), ctx)
                inner = self.sequence(
                    body[kind], body.key_locs.get(kind), ctx, Names(parent=names), kind
                )
                return inner, ""
            raise SpecError(
                "a mapping row needs `type` (a layer or block) or one of "
                + ", ".join(f"`{k}`" for k in COMPOSITES),
                location,
                path=ctx.trail,
                hint=did_you_mean(next(iter(body), ""), ("type", *COMPOSITES)),
            )
        raise SpecError(
            f"a row body must be a string, a list or a mapping, not {type_name(body)}",
            location,
            path=ctx.trail,
        )

    def single_input(
        self, inputs: tuple[str, ...] | None, what: str, location: Location | None, ctx: Context
    ) -> None:
        if inputs is not None and len(inputs) != 1:
            raise SpecError(
                f"`{what}` reads one input, but `from` names {len(inputs)}",
                location,
                path=ctx.trail,
                field="from",
                hint="merge them first with an `add` or `concat` row",
            )

    def call(
        self,
        type_value: Value,
        type_location: Location | None,
        positional: list[Value],
        keywords: dict[str, tuple[Value, Location | None]],
        location: Location | None,
        ctx: Context,
        inputs: tuple[str, ...] | None,
    ) -> LayerCall | BlockCall:
        """A call of a layer type or a block, its arguments bound."""
        if not type_value.is_literal:
            candidates = self.type_candidates(type_value, type_location, ctx)
            layer = REGISTRY[candidates[0]]
            return self.layer_call(
                layer, type_value, candidates, positional, keywords, location, ctx, inputs
            )
        kind = str(type_value.raw)
        canonical = ALIASES.get(kind, kind)
        if canonical in REGISTRY:
            return self.layer_call(
                REGISTRY[canonical],
                type_value,
                (canonical,),
                positional,
                keywords,
                location,
                ctx,
                inputs,
            )
        if kind in self.raw_blocks:
            return self.block_call(kind, positional, keywords, location, ctx, inputs)
        known = [*REGISTRY, *ALIASES, *self.raw_blocks]
        raise SpecError(
            f"unknown layer type or block '{kind}'",
            type_location,
            path=ctx.trail,
            hint=did_you_mean(kind, known)
            or "layer types: "
            + ", ".join(sorted(REGISTRY))
            + ("; blocks: " + ", ".join(self.raw_blocks) if self.raw_blocks else ""),
        )

    def type_candidates(
        self, type_value: Value, location: Location | None, ctx: Context
    ) -> tuple[str, ...]:
        """The layer types a type word with variables (`${pool}pool`) can name; they must be
        written the same way (same positional slots and fields), as maxpool and avgpool are."""
        template = type_value.raw
        if not isinstance(template, Template):
            raise SpecError("a layer type is a word", location, path=ctx.trail, field="type")
        pattern = "".join(re.escape(p) if isinstance(p, str) else ".+" for p in template.pieces)
        candidates = tuple(
            name
            for name, layer in REGISTRY.items()
            if re.fullmatch(pattern, name) and not layer.presets and layer.positional
        )
        signatures = {
            (REGISTRY[c].positional, tuple(REGISTRY[c].params.model_fields)) for c in candidates
        }
        if not candidates or len(signatures) != 1:
            named = ", ".join(candidates) or "no layer type"
            raise SpecError(
                f"the layer type chosen by a variable can name {named}",
                location,
                path=ctx.trail,
                field="type",
                hint="a variable type word must name layer types written the same way, "
                "e.g. `${pool}pool` for maxpool and avgpool",
            )
        return candidates

    def layer_call(
        self,
        layer: LayerType,
        type_value: Value,
        candidates: tuple[str, ...],
        positional: list[Value],
        keywords: dict[str, tuple[Value, Location | None]],
        location: Location | None,
        ctx: Context,
        inputs: tuple[str, ...] | None,
    ) -> LayerCall:
        arguments: dict[str, Value] = {}
        windows: list[Window] = []
        self.assign_positional(layer, positional, arguments, windows, ctx)
        fields = layer.params.model_fields
        for key, (value, key_location) in keywords.items():
            if key in arguments:
                raise SpecError(
                    f"'{key}' is given twice (positionally and as {key}=)",
                    value.location,
                    path=ctx.trail,
                    field=key,
                )
            if key == "window":
                self.window(value, arguments, windows, ctx, key)
                continue
            if key not in fields:
                hint = did_you_mean(key, fields)
                raise SpecError(
                    f"{layer.name} has no parameter '{key}'",
                    key_location or value.location,
                    path=ctx.trail,
                    field=key,
                    hint=hint or f"{layer.name} takes: " + ", ".join(fields),
                )
            arguments[key] = value
        for key in layer.presets:
            if key in arguments:
                raise SpecError(
                    f"'{layer.name}' fixes {key}={layer.presets[key]}",
                    arguments[key].location,
                    path=ctx.trail,
                    field=key,
                )
        count = len(inputs) if inputs is not None else 1
        least, most = layer.inputs
        if count < least or (most is not None and count > most):
            expected = f"at least {least}" if most is None else str(least)
            raise SpecError(
                f"{layer.name} takes {expected} input(s), got {count}",
                location,
                path=ctx.trail,
                field="from",
                hint=(
                    f"name them: `{layer.name} from=[a, b]`"
                    if least > 1
                    else "merge the inputs first with an `add` or `concat` row"
                ),
            )
        return LayerCall(
            layer.name if type_value.is_literal else "",
            type_value,
            candidates,
            tuple(arguments.items()),
            tuple(windows),
            location,
            tuple((k, loc) for k, (_, loc) in keywords.items()),
        )

    def assign_positional(
        self,
        layer: LayerType,
        positional: list[Value],
        arguments: dict[str, Value],
        windows: list[Window],
        ctx: Context,
    ) -> None:
        """Bare tokens fill the layer's positional slots in order; a flag word written as a
        word (`relu`, `same`) sets its field instead."""
        flags = layer.flag_values()
        slots = [s for s in layer.positional if s not in layer.presets]
        for value in positional:
            word = value.raw if isinstance(value.raw, str) else None
            if word is not None and word in flags and flags[word] not in arguments:
                arguments[flags[word]] = value
                continue
            if not slots:
                shown = value.literal() if value.is_literal else template_text(value)
                raise SpecError(
                    f"unexpected value {shown!r} for {layer.name}",
                    value.location,
                    path=ctx.trail,
                    hint=f"{layer.name} is written `{usage_of(layer)}`",
                )
            slot = slots.pop(0)
            if slot == "window":
                self.window(value, arguments, windows, ctx, "kernel", layer)
            else:
                arguments[slot] = value

    def window(
        self,
        value: Value,
        arguments: dict[str, Value],
        windows: list[Window],
        ctx: Context,
        what: str,
        layer: LayerType | None = None,
    ) -> None:
        """`KxK[/S]` into kernel and stride: now when written out, per axis when its sizes are
        variables (`3x3/$stride`), or when evaluated when the whole window is one value."""
        if not value.is_literal:
            axes = window_axes(value)
            if axes is None:
                windows.append(Window(value))
            else:
                arguments.update(axes)
            return
        raw = value.raw
        window = (
            parse_window(str(raw))
            if isinstance(raw, str | int) and not isinstance(raw, bool)
            else None
        )
        if window is None:
            if layer is None:
                raise SpecError(
                    f"window {raw!r} is not KxK or KxK/S",
                    value.location,
                    path=ctx.trail,
                    field="window",
                )
            raise SpecError(
                f"expected a window like 3x3, 7x7/2 or 1x7, got {raw!r}",
                value.location,
                path=ctx.trail,
                field=what,
                hint=f"{layer.name} is written `{usage_of(layer)}`",
            )
        for key, v in window.items():
            arguments[key] = Value(list(v) if isinstance(v, tuple) else v, value.location)

    def block_call(
        self,
        name: str,
        positional: list[Value],
        keywords: dict[str, tuple[Value, Location | None]],
        location: Location | None,
        ctx: Context,
        inputs: tuple[str, ...] | None,
    ) -> BlockCall:
        params = self.arguments_of(name)
        names = [a.name for a in params]
        signature = f"{name} " + " ".join(
            a.name if a.default is None else f"{a.name}={template_text(a.default)}" for a in params
        )
        if len(positional) > len(params):
            raise SpecError(
                f"block '{name}' takes {len(params)} argument(s) ({', '.join(names)}) "
                f"but got {len(positional)}",
                positional[len(params)].location,
                path=ctx.trail,
                hint=f"write `{signature}`",
            )
        bound: dict[str, Value] = {}
        for argument, value in zip(params, positional, strict=False):
            bound[argument.name] = value
        for key, (value, key_location) in keywords.items():
            if key not in names:
                raise SpecError(
                    f"block '{name}' has no argument '{key}'",
                    key_location,
                    path=ctx.trail,
                    hint=did_you_mean(key, names) or f"write `{signature}`",
                )
            if key in bound:
                raise SpecError(f"argument '{key}' is given twice", key_location, path=ctx.trail)
            bound[key] = value
        missing = [a.name for a in params if a.name not in bound and a.default is None]
        if missing:
            raise SpecError(
                f"block '{name}' takes {len(params)} argument(s) ({', '.join(names)}) "
                f"but got {len(bound)}: missing {', '.join(missing)}",
                location,
                path=ctx.trail,
                hint=f"write `{signature}`",
            )
        self.single_input(inputs, name, location, ctx)
        if ctx.block is not None:
            self.calls.setdefault(ctx.block, []).append((name, location, ctx.trail))
        return BlockCall(name, tuple(bound.items()), location)

    # ---- blocks, defaults, the spec --------------------------------------------------------

    def arguments_of(self, name: str) -> tuple[Argument, ...]:
        """A block's arguments (defaults are YAML values, read without variables)."""
        if name not in self.block_args:
            raw = self.raw_blocks[name]
            args_raw = raw.get("args") or []
            locations = getattr(args_raw, "item_locs", [])
            found = []
            for index, entry in enumerate(args_raw):
                where = locations[index] if index < len(locations) else None
                if isinstance(entry, str):
                    found.append(Argument(entry, None, where))
                else:
                    ((key, default),) = entry.items()
                    value_location = (
                        entry.value_locs.get(key) if isinstance(entry, YamlMap) else where
                    )
                    found.append(Argument(key, Value(default, value_location), where))
            self.block_args[name] = tuple(found)
        return self.block_args[name]

    def check_variable_names(self, raw: Any, arguments: tuple[Argument, ...], where: str) -> None:
        """Variables (and a block's arguments beside them) must stay distinct as Python names
        in the generated code (`variable_identifier`)."""
        seen: dict[str, str] = {}
        named = [(str(k), raw.key_locs.get(k) if isinstance(raw, YamlMap) else None) for k in raw]
        named += [(a.name, a.location) for a in arguments]
        for name, location in named:
            mapped = variable_identifier(name)
            if mapped in seen and seen[mapped] != name:
                raise SpecError(
                    f"'{seen[mapped]}' and '{name}' both become the Python name '{mapped}' "
                    "in the generated code",
                    location,
                    path=where,
                    hint="rename one of them",
                )
            seen[mapped] = name

    def defaults(self, raw: Any, where: str, variables: frozenset[str]) -> Defaults:
        """Default parameters per layer type. An unknown layer type or parameter is reported
        and left out (nothing else depends on it), so the rows are still read."""
        if not isinstance(raw, Mapping):
            return Defaults()
        entries = []
        ctx = Context(variables, (), where)
        for layer, entry in raw.items():
            canonical = ALIASES.get(layer, layer)
            location = raw.key_locs.get(layer) if isinstance(raw, YamlMap) else None
            if canonical not in REGISTRY:
                self.errors.append(
                    SpecError(
                        f"defaults for unknown layer type '{layer}'",
                        location,
                        path=where,
                        hint=did_you_mean(layer, [*REGISTRY, *ALIASES]),
                    )
                )
                continue
            if canonical != layer:
                self.errors.append(
                    SpecError(
                        f"write defaults under the layer type '{canonical}'", location, path=where
                    )
                )
                continue
            fields = REGISTRY[canonical].params.model_fields
            values = []
            for key in entry:
                key_location = entry.key_locs.get(key) if isinstance(entry, YamlMap) else None
                if key not in fields:
                    self.errors.append(
                        SpecError(
                            f"{layer} has no parameter '{key}'",
                            key_location,
                            path=where,
                            hint=did_you_mean(key, fields)
                            or f"{layer} takes: " + ", ".join(fields),
                        )
                    )
                    continue
                value_location = entry.value_locs.get(key) if isinstance(entry, YamlMap) else None
                values.append((key, self.value(entry[key], value_location, ctx, key)))
            entries.append((layer, tuple(values)))
        return Defaults(tuple(entries))

    def block(
        self, name: str, spec_variables: frozenset[str], spec_defaults: Defaults
    ) -> BlockNode:
        raw = self.raw_blocks[name]
        definition = self.model.blocks[name]
        arguments = self.arguments_of(name)
        self.check_variable_names(self.data.get("vars") or YamlMap(), arguments, f"blocks.{name}")
        variables = spec_variables | {a.name for a in arguments}
        own_defaults = self.defaults(raw.get("defaults"), f"blocks.{name}.defaults", variables)
        kind, _ = definition.body()
        body_location = raw.value_locs.get(kind)
        ctx = Context(variables, (spec_defaults, own_defaults), name, block=name)
        body = self.sequence(raw[kind], body_location, ctx, Names(), kind)
        key_location = (self.data.get("blocks") or YamlMap()).key_locs.get(name)
        _, note = self.source_text(key_location)
        doc = definition.doc or note or ""
        return BlockNode(name, arguments, own_defaults, body, doc, key_location)

    def check_block_calls(self) -> None:
        """No block calls itself (directly or through others); nesting stays within limits."""

        def visit(name: str, stack: tuple[str, ...]) -> None:
            for callee, location, trail in self.calls.get(name, []):
                if callee in stack or callee == name:
                    cycle_start = (*stack, name)
                    at = cycle_start.index(callee)
                    cycle = " -> ".join([*cycle_start[at:], callee])
                    raise SpecError(
                        f"block '{callee}' uses itself: {cycle}",
                        location,
                        path=trail,
                        hint="blocks may nest but not recurse",
                    )
                if len(stack) + 2 > MAX_BLOCK_DEPTH:
                    raise SpecError(
                        f"blocks nest more than {MAX_BLOCK_DEPTH} deep", location, path=trail
                    )
                visit(callee, (*stack, name))

        for name in self.raw_blocks:
            visit(name, ())

    def parse(self) -> SpecTree:
        raw_vars = self.data.get("vars") or YamlMap()
        var_names = frozenset(str(k) for k in raw_vars)
        var_ctx = Context(var_names, (), "vars")
        variables = tuple(
            (
                name,
                self.attempt(
                    lambda name=name: self.vars_value(
                        raw_vars[name], raw_vars.value_locs.get(name), var_ctx, name
                    ),
                    Value(None, None),
                ),
            )
            for name in raw_vars
        )
        spec_defaults = self.attempt(
            lambda: self.defaults(self.data.get("defaults"), "defaults", var_names),
            Defaults(()),
        )
        self.spec_defaults = spec_defaults
        self.attempt(lambda: self.check_variable_names(raw_vars, (), "vars"), None)
        parsed_blocks = (
            self.attempt(lambda name=name: self.block(name, var_names, spec_defaults), None)
            for name in self.raw_blocks
        )
        blocks = tuple(block for block in parsed_blocks if block is not None)
        self.attempt(self.check_block_calls, None)
        ctx = Context(var_names, (spec_defaults,), "", top_level=True)
        layers = self.sequence(
            self.data["layers"], self.data.value_locs.get("layers"), ctx, Names()
        )
        input_location = self.data.value_locs.get("input")
        input_value = self.attempt(
            lambda: self.value(
                self.data["input"], input_location, Context(var_names, (), "input"), "input"
            ),
            Value(None, None),
        )
        if self.structural:
            raise_all(self.errors)
        blocks = self.with_free_variables(blocks, [name for name, _ in variables])
        return SpecTree(
            name=self.model.name,
            filename=self.filename,
            input=input_value,
            variables=variables,
            defaults=spec_defaults,
            blocks=blocks,
            layers=layers,
            dtype=self.model.dtype,
            param_dtype=self.model.param_dtype,
            location=self.data.loc,
            vars_location=self.data.key_locs.get("vars"),
        )

    def vars_value(self, raw: Any, location: Location | None, ctx: Context, name: str) -> Value:
        """A variable's definition; its references are checked when variables are resolved
        (cycles and undefined names are reported there, in definition order)."""
        if isinstance(raw, str) and "$" in raw:
            shift = self.quote_shift(location)
            template = self.template(raw, ctx.variables, location, shift, ctx, name, False)
            return Value(VarText(raw, shift, template), location)
        return self.value(raw, location, ctx, name)

    def with_free_variables(
        self, blocks: tuple[BlockNode, ...], order: list[str]
    ) -> tuple[BlockNode, ...]:
        """Each block's spec variables: its own references and its callees' (not shadowed)."""
        spec_defaults = referenced(Sequence("layers", (), None), self.spec_defaults)
        own = {b.name: referenced(b.body, b.defaults) | spec_defaults for b in blocks}
        arguments = {b.name: {a.name for a in b.arguments} for b in blocks}
        needs = {name: {v for v in own[name] if v in order} - arguments[name] for name in own}
        changed = True
        while changed:
            changed = False
            for name in needs:
                for callee, _, _ in self.calls.get(name, []):
                    extra = needs[callee] - arguments[name] - needs[name]
                    if extra:
                        needs[name] |= extra
                        changed = True
        return tuple(
            replace(b, free_variables=tuple(sorted(needs[b.name], key=order.index))) for b in blocks
        )


@dataclass(frozen=True)
class VarText:
    """A variable definition with references, kept as text for `expr.resolve_variables`."""

    text: str
    shift: int = 0
    template: Template | None = None


def referenced(body: Sequence, defaults: Defaults) -> set[str]:
    """Variable names a sequence (and defaults) read through templates, at any depth."""
    found: set[str] = set()

    def value(v: Value | None) -> None:
        if v is None:
            return
        if isinstance(v.raw, tuple):
            for item in v.raw:
                value(item)
        elif isinstance(v.raw, Template):
            for piece in v.raw.pieces:
                if isinstance(piece, Reference):
                    found.update(expression_names(piece))

    def sequence(s: Sequence) -> None:
        for row in s.rows:
            for v in (row.condition, row.repeat, row.aux):
                value(v)
            body = row.body
            if isinstance(body, Sequence):
                sequence(body)
            elif isinstance(body, LayerCall):
                value(body.type_value)
                for _, v in body.arguments:
                    value(v)
                for w in body.windows:
                    value(w.value)
            else:
                for _, v in body.arguments:
                    value(v)

    sequence(body)
    for _, entry in defaults.entries:
        for _, v in entry:
            value(v)
    found.discard("i")
    found.discard(ROW_INPUT)
    return found


def expression_names(reference: Reference) -> set[str]:
    import ast

    from .expr import _LITERAL_NAMES as LITERAL_NAMES

    called = {id(n.func) for n in ast.walk(reference.tree) if isinstance(n, ast.Call)}
    return {
        n.id
        for n in ast.walk(reference.tree)
        if isinstance(n, ast.Name) and id(n) not in called and n.id not in LITERAL_NAMES
    }


WINDOW_PART = r"(\d+|\x00\d+\x00)"
WINDOW_FORM = re.compile(
    rf"^{WINDOW_PART}(?:x{WINDOW_PART})?(?:/{WINDOW_PART}(?:x{WINDOW_PART})?)?$"
)


def window_axes(value: Value) -> dict[str, Value] | None:
    """A window written with variables in its sizes (`3x3/$stride`, `${k}x${k}`) as kernel and
    stride Values per axis, each size a number or one reference; None for other forms."""
    template = value.raw
    if not isinstance(template, Template):
        return None
    references = [p for p in template.pieces if isinstance(p, Reference)]
    masked = "".join(
        p if isinstance(p, str) else f"\x00{references.index(p)}\x00" for p in template.pieces
    )
    match = WINDOW_FORM.match(masked)
    if match is None or not ("x" in masked or "/" in masked):
        return None  # one value for the whole window (`$kernel` = "7x7/2"): read when built

    def size(part: str) -> Value:
        if part.isdigit():
            return Value(int(part), value.location)
        reference = references[int(part.strip("\x00"))]
        return Value(Template((reference,), False, template.shift), value.location)

    kh, kw, sh, sw = match.groups()
    axes = {"kernel": Value((size(kh), size(kw or kh)), value.location)}
    if sh is not None:
        axes["stride"] = Value((size(sh), size(sw or sh)), value.location)
    return axes


def template_text(value: Value) -> str:
    """A value as the user wrote it (for messages and signatures)."""
    raw = value.raw
    if isinstance(raw, Template):
        return "".join(
            p
            if isinstance(p, str)
            else (
                f"${p.expression}"
                if re.fullmatch(r"[A-Za-z_]\w*", p.expression)
                else f"${{{p.expression}}}"
            )
            for p in raw.pieces
        )
    if isinstance(raw, tuple):
        return "[" + ", ".join(template_text(v) for v in raw) + "]"
    return str(raw)


def auto_names(items: list[Any], prefix: str) -> list[str]:
    """Names for unnamed entries: their type (`conv`), numbered when it repeats (`conv_1`)."""
    kinds = []
    for i, item in enumerate(items):
        word = item.split()[0] if isinstance(item, str) and item.split() else ""
        word = word.replace("$", "").replace("{", "").replace("}", "")
        kinds.append(word if word and word.replace("_", "a").isalnum() else f"{prefix}{i}")
    counts: dict[str, int] = {}
    for kind in kinds:
        counts[kind] = counts.get(kind, 0) + 1
    seen: dict[str, int] = {}
    names = []
    for kind in kinds:
        if counts[kind] == 1:
            names.append(kind)
        else:
            names.append(f"{kind}_{seen.get(kind, 0)}")
            seen[kind] = seen.get(kind, 0) + 1
    return names


def written_name(raw: Any, auto: str) -> str:
    """The name a row item gives itself (its one key beside the row options), else `auto`."""
    if isinstance(raw, Mapping):
        keys = [key for key in raw if key not in ROW_OPTIONS]
        if len(keys) == 1 and isinstance(keys[0], str):
            return keys[0]
    return auto


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


def parse_spec(data: Any, filename: str, source: str) -> SpecTree:
    """Validate the structure of loaded spec data and parse it into a SpecTree."""
    if not isinstance(data, YamlMap):
        raise SpecError(
            f"a spec is a mapping with `name`, `input` and `layers`, not {type_name(data)}",
            getattr(data, "loc", None) or Location(filename, 1, 1),
        )
    layers = data.get("layers")
    if isinstance(layers, list) and len(layers) > MAX_ROWS:
        raise SpecError(
            f"the spec has {len(layers)} rows; the limit is {MAX_ROWS}",
            data.value_locs.get("layers"),
            hint="use repeat= or blocks for long stacks",
        )
    errors: list[SpecError] = []
    try:
        model = SpecModel.model_validate(dict(data))
    except ValidationError as error:
        errors = describe_validation_errors(error, data, "spec")
        model = readable_part(data, error)
        if model is None:
            raise_all(errors)
    errors += training_errors(data)
    parser = Parser(data, model, filename, source)
    try:
        tree = parser.parse()
    except SpecError as error:
        raise_all([*errors, error])
    errors += parser.errors
    if errors:
        raise RowsLeftOut(errors, tree)
    return tree


class RowsLeftOut(SpecErrors):
    """Problems in some top-level rows (or in keys beside the table) that leave the rest
    readable: `tree` is the spec without those rows, so expanding it can report the other
    rows' problems in the same run (`specfile.resolve_tree`)."""

    def __init__(self, errors: list[SpecError], tree: SpecTree) -> None:
        super().__init__([e for error in errors for e in getattr(error, "errors", [error])])
        self.tree = tree


def readable_part(data: YamlMap, error: ValidationError) -> SpecModel | None:
    """The spec without the top-level keys that are unknown, so its rows can still be read
    and their problems reported beside the misspelled key; None when more is wrong."""
    problems = error.errors()
    unknown = {
        p["loc"][0] for p in problems if p["type"] == "extra_forbidden" and len(p["loc"]) == 1
    }
    if len(unknown) != len(problems):
        return None
    try:
        return SpecModel.model_validate({k: v for k, v in data.items() if k not in unknown})
    except ValidationError:
        return None


def training_errors(data: YamlMap) -> list[SpecError]:
    """The `training:` section's problems as written (its optimizer options are checked
    against optax only when training starts, which keeps this JAX-free)."""
    section = data.get("training")
    if section is None:
        return []
    from .train.config import check_section

    return check_section(section)


__all__ = ["MAX_BLOCK_DEPTH", "MAX_ROWS", "SpecTree", "auto_names", "parse_spec"]
