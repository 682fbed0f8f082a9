"""Python source from spec values: the only way spec text reaches generated code.

A spec is untrusted data. Generated source is assembled from values, never by pasting spec text:
names become identifiers through `identifier` (ASCII letters, digits and `_` only), strings become
literals through `string_literal`, free text becomes docstrings and comments through `docstring`
and `comment`, numbers become literals through `literal`. `audit` then parses the generated module
and refuses any name it does not define or expect, so a bug in the generator cannot turn spec text
into a call either.
"""

from __future__ import annotations

import ast
import keyword
import math
import re
from collections.abc import Collection, Iterable

__all__ = [
    "RESERVED",
    "UnsafeSourceError",
    "audit",
    "comment",
    "docstring",
    "identifier",
    "literal",
    "string_literal",
]

RESERVED = frozenset(
    {
        *keyword.kwlist,
        "self",
        "x",
        "train",
        "kw",
        "rngs",
        "dtype",
        "param_dtype",
        "in_shape",
        "out_shape",
        "jnp",
        "jax",
        "nnx",
        "np",
        "math",
        "items",
        "item",
        "shape",
        "eval",
        "sow",
        "perturb",
        "set_attributes",
        "iter_modules",
        "iter_children",
        "loss_weights",
        "heads",
        "output_activation",
        "i",
        "Group",
        "format",
        "float",
        "range",
        "int",
        "abs",
        "len",
        "max",
        "min",
        "round",
        "dict",
        "bool",
    }
)
"""Names the generated code uses itself (or nnx.Module defines): a spec name equal to one of them
gets a trailing `_`."""

_NOT_IDENTIFIER_CHAR = re.compile(r"[^0-9A-Za-z_]")


def identifier(name: object) -> str:
    """A spec name as a Python identifier: `3a` -> `_3a`, `eval` -> `eval_`, `a²` -> `a_`.

    Only ASCII letters, digits and `_` survive (Python folds some Unicode letters together, e.g.
    `ﬁ` and `fi`); distinct names can map to one identifier, so callers check for collisions.
    Names that start with `__` get a leading `n` so no spec name can spell a dunder.
    """
    text = _NOT_IDENTIFIER_CHAR.sub("_", str(name))
    if not text or text[0].isdigit():
        text = "_" + text
    if text.startswith("__"):
        text = "n" + text
    return text + "_" if text in RESERVED else text


def string_literal(text: str) -> str:
    """A Python string literal whose value is exactly `text` (quotes, backslashes, control and
    non-BMP characters included)."""
    return repr(str(text))


def literal(value: object) -> str:
    """Python source for a plain value: str, int, float (nan and inf included), bool, None, or
    lists of them (as tuples, which nnx accepts as static attributes)."""
    if isinstance(value, list | tuple):
        items = [literal(v) for v in value]
        return "(" + ", ".join(items) + ("," if len(items) == 1 else "") + ")"
    if isinstance(value, str):
        return string_literal(value)
    if isinstance(value, bool) or value is None:
        return repr(value)
    if isinstance(value, int):
        return repr(int(value))
    if isinstance(value, float):
        if math.isnan(value) or math.isinf(value):
            return f"float({repr(value)!r})"
        return repr(float(value))
    raise TypeError(f"no Python literal for a {type(value).__name__}")


def _printable(text: str) -> str:
    """`text` with every character Python's tokenizer might not keep on one line (or that an
    editor would hide) replaced by its escape, e.g. `\\x00`, `\\u2028`."""
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


def docstring(text: str, indent: str = "") -> str:
    """A triple-quoted docstring showing `text` (characters that are not printable appear as
    their escapes); lines after the first get `indent`."""
    shown = _printable_lines(text)
    # Backslashes doubled; a quote escaped where it could join others into a closing `"""`.
    body = re.sub(r'"(?="|$)', r'\\"', shown.replace("\\", "\\\\"))
    source = '"""' + body.replace("\n", "\n" + indent) + '"""'
    if ast.literal_eval(source).replace("\n" + indent, "\n") != shown:
        raise UnsafeSourceError(f"cannot write {text!r} as a docstring")
    return source


def _printable_lines(text: str) -> str:
    return "\n".join(_printable(line) for line in str(text).split("\n"))


def comment(text: str) -> str:
    """A `# ...` comment showing `text` on one line (line breaks and control characters escaped)."""
    return "# " + _printable(str(text))


class UnsafeSourceError(RuntimeError):
    """Generated source failed `audit`: a netspec bug, never the user's fault."""


_BUILTINS = frozenset(
    {"range", "float", "int", "format", "abs", "len", "max", "min", "round", "dict", "bool"}
)


def audit(source: str, provided: Collection[str]) -> None:
    """Refuse generated source that reads a name it neither defines nor is given.

    `provided` lists the names the module's preamble imports or defines (layer classes, `jnp`,
    ...). Every other name a generated expression reads must be bound inside the generated code
    itself (a class, a parameter, an assignment, a loop variable) or be one of a few builtins;
    attributes may not start with `__`. So even a generator bug cannot make spec text call
    `open`, `__import__` or `eval`.
    """
    tree = ast.parse(source)
    bound = set(provided) | _BUILTINS | set(_bound_names(ast.walk(tree)))
    for node in ast.walk(tree):
        if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Load) and node.id not in bound:
            raise UnsafeSourceError(f"generated code reads the unknown name {node.id!r}")
        if isinstance(node, ast.Attribute) and node.attr.startswith("__"):
            raise UnsafeSourceError(f"generated code uses the attribute {node.attr!r}")
        if isinstance(node, ast.Import | ast.ImportFrom | ast.Global | ast.Nonlocal | ast.Lambda):
            raise UnsafeSourceError(f"generated code contains {type(node).__name__}")


def _bound_names(nodes: Iterable[ast.AST]) -> Iterable[str]:
    for node in nodes:
        if isinstance(node, ast.ClassDef | ast.FunctionDef):
            yield node.name
        elif isinstance(node, ast.arg):
            yield node.arg
        elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
            yield node.id
