"""The JSON Schema of the spec format, for editors (yaml-language-server): `netspec schema`.

The schema follows the one parser (`parse.py`) into the layer table: every row item is a name
and its body (a compact row string, a mapping row checked per layer type, an inline `concat` /
`add` / `layers` composite or a list of rows) beside the row options; `defaults:` is typed per
layer type and `training:` by the pydantic models of `netspec.train.config`. Values may be
`$variables` or `${expressions}` wherever the spec allows them.

A spec's block names are its own, so the schema for all specs cannot tell `type: cnov` from a
block called in the mapping form: it checks layer type words only in specs without blocks.
`json_schema(blocks)` (`netspec schema SPEC`) knows one spec's blocks and checks every type
word, mapping-row block calls and the first word of compact rows against them.

Values are checked as written, as if every row were switched on; netspec itself skips the
values of rows `if` switches off, of blocks no row calls and of unused defaults.

Nothing here imports JAX (the training config's optax check runs only when it validates).
"""

from __future__ import annotations

import copy
import inspect
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from .docs import compact_form, describe_schema, show_value
from .expand import MAX_REPEAT
from .layers import ALIASES, REGISTRY, LayerType
from .parse import COMPOSITES, EXPECTATIONS
from .shapes import WINDOW_TOKEN
from .spec import NAME_PATTERN, ROW_OPTIONS, SpecModel

DIALECT = "https://json-schema.org/draft/2020-12/schema"
ROW_NAME_PATTERN = r"^(?![0-9]+$)(?!input$)[A-Za-z0-9_]+$"
"""Row names: ASCII letters, digits and `_`, not all digits, not `input` (parse.check_name)."""
TEMPLATE_PATTERN = r"\$"
BOUNDS = {"ge": "minimum", "gt": "exclusiveMinimum", "le": "maximum", "lt": "exclusiveMaximum"}
"""pydantic writes `ge` (not `minimum`) for a bound on a validated Annotated number."""

OPTIMIZER_OPTIONS: dict[str, tuple[str, ...]] = {
    "sgd": ("momentum", "nesterov", "accumulator_dtype"),
    "adam": ("b1", "b2", "eps", "eps_root", "mu_dtype", "nesterov"),
    "adamw": ("b1", "b2", "eps", "eps_root", "mu_dtype", "weight_decay", "mask", "nesterov"),
    "nadam": ("b1", "b2", "eps", "eps_root", "mu_dtype", "nesterov"),
    "rmsprop": (
        *("decay", "eps", "initial_scale", "eps_in_sqrt", "centered", "momentum"),
        *("nesterov", "bias_correction"),
    ),
    "adagrad": ("initial_accumulator_value", "eps"),
    "lamb": ("b1", "b2", "eps", "eps_root", "weight_decay", "mask"),
    "lion": ("b1", "b2", "mu_dtype", "weight_decay", "mask"),
    "lars": (
        *("weight_decay", "weight_decay_mask", "trust_coefficient", "eps"),
        *("trust_ratio_mask", "momentum", "nesterov"),
    ),
}
"""Each optimizer's options: the optax function's keyword arguments but `learning_rate`,
written out so that making the schema needs no optax (JAX) import; the tests compare it with
`netspec.train.config.optimizer_arguments`, which reads optax's signatures."""

COMPACT_ROW_HELP = """\
**Compact row**: `TYPE positional... key=value... [-> OUTPUT [PARAMS [MACS]]]`

- `TYPE` is a layer type (or alias) or a block of this spec; positional values fill the \
type's fields in order (`conv 3x3/2 64`: window, filters).
- `KxK/S` is kernel and stride: `7x7/2`, `3x3`, `1x7`, `3x3/2x1`.
- A bare word that names a value of a field sets it: `same` → `padding=same`, `relu` → \
`activation=relu`.
- `key=value` sets any field or block argument, and the row options `from=`, `repeat=`, \
`if=`, `aux=`.
- `$name` / `${expression}` anywhere in a value; `in.h`, `in.w`, `in.c` read the row's input.
- `-> 28x28x256 ~159Ki 128M`: the expected output size, params and multiply-adds.
"""


