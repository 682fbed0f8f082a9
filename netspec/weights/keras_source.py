"""Keras weights: a live keras.Model, a `.keras` archive, a Keras 3 `.weights.h5` with the
model's config beside it, or a legacy Keras 2 `.h5`.

Layers come in execution order: depth first from the model's outputs, each layer after the
layers it reads, in the order it takes them (all of a Concatenate's first branch, then its
second). That is the order of netspec's table; Keras's own list (`model.layers`, and the order
of a weights file) sorts layers by depth, which interleaves parallel branches (Inception's
1x1 convs of all four branches first), so it pairs with nothing. The order needs the model's
connectivity: a live model's graph, or its config (the `.keras` archive's config.json, a legacy
`.h5`'s model_config, or `model.to_json()` written beside a weights-only file).

Files are read with json, zipfile and h5py alone: never through Keras's deserialisation, which
can rebuild Lambda layers (code) from a file. HDF5 links to other files, external or virtual
datasets and datasets that would inflate far beyond the bytes stored are refused.

Kinds (`source.KINDS`) come from each layer's class: Conv2D, DepthwiseConv2D (its kernel
(kh, kw, C, multiplier)) and Conv2DTranspose (kernel (kh, kw, out, in)) -> conv; SeparableConv2D
-> two conv layers, `<name>/depthwise` then `<name>/pointwise` (with the bias); Dense -> dense;
BatchNormalization -> batchnorm (gamma, beta only where `scale`, `center`); LayerNormalization
and GroupNormalization -> norm. Any other layer with weights is kind "unknown", which the plan
refuses by name.
"""

from __future__ import annotations

import io
import json
import math
import re
import zipfile
from collections.abc import Callable, Hashable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import numpy as np

from ..errors import SpecError
from .source import SourceLayer, WeightSource

KINDS = {
    "Conv2D": "conv",
    "DepthwiseConv2D": "conv",
    "Conv2DTranspose": "conv",
    "SeparableConv2D": "conv",
    "Dense": "dense",
    "BatchNormalization": "batchnorm",
    "LayerNormalization": "norm",
    "GroupNormalization": "norm",
}
"""Keras layer class -> the kind of SourceLayer netspec reads it as."""

VARIABLES = {
    "SeparableConv2D": ("depthwise_kernel", "pointwise_kernel", "bias"),
    "BatchNormalization": ("gamma", "beta", "moving_mean", "moving_variance"),
    "LayerNormalization": ("gamma", "beta"),
    "GroupNormalization": ("gamma", "beta"),
}
"""Keras's variable names per class in its save order (trainable first); else kernel, bias."""

REQUIRED = {"conv": ("kernel",), "dense": ("kernel",), "batchnorm": ("moving_mean",)}
FLAGS = {"bias": "use_bias", "gamma": "scale", "beta": "center"}
"""The config option without which a layer has no such variable."""

ROLES = {
    "kernel": "kernel",
    "bias": "bias",
    "gamma": "scale",
    "beta": "bias",
    "moving_mean": "mean",
    "moving_variance": "var",
}
CONFIG_NAMES = ("{stem}.json", "{stem}.config.json", "config.json")
"""Where a weights-only file's model config may lie, beside it."""

H5_BOMB_FLOOR = 1 << 32  # as Keras: above 4 GiB declared, at most 1000x the bytes stored
H5_MAX_EXPANSION = 1000
ZIP_MEMBER_LIMIT = 1 << 34  # 16 GiB uncompressed; above 4 GiB, at most 100x the bytes stored
ZIP_BOMB_FLOOR = 1 << 32
ZIP_MAX_EXPANSION = 100
CONFIG_LIMIT = 1 << 28  # 256 MiB of JSON

Key = TypeVar("Key", bound=Hashable)


class BadFile(ValueError):
    """A file that is not what its suffix says; the message says what is wrong."""


@dataclass(frozen=True)
class Variable:
    """One stored tensor of a Keras layer: its Keras name (None where the file does not say),
    how a message names it, and its value (read when used)."""

    name: str | None
    key: str
    read: Callable[[], np.ndarray]


