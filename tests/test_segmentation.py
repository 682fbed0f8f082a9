"""Per-pixel models: a network whose output is H x W x K trains with per-pixel cross-entropy on
image and mask pairs (or the built-in shapes), reports pixel accuracy and mean IoU, evaluates
and writes colour-coded masks; bad data stops it with the file's name before anything is
written."""

from __future__ import annotations

import json
from pathlib import Path

import jax.numpy as jnp
import numpy as np
import optax
import pytest
from PIL import Image

from netspec.cli import main
from netspec.errors import SpecError
from netspec.train.masks import (
    SHAPE_CLASSES,
    MaskPipeline,
    MaskSet,
    is_mask_source,
    load_mask_eval_set,
    load_masks,
    mask_image,
    nearest_crop,
    read_mask,
    shapes_data,
    shapes_for,
    voc_palette,
)
from netspec.train.pipeline import Augment
from netspec.train.segmentation import (
    confusion_counts,
    iou_per_class,
    is_per_pixel,
    mean_iou,
    pixel_accuracy,
    pixel_cross_entropy,
)

# The modules that train a run once for all their tests share one pytest-xdist worker.
pytestmark = pytest.mark.xdist_group("test_segmentation.py")

# Same-size convolutions only (dilated for a wider view); the last row's softmax is left to
# predict (the network returns logits), as a classifier's is.
SPEC = """\
name: tinyseg
input: [32, 32, 3]
vars: {num_classes: 4}
defaults:
  conv: {padding: same, activation: relu}
layers:
  - c1: conv 3x3 16
  - c2: conv 3x3 16 dilation=2
  - c3: conv 3x3 32 dilation=4
  - c4: conv 3x3 32 dilation=8
  - c5: conv 3x3 32
  - head: conv 1x1 $num_classes activation=none
  - softmax: softmax
training:
  optimizer: adam
  learning_rate: 0.003
  batch_size: 16
  epochs: 2
  workers: 0
"""
CLASSIFIER = """\
name: small
input: [8, 8, 3]
vars: {num_classes: 4}
layers:
  - conv: conv 3x3 4 same relu
  - gap: gap
  - fc: dense $num_classes
training: {batch_size: 4, epochs: 1, workers: 0}
"""
IGNORE = 255
TIMING = ("seconds", "images_per_sec", "timing")  # what differs between two runs of the same steps


def write_spec(folder: Path, text: str = SPEC, name: str = "seg.yaml") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text(text)
    return path


# ---- loss and metrics against NumPy -----------------------------------------------------------


def numpy_confusion(labels: np.ndarray, predictions: np.ndarray, classes: int) -> np.ndarray:
    """Pixel by pixel, the ignore index skipped."""
    matrix = np.zeros((classes, classes), dtype=np.int64)
    for true, guess in zip(labels.ravel(), predictions.ravel(), strict=True):
        if true != IGNORE:
            matrix[true, guess] += 1
    return matrix


def numpy_ious(matrix: np.ndarray) -> dict[int, float]:
    """IoU = TP / (TP + FP + FN) of each class with a non-zero denominator, by loops."""
    ious = {}
    for c in range(len(matrix)):
        tp = matrix[c, c]
        fp = sum(matrix[r, c] for r in range(len(matrix)) if r != c)
        fn = sum(matrix[c, k] for k in range(len(matrix)) if k != c)
        if tp + fp + fn > 0:
            ious[c] = tp / (tp + fp + fn)
    return ious


def test_pixel_cross_entropy_matches_numpy_and_excludes_ignored_pixels():
    rng = np.random.default_rng(0)
    logits = rng.normal(size=(2, 3, 4, 5)).astype(np.float32)
    labels = rng.integers(0, 5, size=(2, 3, 4))
    labels[0, 0, :2] = IGNORE
    keep = labels != IGNORE
    safe = np.where(keep, labels, 0)
    log_p = logits - np.log(np.exp(logits).sum(-1, keepdims=True))
    expected = -np.take_along_axis(log_p, safe[..., None], -1)[..., 0] * keep
    got = pixel_cross_entropy(jnp.asarray(logits), jnp.asarray(safe), jnp.asarray(keep, float))
    np.testing.assert_allclose(np.asarray(got), expected, rtol=1e-5, atol=1e-6)
    assert np.all(np.asarray(got)[~keep] == 0)
    # label smoothing as optax smooths one-hot targets
    targets = optax.smooth_labels(np.eye(5)[safe], 0.1)
    smoothed = optax.softmax_cross_entropy(logits, targets) * keep
    got = pixel_cross_entropy(
        jnp.asarray(logits), jnp.asarray(safe), jnp.asarray(keep, float), smoothing=0.1
    )
    np.testing.assert_allclose(np.asarray(got), np.asarray(smoothed), rtol=1e-5, atol=1e-6)