@dataclass(frozen=True)
class BlockInfo:
    """What the schema knows of one block of a spec: its argument names and its doc."""

    args: tuple[str, ...]
    doc: str = ""


def one_of(words: list[str]) -> dict[str, Any]:
    """A condition "one of these words", as a pattern: yaml-language-server compares `enum`
    and `const` by prefix while completing (so `conv` would also pick `conv_transpose`)."""
    return {"type": "string", "pattern": "^(?:" + "|".join(map(re.escape, words)) + ")$"}


def ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/$defs/{name}"}


def described(schema: dict[str, Any], text: str) -> dict[str, Any]:
    """`schema` with `text` as its hover text (plain and markdown)."""
    plain = re.sub(r"\*\*|`", "", text)
    return {**schema, "description": plain, "markdownDescription": text}


def template(message: str | None = None) -> dict[str, Any]:
    """A string with a `$` in it: a `$variable` or `${expression}` (read when expanded)."""
    schema: dict[str, Any] = {"type": "string", "pattern": TEMPLATE_PATTERN}
    if message:
        schema["patternErrorMessage"] = message
    return schema


def with_messages(schema: Any, message: str) -> Any:
    """A copy of `schema` whose every subschema reports `message` when it fails (editors show
    it instead of "Incorrect type" or "String does not match the pattern")."""
    if isinstance(schema, list):
        return [with_messages(s, message) for s in schema]
    if not isinstance(schema, dict):
        return schema
    result = {k: v if k == "if" else with_messages(v, message) for k, v in schema.items()}
    if any(k in schema for k in ("type", "enum", "const", "pattern")):
        result["errorMessage"] = message
    if "pattern" in schema:
        result["patternErrorMessage"] = message
    return result


def plain_schema(schema: Any, templates: bool, message: str) -> Any:
    """A pydantic field schema as standard JSON Schema: `ge`-style bounds as `minimum`, no
    titles; with `templates`, every value and list item may also be a `$`-template."""
    if isinstance(schema, list):
        return [plain_schema(s, templates, message) for s in schema]
    if not isinstance(schema, dict):
        return schema
    result: dict[str, Any] = {}
    for key, value in schema.items():
        if key == "title":
            continue
        if key in BOUNDS:
            result[BOUNDS[key]] = value
        elif key in ("prefixItems",) and templates:
            result[key] = [templated(item, message) for item in value]
        elif key == "items" and templates and isinstance(value, dict):
            result[key] = templated(value, message)
        elif key in ("anyOf", "oneOf", "allOf", "prefixItems"):
            result[key] = [plain_schema(item, templates, message) for item in value]
        elif key in ("items", "additionalProperties") and isinstance(value, dict):
            result[key] = plain_schema(value, templates, message)
        elif key == "properties":
            result[key] = {k: plain_schema(v, templates, message) for k, v in value.items()}
        else:
            result[key] = value
    return result


def templated(schema: dict[str, Any], message: str) -> dict[str, Any]:
    """The value `schema` describes, or a `$`-template; failures say `message`.

    Written `if template else VALUE` rather than `anyOf`: an editor then reports the value's
    own problem and shows one hover text; `type` and `defaultSnippets` keep value completion
    (true / false, the words of an enum), which does not look into `else`."""
    inner = with_messages(plain_schema(schema, True, message), message)
    inner.pop("description", None)
    result: dict[str, Any] = {"if": template(), "else": inner}
    types = value_types(schema)
    if types is not None:
        result["type"] = sorted(types | {"string"})
    words = [w for w in value_words(schema) if isinstance(w, str)]
    if words:  # offered in completion, not listed in hovers as `examples` would be
        result["defaultSnippets"] = [{"label": w, "body": w} for w in words]
    return result


