"""What a training run writes into its run directory: metrics log, curves, confusion matrices,
TensorBoard events, JSON files and class names.

Every whole-file write goes through `netspec.fileio` (a temporary file in the same folder moved
into place with `os.replace`), so a crash never leaves a half-written file. `metrics.jsonl` is
append-only and fsynced per line; a torn last line (crash mid-append) is ignored when reading
and dropped on the next append or `truncate_to`.

matplotlib and tensorboardX are imported lazily, inside the functions that need them, so that the
command line starts fast.
"""

from __future__ import annotations

import contextlib
import io
import json
import math
import os
import threading
from collections.abc import Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ..fileio import atomic_write_bytes, atomic_write_text

if TYPE_CHECKING:
    from matplotlib.figure import Figure

REQUIRED_KEYS = (
    "epoch",
    "train_loss",
    "train_acc",
    "val_loss",
    "val_acc",
    "lr",
    "seconds",
    "images_per_sec",
)
"""Keys of every `metrics.jsonl` record; `TOP5_KEY` is added with more than 5 classes, and
`train_miou`, `val_miou` for per-pixel models (whose `*_acc` are pixel accuracies)."""

TOP5_KEY = "val_top5"

TENSORBOARD_TAGS: dict[str, str] = {
    "train/loss": "train_loss",
    "train/acc": "train_acc",
    "val/loss": "val_loss",
    "val/acc": "val_acc",
    "val/top5": TOP5_KEY,
    "lr": "lr",
    "images_per_sec": "images_per_sec",
}
"""TensorBoard scalar tag -> metrics record key."""

PER_PIXEL_TAGS: dict[str, str] = {"train/miou": "train_miou", "val/miou": "val_miou"}
"""The tags only per-pixel models' records have (mean IoU)."""

CLASSES_FILE = "classes.json"
ANNOTATE_MAX_CLASSES = 30
TICK_LABELS_MAX_CLASSES = 100


# --- JSON -------------------------------------------------------------------------------------


def _json_default(value: Any) -> Any:
    """Let numpy/JAX scalars and arrays through `json.dumps` (as Python numbers and lists)."""
    if hasattr(value, "tolist"):
        return value.tolist()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def _dumps_line(record: Mapping[str, Any]) -> str:
    return json.dumps(record, default=_json_default, ensure_ascii=False) + "\n"


def save_json(path: Path, data: Any) -> None:
    """Write `data` as indented JSON, atomically."""
    text = json.dumps(data, indent=2, ensure_ascii=False, default=_json_default)
    atomic_write_text(path, text + "\n")


def load_json(path: Path) -> Any:
    """Read a JSON file."""
    return json.loads(Path(path).read_text(encoding="utf-8"))


def save_class_names(run_dir: Path, names: Sequence[str]) -> None:
    """Write the class names, in label order, to `run_dir/classes.json`."""
    names = list(names)
    if not all(isinstance(n, str) for n in names):
        raise TypeError("class names must be strings")
    save_json(Path(run_dir) / CLASSES_FILE, names)


def load_class_names(run_dir: Path) -> list[str]:
    """Read `run_dir/classes.json` (a JSON list of strings)."""
    path = Path(run_dir) / CLASSES_FILE
    names = load_json(path)
    if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
        raise ValueError(f"{path}: expected a JSON list of class names")
    return names


# --- metrics.jsonl ----------------------------------------------------------------------------


class MetricsLog:
    """`metrics.jsonl`: one JSON object per epoch, appended and flushed+fsynced per line."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._tail_checked = False

    def append(self, record: Mapping[str, Any]) -> None:
        """Append one epoch's record (it must have an integer ``epoch``) and fsync it."""
        _check_epoch(record)
        line = _dumps_line(record)
        self._drop_torn_tail()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self.path.open("a", encoding="utf-8") as f:
            f.write(line)
            f.flush()
            os.fsync(f.fileno())

    def read(self) -> list[dict]:
        """All complete records; a torn (unparseable, unterminated) last line is ignored."""
        records, _ = self._read()
        return records

    def truncate_to(self, epochs: int) -> None:
        """Keep only records with ``epoch <= epochs``; the file is rewritten atomically."""
        self._rewrite([r for r in self.read() if r["epoch"] <= epochs])

    def _read(self) -> tuple[list[dict], bool]:
        """(complete records, whether the file ends in a torn line)."""
        try:
            text = self.path.read_text(encoding="utf-8", errors="replace")
        except FileNotFoundError:
            return [], False
        lines = text.split("\n")
        tail = lines.pop()  # "" when the file ends with a newline
        records = [self._parse(line, n) for n, line in enumerate(lines, 1) if line.strip()]
        if not tail.strip():
            return records, bool(tail)
        with contextlib.suppress(ValueError):  # a torn line: the crash cut it short
            records.append(self._parse(tail, len(lines) + 1))
        return records, True

    def _parse(self, line: str, number: int) -> dict:
        try:
            record = json.loads(line)
        except json.JSONDecodeError as e:
            raise ValueError(f"{self.path}:{number}: not a JSON record: {e}") from e
        if not isinstance(record, dict):
            raise ValueError(f"{self.path}:{number}: expected a JSON object")
        return record

    def _drop_torn_tail(self) -> None:
        """Before the first append, rewrite the file if a crash left it without a final newline."""
        if self._tail_checked:
            return
        records, torn = self._read()
        if torn:
            self._rewrite(records)
        self._tail_checked = True

    def _rewrite(self, records: list[dict]) -> None:
        atomic_write_text(self.path, "".join(_dumps_line(r) for r in records))
        self._tail_checked = True


