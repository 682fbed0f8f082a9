"""Generate Flax NNX source from a parsed spec: one class per block template, rows in order.

The generated module is what `Compiled.build()` executes (like torch.fx's generated code) and
what `netspec compile --emit flax` writes, so the built model and the ejected file are the same
code. The emitter walks the same `SpecTree` the expander reads (never the YAML): block
arguments and spec variables become constructor arguments (the spec's variables with the
values the analysis used as defaults), `${...}` expressions their checked Python form, `if`
rows conditionals and `repeat` rows loops over `nnx.List`.

Attribute names follow row and branch names (`pysource.identifier`), so parameter paths read
like the spec (`inception_3a/b3x3/reduce/kernel`).
"""

from __future__ import annotations

import ast
import keyword
import re
from dataclasses import dataclass, field, replace

from .analyze import Report
from .errors import SpecError
from .expr import INPUT_AXES, ROW_INPUT
from .graph import Graph
from .layers import REGISTRY, LayerType, format_shape
from .parse import VarText
from .prelude import LOCAL_NAMES, PRELUDE_NAMES, preamble, variable_identifier
from .pysource import audit, comment, docstring, identifier, literal, string_literal
from .tree import (
    BlockCall,
    BlockNode,
    Defaults,
    LayerCall,
    RowNode,
    Sequence,
    SpecTree,
    Template,
)
from .tree import Value as SpecValue

FUNCTIONS = {"ceil": "math.ceil", "floor": "math.floor"}
CONSTANTS = {"true": True, "false": False, "none": None, "True": True, "False": False, "None": None}


def class_name(name: str) -> str:
    """`aux_classifier` -> `AuxClassifier`; names that start with a digit get `Net`."""
    text = "".join(part[:1].upper() + part[1:] for part in re.split(r"[^A-Za-z0-9]+", name) if part)
    return text if text and not text[0].isdigit() else "Net" + text


