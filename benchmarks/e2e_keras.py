"""Keras 3 (JAX backend) side of the end-to-end benchmark (benchmarks/end_to_end.py): a whole
training run as a Keras user writes it, `run(job)` called in a fresh worker process.

- The model: `inception10` below (the course's Inception10 of specs/inception10.yaml, in the
  functional API, logits out) or benchmarks/handwritten_keras.py's GoogLeNet with its two
  auxiliary heads as extra outputs, `loss_weights` 1, 0.3, 0.3.
- `model.compile(SGD(0.01, momentum=0.9), SparseCategoricalCrossentropy(from_logits=True),
  metrics=[accuracy], jit_compile=True)`, float32.
- The data: a `keras.utils.PyDataset` per split (`workers` threads, no processes: the
  augmentation is NumPy and Pillow, which release the GIL), doing the augmentation that
  `netspec train` does: CIFAR, pad 4 zero pixels, random 32x32 crop, horizontal flip; photos,
  decode, random resized crop (area 0.08-1, aspect 3/4-4/3) to 224x224 bilinear, flip; then
  `(x / 255 - mean) / std`. Validation: no augmentation (photos squashed to 224x224, as
  netspec). Training drops the last partial batch (as netspec and the torch loader).
  (`keras.utils.image_dataset_from_directory(format="grain")` runs without TensorFlow, but it
  resizes every photo when it loads it, so it cannot cut a random resized crop out of the
  original photo; hence the PyDataset.)
- `model.fit(train, validation_data=val, epochs=N, callbacks=[ModelCheckpoint(...)])`: each
  epoch trains, evaluates and writes `epoch_NN.keras` (model and optimizer state).

Timing: a callback after the checkpoint one stamps each epoch's end; epoch 1 runs from the
start of `run` (after the imports) so it holds building the model, compiling and tracing.
Per epoch also: the training phase (epoch begin to validation begin, the device waited for),
validation, the checkpoint's save, and the time the training loop spent waiting for its next
batch (Keras' epoch iterator, wrapped: on a CPU, Keras fetches the batch inside its train
function, synchronously).
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("KERAS_BACKEND", "jax")
sys.path.insert(0, str(Path(__file__).resolve().parent))

import e2e_data
import keras
import numpy as np
from keras import layers
from PIL import Image

# --- Inception10 -----------------------------------------------------------------------------


def conv_bn_relu(x, ch: int, kernel: int = 3, stride: int = 1):
    """The course's ConvBNRelu: Conv2D (same padding, bias), BatchNormalization (Keras
    defaults: momentum 0.99, epsilon 1e-3), ReLU."""
    x = layers.Conv2D(ch, kernel, stride, padding="same")(x)
    x = layers.BatchNormalization()(x)
    return layers.Activation("relu")(x)


def inception_block(x, ch: int, stride: int = 1):
    """The course's InceptionBlk: four branches of `ch` channels, concatenated."""
    c1 = conv_bn_relu(x, ch, 1, stride)
    c2 = conv_bn_relu(conv_bn_relu(x, ch, 1, stride), ch, 3)
    c3 = conv_bn_relu(conv_bn_relu(x, ch, 1, stride), ch, 5)
    p4 = layers.MaxPooling2D(3, 1, padding="same")(x)
    c4 = conv_bn_relu(p4, ch, 1, stride)
    return layers.Concatenate(axis=3)([c1, c2, c3, c4])


def inception10(num_blocks: int = 2, num_classes: int = 10, init_ch: int = 16) -> keras.Model:
    """The course's Inception10 on 32x32x3, returning logits (its softmax goes in the loss)."""
    inputs = keras.Input((32, 32, 3))
    x = conv_bn_relu(inputs, init_ch)
    ch = init_ch
    for _ in range(num_blocks):
        for layer in range(2):
            x = inception_block(x, ch, stride=2 if layer == 0 else 1)
        ch *= 2
    x = layers.GlobalAveragePooling2D()(x)
    return keras.Model(inputs, layers.Dense(num_classes)(x), name="inception10")


def build(workload: str, classes: int) -> keras.Model:
    if workload == "cifar":
        return inception10(num_classes=classes)
    from handwritten_keras import googlenet

    return googlenet("float32", classes)


def count(model: keras.Model) -> int:
    """Trainable parameters (batch-norm statistics are not counted, as netspec)."""
    return sum(int(np.prod(v.shape)) for v in model.trainable_variables)


# --- data ------------------------------------------------------------------------------------


