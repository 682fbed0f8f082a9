"""`training.batch_size: auto`: the largest power of two whose train step fits the device's
memory, from XLA's memory analysis of the compiled (not run) step.

A CPU reports no memory limit: the tests give it one (`netspec.memory.device_memory`, as
tests/test_memory.py does). The references are independent of netspec.train.autobatch: the
step's peak is computed here from a step made directly (optax's optimizer, `make_steps`) and
compiled at the batch sizes in question, and the search is checked against doubling from 1.
"""

from __future__ import annotations

import functools
import json
import random
from pathlib import Path

import jax
import jax.numpy as jnp
import jsonschema
import optax
import pytest

from netspec import memory
from netspec.cli import main
from netspec.compiled import compile_with
from netspec.load import load_yaml
from netspec.memory import FITS_SHARE, StepMemory, step_memory
from netspec.schema import json_schema
from netspec.train import autobatch
from netspec.train.config import TrainingConfig
from netspec.train.loop import PerImage
from netspec.train.steps import initial_state, make_steps

DENSE = """\
name: dense_heavy
input: [8, 8, 1]
vars: {num_classes: 10}
layers:
  - flat: flatten
  - fc1: dense 1024 activation=relu
  - fc2: dense 1024 activation=relu
  - fc3: dense $num_classes
"""
"""1.1 M parameters and few activations per example: the optimizer's state is a large part of
the step's memory (Adam keeps two moments, SGD with momentum one)."""

TINY = """\
name: tiny_auto
input: [8, 8, 1]
vars: {num_classes: 10}
layers:
  - conv: conv 3x3 16 same bias=false
  - bn: bn
  - relu: relu
  - pool: maxpool 2x2
  - flat: flatten
  - fc: dense $num_classes
training:
  optimizer: {name: sgd, momentum: 0.9}
  learning_rate: 0.05
  batch_size: auto
  epochs: 2
  workers: 0
"""

OPTIMIZERS = {
    "sgd": lambda: optax.sgd(0.05, momentum=0.9),
    "adam": lambda: optax.adam(0.05),
}
CONFIGS = {"sgd": {"name": "sgd", "momentum": 0.9}, "adam": {"name": "adam"}}
"""The same optimizers as `training.optimizer` sections."""


@functools.cache
def peak(spec: str, optimizer: str, batch: int) -> int:
    """The train step's peak bytes at `batch` (XLA's analysis), made here from optax's
    optimizer and netspec's step, compiled and not run."""
    compiled = compile_with(spec, [])
    model = compiled.build(seed=0)
    tx = OPTIMIZERS[optimizer]()
    graphdef, state = initial_state(model, tx)
    steps = make_steps(graphdef, tx, model.loss_weights, 0.0)
    shape = (batch, *compiled.graph.input_shape)
    lowered = steps.train.lower(
        state,
        jax.ShapeDtypeStruct(shape, jnp.float32),
        jax.ShapeDtypeStruct((batch,), jnp.int32),
        jax.ShapeDtypeStruct((batch,), jnp.float32),
    )
    found = step_memory(lowered.compile())
    assert found is not None
    return found.peak_bytes


def device_with(monkeypatch: pytest.MonkeyPatch, usable: float) -> int:
    """Give the device the memory of which FITS_SHARE is `usable` bytes."""
    limit = int(usable / FITS_SHARE)
    monkeypatch.setattr(memory, "device_memory", lambda device=None: limit)
    return limit


def test_the_search_ends_where_doubling_from_one_does():
    generator = random.Random(0)
    most = 0
    for _ in range(3000):
        base, per = generator.uniform(1e3, 1e9), generator.uniform(1, 1e7)
        power, jump = generator.choice([0.8, 1.0, 1.2, 1.5]), generator.uniform(0, 1e7)

        def size(batch: int, base=base, per=per, power=power, jump=jump) -> int:
            return int(base + per * batch**power + (jump if batch > 1 else 0))

        usable = int(base + generator.uniform(0.5, 5000) * per)
        cap = 2 ** generator.randint(0, 12)
        compiled: list[int] = []

        def measure(batch: int, size=size, compiled=compiled) -> StepMemory:
            compiled.append(batch)
            return StepMemory(size(batch), 0, 0, 0, 0)

        found, _ = autobatch.largest_fitting(measure, usable, cap)
        expected, batch = 0, 1
        while batch <= cap and size(batch) <= usable:
            expected, batch = batch, batch * 2
        assert found == expected
        assert len(compiled) == len(set(compiled))
        most = max(most, len(compiled))
    assert most <= 8  # doubling from 1 to 4096 compiles up to 13 times


