"""Caffe `.prototxt` (deploy or train_val; `layer {}` and the old V1 `layers {}` syntax) read into
netspec layer types.

Blobs are followed by name: an in-place layer (top == bottom, as Caffe writes ReLU) makes a new
node that later layers read. The input is the `input:`/`input_dim`/`input_shape` header, an
`Input` layer, or a data layer's `transform_param { crop_size }` (3 channels). In a train_val
file the TRAIN phase is read; loss layers mark their first bottom as an output (the largest
`loss_weight` is the main head, the others auxiliary heads with their weights), Accuracy and
Silence layers are dropped. Pooling keeps Caffe's rounding (ceil unless `round_mode: FLOOR`);
BatchNorm followed by Scale is one batch norm with scale and offset.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from ..errors import Location, SpecError
from .ir import ImportedGraph, Node
from .prototxt import Field, Message, parse

V1_TYPES = {
    "CONVOLUTION": "Convolution",
    "DECONVOLUTION": "Deconvolution",
    "INNER_PRODUCT": "InnerProduct",
    "POOLING": "Pooling",
    "RELU": "ReLU",
    "SIGMOID": "Sigmoid",
    "TANH": "TanH",
    "LRN": "LRN",
    "DROPOUT": "Dropout",
    "CONCAT": "Concat",
    "ELTWISE": "Eltwise",
    "SOFTMAX": "Softmax",
    "SOFTMAX_LOSS": "SoftmaxWithLoss",
    "EUCLIDEAN_LOSS": "EuclideanLoss",
    "SIGMOID_CROSS_ENTROPY_LOSS": "SigmoidCrossEntropyLoss",
    "ACCURACY": "Accuracy",
    "DATA": "Data",
    "IMAGE_DATA": "ImageData",
    "HDF5_DATA": "HDF5Data",
    "MEMORY_DATA": "MemoryData",
    "DUMMY_DATA": "DummyData",
    "WINDOW_DATA": "WindowData",
    "SPLIT": "Split",
    "FLATTEN": "Flatten",
    "SILENCE": "Silence",
    "BNLL": "BNLL",
    "POWER": "Power",
}
DATA = {"Data", "ImageData", "HDF5Data", "MemoryData", "DummyData", "WindowData", "Input"}
LOSSES = {
    "SoftmaxWithLoss",
    "EuclideanLoss",
    "SigmoidCrossEntropyLoss",
    "HingeLoss",
    "MultinomialLogisticLoss",
    "InfogainLoss",
}
DROPPED = {"Accuracy", "Silence"}
ACTIVATIONS = {"ReLU": "relu", "Sigmoid": "sigmoid", "TanH": "tanh", "ELU": "elu"}
SUPPORTED = sorted(
    {
        "Convolution",
        "Deconvolution",
        "InnerProduct",
        "Pooling",
        "LRN",
        "Dropout",
        "Concat",
        "Eltwise",
        "BatchNorm",
        "Scale (after BatchNorm)",
        "Softmax",
        "Flatten",
        "Split",
        *ACTIVATIONS,
        *DATA,
        *LOSSES,
        *DROPPED,
    }
)


@dataclass
class _Layer:
    name: str
    type: str
    bottoms: list[str]
    tops: list[str]
    message: Message
    location: Location


def read(path: Path) -> ImportedGraph:
    """The prototxt's network (SpecError located at the layer or field that cannot be read)."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise SpecError(f"cannot read it: {error}", path=str(path)) from None
    net = parse(text, str(path))
    layers = [_layer(entry) for entry in net.fields if entry.name in ("layer", "layers")]
    if not layers:
        raise SpecError(
            "holds no `layer { ... }` (or V1 `layers { ... }`) entries: not a Caffe net",
            net.location,
        )
    return _Reader(path, net, [layer for layer in layers if _in_train_phase(layer)]).graph()


def _layer(entry: Field) -> _Layer:
    message = entry.value
    if not isinstance(message, Message):
        raise SpecError(f"`{entry.name}` must be a message: {entry.name} {{ ... }}", entry.location)
    kind = message.value("type")
    if kind is None:
        raise SpecError("a layer without a `type`", entry.location)
    kind = V1_TYPES.get(str(kind), str(kind))
    name = str(message.value("name", f"{kind.lower()}@{entry.location.line}"))
    return _Layer(
        name,
        kind,
        [str(v) for v in message.values("bottom")],
        [str(v) for v in message.values("top")],
        message,
        entry.location,
    )


