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


SHOWN_AT_ONCE = 20
"""How many errors `SpecErrors` prints; the rest are counted."""


def by_position(error: SpecError) -> tuple[int, str, int, int]:
    """Sort key: located errors by file, line and column; unlocated ones last."""
    where = error.location
    if where is None:
        return (1, "", 0, 0)
    return (0, where.file, where.line, where.column)


class SpecErrors(SpecError):
    """Several independent problems found in one reading of a spec, ordered by line.

    Behaves as its first error (`message`, `location`, ...) for code that expects one;
    `errors` holds them all, and `str()` shows up to `SHOWN_AT_ONCE` and counts the rest.
    """

    def __init__(self, errors: list[SpecError]) -> None:
        unique: dict[str, SpecError] = {}
        for error in sorted(errors, key=by_position):
            unique.setdefault(str(error), error)
        self.errors = list(unique.values())
        first = self.errors[0]
        super().__init__(
            first.message, first.location, path=first.path, field=first.field, hint=first.hint
        )

    def __str__(self) -> str:
        if len(self.errors) == 1:
            return str(self.errors[0])
        shown = [str(error) for error in self.errors[:SHOWN_AT_ONCE]]
        rest = len(self.errors) - len(shown)
        if rest:
            shown.append(f"... and {rest} more error{'s' if rest > 1 else ''}")
        return f"{len(self.errors)} errors:\n" + "\n".join(shown)


def raise_all(errors: list[SpecError]) -> None:
    """Raise nothing for no errors, the error itself for one, `SpecErrors` for several."""
    if len(errors) == 1 and not isinstance(errors[0], SpecErrors):
        raise errors[0]
    if errors:
        flat = [e for error in errors for e in getattr(error, "errors", [error])]
        raise SpecErrors(flat)
