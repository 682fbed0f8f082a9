"""`netspec.compile()`: a checked spec that builds into a Flax NNX module or ejects as source."""

from __future__ import annotations

import builtins
import linecache
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cached_property
from typing import Any

from .analyze import Report, analyze
from .codegen import GeneratedSource, generate
from .graph import Graph
from .load import YamlMap, load_yaml
from .resolve import resolve_spec
from .specfile import SpecSource, parse_overrides, read_source

DTYPES = ("float32", "bfloat16", "float16")


@dataclass(frozen=True)
class Compiled:
    """A spec that passed every check: its Graph, its Report and the Flax source it compiles to.

    `summary` is the `netspec compile --json` object. `build()` returns the `flax.nnx.Module`;
    `source()` the Python it runs; `source(standalone=True)` the same as a self-contained file.
    """

    graph: Graph
    report: Report
    data: YamlMap
    text: str

    @property
    def summary(self) -> dict[str, Any]:
        return self.report.to_json()

    @property
    def name(self) -> str:
        return self.graph.name

    @cached_property
    def generated(self) -> GeneratedSource:
        return generate(self.data, self.graph, self.report, self.text)

    def source(self, standalone: bool = False) -> str:
        """The generated Flax NNX module; `standalone` inlines netspec's layers (eject)."""
        if not standalone:
            return self.generated.text
        return generate(self.data, self.graph, self.report, self.text, standalone=True).text

    def network_class(self) -> type:
        """The generated nnx.Module class, executed from `source()` in a fresh namespace."""
        filename = f"<netspec {self.graph.name}>"
        text = self.generated.text
        linecache.cache[filename] = (len(text), None, text.splitlines(True), filename)
        namespace: dict[str, Any] = {"__name__": f"netspec_generated_{self.graph.name}"}
        exec(builtins.compile(text, filename, "exec"), namespace)
        return namespace[self.generated.network]

    def build(self, seed: int = 0, dtype: Any = None, param_dtype: Any = None) -> Any:
        """The Flax NNX module, parameters initialised from `seed`.

        `dtype` is the compute dtype (None: the spec's `dtype`, else float32 inputs decide),
        `param_dtype` the storage dtype of parameters (default: the spec's, else float32).
        Initialisation runs inside one `nnx.jit`, so building costs one compilation.
        """
        import jax.numpy as jnp
        from flax import nnx

        cls = self.network_class()
        dtype = resolve_dtype(dtype if dtype is not None else self.data.get("dtype"))
        param_dtype = resolve_dtype(param_dtype or self.data.get("param_dtype")) or jnp.float32

        @nnx.jit
        def create() -> nnx.Module:
            return cls(dtype=dtype, param_dtype=param_dtype, rngs=nnx.Rngs(seed))

        return create()


def resolve_dtype(name: Any) -> Any:
    """'bfloat16' -> jnp.bfloat16; None stays None; dtypes pass through."""
    if name is None or not isinstance(name, str):
        return name
    import jax.numpy as jnp

    return {"float32": jnp.float32, "bfloat16": jnp.bfloat16, "float16": jnp.float16}[name]


def compile(source: SpecSource, **overrides: Any) -> Compiled:
    """Check a spec (path, zoo name or YAML text) with variable overrides; see `Compiled`."""
    return compile_with(source, overrides)


def compile_with(source: SpecSource, overrides: list[str] | Mapping[str, Any] | None) -> Compiled:
    filename, data = read_source(source)
    tree = load_yaml(data, filename)
    text = data.decode("utf-8", errors="replace")
    graph = resolve_spec(tree, filename, text, parse_overrides(overrides))
    return Compiled(graph, analyze(graph), tree, text)
