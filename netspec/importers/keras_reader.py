"""Keras model configs read into netspec layer types: `model.to_json()` text (`.json`) or a `.keras`
archive (its config.json; its model.weights.h5 gives each layer's parameter count).

Keras 3's format, and Keras 2's `to_json` where it differs (tensor references as nested lists,
`batch_input_shape`, LeakyReLU's `alpha`). Functional models are read in execution order
(`keras_source.config_order`: depth first from the outputs, as netspec's weight import pairs
layers); Sequential models in their list order. Only channels-last images.

The reader follows each tensor's (height, width, channels) through the graph, by per-layer
rules, because some layers need it: a DepthwiseConv2D becomes a conv with groups = its input
channels, a Reshape is read only where it is a flatten or the (1, 1, C) reshape of
squeeze-excitation, and a Dense layer only reads a flat or 1x1 input (Keras applies it per pixel
otherwise, netspec flattens). Nothing from the file is run or deserialised by Keras: the config is
JSON, the weights are read as HDF5 shapes only.
"""

from __future__ import annotations

import io
import json
import math
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import Location, SpecError
from ..weights.keras_source import (
    BadFile,
    ConfigLayer,
    child,
    child_path,
    config_order,
    is_model_config,
    parse_config,
    saved_names,
    tensor_refs,
    zip_member,
)
from .ir import ImportedGraph, Node

ACTIVATIONS = {
    "linear": None,
    "relu": "relu",
    "relu6": "relu6",
    "tanh": "tanh",
    "sigmoid": "sigmoid",
    "softmax": "softmax",
    "gelu": "gelu",  # Keras's default is the exact (erf) form, as netspec's gelu
    "silu": "silu",
    "swish": "silu",
    "elu": "elu",
    "softplus": "softplus",
    "hard_silu": "hardswish",
    "hard_swish": "hardswish",
    "hard_sigmoid": "hardsigmoid",  # Keras 3: relu6(x + 3) / 6 (Keras 2's was 0.2x + 0.5)
    "mish": "mish",
}
"""Keras activation name -> netspec activation (None: the identity)."""

LEAKY_SLOPE = 0.01
"""The negative slope of netspec's `leaky_relu`."""

PASS_THROUGH = {
    "GaussianNoise": "adds noise in training only; identity in inference",
    "GaussianDropout": "multiplies by noise in training only; identity in inference",
    "ActivityRegularization": "adds a loss term only; identity in inference",
}
PREPROCESSING = ("Rescaling", "Normalization")
WEIGHTED = ("Conv2D", "DepthwiseConv2D", "SeparableConv2D", "Dense", "BatchNormalization")
STATE = ("moving_mean", "moving_variance")
"""Variables that are running statistics, not trainable parameters."""

SUPPORTED = sorted(
    {
        "InputLayer",
        *WEIGHTED,
        "MaxPooling2D",
        "AveragePooling2D",
        "GlobalAveragePooling2D",
        "GlobalMaxPooling2D",
        "Dropout",
        "SpatialDropout2D",
        *PASS_THROUGH,
        "Activation",
        "ReLU",
        "LeakyReLU",
        "ELU",
        "Softmax",
        "Concatenate",
        "Add",
        "Multiply",
        "ZeroPadding2D",
        "Flatten",
        "Reshape (a flatten, or to (1, 1, C))",
        "Rescaling/Normalization (at the input only)",
    }
)

Shape = tuple[int, ...]
"""A tensor's shape without the batch: (height, width, channels), or (features,) when flat."""


@dataclass(frozen=True)
class _Tensor:
    """What a Keras layer's output is in the imported graph: the node that computes it (or the
    graph's input name) and its shape."""

    node: str
    shape: Shape


# --- files -----------------------------------------------------------------------------------


def read(path: Path) -> ImportedGraph:
    """The model in a `.json` (`model.to_json()`) or `.keras` file as netspec layer types;
    SpecError (located, for broken JSON) for what cannot be read."""
    path = Path(path)
    try:
        if zipfile.is_zipfile(path):
            text, weights = _read_archive(path)
        elif path.suffix.lower() == ".keras":
            raise BadFile("not a zip archive, as a .keras file is (truncated, or another format)")
        else:
            text, weights = path.read_bytes(), None
        model = _parse(text, path, "config.json" if weights is not None else None)
        params = _weight_sizes(weights, model) if weights is not None else None
    except BadFile as error:
        raise SpecError(f"not a readable Keras model: {error}", path=str(path)) from None
    except OSError as error:
        raise SpecError(f"cannot read it: {error}", path=str(path)) from None
    return _Reader(path, model, params).graph()