# --- one Keras layer -> SourceLayers ---------------------------------------------------------


def saved_names(class_name: str, config: dict[str, Any]) -> tuple[str, ...] | None:
    """The variables a layer of `class_name` with `config` saves, in order (None: not known)."""
    if class_name not in KINDS or config.get("renorm"):
        return None
    names = VARIABLES.get(class_name, ("kernel", "bias"))
    return tuple(n for n in names if n not in FLAGS or config.get(FLAGS[n], True) is not False)


def source_layers(name: str, class_name: str, variables: list[Variable]) -> list[SourceLayer]:
    """The SourceLayers of Keras layer `name` (two for a SeparableConv2D, one otherwise)."""
    if class_name == "DepthwiseConv2D":  # Keras 2 named its kernel depthwise_kernel
        variables = [_renamed(v, "depthwise_kernel", "kernel") for v in variables]
    names = [v.name for v in variables]
    kind = KINDS.get(class_name)
    allowed = VARIABLES.get(class_name, ("kernel", "bias"))
    required = REQUIRED.get(kind or "", ())
    if class_name == "SeparableConv2D":
        required = ("depthwise_kernel", "pointwise_kernel")
    if (
        kind is None
        or len(set(names)) != len(names)
        or any(n not in allowed for n in names)
        or any(r not in names for r in required)
    ):
        return [_unknown(name, variables)]
    by_name = {v.name: v for v in variables}
    if class_name == "SeparableConv2D":
        pointwise = {"kernel": by_name["pointwise_kernel"]}
        pointwise |= {"bias": by_name["bias"]} if "bias" in by_name else {}
        return [
            _depthwise(
                _layer(f"{name}/depthwise", "conv", {"kernel": by_name["depthwise_kernel"]})
            ),
            _layer(f"{name}/pointwise", "conv", pointwise),
        ]
    layer = _layer(name, kind, {ROLES[n]: v for n, v in by_name.items() if n is not None})
    return [_depthwise(layer) if class_name == "DepthwiseConv2D" else layer]


def _depthwise(layer: SourceLayer) -> SourceLayer:
    """`layer` marked depthwise (convert reshapes its kernel (kh, kw, C, m) to (kh, kw, 1,
    C*m), so that it fits only a conv with groups=C, never a plain conv of that shape)."""
    return SourceLayer(
        layer.name, layer.kind, layer.tensors | {"depthwise": layer.tensors["kernel"]}, layer.keys
    )


def _renamed(variable: Variable, old: str, new: str) -> Variable:
    return Variable(new, variable.key, variable.read) if variable.name == old else variable


def _layer(name: str, kind: str, roles: dict[str, Variable]) -> SourceLayer:
    return SourceLayer(
        name,
        kind,
        {role: v.read() for role, v in roles.items()},
        {role: v.key for role, v in roles.items()},
    )


def _unknown(name: str, variables: list[Variable]) -> SourceLayer:
    roles = {}
    for index, variable in enumerate(variables):
        role = variable.name or str(index)
        roles[role if role not in roles else f"{role}_{index}"] = variable
    return _layer(name, "unknown", roles)


# --- execution order -------------------------------------------------------------------------


def postorder(roots: list[Key], inputs: Callable[[Key], list[Key]]) -> list[Key]:
    """Every node reachable from `roots`, each after its `inputs` (taken in order), depth
    first: a recursive evaluator's order, without recursion (graphs run thousands deep)."""
    done: set[Key] = set()
    pending: set[Key] = set()
    order: list[Key] = []
    stack = [(root, False) for root in reversed(roots)]
    while stack:
        key, expanded = stack.pop()
        if key in done:
            continue
        if expanded:
            done.add(key)
            order.append(key)
            continue
        if key in pending:  # reached again below itself
            raise BadFile(f"its graph has a cycle through {key!r}")
        pending.add(key)
        stack.append((key, True))
        stack.extend((k, False) for k in reversed(inputs(key)) if k not in done)
    return order


# --- a live model ----------------------------------------------------------------------------


