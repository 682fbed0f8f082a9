"""Read the image data sets users have into labelled train/val splits.

Formats, detected from the `source` argument of `load_dataset`:

- ``None`` / ``"digits"``: scikit-learn's 8x8 handwritten digits (1,797 images, built in).
- an image folder: one sub-folder per class, or ``train/`` plus ``val/`` (``validation/``,
  ``test/``) each holding one sub-folder per class. Files stay on disk (`ImageSet.paths`)
  and are decoded lazily by the pipeline.
- CIFAR-10 python batches (``data_batch_1..5``, ``test_batch``, ``batches.meta``), read with
  a restricted unpickler that refuses anything but plain containers and numpy arrays.
- MNIST IDX files (``train-images-idx3-ubyte`` ..., each optionally ``.gz``).
- a ``.npz`` file: ``x_train, y_train, x_test, y_test`` or ``images, labels``.

`load_eval_set` reads the part of a source that it holds out from training (``val/``,
``test_batch``, ``t10k-*``, ``x_test``), or all of it, for ``netspec eval --data``.

`read_dataset` reads a source and finds its classes without needing the model;
`RawDataset.ready` then converts in-memory formats once to uint8 (N, H, W, C) at the model's
input size (or, where that would hold more than `RESIZED_BYTES`, to its channel count only:
the pipeline then resizes a batch at a time) and checks every image file.
`load_dataset` does both. Every problem with the data is a `SpecError` naming the file.
"""

from __future__ import annotations

import gzip
import io
import json
import math
import os
import pickle
import re
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
from PIL import ExifTags, Image, ImageOps, UnidentifiedImageError

from ..errors import SpecError

ImageShape = tuple[int, int, int]
"""A model input (height, width, channels); channels is 1 (grey) or 3 (RGB)."""

IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp"})
VAL_FOLDER_NAMES = ("val", "validation", "test")
EXPECTED_FORMATS = (
    "expected an image folder (one sub-folder per class), CIFAR-10 python batches, "
    "MNIST IDX files or a .npz file (or, for a per-pixel network, a folder with images/ and "
    "masks/)"
)
CIFAR_TRAIN_FILES = tuple(f"data_batch_{i}" for i in range(1, 6))
CIFAR_FOLDER = "cifar-10-batches-py"
MNIST_FILES = {
    "train_images": "train-images-idx3-ubyte",
    "train_labels": "train-labels-idx1-ubyte",
    "val_images": "t10k-images-idx3-ubyte",
    "val_labels": "t10k-labels-idx1-ubyte",
}
DIGIT_NAMES = [str(d) for d in range(10)]
CIFAR_NAMES = ("airplane", "automobile", "bird", "cat", "deer")
CIFAR_NAMES += ("dog", "frog", "horse", "ship", "truck")
RESIZED_BYTES = 1 << 30
"""In-memory images are resized once when that takes at most this much memory (per split),
else a batch at a time."""
SPLIT = "scikit-learn"
"""How a source without its own validation part is split (`stratified_split`); a run records
it in its config.json."""
LEGACY_SPLIT = "numpy"
"""The split of runs made before config.json recorded one (a NumPy permutation per class),
kept so that evaluating or resuming such a run sees the validation images it trained
without."""


@dataclass
class ImageSet:
    """One split. Either `images` (uint8 (N, H, W, C) at the model's size; in a `RawDataset`,
    (N, h, w[, c]) as read) or `paths` (image files decoded lazily by the pipeline); `labels`
    int32 (N,)."""

    images: np.ndarray | None
    paths: list[Path] | None
    labels: np.ndarray

    def __post_init__(self) -> None:
        if (self.images is None) == (self.paths is None):
            raise ValueError("an ImageSet holds either images or paths, not both or neither")
        self.labels = np.asarray(self.labels, dtype=np.int32)
        count = len(self.images) if self.images is not None else len(self.paths or [])
        if count != len(self.labels):
            raise ValueError(f"{count} images but {len(self.labels)} labels")

    def __len__(self) -> int:
        return len(self.labels)

    def resized(self, shape: ImageShape) -> ImageSet:
        """In-memory images for a model taking `shape`: resized once (`resize_images`) where
        that holds at most `RESIZED_BYTES`, else given its channel count (`with_channels`) and
        kept at their own height and width, the pipeline resizing each batch as it builds it
        (8x slower than reading resized images, so only where the memory matters: CIFAR-10
        for 224x224 would hold 7.5 GB). Image files stay files."""
        if self.images is None:
            return self
        height, width, channels = shape
        if len(self.images) * height * width * channels <= RESIZED_BYTES:
            return ImageSet(resize_images(self.images, shape), None, self.labels)
        return ImageSet(with_channels(self.images, channels), None, self.labels)


@dataclass
class Dataset:
    """Both splits of a data set and what it is called."""

    train: ImageSet
    val: ImageSet
    class_names: list[str]
    source: str
    """Human description, e.g. "image folder /data/flowers (3,670 images)"."""
    skipped: list[str] = field(default_factory=list)
    """Unreadable files left out (with `skip_bad_images`), each "path: reason"."""
    split: str = SPLIT
    """How it was split into train and val, where the source does not split it itself."""


