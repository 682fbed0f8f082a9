"""`netspec train`: preparing a run, the training loop, resume and fault handling."""

from __future__ import annotations

import dataclasses
import signal
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import SpecError
from .console import Announced, Progress, notice, say, say_skipped, summary_line
from .rundir import check_run_dir, claim_run_dir, read_spec_data, run_name
from .samples import save_samples

if TYPE_CHECKING:
    from ..compiled import Compiled
    from .config import TrainingConfig
    from .datasets import Dataset
    from .distributed import Parallel
    from .finetune import Initialisation
    from .masks import MaskDataset
    from .pipeline import Pipeline
    from .segmentation import PerPixel
    from .steps import Steps

EXIT_INTERRUPTED = 130
EXIT_NOT_FINITE = 3


@dataclass
class TrainOptions:
    """What the command line asked for."""

    spec: str
    out: Path | None
    """The run directory; None: a new numbered one, `runs/<spec name>[_N]` (`claim_run_dir`)."""
    data: str | None = None
    overrides: list[str] = field(default_factory=list)
    training_file: str | None = None
    resume: bool = False
    overwrite: bool = False
    """Delete an earlier run in `out` first (an explicit request: nothing is removed otherwise)."""
    skip_bad_images: bool = False
    workers: int | None = None
    progress: bool = True
    max_steps: int | None = None
    """Stop after this many optimizer steps in this invocation (tests, smoke runs)."""
    init_from: str | None = None
    """Weights to start from (`weights.read_source`): a file or another run."""
    init_by: str = "auto"
    """How to pair them: auto, name or order (`weights.plan_weights`)."""
    run_config: dict[str, Any] | None = None
    """`--resume RUN` without a spec: the run's config.json, whose variables, training
    options and data are the defaults (`spec` is then the run's own spec.yaml)."""


class Stop(Exception):
    """Training ended early; `code` is the process exit status, `message` says why."""

    def __init__(self, message: str, code: int) -> None:
        super().__init__(message)
        self.code = code


class SignalFlag:
    """SIGINT/SIGTERM set a flag, said at once; the loop checkpoints after the step running
    and stops. A second one raises KeyboardInterrupt where the loop is (the command line then
    exits at once, the checkpoints saved before kept)."""

    def __init__(self) -> None:
        self.signal: int | None = None
        self.previous: dict[int, Any] = {}

    def __enter__(self) -> SignalFlag:
        for number in (signal.SIGINT, signal.SIGTERM):
            self.previous[number] = signal.signal(number, self.handle)
        return self

    def handle(self, number: int, frame: Any) -> None:
        if self.signal is not None:  # a second Ctrl-C: stop now
            raise KeyboardInterrupt
        self.signal = number
        again = "Ctrl-C" if number == signal.SIGINT else signal.Signals(number).name
        notice(f"stopping after this step ({again} again to stop now; the last checkpoint is kept)")

    def __exit__(self, *exc: object) -> None:
        for number, handler in self.previous.items():
            signal.signal(number, handler)


@dataclass(frozen=True)
class PerImage:
    """One label per image (a classifier): what `fit` asks its task for. The per-pixel
    counterpart is `segmentation.PerPixel`."""

    classes: int

    best_key = "val_acc"
    """The validation metric that picks the best checkpoint."""
    per_pixel = False

    def pipeline(self, split: Any, image_shape: Any, batch_size: int, **options: Any) -> Pipeline:
        from .pipeline import Pipeline

        return Pipeline(split, image_shape, batch_size, **options)

    def steps(self, graphdef: Any, tx: Any, loss_weights: Any, smoothing: float) -> Steps:
        from .steps import make_steps

        return make_steps(graphdef, tx, loss_weights, smoothing)

    def zero_sums(self) -> dict[str, Any]:
        from .steps import zero_sums

        return zero_sums()

    def evaluate(self, steps: Any, params: Any, rest: Any, data: Any, parallel: Any) -> dict:
        return evaluate(steps, params, rest, data, parallel)

    def record(self, sums: dict[str, Any], val: dict[str, Any]) -> dict[str, float]:
        """The metric part of an epoch's record."""
        count = max(float(sums["count"]), 1)
        return {
            "train_loss": float(sums["loss"]) / count,
            "train_acc": float(sums["correct"]) / count,
            "val_loss": val["loss"],
            "val_acc": val["acc"],
            **({"val_top5": val["top5"]} if self.classes > 5 else {}),  # else always 100%
        }

    def images_seen(self, sums: dict[str, Any]) -> float:
        return float(sums["count"])

    def summary_line(self, record: dict[str, Any], epochs: int) -> str:
        return summary_line(record, epochs)

    def save_samples(self, split: Any, class_names: list[str], folder: Path) -> None:
        save_samples(split, class_names, folder)


