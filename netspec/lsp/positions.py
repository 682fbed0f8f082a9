"""Lines and columns as the Language Server Protocol counts them, and tokens within a line.

The server works in code points (Python string indices); the client counts columns in the
position encoding it negotiated (UTF-16 unless it asked for another).
"""

from __future__ import annotations

import re

LINE_BREAK = re.compile(r"\r\n|\r|\n")
"""LSP line breaks: a document's lines are what these separate."""

_TOKEN = re.compile(r"[^\s,\[\]{}#=\"']+")


def split_lines(text: str) -> list[str]:
    """The document's lines without their line breaks (a final newline leaves an empty line)."""
    return LINE_BREAK.split(text)


def token_span(line: str, column: int) -> tuple[int, int]:
    """(start, end) of the token that starts at `column` (0-based code points): a `${...}`, a
    quoted string, or a run of characters up to a blank or a YAML indicator. One character
    when no token starts there; empty at the end of the line."""
    column = max(0, min(column, len(line)))
    if column == len(line):
        return column, column
    if line.startswith("${", column):
        end = line.find("}", column)
        return column, (end + 1 if end >= 0 else len(line))
    if line[column] in "\"'":
        end = line.find(line[column], column + 1)
        return column, (end + 1 if end >= 0 else len(line))
    match = _TOKEN.match(line, column)
    if match and match.end() > column:
        return column, match.end()
    return column, column + 1


def client_units(text: str, encoding: str = "utf-16") -> int:
    """The length of `text` in the client's position encoding: "utf-16" code units, "utf-8"
    bytes or "utf-32" code points."""
    if encoding == "utf-8":
        return len(text.encode("utf-8", "surrogatepass"))
    if encoding == "utf-32":
        return len(text)
    return len(text) + sum(1 for char in text if ord(char) > 0xFFFF)


def column_from_units(line: str, units: int, encoding: str = "utf-16") -> int:
    """The code-point column of the client column `units` in `line`, clamped to the line."""
    if encoding == "utf-32" or (encoding == "utf-16" and line.isascii()):
        return max(0, min(units, len(line)))
    seen = 0
    for index, char in enumerate(line):
        if seen >= units:
            return index
        seen += client_units(char, encoding)
    return len(line)
