"""End-to-end training, `netspec train` against Keras 3 `fit` and a PyTorch loop: whole epochs
(data pipeline, train steps, validation, checkpoint), not only the train step (benchmarks/run.py).

    python benchmarks/end_to_end.py --workload cifar|folder [--epochs 3] [--rounds 2]
        [--images N] [--val-images N] [--batch B] [--workers 2]
        [--frameworks netspec keras torch] [--data-dir DIR] [--json OUT.json] [--write OUT.md]

Workloads, each the same model, data, batch, optimizer (SGD, momentum 0.9, constant learning
rate 0.01, no weight decay), augmentation, epochs and float32 in all three:

- cifar: Inception10 (specs/inception10.yaml, 120,234 parameters) on a CIFAR-10-format folder
  (`cifar-10-batches-py`, synthetic 32x32 images, benchmarks/e2e_data.py); augmentation: pad
  4 zero pixels, random 32x32 crop, horizontal flip; CIFAR's mean and std.
- folder: GoogLeNet with both auxiliary heads (specs/googlenet.yaml, loss weight 0.3 each,
  5 classes: 10,318,655 parameters) on a folder of 500x375 JPEG photos (5 class folders,
  split into train/ and val/); augmentation: random resized crop (area 0.08-1) to 224x224,
  horizontal flip; ImageNet's mean and std.

Each epoch: train one epoch, evaluate on the validation split, save a checkpoint (netspec: its
orbax checkpoint of the whole training state, plus its metrics, TensorBoard and curves files;
Keras: `ModelCheckpoint` to a .keras file with the optimizer state; PyTorch: `torch.save` of
the model's and optimizer's state dicts). netspec runs through its Python API
(`netspec.train.loop.train`, what `netspec train` calls); Keras and PyTorch as in
benchmarks/e2e_keras.py and benchmarks/e2e_torch.py. The data loaders use `--workers`
threads (netspec, Keras) or processes (PyTorch's DataLoader).

Each run, a whole training of `--epochs` epochs, is a fresh worker process (no framework's
threads or caches linger into another's run; netspec's persistent compilation cache is off, so
every run compiles from scratch as Keras' does). Rounds alternate between the frameworks, the
order rotating from round to round. An epoch's seconds are wall time from the end of the
previous epoch's checkpoint to the end of its own (epoch 1: from the start of the run, after
the imports, so it holds reading the data, building the model and compiling); the steady rate
is the median of the later epochs over all rounds; ratios are netspec's median over the
other's (below 1: netspec is faster). Models must have netspec's trainable-parameter count,
or that framework is not run.

Columns: epoch 1 (from the start of the run); later epochs (the median); train images/s (the
training phase of the later epochs: training images over its seconds); data wait and step
(the training phase split into waiting for the next batch and the rest; netspec's from the
`timing` record of its metrics.jsonl, where it writes one); eval; checkpoint (the save); other
(the rest of the epoch: netspec's metrics, TensorBoard and curves files, Keras' callbacks).
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import json
import multiprocessing
import os
import platform
import statistics
import sys
import tempfile
import time
import traceback
from importlib import metadata
from pathlib import Path
from typing import Any

os.environ.setdefault("KERAS_BACKEND", "jax")  # before any worker imports keras
HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))

import e2e_data  # noqa: E402

FRAMEWORKS = ("netspec", "keras", "torch")
WORKLOADS = {
    # workload: (spec, classes, default train images, default batch)
    "cifar": (ROOT / "specs" / "inception10.yaml", 10, 5000, 64),
    "folder": (ROOT / "specs" / "googlenet.yaml", e2e_data.FOLDER_CLASSES, 128, 16),
}
LR, MOMENTUM, AUX_WEIGHT = 0.01, 0.9, 0.3
STEADY_KEYS = (
    "seconds",
    "images_per_sec",
    "data_wait_s",
    "step_s",
    "eval_s",
    "checkpoint_s",
    "other_s",
)


# --- netspec's run (in its worker process) ---------------------------------------------------


def netspec_overrides(job: dict) -> list[str]:
    """`--set` values that make `netspec train` do what the Keras and torch runs do."""
    if job["workload"] == "cifar":
        mean, std = e2e_data.CIFAR_MEAN, e2e_data.CIFAR_STD
        augment = ["training.augment.random_crop=4"]
    else:
        mean, std = e2e_data.IMAGENET_MEAN, e2e_data.IMAGENET_STD
        augment = ["training.augment.random_resized_crop=[0.08, 1.0]"]
    return [
        f"training.epochs={job['epochs']}",
        f"training.batch_size={job['batch']}",
        "training.optimizer.name=sgd",
        f"training.optimizer.momentum={job['momentum']}",
        f"training.learning_rate={job['lr']}",
        "training.schedule=constant",
        "training.weight_decay=0",
        "training.label_smoothing=0",
        "training.dtype=float32",
        f"training.workers={job['workers']}",
        f"training.seed={job['seed']}",
        *augment,
        "training.augment.horizontal_flip=true",
        f"training.normalize.mean=[{', '.join(map(str, mean))}]",
        f"training.normalize.std=[{', '.join(map(str, std))}]",
    ]


TIMING_KEYS = {
    # our key: words that netspec's per-epoch "timing" keys may hold (the first key matching)
    "data_wait_s": ("data", "wait"),
    "step_s": ("step", "train"),
    "eval_s": ("eval", "val"),
    "checkpoint_s": ("checkpoint", "save"),
}


def from_timing(timing: Any, words: tuple[str, ...]) -> float | None:
    """The first number in netspec's `timing` record whose key holds one of `words`."""
    if not isinstance(timing, dict):
        return None
    for word in words:
        for key, value in timing.items():
            if word in key.lower() and isinstance(value, int | float):
                return float(value)
    return None


