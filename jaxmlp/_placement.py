"""Where `fit`'s and `fit_many`'s arrays live on a mesh: the helpers behind `jaxmlp.sharding`.

A private module with public names: `jaxmlp.fit`, `jaxmlp.ensemble` and the compiled program
(`jaxmlp._epochs`) place arrays and check meshes with these; users build meshes with
`jaxmlp.sharding`, which re-exports the names they need (`replicated`, `batch_sharding`).
"""

from __future__ import annotations

import contextlib
import zlib
from collections.abc import Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import AxisType, Mesh, NamedSharding
from jax.sharding import PartitionSpec as P

DATA = "data"
MODELS = "models"

DevicesLike = int | Sequence[jax.Device] | None


def device_list(devices: DevicesLike, name: str = "devices") -> list[jax.Device]:
    """The devices `devices` names: all of `jax.devices()` (None), the first n (an int), a list."""
    every = jax.devices()
    if devices is None:
        return list(every)
    if isinstance(devices, (int, np.integer)) and not isinstance(devices, bool):
        if not 1 <= devices <= len(every):
            raise ValueError(
                f"{name} must be between 1 and the {len(every)} devices JAX sees "
                f"(jax.devices()); got {devices}"
            )
        return list(every[: int(devices)])
    if isinstance(devices, np.ndarray):
        devices = list(devices.flat)
    if isinstance(devices, (str, bytes)) or not isinstance(devices, Sequence):
        got = type(devices).__name__
        raise TypeError(f"{name} must be a number of devices or a list of jax.Device; got {got}")
    devices = list(devices)
    if not devices or not all(isinstance(d, jax.Device) for d in devices):
        raise TypeError(f"{name} must be a non-empty list of jax.Device (from jax.devices())")
    if len(set(devices)) != len(devices):
        raise ValueError(f"{name} lists a device twice: {devices}")
    return devices


def resolve_mesh(mesh: Any, devices: DevicesLike, axis: str, caller: str) -> Mesh | None:
    """The mesh `caller` runs on (None when neither `mesh` nor `devices` is given), checked.

    The mesh must have the axis `axis`; its other axes, if any, must have size 1 (the work is
    split along `axis` only, so a larger axis would only repeat it). In a run of several
    processes the mesh must include devices of every process.
    """
    if mesh is not None and devices is not None:
        raise ValueError(
            f"{caller} takes mesh= or devices= (a shorthand for a one-axis {axis!r} mesh), not both"
        )
    if devices is not None:
        mesh = Mesh(np.array(device_list(devices)), (axis,))
    current = mesh is None and not jax.sharding.get_mesh().empty
    if mesh is None and not current:
        return None
    if current:
        mesh = jax.sharding.get_mesh()
        if axis not in mesh.axis_names:
            raise ValueError(
                f"{caller} runs on the current mesh (set with jax.set_mesh) when given none; it "
                f"has axes {tuple(mesh.axis_names)}, and {caller} needs an axis named {axis!r}. "
                f"Pass mesh= explicitly, or call {caller} outside the mesh's context"
            )
    if not isinstance(mesh, Mesh):
        raise TypeError(
            f"mesh must be a jax.sharding.Mesh (e.g. jaxmlp.sharding.{axis}_mesh()); got "
            f"{type(mesh).__name__}"
        )
    if axis not in mesh.axis_names:
        raise ValueError(
            f"{caller} splits the {'batch' if axis == DATA else 'models'} over a mesh axis named "
            f"{axis!r}; the mesh has axes {tuple(mesh.axis_names)}. Build one with jaxmlp.sharding."
            f"{axis}_mesh(devices) or Mesh(devices, ({axis!r},))"
        )
    others = {a: s for a, s in mesh.shape.items() if a != axis and s > 1}
    if others:
        raise ValueError(
            f"{caller} splits its work over the mesh axis {axis!r} only; the mesh's other axes "
            f"must have size 1, got {others}"
        )
    processes = {d.process_index for d in mesh.devices.flat}
    if len(processes) != jax.process_count():
        raise ValueError(
            f"the mesh must include devices of every one of the {jax.process_count()} processes "
            f"(build it from jax.devices()); it has devices of processes {sorted(processes)}"
        )
    # Axes of every type (jax.make_mesh's default is Explicit) run as Auto: jaxmlp places
    # every array itself, with the same devices and names.
    return Mesh(mesh.devices, mesh.axis_names, axis_types=(AxisType.Auto,) * len(mesh.axis_names))


def running_on(mesh: Mesh | None) -> Any:
    """The context `fit`'s program runs in: inside a user's ``jax.set_mesh``, `mesh` (Auto axes).

    Outside any mesh context nothing changes: the program places its arrays itself.
    """
    if mesh is None or jax.sharding.get_mesh().empty:
        return contextlib.nullcontext()
    return jax.set_mesh(mesh)


