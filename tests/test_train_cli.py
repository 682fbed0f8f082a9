"""`netspec train`'s command line around a run: numbered run folders, Ctrl-C, compile messages,
skipped images named, class-balanced samples, and `--resume` against an edited spec.

Runs are tiny (the digits at 8x8, or LeNet-5 for a step or two); where signals matter the run
is a real subprocess, and a progress bar is drawn on a pseudo-terminal.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from netspec.cli import main
from netspec.train.console import Announced
from netspec.train.samples import SAMPLES_MAX, sample_indices

from .conftest import ROOT, SPECS

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
  batch_size: 8
  epochs: 2
  workers: 0
"""
STEPS_PER_EPOCH = 1618 // 8  # the digits' 9:1 split leaves 1,618 training images

HEAVY = """\
name: heavy
input: [32, 32, 1]
vars: {num_classes: 10}
layers:
  - conv1: conv 3x3 64 same relu
  - conv2: conv 3x3 64 same relu
  - conv3: conv 3x3 64 same relu
  - gap: gap
  - fc: dense $num_classes
training: {batch_size: 64, epochs: 1, workers: 0}
"""
"""Steps of a second or so on one CPU thread (`ONE_THREAD`): a second Ctrl-C lands in the
middle of one."""
ONE_THREAD = {
    "JAX_PLATFORMS": "cpu",
    "XLA_FLAGS": "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1",
}

TIMING = ("seconds", "images_per_sec", "timing")


@pytest.fixture
def tiny(tmp_path: Path) -> Path:
    path = tmp_path / "tiny.yaml"
    path.write_text(TINY)
    return path


def train(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str]:
    """`netspec train ARGS` in this process: (exit status, what it wrote to stderr)."""
    capsys.readouterr()
    code = main(["train", *args])
    return code, capsys.readouterr().err


def records(run: Path) -> list[dict]:
    lines = (run / "metrics.jsonl").read_text().splitlines()
    return [{k: v for k, v in json.loads(line).items() if k not in TIMING} for line in lines]


