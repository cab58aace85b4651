"""Devices: a 1-D ``'data'`` mesh over every device of every process, and batches placed on it."""

from __future__ import annotations

import os

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec


def maybe_initialize_distributed() -> None:
    """Starts multi-host JAX when a cluster environment describes several processes."""
    if os.environ.get("JAX_COORDINATOR_ADDRESS") or int(os.environ.get("SLURM_NTASKS", "1")) > 1:
        jax.distributed.initialize()


def data_mesh() -> Mesh:
    """A 1-D mesh over every device, axis ``'data'``."""
    return Mesh(np.asarray(jax.devices()), ("data",))


def replicated(mesh: Mesh) -> NamedSharding:
    """Parameters and optimiser state: a full copy on every device."""
    return NamedSharding(mesh, PartitionSpec())


def shard_batch(mesh: Mesh, array: np.ndarray) -> jax.Array:
    """Places a global host batch on the mesh, split along its first axis."""
    sharding = NamedSharding(mesh, PartitionSpec("data"))
    if jax.process_count() == 1:
        return jax.device_put(array, sharding)
    per_process = array.shape[0] // jax.process_count()
    local = array[jax.process_index() * per_process:(jax.process_index() + 1) * per_process]
    return jax.make_array_from_process_local_data(sharding, local, array.shape)