def _check_epoch(record: Mapping[str, Any]) -> None:
    epoch = record.get("epoch") if isinstance(record, Mapping) else None
    if not isinstance(epoch, int) or isinstance(epoch, bool):
        raise ValueError(f"a metrics record needs an integer 'epoch', got {record!r}")


# --- plots ------------------------------------------------------------------------------------


def _new_figure(width: float, height: float) -> Figure:
    """A figure not registered with pyplot: renders with Agg, never opens a display."""
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), layout="constrained")


def _save_png(figure: Figure, path: Path, dpi: int = 120) -> None:
    """Render `figure` to PNG in memory, then write it atomically."""
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=dpi)
    atomic_write_bytes(path, buffer.getvalue())


def _finite(value: Any) -> float | None:
    """`value` as a float when it is a finite number (numpy/JAX scalars included), else None."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def _series(records: Sequence[Mapping[str, Any]], key: str) -> tuple[list[int], list[float]]:
    """(epochs, values) of the records that have a finite number under `key`."""
    points = [(r["epoch"], _finite(r.get(key))) for r in records]
    kept = [(epoch, value) for epoch, value in points if value is not None]
    return [epoch for epoch, _ in kept], [value for _, value in kept]


def _plot_panel(axes: Any, records: Sequence[Mapping[str, Any]], lines: dict[str, str]) -> None:
    """Plot each `label -> key` series that has data; add a legend when anything was drawn."""
    for label, key in lines.items():
        epochs, values = _series(records, key)
        if epochs:
            style = "--" if key in (TOP5_KEY, "train_miou", "val_miou") else "-"
            axes.plot(epochs, values, style, marker="o", markersize=3, label=label)
    axes.set_xlabel("epoch")
    axes.grid(True, alpha=0.3)
    if axes.get_lines():
        axes.legend()


def curves_figure(records: Sequence[Mapping[str, Any]], title: str = "Training curves") -> Figure:
    """Two panels, loss and accuracy against epoch, train and val lines (val top-5, and mean
    IoU of per-pixel models, if logged)."""
    figure = _new_figure(11, 4.5)
    loss, accuracy = figure.subplots(1, 2)
    _plot_panel(loss, records, {"train": "train_loss", "val": "val_loss"})
    loss.set(title="Loss", ylabel="loss")
    acc_lines = {"train": "train_acc", "val": "val_acc", "val top-5": TOP5_KEY}
    acc_lines |= {"train mIoU": "train_miou", "val mIoU": "val_miou"}
    _plot_panel(accuracy, records, acc_lines)
    accuracy.set(title="Accuracy", ylabel="accuracy")
    figure.suptitle(title)
    return figure


def plot_curves(
    records: Sequence[Mapping[str, Any]], path: Path, title: str = "Training curves"
) -> None:
    """Write `curves.png`: loss and accuracy against epoch, train and val; atomically."""
    _save_png(curves_figure(records, title), path)


class CurvesWriter:
    """`curves.png` redrawn in a background thread after each epoch: matplotlib takes about a
    second (more as the history grows), which the training loop then does not wait for.
    Updates that arrive while one is drawn are merged into the next drawing; `close` waits
    for the last one and raises what went wrong in it."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.lock = threading.Lock()
        self.latest: list[Mapping[str, Any]] | None = None
        self.drawing: Future[None] | None = None
        self.executor = ThreadPoolExecutor(1, thread_name_prefix="netspec-curves")

    def update(self, records: Sequence[Mapping[str, Any]]) -> None:
        """Draw `records` (every epoch so far) soon."""
        with self.lock:
            scheduled = self.latest is not None
            self.latest = list(records)
            if not scheduled:
                self.drawing = self.executor.submit(self._draw)

    def _draw(self) -> None:
        with self.lock:
            records, self.latest = self.latest, None
        if records:
            plot_curves(records, self.path)

    def close(self) -> None:
        self.executor.shutdown(wait=True)
        if self.drawing is not None:
            self.drawing.result()


