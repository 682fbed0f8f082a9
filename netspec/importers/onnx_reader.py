"""ONNX models in: an `.onnx` file's graph read into netspec layer types (`ir.ImportedGraph`).

Reads models of the default domain's opsets 11 to 21 (`OPSETS`) with the `onnx` package as data
(`onnx.load`, `onnx.checker`); nothing in the file is run. The one graph input is an image batch
NCHW `(N, C, H, W)` with fixed C, H, W (the batch may be symbolic), or NHWC `(N, H, W, C)` when
every reader of it is a `Transpose` to NCHW (netspec's own exports). Initializers and `Constant`
nodes are weights and attributes, never layers.

Inside the walk every tensor is tracked with its layout: `nchw` (C, H, W), `flat` (N,) for a
`(N, units)` tensor, or `nhwc` (H, W, C) after a `Transpose` to channels-last (read only by
`Flatten`, `Reshape` to a flat tensor and `LayerNormalization`). Each ONNX node becomes one netspec
node (`Conv` -> conv, `Gemm` -> dense, ...), except pass-through nodes (`Identity`, `Dropout`,
layout changes such as `Unsqueeze` of a flat tensor), which point their readers at their input,
and two fused patterns: `Mul(x, Sigmoid(x))` -> silu, `MatMul` + `Add` of a bias -> dense.

`walk` also returns, per node with weights, which initializers hold them (`Weights`), for the
ONNX weight source (netspec/weights/onnx_source.py).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import SpecError
from ..shapes import same_padding, window_output
from .ir import ImportedGraph, Node

OPSETS = range(11, 22)
"""The default-domain ONNX opsets this reader understands (11 to 21)."""

INPUT = "input"
"""The ImportedGraph's name for the network's input."""

ACTIVATIONS = {
    "Relu": "relu",
    "Sigmoid": "sigmoid",
    "Tanh": "tanh",
    "Softplus": "softplus",
    "HardSwish": "hardswish",
    "Mish": "mish",
    "Elu": "elu",
    "LeakyRelu": "leaky_relu",
    "HardSigmoid": "hardsigmoid",
    "Gelu": "gelu",
}
"""Element-wise ONNX ops -> netspec activation types (attributes checked in `_activation`)."""

ACTIVATION_ATTRS: dict[str, dict[str, float]] = {
    "Elu": {"alpha": 1.0},
    "LeakyRelu": {"alpha": 0.01},
    "HardSigmoid": {"alpha": 1 / 6, "beta": 0.5},
}
"""The attribute values netspec's activation of that op fixes (PyTorch's defaults)."""

ATTRIBUTE_DEFAULTS = {"Elu": {"alpha": 1.0}, "LeakyRelu": {"alpha": 0.01}}
ATTRIBUTE_DEFAULTS["HardSigmoid"] = {"alpha": 0.2, "beta": 0.5}
"""ONNX's defaults for the attributes above."""

PASS_THROUGH = ("Identity", "Dropout")

GENERIC_NAMES = ("", "main_graph", "torch_jit", "torch-jit-export", "graph")


@dataclass(frozen=True)
class Tensor:
    """A tensor of the ONNX graph as the walk knows it: the netspec node that computes it (or
    `INPUT`), its shape without the batch axis in its `layout` (`nchw`: (C, H, W), `nhwc`:
    (H, W, C), `flat`: (N,)), and for a flat tensor flattened from an HxWxC one with H*W > 1,
    that (H, W, C) and the order of its values (`chw` as ONNX's Flatten of NCHW, `hwc` after a
    Transpose to channels-last)."""

    ref: str
    shape: tuple[int, ...]
    layout: str
    spatial: tuple[int, int, int] | None = None
    order: str = ""

    @property
    def channels(self) -> int:
        return self.shape[-1] if self.layout in ("nhwc", "flat") else self.shape[0]

    def hwc(self) -> tuple[int, int, int]:
        """The netspec (H, W, C) shape."""
        if self.layout == "nchw":
            return (self.shape[1], self.shape[2], self.shape[0])
        if self.layout == "nhwc":
            return (self.shape[0], self.shape[1], self.shape[2])
        return (1, 1, self.shape[0])


@dataclass(frozen=True)
class Weights:
    """Where one netspec node's weights lie in the file: initializer (or Constant) names by role
    (`kernel`, `bias`; batchnorm `scale`, `bias`, `mean`, `var`; layernorm `scale`, `bias`),
    the source kind (`conv`, `dense`, `batchnorm`, `norm`), factors to multiply roles by (Gemm's
    alpha and beta), whether a dense kernel is stored (in, out) (`transposed`: Gemm with
    transB=0, MatMul), and for a dense layer whose input was flattened in (H, W, C) order from an
    HxWxC tensor, that shape (`hwc_rows`)."""

    node: str
    kind: str
    tensors: dict[str, str]
    factors: dict[str, float] = field(default_factory=dict)
    transposed: bool = False
    hwc_rows: tuple[int, int, int] | None = None
    protos: dict[str, Any] = field(default_factory=dict)
    """The `onnx.TensorProto` of each role (an initializer, or a Constant node's value)."""


def supported_ops() -> list[str]:
    """The ONNX op types this reader turns into netspec layers (or passes through), sorted."""
    return sorted(HANDLERS)


# ----------------------------------------------------------------------------- loading


def load(path: Path, *, external_data: bool = False) -> Any:
    """The file's `onnx.ModelProto`, checked (SpecError saying why for a file that is not a
    readable ONNX model). `external_data`: also read tensors stored beside the file."""
    try:
        import onnx
    except ImportError:  # pragma: no cover - onnx is a dependency of the ONNX features
        raise SpecError("reading ONNX files needs the onnx package", path=str(path)) from None
    try:
        model = onnx.load(str(path), load_external_data=external_data)
    except Exception as error:  # protobuf's DecodeError, OSError, onnx's own errors
        raise SpecError(
            f"not a readable ONNX model: {_first_line(error)}", path=str(path)
        ) from None
    if not model.HasField("graph") or not model.graph.node:
        raise SpecError("not an ONNX model: it holds no graph nodes", path=str(path))
    opset = default_opset(model)
    if opset is None or opset not in OPSETS:
        raise SpecError(
            f"uses ONNX opset {'none' if opset is None else opset}; netspec reads opsets "
            f"{OPSETS[0]} to {OPSETS[-1]}",
            path=str(path),
            hint="re-export the model with an opset in that range (torch.onnx.export(..., "
            "opset_version=17))",
        )
    if model.ByteSize() < (1 << 31) - 1:
        try:
            onnx.checker.check_model(model)
        except Exception as error:  # onnx.checker.ValidationError and protobuf errors
            raise SpecError(
                f"not a valid ONNX model: {_first_line(error)}", path=str(path)
            ) from None
    return model


