"""The `netspec` command: argument parsing and printing only; the work happens in the library."""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NoReturn

from .errors import SpecError

EXIT_SPEC_ERROR = 2
EXIT_INTERRUPTED = 130
"""As `train.loop.EXIT_INTERRUPTED` (128 + SIGINT)."""


def add_set_option(parser: argparse.ArgumentParser, text: str) -> None:
    """`--set NAME=VALUE`, repeatable, collected in `args.overrides`."""
    parser.add_argument(
        "--set", dest="overrides", action="append", default=[], metavar="NAME=VALUE", help=text
    )


def batch_size_argument(text: str) -> int | str:
    """`--batch-size`: a whole number, or auto."""
    if text == "auto":
        return text
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number or auto, got {text!r}") from None


def version_line() -> str:
    """`netspec 0.1.0 (jax 0.8.1, flax 0.12.0, Python 3.11.7)`: versions read from the
    installed packages' metadata, so JAX is not imported."""
    import platform
    from importlib.metadata import PackageNotFoundError, version

    from . import __version__

    parts = []
    for package in ("jax", "flax", "optax", "pydantic"):
        try:
            parts.append(f"{package} {version(package)}")
        except PackageNotFoundError:
            parts.append(f"{package} not installed")
    return f"netspec {__version__} ({', '.join(parts)}, Python {platform.python_version()})"


class PrintVersion(argparse.Action):
    """`--version` on one line (argparse's own action wraps it at the terminal width)."""

    def __call__(self, parser: argparse.ArgumentParser, *args: object, **kwargs: object) -> None:
        print(version_line())
        parser.exit()