def run_netspec(job: dict) -> dict[str, Any]:
    """`netspec train` through its Python API; epochs stamped when each checkpoint is saved
    (the last thing an epoch does) and evaluation timed, by wrapping those two methods in
    this process; the rest from the run's metrics.jsonl."""
    imported = time.perf_counter()
    os.environ["NETSPEC_CACHE"] = "off"
    import flax.nnx  # noqa: F401
    import grain  # noqa: F401
    import jax
    import optax  # noqa: F401
    import orbax.checkpoint  # noqa: F401

    import netspec
    from netspec.train import artifacts, checkpoint, loop, pipeline, steps  # noqa: F401

    import_s = time.perf_counter() - imported
    start = time.perf_counter()
    stamps: list[float] = []
    saves: list[float] = []
    evals: list[float] = []
    notes: list[str] = []
    save = checkpoint.Checkpoints.save

    def timed_save(self: Any, *args: Any, **kwargs: Any) -> Any:
        began = time.perf_counter()
        result = save(self, *args, **kwargs)
        stamps.append(time.perf_counter())
        saves.append(stamps[-1] - began)
        return result

    checkpoint.Checkpoints.save = timed_save  # type: ignore[method-assign]
    evaluate = getattr(getattr(loop, "PerImage", None), "evaluate", None)
    if evaluate is not None:

        def timed_evaluate(self: Any, *args: Any, **kwargs: Any) -> Any:
            began = time.perf_counter()
            result = evaluate(self, *args, **kwargs)
            evals.append(time.perf_counter() - began)
            return result

        loop.PerImage.evaluate = timed_evaluate  # type: ignore[method-assign]
    else:
        notes.append("netspec.train.loop.PerImage.evaluate not found: eval time not measured")

    compiled = netspec.compile(job["spec"], num_classes=job["classes"])
    params = compiled.report.params
    if params != job["expected_params"]:
        raise RuntimeError(
            f"netspec has {params:,} parameters, expected {job['expected_params']:,}"
        )
    out = Path(job["out"])
    options = loop.TrainOptions(
        spec=job["spec"],
        out=out,
        data=job["data"],
        overrides=netspec_overrides(job),
        progress=False,
    )
    loop.train(options)
    metrics = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    images = job["train_images"] // job["batch"] * job["batch"]
    records = []
    last_end = start
    for i, metric in enumerate(metrics):
        timing = metric.get("timing")
        end = stamps[i] if i < len(stamps) else None
        record = {
            "epoch": metric["epoch"],
            "seconds": end - last_end if end is not None else metric["seconds"],
            "images": images,
            "images_per_sec": metric.get("images_per_sec"),
            "train_s": images / metric["images_per_sec"] if metric.get("images_per_sec") else None,
            "data_wait_s": from_timing(timing, TIMING_KEYS["data_wait_s"]),
            "step_s": from_timing(timing, TIMING_KEYS["step_s"]),
            "eval_s": evals[i] if i < len(evals) else from_timing(timing, TIMING_KEYS["eval_s"]),
            "checkpoint_s": saves[i] if i < len(saves) else None,
            "train_loss": metric.get("train_loss"),
            "train_acc": metric.get("train_acc"),
            "val_acc": metric.get("val_acc"),
            "netspec_seconds": metric.get("seconds"),
            **({"timing": timing} if timing is not None else {}),
        }
        if end is not None:
            last_end = end
        records.append(record)
    if len(stamps) != len(metrics):
        notes.append(f"{len(stamps)} checkpoint saves for {len(metrics)} epochs")
    if not any("timing" in m for m in metrics):
        notes.append("metrics.jsonl has no per-epoch `timing` breakdown: no data wait / step")
    return {
        "label": f"netspec {metadata.version('netspec')} (jax {jax.__version__})",
        "params": params,
        "epochs": records,
        "import_s": import_s,
        "notes": notes,
    }


