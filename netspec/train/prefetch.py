"""Keep the next batches on the device while the current step runs.

Not `flax.jax_utils.prefetch_to_device`: that one is for `pmap`, stacking each leaf's leading
axis into one slice per device on its own mesh axis, where netspec's step takes the global
batch as one array sharded on the `data` axis of its mesh (and, across processes, built with
`jax.make_array_from_process_local_data`: `put` here is `Parallel.batch`); nor does it close the
source when the consumer stops early (grain's workers). `grain.experimental.device_put` puts
with `jax.device_put` from a background thread, which cannot build the multi-process arrays.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterator
from typing import TypeVar

In = TypeVar("In")
Out = TypeVar("Out")


def prefetch_to_device(
    batches: Iterator[In], put: Callable[[In], Out], size: int = 2
) -> Iterator[Out]:
    """Yield `put(batch)` for each batch, `size` batches ahead of the consumer.

    `put` starts the host-to-device copy (`jax.device_put` returns before it finishes), so
    with `size` >= 1 the copy of batch n+1 overlaps step n even right after the host has
    waited for the device (a metrics read). Batches put but not consumed when the consumer
    stops are dropped; closing this iterator closes `batches` (grain's workers stop).
    """
    if size < 0:
        raise ValueError(f"prefetch size must be >= 0, got {size}")
    ahead: deque[Out] = deque()
    try:
        for batch in batches:
            ahead.append(put(batch))
            if len(ahead) > size:
                yield ahead.popleft()
        while ahead:
            yield ahead.popleft()
    finally:
        close = getattr(batches, "close", None)
        if close is not None:
            close()
