"""What `netspec train` tells the terminal: lines on stderr, the per-epoch progress bar and
summary line, skipped files, and the step compiled ahead of time with its compile time."""

from __future__ import annotations

import sys
import time
from typing import Any


def notice(text: str) -> None:
    """A line on stderr from a signal handler: written straight to the file descriptor (the
    handler may interrupt a `print`, whose buffer is not reentrant; `say` flushes every
    line), over a progress bar's line on a terminal (the bar redraws below it)."""
    import contextlib
    import os

    clear = "\r\x1b[2K" if os.isatty(2) else ""
    with contextlib.suppress(OSError):
        os.write(2, f"{clear}{text}\n".encode(errors="replace"))


def say(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


SHOWN_SKIPPED = 20
"""At most this many skipped files are listed on the terminal (config.json has them all)."""


def say_skipped(skipped: list[str], what: str) -> None:
    """Name each file `--skip-bad-images` left out, with why ("path: reason")."""
    if not skipped:
        return
    count = len(skipped)
    say(f"skipped {count} unreadable {what}{'s' if count > 1 else ''} (--skip-bad-images):")
    for line in skipped[:SHOWN_SKIPPED]:
        say(f"  {line}")
    if count > SHOWN_SKIPPED:
        say(f"  ... and {count - SHOWN_SKIPPED} more (all in config.json)")


def summary_line(record: dict[str, Any], epochs: int) -> str:
    top5 = f" top5 {record['val_top5']:.2%}" if "val_top5" in record else ""
    return (
        f"epoch {record['epoch']}/{epochs}: loss {record['train_loss']:.4f} "
        f"acc {record['train_acc']:.2%} | val loss {record['val_loss']:.4f} "
        f"acc {record['val_acc']:.2%}{top5} | lr {record['lr']:.3g} | "
        f"{record['images_per_sec']:,.0f} img/s, {record['seconds']:.1f}s"
    )


class Progress:
    """A rich progress bar per epoch on stderr (when it is a terminal); updates at most 4 times
    a second. `close` stops it (a transient bar: its line is cleared)."""

    def __init__(self, epoch: int, epochs: int, total: int, enabled: bool, start: int = 0) -> None:
        self.started = time.perf_counter()
        self.start = start
        """The step the epoch resumes after (0: its beginning)."""
        self.last = 0.0
        self.bar = None
        if enabled and sys.stderr.isatty():
            from rich.console import Console
            from rich.progress import BarColumn, MofNCompleteColumn, TextColumn, TimeRemainingColumn
            from rich.progress import Progress as RichProgress

            self.bar = RichProgress(
                TextColumn(f"epoch {epoch + 1}/{epochs}"),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn("{task.description}"),
                TimeRemainingColumn(),
                transient=True,
                console=Console(stderr=True),
            )
            self.bar.start()
            self.task = self.bar.add_task("", total=total, completed=start)

    def due(self) -> bool:
        return self.bar is not None and time.perf_counter() - self.last > 0.25

    def update(self, step: int, sums: dict[str, Any], batch: int, paused: float = 0.0) -> None:
        """Show `step` and the running loss and accuracy; the rate leaves out `paused`
        seconds (compiling)."""
        self.last = time.perf_counter()
        if self.bar is None:
            return
        count = max(float(sums["count"]), 1.0)
        rate = (step - self.start) * batch / max(self.last - self.started - paused, 1e-9)
        text = (
            f"loss {float(sums['loss']) / count:.4f} acc {float(sums['correct']) / count:.2%}"
            f" {rate:,.0f} img/s"
        )
        self.bar.update(self.task, completed=step, description=text)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.stop()
            self.bar = None


class Announced:
    """A jitted step whose first call compiles it ahead of time (`lower(...).compile()`, which
    the jitted function then reuses), saying so before and how long it took after: the first
    step of a large network compiles for many seconds."""

    def __init__(self, step: Any, what: str) -> None:
        self.step = step
        self.what = what
        self.seconds = 0.0
        """How long compiling took (0 before the first call)."""
        self.args: tuple[Any, ...] | None = None
        """The first call's arguments (to compile the step at other batch sizes)."""
        self.compiled: Any = None
        """The compiled step (its `memory_analysis()`), once compiled."""

    def __call__(self, *args: Any) -> Any:
        lower = getattr(self.step, "lower", None)
        if not self.seconds and lower is not None:
            say(f"compiling the {self.what} step...")
            started = time.perf_counter()
            self.args = shapes_of(args)
            self.compiled = lower(*args).compile()
            self.seconds = max(time.perf_counter() - started, 1e-9)
            say(f"compiled in {self.seconds:.1f} s")
        return self.step(*args)


def shapes_of(tree: Any) -> Any:
    """`tree` with its arrays as shapes and dtypes (a donated buffer is gone after the step)."""
    import jax

    return jax.tree_util.tree_map(
        lambda leaf: (
            jax.ShapeDtypeStruct(leaf.shape, leaf.dtype) if hasattr(leaf, "dtype") else leaf
        ),
        tree,
    )