@dataclass
class PreparedRun:
    """A run ready to `fit`: its options, the spec compiled once (the data's class count and
    the training config's dtype applied), the training config, and the data ready for the
    network's input."""

    options: TrainOptions
    compiled: Compiled
    config: TrainingConfig
    variables: dict[str, Any]
    """The spec variables it was compiled with (`--set` values, then the class count)."""
    dataset: Dataset | MaskDataset
    """The data at the network's input size."""
    source: str | None
    """The data source as given (`--data`, else the training config's `data`)."""
    parallel: Parallel
    """How each batch is split over the devices."""
    task: PerImage | PerPixel | None = None
    """One label per image (default: `PerImage` of the data's classes) or per pixel."""
    init: Initialisation | None = None
    """`--init-from`'s weights, checked against the network (`check_weights`)."""
    batch_size_auto: dict[str, Any] | None = None
    """How `training.batch_size: auto` chose the batch (`autobatch.settle`; config.json)."""


def class_count_variables(
    spec_data: Mapping[str, Any], variables: dict[str, Any], classes: int
) -> tuple[dict[str, Any], str | None]:
    """`variables` with `num_classes` set to the data's class count, where the spec has that
    variable and it says otherwise, and what to say about the change (None: no change). The
    caller says it once it knows the network is a classifier."""
    declared = spec_data.get("vars")
    if not isinstance(declared, Mapping) or "num_classes" not in declared:
        return variables, None
    current = variables.get("num_classes", declared["num_classes"])
    if current == classes:
        return variables, None
    message = (
        f"the data has {classes} classes: setting num_classes={classes} (the spec says {current})"
    )
    return {**variables, "num_classes": classes}, message


def check_class_count(compiled: Compiled, classes: int) -> None:
    """The network must output one value per class of the data."""
    outputs = compiled.report.output_shape[2]
    if outputs == classes:
        return
    has_variable = "num_classes" in compiled.graph.variables
    raise SpecError(
        f"the data has {classes} classes but the network outputs {outputs}",
        path=compiled.graph.source,
        hint="use $num_classes in the last dense row"
        if has_variable
        else "add `vars: {num_classes: ...}` and use $num_classes in the last dense row",
    )


def prepare_run(options: TrainOptions) -> PreparedRun:
    """Everything before training that can fail on the user's input, in order: the run
    directory (checked, not touched), `--set`, the training config, the data and its classes,
    then the spec, compiled once with the data's class count and the config's dtype; then the
    data is fitted to the network's input and the batch to the devices. A per-pixel network
    (output H x W x K) or per-pixel data (a mask folder, "shapes") goes to
    `prepare_per_pixel` instead; without data, a per-pixel spec trains on the shapes."""
    import jax

    from ..compiled import compile_with
    from .autobatch import provisional_batch
    from .config import load_training_config, split_overrides
    from .datasets import read_dataset, run_split
    from .distributed import Parallel
    from .masks import is_mask_source

    if jax.process_index() == 0:
        check_run_dir(options)
    variables, training_overrides = split_overrides(options.overrides)
    spec_data = read_spec_data(options.spec)
    training_data: Any = spec_data
    saved = options.run_config
    if saved is not None:  # --resume RUN: the run's own variables, options and data first
        variables = {**(saved.get("variables") or {}), **variables}
        training_data = {"training": saved_training(saved)}
    config = load_training_config(training_data, options.training_file, training_overrides)
    source = options.data or (saved or {}).get("data") or config.data
    if is_mask_source(source):
        return prepare_per_pixel(options, config, variables, str(source))
    split = run_split(options.out, options.resume)  # a resumed run's own train/val split
    data = read_dataset(source, seed=config.seed, val_fraction=config.val_fraction, split=split)
    classes = len(data.class_names)
    counted, message = class_count_variables(spec_data, variables, classes)
    try:
        compiled = compile_with(options.spec, counted, config.dtype)
    except SpecError as error:
        # A per-pixel spec without data trains on the shapes, not with the digits' count.
        if source is None and counted != variables:
            try:
                as_written = compile_with(options.spec, variables, config.dtype)
            except SpecError:
                raise error from None
            if per_pixel_output(as_written):
                return prepare_per_pixel(options, config, variables, None, as_written)
        raise
    if per_pixel_output(compiled):
        if source is not None:
            raise one_label_per_image(compiled, str(source))
        as_written = compiled if counted == variables else None
        return prepare_per_pixel(options, config, variables, None, as_written)
    if message:
        say(message)
    variables = counted
    check_class_count(compiled, classes)
    dataset = data.ready(compiled.graph.input_shape, skip_bad_images=options.skip_bad_images)
    parallel = Parallel.create(provisional_batch(config))  # auto: see autobatch.settle
    say(
        f"data: {dataset.source}; {len(dataset.train):,} train / {len(dataset.val):,} val "
        f"images, {classes} classes; {parallel.describe()}"
    )
    say_skipped(dataset.skipped, "image")
    return PreparedRun(options, compiled, config, variables, dataset, source, parallel)


