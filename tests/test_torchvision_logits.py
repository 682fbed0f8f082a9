"""Same function, not just the same count: zoo specs against torchvision's models.

torchvision builds each model with random weights (`weights=None`, seeded), and random
biases, batch-norm weights and running statistics (measured on other random images, then
perturbed per channel: tests/torch_weights.py) on top, so eval mode is a real check. The
weights are copied into the compiled netspec model by execution order and shape; both run in
eval mode on the same random batch (NCHW for torch, NHWC for netspec), and their logits (before
any softmax: torchvision's models end with the linear layer, and so do these specs) must agree
to 1e-4 of the largest logit. Skipped without torch and torchvision (the `bench` extra).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

import netspec

from .conftest import SPECS
from .torch_weights import MappingError, copy_weights, randomise, torch_layers
from .zoo_builds import built  # one build per spec, shared with test_flax_backend.py

torch = pytest.importorskip("torch")
torchvision = pytest.importorskip("torchvision")


def module_after_its_children(kind: str) -> Callable[[Any], list[str]]:
    """An explicit torch order: each `kind` module's own parameter (ConvNeXt's CNBlock holds
    its layer scale) after the layers it holds, where the block applies it."""

    def order(model: Any) -> list[str]:
        names = [layer.name for layer in torch_layers(model)]
        blocks = {n for n, m in model.named_modules() if type(m).__name__ == kind}
        ordered: list[str] = []
        pending: list[str] = []
        for name in names:
            while pending and not name.startswith(pending[-1] + "."):
                ordered.append(pending.pop())
            (pending if name in blocks else ordered).append(name)
        return ordered + pending[::-1]

    return order


# spec name -> (torchvision.models builder, the torch order where registration order is not it)
MODELS: dict[str, tuple[str, Callable[[Any], list[str]] | None]] = {
    "resnet18": ("resnet18", None),
    "mobilenet_v2": ("mobilenet_v2", None),
    "densenet121": ("densenet121", None),
    "efficientnet_b0": ("efficientnet_b0", None),
    "mobilenet_v3_large": ("mobilenet_v3_large", None),
    "shufflenet_v2_x1_0": ("shufflenet_v2_x1_0", None),
    "convnext_tiny": ("convnext_tiny", module_after_its_children("CNBlock")),
}
TOLERANCE = 1e-4  # max |netspec - torch| / max |torch logit|


def torch_model(builder: str, seed: int = 0):
    torch.manual_seed(seed)
    model = getattr(torchvision.models, builder)(weights=None)
    calibration = torch.randn(4, 3, 224, 224, generator=torch.Generator().manual_seed(seed + 1))
    randomise(model, seed + 2, calibration)
    return model


@pytest.mark.parametrize(
    # In the pytest-xdist worker that builds the spec for test_flax_backend.py (conftest's
    # "zoo-NAME" groups), so each spec is built once.
    "name",
    [pytest.param(n, marks=pytest.mark.xdist_group(f"zoo-{n}")) for n in sorted(MODELS)],
)
def test_logits_match_torchvision(name):
    start = time.perf_counter()
    builder, order = MODELS[name]
    reference = torch_model(builder)
    compiled, shared = built(name)
    model = nnx.clone(shared)  # every variable is overwritten: the shared build stays as it was
    pairs = copy_weights(reference, compiled, model, order(reference) if order else None)
    torch_params = sum(p.numel() for p in reference.parameters())
    assert torch_params == compiled.report.params
    assert len(pairs) == sum(1 for n in compiled.report.nodes if n.params or n.state)

    x = torch.randn(2, 3, 224, 224, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        theirs = reference(x).numpy()
    ours = np.asarray(
        nnx.jit(lambda m, x: m(x, train=False))(model, jnp.asarray(x.permute(0, 2, 3, 1).numpy()))
    )
    assert ours.shape == theirs.shape == (2, 1000)
    scale = np.abs(theirs).max()
    error = np.abs(ours - theirs).max() / scale
    # Not a degenerate output: the logits spread, and differ between the two images.
    assert theirs.std() > 0.01 * scale
    assert np.abs(theirs[0] - theirs[1]).max() > 0.01 * scale
    print(
        f"{name}: {len(pairs)} layers copied, largest logit {scale:.3g}, relative max diff "
        f"{error:.2e} ({time.perf_counter() - start:.1f} s)"
    )
    assert error < TOLERANCE


def test_a_mismatch_names_both_sides():
    """Pairing by order and shape fails loudly, naming the netspec and the torch layer."""
    reference = torchvision.models.resnet18(weights=None)
    compiled = netspec.compile(SPECS / "resnet18.yaml")
    model = nnx.eval_shape(lambda: compiled.network_class()(rngs=nnx.Rngs(0)))
    names = [layer.name for layer in torch_layers(reference)]
    swapped = [names[1], names[0], *names[2:]]  # bn1 first, then conv1
    with pytest.raises(MappingError, match=r"netspec layer 'conv1' \(conv.*torch module 'bn1'"):
        copy_weights(reference, compiled, model, order=swapped)
    # A wrong stride on an otherwise matching layer is caught by its hyperparameters.
    reference.conv1.stride = (1, 1)
    with pytest.raises(
        MappingError, match="differ in stride: \\(2, 2\\) here, \\(1, 1\\) in torch"
    ):
        copy_weights(reference, compiled, model)


def test_convnext_needs_its_explicit_order():
    """ConvNeXt's CNBlock registers its layer scale before the layers it applies it after:
    registration order pairs the block's first conv with the layer scale, and says so."""
    reference = torchvision.models.convnext_tiny(weights=None)
    compiled = netspec.compile(SPECS / "convnext_tiny.yaml")
    model = nnx.eval_shape(lambda: compiled.network_class()(rngs=nnx.Rngs(0)))
    with pytest.raises(
        MappingError,
        match=r"'stage1/0/residual/main/dwconv' \(conv.*'features\.1\.0' \(CNBlock: layer_scale",
    ):
        copy_weights(reference, compiled, model)
    order = MODELS["convnext_tiny"][1](reference)
    assert order[2:7] == [
        "features.1.0.block.0",
        "features.1.0.block.2",
        "features.1.0.block.3",
        "features.1.0.block.5",
        "features.1.0",
    ]


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
    assert copy_weights(reference, compiled, model) == [
        ("conv", "0"),
        ("bn", "1"),
        ("fc", "5"),
    ]
    x = torch.randn(3, 4, 6, 5)
    with torch.no_grad():
        theirs = reference(x).numpy()
    ours = np.asarray(model(jnp.asarray(x.permute(0, 2, 3, 1).numpy()), train=False))
    np.testing.assert_allclose(ours, theirs, rtol=1e-5, atol=1e-5 * np.abs(theirs).max())
