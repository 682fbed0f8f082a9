"""Keras weights into netspec specs, checked against Keras running the same model.

Keras builds each model (keras.applications.InceptionV3, and small models made here that reach
every layer the import knows) with random weights and random batch-norm statistics, so
inference mode is a real check. The weights go through `netspec.load_weights` from the live
model, a `.keras` archive, a `.weights.h5` with the model's config beside it and a legacy
`.h5`, all paired by execution order and shape; netspec's logits must agree with
`model.predict` to 1e-4 of the largest. Skipped without keras and h5py.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import zipfile
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

os.environ["KERAS_BACKEND"] = "jax"
keras = pytest.importorskip("keras")
h5py = pytest.importorskip("h5py")

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
from flax import nnx  # noqa: E402

import netspec  # noqa: E402
from netspec.weights import read_source  # noqa: E402

pytestmark = [
    pytest.mark.xdist_group("keras"),
    # Keras's own np.array(variable) on NumPy 2 (saving), not netspec's.
    pytest.mark.filterwarnings("ignore:__array__ implementation doesn't accept a copy"),
]

TOLERANCE = 1e-4  # max |netspec - keras| / max |keras logit|
layers = keras.layers


@nnx.jit
def forward(model: nnx.Module, x: jax.Array) -> jax.Array:
    """One compilation per architecture, shared by every model loaded into it."""
    return model(x, train=False)


@pytest.fixture(scope="module", autouse=True)
def fast_keras_initialisers() -> Iterator[None]:
    """Keras's JAX initialisers compile one random kernel per weight shape (InceptionV3: ~80 s
    on 2 cores); NumPy draws the same distribution at once. Every test overwrites the values
    that matter with its own random ones anyway."""
    try:
        from keras.src.backend.jax import random as backend_random
    except ImportError:  # another Keras layout: build at Keras's own pace
        yield
        return
    rng = np.random.default_rng(0)

    def uniform(shape, minval=0.0, maxval=1.0, dtype=None, seed=None):
        return jnp.asarray(rng.uniform(minval, maxval, shape), dtype or "float32")

    def normal(shape, mean=0.0, stddev=1.0, dtype=None, seed=None):
        return jnp.asarray(rng.normal(mean, stddev, shape), dtype or "float32")

    with pytest.MonkeyPatch.context() as patch:
        for name, fake in (("uniform", uniform), ("normal", normal), ("truncated_normal", normal)):
            if hasattr(backend_random, name):
                patch.setattr(backend_random, name, fake)
        yield


def randomise(model, seed: int) -> None:
    """Random values for every variable: kernels scaled by their fan-in, positive variances."""
    rng = np.random.default_rng(seed)
    for variable in model.weights:
        shape = tuple(variable.shape)
        if variable.path.endswith("moving_variance"):
            value = rng.uniform(0.5, 1.5, shape)
        elif len(shape) > 1:
            value = rng.normal(0, 1 / np.sqrt(np.prod(shape[:-1])), shape)
        else:
            value = rng.normal(0, 0.3, shape)
        variable.assign(value.astype("float32"))


def relative_error(ours, theirs: np.ndarray) -> float:
    theirs = np.asarray(theirs)
    scale = np.abs(theirs).max()
    assert theirs.std() > 0.01 * scale  # not a degenerate output
    return float(np.abs(np.asarray(ours) - theirs).max() / scale)


def saved(model, folder: Path) -> dict[str, object]:
    """`model` live and in each file format netspec reads, by name."""
    model.save(folder / "m.keras")
    model.save_weights(folder / "m.weights.h5")
    (folder / "m.json").write_text(model.to_json(), encoding="utf-8")
    with warnings_off():
        model.save(folder / "legacy.h5")  # Keras 3 still writes Keras 2's HDF5 layout
    return {
        "live": model,
        ".keras": folder / "m.keras",
        ".weights.h5": folder / "m.weights.h5",
        "legacy .h5": folder / "legacy.h5",
    }


@contextlib.contextmanager
def warnings_off() -> Iterator[None]:
    import logging

    logger = logging.getLogger("absl")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        logger.setLevel(level)


def without_gamma(layer) -> bool:
    return isinstance(layer, layers.BatchNormalization) and not layer.scale


def zeroed(compiled: netspec.Compiled) -> nnx.Module:
    """`compiled`'s module with every variable zero, made from its shapes alone: netspec's
    jitted initialisation of InceptionV3 compiles for a minute on 2 cores, and the import
    overwrites every variable inference reads (the tests check the plan says so)."""
    network = compiled.network_class()
    graphdef, state = nnx.split(nnx.eval_shape(lambda: network(rngs=nnx.Rngs(0))))

    def zero(leaf):
        if jax.dtypes.issubdtype(leaf.dtype, jax.dtypes.prng_key):
            return jax.random.key(0)
        return np.zeros(leaf.shape, leaf.dtype)

    return nnx.merge(graphdef, jax.tree.map(zero, state))


# --- (a) keras.applications.InceptionV3 into the zoo's inception_v3 ---------------------------


@pytest.fixture(scope="module")
def inception(tmp_path_factory) -> dict:
    reference = keras.applications.InceptionV3(weights=None, classifier_activation=None)
    randomise(reference, seed=1)
    x = np.random.default_rng(2).normal(size=(2, 299, 299, 3)).astype(np.float32)
    logits = reference.predict(x, verbose=0)
    folder = tmp_path_factory.mktemp("inception")
    reference.save(folder / "m.keras")
    reference.save_weights(folder / "m.weights.h5")
    (folder / "m.json").write_text(reference.to_json(), encoding="utf-8")
    compiled = netspec.compile("inception_v3", pool_counts_padding=False)
    return {
        "sources": {
            "live": reference,
            ".keras": folder / "m.keras",
            ".weights.h5": folder / "m.weights.h5",
        },
        "x": x,
        "logits": logits,
        "compiled": compiled,
        "model": zeroed(compiled),
    }


@pytest.mark.parametrize("source", ["live", ".keras", ".weights.h5"])
def test_inception_v3_matches_keras(inception, source):
    """Keras's InceptionV3 pairs with the zoo spec by execution order; with Keras's average
    pools (padding not counted: pool_counts_padding=false) the logits agree."""
    compiled, model = inception["compiled"], nnx.clone(inception["model"])
    plan = netspec.plan_weights(compiled, model, inception["sources"][source])
    assert plan.pairing == "by execution order and shape"
    kept = {a.target.name.split("/")[0] for a in plan.assignments if a.status != "loaded"}
    assert kept == {"AuxLogits"}  # train-only: Keras's InceptionV3 has no auxiliary head
    reference = inception["sources"]["live"]
    # Every Keras value, nothing more: the gammas of scale=False batch norms are filled with 1
    # but not counted as loaded.
    assert any(without_gamma(layer) for layer in reference.layers)
    assert plan.loaded == reference.count_params()
    plan.apply()
    error = relative_error(forward(model, jnp.asarray(inception["x"])), inception["logits"])
    print(f"InceptionV3 from {source}: relative max diff {error:.2e}")
    assert error < TOLERANCE


def test_inception_v3_pool_variable():
    """The one difference between torchvision's and Keras's Inception-v3 is a spec variable."""
    pools = {
        value: {
            n.attrs["count_include_pad"]
            for n in netspec.compile("inception_v3", pool_counts_padding=value).graph.nodes
            if n.op == "avgpool" and n.attrs.get("padding") == 1
        }
        for value in (True, False)
    }
    assert pools == {True: {True}, False: {False}}
    assert (
        netspec.compile("inception_v3")
        .graph.node("Mixed_5b/branch_pool/pool")
        .attrs["count_include_pad"]
    )


# --- (b) every layer type the import knows ----------------------------------------------------

LAYERS = """\
name: keras_layers
input: [7, 6, 3]
layers:
  - conv1: conv 3x3 8 padding=same
  - bn1: bn eps=0.001
  - relu: relu
  - conv2: conv 3x3/2 8 bias=false
  - bn2: bn eps=0.001 scale=false
  - dw1: conv 3x3 8 groups=8 padding=same
  - dw2: conv 3x3 16 groups=8 padding=same
  - sep_dw: conv 3x3 16 groups=16 padding=same bias=false
  - sep_pw: conv 1x1 12
  - up: conv_transpose 3x3/2 6 padding=same
  - ln: layernorm eps=0.001
  - gn: groupnorm 2 eps=0.001
  - flat: flatten
  - fc: dense 5