def snapshot(folder: Path) -> dict[str, bytes]:
    """Every file under `folder` and its content."""
    return {str(p.relative_to(folder)): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


def command(*args: str) -> list[str]:
    return [sys.executable, "-m", "netspec", "train", *args]


def read_until(stream, marker: str, lines: list[str]) -> None:
    """Read `stream` line by line into `lines` until one starts with `marker`."""
    for line in stream:
        lines.append(line)
        if line.startswith(marker):
            return
    raise AssertionError(f"no line starting {marker!r}:\n{''.join(lines)}")


# ---- run folders --------------------------------------------------------------------------


def test_runs_without_out_get_numbered_folders(tiny, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    code, first = train(capsys, str(tiny), "--max-steps", "1", "--no-progress")
    assert code == 0, first
    assert "run directory: runs/tiny\n" in first
    before = snapshot(tmp_path / "runs" / "tiny")
    code, second = train(capsys, str(tiny), "--max-steps", "1", "--no-progress")
    assert code == 0, second
    assert "run directory: runs/tiny_2\n" in second
    assert (tmp_path / "runs" / "tiny_2" / "config.json").is_file()
    assert list((tmp_path / "runs" / "tiny_2" / "checkpoints").iterdir())
    assert snapshot(tmp_path / "runs" / "tiny") == before
    # --out keeps refusing an existing run, and --resume needs to know which run
    code, refused = train(capsys, str(tiny), "--out", "runs/tiny", "--no-progress")
    assert code == 2 and "already holds a training run" in refused
    code, which = train(capsys, str(tiny), "--resume", "--no-progress")
    assert code == 2 and "runs of tiny: runs/tiny, runs/tiny_2" in which
    assert snapshot(tmp_path / "runs" / "tiny") == before
    assert sorted(p.name for p in (tmp_path / "runs").iterdir()) == ["tiny", "tiny_2"]


def test_help_says_how_runs_are_named(capsys):
    with pytest.raises(SystemExit):
        main(["train", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "runs/NAME, then runs/NAME_2, runs/NAME_3" in text
    assert "netspec train --resume RUN" in text


# ---- Ctrl-C -------------------------------------------------------------------------------


def test_ctrl_c_stops_after_the_step_and_resume_is_exact(tiny, tmp_path, capsys):
    reference = tmp_path / "reference"
    code, said = train(capsys, str(tiny), "--out", str(reference), "--no-progress")
    assert code == 0, said
    run = tmp_path / "stopped"
    process = subprocess.Popen(
        command(str(tiny), "--out", str(run), "--no-progress"),
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    lines: list[str] = []
    read_until(process.stderr, "compiled in", lines)  # the first step is under way
    process.send_signal(signal.SIGINT)
    stderr = "".join(lines) + process.stderr.read()
    process.wait(timeout=120)
    assert process.returncode == 130, stderr
    assert lines[-2] == "compiling the training step...\n"
    assert (
        "stopping after this step (Ctrl-C again to stop now; the last checkpoint is kept)" in stderr
    )
    stopped = re.search(
        r"stopped by SIGINT at epoch 1, step (\d+) of (\d+); checkpoint saved", stderr
    )
    assert stopped, stderr
    step, steps = int(stopped.group(1)), int(stopped.group(2))
    assert steps == STEPS_PER_EPOCH and 1 <= step < steps  # not at the epoch's end
    assert f"Resume with: netspec train --resume {run}" in stderr
    assert "Traceback" not in stderr
    # the run's own spec, options and data: no spec argument
    code, resumed = train(capsys, "--resume", str(run), "--no-progress")
    assert code == 0, resumed
    assert f"resuming at epoch 1, step {step} of {steps}" in resumed
    assert "compiling the evaluation step...\ncompiled in " in resumed
    assert records(run) == records(reference)


def test_a_second_ctrl_c_stops_at_once_keeps_the_checkpoint_and_the_terminal(tmp_path, capsys):
    import pty

    spec = tmp_path / "heavy.yaml"
    spec.write_text(HEAVY)
    run = tmp_path / "run"
    code, said = train(capsys, str(spec), "--out", str(run), "--max-steps", "1", "--no-progress")
    assert code == 0, said
    checkpoints = snapshot(run / "checkpoints")
    leader, follower = pty.openpty()
    env = {**os.environ, **ONE_THREAD, "TERM": "xterm-256color", "COLUMNS": "100"}
    process = subprocess.Popen(
        command("--resume", str(run)),
        cwd=ROOT,
        stdin=subprocess.DEVNULL,
        stdout=follower,
        stderr=follower,
        env=env,
    )
    os.close(follower)
    output = bytearray()

    def drain() -> None:  # the bar redraws ten times a second: keep the terminal read
        while True:
            try:
                chunk = os.read(leader, 4096)
            except OSError:  # the child has gone
                return
            if not chunk:
                return
            output.extend(chunk)

    reader = threading.Thread(target=drain, daemon=True)
    reader.start()

    def wait_for(text: bytes) -> None:
        deadline = time.monotonic() + 240
        while text not in output:
            assert process.poll() is None, output.decode(errors="replace")
            assert time.monotonic() < deadline, output.decode(errors="replace")
            time.sleep(0.01)

    wait_for(b"compiled in")
    process.send_signal(signal.SIGINT)
    wait_for(b"Ctrl-C again to stop now")
    process.send_signal(signal.SIGINT)  # mid-step: the steps take about a second
    process.wait(timeout=120)
    reader.join(timeout=10)
    os.close(leader)
    text = output.decode(errors="replace")
    assert process.returncode == 130, text
    assert "stopped at once; the checkpoints saved before are kept" in text
    assert f"Resume with: netspec train --resume {run}" in text
    assert "Traceback" not in text
    # the bar was stopped: the cursor it hid is shown again, and the output ends a line
    assert text.rfind("\x1b[?25l") < text.rfind("\x1b[?25h"), repr(text[-400:])
    assert text.endswith("\n"), repr(text[-200:])
    # the step-1 checkpoint untouched, and no other finished (orbax renames a finished one
    # from its temporary folder, which the next run removes)
    after = snapshot(run / "checkpoints")
    assert {name: after.get(name) for name in checkpoints} == checkpoints
    assert [p.name for p in (run / "checkpoints").iterdir() if p.name.isdigit()] == ["1"]
    code, resumed = train(capsys, "--resume", str(run), "--max-steps", "1", "--no-progress")
    assert code == 0, resumed
    assert "resuming at epoch 1, step 1 of " in resumed


def test_compiling_is_announced_once_and_timed(capsys):
    import jax
    import jax.numpy as jnp

    step = Announced(jax.jit(lambda x: jnp.sin(x) * 2), "training")
    x = jnp.arange(4.0)
    first = step(x)
    said = capsys.readouterr().err
    assert re.fullmatch(r"compiling the training step\.\.\.\ncompiled in \d+\.\d s\n", said)
    assert step.seconds > 0
    np.testing.assert_allclose(np.asarray(first), np.sin(np.arange(4.0)) * 2, rtol=1e-6)
    np.testing.assert_allclose(np.asarray(step(x + 1)), np.sin(np.arange(1.0, 5.0)) * 2, rtol=1e-6)
    assert capsys.readouterr().err == ""


# ---- data: skipped images, samples -------------------------------------------------------


def test_skipped_images_are_named_with_the_reason(tmp_path, capsys):
    from PIL import Image

    rng = np.random.default_rng(0)
    data = tmp_path / "photos"
    for name in ("cat", "dog", "fox"):
        (data / name).mkdir(parents=True)
        for index in range(12):
            pixels = rng.integers(0, 255, (10, 12, 3), dtype=np.uint8)
            Image.fromarray(pixels).save(data / name / f"{index}.png")
    good = (data / "dog" / "0.png").read_bytes()
    broken = data / "dog" / "broken.png"
    broken.write_bytes(good[: len(good) // 2])
    spec = tmp_path / "small.yaml"
    spec.write_text(
        "name: small\ninput: [8, 8, 3]\nvars: {num_classes: 3}\nlayers:\n"
        "  - conv: conv 3x3 4 same relu\n  - gap: gap\n  - fc: dense $num_classes\n"
        "training: {batch_size: 8, epochs: 1, workers: 0}\n"
    )
    run = tmp_path / "run"
    code, said = train(
        capsys, str(spec), "--data", str(data), "--out", str(run), "--skip-bad-images",
        "--no-progress",
    )  # fmt: skip
    assert code == 0, said
    named = re.findall(rf"^  ({re.escape(str(broken))}: .+)$", said, re.MULTILINE)
    assert said.count("skipped 1 unreadable image (--skip-bad-images):\n") == 2  # start, end
    assert len(named) == 2 and named[0] == named[1]
    with pytest.raises(OSError) as pillow, Image.open(broken) as image:
        image.load()  # what Pillow says about the file
    assert named[0] == f"{broken}: {pillow.value}"
    assert json.loads((run / "config.json").read_text())["skipped"] == [named[0]]


def test_sample_indices_go_round_robin_over_the_classes():
    labels = np.array([2, 2, 0, 1, 1, 1, 0])
    # 16 // 3 = 5 rounds; class 0 has 2 images, class 1 has 3, class 2 has 2
    assert sample_indices(labels, 3) == [2, 3, 0, 6, 4, 1, 5]
    many = np.arange(40)  # one image of each of 40 classes
    assert sample_indices(many, 40) == list(range(SAMPLES_MAX))
    assert sample_indices(np.array([0, 0, 0]), 2) == list(range(3))  # a class without images


def test_samples_hold_every_class_of_the_digits(tiny, tmp_path, capsys):
    from PIL import Image
    from sklearn.datasets import load_digits

    run = tmp_path / "run"
    code, said = train(capsys, str(tiny), "--out", str(run), "--max-steps", "1", "--no-progress")
    assert code == 0, said
    digits = load_digits()
    pixels = np.rint(digits.images * (255.0 / 16.0)).clip(0, 255).astype(np.uint8)
    found = {}
    for path in (run / "samples").iterdir():
        number, label = re.fullmatch(r"(\d+)_(\d)\.png", path.name).groups()
        image = np.asarray(Image.open(path))
        same = np.flatnonzero((pixels == image).all(axis=(1, 2)))
        assert same.size and int(label) in digits.target[same], path.name
        found[int(number)] = label
    assert sorted(found) == list(range(10))
    assert sorted(found.values()) == [str(d) for d in range(10)]


# ---- --resume with an edited spec ---------------------------------------------------------


def lenet5_with_c3(filters: int) -> str:
    """specs/lenet5.yaml with C3's filters changed, and the expectations the change breaks
    (C3, S4 and C5's `-> ...`) left out."""
    text = (SPECS / "lenet5.yaml").read_text()
    text = re.sub(r"(?m)^(  - C3: +conv 5x5) 16 .*$", rf"\1 {filters}", text)
    text = re.sub(r"(?m)^(  - (?:S4|C5): +\S+ \S+(?: \d+)?) +->.*$", r"\1", text)
    assert f"conv 5x5 {filters}\n" in text and "5x5x16" not in text
    return text


def test_resume_with_an_edited_spec_names_the_rows_and_writes_nothing(tmp_path, capsys):
    run = tmp_path / "lenet5"
    lenet = str(SPECS / "lenet5.yaml")
    code, said = train(capsys, lenet, "--out", str(run), "--max-steps", "1", "--no-progress")
    assert code == 0, said
    before = snapshot(run)
    edited = tmp_path / "lenet5_c3.yaml"
    edited.write_text(lenet5_with_c3(20))
    code, said = train(capsys, str(edited), "--out", str(run), "--resume", "--no-progress")
    assert code == 2, said
    c3 = (5 * 5 * 6 * 16 + 16, 5 * 5 * 6 * 20 + 20)
    c5 = (5 * 5 * 16 * 120 + 120, 5 * 5 * 20 * 120 + 120)
    assert f"row C3: conv 5x5 16 -> 20 filters (params {c3[0]:,} -> {c3[1]:,})" in said
    assert "row S4: output 5x5x16 -> 5x5x20" in said
    assert f"row C5: params {c5[0]:,} -> {c5[1]:,}" in said
    assert f"netspec train --resume {run}" in said and "drop --resume" in said
    assert "damaged" not in said and "no usable checkpoint" not in said
    assert "Traceback" not in said
    assert snapshot(run) == before
    # options the checkpoints or the split depend on are refused; others are said and used
    code, said = train(capsys, lenet, "--out", str(run), "--resume", "--batch-size", "16")
    assert code == 2 and "batch_size 32 -> 16" in said, said
    assert snapshot(run) == before
    code, said = train(
        capsys, "--resume", str(run), "--set", "training.learning_rate=0.001", "--max-steps",
        "1", "--no-progress",
    )  # fmt: skip
    assert code == 0, said
    assert "changed since the run started: learning_rate 0.003 -> 0.001" in said
    assert "resuming at epoch 1, step 1 of " in said
    config = json.loads((run / "config.json").read_text())
    assert config["training"]["learning_rate"] == 0.001 and config["spec"] == lenet


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ([], "give a spec to train (a file or a zoo name)"),
        (["--resume"], "--resume continues a run: say which one"),
        (["--resume", "RUNS/nope"], "RUNS/nope: no such run directory"),
        (["RUNS"], "RUNS: is a folder, not a spec"),
        (["--resume", "RUNS"], "RUNS: is not a training run (no config.json)"),
        (["TINY", "--overwrite"], "--overwrite replaces the run in --out: give --out"),
    ],
)
def test_what_to_train_is_checked_first(args, message, tiny, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "RUNS").mkdir()
    args = [str(tiny) if arg == "TINY" else arg for arg in args]
    code, said = train(capsys, *args)
    assert code == 2
    assert said.startswith(f"error: {message}"), said
    assert sorted(p.name for p in tmp_path.iterdir()) == ["RUNS", "tiny.yaml"]
    assert not list((tmp_path / "RUNS").iterdir())


def test_resuming_a_finished_run_asks_for_more_epochs(tiny, tmp_path, capsys):
    run = tmp_path / "run"
    code, said = train(
        capsys, str(tiny), "--out", str(run), "--epochs", "1", "--batch-size", "64",
        "--no-progress",
    )  # fmt: skip
    assert code == 0, said
    before = snapshot(run)
    code, said = train(capsys, "--resume", str(run), "--no-progress")
    assert code == 2
    assert "the run has done 1 epoch of 1 (training.epochs): nothing to resume" in said
    assert f"netspec train --resume {run} --epochs 11" in said
    assert snapshot(run) == before
