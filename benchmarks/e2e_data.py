"""The two data sets of the end-to-end benchmark (benchmarks/end_to_end.py), written to disk in
formats all three frameworks read: netspec through `netspec train --data`, Keras and PyTorch
through the readers below (what a user of each would write for these formats).

- `write_cifar(root, train, val)`: `root/cifar-10-batches-py/` in CIFAR-10's python format:
  `data_batch_1`..`data_batch_5` (the training images, split evenly) and `test_batch` (the
  validation images), each a pickled dict with b"data" (uint8 (N, 3072): each row a 32x32
  image, its red plane, then green, then blue, each row-major), b"labels" (a list of ints),
  b"batch_label" and b"filenames"; and `batches.meta` with b"label_names". The images are
  synthetic: per class a colour tint and a stripe pattern of its own orientation and
  frequency, at a random phase, with noise, so that accuracy can rise in a few epochs.
- `write_folder(root, train, val)`: `root/train/class_k/*.jpg` and `root/val/class_k/*.jpg`,
  5 classes of 500x375 JPEG "photos" (benchmarks/input_pipeline.py `write_photo_folder`).
  Written split already, so netspec (which reads `train/` + `val/` as the split) and the
  others validate on the same images.
"""

from __future__ import annotations

import pickle
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

CIFAR_FOLDER = "cifar-10-batches-py"
CIFAR_CLASSES = 10
CIFAR_TRAIN_FILES = tuple(f"data_batch_{i}" for i in range(1, 6))
CIFAR_NAMES = [
    "airplane",
    "automobile",
    "bird",
    "cat",
    "deer",
    "dog",
    "frog",
    "horse",
    "ship",
    "truck",
]
CIFAR_MEAN = (0.4914, 0.4822, 0.4465)
CIFAR_STD = (0.2470, 0.2435, 0.2616)
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
FOLDER_CLASSES = 5


def cifar_images(count: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """uint8 (count, 32, 32, 3) synthetic images and int64 (count,) labels 0..9 (balanced,
    shuffled): class c has its own tint and stripes at angle c * 18 degrees."""
    rng = np.random.default_rng(seed)
    labels = rng.permutation(np.arange(count) % CIFAR_CLASSES)
    ys, xs = np.mgrid[0:32, 0:32].astype(np.float32)
    angle = labels * (np.pi / CIFAR_CLASSES)
    frequency = 0.35 + 0.06 * (labels % 4)
    phase = rng.uniform(0, 2 * np.pi, count)
    along = xs[None] * np.cos(angle)[:, None, None] + ys[None] * np.sin(angle)[:, None, None]
    stripes = np.sin(along * frequency[:, None, None] + phase[:, None, None])
    tints = np.random.default_rng(1234).uniform(60, 200, (CIFAR_CLASSES, 3)).astype(np.float32)
    pixels = tints[labels][:, None, None, :] + 50 * stripes[..., None]
    pixels += rng.normal(0, 25, pixels.shape)
    return np.clip(pixels, 0, 255).astype(np.uint8), labels.astype(np.int64)


def _write_batch(path: Path, images: np.ndarray, labels: np.ndarray, name: str) -> None:
    rows = images.transpose(0, 3, 1, 2).reshape(len(images), 3 * 32 * 32)  # CHW, row-major
    batch = {
        b"batch_label": name.encode(),
        b"labels": [int(label) for label in labels],
        b"data": np.ascontiguousarray(rows, dtype=np.uint8),
        b"filenames": [f"synthetic_{i:05d}.png".encode() for i in range(len(images))],
    }
    with path.open("wb") as file:
        pickle.dump(batch, file, protocol=2)


def write_cifar(root: Path, train: int, val: int, seed: int = 0) -> Path:
    """`root/cifar-10-batches-py` with `train` training and `val` test images; returns it."""
    if train < len(CIFAR_TRAIN_FILES) or val < 1:
        raise ValueError(f"need at least 5 training and 1 validation image, got {train}, {val}")
    folder = root / CIFAR_FOLDER
    folder.mkdir(parents=True, exist_ok=True)
    images, labels = cifar_images(train + val, seed)
    parts = np.array_split(np.arange(train), len(CIFAR_TRAIN_FILES))
    for number, (name, part) in enumerate(zip(CIFAR_TRAIN_FILES, parts, strict=True), 1):
        _write_batch(folder / name, images[part], labels[part], f"training batch {number} of 5")
    _write_batch(folder / "test_batch", images[train:], labels[train:], "testing batch 1 of 1")
    meta = {
        b"label_names": [name.encode() for name in CIFAR_NAMES],
        b"num_cases_per_batch": len(parts[0]),
        b"num_vis": 3 * 32 * 32,
    }
    with (folder / "batches.meta").open("wb") as file:
        pickle.dump(meta, file, protocol=2)
    return folder


def read_cifar_batch(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """uint8 (N, 32, 32, 3) and int64 (N,) from one python batch file (as CIFAR's own page
    says to read it: `pickle.load(file, encoding="bytes")`)."""
    with path.open("rb") as file:
        batch = pickle.load(file, encoding="bytes")
    images = np.asarray(batch[b"data"], dtype=np.uint8).reshape(-1, 3, 32, 32)
    return images.transpose(0, 2, 3, 1), np.asarray(batch[b"labels"], dtype=np.int64)


def read_cifar(folder: Path) -> tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]:
    """((train images, labels), (val images, labels)): the five data batches and test_batch."""
    parts = [read_cifar_batch(folder / name) for name in CIFAR_TRAIN_FILES]
    train = (np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts]))
    return train, read_cifar_batch(folder / "test_batch")


def write_folder(root: Path, train: int, val: int, seed: int = 0) -> Path:
    """`root/train` and `root/val`, class folders of JPEG photos; returns `root`."""
    from input_pipeline import write_photo_folder

    write_photo_folder(root / "train", train, seed)
    write_photo_folder(root / "val", val, seed + 1)
    return root


def folder_files(folder: Path) -> tuple[list[Path], np.ndarray, list[str]]:
    """The JPEGs under `folder`'s class sub-folders (sorted), their labels, the class names."""
    names = sorted(p.name for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))
    paths: list[Path] = []
    labels: list[int] = []
    for label, name in enumerate(names):
        files = sorted(
            p for p in (folder / name).iterdir() if p.suffix.lower() in (".jpg", ".jpeg")
        )
        paths += files
        labels += [label] * len(files)
    return paths, np.asarray(labels, dtype=np.int64), names