def _read_archive(path: Path) -> tuple[bytes, bytes | None]:
    """A `.keras` zip's config.json and (if present) model.weights.h5, size-checked."""
    with zipfile.ZipFile(path) as archive:
        names = set(archive.namelist())
        if "config.json" not in names:
            raise BadFile("a zip without config.json (not a .keras file)")
        text = zip_member(archive, "config.json")
        weights = None
        if "model.weights.h5" in names:
            weights = zip_member(archive, "model.weights.h5")
    return text, weights


def _parse(text: bytes, path: Path, member: str | None) -> dict[str, Any]:
    """The model config in `text`: broken JSON is a SpecError at its line and column."""
    file = f"{path}:{member}" if member else str(path)
    try:
        json.loads(text)
    except json.JSONDecodeError as error:
        raise SpecError(
            f"not valid JSON: {error.msg}", Location(file, error.lineno, error.colno)
        ) from None
    except (ValueError, RecursionError) as error:
        raise SpecError(f"not valid JSON: {error}", path=file) from None
    return parse_config(text, member or "the file")


def _weight_sizes(weights: bytes, model: dict[str, Any]) -> dict[str, dict[str, int]]:
    """Layer name -> {variable name: element count}, from a Keras 3 model.weights.h5 (shapes
    only; no values read). Only the layers netspec counts parameters of (WEIGHTED)."""
    import h5py

    sizes: dict[str, dict[str, int]] = {}
    try:
        with h5py.File(io.BytesIO(weights), "r") as handle:
            for layer in config_order(model):
                if layer.class_name in WEIGHTED:
                    sizes[layer.name] = _layer_sizes(handle, layer)
    except (OSError, ValueError, KeyError, TypeError) as error:
        first = (str(error).strip().splitlines() or [type(error).__name__])[0]
        raise BadFile(f"its model.weights.h5: {first}") from None
    return sizes


def _layer_sizes(handle: Any, layer: ConfigLayer) -> dict[str, int]:
    names = saved_names(layer.class_name, layer.config)
    if layer.h5_path not in handle:
        if names:
            raise BadFile(f"it holds no weights for layer {layer.name!r} ({layer.h5_path})")
        return {}
    group = child_path(handle, layer.h5_path)
    stored = child(group, "vars") if "vars" in group else None
    keys = sorted(stored, key=lambda k: int(k) if k.isdigit() else -1) if stored else []
    if names is None or len(names) != len(keys) or keys != [str(i) for i in range(len(keys))]:
        raise BadFile(
            f"layer {layer.name!r} ({layer.class_name}) stores {len(keys)} variables where its "
            f"config gives {len(names or ())} ({', '.join(names or ())})"
        )
    return {
        name: math.prod(child(stored, key).shape or ())
        for name, key in zip(names, keys, strict=True)
    }


# --- config values ---------------------------------------------------------------------------


