"""Compare the compiled train steps of netspec's model and the hand-written Flax one, op by op.

    python benchmarks/hlo_compare.py MODEL [--batch 32]

Prints, for each, XLA's FLOPs and bytes accessed (`cost_analysis`) and the counts of the most
common HLO instructions of the optimised step (`as_text`). Equal counts mean the compiler
adds nothing; extra copies or transposes point at the layer to fix. No timing: it is exact
and runs in seconds, so it settles what a noisy timing cannot.
"""

from __future__ import annotations

import argparse
import collections
import re
import sys
from pathlib import Path

import jax.numpy as jnp
import optax
from flax import nnx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from handwritten_flax import MODELS

import netspec
from netspec.train.steps import initial_state, make_steps

INSTRUCTION = re.compile(r"= \S+ ([a-z][\w-]*)\(")


def step_profile(model: nnx.Module, batch: int, shape: tuple) -> tuple[dict, collections.Counter]:
    """(cost analysis, instruction counts) of `model`'s compiled train step."""
    tx = optax.sgd(0.01, momentum=0.9)
    graphdef, state = initial_state(model, tx)
    train = make_steps(graphdef, tx, {"main": 1.0, "aux1": 0.3, "aux2": 0.3}, 0.0).train
    images = jnp.zeros((batch, *shape))
    labels, mask = jnp.zeros((batch,), jnp.int32), jnp.ones((batch,))
    compiled = train.lower(state, images, labels, mask).compile()
    return compiled.cost_analysis(), collections.Counter(INSTRUCTION.findall(compiled.as_text()))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("model", choices=list(MODELS))
    parser.add_argument("--batch", type=int, default=32)
    args = parser.parse_args()
    compiled = netspec.compile(args.model)
    shape = compiled.graph.input_shape
    profiles = {
        "netspec": step_profile(compiled.build(seed=0), args.batch, shape),
        "flax": step_profile(MODELS[args.model](rngs=nnx.Rngs(0)), args.batch, shape),
    }
    ops = sorted({op for _, counts in profiles.values() for op in counts})
    print(
        f"| {args.model}, batch {args.batch} | netspec | hand-written flax |\n| --- | --- | --- |"
    )
    for key in ("flops", "bytes accessed"):
        cells = [f"{cost.get(key, 0):,.0f}" for cost, _ in profiles.values()]
        print(f"| {key} | {' | '.join(cells)} |")
    for op in ops:
        cells = [str(counts[op]) for _, counts in profiles.values()]
        marker = " (differs)" if len(set(cells)) > 1 else ""
        print(f"| `{op}`{marker} | {' | '.join(cells)} |")


if __name__ == "__main__":
    main()
