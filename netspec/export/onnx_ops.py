"""ONNX converters, one per netspec layer type, registered with `@onnx_converter("conv")`.

A converter writes one graph node's standard ONNX ops into an `OnnxGraph` and returns the
`Value` it computes. Inside the graph tensors are NCHW `(B, C, H, W)`; a flat `1x1xN` value may
instead be kept as `(B, N)` (`Value.flat`: after a dense or flatten row), and `OnnxGraph.nchw`
/ `OnnxGraph.flat` convert between the two where a converter needs one of them. Each converter
reproduces its Flax module in netspec/flax_layers.py in eval mode (batch norm with running
statistics, dropout as identity); a parameter combination ONNX cannot express raises
`ExportError`, which the exporter turns into a located SpecError.

Nothing here imports JAX: parameters arrive as NumPy arrays keyed by their state path.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from onnx import GraphProto, helper

from ..emit import state_path
from ..graph import Node
from ..layers import REGISTRY
from ..shapes import (
    conv_transpose_crops,
    explicit_padding,
    pair,
    resolve_padding,
    slice_bounds,
    split_bounds,
)

Shape = tuple[int, int, int]
Pads = tuple[tuple[int, int], tuple[int, int]]


class ExportError(Exception):
    """A node's parameters that its ONNX converter cannot express; `field` names the parameter
    at fault (the exporter points the SpecError at it) and `hint` what would export."""

    def __init__(self, message: str, hint: str | None = None, field: str | None = None) -> None:
        super().__init__(message)
        self.hint = hint
        self.field = field


@dataclass(frozen=True)
class Value:
    """A tensor of the ONNX graph: its name, its netspec shape `(H, W, C)` and its layout,
    NCHW `(B, C, H, W)`, or `(B, C)` when `flat` (only for a `(1, 1, C)` shape)."""

    name: str
    shape: Shape
    flat: bool = False


@dataclass(frozen=True)
class Call:
    """One node to convert: the node, its validated params model, its input values (in the
    node's order), its output shape from the analysis, and its ONNX name."""

    node: Node
    p: Any
    inputs: tuple[Value, ...]
    out_shape: Shape
    name: str

    @property
    def x(self) -> Value:
        """The first (for most layers the only) input."""
        return self.inputs[0]


Converter = Callable[["OnnxGraph", Call], Value]

CONVERTERS: dict[str, Converter] = {}
"""Layer type -> its ONNX converter (filled by `@onnx_converter`)."""


def onnx_converter(*names: str) -> Callable[[Converter], Converter]:
    """Function decorator: register the function as the ONNX converter of each layer type in
    `names`; a type that already has one is refused (RuntimeError)."""

    def register(function: Converter) -> Converter:
        for name in names:
            if name in CONVERTERS:
                raise RuntimeError(
                    f"two ONNX converters for layer type {name!r}: "
                    f"{CONVERTERS[name].__name__} and {function.__name__}"
                )
            CONVERTERS[name] = function
        return function

    return register


def converter_for(op: str) -> Converter | None:
    """The converter of layer type `op`, or of the type it is a preset of (`relu` is an
    `activation`); None if neither has one."""
    if op in CONVERTERS:
        return CONVERTERS[op]
    layer = REGISTRY.get(op)
    return CONVERTERS.get(layer.preset_of) if layer is not None and layer.preset_of else None


def exportable_types() -> list[str]:
    """The registered layer types that have a converter, sorted."""
    return sorted(name for name in REGISTRY if converter_for(name) is not None)


NAME_CHARACTERS = re.compile(r"[^0-9A-Za-z_./:-]")


def sanitise(name: str) -> str:
    """A node or tensor name from a netspec name: characters other than letters, digits and
    `_ . / : -` become `_` (netspec's paths such as `inception_3a/b3x3/reduce` stay)."""
    return NAME_CHARACTERS.sub("_", name) or "_"


class OnnxGraph:
    """The ONNX graph being written into `proto` (nodes and initializers go straight in: a
    large model's weights are not copied again), with unique names, the opset, the model's
    parameters (state path -> float32 array) and the doc string of the node being converted."""

    def __init__(
        self, proto: GraphProto, opset: int, params: Mapping[tuple[str | int, ...], np.ndarray]
    ) -> None:
        self.proto = proto
        self.opset = opset
        self.params = params
        self.doc = ""
        self._names: set[str] = set()
        self._layouts: dict[tuple[str, bool], str] = {}
        self._scalars: dict[float, str] = {}

    def reserve(self, name: str) -> None:
        """Keep `name` (the graph's input and output) from being given to any node."""
        self._names.add(name)

    def unique(self, name: str) -> str:
        """`name` sanitised, with `_1`, `_2`, ... appended if it is taken; now taken."""
        base = sanitise(name)
        candidate, count = base, 0
        while candidate in self._names:
            count += 1
            candidate = f"{base}_{count}"
        self._names.add(candidate)
        return candidate

    def add(
        self, op: str, inputs: Sequence[str], name: str, *, exact: bool = False, **attrs: Any
    ) -> str:
        """Append node `op` named `name` (made unique, unless `exact`: a reserved name) reading
        `inputs` ('' skips an optional input); returns its one output, named as the node."""
        output = name if exact else self.unique(name)
        node = self.proto.node.add()
        node.op_type, node.name = op, output
        node.input.extend(inputs)
        node.output.append(output)
        node.attribute.extend(helper.make_attribute(k, v) for k, v in sorted(attrs.items()))
        if self.doc:
            node.doc_string = self.doc
        return output

    def initializer(self, name: str, array: np.ndarray) -> str:
        """Store `array` (float arrays as float32, integers as int64) as an initializer;
        returns its name."""
        dtype = np.float32 if np.issubdtype(array.dtype, np.floating) else np.int64
        tensor = self.proto.initializer.add()
        tensor.name = self.unique(name)
        tensor.data_type = helper.np_dtype_to_tensor_dtype(np.dtype(dtype))
        tensor.dims.extend(array.shape)
        tensor.raw_data = np.asarray(array, np.dtype(dtype).newbyteorder("<")).tobytes()
        return tensor.name

    def ints(self, name: str, values: Sequence[int]) -> str:
        """An int64 vector initializer (shapes, pads, axes)."""
        return self.initializer(name, np.asarray(list(values), np.int64))

    def scalar(self, value: float) -> str:
        """A float32 scalar initializer, shared by every node that uses the same value."""
        if value not in self._scalars:
            self._scalars[value] = self.initializer(f"const/{value!r}", np.float32(value))
        return self._scalars[value]

    def param(self, node: Node, variable: str) -> np.ndarray:
        """The model's variable `variable` (`kernel`, `bias`, `mean`, ...) of `node`."""
        path = (*state_path(node.name), variable)
        if path not in self.params:
            shown = "/".join(str(p) for p in path)
            raise ExportError(f"the model has no variable {shown} for this {node.op} row")
        return np.asarray(self.params[path], np.float32)

    def nchw(self, value: Value) -> str:
        """`value` as an NCHW tensor: a flat `(B, C)` one gains two unit axes."""
        if not value.flat:
            return value.name
        key = (value.name, False)
        if key not in self._layouts:
            axes = self.ints(f"{value.name}/unsqueeze_axes", [2, 3])
            self._layouts[key] = self.add("Unsqueeze", [value.name, axes], f"{value.name}/nchw")
        return self._layouts[key]

    def flat(self, value: Value) -> str:
        """`value` (shape `1x1xC`) as a `(B, C)` tensor."""
        if value.flat:
            return value.name
        if tuple(value.shape[:2]) != (1, 1):
            raise ExportError(f"a {value.shape} value is not flat")  # the analysis prevents it
        key = (value.name, True)
        if key not in self._layouts:
            self._layouts[key] = self.add("Flatten", [value.name], f"{value.name}/flat", axis=1)
        return self._layouts[key]

    def same_layout(self, values: Sequence[Value]) -> tuple[list[str], bool]:
        """The names of `values` in one layout: flat if every value is `1x1xC`, else NCHW; and
        whether that layout is flat."""
        flat = all(tuple(v.shape[:2]) == (1, 1) for v in values) and any(v.flat for v in values)
        names = [self.flat(v) if flat else self.nchw(v) for v in values]
        return names, flat

    def channel_vector(self, name: str, array: np.ndarray, flat: bool) -> str:
        """A per-channel `(C,)` array stored to broadcast over the layout: `(C, 1, 1)` for NCHW,
        `(C,)` for flat."""
        return self.initializer(name, array if flat else array.reshape(-1, 1, 1))


# ----------------------------------------------------------------------------- activations


def _gelu(g: OnnxGraph, x: str, name: str) -> str:
    """x * (1 + erf(x / sqrt 2)) / 2 (the Gelu op from opset 20)."""
    if g.opset >= 20:
        return g.add("Gelu", [x], name, approximate="none")
    erf = g.add(
        "Erf", [g.add("Div", [x, g.scalar(math.sqrt(2.0))], f"{name}/scaled")], f"{name}/erf"
    )
    cdf = g.add("Add", [erf, g.scalar(1.0)], f"{name}/cdf")
    return g.add("Mul", [g.add("Mul", [x, g.scalar(0.5)], f"{name}/half"), cdf], name)


def _gelu_tanh(g: OnnxGraph, x: str, name: str) -> str:
    """x / 2 * (1 + tanh(sqrt(2 / pi) * (x + 0.044715 x^3))) (Gelu tanh from opset 20)."""
    if g.opset >= 20:
        return g.add("Gelu", [x], name, approximate="tanh")
    cube = g.add("Mul", [g.add("Mul", [x, x], f"{name}/square"), x], f"{name}/cube")
    inner = g.add("Add", [x, g.add("Mul", [cube, g.scalar(0.044715)], f"{name}/c3")], f"{name}/in")
    scaled = g.add("Mul", [inner, g.scalar(math.sqrt(2.0 / math.pi))], f"{name}/scaled")
    cdf = g.add("Add", [g.add("Tanh", [scaled], f"{name}/tanh"), g.scalar(1.0)], f"{name}/cdf")
    return g.add("Mul", [g.add("Mul", [x, g.scalar(0.5)], f"{name}/half"), cdf], name)


def _mish(g: OnnxGraph, x: str, name: str) -> str:
    """x * tanh(softplus(x)) (the Mish op from opset 18)."""
    if g.opset >= 18:
        return g.add("Mish", [x], name)
    softplus = g.add("Softplus", [x], f"{name}/softplus")
    return g.add("Mul", [x, g.add("Tanh", [softplus], f"{name}/tanh")], name)


ACTIVATIONS: dict[str, Callable[[OnnxGraph, str, str], str]] = {
    "none": lambda g, x, name: x,
    "linear": lambda g, x, name: x,
    "relu": lambda g, x, name: g.add("Relu", [x], name),
    "relu6": lambda g, x, name: g.add("Clip", [x, g.scalar(0.0), g.scalar(6.0)], name),
    "tanh": lambda g, x, name: g.add("Tanh", [x], name),
    "sigmoid": lambda g, x, name: g.add("Sigmoid", [x], name),
    "softmax": lambda g, x, name: g.add("Softmax", [x], name, axis=1),  # channels, either layout
    "gelu": _gelu,
    "silu": lambda g, x, name: g.add("Mul", [x, g.add("Sigmoid", [x], f"{name}/gate")], name),
    "elu": lambda g, x, name: g.add("Elu", [x], name, alpha=1.0),
    "leaky_relu": lambda g, x, name: g.add("LeakyRelu", [x], name, alpha=0.01),
    "softplus": lambda g, x, name: g.add("Softplus", [x], name),
    "gelu_tanh": _gelu_tanh,
    "hardswish": lambda g, x, name: g.add("HardSwish", [x], name),  # x * relu6(x + 3) / 6
    "hardsigmoid": lambda g, x, name: g.add("HardSigmoid", [x], name, alpha=1 / 6, beta=0.5),
    "mish": _mish,
}
"""Element-wise activation by netspec name (flax_layers.ACTIVATIONS): `(graph, input, name)`
-> output; `none` and `linear` write nothing."""


def activate(g: OnnxGraph, x: str, fn: str, name: str) -> str:
    """Apply activation `fn` to tensor `x`; `name` names the (last) node."""
    if fn not in ACTIVATIONS:
        raise ExportError(
            f"activation {fn!r} has no ONNX form",
            hint="activations that export: " + ", ".join(ACTIVATIONS),
            field="activation",
        )
    return ACTIVATIONS[fn](g, x, name)


@onnx_converter("activation")
def convert_activation(g: OnnxGraph, call: Call) -> Value:
    """`activation FN` and its shortcut types (`relu`, ...); either layout."""
    x = call.x
    if call.p.fn in ("none", "linear"):
        return Value(g.add("Identity", [x.name], call.name), call.out_shape, x.flat)
    return Value(activate(g, x.name, call.p.fn, call.name), call.out_shape, x.flat)


# ----------------------------------------------------------------------------- weighted layers


def onnx_pads(pads: Pads) -> list[int]:
    """`((top, bottom), (left, right))` -> ONNX's `[top, left, bottom, right]`."""
    (top, bottom), (left, right) = pads
    return [top, left, bottom, right]


@onnx_converter("conv")
def convert_conv(g: OnnxGraph, call: Call) -> Value:
    """Conv (grouped, dilated, padded as netspec resolves `same`), then the row's activation.
    Kernel `(kh, kw, C / groups, F)` -> ONNX `(F, C / groups, kh, kw)`."""
    p, node = call.p, call.node
    kernel, stride, dilation = pair(p.kernel), pair(p.stride), pair(p.dilation)
    pads = resolve_padding(p.padding, call.x.shape, kernel, stride, dilation)
    weight = g.param(node, "kernel").transpose(3, 2, 0, 1)
    inputs = [g.nchw(call.x), g.initializer(f"{call.name}/kernel", weight)]
    if p.bias:
        inputs.append(g.initializer(f"{call.name}/bias", g.param(node, "bias")))
    y = g.add(
        "Conv",
        inputs,
        call.name,
        kernel_shape=list(kernel),
        strides=list(stride),
        dilations=list(dilation),
        pads=onnx_pads(pads),
        group=int(p.groups),
    )
    return Value(activate(g, y, p.activation, f"{call.name}/{p.activation}"), call.out_shape)


@onnx_converter("conv_transpose")
def convert_conv_transpose(g: OnnxGraph, call: Call) -> Value:
    """ConvTranspose as PyTorch's ConvTranspose2d, then the row's activation. Kernel
    `(kh, kw, C, F / groups)` -> ONNX `(C, F / groups, kh, kw)`; netspec's crops of the full
    output become pads, a negative (added) bottom/right crop `output_padding`."""
    p, node = call.p, call.node
    kernel, stride = pair(p.kernel), pair(p.stride)
    crops = conv_transpose_crops(call.x.shape, kernel, stride, p.padding, p.output_padding)
    pads = ((crops[0][0], max(crops[0][1], 0)), (crops[1][0], max(crops[1][1], 0)))
    extra = [max(-crops[0][1], 0), max(-crops[1][1], 0)]
    weight = g.param(node, "kernel").transpose(2, 3, 0, 1)
    inputs = [g.nchw(call.x), g.initializer(f"{call.name}/kernel", weight)]
    if p.bias:
        inputs.append(g.initializer(f"{call.name}/bias", g.param(node, "bias")))
    y = g.add(
        "ConvTranspose",
        inputs,
        call.name,
        kernel_shape=list(kernel),
        strides=list(stride),
        pads=onnx_pads(pads),
        output_padding=extra,
        group=int(p.groups),
    )
    return Value(activate(g, y, p.activation, f"{call.name}/{p.activation}"), call.out_shape)


@onnx_converter("dense")
def convert_dense(g: OnnxGraph, call: Call) -> Value:
    """Gemm on the flat `(B, N)` input with kernel `(N, units)`, then the activation; the
    output stays flat `(B, units)`."""
    p, node = call.p, call.node
    inputs = [g.flat(call.x), g.initializer(f"{call.name}/kernel", g.param(node, "kernel"))]
    if p.bias:
        inputs.append(g.initializer(f"{call.name}/bias", g.param(node, "bias")))
    y = g.add("Gemm", inputs, call.name)
    return Value(activate(g, y, p.activation, f"{call.name}/{p.activation}"), call.out_shape, True)


@onnx_converter("batchnorm")
def convert_batchnorm(g: OnnxGraph, call: Call) -> Value:
    """BatchNormalization in inference mode: `(x - mean) / sqrt(var + eps) * scale + bias` with
    the running statistics; either layout (ONNX normalises axis 1)."""
    p, node, channels = call.p, call.node, call.x.shape[2]
    scale = g.param(node, "scale") if p.scale else np.ones(channels, np.float32)
    bias = g.param(node, "bias") if p.center else np.zeros(channels, np.float32)
    inputs = [
        call.x.name,
        g.initializer(f"{call.name}/scale", scale),
        g.initializer(f"{call.name}/bias", bias),
        g.initializer(f"{call.name}/mean", g.param(node, "mean")),
        g.initializer(f"{call.name}/var", g.param(node, "var")),
    ]
    y = g.add("BatchNormalization", inputs, call.name, epsilon=float(p.eps))
    return Value(y, call.out_shape, call.x.flat)


@onnx_converter("layernorm")
def convert_layernorm(g: OnnxGraph, call: Call) -> Value:
    """LayerNormalization over the channels: on a flat input directly, on NCHW between two
    transposes (channels last, as netspec's layer norm normalises each pixel)."""
    p, node, x = call.p, call.node, call.x
    scale = g.param(node, "scale") if p.scale else np.ones(x.shape[2], np.float32)
    source = x.name
    if not x.flat:
        source = g.add("Transpose", [x.name], f"{call.name}/nhwc", perm=[0, 2, 3, 1])
    inputs = [source, g.initializer(f"{call.name}/scale", scale)]
    if p.center:
        inputs.append(g.initializer(f"{call.name}/bias", g.param(node, "bias")))
    eps = float(p.eps)
    if x.flat:
        y = g.add("LayerNormalization", inputs, call.name, axis=-1, epsilon=eps)
        return Value(y, call.out_shape, True)
    y = g.add("LayerNormalization", inputs, f"{call.name}/norm", axis=-1, epsilon=eps)
    return Value(g.add("Transpose", [y], call.name, perm=[0, 3, 1, 2]), call.out_shape)


@onnx_converter("groupnorm")
def convert_groupnorm(g: OnnxGraph, call: Call) -> Value:
    """Group norm without opset 21's GroupNormalization: reshape NCHW to `(B, groups, -1)`,
    InstanceNormalization (unit scale, zero bias) normalises each group, reshape back, then
    the per-channel scale and bias."""
    p, node = call.p, call.node
    h, w, channels = call.x.shape
    groups, name = int(p.groups), call.name
    grouped = g.add(
        "Reshape", [g.nchw(call.x), g.ints(f"{name}/groups", [0, groups, -1])], f"{name}/grouped"
    )
    ones = g.initializer(f"{name}/unit_scale", np.ones(groups, np.float32))
    zeros = g.initializer(f"{name}/zero_bias", np.zeros(groups, np.float32))
    normed = g.add(
        "InstanceNormalization", [grouped, ones, zeros], f"{name}/norm", epsilon=float(p.eps)
    )
    y = g.add(
        "Reshape",
        [normed, g.ints(f"{name}/shape", [0, channels, h, w])],
        f"{name}/ungrouped" if p.scale or p.center else name,
    )
    if p.scale:
        scale = g.channel_vector(f"{name}/scale", g.param(node, "scale"), False)
        y = g.add("Mul", [y, scale], f"{name}/scaled" if p.center else name)
    if p.center:
        y = g.add("Add", [y, g.channel_vector(f"{name}/bias", g.param(node, "bias"), False)], name)
    return Value(y, call.out_shape)


@onnx_converter("layer_scale")
def convert_layer_scale(g: OnnxGraph, call: Call) -> Value:
    """Mul by the per-channel `gamma`; either layout."""
    x = call.x
    gamma = g.channel_vector(f"{call.name}/gamma", g.param(call.node, "gamma"), x.flat)
    return Value(g.add("Mul", [x.name, gamma], call.name), call.out_shape, x.flat)


@onnx_converter("lrn")
def convert_lrn(g: OnnxGraph, call: Call) -> Value:
    """LRN: ONNX's `x / (bias + alpha / size * square sum) ** beta` over `size` channels centred
    on each one is netspec's (Caffe's) formula with bias = k."""
    p = call.p
    y = g.add(
        "LRN",
        [g.nchw(call.x)],
        call.name,
        size=int(p.size),
        alpha=float(p.alpha),
        beta=float(p.beta),
        bias=float(p.k),
    )
    return Value(y, call.out_shape)


# ----------------------------------------------------------------------------- pooling


@dataclass(frozen=True)
class PoolWindow:
    """A pooling row's window along both axes: kernel, stride, netspec's explicit pads
    `((top, bottom), (left, right))`, and `reach`: how far past the bottom/right input edge
    the last window reaches (negative: it ends inside), which ceil rounding may make more
    than the padding."""

    kernel: tuple[int, int]
    stride: tuple[int, int]
    pads: Pads
    reach: tuple[int, int]

    @classmethod
    def of(cls, call: Call) -> PoolWindow:
        p, (h, w, _), (oh, ow, _) = call.p, call.x.shape, call.out_shape
        kernel = pair(p.kernel)
        stride = pair(p.stride if p.stride is not None else p.kernel)
        pads = resolve_padding(p.padding, call.x.shape, kernel, stride)
        reach = tuple(
            (out - 1) * s + k - size - low
            for out, s, k, size, (low, _) in zip(
                (oh, ow), stride, kernel, (h, w), pads, strict=True
            )
        )
        return cls(kernel, stride, pads, (reach[0], reach[1]))

    @property
    def pads_fit(self) -> bool:
        """Whether every pad is smaller than the window (onnxruntime refuses larger ones)."""
        return all(
            low < k and high < k for (low, high), k in zip(self.pads, self.kernel, strict=True)
        )

    @property
    def widened(self) -> bool:
        """Whether ceil rounding lets the last window hang past the padding."""
        return any(r > high for r, (_, high) in zip(self.reach, self.pads, strict=True))

    def onnx_pads(self, prepadded: bool) -> list[int]:
        """ONNX pads that make a floor-rounded pool give exactly netspec's output size: the top
        / left pads, and at the bottom / right what the last window reaches (none if ahead of
        the pool an explicit Pad node added the padding: `prepadded`)."""
        if prepadded:
            return [
                0,
                0,
                *(max(r - high, 0) for r, (_, high) in zip(self.reach, self.pads, strict=True)),
            ]
        return [self.pads[0][0], self.pads[1][0], max(self.reach[0], 0), max(self.reach[1], 0)]


def prepad(g: OnnxGraph, call: Call, window: PoolWindow, value: float) -> str:
    """The NCHW input with netspec's padding written out by a Pad node filled with `value`."""
    (top, bottom), (left, right) = window.pads
    pads = g.ints(f"{call.name}/pads", [0, 0, top, left, 0, 0, bottom, right])
    return g.add("Pad", [g.nchw(call.x), pads, g.scalar(value)], f"{call.name}/padded")


@onnx_converter("maxpool")
def convert_maxpool(g: OnnxGraph, call: Call) -> Value:
    """MaxPool, floor-rounded with the bottom/right pads netspec's rounding implies (pads never
    win a max); pads as large as the window go into a Pad node of -inf first."""
    window = PoolWindow.of(call)
    x = g.nchw(call.x) if window.pads_fit else prepad(g, call, window, -math.inf)
    y = g.add(
        "MaxPool",
        [x],
        call.name,
        kernel_shape=list(window.kernel),
        strides=list(window.stride),
        pads=window.onnx_pads(prepadded=not window.pads_fit),
    )
    return Value(y, call.out_shape)


@onnx_converter("avgpool")
def convert_avgpool(g: OnnxGraph, call: Call) -> Value:
    """AveragePool with netspec's (PyTorch's) divisors: with `count_include_pad` the window
    clipped to the padded input, else the input cells it covers. Where a ceil-rounded window
    hangs past the padding and pads count, the padding is a Pad node of zeros and the pool
    counts the cells of the padded input."""
    window, include = PoolWindow.of(call), bool(call.p.count_include_pad)
    padded = any(v for side in window.pads for v in side)
    if not window.pads_fit and not include:
        raise ExportError(
            "average pooling with padding as large as the window and count_include_pad=false "
            "has windows over padding only (netspec gives 0 there), which ONNX AveragePool "
            "cannot express",
            hint="use padding smaller than the window, or count_include_pad=true",
            field="padding",
        )
    prepadded = include and padded and (window.widened or not window.pads_fit)
    x = prepad(g, call, window, 0.0) if prepadded else g.nchw(call.x)
    y = g.add(
        "AveragePool",
        [x],
        call.name,
        kernel_shape=list(window.kernel),
        strides=list(window.stride),
        pads=window.onnx_pads(prepadded),
        count_include_pad=int(include and not prepadded and not window.widened),
    )
    return Value(y, call.out_shape)


@onnx_converter("global_avgpool")
def convert_global_avgpool(g: OnnxGraph, call: Call) -> Value:
    """GlobalAveragePool: NCHW -> `(B, C, 1, 1)`."""
    return Value(g.add("GlobalAveragePool", [g.nchw(call.x)], call.name), call.out_shape)


# ----------------------------------------------------------------------------- shape and merges


@onnx_converter("flatten")
def convert_flatten(g: OnnxGraph, call: Call) -> Value:
    """Flatten in netspec's (height, width, channel) order: NCHW is transposed to NHWC first
    (unless H = W = 1); the output is flat `(B, H * W * C)`."""
    x = call.x
    if x.flat:
        return Value(g.add("Identity", [x.name], call.name), call.out_shape, True)
    source = x.name
    if tuple(x.shape[:2]) != (1, 1):
        source = g.add("Transpose", [x.name], f"{call.name}/nhwc", perm=[0, 2, 3, 1])
    return Value(g.add("Flatten", [source], call.name, axis=1), call.out_shape, True)


@onnx_converter("zeropad")
def convert_zeropad(g: OnnxGraph, call: Call) -> Value:
    """Pad with zeros around height and width."""
    (top, bottom), (left, right) = explicit_padding(call.p.padding)
    pads = g.ints(f"{call.name}/pads", [0, 0, top, left, 0, 0, bottom, right])
    return Value(g.add("Pad", [g.nchw(call.x), pads], call.name), call.out_shape)


@onnx_converter("dropout", "drop_path")
def convert_identity(g: OnnxGraph, call: Call) -> Value:
    """Dropout and stochastic depth: identity at inference."""
    x = call.x
    return Value(g.add("Identity", [x.name], call.name), call.out_shape, x.flat)


@onnx_converter("concat")
def convert_concat(g: OnnxGraph, call: Call) -> Value:
    """Concat on the channels (axis 1 in either layout)."""
    names, flat = g.same_layout(call.inputs)
    return Value(g.add("Concat", names, call.name, axis=1), call.out_shape, flat)


def elementwise(g: OnnxGraph, call: Call, op: str) -> Value:
    """A chain of binary `op` (Add, Mul) over the inputs; ONNX broadcasts a `(B, C, 1, 1)`
    gate or a `(B, 1, H, W)` mask as netspec does. One input: Identity."""
    names, flat = g.same_layout(call.inputs)
    if len(names) == 1:
        return Value(g.add("Identity", names, call.name), call.out_shape, flat)
    y = names[0]
    for index, other in enumerate(names[1:], start=2):
        last = index == len(names)
        y = g.add(op, [y, other], call.name if last else f"{call.name}/{op.lower()}{index}")
    return Value(y, call.out_shape, flat)


@onnx_converter("add")
def convert_add(g: OnnxGraph, call: Call) -> Value:
    """Element-wise sum with broadcasting."""
    return elementwise(g, call, "Add")


@onnx_converter("multiply")
def convert_multiply(g: OnnxGraph, call: Call) -> Value:
    """Element-wise product with broadcasting (squeeze-excitation gates)."""
    return elementwise(g, call, "Mul")


def channel_range(g: OnnxGraph, call: Call, start: int, stop: int) -> Value:
    """Slice channels `[start, stop)` (axis 1 in either layout)."""
    x, name = call.x, call.name
    inputs = [
        x.name,
        g.ints(f"{name}/starts", [start]),
        g.ints(f"{name}/ends", [stop]),
        g.ints(f"{name}/axes", [1]),
    ]
    return Value(g.add("Slice", inputs, name), call.out_shape, x.flat)


@onnx_converter("slice")
def convert_slice(g: OnnxGraph, call: Call) -> Value:
    """The channels `[start, stop)` as netspec resolves negative and unset bounds."""
    return channel_range(g, call, *slice_bounds(call.x.shape, call.p.start, call.p.stop))


@onnx_converter("split")
def convert_split(g: OnnxGraph, call: Call) -> Value:
    """Piece `index` of `parts` equal channel pieces, as a Slice."""
    return channel_range(g, call, *split_bounds(call.x.shape, call.p.parts, call.p.index))


@onnx_converter("channel_shuffle")
def convert_channel_shuffle(g: OnnxGraph, call: Call) -> Value:
    """Reshape NCHW to `(B, groups, C / groups, H, W)`, swap axes 1 and 2, reshape back."""
    h, w, channels = call.x.shape
    groups, name = int(call.p.groups), call.name
    split = g.ints(f"{name}/grouped_shape", [0, groups, channels // groups, h, w])
    grouped = g.add("Reshape", [g.nchw(call.x), split], f"{name}/grouped")
    swapped = g.add("Transpose", [grouped], f"{name}/swapped", perm=[0, 2, 1, 3, 4])
    shape = g.ints(f"{name}/shape", [0, channels, h, w])
    return Value(g.add("Reshape", [swapped, shape], name), call.out_shape)


# ----------------------------------------------------------------------------- upsampling


def nearest_indices(size: int, out: int) -> np.ndarray:
    """netspec's (PyTorch's) nearest source pixels along one axis (flax_layers'
    `_nearest_indices`, restated without JAX)."""
    if out == size:
        return np.arange(out, dtype=np.int64)
    if out == 2 * size:
        return np.arange(out, dtype=np.int64) // 2
    scale = np.float32(size) / np.float32(out)
    index = np.floor(np.arange(out, dtype=np.float32) * scale).astype(np.int64)
    return np.minimum(index, size - 1)


def gather_nearest(g: OnnxGraph, call: Call) -> str:
    """Nearest resizing to a fixed size as two Gathers of netspec's source indices (exact;
    Resize's float scale can round a source index differently)."""
    (h, w, _), (oh, ow, _) = call.x.shape, call.out_shape
    y = g.nchw(call.x)
    steps = [(axis, nearest_indices(size, out)) for axis, size, out in ((2, h, oh), (3, w, ow))]
    steps = [
        (axis, index) for axis, index in steps if not np.array_equal(index, np.arange(index.size))
    ]
    if not steps:
        return g.add("Identity", [y], call.name)
    for position, (axis, index) in enumerate(steps):
        label = "rows" if axis == 2 else "columns"
        indices = g.initializer(f"{call.name}/{label}", index)
        last = position == len(steps) - 1
        y = g.add(
            "Gather", [y, indices], call.name if last else f"{call.name}/{label}_picked", axis=axis
        )
    return y


def resize_sizes(g: OnnxGraph, call: Call, x: str) -> str:
    """The int64 `[B, C, out_h, out_w]` Resize needs for a fixed output size under a dynamic
    batch: the input's first two dimensions joined to the constant height and width."""
    name, (oh, ow, _) = call.name, call.out_shape
    shape = g.add("Shape", [x], f"{name}/in_shape")
    lead = g.add(
        "Slice",
        [shape, g.ints(f"{name}/lead_start", [0]), g.ints(f"{name}/lead_end", [2])],
        f"{name}/batch_channels",
    )
    return g.add("Concat", [lead, g.ints(f"{name}/size", [oh, ow])], f"{name}/sizes", axis=0)


@onnx_converter("upsample")
def convert_upsample(g: OnnxGraph, call: Call) -> Value:
    """Resize: `nearest` by a factor repeats pixels (asymmetric coordinates, floor), to a size
    gathers netspec's source pixels; `bilinear` is half-pixel linear without antialiasing
    (PyTorch's align_corners=False), by integer scales or to the exact size."""
    p, name = call.p, call.name
    if p.mode == "nearest" and p.size is not None:
        return Value(gather_nearest(g, call), call.out_shape)
    x = g.nchw(call.x)
    if p.size is None:
        fh, fw = pair(p.factor if p.factor is not None else 2)
        scales = g.initializer(f"{name}/scales", np.asarray([1, 1, fh, fw], np.float32))
        inputs = [x, "", scales]
    else:
        inputs = [x, "", "", resize_sizes(g, call, x)]
    if p.mode == "nearest":
        attrs = {
            "mode": "nearest",
            "coordinate_transformation_mode": "asymmetric",
            "nearest_mode": "floor",
        }
    else:
        attrs = {"mode": "linear", "coordinate_transformation_mode": "half_pixel"}
    return Value(g.add("Resize", inputs, name, **attrs), call.out_shape)
