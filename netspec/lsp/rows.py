"""The table's numbers next to the text: inlay hints at the end of row lines, and the rows of
an older analysis carried over to lines of the current text that did not change."""

from __future__ import annotations

from ..layers import format_shape
from ..table import human
from .analysis import RowInfo


def hint_label(row: RowInfo) -> str:
    """`→ 28x28x256  164K  128M` (the counts left out when both are zero, as the paper does)."""
    report = row.report
    label = f"→ {format_shape(report.output_shape)}"
    if report.params or report.macs:
        label += f"  {human(report.params)}  {human(report.macs)}"
    if report.train_only:
        label += "  (train)"
    return label


def hint_tooltip(row: RowInfo, stale: bool) -> str:
    report = row.report
    text = (
        f"{row.row.name}: output {format_shape(report.output_shape)}, "
        f"{report.params:,} parameters, {report.macs:,} multiply-adds"
    )
    if stale:
        text += " (from the last version of the spec that analysed)"
    return text


def by_line(rows: list[tuple[int, RowInfo]]) -> dict[int, list[RowInfo]]:
    """Rows grouped by the line they are written on."""
    grouped: dict[int, list[RowInfo]] = {}
    for line, row in rows:
        grouped.setdefault(line, []).append(row)
    return grouped


def line_label(rows: list[RowInfo]) -> str:
    """One line's hint: the row's, or each row's with its name when a line holds several."""
    if len(rows) == 1:
        return hint_label(rows[0])
    return "  ".join(f"{row.row.name} {hint_label(row)}" for row in rows)


def carried(rows: tuple[RowInfo, ...], old: list[str], new: list[str]) -> list[tuple[int, RowInfo]]:
    """The rows of an analysis of the lines `old`, on their lines in `new`: those before the
    first changed line stay, those after the last move with the lines inserted or deleted,
    and those in between are dropped (their numbers may no longer hold)."""
    limit = min(len(old), len(new))
    head = 0
    while head < limit and old[head] == new[head]:
        head += 1
    tail = 0
    while tail < limit - head and old[-1 - tail] == new[-1 - tail]:
        tail += 1
    shift = len(new) - len(old)
    kept = []
    for row in rows:
        if row.line < head:
            kept.append((row.line, row))
        elif row.line >= len(old) - tail:
            kept.append((row.line + shift, row))
    return kept
