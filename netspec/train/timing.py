"""Where a training epoch's wall time goes: waiting for data, the train step, evaluation,
checkpointing, compiling, writing logs, and the rest (progress bars, the loss check).

Each record of metrics.jsonl gets one `EpochClock`'s parts under "timing", in seconds. A clock
covers the time since the previous record: writing that record (metrics.jsonl, TensorBoard,
starting the redraw of curves.png) and the checkpoint saved at the end of the previous epoch,
then this epoch's steps and its evaluation (the first covers compiling too). So the records'
times add up to the run's, but for the last epoch's logs and checkpoint.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TypeVar

Item = TypeVar("Item")

PARTS = ("data", "step", "eval", "logs", "checkpoint", "compile")


@dataclass
class EpochClock:
    """Seconds spent in each part since the clock started (`time.perf_counter`)."""

    seconds: dict[str, float] = field(default_factory=lambda: dict.fromkeys(PARTS, 0.0))
    started: float = field(default_factory=time.perf_counter)

    def timed(self, items: Iterator[Item]) -> Iterator[Item]:
        """`items`, the time spent waiting for each counted as "data"."""
        while True:
            begun = time.perf_counter()
            try:
                item = next(items)
            except StopIteration:
                self.seconds["data"] += time.perf_counter() - begun
                return
            self.seconds["data"] += time.perf_counter() - begun
            yield item

    @contextmanager
    def part(self, name: str) -> Iterator[None]:
        """Count the time inside the block as `name`."""
        begun = time.perf_counter()
        try:
            yield
        finally:
            self.seconds[name] += time.perf_counter() - begun

    def move_compile(self, name: str, seconds: float) -> None:
        """`seconds` of `name`'s time were spent compiling: count them as "compile"."""
        self.seconds[name] -= seconds
        self.seconds["compile"] += seconds

    def record(self) -> dict[str, float]:
        """The parts and "other" (the rest of the wall time since the clock started)."""
        total = time.perf_counter() - self.started
        parts = {name: round(value, 4) for name, value in self.seconds.items()}
        return {**parts, "other": round(max(total - sum(self.seconds.values()), 0.0), 4)}
