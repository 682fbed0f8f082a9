"""`netspec export --format flax -o DIR`: a folder that loads the network without netspec.

DIR/<name>.py is the ejected standalone source (`Compiled.source(standalone=True)`: jax, flax
and numpy only), DIR/<name>.safetensors every variable of the model but its RNG state
(parameters and batch-norm statistics) keyed by its nnx path joined with '.', and
DIR/load_<name>.py a loader: ``from load_<name> import load; model = load()``. The loader is
fixed template text with names filled in only as validated identifiers and `repr` literals:
a spec is untrusted data and none of its text reaches the loader.
"""

from __future__ import annotations

import keyword
import sys
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..pysource import identifier

LOADER_IMPORTS = frozenset(
    {"jax", "jaxlib", "flax", "numpy", "safetensors", "ml_dtypes", "opt_einsum", "netspec"}
)
"""Top-level modules the bundle imports: a module named like one would shadow it."""


@dataclass(frozen=True)
class BundleNames:
    """The bundle's file stems and the network class, all plain ASCII identifiers."""

    module: str
    """DIR/<module>.py (the ejected source) and DIR/<module>.safetensors."""
    network: str
    """The network class in the ejected source."""

    @property
    def loader(self) -> str:
        return f"load_{self.module}"

    @property
    def source_file(self) -> str:
        return f"{self.module}.py"

    @property
    def loader_file(self) -> str:
        return f"{self.loader}.py"

    @property
    def weights_file(self) -> str:
        return f"{self.module}.safetensors"


def module_name(spec_name: str) -> str:
    """The spec's name as a module name that shadows nothing the bundle imports: `tiny` ->
    `tiny`, `my-net` -> `my_net`, `json` or `flax` -> `json_net`."""
    name = identifier(spec_name)
    top_level = getattr(sys, "stdlib_module_names", frozenset())
    if name in LOADER_IMPORTS or name in top_level or name.startswith("load_"):
        name += "_net"
    return name


def _checked_identifier(name: str) -> str:
    """`name` if it is a plain ASCII identifier (the loader quotes it anyway)."""
    if not (name.isascii() and name.isidentifier()) or keyword.iskeyword(name):
        raise ValueError(f"not a plain identifier: {name!r}")
    return name


def bundle_names(spec_name: str, network_class: str) -> BundleNames:
    """Validated names for a spec `spec_name` whose generated class is `network_class`."""
    return BundleNames(
        _checked_identifier(module_name(spec_name)), _checked_identifier(network_class)
    )


def stored_variables(model: Any) -> dict[str, np.ndarray]:
    """Every variable of `model` but its RNG state, as host arrays keyed by nnx path joined
    with '.' (`conv3_x.0.residual.main.conv1.kernel`); parameters keep their dtype."""
    from flax import nnx

    stored = {}
    for path, node in nnx.iter_graph(model):
        if isinstance(node, nnx.Variable) and not isinstance(node, nnx.RngState):
            value = node.get_value() if hasattr(node, "get_value") else node.value
            stored[".".join(str(part) for part in path)] = np.ascontiguousarray(np.asarray(value))
    return stored


def safetensors_bytes(model: Any, names: BundleNames) -> bytes:
    """The safetensors file of `stored_variables(model)`."""
    from safetensors.numpy import save

    return save(
        stored_variables(model),
        metadata={"format": "netspec-flax-bundle", "network": names.network},
    )


