"""Models in as layer tables: `netspec import FILE` reads a Caffe prototxt, a Keras model config or
an ONNX file into netspec layer types (`ir.ImportedGraph`, one reader per format) and writes it
as a spec (`writer.write_spec`): activations folded into their layers, branches grouped into
`concat`/`add` rows, repeated modules as blocks, auxiliary heads as `aux` rows, every row's
output size and parameters as expectations. Nothing from the file is run: each reader parses
its format as data.
"""

from __future__ import annotations

import importlib
from pathlib import Path

from ..errors import SpecError
from .ir import ImportedGraph, Node
from .writer import ImportedSpec

READERS = {
    ".prototxt": "caffe_reader",
    ".pbtxt": "caffe_reader",
    ".json": "keras_reader",
    ".keras": "keras_reader",
    ".onnx": "onnx_reader",
}
"""File suffix -> the module of this package whose `read(path) -> ImportedGraph` reads it."""

FORMATS = (
    "a Caffe .prototxt (deploy or train_val), a Keras model config (.json from "
    "model.to_json(), or a .keras archive) or an ONNX model (.onnx)"
)


def read_model(path: str | Path) -> ImportedGraph:
    """The file's network as netspec layer types (SpecError, located, for what cannot be read)."""
    path = Path(path)
    if not path.is_file():
        raise SpecError("no such file", path=str(path))
    module = READERS.get(path.suffix.lower())
    if module is None:
        raise SpecError(f"cannot tell the format from the suffix {path.suffix!r}; give {FORMATS}")
    return importlib.import_module(f".{module}", __name__).read(path)


def import_model(
    path: str | Path, name: str | None = None, weights: str | Path | None = None
) -> ImportedSpec:
    """Read `path`, write it as a layer table and check it (`ImportedSpec.checks` says what was
    checked). `weights`: a weights file for the model (e.g. a Caffe .npy), checked to pair with
    every layer. A format whose file holds weights and a runtime (ONNX with onnxruntime) is also
    run on a random input and compared with the table's model, weights loaded."""
    from .writer import write_spec

    graph = read_model(path)
    spec = write_spec(graph, name)
    reader = importlib.import_module(f".{READERS[Path(path).suffix.lower()]}", __name__)
    check_outputs = getattr(reader, "check_outputs", None)
    if weights is not None:
        spec.checks.append(_check_weights(spec, weights))
    elif check_outputs is not None:
        line = check_outputs(spec, Path(path))
        if line:
            spec.checks.append(line)
    return spec


def _check_weights(spec: ImportedSpec, weights: str | Path) -> str:
    from flax import nnx

    from ..weights import plan_weights

    model = nnx.eval_shape(lambda: spec.compiled.network_class()(rngs=nnx.Rngs(0)))
    plan = plan_weights(spec.compiled, model, weights)
    return f"the weights in {plan.source.description} pair with every layer: {plan.summary()}"


def write_imported(spec: ImportedSpec, out: Path, overwrite: bool = False) -> None:
    """Write the spec text to `out` (atomically; an existing file only with `overwrite`)."""
    from ..fileio import atomic_write_text

    if out.exists() and not overwrite:
        raise SpecError("exists already", path=str(out), hint="pass --overwrite to replace it")
    try:
        atomic_write_text(out, spec.text)
    except OSError as error:
        raise SpecError(f"cannot write it: {error.strerror}", path=str(out)) from None


__all__ = [
    "FORMATS",
    "ImportedGraph",
    "ImportedSpec",
    "Node",
    "import_model",
    "read_model",
    "write_imported",
]
