"""`netspec.load_run(path)`: a trained run as a Python object that predicts.

run = netspec.load_run("runs/flowers")
run.classes                      # ['daisy', 'dandelion', ...]
run.predict(["rose.jpg"])        # [{'image': 'rose.jpg', 'top': [{'class': ..., ...}]}]
run.model                        # the flax.nnx.Module with the run's best weights
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .errors import SpecError

if TYPE_CHECKING:
    import numpy as np

PREDICT_BATCH = 32
"""Images per forward pass; the last batch is padded so one compiled program serves all."""
ImageLike = Any
"""A path (str or Path), a PIL image, or uint8 pixels (H, W, C) / (H, W)."""


@dataclass(frozen=True)
class Preprocessing:
    """What an image goes through before the network: resized bilinearly to `input_shape`
    (H, W, C), then `(pixels / 255 - mean) / std` per channel."""

    input_shape: tuple[int, int, int]
    mean: tuple[float, ...]
    std: tuple[float, ...]

    def __call__(self, images: Sequence[ImageLike]) -> np.ndarray:
        """float32 (N, H, W, C) network inputs for `images`."""
        import numpy as np

        pixels = np.stack([self.pixels(image) for image in images]).astype(np.float32)
        mean = np.asarray(self.mean, np.float32)
        std = np.asarray(self.std, np.float32)
        return (pixels / 255.0 - mean) / std

    def pixels(self, image: ImageLike) -> np.ndarray:
        """uint8 (H, W, C) pixels of one image at the network's input size."""
        import numpy as np
        from PIL import Image

        from .train.datasets import decode_image, resize_images

        if isinstance(image, str | Path):
            return decode_image(Path(image), self.input_shape)
        if isinstance(image, Image.Image):
            image = np.asarray(image.convert("L" if self.input_shape[2] == 1 else "RGB"))
        array = np.asarray(image)
        if array.dtype != np.uint8:
            raise SpecError(
                f"expected uint8 pixels (H, W, C), got {array.dtype} of shape {array.shape}",
                hint="pass image files, PIL images or uint8 arrays; the run normalises them",
            )
        return resize_images(array[None], self.input_shape)[0]


class TrainedRun:
    """A run written by `netspec train`: its network with the best checkpoint's weights
    (`model`, in inference mode), its class names and its preprocessing."""

    def __init__(self, path: Path, trained: Any) -> None:
        from flax import nnx

        from .train.use import graphdef_of

        self.path = path
        self._trained = trained
        self.compiled = trained.compiled
        self.classes: list[str] = list(trained.classes)
        self.per_pixel: bool = trained.per_pixel
        self.preprocessing = Preprocessing(
            tuple(int(n) for n in trained.compiled.graph.input_shape),  # type: ignore[arg-type]
            tuple(float(v) for v in trained.normalize.mean),
            tuple(float(v) for v in trained.normalize.std),
        )
        self.model = nnx.merge(graphdef_of(trained.compiled), trained.params, trained.rest)
        self.model.eval()

    def __repr__(self) -> str:
        return (
            f"TrainedRun({str(self.path)!r}, network={self.compiled.name!r}, "
            f"classes={len(self.classes)}, input={self.preprocessing.input_shape})"
        )

    def probabilities(self, images: Iterable[ImageLike]) -> np.ndarray:
        """float32 (N, classes) softmax outputs; per-pixel runs (N, H, W, classes)."""
        import jax
        import numpy as np

        items = list(images)
        outputs = []
        for start in range(0, len(items), PREDICT_BATCH):
            part = items[start : start + PREDICT_BATCH]
            batch = self.preprocessing(part)
            padded = np.zeros((PREDICT_BATCH, *batch.shape[1:]), np.float32)
            padded[: len(part)] = batch
            logits = self._trained.steps.predict(self._trained.params, self._trained.rest, padded)
            outputs.append(np.asarray(jax.nn.softmax(logits.astype("float32"), -1))[: len(part)])
        if not outputs:
            return np.zeros((0, len(self.classes)), np.float32)
        return np.concatenate(outputs).reshape(len(items), *outputs[0].shape[1:])

    def predict(self, images: Iterable[ImageLike], top_k: int = 5) -> list[dict[str, Any]]:
        """For each image, its `top_k` classes (at most all of them) with probabilities:
        `{"image": name, "top": [{"class": ..., "probability": ...}, ...]}`."""
        if self.per_pixel:
            raise SpecError(
                "this run labels every pixel: `netspec predict RUN IMAGE...` writes its masks",
                path=str(self.path),
            )
        items = list(images)
        scores = self.probabilities(items)
        return [
            {"image": _name_of(image, index), "top": self.ranked(row, top_k)}
            for index, (image, row) in enumerate(zip(items, scores, strict=True))
        ]

    def ranked(self, probabilities: np.ndarray, top_k: int) -> list[dict[str, Any]]:
        """The `top_k` most probable classes of one (classes,) vector, best first."""
        import numpy as np

        best = np.argsort(-probabilities, kind="stable")[: max(top_k, 1)]
        return [{"class": self.classes[i], "probability": float(probabilities[i])} for i in best]


def _name_of(image: ImageLike, index: int) -> str:
    return str(image) if isinstance(image, str | Path) else f"#{index}"


def load_run(path: str | Path) -> TrainedRun:
    """The run in `path` (a folder `netspec train` wrote), with its best checkpoint."""
    from .train.use import load_trained

    folder = Path(path)
    if not (folder / "config.json").is_file():
        raise SpecError(
            "is not a training run (no config.json)",
            path=str(folder),
            hint="give a folder written by `netspec train`",
        )
    return TrainedRun(folder, load_trained(folder))
