"""Batches: determinism and resume, coverage, padding, normalisation, augmentation, sharding."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from netspec.errors import SpecError
from netspec.train.datasets import ImageSet, decode_image
from netspec.train.pipeline import (
    Augment,
    Batch,
    Normalize,
    Pipeline,
    crop_and_flip,
    draw_augmentations,
    epoch_order,
    example_uniforms,
    padded_crop,
)

SHAPE = (8, 8, 3)
ALL_AUGMENTS = Augment(random_crop_padding=2, random_resized_crop=(0.3, 1.0), horizontal_flip=True)


def memory_split(count: int = 50, shape: tuple[int, int, int] = SHAPE) -> ImageSet:
    """Random images; label i for example i, so labels identify examples."""
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, size=(count, *shape), dtype=np.uint8)
    return ImageSet(images, None, np.arange(count))


def folder_split(tmp_path: Path, count: int = 12) -> ImageSet:
    rng = np.random.default_rng(1)
    paths = []
    for i in range(count):
        size = (10 + i, 12)  # (width, height): sizes differ, as in real folders
        path = tmp_path / f"{i:02d}.png"
        Image.fromarray(rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)).save(path)
        paths.append(path)
    return ImageSet(None, paths, np.arange(count))


def collect(pipeline: Pipeline, epoch: int, start_step: int = 0) -> list[Batch]:
    return list(pipeline.epoch(epoch, start_step))


def assert_same(a: list[Batch], b: list[Batch]) -> None:
    assert len(a) == len(b)
    for x, y in zip(a, b, strict=True):
        for part_x, part_y in zip(x, y, strict=True):
            assert part_x.dtype == part_y.dtype
            assert np.array_equal(part_x, part_y)


def unit_scale(pixels: np.ndarray) -> np.ndarray:
    return pixels.astype(np.float32) / 255.0


# --------------------------------------------------------------------------- determinism


def test_same_epoch_twice_is_identical() -> None:
    pipeline = Pipeline(memory_split(), SHAPE, 8, train=True, augment=ALL_AUGMENTS, seed=3)
    first, second = collect(pipeline, 2), collect(pipeline, 2)
    assert_same(first, second)
    batch = first[0]
    assert batch.images.shape == (8, *SHAPE) and batch.images.dtype == np.float32
    assert batch.labels.dtype == np.int32 and batch.mask.dtype == np.float32


def test_start_step_gives_the_tail_of_the_epoch() -> None:
    pipeline = Pipeline(memory_split(), SHAPE, 8, train=True, augment=ALL_AUGMENTS, seed=3)
    full = collect(pipeline, 1)
    assert_same(collect(pipeline, 1, start_step=4), full[4:])
    assert collect(pipeline, 1, start_step=pipeline.steps_per_epoch()) == []


def test_resume_does_not_depend_on_earlier_epochs() -> None:
    fresh = Pipeline(memory_split(), SHAPE, 8, train=True, augment=ALL_AUGMENTS, seed=3)
    used = Pipeline(memory_split(), SHAPE, 8, train=True, augment=ALL_AUGMENTS, seed=3)
    collect(used, 0)
    collect(used, 1)
    assert_same(collect(fresh, 2, start_step=1), collect(used, 2, start_step=1))


def test_worker_threads_give_identical_batches(tmp_path: Path) -> None:
    for split in (memory_split(), folder_split(tmp_path)):
        args = (split, SHAPE, 4)
        inline = Pipeline(*args, train=True, augment=ALL_AUGMENTS, workers=0)
        threaded = Pipeline(*args, train=True, augment=ALL_AUGMENTS, workers=2)
        assert_same(collect(inline, 0), collect(threaded, 0))
        assert_same(collect(inline, 1, 1), collect(threaded, 1, 1))


def test_worker_processes_give_identical_batches() -> None:
    split = memory_split(24)
    inline = Pipeline(split, SHAPE, 4, train=True, augment=ALL_AUGMENTS)
    spawned = Pipeline(split, SHAPE, 4, train=True, augment=ALL_AUGMENTS, workers=2, processes=True)
    assert_same(collect(inline, 0, 1), collect(spawned, 0, 1))


def test_worker_process_errors_arrive_whole(tmp_path: Path) -> None:
    split = folder_split(tmp_path, 6)
    (split.paths or [])[4].write_bytes(b"gone bad")
    pipeline = Pipeline(split, SHAPE, 2, train=False, workers=2, processes=True)
    with pytest.raises(SpecError, match=r"04\.png: cannot read image"):
        collect(pipeline, 0)


def test_epochs_differ() -> None:
    pipeline = Pipeline(memory_split(), SHAPE, 8, train=True, seed=0)
    first, second = collect(pipeline, 0), collect(pipeline, 1)
    assert not np.array_equal(first[0].labels, second[0].labels)
    assert np.array_equal(pipeline.order(1), np.random.default_rng([0, 1]).permutation(50))
    assert np.array_equal(pipeline.order(1), epoch_order(0, 1, 50))


# --------------------------------------------------------------------------- coverage


def test_train_epoch_visits_each_example_once() -> None:
    pipeline = Pipeline(memory_split(50), SHAPE, 8, train=True)
    batches = collect(pipeline, 0)
    assert pipeline.steps_per_epoch() == 6 == len(batches)
    seen = np.concatenate([b.labels for b in batches])
    assert len(seen) == 48 == len(set(seen.tolist()))
    assert all(b.mask.min() == 1.0 for b in batches)
    dropped = set(range(50)) - set(seen.tolist())
    assert dropped == set(pipeline.order(0)[48:].tolist())


def test_eval_covers_everything_with_a_padded_last_batch() -> None:
    split = memory_split(50)
    pipeline = Pipeline(split, SHAPE, 8, train=False, augment=ALL_AUGMENTS)
    batches = collect(pipeline, 0)
    assert pipeline.steps_per_epoch() == 7 == len(batches)
    last = batches[-1]
    assert last.images.shape == (8, *SHAPE)
    assert last.mask.tolist() == [1, 1, 0, 0, 0, 0, 0, 0]
    assert np.all(last.images[2:] == 0) and np.all(last.labels[2:] == 0)
    real = np.concatenate([b.labels[b.mask == 1] for b in batches])
    assert real.tolist() == list(range(50))  # fixed order
    images = np.concatenate([b.images[b.mask == 1] for b in batches])
    assert np.allclose(images, unit_scale(split.images))  # no augmentation in eval


def test_image_folder_batches_decode_each_file(tmp_path: Path) -> None:
    split = folder_split(tmp_path, 5)
    batches = collect(Pipeline(split, SHAPE, 2, train=False, workers=2), 0)
    images = np.concatenate([b.images[b.mask == 1] for b in batches])
    expected = np.stack([decode_image(p, SHAPE) for p in split.paths or []])
    assert np.allclose(images, unit_scale(expected))


def test_image_folder_augmentation_cuts_the_full_size_file(tmp_path: Path) -> None:
    split = folder_split(tmp_path, 6)
    augment = ALL_AUGMENTS
    pipeline = Pipeline(split, SHAPE, 6, train=True, augment=augment, seed=9)
    (batch,) = collect(pipeline, 2)
    for row, index in enumerate(pipeline.batch_indices(2, 0)):
        path = (split.paths or [])[index]
        with Image.open(path) as image:
            source = image.convert("RGB")
        draws = draw_augmentations(augment, 9, 2, [index], (source.height, source.width))
        top, left, height, width = draws.crop_boxes[0]
        box = (left, top, left + width, top + height)
        cropped = np.asarray(source.resize((8, 8), Image.Resampling.BILINEAR, box=box))
        expected = crop_and_flip(cropped[None], 2, draws.offsets, draws.flips)[0]
        assert np.allclose(batch.images[row], unit_scale(expected))


def test_bad_file_in_worker_raises_spec_error(tmp_path: Path) -> None:
    split = folder_split(tmp_path, 6)
    (split.paths or [])[3].write_bytes(b"gone bad")
    pipeline = Pipeline(split, SHAPE, 2, train=False, workers=2)
    with pytest.raises(SpecError, match=r"03\.png: cannot read image"):
        collect(pipeline, 0)


# --------------------------------------------------------------------------- normalisation


def test_normalisation_formula() -> None:
    split = memory_split(16)
    mean, std = (0.5, 0.4, 0.3), (0.2, 0.25, 0.5)
    pipeline = Pipeline(split, SHAPE, 16, train=False, normalize=Normalize(mean, std))
    (batch,) = collect(pipeline, 0)
    x = split.images.astype(np.float64)
    expected = (x / 255.0 - np.array(mean)) / np.array(std)
    assert np.allclose(batch.images, expected, atol=1e-5)


def test_normalisation_one_value_for_all_channels_and_checks() -> None:
    split = memory_split(16)
    (batch,) = collect(
        Pipeline(split, SHAPE, 16, train=False, normalize=Normalize((0.5,), (0.5,))), 0
    )
    assert np.allclose(batch.images, split.images / 127.5 - 1.0, atol=1e-5)
    with pytest.raises(SpecError, match="mean needs 1 or 3 values"):
        Pipeline(split, SHAPE, 4, train=False, normalize=Normalize((0.5, 0.5), (1.0,)))
    with pytest.raises(SpecError, match="std must be positive"):
        Pipeline(split, SHAPE, 4, train=False, normalize=Normalize((0.5,), (0.0,)))


# --------------------------------------------------------------------------- augmentation


def step_draws(pipeline: Pipeline, epoch: int, augment: Augment):
    """Step 0's example indices, their stored images and the draws the pipeline makes."""
    indices = pipeline.batch_indices(epoch, 0)
    images = pipeline.split.images
    assert images is not None
    draws = draw_augmentations(augment, pipeline.seed, epoch, indices, SHAPE[:2])
    return indices, images[indices], draws