def test_confusion_pixel_accuracy_and_miou_match_loops():
    rng = np.random.default_rng(1)
    classes = 5  # class 4 appears in neither labels nor predictions: left out of the mean
    labels = rng.integers(0, 4, size=(3, 7, 6))
    labels[rng.random(labels.shape) < 0.2] = IGNORE
    predictions = rng.integers(0, 4, size=labels.shape)
    keep = labels != IGNORE
    expected = numpy_confusion(labels, predictions, classes)
    got = confusion_counts(
        jnp.asarray(np.where(keep, labels, 0)),
        jnp.asarray(predictions),
        jnp.asarray(keep, jnp.float32),
        classes,
    )
    np.testing.assert_array_equal(np.asarray(got), expected)
    ious = numpy_ious(expected)
    assert set(ious) == {0, 1, 2, 3}
    per_class = iou_per_class(expected)
    np.testing.assert_allclose(per_class[:4], [ious[c] for c in range(4)])
    assert np.isnan(per_class[4])
    assert mean_iou(expected) == pytest.approx(sum(ious.values()) / len(ious))
    pairs = zip(labels.ravel(), predictions.ravel(), strict=True)
    correct = sum(1 for true, guess in pairs if true != IGNORE and true == guess)
    assert pixel_accuracy(expected) == pytest.approx(correct / keep.sum())


def test_a_class_only_predicted_counts_in_the_mean():
    matrix = np.array([[5, 1, 0], [0, 0, 0], [0, 0, 0]])  # class 1 predicted once, never true
    assert iou_per_class(matrix)[1] == 0.0
    assert np.isnan(iou_per_class(matrix)[2])
    assert mean_iou(matrix) == pytest.approx((5 / 6 + 0.0) / 2)
    assert np.isnan(mean_iou(np.zeros((3, 3))))


@pytest.mark.parametrize(
    ("shape", "expected"), [((1, 1, 10), False), ((32, 32, 4), True), ((8, 1, 3), True)]
)
def test_a_network_is_per_pixel_when_its_output_is_not_1x1(shape, expected):
    assert is_per_pixel(shape) is expected


# ---- masks, palettes, the shapes data ------------------------------------------------------


def test_the_palette_is_the_voc_colour_map():
    palette = voc_palette()
    colour = {i: tuple(palette[3 * i : 3 * i + 3]) for i in (0, 1, 2, 3, 15, 255)}
    assert colour == {
        0: (0, 0, 0),
        1: (128, 0, 0),
        2: (0, 128, 0),
        3: (128, 128, 0),
        15: (192, 128, 128),  # VOC's person
        255: (224, 224, 192),  # VOC's void
    }


def test_integer_and_palette_masks_read_as_class_indices(tmp_path):
    values = np.array([[0, 1, 2], [3, 255, 1]], dtype=np.uint8)
    Image.fromarray(values).save(tmp_path / "grey.png")  # mode L
    palette = Image.frombytes("P", (3, 2), values.tobytes())
    palette.putpalette(voc_palette())
    palette.save(tmp_path / "palette.png")
    mask_image(values).save(tmp_path / "ours.png")
    for name in ("grey.png", "palette.png", "ours.png"):
        np.testing.assert_array_equal(read_mask(tmp_path / name), values)
    assert Image.open(tmp_path / "palette.png").mode == "P"
    Image.fromarray(np.zeros((2, 3, 3), np.uint8)).save(tmp_path / "rgb.png")
    with pytest.raises(SpecError, match=r"rgb\.png: a mask holds one class index per pixel"):
        read_mask(tmp_path / "rgb.png")


