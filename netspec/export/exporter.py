"""`netspec export`: a run or spec, in eval mode, written as ONNX, StableHLO or a Flax folder.

`export_model(source, format, out)` exports a run written by `netspec train` (its best checkpoint,
normalization and class names) or a spec (untrained: weights from seed 0) and writes
`<out>.json` beside the model (`DIR/metadata.json` for a Flax bundle). Importing this module
imports no JAX; the work happens in `stablehlo`, `flax_bundle` and `onnx_model`.
"""

from __future__ import annotations

import math
import os
import shutil
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from ..errors import SpecError
from ..fileio import atomic_write_bytes, fsync_dir
from .metadata import FORMATS

EXTENSIONS = {"onnx": ".onnx", "stablehlo": ".stablehlo", "flax": "_flax"}
"""Default output: <name><extension> (a folder for flax)."""
EXPORT_FOLDER = "export"
"""A run's exports go to RUN/export/ by default."""
ONNX_TOLERANCE = 1e-4
"""Largest max relative difference onnxruntime may show against the Flax model."""
CHECK_IMAGES = 2
PIP_HINT = 'pip install "netspec[export]"'


@dataclass(frozen=True)
class ExportResult:
    """What `export` wrote: `path` is the model file (the folder for flax), `metadata` the JSON
    beside it, `files` everything written; `check` the onnxruntime comparison, if run."""

    format: str
    path: Path
    metadata: Path
    files: tuple[Path, ...]
    spec: str
    trained: bool
    check: str | None = None
    notes: tuple[str, ...] = field(default_factory=tuple)

    def lines(self) -> list[str]:
        """What `netspec export` prints."""
        if self.format == "flax":
            names = ", ".join(path.name for path in self.files)
            head = f"wrote {self.path}/: {names}"
        else:
            head = f"wrote {self.path} ({_size(self.path)}) and {self.metadata.name}"
        lines = [head]
        if self.check:
            lines.append(self.check)
        lines.extend(self.notes)
        if not self.trained:
            lines.append("untrained: weights from seed 0")
        return lines


@dataclass(frozen=True)
class _Source:
    """A run or a spec, compiled but not yet loaded: enough to name and place the output."""

    compiled: Any
    run_dir: Path | None
    where: str
    mean: tuple[float, ...]
    std: tuple[float, ...]
    variables: dict[str, Any]


def export_model(
    source: str | Path,
    format: str,
    out: Path | None = None,
    *,
    overrides: list[str] | Mapping[str, Any] | None = None,
    overwrite: bool = False,
    check: bool = True,
) -> ExportResult:
    """Export a run directory or a spec (path or zoo name, with `overrides`) as `format`
    ("onnx", "stablehlo" or "flax") to `out` (default: RUN/export/<name>.<ext>, or
    ./<name>.<ext> for a spec; `<name>_flax/` for flax), with its metadata JSON.

    An existing output is refused unless `overwrite`. With `check` and onnxruntime installed,
    the ONNX model is run on random images and compared with the Flax model first; nothing is
    written unless it agrees. Bad input raises `SpecError`, and leaves nothing half-written.
    """
    if format not in FORMATS:
        raise SpecError(f"unknown format {format!r}; one of {', '.join(FORMATS)}", field="--format")
    if format == "onnx":
        _require_onnx()
    found = _find_source(source, overrides)
    target = Path(out) if out is not None else _default_output(found, format)
    planned = _planned_files(found, format, target)
    _check_target(target, format, planned, overwrite)
    model, classes, run = _load_model(found)
    from .metadata import Described

    described = Described(
        spec=found.compiled.name,
        input_shape=tuple(int(n) for n in found.compiled.graph.input_shape),
        output_shape=tuple(int(n) for n in found.compiled.report.output_shape),
        mean=found.mean,
        std=found.std,
        classes=classes,
        output_activation=found.compiled.generated.output_activation,
        run=run,
        source=found.where,
        variables=found.variables,
    )
    writer = {"onnx": _export_onnx, "stablehlo": _export_stablehlo, "flax": _export_flax}[format]
    result = writer(found, model, described, target, check)
    if run is None or run.get("best_epoch") is None:
        return result
    best = f"{run['best_by']} {run[run['best_by']]:.2%}"
    note = f"weights: the best checkpoint of {found.run_dir} (epoch {run['best_epoch']}, {best})"
    return replace(result, notes=(note, *result.notes))


