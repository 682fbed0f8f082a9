"""The training input pipeline alone, implementations side by side: images/s.

    python benchmarks/pipeline_bench.py [--before-rev 4df680b] [--rounds 5]
                                        [--workers 0 2] [--cases cifar folder]
                                        [--extra NAME=FILE ...]

Compares `netspec.train.pipeline` in this tree ("after") with the module as it was at
`--before-rev` ("before", read with `git show` and imported beside it), and with any other
copies of the module given by `--extra` (a saved pipeline.py, imported the same way), on what
`netspec train` would run:

- cifar: in-memory CIFAR-format data, 32x32x3 uint8 (random pixels: the pipeline does not
  look at them), random crop with 4 pixels of padding and horizontal flip, normalised,
  batches of 128;
- folder: an image folder of generated 224x224 JPEGs (smooth colour fields with texture and
  noise, so they decode like photographs), random resized crop (area 0.08-1) and flip,
  normalised, batches of 32.

Each round times `--epochs-per-round` training epochs in a row (a pipeline that keeps its
worker processes for a run starts them once in that time) per (case, workers,
implementation) after one warm-up epoch, the implementations alternating in a rotating
order; the table gives the median round's images/s of each and its ratio to before (the
median of the per-round ratios).
"""

from __future__ import annotations

import argparse
import importlib
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import ModuleType

import numpy as np
from PIL import Image

from netspec.train.datasets import ImageSet, load_dataset

ROOT = Path(__file__).resolve().parent.parent
CIFAR_MEAN, CIFAR_STD = (0.4914, 0.4822, 0.4465), (0.247, 0.243, 0.261)
IMAGENET_MEAN, IMAGENET_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)


def before_module(rev: str, folder: Path) -> ModuleType:
    """`netspec/train/pipeline.py` at `rev`, importable as `pipeline_before` from `folder`."""
    source = subprocess.run(
        ["git", "show", f"{rev}:netspec/train/pipeline.py"],
        cwd=ROOT,
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    return source_module(source, "before", folder)


def source_module(source: str, name: str, folder: Path) -> ModuleType:
    """A copy of `netspec/train/pipeline.py` (its `source`) importable as `pipeline_<name>` from
    `folder` (put on `sys.path`, which spawned worker processes inherit); its relative imports
    made absolute, into this tree's `netspec`."""
    source = source.replace("from ..", "from netspec.").replace("from .", "from netspec.train.")
    (folder / f"pipeline_{name}.py").write_text(source)
    if str(folder) not in sys.path:
        sys.path.insert(0, str(folder))
    return importlib.import_module(f"pipeline_{name}")


def write_jpegs(root: Path, count: int, size: int = 224, classes: int = 5) -> Path:
    """`count` JPEG photos in `classes` class folders under `root`, `size` pixels wide and
    3/4 of that high (224: square, as before)."""
    rng = np.random.default_rng(0)
    height = size if size == 224 else size * 3 // 4
    ys, xs = np.mgrid[0:height, 0:size].astype(np.float32)
    for i in range(count):
        folder = root / f"class_{i % classes}"
        folder.mkdir(parents=True, exist_ok=True)
        phase = rng.uniform(0, 2 * np.pi, size=(3, 2))
        freq = rng.uniform(0.01, 0.1, size=(3, 2))
        channels = [
            127 + 80 * np.sin(xs * freq[c, 0] + phase[c, 0]) * np.cos(ys * freq[c, 1] + phase[c, 1])
            for c in range(3)
        ]
        pixels = np.stack(channels, -1) + rng.normal(0, 12, size=(height, size, 3))
        image = Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8))
        image.save(folder / f"photo_{i:05d}.jpg", quality=90)
    return root


def make_pipeline(
    module: ModuleType, case: str, data: ImageSet, workers: int, processes: bool = False
):
    """The case's training pipeline, built with `module`'s classes; `processes`: `workers`
    worker processes instead of threads."""
    if case == "cifar":
        augment = module.Augment(random_crop_padding=4, horizontal_flip=True)
        normalize = module.Normalize(CIFAR_MEAN, CIFAR_STD)
        shape, batch = (32, 32, 3), 128
    else:
        augment = module.Augment(random_resized_crop=(0.08, 1.0), horizontal_flip=True)
        normalize = module.Normalize(IMAGENET_MEAN, IMAGENET_STD)
        shape, batch = (224, 224, 3), 32
    return module.Pipeline(
        data,
        shape,
        batch,
        train=True,
        augment=augment,
        normalize=normalize,
        workers=workers,
        processes=processes,
    )


