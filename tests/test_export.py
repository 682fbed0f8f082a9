"""`netspec export`: StableHLO, ONNX and the Flax bundle, each checked against an independent
reference (the run's own eval step, the deserialized program run by JAX, onnxruntime, a Python
without netspec), their metadata against the run's files, and the command's refusals."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import jax
import numpy as np
import pytest

import netspec
from netspec.cli import main

# Under pytest-xdist (`--dist loadgroup`) the tests share one worker, so the run trains once.
pytestmark = pytest.mark.xdist_group("test_export.py")

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
  epochs: 2
  workers: 0
  normalize: {mean: [0.25], std: [0.5]}
"""


@pytest.fixture(scope="module")
def spec(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("spec") / "tiny.yaml"
    path.write_text(TINY)
    return path


@pytest.fixture(scope="module")
def run(spec, tmp_path_factory) -> Path:
    """A 2-epoch run on the built-in digits (batch norm and dropout: eval mode matters)."""
    out = tmp_path_factory.mktemp("runs") / "tiny"
    assert main(["train", str(spec), "--out", str(out), "--no-progress"]) == 0
    return out


@pytest.fixture(scope="module")
def reference(run):
    """The run's logits as `netspec eval` computes them (its jitted eval step)."""
    from netspec.train.use import load_trained

    trained = load_trained(run)
    return lambda images: np.asarray(trained.steps.predict(trained.params, trained.rest, images))


def images(batch: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal((batch, 8, 8, 1), np.float32)


def test_stablehlo_round_trip_at_two_batch_sizes(run, reference, tmp_path):
    out = tmp_path / "tiny.stablehlo"
    result = netspec.export_model(run, "stablehlo", out)
    assert result.path == out and result.trained
    exported = jax.export.deserialize(bytearray(out.read_bytes()))
    assert "cpu" in exported.platforms
    assert str(exported.in_avals[0].shape[0]) == "b"  # a symbolic batch size
    for batch in (1, 3):
        x = images(batch, seed=batch)
        got = np.asarray(exported.call(x))
        assert got.shape == (batch, 10)
        np.testing.assert_allclose(got, reference(x), rtol=1e-6, atol=1e-6)


def test_the_flax_bundle_loads_without_netspec(run, reference, tmp_path):
    bundle = tmp_path / "bundle"
    assert main(["export", str(run), "--format", "flax", "-o", str(bundle)]) == 0
    assert sorted(p.name for p in bundle.iterdir()) == [
        "load_tiny.py",
        "metadata.json",
        "tiny.py",
        "tiny.safetensors",
    ]
    x = images(4)
    np.save(tmp_path / "x.npy", x)
    script = textwrap.dedent(
        f"""
        import sys
        from importlib.abc import MetaPathFinder

        class NoNetspec(MetaPathFinder):
            def find_spec(self, name, path=None, target=None):
                if name == "netspec" or name.startswith("netspec."):
                    raise ImportError("netspec is not installed here")

        sys.meta_path.insert(0, NoNetspec())
        sys.modules["netspec"] = None
        import numpy as np
        from safetensors.numpy import load_file, save_file
        from load_tiny import load

        model = load("tiny.safetensors")
        x = np.load({str(tmp_path / "x.npy")!r})
        np.save({str(tmp_path / "y.npy")!r}, np.asarray(model(x)))
        assert sys.modules["tiny"].__file__.endswith("tiny.py")
        assert not any(m.startswith("netspec.") for m in sys.modules)

        tensors = load_file("tiny.safetensors")
        del tensors["bn.mean"]
        tensors["fc.kernel"] = tensors["fc.kernel"][:10]
        save_file(tensors, "broken.safetensors")
        try:
            load("broken.safetensors")
        except ValueError as error:
            print("refused:", error)
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", script], cwd=bundle, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    got = np.load(tmp_path / "y.npy")
    np.testing.assert_allclose(got, reference(x), rtol=1e-5, atol=1e-5)
    assert "refused:" in done.stdout and "missing bn.mean" in done.stdout
    assert "fc.kernel: the file has float32[10, 10], the network needs float32[256, 10]" in (
        done.stdout
    )


def read(path: Path):
    return json.loads(path.read_text())


def test_metadata_describes_the_run(run, tmp_path, capsys):
    out = tmp_path / "m.stablehlo"
    assert main(["export", str(run), "--format", "stablehlo", "-o", str(out)]) == 0
    printed = capsys.readouterr().out
    meta = read(tmp_path / "m.stablehlo.json")
    config = read(run / "config.json")
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    best = max(records, key=lambda r: r["val_acc"])  # first of equals, as training keeps
    assert meta["format"] == "stablehlo" and meta["files"] == {"model": "m.stablehlo"}
    assert meta["spec"] == "tiny" and meta["netspec_version"] == netspec.__version__
    assert meta["input"]["shape"] == config["input_shape"] == [8, 8, 1]
    assert (meta["input"]["layout"], meta["input"]["dtype"]) == ("NHWC", "float32")
    assert meta["input"]["batch"] == "dynamic"
    norm = config["training"]["normalize"]
    assert meta["normalization"]["mean"] == norm["mean"] == [0.25]
    assert meta["normalization"]["std"] == norm["std"] == [0.5]
    assert meta["normalization"]["mean_255"] == [63.75]
    assert meta["normalization"]["std_255"] == [127.5]
    assert meta["output"]["kind"] == "logits" and meta["output"]["shape"] == [None, 10]
    assert meta["output"]["classes"] == read(run / "classes.json") == config["classes"]
    assert meta["trained"] is True
    assert meta["run"]["best_epoch"] == best["epoch"]
    assert meta["run"]["val_acc"] == best["val_acc"]
    assert f"epoch {best['epoch']}, val_acc {best['val_acc']:.2%}" in printed
    assert "untrained" not in printed


def test_the_default_output_is_in_the_run(run, capsys):
    assert main(["export", str(run), "--format", "stablehlo"]) == 0
    assert (run / "export" / "tiny.stablehlo").is_file()
    assert read(run / "export" / "tiny.stablehlo.json")["files"]["model"] == "tiny.stablehlo"


def test_onnx_export_of_a_run_agrees_in_onnxruntime(run, reference, tmp_path, capsys):
    onnxruntime = pytest.importorskip("onnxruntime")
    out = tmp_path / "tiny.onnx"
    assert main(["export", str(run), "--format", "onnx", "-o", str(out)]) == 0
    assert "checked in onnxruntime: max relative difference" in capsys.readouterr().out
    session = onnxruntime.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    assert [i.name for i in session.get_inputs()] == ["images"]
    for batch in (1, 3):
        x = images(batch, seed=10 + batch)
        got = session.run(None, {"images": x})[0]
        np.testing.assert_allclose(got, reference(x), rtol=1e-5, atol=1e-5)
    meta = read(tmp_path / "tiny.onnx.json")
    assert meta["input"]["name"] == "images" and meta["output"]["classes"] == [
        str(i) for i in range(10)
    ]


def test_an_onnx_model_that_disagrees_is_not_written(run, tmp_path, capsys, monkeypatch):
    pytest.importorskip("onnxruntime")
    package = sys.modules["netspec.export.exporter"]
    real = package._flax_logits
    monkeypatch.setattr(package, "_flax_logits", lambda model, x: real(model, x) + 1.0)
    out = tmp_path / "tiny.onnx"
    assert main(["export", str(run), "--format", "onnx", "-o", str(out)]) == 2
    assert "disagrees with the Flax model" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


def test_a_spec_exports_untrained_weights_from_seed_0(spec, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(["export", str(spec), "--format", "stablehlo", "--set", "num_classes=4"]) == 0
    assert "untrained: weights from seed 0" in capsys.readouterr().out
    exported = jax.export.deserialize(bytearray((tmp_path / "tiny.stablehlo").read_bytes()))
    model = netspec.compile(spec, num_classes=4).build(seed=0)
    x = images(2)
    np.testing.assert_allclose(
        np.asarray(exported.call(x)), np.asarray(model(x, train=False)), rtol=1e-6, atol=1e-6
    )
    meta = read(tmp_path / "tiny.stablehlo.json")
    assert meta["trained"] is False and "run" not in meta
    assert meta["output"]["classes"] is None and meta["output"]["num_classes"] == 4
    assert meta["variables"] == {"num_classes": 4}
    assert meta["normalization"]["mean"] == [0.25]  # the spec's training section


TINYSEG = """\
name: tinyseg
input: [16, 16, 3]
vars: {num_classes: 4}
defaults:
  conv: {padding: same, activation: relu}
layers:
  - c1: conv 3x3 8
  - head: conv 1x1 $num_classes activation=none
  - softmax: softmax
"""


def test_a_per_pixel_network_exports_per_pixel_logits(write_spec, tmp_path, capsys):
    out = tmp_path / "seg.stablehlo"
    assert main(["export", str(write_spec(TINYSEG)), "--format", "stablehlo", "-o", str(out)]) == 0
    exported = jax.export.deserialize(bytearray(out.read_bytes()))
    x = np.random.default_rng(0).standard_normal((2, 16, 16, 3), np.float32)
    assert exported.call(x).shape == (2, 16, 16, 4)
    meta = read(tmp_path / "seg.stablehlo.json")
    assert meta["output"]["kind"] == "per_pixel_logits"
    assert meta["output"]["shape"] == [None, 16, 16, 4]
    assert meta["output"]["activation"] == "softmax"  # left to the runtime, as in `__call__`
    assert meta["input"]["colour"] == "RGB" and meta["normalization"]["mean"] == [0.0] * 3


def refused(capsys, *args: str) -> str:
    """Run `netspec export ARGS`: exit status 2, one `error:` message, no traceback."""
    assert main(["export", *args]) == 2
    captured = capsys.readouterr()
    assert captured.err.startswith("error: ") and "Traceback" not in captured.err
    assert captured.out == ""
    return captured.err


def test_bad_input_is_refused_and_writes_nothing(run, spec, tmp_path, capsys, monkeypatch):
    out = tmp_path / "out" / "m.stablehlo"
    err = refused(capsys, str(tmp_path / "nope.yaml"), "--format", "stablehlo", "-o", str(out))
    assert "no such spec file" in err
    empty = tmp_path / "empty"
    empty.mkdir()
    err = refused(capsys, str(empty), "--format", "stablehlo", "-o", str(out))
    assert "is not a training run" in err
    err = refused(capsys, str(run), "--set", "num_classes=3", "--format", "flax", "-o", str(out))
    assert "--set applies to a spec" in err
    a_file = tmp_path / "a_file"
    a_file.write_text("x")
    err = refused(capsys, str(spec), "--format", "stablehlo", "-o", str(a_file / "m.stablehlo"))
    assert "is not a folder" in err
    err = refused(capsys, str(spec), "--format", "flax", "-o", str(a_file))
    assert "is not a folder" in err
    monkeypatch.setitem(sys.modules, "onnx", None)
    err = refused(capsys, str(spec), "--format", "onnx", "-o", str(out))
    assert 'pip install "netspec[export]"' in err
    assert not (tmp_path / "out").exists() and a_file.read_text() == "x"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a_file", "empty"]


def test_an_existing_output_needs_overwrite(spec, tmp_path, capsys):
    out = tmp_path / "m.stablehlo"
    out.write_bytes(b"earlier")
    err = refused(capsys, str(spec), "--format", "stablehlo", "-o", str(out))
    assert "already exists" in err and "--overwrite" in err
    assert out.read_bytes() == b"earlier" and not Path(f"{out}.json").exists()
    assert main(["export", str(spec), "--format", "stablehlo", "-o", str(out), "--overwrite"]) == 0
    assert jax.export.deserialize(bytearray(out.read_bytes())).in_avals[0].shape[1:] == (8, 8, 1)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.stablehlo", "m.stablehlo.json"]