def value_types(schema: dict[str, Any]) -> set[str] | None:
    """The JSON types a value of `schema` may have; None when it says nothing."""
    if "type" in schema:
        kind = schema["type"]
        return set(kind) if isinstance(kind, list) else {kind}
    if "anyOf" in schema:
        found: set[str] = set()
        for option in schema["anyOf"]:
            kinds = value_types(option)
            if kinds is None:
                return None
            found |= kinds
        return found
    return None


def value_words(schema: dict[str, Any]) -> list[Any]:
    """The values an `enum` or `const` of `schema` (or its `anyOf` options) lists."""
    words = list(schema.get("enum", []))
    if "const" in schema:
        words.append(schema["const"])
    for option in schema.get("anyOf", []):
        words += value_words(option)
    return words


# ---- layer types ---------------------------------------------------------------------------


def first_line(text: str | None) -> str:
    return inspect.cleandoc(text or "").split("\n\n")[0].replace("\n", " ")


def type_words() -> list[str]:
    """Every word a row may use as a layer type: names, then aliases."""
    return [*REGISTRY, *ALIASES]


def type_help(word: str) -> str:
    """Hover/completion text for one layer type word."""
    layer = REGISTRY[ALIASES.get(word, word)]
    alias = f"an alias of `{layer.name}`: " if word != layer.name else ""
    summary = first_line(layer.params.__doc__)
    return f"{alias}`{compact_form(layer)}`, e.g. `{layer.example}`. {summary}"


def field_help(layer: LayerType, name: str, prop: dict[str, Any]) -> str:
    info = layer.params.model_fields[name]
    if info.is_required():
        default = "required (in the row or in `defaults`)"
    elif info.default is None:
        default = "unset by default"
    else:
        default = f"default `{show_value(info.default)}`"
    return f"**{layer.name}.{name}**: {describe_schema(prop)}; {default}"


def field_schemas(layer: LayerType) -> dict[str, Any]:
    """The layer's fields (values or templates) with hover text: `Field.TYPE.NAME`."""
    properties = layer.params.model_json_schema().get("properties", {})
    fields: dict[str, Any] = {}
    for name, prop in properties.items():
        text = field_help(layer, name, prop)
        message = f"{layer.name}.{name}: must be {describe_schema(prop)} (or a $variable)"
        schema = templated(prop, message)
        if "default" in prop:
            schema["default"] = prop["default"]
        if name in layer.presets:  # defaults may name it; the type's preset wins
            schema["doNotSuggest"] = True
        fields[name] = described(schema, text)
    return fields


def field_refs(layer: LayerType, with_presets: bool = False) -> dict[str, Any]:
    """The layer's fields as references to their `Field.TYPE.NAME` definitions."""
    return {
        name: ref(f"Field.{layer.name}.{name}")
        for name in layer.params.model_fields
        if with_presets or name not in layer.presets
    }


def layer_row(layer: LayerType, words: list[str]) -> dict[str, Any]:
    """A mapping row of one layer type: `type`, its fields, `window`, the row options."""
    properties: dict[str, Any] = {"type": described({}, type_help(layer.name))}
    properties.update(field_refs(layer))
    if "window" in layer.positional:
        message = f"{layer.name}.window: must be KxK or KxK/S such as 3x3/2 (or a $variable)"
        properties["window"] = described(
            templated({"type": ["string", "integer"], "pattern": WINDOW_TOKEN.pattern}, message),
            f"**{layer.name}.window**: kernel and stride as `KxK[/S]`, e.g. `3x3/2`",
        )
    properties.update(unchecked(option_properties(top=True)))
    doc = inspect.cleandoc(layer.params.__doc__ or "")
    names = ", ".join(f"`{w}`" for w in words)
    return described(
        {"type": "object", "properties": properties, "additionalProperties": False},
        f"**{layer.name}** ({names}): {doc}\n\nCompact form: `{compact_form(layer)}`",
    )


def layer_defaults(layer: LayerType) -> dict[str, Any]:
    """`defaults: {TYPE: {...}}` for one layer type: its fields, nothing else."""
    return described(
        {
            "type": "object",
            "properties": field_refs(layer, with_presets=True),
            "additionalProperties": False,
        },
        f"Defaults for every `{layer.name}` row (a row's own values win). "
        + first_line(layer.params.__doc__),
    )


