"""Deterministic training and evaluation batches, built with grain's dataset transformations.

A split's epoch is a `grain.MapDataset` of batches: ``range(batches)`` → ``map(Cut)`` (batch
k's example indices: the epoch's order cut into `batch_size` pieces) → ``slice`` (the shard's
batches) → ``map(BatchBuilder)`` (the whole batch in a few NumPy calls: one gather of the
stored images, or each file decoded; every example's draws at once; resized crops per example;
then padded crop, flip and normalisation over the batch). grain's own ``shuffle`` and
``batch`` are not used: both run per example in Python (about 15 us each an example, against
15 us for all the batch's work), which made in-memory data five times slower. Nothing is
computed until a batch is read, so starting at a step or a shard costs nothing.

Determinism contract (what exact resume relies on):

- Epoch ``e`` has its own seeds (`epoch_seeds`: the run's seed and e, mixed): its order is a
  NumPy permutation of ``0..N-1`` under the first (`epoch_order`), and example ``i``'s draws
  are a counter-based hash of (the second, i, slot) (`example_uniforms`), so they depend on
  nothing else: not the example's position, batch, shard or worker. Eval visits ``0..N-1``.
- So batch ``(e, step)`` is bit-identical whatever `workers`, `start_step`, `shard` or the
  epochs before it; a resume at (epoch, step) slices the epoch's batches there, which does
  not depend on `workers` either.

Sharding convention (multi-process data parallelism): with ``shard=(i, n)`` the global batch is
``n * batch_size`` examples and process ``i`` takes its contiguous slice
``[i * batch_size, (i + 1) * batch_size)`` of every global batch: the epoch cut into
`batch_size` batches, every n-th from the i-th (``[i::n]``, grain's sharding by slice). All
processes see the same number of steps, and the concatenation of the n shards' batches is the
global batch.

Background work: batches are read through ``to_iter_dataset`` with `workers` prefetching threads
(Pillow decoding and NumPy release the GIL), or with ``processes=True`` through ``mp_prefetch``
in `workers` spawned processes.
"""

from __future__ import annotations

import functools
import gc
import math
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

import grain
import numpy as np
from PIL import Image

from ..errors import SpecError
from .datasets import ImageSet, ImageShape, open_reduced, pil_to_array

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


# Slots of an example's uniform draws: 4 per resized-crop attempt, then offset, then flip.
# Fixed positions, so switching one augmentation on or off leaves the others' draws alone.
_CROP_SLOTS = 4 * CROP_ATTEMPTS
_OFFSET_SLOT = _CROP_SLOTS
_FLIP_SLOT = _CROP_SLOTS + 2
DRAW_SLOTS = _CROP_SLOTS + 3


@dataclass(frozen=True)
class Draws:
    """Random augmentation choices of n examples."""

    boxes: np.ndarray | None
    """int64 (n, 4): (top, left, height, width) of the resized crop in source pixels; None
    without one."""
    offsets: np.ndarray
    """int64 (n, 2): (dy, dx) of the (H, W) window in the zero-padded image; (p, p) = no
    shift."""
    flips: np.ndarray
    """bool (n,): mirror left-right."""


def epoch_seeds(seed: int, epoch: int) -> tuple[int, int]:
    """(shuffle seed, augmentation key) of training epoch `epoch`: two unrelated 32-bit values
    from the run's `seed` (any integer; negatives wrap) and the epoch."""
    order, augment = np.random.SeedSequence([seed % 2**64, epoch]).generate_state(2)
    return int(order), int(augment)


def epoch_order(seed: int, epoch: int, count: int) -> np.ndarray:
    """int64 (count,): the training order of epoch `epoch`, a permutation of 0..count-1."""
    return np.random.default_rng(epoch_seeds(seed, epoch)[0]).permutation(count)


