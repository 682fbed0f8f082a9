"""`netspec import` of Caffe prototxt files: the text-format reader, the layer table it writes
(blocks, folded activations, auxiliary heads, expectations) and its errors. The networks and
their reference outputs come from tests/caffe_nets.py, written from Caffe's published model
definitions and semantics, independently of netspec's reader."""

from __future__ import annotations

import re
import subprocess
import sys

import jax.numpy as jnp
import numpy as np
import pytest
import yaml

import netspec
from netspec.errors import SpecError
from netspec.importers import import_model, read_model
from netspec.importers.prototxt import parse

from . import caffe_nets

MINI = """\
name: "MiniNet"   # a comment
input: "data"
input_shape { dim: 1 dim: 3 dim: 32 dim: 32 }
layer { name: "conv1" type: "Convolution" bottom: "data" top: "conv1"
  convolution_param { num_output: 16 kernel_size: 3 pad: 1 } }
layer { name: "relu1" type: "ReLU" bottom: "conv1" top: "conv1" }
layer { name: "pool1" type: "Pooling" bottom: "conv1" top: "pool1"
  pooling_param { pool: MAX kernel_size: 3 stride: 2 } }
{modules}
layer { name: "pool5" type: "Pooling" bottom: "m2/output" top: "pool5"
  pooling_param { pool: AVE global_pooling: true } }
layer { name: "fc" type: "InnerProduct" bottom: "pool5" top: "fc"
  inner_product_param { num_output: 10 } }
layer { name: "prob" type: "Softmax" bottom: "fc" top: "prob" }
"""
MODULE = """\
layer { name: "NAME/1x1" type: "Convolution" bottom: "IN" top: "NAME/1x1"
  convolution_param { num_output: A kernel_size: 1 } }
layer { name: "NAME/relu_1x1" type: "ReLU" bottom: "NAME/1x1" top: "NAME/1x1" }
layer { name: "NAME/3x3_reduce" type: "Convolution" bottom: "IN" top: "NAME/3x3_reduce"
  convolution_param { num_output: B kernel_size: 1 } }
layer { name: "NAME/relu_3x3_reduce" type: "ReLU" bottom: "NAME/3x3_reduce" top: "NAME/3x3_reduce" }
layer { name: "NAME/3x3" type: "Convolution" bottom: "NAME/3x3_reduce" top: "NAME/3x3"
  convolution_param { num_output: C kernel_h: 3 kernel_w: 3 pad: 1 } }
layer { name: "NAME/relu_3x3" type: "ReLU" bottom: "NAME/3x3" top: "NAME/3x3" }
layer { name: "NAME/output" type: "Concat" bottom: "NAME/1x1" bottom: "NAME/3x3"
  top: "NAME/output" }
"""


def mini_prototxt() -> str:
    first = MODULE.replace("NAME", "m1").replace("IN", "pool1")
    first = first.replace(" A ", " 8 ").replace(" B ", " 4 ").replace(" C ", " 8 ")
    second = MODULE.replace("NAME", "m2").replace("IN", "m1/output")
    second = second.replace(" A ", " 12 ").replace(" B ", " 6 ").replace(" C ", " 10 ")
    return MINI.replace("{modules}", first + second)


def conv_params(k: int, c_in: int, c_out: int) -> int:
    return k * k * c_in * c_out + c_out


@pytest.fixture
def mini(tmp_path):
    path = tmp_path / "mini.prototxt"
    path.write_text(mini_prototxt())
    return path