@dataclass
class RawDataset:
    """A data set as read, before it meets a model: its classes are known, but in-memory images
    are at their own size and image files are not yet checked. `ready` gives the `Dataset`."""

    train: ImageSet
    val: ImageSet
    class_names: list[str]
    source: str
    """Human description; an image folder's gets its image count from `ready`."""
    folder: Path | None = None
    """The image folder read (its files are decoded and checked by `ready`), else None."""
    split: str = SPLIT
    """How it was split into train and val, where the source does not split it itself."""

    def ready(self, image_shape: Sequence[int], *, skip_bad_images: bool = False) -> Dataset:
        """The data for a model taking `image_shape`: in-memory images `ImageSet.resized`; every
        file of an image folder decoded once (in threads) so that a bad file is reported now,
        not hours into training: it raises a `SpecError`, or with `skip_bad_images` is left
        out and listed in `Dataset.skipped`."""
        shape = _check_image_shape(image_shape)
        if self.folder is None:
            train, val = self.train.resized(shape), self.val.resized(shape)
            return Dataset(train, val, self.class_names, self.source, split=self.split)
        skipped: list[str] = []
        train, val = (_drop_unreadable(s, skip_bad_images, skipped) for s in (self.train, self.val))
        if len(train) == 0:
            raise SpecError("no readable images for training", path=str(self.folder))
        total = len(train) + len(val)
        described = f"{self.source} ({_count(total)})"
        return Dataset(train, val, self.class_names, described, skipped, self.split)


# --------------------------------------------------------------------------- entry points


def load_dataset(
    source: str | Path | None,
    image_shape: tuple[int, int, int],
    *,
    seed: int = 0,
    val_fraction: float = 0.1,
    skip_bad_images: bool = False,
    split: str = SPLIT,
) -> Dataset:
    """Read `source` (see the module docstring for formats) for a model taking `image_shape`:
    `read_dataset`, then `RawDataset.ready`."""
    shape = _check_image_shape(image_shape)
    raw = read_dataset(source, seed=seed, val_fraction=val_fraction, split=split)
    return raw.ready(shape, skip_bad_images=skip_bad_images)


def read_dataset(
    source: str | Path | None, *, seed: int = 0, val_fraction: float = 0.1, split: str = SPLIT
) -> RawDataset:
    """Read `source` (see the module docstring for formats) and find its classes, without
    decoding image files or resizing anything (that needs the model: `RawDataset.ready`).

    Sources without their own validation split are split per class, `val_fraction` of each
    class going to `val`, chosen by `seed` (`stratified_split`; `split` is `SPLIT`, or
    `LEGACY_SPLIT` for a run made before runs recorded theirs).
    """
    if not 0.0 <= val_fraction < 1.0:
        raise SpecError(f"val_fraction must be in [0, 1), got {val_fraction}")
    if split not in (SPLIT, LEGACY_SPLIT):
        raise ValueError(f"split must be {SPLIT!r} or {LEGACY_SPLIT!r}, got {split!r}")
    raw = _read(source, seed, val_fraction, split)
    raw.split = split
    return raw


def _read(source: str | Path | None, seed: int, val_fraction: float, split: str) -> RawDataset:
    if source is None or str(source) == "digits":
        return _load_digits(seed, val_fraction, split)
    path = Path(source).expanduser()
    if not path.exists():
        raise SpecError(f"no such file or folder; {EXPECTED_FORMATS}", path=str(path))
    if path.is_file():
        if path.suffix.lower() == ".npz":
            return _load_npz(path, seed, val_fraction, split)
        raise SpecError(f"unknown data format; {EXPECTED_FORMATS}", path=str(path))
    cifar = _find_cifar(path)
    if cifar is not None:
        return _load_cifar(cifar)
    mnist = _find_mnist(path)
    if mnist is not None:
        return _load_mnist(mnist)
    return _load_image_folder(path, seed, val_fraction, split)


def _check_image_shape(image_shape: Sequence[int]) -> ImageShape:
    if len(image_shape) != 3 or image_shape[2] not in (1, 3) or min(image_shape[:2]) < 1:
        raise SpecError(
            f"the model's input must be images (height, width, channels) with 1 or 3 "
            f"channels to train on image data, got {tuple(image_shape)}"
        )
    height, width, channels = (int(n) for n in image_shape)
    return height, width, channels


# --------------------------------------------------------------------------- images


def _pil_mode(channels: int) -> str:
    return "L" if channels == 1 else "RGB"


def open_image(path: Path, channels: int) -> Image.Image:
    """The decoded image at `path`, EXIF orientation applied, in "L" (channels=1) or "RGB".

    Raises a `SpecError` naming the file when it cannot be read or is truncated.
    """
    return open_reduced(path, channels, None).image


class Decoded(NamedTuple):
    """An image file decoded by `open_reduced`."""

    image: Image.Image
    """Upright (EXIF orientation applied), "L" or "RGB"."""
    scale: float
    """What its sides were divided by while decoding: 1, 2, 4 or 8."""
    size: tuple[int, int]
    """(height, width) of the upright image at full size."""


def open_reduced(
    path: Path,
    channels: int,
    target: tuple[int, int] | None,
    box_of: Callable[[tuple[int, int]], Sequence[float]] | None = None,
) -> Decoded:
    """`open_image`, decoded at 1/2, 1/4 or 1/8 of its size (a JPEG: libjpeg's DCT scaling,
    Pillow's `draft`) where the part of it that will be resized to `target` (height, width)
    keeps at least that many pixels: all of it, or the (top, left, height, width) box that
    `box_of` gives for its upright full size. None: always at full size. Raises a `SpecError`
    naming the file when it cannot be read or is truncated."""
    try:
        with Image.open(path) as image:
            scale, full = 1.0, None
            # halving is possible only where both sides are at least twice the target's
            if target is not None and min(image.size) >= 2 * min(target):
                transposed = _is_transposed(image)
                width, height = image.size[::-1] if transposed else image.size
                full = (height, width)
                box = box_of(full) if box_of else (0, 0, height, width)
                wanted = (
                    math.ceil(height * target[0] / max(float(box[2]), 1.0)),
                    math.ceil(width * target[1] / max(float(box[3]), 1.0)),
                )
                scale = _reduce_on_decode(image, channels, wanted, transposed)
            image.load()
            upright = _to_8bit(ImageOps.exif_transpose(image))
            full = full or (upright.height, upright.width)  # (decoded at full size)
            return Decoded(upright.convert(_pil_mode(channels)), scale, full)
    except (UnidentifiedImageError, OSError, ValueError, Image.DecompressionBombError) as error:
        raise SpecError(f"cannot read image: {_describe(error)}", path=str(path)) from None


