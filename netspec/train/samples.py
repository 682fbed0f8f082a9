"""`samples/`: a few validation images of each class, written at a run's start to try
`netspec predict` on."""

from __future__ import annotations

from pathlib import Path
from typing import Any

SAMPLES = 16
"""About how many validation images `samples/` gets: whole rounds of one image per class."""


SAMPLES_MAX = 32
"""At most this many (with more classes, the first `SAMPLES_MAX` classes have one each)."""


def sample_indices(labels: Any, classes: int) -> list[int]:
    """Validation images for `samples/`, round-robin over the classes in label order: the
    first image of each class, then the second, ... for `max(1, SAMPLES // classes)` rounds
    (at most `SAMPLES_MAX` images; a class with fewer images gives what it has)."""
    import numpy as np

    labels = np.asarray(labels)
    by_class = [np.flatnonzero(labels == label).tolist() for label in range(classes)]
    chosen: list[int] = []
    for round_ in range(max(1, SAMPLES // max(classes, 1))):
        for indices in by_class:
            if round_ < len(indices) and len(chosen) < SAMPLES_MAX:
                chosen.append(indices[round_])
    return chosen


def save_samples(split: Any, class_names: list[str], folder: Path) -> None:
    """A few validation images of each class as files named `<n>_<class>` (`samples/0_cat.png`,
    `samples/1_dog.png`, ...: `sample_indices`' order), to try `netspec predict` on."""
    import re
    import shutil

    from PIL import Image

    folder.mkdir(parents=True, exist_ok=True)
    for number, index in enumerate(sample_indices(split.labels, len(class_names))):
        label = re.sub(r"[^\w.-]+", "_", class_names[int(split.labels[index])]) or "class"
        name = f"{number}_{label}"
        if split.images is not None:
            pixels = split.images[index]
            image = Image.fromarray(pixels[..., 0] if pixels.shape[-1] == 1 else pixels)
            image.save(folder / f"{name}.png")
        else:
            source = Path(split.paths[index])
            shutil.copyfile(source, folder / f"{name}{source.suffix.lower()}")
