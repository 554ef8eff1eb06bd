"""Checkpoints: the net, params, optimizer state and metadata in one file, without pickle.

A checkpoint is a NumPy ``.npz`` archive holding one array per leaf and a JSON header that
describes the architecture, the layout of the trees and the user's metadata. Loading reads
arrays with ``allow_pickle=False`` and rebuilds trees only from plain containers (tuple, list,
dict) and NamedTuple types looked up by name in a registry: jaxmlp's optimizer states
(`jaxmlp.optim.STATE_TYPES`), schedules (`jaxmlp.schedules.TYPES`) and early stopping's state
(`jaxmlp.early_stopping.Watch`), plus the types a user adds with `register`. A checkpoint from
an untrusted source cannot run code. A SHA-256 digest over the header and every array detects
truncation and tampering. Writes are atomic: the file is
written beside its destination, flushed to disk, then renamed over it, so a crash mid-write
leaves the previous checkpoint intact.

Loading a hostile or damaged file costs bounded time and memory, and every way it can be wrong
raises `CheckpointError`. Before it decompresses anything, `load` reads the zip's directory and
refuses entries other than those `save` writes (``__header__.npy``, ``a0.npy``, ``a1.npy``, …,
each once), entries encrypted or compressed otherwise than by deflate, sizes that lie (a stored
entry's two sizes differ, or the entries claim more bytes than the file holds), and entries
whose sizes uncompressed add up to more than `MAX_EXPANSION` (32) times the size of the file: a
zip bomb, a small file that would inflate to gigabytes. `save` writes arrays uncompressed, so
its files stay far below that; set ``jaxmlp.checkpoint.MAX_EXPANSION`` higher to load one
recompressed harder. Each entry's ``.npy`` header is then parsed (at most 10,000 bytes, by
`ast.literal_eval`) and checked, a plain numeric or boolean dtype and a shape whose size is what
the entry holds, before its array is allocated; and no entry is read past its declared size. The
JSON header is refused, before it is parsed, if it nests more than `MAX_DEPTH` (100) levels deep.
What a load reads is thus at most `MAX_EXPANSION` times the size of the file; it holds the arrays
twice (as read, then as JAX arrays), and the JSON header as Python objects, some 25 times its
size at worst; time is linear in it. A file's own size is not bounded: `save`'s are read whole.
"""

from __future__ import annotations

import ast
import collections
import hashlib
import json
import math
import os
import re
import struct
import sys
import tempfile
import zipfile
import zlib
from typing import Any, NamedTuple, cast

import jax
import jax.numpy as jnp
import numpy as np

from jaxmlp import early_stopping, optim, schedules
from jaxmlp._checks import check_params
from jaxmlp.model import MLP, Params

FORMAT = "jaxmlp-checkpoint"
VERSION = 1
_HEADER = "__header__.npy"

MAX_EXPANSION = 32
"""`load` refuses a file whose entries declare more than this many times its size, uncompressed."""
MAX_DEPTH = 100
"""`load` refuses a JSON header that nests arrays and objects deeper than this."""
_MAX_NPY_HEADER = 10_000  # bytes; NumPy's own limit for a header it parses without pickle
_MAX_NDIM = 32
# The dtypes a leaf may have, by their ``.npy`` descriptions ('<f4', '>i8', '|b1', …).
_DESCRS = frozenset(
    np.dtype(t).newbyteorder(order).str
    for t in ("bool", "int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64",
              "float16", "float32", "float64", "complex64", "complex128")
    for order in ("<", ">")
)  # fmt: skip
# For `_json_depth`: a JSON string; and each byte's step in depth, +1 for [ {, -1 (255) for ] }.
_JSON_STRING = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"', re.DOTALL)
_JSON_NESTING = bytes(1 if c in b"[{" else 255 if c in b"]}" else 0 for c in range(256))
# What zipfile, zlib and the file system raise for a file that is not a readable zip archive.
_ZIP_ERRORS = (zipfile.BadZipFile, zlib.error, struct.error, OSError, EOFError, ValueError,
               NotImplementedError)  # fmt: skip