def test_random_crop_with_padding_shifts_content() -> None:
    augment = Augment(random_crop_padding=2)
    pipeline = Pipeline(memory_split(), SHAPE, 16, train=True, augment=augment, seed=4)
    batch = collect(pipeline, 3)[0]
    _, images, draws = step_draws(pipeline, 3, augment)
    assert draws.crop_boxes is None and not draws.flips.any()
    for row, (image, (dy, dx)) in enumerate(zip(images, draws.offsets, strict=True)):
        padded = np.pad(image, ((2, 2), (2, 2), (0, 0)))
        expected = padded[dy : dy + 8, dx : dx + 8]
        assert np.allclose(batch.images[row], unit_scale(expected))
    assert len({tuple(o) for o in draws.offsets}) > 3
    assert draws.offsets.min() >= 0 and draws.offsets.max() <= 4


def test_padded_crop_at_a_known_offset() -> None:
    image = np.arange(1, 8 * 8 * 3 + 1, dtype=np.uint8).reshape(8, 8, 3)
    shifted = padded_crop(image, 2, (0, 0))  # window at the padded image's top-left
    assert shifted.shape == image.shape
    assert np.all(shifted[:2] == 0) and np.all(shifted[:, :2] == 0)
    assert np.array_equal(shifted[2:, 2:], image[:-2, :-2])
    assert np.array_equal(padded_crop(image, 2, (2, 2)), image)
    assert np.array_equal(padded_crop(image, 2, (4, 3))[:-2, :-1], image[2:, 1:])
    batch = np.stack([image, image + 1])
    offsets, flips = np.array([[0, 0], [4, 3]]), np.array([False, True])
    both = crop_and_flip(batch, 2, offsets, flips)
    assert np.array_equal(both[0], shifted)
    assert np.array_equal(both[1], padded_crop(image + 1, 2, (4, 3))[:, ::-1])