def test_adam_gets_a_smaller_batch_than_sgd_where_its_state_matters(monkeypatch):
    compiled = compile_with(DENSE, [])
    # a device on which SGD's step fits at 256 and not at 512
    usable = (peak(DENSE, "sgd", 256) + peak(DENSE, "sgd", 512)) / 2
    limit = device_with(monkeypatch, usable)
    chosen = {}
    for name in OPTIMIZERS:
        config = TrainingConfig.model_validate(
            {"optimizer": CONFIGS[name], "learning_rate": 0.05, "batch_size": "auto"}
        )
        result = autobatch.choose(compiled, config, PerImage(10), train_size=100_000, devices=1)
        batch = chosen[name] = result.batch
        assert result.memory_bytes == limit and result.memory_source == "device"
        assert peak(DENSE, name, batch) <= FITS_SHARE * limit < peak(DENSE, name, 2 * batch)
    assert chosen["sgd"] == 256
    assert chosen["adam"] < chosen["sgd"]


@pytest.fixture
def tiny(tmp_path: Path) -> Path:
    path = tmp_path / "tiny_auto.yaml"
    path.write_text(TINY)
    return path


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str]:
    capsys.readouterr()
    code = main(list(args))
    return code, capsys.readouterr().err


def test_no_batch_that_fits_is_one_clear_error(tiny, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    one = peak(str(tiny), "sgd", 1)  # tens of kB: a tiny network
    device_with(monkeypatch, one / 2)
    code, err = run(capsys, "train", str(tiny), "--max-steps", "1", "--no-progress")
    assert code == 2
    assert "Traceback" not in err
    assert (
        "error: training.batch_size: auto found no batch that fits: its train step needs "
        f"{one / 1e3:,.0f} kB at batch 1, and 90% of the device's memory is {one / 2e3:,.0f} kB"
    ) in err
    assert "--set training.dtype=bfloat16" in err and "--set training.remat=blocks" in err
    assert not (tmp_path / "runs").exists()  # nothing was written


def test_train_writes_the_chosen_batch_and_resume_keeps_it(tiny, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    spec = str(tiny)
    limit = device_with(monkeypatch, (peak(spec, "sgd", 32) + peak(spec, "sgd", 64)) / 2)
    args = ("--no-progress", "--out", "run")
    code, err = run(capsys, "train", spec, "--max-steps", "2", *args)
    assert code == 0, err
    config = json.loads((tmp_path / "run" / "config.json").read_text())
    batch = config["training"]["batch_size"]
    assert isinstance(batch, int)
    assert peak(spec, "sgd", batch) <= FITS_SHARE * limit < peak(spec, "sgd", 2 * batch)
    record = config["batch_size_auto"]
    assert record["batch"] == batch and record["limited_by"] == "memory"
    assert record["memory_bytes"] == limit and record["optimizer"] == "sgd"
    assert f"batch_size auto: {batch} (step peak " in err and ", float32, sgd)" in err
    # resuming measures nothing and keeps the batch: the run's own options, then the spec's auto
    monkeypatch.setattr(autobatch, "step_measure", pytest.fail)
    code, err = run(capsys, "train", "--resume", "run", "--epochs", "3", "--max-steps", "1")
    assert code == 0, err
    saved = json.loads((tmp_path / "run" / "config.json").read_text())
    assert saved["training"]["batch_size"] == batch and saved["batch_size_auto"] == record
    code, err = run(capsys, "train", spec, "--resume", "--epochs", "4", "--max-steps", "1", *args)
    assert code == 0, err
    assert f"batch_size auto: {batch} (the run's own, chosen when it started)" in err
    assert json.loads((tmp_path / "run" / "config.json").read_text()) == {
        **saved,
        "training": {**saved["training"], "epochs": 4},
    }


def test_the_schema_and_the_command_line_take_auto():
    training = json_schema()["properties"]["training"]["properties"]["batch_size"]
    assert {"const": "auto", "type": "string"} in training["anyOf"]
    validator = jsonschema.Draft202012Validator(json_schema())
    head = "name: n\ninput: [8, 8, 1]\nlayers:\n  - fc: dense 10\ntraining:\n  batch_size: "

    def errors(value: str) -> list:
        return list(validator.iter_errors(json.loads(json.dumps(load_yaml(head + value, "s")))))

    assert not errors("auto") and errors("big") and errors("0")
    assert TrainingConfig.model_validate({"batch_size": "auto"}).batch_size == "auto"


TWO_DEVICES = """
import json, sys
import jax, jax.numpy as jnp, numpy as np, optax
from jax.sharding import Mesh, NamedSharding, PartitionSpec
from netspec import memory
from netspec.compiled import compile_with
from netspec.memory import FITS_SHARE, step_memory
from netspec.train import autobatch
from netspec.train.config import TrainingConfig
from netspec.train.loop import PerImage
from netspec.train.steps import initial_state, make_steps

spec = sys.argv[1]
compiled = compile_with(spec, [])
mesh = Mesh(np.array(jax.devices()), ("data",))
copies = NamedSharding(mesh, PartitionSpec())
split = NamedSharding(mesh, PartitionSpec("data"))

def peak(per_device, sharded=True):
    # the reference: the step made here from optax and make_steps, compiled over both
    # devices as data parallel runs it (or on one), its per-device peak
    tx = optax.sgd(0.05, momentum=0.9)
    model = compiled.build(seed=0)
    graphdef, state = initial_state(model, tx)
    steps = make_steps(graphdef, tx, model.loss_weights, 0.0)
    batch = per_device * (2 if sharded else 1)
    where = dict(sharding=split) if sharded else {}
    kept = dict(sharding=copies) if sharded else {}
    state = jax.tree.map(lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype, **kept), state)
    args = [jax.ShapeDtypeStruct((batch, *compiled.graph.input_shape), jnp.float32, **where),
            jax.ShapeDtypeStruct((batch,), jnp.int32, **where),
            jax.ShapeDtypeStruct((batch,), jnp.float32, **where)]
    return step_memory(steps.train.lower(state, *args).compile()).peak_bytes

usable = (peak(64) + peak(128)) / 2
limit = int(usable / FITS_SHARE)
memory.device_memory = lambda device=None: limit
config = TrainingConfig.model_validate(
    {"optimizer": {"name": "sgd", "momentum": 0.9}, "learning_rate": 0.05, "batch_size": "auto"}
)
chosen = autobatch.choose(compiled, config, PerImage(10), train_size=100_000, devices=2)
print(json.dumps({
    "per_device": chosen.per_device, "batch": chosen.batch,
    "fits": peak(chosen.per_device) <= FITS_SHARE * limit < peak(2 * chosen.per_device),
    "one_device_would_take": max(b for b in (64, 128, 256, 512) if peak(b, False) <= usable),
}))
"""


def test_on_two_devices_the_all_reduce_counts(tmp_path):
    """Data parallel over two (host) devices: auto measures the step as it runs, sharded, so the
    gradient all-reduce's buffers count; one device's analysis would choose a larger batch."""
    import os
    import subprocess
    import sys

    spec = tmp_path / "dense.yaml"
    spec.write_text(DENSE)
    env = {**os.environ, "XLA_FLAGS": "--xla_force_host_platform_device_count=2"}
    result = subprocess.run(
        [sys.executable, "-c", TWO_DEVICES, str(spec)],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
        cwd=Path(__file__).resolve().parents[1],
    )
    assert result.returncode == 0, result.stderr
    found = json.loads(result.stdout.strip().splitlines()[-1])
    assert found == {
        "per_device": 64,
        "batch": 128,
        "fits": True,
        "one_device_would_take": found["one_device_would_take"],
    }
    assert found["one_device_would_take"] > 64
