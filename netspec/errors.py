"""The one error type every bad spec ends in, and helpers to make its message precise."""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from dataclasses import dataclass


@dataclass(frozen=True)
class Location:
    """A position in a source file; line and column are 1-based, as editors show them."""

    file: str
    line: int
    column: int

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.column}"

    def shifted(self, columns: int) -> Location:
        """The same line, `columns` characters further right (for positions inside a scalar)."""
        return Location(self.file, self.line, self.column + columns)


class SpecError(Exception):
    """A problem in a spec the user wrote: where it is, what is wrong, and what to write instead.

    Rendered by `str()` as ``file:line:col: path: field: message`` followed by an indented hint.
    """

    def __init__(
        self,
        message: str,
        location: Location | None = None,
        *,
        path: str | None = None,
        field: str | None = None,
        hint: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.location = location
        self.path = path
        self.field = field
        self.hint = hint

    def with_context(
        self, *, location: Location | None = None, path: str | None = None, field: str | None = None
    ) -> SpecError:
        """Fill in whatever context is still missing, keeping what is already known."""
        if self.location is None:
            self.location = location
        if self.path is None:
            self.path = path
        if self.field is None:
            self.field = field
        return self

    def __str__(self) -> str:
        head = [str(self.location)] if self.location else []
        if self.path:
            head.append(self.path)
        if self.field:
            head.append(self.field)
        text = "".join(f"{part}: " for part in head) + self.message
        if self.hint:
            text += "\n  " + self.hint
        return text


class SpecWarning(SpecError):
    """Something in a spec that compiles but is probably not what the author meant (a row whose
    output nothing reads). Rendered like a SpecError; never raised by netspec."""


def did_you_mean(word: str, candidates: Iterable[str]) -> str | None:
    """A ``did you mean 'x'?`` hint for the closest candidate, or None if nothing is close."""
    matches = difflib.get_close_matches(str(word), sorted(set(candidates)), n=1, cutoff=0.6)
    return f"did you mean '{matches[0]}'?" if matches else None