def saved_training(config: Mapping[str, Any]) -> dict[str, Any]:
    """A run's saved training options as a `training:` section (the optimizer's options
    beside its name again, so that `--set training.optimizer.momentum=...` applies)."""
    training = dict(config.get("training") or {})
    optimizer = training.get("optimizer")
    if isinstance(optimizer, Mapping) and isinstance(optimizer.get("options"), Mapping):
        training["optimizer"] = {"name": optimizer.get("name"), **optimizer["options"]}
    return training


def per_pixel_output(compiled: Compiled) -> bool:
    """Whether the network scores every pixel (output H x W x K, (H, W) not (1, 1))."""
    from .segmentation import is_per_pixel

    return is_per_pixel(compiled.report.output_shape)


def one_label_per_image(compiled: Compiled, source: str) -> SpecError:
    height, width, _ = compiled.report.output_shape
    return SpecError(
        f"the network outputs classes per pixel ({height}x{width} of them) but {source} has "
        "one label per image",
        path=compiled.graph.source,
        hint="train it on a folder with images/ and masks/ (or --data shapes), or end the "
        "network in a per-image output (1x1xK)",
    )


def prepare_per_pixel(
    options: TrainOptions,
    config: TrainingConfig,
    variables: dict[str, Any],
    source: str | None,
    compiled: Compiled | None = None,
) -> PreparedRun:
    """`prepare_run` for per-pixel data (`source`: a mask folder, or "shapes"; None: the
    default, the built-in shapes): the spec compiled with `variables` as given (the class
    count K is its output's depth), then every image and mask read and checked."""
    from ..compiled import compile_with
    from .autobatch import provisional_batch
    from .distributed import Parallel
    from .masks import SHAPES, load_masks
    from .segmentation import PerPixel

    if compiled is None:
        compiled = compile_with(options.spec, variables, config.dtype)
    height, width, classes = compiled.report.output_shape
    where = source or SHAPES
    if not per_pixel_output(compiled):
        raise SpecError(
            f"{where} holds a class per pixel (masks) but the network outputs {classes} "
            "values per image",
            path=compiled.graph.source,
            hint="end the network in a per-pixel output H x W x K, e.g. a `conv 1x1 "
            "$num_classes` row (and a `softmax` row) without flattening",
        )
    if compiled.report.heads:
        names = ", ".join(row for row, _ in compiled.report.heads)
        raise SpecError(
            f"auxiliary heads ({names}) score whole images; a per-pixel network trains "
            "without them",
            path=compiled.graph.source,
            hint="remove their `aux=` rows",
        )
    dataset = load_masks(
        where,
        compiled.graph.input_shape,
        classes,
        config.ignore_index,
        seed=config.seed,
        val_fraction=config.val_fraction,
        skip_bad_images=options.skip_bad_images,
    )
    parallel = Parallel.create(provisional_batch(config))  # auto: see autobatch.settle
    say(
        f"data: {dataset.source}; {len(dataset.train):,} train / {len(dataset.val):,} val "
        f"images, {classes} classes per pixel ({height}x{width} output, label "
        f"{config.ignore_index} ignored); {parallel.describe()}"
    )
    say_skipped(dataset.skipped, "image/mask pair")
    task = PerPixel(int(classes), config.ignore_index, (int(height), int(width)))
    return PreparedRun(options, compiled, config, variables, dataset, source, parallel, task)