_TRANSPOSING = frozenset({5, 6, 7, 8})
"""EXIF orientations that swap width and height."""


def _is_transposed(image: Image.Image) -> bool:
    return image.getexif().get(ExifTags.Base.Orientation, 1) in _TRANSPOSING


def _reduce_on_decode(
    image: Image.Image, channels: int, at_least: tuple[int, int], transposed: bool
) -> float:
    """Ask a JPEG's decoder for the smallest of 1/8, 1/4, 1/2 or full size whose sides are at
    least `at_least` (upright height, width; the image is stored `transposed`); the factor
    chosen (1.0 for other formats)."""
    height, width = (max(1, int(n)) for n in at_least)
    if transposed:
        height, width = width, height
    full_width = image.size[0]
    drafted = image.draft(_pil_mode(channels), (width, height))
    if drafted is None:
        return 1.0
    return full_width / drafted[1][2]


def _to_8bit(image: Image.Image) -> Image.Image:
    """16-bit greyscale scaled to 8 bits (Pillow's own conversion to "L" clips at 255)."""
    if not image.mode.startswith("I;16"):
        return image
    pixels = np.asarray(image).astype(np.uint32)
    return Image.fromarray((pixels >> 8).astype(np.uint8))


def decode_image(path: Path, image_shape: tuple[int, int, int]) -> np.ndarray:
    """The image at `path` as uint8 (H, W, C) for `image_shape`, resized bilinearly (a JPEG
    decoded at reduced size first where both sides stay at least H and W: `open_reduced`)."""
    height, width, channels = image_shape
    image = open_reduced(path, channels, (height, width)).image
    image = image.resize((width, height), Image.Resampling.BILINEAR)
    return pil_to_array(image, channels)


def pil_to_array(image: Image.Image, channels: int) -> np.ndarray:
    """uint8 (H, W, C) pixels of an "L" or "RGB" image."""
    return np.asarray(image, dtype=np.uint8).reshape(image.height, image.width, channels)


def resize_images(images: np.ndarray, image_shape: Sequence[int]) -> np.ndarray:
    """uint8 (N, h, w[, c]) with c in 1, 3, 4 → uint8 (N, H, W, C) for `image_shape`:
    `with_channels`, then each image resized bilinearly."""
    height, width, channels = (int(n) for n in image_shape)
    converted = with_channels(images, channels)
    if converted.shape[1:3] == (height, width):
        return converted
    out = np.empty((len(converted), height, width, channels), dtype=np.uint8)
    for i, pixels in enumerate(converted):
        image = Image.fromarray(_squeeze_grey(pixels))
        out[i] = pil_to_array(image.resize((width, height), Image.Resampling.BILINEAR), channels)
    return out


def with_channels(images: np.ndarray, channels: int) -> np.ndarray:
    """uint8 (N, h, w[, c]) with c in 1, 3, 4 → uint8 (N, h, w, `channels`), converted as
    Pillow converts modes (grey replicated to RGB, RGB to luma L = 0.299 R + 0.587 G + 0.114 B,
    alpha dropped)."""
    batch = images[..., None] if images.ndim == 3 else images
    if batch.ndim != 4 or batch.shape[-1] not in (1, 3, 4):
        raise ValueError(f"expected (N, H, W[, 1|3|4]) images, got shape {images.shape}")
    if batch.shape[-1] == channels:
        return np.ascontiguousarray(batch, dtype=np.uint8)
    if batch.shape[-1] == 1 and channels == 3:
        return np.repeat(batch, 3, axis=-1).astype(np.uint8)
    out = np.empty((*batch.shape[:3], channels), dtype=np.uint8)
    for i, pixels in enumerate(batch):
        image = Image.fromarray(_squeeze_grey(pixels)).convert(_pil_mode(channels))
        out[i] = pil_to_array(image, channels)
    return out


def _squeeze_grey(pixels: np.ndarray) -> np.ndarray:
    return pixels[..., 0] if pixels.shape[-1] == 1 else pixels


def _describe(error: BaseException) -> str:
    if isinstance(error, UnidentifiedImageError):
        return "not an image Pillow can identify (unknown format or corrupt header)"
    text = str(error) or type(error).__name__
    if isinstance(error, FileNotFoundError):
        return "file not found"
    if "truncated" in text.lower() and "image file is truncated" not in text:
        return f"image file is truncated ({text})"
    return text


def _as_uint8(pixels: np.ndarray, where: str) -> np.ndarray:
    """Pixels as uint8: integers must lie in 0..255, floats in [0, 1] (scaled by 255)."""
    if pixels.size == 0:
        return pixels.astype(np.uint8)
    if pixels.dtype == np.uint8:
        return pixels
    low, high = float(pixels.min()), float(pixels.max())
    if np.issubdtype(pixels.dtype, np.integer) and low >= 0 and high <= 255:
        return pixels.astype(np.uint8)
    if np.issubdtype(pixels.dtype, np.floating) and low >= 0.0 and high <= 1.0:
        return np.rint(pixels * 255.0).astype(np.uint8)
    raise SpecError(
        f"pixel values must be uint8 (0..255) or floats in [0, 1]; got {pixels.dtype} "
        f"values from {low:g} to {high:g}",
        path=where,
    )


# --------------------------------------------------------------------------- splitting