def _require_onnx() -> None:
    try:
        import onnx  # noqa: F401
    except ImportError:
        raise SpecError(
            "--format onnx needs the onnx package, which is not installed",
            hint=f"install it with: {PIP_HINT}",
        ) from None


def _find_source(source: str | Path, overrides: Any) -> _Source:
    """A run directory (it holds config.json) or a spec; compiled, nothing built yet."""
    from ..compiled import compile_with
    from ..train.config import load_training_config, split_overrides
    from ..train.loop import broadcast

    path = Path(source)
    if path.is_dir():
        from ..train.rundir import load_config

        if overrides:
            raise SpecError(
                "--set applies to a spec; a run is exported with the variables it was trained with",
                path=str(path),
            )
        config = load_config(path)
        compiled = compile_with(path / "spec.yaml", config["variables"], config.get("dtype"))
        norm = config["training"]["normalize"]
        variables = dict(config["variables"])
        run_dir: Path | None = path
    else:
        variables, training = split_overrides(overrides or [])
        compiled = compile_with(source, variables)
        norm = load_training_config(compiled.data, None, training).normalize.model_dump()
        run_dir = None
    channels = int(compiled.graph.input_shape[2])
    mean = tuple(float(v) for v in broadcast(list(norm["mean"]), channels))
    std = tuple(float(v) for v in broadcast(list(norm["std"]), channels))
    return _Source(compiled, run_dir, str(source), mean, std, variables)


def _load_model(found: _Source) -> tuple[Any, list[str] | None, dict[str, Any] | None]:
    """(the eval-mode nnx module with its weights, class names, the run's summary)."""
    if found.run_dir is None:
        return found.compiled.build(seed=0), None, None
    from flax import nnx

    from ..train.use import graphdef_of, load_trained
    from .metadata import run_summary

    trained = load_trained(found.run_dir)
    model = nnx.merge(graphdef_of(trained.compiled), trained.params, trained.rest)
    summary = run_summary(found.run_dir, trained.per_pixel, trained.config.get("data"))
    return model, list(trained.classes), summary


# --- where it goes ----------------------------------------------------------------------------


def _default_output(found: _Source, format: str) -> Path:
    from ..pysource import identifier

    name = identifier(found.compiled.name) + EXTENSIONS[format]
    if found.run_dir is not None:
        return found.run_dir / EXPORT_FOLDER / name
    return Path(name)


def _metadata_path(target: Path, format: str) -> Path:
    return target / "metadata.json" if format == "flax" else Path(f"{target}.json")


def _planned_files(found: _Source, format: str, target: Path) -> list[Path]:
    if format != "flax":
        return [target, _metadata_path(target, format)]
    from .flax_bundle import bundle_names

    names = bundle_names(found.compiled.name, found.compiled.generated.network)
    files = (names.source_file, names.loader_file, names.weights_file, "metadata.json")
    return [target / name for name in files]


def _check_target(target: Path, format: str, planned: list[Path], overwrite: bool) -> None:
    """Refuse an output that exists (unless `overwrite`) or cannot be written, before any work."""
    if format == "flax" and target.exists() and not target.is_dir():
        raise SpecError(
            "exists and is not a folder (--format flax writes a folder)", path=str(target)
        )
    for path in planned:
        if path.is_dir():
            raise SpecError("is a folder; give a file name", path=str(path))
        if path.exists() and not overwrite:
            raise SpecError("already exists", path=str(path), hint="add --overwrite to replace it")
    folder = planned[0].parent
    existing = next(p for p in (folder, *folder.parents) if p.exists() or p == p.parent)
    if not existing.is_dir():
        raise SpecError("is not a folder, so nothing can be written under it", path=str(existing))
    if not os.access(existing, os.W_OK | os.X_OK):
        raise SpecError("cannot write here: permission denied", path=str(existing))


