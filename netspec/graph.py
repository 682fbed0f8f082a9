"""The resolved network: uniquely named nodes in topological order. No pydantic, no JAX here."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from .errors import Location

INPUT = "input"
"""The name of the graph's input; nodes read it like any other node's output."""


@dataclass(frozen=True)
class Node:
    """One layer instance.

    `name` is its full path (`inception_3a/3x3/conv_1`), `op` its layer type, `attrs` its
    validated parameters, `inputs` the names of the nodes it reads (or INPUT), `row` the table
    row it belongs to, `origin` where the spec wrote it, `trail` the row/block path there and
    `field_origins` where each parameter's value was written (for errors about one field).
    """

    name: str
    op: str
    attrs: Mapping[str, Any]
    inputs: tuple[str, ...]
    row: str
    origin: Location | None = None
    trail: str = ""
    train_only: bool = False
    field_origins: Mapping[str, Location] = field(default_factory=dict)


@dataclass(frozen=True)
class Expectation:
    """What the spec says a row should produce; each part optional (text as written)."""

    output: str | None = None
    params: str | None = None
    macs: str | None = None
    origin: Location | None = None
    origins: tuple[Location | None, ...] = ()
    """Where each of output, params and macs is written."""


@dataclass(frozen=True)
class Row:
    """One row of the table: a top-level entry of the spec's `layers`.

    `kind` is the layer type or block name; `window` the paper's "patch size/stride" (e.g.
    `7x7/2`); `args` the block arguments as written (GoogLeNet's six inception columns).
    """

    name: str
    kind: str
    label: str
    nodes: tuple[str, ...]
    output: str
    origin: Location | None = None
    window: str = ""
    args: tuple[Any, ...] = ()
    train_only: bool = False
    expect: Expectation | None = None


@dataclass(frozen=True)
class Head:
    """An auxiliary train-only output and the weight of its loss."""

    row: str
    output: str
    weight: float


@dataclass(frozen=True)
class Graph:
    """A whole network: input shape (H, W, C), nodes in topological order, table rows, heads."""

    name: str
    input_shape: tuple[int, int, int]
    nodes: tuple[Node, ...]
    rows: tuple[Row, ...]
    output: str
    heads: tuple[Head, ...] = ()
    variables: Mapping[str, Any] = field(default_factory=dict)
    source: str = ""

    def node(self, name: str) -> Node:
        """The node called `name` (KeyError if there is none)."""
        return self._index[name]

    @property
    def _index(self) -> dict[str, Node]:
        index = self.__dict__.get("_node_index")
        if index is None:
            index = {n.name: n for n in self.nodes}
            object.__setattr__(self, "_node_index", index)
        return index
