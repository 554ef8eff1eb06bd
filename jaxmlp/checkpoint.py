"""Checkpoints: the net, params, optimizer state and metadata in one file, without pickle.

A checkpoint is a NumPy ``.npz`` archive holding one array per leaf and a JSON header that
describes the architecture, the layout of the trees and the user's metadata. Loading reads
arrays with ``allow_pickle=False`` and rebuilds trees only from plain containers (tuple, list,
dict) and NamedTuple types looked up by name in a registry: jaxmlp's optimizer states
(`jaxmlp.optim.STATE_TYPES`) and schedules (`jaxmlp.schedules.TYPES`), plus the types a user
adds with `register`. A checkpoint from an untrusted source cannot run code. A SHA-256 digest
over the header and every array detects truncation and tampering. Writes are atomic: the file is
written beside its destination, flushed to disk, then renamed over it, so a crash mid-write
leaves the previous checkpoint intact.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import zipfile
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from jaxmlp import optim, schedules
from jaxmlp._checks import check_params
from jaxmlp.model import MLP, Params

FORMAT = "jaxmlp-checkpoint"
VERSION = 1
_HEADER = "__header__"


class Checkpoint(NamedTuple):
    """What `load` returns."""

    net: MLP
    params: Params
    opt_state: Any
    key: jax.Array | None
    metadata: dict


class CheckpointError(ValueError):
    """A checkpoint file that cannot be loaded: truncated, modified, or not a checkpoint."""


# The NamedTuple types a checkpoint may name, by class name: jaxmlp's optimizer states and
# schedules, and the types given to `register`. Loading looks names up here and nowhere else.
_REGISTRY: dict[str, type] = {cls.__name__: cls for cls in (*optim.STATE_TYPES, *schedules.TYPES)}


def register(cls: type) -> type:
    """Let checkpoints hold instances of `cls`, a NamedTuple type (e.g. your own optimizer state).

    Its fields may hold arrays, numbers, None, tuples, lists, dicts with string keys and
    registered NamedTuples. A checkpoint names the type by its class name: a program that loads
    one registers the same class first. Loading still runs no code from the file: it only calls
    registered classes with the fields it read.

    Args:
      cls: a NamedTuple class, not already registered under another class of the same name.

    Returns:
      `cls`, so that ``@checkpoint.register`` decorates a class definition.

    >>> from typing import NamedTuple
    >>> @jm.checkpoint.register
    ... class HalvingState(NamedTuple):
    ...     count: jax.Array
    ...     scale: jax.Array
    >>> jm.checkpoint.register(HalvingState) is HalvingState  # again: nothing changes
    True
    """
    if not (isinstance(cls, type) and issubclass(cls, tuple) and hasattr(cls, "_fields")):
        raise TypeError(f"register takes a NamedTuple class; got {cls!r:.80}")
    taken = _REGISTRY.setdefault(cls.__name__, cls)
    if taken is not cls:
        raise ValueError(
            f"cannot register {cls.__module__}.{cls.__qualname__}: the name {cls.__name__!r} is "
            f"taken by {taken.__module__}.{taken.__qualname__}; give the class another name"
        )
    return cls


def _encode(tree: Any, leaves: list) -> Any:
    """JSON description of `tree`; arrays are appended to `leaves` and named by index."""
    if tree is None:
        return None
    if isinstance(tree, tuple) and hasattr(tree, "_fields"):
        name = type(tree).__name__
        if _REGISTRY.get(name) is not type(tree):
            raise TypeError(
                f"cannot save a {name}: only jaxmlp's own state types are supported (register "
                "a NamedTuple type of your own with jaxmlp.checkpoint.register)"
            )
        fields = {f: _encode(getattr(tree, f), leaves) for f in tree._fields}
        return {"type": name, "fields": fields}
    if isinstance(tree, (tuple, list)):
        return {"type": type(tree).__name__, "items": [_encode(t, leaves) for t in tree]}
    if isinstance(tree, dict):
        if not all(isinstance(k, str) for k in tree):
            raise TypeError("cannot save a dict with non-string keys")
        return {"type": "dict", "items": {k: _encode(v, leaves) for k, v in tree.items()}}
    arr = np.asarray(tree)
    if not (np.issubdtype(arr.dtype, np.number) or np.issubdtype(arr.dtype, np.bool_)):
        raise TypeError(f"cannot save a leaf of type {type(tree).__name__}")
    leaves.append(arr)
    return {"leaf": len(leaves) - 1}


def _decode(desc: Any, arrays: list[np.ndarray]) -> Any:
    if desc is None:
        return None
    if not isinstance(desc, dict):
        raise CheckpointError(f"malformed tree description: {desc!r:.80}")
    if "leaf" in desc:
        i = desc["leaf"]
        if not isinstance(i, int) or not 0 <= i < len(arrays):
            raise CheckpointError(f"tree description names a missing array {i!r}")
        return jnp.asarray(arrays[i])
    kind = desc.get("type")
    if kind in ("tuple", "list"):
        items = [_decode(d, arrays) for d in desc["items"]]
        return tuple(items) if kind == "tuple" else items
    if kind == "dict":
        return {k: _decode(v, arrays) for k, v in desc["items"].items()}
    cls = _REGISTRY.get(kind)
    if cls is None:
        raise CheckpointError(f"checkpoint names an unknown type {kind!r}")
    fields = desc.get("fields", {})
    if set(fields) != set(cls._fields):
        raise CheckpointError(f"{kind} in the checkpoint has fields {sorted(fields)}")
    return cls(**{f: _decode(fields[f], arrays) for f in cls._fields})


def _digest(header: dict, arrays: list[np.ndarray]) -> str:
    h = hashlib.sha256(json.dumps(header, sort_keys=True).encode())
    for arr in arrays:
        h.update(f"{arr.dtype.str}{arr.shape}".encode())
        h.update(np.ascontiguousarray(arr).tobytes())
    return h.hexdigest()


def save(
    path: str | os.PathLike, net: MLP, params: Params, opt_state: Any = None, *,
    key: jax.Array | None = None, metadata: dict | None = None,
) -> None:  # fmt: skip
    """Write a checkpoint atomically: the net, params, optimizer state, a PRNG key, metadata.

    Args:
      path: destination file (conventionally ``….npz``); its directory must exist.
      net: the architecture.
      params: the parameters of `net`.
      opt_state: an optimizer state from `jaxmlp.optim`, or made of types given to `register`
        (or None).
      key: a JAX PRNG key to store (for resuming a run bit-exactly), or None.
      metadata: JSON-serializable training metadata (epoch, hyperparameters, history, …).
    """
    check_params(net, params)
    leaves: list[np.ndarray] = []
    trees = {"params": _encode(params, leaves), "opt_state": _encode(opt_state, leaves)}
    key_info = None
    if key is not None:
        if not jnp.issubdtype(key.dtype, jax.dtypes.prng_key):
            key = jax.random.wrap_key_data(key)
        key_info = {"impl": str(jax.random.key_impl(key)), "leaf": len(leaves)}
        leaves.append(np.asarray(jax.random.key_data(key)))
    try:
        meta = json.loads(json.dumps(metadata or {}))
    except (TypeError, ValueError) as err:
        raise TypeError(f"metadata must be JSON-serializable: {err}") from err
    architecture = {"sizes": list(net.sizes), "activations": list(net.activations)}
    header = dict(
        format=FORMAT, version=VERSION, net=architecture, trees=trees, key=key_info, metadata=meta
    )
    header["sha256"] = _digest(header, leaves)
    payload = {f"a{i}": arr for i, arr in enumerate(leaves)}
    payload[_HEADER] = np.frombuffer(json.dumps(header).encode(), dtype=np.uint8)
    _write_atomically(path, payload)


def _write_atomically(path: str | os.PathLike, arrays: dict[str, np.ndarray]) -> None:
    """Save `arrays` as an ``.npz`` beside `path`, flush it to disk, then rename it over `path`."""
    directory = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=".npz", dir=directory)
    try:
        with os.fdopen(fd, "wb") as f:
            np.savez(f, **arrays)
            f.flush()
            os.fsync(f.fileno())
        # mkstemp creates the file private (0600); give it the permissions of a normal file.
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
        os.replace(tmp, path)
    finally:  # after a failure (even KeyboardInterrupt), leave no temporary file behind
        if os.path.exists(tmp):
            os.remove(tmp)


def load(path: str | os.PathLike) -> Checkpoint:
    """Read a checkpoint written by `save`; never runs code from the file.

    Returns:
      A `Checkpoint` ``(net, params, opt_state, key, metadata)``.

    Raises:
      FileNotFoundError; `CheckpointError` (a ValueError) for a file that is truncated,
      modified after it was written, or not a jaxmlp checkpoint.
    """
    path = os.fspath(path)
    header, arrays = _read(path)
    if not isinstance(header, dict) or header.get("format") != FORMAT:
        raise CheckpointError(f"{path} is not a jaxmlp checkpoint")
    if header.get("version") != VERSION:
        raise CheckpointError(
            f"{path} has checkpoint format version {header.get('version')!r}; "
            f"this jaxmlp reads version {VERSION}"
        )
    if header.pop("sha256", None) != _digest(header, arrays):  # the digest of all the rest
        raise CheckpointError(
            f"{path} does not match its SHA-256 digest: the file was modified or damaged"
        )
    try:
        net = MLP(tuple(header["net"]["sizes"]), tuple(header["net"]["activations"]))
        params = _decode(header["trees"]["params"], arrays)
        check_params(net, params)
        opt_state = _decode(header["trees"]["opt_state"], arrays)
        key, key_info = None, header.get("key")
        if key_info:
            bits = jnp.asarray(arrays[key_info["leaf"]])
            key = jax.random.wrap_key_data(bits, impl=key_info["impl"])
    except CheckpointError:
        raise
    except (KeyError, TypeError, ValueError) as err:
        raise CheckpointError(f"{path} holds an inconsistent checkpoint: {err}") from err
    return Checkpoint(net, params, opt_state, key, header.get("metadata", {}))


def _read(path: str) -> tuple[Any, list[np.ndarray]]:
    """The JSON header and the arrays of the checkpoint file at `path`, read without pickle."""
    if not os.path.exists(path):
        raise FileNotFoundError(f"checkpoint not found: {path}")
    try:
        with open(path, "rb") as f, np.load(f, allow_pickle=False) as data:
            if _HEADER not in data.files:
                raise CheckpointError(f"{path} is not a jaxmlp checkpoint (no header)")
            header = json.loads(data[_HEADER].tobytes().decode())
            arrays = [data[f"a{i}"] for i in range(sum(f != _HEADER for f in data.files))]
    except CheckpointError:
        raise
    except (zipfile.BadZipFile, OSError, EOFError, KeyError, ValueError) as err:
        raise CheckpointError(
            f"{path} is not a readable checkpoint (truncated or corrupted?): {err}"
        ) from err
    return header, arrays
