"""`netspec train / eval / predict`: configuration, optimizer, run directory and every fault.

Runs use a small network at the digits' native 8x8 size (batch norm and dropout included, so
statistics and RNG state must survive a resume) and real subprocesses where signals matter.
"""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import jax.numpy as jnp
import numpy as np
import optax
import pytest

from netspec.errors import SpecError
from netspec.load import load_yaml
from netspec.train.config import TrainingConfig, load_training_config
from netspec.train.datasets import read_dataset
from netspec.train.optim import build_optimizer, learning_rate_schedule

from .conftest import ROOT

TINY = """\
name: tiny
input: [8, 8, 1]
vars: {num_classes: 10}
layers:
  - conv: conv 3x3 16 same bias=false
  - bn: bn
  - relu: relu
  - pool: maxpool 2x2
  - flat: flatten
  - drop: dropout 0.2
  - fc: dense $num_classes
training:
  optimizer: {name: sgd, momentum: 0.9}
  learning_rate: 0.05
  batch_size: 64
  epochs: 4
  workers: 0
"""
TIMING = ("seconds", "images_per_sec", "timing")


def netspec(*args: str, timeout: float = 300, **kwargs) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "netspec", *args],
        cwd=ROOT,
        text=True,
        capture_output=True,
        timeout=timeout,
        **kwargs,
    )


def start_training(spec: Path, run: Path, *extra: str) -> subprocess.Popen[str]:
    """`netspec train SPEC --out RUN` in the background, stderr captured."""
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "netspec",
            "train",
            str(spec),
            "--out",
            str(run),
            "--no-progress",
            *extra,
        ],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )


def wait_for_epochs(run: Path, epochs: int, process: subprocess.Popen[str]) -> None:
    """Wait until metrics.jsonl holds `epochs` records (or the process has ended)."""
    metrics = run / "metrics.jsonl"
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline and process.poll() is None:
        if metrics.exists() and metrics.read_text().count("\n") >= epochs:
            return
        time.sleep(0.01)


def step_folders(run: Path) -> list[int]:
    """The steps of the run's checkpoints (`checkpoints/<step>`)."""
    return sorted(int(p.name) for p in (run / "checkpoints").iterdir() if p.name.isdigit())


def records(run: Path) -> list[dict]:
    lines = (run / "metrics.jsonl").read_text().splitlines()
    return [{k: v for k, v in json.loads(line).items() if k not in TIMING} for line in lines]


