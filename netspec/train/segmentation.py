"""Per-pixel models (semantic segmentation): the loss, the metrics, the jitted steps and the
training loop's per-pixel parts.

A network is per-pixel when the analysis gives it an output of H x W x K with (H, W) other
than (1, 1): K class scores (logits) for every output pixel, as a classifier has K for the
whole image. A final `softmax` row is left out of the compiled network (it returns logits),
the same convention as for classifiers.

Labels are int32 (B, H, W) class indices at the output's size. A pixel whose label is the
ignore index, and every pixel of a padding example, counts in neither the loss nor the
metrics. The metrics come from the confusion matrix C (rows: true class, columns: predicted
class, in pixels): pixel accuracy = trace(C) / sum(C); IoU_c = TP / (TP + FP + FN) =
C[c, c] / (row_c + column_c - C[c, c]); mean IoU averages IoU_c over the classes with
TP + FP + FN > 0 (present in the labels or the predictions).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx
from PIL import Image

from ..errors import SpecError
from ..remat import step_compiler_options
from .steps import Steps, TrainState

if TYPE_CHECKING:
    from .distributed import Parallel
    from .masks import MaskSet
    from .pipeline import Augment, Normalize, Pipeline


def is_per_pixel(output_shape: Sequence[int]) -> bool:
    """Whether a network output (H, W, K) scores every pixel: (H, W) is not (1, 1)."""
    return len(output_shape) == 3 and tuple(int(n) for n in output_shape[:2]) != (1, 1)


# --------------------------------------------------------------------------- loss, confusion


def pixel_cross_entropy(
    logits: jax.Array, labels: jax.Array, weights: jax.Array, smoothing: float = 0.0
) -> jax.Array:
    """float32 (B, H, W): each pixel's softmax cross-entropy of `logits` (B, H, W, K) against
    the class indices `labels` (B, H, W), targets smoothed by `smoothing` as
    `optax.smooth_labels` does ((1 - s) one-hot + s / K), times `weights` (B, H, W) (0 for
    pixels that do not count). No one-hot array is built."""
    log_p = jax.nn.log_softmax(logits.astype(jnp.float32), axis=-1)
    nll = -jnp.take_along_axis(log_p, labels[..., None].astype(jnp.int32), axis=-1)[..., 0]
    if smoothing:
        nll = (1.0 - smoothing) * nll - smoothing * log_p.mean(axis=-1)
    return nll * weights


def confusion_counts(
    labels: jax.Array, predictions: jax.Array, weights: jax.Array, classes: int
) -> jax.Array:
    """float32 (K, K): the summed `weights` of the pixels with each (true, predicted) pair;
    rows are true classes. `labels` and `predictions` are int (B, H, W) in [0, K)."""
    index = labels.astype(jnp.int32) * classes + predictions.astype(jnp.int32)
    counts = jnp.bincount(index.ravel(), weights=weights.ravel(), length=classes * classes)
    return counts.astype(jnp.float32).reshape(classes, classes)


def zero_sums(classes: int) -> dict[str, jax.Array]:
    """An epoch's running totals: loss (summed over counted pixels), correct and counted
    pixels, images, and the (K, K) pixel confusion matrix; float32."""
    sums = {key: jnp.zeros((), jnp.float32) for key in ("loss", "correct", "count", "images")}
    return {**sums, "confusion": jnp.zeros((classes, classes), jnp.float32)}


def make_segmentation_steps(
    graphdef: nnx.GraphDef,
    tx: optax.GradientTransformation,
    classes: int,
    ignore_index: int,
    smoothing: float = 0.0,
    *,
    donate: bool = True,
) -> Steps:
    """Jitted per-pixel steps, the same signatures as `steps.make_steps`: labels int32
    (B, H, W), mask float32 (B,). The loss is the mean cross-entropy over the batch's counted
    pixels (label not `ignore_index`, example not padding)."""

    def counted(labels: jax.Array, mask: jax.Array) -> tuple[jax.Array, jax.Array]:
        """(labels with ignored pixels set to 0, float32 weights: 1 where a pixel counts)."""
        keep = (labels != ignore_index) & (mask[:, None, None] > 0)
        return jnp.where(keep, labels, 0), keep.astype(jnp.float32)

    def train_step(
        state: TrainState, images: jax.Array, labels: jax.Array, mask: jax.Array
    ) -> TrainState:
        safe, weights = counted(labels, mask)
        pixels = weights.sum()

        def loss_fn(params: Any) -> tuple[jax.Array, tuple[jax.Array, Any]]:
            model = nnx.merge(graphdef, params, state.rest, copy=True)
            out = model(images, train=True)
            logits = out["main"] if isinstance(out, dict) else out
            loss = pixel_cross_entropy(logits, safe, weights, smoothing).sum()
            _, _, rest = nnx.split(model, nnx.Param, ...)
            return loss / jnp.maximum(pixels, 1.0), (logits, rest)

        (loss, (logits, rest)), grads = jax.value_and_grad(loss_fn, has_aux=True)(state.params)
        updates, opt_state = tx.update(grads, state.opt_state, state.params)
        params = optax.apply_updates(state.params, updates)
        predictions = jnp.argmax(logits, -1)
        sums = {
            "loss": state.sums["loss"] + loss * pixels,
            "correct": state.sums["correct"] + ((predictions == safe) * weights).sum(),
            "count": state.sums["count"] + pixels,
            "images": state.sums["images"] + mask.sum(),
            "confusion": state.sums["confusion"]
            + confusion_counts(safe, predictions, weights, classes),
        }
        bad = ~jnp.isfinite(loss)
        nan_step = jnp.where(bad & (state.nan_step < 0), state.step, state.nan_step)
        return TrainState(state.step + 1, params, rest, opt_state, sums, nan_step)

    def logits_of(params: Any, rest: Any, images: jax.Array) -> jax.Array:
        return nnx.merge(graphdef, params, rest, copy=True)(images, train=False)

    def eval_step(
        params: Any, rest: Any, images: jax.Array, labels: jax.Array, mask: jax.Array
    ) -> dict[str, jax.Array]:
        safe, weights = counted(labels, mask)
        logits = logits_of(params, rest, images).astype(jnp.float32)
        predictions = jnp.argmax(logits, -1)
        return {
            "loss": pixel_cross_entropy(logits, safe, weights).sum(),
            "correct": ((predictions == safe) * weights).sum(),
            "count": weights.sum(),
            "images": mask.sum(),
            "confusion": confusion_counts(safe, predictions, weights, classes),
        }

    return Steps(
        train=jax.jit(
            train_step,
            donate_argnums=0 if donate else (),
            compiler_options=step_compiler_options(graphdef),
        ),
        evaluate=jax.jit(eval_step),
        predict=jax.jit(logits_of),
    )


# --------------------------------------------------------------------------- metrics (host)


def iou_per_class(confusion: np.ndarray) -> np.ndarray:
    """float64 (K,): TP / (TP + FP + FN) per class from a (K, K) confusion matrix (rows true,
    columns predicted); NaN for a class in neither the labels nor the predictions."""
    matrix = np.asarray(confusion, dtype=np.float64)
    hits = np.diag(matrix)
    union = matrix.sum(axis=0) + matrix.sum(axis=1) - hits
    return np.divide(hits, union, out=np.full(len(hits), np.nan), where=union > 0)


def mean_iou(confusion: np.ndarray) -> float:
    """The mean of `iou_per_class` over the classes present (NaN when no pixel counted)."""
    ious = iou_per_class(confusion)
    present = ious[~np.isnan(ious)]
    return float(present.mean()) if present.size else float("nan")


def pixel_accuracy(confusion: np.ndarray) -> float:
    """Correct pixels / counted pixels (NaN when none counted)."""
    matrix = np.asarray(confusion, dtype=np.float64)
    total = matrix.sum()
    return float(np.trace(matrix) / total) if total > 0 else float("nan")


# --------------------------------------------------------------------------- training


@dataclass(frozen=True)
class PerPixel:
    """The per-pixel parts of `netspec train` (`loop.fit` asks its task for them): batches
    with mask labels, the per-pixel steps and sums, and epoch records with pixel accuracy
    (`*_acc`) and mean IoU (`*_miou`); the best checkpoint is the one of highest val mIoU."""

    classes: int
    """K, the network's output channels."""
    ignore_index: int
    label_shape: tuple[int, int]
    """The network's output (H, W): labels are resized to it (nearest)."""

    best_key = "val_miou"
    per_pixel = True

    def pipeline(
        self,
        split: MaskSet,
        image_shape: Sequence[int],
        batch_size: int,
        *,
        train: bool,
        augment: Augment | None = None,
        normalize: Normalize | None = None,
        seed: int = 0,
        workers: int = 0,
        shard: tuple[int, int] = (0, 1),
        processes: bool = False,
    ) -> Pipeline:
        from .masks import MaskPipeline
        from .pipeline import Augment

        return MaskPipeline(
            split,
            image_shape,
            batch_size,
            label_shape=self.label_shape,
            ignore_index=self.ignore_index,
            train=train,
            augment=augment or Augment(),
            normalize=normalize,
            seed=seed,
            workers=workers,
            shard=shard,
            processes=processes,
        )

    def steps(
        self,
        graphdef: nnx.GraphDef,
        tx: optax.GradientTransformation,
        loss_weights: dict[str, float],
        smoothing: float,
    ) -> Steps:
        return make_segmentation_steps(graphdef, tx, self.classes, self.ignore_index, smoothing)

    def zero_sums(self) -> dict[str, jax.Array]:
        return zero_sums(self.classes)

    def evaluate(self, steps: Steps, params: Any, rest: Any, data: Any, parallel: Parallel) -> dict:
        """Loss per counted pixel, pixel accuracy, mean IoU and the confusion matrix of a
        split (padding and ignored pixels left out)."""
        from .prefetch import prefetch_to_device

        totals = accumulate(
            steps.evaluate(params, rest, images, labels, mask)
            for images, labels, mask in prefetch_to_device(data.epoch(0), parallel.batch)
        )
        return scores(totals)

    def record(self, sums: dict[str, Any], val: dict[str, Any]) -> dict[str, float]:
        """The metric part of an epoch's record."""
        train = scores({k: np.asarray(v, np.float64) for k, v in sums.items()})
        return {
            "train_loss": train["loss"],
            "train_acc": train["acc"],
            "train_miou": train["miou"],
            "val_loss": val["loss"],
            "val_acc": val["acc"],
            "val_miou": val["miou"],
        }

    def images_seen(self, sums: dict[str, Any]) -> float:
        return float(sums["images"])

    def summary_line(self, record: dict[str, Any], epochs: int) -> str:
        return (
            f"epoch {record['epoch']}/{epochs}: loss {record['train_loss']:.4f} "
            f"pixel acc {record['train_acc']:.2%} mIoU {record['train_miou']:.2%} | "
            f"val loss {record['val_loss']:.4f} pixel acc {record['val_acc']:.2%} "
            f"mIoU {record['val_miou']:.2%} | lr {record['lr']:.3g} | "
            f"{record['images_per_sec']:,.0f} img/s, {record['seconds']:.1f}s"
        )

    def save_samples(self, split: MaskSet, class_names: list[str], folder: Path) -> None:
        from .masks import save_samples

        save_samples(split, folder)