class Checkpoint(NamedTuple):
    """What `load` returns."""

    net: MLP
    params: Params
    opt_state: Any
    key: jax.Array | None
    metadata: dict
    extra: dict = {}  # more named trees (``save(..., extra=)``): e.g. early stopping's state


class CheckpointError(ValueError):
    """A checkpoint file that cannot be loaded: truncated, modified, or not a checkpoint."""


class _DamagedError(Exception):
    """What is wrong with the contents of an archive (`_read` names the file)."""


# The NamedTuple types a checkpoint may name, by class name: jaxmlp's optimizer states and
# schedules, and the types given to `register`. Loading looks names up here and nowhere else.
_REGISTRY: dict[str, type[Any]] = {
    cls.__name__: cls for cls in (*optim.STATE_TYPES, *schedules.TYPES, early_stopping.Watch)
}


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


def _decode(desc: Any, leaves: list[jax.Array]) -> Any:
    """The tree that `desc` (written by `_encode`) describes, its leaves taken from `leaves`."""
    if desc is None:
        return None
    if not isinstance(desc, dict):
        raise CheckpointError(f"malformed tree description: {desc!r:.80}")
    if "leaf" in desc:
        return _leaf(desc["leaf"], leaves)
    kind, items = desc.get("type"), desc.get("items")
    if kind in ("tuple", "list", "dict"):
        if not isinstance(items, dict if kind == "dict" else list):
            raise CheckpointError(f"a {kind} in the tree description has items {items!r:.80}")
        if kind == "dict":
            assert isinstance(items, dict)  # checked above, by a type mypy cannot follow
            return {k: _decode(v, leaves) for k, v in items.items()}
        decoded = [_decode(d, leaves) for d in items]
        return tuple(decoded) if kind == "tuple" else decoded
    cls = _REGISTRY.get(kind) if isinstance(kind, str) else None
    if cls is None:
        raise CheckpointError(
            f"it names an unknown type {kind!r:.80} (loading knows jaxmlp's state and schedule "
            "types and those given to jaxmlp.checkpoint.register)"
        )
    fields = desc.get("fields", {})
    if not isinstance(fields, dict) or set(fields) != set(cls._fields):
        got = sorted(fields) if isinstance(fields, dict) else fields
        raise CheckpointError(f"{kind} in the checkpoint has fields {got!r:.200}")
    return cls(**{f: _decode(fields[f], leaves) for f in cls._fields})


def _leaf(i: Any, leaves: list[jax.Array]) -> jax.Array:
    """Leaf `i` of the checkpoint."""
    if type(i) is not int or not 0 <= i < len(leaves):
        raise CheckpointError(f"tree description names a missing array {i!r:.80}")
    return leaves[i]


def _digest(header: dict, arrays: list[np.ndarray]) -> str:
    h = hashlib.sha256(json.dumps(header, sort_keys=True).encode())
    for arr in arrays:
        h.update(f"{arr.dtype.str}{arr.shape}".encode())
        h.update(np.ascontiguousarray(arr).tobytes())
    return h.hexdigest()


