"""The `--dry-run` table: each netspec layer, its variables, the source layer that fills it."""

from __future__ import annotations

from rich.console import Console
from rich.table import Table

from .plan import LoadPlan


def print_plan(plan: LoadPlan, console: Console | None = None) -> None:
    """Print `plan` as a table, then one line of totals."""
    console = console or Console()
    table = Table(
        title=f"{plan.source.description}, paired {plan.pairing}",
        title_justify="left",
    )
    for heading in ("netspec layer", "shapes", "source layer", ""):
        table.add_column(heading, overflow="fold")
    for row in plan.rows():
        table.add_row(row["layer"], row["shapes"], row["source"], row["status"])
    console.print(table)
    kept = [a.target.name for a in plan.assignments if not a.values]
    console.print(
        f"{plan.loaded:,} values from {sum(1 for a in plan.assignments if a.values)} layers; "
        f"initialised here: {', '.join(kept) if kept else 'none'}"
        + (
            f"; ignored in the source: {len(plan.source.ignored)} tensors"
            if plan.source.ignored
            else ""
        )
    )