def _write_files(folder: Path, files: dict[str, bytes]) -> list[Path]:
    """Write every file or none: a new folder is filled under a temporary name and renamed;
    in an existing one each file is written atomically and new ones removed on failure."""
    written = [folder / name for name in files]
    created: list[Path] = []
    try:
        if not folder.exists():
            folder.parent.mkdir(parents=True, exist_ok=True)
            staging = Path(tempfile.mkdtemp(dir=folder.parent, prefix=f".{folder.name}."))
            try:
                os.chmod(staging, 0o755)
                for name, data in files.items():
                    atomic_write_bytes(staging / name, data)
                os.rename(staging, folder)
            except BaseException:
                shutil.rmtree(staging, ignore_errors=True)
                raise
            fsync_dir(folder.parent)
            return written
        for path, data in zip(written, files.values(), strict=True):
            existed = path.exists()
            atomic_write_bytes(path, data)
            if not existed:
                created.append(path)
    except OSError as error:
        for path in created:
            path.unlink(missing_ok=True)
        raise SpecError(f"cannot write it: {error.strerror or error}", path=str(folder)) from None
    return written


# --- the formats ------------------------------------------------------------------------------


def _flax_logits(model: Any, images: Any) -> Any:
    """The eval-mode model's output for float32 NHWC `images`, as a NumPy array."""
    import jax
    import numpy as np
    from flax import nnx

    graphdef, state = nnx.split(model)
    run = jax.jit(lambda state, x: nnx.merge(graphdef, state, copy=True)(x, train=False))
    return np.asarray(run(state, images))


def _output_dtype(model: Any, input_shape: tuple[int, int, int]) -> str:
    import jax
    import jax.numpy as jnp

    images = jax.ShapeDtypeStruct((1, *input_shape), jnp.float32)
    return str(jax.eval_shape(lambda x: model(x, train=False), images).dtype)


def _finish(
    found: _Source,
    described: Any,
    format: str,
    target: Path,
    model_bytes: bytes,
    output_dtype: str | None,
    extra: dict[str, Any],
    check: str | None = None,
) -> ExportResult:
    """Write a one-file model and `<target>.json` beside it."""
    from .metadata import metadata, metadata_bytes

    meta_path = _metadata_path(target, format)
    data = metadata(described, format, {"model": target.name}, output_dtype, extra)
    meta_bytes = metadata_bytes(data)
    files = _write_files(target.parent, {target.name: model_bytes, meta_path.name: meta_bytes})
    return ExportResult(
        format,
        target,
        meta_path,
        tuple(files),
        found.compiled.name,
        found.run_dir is not None,
        check,
    )


def _export_stablehlo(
    found: _Source, model: Any, described: Any, target: Path, check: bool
) -> ExportResult:
    from .stablehlo import export_stablehlo, serialize

    exported = export_stablehlo(model, described.input_shape)
    dtype = str(exported.out_avals[0].dtype)
    extra = {
        "platforms": list(exported.platforms),
        "load": "jax.export.deserialize(bytearray(data)).call(images)",
    }
    return _finish(found, described, "stablehlo", target, serialize(exported), dtype, extra)


def _export_onnx(
    found: _Source, model: Any, described: Any, target: Path, check: bool
) -> ExportResult:
    try:
        from .onnx_model import export_onnx
    except ImportError as error:
        if (error.name or "").startswith("netspec"):
            raise SpecError(
                "this netspec has no ONNX exporter (netspec/export/onnx_model.py)"
            ) from None
        raise SpecError(
            f"--format onnx needs {error.name or 'onnx'}, which is not installed",
            hint=f"install it with: {PIP_HINT}",
        ) from None
    proto = export_onnx(found.compiled, model)
    try:
        data = proto.SerializeToString()
    except ValueError as error:  # protobuf's 2 GiB limit
        raise SpecError(f"cannot serialize the ONNX model: {error}") from None
    result = _check_in_onnxruntime(data, model, described.input_shape) if check else None
    extra = {"opset": _opset(proto)}
    return _finish(found, described, "onnx", target, data, _onnx_output_dtype(proto), extra, result)


