"""Turn pydantic validation errors into one located SpecError a person can act on."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel, ValidationError

from .errors import Location, SpecError, did_you_mean
from .load import YamlMap, locate, resolve_scalar

YAML11_BOOLEANS = {
    "yes",
    "no",
    "on",
    "off",
    "y",
    "n",
    "Yes",
    "No",
    "On",
    "Off",
    "YES",
    "NO",
    "ON",
    "OFF",
}


def validate_model(
    model: type[BaseModel],
    values: dict[str, Any],
    locations: Mapping[str, Location | None],
    fallback: Location | None,
    trail: str,
    what: str,
) -> BaseModel:
    """Validate `values` against a params model; errors point at the offending field."""
    try:
        return model.model_validate(values)
    except ValidationError as error:
        first = most_telling(error)
        name = str(first["loc"][0]) if first["loc"] else None
        location = locations.get(name, fallback) if name else fallback
        message, hint = explain(error, model, name, what)
        raise SpecError(message, location or fallback, path=trail, field=name, hint=hint) from None


def explain(
    error: ValidationError, model: type[BaseModel], name: str | None, what: str
) -> tuple[str, str | None]:
    """A message and hint for the first field that failed (all union alternatives merged)."""
    problems = [e for e in error.errors() if (str(e["loc"][0]) if e["loc"] else None) == name]
    first = most_telling(error) if most_telling(error) in problems else problems[0]
    fields = list(model.model_fields)
    described = model.model_fields[name].description if name in model.model_fields else None
    if first["type"] == "extra_forbidden":
        hint = did_you_mean(name or "", fields)
        return (f"{what} has no parameter '{name}'", hint or f"{what} takes: " + ", ".join(fields))
    if first["type"] == "missing":
        return f"{what} needs '{name}'", f"{what} takes: " + ", ".join(fields)
    value = first.get("input")
    expected = sorted({clean(e["msg"]) for e in problems})
    if first["type"] == "value_error" or first["type"].startswith("value_"):
        return clean(first["msg"]), None
    message = f"{value!r} is not valid: expected " + (described or " or ".join(expected))
    hint = None
    if isinstance(value, str) and value in YAML11_BOOLEANS:
        hint = f"'{value}' is not a boolean in netspec (YAML 1.2): write true or false"
    elif isinstance(value, str):
        words = [
            str(w)
            for e in problems
            for w in (e.get("ctx") or {})
            .get("expected", "")
            .replace("'", "")
            .replace(" or ", ",")
            .split(",")
            if w.strip()
        ]
        hint = did_you_mean(value, [w.strip() for w in words])
        if isinstance(resolve_scalar(value), str) and any("integer" in e for e in expected):
            hint = hint or "numbers are written without quotes or units"
    return message, hint


def most_telling(error: ValidationError) -> Any:
    """The error to show: an unknown key first (a typo often also makes a key 'missing')."""
    errors = error.errors()
    return next((e for e in errors if e["type"] == "extra_forbidden"), errors[0])


def clean(message: str) -> str:
    """Pydantic's wording, lower-cased and without its 'Input should be' boilerplate."""
    for prefix in ("Input should be ", "Value error, "):
        if message.startswith(prefix):
            message = message[len(prefix) :]
    return message


def describe_validation_error(error: ValidationError, data: Any, what: str) -> SpecError:
    """A SpecError for the first problem in a whole-file model, located via the YAML data."""
    first = most_telling(error)
    loc = tuple(first["loc"])
    location: Location | None = locate(data, loc)
    path = ".".join(str(p) for p in loc)
    kind = first["type"]
    if kind == "extra_forbidden":
        parent_fields = fields_at(loc[:-1])
        key = str(loc[-1])
        parent = data
        for part in loc[:-1]:
            parent = parent[part] if isinstance(parent, dict | list) else None
        if isinstance(parent, YamlMap) and key in parent.key_locs:
            location = parent.key_locs[key]
        return SpecError(
            f"unknown key '{key}'",
            location,
            path=".".join(map(str, loc[:-1])) or what,
            hint=did_you_mean(key, parent_fields)
            or ("expected one of: " + ", ".join(parent_fields) if parent_fields else None),
        )
    if kind == "missing":
        parent = ".".join(map(str, loc[:-1])) or what
        return SpecError(
            f"missing required key '{loc[-1]}'",
            locate(data, loc[:-1]) or location,
            path=parent,
            hint=missing_hint(str(loc[-1])),
        )
    value = first.get("input")
    problems = [e for e in error.errors() if tuple(e["loc"][: len(loc)]) == loc]
    expected = sorted({clean(e["msg"]) for e in problems})
    hint = None
    if isinstance(value, str) and value in YAML11_BOOLEANS:
        hint = f"'{value}' is not a boolean in netspec (YAML 1.2): write true or false"
    if kind in ("value_error", "string_pattern_mismatch"):
        text = clean(first["msg"])
        if kind == "string_pattern_mismatch":
            text = f"{value!r} may only use letters, digits and '_'"
        return SpecError(text, location, path=path, hint=hint)
    return SpecError(
        f"{short(value)} is not valid: expected " + " or ".join(expected),
        location,
        path=path,
        hint=hint,
    )


def short(value: Any) -> str:
    text = repr(dict(value) if isinstance(value, Mapping) else value)
    return text if len(text) < 60 else text[:57] + "..."


def fields_at(loc: tuple[Any, ...]) -> list[str]:
    """The allowed keys of the model reached by `loc` inside SpecModel (top level or a block)."""
    from .spec import BlockDef, SpecModel

    if not loc:
        return list(SpecModel.model_fields)
    if loc[0] == "blocks" and len(loc) == 2:
        return list(BlockDef.model_fields)
    return []


def missing_hint(key: str) -> str | None:
    return {
        "name": "e.g. name: googlenet",
        "input": "the input size, e.g. input: [224, 224, 3]",
        "layers": "the table: a list of rows such as `- conv1: conv 7x7/2 64`",
    }.get(key)
