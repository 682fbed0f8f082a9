"""`netspec eval RUN --data SRC`: every image of the data's held-out part, checked against a
direct computation with the run's model; results in RUN/eval/, never over the run's files."""

from __future__ import annotations

import json
import pickle
import struct
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from netspec.cli import main
from netspec.train.datasets import load_eval_set
from netspec.train.use import load_trained

CLASSES = ("cat", "dog", "fox")
TINY = """\
name: tiny
input: [12, 12, 3]
vars: {num_classes: 3}
layers:
  - conv: conv 3x3 4 same relu
  - pool: maxpool 2x2
  - flat: flatten
  - fc: dense $num_classes
training: {batch_size: 8, epochs: 1, workers: 0}
"""


def image_folder(root: Path, counts: dict[str, int], seed: int) -> Path:
    """PNGs of assorted sizes, class c's channel c brightened so the classes are learnable."""
    rng = np.random.default_rng(seed)
    for channel, (name, count) in enumerate(counts.items()):
        (root / name).mkdir(parents=True)
        for index in range(count):
            height, width = rng.integers(9, 20, size=2)
            pixels = rng.integers(0, 156, (height, width, 3), dtype=np.uint8)
            pixels[..., channel % 3] += 100
            Image.fromarray(pixels).save(root / name / f"{index:02d}.png")
    return root


def three(count: int) -> dict[str, int]:
    return dict.fromkeys(CLASSES, count)


def eval_json(capsys, *args: str) -> dict:
    assert main(["eval", *args, "--json"]) == 0
    return json.loads(capsys.readouterr().out)


@pytest.fixture(scope="module")
def run(tmp_path_factory) -> Path:
    """One 1-epoch run of a tiny network on a 3-class image folder."""
    root = tmp_path_factory.mktemp("eval")
    (root / "tiny.yaml").write_text(TINY)
    data = image_folder(root / "train_data", three(12), seed=0)
    out = root / "run"
    argv = ["train", str(root / "tiny.yaml"), "--data", str(data), "--out", str(out)]
    assert main([*argv, "--no-progress"]) == 0
    return out


