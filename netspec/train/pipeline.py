"""Deterministic training and evaluation batches, built with grain's dataset transformations.

A split is a `grain.MapDataset` of example indices, read by an `ExampleReader` (decode, and
draw the example's augmentation with grain's per-example random generator: `random_map`),
shuffled (`shuffle`, seeded per epoch), cut into batches (`batch`, whose `batch_fn` applies the
padded crops and flips to the whole batch, stacks and normalises) and sharded (`slice`).
Nothing is computed until a batch is read, so starting at a step or a shard costs nothing.

Determinism contract (what exact resume relies on):

- Epoch ``e`` has its own seeds (`epoch_seeds`: the run's seed and e, mixed): its order is
  grain's shuffle of ``0..N-1`` with the first, and example ``i``'s augmentation draws from
  grain's generator for index ``i`` under the second (Philox, counter-based), so it depends on
  nothing else. Eval visits ``0..N-1``.
- So batch ``(e, step)`` is bit-identical whatever `workers`, `start_step`, `shard` or the
  epochs before it; a resume at (epoch, step) slices the epoch's batches there. The
  checkpoint's (epoch, step_in_epoch) is the state grain's own iterator checkpoint would hold
  (``next_index``), and unlike a worker-process iterator's state it does not depend on
  `workers`.

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

import math
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple, TypeVar

import grain
import numpy as np
from PIL import Image

from ..errors import SpecError
from .datasets import ImageSet, ImageShape, open_image, pil_to_array

T = TypeVar("T")

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


class Draw(NamedTuple):
    """One example's random augmentation choices."""

    box: tuple[int, int, int, int] | None
    """(top, left, height, width) of the resized crop in source pixels; None without one."""
    offset: tuple[int, int]
    """(dy, dx) of the (H, W) window in the zero-padded image; (p, p) = no shift."""
    flip: bool
    """Mirror left-right."""


class Example(NamedTuple):
    """One example, read (and resized-cropped), before batching."""

    pixels: np.ndarray
    """uint8 (H, W, C) at the network's input size."""
    label: Any
    """The class index; per-pixel models: int32 (H, W) class indices at the input size."""
    real: bool
    """False for the padding that fills eval's last global batch."""
    draw: Draw | None = None
    """Its augmentation draws; the batch function applies their padded crop and flip to the
    whole batch at once (None: neither)."""


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


def draw(rng: np.random.Generator, augment: Augment, source_hw: Sequence[int]) -> Draw:
    """An example's draws from `rng` (grain's per-example generator); `source_hw` is the size
    of the image a resized crop cuts (the decoded file, or the stored array)."""
    uniforms = rng.random(DRAW_SLOTS).tolist()
    box = None
    if augment.random_resized_crop is not None:
        box = crop_box(uniforms[:_CROP_SLOTS], source_hw, augment.random_resized_crop)
    positions = 2 * augment.random_crop_padding + 1
    offset = (
        int(uniforms[_OFFSET_SLOT] * positions),
        int(uniforms[_OFFSET_SLOT + 1] * positions),
    )
    return Draw(box, offset, augment.horizontal_flip and uniforms[_FLIP_SLOT] < 0.5)


def crop_box(
    uniforms: Sequence[float], source_hw: Sequence[int], scale: tuple[float, float]
) -> tuple[int, int, int, int]:
    """(top, left, height, width): the first of `CROP_ATTEMPTS` boxes (area fraction uniform in
    `scale`, aspect log-uniform in `ASPECT_RANGE`, placed uniformly) that fits an image of
    `source_hw`, else the largest centred box with its aspect clamped to that range. Four
    `uniforms` per attempt."""
    height, width = (int(n) for n in source_hw)
    log_low, log_high = (math.log(r) for r in ASPECT_RANGE)
    for attempt in range(CROP_ATTEMPTS):
        u_area, u_aspect, u_top, u_left = uniforms[4 * attempt : 4 * attempt + 4]
        area = height * width * (scale[0] + (scale[1] - scale[0]) * u_area)
        aspect = math.exp(log_low + (log_high - log_low) * u_aspect)
        box_w, box_h = round(math.sqrt(area * aspect)), round(math.sqrt(area / aspect))
        if 1 <= box_w <= width and 1 <= box_h <= height:
            top = math.floor(u_top * (height - box_h + 1))
            return top, math.floor(u_left * (width - box_w + 1)), box_h, box_w
    box_h = round(width / ASPECT_RANGE[0]) if width / height < ASPECT_RANGE[0] else height
    box_w = round(height * ASPECT_RANGE[1]) if width / height > ASPECT_RANGE[1] else width
    return (height - box_h) // 2, (width - box_w) // 2, box_h, box_w


