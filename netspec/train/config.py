"""The `training:` section of a spec (or a separate YAML file): optimizer, schedule, data.

Every field has a default, so a spec without `training:` still trains. Values may be
overridden from the command line with `--set training.learning_rate=0.1` (dotted paths).
"""

from __future__ import annotations

import inspect
import os
from collections.abc import Mapping
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from ..compiled import DTYPES
from ..errors import SpecError, did_you_mean
from ..layers.base import Integer, Number
from ..load import YamlMap
from ..specfile import parse_overrides
from ..validation import describe_validation_error, describe_validation_errors

WITHOUT_OPTAX = "without_optax"
"""Validation context flag: leave the optimizer's options unchecked (checking them imports
optax, hence JAX; `netspec compile` reads the section without it)."""

TRAINING_PREFIX = "training."
"""`--set training.FIELD=VALUE` sets a training option; other names are spec variables."""

PositiveNumber = Annotated[Number, Field(gt=0)]
Fraction = Annotated[Number, Field(ge=0, lt=1)]

OPTIMIZERS = ("sgd", "adam", "adamw", "nadam", "rmsprop", "adagrad", "lamb", "lion", "lars")
"""optax optimizers by their optax name; each takes `learning_rate` plus its own options."""


MAX_AUTO_WORKERS = 8
"""`workers: auto` uses one thread per available core up to this many (decoding and augmenting
release the GIL in Pillow and NumPy; beyond this the step, not the data, is the limit on CPU)."""


def worker_count(workers: int | str) -> int:
    """The data threads `training.workers` asks for: its number, or for `auto` one per CPU
    core this process may run on (its affinity mask, not the machine's count), 1 to
    MAX_AUTO_WORKERS."""
    if workers != "auto":
        return int(workers)
    if hasattr(os, "sched_getaffinity"):
        cores = len(os.sched_getaffinity(0))
    else:  # macOS, Windows
        cores = os.cpu_count() or 1
    return max(1, min(cores, MAX_AUTO_WORKERS))


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class OptimizerConfig(Strict):
    """`optimizer: {name: sgd, momentum: 0.9, nesterov: true}`: an optax optimizer and its
    options (checked against the optax function's own arguments)."""

    name: Literal[OPTIMIZERS] = "sgd"  # type: ignore[valid-type]
    options: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="before")
    @classmethod
    def _gather_options(cls, data: Any) -> Any:
        """Everything beside `name` is an option of the optax optimizer."""
        if isinstance(data, str):
            return {"name": data}
        if isinstance(data, Mapping) and "options" not in data:
            name = data.get("name", "sgd")
            return {"name": name, "options": {k: v for k, v in data.items() if k != "name"}}
        return data

    @model_validator(mode="after")
    def _known_options(self, info: ValidationInfo) -> OptimizerConfig:
        if not self.options or (info.context or {}).get(WITHOUT_OPTAX):
            return self
        allowed = optimizer_arguments(self.name)
        for key in self.options:
            if key not in allowed:
                hint = did_you_mean(key, allowed)
                raise ValueError(
                    f"optax.{self.name} has no option '{key}'"
                    + (f"; {hint}" if hint else f"; it takes: {', '.join(allowed)}")
                )
        return self


def optimizer_arguments(name: str) -> list[str]:
    """The keyword arguments of optax.<name> other than the learning rate."""
    import optax

    signature = inspect.signature(getattr(optax, name))
    return [p for p in signature.parameters if p != "learning_rate"]


