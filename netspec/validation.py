"""Turn pydantic validation errors into one located SpecError a person can act on.

Messages read `FIELD must be EXPECTED, got VALUE`; pydantic's own location parts (union tags
such as `list[union[int,str]]`) never reach the user.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel, ValidationError

from .errors import Location, SpecError, did_you_mean
from .load import YamlMap, locate

YAML11_BOOLEANS = {
    word
    for base in ("yes", "no", "on", "off", "y", "n")
    for word in (base, base.capitalize(), base.upper())
}
TYPE_WORDS = {
    "int_parsing": "a whole number",
    "int_type": "a whole number",
    "int_from_float": "a whole number",
    "float_parsing": "a number",
    "float_type": "a number",
    "bool_type": "true or false",
    "bool_parsing": "true or false",
    "string_type": "text",
    "list_type": "a list",
    "tuple_type": "a list",
    "dict_type": "a mapping",
    "model_type": "a mapping",
    "model_attributes_type": "a mapping",
}
CONSTRAINTS = {
    "greater_than_equal": "at least {ge}",
    "greater_than": "greater than {gt}",
    "less_than_equal": "at most {le}",
    "less_than": "less than {lt}",
    "too_short": "at least {min_length} item(s)",
}
ROW_HINT = "a row is `- name: TYPE args...`, e.g. `- conv1: conv 3x3 64`"


def validate_model(
    model: type[BaseModel],
    values: dict[str, Any],
    locations: Mapping[str, Location | None],
    fallback: Location | None,
    trail: str,
    what: str,
    key_locations: Mapping[str, Location | None] | None = None,
) -> BaseModel:
    """Validate `values` against a params model. A bad value is reported where the value is
    written (`locations`), an unknown or missing field where its key is (`key_locations`)."""
    try:
        return model.model_validate(values)
    except ValidationError as error:
        first = most_telling(error.errors())
        name = str(first["loc"][0]) if first["loc"] else None
        keys = key_locations or {}
        where = keys if first["type"] == "extra_forbidden" else locations
        location = where.get(name) or locations.get(name) if name else None
        message, hint = explain_field(error, model, name, what)
        raise SpecError(message, location or fallback, path=trail, field=name, hint=hint) from None


def explain_field(
    error: ValidationError, model: type[BaseModel], name: str | None, what: str
) -> tuple[str, str | None]:
    """A message and hint for the field that failed (all union alternatives considered)."""
    problems = [e for e in error.errors() if (str(e["loc"][0]) if e["loc"] else None) == name]
    first = most_telling(problems or error.errors())
    fields = list(model.model_fields)
    if first["type"] == "extra_forbidden":
        hint = did_you_mean(name or "", fields)
        return f"{what} has no parameter '{name}'", hint or f"{what} takes: " + ", ".join(fields)
    if first["type"] == "missing":
        return f"{what} needs '{name}'", f"{what} takes: " + ", ".join(fields)
    if not name:
        return clean(first["msg"]), None
    described = model.model_fields[name].description if name in model.model_fields else None
    return describe_problem(name, problems, described)


def describe_problem(
    name: str, problems: list[Any], described: str | None = None
) -> tuple[str, str | None]:
    """`name must be ..., got ...` for one value, with a hint for the usual mistakes."""
    first = most_telling(problems)
    value = first.get("input")
    if first["type"] in CONSTRAINTS:
        expected = CONSTRAINTS[first["type"]].format(**(first.get("ctx") or {}))
    elif described:  # a union: say what the field takes, not what each alternative said
        expected = described
    elif first["type"] == "value_error":
        return clean(first["msg"]), hint_for(value, problems)
    else:
        expected = " or ".join(dict.fromkeys(phrase(e) for e in problems))
    return f"must be {expected}, got {short(value)}", hint_for(value, problems)


YAML_WORDS = {"False": "false", "True": "true", "None": "null"}
"""Python's spelling of an unquoted literal in pydantic's `expected`, and the YAML one."""


def expected_words(problem: Any) -> str:
    """A literal error's allowed values as a user writes them in YAML: `'rows'` as rows,
    Python's `False` as false."""
    expected = str((problem.get("ctx") or {}).get("expected", ""))
    words = re.sub(r"(?<!')\b(False|True|None)\b(?!')", lambda m: YAML_WORDS[m[1]], expected)
    return words.replace("'", "")