def train(options: TrainOptions) -> dict[str, Any]:
    """Train a spec on a data source (`prepare_run`, `check_weights`, then `fit`); returns the
    last epoch's metrics record."""
    return fit(check_weights(prepare_run(options)))


def check_weights(prepared: PreparedRun) -> PreparedRun:
    """Check `training.freeze` and `--init-from` against the network, before the run directory
    is touched (with --resume, the checkpoint holds the weights: --init-from is not read)."""
    from .finetune import check_init, frozen_rows

    frozen_rows(prepared.compiled, prepared.config)
    options = prepared.options
    if options.init_from and not options.resume:
        prepared.init = check_init(prepared.compiled, options.init_from, options.init_by)
    elif options.init_from:
        say("--resume: the run's checkpoint holds the weights; --init-from is not read")
    return prepared


def weight_plan(options: TrainOptions) -> Any:
    """`--dry-run`: the checked pairing of `--init-from` with the network (nothing written)."""
    if not options.init_from:
        raise SpecError("--dry-run shows where --init-from's weights go: give --init-from")
    prepared = check_weights(prepare_run(options))
    assert prepared.init is not None
    return prepared.init.plan


def fit(prepared: PreparedRun) -> dict[str, Any]:
    """Train a prepared run: claim its directory, write its files, then the epochs (resuming
    from its checkpoint with `--resume`); returns the last epoch's metrics record."""
    import jax
    from flax import nnx

    from ..fileio import atomic_write_text
    from . import artifacts
    from .autobatch import settle
    from .checkpoint import Checkpoints
    from .config import worker_count
    from .finetune import (
        describe_groups,
        freeze_batchnorm,
        group_sizes,
        load_init,
        param_groups,
    )
    from .optim import build_optimizer
    from .pipeline import Augment, Normalize
    from .prefetch import prefetch_to_device
    from .steps import initial_state
    from .timing import EpochClock

    prepared = settle(prepared, say)  # training.batch_size: auto and training.remat
    options, compiled, config = prepared.options, prepared.compiled, prepared.config
    dataset, parallel, variables = prepared.dataset, prepared.parallel, prepared.variables
    task = prepared.task or PerImage(len(dataset.class_names))
    image_shape = compiled.graph.input_shape
    changes: list[str] = []
    if options.resume and options.out is not None:  # before anything is written
        from .rundiff import check_resume

        changes = check_resume(
            options.out,
            compiled,
            variables,
            config.model_dump(),
            prepared.source,
            dataset.class_names,
            own_spec=options.run_config is not None,
        )
    # a run directory made by this run is removed if its first step runs out of memory
    fresh = parallel.is_main and (options.out is None or not options.out.exists())
    if parallel.is_main:
        for warning in compiled.report.warnings:
            say(f"warning: {warning}")
        claim_run_dir(options, run_name({"name": compiled.name}, options.spec))
    sync_processes("run directory ready")  # the first process has checked and created it
    out = options.out
    if out is None:  # (the command line asks several processes for --out)
        raise SpecError("several processes train into one run directory: give --out")
    out.mkdir(parents=True, exist_ok=True)
    if parallel.is_main:
        say(f"run directory: {out}")
        if changes:
            say("changed since the run started: " + "; ".join(changes))
    if parallel.is_main:
        artifacts.save_class_names(out, dataset.class_names)
        if not options.resume:
            atomic_write_text(out / "spec.yaml", compiled.text)
        # The resolved network (overrides applied): its table, as `netspec compile --json`.
        artifacts.save_json(out / "summary.json", {**compiled.summary, "variables": variables})
        artifacts.save_json(
            out / "config.json",
            {
                "spec": (options.run_config or {}).get("spec", str(options.spec)),
                "variables": variables,
                "training": config.model_dump(),
                "data": prepared.source,
                "input_shape": list(image_shape),
                "classes": dataset.class_names,
                "dtype": compiled.dtype,
                "task": "segmentation" if task.per_pixel else "classification",
                **({"split": dataset.split} if hasattr(dataset, "split") else {}),
                **({"init_from": init_record(prepared.init)} if prepared.init else {}),
                **({"skipped": dataset.skipped} if dataset.skipped else {}),
                **(
                    {"batch_size_auto": prepared.batch_size_auto}
                    if prepared.batch_size_auto
                    else {}
                ),
            },
        )

    if parallel.is_main and not options.resume:
        task.save_samples(dataset.val, dataset.class_names, out / "samples")
    workers = worker_count(config.workers) if options.workers is None else options.workers
    augment = Augment(
        config.augment.random_crop,
        tuple(config.augment.random_resized_crop) if config.augment.random_resized_crop else None,
        config.augment.horizontal_flip,
    )
    channels = image_shape[2]
    normalize = Normalize(
        tuple(broadcast(config.normalize.mean, channels)),
        tuple(broadcast(config.normalize.std, channels)),
    )
    shard = (parallel.process_index, parallel.process_count)
    train_data = task.pipeline(
        dataset.train,
        image_shape,
        parallel.local_batch,
        train=True,
        augment=augment,
        normalize=normalize,
        seed=config.seed,
        workers=workers,
        shard=shard,
        processes=config.worker_processes,
    )
    val_data = task.pipeline(
        dataset.val,
        image_shape,
        parallel.local_batch,
        train=False,
        normalize=normalize,
        seed=config.seed,
        workers=workers,
        shard=shard,
        processes=config.worker_processes,
    )
    steps_per_epoch = train_data.steps_per_epoch()
    if steps_per_epoch < 1:
        raise SpecError(
            f"batch size {config.batch_size} is larger than the training set "
            f"({len(dataset.train)} images)",
            field="training.batch_size",
        )

    groups = param_groups(compiled, config)
    tx, schedule = build_optimizer(
        config, steps_per_epoch, groups.labels(compiled) if groups.active else None
    )
    model = compiled.build(seed=config.seed)
    if prepared.init is not None:
        plan = load_init(compiled, model, prepared.init)
        say(f"initialised from {plan.source.description}: {plan.summary()}")
    if groups.active:
        norms = freeze_batchnorm(compiled, model, groups)
        _, params, _ = nnx.split(model, nnx.Param, ...)
        say(describe_groups(group_sizes(compiled, params, groups), groups, norms))
    weights = {**model.loss_weights, **config.aux_weights}
    unknown = set(config.aux_weights) - set(model.loss_weights)
    if unknown:
        raise SpecError(
            f"aux_weights names {sorted(unknown)[0]!r}, which is not a head",
            field="training.aux_weights",
            hint="heads: " + ", ".join(model.loss_weights),
        )
    graphdef, state = initial_state(model, tx, task.zero_sums())
    state = parallel.replicate(state)
    steps = task.steps(graphdef, tx, weights, config.label_smoothing)
    train_step = Announced(steps.train, "training")
    eval_step = Announced(steps.evaluate, "evaluation")
    steps = dataclasses.replace(steps, train=train_step, evaluate=eval_step)
    checkpoints = Checkpoints(out)
    metrics = artifacts.MetricsLog(out / "metrics.jsonl")

    epoch, start_step, best = 0, 0, -1.0
    if options.resume:
        restored = checkpoints.restore(state, report=say)
        if restored is None and not checkpoints.saved_any():
            # stopped before its first checkpoint was complete: the run starts again
            say("no checkpoint was complete when the run stopped: starting it again")
        elif restored is None:
            aside = checkpoints.damaged_aside()
            checkpoints.close()
            raise SpecError(
                "no usable checkpoint to resume from",
                path=str(out),
                hint=f"the checkpoints may not fit what changed ({'; '.join(changes)}): resume "
                f"with the run's own spec and options, netspec train --resume {out}"
                if changes
                else f"damaged checkpoints, kept aside: {', '.join(p.name for p in aside)}"
                if aside
                else None,
            )
        else:
            state, record = restored
            state = parallel.replicate(state)
            epoch, start_step, best = record["epoch"], record["step_in_epoch"], record["best"]
        metrics.truncate_to(epoch)
        say(f"resuming at epoch {epoch + 1}, step {start_step} of {steps_per_epoch}")
    # After a resume, TensorBoard hides the crashed run's later steps (purge_step).
    board = artifacts.TensorBoard(out, purge_step=epoch + 1) if parallel.is_main else None
    curves = artifacts.CurvesWriter(out / "curves.png") if parallel.is_main else None

    def record_of(epoch: int, step_in_epoch: int) -> dict[str, Any]:
        return {"epoch": epoch, "step_in_epoch": step_in_epoch, "best": best}

    last: dict[str, Any] = {}
    taken = 0
    progress: Progress | None = None
    pace = Pace()
    clock = EpochClock()
    exhausted: BaseException | None = None
    train_data.keep_workers(config.epochs)
    val_data.keep_workers(config.epochs - epoch)
    try:
        with SignalFlag() as flag:
            while epoch < config.epochs:
                started = time.perf_counter()
                compiling = train_step.seconds  # the first epoch's rate leaves compiling out
                progress = Progress(
                    epoch, config.epochs, steps_per_epoch, options.progress, start_step
                )
                step_in_epoch = start_step
                batches = prefetch_to_device(train_data.epoch(epoch, start_step), parallel.batch)
                for images, labels, mask in clock.timed(batches):
                    with clock.part("step"):
                        state = steps.train(state, images, labels, mask)
                        pace.wait(state)
                    step_in_epoch += 1
                    taken += 1
                    if progress.due() or step_in_epoch == steps_per_epoch:
                        check_finite_loss(state)
                        progress.update(
                            step_in_epoch,
                            state.sums,
                            parallel.global_batch,
                            train_step.seconds - compiling,
                        )
                    if flag.signal is not None or (
                        options.max_steps and taken >= options.max_steps
                    ):
                        progress.close()
                        checkpoints.save(int(state.step), state, record_of(epoch, step_in_epoch))
                        if flag.signal is not None:
                            raise Stop(
                                f"stopped by {signal.Signals(flag.signal).name} at epoch "
                                f"{epoch + 1}, step {step_in_epoch} of {steps_per_epoch}; "
                                f"checkpoint saved. Resume with: netspec train --resume {out}",
                                EXIT_INTERRUPTED,
                            )
                        return last
                progress.close()
                check_finite_loss(state)
                train_seconds = time.perf_counter() - started - (train_step.seconds - compiling)
                sums = jax.device_get(state.sums)
                eval_compiling = eval_step.seconds
                with clock.part("eval"):
                    val = task.evaluate(steps, state.params, state.rest, val_data, parallel)
                clock.move_compile("step", train_step.seconds - compiling)
                clock.move_compile("eval", eval_step.seconds - eval_compiling)
                record = {
                    "epoch": epoch + 1,
                    **task.record(sums, val),
                    "lr": float(schedule(state.step)),
                    "seconds": time.perf_counter() - started,
                    "images_per_sec": task.images_seen(sums) / max(train_seconds, 1e-9),
                    "timing": clock.record(),
                }
                clock = EpochClock()  # the next record's time starts here
                if board is not None and curves is not None:
                    with clock.part("logs"):
                        metrics.append(record)
                        board.write_epoch(record)
                        curves.update(metrics.read())
                say(task.summary_line(record, config.epochs))
                best = max(best, record[task.best_key])
                epoch, start_step = epoch + 1, 0
                state = state._replace(sums=parallel.replicate(task.zero_sums()))
                with clock.part("checkpoint"):
                    # scored: orbax keeps this epoch's checkpoint while it is the best one
                    checkpoints.save(
                        int(state.step), state, record_of(epoch, 0), score=record[task.best_key]
                    )
                last = record
        say_skipped(dataset.skipped, "image/mask pair" if task.per_pixel else "image")
    except Exception as error:
        from ..memory import is_out_of_memory

        if not is_out_of_memory(error):
            raise
        exhausted = error  # told once the run's files are closed
    finally:
        if progress is not None:  # a second Ctrl-C: leave no half-drawn bar
            progress.close()
        if board is not None:
            board.close()
        if curves is not None:
            curves.close()
        checkpoints.close()
        train_data.close()
        val_data.close()
    if exhausted is not None:
        raise train_out_of_memory(
            exhausted, train_step, config.batch_size, out, remove=fresh and taken == 0
        ) from None
    return last


