"""Hover text: a row's output size, parameters and multiply-adds; what a word names."""

from __future__ import annotations

import re

from ..layers import REGISTRY, format_shape
from ..table import human
from .analysis import RowInfo
from .vocabulary import Vocabulary, layer_markdown, layer_type

_WORD_CHARS = re.compile(r"[A-Za-z0-9_.]")
_OPEN_EXPRESSION = re.compile(r"\$\{[^}]*$")


def word_at(line: str, column: int) -> tuple[str, bool]:
    """The word (letters, digits, `_`, `.`) around `column`, and whether it is a variable:
    right after `$`, or inside `${...}`."""
    start = end = max(0, min(column, len(line)))
    while start > 0 and _WORD_CHARS.match(line[start - 1]):
        start -= 1
    while end < len(line) and _WORD_CHARS.match(line[end]):
        end += 1
    word = line[start:end].strip(".")
    before = line[:start]
    return word, before.endswith("$") or _OPEN_EXPRESSION.search(before) is not None


def row_markdown(row: RowInfo, vocab: Vocabulary, stale: bool) -> str:
    """`**inception_3a**: inception (block) ...` then `28x28x256 · 163,696 params · 128M MACs`."""
    report, graph_row = row.report, row.row
    kind = graph_row.kind
    if kind in REGISTRY:
        what = graph_row.label if graph_row.label == kind else f"{graph_row.label} ({kind})"
    elif kind in vocab.blocks:
        what = f"{kind} (block)"
    else:
        what = graph_row.label or kind
    head = f"**{graph_row.name}**: {what}"
    if report.window:
        head += f", patch/stride {report.window}"
    if report.args:
        head += ", args " + " ".join(str(arg) for arg in report.args)
    numbers = (
        f"{format_shape(report.output_shape)} · {report.params:,} params · "
        f"{human(report.macs)} MACs"
    )
    details = [f"depth {report.depth}", f"{report.macs:,} multiply-adds"]
    if report.state:
        details.append(f"{report.state:,} statistics")
    if report.train_only:
        details.append("train only (auxiliary head)")
    lines = [head, "", numbers, "", "; ".join(details)]
    if stale:
        lines += ["", "_from the last version of the spec that analysed_"]
    return "\n".join(lines)


def hover_markdown(
    line: str, column: int, rows: list[RowInfo], vocab: Vocabulary, stale: bool
) -> str | None:
    """What to show at `column` of `line`: the word's meaning (layer type, block, variable)
    and the row written on the line, if any."""
    parts = []
    word, variable = word_at(line, column)
    if variable and word in vocab.variables:
        parts.append(f"`{word}` = `{vocab.variables[word]}`")
    elif word and not variable:
        layer = layer_type(word)
        if layer is not None:
            parts.append(layer_markdown(layer.name))
        elif word in vocab.blocks:
            parts.append(vocab.block_markdown(word))
    if rows:
        chosen = rows[0]
        for row in rows:
            if row.column <= column:
                chosen = row
        parts.insert(0, row_markdown(chosen, vocab, stale))
    return "\n\n---\n\n".join(parts) if parts else None