def test_horizontal_flip() -> None:
    augment = Augment(horizontal_flip=True)
    pipeline = Pipeline(memory_split(), SHAPE, 16, train=True, augment=augment)
    batch = collect(pipeline, 0)[0]
    _, images, draws = step_draws(pipeline, 0, augment)
    for row, (image, flip) in enumerate(zip(images, draws.flips, strict=True)):
        expected = image[:, ::-1] if flip else image
        assert np.allclose(batch.images[row], unit_scale(expected))
    assert draws.flips.any() and not draws.flips.all()
    assert (draws.offsets == 0).all()


def test_random_resized_crop(tmp_path: Path) -> None:
    augment = Augment(random_resized_crop=(0.08, 1.0))
    pipeline = Pipeline(memory_split(), SHAPE, 16, train=True, augment=augment)
    batch = collect(pipeline, 0)[0]
    assert batch.images.shape == (16, *SHAPE)
    _, images, draws = step_draws(pipeline, 0, augment)
    assert draws.crop_boxes is not None
    for row, (image, (top, left, height, width)) in enumerate(
        zip(images, draws.crop_boxes, strict=True)
    ):
        assert min(top, left) >= 0 and top + height <= 8 and left + width <= 8
        box = (left, top, left + width, top + height)
        expected = Image.fromarray(image).resize((8, 8), Image.Resampling.BILINEAR, box=box)
        assert np.allclose(batch.images[row], unit_scale(np.asarray(expected)))
    files = folder_split(tmp_path, 8)
    from_files = collect(Pipeline(files, (6, 5, 1), 4, train=True, augment=augment), 0)
    assert from_files[0].images.shape == (4, 6, 5, 1)