def epoch_rate(pipeline, first: int, epochs: int = 1) -> float:
    """Images per second over `epochs` whole training epochs in a row from `first`. A pipeline
    that can keep its worker processes (`keep_workers`) starts them inside the timed region,
    once for the `epochs`, so each round pays one start as the others pay one per epoch."""
    start = time.perf_counter()
    if hasattr(pipeline, "keep_workers"):
        pipeline.close()
        pipeline.keep_workers(first + epochs)
    images = 0
    for epoch in range(first, first + epochs):
        images += sum(len(batch.labels) for batch in pipeline.epoch(epoch))
    return images / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--before-rev", default="4df680b")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--workers", type=int, nargs="+", default=[0, 2])
    parser.add_argument("--cases", nargs="+", default=["cifar", "folder"])
    parser.add_argument("--cifar-images", type=int, default=10_000)
    parser.add_argument("--jpegs", type=int, default=320)
    parser.add_argument(
        "--jpeg-size", type=int, default=224, help="photo width (224: 224x224, else 4:3)"
    )
    parser.add_argument(
        "--processes", action="store_true", help="also time worker processes (workers > 0)"
    )
    parser.add_argument(
        "--epochs-per-round", type=int, default=1, help="epochs timed in a row per round"
    )
    parser.add_argument(
        "--extra",
        nargs="*",
        default=[],
        metavar="NAME=FILE",
        help="also time a saved copy of pipeline.py, under NAME",
    )
    args = parser.parse_args()

    import netspec.train.pipeline as after

    with tempfile.TemporaryDirectory() as tmp:
        modules = {"before": before_module(args.before_rev, Path(tmp))}
        for extra in args.extra:
            name, _, file = extra.partition("=")
            modules[name] = source_module(Path(file).read_text(), name, Path(tmp))
        modules["after"] = after
        data: dict[str, ImageSet] = {}
        if "cifar" in args.cases:
            rng = np.random.default_rng(0)
            images = rng.integers(0, 256, (args.cifar_images, 32, 32, 3), dtype=np.uint8)
            data["cifar"] = ImageSet(images, None, rng.integers(0, 10, args.cifar_images))
        if "folder" in args.cases:
            folder = write_jpegs(Path(tmp) / "photos", args.jpegs, args.jpeg_size)
            data["folder"] = load_dataset(folder, (224, 224, 3), val_fraction=0.0).train
        print(
            f"{os.cpu_count()} CPUs; before = {args.before_rev}; "
            f"cifar {args.cifar_images:,} images, folder {args.jpegs} JPEGs "
            f"{args.jpeg_size} pixels wide"
        )
        keys = [(case, workers) for case in args.cases for workers in args.workers]
        if args.processes:
            keys += [(case, -workers) for case in args.cases for workers in args.workers if workers]
        rates: dict[tuple[str, int, str], list[float]] = {}
        pipelines = {
            (case, workers, name): make_pipeline(
                module, case, data[case], abs(workers), processes=workers < 0
            )
            for case, workers in keys
            for name, module in modules.items()
        }
        for pipeline in pipelines.values():  # warm-up: imports, caches, first decode
            epoch_rate(pipeline, 0)
        names = list(modules)
        for round_ in range(args.rounds):
            shift = round_ % len(names)
            for case, workers in keys:
                for name in names[shift:] + names[:shift]:
                    first = 1 + round_ * args.epochs_per_round
                    rate = epoch_rate(pipelines[case, workers, name], first, args.epochs_per_round)
                    rates.setdefault((case, workers, name), []).append(rate)
            print(f"round {round_ + 1}/{args.rounds} done", file=sys.stderr)
        for pipeline in pipelines.values():
            getattr(pipeline, "close", lambda: None)()

    others = names[1:]
    header = " | ".join(f"{name} images/s | {name} / before" for name in others)
    print(f"\n| case | workers | before images/s | {header} |")
    print("| --- | --- | --- |" + " --- | --- |" * len(others))
    for case, workers in keys:
        cells = [f"{statistics.median(rates[case, workers, 'before']):,.0f}"]
        for name in others:
            ratios = [
                a / b
                for a, b in zip(
                    rates[case, workers, name], rates[case, workers, "before"], strict=True
                )
            ]
            rate = statistics.median(rates[case, workers, name])
            cells += [f"{rate:,.0f}", f"{statistics.median(ratios):.3f}"]
        what = f"{-workers} processes" if workers < 0 else f"{workers} threads" if workers else "0"
        print(f"| {case} | {what} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
