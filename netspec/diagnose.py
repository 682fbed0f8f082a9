"""Every located problem in a spec's text at once, for `netspec compile` and editors."""

from __future__ import annotations

from .analyze import analyze
from .errors import SpecError
from .load import load_yaml
from .specfile import paused_gc, resolve_tree


def find_errors(text: str, filename: str = "<text>") -> list[SpecError]:
    """The problems in `text` (a spec's YAML), ordered by line; empty when it compiles.

    Each error carries `location` (1-based line and column in `filename`) where known.
    """
    try:
        with paused_gc():
            located = load_yaml(text.encode("utf-8"), filename)
            analyze(resolve_tree(located, filename, text, {})[1])
    except SpecError as error:
        return list(getattr(error, "errors", [error]))
    return []
