"""Use a trained run: `netspec eval RUN_DIR` and `netspec predict RUN_DIR IMAGE...`."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ..errors import SpecError
from .console import say
from .loop import broadcast
from .rundir import load_config

if TYPE_CHECKING:
    from .datasets import EvalSet


@dataclass
class Trained:
    """A run's network with its best weights, and how its inputs were prepared."""

    compiled: Any
    params: Any
    rest: Any
    steps: Any
    classes: list[str]
    normalize: Any
    config: dict[str, Any]
    per_pixel: bool = False
    """The network scores every pixel (`segmentation.is_per_pixel`)."""
    ignore_index: int = 255


def load_trained(run_dir: Path) -> Trained:
    """Rebuild the run's network and restore its best checkpoint (else the latest)."""
    from flax import nnx

    from ..compiled import compile_with
    from .artifacts import load_class_names
    from .checkpoint import Checkpoints
    from .pipeline import Normalize
    from .segmentation import is_per_pixel, make_segmentation_steps, zero_sums
    from .steps import make_steps

    config = load_config(run_dir)
    compiled = compile_with(run_dir / "spec.yaml", config["variables"], config.get("dtype"))
    per_pixel = is_per_pixel(compiled.report.output_shape)
    classes = int(compiled.report.output_shape[2])
    ignore_index = int(config["training"].get("ignore_index", 255))
    model = compiled.build(seed=0)
    graphdef, params, rest = nnx.split(model, nnx.Param, ...)
    checkpoints = Checkpoints(run_dir)
    restored = checkpoints.restore((params, rest), best=True, report=say)
    if restored is None:
        sums = zero_sums(classes) if per_pixel else None
        like = _latest_like(model, config, compiled, sums)
        restored_latest = checkpoints.restore(like, report=say)
        if restored_latest is None:
            raise SpecError("holds no usable checkpoint", path=str(run_dir))
        state, _ = restored_latest
        params, rest = state.params, state.rest
    else:
        (params, rest), _ = restored
    checkpoints.close()
    channels = compiled.graph.input_shape[2]
    norm = config["training"]["normalize"]
    normalize = Normalize(
        tuple(broadcast(norm["mean"], channels)), tuple(broadcast(norm["std"], channels))
    )
    if per_pixel:
        steps = make_segmentation_steps(graphdef, _no_optimizer(), classes, ignore_index)
    else:
        steps = make_steps(graphdef, _no_optimizer(), {"main": 1.0}, 0.0)
    names = load_class_names(run_dir)
    return Trained(compiled, params, rest, steps, names, normalize, config, per_pixel, ignore_index)


def _no_optimizer() -> Any:
    import optax

    return optax.identity()


def _latest_like(model: Any, config: dict[str, Any], compiled: Any, sums: Any = None) -> Any:
    """A TrainState of the run's shape (`sums`: its running totals, None for a classifier's;
    the optimizer grouped as the run's `training.freeze` made it), to restore the latest
    checkpoint into."""
    from .config import TrainingConfig
    from .finetune import param_groups
    from .optim import build_optimizer
    from .steps import initial_state

    training = TrainingConfig.model_validate(config["training"])
    groups = param_groups(compiled, training)
    tx, _ = build_optimizer(training, 1, groups.labels(compiled) if groups.active else None)
    return initial_state(model, tx, sums)[1]


EVAL_FOLDER = "eval"
"""Eval results go to RUN/eval/<name of the data>/, never over the run's own files."""
OWN_SPLIT_NAME = "val"
NAMES_SHOWN = 20
TOP5_MIN_CLASSES = 6
"""Top-5 accuracy is reported only with more than 5 classes (with 5 or fewer it is 100%)."""