# --- worker processes ------------------------------------------------------------------------

RUNNERS = {
    "netspec": ("end_to_end", "run_netspec"),
    "keras": ("e2e_keras", "run"),
    "torch": ("e2e_torch", "run"),
}


def worker(conn: Any, framework: str, job: dict, log: str) -> None:
    """One run in this (fresh, spawned) process; its output goes to `log`."""
    with open(log, "w") as file:
        os.dup2(file.fileno(), 1)
        os.dup2(file.fileno(), 2)
    # A spawned process inherits "spawn" as its start method; the run gets the platform's
    # default, as a script started from a shell does (Linux, Python < 3.14: fork, which
    # PyTorch's DataLoader workers use).
    multiprocessing.set_start_method(None, force=True)
    try:
        module_name, function = RUNNERS[framework]
        began = time.perf_counter()
        module = importlib.import_module(module_name)
        import_s = time.perf_counter() - began
        result = getattr(module, function)(job)
        result.setdefault("import_s", import_s)
        conn.send(result)
    except BaseException as error:  # reported to the parent as "did not work"
        traceback.print_exc()
        sys.stdout.flush()
        conn.send({"error": f"{type(error).__name__}: {error}".splitlines()[0][:300]})


def run_in_worker(framework: str, job: dict, log: Path, timeout: float) -> dict[str, Any]:
    """Run `framework` on `job` in a fresh spawned process; its result, or {"error": why}."""
    context = multiprocessing.get_context("spawn")
    receive, send = context.Pipe(duplex=False)
    process = context.Process(target=worker, args=(send, framework, job, str(log)), daemon=False)
    began = time.perf_counter()
    process.start()
    send.close()
    try:
        if receive.poll(timeout):
            result = receive.recv()
        else:
            process.kill()
            result = {"error": f"no result after {timeout:.0f} s"}
    except EOFError:
        result = {"error": "worker exited without a result"}
    finally:
        process.join(timeout=60)
        if process.is_alive():
            process.kill()
            process.join()
    result["process_s"] = time.perf_counter() - began
    if "error" in result:
        tail = log.read_text(errors="replace").splitlines()[-15:] if log.exists() else []
        result["log_tail"] = tail
    return result


# --- the comparison --------------------------------------------------------------------------


def make_job(args: argparse.Namespace, data: Path, out: Path, expected: int) -> dict:
    spec, classes, _, _ = WORKLOADS[args.workload]
    return {
        "workload": args.workload,
        "spec": str(spec),
        "data": str(data),
        "out": str(out),
        "epochs": args.epochs,
        "batch": args.batch,
        "lr": LR,
        "momentum": MOMENTUM,
        "aux_weight": AUX_WEIGHT,
        "workers": args.workers,
        "seed": args.seed,
        "classes": classes,
        "expected_params": expected,
        "train_images": args.images,
        "val_images": args.val_images,
    }


def write_data(workload: str, root: Path, train: int, val: int, seed: int) -> Path:
    """The data set, written once into `root` (reused when it is there already)."""
    marker = root / f"{workload}_{train}_{val}_{seed}.done"
    folder = root / (e2e_data.CIFAR_FOLDER if workload == "cifar" else "photos")
    if not marker.exists():
        if workload == "cifar":
            e2e_data.write_cifar(root, train, val, seed)
        else:
            e2e_data.write_folder(folder, train, val, seed)
        marker.touch()
    return folder


def median(values: list[Any]) -> float | None:
    numbers = [v for v in values if v is not None]
    return statistics.median(numbers) if numbers else None


def other_seconds(epoch: dict) -> float | None:
    """An epoch's wall time outside its training phase, evaluation and checkpoint (logs,
    metrics files, plots, callbacks)."""
    parts = [epoch.get(key) for key in ("seconds", "train_s", "eval_s", "checkpoint_s")]
    if any(part is None for part in parts):
        return None
    return parts[0] - sum(parts[1:])


