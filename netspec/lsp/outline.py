"""The structure of spec text read line by line, without a YAML parser: for text being typed.

A line's shape is its indentation, whether it is a list item (`- `), the column where its
content starts, and the mapping key written there. Parents, siblings, top-level sections,
variables and blocks follow from indentation alone, so they are found in text that does not
parse.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass

LEAD = re.compile(r"^( *)((?:-(?: +|$))*)")
KEY = re.compile(r"""([A-Za-z0-9_$.-]+|"[^"\n]*"|'[^'\n]*')[ \t]*:(?=[ \t]|$)""")
_TOP = re.compile(r"[A-Za-z0-9_\"']")
_COMMENT = re.compile(r"(?:^|[ \t])#")
_FLOW_NAMES = re.compile(r"(?:^|[\[,{])\s*\{?\s*([A-Za-z_][A-Za-z0-9_]*)")
_FLOW_PAIRS = re.compile(r"([A-Za-z0-9_]+)\s*:\s*([^,{}\[\]]*(?:\[[^\]]*\])?)")
_ITEM_NAME = re.compile(r"\{?\s*([A-Za-z_][A-Za-z0-9_]*)")


@dataclass(frozen=True)
class Shape:
    """One line: `indent` blanks, `item` if it starts a list item, `column` where the content
    after the dashes starts, the `key` written there (None if none) and the `value` after it
    (comment removed; the whole content when there is no key)."""

    indent: int
    item: bool
    column: int
    key: str | None
    value: str


def strip_comment(text: str) -> str:
    """`text` up to a YAML comment (`#` at the start or after a blank)."""
    match = _COMMENT.search(text)
    return text[: match.start()] if match else text


def is_blank(line: str) -> bool:
    """Only blanks, or a comment."""
    stripped = line.strip()
    return not stripped or stripped.startswith("#")


def shape(line: str) -> Shape:
    lead = LEAD.match(line)
    assert lead is not None  # the pattern matches the empty string
    column = lead.end()
    key = KEY.match(line, column)
    if key:
        name = key.group(1).strip("\"'")
        return Shape(len(lead.group(1)), bool(lead.group(2)), column, name, value_of(line, key))
    return Shape(
        len(lead.group(1)), bool(lead.group(2)), column, None, strip_comment(line[column:])
    )


def value_of(line: str, key: re.Match[str]) -> str:
    return strip_comment(line[key.end() :]).strip()


def structure(lines: list[str], index: int) -> Iterator[tuple[int, Shape]]:
    """The lines that contain line `index` (its parent mapping key or list item, that one's
    parent, ... up to a top-level key), nearest first."""
    current = shape(lines[index])
    limit = current.indent if current.item else current.column
    item = current.item
    for j in range(index - 1, -1, -1):
        if is_blank(lines[j]):
            continue
        above = shape(lines[j])
        owns_list = item and above.column == limit and not above.item and not above.value
        if above.column < limit or owns_list:
            yield j, above
            if above.column == 0:
                return
            limit, item = (above.indent if above.item else above.column), above.item


def siblings(lines: list[str], index: int) -> tuple[dict[str, str], int | None]:
    """The other keys of the block mapping that line `index` is in, with their values, and the
    line of the list item that mapping starts on (None if it is not a list item's)."""
    current = shape(lines[index])
    column = current.column
    keys: dict[str, str] = {}
    head = index if current.item else None
    if not current.item:
        for j in range(index - 1, -1, -1):
            if is_blank(lines[j]):
                continue
            above = shape(lines[j])
            if above.column < column:
                break
            if above.column == column:
                if above.key:
                    keys[above.key] = above.value
                if above.item:
                    head = j
                    break
    for j in range(index + 1, len(lines)):
        if is_blank(lines[j]):
            continue
        below = shape(lines[j])
        if below.column < column or (below.column == column and below.item):
            break
        if below.column == column and below.key:
            keys[below.key] = below.value
    return keys, head


def top_level(lines: list[str]) -> dict[str, int]:
    """Top-level keys and their lines."""
    keys: dict[str, int] = {}
    for j, line in enumerate(lines):
        if _TOP.match(line):
            key = KEY.match(line)
            if key:
                keys.setdefault(key.group(1).strip("\"'"), j)
    return keys


def section(lines: list[str], index: int) -> str | None:
    """The top-level key whose value holds line `index` (None on a top-level line)."""
    if _TOP.match(lines[index]):
        return None
    for j in range(index - 1, -1, -1):
        line = lines[j]
        if _TOP.match(line):
            key = KEY.match(line)
            return key.group(1).strip("\"'") if key else None
    return None


def children(lines: list[str], index: int) -> list[tuple[int, Shape]]:
    """The lines one level inside line `index` (keys or list items of its block value)."""
    parent = shape(lines[index])
    found: list[tuple[int, Shape]] = []
    level: int | None = None
    for j in range(index + 1, len(lines)):
        if is_blank(lines[j]):
            continue
        line = shape(lines[j])
        start = line.indent if line.item else line.column
        if start < parent.column or (start == parent.column and not line.item):
            break
        if level is None:
            level = start
        if start == level:
            found.append((j, line))
        elif start < level:
            break
    return found


def flow_pairs(value: str) -> dict[str, str]:
    """`{a: 1, b: x}` -> {"a": "1", "b": "x"} (one level)."""
    return {key: text.strip() for key, text in _FLOW_PAIRS.findall(value)}


def variables(lines: list[str]) -> dict[str, str]:
    """The `vars:` written in the text, with their values as written."""
    where = top_level(lines).get("vars")
    if where is None:
        return {}
    value = shape(lines[where]).value
    if value.startswith("{"):
        return flow_pairs(value.strip("{}"))
    return {line.key: line.value for _, line in children(lines, where) if line.key}


def block_arguments(lines: list[str], header: int) -> list[str]:
    """The argument names in the `args:` of the block whose name is on line `header`."""
    for j, line in children(lines, header):
        if line.key == "args":
            if line.value:
                return _FLOW_NAMES.findall(line.value)
            names = []
            for _, item in children(lines, j):
                match = _ITEM_NAME.match(item.key or item.value)
                if match:
                    names.append(match.group(1))
            return names
    return []


def blocks(lines: list[str]) -> dict[str, int]:
    """The block names written under `blocks:`, with their lines."""
    where = top_level(lines).get("blocks")
    if where is None:
        return {}
    return {line.key: j for j, line in children(lines, where) if line.key and not line.item}


def enclosing_block(lines: list[str], index: int) -> str | None:
    """The name of the block whose definition holds line `index`, if any."""
    chain = list(structure(lines, index))
    if len(chain) >= 2 and chain[-1][1].key == "blocks" and chain[-1][1].column == 0:
        return chain[-2][1].key
    return None


def row_names(lines: list[str]) -> list[str]:
    """The names of the top-level table's rows as written (`- conv1: ...`)."""
    where = top_level(lines).get("layers")
    if where is None:
        return []
    return [line.key for _, line in children(lines, where) if line.item and line.key]
