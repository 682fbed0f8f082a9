"""Same function, not just the same count: zoo specs against torchvision's models.

torchvision builds each model with random weights (`weights=None`, seeded), and random
biases, batch-norm weights and running statistics (measured on other random images, then
perturbed per channel: tests/torch_weights.py) on top, so eval mode is a real check. The
`state_dict` goes through `netspec.load_weights`: by the zoo spec's name map (netspec/weights/
maps), and for some also by execution order and shape, from a .pth file and a .safetensors file.
Both models run in eval mode on the same random batch (NCHW for torch, NHWC for netspec), and
their logits (torchvision's models end with the linear layer, and so do these specs) must agree
to 1e-4 of the largest logit. Skipped without torch and torchvision (the `bench` extra).
"""

from __future__ import annotations

import time

import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

import netspec
from netspec.weights.maps import known_maps

from .torch_weights import randomise
from .zoo_builds import built  # one build per spec, shared with test_flax_backend.py

torch = pytest.importorskip("torch")
torchvision = pytest.importorskip("torchvision")

OPTIONS = {"inception_v3": {"aux_logits": True, "init_weights": False}}
SIZE = {"inception_v3": 299}
TOLERANCE = 1e-4  # max |netspec - torch| / max |torch logit|
MAPPED = sorted(spec for spec, framework in known_maps() if framework == "torch")


def torch_model(name: str, seed: int = 0):
    torch.manual_seed(seed)
    model = getattr(torchvision.models, name)(weights=None, **OPTIONS.get(name, {}))
    size = SIZE.get(name, 224)
    calibration = torch.randn(4, 3, size, size, generator=torch.Generator().manual_seed(seed + 1))
    randomise(model, seed + 2, calibration)
    return model