def state_path(node_name: str) -> tuple[str | int, ...]:
    """Where a node's variables live in the module's state (repeat indices are list indices;
    row names are never all digits, so a digit part is always an index)."""
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
    defaults: tuple[Defaults, ...]
    values: dict[str, Value] = field(default_factory=dict)
    parent: Scope | None = None
    prefix: str = ""
    """Prepended to local variable names of rows inside inline groups (`b3x3_reduce`)."""
    row_input: str | None = None
    """The shape expression of the row being written's input: what `in.c` reads."""

    def lookup(self, name: str) -> Value:
        scope: Scope | None = self
        while scope is not None:
            if name in scope.values:
                return scope.values[name]
            scope = scope.parent
        raise KeyError(name)  # the parser checked every `from` name


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
    """Walks a SpecTree and writes the Python source of its Flax module."""

    def __init__(
        self,
        tree: SpecTree,
        graph: Graph,
        report: Report,
        dtype: str | None = None,
        param_dtype: str = "float32",
    ) -> None:
        self.dtype = f"jnp.{dtype}" if dtype else "None"
        self.param_dtype = f"jnp.{param_dtype}"
        self.tree = tree
        self.graph = graph
        self.report = report
        self.classes: list[str] = []
        self.class_names: list[str] = []
        self.block_classes = {b.name: self.unique_class(b.name) for b in tree.blocks}
        self.blocks = {b.name: b for b in tree.blocks}
        self.row_reports = {r.name: r for r in report.rows}
        self.translations: dict[tuple[str, tuple[tuple[str, str], ...]], str] = {}

    # ---- names and values ------------------------------------------------------------------

    def unique_class(self, name: str, suffix: str = "Block") -> str:
        """A class name for block or network `name`, distinct from netspec's layer classes and
        from every class named before (`a_b` and `aB` both read `AB`)."""
        base = class_name(name)
        taken = PRELUDE_NAMES | {"Network"} | set(self.class_names)
        text = base + suffix if base in taken or keyword.iskeyword(base) else base
        number = 1
        while text in taken:
            number += 1
            text = f"{base}{suffix}{number}"
        self.class_names.append(text)
        return text

    def translate(self, value: SpecValue, scope: Scope) -> str:
        """Python source for a spec value: literals as literals, templates as their checked
        expressions; text with values inside is joined by `spec_text` (and read back as a
        scalar by `read_scalar` where the expander does so), as the expander joins it."""
        raw = value.raw
        if isinstance(raw, tuple):
            items = [self.translate(v, scope) for v in raw]
            return "(" + ", ".join(items) + ("," if len(items) == 1 else "") + ")"
        if isinstance(raw, VarText):
            raw = raw.template
        if not isinstance(raw, Template):
            return literal(tuple(raw) if isinstance(raw, list) else raw)
        single = raw.single
        if single is not None:
            return self.translate_expression(single.tree, scope)
        parts = [
            string_literal(p) if isinstance(p, str) else self.translate_expression(p.tree, scope)
            for p in raw.pieces
        ]
        text = "spec_text(" + ", ".join(parts) + ")"
        return f"read_scalar({text})" if raw.reread else text

    def translate_expression(self, tree: ast.expr, scope: Scope) -> str:
        """A checked expression (only the evaluator's node types, functions and names) as
        Python source, variables renamed to the generated code's identifiers."""

        class Rename(ast.NodeTransformer):
            def visit_Attribute(self, node: ast.Attribute) -> ast.AST:
                # the parser allows only in.h, in.w and in.c, and only within rows
                assert isinstance(node.value, ast.Name) and node.value.id == ROW_INPUT
                assert scope.row_input is not None
                shape = ast.parse(scope.row_input, mode="eval").body
                index = ast.Constant(INPUT_AXES[node.attr])
                return ast.copy_location(ast.Subscript(shape, index, ast.Load()), node)

            def visit_Name(self, node: ast.Name) -> ast.AST:
                if node.id in CONSTANTS:
                    return ast.Constant(CONSTANTS[node.id])
                if node.id in scope.variables:
                    return ast.copy_location(ast.Name(scope.variables[node.id], node.ctx), node)
                return node

            def visit_Call(self, node: ast.Call) -> ast.AST:
                self.generic_visit(node)
                if isinstance(node.func, ast.Name) and node.func.id in FUNCTIONS:
                    module, attr = FUNCTIONS[node.func.id].split(".")
                    node.func = ast.Attribute(ast.Name(module, ast.Load()), attr, ast.Load())
                return node

        key = (ast.dump(tree), tuple(sorted(scope.variables.items())), scope.row_input)
        if key not in self.translations:
            copy = ast.parse(ast.unparse(tree), mode="eval").body
            self.translations[key] = ast.unparse(Rename().visit(copy))
        return self.translations[key]

    # ---- rows ------------------------------------------------------------------------------

    def sequence(
        self,
        sequence: Sequence,
        scope: Scope,
        out: Body,
        attr: str,
        source: Value,
        top_level: bool = False,
    ) -> Value:
        """Rows one after another under `attr` (e.g. `self` or `self.b3x3`)."""
        scope.values.setdefault("input", source)  # `from=input`: this sequence's input
        chain = source
        for row in sequence.rows:
            value, is_aux = self.row(row, scope, out, attr, chain, top_level)
            scope.values[row.name] = value
            if not is_aux:
                chain = value
        return chain

    def row(
        self, row: RowNode, scope: Scope, out: Body, attr: str, chain: Value, top_level: bool
    ) -> tuple[Value, bool]:
        target = f"{attr}.{identifier(row.name)}"
        var = out.local(scope.prefix + row.name)
        if top_level:
            self.row_comment(row, out)
        inputs = [scope.lookup(n) for n in row.inputs] if row.inputs else [chain]
        scope = replace(scope, row_input=inputs[0].shape)
        is_aux = row.aux is not None
        init_start, call_start = len(out.init), len(out.call)
        if row.repeat is not None:
            count = self.translate(row.repeat, scope)
            shape = self.repeat(row, count, scope, out, target, var, inputs)
        else:
            shape = self.body(row, scope, out, target, var, inputs)
        if row.condition is not None:
            condition = self.translate(row.condition, scope)
            self.conditional(out, init_start, call_start, condition, target, var, chain)
            shape = f"({shape} if {target} is not None else {chain.shape})"
        if is_aux:
            call = out.call[call_start:]
            out.call[call_start:] = [f"{var} = None", "if train:"] + ["    " + c for c in call]
        return Value(var, shape), is_aux

    def row_comment(self, row: RowNode, out: Body) -> None:
        report = self.row_reports.get(row.name)
        text = row.source_text or row.name
        shape = f"-> {format_shape(report.output_shape)}" if report else ""
        if "->" in text:
            shape = ""
        note = f"  ({row.comment})" if row.comment else ""
        out.init.append(comment(f"{text}  {shape}".rstrip() + note))

    def conditional(
        self,
        out: Body,
        init_start: int,
        call_start: int,
        condition: str,
        target: str,
        var: str,
        chain: Value,
    ) -> None:
        """`if=`: built only when the condition holds; when it does not, the row passes its
        input (the previous row's output) through, as the analysis does."""
        init = out.init[init_start:]
        # nnx marks an attribute first set to None as static: assign None only when skipped.
        out.init[init_start:] = (
            [f"if {condition}:"]
            + ["    " + line for line in init]
            + ["else:", f"    {target} = None"]
        )
        call = out.call[call_start:]
        out.call[call_start:] = [f"{var} = {chain.var}", f"if {target} is not None:"] + [
            "    " + line for line in call
        ]

    def body(
        self, row: RowNode, scope: Scope, out: Body, target: str, var: str, inputs: list[Value]
    ) -> str:
        """Emit one row body (layer, block call or composite); returns its shape expression."""
        body = row.body
        if isinstance(body, LayerCall | BlockCall):
            ctor = self.constructor(body, scope, inputs)
            out.init.append(f"{target} = {ctor}")
            out.call.append(f"{var} = {target}({self.call_args(body, inputs)}, train)")
            return f"{target}.out_shape"
        out.init.append(f"{target} = Group()")
        child = Scope(
            scope.variables, scope.defaults, parent=scope, prefix=f"{scope.prefix}{row.name}_"
        )
        if body.kind == "layers":
            value = self.sequence(body, child, out, target, inputs[0])
            out.call.append(f"{var} = {value.var}")
            return value.shape
        return self.branches(body, child, out, target, inputs[0], var).shape

    def call_args(self, body: LayerCall | BlockCall, inputs: list[Value]) -> str:
        if isinstance(body, LayerCall) and REGISTRY[body.candidates[0]].inputs[0] > 1:
            return "[" + ", ".join(v.var for v in inputs) + "]"
        return inputs[0].var

    def constructor(self, body: LayerCall | BlockCall, scope: Scope, inputs: list[Value]) -> str:
        """`Conv(in_shape, filters=64, kernel=(7, 7), ..., **kw)` or `Inception(in_shape, ...)`."""
        if isinstance(body, BlockCall):
            return self.block_call(body, scope, inputs[0].shape)
        layer = REGISTRY[body.candidates[0]]
        in_shape = (
            "[" + ", ".join(v.shape for v in inputs) + "]"
            if layer.inputs[0] > 1
            else inputs[0].shape
        )
        arguments = self.layer_arguments(layer, body, scope)
        if body.type:
            cls = layer.flax_class
        else:  # a type chosen by a variable: its value picks among the types it can name
            lookup = ", ".join(
                f"{string_literal(c)}: {REGISTRY[c].flax_class}" for c in body.candidates
            )
            cls = f"{{{lookup}}}[{self.translate(body.type_value, scope)}]"
        return f"{cls}(" + ", ".join([in_shape, *arguments, "**kw"]) + ")"

    def layer_arguments(self, layer: LayerType, call: LayerCall, scope: Scope) -> list[str]:
        """Keyword arguments in the expander's order of precedence: defaults, then windows
        written with variables (parsed when built), then the row's own values and presets."""

        def defaults_of(name: str) -> dict[str, str]:
            return {
                key: self.translate(value, scope)
                for defaults in scope.defaults
                for key, value in defaults.for_layer(name)
            }

        defaults = defaults_of(layer.name)
        written = {key: self.translate(value, scope) for key, value in call.arguments}
        presets = {key: literal(value) for key, value in layer.presets.items()}
        order = list(layer.params.model_fields)
        per_type = {name: defaults_of(name) for name in call.candidates}
        if not call.type and any(d != defaults for d in per_type.values()):
            # A type chosen by a variable whose types have different defaults: the value
            # picks its type's defaults, as the expander does.
            table = ", ".join(
                f"{string_literal(name)}: {{"
                + ", ".join(f"{string_literal(k)}: {v}" for k, v in d.items())
                + "}"
                for name, d in per_type.items()
            )
            entries = [f"**{{{table}}}[{self.translate(call.type_value, scope)}]"]
            entries += [f"**window({self.translate(w.value, scope)})" for w in call.windows]
            entries += [f"{string_literal(k)}: {v}" for k, v in {**written, **presets}.items()]
            return ["**{" + ", ".join(entries) + "}"]
        if not call.windows:
            merged = {**defaults, **written, **presets}
            return [f"{identifier(k)}={merged[k]}" for k in sorted(merged, key=order.index)]
        entries = [f"{string_literal(k)}: {v}" for k, v in defaults.items()]
        entries += [f"**window({self.translate(w.value, scope)})" for w in call.windows]
        entries += [f"{string_literal(k)}: {v}" for k, v in {**written, **presets}.items()]
        return ["**{" + ", ".join(entries) + "}"]

    def block_call(self, call: BlockCall, scope: Scope, in_shape: str) -> str:
        block = self.blocks[call.block]
        arguments = [
            f"{variable_identifier(k)}={self.translate(v, scope)}" for k, v in call.arguments
        ]
        arguments += [
            f"{variable_identifier(v)}={scope.variables[v]}" for v in block.free_variables
        ]
        return (
            f"{self.block_classes[call.block]}(" + ", ".join([in_shape, *arguments, "**kw"]) + ")"
        )

    def repeat(
        self,
        row: RowNode,
        count: str,
        scope: Scope,
        out: Body,
        target: str,
        var: str,
        inputs: list[Value],
    ) -> str:
        """`repeat=N`: N copies chained, held in an nnx.List; `i` is the repetition index."""
        inner = Scope(
            {**scope.variables, "i": "i"}, scope.defaults, parent=scope, row_input="shape"
        )
        body = row.body
        if isinstance(body, LayerCall | BlockCall):
            ctor = self.constructor(body, inner, [Value("", "shape")])
        else:
            free = self.free_names(body, inner)
            ctor = (
                self.composite_class(row.name, body, inner, free)
                + "("
                + ", ".join(["shape", *(f"{v}={v}" for v in free), "**kw"])
                + ")"
            )
        items = out.local(f"{row.name}_items")
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

    def free_names(self, body: Sequence, scope: Scope) -> list[str]:
        """The generated names of the variables a composite row reads (with its defaults')."""
        from .parse import referenced

        used = referenced(body, Defaults()) | {"i"}
        for defaults in scope.defaults:
            used |= referenced(Sequence("layers", (), None), defaults)
        for callee in called_blocks(body):
            used |= set(self.blocks[callee].free_variables)
        return [scope.variables[v] for v in scope.variables if v in used]

    def composite_class(self, name: str, body: Sequence, scope: Scope, params: list[str]) -> str:
        """A repeated composite row becomes a class of its own (its free variables as args)."""
        cls = self.unique_class(f"{name}_row")
        variables = {k: v for k, v in scope.variables.items() if v in params}
        inner = Scope(variables, scope.defaults)
        out = Body(locals={*LOCAL_NAMES, *params})
        source = Value("x", "in_shape")
        if body.kind == "layers":
            result = self.sequence(body, inner, out, "self", source)
        else:  # the branches are the class's own attributes, as in a block class
            result = self.branches(body, inner, out, "self", source, out.local(body.kind))
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

    def block_class(self, block: BlockNode) -> None:
        params = []
        variables: dict[str, str] = {}
        for argument in block.arguments:
            name = variable_identifier(argument.name)
            variables[argument.name] = name
            if argument.default is not None:
                default = as_literal(argument.default.literal())
                params.append(f"{name}={literal(default)}")
            else:
                params.append(name)
        for var in block.free_variables:
            variables[var] = variable_identifier(var)
        scope = Scope(variables, (self.tree.defaults, block.defaults))
        out = Body(locals={*LOCAL_NAMES, *variables.values()})
        source = Value("x", "in_shape")
        if block.body.kind == "layers":
            result = self.sequence(block.body, scope, out, "self", source)
        else:
            result = self.branches(
                block.body, scope, out, "self", source, out.local(block.body.kind)
            )
        doc = f"Block `{block.name}`" + (f": {block.doc}" if block.doc else ".")
        self.emit_class(
            self.block_classes[block.name],
            doc,
            params,
            [variable_identifier(v) for v in block.free_variables],
            out,
            result,
        )

    def branches(
        self,
        sequence: Sequence,
        scope: Scope,
        out: Body,
        attr: str,
        source: Value,
        var: str,
    ) -> Value:
        """Parallel branches under `attr`, each reading `source`, merged by `concat` / `add`."""
        values = []
        scope.values.setdefault("input", source)  # `from=input`: the branches' input
        for row in sequence.rows:
            value, _ = self.row(row, scope, out, attr, source, False)
            scope.values[row.name] = value
            values.append(value)
        if sequence.kind == "concat":
            joined = ", ".join(v.var for v in values)
            out.call.append(f"{var} = jnp.concatenate([{joined}], axis=-1)")
            return Value(var, "concat_shape(" + ", ".join(v.shape for v in values) + ")")
        out.call.append(f"{var} = " + " + ".join(v.var for v in values))
        # a 1x1xC or HxWx1 branch broadcasts: the sum has the full shape, whichever branch it is
        return Value(var, "add_shape(" + ", ".join(v.shape for v in values) + ")")

    def network_class(self) -> str:
        cls = self.unique_class(self.graph.name, suffix="Net")
        names = [name for name, _ in self.tree.variables]
        variables = {v: variable_identifier(v) for v in names}
        scope = Scope(variables, (self.tree.defaults,))
        out = Body(locals={*LOCAL_NAMES, *variables.values()})
        h, w, c = self.graph.input_shape
        out.init.append(f"self.in_shape = ({h}, {w}, {c})")
        source = Value("x", "self.in_shape")
        result = self.sequence(self.tree.layers, scope, out, "self", source, top_level=True)
        result_var = result.var
        last_row = next((r for r in reversed(self.graph.rows) if not r.train_only), None)
        self.output_activation = None
        last_node = next(
            (r for r in self.tree.layers.rows if last_row and r.name == last_row.name), None
        )
        if (
            last_row is not None
            and last_row.kind == "softmax"
            and last_node is not None
            and last_node.repeat is None
            and last_node.condition is None
            and last_node.inputs is None
        ):
            # The table's final softmax is left to predict(): __call__ returns logits.
            index = max(
                i
                for i, line in enumerate(out.call)
                if line.startswith(f"{scope.values[last_row.name].var} =")
            )
            out.call[index] = comment(out.call[index] + "  (softmax: see output_activation)")
            result_var = self.previous_var(last_row.name, scope)
            self.output_activation = "softmax"
        heads = [(head.row, head.weight) for head in self.graph.heads]
        oh, ow, oc = self.report.output_shape
        out_dims = f"{oc}" if (oh, ow) == (1, 1) else f"{oh}, {ow}, {oc}"
        squeeze = "[:, 0, 0, :]" if (oh, ow) == (1, 1) else ""
        out.call.append(f"logits = {result_var}{squeeze}")
        if heads:
            parts = ", ".join(
                f"{string_literal(row)}: {scope.values[row].var}{self.head_squeeze(row)}"
                for row, _ in heads
            )
            out.call += ["if train:", f'    return {{"main": logits, {parts}}}']
        out.call.append("return logits")
        # The variables' values as the analysis used them (overrides applied) are the defaults.
        params = [f"{variables[v]}={literal(as_literal(self.graph.variables[v]))}" for v in names]
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

    def head_squeeze(self, row: str) -> str:
        """`[:, 0, 0, :]` for a head whose output is a vector (1x1xC), as for the main output."""
        report = self.row_reports.get(row)
        flat = report is not None and tuple(report.output_shape[:2]) == (1, 1)
        return "[:, 0, 0, :]" if flat else ""

    def previous_var(self, row: str, scope: Scope) -> str:
        names = [r.name for r in self.graph.rows if not r.train_only]
        index = names.index(row)
        return scope.values[names[index - 1]].var if index else "x"

    def generate(self) -> str:
        for block in self.tree.blocks:
            self.block_class(block)
        network = self.network_class()
        return "\n\n\n".join([*self.classes, network]) + "\n"


def as_literal(value: object) -> object:
    """Lists become tuples (so a default argument is immutable)."""
    return tuple(as_literal(v) for v in value) if isinstance(value, list) else value


def called_blocks(body: Sequence) -> set[str]:
    found: set[str] = set()
    for row in body.rows:
        if isinstance(row.body, BlockCall):
            found.add(row.body.block)
        elif isinstance(row.body, Sequence):
            found |= called_blocks(row.body)
    return found


@dataclass(frozen=True)
class GeneratedSource:
    """The generated module: its text and the name of its network class."""

    text: str
    network: str
    output_activation: str | None


def generate(
    tree: SpecTree,
    graph: Graph,
    report: Report,
    standalone: bool = False,
    dtype: str | None = None,
    param_dtype: str = "float32",
) -> GeneratedSource:
    """Flax source for a parsed spec. `standalone` inlines netspec's layers (for ejected files);
    otherwise the source imports them from netspec.flax_layers. `dtype` / `param_dtype` become
    the network constructor's defaults."""
    generator = Generator(tree, graph, report, dtype, param_dtype)
    body = generator.generate()
    audit(body, PRELUDE_NAMES)
    return GeneratedSource(
        preamble(graph, standalone) + body, generator.network, generator.output_activation
    )