"""
NODES = ["conv1", "bn1", "conv2", "bn2", "dw1", "dw2", "sep_dw", "sep_pw", "up", "ln", "gn", "fc"]


def keras_layers_model():
    """LAYERS in Keras: conv with and without bias, batch norm with and without gamma,
    depthwise (multiplier 1 and 2), separable, transposed conv, layer and group norm, and a
    dense layer on a flattened 6x4 map."""
    inputs = keras.Input((7, 6, 3))
    x = layers.Conv2D(8, 3, padding="same")(inputs)
    x = layers.BatchNormalization()(x)
    x = layers.ReLU()(x)
    x = layers.Conv2D(8, 3, strides=2, use_bias=False)(x)  # 3x2
    x = layers.BatchNormalization(scale=False)(x)
    x = layers.DepthwiseConv2D(3, padding="same")(x)
    x = layers.DepthwiseConv2D(3, padding="same", depth_multiplier=2)(x)
    x = layers.SeparableConv2D(12, 3, padding="same")(x)
    x = layers.Conv2DTranspose(6, 3, strides=2, padding="same")(x)  # 6x4
    x = layers.LayerNormalization()(x)
    x = layers.GroupNormalization(groups=2)(x)
    x = layers.Flatten()(x)
    return keras.Model(inputs, layers.Dense(5)(x))


@pytest.fixture(scope="module")
def layer_zoo(tmp_path_factory) -> dict:
    reference = keras_layers_model()
    randomise(reference, seed=3)
    x = np.random.default_rng(4).normal(size=(3, 7, 6, 3)).astype(np.float32)
    compiled = netspec.compile(LAYERS)
    names = [layer.name for layer in reference.layers if layer.weights]  # Keras's, in order
    separable = next(n for n in names if n.startswith("separable"))
    at = names.index(separable)
    names[at : at + 1] = [f"{separable}/depthwise", f"{separable}/pointwise"]
    return {
        "sources": saved(reference, tmp_path_factory.mktemp("layers")),
        "names": names,
        "x": x,
        "logits": reference.predict(x, verbose=0),
        "compiled": compiled,
        "model": compiled.build(seed=0),
    }


@pytest.mark.parametrize("source", ["live", ".keras", ".weights.h5", "legacy .h5"])
def test_every_layer_type_matches_keras(layer_zoo, source):
    compiled, model = layer_zoo["compiled"], nnx.clone(layer_zoo["model"])
    plan = netspec.plan_weights(compiled, model, layer_zoo["sources"][source])
    assert [(a.target.name, a.source.name) for a in plan.assignments] == list(
        zip(NODES, layer_zoo["names"], strict=True)
    )
    assert all(a.status == "loaded" for a in plan.assignments)
    plan.apply()
    error = relative_error(forward(model, jnp.asarray(layer_zoo["x"])), layer_zoo["logits"])
    print(f"layers from {source}: relative max diff {error:.2e}")
    assert error < TOLERANCE


BRANCHES = """\
name: keras_branches
input: [8, 8, 3]
layers:
  - cat:
      concat:
        - a: [a1: conv 1x1 4, a2: conv 3x3 4 padding=same]
        - b: [b1: conv 1x1 4, b2: conv 3x3 4 padding=same]
  - gap: global_avgpool
  - fc: dense 3
