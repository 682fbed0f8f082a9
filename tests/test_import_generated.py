"""Proof by generation for `netspec import`: random specs (tests/specgen.py, untouched) are
built, exported to ONNX by netspec's exporter, imported back as a layer table, and the table
must agree with the original: the same inference parameters and statistics, the same output
shape, and, with the ONNX file's weights loaded by order, the same outputs on a random batch.
A spec the exporter refuses (a layer without an ONNX form) is skipped, and so is one the
importer refuses with a clear error (counted, and shown when the test fails). The reference is
the original spec's own Flax model, which tests/test_generated_specs.py checks against the
analysis."""

from __future__ import annotations

import numpy as np
import pytest

import netspec
from netspec.compiled import compile_with
from netspec.errors import SpecError
from netspec.graph import INPUT

from .specgen import MAX_PARAMS, Writer

onnx = pytest.importorskip("onnx")

SEEDS = range(300, 330)


def finish(compiled, output: np.ndarray) -> np.ndarray:
    """The network's output: a final softmax row that `__call__` leaves out, applied."""
    if compiled.generated.output_activation != "softmax":
        return output
    exp = np.exp(output - output.max(axis=-1, keepdims=True))
    return exp / exp.sum(axis=-1, keepdims=True)


def round_trip(seed: int, folder) -> str:
    """'agrees', or why the spec was not compared; raises AssertionError on a disagreement."""
    from netspec.export.onnx_model import export_onnx
    from netspec.importers import import_model

    spec = Writer(seed).write()
    try:
        compiled = compile_with(spec.text, spec.overrides, "float32", "float32")
    except SpecError:
        return "rejected by compile"
    if compiled.report.params > MAX_PARAMS:
        return "too big"
    if compiled.report.warnings:  # a row nobody reads: the export leaves it out
        return "has rows nobody reads"
    if compiled.graph.output == INPUT:  # only auxiliary heads: the network is the identity
        return "the identity"
    model = compiled.build(seed=0)
    try:
        proto = export_onnx(compiled, model)
    except SpecError:
        return "not exportable"
    path = folder / f"s{seed}.onnx"
    onnx.save(proto, str(path))
    try:
        imported = import_model(path)
    except SpecError as error:
        return f"import refused: {str(error).splitlines()[0][:160]}"
    ours, theirs = imported.compiled.report, compiled.report
    assert ours.params == imported.graph.source_params, (seed, spec.text, imported.text)
    if not compiled.graph.heads:  # (a row only a head reads is not in the exported file)
        assert ours.params == theirs.inference_params, (seed, spec.text, imported.text)
    assert tuple(ours.output_shape) == tuple(theirs.output_shape), (seed, imported.text)
    reloaded = netspec.load_weights(imported.compiled, path, by="order")
    height, width, channels = compiled.graph.input_shape
    x = np.random.default_rng(seed).normal(size=(2, height, width, channels)).astype(np.float32)
    # the ONNX file computes the original's __call__ (a final softmax row left out); the
    # imported table's network output is its __call__ with its own final softmax row
    expected = np.asarray(model(x)).reshape(2, -1)
    got = finish(imported.compiled, np.asarray(reloaded(x)).reshape(2, -1))
    scale = max(float(np.abs(expected).max()), 1e-6)
    assert float(np.abs(got - expected).max()) / scale < 1e-4, (seed, spec.text, imported.text)
    return "agrees"


def test_generated_specs_survive_export_and_import(tmp_path):
    outcomes = {seed: round_trip(seed, tmp_path) for seed in SEEDS}
    agreeing = [s for s, outcome in outcomes.items() if outcome == "agrees"]
    refused = {s: o for s, o in outcomes.items() if o.startswith("import refused")}
    assert len(agreeing) >= len(SEEDS) // 3, outcomes
    assert not refused, refused