def save(
    path: str | os.PathLike, net: MLP, params: Params, opt_state: Any = None, *,
    key: jax.Array | None = None, metadata: dict | None = None, extra: dict | None = None,
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
      extra: more trees by name, of the types `opt_state` may hold (``{"early_stopping":
        snapshot.early_state}``); `load` returns them as ``Checkpoint.extra``.
    """
    check_params(net, params)
    leaves: list[np.ndarray] = []
    trees = {"params": _encode(params, leaves), "opt_state": _encode(opt_state, leaves)}
    if extra:
        if not all(isinstance(k, str) for k in extra):
            raise TypeError(f"extra must map names (strings) to trees; got keys {list(extra)}")
        trees["extra"] = _encode(dict(extra), leaves)
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
    text = json.dumps(header)
    if _json_depth(text) > MAX_DEPTH:
        raise ValueError(
            f"cannot save metadata or an optimizer state nested deeper than {MAX_DEPTH} levels: "
            "load would refuse the checkpoint"
        )
    payload = {f"a{i}": arr for i, arr in enumerate(leaves)}
    payload[_HEADER.removesuffix(".npy")] = np.frombuffer(text.encode(), dtype=np.uint8)
    _write_atomically(path, payload)


def _write_atomically(path: str | os.PathLike, arrays: dict[str, np.ndarray]) -> None:
    """Save `arrays` as an ``.npz`` beside `path`, flush it to disk, then rename it over `path`."""
    directory = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=".npz", dir=directory)
    try:
        with os.fdopen(fd, "wb") as f:
            # Any: savez types **kwds as if one could be allow_pickle; ours are a0, a1, … __header__
            np.savez(f, **cast("dict[str, Any]", arrays))
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

    However damaged or hostile the file, loading takes bounded time and memory: entries other
    than a checkpoint's, or that declare more than `MAX_EXPANSION` times the size of the file
    uncompressed, are refused before anything is decompressed, each array's ``.npy`` header
    before its data is read, and a JSON header nested deeper than `MAX_DEPTH` before it is
    parsed (see the module's docstring).

    Returns:
      A `Checkpoint` ``(net, params, opt_state, key, metadata)``.

    Raises:
      FileNotFoundError: there is no such file.
      CheckpointError: (a ValueError) the file is truncated, modified after it was written, or
        not a jaxmlp checkpoint; the message names the file and says what is wrong.
    """
    path = os.fspath(path)
    header, arrays = _read(path)
    if not isinstance(header, dict) or header.get("format") != FORMAT:
        raise CheckpointError(f"{path} is not a jaxmlp checkpoint")
    if header.get("version") != VERSION:
        raise CheckpointError(
            f"{path} has checkpoint format version {header.get('version')!r:.80}; "
            f"this jaxmlp reads version {VERSION}"
        )
    if header.pop("sha256", None) != _digest(header, arrays):  # the digest of all the rest
        raise CheckpointError(
            f"{path} does not match its SHA-256 digest: the file was modified or damaged"
        )
    try:
        return _rebuild(header, arrays)
    except (TypeError, ValueError) as err:  # CheckpointError is a ValueError
        raise CheckpointError(f"{path} holds an inconsistent checkpoint: {err!s:.1000}") from err


def _field(where: str, obj: Any, key: str, kinds: type | tuple[type, ...]) -> Any:
    """``obj[key]``: `obj` must be a dict that holds `key`, its value an instance of `kinds`."""
    if not isinstance(obj, dict) or key not in obj:
        raise CheckpointError(f"{where} has no field {key!r}: {obj!r:.80}")
    if not isinstance(obj[key], kinds):
        raise CheckpointError(f"{where}[{key!r}] is {obj[key]!r:.80}")
    return obj[key]


def _rebuild(header: dict, arrays: list[np.ndarray]) -> Checkpoint:
    """The checkpoint that a header, its digest checked, and its arrays describe."""
    # Each array becomes a JAX array once, however many times the trees name it; by
    # `jax.device_put`, not `jnp.asarray`, which compiles a function for each new shape (20 ms
    # and 1 MB each): a small file of many arrays of distinct shapes would load for minutes.
    native = [a if a.dtype.isnative else a.astype(a.dtype.newbyteorder("=")) for a in arrays]
    leaves = [jax.device_put(a) for a in native]
    arch = _field("the header", header, "net", dict)
    sizes = _field("net", arch, "sizes", list)
    net = MLP(tuple(sizes), tuple(_field("net", arch, "activations", list)))
    trees = _field("the header", header, "trees", dict)
    params = _decode(_field("trees", trees, "params", dict), leaves)
    check_params(net, params)
    opt_state = _decode(_field("trees", trees, "opt_state", (dict, type(None))), leaves)
    key, key_info = None, header.get("key")
    if key_info is not None:
        bits = _leaf(_field("key", key_info, "leaf", int), leaves)
        key = jax.random.wrap_key_data(bits, impl=_field("key", key_info, "impl", str))
    extra = _decode(trees["extra"], leaves) if "extra" in trees else {}
    if not isinstance(extra, dict):
        raise CheckpointError(f"trees['extra'] is not a dict of trees: {type(extra).__name__}")
    return Checkpoint(net, params, opt_state, key, header.get("metadata", {}), extra)


def _read(path: str) -> tuple[Any, list[np.ndarray]]:
    """The JSON header and the arrays of the checkpoint file at `path`, read without pickle."""
    if not os.path.exists(path):
        raise FileNotFoundError(f"checkpoint not found: {path}")
    try:
        with open(path, "rb") as f, zipfile.ZipFile(f) as zf:
            infos = _entries(path, zf.infolist(), os.fstat(f.fileno()).st_size)
            arrays = {info.filename: _read_npy(zf, info) for info in infos}
        header = _parse_header(arrays.pop(_HEADER))
    except CheckpointError:  # already says what is wrong
        raise
    except _DamagedError as err:
        raise CheckpointError(f"{path} is not a readable checkpoint: {err}") from None
    except _ZIP_ERRORS as err:
        raise CheckpointError(
            f"{path} is not a readable checkpoint (truncated or corrupted?): {err}"
        ) from err
    return header, [arrays[f"a{i}.npy"] for i in range(len(arrays))]


def _entries(path: str, infos: list[zipfile.ZipInfo], file_size: int) -> list[zipfile.ZipInfo]:
    """The archive's entries, once checked: the names, the compression and the sizes."""
    names = [info.filename for info in infos]
    if _HEADER not in names:
        raise CheckpointError(f"{path} is not a jaxmlp checkpoint (no header)")
    expected = {_HEADER, *(f"a{i}.npy" for i in range(len(names) - 1))}
    if len(set(names)) != len(names):
        repeated = sorted(n for n, count in collections.Counter(names).items() if count > 1)
        raise _DamagedError(f"it holds entries more than once: {repeated[:3]!r:.200}")
    if set(names) != expected:
        extra, missing = sorted(set(names) - expected), sorted(expected - set(names))
        raise _DamagedError(
            f"its entries are not __header__.npy, a0.npy, a1.npy, …: it holds {extra[:3]!r:.200} "
            f"and lacks {missing[:3]}"
        )
    for info in infos:
        if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
            raise _DamagedError(
                f"{info.filename} is compressed by method {info.compress_type}; a checkpoint's "
                "entries are stored or deflated"
            )
        if info.flag_bits & 0x61:  # encrypted (bit 0), patched (5), strongly encrypted (6)
            raise _DamagedError(
                f"{info.filename} is encrypted or patched (zip flags {info.flag_bits:#x})"
            )
        if info.compress_type == zipfile.ZIP_STORED and info.file_size != info.compress_size:
            raise _DamagedError(f"{info.filename} is stored, yet its sizes differ")
    if sum(info.compress_size for info in infos) > file_size:
        raise _DamagedError(f"its entries claim more bytes than the file's {file_size:,}")
    total = sum(info.file_size for info in infos)
    if total > MAX_EXPANSION * file_size:
        raise _DamagedError(
            f"its entries declare {total:,} bytes uncompressed in a file of {file_size:,} bytes, "
            f"more than MAX_EXPANSION = {MAX_EXPANSION} times as many (a zip bomb?); raise "
            "jaxmlp.checkpoint.MAX_EXPANSION to load a file compressed that much"
        )
    return infos


def _read_npy(zf: zipfile.ZipFile, info: zipfile.ZipInfo) -> np.ndarray:
    """The array in the ``.npy`` entry `info`: its header checked before its data is read."""
    name = info.filename
    with zf.open(info) as f:
        assert isinstance(f, zipfile.ZipExtFile)  # typed IO[bytes], which lacks readinto
        magic = f.read(8)
        if magic[:6] != b"\x93NUMPY" or magic[6:] not in (b"\1\0", b"\2\0", b"\3\0"):
            raise _DamagedError(f"{name} is not a .npy array of format 1, 2 or 3: {magic!r}")
        width = 2 if magic[6] == 1 else 4
        length = int.from_bytes(f.read(width), "little")
        if length > _MAX_NPY_HEADER:
            raise _DamagedError(f"{name} has a {length:,}-byte array header, over NumPy's limit")
        text = f.read(length)
        if len(text) != length:
            raise _DamagedError(f"{name} ends inside its array header")
        shape, fortran, dtype = _npy_header(name, text.decode("latin1"))
        size = info.file_size - 8 - width - length
        if math.prod(shape) * dtype.itemsize != size:
            raise _DamagedError(
                f"{name} holds {max(size, 0):,} bytes of data: not those of a {dtype} array of "
                f"shape {shape!r:.100}"
            )
        data = bytearray(size)  # at most the declared size, which _entries bounded
        view, done = memoryview(data), 0
        while done < size:
            n = f.readinto(view[done : done + 2**20])
            if not n:
                raise _DamagedError(f"{name} ends after {done:,} of its {size:,} bytes of data")
            done += n
    return np.frombuffer(data, dtype).reshape(shape, order="F" if fortran else "C")


def _npy_header(name: str, text: str) -> tuple[tuple[int, ...], bool, np.dtype]:
    """The shape, order and dtype that a ``.npy`` header describes, or `_DamagedError`."""
    if "\\" in text or not text.isascii():  # NumPy writes neither escapes nor other characters
        raise _DamagedError(f"{name} has an array header that is not plain ASCII: {text!r:.100}")
    try:  # errors of the parser: a syntax error, a dict of lists, a stack overflow
        d = ast.literal_eval(text)
    except (SyntaxError, ValueError, TypeError, MemoryError, RecursionError) as err:
        raise _DamagedError(f"{name} has an unreadable array header {text!r:.100}: {err}") from None
    if not isinstance(d, dict) or set(d) != {"descr", "fortran_order", "shape"}:
        raise _DamagedError(f"{name} has an array header without its 3 fields: {text!r:.100}")
    descr, fortran, shape = d["descr"], d["fortran_order"], d["shape"]
    if not isinstance(descr, str) or descr not in _DESCRS:
        raise _DamagedError(f"{name} holds an array of dtype {descr!r:.80}, not numbers")
    if type(fortran) is not bool:
        raise _DamagedError(f"{name} has an array header with fortran_order={fortran!r:.80}")
    dtype = np.dtype(descr)
    valid = isinstance(shape, tuple) and len(shape) <= _MAX_NDIM
    valid = valid and all(type(n) is int and n >= 0 for n in shape)
    # and within NumPy's limit on the size of an array, which holds for empty arrays too
    if not valid or math.prod(max(n, 1) for n in shape) * dtype.itemsize > sys.maxsize:
        raise _DamagedError(f"{name} holds an array of invalid shape {shape!r:.100}")
    return shape, fortran, dtype


def _json_depth(text: str) -> int:
    """How deep the JSON `text` nests arrays and objects, counted without parsing it."""
    outside = _JSON_STRING.sub("", text).encode()
    steps = np.frombuffer(outside.translate(_JSON_NESTING), np.int8)
    return int(np.cumsum(steps, dtype=np.int32).max(initial=0))


def _parse_header(arr: np.ndarray) -> Any:
    """The JSON header, from the bytes of ``__header__.npy``."""
    if arr.dtype != np.uint8 or arr.ndim != 1:
        raise _DamagedError(f"its header is a {arr.dtype} array of shape {arr.shape}, not bytes")
    try:
        text = arr.tobytes().decode("utf-8")
    except UnicodeDecodeError as err:
        raise _DamagedError(f"its header is not UTF-8 text: {err}") from None
    depth = _json_depth(text)
    if depth > MAX_DEPTH:
        raise _DamagedError(f"its JSON header nests {depth:,} levels deep, more than {MAX_DEPTH}")
    try:
        return json.loads(text)
    except ValueError as err:
        raise _DamagedError(f"its header is not valid JSON: {err}") from None