"""


def test_branches_pair_in_execution_order(tmp_path):
    """Two branches of equal shapes: Keras lists layers by depth (a1, b1, a2, b2), which
    would pair a2's weights with b1 unnoticed; netspec reads the graph, so each branch pairs
    whole, and a nested Sequential head is flattened into its layers."""
    inputs = keras.Input((8, 8, 3))
    a = layers.Conv2D(4, 3, padding="same", name="a2")(layers.Conv2D(4, 1, name="a1")(inputs))
    b = layers.Conv2D(4, 3, padding="same", name="b2")(layers.Conv2D(4, 1, name="b1")(inputs))
    joined = layers.Concatenate()([a, b])
    head = keras.Sequential([layers.GlobalAveragePooling2D(), layers.Dense(3, name="fc")])
    reference = keras.Model(inputs, head(joined))
    randomise(reference, seed=5)
    assert [layer.name for layer in reference.layers if layer.weights][:4] == [
        "a1",
        "b1",
        "a2",
        "b2",
    ]
    x = np.random.default_rng(6).normal(size=(2, 8, 8, 3)).astype(np.float32)
    logits = reference.predict(x, verbose=0)
    compiled = netspec.compile(BRANCHES)
    model = compiled.build(seed=0)
    for source in saved(reference, tmp_path).values():
        plan = netspec.plan_weights(compiled, model, source)
        assert [(a.target.name, a.source.name) for a in plan.assignments] == [
            ("cat/a/a1", "a1"),
            ("cat/a/a2", "a2"),
            ("cat/b/b1", "b1"),
            ("cat/b/b2", "b2"),
            ("fc", "fc"),
        ]
        plan.apply()
        assert relative_error(forward(model, jnp.asarray(x)), logits) < TOLERANCE


def test_weights_h5_needs_the_config(layer_zoo, tmp_path):
    """A bare .weights.h5 names layers by class and numbers them in Keras's by-depth list: it
    loads only with the model's config beside it, or given."""
    bare = tmp_path / "bare.weights.h5"
    shutil.copy(layer_zoo["sources"][".weights.h5"], bare)
    with pytest.raises(netspec.SpecError, match="config") as caught:
        read_source(bare)
    assert str(bare) in str(caught.value) and "to_json" in str(caught.value)
    (tmp_path / "config.json").write_text('{"seed": 0}', encoding="utf-8")  # not a Keras one
    with pytest.raises(netspec.SpecError, match="config"):
        read_source(bare)
    (tmp_path / "bare.json").write_text(layer_zoo["sources"]["live"].to_json(), encoding="utf-8")
    assert len(read_source(bare).layers) == 12


