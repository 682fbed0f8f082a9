"""Generate Flax NNX source from a spec: one class per block template, rows in table order.

The generated module is what `Compiled.build()` executes (like torch.fx's generated code) and
what `netspec compile --emit flax` writes, so the built model and the ejected file are the same
code. It translates the spec's templates, not one expansion of them: block arguments and spec
variables become constructor arguments, `${...}` expressions become Python expressions, `if`
rows become conditionals and `repeat` rows loops over `nnx.List`.

Attribute names follow row and branch names, so parameter paths read like the spec
(`inception_3a/b3x3/reduce/kernel`); names that are not Python identifiers get a leading `_`
(`3a` -> `_3a`), names that clash with Python or nnx.Module get a trailing `_`.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from .analyze import Report
from .errors import Location, SpecError
from .expr import check_expression, references, split_template
from .graph import Graph
from .layers import ALIASES, REGISTRY, LayerType, format_shape
from .load import YamlMap, YamlSeq, resolve_scalar
from .prelude import PRELUDE_NAMES, preamble
from .pysource import audit, comment, docstring, identifier, literal, string_literal
from .resolve import COMPOSITES, auto_names
from .rowsyntax import CompactRow, parse_compact
from .spec import ROW_OPTIONS

FUNCTIONS = {"ceil": "math.ceil", "floor": "math.floor"}
CONSTANTS = {
    "true": "True",
    "false": "False",
    "none": "None",
    "True": "True",
    "False": "False",
    "None": "None",
}
WINDOW = re.compile(r"^(?P<kh>[^x/]+)(?:x(?P<kw>[^x/]+))?(?:/(?P<sh>[^x/]+)(?:x(?P<sw>[^x/]+))?)?$")


def class_name(name: str) -> str:
    """`aux_classifier` -> `AuxClassifier`; names that start with a digit get `Net`."""
    text = "".join(part[:1].upper() + part[1:] for part in re.split(r"[^A-Za-z0-9]+", name) if part)
    return text if text and not text[0].isdigit() else "Net" + text


def state_path(node_name: str) -> tuple[str | int, ...]:
    """Where a node's variables live in the module's state (repeat indices are list indices)."""
    return tuple(int(p) if p.isdigit() else identifier(p) for p in node_name.split("/"))


class CodegenError(SpecError):
    """A spec construct the Flax source generator cannot express."""


@dataclass
class Value:
    """A value flowing between rows: its variable in __call__ and its shape in __init__."""

    var: str
    shape: str


@dataclass
class Scope:
    """Names visible while generating one function body pair (__init__ / __call__)."""

    variables: dict[str, str]
    defaults: tuple[Mapping[str, Any], ...]
    values: dict[str, Value] = field(default_factory=dict)
    parent: Scope | None = None
    prefix: str = ""
    """Prepended to local variable names of rows inside inline groups (`b3x3_reduce`)."""

    def lookup(self, name: str) -> Value | None:
        scope: Scope | None = self
        while scope is not None:
            if name in scope.values:
                return scope.values[name]
            scope = scope.parent
        return None


@dataclass
class Body:
    """The lines of one class under construction."""

    init: list[str] = field(default_factory=list)
    call: list[str] = field(default_factory=list)
    locals: set[str] = field(default_factory=set)

    def local(self, base: str) -> str:
        """A fresh local variable name derived from `base`."""
        name, n = identifier(base), 1
        while name in self.locals:
            n += 1
            name = f"{identifier(base)}_{n}"
        self.locals.add(name)
        return name


class Generator:
    """Walks a spec's located data and writes the Python source of its Flax module."""

    def __init__(
        self,
        data: YamlMap,
        graph: Graph,
        report: Report,
        source: str,
        dtype: str | None = None,
        param_dtype: str = "float32",
    ) -> None:
        self.dtype = f"jnp.{dtype}" if dtype else "None"
        self.param_dtype = f"jnp.{param_dtype}"
        self.data = data
        self.graph = graph
        self.report = report
        self.lines = source.splitlines()
        self.blocks: dict[str, YamlMap] = dict(data.get("blocks") or {})
        self.classes: list[str] = []
        self.class_names: list[str] = []
        self.block_classes = {name: self.unique_class(name) for name in self.blocks}
        self.spec_vars = list((data.get("vars") or {}).keys())
        self.block_globals = self.compute_block_globals()
        self.row_reports = {r.name: r for r in report.rows}

    # ---- names and text --------------------------------------------------------------------

    def unique_class(self, name: str, suffix: str = "Block") -> str:
        """A class name for block or network `name`, distinct from netspec's layer classes and
        from every class named before (`a_b` and `aB` both read `AB`)."""
        base = class_name(name)
        taken = PRELUDE_NAMES | {"Network"} | set(self.class_names)
        text = base + suffix if base in taken else base
        number = 1
        while text in taken:
            number += 1
            text = f"{base}{suffix}{number}"
        self.class_names.append(text)
        return text

    def comment_at(self, line: int | None) -> str:
        """The YAML comment written on a source line, if any."""
        if not line or line > len(self.lines):
            return ""
        text = self.lines[line - 1]
        match = re.search(r"\s#\s?(.*)$", text)
        if not match or text.lstrip().startswith("#"):
            return ""
        return match.group(1).strip()

    def source_line(self, line: int | None) -> str:
        if not line or line > len(self.lines):
            return ""
        text = self.lines[line - 1].strip()
        return text[2:] if text.startswith("- ") else text

    # ---- variables -------------------------------------------------------------------------

    def strings_in(self, value: Any) -> Iterator[str]:
        if isinstance(value, str):
            yield value
        elif isinstance(value, Mapping):
            for v in value.values():
                yield from self.strings_in(v)
        elif isinstance(value, list):
            for v in value:
                yield from self.strings_in(v)

    def referenced(self, value: Any) -> set[str]:
        names: set[str] = set()
        for text in self.strings_in(value):
            if "$" in text:
                names |= references(text)
        return names

    def called_blocks(self, value: Any) -> set[str]:
        found: set[str] = set()
        for text in self.strings_in(value):
            words = text.split()
            if words and words[0] in self.blocks:
                found.add(words[0])
        return found

    def compute_block_globals(self) -> dict[str, list[str]]:
        """The spec variables each block needs (its own references and its callees')."""
        needs: dict[str, set[str]] = {}
        for name, block in self.blocks.items():
            args = {arg_name(a) for a in block.get("args") or []}
            needs[name] = {v for v in self.referenced(block) if v in self.spec_vars} - args
        changed = True
        while changed:
            changed = False
            for name, block in self.blocks.items():
                args = {arg_name(a) for a in block.get("args") or []}
                for callee in self.called_blocks(block):
                    extra = needs.get(callee, set()) - args - needs[name]
                    if extra:
                        needs[name] |= extra
                        changed = True
        return {name: sorted(v, key=self.spec_vars.index) for name, v in needs.items()}

    def translate(self, raw: Any, scope: Scope) -> str:
        """Python source for a spec value: literals as they are, `$x`/`${...}` translated."""
        if isinstance(raw, list):
            return (
                literal(tuple(0 for _ in raw))
                if not raw
                else (
                    "("
                    + ", ".join(self.translate(v, scope) for v in raw)
                    + ("," if len(raw) == 1 else "")
                    + ")"
                )
            )
        if not isinstance(raw, str):
            return literal(raw)
        if "$" not in raw:
            if raw.startswith("["):
                from .load import load_yaml

                return literal(load_yaml(raw, "<codegen>"))
            return literal(resolve_scalar(raw))
        pieces = split_template(raw)
        references = [p for p in pieces if not isinstance(p, str)]
        if len(references) == 1 and not "".join(p for p in pieces if isinstance(p, str)).strip():
            return self.translate_expression(references[0].expression, scope)
        # Text with values inside: literal pieces as escaped string literals, each value
        # formatted as an f-string would (`format(value, "")`).
        parts = [
            string_literal(p)
            if isinstance(p, str)
            else f"format({self.translate_expression(p.expression, scope)}, '')"
            for p in pieces
        ]
        return "(" + " + ".join(parts) + ")"

    def translate_expression(self, text: str, scope: Scope) -> str:
        """An expression as Python source: only the node types, functions and names netspec's
        evaluator accepts (checked by `expr.check_expression`), variables renamed to the
        generated code's identifiers."""
        tree = check_expression(text, scope.variables)

        class Rename(ast.NodeTransformer):
            def visit_Name(self, node: ast.Name) -> ast.AST:
                if node.id in CONSTANTS:
                    return ast.Constant(
                        {"True": True, "False": False, "None": None}[CONSTANTS[node.id]]
                    )
                if node.id in scope.variables:
                    return ast.copy_location(ast.Name(scope.variables[node.id], node.ctx), node)
                return node

            def visit_Call(self, node: ast.Call) -> ast.AST:
                self.generic_visit(node)
                if isinstance(node.func, ast.Name) and node.func.id in FUNCTIONS:
                    module, attr = FUNCTIONS[node.func.id].split(".")
                    node.func = ast.Attribute(ast.Name(module, ast.Load()), attr, ast.Load())
                return node

        return ast.unparse(Rename().visit(tree))

    # ---- rows ------------------------------------------------------------------------------

    def split(self, item: Any, name: str) -> tuple[str, Any, dict[str, Any], int | None]:
        """(name, body, options, source line) of a sequence entry."""
        if isinstance(item, YamlMap):
            (key,) = [k for k in item if k not in ROW_OPTIONS]
            options = {k: item[k] for k in item if k in ROW_OPTIONS}
            line = item.key_locs[key].line if key in item.key_locs else None
            return key, item[key], options, line
        return name, item, {}, None

    def gather(self, body: Any, options: dict[str, Any]) -> tuple[CompactRow | None, dict]:
        options = dict(options)
        compact = None
        if isinstance(body, str):
            compact = parse_compact(body)
            for key in ROW_OPTIONS:
                if key in compact.keywords:
                    options[key] = compact.keywords.pop(key).text
            compact.expect = []
        elif isinstance(body, YamlMap):
            for key in ROW_OPTIONS:
                if key in body:
                    options[key] = body[key]
        return compact, options

    def sequence(
        self,
        items: list[Any],
        scope: Scope,
        out: Body,
        attr: str,
        source: Value,
        top_level: bool = False,
    ) -> Value:
        """Rows one after another under `attr` (e.g. `self` or `self.b3x3`)."""
        names = auto_names(items, "layer")
        scope.values.setdefault("input", source)  # `from=input`: this sequence's input
        chain = source
        for index, raw in enumerate(items):
            name, body, options, line = self.split(raw, names[index])
            try:
                value, is_aux = self.row(
                    name, body, options, line, scope, out, attr, chain, top_level
                )
            except SpecError as error:
                raise error.with_context(location=item_location(items, index)) from None
            scope.values[name] = value
            if not is_aux:
                chain = value
        return chain

    def row(
        self,
        name: str,
        body: Any,
        options: dict[str, Any],
        line: int | None,
        scope: Scope,
        out: Body,
        attr: str,
        chain: Value,
        top_level: bool,
    ) -> tuple[Value, bool]:
        compact, options = self.gather(body, options)
        target = f"{attr}.{identifier(name)}"
        var = out.local(scope.prefix + name)
        if top_level:
            self.row_comment(name, line, out)
        inputs = self.inputs(options.get("from"), scope, chain)
        is_aux = "aux" in options
        if is_aux and not top_level:
            raise CodegenError(f"row '{name}': auxiliary heads are generated only on table rows")
        condition = self.translate(options["if"], scope) if "if" in options else None
        init_start, call_start = len(out.init), len(out.call)
        if "repeat" in options:
            shape = self.repeat(
                name,
                body,
                compact,
                self.translate(options["repeat"], scope),
                scope,
                out,
                target,
                var,
                inputs,
            )
        else:
            shape = self.body(name, body, compact, scope, out, target, var, inputs)
        if condition is not None:
            self.conditional(out, init_start, call_start, condition, target, var, inputs)
            shape = f"({shape} if {target} is not None else {inputs[0].shape})"
        if is_aux:
            call = out.call[call_start:]
            out.call[call_start:] = [f"{var} = None", "if train:"] + ["    " + c for c in call]
        return Value(var, shape), is_aux

    def row_comment(self, name: str, line: int | None, out: Body) -> None:
        report = self.row_reports.get(name)
        text = self.source_line(line) if line else name
        text = re.sub(r"\s+#.*$", "", text)
        note = self.comment_at(line)
        shape = f"-> {format_shape(report.output_shape)}" if report else ""
        if "->" in text:
            shape = ""
        out.init.append(comment(f"{text}  {shape}".rstrip() + (f"  ({note})" if note else "")))

    def conditional(
        self,
        out: Body,
        init_start: int,
        call_start: int,
        condition: str,
        target: str,
        var: str,
        inputs: list[Value],
    ) -> None:
        init = out.init[init_start:]
        # nnx marks an attribute first set to None as static: assign None only when skipped.
        out.init[init_start:] = (
            [f"if {condition}:"]
            + ["    " + line for line in init]
            + ["else:", f"    {target} = None"]
        )
        call = out.call[call_start:]
        out.call[call_start:] = [f"{var} = {inputs[0].var}", f"if {target} is not None:"] + [
            "    " + line for line in call
        ]

    def inputs(self, raw: Any, scope: Scope, chain: Value) -> list[Value]:
        if raw is None:
            return [chain]
        names = raw if isinstance(raw, list) else str(raw).strip("[]").replace(",", " ").split()
        values = []
        for name in names:
            value = scope.lookup(str(name))
            if value is None:
                raise CodegenError(f"`from` names {name!r}, which generated code cannot reach")
            values.append(value)
        return values

    def body(
        self,
        name: str,
        body: Any,
        compact: CompactRow | None,
        scope: Scope,
        out: Body,
        target: str,
        var: str,
        inputs: list[Value],
    ) -> str:
        """Emit one row body (layer, block call or composite); returns its shape expression."""
        if compact is not None or (isinstance(body, YamlMap) and "type" in body):
            ctor = self.constructor(body, compact, scope, inputs)
            out.init.append(f"{target} = {ctor}")
            out.call.append(f"{var} = {target}({self.call_args(body, compact, inputs)}, train)")
            return f"{target}.out_shape"
        kind, items = self.composite(body)
        out.init.append(f"{target} = Group()")
        child = Scope(
            scope.variables, scope.defaults, parent=scope, prefix=f"{scope.prefix}{name}_"
        )
        if kind == "layers":
            value = self.sequence(items, child, out, target, inputs[0])
            out.call.append(f"{var} = {value.var}")
            return value.shape
        return self.branches(kind, items, child, out, target, inputs[0], var).shape

    def composite(self, body: Any) -> tuple[str, list[Any]]:
        if isinstance(body, list):
            return "layers", body
        if isinstance(body, YamlMap):
            for kind in COMPOSITES:
                if kind in body:
                    return kind, body[kind]
        raise CodegenError(f"cannot generate code for the row body {body!r}")

    def call_args(self, body: Any, compact: CompactRow | None, inputs: list[Value]) -> str:
        layer = self.layer_of(body, compact)
        if layer is not None and layer.inputs[0] > 1:
            return "[" + ", ".join(v.var for v in inputs) + "]"
        return inputs[0].var

    def layer_of(self, body: Any, compact: CompactRow | None) -> LayerType | None:
        word = compact.type.text if compact else body.get("type")
        word = ALIASES.get(str(word), str(word))
        return REGISTRY.get(word)

    def constructor(
        self, body: Any, compact: CompactRow | None, scope: Scope, inputs: list[Value]
    ) -> str:
        """`Conv(in_shape, filters=64, kernel=7, ..., **kw)` or `Inception(in_shape, 64, ...)`."""
        word = compact.type.text if compact else body.get("type")
        if "$" in str(word):
            return self.variable_type(str(word), compact, body, scope, inputs)
        canonical = ALIASES.get(str(word), str(word))
        in_shape = (
            "[" + ", ".join(v.shape for v in inputs) + "]"
            if canonical in REGISTRY and REGISTRY[canonical].inputs[0] > 1
            else inputs[0].shape
        )
        if canonical in REGISTRY:
            layer = REGISTRY[canonical]
            args = self.layer_arguments(layer, compact, body, scope)
            parts = [
                in_shape,
                *(f"{k}={v}" if k != "**" else f"**{v}" for k, v in args.items()),
                "**kw",
            ]
            return f"{layer.flax_class}(" + ", ".join(parts) + ")"
        return self.block_call(str(word), compact, body, scope, in_shape)

    def variable_type(
        self, word: str, compact: CompactRow | None, body: Any, scope: Scope, inputs: list[Value]
    ) -> str:
        """A type chosen by a variable (`${pool}pool`): a lookup among the layer types the
        pattern can name; they must take the same arguments (e.g. maxpool and avgpool)."""
        pattern = re.sub(r"\\\$(\\\{[^}]*\\\}|[A-Za-z_]\\w*)", ".+", re.escape(word))
        candidates = [
            layer
            for name, layer in REGISTRY.items()
            if re.fullmatch(pattern, name) and not layer.presets and layer.positional
        ]
        signatures = {(c.positional, tuple(c.params.model_fields)) for c in candidates}
        if not candidates or len(signatures) != 1:
            raise CodegenError(f"the layer type {word!r} chosen by a variable cannot be generated")
        args = self.layer_arguments(candidates[0], compact, body, scope)
        parts = [
            inputs[0].shape,
            *(f"{k}={v}" if k != "**" else f"**{v}" for k, v in args.items()),
            "**kw",
        ]
        lookup = (
            "{" + ", ".join(f"{string_literal(c.name)}: {c.flax_class}" for c in candidates) + "}"
        )
        return f"{lookup}[{self.translate(word, scope)}](" + ", ".join(parts) + ")"

    def layer_arguments(
        self, layer: LayerType, compact: CompactRow | None, body: Any, scope: Scope
    ) -> dict[str, str]:
        values: dict[str, str] = {}
        for defaults in scope.defaults:
            entry = defaults.get(layer.name)
            if isinstance(entry, Mapping):
                for key, raw in entry.items():
                    values[key] = self.translate(raw, scope)
        written: dict[str, str] = {}
        if compact is not None:
            flags = layer.flag_values()
            slots = [s for s in layer.positional if s not in layer.presets]
            for token in compact.positional:
                flag = flags.get(token.text) if "$" not in token.text else None
                if flag is not None and flag not in written:
                    written[flag] = literal(token.text)
                    continue
                slot = slots.pop(0)
                if slot == "window":
                    written.update(self.window(token.text, scope))
                else:
                    written[slot] = self.translate(token.text, scope)
            for key, token in compact.keywords.items():
                if key == "window":
                    written.update(self.window(token.text, scope))
                else:
                    written[key] = self.translate(token.text, scope)
        else:
            for key in body:
                if key not in ("type", *ROW_OPTIONS):
                    written[key] = self.translate(body[key], scope)
        if "**" in written:  # a window parsed at build time overrides kernel/stride defaults
            values.pop("kernel", None)
            values.pop("stride", None)
        values.update(written)
        values.update({k: literal(v) for k, v in layer.presets.items()})
        order = [*layer.params.model_fields, "**"]
        return {k: values[k] for k in sorted(values, key=order.index)}

    def window(self, text: str, scope: Scope) -> dict[str, str]:
        """`3x3/$stride` -> kernel=3, stride=stride; a bare `$kernel` (the window text comes in
        a block argument) -> `**window(kernel)`, parsed when the module is built."""
        match = WINDOW.match(text)
        if re.fullmatch(r"\$(\{[^}]*\}|[A-Za-z_]\w*)", text.strip()):
            return {"**": f"window({self.translate(text, scope)})"}
        if not match:
            return {"kernel": self.translate(text, scope)}
        parts = {k: v for k, v in match.groupdict().items() if v is not None}

        def axis_pair(a: str, b: str | None) -> str:
            first = self.translate(a, scope)
            second = self.translate(b, scope) if b is not None else first
            return first if first == second else f"({first}, {second})"

        result = {"kernel": axis_pair(parts["kh"], parts.get("kw"))}
        if "sh" in parts:
            result["stride"] = axis_pair(parts["sh"], parts.get("sw"))
        return result

    def block_call(
        self, name: str, compact: CompactRow | None, body: Any, scope: Scope, in_shape: str
    ) -> str:
        arguments: list[str] = []
        if compact is not None:
            arguments += [self.translate(t.text, scope) for t in compact.positional]
            arguments += [
                f"{identifier(k)}={self.translate(t.text, scope)}"
                for k, t in compact.keywords.items()
            ]
        else:
            arguments += [
                f"{identifier(k)}={self.translate(body[k], scope)}"
                for k in body
                if k not in ("type", *ROW_OPTIONS)
            ]
        arguments += [f"{identifier(v)}={scope.variables[v]}" for v in self.block_globals[name]]
        return f"{self.block_classes[name]}(" + ", ".join([in_shape, *arguments, "**kw"]) + ")"

    def repeat(
        self,
        name: str,
        body: Any,
        compact: CompactRow | None,
        count: str,
        scope: Scope,
        out: Body,
        target: str,
        var: str,
        inputs: list[Value],
    ) -> str:
        """`repeat=N`: N copies chained, held in an nnx.List; `i` is the repetition index."""
        inner = Scope({**scope.variables, "i": "i"}, scope.defaults, parent=scope)
        if compact is not None or (isinstance(body, YamlMap) and "type" in body):
            ctor = self.constructor(body, compact, inner, [Value("", "shape")])
        else:
            ctor = (
                self.composite_class(name, body, inner)
                + "(shape, "
                + ", ".join(f"{v}={v}" for v in self.free_names(body, inner))
                + ", **kw)"
            )
            ctor = ctor.replace("(shape, , **kw)", "(shape, **kw)")
        items = out.local(f"{name}_items")
        out.init += [
            f"{items} = []",
            f"shape = {inputs[0].shape}",
            f"for i in range({count}):",
            f"    {items}.append({ctor})",
            f"    shape = {items}[-1].out_shape",
            f"{target} = nnx.List({items})",
        ]
        out.call += [
            f"{var} = {inputs[0].var}",
            f"for item in {target}:",
            f"    {var} = item({var}, train)",
        ]
        return f"{target}[-1].out_shape"

    def free_names(self, body: Any, scope: Scope) -> list[str]:
        used = self.referenced(body)
        return [scope.variables[v] for v in scope.variables if v in used]

    def composite_class(self, name: str, body: Any, scope: Scope) -> str:
        """A repeated composite row becomes a class of its own (its free variables as args)."""
        cls = self.unique_class(f"{name}_row")
        params = self.free_names(body, scope)
        variables = {k: v for k, v in scope.variables.items() if v in params}
        inner = Scope(variables, scope.defaults)
        out = Body(locals={"x"})
        source = Value("x", "in_shape")
        kind, items = self.composite(body)
        if kind == "layers":
            result = self.sequence(items, inner, out, "self", source)
        else:  # the branches are the class's own attributes, as in a block class
            result = self.branches(kind, items, inner, out, "self", source, out.local(kind))
        self.emit_class(cls, f"The repeated row `{name}`.", params, [], out, result)
        return cls

    # ---- classes ---------------------------------------------------------------------------

    def emit_class(
        self,
        cls: str,
        doc: str,
        params: list[str],
        keyword_params: list[str],
        out: Body,
        result: Value,
    ) -> None:
        signature = ", ".join(["self", "in_shape", *params])
        keywords = ", ".join(
            [*keyword_params, "dtype=None", "param_dtype=jnp.float32", "rngs=None"]
        )
        lines = [
            f"class {cls}(nnx.Module):",
            "    " + docstring(doc, indent="    "),
            "",
            f"    def __init__({signature}, *, {keywords}):",
            "        kw = dict(dtype=dtype, param_dtype=param_dtype, rngs=rngs)",
            *("        " + line for line in out.init),
            f"        self.out_shape = {result.shape}",
            "",
            "    def __call__(self, x, train=False):",
            *("        " + line for line in out.call),
            f"        return {result.var}",
        ]
        self.classes.append("\n".join(lines))

    def block_class(self, name: str) -> None:
        block = self.blocks[name]
        args = list(block.get("args") or [])
        params = []
        variables: dict[str, str] = {}
        for entry in args:
            key = arg_name(entry)
            variables[key] = identifier(key)
            if isinstance(entry, Mapping):
                params.append(f"{identifier(key)}={literal(next(iter(entry.values())))}")
            else:
                params.append(identifier(key))
        globals_ = self.block_globals[name]
        for var in globals_:
            variables[var] = identifier(var)
        scope = Scope(variables, (self.data.get("defaults") or {}, block.get("defaults") or {}))
        out = Body(locals={"x", *variables.values()})
        kind = next(k for k in COMPOSITES if k in block)
        source = Value("x", "in_shape")
        if kind == "layers":
            result = self.sequence(block[kind], scope, out, "self", source)
        else:
            result = self.branches(kind, block[kind], scope, out, "self", source, out.local(kind))
        line = self.data["blocks"].key_locs.get(name)
        doc = block.get("doc") or self.comment_at(line.line if line else None) or ""
        doc = f"Block `{name}`" + (f": {doc}" if doc else ".")
        self.emit_class(
            self.block_classes[name], doc, params, [identifier(v) for v in globals_], out, result
        )

    def branches(
        self,
        kind: str,
        items: list[Any],
        scope: Scope,
        out: Body,
        attr: str,
        source: Value,
        var: str,
    ) -> Value:
        """Parallel branches under `attr`, each reading `source`, merged by `concat` / `add`."""
        names = auto_names([None] * len(items), "b")
        values = []
        for index, raw in enumerate(items):
            branch, body, options, _ = self.split(raw, names[index])
            if isinstance(raw, list | YamlSeq):
                body = raw
            try:
                value, _ = self.row(branch, body, options, None, scope, out, attr, source, False)
            except SpecError as error:
                raise error.with_context(location=item_location(items, index)) from None
            scope.values[branch] = value
            values.append(value)
        if kind == "concat":
            joined = ", ".join(v.var for v in values)
            out.call.append(f"{var} = jnp.concatenate([{joined}], axis=-1)")
            return Value(var, "concat_shape(" + ", ".join(v.shape for v in values) + ")")
        out.call.append(f"{var} = " + " + ".join(v.var for v in values))
        return Value(var, values[0].shape)

    def network_class(self) -> str:
        name = self.graph.name
        cls = self.unique_class(name, suffix="Net")
        variables = {v: identifier(v) for v in self.spec_vars}
        raw_vars = self.data.get("vars") or {}
        literal_vars = [v for v in self.spec_vars if not self.referenced(raw_vars[v])]
        derived = [v for v in self.spec_vars if v not in literal_vars]
        scope = Scope(variables, (self.data.get("defaults") or {},))
        out = Body(locals={"x", *variables.values()})
        for var in derived:
            out.init.append(f"{identifier(var)} = {self.translate(raw_vars[var], scope)}")
        h, w, c = self.graph.input_shape
        out.init.append(f"self.in_shape = ({h}, {w}, {c})")
        source = Value("x", "self.in_shape")
        result = self.sequence(self.data["layers"], scope, out, "self", source, top_level=True)
        result_var = result.var
        last_row = next((r for r in reversed(self.graph.rows) if not r.train_only), None)
        self.output_activation = None
        if last_row is not None and last_row.kind == "softmax":
            # The table's final softmax is left to predict(): __call__ returns logits.
            index = max(
                i
                for i, line in enumerate(out.call)
                if line.startswith(f"{scope.values[last_row.name].var} =")
            )
            out.call[index] = comment(out.call[index] + "  (softmax: see output_activation)")
            result_var = self.previous_var(last_row.name, scope)
            self.output_activation = "softmax"
        heads = [(h.row, h.weight) for h in self.graph.heads]
        oh, ow, oc = self.report.output_shape
        out_dims = f"{oc}" if (oh, ow) == (1, 1) else f"{oh}, {ow}, {oc}"
        squeeze = "[:, 0, 0, :]" if (oh, ow) == (1, 1) else ""
        out.call.append(f"logits = {result_var}{squeeze}")
        if heads:
            parts = ", ".join(
                f"{string_literal(row)}: {scope.values[row].var}{squeeze}" for row, _ in heads
            )
            out.call += ["if train:", f'    return {{"main": logits, {parts}}}']
        out.call.append("return logits")
        params = [
            f"{identifier(v)}={literal(self.graph.variables.get(v, raw_vars[v]))}"
            for v in literal_vars
        ]
        weights = ", ".join(
            f"{string_literal(row)}: {literal(float(weight))}"
            for row, weight in [("main", 1.0), *heads]
        )
        header = [
            f"class {cls}(nnx.Module):",
            "    "
            + docstring(
                f"{self.graph.name}, generated by netspec from {self.graph.source}.\n\n"
                f"Input NHWC (batch, {h}, {w}, {c}); output logits (batch, {out_dims})."
                + (
                    " With train=True, a dict of every head's logits (`loss_weights` weighs them)."
                    if heads
                    else ""
                )
                + "\n",
                indent="    ",
            ),
            "",
            f"    loss_weights = {{{weights}}}",
            f"    output_activation = {self.output_activation!r}",
            "",
            "    def __init__("
            + ", ".join(["self", *params])
            + ", "
            + f"*, dtype={self.dtype}, param_dtype={self.param_dtype}, rngs: nnx.Rngs):",
            "        kw = dict(dtype=dtype, param_dtype=param_dtype, rngs=rngs)",
            *("        " + line for line in out.init),
            "",
            "    def __call__(self, x, *, train: bool = False):",
            *("        " + line for line in out.call),
        ]
        self.network = cls
        return "\n".join(header)

    def previous_var(self, row: str, scope: Scope) -> str:
        names = [r.name for r in self.graph.rows if not r.train_only]
        index = names.index(row)
        return scope.values[names[index - 1]].var if index else "x"

    def generate(self) -> str:
        for name in self.blocks:
            self.block_class(name)
        network = self.network_class()
        return "\n\n\n".join([*self.classes, network]) + "\n"


def item_location(items: Any, index: int) -> Location | None:
    """Where entry `index` of a sequence read from YAML was written, if known."""
    locations = getattr(items, "item_locs", [])
    return locations[index] if index < len(locations) else None


def arg_name(entry: Any) -> str:
    return entry if isinstance(entry, str) else next(iter(entry))


@dataclass(frozen=True)
class GeneratedSource:
    """The generated module: its text and the name of its network class."""

    text: str
    network: str
    output_activation: str | None


def generate(
    data: YamlMap,
    graph: Graph,
    report: Report,
    source: str,
    standalone: bool = False,
    dtype: str | None = None,
    param_dtype: str = "float32",
) -> GeneratedSource:
    """Flax source for a spec. `standalone` inlines netspec's layers (for ejected files);
    otherwise the source imports them from netspec.flax_layers. `dtype` / `param_dtype` become
    the network constructor's defaults."""
    generator = Generator(data, graph, report, source, dtype, param_dtype)
    body = generator.generate()
    audit(body, PRELUDE_NAMES)
    return GeneratedSource(
        preamble(graph, standalone) + body, generator.network, generator.output_activation
    )
