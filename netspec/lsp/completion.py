"""What may be typed at a position of spec text, worked out from the text itself.

The current line up to the cursor says which slot is being filled (a row's type, a `key=` of
the row's type, a value, a `$variable`, a mapping key); indentation says where the line is
(the table, a block, `defaults`). Text that does not parse is the normal case here.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from ..layers import REGISTRY
from . import outline
from .vocabulary import (
    BLOCK_KEYS,
    INPUT_FIELDS,
    OPTION_HELP,
    ROW_OPTIONS,
    TOP_LEVEL_KEYS,
    Vocabulary,
    field_values,
    fields_of,
    layer_markdown,
    layer_type,
    layer_words,
)

ROW_SECTIONS = ("layers", "blocks")
COMPOSITES = ("concat", "add")
NOT_ROWS = frozenset(
    ("args", "input", "vars", "defaults", "doc", "name", "description", "training", *ROW_OPTIONS)
)
_DOLLAR_NAME = re.compile(r"(?<!\$)\$([A-Za-z_][A-Za-z0-9_.]*)?$")
_OPEN_EXPRESSION = re.compile(r"\$\{[^}]*$")
_NAME_TAIL = re.compile(r"[A-Za-z_][A-Za-z0-9_.]*$")
_WORD = re.compile(r"[A-Za-z0-9_]*")


@dataclass(frozen=True)
class Suggestion:
    """One completion: `label` (what the list shows), `kind` (layer, block, field, variable,
    keyword, value, row), a one-line `detail`, markdown `documentation`, and `insert` (the
    text that replaces the typed prefix; the label when empty)."""

    label: str
    kind: str
    detail: str = ""
    documentation: str = ""
    insert: str = ""


@dataclass(frozen=True)
class Completions:
    """Suggestions that replace the line's text from column `start` to the cursor."""

    start: int
    items: tuple[Suggestion, ...]


def complete(lines: list[str], line_no: int, column: int, vocab: Vocabulary) -> Completions | None:
    """The suggestions at (line_no, column), 0-based code points; None where nothing fits."""
    if not 0 <= line_no < len(lines):
        return None
    line = lines[line_no]
    column = max(0, min(column, len(line)))
    prefix = line[:column]
    if outline.strip_comment(prefix) != prefix:
        return None
    return variable_slot(lines, line_no, prefix, vocab) or structural_slot(
        lines, line_no, prefix, vocab
    )


# ---- `$name` and `${...}` --------------------------------------------------------------------


def variable_slot(
    lines: list[str], line_no: int, prefix: str, vocab: Vocabulary
) -> Completions | None:
    inside = _OPEN_EXPRESSION.search(prefix)
    if inside:
        tail = _NAME_TAIL.search(prefix)
        typed = tail.group() if tail and tail.start() >= inside.start() + 2 else ""
        names = names_in_scope(lines, line_no, vocab)
        return Completions(len(prefix) - len(typed), tuple(names_as(names, "")))
    dollar = _DOLLAR_NAME.search(prefix)
    if dollar:
        names = names_in_scope(lines, line_no, vocab)
        return Completions(dollar.start(), tuple(names_as(names, "$")))
    return None


def names_in_scope(lines: list[str], line_no: int, vocab: Vocabulary) -> dict[str, str]:
    """Variable names usable on this line -> what they are."""
    names = {name: f"variable = {value}" for name, value in vocab.variables.items()}
    where = outline.section(lines, line_no)
    if where == "blocks":
        block = outline.enclosing_block(lines, line_no)
        if block is not None and block in vocab.blocks:
            for argument in vocab.blocks[block].arguments:
                names[argument] = f"argument of block {block}"
    if where in ROW_SECTIONS:
        if "repeat" in lines[line_no]:
            names["i"] = "the repetition: 0, 1, ... (in a repeated row)"
        names.update(INPUT_FIELDS)
    return names


def names_as(names: dict[str, str], sigil: str) -> list[Suggestion]:
    return [Suggestion(f"{sigil}{name}", "variable", detail) for name, detail in names.items()]