def phrase(problem: Any) -> str:
    """What one pydantic error says was expected, in plain words."""
    kind = problem["type"]
    if kind in TYPE_WORDS:
        return TYPE_WORDS[kind]
    if kind == "literal_error":
        return "one of " + expected_words(problem)
    return clean(problem["msg"])


def hint_for(value: Any, problems: list[Any]) -> str | None:
    if isinstance(value, str) and value in YAML11_BOOLEANS:
        return f"'{value}' is not a boolean in netspec (YAML 1.2): write true or false"
    if isinstance(value, str):
        words = [
            w.strip()
            for e in problems
            for w in expected_words(e).replace(" or ", ",").split(",")
            if w.strip()
        ]
        if words:
            return did_you_mean(value, words)
        if any(e["type"] in TYPE_WORDS and "number" in TYPE_WORDS[e["type"]] for e in problems):
            return "write numbers without quotes or units"
    return None


def most_telling(errors: list[Any]) -> Any:
    """The error to show: an unknown key first (a typo also makes a key 'missing'), then a
    violated bound or a custom check (more specific than the union's type mismatches)."""
    for kinds in (("extra_forbidden",), (*CONSTRAINTS, "value_error"), ("missing",)):
        for error in errors:
            if error["type"] in kinds:
                return error
    return errors[0]


def clean(message: str) -> str:
    """Pydantic's wording without its 'Input should be' / 'Value error,' boilerplate."""
    for prefix in ("Input should be ", "Value error, "):
        if message.startswith(prefix):
            message = message[len(prefix) :]
    return message


def data_path(data: Any, loc: tuple[Any, ...]) -> tuple[tuple[Any, ...], bool]:
    """The part of a pydantic location that exists in the data, and whether it ends on a key."""
    path: list[Any] = []
    node = data
    for part in loc:
        if part == "[key]":
            return tuple(path), True
        if (isinstance(node, Mapping) and part in node) or (
            isinstance(node, list) and isinstance(part, int) and part < len(node)
        ):
            path.append(part)
            node = node[part]
        else:
            break
    return tuple(path), False


def key_location(data: Any, path: tuple[Any, ...], key: Any) -> Location | None:
    parent = data
    for part in path:
        parent = parent[part]
    return parent.key_locs.get(key) if isinstance(parent, YamlMap) else None


def is_row_path(path: tuple[Any, ...]) -> bool:
    """`layers.3` or `blocks.NAME.layers.3`: a table or block row."""
    return (len(path) == 2 and path[0] == "layers") or (
        len(path) == 4 and path[0] == "blocks" and path[2] == "layers"
    )


def describe_validation_error(
    error: ValidationError, data: Any, what: str, model: type[BaseModel] | None = None
) -> SpecError:
    """A SpecError for the first problem in a whole-file model (or a section of one, such as
    `training`, whose model is `model`), located via the YAML data."""
    return describe_problems(error.errors(), data, what, model)


SECTIONS_OF_ENTRIES = ("layers", "blocks", "vars", "defaults", "training")
"""Top-level keys whose entries are checked independently (one error per entry)."""


def describe_validation_errors(
    error: ValidationError, data: Any, what: str, model: type[BaseModel] | None = None
) -> list[SpecError]:
    """One SpecError per independent problem: per unknown key, and per entry of the file's
    sections (a row, a block, a variable), each worded as `describe_validation_error` would."""
    groups: dict[tuple[Any, ...], list[Any]] = {}
    for problem in error.errors():
        loc = tuple(problem["loc"])
        if problem["type"] == "extra_forbidden":
            key: tuple[Any, ...] = ("unknown", *loc)
        elif what == "spec" and loc and loc[0] in SECTIONS_OF_ENTRIES:
            key = loc[:2]
        else:
            key = loc[:1]
        groups.setdefault(key, []).append(problem)
    return [describe_problems(problems, data, what, model) for problems in groups.values()]