def _mix(state: np.ndarray) -> np.ndarray:
    """SplitMix64's finaliser on uint64 arrays (wrapping arithmetic)."""
    state = state + np.uint64(0x9E3779B97F4A7C15)
    state = (state ^ (state >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    state = (state ^ (state >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return state ^ (state >> np.uint64(31))


def example_uniforms(key: int, indices: np.ndarray) -> np.ndarray:
    """float64 (n, DRAW_SLOTS) in [0, 1): each example's draws, a counter-based hash of (`key`,
    example index, slot), so an example's draws depend on nothing else (not its position,
    batch, shard or worker)."""
    base = _mix(np.full(1, key % 2**64, dtype=np.uint64))
    per_example = _mix(base + np.asarray(indices, dtype=np.int64).astype(np.uint64))
    state = _mix(per_example[:, None] + np.arange(DRAW_SLOTS, dtype=np.uint64))
    return (state >> np.uint64(11)).astype(np.float64) * 2.0**-53


def draw_augmentations(augment: Augment, uniforms: np.ndarray, source_hw: np.ndarray) -> Draws:
    """The draws that `uniforms` (n, DRAW_SLOTS) give; `source_hw` int (n, 2) or (2,) is the
    size of the image a resized crop cuts (the decoded file, or the stored array)."""
    count = len(uniforms)
    positions = 2 * augment.random_crop_padding + 1
    offsets = np.floor(uniforms[:, _OFFSET_SLOT : _OFFSET_SLOT + 2] * positions)
    flips = uniforms[:, _FLIP_SLOT] < 0.5 if augment.horizontal_flip else np.zeros(count, bool)
    boxes = None
    if augment.random_resized_crop is not None:
        sizes = np.broadcast_to(np.asarray(source_hw, dtype=np.int64), (count, 2))
        boxes = crop_boxes(uniforms[:, :_CROP_SLOTS], sizes, augment.random_resized_crop)
    return Draws(boxes, offsets.astype(np.int64), flips)


def crop_boxes(uniforms: np.ndarray, sizes: np.ndarray, scale: tuple[float, float]) -> np.ndarray:
    """int64 (n, 4) (top, left, height, width): per example the first of `CROP_ATTEMPTS` boxes
    (area fraction uniform in `scale`, aspect log-uniform in `ASPECT_RANGE`, placed uniformly)
    that fits its (height, width) in `sizes`, else the largest centred box with its aspect
    clamped to that range. `uniforms` is (n, 4 * CROP_ATTEMPTS)."""
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
    chosen = attempts[np.arange(len(u)), np.argmax(fits, axis=1)]
    missed = ~fits.any(axis=1)
    chosen[missed] = _centre_boxes(sizes[missed])
    return chosen.astype(np.int64)


def _centre_boxes(sizes: np.ndarray) -> np.ndarray:
    """float64 (n, 4): the largest centred box with its aspect in `ASPECT_RANGE`."""
    height, width = sizes[:, 0].astype(np.float64), sizes[:, 1].astype(np.float64)
    box_h = np.where(width / height < ASPECT_RANGE[0], np.rint(width / ASPECT_RANGE[0]), height)
    box_w = np.where(width / height > ASPECT_RANGE[1], np.rint(height * ASPECT_RANGE[1]), width)
    return np.stack([(height - box_h) // 2, (width - box_w) // 2, box_h, box_w], axis=-1)


def resized_crop(image: Image.Image, box: Sequence[float], shape: ImageShape) -> Image.Image:
    """The (top, left, height, width) `box` of `image` (pixels; fractions where the image was
    decoded at reduced size) resized bilinearly to `shape`'s (H, W)."""
    top, left, height, width = (float(n) for n in box)
    corners = (left, top, left + width, top + height)
    return image.resize((shape[1], shape[0]), Image.Resampling.BILINEAR, box=corners)


def padded_crop(pixels: np.ndarray, pad: int, offset: Sequence[int]) -> np.ndarray:
    """uint8 (H, W, C): the window at `offset` of `pixels` zero-padded by `pad` on each side."""
    return crop_and_flip(pixels[None], pad, np.array([offset]), np.array([False]))[0]


def crop_and_flip(
    pixels: np.ndarray, pad: int, offsets: np.ndarray, flips: Any, fill: int = 0
) -> np.ndarray:
    """(B, H, W, C), the dtype of `pixels`: per example the (H, W) window at `offsets` of the
    batch padded by `pad` pixels of value `fill` (0: black; masks pad with their ignore index),
    mirrored where `flips`. (One padding of the batch, then one slice copy per example: faster
    than padding each example, or one fancy-index gather, which computes an index per pixel.)"""
    count, height, width = pixels.shape[:3]
    flips = np.asarray(flips, dtype=bool)
    if count == 0 or not (pad or flips.any()):
        return pixels
    widths = ((0, 0), (pad, pad), (pad, pad)) + ((0, 0),) * (pixels.ndim - 3)
    padded = np.pad(pixels, widths, constant_values=fill) if pad else pixels
    out = np.empty_like(pixels)
    pairs = zip(np.asarray(offsets).tolist(), flips.tolist(), strict=True)
    for i, ((dy, dx), flip) in enumerate(pairs):
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


def to_pil(pixels: np.ndarray) -> Image.Image:
    """uint8 (H, W, 1 or 3) as a Pillow "L" or "RGB" image."""
    return Image.fromarray(pixels[..., 0] if pixels.shape[-1] == 1 else pixels)


class Task(NamedTuple):
    """What a batch is built from: grain's element of a split's dataset of batches."""

    indices: np.ndarray
    """int64 (B,): the examples, -1 for padding (only at the end: eval's last batch)."""
    key: int | None
    """The epoch's augmentation key (`example_uniforms`); None: not augmented."""


@dataclass(frozen=True)
class Cut:
    """grain's map from a batch number to its `Task`: batch k is ``order[k * size:][:size]``
    (padded with -1 past the end). Picklable, for worker processes."""

    order: np.ndarray
    size: int
    key: int | None

    def __call__(self, number: int) -> Task:
        start = int(number) * self.size
        indices = np.full(self.size, -1, dtype=np.int64)
        chosen = self.order[start : start + self.size]
        indices[: len(chosen)] = chosen
        return Task(indices, self.key)


@dataclass(frozen=True)
class RunCut:
    """grain's map from a run-wide batch number to its `Task`, for a dataset of many epochs'
    batches: number g is this shard's step ``g % steps`` of epoch ``g // steps``, the same
    `Task` as `Cut` gives for that epoch. Each epoch's order is computed when first needed (a
    worker keeps the last two). Picklable, for worker processes."""

    seed: int
    count: int
    size: int
    steps: int
    shard: tuple[int, int]
    train: bool
    augmented: bool

    def __call__(self, number: int) -> Task:
        epoch, step = divmod(int(number), self.steps)
        order = _train_order(self.seed, epoch, self.count) if self.train else None
        key = epoch_seeds(self.seed, epoch)[1] if self.augmented else None
        cut = Cut(order if order is not None else np.arange(self.count), self.size, key)
        return cut(step * self.shard[1] + self.shard[0])


@functools.lru_cache(maxsize=2)
def _train_order(seed: int, epoch: int, count: int) -> np.ndarray:
    return epoch_order(seed, epoch, count)


@dataclass(frozen=True)
class BatchBuilder:
    """grain's map from a `Task` to its `Batch`: one gather of the stored images (or each file
    decoded), every example's draws at once, resized crops per example, then the padded crops,
    flips and normalisation on the whole batch. Picklable, for worker processes."""

    split: ImageSet
    shape: ImageShape
    augment: Augment
    mean: np.ndarray
    std: np.ndarray

    def __call__(self, task: Task) -> Batch:
        indices = task.indices
        real = indices[indices >= 0]
        pixels = self.pixels(real, task.key)
        images = np.zeros((len(indices), *self.shape), dtype=np.float32)
        normalise(pixels, self.mean, self.std, out=images[: len(real)])
        labels = np.zeros(len(indices), dtype=np.int32)
        labels[: len(real)] = self.split.labels[real]
        return Batch(images, labels, (indices >= 0).astype(np.float32))

    def pixels(self, indices: np.ndarray, key: int | None) -> np.ndarray:
        """uint8 (b, H, W, C) of examples `indices`, augmented with `key`'s draws."""
        pixels, draws = self.read(indices, key)
        if draws is None:
            return pixels
        return crop_and_flip(pixels, self.augment.random_crop_padding, draws.offsets, draws.flips)

    def read(self, indices: np.ndarray, key: int | None) -> tuple[np.ndarray, Draws | None]:
        """uint8 (b, H, W, C) of examples `indices` at the input size, resized-cropped, and
        their draws (None without `key`). Stored images are resized here, a batch at a time,
        when they are not at the input size (CIFAR-10 at 224x224 would otherwise be held at
        that size: 7.5 GB instead of 150 MB)."""
        stored = self.split.images
        if stored is not None:
            pixels = stored[indices]
            at_size = pixels.shape[1:3] == self.shape[:2]
            draws = None if key is None else self.draws(key, indices, pixels.shape[1:3])
            if draws is not None and draws.boxes is not None:
                pixels = self.stack([to_pil(image) for image in pixels], list(draws.boxes))
            elif not at_size:
                pixels = self.stack([to_pil(image) for image in pixels], None)
            return pixels, draws
        paths = self.split.paths or []
        uniforms = None if key is None else example_uniforms(key, indices)
        cropped = uniforms is not None and self.augment.random_resized_crop is not None
        decoded = []
        for row, index in enumerate(indices):
            box_of = functools.partial(self.box, uniforms[row]) if cropped else None
            decoded.append(open_reduced(paths[int(index)], self.shape[2], self.shape[:2], box_of))
        sizes = np.array([file.size for file in decoded], dtype=np.int64).reshape(-1, 2)
        draws = None
        if uniforms is not None:
            draws = draw_augmentations(self.augment, uniforms, sizes)
        boxes = None
        if draws is not None and draws.boxes is not None:
            boxes = [box / file.scale for box, file in zip(draws.boxes, decoded, strict=True)]
        return self.stack([file.image for file in decoded], boxes), draws

    def box(self, uniforms: np.ndarray, size: tuple[int, int]) -> np.ndarray:
        """int64 (4,): the random resized crop (top, left, height, width) that an image of
        upright `size` gets under its draws `uniforms` (DRAW_SLOTS,), as `draw_augmentations`
        gives it (which decides how far the image can be reduced while decoding)."""
        sizes = np.array([size], dtype=np.int64)
        scale = self.augment.random_resized_crop
        assert scale is not None
        return crop_boxes(uniforms[None, :_CROP_SLOTS], sizes, scale)[0]

    def draws(self, key: int, indices: np.ndarray, source_hw: np.ndarray | Sequence[int]) -> Draws:
        """The draws of examples `indices` under `key`."""
        return draw_augmentations(self.augment, example_uniforms(key, indices), source_hw)

    def stack(self, images: list[Image.Image], boxes: list[Any] | None) -> np.ndarray:
        """uint8 (len(images), H, W, C): `images` resized (their (top, left, height, width)
        `boxes`, in the image's pixels, cut) to the input size."""
        height, width, channels = self.shape
        out = np.empty((len(images), *self.shape), dtype=np.uint8)
        for row, image in enumerate(images):
            if boxes is not None:
                image = resized_crop(image, boxes[row], self.shape)
            elif image.size != (width, height):
                image = image.resize((width, height), Image.Resampling.BILINEAR)
            out[row] = pil_to_array(image, channels)
        return out


@dataclass(frozen=True)
class _FlatErrors:
    """Wraps a builder so a `SpecError` raised in a worker process reaches the parent whole:
    exceptions cross processes by pickle, which keeps only the message argument."""

    function: Callable[[Task], Batch]

    def __call__(self, task: Task) -> Batch:
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
        self._stream: _Stream | None = None
        self.augment = augment if train else Augment()
        self.builder = self.make_builder(split, shape, self.augment, mean, std)
        if train and self.steps_per_epoch() == 0:
            raise SpecError(
                f"the training set has {len(split):,} images, fewer than one batch of "
                f"{self._global_batch:,}; use a smaller batch_size or more data",
                field="batch_size",
            )

    def make_builder(
        self, split: Any, shape: ImageShape, augment: Augment, mean: np.ndarray, std: np.ndarray
    ) -> BatchBuilder:
        """What builds a batch from its `Task` (one label per image here;
        `netspec.train.masks.MaskPipeline` builds masks too)."""
        return BatchBuilder(split, shape, augment, mean, std)

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

    def draws(self, epoch: int, indices: np.ndarray, source_hw: Any) -> Draws:
        """The draws examples `indices` get in training epoch `epoch` (for tests and tools);
        `source_hw` (2,) or (n, 2) as in `draw_augmentations`."""
        key = epoch_seeds(self.seed, epoch)[1]
        return self.builder.draws(key, np.asarray(indices), source_hw)

    def batch_indices(self, epoch: int, step: int, order: np.ndarray | None = None) -> np.ndarray:
        """int64 (batch_size,): this shard's example indices at `step`, -1 for padding."""
        order = self.order(epoch) if order is None else order
        cut = Cut(order, self.batch_size, None)
        return cut(step * self.shard[1] + self.shard[0]).indices

    def run_batches(self, epochs: int) -> grain.MapDataset:
        """This shard's batches of epochs 0..`epochs`-1 back to back, as a grain dataset
        (computed when read): batch ``e * steps_per_epoch + k`` is step k of epoch e
        (`RunCut`), each built by one `BatchBuilder` call (grain's map)."""
        builder = self.builder
        if self.processes and self.workers:
            builder = _FlatErrors(builder)
        steps = self.steps_per_epoch()
        cut = RunCut(
            self.seed,
            len(self.split),
            self.batch_size,
            steps,
            self.shard,
            self.train,
            self.augment.active,
        )
        return grain.MapDataset.range(epochs * steps).map(cut).map(builder)

    def batches(self, epoch: int) -> grain.MapDataset:
        """This shard's batches of `epoch`, as a grain dataset (computed when read): the
        epoch's order cut into `batch_size` batches, every n-th from the i-th for shard
        (i, n), each built by one `BatchBuilder` call."""
        return self.run_batches(epoch + 1)[epoch * self.steps_per_epoch() :]

    def keep_workers(self, epochs: int) -> None:
        """Read the batches of the epochs before `epochs` (or, for evaluation, that many
        passes) through one grain iterator, so that worker processes start once per run, not
        once per epoch, and threads prefetch the next epoch's first batches while this one is
        evaluated; `close` stops them. Reading `epoch(e, s)` out of turn starts a new one.
        Without workers there is nothing to keep."""
        self._stream = _Stream(self.run_batches(epochs), self._iterate) if self.workers else None

    @property
    def _spawned(self) -> bool:
        return bool(self.processes and self.workers)

    def close(self) -> None:
        """Stop the workers `keep_workers` kept (nothing to do otherwise)."""
        if self._stream is not None:
            self._stream.close()
            # grain's iterators hold their last shared-memory batches in reference cycles:
            # collected now, their blocks are unlinked before exit rather than reported leaked
            gc.collect()

    def epoch(self, epoch: int, start_step: int = 0) -> Iterator[Batch]:
        """Batches `start_step`.. of `epoch`, identical to the same steps of a full pass."""
        steps = self.steps_per_epoch()
        if not 0 <= start_step <= steps:
            raise SpecError(
                f"cannot resume at step {start_step}: an epoch has {steps} steps "
                f"(did batch_size or the data change since the checkpoint?)"
            )
        if self._stream is not None:
            if self.train:
                return self._stream.take(epoch * steps + start_step, steps - start_step)
            return self._stream.take_pass(steps, start_step)
        return self._iterate(self.batches(epoch)[start_step:])

    def _iterate(self, batches: grain.MapDataset) -> Iterator[Batch]:
        if not len(batches):
            return
        if self._spawned:
            _allow_unparsed_flags()
            read = batches.to_iter_dataset(
                grain.ReadOptions(num_threads=0, prefetch_buffer_size=0)
            ).mp_prefetch(
                grain.MultiprocessingOptions(num_workers=self.workers, per_worker_buffer_size=2)
            )
            read = read.map(_owned)
        else:
            options = grain.ReadOptions(
                num_threads=self.workers, prefetch_buffer_size=2 * self.workers
            )
            read = batches.to_iter_dataset(options)
        iterator = iter(read)
        try:
            yield from iterator
        finally:
            iterator.close()


class _Stream:
    """One long-lived reader of a dataset of many epochs' batches (`Pipeline.keep_workers`):
    it hands out runs of consecutive batches and keeps its iterator (and so grain's worker
    processes) between them; a run that does not start where the last one stopped reopens it
    there."""

    def __init__(
        self, batches: grain.MapDataset, iterate: Callable[[grain.MapDataset], Iterator[Batch]]
    ) -> None:
        self.batches = batches
        self.iterate = iterate
        self.reader: Iterator[Batch] | None = None
        self.position = 0
        """The run-wide number of the batch `reader` gives next."""
        self.passes = 0
        """Evaluation passes completed (`take_pass`)."""

    def take(self, first: int, count: int) -> Iterator[Batch]:
        """Batches `first`.. `first + count - 1` of the dataset (fewer past its end)."""
        if self.reader is None or self.position != first:
            self.close()
            self.reader = self.iterate(self.batches[first:])
            self.position = first
        return self._read(count)

    def take_pass(self, steps: int, start: int) -> Iterator[Batch]:
        """The next evaluation pass's batches from `start` on (every pass is alike: after the
        planned passes it begins again at the first)."""
        planned = len(self.batches) // steps if steps else 0
        if not planned:
            return
        yield from self.take(self.passes % planned * steps + start, steps - start)
        self.passes += 1

    def _read(self, count: int) -> Iterator[Batch]:
        reader = self.reader
        assert reader is not None
        for _ in range(count):
            batch = next(reader, None)
            if batch is None:
                return
            self.position += 1
            yield batch

    def close(self) -> None:
        if self.reader is not None:
            close = getattr(self.reader, "close", None)
            if close is not None:
                close()
            self.reader = None


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
    if split.images is not None and split.images.shape[3:] != shape[2:]:
        raise ValueError(f"images are {split.images.shape[1:]}, the model takes {shape}")