def build_parser() -> argparse.ArgumentParser:
    from .compiled import DTYPES
    from .remat import REMAT_MODES

    parser = argparse.ArgumentParser(
        prog="netspec",
        description="Declarative network specs: YAML layer tables -> checked, costed Flax models.",
    )
    parser.add_argument("--debug", action="store_true", help="show Python tracebacks on errors")
    parser.add_argument(
        "--version", action=PrintVersion, nargs=0, help="print the versions and exit"
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    compile_ = commands.add_parser("compile", help="check a spec and print its layer table")
    compile_.add_argument("spec", help="a spec file, or the name of a zoo spec (netspec list)")
    add_set_option(
        compile_, "override a spec variable, or a training option as training.NAME (repeatable)"
    )
    compile_.add_argument("--json", action="store_true", help="print the report as JSON")
    compile_.add_argument(
        "--wide",
        action="store_true",
        help="one column per field however wide the terminal (narrow terminals get a compact "
        "layout; piped output is always wide)",
    )
    compile_.add_argument(
        "--no-check",
        action="store_true",
        help="skip building the Flax module abstractly to cross-check shapes and counts "
        "(analysis only: no JAX import)",
    )
    compile_.add_argument("--emit", choices=["flax"], help="write the model as Flax NNX source")
    compile_.add_argument(
        "-o", "--output", metavar="FILE", help="where --emit writes (default: standard output)"
    )
    compile_.add_argument("--dtype", choices=DTYPES, help="compute dtype (overrides the spec's)")
    compile_.add_argument(
        "--param-dtype", choices=DTYPES, help="parameter dtype (overrides the spec's)"
    )

    train = commands.add_parser(
        "train",
        help="train a spec on a data set",
        description="Train a spec. Without --out each run gets a new folder: runs/NAME, then "
        "runs/NAME_2, runs/NAME_3, ... (NAME: the spec's name). `netspec train --resume RUN` "
        "continues a run with its own spec, variables, training options and data (--epochs "
        "N trains it further).",
    )
    train.add_argument(
        "spec",
        nargs="?",
        help="a spec file or zoo name; with --resume, optional: a run directory, or left out "
        "with --out RUN (the run's own spec)",
    )
    train.add_argument(
        "--data",
        help="image folder, CIFAR-10 batches folder, MNIST IDX folder, "
        ".npz file, or 'digits' (the default: scikit-learn's 8x8 digits); for a per-pixel "
        "network (output HxWxK), a folder with images/ and masks/ or 'shapes' (the default)",
    )
    train.add_argument(
        "--out",
        metavar="RUN",
        help="the run directory (default: a new one, runs/NAME, runs/NAME_2, ...); an existing "
        "run there is refused unless --resume or --overwrite",
    )
    add_set_option(train, "a spec variable, or training.FIELD=VALUE")
    train.add_argument(
        "--training",
        dest="training_file",
        metavar="FILE",
        help="a YAML file of training options (over the spec's `training:`)",
    )
    train.add_argument("--epochs", type=int, help="shorthand for --set training.epochs=N")
    train.add_argument(
        "--batch-size",
        type=batch_size_argument,
        metavar="N",
        help="shorthand for --set training.batch_size=N (or auto: the largest that fits)",
    )
    train.add_argument(
        "--resume",
        action="store_true",
        help="continue a run: `--resume RUN` (its own spec and options), or SPEC --out RUN "
        "(the network must be the run's)",
    )
    train.add_argument(
        "--overwrite",
        action="store_true",
        help="replace an earlier run in --out (otherwise it is refused)",
    )
    train.add_argument(
        "--skip-bad-images",
        action="store_true",
        help="skip unreadable images (each named, and listed in config.json) instead of stopping",
    )
    train.add_argument(
        "--init-from",
        metavar="SOURCE",
        help="start from these weights: a PyTorch state_dict (.pth/.pt), .safetensors, a Keras "
        ".weights.h5/.keras, a Caffe-converted .npy dict, or another run directory",
    )
    train.add_argument(
        "--init-by",
        choices=("auto", "name", "order"),
        default="auto",
        help="pair the source's layers by name (a zoo spec's name map, or netspec's own names), "
        "by execution order and shape, or auto: by name where known (default)",
    )
    train.add_argument(
        "--dry-run",
        action="store_true",
        help="with --init-from: print which source layer fills each layer, then stop",
    )
    train.add_argument("--workers", type=int, help="background data workers")
    train.add_argument("--max-steps", type=int, help=argparse.SUPPRESS)
    train.add_argument("--no-progress", action="store_true", help="no progress bar")
    train.add_argument("--coordinator", metavar="HOST:PORT", help="multi-process: coordinator")
    train.add_argument("--num-processes", type=int, help="multi-process: number of processes")
    train.add_argument("--process-id", type=int, help="multi-process: this process's index")

    evaluate = commands.add_parser("eval", help="evaluate a trained run")
    evaluate.add_argument("run", help="a run directory written by `netspec train`")
    evaluate.add_argument(
        "--data",
        help="data to evaluate on, every image of the part it holds out: an image folder's val/ "
        "(else all its images), CIFAR-10's test_batch, MNIST's t10k files, a .npz file's "
        "x_test/y_test (else all); default: the run's validation split",
    )
    evaluate.add_argument(
        "--out",
        metavar="DIR",
        help="where metrics.json and confusion_matrix.png go "
        "(default: RUN/eval/<name of the data>, RUN/eval/val without --data)",
    )
    evaluate.add_argument(
        "--skip-bad-images",
        action="store_true",
        help="skip unreadable images (listed) instead of stopping",
    )
    evaluate.add_argument("--json", action="store_true", help="print the result as JSON")

    predict = commands.add_parser(
        "predict", help="classify images with a trained run (per-pixel runs: write mask PNGs)"
    )
    predict.add_argument("run", help="a run directory written by `netspec train`")
    predict.add_argument(
        "images",
        nargs="+",
        help="image files, folders of images (searched recursively) or quoted glob patterns "
        "such as 'photos/**/*.jpg'",
    )
    predict.add_argument(
        "--top-k", type=int, default=5, help="how many classes to show (default 5, at most all)"
    )
    predict.add_argument(
        "--out",
        metavar="DIR",
        help="per-pixel runs: where the mask PNGs go (default: RUN/predictions)",
    )
    predict.add_argument("--json", action="store_true", help="print the result as JSON")

    bench = commands.add_parser("bench", help="time the compiled train step on synthetic data")
    bench.add_argument("spec", help="a spec file or zoo name")
    bench.add_argument("--batch", type=int, default=32, help="batch size (default 32)")
    bench.add_argument("--steps", type=int, default=20, help="timed steps (default 20)")
    bench.add_argument("--dtype", choices=DTYPES, default="float32", help="compute dtype")
    bench.add_argument(
        "--remat",
        choices=REMAT_MODES,
        help="recompute activations in the backward pass (as training.remat): blocks (each "
        "block row) or rows (every row)",
    )
    add_set_option(bench, "override a spec variable")
    bench.add_argument("--json", action="store_true", help="print the result as JSON")
    bench.add_argument(
        "--memory-only",
        action="store_true",
        help="compile the train step without running it and print its memory (XLA's analysis)",
    )
    bench.add_argument(
        "--batches",
        metavar="B1,B2,...",
        help="with --memory-only: the batch sizes to compile at (default: --batch)",
    )

    export = commands.add_parser(
        "export", help="write a trained run or a spec as ONNX, StableHLO or Flax with weights"
    )
    export.add_argument(
        "source", metavar="RUN_OR_SPEC", help="a run directory, a spec file or a zoo name"
    )
    export.add_argument(
        "--format", required=True, choices=["onnx", "stablehlo", "flax"], help="what to write"
    )
    export.add_argument(
        "-o",
        "--output",
        metavar="PATH",
        help="the model file (a folder for flax; default RUN/export/<name>.onnx, .stablehlo or "
        "<name>_flax/, or ./<name>... for a spec); the metadata goes beside it",
    )
    add_set_option(export, "a spec variable, or training.normalize... (specs only)")
    export.add_argument("--overwrite", action="store_true", help="replace an earlier export")

    import_ = commands.add_parser(
        "import", help="write a Caffe prototxt, Keras config or ONNX model as a spec"
    )
    import_.add_argument("model", help="a .prototxt, a Keras .json or .keras, or an .onnx file")
    import_.add_argument("-o", "--output", metavar="SPEC", help="write the spec here (else stdout)")
    import_.add_argument("--name", help="the spec's name (default: the model's)")
    import_.add_argument(
        "--weights", metavar="FILE", help="a weights file to check against every layer (e.g. .npy)"
    )
    import_.add_argument("--overwrite", action="store_true", help="replace an existing SPEC")

    draw = commands.add_parser(
        "draw", help="draw the network as a diagram (SVG, PNG or PDF), one box per row"
    )
    draw.add_argument("spec", help="a spec file or zoo name")
    draw.add_argument(
        "-o", "--output", required=True, metavar="FILE", help="net.svg, net.png or net.pdf"
    )
    draw.add_argument(
        "--expand",
        action="append",
        default=[],
        metavar="NAME",
        help="draw these rows layer by layer: a row name, a block name, ROW[i] (one copy of "
        "a repeated row) or 'all' (repeatable)",
    )
    add_set_option(draw, "override a spec variable (repeatable)")

    commands.add_parser("list", help="list the zoo specs with their totals")
    schema = commands.add_parser(
        "schema",
        help="print the JSON Schema of the spec format, for editors (see docs/editor.md)",
    )
    schema.add_argument(
        "spec",
        nargs="?",
        help="specialise it to this spec: its blocks' names and arguments are checked too",
    )
    schema.add_argument("-o", "--output", metavar="FILE", help="write it here (else stdout)")
    commands.add_parser(
        "lsp", help="run the language server for spec files on stdio (see docs/lsp.md)"
    )
    return parser


def run_compile(args: argparse.Namespace) -> int:
    from .compiled import compile_with
    from .train.config import load_training_config, split_overrides

    variables, training = split_overrides(args.overrides)
    compiled = compile_with(args.spec, variables, args.dtype, args.param_dtype)
    section = compiled.data.get("training") or {}
    fine_tuning = training or "freeze" in section or "backbone_lr_scale" in section
    # (reading the training section validates its optimizer through optax, which imports JAX)
    config = load_training_config(compiled.data, None, training) if fine_tuning else None
    for warning in compiled.report.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    check, cached = None, False
    if not args.no_check:
        from .check import cached_check

        check, cached = cached_check(compiled)
    if args.emit:
        source = compiled.source(standalone=True)
        if args.output:
            write_atomically(Path(args.output), source)
            print(f"wrote {args.output} ({len(source.splitlines())} lines)", file=sys.stderr)
        else:
            sys.stdout.write(source)
        return 0
    if args.json:
        print(json.dumps(compiled.summary, indent=1))
        return 0
    from .table import print_report

    print_report(compiled.report, wide=args.wide)
    if config is not None:  # (finetune imports JAX: only when the spec fine-tunes)
        from .train.finetune import describe_spec_groups

        groups = describe_spec_groups(compiled, config)
        if groups is not None:
            print(groups)
    if check is not None:
        print(
            f"checked against the Flax module{' (cached)' if cached else ''}: "
            f"{check.layers} layers, {check.params:,} parameters, {check.state:,} statistics "
            "agree with the analysis"
        )
    return 0


def write_atomically(path: Path, text: str) -> None:
    """Write via a temporary file in the same folder, so a failure never leaves half a file."""
    from .fileio import atomic_write_text

    try:
        atomic_write_text(path, text)
    except OSError as error:
        raise SpecError(f"cannot write it: {error.strerror}", path=str(path)) from None


def run_list(args: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.table import Table

    from .layers import format_shape
    from .specfile import analyze_spec, zoo_dir, zoo_names
    from .table import human

    table = Table(title=f"zoo ({zoo_dir()})", title_justify="left")
    for heading in ("spec", "input", "params", "MACs", "rows"):
        table.add_column(heading, justify="left" if heading == "spec" else "right")
    for name in zoo_names():
        report = analyze_spec(zoo_dir() / f"{name}.yaml")
        table.add_row(
            name,
            format_shape(report.input_shape),
            f"{report.params:,}",
            human(report.macs),
            str(len(report.rows)),
        )
    Console().print(table)
    return 0


def run_schema(args: argparse.Namespace) -> int:
    from .schema import json_schema, spec_blocks

    blocks = None
    if args.spec is not None:
        from .load import load_file
        from .specfile import find_spec

        blocks = spec_blocks(load_file(find_spec(args.spec)))
    text = json.dumps(json_schema(blocks), indent=1)
    if args.output is None:
        print(text)
    else:
        from .fileio import atomic_write_text

        atomic_write_text(Path(args.output), text + "\n")
    return 0


def run_lsp(args: argparse.Namespace) -> int:
    from .lsp import main as serve

    return serve()


def run_train(args: argparse.Namespace) -> int:
    from .train.loop import Stop, TrainOptions, train

    spec, out, run_config = train_target(args)
    if args.overwrite and out is None:
        raise SpecError(
            "--overwrite replaces the run in --out: give --out",
            hint="without --out each run gets a new folder (runs/NAME, runs/NAME_2, ...)",
        )
    if args.coordinator or args.num_processes or args.process_id is not None:
        if not (args.coordinator and args.num_processes and args.process_id is not None):
            raise SpecError(
                "multi-process training needs --coordinator, --num-processes "
                "and --process-id together"
            )
        if out is None:
            raise SpecError("the processes of one run share its directory: give --out")
        from .train.distributed import initialize

        initialize(args.coordinator, args.num_processes, args.process_id)
    overrides = list(args.overrides)
    if args.epochs is not None:
        overrides.append(f"training.epochs={args.epochs}")
    if args.batch_size is not None:
        overrides.append(f"training.batch_size={args.batch_size}")
    options = TrainOptions(
        spec=spec,
        out=out,
        data=args.data,
        overrides=overrides,
        training_file=args.training_file,
        resume=args.resume,
        overwrite=args.overwrite,
        skip_bad_images=args.skip_bad_images,
        workers=args.workers,
        progress=not args.no_progress,
        max_steps=args.max_steps,
        init_from=args.init_from,
        init_by=args.init_by,
        run_config=run_config,
    )
    if args.dry_run:
        from .train.loop import weight_plan
        from .weights.table import print_plan

        print_plan(weight_plan(options))
        return 0
    try:
        record = train(options)
    except Stop as stop:
        print(f"{'' if stop.code == EXIT_INTERRUPTED else 'error: '}{stop}", file=sys.stderr)
        return stop.code
    except KeyboardInterrupt:  # a second Ctrl-C, or one before training started
        stopped_at_once(options.out)
    if record and "val_miou" in record:
        print(
            f"done: val pixel accuracy {record['val_acc']:.2%}, mIoU {record['val_miou']:.2%} "
            f"after {epochs(record['epoch'])}; run directory {options.out}"
        )
    elif record:
        print(
            f"done: val_acc {record['val_acc']:.2%} after {epochs(record['epoch'])}; "
            f"run directory {options.out}"
        )
    return 0


def epochs(count: int) -> str:
    return f"{count} epoch{'' if count == 1 else 's'}"


def train_target(args: argparse.Namespace) -> tuple[str, Path | None, dict | None]:
    """What `netspec train` trains, and where: (the spec, the run directory or None for a new
    numbered one, and with `--resume RUN` and no spec the run's config.json, whose spec,
    variables, options and data it continues with)."""
    from .train.rundiff import run_config

    spec, out = args.spec, (Path(args.out) if args.out else None)
    if spec is not None and Path(spec).is_dir():
        if not args.resume:
            raise SpecError(
                "is a folder, not a spec",
                path=spec,
                hint=f"to continue a run: netspec train --resume {spec}",
            )
        if out is not None and out.resolve() != Path(spec).resolve():
            raise SpecError(
                f"--resume {spec} and --out {args.out} name two runs", hint="give one of them"
            )
        spec, out = None, Path(spec)
    elif spec is not None and args.resume and out is None and not Path(spec).exists():
        from .specfile import zoo_names

        if spec not in zoo_names():
            raise SpecError(
                "no such run directory",
                path=spec,
                hint="netspec train --resume RUN, RUN a folder that netspec train wrote",
            )
    if spec is None:
        if not args.resume:
            raise SpecError(
                "give a spec to train (a file or a zoo name)",
                hint="or continue a run with its own spec: netspec train --resume RUN",
            )
        if out is None:
            raise SpecError(
                "--resume continues a run: say which one", hint="netspec train --resume RUN"
            )
        config = run_config(out)
        if not (out / "spec.yaml").is_file():
            raise SpecError(
                "holds no spec.yaml to resume with",
                path=str(out),
                hint=f"give the spec it was trained with: netspec train SPEC --out {out} --resume",
            )
        return str(out / "spec.yaml"), out, config
    return spec, out, None


def stopped_at_once(out: Path | None) -> NoReturn:
    """A second Ctrl-C (or one before training started): say what is kept and end the process
    now. `os._exit`, because an interrupted XLA compilation or a running step would otherwise
    hold up (or crash) the interpreter's exit; the loop has already closed the progress bar,
    TensorBoard and the checkpoints."""
    import os

    root = out / "checkpoints" if out is not None else None
    saved = root is not None and any(
        path.is_dir() and path.name.isdigit()
        for folder in (root, root / "latest")
        if folder.is_dir()
        for path in folder.iterdir()
    )
    if saved:
        text = (
            "stopped at once; the checkpoints saved before are kept. "
            f"Resume with: netspec train --resume {out}"
        )
    elif out is not None and out.is_dir():
        text = f"stopped at once, before the first checkpoint: nothing to resume in {out}"
    else:
        text = "stopped at once, before anything was written"
    print(text, file=sys.stderr)
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(EXIT_INTERRUPTED)


PER_CLASS_ROWS = 20
"""More classes than this: the text output shows the `PER_CLASS_WORST` least accurate."""
PER_CLASS_WORST = 10


def run_eval(args: argparse.Namespace) -> int:
    from .train.use import evaluate_run

    out = Path(args.out) if args.out else None
    result = evaluate_run(Path(args.run), args.data, out, skip_bad_images=args.skip_bad_images)
    if args.json:
        print(json.dumps(result, indent=1))
        return 0
    if "miou" in result:
        print_segmentation_result(result)
        return 0
    top5 = f", top-5 {result['top5']:.2%}" if "top5" in result else ""
    print(f"{result['data']}: loss {result['loss']:.4f}, top-1 {result['top1']:.2%}{top5}")
    print_per_class(result["per_class"])
    for skipped in result["skipped"]:
        print(f"skipped unreadable {skipped}", file=sys.stderr)
    print(f"wrote {result['metrics']} and {Path(result['confusion_matrix']).name}")
    return 0


def print_per_class(rows: list[dict]) -> None:
    """A table of class, images, correct, accuracy; with many classes only the worst ones."""
    if len(rows) > PER_CLASS_ROWS:
        rated = [row for row in rows if row["accuracy"] is not None]
        rows = sorted(rated, key=lambda row: row["accuracy"])[:PER_CLASS_WORST]
        print(f"the {len(rows)} least accurate classes (--json lists all):")
    width = max([len("class"), *(len(row["class"]) for row in rows)])
    print(f"  {'class':<{width}}  {'images':>7}  {'correct':>7}  {'accuracy':>8}")
    for row in rows:
        accuracy = "-" if row["accuracy"] is None else f"{row['accuracy']:.2%}"
        print(
            f"  {row['class']:<{width}}  {row['images']:>7,}  {row['correct']:>7,}  {accuracy:>8}"
        )


def print_segmentation_result(result: dict) -> None:
    """A per-pixel run's eval: pixel accuracy, mIoU, then each class's IoU."""
    print(
        f"{result['data']}: loss {result['loss']:.4f}, pixel accuracy "
        f"{result['pixel_accuracy']:.2%}, mIoU {result['miou']:.2%} "
        f"({result['pixels']:,} pixels)"
    )
    rows = result["per_class"]
    width = max([len("class"), *(len(row["class"]) for row in rows)])
    print(f"  {'class':<{width}}  {'pixels':>10}  {'predicted':>10}  {'IoU':>7}")
    for row in rows:
        iou = "-" if row["iou"] is None else f"{row['iou']:.2%}"
        print(f"  {row['class']:<{width}}  {row['pixels']:>10,}  {row['predicted']:>10,}  {iou:>7}")
    for skipped in result["skipped"]:
        print(f"skipped unreadable {skipped}", file=sys.stderr)
    print(f"wrote {result['metrics']} and {Path(result['confusion_matrix']).name}")


def run_predict(args: argparse.Namespace) -> int:
    from .train.use import predict

    out = Path(args.out) if args.out else None
    results = predict(Path(args.run), args.images, args.top_k, out)
    if args.json:
        print(json.dumps(results, indent=1))
        return EXIT_SPEC_ERROR if any("error" in result for result in results) else 0
    unreadable = [result for result in results if "error" in result]
    for result in results:
        if "error" in result:
            continue
        if "mask" in result:
            shares = ", ".join(f"{name} {share:.1%}" for name, share in result["classes"].items())
            print(f"{result['image']}: {result['mask']} ({shares})")
            continue
        ranked = ", ".join(f"{t['class']} {t['probability']:.1%}" for t in result["top"])
        print(f"{result['image']}: {ranked}")
    for result in unreadable:
        print(f"error: {result['image']}: {result['error']}", file=sys.stderr)
    if unreadable:
        print(
            f"{len(unreadable)} of {len(results)} images could not be read; "
            f"the other {len(results) - len(unreadable)} were classified",
            file=sys.stderr,
        )
        return EXIT_SPEC_ERROR
    return 0


def run_bench(args: argparse.Namespace) -> int:
    from .bench import bench
    from .compiled import compile_with

    if args.batch < 1 or args.steps < 1:
        raise SpecError("--batch and --steps must be at least 1")
    if args.batches is not None and not args.memory_only:
        raise SpecError("--batches goes with --memory-only", hint="add --memory-only")
    compiled = compile_with(args.spec, args.overrides)
    if args.remat:
        compiled = dataclasses.replace(compiled, remat=args.remat)
    if args.memory_only:
        return bench_memory(compiled, args)
    result = bench(compiled, args.batch, args.steps, dtype=args.dtype)
    if args.json:
        print(json.dumps(result.to_json(), indent=1))
        return 0
    mfu = f", MFU {result.mfu:.1%}" if result.mfu is not None else ""
    remat = f", remat {args.remat}" if args.remat else ""
    print(
        f"{result.spec} on {result.device}, batch {result.batch}, {result.dtype}{remat}: "
        f"train {result.ms_per_step:.1f} ms/step ({result.images_per_sec:,.0f} images/s"
        f"{mfu}); inference {result.inference_ms:.1f} ms ({result.inference_images_per_sec:,.0f}"
        f" images/s); compile {result.compile_s:.1f} s"
    )
    if result.memory is not None:
        memory = result.memory
        of_device = (
            f" of {result.device_memory_bytes / 1e6:,.0f} MB on the device"
            if result.device_memory_bytes
            else ""
        )
        print(
            f"train step memory (XLA's analysis): peak {memory['peak_bytes'] / 1e6:,.1f} MB"
            f"{of_device}; parameters and optimizer state {memory['state_bytes'] / 1e6:,.1f} MB,"
            f" activations and temporaries {memory['temp_bytes'] / 1e6:,.1f} MB"
        )
    return 0


def parse_batches(text: str) -> list[int]:
    try:
        batches = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        batches = []
    if not batches or min(batches) < 1:
        raise SpecError(
            f"--batches {text!r}: give batch sizes of at least 1, comma-separated",
            hint="e.g. --batches 8,32,128",
        )
    return batches


def bench_memory(compiled: Any, args: argparse.Namespace) -> int:
    """`netspec bench --memory-only`: the train step's memory per batch size, compiled only."""
    from .bench import describe_device, memory_table
    from .memory import device_memory

    batches = parse_batches(args.batches) if args.batches else [args.batch]
    table = memory_table(compiled, batches, args.dtype)
    limit = device_memory()
    if args.json:
        print(
            json.dumps(
                {
                    "spec": compiled.name,
                    "device": describe_device(),
                    "dtype": args.dtype,
                    "remat": compiled.remat,
                    "device_memory_bytes": limit,
                    "batches": [
                        {"batch": batch, **(memory.to_json() if memory else {"peak_bytes": None})}
                        for batch, memory in table
                    ],
                },
                indent=1,
            )
        )
        return 0
    device = f"{limit / 1e6:,.0f} MB" if limit else "no memory limit reported"
    remat = f", remat {compiled.remat}" if compiled.remat else ""
    print(
        f"{compiled.name} train step on {describe_device()} ({device}), {args.dtype}{remat}, "
        "XLA's memory analysis (compiled, not run):"
    )
    print(f"{'batch':>7} {'peak MB':>10} {'arguments MB':>13} {'temporaries MB':>15}")
    for batch, memory in table:
        if memory is None:
            print(f"{batch:>7} {'out of memory':>10}")
            continue
        print(
            f"{batch:>7} {memory.peak_bytes / 1e6:>10,.1f} {memory.argument_bytes / 1e6:>13,.1f}"
            f" {memory.temp_bytes / 1e6:>15,.1f}"
        )
    return 0


def run_export(args: argparse.Namespace) -> int:
    from .export import export_model

    out = Path(args.output) if args.output else None
    result = export_model(
        args.source, args.format, out, overrides=args.overrides, overwrite=args.overwrite
    )
    for line in result.lines():
        print(line)
    return 0


def run_import(args: argparse.Namespace) -> int:
    from .importers import import_model, write_imported

    out = Path(args.output) if args.output else None
    if out is not None and out.exists() and not args.overwrite:  # before the work
        raise SpecError("exists already", path=str(out), hint="pass --overwrite to replace it")
    spec = import_model(args.model, args.name, args.weights)
    if out is None:
        sys.stdout.write(spec.text)
    else:
        write_imported(spec, out, overwrite=True)
        print(f"wrote {out} ({len(spec.text.splitlines())} lines)", file=sys.stderr)
    report = spec.compiled.report
    blocks = ", ".join(f"{name} x{count}" for name, count in spec.blocks.items())
    print(
        f"{spec.graph.format}: {len(spec.graph.nodes)} layers -> {len(report.rows)} rows"
        + (f" (blocks: {blocks})" if blocks else ""),
        file=sys.stderr,
    )
    for line in spec.checks:
        print(f"checked: {line}", file=sys.stderr)
    return 0


def run_draw(args: argparse.Namespace) -> int:
    from .diagram import draw

    path = draw(args.spec, args.output, expand=args.expand, overrides=args.overrides)
    print(f"wrote {path}", file=sys.stderr)
    return 0


COMMANDS = {
    "draw": run_draw,
    "import": run_import,
    "bench": run_bench,
    "export": run_export,
    "compile": run_compile,
    "train": run_train,
    "eval": run_eval,
    "predict": run_predict,
    "list": run_list,
    "schema": run_schema,
    "lsp": run_lsp,
}


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command in ("train", "eval", "predict", "bench", "export"):
        from .jaxcache import enable_compilation_cache

        enable_compilation_cache()
    try:
        return COMMANDS[args.command](args)
    except SpecError as error:
        if args.debug:
            raise
        print(f"error: {error}", file=sys.stderr)
        return EXIT_SPEC_ERROR
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        return 0


if __name__ == "__main__":
    sys.exit(main())
