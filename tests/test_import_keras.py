"""`netspec import` of Keras models: the reader (`importers.keras_reader`) on hand-written Keras 3
(and Keras 2) configs and hand-built `.keras` archives, the written spec's parameters against
counts worked out here by formula, and (with Keras installed) keras.applications' ResNet50 and
InceptionV3 imported, compiled, loaded with Keras's weights and run: logits within 1e-4.

Nothing here but the last part needs Keras: the configs are written as Keras's `to_json` writes
them, the archives with zipfile and h5py.
"""

from __future__ import annotations

import json
import math
import os
import zipfile
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import pytest

import netspec
from netspec.errors import SpecError
from netspec.importers import read_model
from netspec.importers import writer as spec_writer
from netspec.importers.ir import ImportedGraph
from netspec.importers.keras_reader import read
from netspec.weights.keras_source import to_snake_case

# --- Keras 3 configs, written by hand ---------------------------------------------------------


def ref(name: str) -> dict[str, Any]:
    """Keras 3's reference to call 0 of layer `name` (its output tensor)."""
    return {
        "class_name": "__keras_tensor__",
        "config": {"shape": [None], "dtype": "float32", "keras_history": [name, 0, 0]},
    }


def layer(kind: str, name: str, inputs: list[str] | str | None, **config: Any) -> dict[str, Any]:
    """One entry of a Keras 3 Functional config: `inputs` one layer name, or a list (merges)."""
    if inputs is None:
        nodes = []
    elif isinstance(inputs, str):
        nodes = [{"args": [ref(inputs)], "kwargs": {}}]
    else:
        nodes = [{"args": [[ref(i) for i in inputs]], "kwargs": {}}]
    return {
        "module": "keras.layers",
        "class_name": kind,
        "config": {"name": name, "trainable": True, "dtype": "float32", **config},
        "registered_name": None,
        "name": name,
        "inbound_nodes": nodes,
    }


def image(name: str, height: int, width: int, channels: int) -> dict[str, Any]:
    return layer("InputLayer", name, None, batch_shape=[None, height, width, channels])


def conv(name: str, x: str, filters: int, k: int, **config: Any) -> dict[str, Any]:
    options = {"strides": [1, 1], "padding": "valid", "data_format": "channels_last"}
    options |= {"dilation_rate": [1, 1], "groups": 1, "activation": "linear", "use_bias": True}
    return layer("Conv2D", name, x, filters=filters, kernel_size=[k, k], **(options | config))


def bn(name: str, x: str, **config: Any) -> dict[str, Any]:
    options = {"axis": -1, "momentum": 0.99, "epsilon": 0.001, "center": True, "scale": True}
    return layer("BatchNormalization", name, x, **(options | config))


def functional(name: str, layers: list[dict[str, Any]], output: str) -> dict[str, Any]:
    return {
        "module": "keras.src.models.functional",
        "class_name": "Functional",
        "config": {
            "name": name,
            "trainable": True,
            "layers": layers,
            "input_layers": [layers[0]["name"], 0, 0],
            "output_layers": [output, 0, 0],
        },
        "registered_name": "Functional",
    }


def sequential(name: str, layers: list[dict[str, Any]]) -> dict[str, Any]:
    """Keras 3's Sequential: entries without inbound nodes (or entry names)."""
    entries = [{k: v for k, v in e.items() if k not in ("inbound_nodes", "name")} for e in layers]
    return {
        "module": "keras",
        "class_name": "Sequential",
        "config": {"name": name, "trainable": True, "layers": entries},
    }


def write_json(folder: Path, model: dict[str, Any], name: str = "model.json") -> Path:
    path = folder / name
    path.write_text(json.dumps(model, indent=1), encoding="utf-8")
    return path


