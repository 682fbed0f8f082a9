"""examples/: each folder's `run.sh --tiny`, run as a user runs it (bash, `netspec` on PATH), on
tiny generated data and stand-in weights, with everything written under `EXAMPLE_OUT` in
tmp_path; then the outputs that matter are checked. One pytest-xdist group per example, so
that `pytest -n 2` runs two at a time; the slowest come first. The scripts' processes inherit
the environment, conftest's one-thread-per-worker XLA_FLAGS and test-session NETSPEC_CACHE
included. About 3 minutes with `pytest -n 2` on a 2-core CPU (6 minutes of CPU time)."""

from __future__ import annotations

import importlib.util
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from .conftest import ROOT

EXAMPLES = ROOT / "examples"
NAMES = (
    "cifar10_inception10_resnet18",
    "googlenet_flowers",
    "lenet5_batchnorm",
    "torchvision_resnet18",
    "alexnet_caffe",
)
REAL_DATA_VARIABLES = (
    "FLOWERS",
    "GOOGLENET_NPY",
    "ALEXNET_NPY",
    "IMAGENET_NAMES",
    "MNIST",
    "CIFAR10",
    "RESNET18_WEIGHTS",
    "IMAGES",
    "EPOCHS",
)
"""What points an example at real data or changes its length: never taken from the caller."""
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def run_example(name: str, tmp_path: Path) -> tuple[Path, str]:
    """`examples/NAME/run.sh --tiny` with EXAMPLE_OUT=tmp_path/out; (that folder, stdout and
    stderr together). `netspec` and `python` are this interpreter's."""
    out = tmp_path / "out"
    env = {key: value for key, value in os.environ.items() if key not in REAL_DATA_VARIABLES}
    bin_dir = str(Path(sys.executable).parent)
    env |= {
        "EXAMPLE_OUT": str(out),
        "PYTHON": sys.executable,
        "PATH": bin_dir + os.pathsep + env.get("PATH", ""),
    }
    result = subprocess.run(
        ["bash", str(EXAMPLES / name / "run.sh"), "--tiny"],
        cwd=tmp_path,
        env=env,
        text=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        timeout=900,
    )
    assert result.returncode == 0, f"run.sh --tiny exited {result.returncode}:\n{result.stdout}"
    return out, result.stdout


def metrics(run: Path) -> list[dict]:
    lines = (run / "metrics.jsonl").read_text().splitlines()
    return [json.loads(line) for line in lines]


def assert_png(path: Path) -> None:
    assert path.read_bytes()[:8] == PNG_SIGNATURE, f"{path} is not a PNG"


@pytest.mark.parametrize("name", NAMES)
def test_example_folder_is_complete(name):
    folder = EXAMPLES / name
    script = folder / "run.sh"
    assert (folder / "README.md").is_file()
    assert os.access(script, os.X_OK), f"{script} is not executable"
    assert 'source "$(dirname "${BASH_SOURCE[0]}")/../common.sh" "$@"' in script.read_text()
    check = subprocess.run(["bash", "-n", str(script)], capture_output=True, text=True)
    assert check.returncode == 0, check.stderr


