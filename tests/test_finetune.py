"""Fine-tuning: `--init-from` another run, `training.freeze`, `backbone_lr_scale`, `--dry-run`.

A small network with batch norm trains one epoch on the built-in digits (run A); run B starts
from A's weights with some rows frozen. Frozen parameters and the frozen batch norm's running
statistics must come out of B's training exactly as A left them; the rest must move.
"""

from __future__ import annotations

from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import netspec
from netspec.train.config import TrainingConfig
from netspec.train.finetune import ParamGroups, param_groups
from netspec.train.optim import build_optimizer
from netspec.train.use import load_trained

from .test_training import netspec as netspec_cli

pytestmark = pytest.mark.xdist_group("finetune")

SPEC = """\
name: small
input: [8, 8, 1]
vars: {num_classes: 10}
layers:
  - conv: conv 3x3 8 same bias=false
  - bn: bn
  - relu: relu
  - conv2: conv 3x3 8 same
  - bn2: bn
  - relu2: relu
  - pool: global_avgpool
  - fc: dense $num_classes
training:
  optimizer: {name: sgd, momentum: 0.9}
  learning_rate: 0.05
  batch_size: 64
  epochs: 1
  workers: 0
"""


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> tuple[Path, Path, Path]:
    root = tmp_path_factory.mktemp("finetune")
    spec = root / "small.yaml"
    spec.write_text(SPEC)
    first, second = root / "a", root / "b"
    done = netspec_cli("train", str(spec), "--out", str(first), "--no-progress")
    assert done.returncode == 0, done.stderr
    done = netspec_cli(
        "train",
        str(spec),
        "--out",
        str(second),
        "--no-progress",
        "--init-from",
        str(first),
        "--set",
        "training.freeze={until: bn}",
    )
    assert done.returncode == 0, done.stderr
    assert "initialised from" in done.stderr and "by name (netspec's node names)" in done.stderr
    assert "frozen (2 rows; 1 batch norm in inference mode)" in done.stderr
    return spec, first, second


def variables(run: Path) -> dict[str, np.ndarray]:
    trained = load_trained(run)
    flat = {}
    for tree in (trained.params, trained.rest):
        for path, leaf in jax.tree_util.tree_leaves_with_path(tree):
            flat[jax.tree_util.keystr(path)] = np.asarray(leaf)
    return flat


def test_frozen_rows_keep_the_source_values(runs):
    _, first, second = runs
    before, after = variables(first), variables(second)
    assert before.keys() == after.keys()
    frozen = [k for k in before if k.startswith(("['conv']", "['bn']"))]
    moving = [k for k in before if k.startswith(("['conv2']", "['fc']"))]
    assert len(frozen) == 5  # conv kernel; bn scale, bias, mean, var
    for key in frozen:
        np.testing.assert_array_equal(after[key], before[key], err_msg=key)
    for key in moving:
        assert not np.array_equal(after[key], before[key]), key


def test_dry_run_prints_the_pairing_and_writes_nothing(runs, tmp_path):
    spec, first, _ = runs
    out = tmp_path / "never"
    done = netspec_cli(
        "train", str(spec), "--out", str(out), "--init-from", str(first), "--dry-run"
    )
    assert done.returncode == 0, done.stderr
    for layer in ("conv", "bn", "conv2", "bn2", "fc"):
        assert f"│ {layer} " in done.stdout
    assert "loaded" in done.stdout and not out.exists()


def test_bad_sources_and_rows_fail_before_the_run(runs, tmp_path):
    spec, _, _ = runs
    out = tmp_path / "never"
    missing = netspec_cli("train", str(spec), "--out", str(out), "--init-from", "nope.pth")
    assert missing.returncode == 2 and "nope.pth: no such file" in missing.stderr
    assert "Traceback" not in missing.stderr
    wrong_row = netspec_cli(
        "train", str(spec), "--out", str(out), "--set", "training.freeze=[cnov]"
    )
    assert wrong_row.returncode == 2 and "training.freeze" in wrong_row.stderr
    assert "did you mean 'conv'?" in wrong_row.stderr and not out.exists()


def test_groups_scale_and_zero_updates():
    """One SGD step: the head moves by -lr * g, the backbone by -lr * scale * g, frozen rows
    not at all (the formula, per parameter)."""
    compiled = netspec.compile(SPEC)
    config = TrainingConfig.model_validate(
        {
            "optimizer": {"name": "sgd"},
            "learning_rate": 0.5,
            "freeze": ["conv"],
            "backbone_lr_scale": 0.1,
        }
    )
    groups = param_groups(compiled, config)
    assert groups == ParamGroups(("conv",), ("bn", "relu", "conv2", "bn2", "relu2", "pool"), 0.1)
    params = {
        "conv": {"kernel": jnp.ones(3)},
        "bn2": {"scale": jnp.ones(2)},
        "fc": {"bias": jnp.ones(4)},
    }
    tx, _ = build_optimizer(config, steps_per_epoch=1, groups=groups.labels(compiled))
    grads = jax.tree.map(lambda p: jnp.full_like(p, 2.0), params)
    updates, _ = tx.update(grads, tx.init(params), params)
    np.testing.assert_allclose(updates["conv"]["kernel"], 0.0)
    np.testing.assert_allclose(updates["bn2"]["scale"], -0.5 * 0.1 * 2.0, rtol=1e-6)
    np.testing.assert_allclose(updates["fc"]["bias"], -0.5 * 2.0, rtol=1e-6)
    assert isinstance(tx, optax.GradientTransformation)


def test_backbone_freezes_all_but_the_heads():
    compiled = netspec.compile("googlenet", num_classes=5)
    config = TrainingConfig.model_validate({"freeze": "backbone"})
    groups = param_groups(compiled, config)
    rows = [row.name for row in compiled.graph.rows]
    assert set(rows) - set(groups.frozen) == {"linear", "aux1", "aux2"}


AUX_SPEC = """\
name: aux_small
input: 8x8x3
layers:
  - conv: conv 3x3 4 padding=same
  - side: [gap, dense 2]
    from: conv
    aux: 0.3
  - conv2: conv 3x3 5 padding=same
  - gap: gap
  - fc: dense 2
"""


def test_compile_prints_the_split_and_until_leaves_auxiliary_heads(tmp_path):
    """Counts by hand: conv 3*3*3*4+4 = 112, side 4*2+2 = 10, conv2 3*3*4*5+5 = 185, fc 5*2+2 =
    12. `{until: conv2}` freezes conv and conv2 (297), not the auxiliary head `side`."""
    spec = tmp_path / "aux.yaml"
    spec.write_text(AUX_SPEC)
    done = netspec_cli(
        "compile", str(spec), "--no-check", "--set", "training.freeze={until: conv2}"
    )
    assert done.returncode == 0, done.stderr
    assert "fine-tuning: 22 parameters train at the full learning rate, 297 frozen (2 rows)" in (
        done.stdout
    )
    done = netspec_cli("compile", str(spec), "--no-check", "--set", "training.freeze=[side]")
    assert "fine-tuning: 309 parameters train at the full learning rate, 10 frozen (1 row)" in (
        done.stdout
    )
    done = netspec_cli("compile", str(spec), "--no-check")
    assert done.returncode == 0 and "fine-tuning" not in done.stdout
