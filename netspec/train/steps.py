"""The jitted train and eval steps: one compiled program each, state buffers donated.

The training state is a pytree (parameters, the module's other state such as batch-norm
statistics and dropout RNG counters, optimizer state, and this epoch's running sums), so the
step is a pure function that XLA compiles once. Metrics accumulate on the device; the host
reads them only when it logs.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax
from flax import nnx

from ..remat import step_compiler_options


class TrainState(NamedTuple):
    """Everything that changes while training. `sums` are this epoch's running totals
    (loss, correct, count, as float32 scalars); `nan_step` is the first step whose loss was
    not finite (-1 while all were)."""

    step: jax.Array
    params: Any
    rest: Any
    opt_state: Any
    sums: dict[str, jax.Array]
    nan_step: jax.Array


def zero_sums() -> dict[str, jax.Array]:
    return {
        "loss": jnp.zeros((), jnp.float32),
        "correct": jnp.zeros((), jnp.float32),
        "count": jnp.zeros((), jnp.float32),
    }


def cross_entropy(
    logits: jax.Array, labels: jax.Array, mask: jax.Array, smoothing: float
) -> jax.Array:
    """Per-example softmax cross-entropy (B,), labels smoothed by `smoothing`, zero where
    mask is 0; computed in float32 whatever the compute dtype."""
    classes = logits.shape[-1]
    targets = (
        optax.smooth_labels(jax.nn.one_hot(labels, classes), smoothing)
        if smoothing
        else jax.nn.one_hot(labels, classes)
    )
    return optax.softmax_cross_entropy(logits.astype(jnp.float32), targets) * mask


@dataclass(frozen=True)
class Steps:
    """The compiled steps for one network and optimizer."""

    train: Callable[[TrainState, jax.Array, jax.Array, jax.Array], TrainState]
    evaluate: Callable[[Any, Any, jax.Array, jax.Array, jax.Array], dict[str, jax.Array]]
    predict: Callable[[Any, Any, jax.Array], jax.Array]


def make_steps(
    graphdef: nnx.GraphDef,
    tx: optax.GradientTransformation,
    loss_weights: Mapping[str, float],
    smoothing: float,
    *,
    donate: bool = True,
) -> Steps:
    """Jitted steps. `loss_weights` weighs each head's loss ("main" and auxiliary rows).
    `donate` lets the train step reuse the old state's buffers for the new state (off only to
    measure what that saves)."""

    def train_step(
        state: TrainState, images: jax.Array, labels: jax.Array, mask: jax.Array
    ) -> TrainState:
        count = jnp.maximum(mask.sum(), 1.0)

        def loss_fn(params: Any) -> tuple[jax.Array, tuple[jax.Array, jax.Array, Any]]:
            model = nnx.merge(graphdef, params, state.rest, copy=True)
            out = model(images, train=True)
            heads = out if isinstance(out, dict) else {"main": out}
            losses = {
                k: cross_entropy(v, labels, mask, smoothing).sum() / count for k, v in heads.items()
            }
            total = sum(loss_weights.get(k, 0.0) * v for k, v in losses.items())
            _, _, rest = nnx.split(model, nnx.Param, ...)
            return total, (losses["main"], heads["main"], rest)

        (loss, (main_loss, logits, rest)), grads = jax.value_and_grad(loss_fn, has_aux=True)(
            state.params
        )
        updates, opt_state = tx.update(grads, state.opt_state, state.params)
        params = optax.apply_updates(state.params, updates)
        correct = ((jnp.argmax(logits, -1) == labels) * mask).sum()
        sums = {
            "loss": state.sums["loss"] + main_loss * mask.sum(),
            "correct": state.sums["correct"] + correct,
            "count": state.sums["count"] + mask.sum(),
        }
        bad = ~jnp.isfinite(loss)
        nan_step = jnp.where(bad & (state.nan_step < 0), state.step, state.nan_step)
        return TrainState(state.step + 1, params, rest, opt_state, sums, nan_step)

    def logits_of(params: Any, rest: Any, images: jax.Array) -> jax.Array:
        return nnx.merge(graphdef, params, rest, copy=True)(images, train=False)

    def eval_step(
        params: Any, rest: Any, images: jax.Array, labels: jax.Array, mask: jax.Array
    ) -> dict[str, jax.Array]:
        logits = logits_of(params, rest, images).astype(jnp.float32)
        top5 = jax.lax.top_k(logits, min(5, logits.shape[-1]))[1]
        return {
            "loss": cross_entropy(logits, labels, mask, 0.0).sum(),
            "correct": ((jnp.argmax(logits, -1) == labels) * mask).sum(),
            "top5": (jnp.any(top5 == labels[:, None], -1) * mask).sum(),
            "count": mask.sum(),
        }

    return Steps(
        train=jax.jit(
            train_step,
            donate_argnums=0 if donate else (),
            compiler_options=step_compiler_options(graphdef),
        ),
        evaluate=jax.jit(eval_step),
        predict=jax.jit(logits_of),
    )


def initial_state(
    model: nnx.Module,
    tx: optax.GradientTransformation,
    sums: dict[str, jax.Array] | None = None,
) -> tuple[nnx.GraphDef, TrainState]:
    """Split a built module into its graph definition and a fresh TrainState; `sums` are the
    zeroed running totals its steps keep (default `zero_sums()`, one label per image)."""
    graphdef, params, rest = nnx.split(model, nnx.Param, ...)
    state = TrainState(
        jnp.zeros((), jnp.int32),
        params,
        rest,
        tx.init(params),
        zero_sums() if sums is None else sums,
        jnp.full((), -1, jnp.int32),
    )
    return graphdef, state
