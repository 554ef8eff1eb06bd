"""Scale-out: meshes and data placement for `fit(..., mesh=...)` and `fit_many(..., mesh=...)`.

jaxmlp does no communication of its own: it describes where arrays live with JAX's
`jax.sharding.Mesh` and `NamedSharding`, and XLA partitions the compiled program and inserts the
collectives (the all-reduce of the gradients over the batch) for CPUs, GPUs and TPUs alike.

- Data parallelism (`fit`): a mesh axis named ``"data"``. Parameters, optimizer state and the
  training data are replicated on every device; each mini-batch is split along its rows, every
  device computes the forward and backward pass of its rows, and the gradients are summed across
  devices before the (replicated) optimizer update. The data set is replicated, not split,
  because every epoch draws a fresh global shuffle: each device then gathers its batch rows
  locally, with no communication but the gradients'. It costs ``n·features`` of memory per
  device, which is what an MLP's data usually allows.
- Model parallelism over an ensemble (`fit_many`): a mesh axis named ``"models"``. The K models'
  parameters and states are split K/D per device; the data is replicated; the models never
  communicate.
- Many processes (hosts): call `jax.distributed.initialize` first in every process, then build
  the mesh over `jax.devices()` (every process's devices) and call `fit` in every process with
  the same arguments. Each process may hold only its own rows of the data: `from_process_rows`
  builds the global data set from them (`process_slice` says which rows a process should load).
"""

from __future__ import annotations

import zlib
from typing import Any

import jax
import numpy as np
from jax.sharding import Mesh

from jaxmlp import _placement
from jaxmlp._placement import DATA, MODELS, batch_sharding, replicated  # re-exported

__all__ = ["DATA", "MODELS", "batch_sharding", "data_mesh", "from_process_rows", "models_mesh",
           "process_slice", "replicated", "shard_batches"]  # fmt: skip


def data_mesh(devices: _placement.DevicesLike = None) -> Mesh:
    """A one-axis mesh named ``"data"``, for `jaxmlp.fit`'s data parallelism.

    Args:
      devices: None for every device JAX sees (across all processes after
        `jax.distributed.initialize`), an int n for the first n, or a list of `jax.Device`.

    Returns:
      ``Mesh(devices, ("data",))``.

    >>> dict(data_mesh(1).shape)
    {'data': 1}
    """
    return Mesh(np.array(_placement.device_list(devices)), (DATA,))


def models_mesh(devices: _placement.DevicesLike = None) -> Mesh:
    """A one-axis mesh named ``"models"``, for `jaxmlp.fit_many` (devices as in `data_mesh`)."""
    return Mesh(np.array(_placement.device_list(devices)), (MODELS,))


def shard_batches(xs: jax.Array, mesh: Mesh) -> jax.Array:
    """`xs` ``(n_batches, batch, ...)`` with each batch's rows split over the "data" axis.

    This is the placement `jaxmlp.fit` gives an epoch's batches inside its compiled program
    (`jax.lax.with_sharding_constraint`); called outside `jit` it moves `xs` there, which shows
    what every device holds: ``batch / D`` rows of each batch.

    >>> mesh = data_mesh(1)
    >>> shard_batches(jnp.zeros((3, 8, 2)), mesh).sharding.shard_shape((3, 8, 2))
    (3, 8, 2)
    """
    return _placement.constrain(xs, batch_sharding(mesh))


def process_slice(n: int) -> slice:
    """The contiguous share of ``n`` rows that this process should load and pass on.

    Process ``p`` of ``P`` gets rows ``[p·n // P, (p + 1)·n // P)``; in one process, all of
    them. Pass the rows to `from_process_rows`.

    >>> process_slice(10)
    slice(0, 10, None)
    """
    p, count = jax.process_index(), jax.process_count()
    return slice(p * n // count, (p + 1) * n // count)


def from_process_rows(local: Any, mesh: Mesh | None = None) -> jax.Array:
    """The global data set built from each process's rows, replicated on `mesh`'s devices.

    Every process calls it with its own rows (any number, possibly different per process); the
    result holds all of them in process order — process 0's rows first — on every device of
    `mesh`, as `jaxmlp.fit` wants its data. In a single process it is `local` itself, placed.

    Args:
      local: this process's rows, shape ``(n_p, ...)``; the trailing shape and dtype must agree
        across processes.
      mesh: where to place the result (default every device, one "data" axis).

    Returns:
      A `jax.Array` of shape ``(Σ_p n_p, ...)`` replicated over `mesh`.
    """
    mesh = data_mesh() if mesh is None else mesh
    local = np.asarray(local)
    if local.ndim < 1:
        raise ValueError(f"local must have a leading axis of rows; got shape {local.shape}")
    if jax.process_count() == 1:
        return jax.device_put(local, replicated(mesh))
    from jax.experimental import multihost_utils

    # Processes may hold different numbers of rows: gather the counts, pad to the largest, gather
    # the rows (process_allgather needs one shape everywhere), then drop the padding.
    counts = multihost_utils.process_allgather(np.asarray(local.shape[0], np.int64))
    kind = zlib.crc32(repr((local.shape[1:], local.dtype.str)).encode())
    kinds = multihost_utils.process_allgather(np.asarray(kind, np.uint32))
    if not (kinds == kinds[0]).all():
        raise ValueError(
            "every process must pass rows of the same trailing shape and dtype; process "
            f"{jax.process_index()} has {local.shape[1:]} {local.dtype}"
        )
    pad = np.zeros((int(counts.max()) - local.shape[0],) + local.shape[1:], local.dtype)
    gathered = multihost_utils.process_allgather(np.concatenate([local, pad]))
    full = np.concatenate([gathered[p, :c] for p, c in enumerate(counts)])
    return _placement.place_leaf(full, replicated(mesh))