LOADER_TEMPLATE = '''\
"""Load the {network} network with its weights, without netspec.

    from {loader} import load
    model = load()                         # or load("path/to/{module}.safetensors")
    logits = model(images)                 # float32 NHWC, prepared as metadata.json says

Written by `netspec export --format flax`. Needs jax, flax, numpy and safetensors. The network
is built abstractly (nothing initialised), then every variable is read from the safetensors
file; each path, shape and dtype is checked against the network first.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
from flax import nnx
from safetensors.numpy import load_file

HERE = Path(__file__).resolve().parent
MODULE = {module_literal}
NETWORK = {network_literal}
WEIGHTS = HERE / {weights_literal}
SEED = 0
"""The dropout RNG's seed (the file holds no RNG state; evaluation does not use it)."""


def network_class() -> type:
    """The network class from the ejected source beside this file."""
    path = HERE / (MODULE + ".py")
    module = sys.modules.get(MODULE)
    if module is None or Path(getattr(module, "__file__", "") or "").resolve() != path:
        spec = importlib.util.spec_from_file_location(MODULE, path)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        sys.modules.setdefault(MODULE, module)
    return getattr(module, NETWORK)


def _value(variable: Any) -> Any:
    return variable.get_value() if hasattr(variable, "get_value") else variable.value


def _set(variable: Any, value: Any) -> None:
    if hasattr(variable, "set_value"):
        variable.set_value(value)
    else:
        variable.value = value


def _rng_value(variable: Any) -> Any:
    """A fixed dropout RNG key (or counter) of the variable's shape."""
    shape = tuple(_value(variable).shape)
    if isinstance(variable, nnx.RngKey):
        key = jax.random.key(SEED)
        return jax.random.split(key, shape) if shape else key
    return jnp.zeros(shape, _value(variable).dtype)


def load(path: str | Path = WEIGHTS) -> nnx.Module:
    """The network (a flax.nnx.Module) with the weights in `path`.

    Call it as `model(images)`: float32 (N, H, W, C) images -> logits, in eval mode (batch norm
    running statistics, no dropout). Raises ValueError when the file does not match it.
    """
    cls = network_class()
    model = nnx.eval_shape(lambda: cls(rngs=nnx.Rngs(SEED)))
    tensors = load_file(str(path))
    expected, rng = {{}}, []
    for keys, node in nnx.iter_graph(model):
        if isinstance(node, nnx.RngState):
            rng.append(node)
        elif isinstance(node, nnx.Variable):
            expected[".".join(str(key) for key in keys)] = node
    problems = [f"missing {{key}}" for key in sorted(set(expected) - set(tensors))]
    problems += [f"unexpected {{key}}" for key in sorted(set(tensors) - set(expected))]
    for key in sorted(set(expected) & set(tensors)):
        want, got = _value(expected[key]), tensors[key]
        if tuple(got.shape) != tuple(want.shape) or got.dtype != want.dtype:
            problems.append(
                f"{{key}}: the file has {{got.dtype}}{{list(got.shape)}}, "
                f"the network needs {{want.dtype}}{{list(want.shape)}}"
            )
    if problems:
        shown = "; ".join(problems[:10]) + (
            f"; ... ({{len(problems) - 10}} more)" if len(problems) > 10 else ""
        )
        raise ValueError(f"{{path}} does not hold the weights of {{NETWORK}}: {{shown}}")
    for key, variable in expected.items():
        _set(variable, jnp.asarray(tensors[key]))
    for variable in rng:
        _set(variable, _rng_value(variable))
    return model
'''


def loader_source(names: BundleNames) -> str:
    """The loader module's text: the fixed template, names as identifiers and literals."""
    text = LOADER_TEMPLATE.format(
        network=_checked_identifier(names.network),
        loader=_checked_identifier(names.loader),
        module=_checked_identifier(names.module),
        module_literal=repr(names.module),
        network_literal=repr(names.network),
        weights_literal=repr(names.weights_file),
    )
    compile(text, names.loader_file, "exec")  # a template bug fails here, not in the user's hands
    return text


def bundle_files(compiled: Any, model: Any, names: BundleNames) -> dict[str, bytes]:
    """File name -> contents: the ejected source, the loader and the weights."""
    return {
        names.source_file: compiled.source(standalone=True).encode("utf-8"),
        names.loader_file: loader_source(names).encode("utf-8"),
        names.weights_file: safetensors_bytes(model, names),
    }