def train_out_of_memory(
    error: BaseException, step: Announced, batch: int, out: Path, remove: bool
) -> SpecError:
    """The message for a train step that ran out of device memory: what it needs (XLA's
    analysis), what the device has, a batch that fits; the run directory is removed when this
    run made it and took no step, else the message says how to rerun it."""
    import jax

    from ..memory import device_memory, fitting_batch, lowered_at, out_of_memory, step_memory

    available = device_memory()
    needed, smaller = None, None
    if step.args is not None and jax.device_count() == 1:
        state, *batch_args = step.args

        def measure(size: int) -> Any:
            try:
                return step_memory(lowered_at(step.step, state, tuple(batch_args), size).compile())
            except Exception:  # a suggestion only
                return None

        needed = step_memory(step.compiled) if step.compiled is not None else measure(batch)
        smaller = fitting_batch(measure, batch, available) if available else None
    if remove:
        import shutil

        shutil.rmtree(out, ignore_errors=True)
        extra = f"{out} was removed (no step was taken)"
    elif (out / "config.json").exists() and not any((out / "checkpoints").glob("*/**/*")):
        extra = f"{out} holds no checkpoint: rerun with --out {out} --overwrite"
    else:
        extra = f"{out} keeps its checkpoints: continue with netspec train --resume {out}"
    return out_of_memory(error, batch, needed, available, smaller, extra=extra)


