"""Worker processes kept for the whole run, JPEGs decoded at reduced size, in-memory images
resized a batch at a time, and the epoch's time split into its parts."""

from __future__ import annotations

import json
import multiprocessing
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from netspec.train.datasets import ImageSet, open_image, open_reduced, resize_images
from netspec.train.pipeline import Augment, Batch, Pipeline

SHAPE = (8, 8, 3)
AUGMENTS = Augment(random_crop_padding=2, random_resized_crop=(0.3, 1.0), horizontal_flip=True)


def memory_split(count: int, shape: tuple[int, ...] = SHAPE) -> ImageSet:
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, size=(count, *shape), dtype=np.uint8)
    return ImageSet(images, None, np.arange(count))


def assert_same(a: list[Batch], b: list[Batch]) -> None:
    assert len(a) == len(b)
    for x, y in zip(a, b, strict=True):
        for part_x, part_y in zip(x, y, strict=True):
            assert np.array_equal(part_x, part_y)


def worker_pids() -> set[int]:
    return {child.pid for child in multiprocessing.active_children() if child.pid is not None}


def test_kept_worker_processes_last_the_run_and_give_the_same_batches() -> None:
    split = memory_split(24)
    inline = Pipeline(split, SHAPE, 4, train=True, augment=AUGMENTS)
    kept = Pipeline(split, SHAPE, 4, train=True, augment=AUGMENTS, workers=2, processes=True)
    kept.keep_workers(3)
    try:
        seen = []
        for epoch in range(3):
            assert_same(list(inline.epoch(epoch)), list(kept.epoch(epoch)))
            seen.append(worker_pids())
        assert seen[0] and seen[0] == seen[1] == seen[2]  # started once, not per epoch
    finally:
        kept.close()


@pytest.mark.parametrize("processes", [False, True], ids=["threads", "processes"])
def test_kept_workers_resume_mid_epoch_and_read_out_of_turn(processes: bool) -> None:
    split = memory_split(24)
    inline = Pipeline(split, SHAPE, 4, train=True, augment=AUGMENTS)
    kept = Pipeline(split, SHAPE, 4, train=True, augment=AUGMENTS, workers=2, processes=processes)
    kept.keep_workers(4)
    try:
        assert_same(list(inline.epoch(1, 2)), list(kept.epoch(1, 2)))  # a resume
        assert_same(list(inline.epoch(2)), list(kept.epoch(2)))  # in turn
        assert_same(list(inline.epoch(0, 5)), list(kept.epoch(0, 5)))  # out of turn
        stopped = kept.epoch(3)
        next(iter(stopped))  # a --max-steps stop after one step
        assert_same(list(inline.epoch(3, 1)), list(kept.epoch(3, 1)))
    finally:
        kept.close()


def test_kept_workers_repeat_evaluation_passes() -> None:
    split = memory_split(10)
    inline = Pipeline(split, SHAPE, 4, train=False)
    kept = Pipeline(split, SHAPE, 4, train=False, workers=2, processes=True)
    kept.keep_workers(2)
    try:
        reference = list(inline.epoch(0))
        assert len(reference) == 3 and reference[-1].mask.tolist() == [1, 1, 0, 0]
        for _ in range(3):  # one more pass than planned starts the passes again
            assert_same(reference, list(kept.epoch(0)))
    finally:
        kept.close()


def photo(path: Path, size: tuple[int, int], seed: int = 0, exif_orientation: int = 1) -> None:
    """A smooth JPEG `size` (width, height) with texture, like a photograph."""
    rng = np.random.default_rng(seed)
    width, height = size
    y, x = np.mgrid[0:height, 0:width] / max(size)
    base = np.stack([np.sin(6 * x + c) * np.cos(4 * y - c) for c in (0.0, 1.0, 2.0)], -1)
    pixels = np.clip(127 + 100 * base + rng.normal(0, 6, (height, width, 3)), 0, 255)
    image = Image.fromarray(pixels.astype(np.uint8))
    exif = Image.Exif()
    exif[0x0112] = exif_orientation
    image.save(path, quality=90, exif=exif.tobytes())