def summarise(runs: dict[str, list[dict]]) -> dict[str, dict[str, Any]]:
    """Per framework: the median first epoch, the medians of later epochs' measures over all
    rounds, the final validation accuracy (median over rounds)."""
    summary = {}
    for name, results in runs.items():
        good = [r for r in results if "error" not in r]
        if not good:
            continue
        later = [{**e, "other_s": other_seconds(e)} for r in good for e in r["epochs"][1:]]
        summary[name] = {
            "label": good[0]["label"],
            "params": good[0]["params"],
            "first_s": median([r["epochs"][0]["seconds"] for r in good]),
            "import_s": median([r.get("import_s") for r in good]),
            **{key: median([e.get(key) for e in later]) for key in STEADY_KEYS},
            "val_acc": median([r["epochs"][-1].get("val_acc") for r in good]),
            "epochs_s": [[round(e["seconds"], 2) for e in r["epochs"]] for r in good],
        }
    return summary


def compare(args: argparse.Namespace, frameworks: list[str], data: Path, work: Path) -> dict:
    import netspec

    spec, classes, _, _ = WORKLOADS[args.workload]
    expected = netspec.compile(str(spec), num_classes=classes).report.params
    runs: dict[str, list[dict]] = {name: [] for name in frameworks}
    for round_ in range(args.rounds):
        # Rotate who goes first, so whatever one run leaves behind (a warm page cache, a
        # throttled CPU) falls on each framework alike.
        shift = round_ % len(frameworks)
        for name in frameworks[shift:] + frameworks[:shift]:
            out = work / f"round{round_ + 1}_{name}"
            job = make_job(args, data, out, expected)
            result = run_in_worker(name, job, work / f"round{round_ + 1}_{name}.log", args.timeout)
            runs[name].append(result)
            if "error" in result:
                print(
                    f"round {round_ + 1} {name}: did not work: {result['error']}",
                    file=sys.stderr,
                    flush=True,
                )
                for line in result.get("log_tail", []):
                    print(f"    {line}", file=sys.stderr)
            else:
                seconds = ", ".join(f"{e['seconds']:.1f}" for e in result["epochs"])
                print(f"round {round_ + 1} {name}: epochs {seconds} s", file=sys.stderr, flush=True)
    return {"expected_params": expected, "runs": runs, "summary": summarise(runs)}


def fmt(value: Any, digits: int = 2) -> str:
    if value is None:
        return "–"
    if isinstance(value, float) and abs(value) >= 100:
        return f"{value:,.0f}"
    return f"{value:.{digits}f}"


def ratio(a: float | None, b: float | None) -> str:
    return f"{a / b:.3f}" if a and b else "–"


def report(result: dict, args: argparse.Namespace, frameworks: list[str]) -> str:
    summary = result["summary"]
    head = [
        "framework",
        "params",
        "epoch 1 s (setup + compile)",
        "later epochs s (median)",
        "train images/s",
        "data wait s",
        "step s",
        "eval s",
        "checkpoint s",
        "other s",
        "final val acc",
    ]
    lines = ["| " + " | ".join(head) + " |", "|" + " --- |" * len(head)]
    for name in frameworks:
        s = summary.get(name)
        if s is None:
            lines.append(f"| {name} | did not work |" + " |" * (len(head) - 2))
            continue
        cells = [
            s["label"],
            f"{s['params']:,}",
            fmt(s["first_s"], 1),
            fmt(s["seconds"]),
            fmt(s["images_per_sec"], 1),
            fmt(s["data_wait_s"]),
            fmt(s["step_s"]),
            fmt(s["eval_s"]),
            fmt(s["checkpoint_s"]),
            fmt(s["other_s"]),
            f"{s['val_acc']:.1%}" if s["val_acc"] is not None else "–",
        ]
        lines.append("| " + " | ".join(cells) + " |")
    ours = summary.get("netspec")
    ratios = [
        "",
        "| ratio (seconds: below 1, images/s: above 1, netspec is faster) | epoch 1 s | "
        "later epochs s | train images/s |",
        "| --- | --- | --- | --- |",
    ]
    for name in frameworks:
        if name == "netspec" or ours is None or name not in summary:
            continue
        other = summary[name]
        ratios.append(
            f"| netspec / {name} | {ratio(ours['first_s'], other['first_s'])} | "
            f"{ratio(ours['seconds'], other['seconds'])} | "
            f"{ratio(ours['images_per_sec'], other['images_per_sec'])} |"
        )
    text = "\n".join(lines)
    if len(ratios) > 3:
        text += "\n" + "\n".join(ratios)
    text += "\n\nEpoch seconds per round (in the order run):\n"
    text += "\n".join(
        f"- {name}: " + "; ".join(", ".join(map(str, epochs)) for epochs in s["epochs_s"])
        for name, s in summary.items()
    )
    timings = [
        (i + 1, e["epoch"], e["timing"])
        for i, r in enumerate(result["runs"].get("netspec", []))
        for e in r.get("epochs", [])
        if "timing" in e
    ]
    if timings:
        text += "\n\nnetspec's own per-epoch breakdown (metrics.jsonl `timing`):\n"
        text += "\n".join(f"- round {r}, epoch {e}: {json.dumps(t)}" for r, e, t in timings)
    notes = sorted(
        {n for runs in result["runs"].values() for r in runs for n in r.get("notes", [])}
    )
    notes += [
        f"{name}, round {i + 1}: did not work: {r['error']}"
        for name, runs in result["runs"].items()
        for i, r in enumerate(runs)
        if "error" in r
    ]
    if notes:
        text += "\n\nNotes:\n" + "\n".join(f"- {n}" for n in notes)
    return text