def stratified_split(
    labels: np.ndarray, val_fraction: float, seed: int, split: str = SPLIT
) -> tuple[np.ndarray, np.ndarray]:
    """Indices (train, val), each sorted: scikit-learn's `train_test_split(stratify=labels)`,
    seeded with `seed`. Val holds round(n * val_fraction) images of a class of n, at least one
    and never all (the total shared out over the classes in proportion to their sizes, so
    exactly that where classes are equal), at least one of every class of two or more, and
    none of a class of a single image. (`split` `LEGACY_SPLIT`: `legacy_split`.)"""
    labels = np.asarray(labels)
    if split == LEGACY_SPLIT:
        return legacy_split(labels, val_fraction, seed)
    everything, empty = np.arange(len(labels)), np.zeros(0, dtype=np.int64)
    if val_fraction <= 0 or not len(labels):
        return everything, empty
    classes, counts = np.unique(labels, return_counts=True)
    split = classes[counts > 1]  # scikit-learn cannot stratify a class of one image
    wanted = np.clip(np.rint(counts * val_fraction), 1, counts - 1)[counts > 1]
    if not len(split):
        return everything, empty
    from sklearn.model_selection import train_test_split

    pool = everything[np.isin(labels, split)]
    train, val = train_test_split(
        pool, test_size=int(wanted.sum()), stratify=labels[pool], random_state=seed % 2**32
    )
    # scikit-learn shares the held-out total out in proportion to class sizes, so a class much
    # smaller than the rest can come out with no val image, or none left to train on.
    for label in split:
        if not np.any(labels[val] == label):
            first = np.flatnonzero(labels[train] == label)[0]
            train, val = np.delete(train, first), np.append(val, train[first])
        elif not np.any(labels[train] == label):
            first = np.flatnonzero(labels[val] == label)[0]
            train, val = np.append(train, val[first]), np.delete(val, first)
    singles = everything[~np.isin(labels, split)]
    return np.sort(np.concatenate([train, singles])), np.sort(val)