def conv_params(k: int, cin: int, filters: int, groups: int = 1, bias: bool = True) -> int:
    return k * k * (cin // groups) * filters + (filters if bias else 0)


def dense_params(inputs: int, units: int, bias: bool = True) -> int:
    return inputs * units + (units if bias else 0)


def spec_of(graph: ImportedGraph) -> netspec.Compiled:
    """The graph written as a spec and compiled again from its text alone."""
    return netspec.compile(spec_writer.write_spec(graph).text)


# --- (a) a residual network: conv, batch norm, pools, add, dense ------------------------------


def residual_model() -> dict[str, Any]:
    """16x16x3 -> conv 3x3/2 8 relu (8x8) -> bn -> relu -> maxpool 2 (4x4); a residual block
    (conv 3x3 8 same, no bias -> bn(scale=False) -> add with its input); avgpool 2 same
    (2x2); gap; dropout; dense 10 softmax."""
    return functional(
        "tiny_resnet",
        [
            image("input_layer", 16, 16, 3),
            conv("stem", "input_layer", 8, 3, strides=[2, 2], padding="same", activation="relu"),
            bn("stem_bn", "stem"),
            layer("ReLU", "stem_relu", "stem_bn", max_value=None, negative_slope=0.0),
            layer("MaxPooling2D", "pool", "stem_relu", pool_size=[2, 2], strides=None),
            conv("block_conv", "pool", 8, 3, padding="same", use_bias=False),
            bn("block_bn", "block_conv", scale=False),
            layer("Add", "block_add", ["block_bn", "pool"]),
            layer("Activation", "block_out", "block_add", activation="relu"),
            layer(
                "AveragePooling2D",
                "avg",
                "block_out",
                pool_size=[2, 2],
                strides=[2, 2],
                padding="same",
            ),
            layer("GlobalAveragePooling2D", "gap", "avg", keepdims=False),
            layer("Dropout", "drop", "gap", rate=0.25),
            layer("Dense", "head", "drop", units=10, activation="softmax", use_bias=True),
        ],
        "head",
    )


RESIDUAL_PARAMS = {
    "stem": conv_params(3, 3, 8),
    "stem_bn": 2 * 8,
    "block_conv": conv_params(3, 8, 8, bias=False),
    "block_bn": 8,
    "head": dense_params(8, 10),
}


def test_functional_residual_model(tmp_path):
    graph = read(write_json(tmp_path, residual_model()))
    assert graph.name == "tiny_resnet"
    assert graph.input_shape == (16, 16, 3)
    assert graph.outputs == ["head"]
    assert graph.source_params is None  # a config alone holds no weights
    nodes = {node.name: node for node in graph.nodes}
    assert [n.name for n in graph.nodes] == [
        "stem", "stem_bn", "stem_relu", "pool", "block_conv", "block_bn", "block_add",
        "block_out", "avg", "gap", "drop", "head",
    ]  # fmt: skip
    assert nodes["stem"].op == "conv"
    assert nodes["stem"].inputs == (graph.input_name,)
    assert nodes["stem"].fields == {
        "filters": 8,
        "kernel": 3,
        "stride": 2,
        "padding": "same",
        "dilation": 1,
        "groups": 1,
        "bias": True,
        "activation": "relu",
    }
    assert nodes["stem"].source_type == "Conv2D"
    assert nodes["stem_bn"].fields == {
        "eps": 0.001,
        "momentum": 0.99,
        "scale": True,
        "center": True,
    }
    assert nodes["block_bn"].fields["scale"] is False
    assert nodes["stem_relu"].op == "relu"
    assert nodes["pool"].op == "maxpool"
    assert nodes["pool"].fields == {"kernel": 2, "stride": 2, "padding": "valid"}  # None: kernel
    assert nodes["block_conv"].fields["bias"] is False
    assert nodes["block_add"].op == "add"
    assert nodes["block_add"].inputs == ("block_bn", "pool")
    assert nodes["block_out"].op == "relu"
    assert nodes["avg"].fields == {
        "kernel": 2,
        "stride": 2,
        "padding": "same",
        "count_include_pad": False,  # Keras divides by the pixels inside the image
    }
    assert nodes["gap"].op == "global_avgpool"
    assert nodes["drop"].fields == {"rate": 0.25}
    assert nodes["head"].op == "dense"
    assert nodes["head"].fields == {"units": 10, "bias": True, "activation": "softmax"}


def test_residual_model_compiles_to_its_parameters(tmp_path):
    compiled = spec_of(read(write_json(tmp_path, residual_model())))
    assert compiled.report.params == sum(RESIDUAL_PARAMS.values()) == 914
    assert tuple(compiled.report.output_shape) == (1, 1, 10)


# --- (b) branches: concat, depthwise and separable convs, squeeze-excitation ------------------


def branch_model(se: bool = True) -> dict[str, Any]:
    """12x12x4: two branches (conv 1x1 6; depthwise 3x3 x2 -> 8 channels) joined (14),
    a separable conv 3x3/2 -> 16 (6x6), squeeze-excitation (gap, reshape to 1x1x16,
    conv 1x1 4 relu, conv 1x1 16 sigmoid, multiply; left out without `se`), zero padding,
    flatten, dense 5."""
    excite = [
        layer("GlobalAveragePooling2D", "se_pool", "sep", keepdims=False),
        layer("Reshape", "se_reshape", "se_pool", target_shape=[1, 1, 16]),
        conv("se_reduce", "se_reshape", 4, 1, activation="relu"),
        conv("se_expand", "se_reduce", 16, 1, activation="sigmoid"),
        layer("Multiply", "se_scale", ["sep", "se_expand"]),
    ]
    depthwise = {"kernel_size": [3, 3], "strides": [1, 1], "padding": "same"}
    depthwise |= {"depth_multiplier": 2, "dilation_rate": [1, 1], "use_bias": True}
    separable = {"filters": 16, "kernel_size": [3, 3], "strides": [2, 2], "padding": "same"}
    separable |= {"depth_multiplier": 1, "dilation_rate": [1, 1], "use_bias": True}
    return functional(
        "branches",
        [
            image("x", 12, 12, 4),
            conv("a", "x", 6, 1),
            layer("DepthwiseConv2D", "b", "x", activation="relu6", **depthwise),
            layer("Concatenate", "cat", ["a", "b"], axis=-1),
            layer("SeparableConv2D", "sep", "cat", activation="relu", **separable),
            *(excite if se else []),
            layer("ZeroPadding2D", "pad", "se_scale" if se else "sep", padding=[[1, 1], [0, 2]]),
            layer("Flatten", "flat", "pad"),
            layer("Dense", "out", "flat", units=5, activation="linear", use_bias=True),
        ],
        "out",
    )


BRANCH_PARAMS = {
    "a": conv_params(1, 4, 6),
    "b": conv_params(3, 4, 8, groups=4),
    "sep/depthwise": conv_params(3, 14, 14, groups=14, bias=False),
    "sep/pointwise": conv_params(1, 14, 16),
    "se_reduce": conv_params(1, 16, 4),
    "se_expand": conv_params(1, 4, 16),
    "out": dense_params(8 * 8 * 16, 5),  # 6x6 padded to 8x8
}


def test_branches_depthwise_separable_and_squeeze_excitation(tmp_path):
    graph = read(write_json(tmp_path, branch_model()))
    nodes = {node.name: node for node in graph.nodes}
    # The Reshape to 1x1x16 is no node: netspec's global pool is 1x1xC already.
    assert list(nodes) == [
        "a", "b", "cat", "sep/depthwise", "sep/pointwise", "se_pool", "se_reduce", "se_expand",
        "se_scale", "pad", "flat", "out",
    ]  # fmt: skip
    assert nodes["b"].fields == {
        "filters": 8,  # 4 channels x multiplier 2
        "kernel": 3,
        "stride": 1,
        "padding": "same",
        "dilation": 1,
        "groups": 4,
        "bias": True,
        "activation": "relu6",
    }
    assert nodes["cat"].op == "concat"
    assert nodes["cat"].inputs == ("a", "b")
    depthwise, pointwise = nodes["sep/depthwise"], nodes["sep/pointwise"]
    assert (depthwise.fields["filters"], depthwise.fields["groups"]) == (14, 14)  # 6 + 8 in
    assert depthwise.fields["stride"] == 2 and depthwise.fields["bias"] is False
    assert "activation" not in depthwise.fields
    assert pointwise.inputs == ("sep/depthwise",)
    assert pointwise.fields == {
        "filters": 16,
        "kernel": 1,
        "stride": 1,
        "padding": "valid",
        "dilation": 1,
        "groups": 1,
        "bias": True,
        "activation": "relu",
    }
    assert nodes["se_reduce"].inputs == ("se_pool",)
    assert nodes["se_scale"].op == "multiply"
    assert nodes["se_scale"].inputs == ("sep/pointwise", "se_expand")
    assert nodes["pad"].fields == {"padding": [[1, 1], [0, 2]]}
    assert nodes["flat"].op == "flatten"
    assert nodes["out"].fields == {"units": 5, "bias": True}  # linear: no activation


def test_branch_model_compiles_to_its_parameters(tmp_path):
    compiled = spec_of(read(write_json(tmp_path, branch_model(se=False))))
    without = {k: v for k, v in BRANCH_PARAMS.items() if not k.startswith("se_")}
    assert compiled.report.params == sum(without.values()) == 5_601
    assert tuple(compiled.report.output_shape) == (1, 1, 5)


def test_squeeze_excitation_compiles_to_its_parameters(tmp_path):
    compiled = spec_of(read(write_json(tmp_path, branch_model())))
    assert compiled.report.params == sum(BRANCH_PARAMS.values()) == 5_749
    assert tuple(compiled.report.output_shape) == (1, 1, 5)


# --- (c) Sequential models, Keras 2's format ---------------------------------------------------


def test_sequential_with_an_input_layer(tmp_path):
    model = sequential(
        "seq",
        [
            image("input_layer", 10, 10, 1),
            conv("c1", None, 4, 3, activation="tanh"),
            layer("LeakyReLU", "leaky", None, negative_slope=0.01),
            layer("MaxPooling2D", "p1", None, pool_size=[2, 2], strides=[2, 2], padding="valid"),
            layer("SpatialDropout2D", "sd", None, rate=0.1),
            layer("GaussianNoise", "noise", None, stddev=0.1),
            layer("Reshape", "flat", None, target_shape=[-1]),
            layer("Dense", "fc", None, units=3, activation="gelu"),
            layer("Softmax", "prob", None, axis=-1),
        ],
    )
    graph = read(write_json(tmp_path, model))
    assert graph.input_shape == (10, 10, 1)
    chain = [(n.name, n.op, n.inputs) for n in graph.nodes]
    assert chain == [
        ("c1", "conv", ("input",)),
        ("leaky", "leaky_relu", ("c1",)),
        ("p1", "maxpool", ("leaky",)),
        ("sd", "dropout", ("p1",)),
        ("flat", "flatten", ("sd",)),  # GaussianNoise: identity in inference, not a node
        ("fc", "dense", ("flat",)),
        ("prob", "softmax", ("fc",)),
    ]
    assert graph.node("c1").fields["activation"] == "tanh"
    assert graph.node("fc").fields["activation"] == "gelu"
    assert graph.outputs == ["prob"]
    assert any("GaussianNoise" in note for note in graph.notes)
    compiled = spec_of(graph)
    assert compiled.report.params == conv_params(3, 1, 4) + dense_params(4 * 4 * 4, 3) == 235


def test_keras2_sequential_and_functional(tmp_path):
    """Keras 2's to_json: `batch_input_shape` on the first layer, tensor references as nested
    lists ([layer, call, index, kwargs]), LeakyReLU's `alpha`."""
    first = conv("c1", None, 4, 3)
    first["config"]["batch_input_shape"] = [None, 8, 8, 2]
    model = sequential("k2", [first, layer("ReLU", "r", None, max_value=6.0)])
    model["keras_version"] = "2.15.0"
    graph = read(write_json(tmp_path, model, "seq.json"))
    assert graph.input_shape == (8, 8, 2)
    assert [(n.name, n.op) for n in graph.nodes] == [("c1", "conv"), ("r", "relu6")]

    entries = [
        {"class_name": "InputLayer", "name": "input_1", "inbound_nodes": [],
         "config": {"batch_input_shape": [None, 6, 6, 3], "name": "input_1"}},
        {"class_name": "Conv2D", "name": "c", "inbound_nodes": [[["input_1", 0, 0, {}]]],
         "config": conv("c", None, 2, 1)["config"]},
        {"class_name": "LeakyReLU", "name": "l", "inbound_nodes": [[["c", 0, 0, {}]]],
         "config": {"name": "l", "alpha": 0.01}},
        {"class_name": "Concatenate", "name": "j",
         "inbound_nodes": [[["l", 0, 0, {}], ["input_1", 0, 0, {}]]],
         "config": {"name": "j", "axis": 3}},
    ]  # fmt: skip
    model = {
        "class_name": "Model",
        "keras_version": "2.15.0",
        "config": {
            "name": "k2f",
            "layers": entries,
            "input_layers": [["input_1", 0, 0]],
            "output_layers": [["j", 0, 0]],
        },
    }
    graph = read(write_json(tmp_path, model, "functional.json"))
    assert [(n.name, n.op, n.inputs) for n in graph.nodes] == [
        ("c", "conv", ("input",)),
        ("l", "leaky_relu", ("c",)),
        ("j", "concat", ("l", "input")),
    ]
    assert spec_of(graph).report.params == conv_params(1, 3, 2) == 8


def test_preprocessing_at_the_input_is_a_note(tmp_path):
    layers = [
        image("in", 4, 4, 3),
        layer("Rescaling", "scale", "in", scale=1 / 255, offset=0.0),
        conv("c", "scale", 2, 1),
    ]
    graph = read(write_json(tmp_path, functional("pre", layers, "c")))
    assert [n.name for n in graph.nodes] == ["c"]
    assert graph.node("c").inputs == (graph.input_name,)
    assert any("scale (Rescaling)" in note and "preprocess" in note for note in graph.notes)

    layers = [image("in", 4, 4, 3), conv("c", "in", 2, 1), layer("Rescaling", "s", "c", scale=2)]
    with pytest.raises(SpecError, match=r"'s' \(Rescaling\).*only at its input"):
        read(write_json(tmp_path, functional("mid", layers, "s")))


# --- (d) parameter counts from a .keras archive's weights --------------------------------------


def keras_archive(folder: Path, model: dict[str, Any], shapes: dict[str, list[tuple]]) -> Path:
    """A `.keras` zip as Keras 3 saves one: config.json, and model.weights.h5 with each layer's
    variables at `layers/<class in snake case>[_n]/vars/<i>` (zeros of `shapes[name]`)."""
    path = folder / "model.keras"
    weights = folder / "model.weights.h5"
    counts: dict[str, int] = {}
    with h5py.File(weights, "w") as handle:
        handle.create_group("layers")
        for entry in model["config"]["layers"]:
            snake = to_snake_case(entry["class_name"])
            counts[snake] = counts.get(snake, -1) + 1
            group = handle.create_group(
                f"layers/{snake}" + (f"_{counts[snake]}" if counts[snake] else "")
            )
            variables = group.create_group("vars")
            for index, shape in enumerate(shapes.get(entry["config"]["name"], [])):
                variables.create_dataset(str(index), data=np.zeros(shape, np.float32))
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("config.json", json.dumps(model))
        archive.writestr("metadata.json", json.dumps({"keras_version": "3.15.1"}))
        archive.write(weights, "model.weights.h5")
    return path


def test_archive_weights_give_the_parameter_counts(tmp_path):
    shapes = {
        "stem": [(3, 3, 3, 8), (8,)],
        "stem_bn": [(8,)] * 4,  # gamma, beta, moving mean, moving variance
        "block_conv": [(3, 3, 8, 8)],
        "block_bn": [(8,)] * 3,  # beta, moving mean, moving variance
        "head": [(8, 10), (10,)],
    }
    graph = read(keras_archive(tmp_path, residual_model(), shapes))
    counted = {node.name: node.params for node in graph.nodes if node.params}
    assert counted == RESIDUAL_PARAMS
    assert all(node.params == 0 for node in graph.nodes if node.name not in counted)
    assert graph.source_params == sum(RESIDUAL_PARAMS.values()) == 914  # no BN statistics
    assert read_model(tmp_path / "model.keras").source_params == 914  # by suffix
    assert spec_of(graph).report.params == graph.source_params
    checks = netspec.import_model(tmp_path / "model.keras").checks
    assert any("the archive's weights pair with every layer" in line for line in checks)


def test_archive_splits_a_separable_conv(tmp_path):
    shapes = {
        "a": [(1, 1, 4, 6), (6,)],
        "b": [(3, 3, 4, 2), (8,)],
        "sep": [(3, 3, 14, 1), (1, 1, 14, 16), (16,)],
        "se_reduce": [(1, 1, 16, 4), (4,)],
        "se_expand": [(1, 1, 4, 16), (16,)],
        "out": [(1024, 5), (5,)],
    }
    graph = read(keras_archive(tmp_path, branch_model(), shapes))
    assert {n.name: n.params for n in graph.nodes if n.params} == BRANCH_PARAMS
    assert graph.source_params == sum(BRANCH_PARAMS.values())


def test_archive_with_missing_weights_is_refused(tmp_path):
    shapes = {"stem": [(3, 3, 3, 8)]}  # no bias, though use_bias=True
    with pytest.raises(SpecError, match=r"'stem' \(Conv2D\) stores 1 variables"):
        read(keras_archive(tmp_path, residual_model(), shapes))


# --- (e) what cannot be read --------------------------------------------------------------------


def model_with(entry: dict[str, Any]) -> dict[str, Any]:
    return functional("bad", [image("in", 8, 8, 3), entry], entry["name"])


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        (layer("LSTM", "lstm_1", "in", units=4), r"'lstm_1' \(LSTM\).*not supported"),
        (conv("c", "in", 2, 1, data_format="channels_first"), r"'c' \(Conv2D\).*channels_last"),
        (layer("Dense", "d", "in", units=4), r"'d' \(Dense\).*8x8x3.*each pixel"),
        (layer("LeakyReLU", "l", "in", negative_slope=0.3), r"LeakyReLU with slope 0.3"),
        (conv("c", "in", 2, 1, activation="selu"), r"activation 'selu' has no netspec"),
        (layer("Reshape", "r", "in", target_shape=[16, 12]), r"Reshape to \[16, 12\]"),
        (bn("b", "in", axis=1), r"axis 1 is not the channels axis"),
        (conv("c", "in", 2, 9), r"'c' \(Conv2D\): its output would be empty"),
    ],
)
def test_unsupported_layers_are_named(tmp_path, entry, message):
    with pytest.raises(SpecError, match=message) as caught:
        read(write_json(tmp_path, model_with(entry)))
    if "not supported" in message:
        assert "Conv2D" in caught.value.hint and "BatchNormalization" in caught.value.hint


