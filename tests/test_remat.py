"""`training.remat` / `netspec bench --remat`: rows recomputed in the backward pass give the same
loss, gradients and batch-norm statistics, keep the parameters where they were, and leave XLA
fewer temporaries (its memory analysis of the compiled step).

References are independent of netspec.remat: the loss and gradients of the same network built
without remat, a batch mean computed directly with `jax.lax.conv_general_dilated`, and XLA's
analysis of the step compiled both ways. XLA:CPU drops jax.checkpoint's optimization barriers
unless told not to (netspec.remat.KEEP_BARRIERS), so the equality checks compile with that option:
otherwise the recomputation would be merged away and they would compare a program with itself.
"""

from __future__ import annotations

import json
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from flax import nnx

from netspec.cli import main
from netspec.compiled import compile_with
from netspec.memory import step_memory
from netspec.remat import KEEP_BARRIERS, REMAT_MARK, step_compiler_options
from netspec.train.steps import initial_state, make_steps

BLOCKS = """\
name: remat_tiny
input: [8, 8, 1]
vars: {num_classes: 10}
defaults:
  conv: {padding: same, bias: false}
blocks:
  unit:
    args: [filters]
    layers:
      - conv: conv 3x3 $filters
      - bn: bn
      - relu: relu
      - drop: dropout 0.25
layers:
  - stem: unit 8
  - body: unit 8 repeat=1
  - bn: bn
  - pool: global_avgpool
  - fc: dense $num_classes
training:
  learning_rate: 0.05
  batch_size: 16
  epochs: 1
  workers: 0
"""


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("remat") / "remat_tiny.yaml"
    path.write_text(BLOCKS)
    return path


def loss_grads_and_stats(model: nnx.Module, images: jax.Array, labels: jax.Array):
    """Cross-entropy, its gradients and the module's state after one training forward pass,
    compiled keeping optimization barriers (a plain `jax.value_and_grad`, not netspec's step)."""
    graphdef, params, rest = nnx.split(model, nnx.Param, ...)

    def run(params, rest, images, labels):
        def loss(params):
            module = nnx.merge(graphdef, params, rest, copy=True)
            logits = module(images, train=True)
            value = optax.softmax_cross_entropy_with_integer_labels(logits, labels).mean()
            return value, nnx.split(module, nnx.Param, ...)[2]

        (value, new_rest), grads = jax.value_and_grad(loss, has_aux=True)(params)
        return value, grads, new_rest

    compiled = jax.jit(run, compiler_options=KEEP_BARRIERS).lower(params, rest, images, labels)
    return compiled.compile()(params, rest, images, labels)


def batch(size: int = 16) -> tuple[jax.Array, jax.Array]:
    images = jax.random.normal(jax.random.key(1), (size, 8, 8, 1), jnp.float32)
    labels = jax.random.randint(jax.random.key(2), (size,), 0, 10)
    return images, labels


def floats(tree):
    return [
        np.asarray(leaf)
        for leaf in jax.tree.leaves(tree)
        if jnp.issubdtype(getattr(leaf, "dtype", np.int32), jnp.floating)
    ]


@pytest.fixture(scope="module")
def without_remat(tiny: Path):
    """The loss, gradients and new state of the network built without remat."""
    return loss_grads_and_stats(compile_with(str(tiny), []).build(seed=3), *batch())


