"""Reading data sets: every format from real-layout fixtures, splits, conversions, and errors."""

from __future__ import annotations

import gzip
import json
import os
import pickle
import struct
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from netspec.errors import SpecError
from netspec.train import datasets as datasets_module
from netspec.train.datasets import (
    LEGACY_SPLIT,
    SPLIT,
    Dataset,
    ImageSet,
    decode_image,
    load_dataset,
    read_idx,
    resize_images,
    run_split,
    stratified_split,
)
from netspec.train.pipeline import Pipeline

CLASSES = ["cat", "dog", "fox"]
CIFAR_NAMES = ["plane", "car", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]


# --------------------------------------------------------------------------- fixture writers


def pixels(seed: int, height: int, width: int, channels: int = 3) -> np.ndarray:
    """Smooth-ish random uint8 (H, W, C) content, different per seed."""
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, size=(height, width, channels), dtype=np.uint8)


def write_image(path: Path, seed: int, size: tuple[int, int] = (20, 14)) -> np.ndarray:
    """An RGB image of (width, height) `size` at `path` (format from the suffix)."""
    width, height = size
    data = pixels(seed, height, width)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(data).save(path)
    return data


def make_class_folders(root: Path, per_class: int, seed: int = 0) -> None:
    """`per_class` images in each of CLASSES, alternating PNG and JPEG, upper-case suffixes too."""
    for c, name in enumerate(CLASSES):
        for i in range(per_class):
            suffix = [".png", ".jpg", ".PNG", ".jpeg"][i % 4]
            write_image(root / name / f"img{i:02d}{suffix}", seed + 100 * c + i)


def write_cifar(folder: Path, per_batch: int = 4, protocol: int = 2) -> dict[str, np.ndarray]:
    """CIFAR-10 python batches in the real layout; returns the raw data of each file."""
    folder.mkdir(parents=True)
    rng = np.random.default_rng(7)
    raw = {}
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        data = rng.integers(0, 256, size=(per_batch, 3072), dtype=np.uint8)
        labels = [int(x) for x in rng.integers(0, 10, size=per_batch)]
        batch = {
            b"batch_label": name.encode(),
            b"labels": labels,
            b"data": data,
            b"filenames": [f"{name}_{i}.png".encode() for i in range(per_batch)],
        }
        with (folder / name).open("wb") as file:
            pickle.dump(batch, file, protocol=protocol)
        raw[name] = data
        raw[name + "_labels"] = np.asarray(labels)
    meta = {
        b"num_cases_per_batch": per_batch,
        b"label_names": [name.encode() for name in CIFAR_NAMES],
        b"num_vis": 3072,
    }
    with (folder / "batches.meta").open("wb") as file:
        pickle.dump(meta, file, protocol=protocol)
    return raw


def idx_bytes(array: np.ndarray) -> bytes:
    """IDX encoding of a uint8 array: 0, 0, type 0x08, ndim, big-endian sizes, data."""
    header = bytes([0, 0, 0x08, array.ndim]) + b"".join(struct.pack(">I", n) for n in array.shape)
    return header + array.astype(np.uint8).tobytes()


def write_mnist(folder: Path, gz: bool, n_train: int = 12, n_test: int = 5) -> dict:
    rng = np.random.default_rng(3)
    arrays = {
        "train-images-idx3-ubyte": rng.integers(0, 256, (n_train, 28, 28), dtype=np.uint8),
        "train-labels-idx1-ubyte": rng.integers(0, 10, n_train, dtype=np.uint8),
        "t10k-images-idx3-ubyte": rng.integers(0, 256, (n_test, 28, 28), dtype=np.uint8),
        "t10k-labels-idx1-ubyte": rng.integers(0, 10, n_test, dtype=np.uint8),
    }
    folder.mkdir(parents=True, exist_ok=True)
    for name, array in arrays.items():
        data = idx_bytes(array)
        if gz:
            (folder / f"{name}.gz").write_bytes(gzip.compress(data))
        else:
            (folder / name).write_bytes(data)
    return arrays


# --------------------------------------------------------------------------- digits


def test_digits_default() -> None:
    from sklearn.datasets import load_digits

    data = load_dataset(None, (8, 8, 1))
    assert len(data.train) + len(data.val) == 1797
    assert data.class_names == [str(d) for d in range(10)]
    assert data.train.images is not None and data.train.images.dtype == np.uint8
    assert data.train.images.shape[1:] == (8, 8, 1)
    assert 0.09 < len(data.val) / 1797 < 0.11
    assert set(data.val.labels.tolist()) == set(range(10))  # stratified
    both = np.concatenate([data.train.images, data.val.images])
    assert both.max() == 255
    reference = np.rint(load_digits().images * 255 / 16).astype(np.uint8)
    assert sorted(map(bytes, both[..., 0])) == sorted(map(bytes, reference))
    assert "digits" in data.source


