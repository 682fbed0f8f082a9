"""Every spec layer type, registered on import; `REGISTRY` maps type name -> LayerType.

Each module of this package (but `base`) defines layer types and `register()`s them; they are
imported here in name order, so adding a layer type is adding a module: nothing to list.
"""

import importlib
import pkgutil

from .base import ALIASES, REGISTRY, Cost, LayerParams, LayerType, Shape, ShapeError, format_shape

for _module in sorted(m.name for m in pkgutil.iter_modules(__path__)):
    if _module != "base":
        importlib.import_module(f"{__name__}.{_module}")

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