def test_global_max_pooling_is_a_max_pool_over_the_whole_image(tmp_path):
    """8x6x3 -> conv 4 -> GlobalMaxPooling2D -> Dense 2: the pool's window is 8x6 (one output
    per channel); 3*3*3*4+4 + 4*2+2 = 122 parameters."""
    model = functional(
        "gmp",
        [
            image("in", 8, 6, 3),
            conv("c", "in", 4, 3, padding="same"),
            layer("GlobalMaxPooling2D", "g", "c"),
            layer("Dense", "d", "g", units=2),
        ],
        "d",
    )
    graph = read(write_json(tmp_path, model))
    pool = graph.node("g")
    assert (pool.op, pool.fields["kernel"], pool.fields["stride"]) == ("maxpool", [8, 6], 1)
    compiled = spec_of(graph)
    assert compiled.report.params == 122 and compiled.report.output_shape == (1, 1, 2)


def test_a_shared_layer_is_refused(tmp_path):
    model = model_with(conv("c", "in", 3, 1))
    model["config"]["layers"][1]["inbound_nodes"] *= 2  # called twice
    with pytest.raises(SpecError, match="called 2 times"):
        read(write_json(tmp_path, model))


def test_broken_json_is_located(tmp_path):
    path = tmp_path / "broken.json"
    path.write_text('{\n  "class_name": "Functional",\n  "config": {"layers": [,]}\n}\n')
    with pytest.raises(SpecError, match="not valid JSON") as caught:
        read(path)
    location = caught.value.location
    assert (location.file, location.line, location.column) == (str(path), 3, 25)