def test_mini_net_becomes_a_table_with_a_block(mini):
    spec = import_model(mini)
    data = yaml.safe_load(spec.text)
    # by hand: conv1 3->16 3x3; m1: 16->8 1x1, 16->4 1x1, 4->8 3x3; m2 (16 in): 12, 6, 6->10; fc
    m1 = conv_params(1, 16, 8) + conv_params(1, 16, 4) + conv_params(3, 4, 8)
    m2 = conv_params(1, 16, 12) + conv_params(1, 16, 6) + conv_params(3, 6, 10)
    expected = conv_params(3, 3, 16) + m1 + m2 + 22 * 10 + 10
    assert spec.compiled.report.params == expected
    assert len(data["blocks"]) == 1
    (block,) = data["blocks"].values()
    assert len(block["args"]) == 3
    rows = [next(iter(row)) for row in data["layers"]]
    assert rows == ["conv1", "pool1", "m1", "m2", "pool5", "fc", "prob"]
    calls = {next(iter(r)): r[next(iter(r))] for r in data["layers"]}
    assert re.match(r"\w+ 8 4 8 -> 16x16x16 " + str(m1) + "$", calls["m1"])
    assert re.match(r"\w+ 12 6 10 -> 16x16x22 " + str(m2) + "$", calls["m2"])
    assert calls["conv1"].startswith("conv 3x3 16") and "relu" in spec.text  # folded
    assert data["vars"] == {"num_classes": 10}
    # Caffe rounds pooling up: 32 -> ceil((32 - 3) / 2) + 1 = 16
    assert calls["pool1"].split(" -> ")[1] == "16x16x16"
    assert spec.compiled.report.output_shape == (1, 1, 10)


def test_old_layers_syntax_reads_the_same(mini, tmp_path):
    old = tmp_path / "old.prototxt"
    text = mini_prototxt()
    for new, v1 in (
        ('"Convolution"', "CONVOLUTION"),
        ('"ReLU"', "RELU"),
        ('"Pooling"', "POOLING"),
        ('"Concat"', "CONCAT"),
        ('"InnerProduct"', "INNER_PRODUCT"),
        ('"Softmax"', "SOFTMAX"),
    ):
        text = text.replace(new, v1)
    text = text.replace("layer {", "layers {").replace(
        "input_shape { dim: 1 dim: 3 dim: 32 dim: 32 }",
        "input_dim: 1 input_dim: 3 input_dim: 32 input_dim: 32",
    )
    old.write_text(text)
    assert import_model(old).text.split("\n", 1)[1] == import_model(mini).text.split("\n", 1)[1]