class Pace:
    """Keeps the host at most one step ahead of the device. JAX dispatches steps
    asynchronously: unchecked, the loop queues steps as fast as the data comes, and a stop
    (Ctrl-C, --max-steps) then waits for every queued step. A step slower than `SLOW` seconds
    is waited for before the next is dispatched (a stop waits for the running step alone);
    quicker ones keep one step queued behind the running one, so that the device does not wait
    for the host."""

    SLOW = 0.05

    def __init__(self) -> None:
        self.pending: Any = None
        self.slow = False

    def wait(self, state: Any) -> None:
        """Call after dispatching each step, with the state it returns."""
        import jax

        if self.slow:
            started = time.perf_counter()
            jax.block_until_ready(state.step)
            self.slow = time.perf_counter() - started > self.SLOW
            return
        marker = state.step + 0  # a copy: the next step donates (deletes) `state`
        if self.pending is not None:
            started = time.perf_counter()
            jax.block_until_ready(self.pending)
            self.slow = time.perf_counter() - started > self.SLOW
        self.pending = None if self.slow else marker


def init_record(init: Initialisation) -> dict[str, Any]:
    """config.json's account of `--init-from`."""
    plan = init.plan
    return {
        "source": plan.source.description,
        "pairing": plan.pairing,
        "values": plan.loaded,
        "new_head": plan.new_head,
    }


