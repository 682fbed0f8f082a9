"""An imported graph written as a netspec spec: a layer table that reads like the paper's.

`write_spec(graph)`:
1. folds each activation into the conv/dense before it (`conv 3x3 64 relu`);
2. writes the graph one row per layer (the *flat* translation) and compiles it, to learn every
   layer's output size: a `dense` on an HxWxC input gets a `flatten` row before it, a `flatten`
   of a 1x1xC input is dropped;
3. cuts the table into rows (`structure.table_rows`: modules as `concat`/`add` rows, residual
   blocks, auxiliary heads), names them after the source's layers, turns rows that differ only
   in numbers into one block called with those numbers as arguments, and moves the most common
   padding/activation/rounding into `defaults`;
4. compiles the table, writes every row's output size and parameters as its expectation, and
   checks it against the flat translation (and the source's own parameter count, if it has one).
"""

from __future__ import annotations

import json
import re
from collections import Counter
from dataclasses import dataclass, field, replace
from typing import Any

from ..compiled import Compiled, compile
from ..errors import SpecError
from .ir import ImportedGraph, Node
from .rowtext import row_text, value_text
from .structure import (
    ACTIVATION_TYPES,
    Item,
    Leaf,
    Merge,
    Seq,
    TableRow,
    ancestors,
    block_name_base,
    common_prefix,
    relative,
    sanitize,
    table_rows,
    unique,
)

FOLDABLE = ("conv", "dense", "conv_transpose")
DEFAULTABLE = {
    "conv": ("padding", "activation", "bias"),
    "maxpool": ("rounding",),
    "avgpool": ("rounding", "count_include_pad"),
    "batchnorm": ("eps", "momentum"),
}
INDENT = "  "


@dataclass
class ImportedSpec:
    """The written spec, its analysis, and what was checked."""

    text: str
    compiled: Compiled
    graph: ImportedGraph
    flat_params: int
    checks: list[str] = field(default_factory=list)
    blocks: dict[str, int] = field(default_factory=dict)
    """Block name -> how many rows call it."""


def write_spec(graph: ImportedGraph, name: str | None = None) -> ImportedSpec:
    """The graph as a spec (see the module docstring); SpecError when netspec cannot express it
    or the table does not compile to the flat translation's parameters."""
    spec_name = sanitize(name or graph.name or "imported")
    source = graph
    graph = _fold_activations(graph)
    nodes = _fix_flattens(graph, graph.nodes)
    flat = _compile(_flat_text(graph, nodes, spec_name), graph, "the one-row-per-layer table")
    num_classes = _num_classes(graph, nodes)
    try:
        rows = table_rows(graph, nodes)
    except ValueError as error:
        raise SpecError(str(error), path=graph.source) from None
    writer = _Writer(graph, nodes, rows, spec_name, num_classes, len(source.nodes))
    draft = _compile(writer.text({}), graph, "the layer table")
    expectations = {row.name: (row.output_shape, row.params) for row in draft.report.rows}
    text = writer.text(expectations)
    compiled = _compile(text, graph, "the layer table")
    spec = ImportedSpec(text, compiled, source, flat.report.params, blocks=writer.block_calls)
    spec.checks = _checks(spec, flat)
    return spec


# -- 1. activations ----------------------------------------------------------------------------


def _fold_activations(graph: ImportedGraph) -> ImportedGraph:
    """conv/dense -> activation (its only reader) become one node, named after the layer; an
    output that was the activation is the layer's."""
    nodes = [replace(node, fields=dict(node.fields)) for node in graph.nodes]
    readers = Counter(source for node in nodes for source in node.inputs)
    outputs = set(graph.outputs)
    by_name = {node.name: node for node in nodes}
    renamed: dict[str, str] = {}
    kept: list[Node] = []
    for node in nodes:
        node.inputs = tuple(renamed.get(source, source) for source in node.inputs)
        source = by_name.get(node.inputs[0]) if len(node.inputs) == 1 else None
        if (
            node.op in ACTIVATION_TYPES
            and source is not None
            and source.op in FOLDABLE
            and source.fields.get("activation", "none") == "none"
            and readers[source.name] == 1
            and source.name not in outputs
        ):
            source.fields["activation"] = node.op
            renamed[node.name] = source.name
            continue
        kept.append(node)
    return replace(
        graph,
        nodes=kept,
        outputs=[renamed.get(name, name) for name in graph.outputs],
        aux={renamed.get(name, name): weight for name, weight in graph.aux.items()},
    )