def default_opset(model: Any) -> int | None:
    """The model's opset of the default (ai.onnx) domain, None if it imports none."""
    versions = {o.domain: int(o.version) for o in model.opset_import}
    return versions.get("", versions.get("ai.onnx"))


def _first_line(error: BaseException) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


def read(path: Path) -> ImportedGraph:
    """The ONNX file's network as netspec layer types (see the module docstring)."""
    return walk(load(Path(path)), Path(path))[0]


def walk(model: Any, path: Path) -> tuple[ImportedGraph, list[Weights]]:
    """The graph of an ONNX `model` read from `path`, and where each node's weights lie."""
    return _Walk(model, path).run()


# ----------------------------------------------------------------------------- the walk


def _attrs(node: Any) -> dict[str, Any]:
    from onnx import helper

    return {a.name: helper.get_attribute_value(a) for a in node.attribute}


def _text(value: Any) -> Any:
    return value.decode() if isinstance(value, bytes) else value


def _number(value: float) -> float:
    """A float32 attribute as the shortest decimal that is the same float32 (1e-05, not
    9.99999974e-06)."""
    return float(str(np.float32(value)))


def _scalar_or_pair(values: Sequence[int]) -> int | list[int]:
    a, b = (int(v) for v in values)
    return a if a == b else [a, b]


def _padding(pads: Sequence[int]) -> int | list[Any]:
    """ONNX `[top, left, bottom, right]` as netspec's p, [ph, pw] or [[t, b], [l, r]]."""
    top, left, bottom, right = (int(p) for p in pads)
    if top == bottom and left == right:
        return _scalar_or_pair((top, left))
    return [[top, bottom], [left, right]]


