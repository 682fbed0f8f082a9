"""Data parallelism on JAX's own sharding: the batch split across devices, parameters replicated.

One process drives all its local devices; several processes (hosts) join through
`jax.distributed` and each feeds its own slice of every global batch. XLA inserts the
gradient all-reduce and computes batch-norm statistics over the global batch.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from ..errors import SpecError


def initialize(coordinator: str, num_processes: int, process_id: int) -> None:
    """Join a multi-process run (`--coordinator host:port --num-processes N --process-id I`)."""
    if not 0 <= process_id < num_processes:
        raise SpecError(f"--process-id must be in 0..{num_processes - 1}, got {process_id}")
    # CPU processes exchange gradients through gloo; GPUs use NCCL on their own.
    jax.config.update("jax_cpu_collectives_implementation", "gloo")
    jax.distributed.initialize(coordinator, num_processes=num_processes, process_id=process_id)


@dataclass(frozen=True)
class Parallel:
    """How a global batch maps onto the devices of every process."""

    mesh: Mesh
    global_batch: int
    local_batch: int
    process_index: int
    process_count: int

    @classmethod
    def create(cls, global_batch: int) -> Parallel:
        devices = jax.devices()
        if global_batch % len(devices):
            raise SpecError(
                f"batch size {global_batch} does not split evenly over {len(devices)} devices",
                field="training.batch_size",
                hint=f"use a multiple of {len(devices)}",
            )
        mesh = Mesh(np.array(devices), ("data",))
        count = jax.process_count()
        return cls(mesh, global_batch, global_batch // count, jax.process_index(), count)

    @property
    def is_main(self) -> bool:
        return self.process_index == 0

    def describe(self) -> str:
        devices = self.mesh.devices.size
        kind = self.mesh.devices.flat[0].platform
        where = f"{devices} {kind} device{'s' if devices > 1 else ''}"
        if self.process_count > 1:
            where += f" in {self.process_count} processes"
        return where + (", data parallel" if devices > 1 else "")

    def replicate(self, tree: Any) -> Any:
        """The same value on every device (parameters, optimizer state); every process holds
        the same value, so each contributes its own devices' copies."""
        sharding = NamedSharding(self.mesh, PartitionSpec())
        if self.process_count == 1:
            return jax.device_put(tree, sharding)

        def global_copy(x: Any) -> Any:
            if jax.dtypes.issubdtype(x.dtype, jax.dtypes.prng_key):
                data = global_copy(jax.random.key_data(x))
                return jax.random.wrap_key_data(data, impl=jax.random.key_impl(x))
            return jax.make_array_from_process_local_data(sharding, np.asarray(x))

        return jax.tree.map(global_copy, tree)

    def batch(self, batch: Any) -> tuple[jax.Array, jax.Array, jax.Array]:
        """This process's slice of a global batch as global arrays sharded on `data`."""
        sharding = NamedSharding(self.mesh, PartitionSpec("data"))
        arrays = (batch.images, batch.labels, batch.mask)
        if self.process_count == 1:
            return tuple(jax.device_put(a, sharding) for a in arrays)  # type: ignore[return-value]
        return tuple(
            jax.make_array_from_process_local_data(sharding, a)  # type: ignore[return-value]
            for a in arrays
        )
