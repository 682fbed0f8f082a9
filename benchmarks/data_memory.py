"""Memory of in-memory data at a large model input: CIFAR-10-format data for a 224x224 model.

    python benchmarks/data_memory.py [--images 50000] [--size 224] [--before-rev REV]

Writes CIFAR-10 python batches (`--images` random 32x32 images, 5 training batches and a test
batch of a sixth of them), then in a fresh process per implementation (this tree; with
`--before-rev`, that revision checked out in a temporary git worktree) loads them for a
`--size` x `--size` x 3 model and reads one training batch of 128 and one evaluation batch,
reporting the process's peak resident memory (`ru_maxrss`), the data's own bytes and the time.
"""

from __future__ import annotations

import argparse
import json
import pickle
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent

MEASURE = """
import json, resource, sys, time
from netspec.train.datasets import load_dataset
from netspec.train.pipeline import Augment, Pipeline
source, size = sys.argv[1], int(sys.argv[2])
started = time.perf_counter()
data = load_dataset(source, (size, size, 3))
loaded = time.perf_counter() - started
train = Pipeline(data.train, (size, size, 3), 128, train=True,
                 augment=Augment(random_crop_padding=4, horizontal_flip=True))
batch = next(iter(train.epoch(0)))
assert batch.images.shape == (128, size, size, 3)
val = next(iter(Pipeline(data.val, (size, size, 3), 128, train=False).epoch(0)))
print(json.dumps({
    "data_bytes": int(data.train.images.nbytes + data.val.images.nbytes),
    "peak_rss_bytes": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
    "load_seconds": loaded,
    "first_batches_seconds": time.perf_counter() - started - loaded,
}))
"""


def write_cifar(folder: Path, images: int) -> Path:
    """CIFAR-10 python batches of random images: data_batch_1..5 and test_batch."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    test = images // 6
    parts = np.array_split(np.arange(images - test), 5)
    names = [f"data_batch_{i}" for i in range(1, 6)]
    for name, part in zip([*names, "test_batch"], [*parts, np.arange(test)], strict=True):
        data = rng.integers(0, 256, (len(part), 3072), dtype=np.uint8)
        labels = rng.integers(0, 10, len(part)).tolist()
        with open(folder / name, "wb") as file:
            pickle.dump({b"data": data, b"labels": labels}, file)
    names_meta = [n.encode() for n in ("airplane", "automobile", "bird", "cat", "deer")]
    names_meta += [n.encode() for n in ("dog", "frog", "horse", "ship", "truck")]
    with open(folder / "batches.meta", "wb") as file:
        pickle.dump({b"label_names": names_meta}, file)
    return folder


def measure(tree: Path, source: Path, size: int) -> dict:
    done = subprocess.run(
        [sys.executable, "-c", MEASURE, str(source), str(size)],
        cwd=tree,
        env={"PYTHONPATH": str(tree), "PATH": "/usr/bin:/bin", "JAX_PLATFORMS": "cpu"},
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--images", type=int, default=50_000)
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--before-rev", help="also measure this revision")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        source = write_cifar(Path(tmp) / "cifar-10-batches-py", args.images)
        trees = {"this tree": ROOT}
        if args.before_rev:
            worktree = Path(tmp) / "before"
            subprocess.run(
                ["git", "worktree", "add", "--detach", str(worktree), args.before_rev],
                cwd=ROOT,
                check=True,
                capture_output=True,
            )
            trees = {args.before_rev: worktree, **trees}
        try:
            print("| tree | data held | peak memory | load s | first batches s |")
            print("| --- | --- | --- | --- | --- |")
            for name, tree in trees.items():
                result = measure(tree, source, args.size)
                print(
                    f"| {name} | {result['data_bytes'] / 1e9:.2f} GB | "
                    f"{result['peak_rss_bytes'] / 1e9:.2f} GB | {result['load_seconds']:.1f} | "
                    f"{result['first_batches_seconds']:.2f} |"
                )
        finally:
            if args.before_rev:
                subprocess.run(
                    ["git", "worktree", "remove", "--force", str(Path(tmp) / "before")],
                    cwd=ROOT,
                    check=False,
                )


if __name__ == "__main__":
    main()