# ---- rows ----------------------------------------------------------------------------------


def option_properties(top: bool) -> dict[str, Any]:
    """The row options (`from`, `repeat`, `if`, `aux`, `expect`), as they may be written
    beside a row's name or inside a mapping row. `aux` and `expect` only in the table."""
    name = {"type": ["string", "integer"], "not": {"type": "string", "pattern": TEMPLATE_PATTERN}}
    from_message = "from: a row name or a list of row names, written out (no variables)"
    options: dict[str, Any] = {
        "from": described(
            {
                "anyOf": [
                    with_messages(name, from_message),
                    {"type": "array", "items": with_messages(name, from_message), "minItems": 1},
                ]
            },
            "**from**: read earlier rows instead of the previous one: `from: a` or "
            "`from: [a, b]` (`input` is the network's or block's input); names as written.",
        ),
        "repeat": described(
            templated(
                {"type": "integer", "minimum": 1, "maximum": MAX_REPEAT},
                f"repeat: must be a whole number from 1 to {MAX_REPEAT} (or a $variable)",
            ),
            f"**repeat**: the body N times in a chain (N ≤ {MAX_REPEAT}); `$i` is the "
            "repetition, 0, 1, ...",
        ),
        "if": described(
            templated(
                {"type": "boolean"},
                "if: must be true or false, or an expression such as ${flag} (yes/no/on/off "
                "are not booleans in YAML 1.2)",
            ),
            "**if**: keep the row only when true (`if: ${expression}`); a skipped row passes "
            "its input through.",
        ),
    }
    aux = described(
        templated(
            {"type": "number", "minimum": 0},
            "aux: must be the auxiliary loss weight, a number ≥ 0 (or a $variable)",
        ),
        "**aux**: a train-only auxiliary head with this loss weight (GoogLeNet: 0.3); it "
        "does not continue the chain.",
    )
    count = {"type": ["string", "number"]}
    expect = described(
        {
            "anyOf": [
                {"type": ["string", "integer"]},
                {
                    "type": "object",
                    "properties": {
                        "output": described(count, "the output size, e.g. `28x28x256`"),
                        "params": described(count, "the parameters, e.g. `159Ki` or `~2.7K`"),
                        "macs": described(count, "the multiply-adds, e.g. `128M`"),
                    },
                    "additionalProperties": False,
                },
            ],
        },
        "**expect**: `OUTPUT [PARAMS [MACS]]` to check, e.g. `28x28x256 ~159Ki 128M`, or "
        f"`{{{', '.join(f'{k}: ...' for k in EXPECTATIONS)}}}`",
    )
    if top:
        options["aux"] = aux
        options["expect"] = expect
    else:
        for key, what in (("aux", "auxiliary heads"), ("expect", "expectations")):
            message = f"{what} (`{key}`) belong to rows of the top-level table"
            options[key] = described(
                {"enum": [], "errorMessage": message, "doNotSuggest": True}, message
            )
    return options


def unchecked(properties: dict[str, Any]) -> dict[str, Any]:
    """The same keys with their hover text only: the row body checks the options once."""
    keep = ("description", "markdownDescription")
    return {k: {t: v[t] for t in keep if t in v} for k, v in properties.items()}


def row_string(known: list[str] | None) -> dict[str, Any]:
    """A compact row; with `known` type words, its first word must be one (or a template)."""
    schema: dict[str, Any] = {}  # no `type`: it applies to the strings of a row or body
    if known is not None:
        words = "|".join(re.escape(w) for w in sorted(known, key=lambda w: (-len(w), w)))
        schema["pattern"] = rf"^\s*(?:(?:{words})(?:\s|$)|\S*\$)"
        schema["patternErrorMessage"] = (
            "unknown layer type or block: a compact row starts with a layer type (see "
            "docs/layers.md)" + (" or a block of this spec" if len(known) > len(REGISTRY) else "")
        )
    layers = "\n".join(
        f"- `{compact_form(layer)}`" for layer in REGISTRY.values() if not layer.preset_of
    )
    return described(schema, COMPACT_ROW_HELP + "\nLayer types:\n" + layers)