def test_digits_split_is_seeded_and_resized_to_rgb() -> None:
    a = load_dataset("digits", (16, 12, 3), seed=1)
    b = load_dataset("digits", (16, 12, 3), seed=1)
    c = load_dataset("digits", (16, 12, 3), seed=2)
    assert np.array_equal(a.val.images, b.val.images)
    assert not np.array_equal(a.val.labels, c.val.labels) or not np.array_equal(
        a.val.images, c.val.images
    )
    image = a.train.images[0]
    assert image.shape == (16, 12, 3)
    assert np.array_equal(image[..., 0], image[..., 1])
    assert np.array_equal(image[..., 0], image[..., 2])


# --------------------------------------------------------------------------- image folders


def test_image_folder_split_nine_to_one(tmp_path: Path) -> None:
    make_class_folders(tmp_path / "pets", per_class=10)
    (tmp_path / "pets" / ".hidden").mkdir()
    (tmp_path / "pets" / "cat" / ".DS_Store").write_bytes(b"junk")
    (tmp_path / "pets" / "cat" / "notes.txt").write_text("not an image")
    data = load_dataset(tmp_path / "pets", (8, 8, 3), seed=0)
    assert data.class_names == CLASSES
    assert len(data.train) == 27 and len(data.val) == 3
    assert data.train.images is None and data.train.paths is not None
    assert sorted(data.val.labels.tolist()) == [0, 1, 2]
    for path, label in zip(data.train.paths, data.train.labels, strict=True):
        assert path.parent.name == CLASSES[label]
    assert not set(data.train.paths) & set(data.val.paths or [])
    assert "image folder" in data.source and "30 images" in data.source
    again = load_dataset(tmp_path / "pets", (8, 8, 3), seed=0)
    other = load_dataset(tmp_path / "pets", (8, 8, 3), seed=5)
    assert again.val.paths == data.val.paths
    assert other.val.paths != data.val.paths


def test_image_folder_with_train_and_val(tmp_path: Path) -> None:
    make_class_folders(tmp_path / "d" / "train", per_class=4)
    make_class_folders(tmp_path / "d" / "validation", per_class=2, seed=50)
    data = load_dataset(tmp_path / "d", (8, 8, 1))
    assert data.class_names == CLASSES
    assert (len(data.train), len(data.val)) == (12, 6)
    assert all(p.parts[-3] == "train" for p in data.train.paths or [])
    assert all(p.parts[-3] == "validation" for p in data.val.paths or [])


def test_image_folder_splits_must_share_classes(tmp_path: Path) -> None:
    make_class_folders(tmp_path / "d" / "train", per_class=2)
    write_image(tmp_path / "d" / "val" / "cat" / "a.png", 1)
    write_image(tmp_path / "d" / "val" / "wolf" / "a.png", 2)
    with pytest.raises(SpecError, match="same class folders") as error:
        load_dataset(tmp_path / "d", (8, 8, 3))
    assert "only in train/: dog, fox" in str(error.value)
    assert "only in val/: wolf" in str(error.value)


def test_decode_matches_pillow_and_converts_channels(tmp_path: Path) -> None:
    path = tmp_path / "a.png"
    write_image(path, 4, size=(20, 14))
    with Image.open(path) as image:
        grey = np.asarray(image.convert("L").resize((10, 12), Image.Resampling.BILINEAR))
        rgb = np.asarray(image.convert("RGB").resize((7, 9), Image.Resampling.BILINEAR))
    assert np.array_equal(decode_image(path, (12, 10, 1)), grey[..., None])
    assert np.array_equal(decode_image(path, (9, 7, 3)), rgb)


def test_decode_respects_exif_orientation(tmp_path: Path) -> None:
    raw = pixels(9, 10, 20)  # 10 high, 20 wide as stored
    exif = Image.Exif()
    exif[0x0112] = 6  # orientation: rotate 90° clockwise to display
    path = tmp_path / "rotated.png"
    Image.fromarray(raw).save(path, exif=exif)
    upright = decode_image(path, (20, 10, 3))
    assert np.array_equal(upright, np.rot90(raw, k=-1))