# --- (c) layers netspec cannot load -------------------------------------------------------------


def test_an_unknown_layer_is_refused_by_name(tmp_path):
    inputs = keras.Input((4, 4, 2))
    x = layers.Conv2D(3, 1)(inputs)
    x = layers.PReLU(name="learned_slope")(x)
    reference = keras.Model(inputs, layers.Dense(2)(layers.Flatten()(x)))
    reference.save(tmp_path / "m.keras")
    compiled = netspec.compile(
        "name: t\ninput: [4, 4, 2]\nlayers: [conv 1x1 3, relu, flatten, dense 2]"
    )
    for source in (reference, tmp_path / "m.keras"):
        with pytest.raises(netspec.SpecError, match=r"'learned_slope' \(unknown"):
            netspec.load_weights(compiled, source)


def test_a_depthwise_kernel_never_fills_a_plain_conv():
    """DepthwiseConv2D(multiplier 2) on 4 channels holds a (3, 3, 4, 2) kernel, the shape of a
    plain 3x3 conv from 4 channels to 2: order pairs them, the kinds agree, the layouts not."""
    inputs = keras.Input((5, 5, 4))
    reference = keras.Model(inputs, layers.DepthwiseConv2D(3, depth_multiplier=2)(inputs))
    with pytest.raises(netspec.SpecError, match=r"kernel is \(3, 3, 4, 2\) here, \(3, 3, 1, 8\)"):
        netspec.load_weights(
            netspec.compile("name: t\ninput: [5, 5, 4]\nlayers: [conv 3x3 2]"), reference
        )