class _Walk:
    """One pass over an ONNX graph in its (topological) order."""

    def __init__(self, model: Any, path: Path) -> None:
        self.model = model
        self.graph = model.graph
        self.path = path
        self.opset = self._opset()
        self.consts: dict[str, Any] = {t.name: t for t in self.graph.initializer}
        self.tensors: dict[str, Tensor] = {}
        self.nodes: list[Node] = []
        self.weights: list[Weights] = []
        self.notes: list[str] = []
        self.names: set[str] = {INPUT}
        self.readers: dict[str, list[Any]] = {}
        for onnx_node in self.graph.node:
            for name in onnx_node.input:
                if name:
                    self.readers.setdefault(name, []).append(onnx_node)
        self.outputs = [o.name for o in self.graph.output]
        self.skipped: set[int] = set()
        """ids of ONNX nodes already folded into another netspec node."""
        self.aliases: dict[int, str] = {}
        """id of a folded node -> the ONNX tensor its output equals."""
        self.training_noted = False
        self.silu: dict[int, str] = {}
        """id of a Mul that is `x * Sigmoid(x)` -> x."""
        self.fused: dict[int, tuple[str, str]] = {}
        """id of the last node of an activation spelled out in several nodes -> (op, x)."""

    # -- errors --------------------------------------------------------------------------------

    def error(self, message: str, hint: str | None = None) -> SpecError:
        return SpecError(message, path=str(self.path), hint=hint)

    def refuse(self, node: Any, what: str, hint: str | None = None) -> SpecError:
        return self.error(f"node {self.label(node)!r} ({node.op_type}): {what}", hint)

    @staticmethod
    def label(node: Any) -> str:
        return node.name or (node.output[0] if node.output else node.op_type)

    @classmethod
    def layer_name(cls, node: Any) -> str:
        """The node's name without the op type exporters append (torch: `/layer1/conv1/Conv`
        -> `/layer1/conv1`), for row names."""
        label = cls.label(node)
        head, _, last = label.rpartition("/")
        return head if head.strip("/") and last == node.op_type else label

    # -- the graph's frame ---------------------------------------------------------------------

    def _opset(self) -> int:
        opset = default_opset(self.model)
        if opset is None or opset not in OPSETS:
            raise self.error(f"uses ONNX opset {opset}; netspec reads {OPSETS[0]} to {OPSETS[-1]}")
        return opset

    def _input(self) -> None:
        real = [i for i in self.graph.input if i.name not in self.consts]
        if len(real) != 1:
            names = ", ".join(i.name for i in real) or "none"
            raise self.error(f"has {len(real)} graph inputs ({names}); netspec reads one image")
        value = real[0]
        tensor_type = value.type.tensor_type
        dims = [d.dim_value if d.HasField("dim_value") else None for d in tensor_type.shape.dim]
        if len(dims) != 4 or any(d is None or d < 1 for d in dims[1:]):
            shown = "x".join("?" if d is None else str(d) for d in dims) or "unknown"
            raise self.error(
                f"its input {value.name!r} is {shown}; netspec reads a 4-D image batch "
                "(N, C, H, W) with fixed C, H and W",
                hint="export with a fixed image size (only the batch may be dynamic)",
            )
        readers = self.readers.get(value.name, [])
        nhwc = bool(readers) and all(
            r.op_type == "Transpose" and list(_attrs(r).get("perm", [])) == [0, 3, 1, 2]
            for r in readers
        )
        shape = tuple(int(d) for d in dims[1:])  # type: ignore[arg-type]
        self.tensors[value.name] = Tensor(INPUT, shape, "nhwc" if nhwc else "nchw")
        self.input_shape = self.tensors[value.name].hwc()
        self.batch = dims[0]
        if nhwc:
            self.notes.append(f"input {value.name!r} is channels-last (NHWC) in the file")

    def _needed(self) -> set[int]:
        """ids of the nodes some graph output depends on."""
        producer = {name: n for n in self.graph.node for name in n.output}
        needed: set[int] = set()
        stack = [producer[o] for o in self.outputs if o in producer]
        while stack:
            node = stack.pop()
            if id(node) in needed:
                continue
            needed.add(id(node))
            stack.extend(producer[i] for i in node.input if i in producer)
        return needed

    def run(self) -> tuple[ImportedGraph, list[Weights]]:
        if not self.outputs:
            raise self.error("the graph has no outputs")
        self._input()
        needed = self._needed()
        dropped = 0
        for node in self.graph.node:
            if node.op_type == "Constant":
                self._constant(node)
        self._fuse([node for node in self.graph.node if id(node) in needed])
        self._check_ops(needed)
        for node in self.graph.node:
            if node.op_type == "Constant":
                continue
            if id(node) not in needed:
                dropped += 1
                continue
            self._convert(node)
        if dropped:
            self.notes.append(f"{dropped} ONNX nodes that no graph output reads were left out")
        outputs = self._graph_outputs()
        graph = ImportedGraph(
            name=self._name(),
            source=str(self.path),
            format=f"ONNX (opset {self.opset})",
            input_shape=self.input_shape,
            nodes=self.nodes,
            outputs=outputs,
            input_name=INPUT,
            source_params=sum(n.params or 0 for n in self.nodes),
            notes=self.notes,
        )
        return graph, self.weights

    def _name(self) -> str:
        name = self.graph.name.strip()
        return self.path.stem if name in GENERIC_NAMES else name

    def _check_ops(self, needed: set[int]) -> None:
        bad = [
            n
            for n in self.graph.node
            if id(n) in needed
            and id(n) not in self.skipped
            and id(n) not in self.fused
            and n.op_type != "Constant"
            and (n.domain not in ("", "ai.onnx") or n.op_type not in HANDLERS)
        ]
        if not bad:
            return
        first = bad[0]
        op = first.op_type if first.domain in ("", "ai.onnx") else f"{first.domain}.{first.op_type}"
        more = ""
        if len(bad) > 1:
            kinds = sorted({n.op_type for n in bad[1:]})
            more = f" ({len(bad) - 1} more nodes of unsupported ops: {', '.join(kinds)})"
        raise self.error(
            f"node {self.label(first)!r} is an ONNX {op}, which netspec cannot import{more}",
            hint="supported ONNX ops: " + ", ".join(supported_ops()),
        )

    def _graph_outputs(self) -> list[str]:
        refs: list[str] = []
        for name in self.outputs:
            tensor = self.tensors.get(name)
            if tensor is None:
                raise self.error(f"graph output {name!r} is computed by no node")
            if tensor.ref == INPUT:
                raise self.error(f"graph output {name!r} is the input itself")
            if tensor.ref not in refs:
                refs.append(tensor.ref)
        for extra in self.outputs[1:]:
            self.notes.append(
                f"graph output {extra!r} (node {self.tensors[extra].ref!r}) is an extra output"
            )
        return refs

    # -- constants -----------------------------------------------------------------------------

    def _constant(self, node: Any) -> None:
        from onnx import numpy_helper

        attrs = _attrs(node)
        if "value" in attrs:
            self.consts[node.output[0]] = attrs["value"]
            return
        for key, dtype in (
            ("value_float", np.float32),
            ("value_floats", np.float32),
            ("value_int", np.int64),
            ("value_ints", np.int64),
        ):
            if key in attrs:
                array = np.asarray(attrs[key], dtype)
                self.consts[node.output[0]] = numpy_helper.from_array(array, node.output[0])
                return
        raise self.refuse(node, "only tensor, float and int constants are read")

    def is_const(self, name: str) -> bool:
        return name in self.consts

    def dims(self, name: str) -> tuple[int, ...]:
        return tuple(int(d) for d in self.consts[name].dims)

    def size(self, name: str) -> int:
        return int(np.prod(self.dims(name), dtype=np.int64))

    def array(self, name: str, node: Any) -> np.ndarray:
        """A constant's value (SpecError if it is not a constant or is stored outside)."""
        from onnx import numpy_helper

        if name not in self.consts:
            raise self.refuse(node, f"its input {name!r} must be a constant (an initializer)")
        proto = self.consts[name]
        if proto.data_location == 1:  # onnx.TensorProto.EXTERNAL
            raise self.refuse(node, f"its constant {name!r} is stored outside the file")
        return numpy_helper.to_array(proto)

    def weight(self, node: Any, index: int, what: str, rank: int | None = None) -> str | None:
        """The name of input `index` of `node` if present; it must be a float constant."""
        if index >= len(node.input) or not node.input[index]:
            return None
        name = node.input[index]
        if name not in self.consts:
            raise self.refuse(
                node,
                f"its {what} {name!r} is computed in the graph; netspec reads weights stored as "
                "initializers",
            )
        proto = self.consts[name]
        if proto.data_type not in (1, 10, 11, 16):  # float, float16, double, bfloat16
            raise self.refuse(node, f"its {what} {name!r} is not a floating-point tensor")
        if rank is not None and len(proto.dims) != rank:
            raise self.refuse(node, f"its {what} {name!r} is {self.dims(name)}, not {rank}-D")
        return name

    # -- emitting ------------------------------------------------------------------------------

    def unique(self, name: str) -> str:
        candidate, count = name, 0
        while candidate in self.names:
            count += 1
            candidate = f"{name}_{count}"
        self.names.add(candidate)
        return candidate

    def emit(
        self,
        node: Any,
        op: str,
        inputs: Sequence[Tensor],
        fields: dict[str, Any],
        out: Tensor,
        params: int = 0,
        weights: Weights | None = None,
    ) -> Tensor:
        """Add netspec node `op` for ONNX `node`; its first output becomes `out` (whose ref is
        replaced by the new node's name)."""
        name = self.unique(self.layer_name(node))
        self.nodes.append(
            Node(
                name,
                op,
                tuple(t.ref for t in inputs),
                fields,
                source_type=node.op_type,
                params=params,
            )
        )
        if weights is not None:
            self.weights.append(
                Weights(
                    name,
                    weights.kind,
                    weights.tensors,
                    weights.factors,
                    weights.transposed,
                    weights.hwc_rows,
                    {role: self.consts[n] for role, n in weights.tensors.items()},
                )
            )
        result = Tensor(name, out.shape, out.layout, out.spatial, out.order)
        self.tensors[node.output[0]] = result
        return result

    def alias(self, node: Any, tensor: Tensor) -> None:
        self.tensors[node.output[0]] = tensor

    def only_first_output(self, node: Any) -> None:
        for extra in node.output[1:]:
            if extra and (self.readers.get(extra) or extra in self.outputs):
                raise self.refuse(node, f"its output {extra!r} is read; netspec has no such output")

    def input(self, node: Any, index: int = 0) -> Tensor:
        name = node.input[index] if index < len(node.input) else ""
        if name not in self.tensors:
            if name in self.consts:
                raise self.refuse(node, f"its input {name!r} is a constant, not a layer's output")
            raise self.refuse(node, f"reads {name!r}, which no earlier node computes")
        return self.tensors[name]

    def spatial(self, node: Any, index: int = 0) -> Tensor:
        x = self.input(node, index)
        if x.layout != "nchw":
            what = "a flat (N, features)" if x.layout == "flat" else "a channels-last"
            raise self.refuse(node, f"reads {what} tensor; netspec reads an NCHW one here")
        return x

    def _fuse(self, nodes: list[Any]) -> None:
        """Activations written out in several element-wise nodes (GELU with Erf, Mish, ...):
        the last node becomes the activation, the others are skipped."""
        from onnx import numpy_helper

        from .onnx_fusion import fuse

        def constant(name: str) -> np.ndarray | None:
            proto = self.consts.get(name)
            if proto is None or proto.data_location == 1 or int(np.prod(proto.dims)) > 1:
                return None if proto is None else np.zeros(2)  # not a scalar: not fused
            return numpy_helper.to_array(proto)

        found = fuse(nodes, constant, _attrs, set(self.outputs))
        for final, (op, x, ids) in found.items():
            self.fused[final] = (op, x)
            self.skipped |= ids - {final}

    def _convert(self, node: Any) -> None:
        if id(node) in self.fused:
            op, x_name = self.fused[id(node)]
            x = self.tensors[x_name]
            self.emit(node, op, [x], {}, x)
            return
        if id(node) in self.skipped:
            if id(node) in self.aliases:
                self.alias(node, self.tensors[self.aliases[id(node)]])
            return
        HANDLERS[node.op_type](self, node)

    # -- layers --------------------------------------------------------------------------------

    def window(
        self,
        node: Any,
        x: Tensor,
        kernel: tuple[int, int],
        attrs: dict[str, Any],
        ceil: bool = False,
    ) -> tuple[Any, tuple[int, int], tuple[int, int], tuple[int, int, int, int]]:
        """A conv's or pool's (netspec padding, stride, dilation, ONNX pads t, l, b, r); pads
        that are symmetric in effect (the last window reaches no bottom/right pad that differs)
        are made symmetric, asymmetric ones that are TensorFlow's `same` written `same`."""
        stride = tuple(attrs.get("strides", [1, 1]))
        dilation = tuple(attrs.get("dilations", [1, 1]))
        if len(stride) != 2 or len(dilation) != 2:
            raise self.refuse(node, "only 2-D windows (NCHW images) are read")
        auto = _text(attrs.get("auto_pad", "NOTSET"))
        h, w = x.shape[1], x.shape[2]
        if auto in ("SAME_UPPER", "SAME_LOWER"):
            (t, b), (left, r) = (
                same_padding(size, k, s, d)
                for size, k, s, d in zip((h, w), kernel, stride, dilation, strict=True)
            )
            if auto == "SAME_UPPER":
                return "same", stride, dilation, (t, left, b, r)
            return _padding((b, r, t, left)), stride, dilation, (b, r, t, left)
        if auto == "VALID":
            return "valid", stride, dilation, (0, 0, 0, 0)
        if auto != "NOTSET":
            raise self.refuse(node, f"auto_pad {auto!r} is not read")
        pads = tuple(int(p) for p in attrs.get("pads", [0, 0, 0, 0]))
        if len(pads) != 4 or min(pads) < 0:
            raise self.refuse(node, f"pads {list(pads)} are not 2-D and non-negative")
        pads = self.symmetric(x, kernel, stride, dilation, pads, ceil)  # type: ignore[arg-type]
        same = [
            same_padding(size, k, st, d)
            for size, k, st, d in zip((h, w), kernel, stride, dilation, strict=True)
        ]
        asymmetric = (pads[0], pads[1]) != (pads[2], pads[3])
        if asymmetric and ((pads[0], pads[2]), (pads[1], pads[3])) == tuple(same):
            return "same", stride, dilation, pads  # type: ignore[return-value]
        return _padding(pads), stride, dilation, pads  # type: ignore[return-value]

    def symmetric(
        self,
        x: Tensor,
        kernel: tuple[int, int],
        stride: tuple[int, int],
        dilation: tuple[int, int],
        pads: tuple[int, int, int, int],
        ceil: bool,
    ) -> tuple[int, int, int, int]:
        """`pads` with each axis' bottom/right pad set to its top/left one where that changes
        neither the output size nor any window's cells."""
        result = list(pads)
        for axis in (0, 1):
            size, k, s, d = x.shape[1 + axis], kernel[axis], stride[axis], dilation[axis]
            low, high = pads[axis], pads[axis + 2]
            out = window_output(size, k, s, (low, high), d, ceil)
            if out == window_output(size, k, s, (low, low), d, ceil):
                end = (out - 1) * s + d * (k - 1) + 1 - low  # past the last input cell read
                if end <= size + min(low, high):
                    result[axis + 2] = low
        return tuple(result)  # type: ignore[return-value]

    @staticmethod
    def out_size(
        x: Tensor,
        kernel: tuple[int, int],
        stride: tuple[int, int],
        dilation: tuple[int, int],
        pads: tuple[int, int, int, int],
        ceil: bool = False,
    ) -> tuple[int, int]:
        t, left, b, r = pads
        return (
            window_output(x.shape[1], kernel[0], stride[0], (t, b), dilation[0], ceil),
            window_output(x.shape[2], kernel[1], stride[1], (left, r), dilation[1], ceil),
        )

    def conv(self, node: Any) -> None:
        x = self.spatial(node)
        kernel_name = self.weight(node, 1, "weight", rank=4)
        assert kernel_name is not None
        bias = self.weight(node, 2, "bias", rank=1)
        filters, per_group, kh, kw = self.dims(kernel_name)
        attrs = _attrs(node)
        groups = int(attrs.get("group", 1))
        if per_group * groups != x.channels:
            raise self.refuse(
                node,
                f"its weight {self.dims(kernel_name)} with group={groups} does not read "
                f"{x.channels} channels",
            )
        padding, stride, dilation, pads = self.window(node, x, (kh, kw), attrs)
        oh, ow = self.out_size(x, (kh, kw), stride, dilation, pads)
        if oh < 1 or ow < 1:
            raise self.refuse(node, "its window is larger than its padded input")
        fields = {
            "filters": filters,
            "kernel": _scalar_or_pair((kh, kw)),
            "stride": _scalar_or_pair(stride),
            "padding": padding,
            "dilation": _scalar_or_pair(dilation),
            "groups": groups,
            "bias": bias is not None,
        }
        out = Tensor("", (filters, oh, ow), "nchw")
        self.emit_weighted(node, "conv", x, fields, out, kernel_name, bias)

    def emit_weighted(
        self,
        node: Any,
        op: str,
        x: Tensor,
        fields: dict[str, Any],
        out: Tensor,
        kernel: str,
        bias: str | None,
    ) -> None:
        """Emit a conv-like node whose weights are the initializers `kernel` (and `bias`)."""
        roles = {"kernel": kernel} | ({"bias": bias} if bias else {})
        params = sum(self.size(n) for n in roles.values())
        self.emit(node, op, [x], fields, out, params, Weights("", "conv", roles))

    def conv_transpose(self, node: Any) -> None:
        x = self.spatial(node)
        kernel_name = self.weight(node, 1, "weight", rank=4)
        assert kernel_name is not None
        bias = self.weight(node, 2, "bias", rank=1)
        channels, per_group, kh, kw = self.dims(kernel_name)
        attrs = _attrs(node)
        groups = int(attrs.get("group", 1))
        if channels != x.channels:
            raise self.refuse(
                node, f"its weight {self.dims(kernel_name)} does not read {x.channels} channels"
            )
        if _text(attrs.get("auto_pad", "NOTSET")) not in ("NOTSET", "VALID"):
            raise self.refuse(node, "auto_pad SAME is not read; export with explicit pads")
        if "output_shape" in attrs:
            raise self.refuse(node, "output_shape is not read; export with pads")
        if tuple(attrs.get("dilations", [1, 1])) != (1, 1):
            raise self.refuse(node, "dilated transposed convolutions have no netspec form")
        stride = tuple(int(s) for s in attrs.get("strides", [1, 1]))
        t, left, b, r = (int(p) for p in attrs.get("pads", [0, 0, 0, 0]))
        extra = tuple(int(p) for p in attrs.get("output_padding", [0, 0]))
        # netspec crops `padding` from both sides, then adds `output_padding` at the end
        output_padding = (extra[0] + t - b, extra[1] + left - r)
        if any(not 0 <= p < s for p, s in zip(output_padding, stride, strict=True)):
            raise self.refuse(
                node,
                f"pads {[t, left, b, r]} with output_padding {list(extra)} "
                "have no netspec form (bottom/right pads above the top/left ones)",
            )
        oh = (x.shape[1] - 1) * stride[0] - 2 * t + kh + output_padding[0]
        ow = (x.shape[2] - 1) * stride[1] - 2 * left + kw + output_padding[1]
        filters = per_group * groups
        fields = {
            "filters": filters,
            "kernel": _scalar_or_pair((kh, kw)),
            "stride": _scalar_or_pair(stride),
            "padding": _scalar_or_pair((t, left)),
            "output_padding": _scalar_or_pair(output_padding),
            "groups": groups,
            "bias": bias is not None,
        }
        out = Tensor("", (filters, oh, ow), "nchw")
        self.emit_weighted(node, "conv_transpose", x, fields, out, kernel_name, bias)

    def dense_input(self, node: Any, features: int) -> Tensor:
        x = self.input(node)
        if x.layout != "flat":
            raise self.refuse(node, "reads a tensor that is not flat (N, features)")
        if x.shape[0] != features:
            raise self.refuse(
                node, f"its weight reads {features} features, its input has {x.shape[0]}"
            )
        return x

    def hwc_rows(self, x: Tensor) -> tuple[int, int, int] | None:
        return x.spatial if x.order == "hwc" else None

    def gemm(self, node: Any) -> None:
        attrs = _attrs(node)
        if int(attrs.get("transA", 0)):
            raise self.refuse(node, "transA=1 is not read")
        kernel = self.weight(node, 1, "weight B", rank=2)
        assert kernel is not None
        transposed = not int(attrs.get("transB", 0))
        rows, cols = self.dims(kernel)
        units, features = (cols, rows) if transposed else (rows, cols)
        x = self.dense_input(node, features)
        bias = self.weight(node, 2, "bias C")
        if bias is not None and self.size(bias) != units:
            raise self.refuse(node, f"its bias C {self.dims(bias)} is not one value per unit")
        factors = {"kernel": float(attrs.get("alpha", 1.0))}
        if bias is not None:
            factors["bias"] = float(attrs.get("beta", 1.0))
        roles = {"kernel": kernel} | ({"bias": bias} if bias else {})
        params = sum(self.size(n) for n in roles.values())
        self.emit(
            node,
            "dense",
            [x],
            {"units": units, "bias": bias is not None},
            Tensor("", (units,), "flat"),
            params,
            Weights("", "dense", roles, factors, transposed, self.hwc_rows(x)),
        )

    def matmul(self, node: Any) -> None:
        kernel = self.weight(node, 1, "weight", rank=2)
        assert kernel is not None
        features, units = self.dims(kernel)
        x = self.dense_input(node, features)
        bias = None
        readers = self.readers.get(node.output[0], [])
        if len(readers) == 1 and readers[0].op_type == "Add" and node.output[0] not in self.outputs:
            add = readers[0]
            other = [n for n in add.input if n != node.output[0]]
            if len(other) == 1 and self.is_const(other[0]) and self.size(other[0]) == units:
                bias = self.weight(add, list(add.input).index(other[0]), "bias")
                self.skipped.add(id(add))
                self.aliases[id(add)] = node.output[0]
        roles = {"kernel": kernel} | ({"bias": bias} if bias else {})
        params = sum(self.size(n) for n in roles.values())
        self.emit(
            node,
            "dense",
            [x],
            {"units": units, "bias": bias is not None},
            Tensor("", (units,), "flat"),
            params,
            Weights("", "dense", roles, {}, True, self.hwc_rows(x)),
        )

    def batchnorm(self, node: Any) -> None:
        x = self.input(node)
        if x.layout == "nhwc":
            raise self.refuse(node, "reads a channels-last tensor")
        self.only_first_output(node)
        names = [self.weight(node, i, role, rank=1) for i, role in enumerate(BN_ROLES, start=1)]
        if any(n is None for n in names):
            raise self.refuse(node, "needs scale, bias, mean and variance initializers")
        roles = dict(zip(BN_ROLES, names, strict=True))
        if any(self.size(n) != x.channels for n in names if n is not None):
            raise self.refuse(node, f"its statistics are not one value per channel ({x.channels})")
        attrs = _attrs(node)
        fields = {
            "eps": _number(attrs.get("epsilon", 1e-5)),
            "momentum": _number(attrs.get("momentum", 0.9)),  # ONNX's = Flax's convention
        }
        if int(attrs.get("training_mode", 0)) and not self.training_noted:
            self.training_noted = True
            self.notes.append(
                "BatchNormalization exported in training mode (batch statistics) is read as "
                "batchnorm, which uses its running statistics at inference"
            )
        params = self.size(roles["scale"]) + self.size(roles["bias"])  # mean and var are state
        weights = Weights("", "batchnorm", roles, hwc_rows=self.hwc_rows(x))
        self.emit(node, "batchnorm", [x], fields, x, params, weights)

    def layernorm(self, node: Any) -> None:
        x = self.input(node)
        attrs = _attrs(node)
        if x.layout == "nchw" or int(attrs.get("axis", -1)) not in (-1, len(x.shape)):
            raise self.refuse(node, "only normalisation over the channels (last axis) is read")
        self.only_first_output(node)
        scale = self.weight(node, 1, "scale", rank=1)
        bias = self.weight(node, 2, "bias", rank=1)
        roles = {"scale": scale} | ({"bias": bias} if bias else {})
        if any(self.size(n) != x.channels for n in roles.values() if n):
            raise self.refuse(node, "its scale and bias are not one value per channel")
        fields = {"eps": _number(attrs.get("epsilon", 1e-5)), "center": bias is not None}
        params = sum(self.size(n) for n in roles.values() if n)
        self.emit(
            node,
            "layernorm",
            [x],
            fields,
            x,
            params,
            Weights("", "norm", roles),  # type: ignore
        )

    def activation(self, node: Any) -> None:
        x = self.input(node)
        op = ACTIVATIONS[node.op_type]
        attrs = _attrs(node)
        if node.op_type in ACTIVATION_ATTRS:
            for key, wanted in ACTIVATION_ATTRS[node.op_type].items():
                value = float(attrs.get(key, ATTRIBUTE_DEFAULTS[node.op_type][key]))
                if not math.isclose(value, wanted, rel_tol=1e-6):
                    raise self.refuse(
                        node,
                        f"{key}={value:g}; netspec's {op} has {key} {wanted:g}",
                    )
        if node.op_type == "Gelu" and _text(attrs.get("approximate", "none")) == "tanh":
            op = "gelu_tanh"
        if node.op_type == "Sigmoid" and self.silu_gate(node):
            return
        self.emit(node, op, [x], {}, x)

    def silu_gate(self, node: Any) -> bool:
        """Whether Sigmoid `node` is the gate of `Mul(x, Sigmoid(x))` (then the Mul is silu and
        this node is not emitted)."""
        out = node.output[0]
        readers = self.readers.get(out, [])
        if out in self.outputs or len(readers) != 1 or readers[0].op_type != "Mul":
            return False
        mul = readers[0]
        if sorted(mul.input) != sorted([node.input[0], out]):
            return False
        self.silu[id(mul)] = node.input[0]
        return True

    def clip(self, node: Any) -> None:
        x = self.input(node)
        low = self.array(node.input[1], node) if len(node.input) > 1 and node.input[1] else None
        high = self.array(node.input[2], node) if len(node.input) > 2 and node.input[2] else None
        low_v = None if low is None else float(low)
        high_v = None if high is None or not np.isfinite(high) else float(high)
        if low_v == 0.0 and high_v == 6.0:
            self.emit(node, "relu6", [x], {}, x)
        elif low_v == 0.0 and high_v is None:
            self.emit(node, "relu", [x], {}, x)
        else:
            raise self.refuse(
                node,
                f"Clip({low_v}, {high_v}) has no netspec form (relu6 is Clip(0, 6), relu Clip(0))",
            )

    def pool(self, node: Any) -> None:
        x = self.spatial(node)
        self.only_first_output(node)
        attrs = _attrs(node)
        kernel = tuple(int(k) for k in attrs["kernel_shape"])
        if len(kernel) != 2:
            raise self.refuse(node, "only 2-D pooling is read")
        ceil = bool(attrs.get("ceil_mode", 0))
        padding, stride, dilation, pads = self.window(node, x, kernel, attrs, ceil)  # type: ignore
        if dilation != (1, 1):
            raise self.refuse(node, "dilated pooling has no netspec form")
        oh, ow = self.out_size(x, kernel, stride, dilation, pads, ceil)  # type: ignore[arg-type]
        op = "maxpool" if node.op_type == "MaxPool" else "avgpool"
        fields = {
            "kernel": _scalar_or_pair(kernel),
            "stride": _scalar_or_pair(stride),
            "padding": padding,
            "rounding": "ceil" if ceil else "floor",
        }
        if op == "avgpool":
            fields["count_include_pad"] = bool(attrs.get("count_include_pad", 0))
        self.emit(node, op, [x], fields, Tensor("", (x.channels, oh, ow), "nchw"))

    def global_pool(self, node: Any) -> None:
        x = self.spatial(node)
        out = Tensor("", (x.channels, 1, 1), "nchw")
        if node.op_type == "GlobalAveragePool":
            self.emit(node, "global_avgpool", [x], {}, out)
            return
        _, h, w = x.shape
        fields = {
            "kernel": _scalar_or_pair((h, w)),
            "stride": 1,
            "padding": 0,
            "rounding": "floor",
        }
        self.emit(node, "maxpool", [x], fields, out)

    def reduce_mean(self, node: Any) -> None:
        x = self.spatial(node)
        attrs = _attrs(node)
        axes = attrs.get("axes")
        if self.opset >= 18 and len(node.input) > 1 and node.input[1]:
            axes = self.array(node.input[1], node).tolist()
        if axes is None or sorted(int(a) % 4 for a in axes) != [2, 3]:
            raise self.refuse(node, "only the mean over height and width (axes 2, 3) is read")
        out = self.emit(node, "global_avgpool", [x], {}, Tensor("", (x.channels, 1, 1), "nchw"))
        if not int(attrs.get("keepdims", 1)):
            self.alias(node, Tensor(out.ref, (x.channels,), "flat"))

    def flatten_to(self, node: Any, x: Tensor) -> None:
        """Emit netspec's flatten of `x` (any layout) for `node`; a flat `x` passes through."""
        if x.layout == "flat":
            self.alias(node, x)
            return
        h, w, c = x.hwc()
        order = "" if h * w == 1 else ("hwc" if x.layout == "nhwc" else "chw")
        out = Tensor("", (h * w * c,), "flat", (h, w, c) if order else None, order)
        self.emit(node, "flatten", [x], {}, out)

    def flatten(self, node: Any) -> None:
        x = self.input(node)
        if int(_attrs(node).get("axis", 1)) != 1:
            raise self.refuse(node, "only Flatten with axis=1 (keep the batch) is read")
        self.flatten_to(node, x)

    def reshape(self, node: Any) -> None:
        x = self.input(node)
        target = [int(v) for v in self.array(node.input[1], node).reshape(-1)]
        total = int(np.prod(x.shape))
        if int(_attrs(node).get("allowzero", 0)) and 0 in target:
            raise self.refuse(node, "allowzero=1 with a 0 in the shape is not read")
        batch = (0, self.batch) if self.batch is not None else (0,)
        if len(target) == 2 and (
            (target[0] in batch and target[1] in (-1, total))
            or (target[0] == -1 and target[1] == total)
        ):
            self.flatten_to(node, x)
            return
        batch_ok = bool(target) and target[0] in (*batch, -1)
        if (
            x.layout == "flat"
            and len(target) == 4
            and batch_ok
            and target[1] in (-1, total)
            and target[2:] == [1, 1]
        ):
            self.alias(node, Tensor(x.ref, (total, 1, 1), "nchw"))
            return
        raise self.refuse(
            node,
            f"reshaping a {x.layout} {list(x.shape)} tensor to {target} has no netspec form (a "
            "flatten [N, -1] or a flat tensor to [N, C, 1, 1] is read)",
        )

    def squeeze(self, node: Any) -> None:
        x = self.input(node)
        axes = _attrs(node).get("axes")
        if len(node.input) > 1 and node.input[1]:
            axes = self.array(node.input[1], node).tolist()
        axes = None if axes is None else sorted(int(a) % 4 for a in axes)
        flat_image = x.layout == "nchw" and x.shape[1:] == (1, 1)
        if node.op_type == "Squeeze" and flat_image and axes in (None, [2, 3]):
            self.alias(node, Tensor(x.ref, (x.channels,), "flat"))
            return
        if node.op_type == "Unsqueeze" and x.layout == "flat" and axes == [2, 3]:
            self.alias(node, Tensor(x.ref, (x.channels, 1, 1), "nchw"))
            return
        raise self.refuse(node, f"only {node.op_type} of axes 2 and 3 of a 1x1 image is read")

    def transpose(self, node: Any) -> None:
        x = self.input(node)
        perm = [int(p) for p in _attrs(node).get("perm", [])]
        if x.layout == "nchw" and perm == [0, 2, 3, 1]:
            c, h, w = x.shape
            self.alias(node, Tensor(x.ref, (h, w, c), "nhwc"))
        elif x.layout == "nhwc" and perm == [0, 3, 1, 2]:
            h, w, c = x.shape
            self.alias(node, Tensor(x.ref, (c, h, w), "nchw"))
        else:
            raise self.refuse(
                node,
                f"Transpose {perm} of a {x.layout} tensor has no netspec form (only NCHW <-> NHWC "
                "around a Flatten or LayerNormalization is read)",
            )

    def concat(self, node: Any) -> None:
        inputs = [self.input(node, i) for i in range(len(node.input))]
        layouts = {t.layout for t in inputs}
        axis = int(_attrs(node).get("axis", 1))
        layout = inputs[0].layout
        rank = len(inputs[0].shape) + 1
        if len(layouts) != 1 or layout == "nhwc" or axis % rank != 1:
            raise self.refuse(node, "only concatenation of NCHW or flat tensors on axis 1 is read")
        if len({t.shape[1:] for t in inputs}) != 1:
            raise self.refuse(node, "its inputs differ in height or width")
        channels = sum(t.shape[0] for t in inputs)
        self.emit(node, "concat", inputs, {}, Tensor("", (channels, *inputs[0].shape[1:]), layout))

    def elementwise(self, node: Any) -> None:
        if node.op_type == "Mul" and id(node) in self.silu:
            x = self.tensors[self.silu[id(node)]]
            self.emit(node, "silu", [x], {}, x)
            return
        consts = [n for n in node.input if self.is_const(n)]
        if consts:
            raise self.refuse(
                node,
                f"{node.op_type} with the constant {consts[0]!r} has no netspec form (only "
                f"{node.op_type} of two layers' outputs is read)",
            )
        inputs = [self.input(node, i) for i in range(len(node.input))]
        if len({t.layout for t in inputs}) != 1 or inputs[0].layout == "nhwc":
            raise self.refuse(node, "its inputs differ in layout (flat and NCHW)")
        shape = tuple(max(dims) for dims in zip(*(t.shape for t in inputs), strict=True))
        for t in inputs:
            if t.layout == "nchw" and not (
                t.shape == shape or t.shape == (shape[0], 1, 1) or t.shape == (1, *shape[1:])
            ):
                raise self.refuse(
                    node,
                    f"its input {list(t.shape)} does not broadcast as netspec's (1x1xC or HxWx1)",
                )
            if t.layout == "flat" and t.shape != shape:
                raise self.refuse(node, "its flat inputs differ in size")
        op = "add" if node.op_type == "Add" else "multiply"
        self.emit(node, op, inputs, {}, Tensor("", shape, inputs[0].layout))

    def pass_through(self, node: Any) -> None:
        self.only_first_output(node)
        if node.input[0] in self.consts:
            self.consts[node.output[0]] = self.consts[node.input[0]]
            return
        self.alias(node, self.input(node))

    def lrn(self, node: Any) -> None:
        x = self.spatial(node)
        attrs = _attrs(node)
        fields = {
            "size": int(attrs["size"]),
            "alpha": _number(attrs.get("alpha", 1e-4)),  # ONNX divides alpha by size, as Caffe
            "beta": _number(attrs.get("beta", 0.75)),
            "k": _number(attrs.get("bias", 1.0)),
        }
        self.emit(node, "lrn", [x], fields, x)

    def softmax(self, node: Any) -> None:
        x = self.input(node)
        default = -1 if self.opset >= 13 else 1
        axis = int(_attrs(node).get("axis", default))
        rank = len(x.shape) + 1
        over_channels = axis % rank == 1 and x.layout != "nhwc"
        if x.layout == "nchw" and self.opset < 13 and x.shape[1:] != (1, 1):
            over_channels = False  # opsets 11-12 take the softmax over C*H*W
        if not over_channels:
            raise self.refuse(
                node,
                f"softmax on axis {axis} of a {x.layout} {list(x.shape)} tensor; netspec's is "
                "over the channels",
            )
        self.emit(node, "softmax", [x], {}, x)

    def pad(self, node: Any) -> None:
        x = self.spatial(node)
        attrs = _attrs(node)
        if _text(attrs.get("mode", "constant")) != "constant":
            raise self.refuse(node, f"mode {_text(attrs.get('mode'))!r}; only zero padding is read")
        pads = [int(p) for p in self.array(node.input[1], node).reshape(-1)]
        if len(node.input) > 2 and node.input[2]:
            value = self.array(node.input[2], node)
            if value.size and float(value.reshape(-1)[0]) != 0.0:
                raise self.refuse(
                    node, f"pads with {float(value.reshape(-1)[0])}; netspec's zeropad pads with 0"
                )
        if len(node.input) > 3 and node.input[3]:
            axes = [int(a) % 4 for a in self.array(node.input[3], node).reshape(-1)]
            full = [0] * 8
            for position, axis in enumerate(axes):
                full[axis] = pads[position]
                full[axis + 4] = pads[position + len(axes)]
            pads = full
        if len(pads) != 8 or any(pads[i] for i in (0, 1, 4, 5)) or min(pads) < 0:
            raise self.refuse(
                node, f"pads {pads}: only non-negative padding of height and width is read"
            )
        t, left, b, r = pads[2], pads[3], pads[6], pads[7]
        c, h, w = x.shape
        out = Tensor("", (c, h + t + b, w + left + r), "nchw")
        self.emit(node, "zeropad", [x], {"padding": _padding((t, left, b, r))}, out)

    def resize(self, node: Any) -> None:
        x = self.spatial(node)
        attrs = _attrs(node)
        mode = _text(attrs.get("mode", "nearest"))
        transform = _text(attrs.get("coordinate_transformation_mode", "half_pixel"))
        nearest = _text(attrs.get("nearest_mode", "round_prefer_floor"))
        if "axes" in attrs or _text(attrs.get("keep_aspect_ratio_policy", "stretch")) != "stretch":
            raise self.refuse(node, "axes and keep_aspect_ratio_policy are not read")
        c, h, w = x.shape
        scales = self.array(node.input[2], node) if len(node.input) > 2 and node.input[2] else None
        if scales is not None and scales.size:
            scales = [float(s) for s in scales.reshape(-1)]
            if len(scales) != 4 or scales[:2] != [1.0, 1.0]:
                raise self.refuse(node, f"scales {scales}: only height and width are resized")
            factors = scales[2:]
            size = (math.floor(h * factors[0]), math.floor(w * factors[1]))
        elif len(node.input) > 3 and node.input[3]:
            sizes = [int(s) for s in self.array(node.input[3], node).reshape(-1)]
            if len(sizes) != 4 or sizes[1] != c:
                raise self.refuse(node, f"sizes {sizes}: only height and width are resized")
            size = (sizes[2], sizes[3])
            factors = [size[0] / h, size[1] / w]
        else:
            raise self.refuse(node, "has neither scales nor sizes")
        whole = all(
            float(f).is_integer() and n == int(f) * m
            for f, n, m in zip(factors, size, (h, w), strict=True)
        )
        if mode == "nearest":
            matches = all(
                np.array_equal(
                    _onnx_nearest(m, n, f, transform, nearest),
                    np.arange(n) // int(f) if whole else _netspec_nearest(m, n),
                )
                for m, n, f in zip((h, w), size, factors, strict=True)
            )
            if not matches:
                raise self.refuse(
                    node,
                    f"nearest resizing with {transform} coordinates and "
                    f"{nearest} rounding picks other pixels than netspec's upsample",
                )
            netspec_mode = "nearest"
        elif mode == "linear" and transform in ("half_pixel", "pytorch_half_pixel"):
            if int(attrs.get("antialias", 0)) and (size[0] < h or size[1] < w):
                raise self.refuse(node, "antialiased downsampling has no netspec form")
            if transform == "pytorch_half_pixel" and 1 in size:
                raise self.refuse(node, "pytorch_half_pixel to a size of 1 has no netspec form")
            netspec_mode = "bilinear"
        else:
            raise self.refuse(
                node,
                f"mode {mode!r} with {transform} coordinates has no netspec "
                "form (nearest, or linear with half_pixel)",
            )
        if whole:
            fields: dict[str, Any] = {"factor": _scalar_or_pair([int(f) for f in factors])}
        else:
            fields = {"size": list(size)}
        fields["mode"] = netspec_mode
        self.emit(node, "upsample", [x], fields, Tensor("", (c, *size), "nchw"))


