"""Cross-check the analysis against the Flax module: build it abstractly, compare every layer.

`jax.eval_shape` constructs the generated module and runs a forward pass on a zero batch
without allocating anything; each layer's real output shape and parameter count is recorded
and compared with what the analysis inferred for that node. A difference is a bug in netspec,
reported at the row of the spec it concerns.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

from .compiled import Compiled
from .emit import state_path
from .errors import SpecError
from .jaxcache import cache_folder
from .layers import format_shape

CHECKED_CODE = (
    "flax_layers.py",
    "shapes.py",
    "check.py",
    "emit.py",
    "values.py",
    "prelude.py",
    "pysource.py",
)
"""netspec's own files whose code a check runs: any change to them invalidates cached checks."""


@dataclass(frozen=True)
class FlaxCheck:
    """What the abstract build found: layers compared, parameters and statistics counted."""

    layers: int
    params: int
    state: int


@contextlib.contextmanager
def recording_outputs(
    names: dict[int, tuple[Any, ...]], shapes: dict[tuple[Any, ...], tuple]
) -> Iterator[None]:
    """Temporarily wrap every netspec layer's __call__ to record its output shape by path."""
    from . import flax_layers

    classes = [
        c
        for c in vars(flax_layers).values()
        if isinstance(c, type) and "__call__" in c.__dict__ and c.__module__ == flax_layers.__name__
    ]
    originals = {c: c.__dict__["__call__"] for c in classes}

    def recorder(original: Any) -> Any:
        def call(self: Any, x: Any, train: bool = False) -> Any:
            y = original(self, x, train)
            if id(self) in names:
                shapes[names[id(self)]] = tuple(y.shape[1:])
            return y

        return call

    for cls, original in originals.items():
        cls.__call__ = recorder(original)
    try:
        yield
    finally:
        for cls, original in originals.items():
            cls.__call__ = original


def abstract_trace(compiled: Compiled) -> tuple[dict, dict, dict, dict]:
    """(output shapes, parameter counts, statistic counts) per module path, from eval_shape,
    and the shape of each output of the network (`main` and every auxiliary head)."""
    import jax
    import jax.numpy as jnp
    from flax import nnx

    network = compiled.network_class()
    shapes: dict[tuple[Any, ...], tuple] = {}
    params: dict[tuple[Any, ...], int] = {}
    stats: dict[tuple[Any, ...], int] = {}

    def count(model: Any, kind: Any, into: dict) -> None:
        for path, value in nnx.to_flat_state(nnx.state(model, kind)):
            key = tuple(path[:-1])
            into[key] = into.get(key, 0) + int(value.size)

    def run() -> Any:
        model = network(rngs=nnx.Rngs(0))
        count(model, nnx.Param, params)
        count(model, nnx.BatchStat, stats)
        names = {id(module): tuple(path) for path, module in nnx.iter_modules(model)}
        with recording_outputs(names, shapes):
            batch = jnp.zeros((1, *compiled.graph.input_shape), jnp.float32)
            return model(batch, train=bool(compiled.graph.heads))

    outputs = jax.eval_shape(run)
    if not isinstance(outputs, dict):
        outputs = {"main": outputs}
    return shapes, params, stats, {k: tuple(v.shape[1:]) for k, v in outputs.items()}


def check_against_flax(compiled: Compiled) -> FlaxCheck:
    """Compare shapes and counts of every node with the abstractly built module."""
    shapes, params, stats, outputs = abstract_trace(compiled)
    check_outputs(compiled, outputs)
    compared = 0
    for node in compiled.report.nodes:
        graph_node = compiled.graph.node(node.name)
        path = state_path(node.name)
        where = {"location": graph_node.origin, "path": graph_node.trail}
        if path in shapes:
            compared += 1
            if shapes[path] != node.output_shape:
                raise SpecError(
                    f"netspec bug: the Flax layer {'/'.join(map(str, path))} outputs "
                    f"{format_shape(shapes[path])} but the analysis says "
                    f"{format_shape(node.output_shape)}",
                    **where,
                )
        for what, found, expected in (
            ("parameters", params.get(path, 0), node.params),
            ("statistics", stats.get(path, 0), node.state),
        ):
            if found != expected:
                raise SpecError(
                    f"netspec bug: the Flax layer {'/'.join(map(str, path))} has {found:,} "
                    f"{what} but the analysis counts {expected:,}",
                    **where,
                )
    known = {state_path(n.name) for n in compiled.report.nodes}
    stray = sorted(set(params) - known, key=str)
    if stray:
        raise SpecError(
            f"netspec bug: the Flax module has parameters at {stray[0]} that no "
            "row of the spec accounts for"
        )
    return FlaxCheck(compared, sum(params.values()), sum(stats.values()))


def check_outputs(compiled: Compiled, outputs: dict[str, tuple]) -> None:
    """The network's output and each auxiliary head's have the row's shape (a 1x1xC row as a
    vector of C, as the module returns it)."""
    rows = {row.name: row for row in compiled.report.rows}
    expected = {"main": compiled.report.output_shape}
    expected |= {head.row: rows[head.row].output_shape for head in compiled.graph.heads}
    for name, shape in expected.items():
        want = (shape[2],) if tuple(shape[:2]) == (1, 1) else tuple(shape)
        if outputs.get(name) != want:
            raise SpecError(
                f"netspec bug: the Flax module's output {name!r} has shape {outputs.get(name)} "
                f"but the analysis says {want}",
                path=name,
            )


def check_key(compiled: Compiled) -> str:
    """A digest of everything a check's outcome depends on: the generated source, the
    analysis it is compared with, netspec's layer code and the JAX and Flax versions."""
    digest = hashlib.sha256()
    parts = [compiled.source(), json.dumps(compiled.summary, sort_keys=True, default=str)]
    parts += [f"{name} {_version(name)}" for name in ("jax", "jaxlib", "flax")]
    for part in parts:
        digest.update(part.encode("utf-8") + b"\0")
    here = Path(__file__).parent
    for name in CHECKED_CODE:
        digest.update((here / name).read_bytes() + b"\0")
    return digest.hexdigest()


def _version(package: str) -> str:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "none"


def cached_check(compiled: Compiled) -> tuple[FlaxCheck, bool]:
    """`check_against_flax`, skipped (JAX not even imported) when the same check passed
    before; (the check, whether it came from the cache). Only passed checks are stored, in
    `$NETSPEC_CACHE/checks`."""
    folder = cache_folder("checks")
    if folder is None:
        return check_against_flax(compiled), False
    path = folder / f"{check_key(compiled)}.json"
    try:
        return FlaxCheck(**json.loads(path.read_text(encoding="utf-8"))), True
    except (OSError, ValueError, TypeError):
        pass  # not cached, or an unreadable entry: check again and rewrite it
    check = check_against_flax(compiled)
    from .fileio import atomic_write_text

    with contextlib.suppress(OSError):  # a read-only cache only costs the next run time
        atomic_write_text(path, json.dumps(asdict(check)))
    return check, False