def accumulate(results: Any) -> dict[str, np.ndarray]:
    """Per-batch step results summed on the host in float64 (exact pixel counts)."""
    totals: dict[str, np.ndarray] = {}
    for result in results:
        for key, value in jax.device_get(result).items():
            value = np.asarray(value, dtype=np.float64)
            totals[key] = totals[key] + value if key in totals else value
    return totals


def scores(totals: dict[str, Any]) -> dict[str, Any]:
    """loss (per counted pixel), acc (pixel accuracy), miou, iou (K,) and the confusion
    matrix from summed step results; NaN where nothing was counted."""
    if not totals:
        nan = float("nan")
        return {"loss": nan, "acc": nan, "miou": nan, "iou": None, "confusion": None}
    confusion = np.asarray(totals["confusion"], dtype=np.float64)
    count = float(totals["count"])
    return {
        "loss": float(totals["loss"]) / count if count else float("nan"),
        "acc": pixel_accuracy(confusion),
        "miou": mean_iou(confusion),
        "iou": iou_per_class(confusion),
        "confusion": confusion,
        "count": count,
        "images": float(totals.get("images", 0.0)),
    }


# --------------------------------------------------------------------------- eval, predict

PREDICTIONS_FOLDER = "predictions"
"""`netspec predict` writes a per-pixel run's masks to RUN/predictions/ unless told --out."""
PREDICT_CHUNK = 16
"""Images per forward pass in `predict_masks` (the last chunk is padded to it)."""