BN_ROLES = ("scale", "bias", "mean", "var")
"""BatchNormalization's inputs 1 to 4 by role."""


def _onnx_nearest(size: int, out: int, scale: float, transform: str, rounding: str) -> np.ndarray:
    """The source pixel ONNX's nearest Resize takes for each of `out` outputs along one axis."""
    i = np.arange(out, dtype=np.float64)
    if transform in ("half_pixel", "pytorch_half_pixel"):
        x = (i + 0.5) / scale - 0.5
        if transform == "pytorch_half_pixel" and out == 1:
            x = np.zeros_like(i)
    elif transform == "asymmetric":
        x = i / scale
    elif transform == "align_corners":
        x = i * (size - 1) / (out - 1) if out > 1 else np.zeros_like(i)
    else:
        return np.full(out, -1)  # tf_crop_and_resize, half_pixel_symmetric: not read
    picks = {
        "round_prefer_floor": np.ceil(x - 0.5),
        "round_prefer_ceil": np.floor(x + 0.5),
        "floor": np.floor(x),
        "ceil": np.ceil(x),
    }
    if rounding not in picks:
        return np.full(out, -1)
    return np.clip(picks[rounding], 0, size - 1).astype(np.int64)


def _netspec_nearest(size: int, out: int) -> np.ndarray:
    """netspec's (PyTorch's) nearest source pixels resizing `size` to `out` (see the upsample
    layer's docs): `min(floor(i * float32(size / out)), size - 1)`."""
    scale = np.float32(size) / np.float32(out)
    index = np.floor(np.arange(out, dtype=np.float32) * scale).astype(np.int64)
    return np.minimum(index, size - 1)