@pytest.fixture(scope="module")
def tiny_spec(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("spec") / "tiny.yaml"
    path.write_text(TINY)
    return path


@pytest.fixture(scope="module")
def finished_run(tiny_spec, tmp_path_factory) -> Path:
    """One uninterrupted 4-epoch run: the reference the fault tests compare against."""
    run = tmp_path_factory.mktemp("runs") / "reference"
    result = netspec("train", str(tiny_spec), "--out", str(run), "--no-progress")
    assert result.returncode == 0, result.stderr
    return run


# ---- configuration -----------------------------------------------------------------------


def spec_data(text: str):
    return load_yaml(text, "spec.yaml")


def test_training_section_errors_point_at_the_line():
    text = TINY.replace("  learning_rate: 0.05", "  learning_rat: 0.05")
    with pytest.raises(SpecError) as error:
        load_training_config(spec_data(text))
    assert error.value.location.line == text.splitlines().index("  learning_rat: 0.05") + 1
    assert "did you mean 'learning_rate'" in str(error.value)


def test_optimizer_options_are_checked_against_optax():
    text = TINY.replace("momentum: 0.9", "momentun: 0.9")
    with pytest.raises(SpecError) as error:
        load_training_config(spec_data(text))
    assert "optax.sgd has no option 'momentun'" in str(error.value)
    assert "did you mean 'momentum'" in str(error.value)


def test_overrides_and_a_separate_training_file(tmp_path):
    extra = tmp_path / "train.yaml"
    extra.write_text("batch_size: 16\nschedule: {name: cosine, warmup_epochs: 1}\n")
    config = load_training_config(
        spec_data(TINY), str(extra), {"optimizer.nesterov": True, "epochs": 7}
    )
    assert config.batch_size == 16 and config.epochs == 7
    assert config.schedule.name == "cosine" and config.schedule.warmup_epochs == 1
    assert config.optimizer.options == {"momentum": 0.9, "nesterov": True}
    assert config.learning_rate == 0.05


def test_schedules_follow_their_formulas():
    def schedule(**plan):
        config = TrainingConfig(learning_rate=0.1, epochs=10, schedule=plan)
        return learning_rate_schedule(config, steps_per_epoch=5)

    step = schedule(name="step", step_epochs=3, factor=0.1)
    assert [float(step(s)) for s in (0, 14, 15, 30)] == pytest.approx([0.1, 0.1, 0.01, 0.001])
    piecewise = schedule(name="piecewise", boundaries=[2, 6], factors=[0.5, 0.1])
    assert [float(piecewise(s)) for s in (9, 10, 29, 30)] == pytest.approx([0.1, 0.05, 0.05, 0.005])
    cosine = schedule(name="cosine", warmup_epochs=2)
    assert float(cosine(5)) == pytest.approx(0.05)  # halfway through the 10-step warmup
    for s in (10, 25, 40, 50):
        expected = 0.1 * 0.5 * (1 + math.cos(math.pi * (s - 10) / 40))
        assert float(cosine(s)) == pytest.approx(expected, abs=1e-6)


@pytest.mark.parametrize("style", ["l2", "decoupled"])
def test_weight_decay_styles(style):
    """One SGD step from w with gradient g: L2 adds wd*w to g; decoupled subtracts
    lr*wd*w after the step. Biases are left alone (weight_decay_on: kernels)."""
    config = TrainingConfig(
        learning_rate=0.1, weight_decay=0.01, weight_decay_style=style, optimizer={"name": "sgd"}
    )
    tx, _ = build_optimizer(config, steps_per_epoch=1)
    params = {"kernel": jnp.array([1.0, -2.0]), "bias": jnp.array([3.0])}
    grads = {"kernel": jnp.array([0.5, 0.5]), "bias": jnp.array([1.0])}
    updates, _ = tx.update(grads, tx.init(params), params)
    new = optax.apply_updates(params, updates)
    w, g = np.array([1.0, -2.0]), np.array([0.5, 0.5])
    expected = w - 0.1 * (g + 0.01 * w)  # the same for plain SGD either way
    np.testing.assert_allclose(np.asarray(new["kernel"]), expected, rtol=1e-6)
    np.testing.assert_allclose(np.asarray(new["bias"]), [3.0 - 0.1 * 1.0], rtol=1e-6)


def test_decoupled_decay_differs_from_l2_under_adam():
    params = {"kernel": jnp.array([1.0])}
    grads = {"kernel": jnp.array([0.0])}
    news = {}
    for style in ("l2", "decoupled"):
        config = TrainingConfig(
            learning_rate=0.1,
            weight_decay=0.5,
            weight_decay_style=style,
            optimizer={"name": "adam"},
        )
        tx, _ = build_optimizer(config, steps_per_epoch=1)
        updates, _ = tx.update(grads, tx.init(params), params)
        news[style] = float(optax.apply_updates(params, updates)["kernel"][0])
    # L2 under Adam: the decay gradient is normalised, a full lr step; decoupled: lr*wd*w.
    assert news["l2"] == pytest.approx(1.0 - 0.1, abs=1e-3)
    assert news["decoupled"] == pytest.approx(1.0 - 0.1 * 0.5)


def test_decoupled_decay_follows_the_learning_rate_schedule():
    """Under Adam with a step schedule (lr 0.1 for an epoch of 2 steps, then 0.01), each step
    subtracts lr(t) * (Adam's normalised direction + wd * w), written out from Adam's formula."""
    config = TrainingConfig(
        learning_rate=0.1,
        weight_decay=0.2,
        weight_decay_style="decoupled",
        weight_decay_on="all",
        optimizer={"name": "adam"},
        schedule={"name": "step", "step_epochs": 1, "factor": 0.1},
        epochs=2,
    )
    tx, _ = build_optimizer(config, steps_per_epoch=2)
    gradients = [np.array([0.5, -1.0]), np.array([0.25, 2.0]), np.array([-1.0, 0.5])]
    params = {"w": jnp.array([1.0, -2.0])}
    state = tx.init(params)
    w, m, v = np.array([1.0, -2.0]), np.zeros(2), np.zeros(2)
    for t, g in enumerate(gradients, start=1):
        updates, state = tx.update({"w": jnp.asarray(g)}, state, params)
        params = optax.apply_updates(params, updates)
        m, v = 0.9 * m + 0.1 * g, 0.999 * v + 0.001 * g**2
        direction = (m / (1 - 0.9**t)) / (np.sqrt(v / (1 - 0.999**t)) + 1e-8)
        lr = 0.1 if t <= 2 else 0.01
        w = w - lr * (direction + 0.2 * w)
        np.testing.assert_allclose(np.asarray(params["w"]), w, rtol=1e-5)


# ---- a whole run --------------------------------------------------------------------------


def test_run_directory_holds_everything(finished_run):
    names = {p.name for p in finished_run.iterdir()}
    assert {
        "spec.yaml",
        "config.json",
        "classes.json",
        "metrics.jsonl",
        "curves.png",
        "tensorboard",
        "checkpoints",
        "summary.json",
        "samples",
    } <= names
    summary = json.loads((finished_run / "summary.json").read_text())
    assert summary["params"] == 9 * 16 + 2 * 16 + 4 * 4 * 16 * 10 + 10  # conv, bn, fc
    lines = [json.loads(x) for x in (finished_run / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in lines] == [1, 2, 3, 4]
    for record in lines:
        assert {
            "train_loss",
            "train_acc",
            "val_loss",
            "val_acc",
            "val_top5",
            "lr",
            "seconds",
            "images_per_sec",
        } <= set(record)
    assert lines[-1]["val_acc"] > 0.9  # digits are easy
    assert lines[-1]["train_loss"] < lines[0]["train_loss"]
    assert json.loads((finished_run / "classes.json").read_text()) == [str(i) for i in range(10)]
    assert (finished_run / "curves.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert list((finished_run / "tensorboard").glob("events.out.tfevents.*"))
    # one orbax manager keeps the two newest checkpoints and the best epoch's end
    steps = len(read_dataset("digits", seed=0, val_fraction=0.1).train) // 64
    best = max(lines, key=lambda r: r["val_acc"])["epoch"]  # the first of equals
    assert step_folders(finished_run) == sorted({3 * steps, 4 * steps, best * steps})


def test_eval_reproduces_the_best_validation_metrics(finished_run):
    result = netspec("eval", str(finished_run), "--json")
    assert result.returncode == 0, result.stderr
    evaluated = json.loads(result.stdout)
    best = max(records(finished_run), key=lambda r: r["val_acc"])
    assert evaluated["top1"] == pytest.approx(best["val_acc"], abs=1e-9)
    assert evaluated["loss"] == pytest.approx(best["val_loss"], rel=1e-5)
    assert Path(evaluated["confusion_matrix"]).read_bytes()[:4] == b"\x89PNG"


def test_predict_names_classes_with_probabilities(finished_run, tmp_path):
    from PIL import Image
    from sklearn.datasets import load_digits

    digits = load_digits()
    paths = []
    for index in (0, 1, 2):
        path = tmp_path / f"digit{index}.png"
        Image.fromarray((digits.images[index] * 255 / 16).astype(np.uint8)).save(path)
        paths.append(str(path))
    result = netspec("predict", str(finished_run), *paths, "--top-k", "3", "--json")
    assert result.returncode == 0, result.stderr
    predictions = json.loads(result.stdout)
    assert [len(p["top"]) for p in predictions] == [3, 3, 3]
    for prediction, label in zip(predictions, digits.target[:3], strict=True):
        probabilities = [t["probability"] for t in prediction["top"]]
        assert probabilities == sorted(probabilities, reverse=True)
        assert 0 < sum(probabilities) <= 1 + 1e-6
        assert prediction["top"][0]["class"] == str(label)


def test_refuses_to_overwrite_a_run(finished_run, tiny_spec):
    before = (finished_run / "metrics.jsonl").read_bytes()
    result = netspec("train", str(tiny_spec), "--out", str(finished_run))
    assert result.returncode == 2
    assert "already holds a training run" in result.stderr
    assert (finished_run / "metrics.jsonl").read_bytes() == before


def test_a_bad_override_is_reported_as_such_and_touches_nothing(finished_run, tiny_spec, tmp_path):
    fresh = tmp_path / "never"
    result = netspec("train", str(tiny_spec), "--out", str(fresh), "--set", "training.batch_size=0")
    assert result.returncode == 2
    assert result.stderr.startswith("error: --set training: batch_size: must be at least 1")
    assert not fresh.exists()
    before = (finished_run / "metrics.jsonl").read_bytes()
    result = netspec(
        "train",
        str(tiny_spec),
        "--out",
        str(finished_run),
        "--overwrite",
        "--set",
        "training.optimizr=adam",
    )
    assert result.returncode == 2
    assert "did you mean 'optimizer'" in result.stderr
    assert (finished_run / "metrics.jsonl").read_bytes() == before


# ---- faults -------------------------------------------------------------------------------


def test_sigkill_at_any_moment_then_resume_gives_identical_metrics(
    finished_run, tiny_spec, tmp_path
):
    run = tmp_path / "killed"
    process = start_training(tiny_spec, run)
    wait_for_epochs(run, 2, process)
    assert process.poll() is None, "the run finished before it could be killed"
    process.send_signal(signal.SIGKILL)  # mid epoch 3, wherever it is
    process.wait()
    result = netspec("train", str(tiny_spec), "--out", str(run), "--resume", "--no-progress")
    assert result.returncode == 0, result.stderr
    assert "resuming at epoch" in result.stderr
    assert records(run) == records(finished_run)


def test_sigterm_saves_a_checkpoint_mid_epoch_and_resume_is_exact(
    finished_run, tiny_spec, tmp_path
):
    run = tmp_path / "stopped"
    process = start_training(tiny_spec, run)
    wait_for_epochs(run, 1, process)
    time.sleep(0.3)  # into epoch 2
    process.send_signal(signal.SIGTERM)
    _, stderr = process.communicate(timeout=120)
    assert process.returncode == 130, stderr
    assert "stopped by SIGTERM" in stderr and "checkpoint saved" in stderr
    result = netspec("train", str(tiny_spec), "--out", str(run), "--resume", "--no-progress")
    assert result.returncode == 0, result.stderr
    assert records(run) == records(finished_run)


def test_a_stop_after_a_given_step_resumes_exactly(finished_run, tiny_spec, tmp_path):
    """The same checkpoint-mid-epoch path as a signal, at a known step (25 of 25 per epoch...)."""
    run = tmp_path / "steps"
    first = netspec(
        "train", str(tiny_spec), "--out", str(run), "--max-steps", "37", "--no-progress"
    )
    assert first.returncode == 0, first.stderr
    assert len(records(run)) == 1
    second = netspec("train", str(tiny_spec), "--out", str(run), "--resume", "--no-progress")
    assert second.returncode == 0, second.stderr
    assert "step 12 of 25" in second.stderr
    assert records(run) == records(finished_run)


@pytest.mark.parametrize("part", ["train", "."], ids=["arrays", "every-file"])
def test_a_damaged_checkpoint_falls_back_to_the_previous_one(
    finished_run, tiny_spec, tmp_path, part
):
    import shutil

    run = tmp_path / "damaged"
    shutil.copytree(finished_run, run)
    newest = run / "checkpoints" / str(max(step_folders(run)))
    for path in (newest / part).rglob("*"):
        if path.is_file() and path.stat().st_size > 0:
            path.write_bytes(b"\0" * 7)
    result = netspec(
        "train", str(tiny_spec), "--out", str(run), "--resume", "--epochs", "5", "--no-progress"
    )
    assert result.returncode == 0, result.stderr
    assert f"checkpoint {newest} is damaged" in result.stderr
    assert "using the previous one" in result.stderr
    assert [r["epoch"] for r in records(run)] == [1, 2, 3, 4, 5]


def test_a_run_stopped_before_its_first_checkpoint_starts_again(finished_run, tiny_spec, tmp_path):
    """A kill while the first (background) save is still being written leaves metrics but no
    complete checkpoint: --resume starts the run again and ends where the reference did; a
    run whose checkpoints are all damaged is still refused."""
    import shutil

    run = tmp_path / "early"
    shutil.copytree(finished_run, run)
    for step in step_folders(run):
        shutil.rmtree(run / "checkpoints" / str(step))
    metrics = run / "metrics.jsonl"
    metrics.write_text("".join(metrics.read_text().splitlines(keepends=True)[:2]))
    result = netspec("train", str(tiny_spec), "--out", str(run), "--resume", "--no-progress")
    assert result.returncode == 0, result.stderr
    assert "starting it again" in result.stderr
    assert "resuming at epoch 1, step 0 of 25" in result.stderr
    assert records(run) == records(finished_run)

    for path in (run / "checkpoints").rglob("*"):
        if path.is_file() and path.stat().st_size > 0:
            path.write_bytes(b"\0" * 7)
    metrics.write_text("".join(metrics.read_text().splitlines(keepends=True)[:2]))
    before = metrics.read_bytes()
    refused = netspec("train", str(tiny_spec), "--out", str(run), "--resume", "--no-progress")
    assert refused.returncode == 2
    assert "is damaged" in refused.stderr
    assert "no usable checkpoint" in refused.stderr
    assert (run / "metrics.jsonl").read_bytes() == before


def legacy_layout(run: Path) -> None:
    """Rewrite `run`'s checkpoints as netspec wrote them before one orbax manager kept them,
    with orbax directly: `checkpoints/latest/<step>` (item `state`: the whole training state,
    and `record`) for the two newest, `checkpoints/best/<epoch>` (item `state`: (params,
    rest)) for the best epoch."""
    import shutil

    import orbax.checkpoint as ocp

    root = (run / "checkpoints").absolute()
    steps = step_folders(run)
    reader = ocp.CheckpointManager(root, options=ocp.CheckpointManagerOptions(read_only=True))
    items = ocp.args.Composite(
        model=ocp.args.StandardRestore(),
        train=ocp.args.StandardRestore(),
        record=ocp.args.JsonRestore(),
    )
    saved = {step: reader.restore(step, args=items) for step in steps}
    reader.close()
    for step in steps:
        shutil.rmtree(root / str(step))
    options = ocp.CheckpointManagerOptions(create=True, enable_async_checkpointing=False)
    latest = ocp.CheckpointManager(root / "latest", options=options)
    for step in steps[-2:]:
        state = {**saved[step]["model"], **saved[step]["train"]}
        latest.save(
            step,
            args=ocp.args.Composite(
                state=ocp.args.StandardSave(state), record=ocp.args.JsonSave(saved[step]["record"])
            ),
        )
    latest.close()
    best = max(records(run), key=lambda r: r["val_acc"])
    per_epoch = steps[-1] // records(run)[-1]["epoch"]  # a finished run: its last epoch's end
    model = saved[best["epoch"] * per_epoch]["model"]
    best_manager = ocp.CheckpointManager(root / "best", options=options)
    best_manager.save(
        best["epoch"],
        args=ocp.args.Composite(
            state=ocp.args.StandardSave((model["params"], model["rest"])),
            record=ocp.args.JsonSave({"epoch": best["epoch"], "val_acc": best["val_acc"]}),
        ),
    )
    best_manager.close()


def test_a_run_in_the_earlier_checkpoint_layout_is_read_and_resumed(
    finished_run, tiny_spec, tmp_path
):
    """checkpoints/latest/ and checkpoints/best/ (netspec before one orbax manager): eval
    reads best/, --resume continues from latest/ and goes on writing that layout."""
    import shutil

    run = tmp_path / "legacy"
    shutil.copytree(finished_run, run)
    legacy_layout(run)
    evaluated = netspec("eval", str(run), "--json")
    assert evaluated.returncode == 0, evaluated.stderr
    best = max(records(finished_run), key=lambda r: r["val_acc"])
    assert json.loads(evaluated.stdout)["top1"] == pytest.approx(best["val_acc"], abs=1e-9)
    resumed = netspec(
        "train", str(tiny_spec), "--out", str(run), "--resume", "--epochs", "5", "--no-progress"
    )
    assert resumed.returncode == 0, resumed.stderr
    assert "resuming at epoch 5, step 0" in resumed.stderr
    assert [r["epoch"] for r in records(run)] == [1, 2, 3, 4, 5]
    assert not step_folders(run)  # nothing in the new layout beside the old
    newest = max(int(p.name) for p in (run / "checkpoints" / "latest").iterdir())
    assert newest == 5 * (step_folders(finished_run)[-1] // 4)
    evaluated = netspec("eval", str(run), "--json")
    best = max(records(run), key=lambda r: r["val_acc"])
    assert json.loads(evaluated.stdout)["top1"] == pytest.approx(best["val_acc"], abs=1e-9)


def test_a_non_finite_loss_stops_with_the_step_and_keeps_the_last_good_checkpoint(
    finished_run, tiny_spec, tmp_path
):
    import shutil

    run = tmp_path / "nan"
    shutil.copytree(finished_run, run)
    before = step_folders(run)
    result = netspec(
        "train",
        str(tiny_spec),
        "--out",
        str(run),
        "--resume",
        "--epochs",
        "6",
        "--set",
        "training.learning_rate=1e38",
        "--no-progress",
    )
    assert result.returncode == 3, result.stderr
    assert "became NaN or infinite at step" in result.stderr
    assert step_folders(run) == before
    resumed = netspec(
        "train", str(tiny_spec), "--out", str(run), "--resume", "--epochs", "5", "--no-progress"
    )
    assert resumed.returncode == 0, resumed.stderr


def image_folder(root: Path, bad: bool) -> Path:
    from PIL import Image

    rng = np.random.default_rng(0)
    for name in ("cat", "dog", "fox"):
        (root / name).mkdir(parents=True)
        for index in range(12):
            pixels = rng.integers(0, 255, (10, 12, 3), dtype=np.uint8)
            Image.fromarray(pixels).save(root / name / f"{index}.png")
    if bad:
        good = (root / "dog" / "0.png").read_bytes()
        (root / "dog" / "broken.png").write_bytes(good[: len(good) // 2])
    return root


FOLDER_SPEC = """\
name: small
input: [8, 8, 3]
vars: {num_classes: 5}
layers:
  - conv: conv 3x3 4 same relu
  - gap: gap
  - fc: dense $num_classes
training: {batch_size: 8, epochs: 1, workers: 0}
"""


def test_a_truncated_image_is_named_or_skipped(tmp_path):
    data = image_folder(tmp_path / "photos", bad=True)
    spec = tmp_path / "small.yaml"
    spec.write_text(FOLDER_SPEC)
    failed = netspec("train", str(spec), "--data", str(data), "--out", str(tmp_path / "a"))
    assert failed.returncode == 2
    assert "broken.png" in failed.stderr and "Traceback" not in failed.stderr
    skipped = netspec(
        "train",
        str(spec),
        "--data",
        str(data),
        "--out",
        str(tmp_path / "b"),
        "--skip-bad-images",
        "--no-progress",
    )
    assert skipped.returncode == 0, skipped.stderr
    assert "skipped 1 unreadable image (--skip-bad-images):" in skipped.stderr
    assert "setting num_classes=3" in skipped.stderr


def test_class_count_mismatch_without_a_variable_is_an_error(tmp_path):
    data = image_folder(tmp_path / "photos", bad=False)
    spec = tmp_path / "fixed.yaml"
    spec.write_text(
        FOLDER_SPEC.replace("vars: {num_classes: 5}\n", "").replace("$num_classes", "5")
    )
    result = netspec("train", str(spec), "--data", str(data), "--out", str(tmp_path / "c"))
    assert result.returncode == 2
    assert "the data has 3 classes but the network outputs 5" in result.stderr


# ---- scale-out ----------------------------------------------------------------------------


def test_data_parallel_on_two_devices_matches_one(finished_run, tiny_spec, tmp_path):
    run = tmp_path / "two_devices"
    env = {**os.environ, "XLA_FLAGS": "--xla_force_host_platform_device_count=2"}
    result = netspec(
        "train", str(tiny_spec), "--out", str(run), "--epochs", "2", "--no-progress", env=env
    )
    assert result.returncode == 0, result.stderr
    assert "2 cpu devices, data parallel" in result.stderr
    for ours, reference in zip(records(run), records(finished_run)[:2], strict=True):
        for key in ("train_loss", "val_loss", "train_acc", "val_acc"):
            assert ours[key] == pytest.approx(reference[key], rel=2e-3, abs=2e-3), key


def test_two_processes_on_localhost_match_one(finished_run, tiny_spec, tmp_path):
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    run = tmp_path / "two_processes"
    processes = [
        start_training(
            tiny_spec,
            run,
            "--epochs",
            "2",
            "--coordinator",
            f"127.0.0.1:{port}",
            "--num-processes",
            "2",
            "--process-id",
            str(index),
        )
        for index in range(2)
    ]
    outputs = [p.communicate(timeout=300)[1] for p in processes]
    for process, stderr in zip(processes, outputs, strict=True):
        assert process.returncode == 0, stderr
    assert "in 2 processes" in outputs[0]
    for ours, reference in zip(records(run), records(finished_run)[:2], strict=True):
        for key in ("train_loss", "val_loss", "train_acc", "val_acc"):
            assert ours[key] == pytest.approx(reference[key], rel=2e-3, abs=2e-3), key


def test_importing_netspec_does_not_import_jax():
    code = "import netspec, sys; sys.exit('jax' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], cwd=ROOT).returncode == 0
