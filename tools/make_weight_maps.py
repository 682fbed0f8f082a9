"""Write netspec/weights/maps/<spec>.torch.json: torchvision's module for each netspec layer.

Pairs each zoo spec with its torchvision model by execution order and shape (netspec's own
pairing), with ConvNeXt's layer scales moved after the layers of their block (where the block
applies them; torchvision registers them first), then checks the pairing the only way that
counts: torchvision's logits against netspec's with the weights loaded through the new map.
Needs torch and torchvision (the `bench` extra). Run: python tools/make_weight_maps.py
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import jax.numpy as jnp
import numpy as np

import netspec
from netspec.weights import load_weights, read_source
from netspec.weights.maps import MAPS
from netspec.weights.plan import make_plan
from netspec.weights.source import WeightSource
from netspec.weights.targets import target_layers

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from tests.torch_weights import randomise  # noqa: E402

MODELS = {
    "resnet18": {},
    "resnet34": {},
    "resnet50": {},
    "vgg16": {},
    "inception_v3": {"aux_logits": True, "init_weights": False},
    "mobilenet_v2": {},
    "mobilenet_v3_large": {},
    "efficientnet_b0": {},
    "shufflenet_v2_x1_0": {},
    "densenet121": {},
    "convnext_tiny": {},
}
"""zoo spec -> keyword arguments of its torchvision.models builder (same name)."""


def layer_scales_last(source: WeightSource) -> WeightSource:
    """Each `scale` layer moved after the layers under its name (ConvNeXt's CNBlock)."""
    layers = list(source.layers)
    ordered, pending = [], []
    for layer in layers:
        while pending and not layer.name.startswith(pending[-1].name + "."):
            ordered.append(pending.pop())
        (pending if layer.kind == "scale" else ordered).append(layer)
    ordered += pending[::-1]
    return WeightSource(source.description, source.framework, source.layout, tuple(ordered))


def main() -> None:
    import torch
    import torchvision

    for spec, options in MODELS.items():
        torch.manual_seed(0)
        reference = getattr(torchvision.models, spec)(weights=None, **options)
        size = 299 if spec == "inception_v3" else 224
        randomise(reference, 1, torch.randn(4, 3, size, size))
        compiled = netspec.compile(spec)
        model = compiled.build(seed=0)
        source = layer_scales_last(read_source(reference.state_dict()))
        plan = make_plan(target_layers(compiled, model), source, None, "order")
        layers = {a.target.name: a.source.name for a in plan.assignments if a.source}
        path = MAPS / f"{spec}.torch.json"
        model_name = f"torchvision.models.{spec}"
        text = json.dumps({"model": model_name, "layers": layers}, indent=1) + "\n"
        path.write_text(text, encoding="utf-8")
        model = load_weights(compiled, reference.state_dict(), by="name")
        x = torch.randn(2, 3, size, size)
        with torch.no_grad():
            theirs = reference.eval()(x).numpy()
        ours = np.asarray(model(jnp.asarray(x.permute(0, 2, 3, 1).numpy())))
        error = np.abs(ours - theirs).max() / np.abs(theirs).max()
        print(f"{spec}: {len(layers)} layers, logits max relative diff {error:.2e}")
        assert error < 1e-4, spec


if __name__ == "__main__":
    main()
