"""`netspec train --resume`: what differs from the run being continued, said before anything
is written.

A run keeps the spec it was trained with (`RUN/spec.yaml`, as written) and, in
`RUN/config.json`, the variables it was compiled with, its training options, its data and its
classes. Resuming builds the network again, from the spec given or from the run's own; its
checkpoints only fit the network they were saved from, and eval and predict rebuild the run
from `RUN/spec.yaml`. So a network that differs from the run's is refused, with the rows that
changed (`network_changes`); so are the training options that the checkpoints' layout or the
data split and order depend on (`FIXED_OPTIONS`) and other class names; any other option may
change (more epochs, another learning rate) and is listed (`training_changes`).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import SpecError

if TYPE_CHECKING:
    from ..analyze import RowReport
    from ..compiled import Compiled
    from ..graph import Node

FIXED_OPTIONS = (
    "batch_size",
    "seed",
    "val_fraction",
    "optimizer.name",
    "freeze",
    "backbone_lr_scale",
)
"""Training options a resumed run must keep: the batch size, seed and validation fraction fix
the data split, its order and the position in the epoch; the optimizer and the frozen or
scaled groups fix the layout of the optimizer state in the checkpoints."""

QUIET_OPTIONS = ("workers", "data")
"""Options not compared: the data workers change no result; the data source is compared as
the run's `data` (what `--data` or the spec named)."""

SHOWN_ROWS = 12
"""At most this many changed rows are listed; the rest are counted."""
SHOWN_FOLLOWING = 6
"""At most this many rows that change with them (another size or parameter count)."""


def run_config(run: Path) -> dict[str, Any]:
    """A run's `config.json`, checked to be a JSON object."""
    path = run / "config.json"
    if not path.is_file():
        raise SpecError("is not a training run (no config.json)", path=str(run))
    try:
        config = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise SpecError(f"cannot read it: {error}", path=str(path)) from None
    if not isinstance(config, dict):
        raise SpecError("is not a run's configuration (a JSON object)", path=str(path))
    return config


def run_network(run: Path, config: Mapping[str, Any]) -> Compiled | None:
    """The network a run was trained with: its own spec compiled with its variables; None
    when the spec no longer compiles (nothing to compare with)."""
    from ..compiled import compile_with

    try:
        return compile_with(run / "spec.yaml", dict(config.get("variables") or {}), None)
    except SpecError:
        return None


# --------------------------------------------------------------------------- the network


def network_changes(old: Compiled, new: Compiled) -> tuple[list[str], list[str]]:
    """How `new` differs from `old`, row by row: (the rows whose definition changed, were
    added or removed, and the input; the rows that only follow from them: another output
    size or parameter count with the same definition). Both empty: the same network."""
    changed: list[str] = []
    following: list[str] = []
    if old.graph.input_shape != new.graph.input_shape:
        changed.append(f"input {shape(old.graph.input_shape)} -> {shape(new.graph.input_shape)}")
    old_rows = {row.name: row for row in old.report.rows}
    new_rows = {row.name: row for row in new.report.rows}
    old_nodes, new_nodes = nodes_by_row(old), nodes_by_row(new)
    for row in new.report.rows:
        before = old_rows.get(row.name)
        if before is None:
            changed.append(
                f"row {row.name} added: {what(row)} -> {shape(row.output_shape)}, "
                f"{row.params:,} params"
            )
            continue
        definition = node_changes(old_nodes.get(row.name, []), new_nodes.get(row.name, []))
        if (before.type, before.window, before.args) != (row.type, row.window, row.args):
            definition.insert(0, f"{what(before)} -> {what(row)}")
        else:
            definition = [f"{what(row)} {', '.join(definition)}"] if definition else []
        size, counts = result_changes(before, row, spatial_only=bool(definition))
        if definition:
            result = "".join(f" {part}" for part in [*size, *(f"({c})" for c in counts)])
            changed.append(f"row {row.name}: {'; '.join(definition)}{result}")
        elif size or counts:
            following.append(f"row {row.name}: {', '.join([*size, *counts])}")
    for row in old.report.rows:
        if row.name not in new_rows:
            changed.append(
                f"row {row.name} removed (was {what(row)} -> {shape(row.output_shape)}, "
                f"{row.params:,} params)"
            )
    common_old = [name for name in old_rows if name in new_rows]
    common_new = [name for name in new_rows if name in old_rows]
    if common_old != common_new:
        changed.append("the rows are in another order")
    old_heads, new_heads = dict(heads(old)), dict(heads(new))
    for name in sorted(set(old_heads) | set(new_heads)):
        if old_heads.get(name) != new_heads.get(name):
            changed.append(
                f"auxiliary head {name}: loss weight {old_heads.get(name, '-')} -> "
                f"{new_heads.get(name, '-')}"
            )
    return changed, following


