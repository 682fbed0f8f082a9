"""Documentation generated from the layer registry.

`python -m netspec.docs layers` writes docs/layers.md (the layer-type table and each type's
fields) from netspec.layers.REGISTRY; `--check` exits 1 when the file is out of date instead.
"""

from __future__ import annotations

import argparse
import inspect
import json
import sys
from pathlib import Path
from typing import Any

from .layers import REGISTRY, LayerType, format_shape

LAYERS_MD = Path(__file__).resolve().parent.parent / "docs" / "layers.md"
"""Where `python -m netspec.docs layers` writes the table (the repository's docs folder)."""


def example_spec(layer: LayerType) -> str:
    """A one-row spec (YAML text) running the layer's example row on its example input."""
    h, w, c = layer.example_input
    return f"name: example\ninput: [{h}, {w}, {c}]\nlayers:\n  - x: {json.dumps(layer.example)}\n"


def compact_form(layer: LayerType) -> str:
    """`conv KxK[/S] FILTERS`: the type and the fields its bare tokens fill, in order."""
    slots = [s for s in layer.positional if s not in layer.presets]
    return " ".join([layer.name, *({"window": "KxK[/S]"}.get(s, s.upper()) for s in slots)])


def show_value(value: Any) -> str:
    """A default as a spec writes it: `true`, `valid`, `1e-5`, `[1, 1]`."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "unset"
    if isinstance(value, float):
        return format(value, "g").replace("e-0", "e-")
    if isinstance(value, tuple | list):
        return "[" + ", ".join(show_value(v) for v in value) + "]"
    return str(value)


def field_list(layer: LayerType) -> str:
    """`` `filters`, `stride` (1), ... ``: the settable fields, defaults in parentheses."""
    parts = []
    for name, info in layer.params.model_fields.items():
        if name in layer.presets:
            continue
        shown = f"`{name}`"
        if info.default is None:
            shown += " (unset)"
        elif not info.is_required():
            shown += f" (`{show_value(info.default)}`)"
        parts.append(shown)
    return ", ".join(parts) or "–"


def describe_schema(prop: dict[str, Any]) -> str:
    """What values a field takes, from its JSON Schema: `integer ≥ 1`, `one of a, b`, ..."""
    if "description" in prop:
        return str(prop["description"])
    if "enum" in prop:
        return "one of " + ", ".join(f"`{v}`" for v in prop["enum"])
    if "const" in prop:
        return f"`{prop['const']}`"
    if "anyOf" in prop:
        options = [describe_schema(p) for p in prop["anyOf"] if p.get("type") != "null"]
        return " or ".join(options)
    kind = {"integer": "a whole number", "number": "a number", "boolean": "true or false"}.get(
        prop.get("type", ""), prop.get("type", "a value")
    )
    bounds = [
        f"{symbol} {show_value(prop[key])}"
        for keys, symbol in (
            (("minimum", "ge"), "≥"),
            (("exclusiveMinimum", "gt"), ">"),
            (("maximum", "le"), "≤"),
            (("exclusiveMaximum", "lt"), "<"),
        )
        for key in keys  # pydantic writes `ge` for a bound on a validated Annotated int
        if key in prop
    ]
    return kind + (" " + " and ".join(bounds) if bounds else "")


def type_section(layer: LayerType, presets: list[LayerType]) -> list[str]:
    """A type's heading, its params model's docstring and one line per field."""
    names = ", ".join(f"`{n}`" for n in (layer.name, *layer.aliases))
    lines = [f"### {layer.name}", "", inspect.cleandoc(layer.params.__doc__ or "")]
    label = f"; the paper's label is *{layer.label}*" if layer.label not in ("", layer.name) else ""
    lines += ["", f"Written {names}{label}."]
    if presets:
        shortcuts = ", ".join(f"`{p.name}`" for p in presets)
        fixed = ", ".join(presets[0].presets)
        lines.append(f"Shortcuts with `{fixed}` preset: {shortcuts}.")
    properties = layer.params.model_json_schema().get("properties", {})
    if properties:
        lines.append("")
    for name, info in layer.params.model_fields.items():
        if info.is_required():
            default = "required"
        elif info.default is None:
            default = "unset by default"
        else:
            default = f"default `{show_value(info.default)}`"
        lines.append(f"- `{name}`: {describe_schema(properties[name])}; {default}")
    return [*lines, ""]


def example_cell(layer: LayerType) -> str:
    """`` `conv 3x3/2 32 same relu`: 32x32x3 → 16x16x32, 896 params ``, from the analysis."""
    from .specfile import analyze_spec

    report = analyze_spec(example_spec(layer))
    (row,) = report.rows
    text = f"`{layer.example}`: {format_shape(layer.example_input)} → "
    text += format_shape(row.output_shape)
    if row.params:
        text += f", {row.params:,} params"
    return text


def render_layers() -> str:
    """docs/layers.md: one table row per layer type (shortcut types such as `relu` share one
    row after their base type's), then each type's fields."""
    bases = [layer for layer in REGISTRY.values() if not layer.preset_of]
    presets = {
        base.name: [p for p in REGISTRY.values() if p.preset_of == base.name] for base in bases
    }
    lines = [
        "# Layer types",
        "",
        "<!-- Generated from netspec.layers.REGISTRY by `python -m netspec.docs layers`: "
        "do not edit. -->",
        "",
        "Every layer type a row may use, with its other names, its compact form (the type, "
        "then the values its bare tokens fill, in order), its fields with their defaults, and "
        "an example row with the output size and parameters the analysis gives it. Any field "
        "may also be written `key=value` or in the mapping form; bare words that name a value "
        "of a field set that field (`same` → `padding=same`). See "
        "[the spec format](spec-format.md) for rows, blocks and expressions.",
        "",
        "| type | aliases | compact form | fields (default) | example: input → output |",
        "| --- | --- | --- | --- | --- |",
    ]
    for base in bases:
        aliases = ", ".join(f"`{a}`" for a in base.aliases) or "–"
        lines.append(
            f"| `{base.name}` | {aliases} | `{compact_form(base)}` | {field_list(base)} "
            f"| {example_cell(base)} |"
        )
        shortcuts = presets[base.name]
        if shortcuts:
            names = ", ".join(f"`{p.name}`" for p in shortcuts)
            fixed = ", ".join(f"`{key}`" for key in shortcuts[0].presets)
            lines.append(
                f"| {names} | – | the name alone | `{base.name}` with {fixed} set to the name "
                f"| {example_cell(shortcuts[0])} |"
            )
    lines += ["", "## Fields", ""]
    for base in bases:
        lines += type_section(base, presets[base.name])
    return "\n".join(lines).rstrip("\n") + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m netspec.docs", description=__doc__)
    parser.add_argument("page", choices=["layers"], help="the page to generate")
    parser.add_argument("--output", type=Path, default=LAYERS_MD, help="where to write it")
    parser.add_argument(
        "--check", action="store_true", help="exit 1 if the file differs instead of writing it"
    )
    args = parser.parse_args(argv)
    text = render_layers()
    if args.check:
        current = args.output.read_text(encoding="utf-8") if args.output.exists() else ""
        if current != text:
            print(f"{args.output} is out of date: run python -m netspec.docs layers")
            return 1
        return 0
    args.output.write_text(text, encoding="utf-8")
    print(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