def word_choices(blocks: Mapping[str, BlockInfo]) -> dict[str, Any]:
    """The layer type words (and `blocks`), sorted, with completion texts."""
    texts = {w: type_help(w) for w in type_words()}
    for name, info in blocks.items():
        args = " ".join(info.args)
        texts[name] = f"block `{name} {args}`" + (f": {info.doc}" if info.doc else "")
    words = sorted(texts)
    return {
        "type": "string",
        "enum": words,
        "markdownEnumDescriptions": [texts[w] for w in words],
        "enumDescriptions": [texts[w].replace("`", "") for w in words],
    }


def type_word(known: list[str] | None, blocks: Mapping[str, BlockInfo]) -> dict[str, Any]:
    """The `type` of a mapping row: a layer type, a block, or a template (`${pool}pool`)."""
    text = "**type**: the layer type (or block) of this mapping row; its fields follow."
    if known is None:
        return described({"anyOf": [ref("LayerType"), {"type": "string"}]}, text)
    message = "unknown layer type" + (" or block" if blocks else "") + ": see docs/layers.md"
    choices = {**word_choices(blocks), "errorMessage": message}
    return described({"anyOf": [choices, template(message)]}, text)


def row_item(top: bool) -> dict[str, Any]:
    """One entry of a row list: `{NAME: BODY}` with options beside it, or an unnamed row (a
    compact string or a list of rows)."""
    body = ref("TableRowBody" if top else "RowBody")
    what = "table row" if top else "row"
    return described(
        {
            "type": ["string", "array", "object"],
            "minProperties": 1,
            "propertyNames": {
                "pattern": ROW_NAME_PATTERN,
                "patternErrorMessage": "a row name uses A-Z, a-z, 0-9 and _, is not all digits "
                "and is not `input`",
            },
            "properties": option_properties(top),
            "additionalProperties": body,
            "items": ref("Row"),
            "$comment": "strings: the compact form of an unnamed row; lists: an unnamed inline "
            "sequence",
            "allOf": [
                ref("RowString"),
                {
                    "if": {"type": "object"},
                    "then": {"not": {"propertyNames": {"enum": list(ROW_OPTIONS)}}},
                },
            ],
        },
        f"A {what}: `- NAME: BODY` (BODY: a compact row `TYPE args... key=value...`, a "
        "mapping `{type: TYPE, field: value}`, `{concat: [...]}`, `{add: [...]}` or a list of "
        "rows), with " + ", ".join(f"`{k}`" for k in option_properties(top)) + " beside the "
        "name; or an unnamed compact row or list.",
    )


def row_body(top: bool, known: list[str] | None, blocks: Mapping[str, BlockInfo]) -> dict[str, Any]:
    """What a row name maps to: a compact row string, a list of rows, or a mapping row
    (`type` and its fields, checked per layer type; or one composite)."""
    per_type = []
    for layer in REGISTRY.values():
        words = [layer.name, *layer.aliases]
        per_type.append(
            {"if": {"properties": {"type": one_of(words)}}, "then": ref(f"Layer.{layer.name}")}
        )
    for name in blocks:
        per_type.append(
            {"if": {"properties": {"type": one_of([name])}}, "then": ref(f"Block.{name}")}
        )
    properties: dict[str, Any] = {"type": ref("TypeWord")}
    properties.update(option_properties(top))
    return described(
        {
            "type": ["string", "array", "object"],
            "items": ref("Row"),
            "allOf": [ref("RowString")],
            "properties": properties,
            "if": {"type": "object", "required": ["type"]},
            "then": {"allOf": per_type},
            "else": {
                "if": {"type": "object"},
                "then": ref("TableComposite" if top else "Composite"),
            },
        },
        "The row: a compact row `TYPE args... key=value... [-> OUTPUT PARAMS MACS]`, a mapping "
        "`{type: TYPE, field: value, ...}`, a composite `{concat: [branches]}` / "
        "`{add: [branches]}` / `{layers: [rows]}`, or a list of rows (an inline sequence).",
    )


