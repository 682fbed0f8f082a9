"""Pydantic models of the spec file format (its JSON Schema for editors: netspec/schema.py).

The models check the file's structure (top-level keys, blocks, defaults, variables). Rows are
checked one by one when they are resolved, because their values may depend on variables and
block arguments; each layer type's own params model (netspec.layers) validates them then.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StrictStr, field_validator

NAME_PATTERN = r"^[A-Za-z0-9_]+$"
Name = Annotated[str, Field(pattern=NAME_PATTERN)]
Scalar = int | float | bool | str | None
ROW_OPTIONS = ("from", "repeat", "if", "aux", "expect")
"""Keys a row item may carry beside its name; they are not layer parameters."""

Row = Annotated[
    dict[str, Any] | str | list[Any],
    Field(
        description=(
            "One row: `- name: TYPE args... [key=value...] [-> OUTPUT [PARAMS [MACS]]]`, "
            "or `- name: {type: TYPE, field: value, ...}`, or an inline composite "
            "`- name: {concat: [branches]}` / `{add: [...]}` / `[rows...]`. Beside the name a row "
            "may set " + ", ".join(f"`{k}`" for k in ROW_OPTIONS) + "."
        ),
    ),
]
Branch = Annotated[
    Any,
    Field(
        description="A branch: one row string, a list of rows, or "
        "`{branch_name: row or list of rows}`."
    ),
]


def one_pair(entry: Any) -> Any:
    if isinstance(entry, dict) and len(entry) != 1:
        shown = ", ".join(f"{k}: {v}" for k, v in entry.items())
        raise ValueError(
            f"an argument with a default is one `name: value` pair, e.g. `{{stride: 1}}`; "
            f"got {{{shown}}}"
        )
    return entry


Argument = Annotated[Name | dict[Name, Scalar | list[Any]], AfterValidator(one_pair)]


class StrictModel(BaseModel):
    model_config = ConfigDict(extra="forbid")


class BlockDef(StrictModel):
    """A reusable block: named arguments, its own defaults, and one body (layers, concat or add)."""

    args: list[Argument] = Field(
        default_factory=list,
        description="Argument names in positional order; `{name: default}` gives a default.",
    )
    defaults: dict[str, dict[str, Any]] = Field(default_factory=dict)
    doc: StrictStr | None = None
    layers: list[Row] | None = None
    concat: list[Branch] | None = None
    add: list[Branch] | None = None

    def body(self) -> tuple[str, list[Any]]:
        """(kind, items) of the one body this block has."""
        for kind in ("layers", "concat", "add"):
            items = getattr(self, kind)
            if items is not None:
                return kind, items
        raise ValueError("unreachable: validated blocks have a body")

    def model_post_init(self, context: Any) -> None:
        bodies = [k for k in ("layers", "concat", "add") if getattr(self, k) is not None]
        if len(bodies) != 1:
            raise ValueError(
                "a block needs exactly one body: `layers` (a sequence), `concat` or `add` "
                f"(parallel branches); this one has {len(bodies) or 'none'}"
                + (f" ({', '.join(bodies)})" if bodies else "")
            )


class SpecModel(StrictModel):
    """A whole network spec."""

    name: StrictStr = Field(description="The network's name, e.g. googlenet.")
    description: StrictStr | None = None
    input: list[int | StrictStr] | StrictStr = Field(
        description="Input size [height, width, channels] (NHWC), or `224x224x3`."
    )
    vars: dict[Name, Scalar | list[Any]] = Field(
        default_factory=dict,
        description="Variables, overridable with `--set name=value`; used as `$name` or "
        "`${expression}`.",
    )
    defaults: dict[str, dict[str, Any]] = Field(
        default_factory=dict,
        description="Default parameters per layer type, e.g. `conv: {activation: relu}`.",
    )
    dtype: Literal["float32", "bfloat16", "float16"] | None = Field(
        None, description="Compute dtype of the compiled module (e.g. bfloat16)."
    )
    param_dtype: Literal["float32", "bfloat16", "float16"] = Field(
        "float32", description="Storage dtype of the parameters."
    )
    blocks: dict[Name, BlockDef] = Field(default_factory=dict)
    training: dict[str, Any] | None = Field(
        None, description="How `netspec train` trains it: see docs/training.md."
    )
    layers: list[Row] = Field(min_length=1, description="The table: one row per layer or block.")

    @field_validator("name")
    @classmethod
    def _name_not_blank(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("name must not be empty")
        return value


def parse_input_size(value: Any) -> Any:
    """`224x224x3` -> [224, 224, 3]; lists pass through."""
    if isinstance(value, str) and re.fullmatch(r"\d+x\d+x\d+", value.strip()):
        return [int(v) for v in value.strip().split("x")]
    return value


def json_schema() -> dict[str, Any]:
    """The JSON Schema of the file format, for editors: `netspec.schema.json_schema`."""
    from .schema import json_schema as build

    return build()
