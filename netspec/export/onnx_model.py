"""`export_onnx`: a compiled spec and its built model as a standard ONNX model.

The ONNX graph is written from netspec's Graph node by node (netspec/export/onnx_ops.py has one
converter per layer type), with the weights of the built `nnx.Module`. Its input `images` is
float32 NHWC `(batch, H, W, C)`, as the Flax model takes it (batch dynamic); one Transpose
makes it NCHW, the layout of ONNX's standard operators, inside. Its output `logits` is what
`model(images, train=False)` returns: `(batch, K)` for a classifier (a final softmax row is
left out, as `__call__` leaves it), `(batch, H', W', K)` for a per-pixel network. Train-only
rows (auxiliary heads) and rows the output does not depend on are not exported.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import onnx
from onnx import TensorProto, helper

from ..compiled import Compiled
from ..errors import SpecError
from ..graph import INPUT, Node
from ..layers import REGISTRY
from .onnx_ops import Call, ExportError, OnnxGraph, Value, converter_for, exportable_types

MIN_OPSET = 17
"""The oldest opset written: LayerNormalization is new in 17."""


def export_onnx(compiled: Compiled, model: Any, *, opset: int = 17) -> onnx.ModelProto:
    """The eval-mode network as an ONNX model of the default domain's `opset` (17 or newer:
    newer ones use Gelu and Mish ops where 17 spells them out), checked by
    `onnx.checker.check_model(full_check=True)`. A row without an ONNX form raises a SpecError
    located at it."""
    newest = onnx.defs.onnx_opset_version()
    if not MIN_OPSET <= opset <= newest:
        raise ValueError(f"opset must be {MIN_OPSET} to {newest} (this onnx package), got {opset}")
    proto = empty_model(compiled, opset)
    graph = OnnxGraph(proto.graph, opset, flat_parameters(model))
    graph.reserve("images")
    graph.reserve("logits")
    nchw = graph.add("Transpose", ["images"], "images/nchw", perm=[0, 3, 1, 2])
    values = {INPUT: Value(nchw, compiled.graph.input_shape)}
    output = inference_output(compiled)
    shapes = {n.name: tuple(n.output_shape) for n in compiled.report.nodes}
    needed = needed_nodes(compiled, output)
    for node in compiled.graph.nodes:
        if node.name in needed:
            values[node.name] = convert(graph, node, [values[i] for i in node.inputs], shapes)
    graph.doc = ""
    graph.proto.output.append(network_output(graph, values[output]))
    helper.set_model_props(proto, model_properties(compiled))
    onnx.checker.check_model(proto, full_check=True)
    return proto


def empty_model(compiled: Compiled, opset: int) -> onnx.ModelProto:
    """A model with its header (producer, opset, the oldest IR version that has it, doc string)
    and the graph's input `images`, float32 NHWC `(batch, H, W, C)`; no nodes yet."""
    proto = onnx.ModelProto(
        producer_name="netspec", producer_version=netspec_version(), doc_string=describe(compiled)
    )
    proto.opset_import.append(helper.make_opsetid("", opset))
    proto.ir_version = helper.find_min_ir_version_for(list(proto.opset_import))
    proto.graph.name = compiled.name
    h, w, c = compiled.graph.input_shape
    proto.graph.input.append(
        helper.make_tensor_value_info("images", TensorProto.FLOAT, ["batch", h, w, c])
    )
    return proto


def flat_parameters(model: Any) -> dict[tuple[str | int, ...], np.ndarray]:
    """Every floating-point variable of the model's nnx state (parameters and batch
    statistics; not RNG state) by state path, as float32 NumPy arrays."""
    from flax import nnx

    out = {}
    for path, variable in nnx.to_flat_state(nnx.state(model, nnx.Not(nnx.RngState))):
        array = np.asarray(variable[...])
        if np.issubdtype(array.dtype, np.floating) or array.dtype.name == "bfloat16":
            out[tuple(path)] = np.asarray(array, np.float32)
    return out


def inference_output(compiled: Compiled) -> str:
    """The node whose output `model(x, train=False)` returns: the network's output, or where the
    table ends in a softmax that `__call__` leaves to prediction, the row before it."""
    if compiled.generated.output_activation != "softmax":
        return compiled.graph.output
    rows = [row for row in compiled.graph.rows if not row.train_only]
    return rows[-2].output if len(rows) > 1 else INPUT


def needed_nodes(compiled: Compiled, output: str) -> set[str]:
    """The nodes `output` depends on (train-only heads and unread rows are left out)."""
    needed: set[str] = set()
    pending = [output]
    while pending:
        name = pending.pop()
        if name == INPUT or name in needed:
            continue
        needed.add(name)
        pending.extend(compiled.graph.node(name).inputs)
    return needed


def convert(
    graph: OnnxGraph, node: Node, inputs: list[Value], shapes: dict[str, tuple[int, ...]]
) -> Value:
    """Write `node`'s ops with its type's converter; a SpecError at the node if it has none or
    the converter cannot express its parameters."""
    converter = converter_for(node.op)
    if converter is None:
        raise SpecError(
            f"layer type '{node.op}' cannot be exported to ONNX: it has no converter",
            node.origin,
            path=node.trail or node.name,
            hint="types that export: " + ", ".join(exportable_types()),
        )
    params = REGISTRY[node.op].params.model_validate(dict(node.attrs))
    graph.doc = f"{node.origin}: {node.trail}" if node.origin else node.trail
    out_shape = shapes[node.name]
    call = Call(node, params, tuple(inputs), (out_shape[0], out_shape[1], out_shape[2]), node.name)
    try:
        return converter(graph, call)
    except ExportError as error:
        location = node.field_origins.get(error.field or "", node.origin)
        raise SpecError(
            f"{node.op} cannot be exported to ONNX: {error}",
            location,
            path=node.trail or node.name,
            field=error.field,
            hint=error.hint,
        ) from None


def network_output(graph: OnnxGraph, value: Value) -> onnx.ValueInfoProto:
    """Write the graph output `logits`, `(batch, K)` for a `1x1xK` value, else NHWC
    `(batch, H, W, K)`; returns its value info."""
    h, w, k = value.shape
    if (h, w) == (1, 1):
        graph.add("Identity", [graph.flat(value)], "logits", exact=True)
        dims: list[Any] = ["batch", k]
    else:
        graph.add("Transpose", [graph.nchw(value)], "logits", exact=True, perm=[0, 2, 3, 1])
        dims = ["batch", h, w, k]
    return helper.make_tensor_value_info("logits", TensorProto.FLOAT, dims)


def describe(compiled: Compiled) -> str:
    """The graph's doc string: source, input and output layouts."""
    h, w, c = compiled.graph.input_shape
    oh, ow, k = compiled.report.output_shape
    out = f"(batch, {k})" if (oh, ow) == (1, 1) else f"(batch, {oh}, {ow}, {k})"
    return (
        f"{compiled.name}, exported by netspec from {compiled.graph.source or 'a spec'}. "
        f"Input images: float32 NHWC (batch, {h}, {w}, {c}); output logits {out}."
    )


def model_properties(compiled: Compiled) -> dict[str, str]:
    """Metadata a runtime needs beside the graph: input layout and the output activation that
    prediction applies (`softmax`, or empty)."""
    return {
        "netspec.spec": compiled.name,
        "netspec.input_layout": "NHWC",
        "netspec.output_activation": compiled.generated.output_activation or "",
    }


def netspec_version() -> str:
    from .. import __version__

    return str(__version__)