def _in_train_phase(layer: _Layer) -> bool:
    for rule in layer.message.values("include"):
        if isinstance(rule, Message) and rule.value("phase") is not None:
            return str(rule.value("phase")) == "TRAIN"
    for rule in layer.message.values("exclude"):
        if isinstance(rule, Message) and str(rule.value("phase")) == "TRAIN":
            return False
    return True


def _param(layer: _Layer, name: str) -> Message:
    """`<name>` of the layer (e.g. convolution_param), or an empty message."""
    value = layer.message.value(name)
    return value if isinstance(value, Message) else Message()


def _pair(message: Message, name: str, default: int | None) -> list[int] | None:
    """Caffe's `name` / `name_h`+`name_w` / repeated `name` as [h, w] (e.g. kernel_size)."""
    stem = name.removesuffix("_size")
    height, width = message.value(f"{stem}_h"), message.value(f"{stem}_w")
    if height is not None or width is not None:
        return [
            int(height if height is not None else width),
            int(width if width is not None else height),
        ]
    values = [int(v) for v in message.values(name)]
    if len(values) == 1:
        return [values[0], values[0]]
    if len(values) == 2:
        return values
    return None if default is None else [default, default]


def _scalar_or_pair(pair: list[int]) -> int | list[int]:
    return pair[0] if pair[0] == pair[1] else pair