# -- 2. the flat translation and flatten rows --------------------------------------------------


def _fix_flattens(graph: ImportedGraph, nodes: list[Node]) -> list[Node]:
    """A flatten before every dense that reads an HxWxC tensor; none on a 1x1xC one."""
    trial: list[Node] = []
    for node in nodes:
        if node.op == "dense":
            flat = Node(f"{node.name}/flatten", "flatten", node.inputs, {}, "(implied)")
            trial += [flat, replace(node, inputs=(flat.name,))]
        else:
            trial.append(node)
    compiled = _compile(_flat_text(graph, trial, "draft"), graph, "the one-row-per-layer table")
    shapes = {row.name: row.output_shape for row in compiled.report.rows}
    names = _flat_names(trial)
    input_shape = tuple(graph.input_shape)
    dropped: dict[str, str] = {}
    kept: list[Node] = []
    for node in trial:
        node.inputs = tuple(dropped.get(source, source) for source in node.inputs)
        if node.op == "flatten" and node.name not in graph.outputs:
            source = node.inputs[0]
            shape = input_shape if source == graph.input_name else shapes[names[source]]
            if shape[0] == 1 and shape[1] == 1:
                dropped[node.name] = source
                continue
        kept.append(node)
    return kept


def _flat_names(nodes: list[Node]) -> dict[str, str]:
    taken: set[str] = set()
    return {node.name: unique(sanitize(node.name), taken) for node in nodes}


def _flat_text(graph: ImportedGraph, nodes: list[Node], name: str) -> str:
    """One top-level row per node, `from` wherever it does not read the row before; auxiliary
    heads right after the row they branch off, so that the main output is the last row."""
    names = _flat_names(nodes) | {graph.input_name: "input"}
    order = _main_last(graph, nodes)
    lines = [f"name: {name}", f"input: {_shape(graph.input_shape)}", "layers:"]
    previous = graph.input_name
    for node in order:
        options = []
        if node.inputs != (previous,) or node.op in ("concat", "add", "multiply"):
            options.append("from=[" + ", ".join(names[s] for s in node.inputs) + "]")
        if node.name in graph.aux:
            options.append(f"aux={value_text('dropout', graph.aux[node.name])}")
        text = " ".join([_row_text(node, {}), *options])
        lines.append(f"{INDENT}- {_key(names[node.name])}: {text}")
        previous = node.name
    return "\n".join(lines) + "\n"


def _main_last(graph: ImportedGraph, nodes: list[Node]) -> list[Node]:
    """`nodes` with every node that only feeds auxiliary heads moved right after its input."""
    main = ancestors(graph.outputs[0], {node.name: node for node in nodes})
    order = [node for node in nodes if node.name in main]
    for node in nodes:
        if node.name in main:
            continue
        position = max(
            (i for i, placed in enumerate(order) if placed.name in node.inputs), default=-1
        )
        order.insert(position + 1, node)
    return order


# -- 3. the table ------------------------------------------------------------------------------


def _num_classes(graph: ImportedGraph, nodes: list[Node]) -> int | None:
    """The main head's class count (units of its last dense), to become `$num_classes`."""
    by_name = {node.name: node for node in nodes}
    current = by_name.get(graph.outputs[0])
    while current is not None and current.op != "dense":
        if current.op not in ("softmax", "dropout", "flatten") or len(current.inputs) != 1:
            return None
        current = by_name.get(current.inputs[0])
    return None if current is None else int(current.fields["units"])