def legacy_split(
    labels: np.ndarray, val_fraction: float, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """`LEGACY_SPLIT`, the split of runs made before runs recorded theirs: per class in label
    order, round(n * val_fraction) of its n images (at least one for classes of two or more,
    never all) picked by one NumPy generator seeded with `seed`."""
    rng = np.random.default_rng(seed)
    train, val = [], []
    for label in np.unique(labels):
        members = np.flatnonzero(labels == label)
        n_val = round(len(members) * val_fraction)
        if val_fraction > 0 and len(members) > 1:
            n_val = min(max(n_val, 1), len(members) - 1)
        shuffled = rng.permutation(members)
        val.append(shuffled[:n_val])
        train.append(shuffled[n_val:])
    empty = np.zeros(0, dtype=np.int64)
    return np.sort(np.concatenate(train or [empty])), np.sort(np.concatenate(val or [empty]))


def run_split(run_dir: Path | None, resume: bool) -> str:
    """How to split the data of a run: a resumed run's own way (its config.json's `split`;
    `LEGACY_SPLIT` for a run that does not record one), else `SPLIT`."""
    config = Path(run_dir) / "config.json" if run_dir is not None else None
    if not resume or config is None or not config.is_file():
        return SPLIT
    try:
        recorded = json.loads(config.read_text(encoding="utf-8")).get("split", LEGACY_SPLIT)
    except (OSError, ValueError, AttributeError):
        return SPLIT  # unreadable: resuming reports it
    return recorded if recorded in (SPLIT, LEGACY_SPLIT) else SPLIT


def _split_arrays(
    images: np.ndarray, labels: np.ndarray, val_fraction: float, seed: int, split: str
) -> tuple[ImageSet, ImageSet]:
    train, val = stratified_split(labels, val_fraction, seed, split)
    return ImageSet(images[train], None, labels[train]), ImageSet(images[val], None, labels[val])


def _count(n: int) -> str:
    return f"{n:,} images"


# --------------------------------------------------------------------------- digits


def _load_digits(seed: int, val_fraction: float, split: str = SPLIT) -> RawDataset:
    """scikit-learn's 8x8 digits, values 0..16 scaled to 0..255."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    pixels = np.rint(digits.images * (255.0 / 16.0)).clip(0, 255).astype(np.uint8)
    train, val = _split_arrays(pixels, digits.target.astype(np.int32), val_fraction, seed, split)
    return RawDataset(
        train,
        val,
        list(DIGIT_NAMES),
        f"scikit-learn digits (built in, {_count(len(pixels))} of 8x8)",
    )


# --------------------------------------------------------------------------- npz


def _load_npz(path: Path, seed: int, val_fraction: float, split: str) -> RawDataset:
    """Keras style (x_train, y_train, x_test, y_test) or (images, labels) arrays."""
    where = str(path)
    arrays = _read_npz(path)
    keys = set(arrays)
    if {"x_train", "y_train", "x_test", "y_test"} <= keys:
        train_x, train_y = _npz_pair(arrays, "x_train", "y_train", where)
        val_x, val_y = _npz_pair(arrays, "x_test", "y_test", where)
    elif {"images", "labels"} <= keys:
        images, labels = _npz_pair(arrays, "images", "labels", where)
        train_idx, val_idx = stratified_split(labels, val_fraction, seed, split)
        train_x, train_y = images[train_idx], labels[train_idx]
        val_x, val_y = images[val_idx], labels[val_idx]
    else:
        raise SpecError(
            f"a .npz data set needs arrays x_train, y_train, x_test, y_test or images, "
            f"labels; this one has {', '.join(sorted(keys)) or 'none'}",
            path=where,
        )
    names = _npz_class_names(arrays, np.concatenate([train_y, val_y]), where)
    total = len(train_y) + len(val_y)
    return RawDataset(
        ImageSet(_as_uint8(train_x, where), None, train_y),
        ImageSet(_as_uint8(val_x, where), None, val_y),
        names,
        f".npz file {path} ({_count(total)})",
    )


def _read_npz(path: Path) -> dict[str, np.ndarray]:
    """Every array of a .npz file (pickled objects refused)."""
    where = str(path)
    try:
        with np.load(path, allow_pickle=False) as archive:
            return {key: archive[key] for key in archive.files}
    except ValueError as error:
        raise SpecError(
            f"cannot read .npz without pickle ({error}); store arrays of numbers and strings",
            path=where,
        ) from None
    except (OSError, EOFError) as error:
        raise SpecError(f"cannot read .npz: {error}", path=where) from None


def _npz_pair(
    arrays: dict[str, np.ndarray], x_key: str, y_key: str, where: str
) -> tuple[np.ndarray, np.ndarray]:
    images, labels = arrays[x_key], arrays[y_key]
    if images.ndim not in (3, 4) or (images.ndim == 4 and images.shape[-1] not in (1, 3, 4)):
        raise SpecError(
            f"{x_key} must be images (N, H, W) or (N, H, W, C) with C 1, 3 or 4; "
            f"got shape {images.shape}",
            path=where,
        )
    if labels.ndim == 2 and labels.shape[1] == 1:
        labels = labels[:, 0]
    if labels.ndim != 1 or not np.issubdtype(labels.dtype, np.integer):
        raise SpecError(
            f"{y_key} must be integer class labels (N,); got {labels.dtype} {labels.shape}",
            path=where,
        )
    if len(images) != len(labels):
        raise SpecError(
            f"{x_key} has {len(images):,} images but {y_key} has {len(labels):,} labels",
            path=where,
        )
    if len(labels) and labels.min() < 0:
        raise SpecError(f"{y_key} has negative labels (min {labels.min()})", path=where)
    return images, labels.astype(np.int32)


def _npz_class_names(arrays: dict[str, np.ndarray], labels: np.ndarray, where: str) -> list[str]:
    top = int(labels.max()) + 1 if len(labels) else 0
    if "class_names" not in arrays:
        return [str(i) for i in range(top)]
    names = [str(name) for name in np.asarray(arrays["class_names"]).reshape(-1)]
    if top > len(names):
        raise SpecError(
            f"label {top - 1} is out of range: class_names lists {len(names)} classes "
            f"(labels must be 0..{len(names) - 1})",
            path=where,
        )
    return names


# --------------------------------------------------------------------------- CIFAR-10


def _find_cifar(folder: Path) -> Path | None:
    for candidate in (folder, folder / CIFAR_FOLDER):
        if (candidate / CIFAR_TRAIN_FILES[0]).is_file():
            return candidate
    return None


def _numpy_global(module: str, name: str) -> Any:
    """numpy's own `module.name`, found under numpy 2's `_core` or numpy 1's `core`."""
    import importlib

    for prefix in ("numpy._core", "numpy.core"):
        try:
            return getattr(importlib.import_module(f"{prefix}.{module}"), name)
        except (ImportError, AttributeError):
            continue
    raise AttributeError(f"numpy has no {module}.{name}")


def _allowed_globals() -> dict[tuple[str, str], Callable[[], Any]]:
    """What CIFAR pickles (written by Python 2 or 3, numpy 1 or 2) may name, lazily resolved."""
    import builtins
    import codecs

    allowed: dict[tuple[str, str], Callable[[], Any]] = {
        ("numpy", "ndarray"): lambda: np.ndarray,
        ("numpy", "dtype"): lambda: np.dtype,
        ("_codecs", "encode"): lambda: codecs.encode,
    }
    for core in ("numpy.core", "numpy._core"):
        allowed[(f"{core}.multiarray", "_reconstruct")] = lambda: _numpy_global(
            "multiarray", "_reconstruct"
        )
        allowed[(f"{core}.multiarray", "scalar")] = lambda: _numpy_global("multiarray", "scalar")
        allowed[(f"{core}.numeric", "_frombuffer")] = lambda: _numpy_global(
            "numeric", "_frombuffer"
        )
    for module in ("builtins", "__builtin__"):
        for name in ("dict", "list", "tuple", "bytes", "bytearray", "str", "int", "float"):
            allowed[(module, name)] = lambda name=name: getattr(builtins, name)
    return allowed


class _SafeUnpickler(pickle.Unpickler):
    """An unpickler that builds only containers and numpy arrays; any other global a pickle
    asks for (``os.system``, ``subprocess.Popen``, ...) is refused before it is imported."""

    def __init__(self, file: io.BufferedIOBase, where: str) -> None:
        super().__init__(file, encoding="bytes")
        self.where = where
        self.allowed = _allowed_globals()

    def find_class(self, module: str, name: str) -> Any:
        resolve = self.allowed.get((module, name))
        if resolve is None:
            shown = "os" if module in ("posix", "nt") else module
            raise SpecError(
                f"refusing to load: the pickle asks for {shown}.{name}, which a CIFAR-10 "
                f"batch never needs (only numpy arrays, lists and dicts)",
                path=self.where,
            )
        return resolve()


def _unpickle(path: Path) -> Any:
    where = str(path)
    try:
        with path.open("rb") as file:
            return _SafeUnpickler(file, where).load()
    except SpecError:
        raise
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, OSError) as error:
        raise SpecError(
            f"not a readable CIFAR-10 python batch ({type(error).__name__}: {error})",
            path=where,
        ) from None


def _cifar_batch(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """uint8 (N, 32, 32, 3) images and int32 (N,) labels of one batch file."""
    where = str(path)
    if not path.is_file():
        raise SpecError(
            "missing: CIFAR-10 python batches are data_batch_1..5 and test_batch", path=where
        )
    batch = _unpickle(path)
    if not isinstance(batch, dict) or b"data" not in batch or b"labels" not in batch:
        raise SpecError("a CIFAR-10 batch must be a dict with b'data' and b'labels'", path=where)
    data, labels = np.asarray(batch[b"data"]), np.asarray(batch[b"labels"])
    if data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != 3 * 32 * 32:
        raise SpecError(
            f"b'data' must be uint8 (N, 3072); got {data.dtype} {data.shape}", path=where
        )
    if labels.shape != (len(data),) or not np.issubdtype(labels.dtype, np.integer):
        raise SpecError(
            f"b'labels' must be {len(data):,} integers; got {labels.dtype} {labels.shape}",
            path=where,
        )
    images = data.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)
    return images, labels.astype(np.int32)


