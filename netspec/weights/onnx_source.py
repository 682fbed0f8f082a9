"""ONNX weights: an `.onnx` file's initializers, one `SourceLayer` per layer with weights.

The graph is read by the ONNX importer's walk (netspec/importers/onnx_reader.py), so the layers
are exactly the importer's nodes with weights, in the same (graph) order and under the same
names: an ONNX model's weights load into the spec imported from it by execution order. The
layout is PyTorch's (`source.LAYOUTS`): Conv weights are OIHW, ConvTranspose (I, O/g, kh, kw),
dense kernels (out, in) with a flattened input in C, H, W order. What ONNX stores otherwise is
rearranged here: Gemm's transB=0 and MatMul's (in, out) kernels are transposed, Gemm's alpha and
beta multiplied in, and the rows of a dense kernel that reads a tensor flattened channels-last
(a Transpose to NHWC before the Flatten, as netspec's own exports do) are put in C, H, W order,
and so are the per-feature vectors of a batch norm on such a tensor.
Tensors stored beside the file (external data) are read through onnx, which keeps them inside
the model's directory.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from ..importers.onnx_reader import Weights, load, walk
from .source import SourceLayer, WeightSource


def read_onnx(path: Path) -> WeightSource:
    """The weights of the ONNX model at `path` (SpecError if it cannot be read or imported)."""
    from onnx import numpy_helper

    path = Path(path)
    model = load(path, external_data=True)
    _, placed = walk(model, path)

    def value(proto: Any) -> np.ndarray:
        return np.asarray(numpy_helper.to_array(proto), dtype=np.float32)

    layers = tuple(_layer(weights, value) for weights in placed)
    return WeightSource(f"{path} (ONNX)", "onnx", "torch", layers, ordered=True)


def _layer(weights: Weights, value: Callable[[Any], np.ndarray]) -> SourceLayer:
    """One node's tensors in PyTorch's layout, by role."""
    tensors = {role: value(proto) for role, proto in weights.protos.items()}
    for role, factor in weights.factors.items():
        if factor != 1.0:
            tensors[role] = tensors[role] * np.float32(factor)
    if weights.kind == "dense":
        kernel = tensors["kernel"]
        if weights.transposed:
            kernel = kernel.T
        if weights.hwc_rows is not None:  # columns in H, W, C order -> C, H, W
            h, w, c = weights.hwc_rows
            kernel = kernel.reshape(-1, h, w, c).transpose(0, 3, 1, 2).reshape(kernel.shape[0], -1)
        tensors["kernel"] = np.ascontiguousarray(kernel)
        if "bias" in tensors:
            tensors["bias"] = tensors["bias"].reshape(-1)
    if weights.kind == "batchnorm" and weights.hwc_rows is not None:  # per feature: C, H, W
        h, w, c = weights.hwc_rows
        for role, vector in tensors.items():
            tensors[role] = np.ascontiguousarray(vector.reshape(h, w, c).transpose(2, 0, 1).ravel())
    return SourceLayer(weights.node, weights.kind, tensors, dict(weights.tensors))