class ScheduleConfig(Strict):
    """How the learning rate changes, in epochs (fractions allowed):
    `constant`; `step` (× `factor` every `step_epochs`); `piecewise` (× each of `factors` at
    each of `boundaries`); `cosine` (to `final_fraction` × lr); `exponential` (× `factor` per
    epoch). `warmup_epochs` ramps linearly from 0 first."""

    name: Literal["constant", "step", "piecewise", "cosine", "exponential"] = "constant"
    warmup_epochs: Annotated[Number, Field(ge=0)] = 0
    step_epochs: PositiveNumber | None = None
    factor: PositiveNumber = 0.1
    boundaries: list[PositiveNumber] = Field(default_factory=list)
    factors: list[PositiveNumber] = Field(default_factory=list)
    final_fraction: Annotated[Number, Field(ge=0, le=1)] = 0.0

    @model_validator(mode="before")
    @classmethod
    def _shorthand(cls, data: Any) -> Any:
        return {"name": data} if isinstance(data, str) else data

    @model_validator(mode="after")
    def _complete(self) -> ScheduleConfig:
        if self.name == "step" and self.step_epochs is None:
            raise ValueError("a `step` schedule needs step_epochs (e.g. 30: × factor every 30)")
        if self.name == "piecewise" and len(self.boundaries) != len(self.factors):
            raise ValueError("a `piecewise` schedule needs as many factors as boundaries")
        return self


class AugmentConfig(Strict):
    """Training-time augmentation: `random_crop: 4` pads 4 pixels and crops back (CIFAR);
    `random_resized_crop: [0.08, 1.0]` crops a random area fraction and resizes (ImageNet);
    `horizontal_flip: true`."""

    random_crop: Annotated[Integer, Field(ge=0)] = 0
    random_resized_crop: tuple[Fraction | Literal[1], Fraction | Literal[1]] | None = None
    horizontal_flip: StrictBool = False


class NormalizeConfig(Strict):
    """`(x / 255 - mean) / std` per channel; the tutorials' `(x/255 - 0.5)/0.5` is
    `{mean: [0.5], std: [0.5]}` (one value applies to every channel)."""

    mean: list[Number] = Field(default_factory=lambda: [0.0])
    std: list[PositiveNumber] = Field(default_factory=lambda: [1.0])


class FreezeUntil(Strict):
    """`freeze: {until: inception_4e}`: every row from the first up to and including this one."""

    until: str


class TrainingConfig(Strict):
    """Everything `netspec train` needs beside the network and the data."""

    optimizer: OptimizerConfig = Field(default_factory=OptimizerConfig)
    learning_rate: PositiveNumber = 0.01
    schedule: ScheduleConfig = Field(default_factory=ScheduleConfig)
    weight_decay: Annotated[Number, Field(ge=0)] = 0.0
    weight_decay_style: Literal["l2", "decoupled"] = Field(
        "l2",
        description="l2: added to the gradient, as the papers' L2 regularisation; "
        "decoupled: subtracted from the weights, as AdamW does",
    )
    weight_decay_on: Literal["kernels", "all"] = Field(
        "kernels",
        description="kernels: conv and dense weights only (not biases or batch "
        "norm); all: every parameter",
    )
    label_smoothing: Fraction = 0.0
    ignore_index: Annotated[Integer, Field(ge=0)] = Field(
        255,
        description="per-pixel models: mask pixels with this value count in neither the loss "
        "nor the metrics (VOC's 255 marks object borders)",
    )
    grad_clip: PositiveNumber | None = Field(None, description="clip gradients to this global norm")
    batch_size: Annotated[Integer, Field(ge=1)] | Literal["auto"] = Field(
        32,
        description="examples per step, over every device and process; auto: the largest power "
        "of two whose train step (XLA's memory analysis, compiled and not run) fits 90% of the "
        "device's memory (on CPU: of the available RAM); a run stores the number it chose",
    )
    epochs: Annotated[Integer, Field(ge=1)] = 10
    aux_weights: dict[str, Annotated[Number, Field(ge=0)]] = Field(
        default_factory=dict, description="override the loss weight of auxiliary heads by row"
    )
    dtype: Literal[DTYPES] | None = None  # type: ignore[valid-type]
    remat: Literal[False, "rows", "blocks"] = Field(
        False,
        description="recompute activations in the backward pass instead of keeping them (less "
        "memory, about one more forward pass of compute): blocks: each row that is a block "
        "(each repetition of a repeat= row); rows: every row; true: blocks; false: off",
    )

    @field_validator("remat", mode="before")
    @classmethod
    def _remat_true_means_blocks(cls, value: Any) -> Any:
        return "blocks" if value is True else value

    seed: Integer = 0
    augment: AugmentConfig = Field(default_factory=AugmentConfig)
    normalize: NormalizeConfig = Field(default_factory=NormalizeConfig)
    data: str | None = Field(None, description="default data source when --data is not given")
    val_fraction: Annotated[Number, Field(gt=0, lt=1)] = 0.1
    workers: Annotated[Integer, Field(ge=0)] | Literal["auto"] = Field(
        "auto",
        description="background data threads: a number (0: on the training thread), or auto: "
        f"one per available CPU core, at most {MAX_AUTO_WORKERS}",
    )
    worker_processes: bool = Field(
        False,
        description="run the data workers as processes instead of threads (for decoding "
        "that one process cannot keep up with, on many cores); they start once per run",
    )
    freeze: list[str] | FreezeUntil | Literal["backbone"] | None = Field(
        None,
        description="rows whose parameters do not train (batch norm in them uses its running "
        "statistics): a list of rows, {until: ROW} for every row up to ROW, or 'backbone' for "
        "every row but the output layer's and the auxiliary heads'",
    )
    backbone_lr_scale: Annotated[Number, Field(ge=0)] = Field(
        1.0,
        description="learning-rate factor for the rows that are neither frozen nor a head "
        "(fine-tuning: e.g. 0.1 for imported weights, 1 for the new head)",
    )