def _shape(shape: Any) -> str:
    return "x".join(str(int(v)) for v in shape)


def _key(name: str) -> str:
    """A row name as a YAML key (quoted when it starts with a digit: `"3x3"`)."""
    return f'"{name}"' if name[:1].isdigit() else name


def _row_text(node: Node, defaults: dict[str, dict[str, Any]]) -> str:
    try:
        return row_text(node.op, _normalised(node), defaults.get(node.op))
    except ValueError as error:
        raise SpecError(
            f"layer {node.name!r} ({node.source_type}): {error}", node.location
        ) from None


def _normalised(node: Node) -> dict[str, Any]:
    """Fields as a reader would write them by hand: [k, k] as k, padding 0 as valid, explicit
    padding that equals `same` (stride 1, odd kernel) as same."""
    fields = dict(node.fields)
    for name in ("kernel", "stride", "dilation", "padding"):
        value = fields.get(name)
        if (
            isinstance(value, list)
            and len(value) == 2
            and not isinstance(value[0], list)
            and value[0] == value[1]
        ):  # [k, k] is k; [[0, 1], [0, 1]] (top/bottom, left/right) stays as it is
            fields[name] = value[0]
    if node.op in ("conv", "maxpool", "avgpool") and fields.get("padding") in (0, [0, 0]):
        fields["padding"] = "valid"
    if node.op == "conv" and _is_same(fields):
        fields["padding"] = "same"
    return fields


def _is_same(fields: dict[str, Any]) -> bool:
    def pair(value: Any) -> list[Any]:
        return list(value) if isinstance(value, list) else [value, value]

    kernel, stride = pair(fields.get("kernel")), pair(fields.get("stride", 1))
    padding, dilation = pair(fields.get("padding")), pair(fields.get("dilation", 1))
    if not all(isinstance(v, int) for v in kernel + stride + padding + dilation):
        return False
    return stride == [1, 1] and all(
        k % 2 == 1 and p == d * (k - 1) // 2
        for k, p, d in zip(kernel, padding, dilation, strict=True)
    )


@dataclass
class _Block:
    name: str
    item: Item
    args: list[str]
    """Argument names, in call order."""
    slots: dict[int, str]
    """Slot index (in `_slots` order) -> argument name, for the values that differ."""
    arg_slots: list[int]
    """For each argument, the first slot it fills."""
    calls: int
    """How many places call it."""
    defaults: dict[str, Any] = field(default_factory=dict)
    """Arguments most calls give the same value: `{stride: 1}`; calls name them when they
    differ (`stride=2`)."""


