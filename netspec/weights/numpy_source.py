"""Caffe weights converted to NumPy: a `.npy` file holding a dict from layer name to its blobs.

The format of `bvlc_alexnet.npy` and of caffe-tensorflow's converter: `{"conv1": [weights,
biases], ...}` or `{"conv1": {"weights": ..., "biases": ...}, "bn1": {"mean", "variance",
"scale", "offset"}}`. Such a file is a pickle; it is read with an unpickler that builds only
NumPy arrays, dicts, lists and numbers, so a hostile file cannot run code. Kernels are either in
TensorFlow's layout (HWIO, dense (in, out)) or Caffe's blob layout (OIHW, dense (out, in));
the pairing decides which per file, from its 4-D kernels.
"""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

from ..errors import SpecError
from .source import SourceLayer, WeightSource

SAFE_GLOBALS = {
    ("numpy.core.multiarray", "_reconstruct"),
    ("numpy._core.multiarray", "_reconstruct"),
    ("numpy.core.multiarray", "scalar"),
    ("numpy._core.multiarray", "scalar"),
    ("numpy", "ndarray"),
    ("numpy", "dtype"),
    ("collections", "OrderedDict"),
    ("_codecs", "encode"),
}
"""What a pickled dict of arrays needs, and nothing that can run code."""

ROLES = {
    "weights": "kernel",
    "biases": "bias",
    "weight": "kernel",
    "bias": "bias",
    "mean": "mean",
    "variance": "var",
    "scale": "scale",
    "offset": "bias",
}


class ArraysOnly(pickle.Unpickler):
    """An unpickler that refuses every class but NumPy's arrays and dtypes."""

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) not in SAFE_GLOBALS:
            raise pickle.UnpicklingError(
                f"refusing to load {module}.{name}: a weights file holds only arrays"
            )
        return super().find_class(module, name)


def read_pickled_npy(handle: BinaryIO) -> Any:
    """The object in an object-dtype .npy file, through `ArraysOnly`."""
    version = np.lib.format.read_magic(handle)
    if version == (1, 0):
        _, _, dtype = np.lib.format.read_array_header_1_0(handle)
    else:
        _, _, dtype = np.lib.format.read_array_header_2_0(handle)
    if not dtype.hasobject:
        raise ValueError("it holds one plain array, not a dict of layers")
    value = ArraysOnly(handle, encoding="latin1").load()
    return value.item() if isinstance(value, np.ndarray) and value.shape == () else value


def read_npy(path: Path) -> WeightSource:
    try:
        with path.open("rb") as handle:
            data = read_pickled_npy(handle)
    except (ValueError, pickle.UnpicklingError, EOFError, OSError) as error:
        raise SpecError(f"not a NumPy weights dict: {error}", path=str(path)) from None
    if isinstance(data, np.ndarray) and data.dtype == object and data.size == 1:
        data = data.reshape(()).item()
    if not isinstance(data, dict):
        raise SpecError(
            f"holds a {type(data).__name__}, not a dict from layer name to [weights, biases]",
            path=str(path),
        )
    layers = [_layer(str(name), blobs, path) for name, blobs in data.items()]
    return WeightSource(
        f"{path} (NumPy dict of {len(layers)} layers)",
        "caffe",
        "caffe_or_tf",
        tuple(layers),
    )


def _layer(name: str, blobs: Any, path: Path) -> SourceLayer:
    if isinstance(blobs, dict):
        unknown = [key for key in blobs if key not in ROLES]
        if unknown:
            raise SpecError(
                f"layer {name!r}: unknown entries {unknown} (expected {', '.join(ROLES)})",
                path=str(path),
            )
        tensors = {ROLES[key]: np.asarray(value, np.float32) for key, value in blobs.items()}
        keys = {ROLES[key]: f"{name}[{key!r}]" for key in blobs}
    elif isinstance(blobs, (list, tuple)) and 1 <= len(blobs) <= 2:
        tensors = {"kernel": np.asarray(blobs[0], np.float32)}
        keys = {"kernel": f"{name}[0]"}
        if len(blobs) == 2:
            tensors["bias"], keys["bias"] = np.asarray(blobs[1], np.float32), f"{name}[1]"
    else:
        raise SpecError(
            f"layer {name!r} holds a {type(blobs).__name__}; expected [weights, biases] or a "
            "dict of 'weights', 'biases'",
            path=str(path),
        )
    if "mean" in tensors:
        kind = "batchnorm"
    elif "kernel" in tensors:
        kind = {4: "conv", 2: "dense"}.get(tensors["kernel"].ndim, "unknown")
    else:
        kind = "norm"
    return SourceLayer(name, kind, tensors, keys)