def describe_problems(
    errors: list[Any], data: Any, what: str, model: type[BaseModel] | None = None
) -> SpecError:
    """A SpecError for the most telling of pydantic's `errors` (dicts), located in `data`."""
    prefix = "" if what == "spec" else what
    first = most_telling(errors)
    loc = tuple(first["loc"])
    kind = first["type"]
    path, on_key = data_path(data, loc[:-1] if kind == "extra_forbidden" else loc)
    shown = ".".join(str(p) for p in (prefix, *path) if p != "") or what
    location: Location | None = locate(data, path)
    if kind == "extra_forbidden" or on_key:
        key = loc[len(path)] if kind == "extra_forbidden" else path[-1]
        parent = path if kind == "extra_forbidden" else path[:-1]
        location = key_location(data, parent, key) or location
        if on_key:
            return SpecError(
                f"'{key}' may only use letters, digits and '_'",
                location,
                path=".".join(str(p) for p in (prefix, *parent) if p != "") or what,
            )
        allowed = fields_at(parent, model)
        return SpecError(
            f"unknown key '{key}'",
            location,
            path=".".join(str(p) for p in (prefix, *parent) if p != "") or what,
            hint=did_you_mean(str(key), allowed)
            or (training_key_hint(str(key)) if what == "spec" and not parent else None)
            or ("expected one of: " + ", ".join(allowed) if allowed else None),
        )
    if kind == "missing":
        return SpecError(
            f"missing required key '{loc[-1]}'",
            location,
            path=shown,
            hint=missing_hint(str(loc[-1])),
        )
    value = first.get("input")
    if is_row_path(path):
        return SpecError(
            "a row must be a string like `conv 3x3 64` or a mapping `name: ...`, "
            f"not {short(value)}",
            location,
            path=shown,
            hint=ROW_HINT,
        )
    if (kind == "too_short" and path in (("layers",),)) or (
        kind == "too_short" and len(path) == 3 and path[2] == "layers"
    ):
        return SpecError("the table is empty", location, path=shown, hint=ROW_HINT)
    if kind == "string_pattern_mismatch":
        return SpecError(f"{value!r} may only use letters, digits and '_'", location, path=shown)
    problems = [e for e in errors if tuple(e["loc"][: len(loc)]) == loc] or [first]
    field = str(path[-1]) if path else what
    message, hint = describe_problem(field, problems)
    return SpecError(
        message,
        location,
        path=".".join(str(p) for p in (prefix, *path[:-1]) if p != "") or what,
        field=field,
        hint=hint,
    )


def training_key_hint(key: str) -> str | None:
    """For a top-level key that is (or looks like) a training option: where it belongs."""
    from .train.config import TrainingConfig

    fields = list(TrainingConfig.model_fields)
    match = key if key in fields else difflib.get_close_matches(key, fields, n=1, cutoff=0.6)
    if not match:
        return None
    name = match if isinstance(match, str) else match[0]
    return f"`{name}` is a training option: write it under `training:`"


def short(value: Any) -> str:
    """A value as YAML would spell it (true, null, [1, 2]), cut to 60 characters."""
    text = yaml_text(value)
    return text if len(text) < 60 else text[:57] + "..."


def yaml_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "null"
    if isinstance(value, Mapping):
        return "{" + ", ".join(f"{k}: {yaml_text(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list | tuple):
        return "[" + ", ".join(yaml_text(v) for v in value) + "]"
    return repr(value)


def fields_at(loc: tuple[Any, ...], model: type[BaseModel] | None = None) -> list[str]:
    """The allowed keys of the (sub)model reached by `loc`, e.g. a block of the spec."""
    from .spec import BlockDef, SpecModel

    current: Any = model or SpecModel
    for part in loc:
        if current is SpecModel and part == "blocks":
            current = dict
            continue
        if current is dict:
            current = BlockDef
            continue
        field = getattr(current, "model_fields", {}).get(part)
        annotation = getattr(field, "annotation", None)
        if not (isinstance(annotation, type) and issubclass(annotation, BaseModel)):
            return []
        current = annotation
    return list(getattr(current, "model_fields", {}))


def missing_hint(key: str) -> str | None:
    return {
        "name": "e.g. name: googlenet",
        "input": "the input size, e.g. input: [224, 224, 3]",
        "layers": "the table: a list of rows such as `- conv1: conv 7x7/2 64`",
    }.get(key)