def test_shapes_data_is_deterministic_and_has_every_class():
    images, masks = shapes_data((24, 20, 3), count=40)
    again, masks_again = shapes_data((24, 20, 3), count=40)
    assert images.shape == (40, 24, 20, 3) and masks.shape == (40, 24, 20)
    np.testing.assert_array_equal(images, again)
    np.testing.assert_array_equal(masks, masks_again)
    shares = np.bincount(masks.ravel(), minlength=4) / masks.size
    assert len(shares) == len(SHAPE_CLASSES) == 4
    assert 0.5 < shares[0] < 0.85 and all(shares[1:] > 0.03)
    grey, _ = shapes_data((24, 20, 1), count=40)
    assert grey.shape == (40, 24, 20, 1)
    # shapes are brighter than the background
    assert images[masks > 0].mean() > images[masks == 0].mean() + 80


def save_pair(folder: Path, stem: str, image: np.ndarray, mask: np.ndarray, suffix=".png") -> None:
    (folder / "images").mkdir(parents=True, exist_ok=True)
    (folder / "masks").mkdir(parents=True, exist_ok=True)
    Image.fromarray(image).save(folder / "images" / f"{stem}{suffix}")
    mask_image(mask).save(folder / "masks" / f"{stem}.png")


def mask_folder(root: Path, count: int = 10, split: bool = False) -> Path:
    """Shapes saved as files: images/ and masks/ (or train/ and val/, each with both)."""
    images, masks = shapes_data((20, 24, 3), count=count, seed=3)
    for index in range(count):
        part = root if not split else root / ("val" if index < 3 else "train")
        save_pair(part, f"img{index:02d}", images[index], masks[index])
    return root


def test_a_mask_folder_pairs_files_by_stem_and_splits(tmp_path):
    data = mask_folder(tmp_path / "flat", count=10)
    # a JPEG image in a sub-folder, with its mask in the same sub-folder of masks/
    (data / "images" / "sub").mkdir()
    (data / "masks" / "sub").mkdir()
    Image.fromarray(np.full((20, 24, 3), 90, np.uint8)).save(data / "images" / "sub" / "x.jpg")
    mask_image(np.ones((20, 24), np.uint8)).save(data / "masks" / "sub" / "x.png")
    assert is_mask_source(str(data)) and is_mask_source("shapes")
    assert not is_mask_source(str(tmp_path)) and not is_mask_source(None)
    dataset = load_masks(str(data), (16, 16, 3), 4, IGNORE, seed=0, val_fraction=0.25)
    assert (len(dataset.train), len(dataset.val)) == (8, 3)
    pairs = [*zip(dataset.train.paths, dataset.train.mask_paths, strict=True)]
    pairs += [*zip(dataset.val.paths, dataset.val.mask_paths, strict=True)]
    for image, mask in pairs:
        assert image.stem == mask.stem and image.parent.name == mask.parent.name.replace(
            "masks", "images"
        )
    assert dataset.class_names == ["0", "1", "2", "3"]
    again = load_masks(str(data), (16, 16, 3), 4, IGNORE, seed=0, val_fraction=0.25)
    assert again.val.paths == dataset.val.paths

    split = mask_folder(tmp_path / "split", count=10, split=True)
    dataset = load_masks(str(split), (16, 16, 3), 4, IGNORE)
    assert (len(dataset.train), len(dataset.val)) == (7, 3)
    assert all(p.parent.parent.name == "val" for p in dataset.val.paths)
    held_out = load_mask_eval_set(str(split), (16, 16, 3), 4, IGNORE)
    assert held_out.held_out and len(held_out.pairs) == 3 and held_out.name == "split-val"


