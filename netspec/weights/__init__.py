"""Weights in: load a PyTorch, Keras, ONNX, Caffe-converted or netspec model's weights into a spec.

`load_weights(compiled, source)` builds the model (or takes `model=`), pairs every layer with
variables with the source's (`plan.make_plan`) and sets them; `plan_weights` returns the plan
without loading (the `--dry-run` table).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ..compiled import Compiled
from ..errors import SpecError
from .maps import name_map
from .plan import LoadPlan, make_plan
from .source import SourceLayer, WeightSource
from .targets import target_layers

FORMATS = (
    "a PyTorch state_dict (.pth, .pt, .bin), a .safetensors file, a Keras .weights.h5 or "
    ".keras file, an ONNX model (.onnx), a Caffe-converted .npy dict, or a netspec run directory"
)
PAIRINGS = ("auto", "name", "order")


def read_source(source: Any) -> WeightSource:
    """A WeightSource from a path (by its suffix; a directory is a netspec run), a state_dict
    mapping, a torch module or a Keras model."""
    if isinstance(source, WeightSource):
        return source
    if isinstance(source, Mapping):
        from .torch_source import from_state_dict

        return from_state_dict(source, f"state_dict of {len(source)} tensors")
    if hasattr(source, "layers") and hasattr(source, "get_weights"):  # before state_dict:
        from .keras_source import from_keras_model  # Keras on torch is a torch module too

        return from_keras_model(source)
    if hasattr(source, "state_dict") and callable(source.state_dict):
        from .torch_source import from_state_dict

        return from_state_dict(source.state_dict(), f"{type(source).__name__} (torch module)")
    if not isinstance(source, (str, Path)):
        raise SpecError(f"cannot read weights from a {type(source).__name__}; give {FORMATS}")
    return read_path(Path(source))


def read_path(path: Path) -> WeightSource:
    from .run_source import is_run_dir, read_run

    if not path.exists():
        raise SpecError("no such file or directory", path=str(path))
    if path.is_dir():
        if not is_run_dir(path):
            raise SpecError(
                "is a directory but not a netspec run (no config.json and spec.yaml)",
                path=str(path),
            )
        return read_run(path)
    suffix = path.suffix.lower()
    if suffix in (".pth", ".pt", ".bin", ".ckpt"):
        from .torch_source import read_torch_file

        return read_torch_file(path)
    if suffix == ".safetensors":
        from .torch_source import read_safetensors

        return read_safetensors(path)
    if suffix == ".npy":
        from .numpy_source import read_npy

        return read_npy(path)
    if suffix in (".h5", ".keras", ".hdf5"):
        from .keras_source import read_keras_file

        return read_keras_file(path)
    if suffix == ".onnx":
        from .onnx_source import read_onnx

        return read_onnx(path)
    raise SpecError(
        f"unknown weights format {suffix or '(no suffix)'!r}; give {FORMATS}", path=str(path)
    )


def plan_weights(compiled: Compiled, model: Any, source: Any, by: str = "auto") -> LoadPlan:
    """Where each of `model`'s variables would come from in `source` (nothing is loaded).

    `by`: "name" (a name map for this spec and framework, or a source named by netspec's own
    nodes), "order" (execution order and shape), "auto" (name where known, else order)."""
    if by not in PAIRINGS:
        raise SpecError(f"pairing must be one of {', '.join(PAIRINGS)}, got {by!r}")
    weights = read_source(source)
    targets = target_layers(compiled, model)
    known = name_map(compiled.name, weights.framework)
    if by != "order" and weights.names_are_rows:
        names = {t.name: t.name for t in targets}
        return make_plan(targets, weights, names, "by name (netspec's node names)")
    if by != "order" and weights.framework == "caffe" and _named_like(targets, weights):
        return make_plan(targets, weights, _rows_to_layers(targets, weights), "by row name")
    if by != "order" and known is not None:
        pairing = f"by name ({known.model} map for {known.spec})"
        return make_plan(targets, weights, known.layers, pairing)
    if by == "name":
        raise SpecError(
            f"netspec has no {weights.framework} name map for {compiled.name!r} and the source's "
            "names are not the spec's rows",
            hint="pair by execution order and shape instead (--init-by order)",
        )
    return make_plan(targets, weights, None, "by execution order and shape")


def _rows_to_layers(targets: list, weights: WeightSource) -> dict[str, str]:
    """netspec node -> source layer, where each source layer is named by a node or its row."""
    names = {layer.name for layer in weights.layers}
    return {
        t.name: t.name if t.name in names else t.name.split("/")[0]
        for t in targets
        if t.name in names or t.name.split("/")[0] in names
    }


def _named_like(targets: list, weights: WeightSource) -> bool:
    """Every source layer is named after a netspec node or a row holding one layer."""
    rows: dict[str, int] = {}
    for t in targets:
        rows[t.name.split("/")[0]] = rows.get(t.name.split("/")[0], 0) + 1
    nodes = {t.name for t in targets}
    return all(
        layer.name in nodes or rows.get(layer.name) == 1 for layer in weights.layers
    ) and bool(weights.layers)


def load_weights(
    compiled: Compiled, source: Any, *, model: Any = None, by: str = "auto", seed: int = 0
) -> Any:
    """`model` (default: `compiled.build(seed)`) with every layer's variables from `source`
    (see `read_source` for what it may be); raises SpecError and loads nothing if any tensor
    is left over, missing or mismatched."""
    model = compiled.build(seed=seed) if model is None else model
    plan_weights(compiled, model, source, by).apply()
    return model


__all__ = [
    "FORMATS",
    "LoadPlan",
    "SourceLayer",
    "WeightSource",
    "load_weights",
    "plan_weights",
    "read_source",
]