def test_decode_scales_sixteen_bit_grey(tmp_path: Path) -> None:
    deep = (np.arange(64, dtype=np.uint16).reshape(8, 8) * 1000).astype(np.uint16)
    path = tmp_path / "deep.png"
    Image.fromarray(deep).save(path)
    with Image.open(path) as image:
        assert image.mode.startswith("I;16")
    assert np.array_equal(decode_image(path, (8, 8, 1))[..., 0], (deep >> 8).astype(np.uint8))


def test_resize_images_matches_pillow() -> None:
    batch = np.stack([pixels(s, 6, 5) for s in range(3)])
    out = resize_images(batch, (4, 9, 1))
    expected = np.asarray(
        Image.fromarray(batch[1]).convert("L").resize((9, 4), Image.Resampling.BILINEAR)
    )
    assert out.shape == (3, 4, 9, 1) and out.dtype == np.uint8
    assert np.array_equal(out[1, ..., 0], expected)


# --------------------------------------------------------------------------- CIFAR-10


@pytest.mark.parametrize("protocol", [2, 4, 5])
def test_cifar_batches(tmp_path: Path, protocol: int) -> None:
    raw = write_cifar(tmp_path / "cifar-10-batches-py", protocol=protocol)
    for source in (tmp_path / "cifar-10-batches-py", tmp_path):
        data = load_dataset(source, (32, 32, 3))
        assert (len(data.train), len(data.val)) == (20, 4)
        assert data.class_names[:2] == ["plane", "car"]
        first = raw["data_batch_1"][1].reshape(3, 32, 32).transpose(1, 2, 0)
        assert np.array_equal(data.train.images[1], first)
        assert np.array_equal(data.val.labels, raw["test_batch_labels"])
        assert "CIFAR-10" in data.source


def test_cifar_resized_to_grey(tmp_path: Path) -> None:
    raw = write_cifar(tmp_path / "c")
    data = load_dataset(tmp_path / "c", (16, 16, 1))
    image = raw["test_batch"][2].reshape(3, 32, 32).transpose(1, 2, 0)
    expected = Image.fromarray(image).convert("L").resize((16, 16), Image.Resampling.BILINEAR)
    assert data.val.images.shape == (4, 16, 16, 1)
    assert np.array_equal(data.val.images[2, ..., 0], np.asarray(expected))


class RunsCommand:
    """Pickles to a call of os.system: what a malicious 'data set' would contain."""

    def __init__(self, command: str) -> None:
        self.command = command

    def __reduce__(self):
        return (os.system, (self.command,))


class CallsEval:
    def __reduce__(self):
        return (eval, ("__import__('os').getpid()",))


@pytest.mark.parametrize("payload", ["system", "eval"])
def test_malicious_cifar_pickle_is_refused(tmp_path: Path, payload: str) -> None:
    write_cifar(tmp_path / "c")
    marker = tmp_path / "pwned"
    evil = RunsCommand(f"touch {marker}") if payload == "system" else CallsEval()
    with (tmp_path / "c" / "data_batch_3").open("wb") as file:
        pickle.dump({b"data": evil, b"labels": [0]}, file, protocol=2)
    with pytest.raises(SpecError, match="refusing to load: the pickle asks for") as error:
        load_dataset(tmp_path / "c", (32, 32, 3))
    assert payload in str(error.value)
    assert "data_batch_3" in str(error.value)
    assert not marker.exists()


def test_cifar_bad_layout(tmp_path: Path) -> None:
    write_cifar(tmp_path / "c")
    with (tmp_path / "c" / "test_batch").open("wb") as file:
        pickle.dump({b"data": np.zeros((2, 100), np.uint8), b"labels": [0, 1]}, file)
    with pytest.raises(SpecError, match=r"uint8 \(N, 3072\)"):
        load_dataset(tmp_path / "c", (32, 32, 3))


# --------------------------------------------------------------------------- MNIST IDX


@pytest.mark.parametrize("gz", [False, True])
def test_mnist_idx(tmp_path: Path, gz: bool) -> None:
    arrays = write_mnist(tmp_path / "mnist", gz)
    data = load_dataset(tmp_path / "mnist", (28, 28, 1))
    assert (len(data.train), len(data.val)) == (12, 5)
    assert data.class_names == [str(d) for d in range(10)]
    assert np.array_equal(data.train.images[..., 0], arrays["train-images-idx3-ubyte"])
    assert np.array_equal(data.val.labels, arrays["t10k-labels-idx1-ubyte"])
    assert data.train.labels.dtype == np.int32