class _Reader:
    def __init__(self, path: Path, net: Message, layers: list[_Layer]) -> None:
        self.path, self.net, self.layers = path, net, layers
        self.producer: dict[str, str] = {}  # blob name -> the node that last wrote it
        self.nodes: list[Node] = []
        self.names: set[str] = set()
        self.notes: list[str] = []
        self.losses: list[tuple[str, float, _Layer]] = []
        self.input_shape: tuple[int, int, int] | None = None
        self.input_blobs: set[str] = set()

    def graph(self) -> ImportedGraph:
        self._header_input()
        pending_bn: dict[str, Node] = {}
        for layer in self.layers:
            pending_bn = self._read_layer(layer, pending_bn)
        if self.input_shape is None:
            raise SpecError(
                "no input size: give the net an `input_shape { dim: 1 dim: 3 dim: H dim: W }`, an "
                "Input layer, or a data layer with transform_param { crop_size: N }",
                path=str(self.path),
            )
        outputs, aux = self._outputs()
        name = str(self.net.value("name", self.path.stem))
        return ImportedGraph(
            name=name,
            source=str(self.path),
            format="Caffe prototxt",
            input_shape=self.input_shape,
            nodes=self.nodes,
            outputs=outputs,
            aux=aux,
            notes=self.notes,
        )

    # -- input ---------------------------------------------------------------------------------

    def _header_input(self) -> None:
        inputs = [str(v) for v in self.net.values("input")]
        if not inputs:
            return
        dims = [int(v) for v in self.net.values("input_dim")]
        shape = self.net.value("input_shape")
        if isinstance(shape, Message):
            dims = [int(v) for v in shape.values("dim")]
        self._set_input(inputs[0], dims, self.net.location)

    def _set_input(self, blob: str, dims: list[int], where: Location | None) -> None:
        if len(dims) != 4:
            raise SpecError(
                f"the input {blob!r} has dims {dims}: netspec reads N x C x H x W images", where
            )
        if self.input_shape is not None:
            raise SpecError(
                f"a second network input {blob!r}: netspec specs have one input image", where
            )
        self.input_shape = (dims[2], dims[3], dims[1])
        self.input_blobs.add(blob)
        self.producer[blob] = "input"

    def _data_layer(self, layer: _Layer) -> None:
        if layer.type == "Input":
            shape = _param(layer, "input_param").value("shape")
            dims = [int(v) for v in shape.values("dim")] if isinstance(shape, Message) else []
            self._set_input(layer.tops[0], dims, layer.location)
        else:
            crop = _param(layer, "transform_param").value("crop_size")
            if crop is None:
                raise SpecError(
                    f"data layer {layer.name!r} ({layer.type}) gives no image size (no "
                    "transform_param { crop_size: N }); add one, or an input_shape",
                    layer.location,
                )
            self._set_input(layer.tops[0], [1, 3, int(crop), int(crop)], layer.location)
        for label in layer.tops[1:]:
            self.producer[label] = "label"
        self.notes.append(f"{layer.name} ({layer.type}): the input, {self._shape_text()}")

    def _shape_text(self) -> str:
        height, width, channels = self.input_shape or (0, 0, 0)
        return f"{height}x{width}x{channels}"

    # -- layers --------------------------------------------------------------------------------

    def _inputs(self, layer: _Layer) -> tuple[str, ...]:
        found = []
        for blob in layer.bottoms:
            if blob not in self.producer:
                raise SpecError(
                    f"layer {layer.name!r} reads blob {blob!r}, which no earlier layer writes",
                    layer.location,
                )
            found.append(self.producer[blob])
        return tuple(found)

    def _add(self, layer: _Layer, op: str, fields: dict[str, Any], inputs: tuple[str, ...]) -> Node:
        name = layer.name
        while name in self.names:  # a prototxt may reuse a layer name; netspec's rows may not
            name += "_"
        self.names.add(name)
        node = Node(name, op, inputs, fields, layer.type, layer.location)
        self.nodes.append(node)
        for top in layer.tops:
            self.producer[top] = name
        return node

    def _read_layer(self, layer: _Layer, pending_bn: dict[str, Node]) -> dict[str, Node]:
        kind = layer.type
        if kind in DATA:
            self._data_layer(layer)
            return pending_bn
        if kind in DROPPED:
            self.notes.append(f"{layer.name} ({kind}): dropped (evaluation only)")
            return pending_bn
        if kind in LOSSES:  # the prediction is its first bottom; the labels are not read
            prediction = self._inputs(replace(layer, bottoms=layer.bottoms[:1]))[0]
            weights = [float(v) for v in layer.message.values("loss_weight")] or [1.0]
            self.losses.append((prediction, weights[0], layer))
            self.notes.append(
                f"{layer.name} ({kind}, loss weight {weights[0]:g}) on {layer.bottoms[0]}: dropped,"
                " its input is a head"
            )
            return pending_bn
        inputs = self._inputs(layer)
        if "label" in inputs:
            raise SpecError(f"layer {layer.name!r} ({kind}) reads the labels", layer.location)
        if kind == "Split":
            for top in layer.tops:
                self.producer[top] = inputs[0]
            return pending_bn
        if kind == "Scale":
            bn = pending_bn.get(inputs[0])
            if bn is None:
                raise self._unsupported(layer, "Scale is read only right after a BatchNorm")
            bias = bool(_param(layer, "scale_param").value("bias_term", "false") in (True, "true"))
            bn.fields.update(scale=True, center=bias)
            for top in layer.tops:
                self.producer[top] = bn.name
            return {}
        node = self._convert(layer, inputs)
        return {node.name: node} if node.op == "batchnorm" else {}

    def _convert(self, layer: _Layer, inputs: tuple[str, ...]) -> Node:
        kind = layer.type
        if kind in ("Convolution", "Deconvolution"):
            return self._add(layer, *self._convolution(layer), inputs)
        if kind == "InnerProduct":
            p = _param(layer, "inner_product_param")
            fields = {"units": self._int(layer, p, "num_output"), "bias": _bool(p, "bias_term")}
            return self._add(layer, "dense", fields, inputs)
        if kind == "Pooling":
            return self._add(layer, *self._pooling(layer), inputs)
        if kind == "LRN":
            p = _param(layer, "lrn_param")
            if str(p.value("norm_region", "ACROSS_CHANNELS")) not in ("ACROSS_CHANNELS", "0"):
                raise self._unsupported(layer, "LRN with norm_region WITHIN_CHANNEL")
            fields = {
                "size": int(p.value("local_size", 5)),
                "alpha": float(p.value("alpha", 1.0)),
                "beta": float(p.value("beta", 0.75)),
                "k": float(p.value("k", 1.0)),
            }
            return self._add(layer, "lrn", fields, inputs)
        if kind in ACTIVATIONS:
            slope = float(_param(layer, "relu_param").value("negative_slope", 0.0))
            if kind == "ReLU" and slope != 0.0:
                raise self._unsupported(layer, f"ReLU with negative_slope {slope:g}")
            return self._add(layer, ACTIVATIONS[kind], {}, inputs)
        if kind == "Dropout":
            rate = float(_param(layer, "dropout_param").value("dropout_ratio", 0.5))
            return self._add(layer, "dropout", {"rate": rate}, inputs)
        if kind == "Concat":
            p = _param(layer, "concat_param")
            axis = int(p.value("axis", p.value("concat_dim", 1)))
            if axis != 1:
                raise self._unsupported(layer, f"Concat on axis {axis} (netspec joins channels)")
            return self._add(layer, "concat", {}, inputs)
        if kind == "Eltwise":
            p = _param(layer, "eltwise_param")
            operation = str(p.value("operation", "SUM"))
            if p.all("coeff"):
                raise self._unsupported(layer, "Eltwise with coefficients")
            ops = {"SUM": "add", "1": "add", "PROD": "multiply", "0": "multiply"}
            if operation not in ops:
                raise self._unsupported(layer, f"Eltwise {operation}")
            return self._add(layer, ops[operation], {}, inputs)
        if kind == "BatchNorm":
            p = _param(layer, "batch_norm_param")
            fields = {
                "eps": float(p.value("eps", 1e-5)),
                "momentum": float(p.value("moving_average_fraction", 0.999)),
                "scale": False,
                "center": False,
            }
            return self._add(layer, "batchnorm", fields, inputs)
        if kind == "Softmax":
            return self._add(layer, "softmax", {}, inputs)
        if kind == "Flatten":
            return self._add(layer, "flatten", {}, inputs)
        raise self._unsupported(layer, f"layer type {kind!r}")

    def _int(self, layer: _Layer, message: Message, name: str) -> int:
        value = message.value(name)
        if not isinstance(value, int) or value < 1:
            raise SpecError(
                f"layer {layer.name!r} ({layer.type}): {name} must be a whole number >= 1, got "
                f"{value!r}",
                layer.location,
            )
        return value

    def _convolution(self, layer: _Layer) -> tuple[str, dict[str, Any]]:
        p = _param(layer, "convolution_param")
        kernel = _pair(p, "kernel_size", None)
        if kernel is None:
            raise SpecError(
                f"layer {layer.name!r} ({layer.type}): no kernel_size (or kernel_h/kernel_w)",
                layer.location,
            )
        fields: dict[str, Any] = {
            "filters": self._int(layer, p, "num_output"),
            "kernel": _scalar_or_pair(kernel),
            "stride": _scalar_or_pair(_pair(p, "stride", 1) or [1, 1]),
            "padding": _scalar_or_pair(_pair(p, "pad", 0) or [0, 0]),
            "groups": int(p.value("group", 1)),
            "bias": _bool(p, "bias_term"),
        }
        if layer.type == "Convolution":
            fields["dilation"] = _scalar_or_pair(_pair(p, "dilation", 1) or [1, 1])
            return "conv", fields
        if _pair(p, "dilation", 1) != [1, 1]:
            raise self._unsupported(layer, "Deconvolution with dilation")
        return "conv_transpose", fields

    def _pooling(self, layer: _Layer) -> tuple[str, dict[str, Any]]:
        p = _param(layer, "pooling_param")
        method = str(p.value("pool", "MAX"))
        op = {"MAX": "maxpool", "0": "maxpool", "AVE": "avgpool", "1": "avgpool"}.get(method)
        if op is None:
            raise self._unsupported(layer, f"Pooling {method}")
        if str(p.value("global_pooling", "false")) == "true":
            if op == "maxpool":
                raise self._unsupported(layer, "global MAX pooling")
            return "global_avgpool", {}
        kernel = _pair(p, "kernel_size", None)
        if kernel is None:
            raise SpecError(
                f"layer {layer.name!r} (Pooling): no kernel_size and not global_pooling",
                layer.location,
            )
        rounding = "floor" if str(p.value("round_mode", "CEIL")) in ("FLOOR", "1") else "ceil"
        return op, {
            "kernel": _scalar_or_pair(kernel),
            "stride": _scalar_or_pair(_pair(p, "stride", 1) or [1, 1]),
            "padding": _scalar_or_pair(_pair(p, "pad", 0) or [0, 0]),
            "rounding": rounding,
        }

    def _unsupported(self, layer: _Layer, what: str) -> SpecError:
        return SpecError(
            f"layer {layer.name!r}: {what} is not supported",
            layer.location,
            hint="supported layer types: " + ", ".join(SUPPORTED),
        )

    # -- heads ---------------------------------------------------------------------------------

    def _outputs(self) -> tuple[list[str], dict[str, float]]:
        if self.losses:
            ranked = sorted(
                range(len(self.losses)), key=lambda i: (-self.losses[i][1], -i)
            )  # the heaviest loss, the last one written on a tie
            main = self.losses[ranked[0]][0]
            aux = {node: weight for node, weight, _ in self.losses if node != main and weight > 0}
            return [main, *aux], aux
        read = {name for node in self.nodes for name in node.inputs}
        ends = [node.name for node in self.nodes if node.name not in read]
        if not ends:
            raise SpecError("the net has no layers after its input", path=str(self.path))
        if len(ends) > 1:
            raise SpecError(
                f"the net ends in {len(ends)} layers ({', '.join(ends)}) and has no loss layers "
                "to tell the main output from the auxiliary ones",
                path=str(self.path),
            )
        return ends, {}


def _bool(message: Message, name: str) -> bool:
    value = message.value(name, "true")
    return value is True or str(value) == "true"
