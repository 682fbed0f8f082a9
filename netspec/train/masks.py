"""Data for per-pixel models: image and mask pairs, the built-in shapes data, batches.

Sources (`is_mask_source`):

- a folder with ``images/`` and ``masks/``: each mask is the PNG in ``masks/`` with its
  image's path and stem (``images/a/x.jpg`` <-> ``masks/a/x.png``); split here into train
  and val at random (seeded, `val_fraction`). Or ``train/`` and ``val/`` (``validation/``,
  ``test/``) folders, each with ``images/`` and ``masks/``.
- ``"shapes"``: circles, squares and triangles on noisy backgrounds, drawn with NumPy at the
  network's input size (`shapes_data`): the default of per-pixel specs, like scikit-learn's
  digits for classifiers.

A mask holds one class index per pixel: a greyscale ("L", or 16-bit "I;16"/"I") PNG whose
values are the classes, or a palette ("P") PNG (VOC style) whose palette indices are. A
pixel equal to the ignore index (training.ignore_index, default 255) counts in neither the
loss nor the metrics; any other value must be below the network's class count K.

Images are resized bilinearly to the network's input, masks with nearest neighbour (then to
the network's output size, when it differs). Augmentation applies the same geometry to both:
the same resized crop box, padded-crop offset and flip (mask padding is the ignore index).
Every problem is a `SpecError` naming the file, found before training starts (`load_masks`).
"""

from __future__ import annotations

import io
import os
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from ..errors import SpecError
from .datasets import (
    IMAGE_SUFFIXES,
    VAL_FOLDER_NAMES,
    ImageShape,
    _describe,
    _slug,
    open_image,
)
from .pipeline import (
    Augment,
    Batch,
    BatchBuilder,
    Draws,
    Pipeline,
    Task,
    crop_and_flip,
    normalise,
    to_pil,
)

SHAPES = "shapes"
"""The `--data` name of the built-in shapes data."""
SHAPE_CLASSES = ["background", "circle", "square", "triangle"]
FEWER_SHAPE_CLASSES = {2: ["background", "shape"], 3: ["background", "circle", "polygon"]}
"""A spec scoring 2 classes learns shape against background (as the U-Net paper's cells);
3: circles against squares and triangles."""
SHAPES_COUNT = 512
SHAPES_SEED = 2024
"""The shapes data is the same in every run (the training seed only splits it)."""
MASK_SUFFIX = ".png"
IMAGES_FOLDER, MASKS_FOLDER = "images", "masks"
PALETTE_ENTRIES = 256


# --------------------------------------------------------------------------- palette


def voc_palette() -> list[int]:
    """The PASCAL VOC colour map, 256 RGB triples flattened (768 ints): class c's colour
    spreads c's bits over the high bits of R, G and B (0 black, 1 dark red, 2 dark green,
    ..., 255 (VOC's "void") cream)."""
    colours = []
    for index in range(PALETTE_ENTRIES):
        red = green = blue = 0
        code = index
        for shift in range(7, -1, -1):
            red |= (code & 1) << shift
            green |= ((code >> 1) & 1) << shift
            blue |= ((code >> 2) & 1) << shift
            code >>= 3
        colours += [red, green, blue]
    return colours


def mask_image(mask: np.ndarray) -> Image.Image:
    """A class-index mask (H, W) as a palette PNG image with the VOC colours (a 16-bit
    greyscale one when an index exceeds 255)."""
    mask = np.asarray(mask)
    if mask.size and (mask.min() < 0 or mask.max() > 65535):
        raise ValueError("class indices must lie in 0..65535")
    if mask.size == 0 or mask.max() < PALETTE_ENTRIES:
        height, width = mask.shape
        image = Image.frombytes("P", (width, height), mask.astype(np.uint8).tobytes())
        image.putpalette(voc_palette())
        return image
    return Image.fromarray(mask.astype(np.uint16))


