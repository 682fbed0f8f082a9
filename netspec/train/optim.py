"""The optax optimizer and learning-rate schedule a TrainingConfig describes."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import optax

from .config import ScheduleConfig, TrainingConfig

Schedule = Callable[[jax.Array], jax.Array]


def learning_rate_schedule(config: TrainingConfig, steps_per_epoch: int) -> Schedule:
    """Learning rate per optimizer step; epoch counts in the config become steps here."""
    lr = config.learning_rate
    plan: ScheduleConfig = config.schedule
    total = config.epochs * steps_per_epoch
    warmup = round(plan.warmup_epochs * steps_per_epoch)

    def steps(epochs: float) -> int:
        return max(round(epochs * steps_per_epoch), 1)

    if plan.name == "constant":
        main: Schedule = optax.constant_schedule(lr)
    elif plan.name == "step":
        main = optax.exponential_decay(
            lr, steps(plan.step_epochs or 1), plan.factor, staircase=True
        )
    elif plan.name == "piecewise":
        main = optax.piecewise_constant_schedule(
            lr, {steps(b) - warmup: f for b, f in zip(plan.boundaries, plan.factors, strict=True)}
        )
    elif plan.name == "cosine":
        main = optax.cosine_decay_schedule(lr, max(total - warmup, 1), plan.final_fraction)
    else:  # exponential: x factor per epoch, smoothly
        main = optax.exponential_decay(lr, steps_per_epoch, plan.factor)
    if not warmup:
        return main
    return optax.join_schedules([optax.linear_schedule(0.0, lr, warmup), main], [warmup])


def decay_mask(config: TrainingConfig) -> Callable[[Any], Any]:
    """Which parameters weight decay applies to: conv/dense kernels, or everything."""

    def mask(params: Any) -> Any:
        if config.weight_decay_on == "all":
            return jax.tree.map(lambda _: True, params)
        return jax.tree_util.tree_map_with_path(
            lambda path, _: bool(path) and str(getattr(path[-1], "key", "")) == "kernel", params
        )

    return mask


def build_optimizer(
    config: TrainingConfig,
    steps_per_epoch: int,
    groups: Callable[[Any], Any] | None = None,
) -> tuple[optax.GradientTransformation, Schedule]:
    """Gradient clipping, L2 or decoupled weight decay, then the optax optimizer; with
    `groups` (params -> a label per parameter: frozen, backbone or head; see
    `finetune.ParamGroups`), frozen parameters get no update and the backbone's is scaled by
    `training.backbone_lr_scale`."""
    schedule = learning_rate_schedule(config, steps_per_epoch)
    optimizer = getattr(optax, config.optimizer.name)(  # a name checked against OPTIMIZERS
        learning_rate=schedule, **config.optimizer.options
    )
    parts: list[optax.GradientTransformation] = []
    if config.grad_clip:
        parts.append(optax.clip_by_global_norm(config.grad_clip))
    if config.weight_decay and config.weight_decay_style == "l2":
        parts.append(optax.add_decayed_weights(config.weight_decay, decay_mask(config)))
    parts.append(optimizer)
    if config.weight_decay and config.weight_decay_style == "decoupled":
        # AdamW-style, for any optimizer: after its step (already -lr(t) * update), add
        # -lr(t) * weight_decay * w, which the optimizer's normalisation never sees.
        rate = config.weight_decay
        parts.append(
            optax.add_decayed_weights(lambda step: -rate * schedule(step), decay_mask(config))
        )
    tx = optax.chain(*parts)
    if groups is None:
        return tx, schedule
    grouped = {
        "head": tx,
        "backbone": optax.chain(tx, optax.scale(config.backbone_lr_scale)),
        "frozen": optax.set_to_zero(),
    }
    return optax.multi_transform(grouped, groups), schedule
