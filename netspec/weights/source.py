"""What a weight file holds, read into one framework-neutral form: layers of named tensors."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

LAYOUTS = ("torch", "keras", "netspec", "caffe_or_tf")
"""How a source stores kernels:

- torch: conv (O, I/g, kh, kw), transposed conv (I, O/g, kh, kw), dense (out, in) with a
  flattened input in C, H, W order (Caffe's blobs are the same);
- keras: conv (kh, kw, I/g, O), depthwise (kh, kw, C, multiplier), dense (in, out), flattened
  input in H, W, C order (TensorFlow's too);
- netspec: exactly the Flax module's variables;
- caffe_or_tf: a Caffe-converted NumPy file, either layout; decided per file from its kernels.
"""

KINDS = ("conv", "dense", "batchnorm", "norm", "scale")
"""conv: a 4-D kernel (or a torch 2-D weight used as a 1x1 conv); dense: a 2-D kernel; batchnorm:
running statistics; norm: a per-channel scale and bias (layer/group norm); scale: one
per-channel factor (a layer scale)."""


@dataclass(frozen=True)
class SourceLayer:
    """One layer of a weight file: its name there and its tensors by role.

    Roles: `kernel`, `bias` (conv, dense), `scale`, `bias`, `mean`, `var` (batchnorm; any may
    be absent), `scale`, `bias` (norm), `gamma` (scale). `keys` are the names of the tensors in
    the file, by role, for messages and the dry-run table.
    """

    name: str
    kind: str
    tensors: dict[str, np.ndarray]
    keys: dict[str, str] = field(default_factory=dict)

    def describe(self) -> str:
        shapes = ", ".join(f"{role} {tuple(t.shape)}" for role, t in self.tensors.items())
        return f"{self.name!r} ({self.kind}: {shapes})"


@dataclass(frozen=True)
class WeightSource:
    """A whole weight file: where it came from, its layers in the file's order, its layout,
    and the tensors it holds that carry no weights (e.g. torch's num_batches_tracked)."""

    description: str
    framework: str
    layout: str
    layers: tuple[SourceLayer, ...]
    ignored: tuple[str, ...] = ()
    ordered: bool = True
    """False when the file does not keep the order its layers were written in (safetensors
    sorts its tensors by name): such a source pairs only by name."""
    names_are_rows: bool = False
    """True when layer names are netspec node names (another netspec run, a NumPy file keyed by
    the spec's row names): pairing goes by name."""

    def by_name(self) -> dict[str, SourceLayer]:
        return {layer.name: layer for layer in self.layers}