class _Writer:
    def __init__(
        self,
        graph: ImportedGraph,
        nodes: list[Node],
        rows: list[TableRow],
        name: str,
        num_classes: int | None,
        source_layers: int,
    ) -> None:
        self.source_layers = source_layers
        self.graph, self.nodes, self.rows, self.name = graph, nodes, rows, name
        self.num_classes = num_classes
        self.class_nodes = self._class_nodes() if num_classes is not None else set()
        self._name_rows()
        self.row_of = {row.last: row.name for row in rows} | {graph.input_name: "input"}
        self.defaults = self._defaults()
        self.call_of: dict[int, _Block] = {}
        """id(item) -> the block that item is a call of."""
        self.blocks = self._find_blocks()
        self.block_calls = {block.name: block.calls for block in self.blocks}

    # names ----------------------------------------------------------------------------------

    def _name_rows(self) -> None:
        taken: set[str] = set()
        for row in self.rows:
            prefix = common_prefix(row.members) if len(row.members) > 1 else ""
            row.prefix = prefix
            # the last path component: `/layer1/layer1.0` -> `layer1.0`
            base = re.split(r"/", prefix.rstrip("/"))[-1] if prefix else row.last
            if isinstance(row.item, Seq) and row.item.unit and not prefix:
                base = row.members[0]  # a conv -> bn -> activation row: the conv's name
            row.name = unique(sanitize(base), taken)
            self._name_items(row.item, prefix)

    def _name_items(self, item: Item, prefix: str, generic: bool = False) -> None:
        """Name the items inside `item` after their source layers (relative to `prefix`), or,
        `generic`, after their types (`conv`, `bn`, `relu`; branches `b0`, `b1`, ...)."""
        if isinstance(item, Seq):
            taken: set[str] = {"input"}
            named = []
            for _, inner in item.items:
                base = _generic_name(inner) if generic else self._item_name(inner, prefix)
                named.append((unique(base, taken), inner))
                self._name_items(inner, prefix, generic)
            item.items = named
            # `from` inside the sequence: its items by name, its entry as `input`
            local = {item.entry: "input"} | {
                _member_names(inner)[-1]: name for name, inner in named
            }
            for _, inner in named:
                if isinstance(inner, Leaf) and inner.reads is not None:
                    inner.from_names = [local[source] for source in inner.reads]
        elif isinstance(item, Merge):
            taken = set()
            named_branches = []
            for index, (_, branch) in enumerate(item.branches):
                if not branch.items:
                    base = "shortcut" if item.op == "add" else "identity"
                elif generic:
                    base = f"b{index}"
                else:
                    base = self._item_name(branch, prefix)
                named_branches.append((unique(base, taken), branch))
                self._name_items(branch, prefix, generic)
            item.branches = named_branches

    def _item_name(self, item: Item, prefix: str) -> str:
        names = [relative(n, prefix) for n in _member_names(item)]
        if isinstance(item, Seq) and item.unit and names[0]:
            shared = common_prefix(names)
            return sanitize(shared or names[0])
        if isinstance(item, Seq) and item.items and not common_prefix([n for n in names if n]):
            return self._item_name(item.items[-1][1], prefix)  # its last layer (unit: conv)
        if isinstance(item, (Leaf, Merge)) and not names[-1]:  # named like the row itself
            return item.node.op
        if isinstance(item, Leaf) or len(names) == 1:
            return sanitize(names[-1])
        shared = common_prefix([n for n in names if n])
        return sanitize(shared or names[-1] or "layers")

    # defaults -------------------------------------------------------------------------------

    def _defaults(self) -> dict[str, dict[str, Any]]:
        """Per type, the values most of its layers share (where not the type's default)."""
        from .rowtext import default_of

        defaults: dict[str, dict[str, Any]] = {}
        for op, names in DEFAULTABLE.items():
            fields = [_normalised(n) for n in self.nodes if n.op == op]
            for name in names:
                values = Counter(json.dumps(f.get(name, default_of(op, name))) for f in fields)
                if not values:
                    continue
                text, count = values.most_common(1)[0]
                value = json.loads(text)
                if count * 2 > len(fields) and count > 1 and value != default_of(op, name):
                    defaults.setdefault(op, {})[name] = value
        return defaults

    # blocks ---------------------------------------------------------------------------------

    def _find_blocks(self) -> list[_Block]:
        """Rows (and conv -> bn -> activation units anywhere) that differ only in numbers:
        one block each, its arguments the numbers that differ."""
        sites: dict[int, tuple[str | None, Item]] = {}
        for row in self.rows:
            if not isinstance(row.item, Leaf):
                sites[id(row.item)] = (row.name, row.item)
            for unit in _units(row.item):
                sites.setdefault(id(unit), (None, unit))
        groups: dict[str, list[tuple[str | None, Item]]] = {}
        for site in sites.values():
            groups.setdefault(json.dumps(self._signature(site[1], named=False)), []).append(site)
        blocks: list[_Block] = []
        taken = {row.name for row in self.rows}
        ordered = sorted(
            groups.values(), key=lambda g: not isinstance(g[0][1], Seq) or not g[0][1].unit
        )
        for members in ordered:
            if len(members) < 2:
                continue
            items = [item for _, item in members]
            if len({json.dumps(self._signature(item)) for item in items}) > 1:
                # the same module under other names (`conv2d_5`, `conv2d_12`)
                self._name_items(items[0], "", generic=True)
            block = self._block(members, taken)
            blocks.append(block)
            self.call_of |= dict.fromkeys((id(item) for item in items), block)
        return blocks

    def _block(self, members: list[tuple[str | None, Item]], taken: set[str]) -> _Block:
        items = [item for _, item in members]
        values = [self._slots(item) for item in items]
        varying = [i for i in range(len(values[0])) if any(v[i] != values[0][i] for v in values)]
        labels = self._slot_labels(items[0])
        # slots equal to each other in every call are one argument (`basic 64`, not
        # `basic 64 64`)
        together: dict[str, list[int]] = {}
        for i in varying:
            together.setdefault(json.dumps([v[i] for v in values]), []).append(i)
        arg_taken: set[str] = {"i", "in", "num_classes"}
        slots: dict[int, str] = {}
        firsts = []
        for indices in together.values():
            fields = {labels[i][1] for i in indices}
            shared = fields.pop() if len(indices) > 1 and len(fields) == 1 else None
            arg = unique(shared or _arg_name(labels[indices[0]]), arg_taken)
            slots |= dict.fromkeys(indices, arg)
            firsts.append(indices[0])
        unit = isinstance(items[0], Seq) and items[0].unit
        if unit:  # conv -> bn -> activation: arguments as Keras's conv2d_bn takes them
            order = ["filters", "kernel", "stride", "padding"]
            firsts.sort(key=lambda i: order.index(labels[i][1]) if labels[i][1] in order else 9)
            slots = {i: (labels[i][1] if labels[i][1] in order else a) for i, a in slots.items()}
            activation = items[0].items[-1][1].node.op  # type: ignore[union-attr]
            base = "conv_bn" + ("" if activation == "relu" else f"_{activation}")
        else:
            base = block_name_base([name for name, _ in members if name is not None])
        args = [slots[i] for i in firsts]
        # an argument most calls give one value gets it as its default (kept last)
        defaults: dict[str, Any] = {}
        for arg, slot in zip(args, firsts, strict=True):
            common, count = Counter(json.dumps(v[slot]) for v in values).most_common(1)[0]
            if count * 2 > len(values) and arg != args[0]:
                defaults[arg] = json.loads(common)
        required = [i for i, a in zip(firsts, args, strict=True) if a not in defaults]
        firsts = required + [i for i in firsts if i not in required]
        args = [slots[i] for i in firsts]
        return _Block(unique(base, taken), items[0], args, slots, firsts, len(members), defaults)

    def _call_text(self, block: _Block, item: Item, outer: dict[int, str], counter: Any) -> str:
        """`block v1 v2 ...` for `item`; inside another block, its values that are that block's
        arguments (`outer`, by slot index) are written as `$arg`."""
        values = self._slots(item)
        indices = [next(counter) for _ in values]
        words = []
        for arg, slot in zip(block.args, block.arg_slots, strict=True):
            if indices[slot] in outer:
                text = f"${outer[indices[slot]]}"
            elif arg in block.defaults and values[slot] == block.defaults[arg]:
                continue
            else:
                text = value_text("conv", values[slot])
            words.append(f"{arg}={text}" if arg in block.defaults else text)
        return " ".join([block.name, *words])

    def _signature(self, item: Item, named: bool = True) -> Any:
        """The item with its numbers left out (and its names, unless `named`): rows with equal
        signatures can share a block."""
        if isinstance(item, Leaf):
            fields = self._fields(item.node)
            shape = sorted((k, "#" if _is_slot(k, v) else v) for k, v in fields.items())
            reads = item.from_names if named else _positions(item.reads or [])
            return ["leaf", item.node.op, shape, reads]
        if isinstance(item, Merge):
            branches = [[n if named else "", self._signature(b, named)] for n, b in item.branches]
            return ["merge", item.op, branches]
        return ["seq", [[n if named else "", self._signature(i, named)] for n, i in item.items]]

    def _slots(self, item: Item) -> list[Any]:
        """The numbers `_signature` leaves out, in a fixed order."""
        if isinstance(item, Leaf):
            fields = self._fields(item.node)
            return [fields[k] for k in sorted(fields) if _is_slot(k, fields[k])]
        if isinstance(item, Merge):
            return [v for _, b in item.branches for v in self._slots(b)]
        return [v for _, inner in item.items for v in self._slots(inner)]

    def _slot_labels(self, item: Item, scope: str = "") -> list[tuple[str, str]]:
        """(inner row name, field) for each slot of `item`."""
        if isinstance(item, Leaf):
            fields = self._fields(item.node)
            return [(scope, k) for k in sorted(fields) if _is_slot(k, fields[k])]
        if isinstance(item, Merge):
            return [label for n, b in item.branches for label in self._slot_labels(b, n)]
        return [label for n, inner in item.items for label in self._slot_labels(inner, n)]

    def _fields(self, node: Node) -> dict[str, Any]:
        fields = _normalised(node)
        if node.name in self.class_nodes:
            fields["units"] = "$num_classes"
        return fields

    def _class_nodes(self) -> set[str]:
        """The main head's last dense and each auxiliary head's last dense with as many units."""
        by_name = {node.name: node for node in self.nodes}
        found = set()
        for output in self.graph.outputs:
            current = by_name.get(output)
            while current is not None and current.op != "dense" and len(current.inputs) == 1:
                current = by_name.get(current.inputs[0])
            if current is not None and current.fields.get("units") == self.num_classes:
                found.add(current.name)
        return found

    # text -----------------------------------------------------------------------------------

    def text(self, expectations: dict[str, tuple[Any, int]]) -> str:
        lines = self._header(expectations)
        lines += [f"name: {self.name}", f"input: {_shape(self.graph.input_shape)}"]
        if self.num_classes is not None:
            lines += ["vars:", f"{INDENT}num_classes: {self.num_classes}"]
        if self.defaults:
            lines.append("defaults:")
            for op, values in self.defaults.items():
                inner = ", ".join(f"{k}: {value_text(op, v)}" for k, v in values.items())
                lines.append(f"{INDENT}{op}: {{{inner}}}")
        if self.blocks:
            lines += ["", "blocks:"]
            for block in self.blocks:
                lines += self._block_lines(block)
        lines += ["", "layers:"]
        for row in self.rows:
            lines += self._row_lines(row, expectations.get(row.name))
        return "\n".join(lines) + "\n"

    def _header(self, expectations: dict[str, tuple[Any, int]]) -> list[str]:
        graph = self.graph
        total = sum(params for _, params in expectations.values())
        lines = [
            f"# {_comment(graph.name)}: imported by `netspec import` from {_comment(graph.source)}"
            f" ({_comment(graph.format)})",
            f"# {self.source_layers} source layers -> {len(self.rows)} rows"
            + (f", {_count(len(self.blocks), 'block')}" if self.blocks else ""),
        ]
        if expectations:
            counted = f"# {total:,} parameters"
            if graph.source_params is not None:
                counted += f" (the source: {graph.source_params:,})"
            lines.append(counted)
        lines += [f"# {_comment(note)}" for note in graph.notes]
        lines.append(
            "# Row names are the source's layer names (sanitised); run: netspec compile FILE"
        )
        return lines

    def _block_lines(self, block: _Block) -> list[str]:
        lines = [f"{INDENT}{block.name}:"]
        if block.args:
            args = [
                f"{{{a}: {value_text('conv', block.defaults[a])}}}" if a in block.defaults else a
                for a in block.args
            ]
            lines.append(f"{INDENT * 2}args: [{', '.join(args)}]")
        counter = iter(range(10**9))
        body = self._item_lines(block.item, 2, block.slots, counter, as_block=True)
        return lines + body

    def _row_lines(self, row: TableRow, expected: tuple[Any, int] | None) -> list[str]:
        block = self.call_of.get(id(row.item))
        options = []
        if row.reads is not None:
            reads = [self.row_of.get(s, sanitize(s)) for s in row.reads]
            options.append(("from", reads[0] if len(reads) == 1 else "[" + ", ".join(reads) + "]"))
        if row.aux is not None:
            options.append(("aux", value_text("dropout", row.aux)))
        expect = ""
        if expected is not None:
            shape, params = expected
            expect = _shape(shape) + (f" {params}" if params else "")
        key = f"{INDENT}- {_key(row.name)}:"
        if block is not None or isinstance(row.item, Leaf):
            if block is not None:
                text = self._call_text(block, row.item, {}, iter(range(10**9)))
            else:
                text = _row_text(self._leaf_node(row.item), self.defaults)
            text += "".join(f" {k}={v}" for k, v in options)
            return [f"{key} {text}" + (f" -> {expect}" if expect else "")]
        lines = [key, *self._item_lines(row.item, 3, {}, iter(range(10**9)))]
        lines += [f"{INDENT * 2}{k}: {v}" for k, v in options]
        if expect:
            lines.append(f"{INDENT * 2}expect: {expect}")
        return lines

    def _leaf_node(self, leaf: Item) -> Node:
        assert isinstance(leaf, Leaf)
        node = replace(leaf.node, fields=self._fields(leaf.node))
        return node

    def _item_lines(
        self, item: Item, depth: int, slots: dict[int, str], counter: Any, as_block: bool = False
    ) -> list[str]:
        """The body of a composite row or block at indentation `depth`."""
        pad = INDENT * depth
        if isinstance(item, Merge):
            lines = [f"{pad}{item.op}:"]
            for name, branch in item.branches:
                lines += self._named_lines(name, branch, depth + 1, slots, counter)
            return lines
        assert isinstance(item, Seq)
        lines = [f"{pad}layers:"] if as_block else []
        inner = depth + 1 if as_block else depth
        for name, element in item.items:
            lines += self._named_lines(name, element, inner, slots, counter)
        return lines

    def _named_lines(
        self, name: str, item: Item, depth: int, slots: dict[int, str], counter: Any
    ) -> list[str]:
        pad = INDENT * depth
        block = self.call_of.get(id(item))
        if block is not None:
            return [f"{pad}- {_key(name)}: {self._call_text(block, item, slots, counter)}"]
        if isinstance(item, Leaf):
            fields = self._fields(item.node)
            for key in sorted(fields):
                if _is_slot(key, fields[key]):
                    index = next(counter)
                    if index in slots:
                        fields[key] = f"${slots[index]}"
            node = replace(item.node, fields=fields)
            text = _row_text(node, self.defaults)
            if item.from_names:
                text += " from=" + _names_list(item.from_names)
            return [f"{pad}- {_key(name)}: {text}"]
        if isinstance(item, Seq) and not item.items:
            return [f"{pad}- {_key(name)}: []"]
        if isinstance(item, Seq) and len(item.items) == 1:
            only = item.items[0][1]
            if isinstance(only, Leaf) or id(only) in self.call_of:
                return self._named_lines(name, only, depth, slots, counter)
        if isinstance(item, Seq):
            lines = [f"{pad}- {_key(name)}:"]
            for inner_name, inner in item.items:
                lines += self._named_lines(inner_name, inner, depth + 2, slots, counter)
            return lines
        return [f"{pad}- {_key(name)}:", *self._item_lines(item, depth + 2, slots, counter)]