def evaluate_masks(
    trained: Any,
    run_dir: Path,
    data: str | None,
    out: Path | None,
    *,
    skip_bad_images: bool = False,
) -> dict[str, Any]:
    """`netspec eval` for a per-pixel run (`use.evaluate_run` calls it): loss per counted
    pixel, pixel accuracy, mean IoU and each class's IoU on every pair of `data`'s held-out
    part (`masks.load_mask_eval_set`), or without `data` on the run's own validation split.
    Writes ``metrics.json`` and ``confusion_matrix.png`` (pixel counts) like a classifier's
    eval."""
    from .artifacts import plot_confusion_matrix, save_json
    from .console import say
    from .masks import SHAPES, MaskEvalSet, MaskPipeline, load_mask_eval_set, load_masks
    from .use import OWN_SPLIT_NAME, _eval_folder, _same_source

    compiled, config = trained.compiled, trained.config
    shape = tuple(compiled.graph.input_shape)
    height, width, classes = compiled.report.output_shape
    ignore = trained.ignore_index
    if data is not None:
        chosen = load_mask_eval_set(data, shape, classes, ignore, skip_bad_images=skip_bad_images)
    else:
        training = config["training"]
        dataset = load_masks(
            config["data"] or SHAPES,
            shape,
            classes,
            ignore,
            seed=training["seed"],
            val_fraction=training["val_fraction"],
            skip_bad_images=skip_bad_images,
        )
        description = f"the run's validation split, {len(dataset.val):,} images of {dataset.source}"
        chosen = MaskEvalSet(
            dataset.val, dataset.class_names, description, OWN_SPLIT_NAME, True, dataset.skipped
        )
    where = str(data) if data is not None else str(config["data"] or SHAPES)
    if len(chosen.pairs) == 0:
        raise SpecError(f"nothing to evaluate: {chosen.description}", path=where)
    target = _eval_folder(run_dir, out, chosen.name)
    if data is not None and not chosen.held_out and _same_source(data, config["data"] or SHAPES):
        say(f"note: {chosen.description} includes the images {run_dir} was trained on")
    pipeline = MaskPipeline(
        chosen.pairs,
        shape,
        config["training"]["batch_size"],
        label_shape=(int(height), int(width)),
        ignore_index=ignore,
        train=False,
        normalize=trained.normalize,
    )
    result = scores(
        accumulate(
            trained.steps.evaluate(trained.params, trained.rest, b.images, b.labels, b.mask)
            for b in pipeline.epoch(0)
        )
    )
    names = trained.classes
    matrix = np.rint(result["confusion"]).astype(np.int64)
    metrics_path, picture = target / "metrics.json", target / "confusion_matrix.png"
    summary = {
        "data": chosen.description,
        "images": int(result["images"]),
        "pixels": int(result["count"]),
        "loss": result["loss"],
        "pixel_accuracy": result["acc"],
        "miou": result["miou"],
        "per_class": per_class_iou(matrix, names),
        "skipped": chosen.skipped,
        "metrics": str(metrics_path),
        "confusion_matrix": str(picture),
    }
    title = f"{compiled.name} on {chosen.description} (pixels)"
    try:
        plot_confusion_matrix(matrix, names, picture, title=title)
        save_json(metrics_path, {**summary, "run": str(run_dir), "confusion_counts": matrix})
    except OSError as error:
        raise SpecError(f"cannot write the results: {error}", path=str(target)) from None
    return summary