@pytest.mark.parametrize("mode", ["blocks", "rows"])
def test_loss_gradients_and_batch_statistics_are_those_without_remat(tiny, without_remat, mode):
    compiled = compile_with(str(tiny), [])
    images, labels = batch()
    checkpointed = compiled.build(seed=3, remat=mode)
    expected_kinds = {"blocks": {"Unit"}, "rows": {"Unit", "BatchNorm", "GlobalAvgPool", "Dense"}}
    modules = [module for _, module in nnx.iter_modules(checkpointed)]
    kinds = {type(m).__name__ for m in modules if getattr(type(m), REMAT_MARK, False)}
    assert kinds == expected_kinds[mode]
    loss, grads, rest = without_remat
    loss_r, grads_r, rest_r = loss_grads_and_stats(checkpointed, images, labels)
    assert jax.tree.structure(grads) == jax.tree.structure(grads_r)
    np.testing.assert_allclose(float(loss_r), float(loss), rtol=1e-6)
    for a, b in zip(floats(grads), floats(grads_r), strict=True):
        np.testing.assert_allclose(b, a, rtol=1e-5, atol=1e-6)
    assert jax.tree.structure(rest) == jax.tree.structure(rest_r)
    for a, b in zip(floats(rest), floats(rest_r), strict=True):
        np.testing.assert_allclose(b, a, rtol=1e-5, atol=1e-6)
    # the first batch norm (inside the checkpointed stem block) updated its statistics from this
    # batch: momentum 0.9 from mean 0 and variance 1, computed here from the convolution directly
    kernel = np.asarray(checkpointed.stem.conv.kernel[...])
    conv = jax.lax.conv_general_dilated(
        images, kernel, (1, 1), "SAME", dimension_numbers=("NHWC", "HWIO", "NHWC")
    )
    mean, var = conv.mean((0, 1, 2)), conv.var((0, 1, 2))
    stats = rest_r["stem"]["bn"]
    np.testing.assert_allclose(stats["mean"][...], 0.1 * mean, rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(stats["var"][...], 0.9 + 0.1 * var, rtol=1e-4, atol=1e-6)
    # and the loss is a real one (dropout drew masks: a second RNG draw moved on)
    assert np.isfinite(float(loss)) and float(loss) > 0


def test_the_parameters_and_their_paths_do_not_change(tiny):
    compiled = compile_with(str(tiny), [])
    plain = nnx.state(compiled.build(seed=0))
    checkpointed = nnx.state(compiled.build(seed=0, remat="rows"))
    assert jax.tree_util.tree_structure(plain) == jax.tree_util.tree_structure(checkpointed)
    for a, b in zip(jax.tree.leaves(plain), jax.tree.leaves(checkpointed), strict=True):
        if jnp.issubdtype(a.dtype, jnp.floating):
            np.testing.assert_array_equal(a, b)


def train_step_memory(compiled, batch_size: int, remat: str | None):
    model = compiled.build(seed=0, remat=remat)
    tx = optax.sgd(0.01, momentum=0.9)
    graphdef, state = initial_state(model, tx)
    steps = make_steps(graphdef, tx, model.loss_weights, 0.0)
    shape = (batch_size, *compiled.graph.input_shape)
    lowered = steps.train.lower(
        state,
        jax.ShapeDtypeStruct(shape, jnp.float32),
        jax.ShapeDtypeStruct((batch_size,), jnp.int32),
        jax.ShapeDtypeStruct((batch_size,), jnp.float32),
    )
    return step_memory(lowered.compile()), graphdef


STAGES = """\
name: remat_stages
input: [16, 16, 3]
vars: {num_classes: 10}
defaults:
  conv: {padding: same, bias: false}
blocks:
  unit:                               # as a ResNet stage's main path: two conv-bn-relu
    args: [filters]
    layers:
      - conv1: conv 3x3 $filters
      - bn1: bn
      - relu1: relu
      - conv2: conv 3x3 $filters
      - bn2: bn
      - relu2: relu
layers:
  - stem: conv 3x3 16
  - body: unit 16 repeat=4
  - pool: global_avgpool
  - fc: dense $num_classes
"""


def test_remat_leaves_fewer_temporaries_in_the_train_step():
    """(BENCHMARKS.md has resnet18_cifar and googlenet: 276 -> 102 MB of temporaries for
    resnet18_cifar at batch 32; this smaller network compiles in a fraction of the time.)"""
    compiled = compile_with(STAGES, [])
    plain, plain_graph = train_step_memory(compiled, 32, None)
    blocks, blocks_graph = train_step_memory(compiled, 32, "blocks")
    assert plain is not None and blocks is not None
    assert step_compiler_options(plain_graph) is None
    if jax.default_backend() == "cpu":
        assert step_compiler_options(blocks_graph) == KEEP_BARRIERS
    # the same state in and out; each of the 4 units keeps its input instead of the activations
    # its backward pass reads (32 x 16 x 16 x 16 float32: 0.5 MB each), at least two fewer
    activation = 32 * 16 * 16 * 16 * 4
    assert blocks.argument_bytes == plain.argument_bytes
    assert plain.temp_bytes - blocks.temp_bytes > 4 * 2 * activation, (plain, blocks)
    assert blocks.temp_bytes < 0.6 * plain.temp_bytes
    assert blocks.peak_bytes < plain.peak_bytes


def test_bench_and_train_take_remat(tiny, tmp_path, capsys, monkeypatch):
    code = main(["bench", "lenet5", "--memory-only", "--batches", "8", "--remat", "rows", "--json"])
    out = capsys.readouterr().out
    assert code == 0 and json.loads(out)["remat"] == "rows"
    spec = tmp_path / "no_dropout.yaml"  # (dropout's random bits take long to compile on CPU)
    spec.write_text(BLOCKS.replace("      - drop: dropout 0.25\n", ""))
    monkeypatch.chdir(tmp_path)
    args = ["train", str(spec), "--set", "training.remat=blocks", "--max-steps", "1"]
    code = main([*args, "--no-progress", "--out", "run"])
    err = capsys.readouterr().err
    assert code == 0, err
    config = json.loads((tmp_path / "run" / "config.json").read_text())
    assert config["training"]["remat"] == "blocks"


def test_remat_true_means_blocks_and_a_wrong_word_is_told_in_yaml():
    from netspec.errors import SpecError
    from netspec.load import load_yaml
    from netspec.train.config import load_training_config

    def remat(word: str):
        return load_training_config(load_yaml(f"training:\n  remat: {word}\n", "s.yaml")).remat

    assert remat("true") == "blocks"
    assert remat("false") is False
    assert remat("rows") == "rows"
    with pytest.raises(SpecError) as caught:
        remat("row")
    message = str(caught.value)
    assert "s.yaml:2:10" in message
    assert "one of false, rows or blocks" in message
    assert "False" not in message
    assert "did you mean 'rows'" in message