def replicated(mesh: Mesh) -> NamedSharding:
    """The sharding of parameters, optimizer state and data: a full copy on every device."""
    return NamedSharding(mesh, P())


def batch_sharding(mesh: Mesh) -> NamedSharding:
    """The sharding of an epoch's stacked batches ``(n_batches, batch, ...)``: rows over "data".

    >>> from jaxmlp.sharding import data_mesh
    >>> tuple(batch_sharding(data_mesh(1)).spec)
    (None, 'data')
    """
    return NamedSharding(mesh, P(None, DATA))


def row_sharding(mesh: Mesh) -> NamedSharding:
    """The sharding of one batch ``(batch, ...)`` inside `fit`'s scan: rows over "data"."""
    return NamedSharding(mesh, P(DATA))


def constrain(tree: Any, sharding: NamedSharding) -> Any:
    """Every array of `tree` laid out as `sharding`: a constraint inside `jit`, a move outside."""

    def one(a: Any) -> Any:
        if isinstance(a, jax.core.Tracer):
            return jax.lax.with_sharding_constraint(a, sharding)
        return jax.device_put(a, sharding)

    return jax.tree.map(one, tree)


def host_value(a: Any) -> Any:
    """A host copy of `a`; for an array spread over several processes, its global value."""
    if isinstance(a, jax.Array) and not a.is_fully_addressable:
        if a.is_fully_replicated:
            return np.asarray(a.addressable_data(0))
        from jax.experimental import multihost_utils

        return multihost_utils.process_allgather(a, tiled=True)
    return a


def digest(a: Any) -> int:
    if isinstance(a, jax.Array) and jnp.issubdtype(a.dtype, jax.dtypes.prng_key):
        a = jax.random.key_data(a)
    host = np.ascontiguousarray(np.asarray(a))
    return zlib.crc32(host.tobytes(), zlib.crc32(repr((host.shape, host.dtype.str)).encode()))


def check_same_in_every_process(named: dict[str, Any]) -> None:
    """Raise ValueError naming the first argument whose value differs between processes.

    Every process of a multi-process run must pass `fit` the same parameters, optimizer state,
    key and data (or global arrays); a checksum per argument is gathered and compared. A
    collective: `fit` calls it, from every process, only in runs of several processes.
    """
    from jax.experimental import multihost_utils

    digests = [np.array([digest(a) for a in jax.tree.leaves(v)], np.uint32) for v in named.values()]
    local = np.array([zlib.crc32(d.tobytes()) for d in digests], np.uint32)
    every = multihost_utils.process_allgather(local)  # (processes, len(named))
    for i, k in enumerate(named):
        if not (every[:, i] == every[0, i]).all():
            raise ValueError(
                f"{k} differs between processes: every process must pass the same {k} (data "
                "that each process holds only a part of goes through "
                "jaxmlp.sharding.from_process_rows first)"
            )


def place_leaf(a: Any, sharding: NamedSharding, *, copy: bool = False) -> Any:
    """`a` as a global array laid out as `sharding` (a new buffer when `copy`)."""
    if isinstance(a, jax.Array) and jnp.issubdtype(a.dtype, jax.dtypes.prng_key):
        data = place_leaf(jax.random.key_data(a), sharding)
        return jax.random.wrap_key_data(data, impl=jax.random.key_impl(a))
    if jax.process_count() == 1:
        if copy and isinstance(a, jax.Array):
            # device_put may keep the source buffer as one of the copies, even with
            # may_alias=False: copy first, so donating the result never frees the caller's.
            a = jnp.array(a, copy=True)
        return jax.device_put(a, sharding)
    # Several processes: each builds its devices' pieces from its host copy (identical in every
    # process, checked by check_same_in_every_process), with no transfer between processes.
    host = np.asarray(host_value(a))
    host = host.astype(jax.dtypes.canonicalize_dtype(host.dtype))
    return jax.make_array_from_callback(host.shape, sharding, lambda index: host[index])


def place(tree: Any, sharding: NamedSharding | Any, *, copy: bool = False) -> Any:
    """Every leaf of `tree` laid out as `sharding` (one sharding, or a tree of them).

    Args:
      tree: arrays, numbers or PRNG keys.
      sharding: a `NamedSharding` for every leaf, or a tree of them matching `tree`'s leaves.
      copy: always make new buffers (for arrays a compiled program will donate).
    """
    if isinstance(sharding, NamedSharding):
        return jax.tree.map(lambda a: place_leaf(a, sharding, copy=copy), tree)
    return jax.tree.map(lambda a, s: place_leaf(a, s, copy=copy), tree, sharding)
