"""One reading of a document's text: its errors, its warnings and, when it analyses, its rows.

The errors are `netspec.diagnose.find_errors`'s (or those of the same steps run here). The
analysis leaves the expectations (`-> 28x28x256 ...`) out and checks every row's after it, so
a row whose expectation differs still shows its numbers next to it. Only what the editor
needs is kept (rows, the spec's variables and blocks): a long spec's syntax tree and graph are
hundreds of thousands of objects that every garbage collection would walk. Never imports JAX.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from functools import cached_property

from ..analyze import Report, RowReport, analyze, check_expectation
from ..diagnose import find_errors
from ..docs import show_value
from ..errors import SpecError, SpecWarning
from ..graph import Graph, Row
from ..load import load_yaml
from ..specfile import paused_gc, resolve_tree
from ..tree import SpecTree
from .positions import split_lines
from .vocabulary import BlockInfo, value_text

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RowInfo:
    """A top-level row of the table, the 0-based line and column where the spec names it, and
    its analysis."""

    line: int
    column: int
    row: Row
    report: RowReport


@dataclass(frozen=True)
class Analysis:
    """What netspec says about one version of a document's text.

    `analysed`: the rows' shapes and costs are known (expectations aside); `rows` are the
    table's rows in order, with their lines. `parsed`: `variables` (name -> value as text)
    and `blocks` are the spec's.
    """

    text: str
    filename: str
    errors: tuple[SpecError, ...] = ()
    warnings: tuple[SpecWarning, ...] = ()
    analysed: bool = False
    rows: tuple[RowInfo, ...] = ()
    parsed: bool = False
    variables: Mapping[str, str] = field(default_factory=dict)
    blocks: Mapping[str, BlockInfo] = field(default_factory=dict)
    seconds: float = 0.0

    @cached_property
    def lines(self) -> list[str]:
        return split_lines(self.text)


def analyze_text(text: str, filename: str, likely_clean: bool = False) -> Analysis:
    """Read `text` as the spec `filename`. Never raises: an unexpected exception (a bug) is
    logged with its traceback and reported as an error at the top of the file.

    With `likely_clean` (the previous version analysed) the text is read once, as
    `find_errors` reads it; otherwise `find_errors` goes first, and a spec that compiles (or
    only misses expectations) is read a second time for its rows.
    """
    start = time.perf_counter()
    try:
        if safe_text(text) != text:
            return Analysis(text, filename, (undecodable(text, filename),))
        if not likely_clean:
            errors = find_errors(text, filename)
            if any(error.field != "expect" for error in errors):
                return Analysis(text, filename, tuple(errors), seconds=time.perf_counter() - start)
        return read(text, filename, start)
    except Exception as error:
        log.exception("netspec could not check %s", filename)
        problem = SpecError(
            f"netspec could not check this text ({type(error).__name__}: {error})",
            hint="this is a bug in netspec; the server's log has the traceback",
        )
        return Analysis(text, filename, (problem,), seconds=time.perf_counter() - start)


def read(text: str, filename: str, start: float) -> Analysis:
    """One reading of the text, the steps of `find_errors` (load, resolve, analyze), with the
    expectations left out of the analysis and checked row by row after it."""
    tree: SpecTree | None = None
    try:
        with paused_gc():
            located = load_yaml(text, filename)
            tree, graph = resolve_tree(located, filename, text, {})
            report = analyze(without_expectations(graph))
    except SpecError as error:
        errors = tuple(getattr(error, "errors", [error]))
        partial = tree or getattr(error, "tree", None)  # the rows that could be read
        if not isinstance(partial, SpecTree):
            return Analysis(text, filename, errors, seconds=time.perf_counter() - start)
        return Analysis(
            text,
            filename,
            errors,
            parsed=True,
            variables=spec_variables(partial, None),
            blocks=spec_blocks(partial),
            seconds=time.perf_counter() - start,
        )
    return Analysis(
        text,
        filename,
        tuple(expectation_errors(graph, report)),
        report.warnings,
        True,
        table_rows(graph, report, filename),
        True,
        spec_variables(tree, graph),
        spec_blocks(tree),
        time.perf_counter() - start,
    )


def safe_text(text: str) -> str:
    """`text` with lone surrogates (valid JSON, not valid UTF-8) replaced by U+FFFD."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return text.encode("utf-8", "surrogatepass").decode("utf-8", "replace")
    return text


def undecodable(text: str, filename: str) -> SpecError:
    """The error for text that is not UTF-8 (the loader says where)."""
    try:
        load_yaml(text, filename)
    except SpecError as error:
        return error
    return SpecError("the text is not valid UTF-8")


def without_expectations(graph: Graph) -> Graph:
    """The graph with its rows' `expect` dropped: analyze() stops at the first that differs."""
    if not any(row.expect for row in graph.rows):
        return graph
    return replace(graph, rows=tuple(replace(row, expect=None) for row in graph.rows))


def expectation_errors(graph: Graph, report: Report) -> list[SpecError]:
    """Every row whose expectation differs from its analysis."""
    errors = []
    for row, row_report in zip(graph.rows, report.rows, strict=True):
        try:
            check_expectation(row, row_report)
        except SpecError as error:
            errors.append(error)
    return errors


def table_rows(graph: Graph, report: Report, filename: str) -> tuple[RowInfo, ...]:
    """Graph rows (with where they are written) beside their reports; the two come in the same
    order, which is checked by name."""
    if len(graph.rows) != len(report.rows):
        log.warning("the graph has %d rows, the report %d", len(graph.rows), len(report.rows))
        return ()
    rows = []
    for row, row_report in zip(graph.rows, report.rows, strict=True):
        if row.name != row_report.name:
            log.warning("graph row %r and report row %r differ", row.name, row_report.name)
            return ()
        origin = row.origin
        if origin is not None and origin.file == filename:
            rows.append(RowInfo(origin.line - 1, origin.column - 1, row, row_report))
    return tuple(rows)


def spec_variables(tree: SpecTree, graph: Graph | None) -> dict[str, str]:
    """The spec's variables -> their values as text (computed ones evaluated when `graph`)."""
    found = {name: value_text(value) for name, value in tree.variables}
    for name in found:
        if graph is not None and name in graph.variables:
            found[name] = show_value(graph.variables[name])
    return found


def spec_blocks(tree: SpecTree) -> dict[str, BlockInfo]:
    return {
        block.name: BlockInfo(block.name, tuple(a.name for a in block.arguments), block.doc)
        for block in tree.blocks
    }