def resized_crop(image: Image.Image, box: Sequence[int], shape: ImageShape) -> Image.Image:
    """The (top, left, height, width) `box` of `image` resized bilinearly to `shape`'s (H, W)."""
    top, left, height, width = (int(n) for n in box)
    corners = (left, top, left + width, top + height)
    return image.resize((shape[1], shape[0]), Image.Resampling.BILINEAR, box=corners)


def padded_crop(pixels: np.ndarray, pad: int, offset: Sequence[int]) -> np.ndarray:
    """uint8 (H, W, C): the window at `offset` of `pixels` zero-padded by `pad` on each side."""
    return crop_and_flip(pixels[None], pad, np.array([offset]), np.array([False]))[0]


def crop_and_flip(
    pixels: np.ndarray, pad: int, offsets: np.ndarray, flips: np.ndarray, fill: int = 0
) -> np.ndarray:
    """(B, H, W, C), the dtype of `pixels`: per example the (H, W) window at `offsets` of the
    batch padded by `pad` pixels of value `fill` (0: black; masks pad with their ignore index),
    mirrored where `flips`. (One padding of the batch, then one slice copy per example: faster
    than padding each example, or one fancy-index gather, which computes an index per pixel.)"""
    count, height, width = pixels.shape[:3]
    if count == 0 or not (pad or np.any(flips)):
        return pixels
    widths = ((0, 0), (pad, pad), (pad, pad)) + ((0, 0),) * (pixels.ndim - 3)
    padded = np.pad(pixels, widths, constant_values=fill) if pad else pixels
    out = np.empty_like(pixels)
    for i, ((dy, dx), flip) in enumerate(zip(np.asarray(offsets).tolist(), flips, strict=True)):
        window = padded[i, dy : dy + height, dx : dx + width]
        out[i] = window[:, ::-1] if flip else window
    return out


def batch_geometry(
    examples: Sequence[Example], pixels: np.ndarray, pad: int, fill: int = 0
) -> np.ndarray:
    """`crop_and_flip` of the stacked `pixels` of `examples` with their draws (padding and
    unaugmented examples stay where they are)."""
    if all(example.draw is None for example in examples):
        return pixels
    still = Draw(None, (pad, pad), False)
    draws = [example.draw or still for example in examples]
    offsets = np.array([chosen.offset for chosen in draws])
    return crop_and_flip(pixels, pad, offsets, [chosen.flip for chosen in draws], fill)


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


@dataclass(frozen=True)
class ExampleReader:
    """Example `index` of a split at the network's input size, with its draws from `rng`
    (grain's per-example generator; None: not augmented) and their resized crop applied
    (`Collate` applies the padded crop and flip to the batch); an index past the split is
    padding. Picklable, for worker processes."""

    split: ImageSet
    shape: ImageShape
    augment: Augment

    def __call__(self, index: int, rng: np.random.Generator | None = None) -> Example:
        index = int(index)
        if index >= len(self.split):
            return Example(np.zeros(self.shape, np.uint8), 0, False)
        chosen = None
        if self.split.images is None:
            image = open_image((self.split.paths or [])[index], self.shape[2])
            if rng is not None:
                chosen = draw(rng, self.augment, (image.height, image.width))
            if chosen is not None and chosen.box is not None:
                image = resized_crop(image, chosen.box, self.shape)
            else:
                image = image.resize((self.shape[1], self.shape[0]), Image.Resampling.BILINEAR)
            pixels = pil_to_array(image, self.shape[2])
        else:
            pixels = self.split.images[index]
            if rng is not None:
                chosen = draw(rng, self.augment, self.shape[:2])
            if chosen is not None and chosen.box is not None:
                cropped = resized_crop(to_pil(pixels), chosen.box, self.shape)
                pixels = pil_to_array(cropped, self.shape[2])
        return Example(pixels, int(self.split.labels[index]), True, chosen)


@dataclass(frozen=True)
class Collate:
    """grain's `batch_fn`: examples stacked into a `Batch`, their padded crops and flips
    applied, normalised (padding left zero)."""

    shape: ImageShape
    pad: int
    mean: np.ndarray
    std: np.ndarray

    def __call__(self, examples: Sequence[Example]) -> Batch:
        real = np.array([example.real for example in examples])
        pixels = np.stack([example.pixels for example in examples])
        images = np.empty((len(examples), *self.shape), dtype=np.float32)
        normalise(batch_geometry(examples, pixels, self.pad), self.mean, self.std, images)
        images[~real] = 0.0
        labels = np.array([example.label for example in examples], dtype=np.int32)
        return Batch(images, labels, real.astype(np.float32))


@dataclass(frozen=True)
class _FlatErrors:
    """Wraps a reader so a `SpecError` raised in a worker process reaches the parent whole:
    exceptions cross processes by pickle, which keeps only the message argument."""

    function: Callable[..., Example]

    def __call__(self, *args: Any) -> Example:
        try:
            return self.function(*args)
        except SpecError as error:
            raise SpecError(str(error)) from None


