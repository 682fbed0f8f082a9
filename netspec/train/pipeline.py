"""Deterministic training and evaluation batches, built in background workers with grain.

Determinism contract (what exact resume relies on):

- Train order for epoch ``e`` is ``np.random.default_rng([seed, e]).permutation(N)``; eval
  order is ``0..N-1``.
- Each example's augmentation draws from its own random stream, a counter-based hash of
  ``(seed, e, index, slot)`` (`example_uniforms`; vectorised over a batch, unlike one NumPy
  generator per example), so batch ``(e, step)`` is bit-identical whatever `workers`,
  `start_step`, `shard` or the epochs before it.

Sharding convention (multi-process data parallelism): with ``shard=(i, n)`` the global batch is
``n * batch_size`` examples and process ``i`` takes its contiguous slice
``[i * batch_size, (i + 1) * batch_size)`` of every global batch; all processes see the same
number of steps, and the concatenation of the n shards' batches is the global batch.

Background work: each step's batch is one element of a ``grain.MapDataset`` over the epoch's
index slices, mapped by the batch builder and read through ``to_iter_dataset`` with `workers`
prefetching threads (Pillow decoding and NumPy release the GIL), or with
``processes=True`` through ``mp_prefetch`` in `workers` spawned processes.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import NamedTuple

import grain
import numpy as np
from PIL import Image

from ..errors import SpecError
from .datasets import ImageSet, ImageShape, open_image, pil_to_array

ASPECT_RANGE = (3 / 4, 4 / 3)
"""Aspect ratios (width / height) a random resized crop draws from, log-uniformly."""
CROP_ATTEMPTS = 10
"""Tries at a random resized crop inside the image before falling back to a centre crop."""


class Batch(NamedTuple):
    """One step's data for one process."""

    images: np.ndarray
    """float32 (B, H, W, C), normalised; zeros where `mask` is 0."""
    labels: np.ndarray
    """int32 (B,); 0 where `mask` is 0. Per-pixel models: int32 (B, H', W') at the network's
    output size, the ignore index where `mask` is 0 (`netspec.train.masks`)."""
    mask: np.ndarray
    """float32 (B,): 1 for real examples, 0 for the padding of eval's last batch."""


@dataclass(frozen=True)
class Augment:
    """Training-time augmentation, applied in this order: resized crop, padded crop, flip."""

    random_crop_padding: int = 0
    """Pad by this many zero pixels on every side, crop back at a random offset (CIFAR)."""
    random_resized_crop: tuple[float, float] | None = None
    """Area fraction range, e.g. (0.08, 1.0); aspect in (3/4, 4/3); resized to (H, W)."""
    horizontal_flip: bool = False
    """Mirror left-right with probability 1/2."""

    def __post_init__(self) -> None:
        if self.random_crop_padding < 0:
            raise SpecError(
                f"random crop padding must be >= 0 pixels, got {self.random_crop_padding}",
                field="augment",
            )
        scale = self.random_resized_crop
        if scale is not None and not (len(scale) == 2 and 0 < scale[0] <= scale[1] <= 1):
            raise SpecError(
                f"random_resized_crop must be an area range [low, high] with "
                f"0 < low <= high <= 1, e.g. [0.08, 1.0]; got {list(scale)}",
                field="augment",
            )

    @property
    def active(self) -> bool:
        return bool(self.random_crop_padding or self.random_resized_crop or self.horizontal_flip)


@dataclass(frozen=True)
class Normalize:
    """``(x / 255 - mean) / std`` per channel; one value applies to every channel."""

    mean: tuple[float, ...]
    std: tuple[float, ...]

    def arrays(self, channels: int) -> tuple[np.ndarray, np.ndarray]:
        """float32 (C,) mean and std, checked against the model's channel count."""
        values = []
        for name, given in (("mean", self.mean), ("std", self.std)):
            if len(given) not in (1, channels):
                raise SpecError(
                    f"{name} needs 1 or {channels} values (one per input channel), "
                    f"got {len(given)}",
                    field="normalize",
                )
            values.append(np.broadcast_to(np.asarray(given, np.float32), (channels,)).copy())
        if np.any(values[1] <= 0):
            raise SpecError(f"std must be positive, got {list(self.std)}", field="normalize")
        return values[0], values[1]