def test_a_lambda_layer_is_never_run(tmp_path, monkeypatch):
    """A .keras file's config may hold code (a Lambda's bytecode): it is read as JSON only."""
    marker = tmp_path / "ran"
    monkeypatch.setenv("NETSPEC_KERAS_MARKER", str(marker))
    inputs = keras.Input((4, 4, 2))
    run = layers.Lambda(lambda t: (Path(os.environ["NETSPEC_KERAS_MARKER"]).touch(), t)[1])
    touched = run(layers.Conv2D(3, 1)(inputs))
    reference = keras.Model(inputs, layers.Dense(2)(layers.Flatten()(touched)))
    reference.save(tmp_path / "m.keras")
    marker.unlink(missing_ok=True)  # Keras ran it building the model
    source = read_source(tmp_path / "m.keras")
    assert [layer.kind for layer in source.layers] == ["conv", "dense"]
    assert not marker.exists()


# --- (d) files that are not Keras weights -------------------------------------------------------


def corrupt(kind: str, folder: Path, good: Path) -> Path:
    """A file that claims to be Keras weights and is not, of `kind`."""
    path = folder / ("bad.weights.h5" if "h5" in kind else "bad.keras")
    if kind == "random bytes":
        path.write_bytes(np.random.default_rng(0).bytes(4096))
    elif kind == "truncated":
        path.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    elif kind == "zip without config":
        with zipfile.ZipFile(path, "w") as archive:
            archive.writestr("model.weights.h5", b"")
    elif kind == "config not json":
        with zipfile.ZipFile(good) as source, zipfile.ZipFile(path, "w") as archive:
            archive.writestr("config.json", b"{not json")
            archive.writestr("model.weights.h5", source.read("model.weights.h5"))
    elif kind == "h5 random bytes":
        path.write_bytes(b"\x89HDF\r\n\x1a\n" + np.random.default_rng(1).bytes(4096))
    elif kind == "h5 without layers":
        with h5py.File(path, "w") as handle:
            handle.create_dataset("x", data=np.zeros(3))
    elif kind == "h5 with another model's config":
        with zipfile.ZipFile(good) as source:
            path.write_bytes(source.read("model.weights.h5"))
        (folder / "bad.json").write_text(
            keras.Sequential([keras.Input((3,)), layers.Dense(1)]).to_json()
        )
    elif kind == "h5 external link":
        with h5py.File(folder / "other.h5", "w") as other:
            other.create_dataset("secret", data=np.zeros(3))
        with h5py.File(path, "w") as handle:
            handle["layers/dense/vars/0"] = h5py.ExternalLink(str(folder / "other.h5"), "secret")
        (folder / "bad.json").write_text(
            keras.Sequential([keras.Input((3,)), layers.Dense(1, use_bias=False)]).to_json()
        )
    return path


@pytest.mark.parametrize(
    "kind",
    [
        "random bytes",
        "truncated",
        "zip without config",
        "config not json",
        "h5 random bytes",
        "h5 without layers",
        "h5 with another model's config",
        "h5 external link",
    ],
)
def test_a_bad_file_is_a_spec_error(layer_zoo, tmp_path, kind):
    path = corrupt(kind, tmp_path, layer_zoo["sources"][".keras"])
    with pytest.raises(netspec.SpecError) as caught:
        read_source(path)
    assert str(caught.value).startswith(f"{path}: ")
    print(f"{kind}: {caught.value}")
