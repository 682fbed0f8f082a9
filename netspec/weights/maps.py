"""Name maps: for a zoo spec, which layer of a framework's model fills each netspec layer.

A map is `maps/<spec>.<framework>.json`: {"model": what it maps (e.g. torchvision.models.resnet50),
"layers": {netspec node: the framework's layer name}}. The maps were made by pairing execution
order with each framework's reference model and checked by comparing logits with it
(tests/test_torchvision_logits.py); with a map, a source whose order differs from netspec's
(ConvNeXt registers its layer scale before the block's layers) still loads.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

MAPS = Path(__file__).parent / "maps"


@dataclass(frozen=True)
class NameMap:
    spec: str
    framework: str
    model: str
    layers: dict[str, str]


def name_map(spec: str, framework: str) -> NameMap | None:
    """The map for zoo spec `spec` (its `name:`) and `framework`, if netspec has one."""
    path = MAPS / f"{spec}.{framework}.json"
    if not path.is_file():
        return None
    data = json.loads(path.read_text(encoding="utf-8"))
    return NameMap(spec, framework, data["model"], dict(data["layers"]))


def known_maps() -> list[tuple[str, str]]:
    """(spec, framework) of every map netspec ships."""
    return sorted(tuple(p.name.split(".")[:2]) for p in MAPS.glob("*.json"))  # type: ignore[misc]