def png_bytes(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


# --------------------------------------------------------------------------- reading masks

INTEGER_MODES = frozenset({"L", "P", "I", "I;16", "I;16B", "I;16L", "1"})


class UnreadableFile(SpecError):
    """An image or mask file that cannot be decoded (what skip_bad_images leaves out)."""


def read_mask(path: Path) -> np.ndarray:
    """int32 (H, W) class indices of a mask PNG ("L" values, "P" palette indices, 16-bit
    "I;16"/"I" values; EXIF orientation applied). A `SpecError` names the file when it cannot
    be read or does not hold class indices (RGB, greyscale with alpha, negative values)."""
    try:
        with Image.open(path) as image:
            image.load()
            upright = ImageOps.exif_transpose(image)
            mode = upright.mode
            if mode not in INTEGER_MODES:
                raise SpecError(
                    f"a mask holds one class index per pixel (a greyscale 'L' or palette 'P' "
                    f"PNG); this one is {mode}",
                    path=str(path),
                )
            values = np.asarray(upright).astype(np.int32)
    except (UnidentifiedImageError, OSError, ValueError, Image.DecompressionBombError) as error:
        raise UnreadableFile(f"cannot read mask: {_describe(error)}", path=str(path)) from None
    if values.size and values.min() < 0:
        raise SpecError(f"negative class index {int(values.min())} in the mask", path=str(path))
    return values


def image_size(path: Path) -> tuple[int, int]:
    """(width, height) of an image file as `open_image` gives it (EXIF rotation applied),
    decoding it completely; a `SpecError` names the file when it cannot."""
    try:
        with Image.open(path) as image:
            image.load()
            width, height = image.size
            rotated = image.getexif().get(0x0112, 1) in (5, 6, 7, 8)
    except (UnidentifiedImageError, OSError, ValueError, Image.DecompressionBombError) as error:
        raise UnreadableFile(f"cannot read image: {_describe(error)}", path=str(path)) from None
    return (height, width) if rotated else (width, height)


def check_labels(mask: np.ndarray, classes: int, ignore_index: int, where: str) -> None:
    """Every value of `mask` is a class below `classes` or the ignore index."""
    values = np.unique(mask)
    bad = values[(values >= classes) & (values != ignore_index)]
    if bad.size:
        shown = ", ".join(str(int(v)) for v in bad[:5]) + (", ..." if bad.size > 5 else "")
        raise SpecError(
            f"mask label {shown} out of range: the network outputs {classes} classes "
            f"(labels 0..{classes - 1}; {ignore_index} is ignored)",
            path=where,
            hint="give the spec more classes (e.g. --set num_classes=N) or fix the mask; "
            "training.ignore_index sets the label to ignore",
        )


# --------------------------------------------------------------------------- splits


@dataclass
class MaskSet:
    """One split of per-pixel data: in memory, `images` uint8 (N, H, W, C) at the network's
    input size and `masks` int (N, H, W) class indices; or on disk, `paths` (image files) and
    `mask_paths` (their masks), decoded by the pipeline."""

    images: np.ndarray | None = None
    masks: np.ndarray | None = None
    paths: list[Path] | None = None
    mask_paths: list[Path] | None = None

    def __post_init__(self) -> None:
        in_memory = self.images is not None and self.masks is not None
        on_disk = self.paths is not None and self.mask_paths is not None
        if in_memory == on_disk:
            raise ValueError("a MaskSet holds images and masks, or paths and mask_paths")
        pair = (self.images, self.masks) if in_memory else (self.paths, self.mask_paths)
        counts = [len(part) for part in pair if part is not None]
        if counts[0] != counts[1]:
            raise ValueError(f"{counts[0]} images but {counts[1]} masks")

    def __len__(self) -> int:
        return len(self.images) if self.images is not None else len(self.paths or [])

    def subset(self, indices: Sequence[int] | np.ndarray) -> MaskSet:
        chosen = np.asarray(indices, dtype=np.int64)
        if self.images is not None and self.masks is not None:
            return MaskSet(self.images[chosen], self.masks[chosen])
        paths, mask_paths = self.paths or [], self.mask_paths or []
        return MaskSet(paths=[paths[i] for i in chosen], mask_paths=[mask_paths[i] for i in chosen])


@dataclass
class MaskDataset:
    """Both splits of per-pixel data for one network, checked: what `load_masks` gives."""

    train: MaskSet
    val: MaskSet
    class_names: list[str]
    source: str
    """Human description, e.g. "mask folder /data/voc (2,913 images)"."""
    skipped: list[str] = field(default_factory=list)
    """Unreadable pairs left out (with `skip_bad_images`), each "path: reason"."""


def random_split(count: int, val_fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Indices (train, val), each sorted: round(count * val_fraction) at random (seeded) go to
    val, at least one when `val_fraction` > 0 and there are two or more."""
    n_val = round(count * val_fraction)
    if val_fraction > 0 and count > 1:
        n_val = min(max(n_val, 1), count - 1)
    order = np.random.default_rng(seed).permutation(count)
    return np.sort(order[n_val:]), np.sort(order[:n_val])


def class_names_for(classes: int, known: Sequence[str] = ()) -> list[str]:
    """Names of classes 0..K-1: `known` ones first, then the indices as text."""
    return [known[i] if i < len(known) else str(i) for i in range(classes)]


# --------------------------------------------------------------------------- sources


def is_mask_source(source: str | Path | None) -> bool:
    """Whether `source` is per-pixel data: "shapes", or a folder with images/ and masks/
    (directly, or in its train/ folder)."""
    if source is None:
        return False
    if str(source) == SHAPES:
        return True
    path = Path(source).expanduser()
    return (path / MASKS_FOLDER).is_dir() or (path / "train" / MASKS_FOLDER).is_dir()


def _split_folders(folder: Path) -> tuple[Path, Path] | None:
    """(train, val) when `folder` has train/ and val/ (validation/, test/) with masks/."""
    train = folder / "train"
    if not (train / MASKS_FOLDER).is_dir():
        return None
    for name in VAL_FOLDER_NAMES:
        if (folder / name).is_dir():
            return train, folder / name
    return None


def _files(folder: Path, suffixes: frozenset[str]) -> dict[str, Path]:
    """Files under `folder` with one of `suffixes` (hidden ones ignored), by relative path
    without suffix ("a/x" for a/x.png); two files with the same key are an error."""
    found: dict[str, Path] = {}
    for root, dirs, files in os.walk(folder):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for name in sorted(files):
            path = Path(root) / name
            if name.startswith(".") or path.suffix.lower() not in suffixes:
                continue
            key = path.relative_to(folder).with_suffix("").as_posix()
            if key in found:
                raise SpecError(
                    f"two files with the stem {key!r}: {found[key].name} and {name}; "
                    "images and masks are matched by stem",
                    path=str(path),
                )
            found[key] = path
    return found


def read_pairs(folder: Path) -> MaskSet:
    """The (image, mask) pairs of a folder with images/ and masks/, matched by relative path
    and stem; an image without a mask, a mask without an image or a mask that is not a PNG
    is an error naming the file."""
    images_dir, masks_dir = folder / IMAGES_FOLDER, folder / MASKS_FOLDER
    for needed in (images_dir, masks_dir):
        if not needed.is_dir():
            raise SpecError(
                f"a mask folder needs {IMAGES_FOLDER}/ and {MASKS_FOLDER}/ side by side; "
                f"{needed.name}/ is missing",
                path=str(folder),
            )
    images = _files(images_dir, IMAGE_SUFFIXES)
    masks = _files(masks_dir, IMAGE_SUFFIXES)
    for path in masks.values():
        if path.suffix.lower() != MASK_SUFFIX:
            raise SpecError(
                "a mask must be a PNG file (lossless class indices)",
                path=str(path),
                hint=f"save it as {path.with_suffix(MASK_SUFFIX).name}",
            )
    for key, path in images.items():
        if key not in masks:
            raise SpecError(
                f"an image without a mask: no {MASKS_FOLDER}/{key}{MASK_SUFFIX}",
                path=str(path),
                hint=f"add its mask, or move the image out of {IMAGES_FOLDER}/",
            )
    for key, path in masks.items():
        if key not in images:
            raise SpecError(
                f"a mask without an image: no {IMAGES_FOLDER}/{key}.* "
                f"({', '.join(sorted(IMAGE_SUFFIXES))})",
                path=str(path),
            )
    if not images:
        raise SpecError(f"no images in {IMAGES_FOLDER}/", path=str(images_dir))
    keys = sorted(images)
    return MaskSet(paths=[images[k] for k in keys], mask_paths=[masks[k] for k in keys])


def load_masks(
    source: str | Path,
    image_shape: Sequence[int],
    classes: int,
    ignore_index: int,
    *,
    seed: int = 0,
    val_fraction: float = 0.1,
    skip_bad_images: bool = False,
) -> MaskDataset:
    """Both splits of a per-pixel source (see the module docstring) for a network taking
    `image_shape` and scoring `classes` classes per pixel. Every pair of a folder is read
    once (in threads): an unreadable image or mask stops it with the file's name (or with
    `skip_bad_images` is left out and listed); a mask whose size differs from its image's, or
    that holds a label >= `classes` other than `ignore_index`, always stops it."""
    shape = _image_shape(image_shape)
    if str(source) == SHAPES:
        images, masks, known = shapes_for(shape, classes)
        everything = MaskSet(images, masks)
        check_labels(masks, classes, ignore_index, f"the built-in {SHAPES} data")
        train_idx, val_idx = random_split(len(everything), val_fraction, seed)
        names = class_names_for(classes, known)
        description = (
            f"built-in {SHAPES} ({len(everything):,} images of {shape[0]}x{shape[1]}, "
            f"{len(known)} classes: {', '.join(known)})"
        )
        return MaskDataset(
            everything.subset(train_idx), everything.subset(val_idx), names, description
        )
    folder = Path(source).expanduser()
    splits = _split_folders(folder)
    if splits is not None:
        train, val = read_pairs(splits[0]), read_pairs(splits[1])
    else:
        both = read_pairs(folder)
        train_idx, val_idx = random_split(len(both), val_fraction, seed)
        train, val = both.subset(train_idx), both.subset(val_idx)
    skipped: list[str] = []
    train = check_pairs(train, classes, ignore_index, skip_bad_images, skipped)
    val = check_pairs(val, classes, ignore_index, skip_bad_images, skipped)
    if len(train) == 0:
        raise SpecError("no readable image and mask pairs for training", path=str(folder))
    total = len(train) + len(val)
    return MaskDataset(
        train, val, class_names_for(classes), f"mask folder {folder} ({total:,} images)", skipped
    )


def _image_shape(image_shape: Sequence[int]) -> ImageShape:
    if len(image_shape) != 3 or image_shape[2] not in (1, 3) or min(image_shape[:2]) < 1:
        raise SpecError(
            f"the model's input must be images (height, width, channels) with 1 or 3 "
            f"channels to train on image data, got {tuple(image_shape)}"
        )
    return int(image_shape[0]), int(image_shape[1]), int(image_shape[2])


def check_pair(image: Path, mask: Path, classes: int, ignore_index: int) -> None:
    """Raise `UnreadableFile` when either file cannot be decoded, a `SpecError` naming the
    mask when it holds no class indices, its size differs from the image's or a label is out
    of range."""
    size = image_size(image)
    values = read_mask(mask)
    mask_size = (values.shape[1], values.shape[0])
    if mask_size != size:
        raise SpecError(
            f"the mask is {mask_size[0]}x{mask_size[1]} pixels but its image {image.name} is "
            f"{size[0]}x{size[1]}; a mask must have its image's size",
            path=str(mask),
        )
    check_labels(values, classes, ignore_index, str(mask))


def check_pairs(
    pairs: MaskSet, classes: int, ignore_index: int, skip: bool, skipped: list[str]
) -> MaskSet:
    """Read every pair once (in threads): raise on the first bad one, or drop unreadable
    ones with `skip` (listed in `skipped`)."""
    paths, mask_paths = pairs.paths or [], pairs.mask_paths or []

    def check(index: int) -> UnreadableFile | None:
        try:
            check_pair(paths[index], mask_paths[index], classes, ignore_index)
        except UnreadableFile as problem:
            return problem
        return None

    keep = []
    with ThreadPoolExecutor(max_workers=min(32, (os.cpu_count() or 1) * 2)) as pool:
        try:
            for index, problem in enumerate(pool.map(check, range(len(paths)))):
                if problem is None:
                    keep.append(index)
                elif skip:
                    skipped.append(f"{problem.path}: {problem.message}")
                else:
                    raise SpecError(
                        problem.message,
                        path=problem.path,
                        hint="fix or delete the file (and its image or mask), or skip bad "
                        "images to leave such pairs out",
                    )
        except SpecError:
            pool.shutdown(wait=False, cancel_futures=True)
            raise
    return pairs if len(keep) == len(paths) else pairs.subset(keep)


# --------------------------------------------------------------------------- held-out data


@dataclass
class MaskEvalSet:
    """What `netspec eval --data` scores for a per-pixel run (see `datasets.EvalSet`)."""

    pairs: MaskSet
    class_names: list[str]
    description: str
    name: str
    held_out: bool
    skipped: list[str] = field(default_factory=list)


def load_mask_eval_set(
    source: str | Path,
    image_shape: Sequence[int],
    classes: int,
    ignore_index: int,
    *,
    skip_bad_images: bool = False,
) -> MaskEvalSet:
    """Every pair of `source`'s held-out part: a folder's val/ (validation/, test/) when it
    has train/ and val/, else all its pairs; all of the built-in shapes."""
    shape = _image_shape(image_shape)
    if str(source) == SHAPES:
        images, masks, known = shapes_for(shape, classes)
        check_labels(masks, classes, ignore_index, f"the built-in {SHAPES} data")
        description = f"all of the built-in {SHAPES} ({len(images):,} images)"
        names = class_names_for(classes, known)
        return MaskEvalSet(MaskSet(images, masks), names, description, SHAPES, False)
    folder = Path(source).expanduser()
    if not folder.is_dir():
        raise SpecError(
            "no such folder; per-pixel data is a folder with images/ and masks/ (or 'shapes')",
            path=str(folder),
        )
    splits = _split_folders(folder)
    if splits is not None:
        part, held_out = splits[1], True
        description, name = f"{part.name}/ of {folder}/", _slug(folder, part.name)
    else:
        part, held_out = folder, False
        description, name = f"all of {folder}/", _slug(folder)
    skipped: list[str] = []
    pairs = check_pairs(read_pairs(part), classes, ignore_index, skip_bad_images, skipped)
    if len(pairs) == 0:
        raise SpecError("no readable image and mask pairs to evaluate", path=str(part))
    description = f"{description} ({len(pairs):,} images)"
    return MaskEvalSet(pairs, class_names_for(classes), description, name, held_out, skipped)


# --------------------------------------------------------------------------- shapes


def shapes_for(
    image_shape: Sequence[int], classes: int
) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """`shapes_data` for a network scoring `classes` per pixel, and the classes' names: with
    fewer than 4 classes the shapes merge (`FEWER_SHAPE_CLASSES`)."""
    images, masks = shapes_data(image_shape)
    if classes in FEWER_SHAPE_CLASSES:
        return images, np.minimum(masks, classes - 1), FEWER_SHAPE_CLASSES[classes]
    return images, masks, SHAPE_CLASSES


def shapes_data(
    image_shape: Sequence[int], count: int = SHAPES_COUNT, seed: int = SHAPES_SEED
) -> tuple[np.ndarray, np.ndarray]:
    """The built-in per-pixel data: uint8 images (N, H, W, C) and uint8 masks (N, H, W) with
    classes 0 background, 1 circle, 2 square, 3 triangle. Each image has a dark, noisy
    background (a random colour with channels in 0..80, a gentle gradient, Gaussian noise of
    20) and two to four bright shapes (channels in 130..255, noise of 6) of random class,
    size (radius a seventh to two sevenths of the image's side) and place, later shapes over
    earlier ones: brightness tells shape from background, geometry tells the shapes apart.
    Deterministic in (`image_shape`, `count`, `seed`); grey (C = 1) is the luma of RGB."""
    height, width, channels = (int(n) for n in image_shape)
    rng = np.random.default_rng(seed)
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float32) + 0.5
    side = float(min(height, width))
    images = np.empty((count, height, width, 3), dtype=np.uint8)
    masks = np.zeros((count, height, width), dtype=np.uint8)
    for n in range(count):
        slope = rng.normal(0, 15, size=(2, 3))
        canvas = (
            rng.uniform(0, 80, size=3)
            + (ys / height - 0.5)[..., None] * slope[0]
            + (xs / width - 0.5)[..., None] * slope[1]
            + rng.normal(0, 20, size=(height, width, 3))
        )
        for _ in range(int(rng.integers(2, 5))):
            kind = int(rng.integers(1, 4))
            radius = rng.uniform(side / 7, side / 3.5)
            cy, cx = rng.uniform(radius, height - radius), rng.uniform(radius, width - radius)
            inside = _shape_pixels(kind, ys - cy, xs - cx, radius)
            colour = rng.uniform(130, 255, size=3)
            canvas[inside] = colour + rng.normal(0, 6, size=(int(inside.sum()), 3))
            masks[n][inside] = kind
        images[n] = np.clip(canvas, 0, 255).astype(np.uint8)
    if channels == 1:  # luma, as Pillow converts RGB to "L"
        grey = images.astype(np.float32) @ np.array([0.299, 0.587, 0.114], np.float32)
        return np.rint(grey).astype(np.uint8)[..., None], masks
    return images, masks


def _shape_pixels(kind: int, dy: np.ndarray, dx: np.ndarray, radius: float) -> np.ndarray:
    """bool (H, W): the pixels whose centres lie in a circle (1), an axis-aligned square (2)
    or an upright triangle (3) of `radius` around offsets (dy, dx) = 0."""
    if kind == 1:
        return dy**2 + dx**2 <= radius**2
    if kind == 2:
        half = radius * 0.85  # about a circle's area
        return (np.abs(dy) <= half) & (np.abs(dx) <= half)
    # apex at the top, base at the bottom, as wide as it is tall
    depth = (dy + radius) / (2 * radius)
    return (depth >= 0) & (depth <= 1) & (np.abs(dx) <= depth * radius)


# --------------------------------------------------------------------------- batches


def nearest_indices(start: int, length: int, size: int) -> np.ndarray:
    """int64 (size,): for each of `size` output pixels, the source pixel (nearest centre) of
    the `length` pixels from `start`; the same alignment as Pillow's resize of that span."""
    positions = start + np.floor((np.arange(size) + 0.5) * (length / size)).astype(np.int64)
    return np.minimum(positions, start + length - 1)


def nearest_crop(mask: np.ndarray, box: Sequence[int], size: tuple[int, int]) -> np.ndarray:
    """The (top, left, height, width) `box` of `mask` (..., h, w) resized to `size` (H, W)
    with nearest neighbour: the geometry of `pipeline.resized_crop` on the image."""
    top, left, height, width = (int(n) for n in box)
    rows = nearest_indices(top, height, size[0])
    cols = nearest_indices(left, width, size[1])
    return mask[..., rows[:, None], cols[None, :]]


def resize_masks(masks: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """int (..., h, w) -> (..., H, W), nearest neighbour."""
    height, width = masks.shape[-2:]
    if (height, width) == tuple(size):
        return masks
    return nearest_crop(masks, (0, 0, height, width), size)


@dataclass(frozen=True)
class MaskBuilder(BatchBuilder):
    """`BatchBuilder` for per-pixel data: each example's image and mask (int32 (H, W) class
    indices) at the input size, the resized crop cutting both (bilinear image, nearest mask),
    then the padded crops and flips applied to images and masks alike (masks padded with the
    ignore index), images normalised at the input size, labels int32 (B, H', W') at the
    output size `label_shape` (nearest neighbour); padding's labels are all ignore index."""

    label_shape: tuple[int, int] = (1, 1)
    ignore_index: int = 255

    def __call__(self, task: Task) -> Batch:
        indices = task.indices
        real = indices[indices >= 0]
        pixels, masks, draws = self.read_pairs(real, task.key)
        if draws is not None:
            pad, offsets, flips = self.augment.random_crop_padding, draws.offsets, draws.flips
            pixels = crop_and_flip(pixels, pad, offsets, flips)
            masks = crop_and_flip(masks, pad, offsets, flips, fill=self.ignore_index)
        images = np.zeros((len(indices), *self.shape), dtype=np.float32)
        normalise(pixels, self.mean, self.std, out=images[: len(real)])
        labels = np.full((len(indices), *self.label_shape), self.ignore_index, np.int32)
        labels[: len(real)] = resize_masks(masks, self.label_shape)
        return Batch(images, labels, (indices >= 0).astype(np.float32))

    def read_pairs(
        self, indices: np.ndarray, key: int | None
    ) -> tuple[np.ndarray, np.ndarray, Draws | None]:
        """uint8 (b, H, W, C) images and int32 (b, H, W) masks of examples `indices` at the
        input size, resized-cropped, and their draws (None without `key`)."""
        size = self.shape[:2]
        split = self.split
        if split.images is not None and split.masks is not None:
            images = [to_pil(image) for image in split.images[indices]]
            masks = list(split.masks[indices].astype(np.int32))
        else:
            paths, mask_paths = split.paths or [], split.mask_paths or []
            images = [open_image(paths[int(i)], self.shape[2]) for i in indices]
            masks = [read_mask(mask_paths[int(i)]) for i in indices]
            for index, image, mask in zip(indices, images, masks, strict=True):
                if mask.shape != (image.height, image.width):
                    raise SpecError(
                        f"the mask is {mask.shape[1]}x{mask.shape[0]} pixels but its image is "
                        f"{image.width}x{image.height}",
                        path=str(mask_paths[int(index)]),
                    )
        sources = np.array([mask.shape for mask in masks], dtype=np.int64).reshape(-1, 2)
        draws = None if key is None else self.draws(key, indices, sources)
        boxes = draws.boxes if draws is not None else None
        if boxes is None:
            boxes = np.concatenate([np.zeros_like(sources), sources], axis=1)
        pixels = self.stack(images, list(boxes))
        labels = np.empty((len(indices), *size), dtype=np.int32)
        for row, (mask, box) in enumerate(zip(masks, boxes, strict=True)):
            labels[row] = nearest_crop(mask, box, size)
        return pixels, labels, draws


class MaskPipeline(Pipeline):
    """`Pipeline` for per-pixel data: the same order, sharding and augmentation draws, with
    each batch's labels the masks (int32 (B, H', W') at `label_shape`)."""

    def __init__(
        self,
        split: MaskSet,
        image_shape: Sequence[int],
        batch_size: int,
        *,
        label_shape: tuple[int, int],
        ignore_index: int,
        **options: Any,
    ) -> None:
        self.label_shape = (int(label_shape[0]), int(label_shape[1]))
        self.ignore_index = ignore_index
        super().__init__(split, image_shape, batch_size, **options)

    def make_builder(
        self, split: Any, shape: ImageShape, augment: Augment, mean: np.ndarray, std: np.ndarray
    ) -> MaskBuilder:
        return MaskBuilder(split, shape, augment, mean, std, self.label_shape, self.ignore_index)


# --------------------------------------------------------------------------- samples


def save_samples(split: MaskSet, folder: Path, count: int = 4) -> None:
    """A few validation images (`samples/0.png`, to try `netspec predict` on) and their true
    masks as palette PNGs (`samples/masks/0.png`)."""
    import shutil

    (folder / MASKS_FOLDER).mkdir(parents=True, exist_ok=True)
    for index in range(min(count, len(split))):
        if split.images is not None and split.masks is not None:
            to_pil(split.images[index]).save(folder / f"{index}.png")
            mask = split.masks[index]
        else:
            source = (split.paths or [])[index]
            shutil.copyfile(source, folder / f"{index}{source.suffix.lower()}")
            mask = read_mask((split.mask_paths or [])[index])
        mask_image(mask).save(folder / MASKS_FOLDER / f"{index}.png")