def from_keras_model(model: Any) -> WeightSource:
    """A live keras.Model (Functional, Sequential or subclassed; nested models flattened): one
    SourceLayer per layer with weights, in execution order. Keys are Keras's variable paths
    (`conv2d_3/kernel`)."""
    layers = []
    for layer in live_order(model):
        variables = [_live_variable(v) for v in layer.weights]
        if variables:
            layers += source_layers(layer.name, type(layer).__name__, variables)
    description = f"Keras model {getattr(model, 'name', '')!r} ({type(model).__name__})"
    return WeightSource(description, "keras", "keras", tuple(layers))


def _live_variable(variable: Any) -> Variable:
    name = str(getattr(variable, "name", "")).split("/")[-1].split(":")[0]

    def read() -> np.ndarray:
        value = getattr(variable, "value", variable)  # Keras 3: the backend's array
        return np.asarray(value() if callable(value) else value, dtype=np.float32)

    return Variable(name, str(getattr(variable, "path", name)), read)


def _is_model(layer: Any) -> bool:
    return hasattr(layer, "layers") and hasattr(layer, "get_weights")


def live_order(model: Any) -> list[Any]:
    """`model`'s layers in execution order, nested models replaced by their own layers.

    Functional: depth first through the graph from the outputs. Sequential: its list. A
    subclassed model has no graph: `model.layers`, the order its constructor assigned them,
    which need not be the order `call` runs them."""
    classes = {c.__name__ for c in type(model).__mro__}
    outputs = None if "Sequential" in classes else _outputs(model)
    if outputs is None:
        layers = list(model.layers)
    else:
        nodes = postorder(outputs, _node_inputs)
        layers = [operation.value for operation in dict.fromkeys(op for op, _ in nodes)]
    flat = []
    for layer in layers:
        flat += live_order(layer) if _is_model(layer) and layer is not model else [layer]
    return flat


def _outputs(model: Any) -> list[tuple[Any, int]] | None:
    """The graph nodes that make a functional model's outputs; None without a graph."""
    try:
        tensors = model.outputs
    except (AttributeError, ValueError):
        return None
    if not tensors:
        return None
    nodes = []
    for tensor in _flatten(tensors):
        history = getattr(tensor, "_keras_history", None)
        if history is None:
            return None
        nodes.append(_node_key(history))
    return nodes


def _node_key(history: Any) -> tuple[Any, int]:
    operation, node_index = history[0], history[1]
    return _Identity(operation), node_index


def _node_inputs(key: tuple[Any, int]) -> list[tuple[Any, int]]:
    operation, node_index = key
    node = operation.value._inbound_nodes[node_index]
    return [_node_key(t._keras_history) for t in node.input_tensors]


class _Identity:
    """A layer hashed by identity (Keras layers may define __eq__ or be unhashable)."""

    def __init__(self, value: Any) -> None:
        self.value = value

    def __hash__(self) -> int:
        return id(self.value)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _Identity) and other.value is self.value


def _flatten(value: Any) -> Iterator[Any]:
    if isinstance(value, dict):
        for item in value.values():
            yield from _flatten(item)
    elif isinstance(value, (list, tuple)):
        for item in value:
            yield from _flatten(item)
    else:
        yield value


# --- a model config (JSON) -------------------------------------------------------------------


@dataclass(frozen=True)
class ConfigLayer:
    """One layer of a model config, with where Keras 3 saves its variables (`layers/conv2d_5`:
    its class's name in snake case, numbered in the order of the model's layer list)."""

    name: str
    class_name: str
    config: dict[str, Any]
    h5_path: str