def machine() -> str:
    cpu = platform.processor() or "unknown CPU"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    versions = []
    for name in ("netspec", "jax", "flax", "keras", "torch", "torchvision", "grain"):
        with contextlib.suppress(metadata.PackageNotFoundError):
            versions.append(f"{name} {metadata.version(name)}")
    return (
        f"CPU: {cpu}, {os.cpu_count()} cores; {', '.join(versions)}, "
        f"python {platform.python_version()}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workload", choices=list(WORKLOADS), default="cifar")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--images", type=int, help="training images (cifar 5000, folder 128)")
    parser.add_argument("--val-images", type=int, help="validation images (default images/4)")
    parser.add_argument("--batch", type=int, help="batch size (cifar 64, folder 16)")
    parser.add_argument("--workers", type=int, default=2, help="data loader threads/processes")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--frameworks", nargs="+", default=list(FRAMEWORKS), choices=FRAMEWORKS)
    parser.add_argument("--data-dir", type=Path, help="write (or reuse) the data set here")
    parser.add_argument("--keep", type=Path, help="keep the runs' folders and logs here")
    parser.add_argument("--timeout", type=float, default=3600, help="seconds per run")
    parser.add_argument("--json", type=Path, help="write the raw results here")
    parser.add_argument("--write", type=Path, help="write the Markdown report here")
    args = parser.parse_args()
    _, _, default_images, default_batch = WORKLOADS[args.workload]
    args.images = args.images or default_images
    args.val_images = args.val_images or max(1, args.images // 4)
    args.batch = args.batch or default_batch
    if args.epochs < 1 or args.rounds < 1 or args.images < args.batch:
        parser.error("need epochs >= 1, rounds >= 1 and at least one batch of images")
    frameworks = list(dict.fromkeys(args.frameworks))

    with contextlib.ExitStack() as stack:
        scratch = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="e2e_")))
        data_root = args.data_dir or scratch / "data"
        work = args.keep or scratch / "runs"
        work.mkdir(parents=True, exist_ok=True)
        began = time.perf_counter()
        data = write_data(args.workload, data_root, args.images, args.val_images, args.seed)
        print(f"data: {data} ({time.perf_counter() - began:.1f} s)", file=sys.stderr, flush=True)
        result = compare(args, frameworks, data, work)

    spec, classes, _, _ = WORKLOADS[args.workload]
    command = "python benchmarks/end_to_end.py " + " ".join(sys.argv[1:])
    what = (
        f"{args.workload}: {spec.stem}, {classes} classes, {args.images:,} train / "
        f"{args.val_images:,} val images, batch {args.batch}, {args.epochs} epochs, "
        f"{args.rounds} rounds, {args.workers} data workers"
    )
    text = (
        f"Machine: {machine()}\n\n```bash\n{command}\n```\n\n{what}\n\n"
        f"{report(result, args, frameworks)}\n"
    )
    print(text)
    if args.write:
        args.write.write_text(text)
    if args.json:
        payload = {"machine": machine(), "command": command, "args": vars(args), **result}
        args.json.write_text(json.dumps(payload, indent=1, default=str))


if __name__ == "__main__":
    main()