def _is_slot(field_name: str, value: Any) -> bool:
    """A value a block may take as an argument: numbers, and padding (`same`, `valid`, pixels)."""
    if isinstance(value, str) and value.startswith("$"):
        return False
    return _is_number(value) or field_name == "padding"


def _units(item: Item) -> list[Seq]:
    """Every conv -> bn -> activation unit in `item`, in order."""
    if isinstance(item, Seq) and item.unit:
        return [item]
    if isinstance(item, Merge):
        return [u for _, b in item.branches for u in _units(b)]
    if isinstance(item, Seq):
        return [u for _, inner in item.items for u in _units(inner)]
    return []


def _positions(reads: list[str]) -> list[int]:
    """What a leaf reads, told apart without names (the first, the second ... distinct)."""
    seen: dict[str, int] = {}
    return [seen.setdefault(name, len(seen)) for name in reads]


def _generic_name(item: Item) -> str:
    if isinstance(item, (Leaf, Merge)):
        return {"batchnorm": "bn"}.get(item.node.op, item.node.op)
    return "conv" if isinstance(item, Seq) and item.unit else "layers"


def _names_list(names: list[str]) -> str:
    return names[0] if len(names) == 1 else "[" + ", ".join(names) + "]"


def _member_names(item: Item) -> list[str]:
    if isinstance(item, Leaf):
        return [item.node.name]
    if isinstance(item, Merge):
        return [n for _, b in item.branches for n in _member_names(b)] + [item.node.name]
    return [n for _, inner in item.items for n in _member_names(inner)]