def sync_processes(name: str) -> None:
    """A barrier across processes (nothing to do in a single-process run)."""
    import jax

    if jax.process_count() > 1:
        from jax.experimental import multihost_utils

        multihost_utils.sync_global_devices(name)


def broadcast(values: list[float], channels: int) -> list[float]:
    """Per-channel normalisation values: one value stands for every channel."""
    if len(values) == 1:
        return values * channels
    if len(values) != channels:
        raise SpecError(
            f"normalize gives {len(values)} values for {channels} channels",
            field="training.normalize",
        )
    return values


def check_finite_loss(state: Any) -> None:
    bad = int(state.nan_step)
    if bad >= 0:
        raise Stop(
            f"the loss became NaN or infinite at step {bad + 1}; stopped without saving, the "
            "last good checkpoint is intact (try a lower learning rate or grad_clip)",
            EXIT_NOT_FINITE,
        )


def evaluate(steps: Any, params: Any, rest: Any, data: Any, parallel: Any) -> dict[str, float]:
    """Loss, top-1 and top-5 accuracy over a whole split (padding masked out)."""
    import jax

    from .prefetch import prefetch_to_device

    totals = None
    for images, labels, mask in prefetch_to_device(data.epoch(0), parallel.batch):
        result = steps.evaluate(params, rest, images, labels, mask)
        totals = result if totals is None else jax.tree.map(lambda a, b: a + b, totals, result)
    if totals is None:
        return {"loss": float("nan"), "acc": float("nan"), "top5": float("nan")}
    count = max(float(totals["count"]), 1.0)
    return {
        "loss": float(totals["loss"]) / count,
        "acc": float(totals["correct"]) / count,
        "top5": float(totals["top5"]) / count,
    }