@dataclass(frozen=True)
class Draws:
    """Random augmentation choices for n examples."""

    crop_boxes: np.ndarray | None
    """int64 (n, 4): (top, left, height, width) in source pixels; None without resized crop."""
    offsets: np.ndarray
    """int64 (n, 2): (dy, dx) of the (H, W) window in the zero-padded image; (p, p) = no shift."""
    flips: np.ndarray
    """bool (n,): mirror left-right."""


def _seed_key(seed: int) -> int:
    """`seed` as the non-negative integer NumPy's SeedSequence needs (negatives wrap)."""
    return seed % 2**64


def epoch_order(seed: int, epoch: int, count: int) -> np.ndarray:
    """int64 (count,): the training order of epoch `epoch`."""
    return np.random.default_rng([_seed_key(seed), epoch]).permutation(count)


# Slots of an example's random stream: 4 per resized-crop attempt, then offset, then flip.
# Fixed positions, so switching one augmentation on or off leaves the others' draws alone.
_CROP_SLOTS = 4 * CROP_ATTEMPTS
_OFFSET_SLOT = _CROP_SLOTS
_FLIP_SLOT = _CROP_SLOTS + 2
DRAW_SLOTS = _CROP_SLOTS + 3


def _mix(state: np.ndarray) -> np.ndarray:
    """SplitMix64's finaliser on uint64 arrays (wrapping arithmetic)."""
    state = state + np.uint64(0x9E3779B97F4A7C15)
    state = (state ^ (state >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    state = (state ^ (state >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return state ^ (state >> np.uint64(31))


def example_uniforms(seed: int, epoch: int, indices: np.ndarray) -> np.ndarray:
    """float64 (n, DRAW_SLOTS) in [0, 1): each example's random stream, a counter-based hash
    of (seed, epoch, example index, slot), so it depends on nothing else."""
    key = _mix(np.full(1, _seed_key(seed), dtype=np.uint64))
    key = _mix(key + np.uint64(epoch % 2**64))
    per_example = _mix(key + np.asarray(indices, dtype=np.int64).astype(np.uint64))
    state = _mix(per_example[:, None] + np.arange(DRAW_SLOTS, dtype=np.uint64))
    return (state >> np.uint64(11)).astype(np.float64) * 2.0**-53


def draw_augmentations(
    augment: Augment, seed: int, epoch: int, indices: np.ndarray, source_hw: np.ndarray
) -> Draws:
    """The draws of examples `indices` in `epoch`; `source_hw` int (n, 2) or (2,) is the size of
    the image the resized crop cuts (the decoded file, or the stored array)."""
    uniforms = example_uniforms(seed, epoch, indices)
    pad = augment.random_crop_padding
    offsets = np.floor(uniforms[:, _OFFSET_SLOT : _OFFSET_SLOT + 2] * (2 * pad + 1))
    flips = uniforms[:, _FLIP_SLOT] < 0.5 if augment.horizontal_flip else np.zeros(len(uniforms))
    boxes = None
    if augment.random_resized_crop is not None:
        sizes = np.broadcast_to(np.asarray(source_hw, dtype=np.int64), (len(uniforms), 2))
        boxes = crop_boxes(uniforms[:, :_CROP_SLOTS], sizes, augment.random_resized_crop)
    return Draws(boxes, offsets.astype(np.int64), flips.astype(bool))


def crop_boxes(uniforms: np.ndarray, sizes: np.ndarray, scale: tuple[float, float]) -> np.ndarray:
    """int64 (n, 4) (top, left, height, width): per example the first of `CROP_ATTEMPTS` boxes
    (area fraction uniform in `scale`, aspect log-uniform in `ASPECT_RANGE`, placed uniformly)
    that fits its (height, width) in `sizes`, else a centred crop clamped to the aspect range.
    `uniforms` is (n, 4 * CROP_ATTEMPTS)."""
    u = uniforms.reshape(len(uniforms), CROP_ATTEMPTS, 4)
    height, width = sizes[:, :1].astype(np.float64), sizes[:, 1:].astype(np.float64)
    area = height * width * (scale[0] + (scale[1] - scale[0]) * u[..., 0])
    log_low, log_high = (math.log(r) for r in ASPECT_RANGE)
    aspect = np.exp(log_low + (log_high - log_low) * u[..., 1])
    box_w, box_h = np.rint(np.sqrt(area * aspect)), np.rint(np.sqrt(area / aspect))
    fits = (box_w >= 1) & (box_w <= width) & (box_h >= 1) & (box_h <= height)
    top = np.floor(u[..., 2] * (height - box_h + 1))
    left = np.floor(u[..., 3] * (width - box_w + 1))
    attempts = np.stack([top, left, box_h, box_w], axis=-1)
    first = np.argmax(fits, axis=1)
    chosen = attempts[np.arange(len(u)), first]
    missed = ~fits.any(axis=1)
    chosen[missed] = _centre_boxes(sizes[missed])
    return chosen.astype(np.int64)


def _centre_boxes(sizes: np.ndarray) -> np.ndarray:
    """float64 (n, 4): the largest centred box with aspect in `ASPECT_RANGE`."""
    height, width = sizes[:, 0].astype(np.float64), sizes[:, 1].astype(np.float64)
    box_h = np.where(width / height < ASPECT_RANGE[0], np.rint(width / ASPECT_RANGE[0]), height)
    box_w = np.where(width / height > ASPECT_RANGE[1], np.rint(height * ASPECT_RANGE[1]), width)
    top, left = (height - box_h) // 2, (width - box_w) // 2
    return np.stack([top, left, box_h, box_w], axis=-1)


def resized_crop(image: Image.Image, box: Sequence[int], shape: ImageShape) -> Image.Image:
    """The (top, left, height, width) `box` of `image` resized bilinearly to `shape`'s (H, W)."""
    top, left, height, width = (int(n) for n in box)
    corners = (left, top, left + width, top + height)
    return image.resize((shape[1], shape[0]), Image.Resampling.BILINEAR, box=corners)


def padded_crop(pixels: np.ndarray, pad: int, offset: tuple[int, int]) -> np.ndarray:
    """uint8 (H, W, C): the window at `offset` of `pixels` zero-padded by `pad` on each side."""
    height, width = pixels.shape[:2]
    padded = np.pad(pixels, ((pad, pad), (pad, pad), (0, 0)))
    dy, dx = offset
    return padded[dy : dy + height, dx : dx + width]


def crop_and_flip(
    pixels: np.ndarray, pad: int, offsets: np.ndarray, flips: np.ndarray, fill: int = 0
) -> np.ndarray:
    """(B, H, W, C), the dtype of `pixels`: per example the (H, W) window at `offsets` of the
    batch padded by `pad` pixels of value `fill` (0: black; masks pad with their ignore index),
    mirrored where `flips`. (One slice copy per example: faster than one fancy-index gather
    over the batch, which computes an index per pixel.)"""
    count, height, width = pixels.shape[:3]
    if count == 0 or not (pad or flips.any()):
        return pixels
    widths = ((0, 0), (pad, pad), (pad, pad), (0, 0))
    padded = np.pad(pixels, widths, constant_values=fill) if pad else pixels
    out = np.empty_like(pixels)
    for i, ((dy, dx), flip) in enumerate(zip(offsets.tolist(), flips.tolist(), strict=True)):
        window = padded[i, dy : dy + height, dx : dx + width]
        out[i] = window[:, ::-1] if flip else window
    return out


def normalise(pixels: np.ndarray, mean: np.ndarray, std: np.ndarray, out: np.ndarray) -> None:
    """`out` float32 (B, H, W, C) = (pixels / 255 - mean) / std, per channel.

    Computed as pixels * (1 / (255 std)) - mean / std on rows of W * C values, with the
    per-channel constants tiled along the row: NumPy broadcasts a length-C last axis slowly.
    """
    if not out.flags.c_contiguous:
        raise ValueError("normalise writes through a reshaped view: `out` must be contiguous")
    width = pixels.shape[2]
    row = out.reshape(-1, width * len(mean))
    np.multiply(pixels.reshape(row.shape), np.tile(1.0 / (255.0 * std), width), out=row)
    row -= np.tile(mean / std, width)


def _to_pil(pixels: np.ndarray) -> Image.Image:
    return Image.fromarray(pixels[..., 0] if pixels.shape[-1] == 1 else pixels)


@dataclass(frozen=True)
class BatchBuilder:
    """Builds a `Batch` from example indices (-1 marks padding); picklable for worker
    processes."""

    split: ImageSet
    shape: ImageShape
    augment: Augment
    mean: np.ndarray
    std: np.ndarray
    seed: int

    def __call__(self, task: tuple[int, np.ndarray]) -> Batch:
        epoch, indices = task
        real = indices[indices >= 0]
        pixels = self.pixels(epoch, real)
        images = np.zeros((len(indices), *self.shape), dtype=np.float32)
        normalise(pixels, self.mean, self.std, out=images[: len(real)])
        labels = np.zeros(len(indices), dtype=np.int32)
        labels[: len(real)] = self.split.labels[real]
        mask = (np.arange(len(indices)) < len(real)).astype(np.float32)
        return Batch(images, labels, mask)

    def pixels(self, epoch: int, indices: np.ndarray) -> np.ndarray:
        """uint8 (b, H, W, C) of the examples `indices`, augmented for `epoch`."""
        if self.split.images is None:
            return self._file_pixels(epoch, indices)
        return self._memory_pixels(epoch, indices)

    def _memory_pixels(self, epoch: int, indices: np.ndarray) -> np.ndarray:
        """Stored images: one gather, crops resized per example, then batch crop and flip."""
        assert self.split.images is not None
        pixels = self.split.images[indices]
        if not self.augment.active:
            return pixels
        draws = draw_augmentations(self.augment, self.seed, epoch, indices, self.shape[:2])
        if draws.crop_boxes is not None:
            crops = [
                resized_crop(_to_pil(image), box, self.shape)
                for image, box in zip(pixels, draws.crop_boxes, strict=True)
            ]
            pixels = self._stack([self._array(crop) for crop in crops])
        pad = self.augment.random_crop_padding
        return crop_and_flip(pixels, pad, draws.offsets, draws.flips)

    def _file_pixels(self, epoch: int, indices: np.ndarray) -> np.ndarray:
        """Image files: decoded (and resized-cropped) one by one, then batch crop and flip."""
        decoded = [self._from_file(epoch, int(i)) for i in indices]
        pixels = self._stack([image for image, _ in decoded])
        draws = [draw for _, draw in decoded if draw is not None]
        if not draws:
            return pixels
        offsets = np.concatenate([draw.offsets for draw in draws])
        flips = np.concatenate([draw.flips for draw in draws])
        return crop_and_flip(pixels, self.augment.random_crop_padding, offsets, flips)

    def _from_file(self, epoch: int, index: int) -> tuple[np.ndarray, Draws | None]:
        """Example `index` decoded at (H, W) and its draws; a random resized crop cuts the
        full-size image before resizing."""
        image = open_image((self.split.paths or [])[index], self.shape[2])
        draws = None
        if self.augment.active:
            size = (image.height, image.width)
            draws = draw_augmentations(self.augment, self.seed, epoch, np.array([index]), size)
        if draws is not None and draws.crop_boxes is not None:
            image = resized_crop(image, draws.crop_boxes[0], self.shape)
        else:
            image = image.resize((self.shape[1], self.shape[0]), Image.Resampling.BILINEAR)
        return self._array(image), draws

    def _array(self, image: Image.Image) -> np.ndarray:
        return pil_to_array(image, self.shape[2])

    def _stack(self, examples: Sequence[np.ndarray]) -> np.ndarray:
        if not examples:
            return np.zeros((0, *self.shape), dtype=np.uint8)
        return np.stack(examples)


@dataclass(frozen=True)
class _FlatErrors:
    """Wraps a map function so a `SpecError` raised in a worker process reaches the parent
    whole: exceptions cross processes by pickle, which keeps only the message argument."""

    function: Callable[[tuple[int, np.ndarray]], Batch]

    def __call__(self, task: tuple[int, np.ndarray]) -> Batch:
        try:
            return self.function(task)
        except SpecError as error:
            raise SpecError(str(error)) from None


class Pipeline:
    """Batches of one split: shuffled and augmented for training, in order for evaluation."""

    def __init__(
        self,
        split: ImageSet,
        image_shape: Sequence[int],
        batch_size: int,
        *,
        train: bool,
        augment: Augment = Augment(),
        normalize: Normalize | None = None,
        seed: int = 0,
        workers: int = 0,
        shard: tuple[int, int] = (0, 1),
        processes: bool = False,
    ) -> None:
        """`workers` background threads (0: build batches in the calling thread), or with
        `processes` that many spawned worker processes. `normalize` None scales to [0, 1]."""
        shape: ImageShape = (int(image_shape[0]), int(image_shape[1]), int(image_shape[2]))
        _check_arguments(split, shape, batch_size, workers, shard)
        mean, std = (normalize or Normalize((0.0,), (1.0,))).arrays(shape[2])
        self.split = split
        self.shape = shape
        self.batch_size = batch_size
        self.train = train
        self.seed = seed
        self.workers = workers
        self.processes = processes
        self.shard = shard
        self.builder = self.make_builder(split, shape, augment if train else Augment(), mean, std)
        if train and self.steps_per_epoch() == 0:
            raise SpecError(
                f"the training set has {len(split):,} images, fewer than one batch of "
                f"{self._global_batch:,}; use a smaller batch_size or more data",
                field="batch_size",
            )

    def make_builder(
        self,
        split: ImageSet,
        shape: ImageShape,
        augment: Augment,
        mean: np.ndarray,
        std: np.ndarray,
    ) -> Callable[[tuple[int, np.ndarray]], Batch]:
        """The function that turns (epoch, example indices) into a `Batch` (one label per
        image here; `netspec.train.masks.MaskPipeline` builds per-pixel labels)."""
        return BatchBuilder(split, shape, augment, mean, std, self.seed)

    @property
    def _global_batch(self) -> int:
        return self.batch_size * self.shard[1]

    def steps_per_epoch(self) -> int:
        """Train: whole global batches only (the remainder is dropped); eval: every example."""
        if self.train:
            return len(self.split) // self._global_batch
        return -(-len(self.split) // self._global_batch)

    def order(self, epoch: int) -> np.ndarray:
        """int64 (N,): the order examples are visited in during `epoch`."""
        if self.train:
            return epoch_order(self.seed, epoch, len(self.split))
        return np.arange(len(self.split))

    def batch_indices(self, epoch: int, step: int, order: np.ndarray | None = None) -> np.ndarray:
        """int64 (batch_size,): this shard's example indices at `step`, -1 for padding."""
        order = self.order(epoch) if order is None else order
        start = step * self._global_batch + self.shard[0] * self.batch_size
        indices = np.full(self.batch_size, -1, dtype=np.int64)
        chosen = order[start : start + self.batch_size]
        indices[: len(chosen)] = chosen
        return indices

    def epoch(self, epoch: int, start_step: int = 0) -> Iterator[Batch]:
        """Batches `start_step`.. of `epoch`, identical to the same steps of a full pass."""
        steps = self.steps_per_epoch()
        if not 0 <= start_step <= steps:
            raise SpecError(
                f"cannot resume at step {start_step}: an epoch has {steps} steps "
                f"(did batch_size or the data change since the checkpoint?)"
            )
        order = self.order(epoch)
        tasks = [(epoch, self.batch_indices(epoch, s, order)) for s in range(start_step, steps)]
        return self._iterate(tasks)

    def _iterate(self, tasks: list[tuple[int, np.ndarray]]) -> Iterator[Batch]:
        if not tasks:
            return
        dataset = grain.MapDataset.source(tasks)
        if self.processes and self.workers:
            _allow_unparsed_flags()
            batches = dataset.map(_FlatErrors(self.builder)).to_iter_dataset(
                grain.ReadOptions(num_threads=0, prefetch_buffer_size=0)
            )
            batches = batches.mp_prefetch(
                grain.MultiprocessingOptions(num_workers=self.workers, per_worker_buffer_size=2)
            ).map(_owned)
        else:
            buffer = 2 * self.workers
            batches = dataset.map(self.builder).to_iter_dataset(
                grain.ReadOptions(num_threads=self.workers, prefetch_buffer_size=buffer)
            )
        iterator = iter(batches)
        try:
            yield from iterator
        finally:
            iterator.close()


def _owned(batch: Batch) -> Batch:
    """`batch` in ordinary arrays: worker processes hand over shared-memory arrays, whose
    blocks are unlinked only when the array is freed (held to exit, they leak)."""
    return Batch(*(np.array(part) for part in batch))


def _allow_unparsed_flags() -> None:
    """grain's worker processes read absl flags (profiling options), which raises unless the
    program parsed them; outside an absl app, mark them parsed so their defaults apply."""
    from absl import flags

    if not flags.FLAGS.is_parsed():
        flags.FLAGS.mark_as_parsed()


def _check_arguments(
    split: ImageSet, shape: ImageShape, batch_size: int, workers: int, shard: tuple[int, int]
) -> None:
    if batch_size < 1:
        raise SpecError(f"batch_size must be at least 1, got {batch_size}", field="batch_size")
    if workers < 0:
        raise SpecError(f"workers must be >= 0, got {workers}", field="workers")
    index, count = shard
    if count < 1 or not 0 <= index < count:
        raise ValueError(f"shard must be (index, count) with 0 <= index < count, got {shard}")
    if split.images is not None and split.images.shape[1:] != shape:
        raise ValueError(f"images are {split.images.shape[1:]}, the model takes {shape}")
