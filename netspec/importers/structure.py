"""The shape of an imported graph as a layer table: which nodes make one row, and how.

`table_rows(graph, nodes)` cuts the main path at every point where one tensor carries all
that flows on (a cut point); between two cuts lies either one layer (a plain row) or a module
whose last node joins branches that each start at the cut (a `concat`/`add`/`multiply` row,
its branches read the same way, recursively). An `add` followed by an activation becomes one
row (`[add: ..., relu]`, a residual block). The nodes that only feed an auxiliary output form
one `aux` row each, read `from` the row they branch off. A part that does not decompose this
way is written one row per layer with explicit `from`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from ..layers import ALIASES, REGISTRY
from .ir import ImportedGraph, Node

MERGES = ("concat", "add", "multiply")
BRANCHED = ("concat", "add")
"""The merges netspec writes as a row of branches; `multiply` (a gate) reads rows by `from`."""
ACTIVATION_TYPES = {name for name, layer in REGISTRY.items() if layer.preset_of == "activation"} - {
    "softmax"
}
RESERVED = {"input", "from", "repeat", "if", "aux", "expect", "main", "type"}


@dataclass
class Leaf:
    """One layer."""

    node: Node
    reads: list[str] | None = None
    """Inside a sequence: the nodes it reads (or the sequence's entry) when not the item
    before it."""
    from_names: list[str] = field(default_factory=list)
    """`reads` as the sequence's item names (`input` for its entry), set when items are named."""


@dataclass
class Seq:
    """Layers one after another: named items."""

    items: list[tuple[str, Item]]
    entry: str = ""
    """The tensor the sequence reads (a node name), which its items call `input`."""
    unit: bool = False
    """A conv -> batch norm -> activation run (Keras's `conv2d_bn`), written as one block."""


@dataclass
class Merge:
    """Branches that read the same input, joined by `op` (concat, add, multiply)."""

    op: str
    branches: list[tuple[str, Seq]]
    node: Node


Item = Leaf | Seq | Merge


@dataclass
class TableRow:
    """One row of the top-level table."""

    name: str
    item: Item
    reads: list[str] | None = None
    """The rows it reads when not the previous one (`from`), by node name; `input` for the
    network's input."""
    aux: float | None = None
    last: str = ""
    """The node whose output is the row's output."""
    members: list[str] = field(default_factory=list)
    """Every node in the row, by name."""
    prefix: str = ""
    """What its members' source names share (`inception_3a`), stripped from the inner names."""


def sanitize(name: str) -> str:
    """A row name from a source name: letters, digits and `_`, not all digits, not reserved."""
    text = re.sub(r"[^A-Za-z0-9_]+", "_", name).strip("_")
    text = re.sub(r"_+", "_", text)
    if not text or text.isdigit():
        text = f"n{text}"
    if text in RESERVED:
        text += "_"
    return text


def unique(name: str, taken: set[str]) -> str:
    candidate, count = name, 2
    while candidate in taken:
        candidate, count = f"{name}_{count}", count + 1
    taken.add(candidate)
    return candidate


def common_prefix(names: list[str]) -> str:
    """The longest run of whole components ('/'- or '.'-separated, else '_'-separated) that
    every name starts with; '' if none."""
    for separators in ("/.", "_"):
        split = [re.split(f"([{re.escape(separators)}])", n) for n in names]
        shared: list[str] = []
        for parts in zip(*split, strict=False):
            if all(p == parts[0] for p in parts):
                shared.append(parts[0])
            else:
                break
        while shared and (shared[-1] in separators or shared[-1] == ""):
            shared.pop()
        if len(names) == 1 and shared == split[0]:
            shared = shared[:-2]  # a lone name: its parent, if it has one
        if any(p not in separators and p for p in shared):
            return "".join(shared)
    return ""


def relative(name: str, prefix: str) -> str:
    """`name` inside `prefix` (`inception_3a/1x1` in `inception_3a` -> `1x1`); '' for the
    prefix itself."""
    if prefix and name.startswith(prefix):
        return name[len(prefix) :].lstrip("/._")
    return name


def is_activation(node: Node) -> bool:
    return node.op in ACTIVATION_TYPES


def table_rows(graph: ImportedGraph, nodes: list[Node]) -> list[TableRow]:
    """The top-level rows for `nodes` (activations already folded), in table order."""
    by_name = {node.name: node for node in nodes}
    main_output = graph.outputs[0]
    main = ancestors(main_output, by_name)
    main_nodes = [node for node in nodes if node.name in main]
    rows = _sequence_rows(graph.input_name, main_nodes, by_name)
    rows = _fold_residual_activations(rows, nodes)
    rows = _group_named_runs(rows)
    for output, weight in graph.aux.items():
        chain = [n for n in nodes if n.name in ancestors(output, by_name) and n.name not in main]
        rows = _attach_aux(rows, chain, output, weight, by_name, graph.input_name)
    if sum(_count_units(row.item) for row in rows) + _top_level_units(rows) >= 2:
        rows = _wrap_top_level_units(rows)
        for row in rows:
            _wrap_units(row.item)
    return rows


UNIT = (("conv",), ("batchnorm",), tuple(sorted(ACTIVATION_TYPES)))


def _starts_unit(items: list[Item], index: int) -> bool:
    """conv (no activation of its own) -> batchnorm -> activation, each reading the one before."""
    window = items[index : index + 3]
    if len(window) < 3 or not all(isinstance(i, Leaf) and i.reads is None for i in window):
        return False
    ops = [i.node.op for i in window]  # type: ignore[union-attr]
    conv = window[0].node  # type: ignore[union-attr]
    return (
        all(op in allowed for op, allowed in zip(ops, UNIT, strict=True))
        and conv.fields.get("activation", "none") == "none"
    )


def _count_units(item: Item) -> int:
    if isinstance(item, Merge):
        return sum(_count_units(b) for _, b in item.branches)
    if isinstance(item, Seq):
        inner = [i for _, i in item.items]
        found = sum(_starts_unit(inner, k) for k in range(len(inner)))
        return found + sum(_count_units(i) for i in inner)
    return 0


def _top_level_units(rows: list[TableRow]) -> int:
    items: list[Item] = [
        row.item if row.reads is None and row.aux is None else Seq([]) for row in rows
    ]
    return sum(_starts_unit(items, k) for k in range(len(items)))


def _wrap_units(item: Item) -> None:
    """Each conv -> bn -> activation run inside `item` becomes one `unit` sequence."""
    if isinstance(item, Merge):
        for _, branch in item.branches:
            _wrap_units(branch)
        return
    if not isinstance(item, Seq) or item.unit:
        return
    inner = [i for _, i in item.items]
    wrapped: list[tuple[str, Item]] = []
    index = 0
    while index < len(inner):
        if _starts_unit(inner, index):
            run = inner[index : index + 3]
            entry = run[0].node.inputs[0]  # type: ignore[union-attr]
            wrapped.append(("", Seq([("", i) for i in run], entry, unit=True)))
            index += 3
            continue
        _wrap_units(inner[index])
        wrapped.append(("", inner[index]))
        index += 1
    item.items = wrapped


def _wrap_top_level_units(rows: list[TableRow]) -> list[TableRow]:
    items: list[Item] = [
        row.item if row.reads is None and row.aux is None else Seq([]) for row in rows
    ]
    wrapped: list[TableRow] = []
    index = 0
    while index < len(rows):
        if _starts_unit(items, index):
            run = [row.item for row in rows[index : index + 3]]
            entry = run[0].node.inputs[0]  # type: ignore[union-attr]
            wrapped.append(_row(Seq([("", i) for i in run], entry, unit=True), None))
            index += 3
            continue
        wrapped.append(rows[index])
        index += 1
    return wrapped


def block_name_base(names: list[str]) -> str:
    """A block name from the rows that call it: their shared leading characters (`inception_3a`,
    `inception_3b` -> `inception`), else `block`; never a layer type's name."""
    prefix = names[0]
    for name in names[1:]:
        while not name.startswith(prefix):
            prefix = prefix[:-1]
    prefix = re.sub(r"[\d_]+$", "", prefix)
    prefix = sanitize(prefix) if prefix else "block"
    if prefix in REGISTRY or prefix in ALIASES or (prefix[:1] == "n" and prefix[1:].isdigit()):
        prefix += "_block"
    return prefix


def ancestors(name: str, by_name: dict[str, Node]) -> set[str]:
    """`name` and every node it reads, directly or not."""
    seen: set[str] = set()
    stack = [name]
    while stack:
        current = stack.pop()
        if current in seen or current not in by_name:
            continue
        seen.add(current)
        stack.extend(by_name[current].inputs)
    return seen


def _segments(entry: str, members: list[Node]) -> list[tuple[str, list[Node]]] | None:
    """Cut `members` (a sub-DAG read from tensor `entry`) where one tensor carries everything:
    [(the segment's entry tensor, its nodes)], or None when a node reads from outside."""
    position = {node.name: i for i, node in enumerate(members)}
    last_use = {entry: -1} | {node.name: -1 for node in members}
    for i, node in enumerate(members):
        for source in node.inputs:
            if source != entry and source not in position:
                return None
            last_use[source] = max(last_use[source], i)
    segments, start, current_entry = [], 0, entry
    for i, node in enumerate(members):
        live = {n for n, use in last_use.items() if use > i and (n == entry or position[n] <= i)}
        if i == len(members) - 1 or live == {node.name}:
            segments.append((current_entry, members[start : i + 1]))
            start, current_entry = i + 1, node.name
    return segments


def _structure(entry: str, members: list[Node], by_name: dict[str, Node]) -> Seq | None:
    """`members` (ending in the node whose output is the result) as a sequence of items."""
    segments = _segments(entry, members)
    if segments is None:
        return None
    items: list[tuple[str, Item]] = []
    for segment_entry, segment in segments:
        item = _segment_item(segment_entry, segment, by_name)
        if item is None:
            return None
        if isinstance(item, Seq):  # a flat run: its items join this sequence
            items.extend(item.items)
        else:
            items.append(("", item))
    return Seq(items, entry)


def _flat_seq(entry: str, segment: list[Node]) -> Seq:
    """One item per layer, each reading its inputs by name (`from`) where they are not the item
    before it: what does not decompose into branches (a squeeze-excitation gate)."""
    items: list[tuple[str, Item]] = []
    previous = entry
    for node in segment:
        plain = node.inputs == (previous,) and node.op not in MERGES
        items.append(("", Leaf(node, None if plain else list(node.inputs))))
        previous = node.name
    return Seq(items, entry)


def _segment_item(entry: str, segment: list[Node], by_name: dict[str, Node]) -> Item | None:
    last = segment[-1]
    if len(segment) == 1 and last.inputs == (entry,) and last.op not in MERGES:
        return Leaf(last)
    merge = _merge_item(entry, segment, by_name) if last.op in BRANCHED else None
    return merge if merge is not None else _flat_seq(entry, segment)


def _merge_item(entry: str, segment: list[Node], by_name: dict[str, Node]) -> Merge | None:
    """The segment as branches from `entry` joined by its last node; None if they cross."""
    last = segment[-1]
    inside = {node.name for node in segment[:-1]}
    branches: list[tuple[str, Seq]] = []
    claimed: set[str] = set()
    for source in last.inputs:
        if source == entry:
            branches.append(("", Seq([], entry)))
            continue
        own = ancestors(source, by_name) & inside
        if own & claimed:
            return None
        claimed |= own
        branch = _structure(entry, [n for n in segment if n.name in own], by_name)
        if branch is None:
            return None
        branches.append(("", branch))
    if claimed != inside:
        return None
    return Merge(last.op, branches, last)


def _members(item: Item) -> list[str]:
    if isinstance(item, Leaf):
        return [item.node.name]
    if isinstance(item, Merge):
        names = [n for _, branch in item.branches for n in _members(branch)]
        return [*names, item.node.name]
    return [n for _, inner in item.items for n in _members(inner)]


def _sequence_rows(entry: str, nodes: list[Node], by_name: dict[str, Node]) -> list[TableRow]:
    """Top-level rows of the main path; flat rows (explicit `from`) where it does not
    decompose."""
    segments = _segments(entry, nodes)
    rows: list[TableRow] = []
    previous = entry
    for segment_entry, segment in segments or [(entry, nodes)]:
        item = _segment_item(segment_entry, segment, by_name) if segments else None
        if item is None or isinstance(item, Seq):  # one row per layer, each reading its inputs
            for node in segment:
                plain = node.inputs == (previous,) and node.op not in MERGES
                rows.append(_row(Leaf(node), None if plain else list(node.inputs)))
                previous = node.name
            continue
        rows.append(_row(item, None))
        previous = segment[-1].name
    return rows


def _row(item: Item, reads: list[str] | None, aux: float | None = None) -> TableRow:
    members = _members(item)
    last = members[-1]
    return TableRow("", item, reads, aux, last, members)


def _fold_residual_activations(rows: list[TableRow], nodes: list[Node]) -> list[TableRow]:
    """`add` (or multiply) row + activation row reading it -> one row: [add: ..., relu]."""
    readers: dict[str, int] = {}
    for node in nodes:
        for source in node.inputs:
            readers[source] = readers.get(source, 0) + 1
    folded: list[TableRow] = []
    for row in rows:
        previous = folded[-1] if folded else None
        if (
            previous is not None
            and isinstance(previous.item, Merge)
            and previous.item.op in ("add", "multiply")
            and row.reads is None
            and isinstance(row.item, Leaf)
            and is_activation(row.item.node)
            and readers.get(previous.last, 0) == 1
        ):
            seq = Seq([("", previous.item), ("", row.item)])
            folded[-1] = _row(seq, previous.reads)
            continue
        folded.append(row)
    return folded


def _group_named_runs(rows: list[TableRow]) -> list[TableRow]:
    """Consecutive one-layer rows whose source names share a path (`conv2/3x3_reduce`,
    `conv2/3x3`, `conv2/norm2`; Keras's `conv1_conv`, `conv1_bn`) -> one row `conv2` of those
    layers, as papers print them."""

    def scope(row: TableRow) -> str:
        if not isinstance(row.item, Leaf) or row.reads is not None:
            return ""
        name = row.item.node.name.strip("/._")
        parts = re.split(r"[/.]", name)
        if len(parts) == 1:  # Keras: `conv1_conv`, `conv1_bn`, `conv1_relu`
            parts = name.split("_")
        return parts[0] if len(parts) > 1 else ""

    grouped: list[TableRow] = []
    index = 0
    while index < len(rows):
        key = scope(rows[index])
        end = index + 1
        while key and end < len(rows) and scope(rows[end]) == key:
            end += 1
        if end - index >= 2:
            seq = Seq([("", row.item) for row in rows[index:end]])
            grouped.append(_row(seq, None))
        else:
            grouped.append(rows[index])
        index = end
    return grouped


def _attach_aux(
    rows: list[TableRow],
    chain: list[Node],
    output: str,
    weight: float,
    by_name: dict[str, Node],
    input_name: str,
) -> list[TableRow]:
    """Put the auxiliary head ending at `output` right after the row it reads."""
    entries = {s for n in chain for s in n.inputs if s not in {m.name for m in chain}}
    if len(entries) != 1:
        raise ValueError(f"the auxiliary head {output!r} reads {len(entries)} main-path tensors")
    entry = entries.pop()
    seq = _structure(entry, chain, by_name)
    if seq is None:
        raise ValueError(f"the auxiliary head {output!r} is not a chain of branches")
    row = _row(seq if len(seq.items) > 1 else seq.items[0][1], [entry], weight)
    # After the row it reads, and after every row the source writes before the head, so that
    # the table runs its layers in the source's order (weights paired by order line up).
    order = {name: i for i, name in enumerate(by_name)}
    first = min(order[n.name] for n in chain)
    start = 0 if entry == input_name else None
    for index, existing in enumerate(rows):
        if existing.last == entry:
            start = index + 1
    if start is None:
        raise ValueError(
            f"the auxiliary head {output!r} branches off {entry!r}, inside a row: netspec reads "
            "auxiliary heads from a row's output"
        )
    position = start
    while position < len(rows) and min(order[m] for m in rows[position].members) < first:
        position += 1
    return [*rows[:position], row, *rows[position:]]