def composite_properties() -> dict[str, Any]:
    branches = "each branch reads the row's input: a row `- name: ...`, or a list of rows"
    return {
        "concat": described(
            {"type": "array", "items": ref("Row"), "minItems": 2},
            f"**concat**: parallel branches joined along the channels; {branches}.",
        ),
        "add": described(
            {"type": "array", "items": ref("Row"), "minItems": 2},
            f"**add**: parallel branches summed (`[]` is the identity); {branches}.",
        ),
        "layers": described(
            {"type": "array", "items": ref("Row")}, "**layers**: rows one after another."
        ),
    }


def composite(top: bool) -> dict[str, Any]:
    """A mapping row without `type`: exactly one of `concat`, `add`, `layers`, and options."""
    return {
        "properties": {**composite_properties(), **unchecked(option_properties(top))},
        "additionalProperties": False,
        "oneOf": [{"required": [k]} for k in COMPOSITES],
        "errorMessage": "a mapping row has `type` (a layer or block) or one of `concat`, "
        "`add`, `layers`",
    }


def block_row(name: str, info: BlockInfo) -> dict[str, Any]:
    """A mapping-row call of one block: `type`, its arguments, the row options."""
    properties: dict[str, Any] = {"type": {}}
    properties.update(
        {arg: described({}, f"argument `{arg}` of block `{name}`") for arg in info.args}
    )
    properties.update(unchecked(option_properties(top=True)))
    return described(
        {"type": "object", "properties": properties, "additionalProperties": False},
        f"block `{name} {' '.join(info.args)}`" + (f": {info.doc}" if info.doc else ""),
    )


# ---- defaults, blocks, training ------------------------------------------------------------


def defaults_schema() -> dict[str, Any]:
    properties = {name: ref(f"Defaults.{name}") for name in REGISTRY}
    return described(
        {
            "type": "object",
            "properties": properties,
            "additionalProperties": False,
            "errorMessage": "defaults: not a layer type (defaults are written under the type's "
            "own name, not an alias)",
        },
        "**defaults**: default fields per layer type, e.g. `conv: {padding: same, activation: "
        "relu}`; a row's own values win.",
    )


def argument_schema() -> dict[str, Any]:
    value = {"type": ["string", "number", "boolean", "null", "array"]}
    return {
        "type": ["string", "object"],
        "pattern": NAME_PATTERN,
        "propertyNames": {"pattern": NAME_PATTERN},
        "additionalProperties": value,
        "minProperties": 1,
        "maxProperties": 1,
    }


def block_schema() -> dict[str, Any]:
    return described(
        {
            "type": "object",
            "properties": {
                "args": described(
                    {"type": "array", "items": argument_schema()},
                    "**args**: argument names in positional order; `{name: default}` gives a "
                    "default, e.g. `[filters, {stride: 1}]`.",
                ),
                "defaults": ref("Defaults"),
                "doc": described(
                    {"type": ["string", "null"]}, "What the block is (shown in hovers)."
                ),
                "layers": described(
                    {"type": "array", "items": ref("Row")}, "**layers**: the body, rows in a chain."
                ),
                "concat": composite_properties()["concat"],
                "add": composite_properties()["add"],
            },
            "additionalProperties": False,
            "oneOf": [{"required": [k]} for k in ("layers", "concat", "add")],
        },
        "A block: `args`, its own `defaults`, and one body: `layers` (a chain), `concat` or "
        "`add` (parallel branches). Call it like a layer: `NAME arg1 arg2 key=value`.",
    )