def _is_number(value: Any) -> bool:
    if isinstance(value, bool):
        return False
    if isinstance(value, (int, float)):
        return True
    return isinstance(value, list) and bool(value) and all(_is_number(v) for v in value)


def _arg_name(label: tuple[str, str]) -> str:
    row, field_name = label
    base = row if field_name in ("filters", "units") else f"{row}_{field_name}"
    base = sanitize(base or field_name)
    return f"n{base}" if base[:1].isdigit() else base


def _count(number: int, noun: str) -> str:
    return f"{number} {noun}{'' if number == 1 else 's'}"


def _comment(text: str) -> str:
    """Source text in a comment: one line, printable characters only."""
    return re.sub(r"[^\x20-\x7e]", "?", str(text))[:200]


def _compile(text: str, graph: ImportedGraph, what: str) -> Compiled:
    try:
        return compile(text)
    except SpecError as error:
        raise SpecError(
            f"netspec cannot express this model as written: {what} does not compile: {error}",
            path=graph.source,
        ) from None


def _checks(spec: ImportedSpec, flat: Compiled) -> list[str]:
    report = spec.compiled.report
    if report.params != flat.report.params or report.state != flat.report.state:
        raise SpecError(
            f"the layer table has {report.params:,} parameters and {report.state:,} statistics, "
            f"the one-row-per-layer translation {flat.report.params:,} and "
            f"{flat.report.state:,}: a bug in netspec import, please report it",
            path=spec.graph.source,
        )
    if tuple(report.output_shape) != tuple(flat.report.output_shape):
        raise SpecError(
            f"the layer table outputs {_shape(report.output_shape)}, the one-row-per-layer "
            f"translation {_shape(flat.report.output_shape)}: a bug in netspec import",
            path=spec.graph.source,
        )
    checks = [
        f"the table compiles to {report.params:,} parameters and {report.state:,} statistics "
        f"(output {_shape(report.output_shape)}), as the one-row-per-layer translation does"
    ]
    source = spec.graph.source_params
    if source is not None:
        if source != report.params:
            raise SpecError(
                f"the table has {report.params:,} parameters, the source {source:,}",
                path=spec.graph.source,
                hint="a layer was read with the wrong size: please report it with the file",
            )
        checks.append(f"{source:,} parameters in the source file: equal")
    return checks