def test_mnist_torchvision_raw_folder_and_resize(tmp_path: Path) -> None:
    arrays = write_mnist(tmp_path / "MNIST" / "raw", gz=True)
    data = load_dataset(tmp_path, (32, 32, 3))
    first = Image.fromarray(arrays["train-images-idx3-ubyte"][0]).convert("RGB")
    expected = np.asarray(first.resize((32, 32), Image.Resampling.BILINEAR))
    assert np.array_equal(pixels_at_model_size(data.train, (32, 32, 3))[0], expected)


def test_large_in_memory_data_is_resized_a_batch_at_a_time(tmp_path: Path, monkeypatch) -> None:
    """Where resizing once would hold more than RESIZED_BYTES, the images keep their size and
    the pipeline gives the same pixels a batch at a time."""
    raw = write_cifar(tmp_path / "c")
    resized_once = load_dataset(tmp_path / "c", (48, 48, 3))
    assert resized_once.val.images.shape == (4, 48, 48, 3)
    monkeypatch.setattr(datasets_module, "RESIZED_BYTES", 4 * 48 * 48 * 3 - 1)
    kept = load_dataset(tmp_path / "c", (48, 48, 3))
    assert kept.val.images.shape == (4, 32, 32, 3)
    assert np.array_equal(
        kept.val.images[2], raw["test_batch"][2].reshape(3, 32, 32).transpose(1, 2, 0)
    )
    assert np.array_equal(pixels_at_model_size(kept.val, (48, 48, 3)), resized_once.val.images)


def pixels_at_model_size(split: ImageSet, shape: tuple[int, int, int]) -> np.ndarray:
    """uint8 (N, H, W, C): the split as the evaluation pipeline hands it to a model of `shape`
    (no normalisation: the pipeline then scales to [0, 1])."""
    batches = Pipeline(split, shape, batch_size=len(split), train=False).epoch(0)
    return np.rint(next(iter(batches)).images * 255).astype(np.uint8)


def test_truncated_idx(tmp_path: Path) -> None:
    write_mnist(tmp_path / "m", gz=False)
    path = tmp_path / "m" / "t10k-images-idx3-ubyte"
    path.write_bytes(path.read_bytes()[:-100])
    with pytest.raises(SpecError, match="truncated IDX file") as error:
        load_dataset(tmp_path / "m", (28, 28, 1))
    assert str(path) in str(error.value)


def test_truncated_gzip_idx(tmp_path: Path) -> None:
    write_mnist(tmp_path / "m", gz=True)
    path = tmp_path / "m" / "train-labels-idx1-ubyte.gz"
    path.write_bytes(path.read_bytes()[:-12])
    with pytest.raises(SpecError) as error:
        load_dataset(tmp_path / "m", (28, 28, 1))
    assert str(path) in str(error.value)


def test_idx_bad_magic(tmp_path: Path) -> None:
    path = tmp_path / "x"
    path.write_bytes(b"\x12\x34\x08\x01\x00\x00\x00\x01\x05")
    with pytest.raises(SpecError, match="bad magic"):
        read_idx(path)


def test_mnist_incomplete(tmp_path: Path) -> None:
    write_mnist(tmp_path / "m", gz=False)
    (tmp_path / "m" / "t10k-labels-idx1-ubyte").unlink()
    with pytest.raises(SpecError, match="missing t10k-labels-idx1-ubyte"):
        load_dataset(tmp_path / "m", (28, 28, 1))


# --------------------------------------------------------------------------- npz