def apply_overrides(section: dict[str, Any], overrides: Mapping[str, Any]) -> dict[str, Any]:
    """Set dotted keys (`optimizer.momentum`) in a plain copy of the section."""
    result = to_plain(section)
    for dotted, value in overrides.items():
        target = result
        *parents, last = dotted.split(".")
        for key in parents:
            child = target.get(key)
            if isinstance(child, str) and key in ("optimizer", "schedule"):
                child = {"name": child}
            if not isinstance(child, dict):
                child = {}
            target[key] = child
            target = child
        target[last] = value
    return result


def to_plain(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {k: to_plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [to_plain(v) for v in value]
    return value


def split_overrides(pairs: list[str]) -> tuple[dict[str, Any], dict[str, Any]]:
    """`--set` pairs, parsed once (`parse_overrides`): spec variables, and `training.*` fields
    (the prefix dropped)."""
    variables: dict[str, Any] = {}
    training: dict[str, Any] = {}
    for key, value in parse_overrides(pairs).items():
        if key.startswith(TRAINING_PREFIX):
            training[key[len(TRAINING_PREFIX) :]] = value
        else:
            variables[key] = value
    return variables, training


def load_training_config(
    spec_data: YamlMap, file: str | None = None, overrides: Mapping[str, Any] | None = None
) -> TrainingConfig:
    """The spec's `training:` section, then `file`'s (a YAML mapping of the same fields) over
    it, then `--set training.*` overrides; errors located in whichever file holds the value."""
    section = spec_data.get("training") or YamlMap()
    source: Any = section
    if file is not None:
        from ..load import load_file

        extra = load_file(file)
        if not isinstance(extra, Mapping):
            raise SpecError("a training file is a mapping of training options", path=file)
        check(extra, "training")
        merged = {**to_plain(section), **to_plain(extra)}
        source = extra
    else:
        merged = to_plain(section)
    check(source, "training")
    try:
        return TrainingConfig.model_validate(apply_overrides(merged, overrides or {}))
    except ValidationError as error:  # the files passed: the problem is a --set override
        plain = apply_overrides({}, overrides or {})
        raise describe_validation_error(error, plain, "--set training", TrainingConfig) from None


def check_section(section: Any) -> list[SpecError]:
    """Every problem in a spec's `training:` section as written, located (no JAX import:
    the optimizer's options are checked against optax when training starts)."""
    try:
        TrainingConfig.model_validate(to_plain(section), context={WITHOUT_OPTAX: True})
    except ValidationError as error:
        return describe_validation_errors(error, section, "training", TrainingConfig)
    return []


def check(section: Any, what: str) -> None:
    """Validate a section as it is written, so an error points at its line."""
    try:
        TrainingConfig.model_validate(to_plain(section))
    except ValidationError as error:
        raise describe_validation_error(error, section, what, TrainingConfig) from None