def heads(compiled: Compiled) -> list[tuple[str, float]]:
    return [(head.row, head.weight) for head in compiled.graph.heads]


def nodes_by_row(compiled: Compiled) -> dict[str, list[Node]]:
    """Each row's layer instances, in order."""
    rows: dict[str, list[Node]] = {}
    for node in compiled.graph.nodes:
        rows.setdefault(node.row, []).append(node)
    return rows


def node_changes(old: list[Node], new: list[Node]) -> list[str]:
    """What changed in one row's layers: parameters, layer types, inputs, layers added or
    removed (a layer inside a block named by its path in the row)."""
    before = {node.name: node for node in old}
    after = {node.name: node for node in new}
    single = len(before) == 1 and len(after) == 1 and set(before) == set(after)
    changes: list[str] = []
    for name, node in after.items():
        local = "" if single else f"{local_name(name, node.row)}: "
        previous = before.get(name)
        if previous is None:
            changes.append(f"{local_name(name, node.row)} added ({node.op})")
            continue
        if previous.op != node.op:
            changes.append(f"{local}{previous.op} -> {node.op}")
            continue
        changes.extend(f"{local}{change}" for change in attr_changes(previous.attrs, node.attrs))
        if previous.inputs != node.inputs:
            changes.append(
                f"{local}reads {', '.join(node.inputs)} (was {', '.join(previous.inputs)})"
            )
    changes.extend(
        f"{local_name(name, node.row)} removed ({node.op})"
        for name, node in before.items()
        if name not in after
    )
    return changes


def local_name(name: str, row: str) -> str:
    """A layer's path inside its row (`inception_3a/3x3/conv` -> `3x3/conv`)."""
    prefix = f"{row}/"
    return name[len(prefix) :] if name.startswith(prefix) else name


def attr_changes(old: Mapping[str, Any], new: Mapping[str, Any]) -> list[str]:
    """One phrase per changed layer parameter: `16 -> 20 filters`, `activation tanh -> relu`."""
    changes = []
    for key in [*old, *(k for k in new if k not in old)]:
        before, after = old.get(key), new.get(key)
        if before == after:
            continue
        if key in ("filters", "units"):
            changes.append(f"{value(before)} -> {value(after)} {key}")
        else:
            changes.append(f"{key} {value(before)} -> {value(after)}")
    return changes


def result_changes(old: RowReport, new: RowReport, spatial_only: bool) -> tuple[list, list]:
    """A row's other output size, and other parameter and statistics counts, as phrases
    (empty: the same). With `spatial_only` (the row's own definition changed, which says its
    depth), a new depth alone is not repeated."""
    size = []
    same_size = old.output_shape[:2] == new.output_shape[:2]
    if old.output_shape != new.output_shape and not (spatial_only and same_size):
        size.append(f"output {shape(old.output_shape)} -> {shape(new.output_shape)}")
    counts = [
        f"{label} {before:,} -> {after:,}"
        for label, before, after in (
            ("params", old.params, new.params),
            ("statistics", old.state, new.state),
        )
        if before != after
    ]
    return size, counts


def what(row: RowReport) -> str:
    """A row as the table reads it: its type, window (stride 1 left out) and block args."""
    window = row.window[: -len("/1")] if row.window.endswith("/1") else row.window
    return " ".join(str(part) for part in (row.type, window, *row.args) if part != "")


def value(item: Any) -> str:
    if isinstance(item, tuple) and item and all(isinstance(v, int) for v in item):
        return "x".join(str(v) for v in item)
    if item is None:
        return "none"
    return str(item)


def shape(dims: Any) -> str:
    return "x".join(str(d) for d in dims)


# --------------------------------------------------------------------------- the rest


def flatten(data: Any, prefix: str = "") -> dict[str, Any]:
    """Nested mappings as dotted keys (`optimizer.options.momentum`); lists kept whole."""
    if not isinstance(data, Mapping):
        return {prefix: data}
    flat: dict[str, Any] = {}
    for key, item in data.items():
        path = f"{prefix}.{key}" if prefix else str(key)
        if isinstance(item, Mapping) and item:
            flat.update(flatten(item, path))
        else:
            flat[path] = item
    return flat