def test_npz_keras_style(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    x_train = rng.integers(0, 256, (10, 28, 28), dtype=np.uint8)
    x_test = rng.integers(0, 256, (4, 28, 28), dtype=np.uint8)
    y_train, y_test = np.arange(10) % 3, np.array([[0], [1], [2], [2]])  # keras cifar: (N, 1)
    np.savez(tmp_path / "m.npz", x_train=x_train, y_train=y_train, x_test=x_test, y_test=y_test)
    data = load_dataset(tmp_path / "m.npz", (28, 28, 1))
    assert (len(data.train), len(data.val)) == (10, 4)
    assert data.class_names == ["0", "1", "2"]
    assert np.array_equal(data.val.labels, [0, 1, 2, 2])
    assert np.array_equal(data.train.images[..., 0], x_train)


def test_npz_images_labels_float_and_names(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    images = rng.random((40, 6, 6, 3)).astype(np.float32)
    labels = np.repeat([0, 1], 20)
    names = np.array(["no", "yes"])
    np.savez(tmp_path / "d.npz", images=images, labels=labels, class_names=names)
    data = load_dataset(tmp_path / "d.npz", (6, 6, 3), seed=3)
    assert data.class_names == ["no", "yes"]
    assert (len(data.train), len(data.val)) == (36, 4)
    assert sorted(data.val.labels.tolist()) == [0, 0, 1, 1]
    scaled = np.rint(images * 255).astype(np.uint8)
    for image in data.val.images:
        assert any(np.array_equal(image, s) for s in scaled)


def test_npz_mismatched_lengths(tmp_path: Path) -> None:
    np.savez(tmp_path / "d.npz", images=np.zeros((5, 4, 4), np.uint8), labels=np.zeros(4, int))
    with pytest.raises(SpecError, match="5 images but labels has 4 labels") as error:
        load_dataset(tmp_path / "d.npz", (4, 4, 1))
    assert "d.npz" in str(error.value)


def test_npz_label_out_of_range(tmp_path: Path) -> None:
    np.savez(
        tmp_path / "d.npz",
        images=np.zeros((4, 4, 4), np.uint8),
        labels=np.array([0, 1, 2, 3]),
        class_names=np.array(["a", "b"]),
    )
    with pytest.raises(SpecError, match="label 3 is out of range"):
        load_dataset(tmp_path / "d.npz", (4, 4, 1))


def test_npz_bad_values_and_keys(tmp_path: Path) -> None:
    np.savez(tmp_path / "f.npz", images=np.full((4, 4, 4), 3.5), labels=np.zeros(4, int))
    with pytest.raises(SpecError, match=r"floats in \[0, 1\]"):
        load_dataset(tmp_path / "f.npz", (4, 4, 1))
    np.savez(tmp_path / "k.npz", pictures=np.zeros((4, 4, 4)))
    with pytest.raises(SpecError, match="needs arrays x_train"):
        load_dataset(tmp_path / "k.npz", (4, 4, 1))


# --------------------------------------------------------------------------- bad images


def test_truncated_png_is_named(tmp_path: Path) -> None:
    make_class_folders(tmp_path / "d", per_class=3)
    bad = tmp_path / "d" / "dog" / "img00.png"
    bad.write_bytes(bad.read_bytes()[:200])
    with pytest.raises(SpecError) as error:
        load_dataset(tmp_path / "d", (8, 8, 3))
    # Only netspec's own words: what Pillow says about the damage varies between its versions.
    assert str(error.value).startswith(f"{bad}: cannot read image")
    with pytest.raises(SpecError, match="cannot read image"):
        decode_image(bad, (8, 8, 3))


def test_unreadable_file_is_named(tmp_path: Path) -> None:
    make_class_folders(tmp_path / "d", per_class=3)
    bad = tmp_path / "d" / "fox" / "broken.jpg"
    bad.write_text("this is not a JPEG")
    with pytest.raises(SpecError, match="not an image Pillow can identify") as error:
        load_dataset(tmp_path / "d", (8, 8, 3))
    assert str(bad) in str(error.value)


def test_skip_bad_images(tmp_path: Path) -> None:
    make_class_folders(tmp_path / "d", per_class=10)
    (tmp_path / "d" / "fox" / "broken.jpg").write_text("nope")
    truncated = tmp_path / "d" / "cat" / "img01.jpg"
    truncated.write_bytes(truncated.read_bytes()[:300])
    data = load_dataset(tmp_path / "d", (8, 8, 3), skip_bad_images=True)
    assert isinstance(data, Dataset)
    assert len(data.skipped) == 2
    assert any(s.startswith(str(truncated)) for s in data.skipped)
    assert len(data.train) + len(data.val) == 29  # 31 files, 2 bad
    kept = set(data.train.paths or []) | set(data.val.paths or [])
    assert truncated not in kept


# --------------------------------------------------------------------------- not a data set


def test_empty_folder(tmp_path: Path) -> None:
    with pytest.raises(SpecError, match="no class sub-folders") as error:
        load_dataset(tmp_path, (8, 8, 3))
    assert "expected an image folder" in str(error.value)


def test_folder_without_images(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "readme.txt").write_text("hi")
    with pytest.raises(SpecError, match="without images: a"):
        load_dataset(tmp_path, (8, 8, 3))


def test_unknown_format_and_missing_path(tmp_path: Path) -> None:
    (tmp_path / "data.csv").write_text("1,2,3")
    with pytest.raises(SpecError, match="unknown data format; expected an image folder"):
        load_dataset(tmp_path / "data.csv", (8, 8, 3))
    with pytest.raises(SpecError, match="no such file or folder") as error:
        load_dataset(tmp_path / "nothing", (8, 8, 3))
    assert str(tmp_path / "nothing") in str(error.value)


def test_model_input_must_be_an_image() -> None:
    with pytest.raises(SpecError, match="1 or 3 channels"):
        load_dataset(None, (8, 8, 4))


def test_image_set_checks_lengths() -> None:
    with pytest.raises(ValueError, match="3 images but 2 labels"):
        ImageSet(np.zeros((3, 2, 2, 1), np.uint8), None, np.zeros(2))


# --------------------------------------------------------------------------- stratified split


def class_counts(labels: np.ndarray, part: np.ndarray, classes: int) -> list[int]:
    return np.bincount(labels[part], minlength=classes).tolist()


def test_stratified_split_holds_out_each_class_in_proportion() -> None:
    labels = np.repeat(np.arange(4), 30)
    np.random.default_rng(0).shuffle(labels)
    for fraction in (0.1, 0.25, 0.5):
        train, val = stratified_split(labels, fraction, seed=7)
        assert np.array_equal(np.sort(np.concatenate([train, val])), np.arange(120))
        assert list(train) == sorted(train) and list(val) == sorted(val)
        assert class_counts(labels, val, 4) == [round(30 * fraction)] * 4
    again = stratified_split(labels, 0.25, seed=7)
    other = stratified_split(labels, 0.25, seed=8)
    assert np.array_equal(again[1], stratified_split(labels, 0.25, seed=7)[1])
    assert not np.array_equal(again[1], other[1])


def test_stratified_split_small_classes() -> None:
    """A class of one image trains; a class of two among large ones still gets one val image
    and keeps one to train on, whatever the fraction."""
    labels = np.array([0] * 100 + [1] * 2 + [2] + [3] * 3)
    for fraction, small in ((0.1, [1, 0, 1]), (0.9, [1, 0, 2])):
        for seed in range(5):
            train, val = stratified_split(labels, fraction, seed=seed)
            counts = class_counts(labels, val, 4)
            assert counts[1:] == small
            # the large class's share: round(100 * fraction), give or take the images
            # scikit-learn's proportional sharing moved to or from the small classes
            assert abs(counts[0] - round(100 * fraction)) <= 2
            assert np.array_equal(np.sort(np.concatenate([train, val])), np.arange(len(labels)))
    train, val = stratified_split(labels, 0.0, seed=0)
    assert len(val) == 0 and np.array_equal(train, np.arange(len(labels)))
    train, val = stratified_split(np.array([0, 1, 2]), 0.5, seed=0)
    assert len(val) == 0 and len(train) == 3


def test_runs_from_before_keep_their_split(tmp_path: Path) -> None:
    """A run made before runs recorded their split is split as then: these indices are what
    netspec's earlier per-class NumPy split gave (recorded from it, commit 4df680b)."""
    labels = np.array([2, 0, 1, 0, 2, 2, 0, 1, 0, 2, 0, 3, 2, 1])
    train, val = stratified_split(labels, 0.3, 3, split=LEGACY_SPLIT)
    assert (train.tolist(), val.tolist()) == ([1, 3, 4, 5, 7, 8, 11, 12, 13], [0, 2, 6, 9, 10])
    train, val = stratified_split(labels, 0.5, 11, split=LEGACY_SPLIT)
    assert (train.tolist(), val.tolist()) == ([0, 1, 4, 6, 8, 11, 12, 13], [2, 3, 5, 7, 9, 10])
    old = load_dataset("digits", (8, 8, 1), seed=3, split=LEGACY_SPLIT)
    assert old.split == LEGACY_SPLIT
    assert not np.array_equal(old.val.images, load_dataset("digits", (8, 8, 1), seed=3).val.images)
    # which split a run uses: a new run today's; a resumed one what its config.json says
    run = tmp_path / "run"
    run.mkdir()
    assert run_split(run, resume=True) == SPLIT  # nothing to read: a new run
    (run / "config.json").write_text(json.dumps({"spec": "x.yaml"}))
    assert run_split(run, resume=True) == LEGACY_SPLIT
    assert run_split(run, resume=False) == SPLIT
    (run / "config.json").write_text(json.dumps({"split": SPLIT}))
    assert run_split(run, resume=True) == SPLIT
