"""Weights from another netspec run: its best checkpoint (else its latest), by node name."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .source import SourceLayer, WeightSource
from .targets import target_layers

KIND_OF = {
    "layernorm": "norm",
    "groupnorm": "norm",
    "layer_scale": "scale",
    "conv_transpose": "conv",
}
"""netspec ops whose source kind (`source.KINDS`) has another name."""


def is_run_dir(path: Path) -> bool:
    return path.is_dir() and (path / "config.json").is_file() and (path / "spec.yaml").is_file()


def read_run(path: Path) -> WeightSource:
    """Every layer with variables of the run's network, named by its node (`inception_3a/...`)."""
    from flax import nnx

    from ..train.use import load_trained

    trained = load_trained(path)
    graphdef = nnx.graphdef(trained.compiled.build(seed=0))
    model = nnx.merge(graphdef, trained.params, trained.rest)
    layers = []
    for layer in target_layers(trained.compiled, model):
        tensors = {
            name: np.asarray(getattr(layer.module, name).get_value(), np.float32)
            for name in layer.variables()
        }
        layers.append(
            SourceLayer(
                layer.name,
                KIND_OF.get(layer.op, layer.op),
                tensors,
                {k: f"{layer.name}/{k}" for k in tensors},
            )
        )
    spec = trained.compiled.name
    return WeightSource(
        f"{path} (netspec run of {spec})", "netspec", "netspec", tuple(layers), names_are_rows=True
    )