class Split(keras.utils.PyDataset):
    """Batches of one split: `images` uint8 (N, H, W, 3) in memory, or `paths` of JPEGs.
    Training: shuffled each epoch, augmented, the last partial batch dropped."""

    def __init__(
        self,
        *,
        labels: np.ndarray,
        batch: int,
        train: bool,
        mean: tuple[float, ...],
        std: tuple[float, ...],
        images: np.ndarray | None = None,
        paths: list[Path] | None = None,
        size: int = 224,
        heads: int = 1,
        seed: int = 0,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.images, self.paths, self.labels = images, paths, labels
        self.batch, self.train, self.size, self.heads, self.seed = batch, train, size, heads, seed
        self.scale = (1.0 / (255.0 * np.asarray(std, np.float32))).astype(np.float32)
        self.shift = (np.asarray(mean, np.float32) / np.asarray(std, np.float32)).astype(np.float32)
        self.epoch = 0
        self.order = self._order()

    def _order(self) -> np.ndarray:
        if not self.train:
            return np.arange(len(self.labels))
        return np.random.default_rng([self.seed, self.epoch]).permutation(len(self.labels))

    def __len__(self) -> int:
        if self.train:
            return len(self.labels) // self.batch
        return -(-len(self.labels) // self.batch)

    def on_epoch_end(self) -> None:
        self.epoch += 1
        self.order = self._order()

    def __getitem__(self, index: int):
        indices = self.order[index * self.batch : (index + 1) * self.batch]
        rng = np.random.default_rng([self.seed, self.epoch, index, 1])
        if self.images is not None:
            pixels = self._cifar(self.images[indices], rng)
        else:
            pixels = self._photos([self.paths[i] for i in indices], rng)  # type: ignore[index]
        x = pixels.astype(np.float32) * self.scale - self.shift
        y = self.labels[indices]
        return x, (tuple([y] * self.heads) if self.heads > 1 else y)

    def _cifar(self, pixels: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        if not self.train:
            return pixels
        n, h, w, _ = pixels.shape
        padded = np.pad(pixels, ((0, 0), (4, 4), (4, 4), (0, 0)))
        offsets = rng.integers(0, 9, size=(n, 2))
        flips = rng.random(n) < 0.5
        out = np.empty_like(pixels)
        for i, ((dy, dx), flip) in enumerate(zip(offsets, flips, strict=True)):
            window = padded[i, dy : dy + h, dx : dx + w]
            out[i] = window[:, ::-1] if flip else window
        return out

    def _photos(self, paths: list[Path], rng: np.random.Generator) -> np.ndarray:
        out = np.empty((len(paths), self.size, self.size, 3), np.uint8)
        for i, path in enumerate(paths):
            with Image.open(path) as opened:
                image = opened.convert("RGB")
            if self.train:
                box = resized_crop_box(rng, image.width, image.height)
                image = image.resize((self.size, self.size), Image.Resampling.BILINEAR, box=box)
                if rng.random() < 0.5:
                    image = image.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
            else:
                image = image.resize((self.size, self.size), Image.Resampling.BILINEAR)
            out[i] = np.asarray(image)
        return out


def resized_crop_box(
    rng: np.random.Generator,
    width: int,
    height: int,
    scale: tuple[float, float] = (0.08, 1.0),
    ratio: tuple[float, float] = (3 / 4, 4 / 3),
) -> tuple[int, int, int, int]:
    """(left, top, right, bottom) of a random crop of area fraction in `scale` and aspect
    (w/h) log-uniform in `ratio`: ten tries, then the centred crop (torchvision's rule)."""
    area = width * height
    for _ in range(10):
        target = area * rng.uniform(*scale)
        aspect = np.exp(rng.uniform(np.log(ratio[0]), np.log(ratio[1])))
        w, h = round(np.sqrt(target * aspect)), round(np.sqrt(target / aspect))
        if 0 < w <= width and 0 < h <= height:
            left, top = int(rng.integers(0, width - w + 1)), int(rng.integers(0, height - h + 1))
            return left, top, left + w, top + h
    if width / height < ratio[0]:
        w, h = width, round(width / ratio[0])
    elif width / height > ratio[1]:
        w, h = round(height * ratio[1]), height
    else:
        w, h = width, height
    left, top = (width - w) // 2, (height - h) // 2
    return left, top, left + w, top + h


def splits(job: dict, heads: int) -> tuple[Split, Split]:
    options = {"workers": job["workers"], "use_multiprocessing": False}
    common = {"batch": job["batch"], "heads": heads, "seed": job["seed"], **options}
    if job["workload"] == "cifar":
        (train_x, train_y), (val_x, val_y) = e2e_data.read_cifar(Path(job["data"]))
        norm = {"mean": e2e_data.CIFAR_MEAN, "std": e2e_data.CIFAR_STD}
        return (
            Split(images=train_x, labels=train_y, train=True, **norm, **common),
            Split(images=val_x, labels=val_y, train=False, **norm, **common),
        )
    root = Path(job["data"])
    train_paths, train_y, _ = e2e_data.folder_files(root / "train")
    val_paths, val_y, _ = e2e_data.folder_files(root / "val")
    norm = {"mean": e2e_data.IMAGENET_MEAN, "std": e2e_data.IMAGENET_STD}
    return (
        Split(paths=train_paths, labels=train_y, train=True, **norm, **common),
        Split(paths=val_paths, labels=val_y, train=False, **norm, **common),
    )


# --- timing ----------------------------------------------------------------------------------

WAIT = {"train": 0.0, "eval": 0.0}
"""Seconds the loop spent in `next(batches)`, by phase (the wrapped epoch iterator adds)."""
_phase = ["train"]


def time_batch_waits() -> bool:
    """Wrap Keras' JAX epoch iterator so each `next` on the batch iterator is timed (private
    API: returns False, and the waits are not reported, where it is not there)."""
    try:
        from keras.src.backend.jax import trainer as jax_trainer
    except ImportError:
        return False
    base = getattr(jax_trainer, "JAXEpochIterator", None)
    if base is None or not hasattr(base, "_get_iterator"):
        return False

    class TimedEpochIterator(base):  # type: ignore[misc, valid-type]
        def _get_iterator(self):
            inner = iter(super()._get_iterator())
            while True:
                start = time.perf_counter()
                try:
                    batch = next(inner)
                except StopIteration:
                    return
                WAIT[_phase[0]] += time.perf_counter() - start
                yield batch

    jax_trainer.JAXEpochIterator = TimedEpochIterator
    return True


class TimedCheckpoint(keras.callbacks.ModelCheckpoint):
    """ModelCheckpoint (the whole model with its optimizer state, every epoch), timed."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.seconds: list[float] = []

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        start = time.perf_counter()
        super().on_epoch_end(epoch, logs)
        self.seconds.append(time.perf_counter() - start)


class EpochClock(keras.callbacks.Callback):
    """Stamps each epoch's phases; listed after the checkpoint, so an epoch ends after its
    save. No batch hooks (they would make `fit` wait for every step's logs)."""

    def __init__(self, start: float, waits: bool) -> None:
        super().__init__()
        self.last_end, self.waits = start, waits
        self.epochs: list[dict[str, Any]] = []

    def _sync(self) -> None:
        import jax

        jax.block_until_ready([v.value for v in self.model.variables])

    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
        WAIT["train"] = WAIT["eval"] = 0.0
        _phase[0] = "train"
        self.began = time.perf_counter()

    def on_test_begin(self, logs: dict | None = None) -> None:
        self._sync()  # the training phase ends when its last step has
        self.test_began = time.perf_counter()
        _phase[0] = "eval"

    def on_test_end(self, logs: dict | None = None) -> None:
        self.test_ended = time.perf_counter()
        _phase[0] = "train"

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        now = time.perf_counter()
        logs = logs or {}
        train_s = self.test_began - self.began
        self.epochs.append(
            {
                "epoch": epoch + 1,
                "seconds": now - self.last_end,
                "train_s": train_s,
                "data_wait_s": WAIT["train"] if self.waits else None,
                "step_s": train_s - WAIT["train"] if self.waits else None,
                "eval_s": self.test_ended - self.test_began,
                "train_loss": _first(logs, "loss", val=False),
                "train_acc": _first(logs, "accuracy", val=False),
                "val_acc": _first(logs, "accuracy", val=True),
            }
        )
        self.last_end = now


def _first(logs: dict, word: str, *, val: bool) -> float | None:
    for key, value in logs.items():
        if key.startswith("val_") == val and key.endswith(word):
            return float(value)
    return None


# --- the run ---------------------------------------------------------------------------------


def run(job: dict) -> dict[str, Any]:
    """Train as `job` says (see end_to_end.py `make_job`); returns params and epoch records."""
    start = time.perf_counter()
    keras.utils.set_random_seed(job["seed"])
    heads = 3 if job["workload"] == "folder" else 1
    model = build(job["workload"], job["classes"])
    params = count(model)
    if params != job["expected_params"]:
        raise RuntimeError(
            f"keras model has {params:,} parameters, netspec {job['expected_params']:,}"
        )
    losses = [keras.losses.SparseCategoricalCrossentropy(from_logits=True) for _ in range(heads)]
    accuracy = keras.metrics.SparseCategoricalAccuracy(name="accuracy")
    model.compile(
        optimizer=keras.optimizers.SGD(job["lr"], momentum=job["momentum"]),
        loss=losses if heads > 1 else losses[0],
        loss_weights=[1.0] + [job["aux_weight"]] * (heads - 1) if heads > 1 else None,
        metrics=[[accuracy]] + [[]] * (heads - 1) if heads > 1 else [accuracy],
        jit_compile=True,
    )
    train, val = splits(job, heads)
    out = Path(job["out"])
    out.mkdir(parents=True, exist_ok=True)
    checkpoint = TimedCheckpoint(str(out / "epoch_{epoch:02d}.keras"))
    clock = EpochClock(start, time_batch_waits())
    model.fit(
        train,
        validation_data=val,
        epochs=job["epochs"],
        callbacks=[checkpoint, clock],
        verbose=0,
    )
    images = len(train) * job["batch"]
    for record, seconds in zip(clock.epochs, checkpoint.seconds, strict=True):
        record["checkpoint_s"] = seconds
        record["images"] = images
        record["images_per_sec"] = images / record["train_s"]
    return {"label": f"keras {keras.__version__}", "params": params, "epochs": clock.epochs}
