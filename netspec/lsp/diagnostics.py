"""netspec's located errors and warnings as LSP diagnostics."""

from __future__ import annotations

from lsprotocol import types

from ..errors import SpecError
from .analysis import Analysis
from .positions import client_units, token_span

SOURCE = "netspec"


def message_of(error: SpecError) -> str:
    """`row path: field: what is wrong`, then the hint on its own line."""
    text = ": ".join([part for part in (error.path, error.field) if part] + [error.message])
    return f"{text}\n{error.hint}" if error.hint else text


def error_range(error: SpecError, lines: list[str], filename: str, encoding: str) -> types.Range:
    """The token the error points at (1-based line and column -> 0-based, in the client's
    units); line 0 (its whole text) when the error has no place in this document."""
    location = error.location
    if location is None or location.file != filename or not lines:
        end = client_units(lines[0], encoding) if lines else 0
        return types.Range(types.Position(0, 0), types.Position(0, end))
    line_no = max(0, min(location.line - 1, len(lines) - 1))
    line = lines[line_no]
    start, end = token_span(line, location.column - 1)
    return types.Range(
        types.Position(line_no, client_units(line[:start], encoding)),
        types.Position(line_no, client_units(line[:end], encoding)),
    )


def diagnostics(analysis: Analysis, encoding: str) -> list[types.Diagnostic]:
    """Errors (ordered by line, as netspec finds them), then warnings."""
    found = []
    for problems, severity in (
        (analysis.errors, types.DiagnosticSeverity.Error),
        (analysis.warnings, types.DiagnosticSeverity.Warning),
    ):
        for problem in problems:
            found.append(
                types.Diagnostic(
                    range=error_range(problem, analysis.lines, analysis.filename, encoding),
                    message=message_of(problem),
                    severity=severity,
                    source=SOURCE,
                )
            )
    return found