def _cifar_names(folder: Path) -> list[str]:
    meta_path = folder / "batches.meta"
    if not meta_path.is_file():
        return list(CIFAR_NAMES)
    meta = _unpickle(meta_path)
    names = meta.get(b"label_names") if isinstance(meta, dict) else None
    if not isinstance(names, list):
        raise SpecError("batches.meta must hold b'label_names', a list", path=str(meta_path))
    return [n.decode("utf-8") if isinstance(n, bytes) else str(n) for n in names]


def _load_cifar(folder: Path) -> RawDataset:
    """CIFAR-10 python batches: the five data batches train, test_batch validates."""
    parts = [_cifar_batch(folder / name) for name in CIFAR_TRAIN_FILES]
    train_x = np.concatenate([images for images, _ in parts])
    train_y = np.concatenate([labels for _, labels in parts])
    val_x, val_y = _cifar_batch(folder / "test_batch")
    names = _cifar_names(folder)
    for labels, file in ((train_y, "data_batch_*"), (val_y, "test_batch")):
        _check_label_range(labels, len(names), str(folder / file))
    return RawDataset(
        ImageSet(train_x, None, train_y),
        ImageSet(val_x, None, val_y),
        names,
        f"CIFAR-10 python batches {folder} ({_count(len(train_y) + len(val_y))})",
    )


def _check_label_range(labels: np.ndarray, classes: int, where: str) -> None:
    if len(labels) and (labels.min() < 0 or labels.max() >= classes):
        raise SpecError(
            f"labels must be 0..{classes - 1} for {classes} classes; "
            f"found {labels.min()}..{labels.max()}",
            path=where,
        )


# --------------------------------------------------------------------------- MNIST IDX

IDX_TYPES = {
    0x08: np.dtype(np.uint8),
    0x09: np.dtype(np.int8),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}


def _find_mnist(folder: Path) -> dict[str, Path] | None:
    """The four IDX files (plain or .gz) in `folder`, or in torchvision's `raw/`, `MNIST/raw/`."""
    for candidate in (folder, folder / "raw", folder / "MNIST" / "raw"):
        found = {key: _idx_file(candidate, name) for key, name in MNIST_FILES.items()}
        if found["train_images"] is not None:
            missing = [MNIST_FILES[key] for key, path in found.items() if path is None]
            if missing:
                raise SpecError(
                    f"MNIST IDX files incomplete: missing {', '.join(missing)} (or .gz)",
                    path=str(candidate),
                )
            return {key: path for key, path in found.items() if path is not None}
    return None


def _idx_file(folder: Path, name: str) -> Path | None:
    for candidate in (folder / name, folder / f"{name}.gz"):
        if candidate.is_file():
            return candidate
    return None


def read_idx(path: Path) -> np.ndarray:
    """An IDX file (plain or gzipped): magic 0 0 type ndim, ndim big-endian uint32 sizes, data."""
    where = str(path)
    try:
        if path.suffix == ".gz":
            with gzip.open(path) as file:
                raw = file.read()
        else:
            raw = path.read_bytes()
    except (OSError, EOFError) as error:
        raise SpecError(f"cannot read IDX file: {error}", path=where) from None
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] not in IDX_TYPES:
        raise SpecError("not an IDX file (bad magic number)", path=where)
    ndim, dtype = raw[3], IDX_TYPES[raw[2]]
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise SpecError(f"truncated IDX file: header needs {header} bytes", path=where)
    dims = tuple(int(n) for n in np.frombuffer(raw, dtype=">u4", count=ndim, offset=4))
    expected = header + int(np.prod(dims, dtype=np.int64)) * dtype.itemsize
    if len(raw) != expected:
        state = "truncated" if len(raw) < expected else "too long"
        raise SpecError(
            f"{state} IDX file: its header says {dims} {dtype.name} ({expected:,} bytes) "
            f"but it has {len(raw):,} bytes",
            path=where,
        )
    return np.frombuffer(raw, dtype=dtype, offset=header).reshape(dims)


def _mnist_split(images_path: Path, labels_path: Path) -> ImageSet:
    images, labels = read_idx(images_path), read_idx(labels_path)
    if images.ndim != 3:
        raise SpecError(
            f"expected images (N, rows, cols), got {images.shape}", path=str(images_path)
        )
    if labels.ndim != 1:
        raise SpecError(f"expected labels (N,), got {labels.shape}", path=str(labels_path))
    if len(images) != len(labels):
        raise SpecError(
            f"{len(images):,} images but {labels_path.name} has {len(labels):,} labels",
            path=str(images_path),
        )
    _check_label_range(labels, 10, str(labels_path))
    return ImageSet(_as_uint8(images, str(images_path)), None, labels.astype(np.int32))


def _load_mnist(files: dict[str, Path]) -> RawDataset:
    """MNIST IDX files: train-* trains, t10k-* validates."""
    train = _mnist_split(files["train_images"], files["train_labels"])
    val = _mnist_split(files["val_images"], files["val_labels"])
    folder = files["train_images"].parent
    return RawDataset(
        train, val, list(DIGIT_NAMES), f"MNIST IDX files {folder} ({_count(len(train) + len(val))})"
    )


# --------------------------------------------------------------------------- image folders


def _visible_children(folder: Path) -> list[Path]:
    return sorted(child for child in folder.iterdir() if not child.name.startswith("."))


def _class_folders(folder: Path) -> list[Path]:
    return [child for child in _visible_children(folder) if child.is_dir()]


def _image_files(class_folder: Path) -> list[Path]:
    """Image files anywhere under `class_folder` (sorted; hidden files and folders ignored)."""
    found = []
    for root, dirs, files in os.walk(class_folder):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for name in sorted(files):
            if not name.startswith(".") and Path(name).suffix.lower() in IMAGE_SUFFIXES:
                found.append(Path(root) / name)
    return found