def per_class_iou(matrix: np.ndarray, names: Sequence[str]) -> list[dict[str, Any]]:
    """Per class (label order): its pixels in the labels, in the predictions, correct ones,
    and IoU (None for a class in neither)."""
    ious = iou_per_class(matrix)
    return [
        {
            "class": name,
            "pixels": int(matrix[index].sum()),
            "predicted": int(matrix[:, index].sum()),
            "correct": int(matrix[index, index]),
            "iou": None if np.isnan(ious[index]) else float(ious[index]),
        }
        for index, name in enumerate(names)
    ]


def predict_masks(trained: Any, images: Sequence[str], out: Path) -> list[dict[str, Any]]:
    """`netspec predict` for a per-pixel run: each image's most likely class per pixel,
    written to `out/<stem>.png` as a palette PNG with the VOC colours (palette index = class)
    at the image's own size (nearest neighbour from the network's output). Every image is
    decoded before anything is written; two images with the same stem, or a mask that would
    replace an input image, are refused."""
    from ..fileio import atomic_write_bytes
    from .datasets import open_image, pil_to_array
    from .masks import mask_image, nearest_crop, png_bytes

    height, width, channels = (int(n) for n in trained.compiled.graph.input_shape)
    targets: dict[Path, str] = {}
    inputs = {Path(name).resolve() for name in images}
    for name in images:
        target = out / f"{Path(name).stem}.png"
        if target in targets:
            raise SpecError(
                f"two images named {Path(name).stem}.*: their masks would both be {target}",
                path=name,
                hint="predict them in separate runs with different --out folders",
            )
        if target.resolve() in inputs:
            raise SpecError(
                f"its mask would replace the input image {target}",
                path=name,
                hint="choose another --out folder",
            )
        targets[target] = name
    decoded = []
    for name in images:
        image = open_image(Path(name), channels)
        resized = image.resize((width, height), Image.Resampling.BILINEAR)
        decoded.append((name, (image.height, image.width), pil_to_array(resized, channels)))
    mean = np.asarray(trained.normalize.mean, np.float32)
    std = np.asarray(trained.normalize.std, np.float32)
    chunk = min(PREDICT_CHUNK, len(decoded))
    predictions: list[np.ndarray] = []
    for start in range(0, len(decoded), chunk):
        part = [pixels for _, _, pixels in decoded[start : start + chunk]]
        batch = np.zeros((chunk, height, width, channels), np.float32)
        batch[: len(part)] = (np.stack(part).astype(np.float32) / 255.0 - mean) / std
        logits = trained.steps.predict(trained.params, trained.rest, batch)
        predictions += list(np.asarray(jnp.argmax(logits, -1))[: len(part)])
    results = []
    for (target, name), (_, size, _), predicted in zip(
        targets.items(), decoded, predictions, strict=True
    ):
        mask = nearest_crop(predicted, (0, 0, *predicted.shape), size)
        try:
            atomic_write_bytes(target, png_bytes(mask_image(mask)))
        except OSError as error:
            raise SpecError(f"cannot write the mask: {error}", path=str(target)) from None
        counts = np.bincount(mask.ravel(), minlength=len(trained.classes))
        shares = {
            trained.classes[c]: float(counts[c] / mask.size)
            for c in np.argsort(-counts, kind="stable")
            if counts[c]
        }
        results.append(
            {"image": name, "mask": str(target), "size": [size[1], size[0]], "classes": shares}
        )
    return results
