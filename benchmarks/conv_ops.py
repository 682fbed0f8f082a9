"""The train step's operations one by one: XLA:CPU (what netspec, hand-written Flax and Keras
run) against PyTorch's CPU kernels (oneDNN), forward and backward.

    python benchmarks/conv_ops.py [--spec inception10] [--batch 64] [--repeats 7]

For every distinct convolution of the spec (input size, channels, kernel, stride; from
netspec's analysis), one jitted JAX function computes the convolution and both of its
gradients (input and kernel) for a given output gradient, and the same in PyTorch
(`conv2d` then `backward`); likewise each batch norm (training mode) with the ReLU after it,
and each max pooling (twice: netspec's, whose gradient is its own masked strided adds, and
`reduce_window` differentiated by XLA, a select-and-scatter); the two frameworks alternate,
and the table gives each one's median milliseconds, the count of such convolutions in the
network, and the totals: how much of the step's gap to PyTorch each kind accounts for.
Padding is symmetric (kernel // 2) in both, float32, NHWC for JAX and NCHW for PyTorch
(each framework's CPU layout).
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections import Counter
from typing import Any

import numpy as np


def conv_shapes(spec: str) -> Counter:
    """(H, W, C_in, C_out, kernel, stride) of each group-1 convolution, counted."""
    import netspec

    compiled = netspec.compile(spec)
    shapes = {node.name: node.output_shape for node in compiled.report.nodes}
    found: Counter = Counter()
    for node in compiled.graph.nodes:
        if node.op != "conv" or node.attrs.get("groups", 1) != 1:
            continue
        source = node.inputs[0]
        height, width, channels = shapes.get(source, compiled.graph.input_shape)
        kernel = node.attrs["kernel"]
        key = (height, width, channels, node.attrs["filters"], kernel[0], node.attrs["stride"])
        found[key] += 1
    return found


XLA_MAXPOOL = "maxpool, XLA's gradient"


def other_shapes(spec: str) -> Counter:
    """("maxpool", H, W, C, kernel, stride) of each max pooling (and the same key under
    "maxpool, XLA's gradient") and ("bn+relu", H, W, C, 0, 0) of each batch norm, counted (its
    input's size)."""
    import netspec

    compiled = netspec.compile(spec)
    shapes = {node.name: node.output_shape for node in compiled.report.nodes}
    found: Counter = Counter()
    for node in compiled.graph.nodes:
        height, width, channels = shapes.get(node.inputs[0], compiled.graph.input_shape)
        if node.op == "maxpool":
            kernel, stride = node.attrs["kernel"][0], node.attrs["stride"][0]
            found[("maxpool", height, width, channels, kernel, stride)] += 1
            found[(XLA_MAXPOOL, height, width, channels, kernel, stride)] += 1
        elif node.op == "batchnorm":
            found[("bn+relu", height, width, channels, 0, 0)] += 1
    return found


def timed(step: Any, *arrays: Any) -> Any:
    """A timer of `step(*arrays)` (jitted JAX), compiled first."""
    import jax

    jax.block_until_ready(step(*arrays))

    def run() -> float:
        began = time.perf_counter()
        jax.block_until_ready(step(*arrays))
        return time.perf_counter() - began

    return run


def jax_other_timer(batch: int, key: tuple) -> Any:
    import jax
    import jax.numpy as jnp

    from netspec.flax_layers import MaxPool

    kind, height, width, channels, kernel, stride = key
    rng = np.random.default_rng(0)
    x = jnp.asarray(rng.standard_normal((batch, height, width, channels), np.float32))
    scale, shift = jnp.ones(channels), jnp.zeros(channels)

    pad = ((0, 0), (kernel // 2, kernel // 2), (kernel // 2, kernel // 2), (0, 0))
    if kind == "maxpool":  # netspec's layer, as the built model runs it
        pool = MaxPool((height, width, channels), kernel, stride, kernel // 2, "floor")

    def forward(x: Any, scale: Any, shift: Any) -> Any:
        if kind == "maxpool":
            return pool(x)
        if kind == XLA_MAXPOOL:
            window, strides = (1, kernel, kernel, 1), (1, stride, stride, 1)
            return jax.lax.reduce_window(x, -jnp.inf, jax.lax.max, window, strides, pad)
        mean = x.mean((0, 1, 2))
        var = ((x - mean) ** 2).mean((0, 1, 2))
        return jax.nn.relu((x - mean) * jax.lax.rsqrt(var + 1e-3) * scale + shift)

    g = jnp.asarray(rng.standard_normal(forward(x, scale, shift).shape, np.float32))

    @jax.jit
    def step(x: Any, scale: Any, shift: Any, g: Any) -> Any:
        out, back = jax.vjp(forward, x, scale, shift)
        return out, back(g)

    return timed(step, x, scale, shift, g)


def torch_other_timer(batch: int, key: tuple) -> Any:
    import torch
    import torch.nn.functional as F

    kind, height, width, channels, kernel, stride = key
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(batch, channels, height, width, generator=gen, requires_grad=True)
    scale = torch.ones(channels, requires_grad=True)
    shift = torch.zeros(channels, requires_grad=True)

    def forward() -> Any:
        if kind.startswith("maxpool"):
            return F.max_pool2d(x, kernel, stride, padding=kernel // 2)
        return F.relu(F.batch_norm(x, None, None, scale, shift, training=True, eps=1e-3))

    g = torch.randn(forward().shape, generator=gen)

    def run() -> float:
        began = time.perf_counter()
        forward().backward(g)
        x.grad = scale.grad = shift.grad = None
        return time.perf_counter() - began

    run()
    return run


def jax_timer(batch: int, key: tuple) -> Any:
    import jax
    import jax.numpy as jnp

    height, width, cin, cout, kernel, stride = key
    rng = np.random.default_rng(0)
    x = jnp.asarray(rng.standard_normal((batch, height, width, cin), np.float32))
    w = jnp.asarray(rng.standard_normal((kernel, kernel, cin, cout), np.float32) * 0.1)
    pad = ((kernel // 2, kernel // 2),) * 2

    def forward(x: Any, w: Any) -> Any:
        return jax.lax.conv_general_dilated(
            x, w, (stride, stride), pad, dimension_numbers=("NHWC", "HWIO", "NHWC")
        )

    y = forward(x, w)
    g = jnp.asarray(rng.standard_normal(y.shape, np.float32))

    @jax.jit
    def step(x: Any, w: Any, g: Any) -> Any:
        out, back = jax.vjp(forward, x, w)
        return out, back(g)

    jax.block_until_ready(step(x, w, g))

    def run() -> float:
        began = time.perf_counter()
        jax.block_until_ready(step(x, w, g))
        return time.perf_counter() - began

    return run


def torch_timer(batch: int, key: tuple) -> Any:
    import torch

    height, width, cin, cout, kernel, stride = key
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(batch, cin, height, width, generator=gen, requires_grad=True)
    w = (torch.randn(cout, cin, kernel, kernel, generator=gen) * 0.1).requires_grad_()
    y = torch.nn.functional.conv2d(x, w, stride=stride, padding=kernel // 2)
    g = torch.randn(y.shape, generator=gen)

    def run() -> float:
        began = time.perf_counter()
        out = torch.nn.functional.conv2d(x, w, stride=stride, padding=kernel // 2)
        out.backward(g)
        x.grad = w.grad = None
        return time.perf_counter() - began

    run()
    return run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--spec", default="inception10")
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()
    import torch

    shapes = {("conv", *key): count for key, count in conv_shapes(args.spec).items()}
    shapes.update(other_shapes(args.spec))
    rows = []
    for key, count in sorted(shapes.items(), key=lambda item: (item[0][0], -item[0][1])):
        if key[0] == "conv":
            timers = {
                "xla": jax_timer(args.batch, key[1:]),
                "torch": torch_timer(args.batch, key[1:]),
            }
        else:
            timers = {
                "xla": jax_other_timer(args.batch, key),
                "torch": torch_other_timer(args.batch, key),
            }
        times: dict[str, list[float]] = {name: [] for name in timers}
        for repeat in range(args.repeats):
            order = list(timers) if repeat % 2 == 0 else list(timers)[::-1]
            for name in order:
                times[name].append(timers[name]())
        medians = {name: 1e3 * statistics.median(values) for name, values in times.items()}
        rows.append((key, count, medians["xla"], medians["torch"]))
    print(
        f"{args.spec}, batch {args.batch}, float32, forward + both gradients; "
        f"torch {torch.__version__}, {torch.get_num_threads()} threads\n"
    )
    print("| op | input HxWxC | out C | kernel/stride | count | XLA ms | torch ms | XLA / torch |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    totals: dict[str, list[float]] = {}
    for key, count, xla, torch_ms in rows:
        kind, height, width, cin = key[:4]
        total = totals.setdefault(kind, [0, 0.0, 0.0])
        total[0] += count
        total[1] += count * xla
        total[2] += count * torch_ms
        cout = key[4] if kind == "conv" else ""
        kernel, stride = (key[5], key[6]) if kind == "conv" else (key[4], key[5])
        window = f"{kernel}x{kernel}/{stride}" if kernel else ""
        print(
            f"| {kind} | {height}x{width}x{cin} | {cout} | {window} | {count} | "
            f"{xla:.2f} | {torch_ms:.2f} | {xla / torch_ms:.2f} |"
        )
    for kind, (count, xla, torch_ms) in totals.items():
        print(
            f"| **all {kind}** | | | | {count} | **{xla:.1f}** | **{torch_ms:.1f}** | "
            f"**{xla / torch_ms:.2f}** |"
        )


if __name__ == "__main__":
    main()