def test_a_large_jpeg_is_decoded_at_a_reduced_size_that_keeps_enough_pixels(
    tmp_path: Path,
) -> None:
    path = tmp_path / "big.jpg"
    photo(path, (1600, 1200))
    reduced, scale, size = open_reduced(path, 3, (224, 224))
    assert size == (1200, 1600)
    assert scale == 4  # the largest of 1/2, 1/4, 1/8 keeping both sides >= 224
    assert reduced.size == (400, 300)
    full = open_image(path, 3)
    reference = np.asarray(full.resize((224, 224), Image.Resampling.BILINEAR), np.float64)
    ours = np.asarray(reduced.resize((224, 224), Image.Resampling.BILINEAR), np.float64)
    assert np.abs(ours - reference).mean() < 2.0  # of 255: the same picture
    assert open_reduced(path, 3, (1000, 224)).scale == 1  # 1200 // 1000 = 1: full size


def test_exif_rotated_jpeg_keeps_upright_sizes(tmp_path: Path) -> None:
    path = tmp_path / "rotated.jpg"
    photo(path, (1600, 800), exif_orientation=6)  # stored landscape, shown portrait
    upright = open_image(path, 3)
    assert upright.size == (800, 1600)
    reduced, scale, size = open_reduced(path, 3, (700, 100))  # upright: 1600 // 700 = 2
    assert scale == 2 and reduced.size == (400, 800) and size == (1600, 800)


def test_resized_crops_of_reduced_decodes_match_full_decodes(tmp_path: Path) -> None:
    """The pipeline's random resized crops (decoded at reduced size) against the same boxes
    cut from the fully decoded image and resized directly."""
    shape = (64, 64, 3)
    paths = []
    for i, size in enumerate([(1024, 768), (900, 1200), (640, 480), (2000, 1500)]):
        paths.append(tmp_path / f"{i}.jpg")
        photo(paths[-1], size, seed=i, exif_orientation=6 if i == 3 else 1)
    split = ImageSet(None, paths, np.arange(len(paths)))
    augment = Augment(random_resized_crop=(0.08, 1.0))
    pipeline = Pipeline(split, shape, 4, train=True, augment=augment, seed=3)
    batch = next(iter(pipeline.epoch(0)))
    order = pipeline.batch_indices(0, 0)
    for row, index in enumerate(order):
        full = open_image(paths[index], 3)
        draws = pipeline.draws(0, np.array([index]), (full.height, full.width))
        top, left, height, width = (int(n) for n in draws.boxes[0])
        crop = full.resize(
            (64, 64), Image.Resampling.BILINEAR, box=(left, top, left + width, top + height)
        )
        ours = np.rint(batch.images[row] * 255)
        assert np.abs(ours - np.asarray(crop, np.float64)).mean() < 3.0


def test_in_memory_images_stay_small_and_are_resized_per_batch() -> None:
    split = memory_split(40, (32, 32, 3))
    pipeline = Pipeline(split, (224, 224, 3), 16, train=False)
    assert split.images is not None and split.images.nbytes == 40 * 32 * 32 * 3
    batches = list(pipeline.epoch(0))
    assert batches[0].images.shape == (16, 224, 224, 3)
    pixels = np.concatenate([np.rint(b.images * 255)[b.mask > 0] for b in batches])
    assert np.array_equal(pixels.astype(np.uint8), resize_images(split.images, (224, 224, 3)))


def test_each_epoch_record_splits_its_time(tmp_path: Path) -> None:
    out = tmp_path / "run"
    command = [sys.executable, "-m", "netspec", "train", "specs/lenet5.yaml", "--out", str(out)]
    command += ["--set", "training.epochs=2", "--set", "training.batch_size=128"]
    done = subprocess.run(command, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    records = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    parts = {"data", "step", "eval", "logs", "checkpoint", "compile", "other"}
    for number, record in enumerate(records):
        timing = record["timing"]
        assert set(timing) == parts and min(timing.values()) >= 0
        assert timing["step"] > 0
        # the record's own wall time (epoch start to after evaluation) lies within the parts
        assert record["seconds"] <= sum(timing.values()) + 0.05
        assert (timing["compile"] > 0) == (number == 0)  # compiled in the first epoch only
        assert (timing["checkpoint"] > 0) == (number > 0)  # the previous epoch's save