def confusion_matrix(labels: np.ndarray, predictions: np.ndarray, classes: int) -> np.ndarray:
    """Counts as int64 ``(classes, classes)``: rows are true labels, columns predictions
    (scikit-learn's, over every class whether it occurs or not)."""
    labels = np.asarray(labels).ravel()
    predictions = np.asarray(predictions).ravel()
    if labels.shape != predictions.shape:
        raise ValueError(f"{labels.size} labels but {predictions.size} predictions")
    for name, values in (("labels", labels), ("predictions", predictions)):
        if values.size and (values.min() < 0 or values.max() >= classes):
            raise ValueError(f"{name} must lie in [0, {classes})")
    if not labels.size:  # scikit-learn refuses empty input
        return np.zeros((classes, classes), dtype=np.int64)
    from sklearn.metrics import confusion_matrix as count

    return count(labels, predictions, labels=np.arange(classes)).astype(np.int64, copy=False)


def _row_normalised(matrix: np.ndarray) -> np.ndarray:
    """Each row divided by its sum (rows without examples stay zero)."""
    totals = matrix.sum(axis=1, keepdims=True)
    return np.divide(matrix, totals, out=np.zeros(matrix.shape), where=totals > 0)


def _annotate_counts(axes: Any, matrix: np.ndarray, normalised: np.ndarray, size: float) -> None:
    for (row, col), count in np.ndenumerate(matrix):
        colour = "white" if normalised[row, col] > 0.5 else "black"
        axes.text(col, row, str(count), ha="center", va="center", color=colour, fontsize=size)


def _label_axes(axes: Any, class_names: Sequence[str], size: float) -> None:
    """Class names on both axes; x labels rotated when long. Very many classes keep index ticks."""
    axes.set(xlabel="predicted", ylabel="true")
    if len(class_names) > TICK_LABELS_MAX_CLASSES:
        return
    ticks = np.arange(len(class_names))
    rotate = max((len(n) for n in class_names), default=0) > 3 or len(class_names) > 12
    x_style = {"rotation": 45, "ha": "right", "rotation_mode": "anchor"} if rotate else {}
    axes.set_xticks(ticks, labels=class_names, fontsize=size, **x_style)
    axes.set_yticks(ticks, labels=class_names, fontsize=size)


def confusion_figure(matrix: np.ndarray, class_names: Sequence[str], title: str = "") -> Figure:
    """Row-normalised heatmap, counts annotated up to `ANNOTATE_MAX_CLASSES` classes."""
    matrix = np.asarray(matrix)
    n = len(class_names)
    if matrix.shape != (n, n):
        raise ValueError(f"matrix of shape {matrix.shape} does not match {n} class names")
    side = min(20.0, max(6.0, 2.5 + 0.3 * n))  # inches
    cell = side * 0.8 * 72 / max(n, 1)  # points per cell, roughly
    figure = _new_figure(side + 1.2, side)
    axes = figure.subplots()
    normalised = _row_normalised(matrix)
    image = axes.imshow(normalised, cmap="Blues", vmin=0.0, vmax=1.0, interpolation="nearest")
    figure.colorbar(image, ax=axes, label="fraction of true class", shrink=0.8)
    if n <= ANNOTATE_MAX_CLASSES:
        _annotate_counts(axes, matrix, normalised, size=min(10.0, max(5.0, 0.35 * cell)))
    _label_axes(axes, class_names, size=min(10.0, max(3.0, 0.6 * cell)))
    axes.set_title(title or "Confusion matrix")
    return figure


def plot_confusion_matrix(
    matrix: np.ndarray, class_names: Sequence[str], path: Path, title: str = ""
) -> None:
    """Write a confusion-matrix heatmap PNG to `path`, atomically."""
    _save_png(confusion_figure(matrix, class_names, title), path)


# --- TensorBoard ------------------------------------------------------------------------------


class TensorBoard:
    """TensorBoard event files (tensorboardX SummaryWriter) in run_dir/tensorboard: scalars per
    epoch (train/loss, train/acc, val/loss, val/acc, val/top5, lr, images_per_sec; train/miou
    and val/miou for per-pixel models).

    On resume pass ``purge_step=first_new_epoch``: TensorBoard then hides the events of the
    crashed run at or after that step instead of showing both.

    tensorboardX writes from a background thread and its ``flush()`` does not drain that thread's
    queue, so events reach the file within about `FLUSH_SECS` seconds; `close` writes them all.
    """

    FLUSH_SECS = 10

    def __init__(self, run_dir: Path, purge_step: int | None = None) -> None:
        from tensorboardX import SummaryWriter

        self.logdir = Path(run_dir) / "tensorboard"
        self.logdir.mkdir(parents=True, exist_ok=True)
        self._writer = SummaryWriter(
            logdir=str(self.logdir), purge_step=purge_step, flush_secs=self.FLUSH_SECS
        )

    def write_epoch(self, record: Mapping[str, Any]) -> None:
        """One scalar per known tag present in `record`, at step ``record['epoch']``."""
        step = record["epoch"]
        for tag, key in {**TENSORBOARD_TAGS, **PER_PIXEL_TAGS}.items():
            value = record.get(key)
            if value is not None:
                self._writer.add_scalar(tag, float(value), step)
        self._writer.flush()

    def close(self) -> None:
        """Write every pending event and close the event file."""
        self._writer.close()

    def __enter__(self) -> TensorBoard:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
