"""From a spec file (or YAML text) to its Graph and Report; where the zoo lives."""

from __future__ import annotations

import contextlib
import gc
import os
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from .analyze import Report, analyze
from .errors import SpecError, raise_all
from .expand import expand
from .graph import Graph
from .load import load_yaml, resolve_scalar
from .parse import RowsLeftOut, parse_spec
from .tree import SpecTree

SpecSource = str | os.PathLike[str]


def zoo_dir() -> Path:
    """The folder of bundled specs: inside the installed package, else the repository's specs/."""
    packaged = Path(__file__).parent / "zoo"
    return packaged if packaged.is_dir() else Path(__file__).parent.parent / "specs"


def zoo_names() -> list[str]:
    return sorted(p.stem for p in zoo_dir().glob("*.yaml"))


def find_spec(name: SpecSource) -> Path:
    """A path as given, or the zoo spec of that name (`googlenet` -> .../googlenet.yaml)."""
    path = Path(name)
    if path.exists():
        return path
    candidate = zoo_dir() / f"{path.stem if path.suffix else path.name}.yaml"
    if not path.parent.parts and candidate.exists():
        return candidate
    from .errors import did_you_mean

    hint = did_you_mean(path.stem, zoo_names())
    raise SpecError(
        "no such spec file",
        path=str(name),
        hint=hint or "give a path to a .yaml file or a zoo name: " + ", ".join(zoo_names()),
    )


def read_source(source: SpecSource) -> tuple[str, bytes]:
    """(filename, bytes) for a path, zoo name, or YAML text (text contains a newline or ':')."""
    if isinstance(source, str) and (
        "\n" in source or (":" in source and not Path(source).exists())
    ):
        return "<text>", source.encode("utf-8")
    path = find_spec(source)
    if path.is_dir():
        raise SpecError("is a directory, not a spec file", path=str(path))
    try:
        return str(path), path.read_bytes()
    except OSError as error:
        raise SpecError(f"cannot read it: {error.strerror}", path=str(path)) from None


def parse_overrides(pairs: list[str] | Mapping[str, Any] | None) -> dict[str, Any]:
    """`["num_classes=5"]` -> {"num_classes": 5}; values read as YAML 1.2 scalars, or flow
    lists and maps (`[a, b]`, `{until: bn}`)."""
    if pairs is None:
        return {}
    if isinstance(pairs, Mapping):
        return dict(pairs)
    result: dict[str, Any] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise SpecError(f"--set {pair!r}: expected NAME=VALUE, e.g. --set num_classes=5")
        if value.strip().startswith(("[", "{")):
            try:
                result[key.strip()] = load_yaml(value, "--set")
            except SpecError as error:
                raise SpecError(
                    f"--set {key.strip()}: cannot read {value!r}: {error.message}",
                    hint=error.hint,
                ) from None
        else:
            result[key.strip()] = resolve_scalar(value.strip())
    return result


@contextlib.contextmanager
def paused_gc() -> Iterator[None]:
    """Python's cyclic garbage collector paused for the front end's burst of small objects:
    each full collection scans every live object, which makes a 20,000-row spec's front end
    grow faster than its row count. Reference counting still frees what is dropped."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def load_and_resolve(
    source: SpecSource, overrides: list[str] | Mapping[str, Any] | None = None
) -> tuple[Any, str, SpecTree, Graph]:
    """(located YAML data, source text, syntax tree, Graph) of a spec: loaded, parsed once,
    expanded with the overrides."""
    filename, data = read_source(source)
    with paused_gc():
        located = load_yaml(data, filename)
        text = data.decode("utf-8", errors="replace")
        tree, graph = resolve_tree(located, filename, text, parse_overrides(overrides))
        return located, text, tree, graph


def resolve_tree(
    located: Any, filename: str, text: str, overrides: Mapping[str, Any]
) -> tuple[SpecTree, Graph]:
    """(syntax tree, Graph) of loaded spec data. When some rows cannot be read, the others are
    still expanded so that their problems are reported in the same SpecErrors."""
    try:
        tree = parse_spec(located, filename, text)
    except RowsLeftOut as partial:
        try:
            expand(partial.tree, overrides)
        except SpecError as more:
            raise_all([partial, more])
        except Exception:
            # Expanding without the left-out rows broke on something they would have
            # provided: what parsing found is the report.
            pass
        raise
    return tree, expand(tree, overrides)


def resolve_source(
    source: SpecSource, overrides: list[str] | Mapping[str, Any] | None = None
) -> Graph:
    """Load, validate and expand a spec into its Graph."""
    return load_and_resolve(source, overrides)[3]


def analyze_spec(
    source: SpecSource, overrides: list[str] | Mapping[str, Any] | None = None
) -> Report:
    """The full analysis of a spec (path, zoo name or YAML text): shapes, params, MACs."""
    return analyze(resolve_source(source, overrides))
