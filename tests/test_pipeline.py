"""Batches: determinism and resume, coverage, padding, normalisation, augmentation, sharding."""

from __future__ import annotations

from pathlib import Path
from typing import NamedTuple

import numpy as np
import pytest
from PIL import Image

from netspec.errors import SpecError
from netspec.train.datasets import ImageSet, decode_image
from netspec.train.pipeline import (
    DRAW_SLOTS,
    Augment,
    Batch,
    Normalize,
    Pipeline,
    crop_and_flip,
    crop_boxes,
    epoch_seeds,
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


def padded_reference(image: np.ndarray, pad: int, offset, flip: bool = False) -> np.ndarray:
    """The (H, W) window at `offset` of `image` zero-padded by `pad` (np.pad), mirrored."""
    height, width = image.shape[:2]
    padded = np.pad(image, ((pad, pad), (pad, pad), (0, 0)))
    dy, dx = offset
    window = padded[dy : dy + height, dx : dx + width]
    return window[:, ::-1] if flip else window


class Drawn(NamedTuple):
    """One example's draws."""

    box: tuple[int, ...] | None
    offset: tuple[int, ...]
    flip: bool


def epoch_draws(pipeline: Pipeline, epoch: int, size=SHAPE[:2]) -> list[Drawn]:
    """Each position's draws in `epoch` (the draws of the example visited there); `size`
    (H, W), or a function of the example index for image files."""
    order = pipeline.order(epoch)
    sizes = [size(int(i)) for i in order] if callable(size) else size
    draws = pipeline.draws(epoch, order, sizes)
    return [
        Drawn(
            None if draws.boxes is None else tuple(draws.boxes[row].tolist()),
            tuple(draws.offsets[row].tolist()),
            bool(draws.flips[row]),
        )
        for row in range(len(order))
    ]


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


def test_epochs_differ_and_follow_the_order() -> None:
    pipeline = Pipeline(memory_split(), SHAPE, 10, train=True, seed=0)
    for epoch in (0, 1, 5):
        order = pipeline.order(epoch)
        assert sorted(order.tolist()) == list(range(50))  # a permutation
        labels = np.concatenate([b.labels for b in collect(pipeline, epoch)])
        assert np.array_equal(labels, order)  # label i is example i
    assert not np.array_equal(pipeline.order(0), pipeline.order(1))
    again = Pipeline(memory_split(), SHAPE, 10, train=True, seed=0)
    assert np.array_equal(again.order(3), pipeline.order(3))
    # each epoch's seed mixes the run's seed and the epoch: the runs of seeds 0 and 1 do not
    # visit the same orders an epoch apart
    other = Pipeline(memory_split(), SHAPE, 10, train=True, seed=1)
    assert not np.array_equal(other.order(0), pipeline.order(1))
    assert not np.array_equal(other.order(0), pipeline.order(0))


def reference_epoch(
    images: np.ndarray,
    labels: np.ndarray,
    seed: int,
    epoch: int,
    batch: int,
    pad: int,
    mean: tuple[float, ...],
    std: tuple[float, ...],
) -> list[tuple[np.ndarray, np.ndarray]]:
    """Training epoch `epoch` written out directly, one example at a time: the order is the
    permutation seeded by the epoch's first seed, example i's draws come from the hash of (the
    epoch's second seed, i), each image is zero-padded, cut at its offset, mirrored, scaled."""
    order_seed, key = epoch_seeds(seed, epoch)
    order = np.random.default_rng(order_seed).permutation(len(images))
    uniforms = example_uniforms(key, order)
    offsets = np.floor(uniforms[:, DRAW_SLOTS - 3 : DRAW_SLOTS - 1] * (2 * pad + 1)).astype(int)
    flips = uniforms[:, DRAW_SLOTS - 1] < 0.5
    mean32, std32 = np.array(mean, np.float32), np.array(std, np.float32)
    out = []
    for start in range(0, len(order) - batch + 1, batch):
        rows = []
        for position in range(start, start + batch):
            image = padded_reference(images[order[position]], pad, offsets[position])
            image = image[:, ::-1] if flips[position] else image
            rows.append(image.astype(np.float32) * (1.0 / (255.0 * std32)) - mean32 / std32)
        out.append((np.stack(rows), labels[order[start : start + batch]].astype(np.int32)))
    return out


@pytest.mark.parametrize("shards", [1, 2])
def test_batches_equal_a_direct_reference(shards: int) -> None:
    """The batched in-memory path (one gather, vectorised draws, batch crop, flip and
    normalisation) gives exactly what the example-at-a-time reference gives; a shard's
    batches are its slices of the reference's global batches."""
    split = memory_split(45)
    mean, std = (0.5, 0.4, 0.3), (0.2, 0.25, 0.5)
    augment = Augment(random_crop_padding=3, horizontal_flip=True)
    expected = reference_epoch(split.images, split.labels, 11, 4, 8, 3, mean, std)
    local = 8 // shards
    for index in range(shards):
        pipeline = Pipeline(
            split,
            SHAPE,
            local,
            train=True,
            augment=augment,
            normalize=Normalize(mean, std),
            seed=11,
            shard=(index, shards),
        )
        batches = collect(pipeline, 4)
        assert len(batches) == len(expected) == 5
        for got, (images, labels) in zip(batches, expected, strict=True):
            part = slice(index * local, (index + 1) * local)
            np.testing.assert_array_equal(got.images, images[part])
            np.testing.assert_array_equal(got.labels, labels[part])
            assert got.mask.tolist() == [1.0] * local


def test_an_examples_draws_depend_on_seed_epoch_and_index_only() -> None:
    """The same example gets the same draws whatever batch size it is read in."""
    augment = Augment(random_crop_padding=2, random_resized_crop=(0.3, 1.0), horizontal_flip=True)
    small = Pipeline(memory_split(), SHAPE, 2, train=True, augment=augment, seed=5)
    large = Pipeline(memory_split(), SHAPE, 25, train=True, augment=augment, seed=5)
    indices = np.array([7, 3, 41])
    a, b = small.draws(2, indices, SHAPE[:2]), large.draws(2, indices[::-1], SHAPE[:2])
    assert np.array_equal(a.offsets, b.offsets[::-1]) and np.array_equal(a.flips, b.flips[::-1])
    assert np.array_equal(a.boxes, b.boxes[::-1])
    assert not np.array_equal(a.boxes, small.draws(3, indices, SHAPE[:2]).boxes)


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

    def size(index: int) -> tuple[int, int]:
        with Image.open((split.paths or [])[index]) as image:
            return image.height, image.width

    draws = epoch_draws(pipeline, 2, size)
    for row, index in enumerate(pipeline.batch_indices(2, 0)):
        with Image.open((split.paths or [])[index]) as image:
            source = image.convert("RGB")
        top, left, height, width = draws[row].box
        box = (left, top, left + width, top + height)
        cropped = np.asarray(source.resize((8, 8), Image.Resampling.BILINEAR, box=box))
        expected = padded_reference(cropped, 2, draws[row].offset, draws[row].flip)
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
    return indices, images[indices], epoch_draws(pipeline, epoch)[: len(indices)]


def test_random_crop_with_padding_shifts_content() -> None:
    augment = Augment(random_crop_padding=2)
    pipeline = Pipeline(memory_split(), SHAPE, 16, train=True, augment=augment, seed=4)
    batch = collect(pipeline, 3)[0]
    _, images, draws = step_draws(pipeline, 3, augment)
    assert all(d.box is None and not d.flip for d in draws)
    for row, (image, chosen) in enumerate(zip(images, draws, strict=True)):
        expected = padded_reference(image, 2, chosen.offset)
        assert np.allclose(batch.images[row], unit_scale(expected))
    offsets = np.array([d.offset for d in draws])
    assert len({tuple(o) for o in offsets}) > 3
    assert offsets.min() >= 0 and offsets.max() <= 4


def test_padded_crop_at_a_known_offset() -> None:
    image = np.arange(1, 8 * 8 * 3 + 1, dtype=np.uint8).reshape(8, 8, 3)
    shifted = padded_crop(image, 2, (0, 0))  # window at the padded image's top-left
    assert shifted.shape == image.shape
    assert np.all(shifted[:2] == 0) and np.all(shifted[:, :2] == 0)
    assert np.array_equal(shifted[2:, 2:], image[:-2, :-2])
    assert np.array_equal(padded_crop(image, 2, (2, 2)), image)
    assert np.array_equal(padded_crop(image, 2, (4, 3))[:-2, :-1], image[2:, 1:])
    batch = np.stack([image, image + 1])
    both = crop_and_flip(batch, 2, np.array([[0, 0], [4, 3]]), [False, True])
    assert np.array_equal(both[0], shifted)
    assert np.array_equal(both[1], padded_crop(image + 1, 2, (4, 3))[:, ::-1])


@pytest.mark.parametrize("pad", [1, 3, 7, 12])
def test_padded_crop_equals_padding_then_cutting(pad: int) -> None:
    """Every offset, pads up to wider than the image, against np.pad then a slice; masks
    pad with their own value."""
    image = np.random.default_rng(pad).integers(1, 256, (8, 6, 2), dtype=np.uint8)
    for dy in range(2 * pad + 1):
        for dx in range(2 * pad + 1):
            assert np.array_equal(
                padded_crop(image, pad, (dy, dx)), padded_reference(image, pad, (dy, dx))
            )
    masks = image[None, ..., 0]
    expected = np.pad(masks[0], pad, constant_values=255)[1 : 1 + 8, 2 : 2 + 6]
    cut = crop_and_flip(masks, pad, np.array([[1, 2]]), [False], fill=255)
    assert np.array_equal(cut[0], expected)


def test_horizontal_flip() -> None:
    augment = Augment(horizontal_flip=True)
    pipeline = Pipeline(memory_split(), SHAPE, 16, train=True, augment=augment)
    batch = collect(pipeline, 0)[0]
    _, images, draws = step_draws(pipeline, 0, augment)
    flips = [d.flip for d in draws]
    for row, (image, flip) in enumerate(zip(images, flips, strict=True)):
        expected = image[:, ::-1] if flip else image
        assert np.allclose(batch.images[row], unit_scale(expected))
    assert any(flips) and not all(flips)
    assert all(d.offset == (0, 0) for d in draws)


def test_random_resized_crop(tmp_path: Path) -> None:
    augment = Augment(random_resized_crop=(0.08, 1.0))
    pipeline = Pipeline(memory_split(), SHAPE, 16, train=True, augment=augment)
    batch = collect(pipeline, 0)[0]
    assert batch.images.shape == (16, *SHAPE)
    _, images, draws = step_draws(pipeline, 0, augment)
    for row, (image, (top, left, height, width)) in enumerate(
        zip(images, [d.box for d in draws], strict=True)
    ):
        assert min(top, left) >= 0 and top + height <= 8 and left + width <= 8
        box = (left, top, left + width, top + height)
        expected = Image.fromarray(image).resize((8, 8), Image.Resampling.BILINEAR, box=box)
        assert np.allclose(batch.images[row], unit_scale(np.asarray(expected)))
    files = folder_split(tmp_path, 8)
    from_files = collect(Pipeline(files, (6, 5, 1), 4, train=True, augment=augment), 0)
    assert from_files[0].images.shape == (4, 6, 5, 1)


def test_crop_boxes_follow_scale_and_aspect() -> None:
    uniforms = np.random.default_rng(0).random((2000, DRAW_SLOTS - 3))
    boxes = crop_boxes(uniforms, np.array([[200, 300]] * 2000), (0.25, 0.5))
    top, left, height, width = boxes.T
    area = height * width / (200 * 300)
    assert area.min() > 0.24 and area.max() < 0.51
    aspect = width / height
    assert aspect.min() > 0.74 and aspect.max() < 1.35
    assert (top + height).max() <= 200 and (left + width).max() <= 300
    assert top.min() == 0 and left.min() == 0  # placement covers the edges
    narrow = crop_boxes(uniforms[:1], np.array([[100, 10]]), (1.0, 1.0))
    assert narrow[0].tolist() == [43, 0, 13, 10]  # fallback: centred, aspect 3/4


def test_full_area_crop_is_the_whole_image() -> None:
    augment = Augment(random_resized_crop=(1.0, 1.0))
    split = memory_split(16)
    pipeline = Pipeline(split, SHAPE, 16, train=True, augment=augment)
    (batch,) = collect(pipeline, 0)
    _, images, draws = step_draws(pipeline, 0, augment)
    assert all(d.box == (0, 0, 8, 8) for d in draws)
    assert np.allclose(batch.images, unit_scale(images))


def test_draws_are_uniform_and_differ_by_epoch() -> None:
    """Offsets spread evenly over the 2p + 1 positions, flips half the time, and an example's
    draws in one epoch are unrelated to its draws in the next."""
    augment = Augment(random_crop_padding=2, horizontal_flip=True)
    pipeline = Pipeline(memory_split(5000), SHAPE, 50, train=True, augment=augment, seed=7)
    by_example = []
    for epoch in (0, 1):
        draws = epoch_draws(pipeline, epoch)
        offsets = np.array([d.offset for d in draws])
        shares = np.bincount(offsets.ravel(), minlength=5) / offsets.size
        assert np.abs(shares - 0.2).max() < 0.02
        assert abs(np.mean([d.flip for d in draws]) - 0.5) < 0.03
        order = pipeline.order(epoch)
        by_example.append(offsets[np.argsort(order)])  # row i: example i's offset
    assert abs(np.corrcoef(by_example[0][:, 0], by_example[1][:, 0])[0, 1]) < 0.05
    assert (by_example[0] != by_example[1]).any(axis=1).mean() > 0.7


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