def training_schema() -> tuple[dict[str, Any], dict[str, Any]]:
    """(`training:` schema, its `$defs`) from netspec.train.config's pydantic models."""
    from .train.config import OPTIMIZERS, TrainingConfig

    raw = TrainingConfig.model_json_schema(ref_template="#/$defs/Training.{model}")
    defs = {f"Training.{k}": plain_schema(v, False, "") for k, v in raw.pop("$defs").items()}
    schema = plain_schema(raw, False, "")
    for name, prop in schema["properties"].items():
        if "$ref" in prop:
            target = defs[prop["$ref"].rsplit("/", 1)[1]]
            prop["description"] = first_line(target.get("description"))
        elif "description" not in prop:
            prop["description"] = describe_schema(prop)
        prop["markdownDescription"] = f"**{name}**: {prop.get('description', '')}"
        if "default" in prop:
            prop["markdownDescription"] += f"; default `{show_value(prop['default'])}`"
    # `optimizer: adam`, or its name beside optax's options (OptimizerConfig._gather_options)
    names = list(OPTIMIZERS)
    per_name = []
    for name in names:
        condition: dict[str, Any] = {"properties": {"name": one_of([name])}}
        if name != "sgd":  # the default: also when `name` is left out
            condition["required"] = ["name"]
        options = OPTIMIZER_OPTIONS[name]
        per_name.append(
            {
                "if": condition,
                "then": {
                    "properties": {
                        "name": True,
                        "options": {"type": "object", "propertyNames": {"enum": list(options)}},
                        **{o: described({}, f"optax.{name}({o}=...)") for o in options},
                    },
                    "additionalProperties": False,
                },
            }
        )
    optimizer = defs.pop("Training.OptimizerConfig")
    optimizer["properties"].pop("options")
    optimizer.pop("additionalProperties")
    defs["Training.OptimizerConfig"] = {
        "anyOf": [{"type": "string", "enum": names}, {**optimizer, "allOf": per_name}],
        "description": optimizer.get("description", ""),
    }
    schedule = defs.pop("Training.ScheduleConfig")
    schedule["allOf"] = [
        {
            "if": {"properties": {"name": one_of(["step"])}, "required": ["name"]},
            "then": {"required": ["step_epochs"]},
        }
    ]
    defs["Training.ScheduleConfig"] = {
        "anyOf": [{"type": "string", "enum": schedule["properties"]["name"]["enum"]}, schedule],
        "description": schedule.get("description", ""),
    }
    schema.pop("title", None)
    schema = described(
        {**schema, "type": ["object", "null"]},
        "**training**: how `netspec train` trains this network (docs/training.md).",
    )
    return schema, defs


# ---- the whole schema ----------------------------------------------------------------------


