"""PyTorch weights: a `state_dict` in a .pth/.pt file, a .safetensors file, or a live mapping.

A state_dict names each tensor `<module path>.<tensor>`; the tensors of one module make one
`SourceLayer`, in the file's order (PyTorch's registration order). Kinds come from what a module
holds: running statistics -> batchnorm; a 4-D weight -> conv; a 2-D weight -> dense; a 1-D weight
(and bias) -> norm; any other single tensor (ConvNeXt's `layer_scale`) -> scale.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import SpecError
from .source import SourceLayer, WeightSource

IGNORED_SUFFIXES = ("num_batches_tracked",)
BATCHNORM_ROLES = {"weight": "scale", "bias": "bias", "running_mean": "mean", "running_var": "var"}


def as_array(value: Any) -> np.ndarray:
    """A torch tensor or array-like as float32 NumPy (bfloat16/half tensors included)."""
    if hasattr(value, "detach"):
        value = value.detach().cpu().float().numpy()
    return np.asarray(value, dtype=np.float32)


def from_state_dict(
    state: Mapping[str, Any], description: str, ordered: bool = True
) -> WeightSource:
    """Group a flat `state_dict` into one layer per module."""
    groups: dict[str, dict[str, Any]] = {}
    ignored = []
    for key, value in state.items():
        if not isinstance(key, str) or not hasattr(value, "shape"):
            raise SpecError(f"entry {key!r} is not a named tensor", path=description)
        if key.endswith(IGNORED_SUFFIXES):
            ignored.append(key)
            continue
        module, _, leaf = key.rpartition(".")
        groups.setdefault(module, {})[leaf] = value
    layers = [_layer(module, tensors) for module, tensors in groups.items()]
    return WeightSource(
        description, "torch", "torch", tuple(layers), tuple(ignored), ordered=ordered
    )


def _layer(module: str, tensors: dict[str, Any]) -> SourceLayer:
    def key(leaf: str) -> str:
        return f"{module}.{leaf}" if module else leaf

    if "running_mean" in tensors:
        roles = {BATCHNORM_ROLES[k]: k for k in tensors if k in BATCHNORM_ROLES}
        kind = "batchnorm"
    elif "weight" in tensors and np.ndim(tensors["weight"]) in (2, 4):
        roles = {"kernel": "weight"} | ({"bias": "bias"} if "bias" in tensors else {})
        kind = "conv" if np.ndim(tensors["weight"]) == 4 else "dense"
    elif "weight" in tensors or ("bias" in tensors and len(tensors) == 1):
        roles = {"scale": "weight"} if "weight" in tensors else {}
        roles |= {"bias": "bias"} if "bias" in tensors else {}
        kind = "norm"
    elif len(tensors) == 1:
        roles, kind = {"gamma": next(iter(tensors))}, "scale"
    else:
        roles, kind = {leaf: leaf for leaf in tensors}, "unknown"
    unused = set(tensors) - set(roles.values())
    if unused:
        roles |= {leaf: leaf for leaf in unused}
        kind = "unknown"
    return SourceLayer(
        module or "(top level)",
        kind,
        {role: as_array(tensors[leaf]) for role, leaf in roles.items()},
        {role: key(leaf) for role, leaf in roles.items()},
    )


def read_torch_file(path: Path) -> WeightSource:
    """A .pth/.pt/.bin checkpoint, read with `torch.load(weights_only=True)` (never unpickling
    code). A dict holding the weights under 'state_dict', 'model' or 'model_state_dict' (a
    training checkpoint) is unwrapped."""
    try:
        import torch
    except ImportError:
        raise SpecError(
            "reading a PyTorch checkpoint needs torch (pip install torch), or save the "
            "state_dict as .safetensors, which netspec reads without torch",
            path=str(path),
        ) from None
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # torch raises many types for a bad or unsafe file
        first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise SpecError(f"not a readable PyTorch weights file: {first}", path=str(path)) from None
    return from_state_dict(_unwrap(state, path), f"{path} (PyTorch state_dict)")


def _unwrap(state: Any, path: Path) -> Mapping[str, Any]:
    if hasattr(state, "state_dict") and callable(state.state_dict):
        state = state.state_dict()
    if isinstance(state, Mapping):
        for key in ("state_dict", "model_state_dict", "model"):
            if isinstance(state.get(key), Mapping):
                state = state[key]
                break
    if not isinstance(state, Mapping):
        raise SpecError(
            f"holds a {type(state).__name__}, not a state_dict (a mapping of tensor names to "
            "tensors)",
            path=str(path),
        )
    return state


def read_safetensors(path: Path) -> WeightSource:
    """A .safetensors file, named as a PyTorch state_dict (as Hugging Face and timm save them)."""
    from safetensors import SafetensorError
    from safetensors.numpy import load_file

    try:
        state = load_file(str(path))
    except (SafetensorError, OSError, ValueError) as error:
        raise SpecError(f"not a readable .safetensors file: {error}", path=str(path)) from None
    return from_state_dict(state, f"{path} (safetensors)", ordered=False)
