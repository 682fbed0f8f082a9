"""The JSON file every export writes beside its model: what a runtime needs to feed it and read
its output (input shape and layout, the normalization training used, class names)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

FORMATS = ("onnx", "stablehlo", "flax")


@dataclass(frozen=True)
class Described:
    """What the metadata says about one exported network, however it was exported.

    `input_shape` is (H, W, C); `output_shape` the analysis's (H, W, K), (1, 1, K) for a
    classifier; `mean` / `std` one float per input channel, on pixel values scaled to 0–1.
    """

    spec: str
    input_shape: tuple[int, int, int]
    output_shape: tuple[int, int, int]
    mean: tuple[float, ...]
    std: tuple[float, ...]
    classes: list[str] | None
    output_activation: str | None
    run: dict[str, Any] | None
    """A trained run: its path, best epoch and validation metrics; None for a spec."""
    source: str
    """The run directory or the spec (path or zoo name) that was exported."""
    variables: dict[str, Any]

    @property
    def per_pixel(self) -> bool:
        """The network scores every pixel: its output is (H, W, K) with (H, W) not (1, 1)."""
        return tuple(self.output_shape[:2]) != (1, 1)


def metadata(
    described: Described,
    format: str,
    files: dict[str, str],
    output_dtype: str | None,
    extra: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The metadata as a JSON-ready dict. `files` names the exported files (relative to the
    metadata file's folder); `output_dtype` is the model output's; `extra` adds
    format-specific fields (platforms, how to load it)."""
    from .. import __version__

    height, width, channels = described.input_shape
    out_h, out_w, classes = described.output_shape
    mean_255 = [round(v * 255.0, 6) for v in described.mean]
    std_255 = [round(v * 255.0, 6) for v in described.std]
    colour = "RGB" if channels == 3 else "greyscale" if channels == 1 else f"{channels} channels"
    shape: list[int | None] = (
        [None, out_h, out_w, classes] if described.per_pixel else [None, classes]
    )
    data: dict[str, Any] = {
        "format": format,
        "files": files,
        "spec": described.spec,
        "netspec_version": __version__,
        "source": described.source,
        "trained": described.run is not None,
        "weights": "the run's best checkpoint"
        if described.run is not None
        else "untrained: weights from seed 0",
        "variables": described.variables,
        "input": {
            **({"name": "images"} if format == "onnx" else {}),
            "shape": [height, width, channels],
            "layout": "NHWC",
            "dtype": "float32",
            "batch": "dynamic",
            "colour": colour,
            "prepare": _prepare_text(described, colour),
        },
        "normalization": {
            "pixels": "0-1",
            "mean": [float(v) for v in described.mean],
            "std": [float(v) for v in described.std],
            "mean_255": mean_255,
            "std_255": std_255,
            "formula": "x = (pixels / 255 - mean) / std = (pixels - mean_255) / std_255, "
            "per channel, pixels the 8-bit values 0-255",
        },
        "output": {
            "kind": "per_pixel_logits" if described.per_pixel else "logits",
            "shape": shape,
            "classes": described.classes,
            "num_classes": classes,
            "dtype": output_dtype,
            "activation": described.output_activation,
            "probabilities": "softmax over the last axis",
        },
    }
    if described.run is not None:
        data["run"] = described.run
    data.update(extra or {})
    return data


def _prepare_text(described: Described, colour: str) -> str:
    """How one image becomes the network's input, in words (the training pipeline's steps)."""
    height, width, _ = described.input_shape
    converted = {
        "RGB": "convert it to RGB (Pillow 'RGB', channels in R, G, B order)",
        "greyscale": "convert it to greyscale (Pillow 'L': 0.299 R + 0.587 G + 0.114 B)",
    }.get(colour, "keep its channels as stored")
    return (
        f"decode the image, {converted}, resize it to {width}x{height} (width x height) "
        "bilinearly, take its 8-bit values 0-255 as float32, divide by 255, subtract `mean` "
        "and divide by `std` per channel; stack images on a leading batch axis (N, "
        f"{height}, {width}, {described.input_shape[2]})"
    )


def best_epoch(records: Sequence[dict[str, Any]], key: str) -> dict[str, Any] | None:
    """The first record with the highest `key` (training keeps the first of equal bests)."""
    scored = [r for r in records if isinstance(r.get(key), int | float)]
    if not scored:
        return None
    return max(scored, key=lambda r: (r[key], -r["epoch"]))


def run_summary(run_dir: Path, per_pixel: bool, data: str | None) -> dict[str, Any]:
    """A run's best epoch and its validation metrics, from its `metrics.jsonl`."""
    from ..train.artifacts import MetricsLog

    records = MetricsLog(run_dir / "metrics.jsonl").read()
    key = "val_miou" if per_pixel else "val_acc"
    best = best_epoch(records, key)
    summary: dict[str, Any] = {
        "path": str(run_dir),
        "data": data or ("shapes" if per_pixel else "digits"),
        "epochs": max((r["epoch"] for r in records), default=0),
        "best_by": key,
        "best_epoch": best["epoch"] if best else None,
    }
    names = ("val_acc", "val_loss", "val_top5", "val_miou")
    summary.update({name: best[name] for name in names if best and name in best})
    if per_pixel and "val_acc" in summary:
        summary["val_pixel_accuracy"] = summary["val_acc"]
    return summary


def metadata_bytes(data: dict[str, Any]) -> bytes:
    """The metadata file's contents: indented UTF-8 JSON (written with the model, atomically)."""
    return (json.dumps(data, indent=2, ensure_ascii=False) + "\n").encode("utf-8")
