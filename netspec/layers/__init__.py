"""Every spec layer type, registered on import; `REGISTRY` maps type name -> LayerType."""

from . import conv, core, merge, norm, pad, pool  # noqa: F401  (registration side effects)
from .base import REGISTRY, Cost, LayerParams, LayerType, Shape, ShapeError, format_shape

ALIASES: dict[str, str] = {
    "bn": "batchnorm",
    "batch_norm": "batchnorm",
    "gap": "global_avgpool",
    "linear": "dense",
    "fc": "dense",
    "pad": "zeropad",
    "convolution": "conv",
}
"""Other names users write for a layer type (Keras, Caffe and paper spellings)."""

__all__ = [
    "ALIASES",
    "REGISTRY",
    "Cost",
    "LayerParams",
    "LayerType",
    "Shape",
    "ShapeError",
    "format_shape",
]
