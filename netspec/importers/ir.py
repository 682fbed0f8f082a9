"""What every importer reads a foreign model into: a graph of netspec layer types.

A reader (Caffe prototxt, Keras config, ONNX) turns each source layer into one `Node` whose `op`
and `fields` are a netspec layer type and its fields, as a row would write them
(`conv` with `filters`, `kernel`, `stride`, `padding`, `groups`, `bias`; `dense` with `units`;
`maxpool` with `rounding`; ...). The spec writer (`writer.py`) is the only consumer: it folds
activations into the layer before them, groups branches into `concat`/`add` rows, finds blocks
and writes the table. Readers never write spec text themselves.

Conventions:
- `inputs` name earlier nodes, or `ImportedGraph.input_name` for the network's input; nodes are
  in an order where every input comes first (a topological order, usually the file's).
- A `dense` node may read a spatial (HxWxC) tensor: the writer puts a `flatten` row before it
  when the analysis says the input is not 1x1 (Caffe's InnerProduct flattens implicitly).
  Readers whose format flattens explicitly (ONNX Flatten, Keras Flatten) emit `flatten` nodes.
- Pass-through layers (Caffe Dropout in deploy files, Keras InputLayer, ONNX Identity) are
  not emitted: a reader points whatever reads them at their input.
- Spatial sizes are (height, width) pairs or ints; `padding` is an int, [ph, pw],
  [[top, bottom], [left, right]], `same` or `valid`, as the conv and pooling rows take it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..errors import Location


@dataclass
class Node:
    """One source layer as a netspec layer type."""

    name: str
    """The layer's name in the source (unsanitised: `inception_3a/1x1`, `conv2d_1`)."""
    op: str
    """A netspec layer type (`conv`, `dense`, `maxpool`, `relu`, `concat`, ...)."""
    inputs: tuple[str, ...]
    """The nodes it reads (their `name`), or the graph's `input_name`."""
    fields: dict[str, Any] = field(default_factory=dict)
    """The row's fields, netspec names and values (`{"filters": 64, "kernel": [7, 7]}`)."""
    source_type: str = ""
    """The layer's type in the source (`Convolution`, `Conv2D`, `Conv`), for messages."""
    location: Location | None = None
    """Where the layer is written (a prototxt line); None for formats without lines."""
    params: int | None = None
    """Its parameter count as the source states it (weights in the file), if known."""


@dataclass
class ImportedGraph:
    """A foreign model read into netspec layer types, before it is written as a spec."""

    name: str
    """The network's name (a Caffe `name:`, a Keras model name, an ONNX graph name)."""
    source: str
    """The file it came from, as given."""
    format: str
    """`Caffe prototxt`, `Keras config`, `ONNX (opset 17)`, ... for the header comment."""
    input_shape: tuple[int, int, int]
    """(height, width, channels) of one example."""
    nodes: list[Node]
    outputs: list[str]
    """The main output first; every other output is an auxiliary head (see `aux`)."""
    input_name: str = "input"
    aux: dict[str, float] = field(default_factory=dict)
    """Auxiliary outputs (node name -> loss weight), e.g. Caffe train_val's loss1/loss2."""
    source_params: int | None = None
    """The source's own parameter count (ONNX initializers, Keras weights), when it has one."""
    notes: list[str] = field(default_factory=list)
    """Things the reader dropped or changed (loss and accuracy layers, data layers), one line each,
    written into the spec's header comment."""

    def node(self, name: str) -> Node:
        for node in self.nodes:
            if node.name == name:
                return node
        raise KeyError(name)