def test_masks_resize_with_nearest_and_augment_with_their_images():
    """Channel 0 of each image is 60 x its mask's label, channel 1 200 inside a shape, so every
    geometric change must keep them equal: padded crops (the mask padded with the ignore
    index) and flips exactly, random resized crops (bilinear image, nearest mask) up to ties
    at the edges of shapes."""
    rng = np.random.default_rng(2)
    masks = np.zeros((8, 32, 32), np.uint8)
    for mask in masks:
        for _ in range(3):
            top, left = rng.integers(0, 24, size=2)
            mask[top : top + 10, left : left + 12] = rng.integers(1, 4)
    shape_or_not = (masks > 0) * 200
    images = np.stack([masks * 60, shape_or_not, shape_or_not], axis=-1).astype(np.uint8)
    split = MaskSet(images, masks)
    shape = (32, 32, 3)
    for augment, exact in [
        (Augment(random_crop_padding=5, horizontal_flip=True), True),
        (Augment(random_resized_crop=(0.3, 1.0), horizontal_flip=True), False),
    ]:
        pipeline = MaskPipeline(
            split, shape, 8, label_shape=(32, 32), ignore_index=IGNORE, train=True, augment=augment
        )
        for epoch in range(3):
            (batch,) = pipeline.epoch(epoch)
            values = np.rint(batch.images[..., 0] * 255).astype(int)
            labels = batch.labels
            counted = labels != IGNORE
            if exact:
                assert np.all(values[counted] == labels[counted] * 60)
                assert np.all(values[~counted] == 0)  # the padding, black in the image
            else:  # shape or not (channel 1): bilinear values round to the nearest pixel's
                inside = np.rint(batch.images[..., 1] * 255) > 100
                agree = (inside == (labels > 0)).mean()
                assert agree > 0.99 and counted.all(), agree
    # labels at a smaller output size: nearest neighbour, no new values
    first_two = split.subset([0, 1])
    pipeline = MaskPipeline(
        first_two, shape, 3, label_shape=(8, 8), ignore_index=IGNORE, train=False
    )
    (batch,) = pipeline.epoch(0)
    assert batch.labels.shape == (3, 8, 8)
    np.testing.assert_array_equal(batch.labels[0], masks[0][2::4, 2::4])
    assert np.all(batch.labels[2] == IGNORE) and list(batch.mask) == [1, 1, 0]
    np.testing.assert_array_equal(nearest_crop(masks[0], (0, 0, 32, 32), (32, 32)), masks[0])


# ---- bad input: one message naming the file, exit status 2, nothing written ----------------


def broken(case: str, data: Path) -> str:
    """Spoil a mask folder one way; returns the name the message must mention."""
    if case == "mask size":
        mask_image(np.zeros((10, 10), np.uint8)).save(data / "masks" / "img04.png")
        return "img04.png"
    if case == "label too large":
        mask = np.zeros((20, 24), np.uint8)
        mask[3, 3] = 7
        mask_image(mask).save(data / "masks" / "img05.png")
        return "img05.png"
    if case == "image without mask":
        (data / "masks" / "img06.png").unlink()
        return "img06.png"
    if case == "mask without image":
        (data / "images" / "img07.png").unlink()
        return "img07.png"
    if case == "unreadable mask":
        (data / "masks" / "img08.png").write_bytes(b"\x89PNG\r\n\x1a\nnot really")
        return "img08.png"
    if case == "rgb mask":
        Image.fromarray(np.zeros((20, 24, 3), np.uint8)).save(data / "masks" / "img09.png")
        return "img09.png"
    raise AssertionError(case)


CASES = {
    "mask size": "the mask is 10x10 pixels but its image img04.png is 24x20",
    "label too large": "mask label 7 out of range: the network outputs 4 classes",
    "image without mask": "an image without a mask",
    "mask without image": "a mask without an image",
    "unreadable mask": "cannot read mask",
    "rgb mask": "a mask holds one class index per pixel",
}


@pytest.mark.parametrize("case", list(CASES))
def test_bad_masks_are_named_and_nothing_is_written(case, tmp_path, capsys):
    data = mask_folder(tmp_path / "data")
    name = broken(case, data)
    spec = write_spec(tmp_path)
    out = tmp_path / "run"
    code = main(["train", str(spec), "--data", str(data), "--out", str(out), "--no-progress"])
    err = capsys.readouterr().err
    assert code == 2, err
    assert name in err and CASES[case] in err
    assert "Traceback" not in err
    assert not out.exists()