# ---- rows, keys and values ---------------------------------------------------------------------


def structural_slot(
    lines: list[str], line_no: int, prefix: str, vocab: Vocabulary
) -> Completions | None:
    lead = outline.LEAD.match(prefix)
    assert lead is not None
    item = bool(lead.group(2))
    key = outline.KEY.match(prefix, lead.end())
    if not prefix[:1].isspace() and not item and _WORD.fullmatch(prefix):
        return top_level_keys(lines, line_no)
    where = outline.section(lines, line_no)
    if key is None:
        if item:
            if where in ROW_SECTIONS and rows_here(lines, line_no):
                return compact_slot(prefix[lead.end() :], lead.end(), vocab)
            return None
        if _WORD.fullmatch(prefix[lead.end() :]):
            return mapping_key_slot(lines, line_no, lead.end(), vocab)
        return None
    name = key.group(1).strip("\"'")
    start = len(prefix) - len(prefix[key.end() :].lstrip())
    value = prefix[start:]
    if start == key.end() and value == "":  # `key:` with no blank after it yet
        return None
    if value.startswith(("[", "{")):
        owner_rows = where in ROW_SECTIONS and (
            (item and rows_here(lines, line_no)) or name in (*COMPOSITES, "layers")
        )
        return flow_slot(value, start, name, owner_rows, where, vocab)
    if where not in ROW_SECTIONS and where != "defaults":
        return None
    if name == "type":
        return type_slot(start, vocab) if _WORD.fullmatch(value) else None
    if item and rows_here(lines, line_no):
        return compact_slot(value, start, vocab)
    siblings, _ = outline.siblings(lines, line_no)
    return value_slot(siblings.get("type", ""), name, value, start, vocab)


def rows_here(lines: list[str], line_no: int) -> bool:
    """Whether a list item on this line is a row (not an `args:` entry, say)."""
    for _, above in outline.structure(lines, line_no):
        return above.key not in NOT_ROWS
    return False


def top_level_keys(lines: list[str], line_no: int) -> Completions:
    """The top-level keys not written yet."""
    present = {k for k, where in outline.top_level(lines).items() if where != line_no}
    items = [Suggestion(k, "keyword", insert=f"{k}: ") for k in TOP_LEVEL_KEYS if k not in present]
    return Completions(0, tuple(items))


def type_slot(start: int, vocab: Vocabulary) -> Completions:
    """Layer types (names and aliases) and the spec's blocks."""
    items = []
    for block in vocab.blocks.values():
        usage = " ".join([block.name, *block.arguments])
        items.append(
            Suggestion(block.name, "block", f"block: {usage}", vocab.block_markdown(block.name))
        )
    for word, name in layer_words().items():
        layer = REGISTRY[name]
        detail = f"alias of {name}" if word != name else f"layer: {layer.table_label}"
        items.append(Suggestion(word, "layer", detail, layer_markdown(name)))
    return Completions(start, tuple(items))


def tokens(text: str) -> list[tuple[int, str]]:
    """Blank-separated tokens with their offsets, `[...]` and `${...}` kept whole (lenient:
    unbalanced brackets are fine)."""
    found: list[tuple[int, str]] = []
    start: int | None = None
    depth = 0
    for i, char in enumerate(text):
        if char in "[{":
            depth += 1
        elif char in "]}":
            depth = max(0, depth - 1)
        if char.isspace() and depth == 0:
            if start is not None:
                found.append((start, text[start:i]))
                start = None
        elif start is None:
            start = i
    if start is not None:
        found.append((start, text[start:]))
    return found