def _onnx_output_dtype(proto: Any) -> str | None:
    try:
        from onnx.helper import tensor_dtype_to_np_dtype

        return str(tensor_dtype_to_np_dtype(proto.graph.output[0].type.tensor_type.elem_type))
    except Exception:  # an unusual output type: the metadata says nothing rather than guess
        return None


def _opset(proto: Any) -> int | None:
    versions = [op.version for op in proto.opset_import if op.domain in ("", "ai.onnx")]
    return int(versions[0]) if versions else None


def relative_difference(got: Any, want: Any) -> float:
    """max |got - want| / max |want|: 0 for equal arrays, inf for other shapes or non-finite."""
    import numpy as np

    got, want = np.asarray(got, np.float64), np.asarray(want, np.float64)
    if got.shape != want.shape or not (np.isfinite(got).all() and np.isfinite(want).all()):
        return math.inf
    return float(np.abs(got - want).max() / max(float(np.abs(want).max()), 1e-30))


def format_difference(value: float) -> str:
    """`3e-07` -> `3e-7`, as people write it."""
    if value == 0 or not math.isfinite(value):
        return str(value if value else 0)
    mantissa, exponent = f"{value:.0e}".split("e")
    return f"{mantissa}e{int(exponent)}"


def _check_in_onnxruntime(data: bytes, model: Any, input_shape: tuple[int, ...]) -> str | None:
    """Run the serialized model in onnxruntime on random images against the Flax model; a
    line saying how close they are, None without onnxruntime. Disagreement is an error."""
    try:
        import onnxruntime
    except ImportError:
        return "onnxruntime is not installed: not checked (pip install onnxruntime)"
    import numpy as np

    images = np.random.default_rng(0).standard_normal((CHECK_IMAGES, *input_shape), np.float32)
    try:
        session = onnxruntime.InferenceSession(data, providers=["CPUExecutionProvider"])
        got = session.run(None, {session.get_inputs()[0].name: images})[0]
    except Exception as error:
        raise SpecError(
            "onnxruntime cannot run the exported model; nothing written: "
            f"{type(error).__name__}: {str(error).splitlines()[0][:300]}"
        ) from None
    difference = relative_difference(got, _flax_logits(model, images))
    if not difference <= ONNX_TOLERANCE:
        raise SpecError(
            f"the ONNX model disagrees with the Flax model in onnxruntime (max relative "
            f"difference {format_difference(difference)} > {ONNX_TOLERANCE:g}); nothing written"
        )
    return f"checked in onnxruntime: max relative difference {format_difference(difference)}"


def _export_flax(
    found: _Source, model: Any, described: Any, target: Path, check: bool
) -> ExportResult:
    from .flax_bundle import bundle_files, bundle_names
    from .metadata import metadata, metadata_bytes

    names = bundle_names(found.compiled.name, found.compiled.generated.network)
    files = bundle_files(found.compiled, model, names)
    usage = f"from {names.loader} import load; model = load()"
    listed = {
        "source": names.source_file,
        "loader": names.loader_file,
        "weights": names.weights_file,
        "network_class": names.network,
    }
    dtype = _output_dtype(model, described.input_shape)
    files["metadata.json"] = metadata_bytes(
        metadata(described, "flax", listed, dtype, {"load": usage})
    )
    written = _write_files(target, files)
    note = f"load it (with {target} on sys.path, or from inside it): {usage}"
    return ExportResult(
        "flax",
        target,
        target / "metadata.json",
        tuple(written),
        found.compiled.name,
        found.run_dir is not None,
        notes=(note,),
    )


def _size(path: Path) -> str:
    size = path.stat().st_size
    for unit in ("bytes", "KB", "MB", "GB"):
        if size < 1000 or unit == "GB":
            return f"{size:,.0f} {unit}" if unit == "bytes" else f"{size:.1f} {unit}"
        size /= 1000
    return f"{size} GB"