def config_order(model: dict[str, Any], prefix: str = "layers") -> list[ConfigLayer]:
    """The layers of a serialised model (`model.to_json()`), nested models flattened, in
    execution order."""
    config = _mapping(model.get("config"), "the model's config")
    entries = config.get("layers")
    if not isinstance(entries, list):
        raise BadFile(f"the model config of {model.get('class_name')!r} has no list of layers")
    layers = _numbered(entries, prefix)
    if "output_layers" in config:
        by_name = {layer.name: (layer, entry) for layer, entry in zip(layers, entries, strict=True)}
        if len(by_name) != len(layers):
            raise BadFile(f"the model config of {model.get('class_name')!r} repeats a layer name")
        roots = list(tensor_refs(config["output_layers"]))
        nodes = postorder(roots, lambda key: _config_inputs(by_name, key))
        layers = [by_name[name][0] for name in dict.fromkeys(name for name, _ in nodes)]
    flat = []
    for layer in layers:
        if is_model_config(layer.config):
            nested = {"class_name": layer.class_name, "config": layer.config}
            flat += config_order(nested, f"{layer.h5_path}/layers")
        else:
            flat.append(layer)
    return flat


def _mapping(value: Any, what: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise BadFile(f"{what} is a {type(value).__name__}, not a mapping")
    return value


def is_model_config(config: dict[str, Any]) -> bool:
    return isinstance(config.get("layers"), list)


def _numbered(entries: list[Any], prefix: str) -> list[ConfigLayer]:
    counts: dict[str, int] = {}
    layers = []
    for entry in entries:
        entry = _mapping(entry, "a layer entry")
        class_name = entry.get("class_name")
        config = _mapping(entry.get("config", {}), f"the config of layer {entry.get('name')!r}")
        name = entry.get("name", config.get("name"))
        if not isinstance(class_name, str) or not isinstance(name, str):
            raise BadFile(f"a layer entry without a class or a name: {str(entry)[:80]}")
        snake = to_snake_case(class_name)
        counts[snake] = counts.get(snake, -1) + 1
        path = f"{prefix}/{snake}" + (f"_{counts[snake]}" if counts[snake] else "")
        layers.append(ConfigLayer(name, class_name, config, path))
    return layers


def to_snake_case(name: str) -> str:
    """Keras's `naming.to_snake_case` (`BatchNormalization` -> `batch_normalization`)."""
    name = re.sub(r"\W+", "", name)
    name = re.sub("(.)([A-Z][a-z]+)", r"\1_\2", name)
    return re.sub("([a-z])([A-Z])", r"\1_\2", name).lower()


def _config_inputs(by_name: dict[str, Any], key: tuple[str, int]) -> list[tuple[str, int]]:
    name, node_index = key
    if name not in by_name:
        raise BadFile(f"the config connects a layer {name!r} it does not list")
    nodes = by_name[name][1].get("inbound_nodes") or []
    if not nodes:
        return []
    if not isinstance(nodes, list) or not 0 <= node_index < len(nodes):
        raise BadFile(f"layer {name!r} has no call number {node_index} in the config")
    return list(tensor_refs(nodes[node_index]))


def tensor_refs(data: Any) -> Iterator[tuple[str, int]]:
    """(layer, call) of each tensor a config's node or output list refers to: Keras 3's
    `{"class_name": "__keras_tensor__", "config": {"keras_history": [layer, call, index]}}`
    and Keras 2's `[layer, call, index(, kwargs)]`."""
    if isinstance(data, dict):
        if data.get("class_name") == "__keras_tensor__":
            history = _mapping(data.get("config"), "a tensor reference").get("keras_history")
            yield _reference(history)
            return
        for value in data.values():
            yield from tensor_refs(value)
    elif isinstance(data, list):
        if len(data) in (3, 4) and isinstance(data[0], str) and _is_int(data[1]):
            yield _reference(data)
            return
        for value in data:
            yield from tensor_refs(value)


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _reference(history: Any) -> tuple[str, int]:
    if not (isinstance(history, list) and len(history) >= 2 and _is_int(history[1])):
        raise BadFile(f"a tensor reference {str(history)[:60]} is not [layer, call, index]")
    return str(history[0]), int(history[1])


def parse_config(text: str | bytes, where: str) -> dict[str, Any]:
    """A model config from JSON text; BadFile if it is not one."""
    try:
        data = json.loads(text)
    except (ValueError, RecursionError) as error:
        raise BadFile(f"{where} is not valid JSON ({error})") from None
    if not isinstance(data, dict) or not isinstance(data.get("config"), dict):
        raise BadFile(f"{where} is not a Keras model config (no class_name and config)")
    if not is_model_config(data["config"]):
        raise BadFile(
            f"{where} describes a {data.get('class_name')!r} without a list of layers (a "
            "subclassed model, whose files hold no graph): pass netspec the live model instead"
        )
    return data


# --- HDF5, read defensively ------------------------------------------------------------------


def child(group: Any, name: str) -> Any:
    """`group[name]`, refusing soft and external links (which could reach other files)."""
    import h5py

    if not isinstance(group, h5py.Group):
        raise BadFile(f"{group.name} is not a group")
    link = group.get(name, getlink=True)
    if link is None:
        raise BadFile(f"{group.name} holds no {name!r}")
    if not isinstance(link, h5py.HardLink):
        raise BadFile(f"{group.name}/{name} is a link ({type(link).__name__}), not allowed")
    item = group[name]
    if not isinstance(item, (h5py.Group, h5py.Dataset)):
        raise BadFile(f"{item.name} is a {type(item).__name__}, not a group or dataset")
    return item


def read_dataset(dataset: Any) -> np.ndarray:
    """A dataset as float32, refusing external or virtual storage and shape bombs."""
    import h5py

    if not isinstance(dataset, h5py.Dataset):
        raise BadFile(f"{dataset.name} is not a dataset")
    if dataset.external or dataset.is_virtual:
        raise BadFile(f"{dataset.name} keeps its data outside the file, not allowed")
    declared = math.prod(dataset.shape or ()) * dataset.dtype.itemsize
    stored = dataset.id.get_storage_size()
    if declared > H5_BOMB_FLOOR and declared > H5_MAX_EXPANSION * stored:
        raise BadFile(f"{dataset.name} declares {declared:,} bytes from {stored:,} stored")
    value = dataset[()]
    if dataset.attrs.get("dtype") in ("bfloat16", b"bfloat16"):
        import ml_dtypes

        value = np.asarray(value).view(ml_dtypes.bfloat16)
    try:
        return np.asarray(value, dtype=np.float32)
    except (TypeError, ValueError):
        raise BadFile(f"{dataset.name} holds {dataset.dtype}, not numbers") from None


def h5_variables(group: Any, names: tuple[str, ...] | None, layer_name: str) -> list[Variable]:
    """The Keras 3 variables under a layer's group (`vars/0`, `vars/1`, ...), named by `names`
    where their count agrees, then any tensors of sub-objects (the layer is then unknown)."""
    stored = _h5_datasets(group)
    own = sorted((k for k in stored if re.fullmatch(r"vars/\d+", k)), key=lambda k: int(k[5:]))
    if [int(key[5:]) for key in own] != list(range(len(own))):
        raise BadFile(f"{group.name}/vars does not hold variables 0 to {len(own) - 1}")
    if names is None or len(names) != len(own) or len(own) != len(stored):
        names = None
    keys = own + sorted(set(stored) - set(own))
    variables = []
    for index, key in enumerate(keys):
        name = names[index] if names is not None else None
        label = f"{layer_name}/{name}" if name else f"{layer_name} ({stored[key].name})"
        variables.append(Variable(name, label, lambda d=stored[key]: read_dataset(d)))
    return variables


def _h5_datasets(group: Any, prefix: str = "") -> dict[str, Any]:
    """Every dataset below `group`, by path relative to it (links refused)."""
    import h5py

    found = {}
    for name in group:
        item = child(group, name)
        if isinstance(item, h5py.Group):
            found |= _h5_datasets(item, f"{prefix}{name}/")
        else:
            found[f"{prefix}{name}"] = item
    return found


# --- files -----------------------------------------------------------------------------------


def read_keras_file(path: Path, config: Path | None = None) -> WeightSource:
    """A `.keras` archive, a Keras 3 `.weights.h5` (its model's config beside it, or
    `config`), or a legacy Keras 2 `.h5`/`.hdf5`; SpecError naming the file if it is none."""
    import h5py

    path = Path(path)
    try:
        if zipfile.is_zipfile(path):
            return _read_archive(path)
        if path.suffix.lower() == ".keras":
            raise BadFile("not a zip archive, as a .keras file is (truncated, or another format)")
        with h5py.File(path, "r") as handle:
            if "model_weights" in handle or "layer_names" in handle.attrs:
                return _read_legacy(path, handle, config)
            if "layers" in handle:
                return _read_weights_h5(path, handle, config)
    except BadFile as error:
        raise SpecError(f"not a readable Keras file: {error}", path=str(path)) from None
    except (OSError, LookupError, ValueError, TypeError, AttributeError, RuntimeError) as error:
        first = (str(error).strip().splitlines() or [type(error).__name__])[0]
        raise SpecError(f"not a readable Keras file: {first}", path=str(path)) from None
    raise SpecError(
        "holds neither Keras 3 weights (a 'layers' group) nor legacy Keras weights "
        "('model_weights' or 'layer_names')",
        path=str(path),
    )


def _read_archive(path: Path) -> WeightSource:
    """A `.keras` zip: config.json for classes and order, model.weights.h5 for the arrays."""
    import h5py

    with zipfile.ZipFile(path) as archive:
        names = set(archive.namelist())
        if "config.json" not in names or "model.weights.h5" not in names:
            raise BadFile("a zip without config.json and model.weights.h5 (not a .keras file)")
        model = parse_config(zip_member(archive, "config.json"), "its config.json")
        weights = io.BytesIO(zip_member(archive, "model.weights.h5"))
    with h5py.File(weights, "r") as handle:
        return _from_h5(handle, model, f"{path} (Keras archive)")


def zip_member(archive: zipfile.ZipFile, name: str) -> bytes:
    info = archive.getinfo(name)
    limit = CONFIG_LIMIT if name.endswith(".json") else ZIP_MEMBER_LIMIT
    inflates = info.file_size > ZIP_MAX_EXPANSION * info.compress_size
    if info.file_size > limit or (info.file_size > ZIP_BOMB_FLOOR and inflates):
        raise BadFile(f"its {name} would inflate to {info.file_size:,} bytes")
    with archive.open(info) as member:
        data = member.read(info.file_size + 1)
    if len(data) > info.file_size:
        raise BadFile(f"its {name} holds more than the archive declares")
    return data


def _read_weights_h5(path: Path, handle: Any, config: Path | None) -> WeightSource:
    model = _config_beside(path, config)
    if model is None:
        raise SpecError(
            "a Keras .weights.h5 holds no layer classes, order or connectivity (its layers are "
            "named by class and counted in Keras's by-depth layer list, which interleaves "
            "parallel branches), so netspec cannot pair it reliably",
            path=str(path),
            hint=f"save the whole model (model.save('{_stem(path)}.keras')), or write its "
            f"config beside the weights: Path('{_stem(path)}.json').write_text(model.to_json())",
        )
    return _from_h5(handle, model, f"{path} (Keras weights)")


def _stem(path: Path) -> str:
    name = path.name
    for suffix in (".weights.h5", ".h5", ".hdf5"):
        if name.lower().endswith(suffix):
            return name[: -len(suffix)]
    return path.stem


def _config_beside(path: Path, given: Path | None) -> dict[str, Any] | None:
    """The model config for weights file `path`: `given`, else `<stem>.json`,
    `<stem>.config.json` or a `config.json` that is a Keras model's, beside it."""
    if given is not None:
        return parse_config(_read_text(Path(given)), str(given))
    for pattern in CONFIG_NAMES:
        candidate = path.with_name(pattern.format(stem=_stem(path)))
        if candidate.is_file():
            try:
                return parse_config(_read_text(candidate), str(candidate))
            except BadFile:
                if pattern == "config.json":  # e.g. a netspec run's config.json: not ours
                    continue
                raise
    return None


def _read_text(path: Path) -> bytes:
    if path.stat().st_size > CONFIG_LIMIT:
        raise BadFile(f"{path} is too large for a model config")
    return path.read_bytes()


def _from_h5(handle: Any, model: dict[str, Any], description: str) -> WeightSource:
    """Every layer of `model` with variables in the Keras 3 weights file `handle`, in
    execution order; BadFile where the file lacks a layer's weights or holds weights the
    config does not account for."""
    layers = []
    used = []
    for layer in config_order(model):
        names = saved_names(layer.class_name, layer.config)
        if layer.h5_path not in handle:
            if names:
                raise BadFile(f"it holds no weights for layer {layer.name!r} ({layer.h5_path})")
            continue
        variables = h5_variables(child_path(handle, layer.h5_path), names, layer.name)
        used.append(layer.h5_path + "/")
        if variables:
            layers += source_layers(layer.name, layer.class_name, variables)
    stored = _h5_datasets(child(handle, "layers"), "layers/") if "layers" in handle else {}
    extra = [key for key in stored if not key.startswith(tuple(used))]
    if extra:
        raise BadFile(f"it holds weights at {extra[0]} that the model config has no layer for")
    return WeightSource(description, "keras", "keras", tuple(layers))


def child_path(handle: Any, path: str) -> Any:
    """`handle[path]`, one link at a time (see `child`)."""
    group = handle
    for part in path.split("/"):
        group = child(group, part)
    return group


# --- legacy Keras 2 .h5 ----------------------------------------------------------------------


def _read_legacy(path: Path, handle: Any, config: Path | None) -> WeightSource:
    """Keras 2's HDF5: `model_weights` (a whole model, its config in the `model_config`
    attribute) or the weights alone at the top; each layer's group lists its tensors in the
    `weight_names` attribute (`conv2d/kernel:0`)."""
    root = child(handle, "model_weights") if "model_weights" in handle else handle
    model = None
    if "model_config" in handle.attrs:
        model = parse_config(_text(handle.attrs["model_config"]), "its model_config")
    model = model or _config_beside(path, config)
    if model is None:
        raise SpecError(
            "a legacy Keras weights file lists its layers in Keras's by-depth order, which "
            "interleaves parallel branches; netspec needs the model's config to pair them",
            path=str(path),
            hint=f"write it beside the weights: Path('{_stem(path)}.json')"
            ".write_text(model.to_json())",
        )
    tensors = _legacy_tensors(root)
    layers = []
    for layer in config_order(model):
        variables = tensors.pop(layer.name, [])
        if variables:
            layers += source_layers(layer.name, layer.class_name, variables)
    if tensors:
        name = next(iter(tensors))
        raise BadFile(f"it holds weights of a layer {name!r} that the model config does not list")
    return WeightSource(f"{path} (legacy Keras HDF5)", "keras", "keras", tuple(layers))


def _legacy_tensors(root: Any) -> dict[str, list[Variable]]:
    """Layer name -> its variables, from each listed layer group's `weight_names` (a nested
    model's group lists its layers' tensors: grouped by the name before the variable's)."""
    tensors: dict[str, list[Variable]] = {}
    for layer_name in _string_list(root.attrs, "layer_names"):
        group = child(root, layer_name)
        for weight_name in _string_list(group.attrs, "weight_names"):
            parts = weight_name.split(":")[0].split("/")
            owner = parts[-2] if len(parts) > 1 else layer_name
            dataset = child_path(group, weight_name)
            variable = Variable(parts[-1], weight_name, lambda d=dataset: read_dataset(d))
            tensors.setdefault(owner, []).append(variable)
    return tensors


def _string_list(attrs: Any, name: str) -> list[str]:
    """A list attribute, also as Keras splits long ones (`name0`, `name1`, ...)."""
    if name in attrs:
        return [_text(item) for item in attrs[name]]
    values, chunk = [], 0
    while f"{name}{chunk}" in attrs:
        values += [_text(item) for item in attrs[f"{name}{chunk}"]]
        chunk += 1
    return values


def _text(value: Any) -> str:
    return value.decode("utf-8") if isinstance(value, bytes) else str(value)