def compact_slot(text: str, offset: int, vocab: Vocabulary) -> Completions | None:
    """In a compact row `TYPE positional... key=value... -> ...` (text up to the cursor, which
    starts at column `offset`)."""
    words = tokens(text)
    if not words or text[-1:].isspace():
        words.append((len(text), ""))
    (at, current), before = words[-1], words[:-1]
    if not before:
        return type_slot(offset + at, vocab) if _WORD.fullmatch(current) else None
    if "->" in (w for _, w in words):
        return None
    type_word = before[0][1]
    if "=" in current:
        key, _, typed = current.partition("=")
        start = offset + at + len(key) + 1
        if typed.startswith("["):
            cut = max(typed.rfind("["), typed.rfind(","))
            start += cut + 1 + len(typed[cut + 1 :]) - len(typed[cut + 1 :].lstrip())
        return value_slot(type_word, key, typed, start, vocab)
    if not _WORD.fullmatch(current):
        return None
    present = {w.partition("=")[0] for _, w in before[1:] if "=" in w}
    return Completions(offset + at, tuple(field_suggestions(type_word, present, "=", vocab)))


def field_suggestions(
    type_word: str, present: set[str], joiner: str, vocab: Vocabulary
) -> list[Suggestion]:
    """`key=` (or `key: `) for each field of the row's type (a layer or a block) and each row
    option, leaving out those already written."""
    items = []
    layer = layer_type(type_word)
    if layer is not None:
        for name, detail in fields_of(layer).items():
            items.append(
                Suggestion(f"{name}{joiner.strip()}", "field", detail, insert=name + joiner)
            )
    elif type_word in vocab.blocks:
        for name in vocab.blocks[type_word].arguments:
            items.append(
                Suggestion(
                    f"{name}{joiner.strip()}",
                    "field",
                    f"argument of {type_word}",
                    insert=name + joiner,
                )
            )
    for name in ROW_OPTIONS:
        items.append(
            Suggestion(
                f"{name}{joiner.strip()}", "keyword", OPTION_HELP[name], insert=name + joiner
            )
        )
    return [item for item in items if item.insert[: -len(joiner)] not in present]


def value_slot(
    type_word: str, key: str, typed: str, start: int, vocab: Vocabulary
) -> Completions | None:
    """The words a field takes (`padding` -> same, valid), or row names for `from`."""
    if not _WORD.fullmatch(typed.lstrip("[").split(",")[-1].strip()):
        return None
    if key == "from":
        return Completions(start, tuple(Suggestion(name, "row", "a row") for name in vocab.rows))
    layer = layer_type(type_word)
    if layer is None:
        return None
    words = field_values(layer, key)
    if not words:
        return None
    return Completions(
        start, tuple(Suggestion(w, "value", f"{key} of {layer.name}") for w in words)
    )


def option_keys() -> list[Suggestion]:
    """The row options as mapping keys."""
    return [Suggestion(k, "keyword", OPTION_HELP[k], insert=f"{k}: ") for k in ROW_OPTIONS]


def row_body_keys() -> list[Suggestion]:
    """The keys of a mapping row that has none yet: `type`, `concat`, `add`, the options."""
    keys = [Suggestion("type", "keyword", "a layer type or block", insert="type: ")]
    keys += [Suggestion(k, "keyword", "parallel branches", insert=f"{k}: ") for k in COMPOSITES]
    return keys + option_keys()


def layer_keys() -> list[Suggestion]:
    """Layer types as mapping keys (under `defaults`)."""
    return [
        Suggestion(word, "layer", f"defaults for {name}", insert=f"{word}: ")
        for word, name in layer_words().items()
    ]