def test_per_image_data_for_a_per_pixel_network_and_the_reverse(tmp_path, capsys):
    spec = write_spec(tmp_path)
    out = tmp_path / "run"
    assert main(["train", str(spec), "--data", "digits", "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "the network outputs classes per pixel (32x32 of them) but digits has one label" in err
    data = mask_folder(tmp_path / "data")
    classifier = write_spec(tmp_path, CLASSIFIER, "small.yaml")
    assert main(["train", str(classifier), "--data", str(data), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "holds a class per pixel (masks) but the network outputs 4 values per image" in err
    assert not out.exists() and "Traceback" not in err


def test_too_few_classes_for_the_shapes_is_named(tmp_path, capsys):
    spec = write_spec(tmp_path)
    out = tmp_path / "run"
    assert main(["train", str(spec), "--set", "num_classes=1", "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "the built-in shapes data: mask label" in err and "out of range" in err
    assert not out.exists()


def test_two_or_three_classes_merge_the_shapes():
    images, masks = shapes_data((24, 20, 3))
    two_images, two, two_names = shapes_for((24, 20, 3), 2)
    _, three, three_names = shapes_for((24, 20, 3), 3)
    np.testing.assert_array_equal(two_images, images)
    np.testing.assert_array_equal(two, (masks > 0).astype(masks.dtype))  # shape vs background
    np.testing.assert_array_equal(three, np.where(masks >= 2, 2, masks))  # circle vs polygon
    assert (two_names, three_names) == (
        ["background", "shape"],
        ["background", "circle", "polygon"],
    )
    assert shapes_for((24, 20, 3), 4)[2] == SHAPE_CLASSES


# ---- a whole run on the built-in shapes ----------------------------------------------------


@pytest.fixture(scope="module")
def shapes_run(tmp_path_factory) -> Path:
    """Two epochs of the small per-pixel network on the default data (the built-in shapes)."""
    folder = tmp_path_factory.mktemp("seg")
    run = folder / "run"
    assert main(["train", str(write_spec(folder)), "--out", str(run), "--no-progress"]) == 0
    return run


def majority(run: Path) -> tuple[float, float]:
    """Pixel accuracy and mIoU of always answering "background" on the run's val split."""
    dataset = load_masks("shapes", (32, 32, 3), 4, IGNORE, seed=0, val_fraction=0.1)
    share = float((dataset.val.masks == 0).mean())
    return share, share / 4  # IoU of background = its share; the 3 other classes score 0


def test_training_beats_the_majority_class(shapes_run):
    records = [json.loads(line) for line in (shapes_run / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in records] == [1, 2]
    for key in ("train_loss", "train_acc", "train_miou", "val_loss", "val_acc", "val_miou"):
        assert np.isfinite(records[-1][key]), key
    accuracy, miou = majority(shapes_run)
    assert records[-1]["val_acc"] > accuracy + 0.03
    assert records[-1]["val_miou"] > miou + 0.08
    config = json.loads((shapes_run / "config.json").read_text())
    assert config["task"] == "segmentation" and config["training"]["ignore_index"] == IGNORE
    assert json.loads((shapes_run / "classes.json").read_text()) == SHAPE_CLASSES
    samples = sorted(p.name for p in (shapes_run / "samples").glob("*.png"))
    assert samples == ["0.png", "1.png", "2.png", "3.png"]
    assert Image.open(shapes_run / "samples" / "masks" / "0.png").mode == "P"


def test_eval_reproduces_the_best_epochs_pixel_accuracy_and_miou(shapes_run, capsys):
    assert main(["eval", str(shapes_run), "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    records = [json.loads(line) for line in (shapes_run / "metrics.jsonl").read_text().splitlines()]
    best = max(records, key=lambda r: r["val_miou"])
    assert result["miou"] == pytest.approx(best["val_miou"], abs=1e-9)
    assert result["pixel_accuracy"] == pytest.approx(best["val_acc"], abs=1e-9)
    assert result["loss"] == pytest.approx(best["val_loss"], rel=1e-5)
    assert [row["class"] for row in result["per_class"]] == SHAPE_CLASSES
    counts = np.array(json.loads(Path(result["metrics"]).read_text())["confusion_counts"])
    assert result["pixels"] == counts.sum() == 51 * 32 * 32
    ious = iou_per_class(counts)
    assert [row["iou"] for row in result["per_class"]] == pytest.approx(list(ious))
    assert Path(result["confusion_matrix"]).read_bytes()[:4] == b"\x89PNG"


def test_eval_on_a_mask_folder_prints_each_class(shapes_run, tmp_path, capsys):
    """The held-out val/ of a folder of image and mask files (24x20, resized to 32x32)."""
    data = mask_folder(tmp_path / "data", count=12, split=True)
    assert main(["eval", str(shapes_run), "--data", str(data)]) == 0
    text = capsys.readouterr().out
    assert f"val/ of {data}/ (3 images): loss" in text
    assert "pixel accuracy" in text and "mIoU" in text
    for name in SHAPE_CLASSES:
        assert name in text
    assert (shapes_run / "eval" / "data-val" / "metrics.json").exists()


def test_predict_writes_palette_masks_at_each_images_size(shapes_run, tmp_path, capsys):
    images, masks = shapes_data((48, 40, 3), count=2, seed=7)
    paths = []
    for index, pixels in enumerate(images):
        Image.fromarray(pixels).save(tmp_path / f"photo{index}.png")
        paths.append(str(tmp_path / f"photo{index}.png"))
    paths.append(str(shapes_run / "samples" / "0.png"))
    out = tmp_path / "masks"
    assert main(["predict", str(shapes_run), *paths, "--out", str(out), "--json"]) == 0
    results = json.loads(capsys.readouterr().out)
    assert [Path(r["mask"]).name for r in results] == ["photo0.png", "photo1.png", "0.png"]
    for result, size in zip(results, [(40, 48), (40, 48), (32, 32)], strict=True):
        written = Image.open(result["mask"])
        assert written.mode == "P" and written.size == size
        assert written.getpalette()[: 3 * 4] == voc_palette()[: 3 * 4]
        indices = np.asarray(written)
        assert indices.max() < 4
        shares = np.bincount(indices.ravel(), minlength=4) / indices.size
        expected = {SHAPE_CLASSES[c]: shares[c] for c in range(4) if shares[c]}
        assert result["classes"] == pytest.approx(expected)
    # the shapes are found: most of each photo's shape pixels are predicted as some shape
    predicted = np.asarray(Image.open(results[0]["mask"]))
    assert (predicted[masks[0] > 0] > 0).mean() > 0.6
    assert main(["predict", str(shapes_run), paths[0]]) == 0
    assert "predictions" in capsys.readouterr().out
    assert (shapes_run / "predictions" / "photo0.png").exists()


@pytest.mark.parametrize(
    "augment",
    [
        Augment(random_crop_padding=3, horizontal_flip=True),
        Augment(random_resized_crop=(0.3, 1.0), horizontal_flip=True),
    ],
)
def test_batches_from_files_equal_batches_from_memory(augment, tmp_path):
    """Image and mask files at the network's size give the batches the same data in memory
    gives, augmentation included: one geometry for both, whichever way the data is held."""
    images, masks = shapes_data((20, 24, 3), count=6, seed=5)
    for index in range(6):
        save_pair(tmp_path, f"{index}", images[index], masks[index])
    files = load_masks(str(tmp_path), (20, 24, 3), 4, IGNORE, val_fraction=0.5)
    memory = MaskSet(
        np.stack([np.asarray(Image.open(p)) for p in files.train.paths]),
        np.stack([read_mask(p) for p in files.train.mask_paths]),
    )
    for label_shape in [(20, 24), (10, 12)]:
        options = dict(label_shape=label_shape, ignore_index=IGNORE, augment=augment, seed=4)
        (from_files,), (from_memory,) = (
            MaskPipeline(split, (20, 24, 3), 3, train=True, **options).epoch(1)
            for split in (files.train, memory)
        )
        np.testing.assert_array_equal(from_files.images, from_memory.images)
        np.testing.assert_array_equal(from_files.labels, from_memory.labels)
        assert from_files.labels.shape == (3, *label_shape)
        assert len(np.unique(from_files.labels)) > 2  # shapes, not all padding


TINY = """\
name: tiny
input: [8, 8, 1]
layers:
  - conv: conv 3x3 4 same relu
  - head: conv 1x1 3
"""


def test_bench_times_a_per_pixel_network():
    import netspec
    from netspec.bench import bench

    result = bench(netspec.compile(TINY), batch=2, steps=1, warmup=1)
    assert result.ms_per_step > 0 and result.images_per_sec > 0


def test_a_per_pixel_run_stopped_mid_epoch_resumes_exactly(shapes_run, tmp_path, capsys):
    """Stopped after 40 steps (into epoch 2), resumed: every epoch's record (losses, pixel
    accuracy, mIoU) equals the uninterrupted run's, timings aside."""
    spec = write_spec(tmp_path)
    run = tmp_path / "run"
    common = ["train", str(spec), "--out", str(run), "--no-progress"]
    assert main([*common, "--max-steps", "40"]) == 0
    assert main([*common, "--resume"]) == 0
    assert "resuming at epoch 2" in capsys.readouterr().err

    def records(folder: Path) -> list[dict]:
        lines = (folder / "metrics.jsonl").read_text().splitlines()
        return [{k: v for k, v in json.loads(x).items() if k not in TIMING} for x in lines]

    assert records(run) == records(shapes_run)