def evaluate_run(
    run_dir: Path,
    data: str | None = None,
    out: Path | None = None,
    *,
    skip_bad_images: bool = False,
) -> dict[str, Any]:
    """Score the run's model on every image of `data`'s held-out part (`load_eval_set`), or
    without `data` on the run's own validation split: loss, top-1, top-5 (more than 5 classes
    only), per-class accuracy and a confusion matrix. Writes ``metrics.json`` and
    ``confusion_matrix.png`` to `out` (default ``RUN/eval/<name of the data>/``)."""
    import jax

    from .artifacts import confusion_matrix, plot_confusion_matrix, save_json
    from .pipeline import Pipeline

    trained = load_trained(run_dir)
    if trained.per_pixel:
        from .segmentation import evaluate_masks

        return evaluate_masks(trained, run_dir, data, out, skip_bad_images=skip_bad_images)
    shape = tuple(trained.compiled.graph.input_shape)
    chosen = _eval_data(trained, data, shape, skip_bad_images)
    where = str(data) if data is not None else str(trained.config["data"] or "digits")
    if chosen.class_names != trained.classes:
        raise SpecError(_class_mismatch(chosen.class_names, trained.classes), path=where)
    if len(chosen.images) == 0:
        raise SpecError(f"nothing to evaluate: {chosen.description}", path=where)
    target = _eval_folder(run_dir, out, chosen.name)
    if data is not None and not chosen.held_out and _same_source(data, trained.config["data"]):
        say(f"note: {chosen.description} includes the images {run_dir} was trained on")
    pipeline = Pipeline(
        chosen.images,
        shape,
        trained.config["training"]["batch_size"],
        train=False,
        normalize=trained.normalize,
    )
    labels, predictions = [], []
    totals: dict[str, float] = {}
    for batch in pipeline.epoch(0):
        result = trained.steps.evaluate(
            trained.params, trained.rest, batch.images, batch.labels, batch.mask
        )
        for key, value in jax.device_get(result).items():
            totals[key] = totals.get(key, 0.0) + float(value)
        logits = trained.steps.predict(trained.params, trained.rest, batch.images)
        keep = batch.mask > 0
        labels.append(batch.labels[keep])
        predictions.append(np.asarray(logits).argmax(-1)[keep])
    count = max(totals["count"], 1.0)
    classes = trained.classes
    matrix = confusion_matrix(np.concatenate(labels), np.concatenate(predictions), len(classes))
    metrics_path, picture = target / "metrics.json", target / "confusion_matrix.png"
    summary = {
        "data": chosen.description,
        "images": int(totals["count"]),
        "loss": totals["loss"] / count,
        "top1": totals["correct"] / count,
        **({"top5": totals["top5"] / count} if len(classes) >= TOP5_MIN_CLASSES else {}),
        "per_class": _per_class(matrix, classes),
        "skipped": chosen.skipped,
        "metrics": str(metrics_path),
        "confusion_matrix": str(picture),
    }
    title = f"{trained.compiled.name} on {chosen.description}"
    try:
        plot_confusion_matrix(matrix, classes, picture, title=title)
        save_json(metrics_path, {**summary, "run": str(run_dir), "confusion_counts": matrix})
    except OSError as error:
        raise SpecError(f"cannot write the results: {error}", path=str(target)) from None
    return summary


def _eval_data(
    trained: Trained, data: str | None, shape: tuple[int, ...], skip_bad_images: bool
) -> EvalSet:
    """An `EvalSet`: every image of `data`'s held-out part, or the run's validation split."""
    from .datasets import LEGACY_SPLIT, EvalSet, load_dataset, load_eval_set

    height, width, channels = shape
    if data is not None:
        return load_eval_set(data, (height, width, channels), skip_bad_images=skip_bad_images)
    training = trained.config["training"]
    dataset = load_dataset(
        trained.config["data"],
        (height, width, channels),
        seed=training["seed"],
        val_fraction=training["val_fraction"],
        skip_bad_images=skip_bad_images,
        split=trained.config.get("split", LEGACY_SPLIT),  # the run's own train/val split
    )
    description = f"the run's validation split, {len(dataset.val):,} images of {dataset.source}"
    return EvalSet(
        dataset.val, dataset.class_names, description, OWN_SPLIT_NAME, True, dataset.skipped
    )


def _eval_folder(run_dir: Path, out: Path | None, name: str) -> Path:
    """Where results go: `out`, else RUN/eval/<name>; never the run directory itself."""
    target = Path(out) if out is not None else run_dir / EVAL_FOLDER / name
    if target.resolve() == run_dir.resolve():
        raise SpecError(
            "is the run directory: eval writes its results to a folder of their own, so the "
            "files training wrote stay as they are",
            path=str(target),
            hint=f"leave out --out (results go to {run_dir / EVAL_FOLDER / name})",
        )
    return target