def test_not_a_model_config(tmp_path):
    with pytest.raises(SpecError, match="not a Keras model config"):
        read(write_json(tmp_path, {"layers": []}))
    with pytest.raises(SpecError, match="not a zip archive"):
        read(write_json(tmp_path, {}, "fake.keras"))
    free = layer("InputLayer", "in", None, batch_shape=[None, None, 8, 3])
    model = functional("m", [free, conv("c", "in", 2, 1)], "c")
    with pytest.raises(SpecError, match="every size fixed"):
        read(write_json(tmp_path, model))


# --- (f) keras.applications, end to end (Keras installed) ---------------------------------------

TOLERANCE = 1e-4  # max |netspec - keras| / max |keras logit|


@pytest.fixture(scope="module", params=["ResNet50", "InceptionV3"])
def application(request, tmp_path_factory) -> dict[str, Any]:
    """A keras.applications model with random weights and BN statistics, saved as .keras and as
    to_json, with its logits on two random images."""
    os.environ.setdefault("KERAS_BACKEND", "jax")
    keras = pytest.importorskip("keras")
    if keras.backend.backend() != "jax":
        pytest.skip("the Keras comparison runs on the JAX backend")
    from tests.test_keras_weights import randomise

    model = getattr(keras.applications, request.param)(weights=None, classifier_activation=None)
    randomise(model, seed=1)
    folder = tmp_path_factory.mktemp(request.param)
    model.save(folder / "model.keras")
    (folder / "model.json").write_text(model.to_json(), encoding="utf-8")
    size = model.input_shape[1]
    x = np.random.default_rng(2).normal(size=(2, size, size, 3)).astype(np.float32)
    return {
        "name": request.param,
        "folder": folder,
        "trainable": sum(math.prod(w.shape) for w in model.trainable_weights),
        "x": x,
        "logits": model.predict(x, verbose=0),
    }


@pytest.mark.xdist_group("keras")
@pytest.mark.filterwarnings("ignore:__array__ implementation doesn't accept a copy")
@pytest.mark.parametrize("suffix", [".keras", ".json"])
def test_keras_application_imports_and_matches(application, suffix):
    import jax.numpy as jnp

    from tests.test_keras_weights import forward, relative_error, zeroed

    graph = read(application["folder"] / f"model{suffix}")
    if suffix == ".keras":
        assert graph.source_params == application["trainable"]
    compiled = spec_of(graph)
    assert compiled.report.params == application["trainable"]
    model = netspec.load_weights(
        compiled, application["folder"] / "model.keras", model=zeroed(compiled)
    )
    error = relative_error(forward(model, jnp.asarray(application["x"])), application["logits"])
    print(f"{application['name']} from {suffix}: relative max diff {error:.2e}")
    assert error < TOLERANCE