def test_crop_boxes_follow_scale_and_aspect() -> None:
    augment = Augment(random_resized_crop=(0.25, 0.5))
    draws = draw_augmentations(augment, 0, 0, np.arange(2000), (200, 300))
    top, left, height, width = draws.crop_boxes.T
    area = height * width / (200 * 300)
    assert area.min() > 0.24 and area.max() < 0.51
    aspect = width / height
    assert aspect.min() > 0.74 and aspect.max() < 1.35
    assert (top + height).max() <= 200 and (left + width).max() <= 300
    assert top.min() == 0 and left.min() == 0  # placement covers the edges
    narrow = draw_augmentations(Augment(random_resized_crop=(1.0, 1.0)), 0, 0, [5], (100, 10))
    assert narrow.crop_boxes.tolist() == [[43, 0, 13, 10]]  # fallback: centred, aspect 3/4


def test_full_area_crop_is_the_whole_image() -> None:
    augment = Augment(random_resized_crop=(1.0, 1.0))
    split = memory_split(16)
    pipeline = Pipeline(split, SHAPE, 16, train=True, augment=augment)
    (batch,) = collect(pipeline, 0)
    _, images, draws = step_draws(pipeline, 0, augment)
    assert (draws.crop_boxes == [0, 0, 8, 8]).all()
    assert np.allclose(batch.images, unit_scale(images))


def test_example_streams_are_keyed_and_uniform() -> None:
    streams = example_uniforms(7, 3, np.arange(4000))
    assert streams.shape[0] == 4000 and streams.min() >= 0.0 and streams.max() < 1.0
    assert abs(streams.mean() - 0.5) < 0.005
    counts = np.histogram(streams, bins=10, range=(0, 1))[0] / streams.size
    assert np.abs(counts - 0.1).max() < 0.005
    assert np.array_equal(example_uniforms(7, 3, np.array([17]))[0], streams[17])
    for other in (example_uniforms(8, 3, np.arange(4000)), example_uniforms(7, 4, np.arange(4000))):
        assert np.abs(other - streams).min() > 0 or not np.allclose(other, streams)
        assert abs(np.corrcoef(other[:, 0], streams[:, 0])[0, 1]) < 0.05
    assert example_uniforms(-1, 0, np.arange(3)).shape[0] == 3  # negative seeds wrap


def test_augment_arguments_are_checked() -> None:
    with pytest.raises(SpecError, match="random_resized_crop"):
        Augment(random_resized_crop=(0.5, 0.2))
    with pytest.raises(SpecError, match="padding must be >= 0"):
        Augment(random_crop_padding=-1)


# --------------------------------------------------------------------------- sharding


@pytest.mark.parametrize("train", [True, False])
def test_shards_partition_the_global_batch(train: bool) -> None:
    split = memory_split(45)
    whole = Pipeline(split, SHAPE, 8, train=train, augment=ALL_AUGMENTS, seed=2)
    shards = [
        Pipeline(split, SHAPE, 4, train=train, augment=ALL_AUGMENTS, seed=2, shard=(i, 2))
        for i in range(2)
    ]
    assert all(s.steps_per_epoch() == whole.steps_per_epoch() for s in shards)
    global_batches = collect(whole, 1)
    parts = [collect(s, 1) for s in shards]
    for step, batch in enumerate(global_batches):
        for field in range(3):
            joined = np.concatenate([parts[0][step][field], parts[1][step][field]])
            assert np.array_equal(joined, batch[field])


# --------------------------------------------------------------------------- misuse


def test_too_few_examples_and_bad_resume() -> None:
    with pytest.raises(SpecError, match="fewer than one batch of 64"):
        Pipeline(memory_split(50), SHAPE, 64, train=True)
    pipeline = Pipeline(memory_split(50), SHAPE, 8, train=True)
    with pytest.raises(SpecError, match="cannot resume at step 7: an epoch has 6 steps"):
        pipeline.epoch(0, start_step=7)