@pytest.mark.parametrize("name", NAMES)
def test_example_refuses_an_unknown_option(name, tmp_path):
    """common.sh's option parsing: a usage line and exit code 2, before anything is written."""
    env = os.environ | {"EXAMPLE_OUT": str(tmp_path / "out")}
    result = subprocess.run(
        ["bash", str(EXAMPLES / name / "run.sh"), "--tiyn"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert result.stderr.startswith("usage: ") and "--tiny" in result.stderr
    assert not (tmp_path / "out").exists()


@pytest.mark.xdist_group("example-cifar10_inception10_resnet18")
def test_cifar10_inception10_resnet18(tmp_path):
    out, log = run_example("cifar10_inception10_resnet18", tmp_path)
    batches = out / "cifar-10-batches-py"
    names = [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch", "batches.meta"]
    assert all((batches / name).is_file() for name in names)
    inception, resnet = out / "runs" / "inception10", out / "runs" / "resnet18_cifar"
    assert "stopped after 4 steps" in log
    assert "resuming at epoch 2, step 1 of 3" in log
    assert [record["epoch"] for record in metrics(inception)] == [1, 2]
    assert [record["epoch"] for record in metrics(resnet)] == [1]
    for run in (inception, resnet):
        assert_png(run / "curves.png")
        assert any(p.name.isdigit() for p in (run / "checkpoints").iterdir())
        result = json.loads(
            (run / "eval" / "cifar-10-batches-py-test_batch" / "metrics.json").read_text()
        )
        assert result["images"] == 20
    assert log.count("CIFAR-10 test_batch of") == 2


@pytest.mark.xdist_group("example-googlenet_flowers")
def test_googlenet_flowers(tmp_path):
    out, log = run_example("googlenet_flowers", tmp_path)
    assert "STAND-IN ImageNet weights" in log
    table = re.sub(r"[\s│]+", " ", log)  # the dry-run table, whatever width rich wrapped it to
    assert "linear 5 1024x5 linear new head (1000 -> 5 outputs)" in table
    assert "paired by row name" in log
    assert "5,973,552 frozen" in log
    records = metrics(out / "run")
    assert len(records) == 1 and 0.0 <= records[0]["val_acc"] <= 1.0
    classes = ("daisy", "dandelion", "roses", "sunflowers", "tulips")
    prediction = re.search(r"samples/\S+\.jpg: (\w+) [\d.]+%", log)
    assert prediction and prediction.group(1) in classes
    if importlib.util.find_spec("onnx") is not None:
        assert (out / "googlenet.onnx").stat().st_size > 1_000_000
        meta = json.loads((out / "googlenet.onnx.json").read_text())
        assert meta["output"]["classes"] == list(classes)
        assert "checked in onnxruntime" in log or importlib.util.find_spec("onnxruntime") is None


@pytest.mark.xdist_group("example-lenet5_batchnorm")
def test_lenet5_batchnorm(tmp_path):
    out, log = run_example("lenet5_batchnorm", tmp_path)
    assert (out / "mnist" / "train-images-idx3-ubyte.gz").is_file()
    for name in ("lenet5", "lenet5_bn_before", "lenet5_bn_after"):
        assert [record["epoch"] for record in metrics(out / "runs" / name)] == [1, 2]
        assert re.search(rf"^{name}\s+[\d,]+\s+\d+\.\d+%", log, re.MULTILINE), name
    assert_png(out / "compare.png")


@pytest.mark.xdist_group("example-torchvision_resnet18")
def test_torchvision_resnet18(tmp_path):
    out, log = run_example("torchvision_resnet18", tmp_path)
    assert "STAND-IN for torchvision's resnet18" in log
    assert "paired by name (torchvision.models.resnet18 map for resnet18); new head: fc" in log
    assert re.search(r"at 0\.1x \(2 rows\), [\d,]+ frozen \(7 rows", log)
    assert len(metrics(out / "run")) == 1
    assert "the run's validation split, 4 images" in log
    assert (out / "run" / "eval" / "val" / "metrics.json").is_file()


@pytest.mark.xdist_group("example-alexnet_caffe")
def test_alexnet_caffe(tmp_path):
    out, log = run_example("alexnet_caffe", tmp_path)
    weights = out / "bvlc_alexnet.npy"
    assert weights.stat().st_size > 240_000_000  # 60,965,224 float32 values
    weights.unlink()  # no need to keep 244 MB in pytest's temporary folders
    assert "STAND-IN for bvlc_alexnet.npy" in log
    assert "loaded 60,965,224 values" in log and "paired by row name" in log
    ranked = re.findall(r"^  ([1-5])\. class +(\d+)", log, re.MULTILINE)
    assert [rank for rank, _ in ranked] == ["1", "2", "3", "4", "5"]
    assert all(0 <= int(index) < 1000 for _, index in ranked)


def test_googlenet_from_caffe_renames_bvlc_googlenet(tmp_path):
    """imagenet_weights.py --from-caffe on a dict named and laid out like caffe-tensorflow's
    bvlc_googlenet.npy (BVLC's 58 deploy layers in their order plus the auxiliary `loss1/*`,
    `loss2/*`): each layer lands on the spec's node in the same place of the network, the
    auxiliary ones are dropped and conv1's input channels are reversed (BGR -> RGB)."""
    path = EXAMPLES / "googlenet_flowers" / "imagenet_weights.py"
    spec = importlib.util.spec_from_file_location("imagenet_weights", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    modules = ["3a", "3b", "4a", "4b", "4c", "4d", "4e", "5a", "5b"]
    branches = ["1x1", "3x3_reduce", "3x3", "5x5_reduce", "5x5", "pool_proj"]
    bvlc = ["conv1/7x7_s2", "conv2/3x3_reduce", "conv2/3x3"]
    bvlc += [f"inception_{m}/{b}" for m in modules for b in branches] + ["loss3/classifier"]
    ours = module.stand_in(seed=3)  # netspec names, execution order, Caffe's (out, in, kh, kw)
    assert len(ours) == len(bvlc) == 58
    caffe = {}
    for caffe_name, (kernel, bias) in zip(bvlc, ours.values(), strict=True):
        # caffe-tensorflow's layout: conv (kh, kw, in, out), dense (in, out)
        layout = kernel.transpose(2, 3, 1, 0) if kernel.ndim == 4 else kernel.T
        caffe[caffe_name] = {"weights": layout, "biases": bias}
    rng = np.random.default_rng(0)
    for aux in ("loss1", "loss2"):
        caffe[f"{aux}/conv"] = {"weights": rng.random((1, 1, 512, 128)), "biases": rng.random(128)}
    source = tmp_path / "bvlc_googlenet.npy"
    np.save(source, np.array(caffe, dtype=object), allow_pickle=True)
    renamed = module.from_caffe(source)
    assert list(renamed) == list(ours)
    for caffe_name, (name, (_, bias)) in zip(bvlc, ours.items(), strict=True):
        got_kernel, got_bias = renamed[name]
        expected = caffe[caffe_name]["weights"]
        if name == "conv1":
            expected = expected[:, :, ::-1, :]
        np.testing.assert_array_equal(got_kernel, expected)
        np.testing.assert_array_equal(got_bias, bias)