def relative_error(reference, model, size: int) -> float:
    x = torch.randn(2, 3, size, size, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        theirs = reference(x).numpy()
    ours = np.asarray(
        nnx.jit(lambda m, x: m(x, train=False))(model, jnp.asarray(x.permute(0, 2, 3, 1).numpy()))
    )
    assert ours.shape == theirs.shape == (2, 1000)
    scale = np.abs(theirs).max()
    # Not a degenerate output: the logits spread, and differ between the two images.
    assert theirs.std() > 0.01 * scale
    assert np.abs(theirs[0] - theirs[1]).max() > 0.01 * scale
    return float(np.abs(ours - theirs).max() / scale)


def test_every_torch_map_is_a_zoo_spec():
    assert set(MAPPED) <= set(netspec.zoo_names())
    assert {"resnet50", "inception_v3", "convnext_tiny"} <= set(MAPPED)


@pytest.mark.parametrize(
    # In the pytest-xdist worker that builds the spec for test_flax_backend.py (conftest's
    # "zoo-NAME" groups), so each spec is built once.
    "name",
    [pytest.param(n, marks=pytest.mark.xdist_group(f"zoo-{n}")) for n in MAPPED],
)
def test_logits_match_torchvision(name):
    start = time.perf_counter()
    reference = torch_model(name)
    compiled, shared = built(name)
    model = nnx.clone(shared)  # every variable is overwritten: the shared build stays as it was
    plan = netspec.plan_weights(compiled, model, reference.state_dict(), by="name")
    assert plan.pairing.startswith("by name")
    assert sum(p.numel() for p in reference.parameters()) == compiled.report.params
    assert plan.new_head == [] and all(a.status == "loaded" for a in plan.assignments)
    plan.apply()
    error = relative_error(reference, model, SIZE.get(name, 224))
    print(
        f"{name}: {plan.pairing}, relative max diff {error:.2e} "
        f"({time.perf_counter() - start:.1f} s)"
    )
    assert error < TOLERANCE


@pytest.mark.parametrize(("suffix", "by"), [(".pth", "order"), (".safetensors", "auto")])
def test_files(tmp_path, suffix, by):
    """A training checkpoint saved by torch loads by execution order and shape; a safetensors
    file (sorted by name) by the zoo's name map, and refuses to pair by order."""
    from safetensors.torch import save_file

    reference = torch_model("resnet18", seed=5)
    path = tmp_path / f"resnet18{suffix}"
    if suffix == ".pth":
        torch.save({"epoch": 3, "state_dict": reference.state_dict()}, path)
    else:
        save_file(reference.state_dict(), str(path))
        with pytest.raises(netspec.SpecError, match="pairs only by name"):
            netspec.load_weights(netspec.compile("resnet18"), path, by="order")
    compiled = netspec.compile("resnet18")
    model = netspec.load_weights(compiled, path, by=by)
    assert relative_error(reference, model, 224) < TOLERANCE


def test_new_head_keeps_its_initialisation():
    """num_classes 5 against ImageNet's 1000: every layer but fc loads; fc stays as built."""
    reference = torch_model("resnet18", seed=3)
    compiled = netspec.compile("resnet18", num_classes=5)
    fresh = compiled.build(seed=7)
    model = netspec.load_weights(compiled, reference.state_dict(), seed=7)
    plan = netspec.plan_weights(compiled, model, reference.state_dict())
    assert plan.new_head == ["fc"]
    np.testing.assert_array_equal(model.fc.kernel.get_value(), fresh.fc.kernel.get_value())
    np.testing.assert_array_equal(
        model.conv1.kernel.get_value(),
        reference.conv1.weight.detach().numpy().transpose(2, 3, 1, 0),
    )
    loaded = sum(p.numel() for n, p in reference.state_dict().items() if not n.startswith("fc"))
    assert plan.loaded == loaded - sum(
        1 for n in reference.state_dict() if n.endswith("num_batches_tracked")
    )


def test_a_mismatch_names_both_sides_and_loads_nothing():
    """resnet34's weights into resnet18: the first layer without a partner or with another
    shape is named on both sides; the model keeps every value it had."""
    reference = torchvision.models.resnet34(weights=None)
    compiled = netspec.compile("resnet18")
    model = compiled.build(seed=0)
    before = np.asarray(model.conv1.kernel.get_value()).copy()
    with pytest.raises(netspec.SpecError) as caught:
        netspec.load_weights(compiled, reference.state_dict(), model=model, by="order")
    text = str(caught.value)
    assert "41 layers" in text and "the source 73" in text and "the source's 'layer" in text
    np.testing.assert_array_equal(np.asarray(model.conv1.kernel.get_value()), before)
    swapped = dict(reference.state_dict())
    with pytest.raises(
        netspec.SpecError, match=r"'conv1'.*kernel is \(7, 7, 3, 64\) here, \(3, 3, 64, 64\) there"
    ):
        resnet18 = torchvision.models.resnet18(weights=None).state_dict()
        resnet18["conv1.weight"] = swapped["layer1.0.conv1.weight"]
        netspec.load_weights(compiled, resnet18, model=model, by="name")


def test_convnext_needs_its_name_map():
    """ConvNeXt's CNBlock registers its layer scale before the layers it applies it after:
    execution order pairs the block's first conv with the layer scale and says so; the name
    map pairs them right."""
    reference = torchvision.models.convnext_tiny(weights=None)
    compiled = netspec.compile("convnext_tiny")
    model = nnx.eval_shape(lambda: compiled.network_class()(rngs=nnx.Rngs(0)))
    with pytest.raises(
        netspec.SpecError, match=r"'stage1/0/residual/main/dwconv'.*'features\.1\.0' \(scale"
    ):
        netspec.plan_weights(compiled, model, reference.state_dict(), by="order")
    plan = netspec.plan_weights(compiled, model, reference.state_dict())
    pairs = {a.target.name: a.source.name for a in plan.assignments}
    assert pairs["stage1/0/residual/main/layer_scale"] == "features.1.0"


TINY = """\
name: tiny
input: [6, 5, 4]
layers:
  - conv: conv 3x3/2 8 groups=2 padding=1
  - bn: bn eps=0.001
  - relu: relu
  - flat: flatten
  - drop: dropout 0.5
  - fc: dense 7
"""


def test_grouped_conv_and_flatten_before_dense():
    """The layouts the zoo does not reach: a grouped conv, and a dense layer after a flatten
    (torch flattens C, H, W; netspec H, W, C), on a non-square map."""
    torch.manual_seed(0)
    reference = torch.nn.Sequential(
        torch.nn.Conv2d(4, 8, 3, stride=2, padding=1, groups=2),
        torch.nn.BatchNorm2d(8, eps=0.001),
        torch.nn.ReLU(),
        torch.nn.Flatten(),
        torch.nn.Dropout(0.5),
        torch.nn.Linear(8 * 3 * 3, 7),
    )
    randomise(reference, 1, torch.randn(16, 4, 6, 5))
    compiled = netspec.compile(TINY)
    model = compiled.build(seed=0)
    plan = netspec.plan_weights(compiled, model, reference)
    assert [(a.target.name, a.source.name) for a in plan.assignments] == [
        ("conv", "0"),
        ("bn", "1"),
        ("fc", "5"),
    ]
    plan.apply()
    x = torch.randn(3, 4, 6, 5)
    with torch.no_grad():
        theirs = reference(x).numpy()
    ours = np.asarray(model(jnp.asarray(x.permute(0, 2, 3, 1).numpy()), train=False))
    np.testing.assert_allclose(ours, theirs, rtol=1e-5, atol=1e-5 * np.abs(theirs).max())
