"""`netspec export --format stablehlo`: the eval-mode network as a serialized `jax.export`.

The file is `jax.export.Exported.serialize()`: StableHLO bytecode with the weights inside as
constants, plus JAX's calling convention. `jax.export.deserialize(data).call(images)` runs it
without netspec or the model's source: float32 NHWC images (any batch size) -> what
`model(images, train=False)` returns, logits (N, K) or per-pixel logits (N, H, W, K).
"""

from __future__ import annotations

from typing import Any

PLATFORMS = ("cpu", "cuda", "tpu")
"""Lowered for all three when possible, so a file written on a CPU also runs on a GPU or TPU."""


def export_stablehlo(model: Any, input_shape: tuple[int, int, int]) -> Any:
    """The `jax.export.Exported` of `model` in eval mode for (b, H, W, C) float32 images, b a
    symbolic batch size; its `platforms` say where it runs (the current one at least)."""
    import jax
    import jax.numpy as jnp
    from flax import nnx

    graphdef, state = nnx.split(model)

    def logits(images: jax.Array) -> Any:
        return nnx.merge(graphdef, state, copy=True)(images, train=False)

    height, width, channels = (int(n) for n in input_shape)
    images = jax.ShapeDtypeStruct(
        jax.export.symbolic_shape(f"b, {height}, {width}, {channels}"), jnp.float32
    )
    try:
        return jax.export.export(jax.jit(logits), platforms=PLATFORMS)(images)
    except Exception:  # a lowering rule missing for another platform: this one still works
        return jax.export.export(jax.jit(logits))(images)


def serialize(exported: Any) -> bytes:
    """The bytes `jax.export.deserialize` reads back."""
    return bytes(exported.serialize())
