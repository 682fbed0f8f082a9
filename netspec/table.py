"""Render a Report as the paper-style table (rich), like Table 1 of the GoogLeNet paper.

Two layouts: the wide one has a column per field (name, type, patch/stride, output size,
depth, args, params, MACs); the compact one, used when the wide one does not fit the
terminal, joins type, patch/stride and args in one wrapping column and drops the rules, so
GoogLeNet reads at 80 columns. Output sizes, parameters and MACs are never wrapped or cut.
"""

from __future__ import annotations

import os
import sys

from rich.console import Console
from rich.measure import Measurement
from rich.table import Table

from .analyze import Report, RowReport
from .layers import format_shape

NARROWEST = 40
"""Below this many columns the table is printed at this width (and the terminal wraps it)."""


UNLIMITED = 10_000
"""The console width standing for "no limit" (piped output, --wide)."""
NAME_FOLDS_PAST = 24
"""Names up to this long keep their line in the compact layout; longer ones fold."""


def human(count: int) -> str:
    """1234567 -> '1.23M' (decimal units, three significant digits)."""
    for unit, scale in (("G", 10**9), ("M", 10**6), ("K", 10**3)):
        if count >= scale:
            value = count / scale
            digits = 2 if value < 10 else 1 if value < 100 else 0
            return f"{value:.{digits}f}{unit}"
    return str(count)


def title(report: Report) -> str:
    return f"{report.name}  (input {format_shape(report.input_shape)})"


def row_label(row: RowReport) -> str:
    return row.label + (" [dim](train)[/]" if row.train_only else "")


def build_table(report: Report) -> Table:
    """The wide layout: one line per row, one column per field."""
    table = Table(title=title(report), title_justify="left", header_style="bold")
    for heading, justify in (
        ("name", "left"),
        ("type", "left"),
        ("patch/stride", "left"),
        ("output size", "right"),
        ("depth", "right"),
        ("args", "left"),
        ("params", "right"),
        ("MACs", "right"),
    ):
        table.add_column(heading, justify=justify)  # type: ignore[arg-type]
    for row in report.rows:
        table.add_row(
            row.name,
            row_label(row),
            row.window,
            format_shape(row.output_shape),
            str(row.depth) if row.depth else "",
            " ".join(map(str, row.args)),
            human(row.params) if row.params else "",
            human(row.macs) if row.macs else "",
        )
    return table


def build_compact_table(report: Report) -> Table:
    """The narrow layout: `type` holds the label, patch/stride and args and wraps; names fold;
    the numeric columns keep their full text."""
    table = Table(
        title=title(report),
        title_justify="left",
        box=None,
        header_style="bold underline",
        pad_edge=False,
        padding=(0, 1, 0, 0),
    )
    longest = max((len(row.name) for row in report.rows), default=4)
    table.add_column("name", overflow="fold", min_width=min(longest, NAME_FOLDS_PAST))
    table.add_column("type / args", overflow="fold")
    for heading in ("output size", "depth", "params", "MACs"):
        table.add_column(heading, justify="right", no_wrap=True)
    for row in report.rows:
        kind = " ".join(
            part for part in (row_label(row), row.window, " ".join(map(str, row.args))) if part
        )
        table.add_row(
            row.name,
            kind,
            format_shape(row.output_shape),
            str(row.depth) if row.depth else "",
            human(row.params) if row.params else "",
            human(row.macs) if row.macs else "",
        )
    return table


def natural_width(console: Console, table: Table) -> int:
    """Columns the table needs with nothing wrapped."""
    return Measurement.get(console, console.options.update(width=UNLIMITED), table).maximum


def fitted_table(report: Report, width: int | None) -> tuple[Table, int]:
    """(table, width to print it at): the wide layout when it fits `width` (None: no limit),
    else the compact one."""
    measuring = Console(width=UNLIMITED, file=open(os.devnull, "w"))  # noqa: SIM115
    wide = build_table(report)
    wide_width = natural_width(measuring, wide)
    if width is None or wide_width <= width:
        return wide, wide_width
    compact = build_compact_table(report)
    return compact, max(min(width, natural_width(measuring, compact)), NARROWEST)


def terminal_width() -> int | None:
    """The width to fit: `COLUMNS` when set, else the terminal's; None when piped (no limit)."""
    columns = os.environ.get("COLUMNS", "")
    if columns.isdigit() and int(columns) > 0:
        return int(columns)
    if sys.stdout.isatty():
        return os.get_terminal_size(sys.stdout.fileno()).columns
    return None


def totals_lines(report: Report) -> list[str]:
    """The totals under the table: params (with and without train-only heads), state, MACs."""
    lines = [
        f"params: {report.params:,} trainable"
        + (
            f" ({report.inference_params:,} without train-only heads)"
            if report.inference_params != report.params
            else ""
        ),
    ]
    if report.state:
        lines.append(f"state: {report.state:,} (batch-norm running statistics, not trained)")
    lines.append(
        f"MACs: {report.macs:,} per image ({human(report.macs)}); "
        f"FLOPs = 2 x MACs = {human(2 * report.macs)}"
    )
    if report.heads:
        heads = ", ".join(f"{row} (loss weight {weight:g})" for row, weight in report.heads)
        lines.append(f"auxiliary heads, train only: {heads}")
    return lines


def render_report(report: Report, width: int | None = None) -> str:
    """The table and its totals as text, fitted to `width` columns (None: the wide layout)."""
    table, table_width = fitted_table(report, width)
    console = Console(
        width=max(width or UNLIMITED, table_width),
        record=True,
        file=open(os.devnull, "w"),  # noqa: SIM115
    )
    console.print(table)
    for line in totals_lines(report):
        console.print(line, highlight=False)
    return "".join(line.rstrip() + "\n" for line in console.export_text().splitlines())


def print_report(report: Report, wide: bool = False, console: Console | None = None) -> None:
    """Print the table fitted to the terminal (`wide`: always the wide layout)."""
    width = None if wide else terminal_width()
    table, table_width = fitted_table(report, width)
    console = console or Console(width=max(width or UNLIMITED, table_width))
    console.print(table)
    for line in totals_lines(report):
        console.print(line, highlight=False)