HANDLERS: dict[str, Callable[[_Walk, Any], None]] = {
    "Conv": _Walk.conv,
    "ConvTranspose": _Walk.conv_transpose,
    "Gemm": _Walk.gemm,
    "MatMul": _Walk.matmul,
    "BatchNormalization": _Walk.batchnorm,
    "LayerNormalization": _Walk.layernorm,
    "Clip": _Walk.clip,
    "MaxPool": _Walk.pool,
    "AveragePool": _Walk.pool,
    "GlobalAveragePool": _Walk.global_pool,
    "GlobalMaxPool": _Walk.global_pool,
    "ReduceMean": _Walk.reduce_mean,
    "Flatten": _Walk.flatten,
    "Reshape": _Walk.reshape,
    "Squeeze": _Walk.squeeze,
    "Unsqueeze": _Walk.squeeze,
    "Transpose": _Walk.transpose,
    "Concat": _Walk.concat,
    "Add": _Walk.elementwise,
    "Mul": _Walk.elementwise,
    "LRN": _Walk.lrn,
    "Softmax": _Walk.softmax,
    "Pad": _Walk.pad,
    "Resize": _Walk.resize,
    **{op: _Walk.pass_through for op in PASS_THROUGH},
    **{op: _Walk.activation for op in ACTIVATIONS},
}
"""ONNX op type -> the walk's method that reads it."""


