"""Weights in, without torch: Caffe-converted NumPy dicts, safetensors, other netspec runs.

AlexNet from a `bvlc_alexnet.npy`-style dict is checked against a direct NumPy forward pass
written here in Caffe's terms (NCHW, OIHW kernels, grouped convolution, cross-channel LRN with
alpha divided by the window, flatten in C, H, W order), in both layouts such files come in.
"""

from __future__ import annotations

import os
import pickle
from pathlib import Path

import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

import netspec
from netspec.weights.torch_source import from_state_dict

CAFFE_LRN = {"lrn_k": 1, "lrn_alpha": 1e-4}  # bvlc_alexnet's deploy.prototxt
# name: (filters, input channels, kernel, stride, padding, groups); then the dense layers
ALEXNET_CONVS = {
    "conv1": (96, 3, 11, 4, 0, 1),
    "conv2": (256, 96, 5, 1, 2, 2),
    "conv3": (384, 256, 3, 1, 1, 1),
    "conv4": (384, 384, 3, 1, 1, 2),
    "conv5": (256, 384, 3, 1, 1, 2),
}
ALEXNET_DENSE = {"fc6": (9216, 4096), "fc7": (4096, 4096), "fc8": (4096, 1000)}


def caffe_blobs(seed: int) -> dict[str, list[np.ndarray]]:
    """Random AlexNet blobs in Caffe's layout: conv (O, I/groups, k, k), fc (out, in) with the
    input flattened C, H, W. Scaled (He) so activations neither vanish nor explode."""
    rng = np.random.default_rng(seed)
    blobs = {}
    for name, (filters, channels, k, _, _, groups) in ALEXNET_CONVS.items():
        fan_in = channels // groups * k * k
        w = rng.normal(0, np.sqrt(2 / fan_in), (filters, channels // groups, k, k))
        blobs[name] = [w.astype(np.float32), rng.normal(0, 0.1, filters).astype(np.float32)]
    for name, (inputs, outputs) in ALEXNET_DENSE.items():
        w = rng.normal(0, np.sqrt(2 / inputs), (outputs, inputs)).astype(np.float32)
        blobs[name] = [w, rng.normal(0, 0.1, outputs).astype(np.float32)]
    return blobs


def tensorflow_layout(blobs: dict[str, list[np.ndarray]]) -> dict[str, list[np.ndarray]]:
    """The same weights as caffe-tensorflow writes them (bvlc_alexnet.npy): conv HWIO, fc
    (in, out) with fc6's rows in H, W, C order."""
    converted = {}
    for name, (w, b) in blobs.items():
        if w.ndim == 4:
            converted[name] = [w.transpose(2, 3, 1, 0), b]
        elif name == "fc6":
            rows = w.reshape(-1, 256, 6, 6).transpose(2, 3, 1, 0).reshape(9216, -1)
            converted[name] = [rows, b]
        else:
            converted[name] = [w.T, b]
    return converted


def conv(x: np.ndarray, w: np.ndarray, b: np.ndarray, stride: int, pad: int, groups: int):
    """(N, C, H, W) * (O, C/groups, k, k) -> (N, O, H', W'), Caffe's convolution."""
    x = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    k = w.shape[2]
    windows = np.lib.stride_tricks.sliding_window_view(x, (k, k), axis=(2, 3))
    windows = windows[:, :, ::stride, ::stride]  # N, C, H', W', k, k
    per_in, per_out = x.shape[1] // groups, w.shape[0] // groups
    outs = []
    for g in range(groups):
        part = windows[:, g * per_in : (g + 1) * per_in]
        kernel = w[g * per_out : (g + 1) * per_out]
        outs.append(np.tensordot(part, kernel, axes=([1, 4, 5], [1, 2, 3])).transpose(0, 3, 1, 2))
    return np.concatenate(outs, axis=1) + b[None, :, None, None]


def lrn(x: np.ndarray, size: int, alpha: float, beta: float, k: float) -> np.ndarray:
    """Caffe's ACROSS_CHANNELS LRN: x / (k + alpha / size * sum of squares in the window)^beta."""
    half = size // 2
    squares = np.pad(x**2, ((0, 0), (half, half), (0, 0), (0, 0)))
    total = sum(squares[:, i : i + x.shape[1]] for i in range(size))
    return x / (k + alpha / size * total) ** beta


def maxpool(x: np.ndarray, k: int = 3, stride: int = 2) -> np.ndarray:
    windows = np.lib.stride_tricks.sliding_window_view(x, (k, k), axis=(2, 3))
    return windows[:, :, ::stride, ::stride].max(axis=(4, 5))


def alexnet_reference(images_nhwc: np.ndarray, blobs: dict[str, list[np.ndarray]]) -> np.ndarray:
    """Caffe's bvlc_alexnet deploy net, eval mode, up to fc8 (logits)."""
    x = images_nhwc.transpose(0, 3, 1, 2).astype(np.float64)
    relu = lambda v: np.maximum(v, 0)  # noqa: E731
    for name, (_, _, _, stride, pad, groups) in ALEXNET_CONVS.items():
        x = relu(conv(x, *blobs[name], stride, pad, groups))
        if name in ("conv1", "conv2"):
            x = maxpool(lrn(x, 5, 1e-4, 0.75, 1.0))
        elif name == "conv5":
            x = maxpool(x)
    x = x.reshape(len(x), -1)  # C, H, W
    x = relu(x @ blobs["fc6"][0].T + blobs["fc6"][1])
    x = relu(x @ blobs["fc7"][0].T + blobs["fc7"][1])
    return x @ blobs["fc8"][0].T + blobs["fc8"][1]


@pytest.fixture(scope="module")
def alexnet():
    compiled = netspec.compile("alexnet", **CAFFE_LRN)
    return compiled, compiled.build(seed=0)


@pytest.mark.parametrize("layout", ["caffe", "tensorflow"])
def test_alexnet_from_a_caffe_npy(tmp_path, alexnet, layout):
    blobs = caffe_blobs(seed=1)
    written = blobs if layout == "caffe" else tensorflow_layout(blobs)
    path = tmp_path / "bvlc_alexnet.npy"
    np.save(path, written, allow_pickle=True)
    compiled, shared = alexnet
    model = nnx.clone(shared)
    plan = netspec.plan_weights(compiled, model, path)
    assert plan.pairing == "by row name"
    assert plan.layout == ("torch" if layout == "caffe" else "keras")
    plan.apply()
    images = np.random.default_rng(2).uniform(0, 1, (2, 227, 227, 3)).astype(np.float32)
    ours = np.asarray(model(jnp.asarray(images)))
    theirs = alexnet_reference(images, blobs)
    assert theirs.std() > 0.01 * np.abs(theirs).max()
    assert np.abs(ours - theirs).max() / np.abs(theirs).max() < 1e-4


def test_npy_in_file_order_when_names_differ(tmp_path, alexnet):
    """Keys that are not the spec's rows pair by the file's order (a dict keeps it)."""
    blobs = caffe_blobs(seed=3)
    renamed = {f"layer{i}": value for i, value in enumerate(blobs.values())}
    path = tmp_path / "renamed.npy"
    np.save(path, renamed, allow_pickle=True)
    compiled, shared = alexnet
    plan = netspec.plan_weights(compiled, nnx.clone(shared), path)
    assert plan.pairing == "by execution order and shape"
    assert [a.source.name for a in plan.assignments] == list(renamed)


class Exploit:
    """A pickle that would run a shell command when loaded with plain pickle."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_a_hostile_npy_runs_nothing(tmp_path, alexnet):
    marker = tmp_path / "pwned"
    path = tmp_path / "evil.npy"
    array = np.empty((), dtype=object)
    array[()] = {"conv1": [Exploit(marker)]}
    with path.open("wb") as handle:
        np.lib.format.write_array_header_1_0(
            handle, {"descr": "|O", "fortran_order": False, "shape": ()}
        )
        pickle.dump(array, handle, protocol=2)
    compiled, shared = alexnet
    with pytest.raises(netspec.SpecError, match=r"refusing to load .*system"):
        netspec.plan_weights(compiled, shared, path)
    assert not marker.exists()


def test_a_wrong_blob_names_both_sides(tmp_path, alexnet):
    blobs = caffe_blobs(seed=4)
    blobs["conv3"][0] = blobs["conv3"][0][:, :128]  # a grouped kernel where conv3 has none
    path = tmp_path / "wrong.npy"
    np.save(path, blobs, allow_pickle=True)
    compiled, shared = alexnet
    before = np.asarray(shared.conv1.kernel.get_value()).copy()
    with pytest.raises(netspec.SpecError, match=r"'conv3' \(conv.*'conv3'.*kernel is"):
        netspec.load_weights(compiled, path, model=shared)
    np.testing.assert_array_equal(np.asarray(shared.conv1.kernel.get_value()), before)


LENET_BN = """\
name: small
input: [8, 8, 1]
vars: {num_classes: 10}
layers:
  - conv: conv 3x3 6 same bias=false
  - bn: bn
  - relu: relu
  - pool: maxpool 2x2
  - flat: flatten
  - fc: dense $num_classes
"""


def test_safetensors_by_torch_names_without_torch(tmp_path):
    """A safetensors file named as a torch Sequential loads by name where the map... here by
    the layout rules: OIHW -> HWIO, (out, in) -> (in, out) with C, H, W rows -> H, W, C."""
    from safetensors.numpy import save_file

    rng = np.random.default_rng(0)
    state = {
        "0.weight": rng.normal(size=(6, 1, 3, 3)).astype(np.float32),
        "1.weight": rng.uniform(0.5, 1.5, 6).astype(np.float32),
        "1.bias": rng.normal(size=6).astype(np.float32),
        "1.running_mean": rng.normal(size=6).astype(np.float32),
        "1.running_var": rng.uniform(0.5, 2, 6).astype(np.float32),
        "1.num_batches_tracked": np.array(5),
        "5.weight": rng.normal(size=(10, 96)).astype(np.float32),
        "5.bias": rng.normal(size=10).astype(np.float32),
    }
    path = tmp_path / "small.safetensors"
    save_file(state, str(path))
    compiled = netspec.compile(LENET_BN)
    with pytest.raises(netspec.SpecError, match="pairs only by name"):
        netspec.load_weights(compiled, path)
    # The same dict given directly keeps its order: it pairs by execution order.
    model = netspec.load_weights(compiled, from_state_dict(state, "a state_dict"))
    np.testing.assert_array_equal(
        model.conv.kernel.get_value(), state["0.weight"].transpose(2, 3, 1, 0)
    )
    np.testing.assert_array_equal(model.bn.var.get_value(), state["1.running_var"])
    expected = state["5.weight"].T.reshape(6, 4, 4, 10).transpose(1, 2, 0, 3).reshape(96, 10)
    np.testing.assert_array_equal(model.fc.kernel.get_value(), expected)


def test_unknown_sources_are_clear(tmp_path):
    compiled = netspec.compile(LENET_BN)
    with pytest.raises(netspec.SpecError, match="no such file"):
        netspec.load_weights(compiled, tmp_path / "missing.pth")
    odd = tmp_path / "weights.xyz"
    odd.write_text("?")
    with pytest.raises(netspec.SpecError, match=r"unknown weights format .\.xyz."):
        netspec.load_weights(compiled, odd)
    broken = tmp_path / "broken.safetensors"
    broken.write_bytes(b"\x00" * 5)
    with pytest.raises(netspec.SpecError, match=r"not a readable \.safetensors"):
        netspec.load_weights(compiled, broken)


def test_a_new_head_for_fewer_classes(tmp_path):
    """ImageNet's 1000 classes into a 5-class AlexNet: fc8 keeps its initialisation, every
    other layer loads (the count is the sum of the blobs but fc8's)."""
    blobs = caffe_blobs(seed=5)
    path = tmp_path / "bvlc_alexnet.npy"
    np.save(path, blobs, allow_pickle=True)
    compiled = netspec.compile("alexnet", num_classes=5, **CAFFE_LRN)
    model = nnx.eval_shape(lambda: compiled.network_class()(rngs=nnx.Rngs(0)))
    plan = netspec.plan_weights(compiled, model, path)
    assert plan.new_head == ["fc8"]
    assert plan.loaded == sum(w.size + b.size for n, (w, b) in blobs.items() if n != "fc8")
    assert plan.assignments[-1].note == "1000 -> 5 outputs"


def test_a_flattened_vector_keeps_its_features_through_batchnorm_and_relu():
    """PyTorch's Flatten -> BatchNorm1d -> ReLU -> Linear: the batch norm's per-feature values
    and the linear layer's columns are in C, H, W order; netspec flattens H, W, C. The logits
    equal a NumPy forward pass written in PyTorch's order."""
    spec = (
        "name: flatbn\ninput: 3x2x2\nlayers:\n  - conv: conv 1x1 4\n  - flat: flatten\n"
        "  - bn: batchnorm\n  - act: relu\n  - fc: dense 5\n"
    )
    compiled = netspec.compile(spec)
    rng = np.random.default_rng(3)
    features = 4 * 3 * 2
    state = {
        "0.weight": rng.normal(size=(4, 2, 1, 1)).astype(np.float32),
        "0.bias": rng.normal(size=4).astype(np.float32),
        "2.weight": rng.uniform(0.5, 1.5, features).astype(np.float32),
        "2.bias": rng.normal(size=features).astype(np.float32),
        "2.running_mean": rng.normal(size=features).astype(np.float32),
        "2.running_var": rng.uniform(0.5, 2, features).astype(np.float32),
        "4.weight": rng.normal(size=(5, features)).astype(np.float32),
        "4.bias": rng.normal(size=5).astype(np.float32),
    }
    model = netspec.load_weights(compiled, from_state_dict(state, "a state_dict"))
    x = rng.normal(size=(2, 3, 2, 2)).astype(np.float32)  # N, H, W, C
    nchw = x.transpose(0, 3, 1, 2)
    conv = np.einsum("nchw,oc->nohw", nchw, state["0.weight"][:, :, 0, 0])
    flat = (conv + state["0.bias"][None, :, None, None]).reshape(2, -1)  # C, H, W order
    normed = (flat - state["2.running_mean"]) / np.sqrt(state["2.running_var"] + 1e-5)
    hidden = np.maximum(normed * state["2.weight"] + state["2.bias"], 0.0)
    expected = hidden @ state["4.weight"].T + state["4.bias"]
    got = np.asarray(model(jnp.asarray(x))).reshape(2, -1)
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-4)