def epoch_seeds(seed: int, epoch: int) -> tuple[int, int]:
    """(shuffle seed, augmentation seed) of training epoch `epoch`: two unrelated 32-bit seeds
    (grain's range) from the run's `seed` (any integer; negatives wrap) and the epoch."""
    order, augment = np.random.SeedSequence([seed % 2**64, epoch]).generate_state(2)
    return int(order), int(augment)


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
        self.augment = augment if train else Augment()
        self.reader = self.make_reader(split, shape, self.augment)
        self.collate = self.make_collate(shape, self.augment, mean, std)
        if train and self.steps_per_epoch() == 0:
            raise SpecError(
                f"the training set has {len(split):,} images, fewer than one batch of "
                f"{self._global_batch:,}; use a smaller batch_size or more data",
                field="batch_size",
            )

    def make_reader(
        self, split: ImageSet, shape: ImageShape, augment: Augment
    ) -> Callable[..., Example]:
        """What reads (and augments) one example (one label per image here;
        `netspec.train.masks.MaskPipeline` reads its mask too)."""
        return ExampleReader(split, shape, augment)

    def make_collate(
        self, shape: ImageShape, augment: Augment, mean: np.ndarray, std: np.ndarray
    ) -> Callable[[Sequence[Example]], Batch]:
        """What stacks examples into a `Batch`."""
        return Collate(shape, augment.random_crop_padding, mean, std)

    @property
    def _global_batch(self) -> int:
        return self.batch_size * self.shard[1]

    def steps_per_epoch(self) -> int:
        """Train: whole global batches only (the remainder is dropped); eval: every example."""
        if self.train:
            return len(self.split) // self._global_batch
        return -(-len(self.split) // self._global_batch)

    def _examples(self, epoch: int, function: Callable[..., T], random: bool) -> grain.MapDataset:
        """`function` of each example of training epoch `epoch`, in the epoch's order; with
        `random`, `function(index, generator)` gets the example's own generator."""
        order_seed, augment_seed = epoch_seeds(self.seed, epoch)
        examples = grain.MapDataset.range(len(self.split))
        if random:
            examples = examples.random_map(function, seed=augment_seed)
        else:
            examples = examples.map(function)
        return examples.shuffle(seed=order_seed)

    def epoch_values(
        self, epoch: int, function: Callable[[int, np.random.Generator], T]
    ) -> list[T]:
        """`function(example index, generator)` at each position of training epoch `epoch`,
        with the generator that example's augmentation gets there (for tests and tools)."""
        examples = self._examples(epoch, function, random=True)
        return [examples[position] for position in range(len(examples))]

    def order(self, epoch: int) -> np.ndarray:
        """int64 (N,): the order examples are visited in during `epoch`."""
        if self.train:
            examples = self._examples(epoch, int, random=False)
            return np.array([examples[position] for position in range(len(examples))])
        return np.arange(len(self.split))

    def batch_indices(self, epoch: int, step: int, order: np.ndarray | None = None) -> np.ndarray:
        """int64 (batch_size,): this shard's example indices at `step`, -1 for padding."""
        order = self.order(epoch) if order is None else order
        start = step * self._global_batch + self.shard[0] * self.batch_size
        indices = np.full(self.batch_size, -1, dtype=np.int64)
        chosen = order[start : start + self.batch_size]
        indices[: len(chosen)] = chosen
        return indices

    def batches(self, epoch: int) -> grain.MapDataset:
        """This shard's batches of `epoch`, as a grain dataset (computed when read)."""
        reader = _FlatErrors(self.reader) if self.processes and self.workers else self.reader
        steps = self.steps_per_epoch()
        if self.train:
            stream = self._examples(epoch, reader, random=self.augment.active)
        else:  # in order, padded to whole global batches (the reader pads past the split)
            stream = grain.MapDataset.range(steps * self._global_batch).map(reader)
        index, shards = self.shard
        batches = stream.batch(self.batch_size, drop_remainder=True, batch_fn=self.collate)
        return batches[index::shards][:steps]  # train: whole global batches only

    def epoch(self, epoch: int, start_step: int = 0) -> Iterator[Batch]:
        """Batches `start_step`.. of `epoch`, identical to the same steps of a full pass."""
        steps = self.steps_per_epoch()
        if not 0 <= start_step <= steps:
            raise SpecError(
                f"cannot resume at step {start_step}: an epoch has {steps} steps "
                f"(did batch_size or the data change since the checkpoint?)"
            )
        return self._iterate(self.batches(epoch)[start_step:])

    def _iterate(self, batches: grain.MapDataset) -> Iterator[Batch]:
        if not len(batches):
            return
        if self.processes and self.workers:
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