def json_schema(blocks: Mapping[str, BlockInfo] | None = None) -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) of the spec format. Without `blocks` it fits every
    spec; with one spec's blocks (`spec_blocks`) it also checks their names and arguments."""
    known: list[str] | None = None
    if blocks is None:
        blocks = {}
    else:  # a block named like a layer type is never called: the layer type wins
        blocks = {n: b for n, b in blocks.items() if n not in type_words()}
        known = [*type_words(), *blocks]
    training, training_defs = training_schema()
    defs: dict[str, Any] = {
        "TableRow": row_item(top=True),
        "Row": row_item(top=False),
        "TableRowBody": row_body(True, known, blocks),
        "RowBody": row_body(False, known, blocks),
        "TableComposite": composite(top=True),
        "Composite": composite(top=False),
        "RowString": row_string(known),
        "TypeWord": type_word(known, blocks),
        "LayerType": word_choices({}),
        "Defaults": defaults_schema(),
        "Block": block_schema(),
        **{f"Layer.{n}": layer_row(layer, [n, *layer.aliases]) for n, layer in REGISTRY.items()},
        **{f"Defaults.{n}": layer_defaults(layer) for n, layer in REGISTRY.items()},
        **{
            f"Field.{n}.{field}": schema
            for n, layer in REGISTRY.items()
            for field, schema in field_schemas(layer).items()
        },
        **{f"Block.{name}": block_row(name, info) for name, info in blocks.items()},
        **training_defs,
    }
    model = SpecModel.model_json_schema()["properties"]
    properties = {
        "name": described(
            {"type": "string", "pattern": r"\S", "patternErrorMessage": "name must not be empty"},
            model["name"]["description"],
        ),
        "description": described({"type": ["string", "null"]}, "What the network is, its source."),
        "input": described(
            {
                "anyOf": [
                    {"type": "array", "items": {"type": ["integer", "string"]}},
                    {"type": "string"},
                ]
            },
            model["input"]["description"],
        ),
        "vars": described(
            {
                "type": "object",
                "propertyNames": {"pattern": NAME_PATTERN},
                "additionalProperties": {"type": ["string", "number", "boolean", "null", "array"]},
            },
            model["vars"]["description"],
        ),
        "defaults": ref("Defaults"),
        "dtype": described(
            {"enum": [*model["dtype"]["anyOf"][0]["enum"], None]}, model["dtype"]["description"]
        ),
        "param_dtype": described(
            {"enum": model["param_dtype"]["enum"]}, model["param_dtype"]["description"]
        ),
        "blocks": described(
            {
                "type": "object",
                "propertyNames": {"pattern": NAME_PATTERN},
                "additionalProperties": ref("Block"),
            },
            "**blocks**: reusable blocks, called like layers: `inception 64 96 128 16 32 32`.",
        ),
        "training": training,
        "layers": described(
            {"type": "array", "items": ref("TableRow"), "minItems": 1},
            "**layers**: the table, one row per layer or block: `- NAME: TYPE args...`.",
        ),
    }
    schema: dict[str, Any] = {
        "$schema": DIALECT,
        "title": "netspec network spec",
        "description": "A network as a layer table (docs/spec-format.md).",
        "type": "object",
        "properties": properties,
        "required": ["name", "input", "layers"],
        "additionalProperties": False,
        "$defs": defs,
    }
    if known is None:
        # Without blocks, every type word must be a layer type (a block would be defined).
        defs.update(type_check_defs())
        schema["if"] = {
            "anyOf": [
                {"not": {"required": ["blocks"]}},
                {"properties": {"blocks": {"maxProperties": 0}}},
            ]
        }
        schema["then"] = {"properties": {"layers": {"items": ref("Check.Item")}}}
    return copy.deepcopy(schema)


def type_check_defs() -> dict[str, Any]:
    """A schema walking the rows that checks only type words against the layer types: what
    the schema adds for a spec without blocks (where a type word cannot name a block)."""
    words = type_words()
    message = "unknown layer type: see docs/layers.md (the spec has no blocks)"
    strict = row_string(words)
    check_string = {"pattern": strict["pattern"], "patternErrorMessage": message}
    option_keys = {k: True for k in ROW_OPTIONS}
    return {
        "Check.Item": {
            **check_string,
            "items": ref("Check.Item"),
            "properties": option_keys,
            "additionalProperties": ref("Check.Body"),
        },
        "Check.Body": {
            **check_string,
            "items": ref("Check.Item"),
            "properties": {
                "type": {
                    "anyOf": [
                        {"enum": words, "errorMessage": message},
                        template(message),
                    ]
                },
                **{k: {"items": ref("Check.Item"), "doNotSuggest": True} for k in COMPOSITES},
            },
        },
    }


def spec_blocks(data: Any) -> dict[str, BlockInfo]:
    """The blocks of one loaded spec (names, argument names, docs), read leniently: a spec
    being edited may be incomplete."""
    blocks = data.get("blocks") if isinstance(data, Mapping) else None
    if not isinstance(blocks, Mapping):
        return {}
    found = {}
    for name, block in blocks.items():
        if not isinstance(name, str) or not re.fullmatch(NAME_PATTERN, name):
            continue
        args: list[str] = []
        raw_args = block.get("args") if isinstance(block, Mapping) else None
        for arg in raw_args if isinstance(raw_args, list) else []:
            if isinstance(arg, str):
                args.append(arg)
            elif isinstance(arg, Mapping) and len(arg) == 1:
                args.append(str(next(iter(arg))))
        doc = block.get("doc") if isinstance(block, Mapping) else None
        found[name] = BlockInfo(tuple(args), doc if isinstance(doc, str) else "")
    return found


__all__ = ["BlockInfo", "json_schema", "spec_blocks"]