def training_changes(old: Mapping[str, Any], new: Mapping[str, Any]) -> tuple[list[str], list[str]]:
    """(changes of `FIXED_OPTIONS`, other changes) between two training configs (as
    `TrainingConfig.model_dump()`, possibly through JSON), each `name old -> new`."""
    before = flatten(json.loads(json.dumps(old, default=str)))
    after = flatten(json.loads(json.dumps(new, default=str)))
    fixed: list[str] = []
    free: list[str] = []
    for key in [*before, *(k for k in after if k not in before)]:
        if key.split(".")[0] in QUIET_OPTIONS or before.get(key) == after.get(key):
            continue
        text = f"{key} {option(before.get(key))} -> {option(after.get(key))}"
        fixed_key = any(key == name or key.startswith(f"{name}.") for name in FIXED_OPTIONS)
        (fixed if fixed_key else free).append(text)
    return fixed, free


def epochs_done(run: Path) -> int:
    """The last epoch in the run's `metrics.jsonl` (0: none)."""
    from .artifacts import MetricsLog

    try:
        records = MetricsLog(run / "metrics.jsonl").read()
    except (OSError, ValueError):
        return 0
    return max((int(r.get("epoch", 0)) for r in records if isinstance(r, dict)), default=0)


def option(item: Any) -> str:
    if item is None:
        return "none"
    if isinstance(item, str):
        return item
    return json.dumps(item)


def listed(lines: list[str], limit: int = SHOWN_ROWS) -> str:
    shown = lines[:limit]
    rest = len(lines) - len(shown)
    return "".join(f"\n  {line}" for line in shown) + (f"\n  ... and {rest} more" if rest else "")


def check_resume(
    run: Path,
    compiled: Compiled,
    variables: Mapping[str, Any],
    training: Mapping[str, Any],
    source: str | None,
    class_names: list[str],
    own_spec: bool,
) -> list[str]:
    """Refuse to resume `run` with another network, other class names or other `FIXED_OPTIONS`
    (a `SpecError` naming each difference and how to go on); otherwise the notes to print
    about what else changed (data source, training options)."""
    config = run_config(run)
    command = f"netspec train --resume {run}"
    new_run = (
        "or train it as a new run: drop --resume (a new folder under runs/) or give another --out"
    )
    old = run_network(run, config)
    if old is not None:
        changed, following = network_changes(old, compiled)
        if changed or following:
            saved = dict(config.get("variables") or {})
            moved = [
                f"variable {name} {option(saved.get(name))} -> {option(variables.get(name))}"
                for name in sorted(set(saved) | set(variables))
                if saved.get(name) != variables.get(name)
            ]
            shown = following[:SHOWN_FOLLOWING]
            if len(following) > len(shown):
                shown.append(f"{len(following) - len(shown)} more rows")
            also = f"\n  and so {'; '.join(shown)}" if following and changed else ""
            rows = changed if changed else following
            raise SpecError(
                f"the network differs from the one this run was trained with "
                f"({run / 'spec.yaml'}), so its checkpoints do not fit it:"
                + listed(moved + rows)
                + also,
                path=str(compiled.graph.source or run),
                hint=(
                    f"to continue the run as it was, resume it with its own spec: {command}"
                    if not own_spec
                    else f"to continue the run as it was, leave its variables as they were: "
                    f"{command}"
                )
                + f"; {new_run}",
            )
    saved_classes = config.get("classes")
    if isinstance(saved_classes, list) and saved_classes != list(class_names):
        raise SpecError(
            f"the data's classes ({', '.join(map(str, class_names[:10]))}"
            f"{', ...' if len(class_names) > 10 else ''}) are not the run's "
            f"({', '.join(map(str, saved_classes[:10]))}"
            f"{', ...' if len(saved_classes) > 10 else ''})",
            path=str(run),
            hint=f"resume with the run's data ({config.get('data') or 'the default'}), {new_run}",
        )
    fixed, free = training_changes(config.get("training") or {}, training)
    if fixed:
        raise SpecError(
            "these training options differ from the run's, and its checkpoints, data split "
            "or data order depend on them:" + listed(fixed),
            path=str(run),
            hint=f"resume with the run's own options: {command} (other options such as "
            f"--epochs may change); {new_run}",
        )
    done = epochs_done(run)
    epochs = training.get("epochs")
    if isinstance(epochs, int) and done >= epochs:
        raise SpecError(
            f"the run has done {done} epoch{'' if done == 1 else 's'} of {epochs} "
            "(training.epochs): nothing to resume",
            path=str(run),
            hint=f"to train it further, ask for more epochs: {command} --epochs {done + 10}",
        )
    notes = []
    if source != config.get("data", source):
        notes.append(f"data {config.get('data') or 'default'} -> {source or 'default'}")
    return notes + free