def _split_folders(folder: Path) -> tuple[Path, Path | None] | None:
    """(train, val) sub-folders when `folder` is split already; val None for a lone `train/`."""
    names = {child.name: child for child in _class_folders(folder)}
    if "train" not in names:
        return None
    for val_name in VAL_FOLDER_NAMES:
        if val_name in names:
            return names["train"], names[val_name]
    return (names["train"], None) if len(names) == 1 else None


def _read_classes(folder: Path) -> dict[str, list[Path]]:
    """Class name → its image files, for a folder with one sub-folder per class."""
    classes = {sub.name: _image_files(sub) for sub in _class_folders(folder)}
    if not classes:
        loose = [p for p in _visible_children(folder) if p.suffix.lower() in IMAGE_SUFFIXES]
        detail = f" (it has {len(loose)} loose images)" if loose else ""
        raise SpecError(
            f"no class sub-folders{detail}; {EXPECTED_FORMATS}",
            path=str(folder),
            hint="put each class's images in a sub-folder named after the class",
        )
    empty = [name for name, files in classes.items() if not files]
    if empty:
        raise SpecError(
            f"class folder(s) without images: {', '.join(empty)} "
            f"(looking for {', '.join(sorted(IMAGE_SUFFIXES))})",
            path=str(folder),
        )
    return classes


def _as_set(classes: dict[str, list[Path]], names: list[str]) -> ImageSet:
    paths = [path for name in names for path in classes[name]]
    labels = [label for label, name in enumerate(names) for _ in classes[name]]
    return ImageSet(None, paths, np.asarray(labels, dtype=np.int32))


def _load_image_folder(folder: Path, seed: int, val_fraction: float, split: str) -> RawDataset:
    """Class sub-folders, split already (train/ + val/) or split here per class (files are
    checked by `RawDataset.ready`)."""
    splits = _split_folders(folder)
    if splits is not None and splits[1] is not None:
        train_classes, val_classes = _read_classes(splits[0]), _read_classes(splits[1])
        _check_same_classes(train_classes, val_classes, splits[0], splits[1])
        names = sorted(train_classes)
        train, val = _as_set(train_classes, names), _as_set(val_classes, names)
    else:
        classes = _read_classes(splits[0] if splits else folder)
        names = sorted(classes)
        both = _as_set(classes, names)
        train_idx, val_idx = stratified_split(both.labels, val_fraction, seed, split)
        train, val = _subset(both, train_idx), _subset(both, val_idx)
    return RawDataset(train, val, names, f"image folder {folder}", folder)


def _subset(images: ImageSet, indices: np.ndarray) -> ImageSet:
    paths = images.paths or []
    return ImageSet(None, [paths[i] for i in indices], images.labels[indices])


def _check_same_classes(
    train: dict[str, list[Path]], val: dict[str, list[Path]], train_dir: Path, val_dir: Path
) -> None:
    only_train, only_val = sorted(set(train) - set(val)), sorted(set(val) - set(train))
    if only_train or only_val:
        parts = [f"only in {train_dir.name}/: {', '.join(only_train)}"] if only_train else []
        parts += [f"only in {val_dir.name}/: {', '.join(only_val)}"] if only_val else []
        raise SpecError(
            f"the splits must have the same class folders; {'; '.join(parts)}",
            path=str(train_dir.parent),
        )


def check_image(path: Path) -> str | None:
    """None if `path` decodes completely, else why not."""
    try:
        with Image.open(path) as image:
            image.load()
    except (UnidentifiedImageError, OSError, ValueError, Image.DecompressionBombError) as error:
        return _describe(error)
    return None


def _drop_unreadable(images: ImageSet, skip: bool, skipped: list[str]) -> ImageSet:
    """Decode every file once (in threads); raise on the first bad one, or drop bad ones."""
    paths = images.paths or []
    keep = []
    with ThreadPoolExecutor(max_workers=min(32, (os.cpu_count() or 1) * 2)) as pool:
        for i, (path, problem) in enumerate(zip(paths, pool.map(check_image, paths), strict=True)):
            if problem is None:
                keep.append(i)
            elif skip:
                skipped.append(f"{path}: {problem}")
            else:
                pool.shutdown(wait=False, cancel_futures=True)
                raise SpecError(
                    f"cannot read image: {problem}",
                    path=str(path),
                    hint="fix or delete the file, or skip bad images to leave such files out",
                )
    return images if len(keep) == len(paths) else _subset(images, np.asarray(keep, dtype=int))


# --------------------------------------------------------------------------- held-out data


@dataclass
class EvalSet:
    """What `netspec eval --data` scores: every image of the part of a data set that it holds
    out from training, or all of it when it holds nothing out."""

    images: ImageSet
    class_names: list[str]
    description: str
    """What was read, e.g. "val/ of /data/flowers/ (30 images)"."""
    name: str
    """A file-name-safe name for it, e.g. "flowers-val" (the eval output folder)."""
    held_out: bool
    """True for a part set aside from training (val/, test_batch, t10k, x_test); False when
    `images` is the whole data set."""
    skipped: list[str] = field(default_factory=list)
    """Unreadable files left out (with `skip_bad_images`), each "path: reason"."""


SPLIT_FOLDER_NAMES = frozenset({"train", "raw", *VAL_FOLDER_NAMES})