def check_outputs(spec: Any, path: Path) -> str | None:
    """Run the file in onnxruntime and the imported table (the file's weights loaded by order)
    on one random batch; the line `netspec import` prints, or None without onnxruntime."""
    try:
        import onnxruntime as ort
    except ImportError:
        return None
    import jax.numpy as jnp
    import numpy as np

    from ..weights import load_weights

    height, width, channels = spec.graph.input_shape
    try:
        session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    except Exception as error:  # onnxruntime raises its own types; any failure is reported
        return f"not run in onnxruntime, which cannot load the file: {str(error)[:200]}"
    feed = session.get_inputs()[0]
    batch = feed.shape[0] if isinstance(feed.shape[0], int) and feed.shape[0] > 0 else 2
    x = np.random.default_rng(0).standard_normal((batch, height, width, channels), np.float32)
    nchw = len(feed.shape) == 4 and feed.shape[1] == channels and feed.shape[3] != channels
    try:
        theirs = session.run(None, {feed.name: x.transpose(0, 3, 1, 2) if nchw else x})[0]
    except Exception as error:
        return f"not compared: onnxruntime cannot run the file: {str(error)[:200]}"
    model = load_weights(spec.compiled, path, by="order")
    ours = np.asarray(model(jnp.asarray(x))).reshape(batch, -1)
    if spec.compiled.generated.output_activation == "softmax":  # __call__ returns logits
        ours = np.exp(ours - ours.max(axis=-1, keepdims=True))
        ours /= ours.sum(axis=-1, keepdims=True)
    scale = max(float(np.abs(theirs).max()), 1e-6)  # (an output of zeros: absolute)
    difference = float(np.abs(ours - theirs.reshape(batch, -1)).max()) / scale
    if not difference < 1e-4:
        raise SpecError(
            f"the table's outputs differ from onnxruntime's by {difference:.2g} of the largest, "
            "with the file's weights loaded",
            path=str(path),
            hint="a layer is read with the wrong meaning: please report it with the file",
        )
    return (
        f"outputs equal onnxruntime's on a random batch, the file's weights loaded by order "
        f"(max difference {difference:.1e} of the largest)"
    )