def direct(run: Path, folder: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(labels, predicted labels, per-image loss) of every image under `folder`'s class
    folders, decoded with Pillow and normalised by hand, the model applied in one batch."""
    config = json.loads((run / "config.json").read_text())
    height, width, _ = config["input_shape"]
    mean = np.asarray(config["training"]["normalize"]["mean"], np.float32)
    std = np.asarray(config["training"]["normalize"]["std"], np.float32)
    names = json.loads((run / "classes.json").read_text())
    images, labels = [], []
    for label, name in enumerate(names):
        for path in sorted((folder / name).iterdir()):
            with Image.open(path) as image:
                small = image.convert("RGB").resize((width, height), Image.Resampling.BILINEAR)
            images.append((np.asarray(small, np.float32) / 255.0 - mean) / std)
            labels.append(label)
    trained = load_trained(run)
    logits = np.asarray(trained.steps.predict(trained.params, trained.rest, np.stack(images)))
    logits = logits.astype(np.float64)
    shifted = logits - logits.max(-1, keepdims=True)
    log_probabilities = shifted - np.log(np.exp(shifted).sum(-1, keepdims=True))
    labels_array = np.asarray(labels)
    losses = -log_probabilities[np.arange(len(labels)), labels_array]
    return labels_array, logits.argmax(-1), losses


def assert_matches_direct(result: dict, run: Path, folder: Path) -> None:
    labels, predicted, losses = direct(run, folder)
    assert result["images"] == len(labels)
    assert result["top1"] == pytest.approx(np.mean(predicted == labels), abs=1e-12)
    assert result["loss"] == pytest.approx(losses.mean(), rel=1e-4)
    for label, row in enumerate(result["per_class"]):
        mine = labels == label
        assert row["class"] == CLASSES[label]
        assert row["images"] == int(mine.sum())
        assert row["correct"] == int((predicted[mine] == label).sum())
        assert row["accuracy"] == pytest.approx(row["correct"] / row["images"])


def test_a_held_out_folder_is_evaluated_whole(run, tmp_path, capsys):
    folder = image_folder(tmp_path / "held_out", {"cat": 7, "dog": 5, "fox": 9}, seed=1)
    result = eval_json(capsys, str(run), "--data", str(folder))
    assert result["images"] == 21
    assert result["data"] == f"all of {folder}/ (21 images)"
    assert [row["images"] for row in result["per_class"]] == [7, 5, 9]
    assert_matches_direct(result, run, folder)
    assert "top5" not in result  # 3 classes: top-5 would always be 100%
    assert Path(result["metrics"]) == run / "eval" / "held_out" / "metrics.json"
    assert json.loads(Path(result["metrics"]).read_text())["top1"] == result["top1"]
    assert Path(result["confusion_matrix"]).read_bytes()[:4] == b"\x89PNG"


def test_a_folder_with_train_and_val_uses_all_of_val(run, tmp_path, capsys):
    root = tmp_path / "flowers"
    image_folder(root / "train", three(4), seed=2)
    val = image_folder(root / "val", {"cat": 5, "dog": 3, "fox": 7}, seed=3)
    result = eval_json(capsys, str(run), "--data", str(root))
    assert result["data"] == f"val/ of {root}/ (15 images)"
    assert [row["images"] for row in result["per_class"]] == [5, 3, 7]
    assert_matches_direct(result, run, val)
    assert Path(result["metrics"]).parent == run / "eval" / "flowers-val"

    assert main(["eval", str(run), "--data", str(root)]) == 0
    text = capsys.readouterr().out
    assert text.startswith(f"val/ of {root}/ (15 images): loss ")
    assert "top-5" not in text
    table = [line.split() for line in text.splitlines() if line.startswith("  ")]
    assert table[0] == ["class", "images", "correct", "accuracy"]
    for cells, row in zip(table[1:], result["per_class"], strict=True):
        assert cells == [row["class"], str(row["images"]), str(row["correct"]), cells[3]]
        assert float(cells[3].rstrip("%")) == pytest.approx(100 * row["accuracy"], abs=0.005)
    assert f"wrote {run / 'eval' / 'flowers-val' / 'metrics.json'}" in text


def snapshot(run: Path) -> dict[str, bytes]:
    return {
        str(path.relative_to(run)): path.read_bytes()
        for path in sorted(run.rglob("*"))
        if path.is_file() and path.relative_to(run).parts[0] != "eval"
    }


def test_the_runs_own_files_are_never_touched(run, tmp_path, capsys):
    picture = run / "confusion_matrix.png"
    if not picture.exists():  # as a training run that writes one would leave it
        picture.write_bytes((run / "curves.png").read_bytes())
    before = snapshot(run)
    folder = image_folder(tmp_path / "more", three(3), seed=4)
    for _ in range(2):
        own = eval_json(capsys, str(run))
        other = eval_json(capsys, str(run), "--data", str(folder))
    assert snapshot(run) == before
    assert Path(own["confusion_matrix"]) == run / "eval" / "val" / "confusion_matrix.png"
    assert Path(other["confusion_matrix"]) == run / "eval" / "more" / "confusion_matrix.png"
    assert not list((run / "eval").rglob("*.tmp"))


def test_without_data_it_is_the_runs_validation_split(run, capsys):
    result = eval_json(capsys, str(run))
    record = json.loads((run / "metrics.jsonl").read_text().splitlines()[-1])
    assert result["top1"] == pytest.approx(record["val_acc"], abs=1e-9)
    assert result["loss"] == pytest.approx(record["val_loss"], rel=1e-5)
    assert result["data"].startswith("the run's validation split, 3 images of image folder")
    assert result["images"] == 3  # 12 per class, 10% of each class held out (rounded)


def test_out_puts_results_elsewhere_but_never_in_the_run(run, tmp_path, capsys):
    folder = image_folder(tmp_path / "held", three(2), seed=5)
    result = eval_json(capsys, str(run), "--data", str(folder), "--out", str(tmp_path / "mine"))
    assert Path(result["metrics"]) == tmp_path / "mine" / "metrics.json"
    assert (tmp_path / "mine" / "confusion_matrix.png").exists()
    assert main(["eval", str(run), "--data", str(folder), "--out", str(run)]) == 2
    assert "is the run directory" in capsys.readouterr().err


def test_other_classes_are_one_clear_error(run, tmp_path, capsys):
    folder = image_folder(tmp_path / "birds", {"cat": 2, "dog": 2, "owl": 2}, seed=6)
    assert main(["eval", str(run), "--data", str(folder)]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert f"{folder}: the data's 3 classes [cat, dog, owl] differ" in captured.err
    assert "the run's 3 [cat, dog, fox]" in captured.err
    assert "only in the data: owl; only in the run: fox" in captured.err
    assert "Traceback" not in captured.err
    assert not (run / "eval" / "birds").exists()


def test_an_unreadable_image_is_named_or_skipped(run, tmp_path, capsys):
    folder = image_folder(tmp_path / "damaged", three(3), seed=7)
    good = (folder / "dog" / "00.png").read_bytes()
    (folder / "dog" / "broken.png").write_bytes(good[: len(good) // 2])
    assert main(["eval", str(run), "--data", str(folder)]) == 2
    error = capsys.readouterr().err
    assert "broken.png" in error and "Traceback" not in error
    result = eval_json(capsys, str(run), "--data", str(folder), "--skip-bad-images")
    assert result["images"] == 9
    assert len(result["skipped"]) == 1 and "broken.png" in result["skipped"][0]


# ---- the held-out part of each format, without a model ---------------------------------------


def write_cifar_batch(path: Path, labels: list[int], seed: int) -> np.ndarray:
    data = np.random.default_rng(seed).integers(0, 256, (len(labels), 3072), dtype=np.uint8)
    with path.open("wb") as file:
        pickle.dump({b"data": data, b"labels": labels}, file)
    return data


def test_cifar_uses_test_batch(tmp_path):
    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir()
    for index in range(1, 6):
        write_cifar_batch(folder / f"data_batch_{index}", [0, 1, 2], seed=index)
    data = write_cifar_batch(folder / "test_batch", [3, 1, 4, 1, 5, 9, 2], seed=9)
    chosen = load_eval_set(tmp_path, (32, 32, 3))
    assert chosen.description == f"CIFAR-10 test_batch of {folder}/ (7 images)"
    assert chosen.images.labels.tolist() == [3, 1, 4, 1, 5, 9, 2]
    assert chosen.images.images is not None
    expected = data.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)
    assert np.array_equal(chosen.images.images, expected)
    assert chosen.class_names[:2] == ["airplane", "automobile"] and chosen.held_out
    for index in range(1, 6):  # a test_batch alone is enough
        (folder / f"data_batch_{index}").unlink()
    assert len(load_eval_set(folder, (32, 32, 3)).images) == 7


def idx(array: np.ndarray) -> bytes:
    header = bytes([0, 0, 0x08, array.ndim]) + b"".join(struct.pack(">I", n) for n in array.shape)
    return header + array.astype(np.uint8).tobytes()


def test_mnist_uses_the_t10k_files(tmp_path):
    rng = np.random.default_rng(0)
    (tmp_path / "train-images-idx3-ubyte").write_bytes(idx(np.zeros((4, 28, 28), np.uint8)))
    (tmp_path / "train-labels-idx1-ubyte").write_bytes(idx(np.zeros(4, np.uint8)))
    test_images = rng.integers(0, 256, (5, 28, 28), dtype=np.uint8)
    (tmp_path / "t10k-images-idx3-ubyte").write_bytes(idx(test_images))
    (tmp_path / "t10k-labels-idx1-ubyte").write_bytes(idx(np.array([7, 2, 1, 0, 4])))
    chosen = load_eval_set(tmp_path, (28, 28, 1))
    assert chosen.description == f"MNIST t10k files of {tmp_path}/ (5 images)"
    assert chosen.images.labels.tolist() == [7, 2, 1, 0, 4]
    assert chosen.images.images is not None
    assert np.array_equal(chosen.images.images[..., 0], test_images)


def test_npz_uses_its_test_arrays_else_all(tmp_path):
    rng = np.random.default_rng(0)
    keras = tmp_path / "keras.npz"
    np.savez(
        keras,
        x_train=rng.integers(0, 256, (6, 8, 8), dtype=np.uint8),
        y_train=np.array([0, 1, 2, 3, 0, 1]),
        x_test=rng.integers(0, 256, (3, 8, 8), dtype=np.uint8),
        y_test=np.array([1, 0, 1]),
    )
    chosen = load_eval_set(keras, (8, 8, 1))
    assert chosen.description == f"x_test/y_test of {keras} (3 images)"
    assert chosen.class_names == ["0", "1", "2", "3"]  # numbered over every label, as training
    assert chosen.name == "keras-test" and chosen.held_out
    plain = tmp_path / "plain.npz"
    np.savez(plain, images=np.zeros((11, 8, 8), np.uint8), labels=np.arange(11) % 2)
    chosen = load_eval_set(plain, (8, 8, 1))
    assert chosen.description == f"all of {plain} (11 images)"
    assert len(chosen.images) == 11 and not chosen.held_out