def test_the_written_spec_compiles_from_its_file(mini, tmp_path):
    out = tmp_path / "mini.yaml"
    done = subprocess.run(
        [sys.executable, "-m", "netspec", "import", str(mini), "-o", str(out)],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr
    assert "checked: the table compiles to" in done.stderr
    assert netspec.compile(out).report.params == import_model(mini).compiled.report.params
    again = subprocess.run(
        [sys.executable, "-m", "netspec", "import", str(mini), "-o", str(out)],
        capture_output=True,
        text=True,
    )
    assert again.returncode == 2 and "exists already" in again.stderr


@pytest.mark.parametrize(
    ("text", "where", "words"),
    [
        (
            'layer { name: "a" type: "Convolution" bottom: "data"',
            (1, 53),
            ["ends before", "opened at line 1"],
        ),
        ('layer { name: "a" 5 }', (1, 19), ["expected a field name, got '5'"]),
        ('name: "x\\q"', (1, 7), ["escape"]),
        ("layer { name: @ }", (1, 15), ["unexpected character"]),
    ],
)
def test_malformed_prototxt_is_located(text, where, words):
    with pytest.raises(SpecError) as caught:
        parse(text, "f.prototxt")
    location = caught.value.location
    assert (location.line, location.column) == where, str(caught.value)
    assert all(word in str(caught.value) for word in words)


def test_an_unsupported_layer_names_it_its_type_and_line(tmp_path):
    path = tmp_path / "bad.prototxt"
    text = mini_prototxt().replace(
        'layer { name: "prob" type: "Softmax"', 'layer { name: "prob" type: "ROIPooling"'
    )
    path.write_text(text)
    line = text.splitlines().index(next(x for x in text.splitlines() if '"ROIPooling"' in x)) + 1
    done = subprocess.run(
        [sys.executable, "-m", "netspec", "import", str(path)], capture_output=True, text=True
    )
    assert done.returncode == 2
    assert f"bad.prototxt:{line}:1: layer 'prob': layer type 'ROIPooling' is not supported" in (
        done.stderr
    )
    assert "supported layer types: " in done.stderr and "Traceback" not in done.stderr


def test_a_python_layer_is_refused_and_never_run(tmp_path):
    path = tmp_path / "py.prototxt"
    marker = tmp_path / "ran"
    python_layer = (
        'layer { name: "evil" type: "Python" bottom: "pool1" top: "evil"\n'
        f'  python_param {{ module: "os" layer: "system" param_str: "touch {marker}" }} }}\n'
    )
    text = mini_prototxt().replace(
        'layer { name: "m1/1x1"', python_layer + 'layer { name: "m1/1x1"'
    )
    path.write_text(text)
    with pytest.raises(SpecError, match="layer 'evil': layer type 'Python' is not supported"):
        read_model(path)
    assert not marker.exists()


def test_a_blob_nobody_wrote_is_located(tmp_path):
    path = tmp_path / "gap.prototxt"
    path.write_text(mini_prototxt().replace('bottom: "pool5"', 'bottom: "pool6"'))
    with pytest.raises(SpecError, match="reads blob 'pool6', which no earlier layer writes"):
        read_model(path)


# -- published networks, and their outputs against a NumPy Caffe (tests/caffe_nets.py) ---------


def npy_weights(net: list[dict], blobs: dict[str, list[np.ndarray]]) -> dict[str, object]:
    """Caffe's blobs as a caffe-tensorflow style .npy dict in layer order: [weights, biases]
    (Caffe's layout); BatchNorm's statistics divided by its scale factor, with the Scale after
    it as the batch norm's scale and offset."""
    written: dict[str, object] = {}
    scales = {layer["bottoms"][0]: layer["name"] for layer in net if layer["type"] == "Scale"}
    for layer in net:
        name = layer["name"]
        if layer["type"] in ("Convolution", "InnerProduct"):
            written[name] = list(blobs[name])
        elif layer["type"] == "BatchNorm":
            mean, var, factor = blobs[name]
            gamma, beta = blobs[scales[layer["tops"][0]]]
            s = 1.0 / float(factor[0]) if float(factor[0]) else 0.0
            written[name] = {"mean": mean * s, "variance": var * s, "scale": gamma, "offset": beta}
    return written


@pytest.mark.parametrize(
    ("builder", "main_output", "size", "params"),
    [
        (
            lambda: caffe_nets.bvlc_googlenet(deploy=False, batch=1),
            "loss3/classifier",
            224,
            13_378_280,
        ),
        (lambda: caffe_nets.bvlc_alexnet(deploy=False, batch=1), "fc8", 227, 60_965_224),
        (lambda: caffe_nets.small_resnet(), "fc", 32, None),
    ],
    ids=["googlenet-train_val", "alexnet-train_val", "small-resnet"],
)
def test_imported_net_computes_caffes_logits(tmp_path, builder, main_output, size, params):
    net = builder()
    path = tmp_path / "net.prototxt"
    path.write_text(caffe_nets.to_prototxt(net, "Net"))
    blobs = caffe_nets.random_weights(net, seed=4)
    weights = tmp_path / "net.npy"
    np.save(weights, np.array(npy_weights(net, blobs), dtype=object), allow_pickle=True)
    spec = import_model(path, weights=weights)
    assert spec.compiled.report.params == (params or caffe_nets.param_count(net))
    assert any("pair with every layer" in line for line in spec.checks)
    model = netspec.load_weights(spec.compiled, weights, by="order")
    x = np.random.default_rng(5).normal(size=(1, 3, size, size)).astype(np.float32)
    theirs = caffe_nets.caffe_forward(net, blobs, x)[main_output].reshape(1, -1)
    ours = np.asarray(model(jnp.asarray(x.transpose(0, 2, 3, 1)))).reshape(1, -1)
    assert theirs.std() > 0
    assert np.abs(ours - theirs).max() / np.abs(theirs).max() < 1e-4
