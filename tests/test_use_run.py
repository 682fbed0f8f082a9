"""Using a trained run: `netspec.load_run` from Python, `netspec predict` on folders and globs."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import netspec
from netspec.train.loop import PerImage

from .test_training import netspec as run_netspec

SPEC = """\
name: small
input: [8, 8, 1]
vars: {num_classes: 10}
layers:
  - conv: conv 3x3 8 same relu
  - pool: maxpool 2x2
  - flat: flatten
  - fc: dense $num_classes
training:
  normalize: {mean: [0.25], std: [0.5]}
  batch_size: 64
  epochs: 1
  workers: 0
"""


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("run")
    (folder / "small.yaml").write_text(SPEC)
    run = folder / "run"
    result = run_netspec("train", str(folder / "small.yaml"), "--out", str(run), "--no-progress")
    assert result.returncode == 0, result.stderr
    return run


def digit_images(folder: Path, count: int) -> list[Path]:
    """Grey 8x8 PNGs with a bright square in varying places."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(count):
        pixels = np.zeros((8, 8), np.uint8)
        pixels[i % 5 : i % 5 + 3, (2 * i) % 6 : (2 * i) % 6 + 3] = 200 + i
        path = folder / f"img{i}.png"
        Image.fromarray(pixels).save(path)
        paths.append(path)
    return paths


def test_load_run_predicts_as_a_direct_forward_pass(trained, tmp_path):
    run = netspec.load_run(trained)
    assert run.classes == [str(i) for i in range(10)]
    assert run.preprocessing.input_shape == (8, 8, 1)
    paths = digit_images(tmp_path / "imgs", 3)
    predictions = run.predict(paths, top_k=3)
    for path, prediction in zip(paths, predictions, strict=True):
        # By hand: the pixels as uint8, scaled and normalised as the spec says, then the model.
        pixels = np.asarray(Image.open(path), np.float32)[None, :, :, None]
        logits = np.asarray(run.model((pixels / 255.0 - 0.25) / 0.5))[0]
        probabilities = np.exp(logits - logits.max())
        probabilities /= probabilities.sum()
        order = np.argsort(-probabilities)[:3]
        assert [t["class"] for t in prediction["top"]] == [str(i) for i in order]
        got = [t["probability"] for t in prediction["top"]]
        np.testing.assert_allclose(got, probabilities[order], rtol=1e-5, atol=1e-6)
    # Arrays and PIL images give the same answer as the file.
    as_array = run.predict([np.asarray(Image.open(paths[0]))], top_k=3)[0]["top"]
    as_pil = run.predict([Image.open(paths[0])], top_k=3)[0]["top"]
    assert as_array == as_pil == predictions[0]["top"]
    assert "small" in repr(run)


def test_predict_takes_folders_and_globs_and_names_bad_files(trained, tmp_path):
    digit_images(tmp_path / "a", 2)
    digit_images(tmp_path / "b" / "nested", 2)
    (tmp_path / "a" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n not really")
    (tmp_path / "a" / "notes.txt").write_text("not an image")
    result = run_netspec(
        "predict",
        str(trained),
        str(tmp_path / "a"),
        str(tmp_path / "b" / "**" / "*.png"),
        "--top-k",
        "20",
        "--json",
    )
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    results = json.loads(result.stdout)
    images = sorted(Path(r["image"]).relative_to(tmp_path).as_posix() for r in results)
    assert images == ["a/broken.png", "a/img0.png", "a/img1.png", "b/nested/img0.png",
                      "b/nested/img1.png"]  # fmt: skip
    broken = next(r for r in results if r["image"].endswith("broken.png"))
    assert "error" in broken and "top" not in broken
    for good in (r for r in results if "top" in r):
        assert len(good["top"]) == 10  # --top-k 20 with 10 classes: all of them, once each
        assert sorted(t["class"] for t in good["top"]) == sorted(str(i) for i in range(10))
        assert abs(sum(t["probability"] for t in good["top"]) - 1) < 1e-4


def test_predict_text_output_names_the_unreadable_file(trained, tmp_path):
    (good,) = digit_images(tmp_path, 1)
    bad = tmp_path / "bad.jpg"
    bad.write_bytes(b"nope")
    result = run_netspec("predict", str(trained), str(good), str(bad))
    assert result.returncode == 2
    assert str(good) in result.stdout
    assert str(bad) in result.stderr and "1 of 2 images could not be read" in result.stderr
    missing = run_netspec("predict", str(trained), str(tmp_path / "nothing*.png"))
    assert missing.returncode == 2 and "nothing*.png" in missing.stderr
    assert "Traceback" not in missing.stderr


@pytest.mark.parametrize(("classes", "has_top5"), [(3, False), (5, False), (6, True)])
def test_top5_is_recorded_only_when_it_can_miss(classes, has_top5):
    sums = {"loss": 1.0, "correct": 1.0, "count": 2.0}
    val = {"loss": 0.5, "acc": 0.5, "top5": 1.0}
    assert ("val_top5" in PerImage(classes).record(sums, val)) is has_top5