def mapping_key_slot(
    lines: list[str], line_no: int, start: int, vocab: Vocabulary
) -> Completions | None:
    """A key being typed in a block mapping: a mapping row's fields, a block's keys, a layer
    type (or its fields) under `defaults`, or a row's options."""
    siblings, head = outline.siblings(lines, line_no)
    chain = list(outline.structure(lines, line_no))
    parent = chain[0][1] if chain else None
    where = outline.section(lines, line_no)
    keys: list[Suggestion] = []
    if where == "blocks" and len(chain) == 2:
        keys = [Suggestion(k, "keyword", "block", insert=f"{k}: ") for k in BLOCK_KEYS]
    elif "type" in siblings:
        keys = field_suggestions(siblings["type"], set(siblings), ": ", vocab)
    elif any(k in siblings for k in COMPOSITES):
        keys = option_keys()
    elif parent is not None and parent.key == "defaults":
        keys = layer_keys()
    elif parent is not None and len(chain) > 1 and chain[1][1].key == "defaults":
        keys = field_suggestions(parent.key or "", set(siblings), ": ", vocab)
        keys = [k for k in keys if k.kind == "field"]
    elif where in ROW_SECTIONS and head is not None and head != line_no:
        keys = option_keys()
    elif where in ROW_SECTIONS and parent is not None and parent.item and not parent.value:
        keys = row_body_keys()
    taken = set(siblings)
    if where == "blocks" and len(chain) == 2 and taken & {"layers", *COMPOSITES}:
        taken |= {"layers", *COMPOSITES}  # a block has one body
    keys = [k for k in keys if k.insert.partition(":")[0] not in taken]
    return Completions(start, tuple(keys)) if keys else None


# ---- flow collections: `[reduce: conv 1x1 64, conv: conv 3x3 192]`, `{type: maxpool, ...}` ----


@dataclass
class _Open:
    bracket: str
    start: int
    owner: str
    rows: bool
    entries: list[str]


def flow_slot(
    value: str, offset: int, key: str, rows: bool, where: str | None, vocab: Vocabulary
) -> Completions | None:
    """Inside a flow list or mapping that starts the value `value` (at column `offset`)."""
    stack: list[_Open] = []
    i = 0
    while i < len(value):
        char = value[i]
        if value.startswith("${", i):
            end = value.find("}", i)
            if end < 0:
                return None
            i = end + 1
            continue
        if char in "\"'":
            end = value.find(char, i + 1)
            if end < 0:
                return None
            i = end + 1
            continue
        if char in "[{":
            outer = stack[-1] if stack else None
            entry = value[outer.start : i] if outer else ""
            name = entry.strip().rstrip(":").strip() if outer else key
            if outer is None:
                inner_rows = rows
            elif outer.bracket == "[":  # a nested list, or a mapping row, in a list of rows
                inner_rows = outer.rows
            else:  # `{concat: [...]}`
                inner_rows = outer.rows and name in COMPOSITES
            stack.append(_Open(char, i + 1, name, inner_rows, []))
        elif char in "]}":
            if not stack:
                return None
            stack.pop()
            if not stack:
                return None
        elif char == "," and stack:
            stack[-1].entries.append(value[stack[-1].start : i])
            stack[-1].start = i + 1
        i += 1
    if not stack:
        return None
    top = stack[-1]
    entry = value[top.start :]
    entry_offset = offset + top.start + len(entry) - len(entry.lstrip())
    entry = entry.lstrip()
    pair = outline.KEY.match(entry)
    if top.bracket == "[":
        if not top.rows:
            return None
        if pair:
            rest = entry[pair.end() :]
            return compact_slot(
                rest.lstrip(), entry_offset + len(entry) - len(rest.lstrip()), vocab
            )
        return compact_slot(entry, entry_offset, vocab)
    pairs = outline.flow_pairs(",".join(top.entries))
    if pair:
        rest = entry[pair.end() :]
        start = entry_offset + len(entry) - len(rest.lstrip())
        name = pair.group(1)
        if name == "type":
            return type_slot(start, vocab) if _WORD.fullmatch(rest.strip()) else None
        return value_slot(pairs.get("type", top.owner), name, rest.strip(), start, vocab)
    if not _WORD.fullmatch(entry):
        return None
    if "type" in pairs:
        keys = field_suggestions(pairs["type"], set(pairs), ": ", vocab)
    elif top.owner == "defaults":
        keys = layer_keys()
    elif where == "defaults" or (layer_type(top.owner) is not None and not top.rows):
        keys = [
            k for k in field_suggestions(top.owner, set(pairs), ": ", vocab) if k.kind == "field"
        ]
    elif top.rows:
        keys = row_body_keys()
    else:
        return None
    keys = [k for k in keys if k.insert.partition(":")[0] not in pairs]
    return Completions(entry_offset, tuple(keys)) if keys else None
