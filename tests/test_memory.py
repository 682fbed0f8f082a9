"""The train step's memory (XLA's analysis) in `netspec bench`, and running out of device memory
turned into one clear message (bench and train), with the run directory left rerunnable.

A real out-of-memory cannot be produced reliably on a CPU: the tests make the step raise the
error XLA raises (status RESOURCE_EXHAUSTED) and give the device a memory limit.
"""

from __future__ import annotations

import json
from pathlib import Path

import jax
import pytest

from netspec import bench as bench_module
from netspec import memory
from netspec.bench import Setup
from netspec.cli import main
from netspec.compiled import compile_with
from netspec.train import loop

OOM = "RESOURCE_EXHAUSTED: Out of memory allocating 50119087168 bytes."

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
  - fc: dense $num_classes
training:
  optimizer: {name: sgd, momentum: 0.9}
  learning_rate: 0.05
  batch_size: 8
  epochs: 1
  workers: 0
"""


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    capsys.readouterr()
    code = main(list(args))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_the_arguments_are_the_parameters_optimizer_state_and_batch():
    """An independent count: SGD with momentum keeps one float32 per parameter besides the
    parameter; the batch is images, int32 labels and a float32 mask."""
    compiled = compile_with("lenet5", [])
    report = compiled.report
    setup = Setup(compiled)
    batch = 8
    found = setup.memory(batch)
    assert found is not None
    height, width, channels = compiled.graph.input_shape
    expected = 4 * (2 * report.params + report.state) + 4 * batch * (height * width * channels + 2)
    # the rest: the step counter, the running sums and the NaN marker (a few scalars)
    assert 0 <= found.argument_bytes - expected <= 64, (found, expected)
    assert found.peak_bytes == (
        found.argument_bytes + found.output_bytes + found.temp_bytes - found.alias_bytes
    )
    # the new state reuses the old one's buffers (donated): outputs are almost all aliased
    assert found.alias_bytes >= 4 * 2 * report.params
    assert found.temp_bytes > 0


def test_device_memory_is_none_on_cpu():
    assert jax.devices()[0].platform != "cpu" or memory.device_memory() is None


def test_bench_prints_and_reports_the_step_memory(capsys):
    code, out, _ = run(capsys, "bench", "lenet5", "--batch", "4", "--steps", "2")
    assert code == 0
    assert "train step memory (XLA's analysis): peak " in out
    assert "parameters and optimizer state 0.5 MB" in out
    code, out, _ = run(capsys, "bench", "lenet5", "--batch", "4", "--steps", "2", "--json")
    result = json.loads(out)
    assert result["memory"]["peak_bytes"] > result["memory"]["state_bytes"] > 4 * 2 * 61706 - 1


def test_memory_only_compiles_at_each_batch_and_grows_with_it(capsys, monkeypatch):
    monkeypatch.setattr(bench_module, "timed_bench", pytest.fail)  # nothing is run
    code, out, _ = run(capsys, "bench", "lenet5", "--memory-only", "--batches", "8,64", "--json")
    assert code == 0
    rows = json.loads(out)["batches"]
    assert [row["batch"] for row in rows] == [8, 64]
    assert rows[0]["peak_bytes"] < rows[1]["peak_bytes"]
    code, out, _ = run(capsys, "bench", "lenet5", "--memory-only", "--batches", "8,64")
    assert code == 0 and "peak MB" in out and out.splitlines()[-1].split()[0] == "64"
    code, _, err = run(capsys, "bench", "lenet5", "--batches", "8")
    assert code == 2 and "--batches goes with --memory-only" in err
    code, _, err = run(capsys, "bench", "lenet5", "--memory-only", "--batches", "8,x")
    assert code == 2 and "comma-separated" in err


def limit_between(spec: str, small: int, large: int) -> int:
    """A device memory that fits batch `small` and not batch `large`."""
    setup = Setup(compile_with(spec, []))
    fits, too_big = setup.memory(small), setup.memory(large)
    assert fits is not None and too_big is not None
    return int((fits.peak_bytes / memory.FITS_SHARE + too_big.peak_bytes) / 2)


def raise_oom(*args, **kwargs):
    raise jax.errors.JaxRuntimeError(OOM)


def test_bench_out_of_memory_is_one_message_with_a_batch_that_fits(capsys, monkeypatch):
    limit = limit_between("lenet5", 16, 32)
    monkeypatch.setattr(bench_module, "timed_bench", raise_oom)
    monkeypatch.setattr(bench_module, "device_memory", lambda: limit)
    code, out, err = run(capsys, "bench", "lenet5", "--batch", "64", "--steps", "1")
    assert code == 2 and out == ""
    assert "Traceback" not in err
    assert err.startswith("error: the train step ran out of device memory: it needs about ")
    assert "at batch 64" in err
    assert f"the device has {memory.megabytes(limit)}" in err
    assert "RESOURCE_EXHAUSTED" in err
    assert "batch 16 fits (--batch 16)" in err
    assert "--dtype bfloat16" in err


def test_other_errors_are_not_taken_for_out_of_memory():
    assert memory.is_out_of_memory(jax.errors.JaxRuntimeError(OOM))
    assert memory.is_out_of_memory(RuntimeError("CUDA: out of memory"))
    assert not memory.is_out_of_memory(jax.errors.JaxRuntimeError("INTERNAL: failed"))


@pytest.fixture
def tiny(tmp_path: Path) -> Path:
    path = tmp_path / "tiny.yaml"
    path.write_text(TINY)
    return path


def out_of_memory_on_the_first_step(monkeypatch: pytest.MonkeyPatch) -> None:
    """The train step compiles (as for real) and then runs out of memory."""
    real = loop.Announced.__call__

    def call(self, *args):
        result = real(self, *args)
        if self.what == "training":
            raise jax.errors.JaxRuntimeError(OOM)
        return result

    monkeypatch.setattr(loop.Announced, "__call__", call)


def test_train_out_of_memory_says_what_to_try_and_leaves_no_half_made_run(
    tiny, tmp_path, capsys, monkeypatch
):
    monkeypatch.chdir(tmp_path)
    out_of_memory_on_the_first_step(monkeypatch)
    limit = limit_between(str(tiny), 2, 8)
    monkeypatch.setattr(memory, "device_memory", lambda device=None: limit)
    code, _, err = run(capsys, "train", str(tiny), "--max-steps", "1", "--no-progress")
    assert code == 2
    assert "Traceback" not in err
    assert "error: the train step ran out of device memory: it needs about " in err
    assert "at batch 8" in err and f"the device has {memory.megabytes(limit)}" in err
    assert "batch 4 fits (--set training.batch_size=4)" in err
    assert "--set training.dtype=bfloat16" in err
    assert "runs/tiny was removed (no step was taken)" in err
    assert not (tmp_path / "runs" / "tiny").exists()
    # a rerun (here without the error) takes the same folder
    monkeypatch.undo()
    monkeypatch.chdir(tmp_path)
    code, _, err = run(capsys, "train", str(tiny), "--max-steps", "1", "--no-progress")
    assert code == 0, err
    assert "run directory: runs/tiny\n" in err


def test_train_out_of_memory_in_a_folder_it_did_not_make_says_how_to_rerun(
    tiny, tmp_path, capsys, monkeypatch
):
    run_dir = tmp_path / "mine"
    run_dir.mkdir()
    out_of_memory_on_the_first_step(monkeypatch)
    args = ("train", str(tiny), "--out", str(run_dir), "--max-steps", "1", "--no-progress")
    code, _, err = run(capsys, *args)
    assert code == 2 and "Traceback" not in err
    assert "the device has" not in err  # a CPU says nothing of its memory
    assert f"--out {run_dir} --overwrite" in err
    assert run_dir.is_dir()
    monkeypatch.undo()
    code, _, err = run(capsys, *args, "--overwrite")
    assert code == 0, err
