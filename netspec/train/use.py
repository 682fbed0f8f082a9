"""Use a trained run: `netspec eval RUN_DIR` and `netspec predict RUN_DIR IMAGE...`."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import SpecError
from .loop import load_config, say


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


def load_trained(run_dir: Path) -> Trained:
    """Rebuild the run's network and restore its best checkpoint (else the latest)."""
    from flax import nnx

    from ..compiled import compile_with
    from .artifacts import load_class_names
    from .checkpoint import Checkpoints
    from .pipeline import Normalize
    from .steps import make_steps

    config = load_config(run_dir)
    compiled = compile_with(run_dir / "spec.yaml", config["variables"], config.get("dtype"))
    model = compiled.build(seed=0)
    graphdef, params, rest = nnx.split(model, nnx.Param, ...)
    checkpoints = Checkpoints(run_dir)
    restored = checkpoints.restore((params, rest), best=True, report=say)
    if restored is None:
        restored_latest = checkpoints.restore(_latest_like(model, config), report=say)
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
        tuple(_per_channel(norm["mean"], channels)), tuple(_per_channel(norm["std"], channels))
    )
    steps = make_steps(graphdef, _no_optimizer(), {"main": 1.0}, 0.0)
    return Trained(compiled, params, rest, steps, load_class_names(run_dir), normalize, config)


def _per_channel(values: list[float], channels: int) -> list[float]:
    return values * channels if len(values) == 1 else values


def _no_optimizer() -> Any:
    import optax

    return optax.identity()


def _latest_like(model: Any, config: dict[str, Any]) -> Any:
    """A TrainState of the run's shape, to restore the latest checkpoint into."""
    from .config import TrainingConfig
    from .optim import build_optimizer
    from .steps import initial_state

    training = TrainingConfig.model_validate(config["training"])
    tx, _ = build_optimizer(training, 1)
    return initial_state(model, tx)[1]


def evaluate_run(run_dir: Path, data: str | None = None, out: Path | None = None) -> dict[str, Any]:
    """Loss, top-1, top-5 and a confusion matrix of the run's model on `data` (default: the
    run's own validation split)."""
    import jax

    from .artifacts import confusion_matrix, plot_confusion_matrix
    from .datasets import load_dataset
    from .pipeline import Pipeline

    trained = load_trained(run_dir)
    shape = trained.compiled.graph.input_shape
    training = trained.config["training"]
    dataset = load_dataset(
        data or trained.config["data"],
        tuple(shape),
        seed=training["seed"],
        val_fraction=training["val_fraction"],
    )
    if data and dataset.class_names != trained.classes:
        raise SpecError(
            f"the data's classes {dataset.class_names[:5]}... differ from the "
            f"run's {trained.classes[:5]}...",
            path=str(data),
        )
    split = dataset.val
    pipeline = Pipeline(
        split, tuple(shape), training["batch_size"], train=False, normalize=trained.normalize
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
    count = max(totals.get("count", 0.0), 1.0)
    matrix = confusion_matrix(
        np.concatenate(labels), np.concatenate(predictions), len(trained.classes)
    )
    target = out or run_dir / "confusion_matrix.png"
    plot_confusion_matrix(
        matrix, trained.classes, target, title=f"{trained.compiled.name} on {len(split):,} images"
    )
    return {
        "images": int(count),
        "loss": totals["loss"] / count,
        "top1": totals["correct"] / count,
        "top5": totals["top5"] / count,
        "confusion_matrix": str(target),
    }


def predict(run_dir: Path, images: list[str], top_k: int = 5) -> list[dict[str, Any]]:
    """Top-k class names with probabilities for each image file."""
    import jax

    from .datasets import decode_image

    trained = load_trained(run_dir)
    shape = trained.compiled.graph.input_shape
    mean = np.asarray(trained.normalize.mean, np.float32)
    std = np.asarray(trained.normalize.std, np.float32)
    results = []
    for name in images:
        pixels = decode_image(Path(name), tuple(shape)).astype(np.float32) / 255.0
        batch = ((pixels - mean) / std)[None]
        logits = trained.steps.predict(trained.params, trained.rest, batch)
        probabilities = np.asarray(jax.nn.softmax(logits.astype("float32"), -1))[0]
        best = np.argsort(-probabilities)[:top_k]
        results.append(
            {
                "image": name,
                "top": [
                    {"class": trained.classes[i], "probability": float(probabilities[i])}
                    for i in best
                ],
            }
        )
    return results