def _same_source(data: str, trained_on: str | None) -> bool:
    """Whether `data` names the source the run was trained on (best effort: resolved paths)."""
    if trained_on is None or trained_on == "digits":
        return data == "digits"
    if data == "digits":
        return False
    return Path(data).expanduser().resolve() == Path(trained_on).expanduser().resolve()


def _per_class(matrix: np.ndarray, classes: list[str]) -> list[dict[str, Any]]:
    """Per class (label order): images, correctly classified, accuracy (None without images)."""
    rows = []
    for index, name in enumerate(classes):
        images, correct = int(matrix[index].sum()), int(matrix[index, index])
        accuracy = correct / images if images else None
        rows.append({"class": name, "images": images, "correct": correct, "accuracy": accuracy})
    return rows


def _class_mismatch(data_names: list[str], run_names: list[str]) -> str:
    """One message naming both class lists and what differs."""
    only_data = [name for name in data_names if name not in set(run_names)]
    only_run = [name for name in run_names if name not in set(data_names)]
    if len(only_data) == len(data_names):
        parts = ["no class in common"]
    elif only_data or only_run:
        parts = [f"only in the data: {_listed(only_data)}"] if only_data else []
        parts += [f"only in the run: {_listed(only_run)}"] if only_run else []
    else:
        parts = ["the same names in another order"]
    return (
        f"the data's {len(data_names)} classes [{_listed(data_names)}] differ from the run's "
        f"{len(run_names)} [{_listed(run_names)}]; {'; '.join(parts)}"
    )


def _listed(names: list[str]) -> str:
    shown = ", ".join(names[:NAMES_SHOWN])
    return shown + (f", ... ({len(names) - NAMES_SHOWN} more)" if len(names) > NAMES_SHOWN else "")


def predict(
    run_dir: Path, images: list[str], top_k: int = 5, out: Path | None = None
) -> list[dict[str, Any]]:
    """Top-k class names with probabilities for each image (files, folders or glob patterns,
    `image_args.expand_image_arguments`); an image that cannot be read gets
    `{"image": path, "error": why}` and the others are still classified. For a per-pixel
    run, a mask PNG per image in `out` (default RUN/predictions; `segmentation.predict_masks`)."""
    from ..image_args import expand_image_arguments
    from ..run import TrainedRun
    from .datasets import decode_image

    files = expand_image_arguments(images)
    trained = load_trained(run_dir)
    if trained.per_pixel:
        from .segmentation import PREDICTIONS_FOLDER, predict_masks

        return predict_masks(trained, files, out or run_dir / PREDICTIONS_FOLDER)
    if out is not None:
        raise SpecError(
            "a classifier's predictions are printed, not written: --out is for per-pixel "
            "runs (mask PNGs)",
            path=str(run_dir),
            hint="leave out --out (--json prints them as JSON)",
        )
    run = TrainedRun(run_dir, trained)
    shape = run.preprocessing.input_shape
    readable: list[tuple[str, np.ndarray]] = []
    unreadable: dict[str, str] = {}
    for name in files:
        try:
            readable.append((name, decode_image(Path(name), shape)))
        except SpecError as error:
            unreadable[name] = error.message
    scores = iter(run.probabilities(pixels for _, pixels in readable))
    pixels_of = dict(readable)
    return [
        {"image": name, "error": unreadable[name]}
        if name not in pixels_of
        else {"image": name, "top": run.ranked(next(scores), top_k)}
        for name in files
    ]


def graphdef_of(compiled: Any) -> Any:
    """The module's graph definition, from an abstract build (nothing initialised)."""
    from flax import nnx

    from ..compiled import resolve_dtype

    cls = compiled.network_class()
    dtype, param_dtype = resolve_dtype(compiled.dtype), resolve_dtype(compiled.param_dtype)
    return nnx.graphdef(
        nnx.eval_shape(lambda: cls(dtype=dtype, param_dtype=param_dtype, rngs=nnx.Rngs(0)))
    )