def _pair(value: Any, what: str) -> tuple[int, int]:
    """A Keras int-or-pair (kernel_size, strides, ...) as (height, width)."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value, value
    if (
        isinstance(value, (list, tuple))
        and len(value) == 2
        and all(isinstance(v, int) and not isinstance(v, bool) for v in value)
    ):
        return value[0], value[1]
    raise BadFile(f"{what} is {value!r}, not an integer or a pair of integers")


def _count(config: dict[str, Any], key: str, default: int | None = None) -> int:
    """A whole-number option >= 1 (filters, units, groups, depth_multiplier)."""
    value = config.get(key, default)
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise BadFile(f"{key} is {value!r}, not a whole number >= 1")
    return value


def _scalar_or_pair(pair: tuple[int, int]) -> int | list[int]:
    return pair[0] if pair[0] == pair[1] else list(pair)


def _same_or_valid(value: Any, what: str) -> str:
    if value not in ("same", "valid"):
        raise BadFile(f"{what} is {value!r}, not 'same' or 'valid'")
    return str(value)


def _conv_size(size: int, kernel: int, stride: int, dilation: int, padding: str) -> int:
    """One output dimension of a Keras conv or pooling layer (pixels)."""
    if padding == "same":
        return -(-size // stride)
    return (size - dilation * (kernel - 1) - 1) // stride + 1


def _activation_name(value: Any) -> str:
    """A Keras activation config (a name, or Keras 3's serialised function) as its name."""
    if value is None:
        return "linear"
    if isinstance(value, dict):
        inner = value.get("config")
        value = inner if isinstance(inner, str) else value.get("class_name")
    if not isinstance(value, str):
        raise BadFile(f"an activation {str(value)[:60]} that is not a named function")
    return value.rsplit(".", 1)[-1]


def _padding_pixels(value: Any) -> tuple[tuple[int, int], tuple[int, int]]:
    """ZeroPadding2D's padding: p, (ph, pw) or ((top, bottom), (left, right))."""
    if (
        isinstance(value, (list, tuple))
        and len(value) == 2
        and all(isinstance(v, (list, tuple)) for v in value)
    ):
        top, bottom = _pair(list(value[0]), "its padding")
        left, right = _pair(list(value[1]), "its padding")
        return (top, bottom), (left, right)
    height, width = _pair(value, "its padding")
    return (height, height), (width, width)


# --- the graph -------------------------------------------------------------------------------


class _Reader:
    """One model config turned into nodes, layer by layer in execution order."""

    def __init__(
        self,
        path: Path,
        model: dict[str, Any],
        params: dict[str, dict[str, int]] | None,
    ) -> None:
        self.path, self.model, self.params = path, model, params
        self.config: dict[str, Any] = model["config"]
        self.keras2 = str(model.get("keras_version", "3")).startswith("2")
        self.nodes: list[Node] = []
        self.notes: list[str] = []
        self.tensors: dict[str, _Tensor] = {}
        self.input_name = "input"
        self.input_shape: tuple[int, int, int] | None = None
        self.layer: ConfigLayer | None = None  # the one being read, for messages

    # -- driver --------------------------------------------------------------------------------

    def graph(self) -> ImportedGraph:
        entries = self.config["layers"]
        for entry in entries:
            if isinstance(entry, dict) and is_model_config(entry.get("config") or {}):
                name = entry.get("name", entry["config"].get("name"))
                raise SpecError(
                    f"layer {name!r} is a nested model ({entry.get('class_name')}), which the "
                    "import does not read",
                    path=str(self.path),
                    hint="rebuild the model with the nested model's layers inline",
                )
        try:
            layers = config_order(self.model)
        except BadFile as error:
            raise SpecError(f"not a readable Keras model: {error}", path=str(self.path)) from None
        names = {layer.name for layer in layers}
        if "input" in names:
            self.input_name = "input_"
        sequential = "output_layers" not in self.config
        by_name = {_entry_name(entry): entry for entry in entries}
        previous: _Tensor | None = None
        if sequential:
            previous = self._sequential_input(layers)
        for layer in layers:
            self.layer = layer
            try:
                if sequential:
                    inputs = [previous] if previous is not None else []
                else:
                    inputs = self._functional_inputs(by_name[layer.name])
                previous = self._read_layer(layer, inputs)
            except (ValueError, TypeError) as error:  # BadFile, or a value of the wrong type
                raise self._error(str(error)) from None
            self.tensors[layer.name] = previous
        self.layer = None
        outputs = self._outputs(layers)
        if self.input_shape is None:
            raise SpecError(
                "no input size: the model has no InputLayer and its first layer no "
                "batch_input_shape",
                path=str(self.path),
            )
        aux = {name: 1.0 for name in outputs[1:]}
        for name in aux:
            self.notes.append(
                f"{name}: a second model output, read as an auxiliary head (weight 1)"
            )
        total = None
        if self.params is not None:
            total = sum(node.params or 0 for node in self.nodes)
        return ImportedGraph(
            name=str(self.config.get("name") or self.path.stem),
            source=str(self.path),
            format="Keras config" + (" (.keras archive)" if self.params is not None else ""),
            input_shape=self.input_shape,
            nodes=self.nodes,
            outputs=outputs,
            input_name=self.input_name,
            aux=aux,
            source_params=total,
            notes=self.notes,
        )

    def _sequential_input(self, layers: list[ConfigLayer]) -> _Tensor | None:
        """A Sequential model's input, from its first layer's batch shape (or the model's
        build_input_shape) when it has no InputLayer."""
        if not layers or layers[0].class_name == "InputLayer":
            return None
        first = layers[0].config
        shape = first.get("batch_input_shape", first.get("batch_shape"))
        if shape is None:
            shape = self.config.get("build_input_shape")
        if shape is None:
            return None
        self.layer = layers[0]
        try:
            return self._set_input(shape)
        except BadFile as error:
            raise self._error(str(error)) from None

    def _functional_inputs(self, entry: dict[str, Any]) -> list[_Tensor]:
        nodes = entry.get("inbound_nodes") or []
        if len(nodes) > 1:
            raise BadFile(
                f"it is called {len(nodes)} times (a shared layer); netspec rows hold their own "
                "weights, so each call would need its own layer"
            )
        found = []
        for name, call in tensor_refs(nodes[0]) if nodes else ():
            if call != 0 or name not in self.tensors:
                raise BadFile(
                    f"it reads call {call} of layer {name!r}, which is not read before it"
                )
            found.append(self.tensors[name])
        return found

    def _outputs(self, layers: list[ConfigLayer]) -> list[str]:
        if "output_layers" in self.config:
            refs = [name for name, _ in tensor_refs(self.config["output_layers"])]
        else:
            refs = [layers[-1].name] if layers else []
        outputs = list(dict.fromkeys(self.tensors[name].node for name in refs))
        if not outputs or self.input_name in outputs:
            raise SpecError(
                "the model computes nothing from its input (no layers to import)",
                path=str(self.path),
            )
        return outputs

    # -- helpers -------------------------------------------------------------------------------

    def _error(self, message: str, hint: str | None = None) -> SpecError:
        layer = self.layer
        where = f"layer {layer.name!r} ({layer.class_name}): " if layer else ""
        return SpecError(where + message, path=str(self.path), hint=hint)

    def _unsupported(self, what: str) -> SpecError:
        return self._error(
            f"{what} is not supported",
            hint="supported Keras layers: " + ", ".join(SUPPORTED),
        )

    def _add(
        self,
        op: str,
        fields: dict[str, Any],
        inputs: list[_Tensor],
        shape: Shape,
        *,
        suffix: str = "",
        params: int | None = None,
    ) -> _Tensor:
        assert self.layer is not None
        name = self.layer.name + suffix
        if params is None and self.params is not None:
            params = 0  # a weights file says: no variables
        node = Node(
            name,
            op,
            tuple(t.node for t in inputs),
            fields,
            source_type=self.layer.class_name,
            params=params,
        )
        self.nodes.append(node)
        return _Tensor(name, shape)

    def _sizes(self) -> dict[str, int] | None:
        """The current layer's variable sizes from the weights file (None: no weights file)."""
        if self.params is None:
            return None
        assert self.layer is not None
        return self.params.get(self.layer.name, {})

    def _params(self, *names: str) -> int | None:
        """The current layer's trainable parameters among variables `names` (None: unknown)."""
        sizes = self._sizes()
        return None if sizes is None else sum(sizes.get(n, 0) for n in names)

    def _set_input(self, shape: Any) -> _Tensor:
        if self.input_shape is not None:
            raise BadFile("a second model input: netspec specs have one input image")
        if (
            not isinstance(shape, list)
            or len(shape) != 4
            or not all(isinstance(d, int) and d > 0 for d in shape[1:])
        ):
            raise BadFile(
                f"the input shape {shape} is not (batch, height, width, channels) with every "
                "size fixed: netspec imports image models of one input size"
            )
        self.input_shape = (shape[1], shape[2], shape[3])
        return _Tensor(self.input_name, tuple(shape[1:]))

    def _image(self, tensor: _Tensor) -> tuple[int, int, int]:
        if len(tensor.shape) != 3:
            raise BadFile(f"its input has shape {tensor.shape}, not (height, width, channels)")
        height, width, channels = tensor.shape
        return height, width, channels

    def _channels_last(self, config: dict[str, Any]) -> None:
        if config.get("data_format") not in (None, "channels_last"):
            raise BadFile(
                f"data_format {config.get('data_format')!r}: netspec reads channels_last only"
            )

    def _one(self, inputs: list[_Tensor]) -> _Tensor:
        if len(inputs) != 1:
            raise BadFile(f"it reads {len(inputs)} tensors, not one")
        return inputs[0]

    def _channel_axis(self, axis: Any, tensor: _Tensor) -> None:
        """Concatenate's or BatchNormalization's axis must be the channels (the last)."""
        if isinstance(axis, list) and len(axis) == 1:
            axis = axis[0]
        if axis not in (-1, len(tensor.shape)):
            raise BadFile(
                f"axis {axis!r} is not the channels axis (-1) of its {tensor.shape} input"
            )

    def _activation(self, config: dict[str, Any]) -> dict[str, Any]:
        """The `activation` field for a conv or dense layer's Keras activation."""
        name = _activation_name(config.get("activation"))
        fn = self._function(name)
        return {} if fn is None else {"activation": fn}

    def _function(self, name: str) -> str | None:
        if name == "hard_sigmoid" and self.keras2:
            raise BadFile(
                "Keras 2's hard_sigmoid (0.2x + 0.5) differs from netspec's (relu6(x + 3) / 6)"
            )
        if name == "leaky_relu":
            raise BadFile(
                f"activation 'leaky_relu' has Keras's slope 0.2; netspec's is {LEAKY_SLOPE}"
            )
        if name not in ACTIVATIONS:
            raise BadFile(
                f"activation {name!r} has no netspec equivalent (netspec has "
                f"{', '.join(sorted(a for a in set(ACTIVATIONS.values()) if a))})"
            )
        return ACTIVATIONS[name]

    # -- layers --------------------------------------------------------------------------------

    def _read_layer(self, layer: ConfigLayer, inputs: list[_Tensor]) -> _Tensor:
        kind, config = layer.class_name, layer.config
        if kind == "InputLayer":
            shape = config.get("batch_shape", config.get("batch_input_shape"))
            if shape is None and isinstance(config.get("shape"), list):
                shape = [None, *config["shape"]]
            return self._set_input(shape)
        if not inputs:
            raise BadFile("it reads no tensor (a model without an InputLayer or input shape?)")
        if kind in PREPROCESSING:
            tensor = self._one(inputs)
            if tensor.node != self.input_name:
                raise self._unsupported(f"{kind} inside the network (only at its input)")
            self.notes.append(
                f"{layer.name} ({kind}): preprocessing at the input, not imported; feed the "
                "spec images already preprocessed"
            )
            return tensor
        self._channels_last(config)
        method = getattr(self, f"_layer_{kind}", None)
        if method is None:
            raise self._unsupported(f"layer class {kind!r}")
        return method(config, inputs)

    def _conv(
        self,
        config: dict[str, Any],
        tensor: _Tensor,
        filters: int,
        groups: int,
        *,
        bias: bool,
        suffix: str = "",
        params: int | None = None,
        activation: dict[str, Any] | None = None,
    ) -> _Tensor:
        height, width, channels = self._image(tensor)
        kernel = _pair(config.get("kernel_size"), "kernel_size")
        stride = _pair(config.get("strides", 1), "strides")
        dilation = _pair(config.get("dilation_rate", 1), "dilation_rate")
        padding = _same_or_valid(config.get("padding", "valid"), "padding")
        if channels % groups or filters % groups:
            raise BadFile(f"groups={groups} does not divide {channels} in and {filters} out")
        out = tuple(
            _conv_size(n, k, s, d, padding)
            for n, k, s, d in zip((height, width), kernel, stride, dilation, strict=True)
        )
        if min(out) < 1:
            raise BadFile(f"its output would be empty ({out[0]}x{out[1]} from {height}x{width})")
        fields = {
            "filters": filters,
            "kernel": _scalar_or_pair(kernel),
            "stride": _scalar_or_pair(stride),
            "padding": padding,
            "dilation": _scalar_or_pair(dilation),
            "groups": groups,
            "bias": bias,
            **(activation or {}),
        }
        return self._add("conv", fields, [tensor], (*out, filters), suffix=suffix, params=params)

    def _layer_Conv2D(self, config: dict[str, Any], inputs: list[_Tensor]) -> _Tensor:
        bias = config.get("use_bias", True) is not False
        return self._conv(
            config,
            self._one(inputs),
            _count(config, "filters"),
            _count(config, "groups", 1),
            bias=bias,
            params=self._params("kernel", "bias"),
            activation=self._activation(config),
        )

    def _depthwise(self, config: dict[str, Any], tensor: _Tensor, **kwargs: Any) -> _Tensor:
        """A conv with groups = the input's channels C and C * depth_multiplier filters."""
        channels = self._image(tensor)[2]
        multiplier = _count(config, "depth_multiplier", 1)
        return self._conv(config, tensor, channels * multiplier, channels, **kwargs)

    def _layer_DepthwiseConv2D(self, config: dict[str, Any], inputs: list[_Tensor]) -> _Tensor:
        bias = config.get("use_bias", True) is not False
        params = self._params("kernel", "depthwise_kernel", "bias")
        activation = self._activation(config)
        return self._depthwise(
            config, self._one(inputs), bias=bias, params=params, activation=activation
        )

    def _layer_SeparableConv2D(self, config: dict[str, Any], inputs: list[_Tensor]) -> _Tensor:
        """A depthwise conv (`<name>/depthwise`, no bias) then a 1x1 conv (`<name>/pointwise`,
        with the bias and activation), as netspec's weight import splits it."""
        filters = _count(config, "filters")
        activation = self._activation(config)
        depthwise = self._depthwise(
            config,
            self._one(inputs),
            bias=False,
            suffix="/depthwise",
            params=self._params("depthwise_kernel"),
        )
        pointwise = {"kernel_size": 1, "strides": 1, "dilation_rate": 1, "padding": "valid"}
        return self._conv(
            pointwise,
            depthwise,
            filters,
            1,
            bias=config.get("use_bias", True) is not False,
            suffix="/pointwise",
            params=self._params("pointwise_kernel", "bias"),
            activation=activation,
        )

    def _layer_Dense(self, config: dict[str, Any], inputs: list[_Tensor]) -> _Tensor:
        tensor = self._one(inputs)
        units = _count(config, "units")
        if len(tensor.shape) == 3 and tensor.shape[:2] != (1, 1):
            raise BadFile(
                f"it reads a {'x'.join(map(str, tensor.shape))} tensor: Keras applies Dense to "
                "each pixel, netspec's dense flattens first (add a Flatten, or use a 1x1 Conv2D)"
            )
        fields = {
            "units": units,
            "bias": config.get("use_bias", True) is not False,
            **self._activation(config),
        }
        shape = (*tensor.shape[:-1], units)
        return self._add("dense", fields, [tensor], shape, params=self._params("kernel", "bias"))

    def _layer_BatchNormalization(self, config: dict[str, Any], inputs: list[_Tensor]) -> _Tensor:
        tensor = self._one(inputs)
        self._channel_axis(config.get("axis", -1), tensor)
        if config.get("renorm"):
            raise self._unsupported("batch renormalization (renorm=True)")
        fields = {
            "eps": float(config.get("epsilon", 1e-3)),
            "momentum": float(config.get("momentum", 0.99)),
            "scale": config.get("scale", True) is not False,
            "center": config.get("center", True) is not False,
        }
        params = self._params("gamma", "beta")
        return self._add("batchnorm", fields, [tensor], tensor.shape, params=params)

    def _pool(self, op: str, config: dict[str, Any], inputs: list[_Tensor]) -> _Tensor:
        tensor = self._one(inputs)
        height, width, channels = self._image(tensor)
        kernel = _pair(config.get("pool_size", 2), "pool_size")
        strides = config.get("strides")
        stride = kernel if strides is None else _pair(strides, "strides")
        padding = _same_or_valid(config.get("padding", "valid"), "padding")
        out = tuple(
            _conv_size(n, k, s, 1, padding)
            for n, k, s in zip((height, width), kernel, stride, strict=True)
        )
        if min(out) < 1:
            raise BadFile(f"its output would be empty ({out[0]}x{out[1]} from {height}x{width})")
        fields: dict[str, Any] = {
            "kernel": _scalar_or_pair(kernel),
            "stride": _scalar_or_pair(stride),
            "padding": padding,
        }
        if op == "avgpool" and padding == "same":
            fields["count_include_pad"] = False  # Keras divides by the pixels inside the image
        return self._add(op, fields, [tensor], (*out, channels))

    def _layer_MaxPooling2D(self, config: dict[str, Any], inputs: list[_Tensor]) -> _Tensor:
        return self._pool("maxpool", config, inputs)

    def _layer_AveragePooling2D(self, config: dict[str, Any], inputs: list[_Tensor]) -> _Tensor:
        return self._pool("avgpool", config, inputs)

    def _layer_GlobalAveragePooling2D(
        self, config: dict[str, Any], inputs: list[_Tensor]
    ) -> _Tensor:
        tensor = self._one(inputs)
        channels = self._image(tensor)[2]
        shape = (1, 1, channels) if config.get("keepdims") else (channels,)
        return self._add("global_avgpool", {}, [tensor], shape)

    def _layer_GlobalMaxPooling2D(self, config: dict[str, Any], inputs: list[_Tensor]) -> _Tensor:
        """A max pool over the whole image (netspec has no global max pool of its own)."""
        tensor = self._one(inputs)
        height, width, channels = self._image(tensor)
        kernel = height if height == width else [height, width]
        fields = {"kernel": kernel, "stride": 1, "padding": "valid", "rounding": "floor"}
        shape = (1, 1, channels) if config.get("keepdims") else (channels,)
        return self._add("maxpool", fields, [tensor], shape)

    def _layer_Dropout(self, config: dict[str, Any], inputs: list[_Tensor]) -> _Tensor:
        tensor = self._one(inputs)
        rate = config.get("rate", 0.5)
        if not isinstance(rate, (int, float)) or not 0 <= rate < 1:
            raise BadFile(f"rate is {rate!r}, not a number >= 0 and < 1")
        return self._add("dropout", {"rate": float(rate)}, [tensor], tensor.shape)

    def _layer_SpatialDropout2D(self, config: dict[str, Any], inputs: list[_Tensor]) -> _Tensor:
        assert self.layer is not None
        self.notes.append(
            f"{self.layer.name} (SpatialDropout2D): a dropout row, which drops single values in "
            "training, not whole channels (the same in inference)"
        )
        return self._layer_Dropout(config, inputs)

    def _pass_through(self, inputs: list[_Tensor]) -> _Tensor:
        assert self.layer is not None
        kind = self.layer.class_name
        self.notes.append(f"{self.layer.name} ({kind}): not imported; {PASS_THROUGH[kind]}")
        return self._one(inputs)

    def _layer_GaussianNoise(self, config: dict[str, Any], inputs: list[_Tensor]) -> _Tensor:
        return self._pass_through(inputs)

    def _layer_GaussianDropout(self, config: dict[str, Any], inputs: list[_Tensor]) -> _Tensor:
        return self._pass_through(inputs)

    def _layer_ActivityRegularization(
        self, config: dict[str, Any], inputs: list[_Tensor]
    ) -> _Tensor:
        return self._pass_through(inputs)

    def _apply(self, fn: str | None, inputs: list[_Tensor]) -> _Tensor:
        tensor = self._one(inputs)
        if fn is None:
            return tensor
        return self._add(fn, {}, [tensor], tensor.shape)

    def _layer_Activation(self, config: dict[str, Any], inputs: list[_Tensor]) -> _Tensor:
        return self._apply(self._function(_activation_name(config.get("activation"))), inputs)

    def _layer_ReLU(self, config: dict[str, Any], inputs: list[_Tensor]) -> _Tensor:
        top = config.get("max_value")
        slope = float(config.get("negative_slope") or 0.0)
        threshold = float(config.get("threshold") or 0.0)
        if threshold == 0 and slope == 0 and top is None:
            return self._apply("relu", inputs)
        if threshold == 0 and slope == 0 and top is not None and float(top) == 6.0:
            return self._apply("relu6", inputs)
        if threshold == 0 and top is None and math.isclose(slope, LEAKY_SLOPE):
            return self._apply("leaky_relu", inputs)
        raise self._unsupported(
            f"ReLU with max_value={top}, negative_slope={slope:g}, threshold={threshold:g} "
            f"(netspec has relu, relu6 and leaky_relu with slope {LEAKY_SLOPE})"
        )

    def _layer_LeakyReLU(self, config: dict[str, Any], inputs: list[_Tensor]) -> _Tensor:
        slope = config.get("negative_slope", config.get("alpha", 0.3))
        if not isinstance(slope, (int, float)) or not math.isclose(slope, LEAKY_SLOPE):
            raise self._unsupported(
                f"LeakyReLU with slope {slope} (netspec's leaky_relu has slope {LEAKY_SLOPE})"
            )
        return self._apply("leaky_relu", inputs)

    def _layer_ELU(self, config: dict[str, Any], inputs: list[_Tensor]) -> _Tensor:
        if float(config.get("alpha", 1.0)) != 1.0:
            raise self._unsupported(f"ELU with alpha {config.get('alpha')} (netspec's is 1)")
        return self._apply("elu", inputs)

    def _layer_Softmax(self, config: dict[str, Any], inputs: list[_Tensor]) -> _Tensor:
        tensor = self._one(inputs)
        self._channel_axis(config.get("axis", -1), tensor)
        return self._apply("softmax", inputs)

    def _layer_Concatenate(self, config: dict[str, Any], inputs: list[_Tensor]) -> _Tensor:
        if len(inputs) < 2:
            raise BadFile(f"it joins {len(inputs)} tensor(s), not two or more")
        for tensor in inputs:
            self._channel_axis(config.get("axis", -1), tensor)
        spatial = {t.shape[:-1] for t in inputs}
        if len(spatial) != 1:
            raise BadFile(f"its inputs differ in size: {[t.shape for t in inputs]}")
        shape = (*inputs[0].shape[:-1], sum(t.shape[-1] for t in inputs))
        return self._add("concat", {}, inputs, shape)

    def _merge(self, op: str, inputs: list[_Tensor]) -> _Tensor:
        if len(inputs) < 2:
            raise BadFile(f"it combines {len(inputs)} tensor(s), not two or more")
        ranks = {len(t.shape) for t in inputs}
        if len(ranks) != 1:
            raise BadFile(f"its inputs differ in rank: {[t.shape for t in inputs]}")
        shape = tuple(max(sizes) for sizes in zip(*(t.shape for t in inputs), strict=True))
        broadcast = {shape}
        if len(shape) == 3:  # netspec broadcasts a per-channel or a per-pixel input
            broadcast |= {(1, 1, shape[2]), (shape[0], shape[1], 1)}
        if any(t.shape not in broadcast for t in inputs):
            raise BadFile(f"its inputs do not broadcast: {[t.shape for t in inputs]}")
        return self._add(op, {}, inputs, shape)

    def _layer_Add(self, config: dict[str, Any], inputs: list[_Tensor]) -> _Tensor:
        return self._merge("add", inputs)

    def _layer_Multiply(self, config: dict[str, Any], inputs: list[_Tensor]) -> _Tensor:
        return self._merge("multiply", inputs)

    def _layer_ZeroPadding2D(self, config: dict[str, Any], inputs: list[_Tensor]) -> _Tensor:
        tensor = self._one(inputs)
        height, width, channels = self._image(tensor)
        (top, bottom), (left, right) = _padding_pixels(config.get("padding", 1))
        if top == bottom and left == right:
            padding: Any = _scalar_or_pair((top, left))
        else:
            padding = [[top, bottom], [left, right]]
        shape = (height + top + bottom, width + left + right, channels)
        return self._add("zeropad", {"padding": padding}, [tensor], shape)

    def _layer_Flatten(self, config: dict[str, Any], inputs: list[_Tensor]) -> _Tensor:
        tensor = self._one(inputs)
        return self._add("flatten", {}, [tensor], (math.prod(tensor.shape),))

    def _layer_Reshape(self, config: dict[str, Any], inputs: list[_Tensor]) -> _Tensor:
        """Only a flatten ((N,) or (-1,)) or (1, 1, C) from C values: squeeze-excitation's
        reshape after a global pool, a no-op in netspec (its global pool is 1x1xC)."""
        tensor = self._one(inputs)
        target = config.get("target_shape")
        size = math.prod(tensor.shape)
        if isinstance(target, list) and len(target) == 1 and target[0] in (-1, size):
            if len(tensor.shape) == 1:
                return tensor
            return self._add("flatten", {}, [tensor], (size,))
        if (
            isinstance(target, list)
            and len(target) == 3
            and target[:2] == [1, 1]
            and target[2] in (-1, size)
            and tensor.shape in ((size,), (1, 1, size))
        ):
            return _Tensor(tensor.node, (1, 1, size))
        raise self._unsupported(
            f"Reshape to {target} from {tensor.shape} (only a flatten to (N,) and (C,) to "
            "(1, 1, C) are read)"
        )


def _entry_name(entry: Any) -> str:
    if not isinstance(entry, dict):
        return ""
    config = entry.get("config")
    return str(entry.get("name", config.get("name") if isinstance(config, dict) else ""))


def check_outputs(spec: Any, path: Path) -> str | None:
    """For a `.keras` archive: its weights pair with every layer of the table (loaded by
    order, without Keras); None for a bare config, which holds no weights."""
    if path.suffix.lower() != ".keras":
        return None
    from flax import nnx

    from ..weights import plan_weights

    model = nnx.eval_shape(lambda: spec.compiled.network_class()(rngs=nnx.Rngs(0)))
    plan = plan_weights(spec.compiled, model, path, by="order")
    return f"the archive's weights pair with every layer of the table: {plan.summary()}"
