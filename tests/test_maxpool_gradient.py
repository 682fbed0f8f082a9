"""Max pooling's own gradient (netspec.flax_layers `_max_pool_backward`) against XLA's
(autodiff of `lax.reduce_window`, select-and-scatter), for the windows the zoo uses."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from netspec.flax_layers import MaxPool

CASES = [
    # (in_shape, kernel, stride, padding, rounding)
    ((16, 16, 8), 3, 1, "same", "floor"),  # Inception's pool branch
    ((15, 15, 4), 3, 2, "valid", "ceil"),  # GoogLeNet / Caffe: a partial last window
    ((14, 14, 4), 3, 2, 1, "floor"),  # ResNet's stem pool
    ((8, 8, 3), 2, 2, "valid", "floor"),  # LeNet / VGG
    ((9, 7, 2), (3, 2), (2, 1), "same", "floor"),
]


def reference(pool: MaxPool, x: jax.Array) -> jax.Array:
    """XLA's own max pooling, differentiated by JAX (select-and-scatter)."""
    y = jax.lax.reduce_window(
        x, -jnp.inf, jax.lax.max, (1, *pool.kernel, 1), (1, *pool.stride, 1), pool._lax_padding()
    )
    return y[:, : pool.out_shape[0], : pool.out_shape[1], :]


@pytest.mark.parametrize("case", CASES, ids=[str(c[:4]) for c in CASES])
@pytest.mark.parametrize("ties", [False, True], ids=["distinct", "ties"])
def test_max_pool_gradient_equals_xlas(case, ties: bool) -> None:
    in_shape, kernel, stride, padding, rounding = case
    pool = MaxPool(in_shape, kernel, stride, padding, rounding)
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, *in_shape)).astype(np.float32)
    if ties:  # few values: windows hold several equal maxima
        x = np.round(x).astype(np.float32)
    x = jnp.asarray(x)
    ours, back = jax.vjp(lambda v: pool(v), x)
    theirs, back_ref = jax.vjp(lambda v: reference(pool, v), x)
    assert ours.shape == (2, *pool.out_shape)
    np.testing.assert_array_equal(np.asarray(ours), np.asarray(theirs))
    grad = jnp.asarray(rng.standard_normal(ours.shape).astype(np.float32))
    np.testing.assert_allclose(
        np.asarray(back(grad)[0]), np.asarray(back_ref(grad)[0]), rtol=1e-6, atol=1e-6
    )
    # every output's gradient lands on exactly one input: the totals agree
    np.testing.assert_allclose(float(back(grad)[0].sum()), float(grad.sum()), rtol=1e-5)