def load_eval_set(
    source: str | Path | None, image_shape: tuple[int, int, int], *, skip_bad_images: bool = False
) -> EvalSet:
    """Every image of `source`'s held-out part, for a model taking `image_shape`.

    An image folder with ``train/`` and ``val/`` (``validation/``, ``test/``: the folder
    training validates on) gives all of that folder, one without gives all its images;
    CIFAR-10 batches give ``test_batch``; MNIST IDX files the ``t10k`` pair; a .npz file
    ``x_test, y_test`` if it has them, else all of ``images, labels``; ``digits`` all 1,797.
    Unreadable image files raise a `SpecError` naming them, or with `skip_bad_images` are
    left out and listed.
    """
    shape = _check_image_shape(image_shape)
    if source is None or str(source) == "digits":
        digits = _load_digits(0, 0.0)
        images = digits.train.resized(shape)
        description = f"all of scikit-learn digits ({_count(len(images))})"
        return EvalSet(images, digits.class_names, description, "digits", False)
    path = Path(source).expanduser()
    if not path.exists():
        raise SpecError(f"no such file or folder; {EXPECTED_FORMATS}", path=str(path))
    if path.is_file():
        if path.suffix.lower() == ".npz":
            return _eval_npz(path, shape)
        raise SpecError(f"unknown data format; {EXPECTED_FORMATS}", path=str(path))
    cifar = _find_cifar_test(path)
    if cifar is not None:
        return _eval_cifar(cifar, path, shape)
    mnist = _find_mnist_test(path)
    if mnist is not None:
        images = _mnist_split(mnist[0], mnist[1]).resized(shape)
        description = f"MNIST t10k files of {mnist[0].parent}/ ({_count(len(images))})"
        return EvalSet(images, list(DIGIT_NAMES), description, _slug(path, "t10k"), True)
    return _eval_image_folder(path, skip_bad_images)


def _slug(path: Path, part: str = "") -> str:
    """A folder name for results on `path` (its parent's name too when it is called "val" and
    the like), `part` appended: "flowers-val", "cifar-10-batches-py-test_batch"."""
    resolved = path.resolve()
    words = [resolved.stem if resolved.suffix.lower() == ".npz" else resolved.name]
    if words[0].lower() in SPLIT_FOLDER_NAMES and resolved.parent.name:
        words.insert(0, resolved.parent.name)
    if part and part.lower() != words[-1].lower():
        words.append(part)
    text = "-".join(re.sub(r"[^A-Za-z0-9._]+", "-", word).strip("-.") for word in words)
    return text.strip("-")[:80] or "data"


def _eval_image_folder(folder: Path, skip_bad_images: bool) -> EvalSet:
    splits = _split_folders(folder)
    if splits is not None and splits[1] is not None:
        part, held_out = splits[1], True
        description, name = f"{part.name}/ of {folder}/", _slug(folder, part.name)
    else:
        part, held_out = (splits[0] if splits else folder), False
        description, name = f"all of {part}/", _slug(part)
    classes = _read_classes(part)
    names = sorted(classes)
    skipped: list[str] = []
    images = _drop_unreadable(_as_set(classes, names), skip_bad_images, skipped)
    if len(images) == 0:
        raise SpecError("no readable images to evaluate", path=str(part))
    return EvalSet(images, names, f"{description} ({_count(len(images))})", name, held_out, skipped)


def _find_cifar_test(folder: Path) -> Path | None:
    """The folder of CIFAR-10 batches (a `test_batch` alone is enough), or None."""
    for candidate in (folder, folder / CIFAR_FOLDER):
        if (candidate / "test_batch").is_file() or (candidate / CIFAR_TRAIN_FILES[0]).is_file():
            return candidate
    return None


def _eval_cifar(folder: Path, given: Path, shape: ImageShape) -> EvalSet:
    images, labels = _cifar_batch(folder / "test_batch")
    names = _cifar_names(folder)
    _check_label_range(labels, len(names), str(folder / "test_batch"))
    description = f"CIFAR-10 test_batch of {folder}/ ({_count(len(labels))})"
    split = ImageSet(images, None, labels).resized(shape)
    return EvalSet(split, names, description, _slug(given, "test_batch"), True)


def _find_mnist_test(folder: Path) -> tuple[Path, Path] | None:
    """The t10k images and labels files (plain or .gz) where `_find_mnist` looks, or None."""
    test_images, test_labels = MNIST_FILES["val_images"], MNIST_FILES["val_labels"]
    for candidate in (folder, folder / "raw", folder / "MNIST" / "raw"):
        images, labels = _idx_file(candidate, test_images), _idx_file(candidate, test_labels)
        if images is not None and labels is not None:
            return images, labels
        if images is not None or labels is not None:
            missing = test_labels if images is not None else test_images
            raise SpecError(
                f"MNIST IDX test files incomplete: missing {missing} (or .gz)",
                path=str(candidate),
            )
        if _idx_file(candidate, MNIST_FILES["train_images"]) is not None:
            raise SpecError(
                f"MNIST IDX files without the test set to evaluate on: missing {test_images} "
                f"and {test_labels} (or .gz)",
                path=str(candidate),
            )
    return None


def _eval_npz(path: Path, shape: ImageShape) -> EvalSet:
    """x_test, y_test when present (class names numbered over every label in the file, as
    training numbers them), else all of images, labels."""
    where = str(path)
    arrays = _read_npz(path)
    keys = set(arrays)
    if {"x_test", "y_test"} <= keys:
        images, labels = _npz_pair(arrays, "x_test", "y_test", where)
        every = [labels]
        if {"x_train", "y_train"} <= keys:
            every.append(_npz_pair(arrays, "x_train", "y_train", where)[1])
        names = _npz_class_names(arrays, np.concatenate(every), where)
        description, name, held_out = f"x_test/y_test of {path}", _slug(path, "test"), True
    elif {"images", "labels"} <= keys:
        images, labels = _npz_pair(arrays, "images", "labels", where)
        names = _npz_class_names(arrays, labels, where)
        description, name, held_out = f"all of {path}", _slug(path), False
    else:
        raise SpecError(
            f"a .npz data set to evaluate needs arrays x_test, y_test or images, labels; "
            f"this one has {', '.join(sorted(keys)) or 'none'}",
            path=where,
        )
    split = ImageSet(_as_uint8(images, where), None, labels).resized(shape)
    description = f"{description} ({_count(len(labels))})"
    return EvalSet(split, names, description, name, held_out)
