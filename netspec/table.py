"""Render a Report as the paper-style table (rich), like Table 1 of the GoogLeNet paper."""

from __future__ import annotations

import sys

from rich.console import Console
from rich.table import Table

from .analyze import Report
from .layers import format_shape


def human(count: int) -> str:
    """1234567 -> '1.23M' (decimal units, three significant digits)."""
    for unit, scale in (("G", 10**9), ("M", 10**6), ("K", 10**3)):
        if count >= scale:
            value = count / scale
            digits = 2 if value < 10 else 1 if value < 100 else 0
            return f"{value:.{digits}f}{unit}"
    return str(count)


def build_table(report: Report) -> Table:
    """One line per row: name, type, patch size/stride, output size, depth, args, params, MACs."""
    table = Table(
        title=f"{report.name}  (input {format_shape(report.input_shape)})",
        title_justify="left",
        header_style="bold",
    )
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
        label = row.label + (" [dim](train)[/]" if row.train_only else "")
        table.add_row(
            row.name,
            label,
            row.window,
            format_shape(row.output_shape),
            str(row.depth) if row.depth else "",
            " ".join(map(str, row.args)),
            human(row.params) if row.params else "",
            human(row.macs) if row.macs else "",
        )
    return table


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


def print_report(report: Report, console: Console | None = None) -> None:
    # Piped output gets a wide console: rich would otherwise fold the table into 80 columns.
    console = console or Console(width=None if sys.stdout.isatty() else 140)
    console.print(build_table(report))
    for line in totals_lines(report):
        console.print(line, highlight=False)
