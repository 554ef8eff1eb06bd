"""Fuzzing `jaxmlp.checkpoint.load` with damaged and hostile checkpoints.

Thousands of mutations of one valid checkpoint, in classes: truncations at every length, byte
flips, edits of the zip's fields, of the ``.npy`` headers (with valid CRCs), of the JSON header
and of the arrays (with the SHA-256 digest recomputed, so that the checks after the digest are
exercised), entries dropped, renamed, duplicated or recompressed, and zip bombs. Each must raise
`CheckpointError`, whose message names the file, or, rarely, load as a well-formed checkpoint;
never another exception, never code from the file. The bounds checked: every load takes under
`LOAD_SECONDS` (2 s), the peak RSS of the process grows by under `GROWTH_MB` (100 MB) while a
class loads (its mutations made beforehand), and the Python heap (tracemalloc, which sees
NumPy's and zlib's buffers) peaks under `GROWTH_MB` while a gigabyte bomb loads. Seeds are
fixed: every run tries the same inputs. ``-s`` prints the counts, per class and kind.

The named tests at the end are the inputs the fuzz found that the loader once got wrong.
"""

from __future__ import annotations

import base64
import bz2
import io
import json
import random
import resource
import struct
import sys
import time
import tracemalloc
import zipfile
import zlib
from collections import Counter
from collections.abc import Iterator
from typing import Any, NamedTuple

import jax
import numpy as np
import pytest

import jaxmlp as jm
from jaxmlp import checkpoint
from jaxmlp.checkpoint import CheckpointError

NET = jm.MLP((2, 4, 3), ("relu", "softmax"))
LOAD_SECONDS = 2.0  # the most one load may take, however hostile the file
GROWTH_MB = 100  # the most a class may grow the peak RSS, or a bomb the traced heap
MIN_MUTATIONS = 5000

Mutation = tuple[str, bytes]  # (kind, the bytes of the file)


def write_valid(path) -> None:
    params = jm.init_params(jax.random.key(0), NET)
    opt = jm.optim.adam(1e-3)
    metadata = {"epoch": 3, "history": [0.5, 0.25], "note": "fuzz"}
    checkpoint.save(path, NET, params, opt.init(params), key=jax.random.key(1), metadata=metadata)


@pytest.fixture(scope="module")
def valid(tmp_path_factory) -> bytes:
    path = tmp_path_factory.mktemp("valid") / "ckpt.npz"
    write_valid(path)
    return path.read_bytes()


# ---------------------------------------------------------------------------------------------
# Taking a checkpoint apart and writing archives byte by byte (duplicates, lies and all).


class Parts(NamedTuple):
    header: dict  # the JSON header without its digest
    arrays: list  # a0, a1, ...
    npy: dict  # entry name -> the entry's .npy bytes, in archive order


def parts(data: bytes) -> Parts:
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        npy = {name: zf.read(name) for name in zf.namelist()}
    header = json.loads(np.load(io.BytesIO(npy["__header__.npy"])).tobytes())
    header.pop("sha256")
    arrays = [np.load(io.BytesIO(npy[f"a{i}.npy"])) for i in range(len(npy) - 1)]
    return Parts(header, arrays, npy)


class Entry(NamedTuple):
    name: str | bytes
    stored: bytes  # as in the archive: compressed unless method is 0
    crc: int
    size: int  # the uncompressed size the directory declares
    method: int = 0
    flags: int = 0


def entry(name: str | bytes, content: bytes, method: int = 0, *, size=None, flags=0) -> Entry:
    stored = content
    if method == zipfile.ZIP_DEFLATED:
        c = zlib.compressobj(9, zlib.DEFLATED, -15)
        stored = c.compress(content) + c.flush()
    elif method == zipfile.ZIP_BZIP2:
        stored = bz2.compress(content)
    size = len(content) if size is None else size
    return Entry(name, stored, zlib.crc32(content), size, method, flags)


def archive(entries, *, prefix: bytes = b"", suffix: bytes = b"") -> bytes:
    """A zip archive of `entries`, written field by field (ZIP64 sizes where they need it)."""
    out, central = bytearray(), bytearray()
    for e in entries:
        name = e.name.encode() if isinstance(e.name, str) else e.name
        big = max(e.size, len(e.stored)) >= 0xFFFFFFFF
        extra = struct.pack("<HHQQ", 1, 16, e.size, len(e.stored)) if big else b""
        size, csize = (0xFFFFFFFF, 0xFFFFFFFF) if big else (e.size, len(e.stored))
        fields = struct.pack("<4H3L2H", e.flags, e.method, 0, 0x21, e.crc, csize, size,
                             len(name), len(extra))  # fmt: skip
        central += b"PK\1\2" + struct.pack("<2H", 45, 45) + fields
        central += struct.pack("<3H2L", 0, 0, 0, 0, len(out)) + name + extra
        out += b"PK\3\4" + struct.pack("<H", 45) + fields + name + extra + e.stored
    n = len(entries)
    end = b"PK\5\6" + struct.pack("<4H2LH", 0, 0, n, n, len(central), len(out), 0)
    return prefix + bytes(out + central) + end + suffix


def npy_bytes(arr, *, allow_pickle: bool = False) -> bytes:
    buf = io.BytesIO()
    np.lib.format.write_array(buf, np.asanyarray(arr), allow_pickle=allow_pickle)
    return buf.getvalue()


def sealed(header: Any, arrays) -> str:
    """`header` as JSON text with its digest recomputed (a dict) or as it is (anything else)."""
    if not isinstance(header, dict):
        return json.dumps(header)
    body = {k: v for k, v in header.items() if k != "sha256"}
    return json.dumps({**body, "sha256": checkpoint._digest(body, list(arrays))})


def ckpt(header_text: str | bytes, arrays, *, npy: dict | None = None) -> bytes:
    """A checkpoint archive: the arrays (or the raw `npy` entries) and the header text."""
    raw = header_text.encode() if isinstance(header_text, str) else header_text
    npy = dict(npy or {f"a{i}.npy": npy_bytes(a) for i, a in enumerate(arrays)})
    npy["__header__.npy"] = npy_bytes(np.frombuffer(raw, np.uint8))
    return archive([entry(name, content) for name, content in npy.items()])


def inflating(prefix: bytes, n_mib: int) -> tuple[bytes, int]:
    """A raw deflate stream of `prefix` then `n_mib` MiB of zeros, and its CRC; made fast: after
    a full flush, each MiB of zeros compresses to the same bytes."""
    c, zeros = zlib.compressobj(9, zlib.DEFLATED, -15), bytes(2**20)
    head = c.compress(prefix) + c.flush(zlib.Z_FULL_FLUSH)
    block = c.compress(zeros) + c.flush(zlib.Z_FULL_FLUSH)
    crc = zlib.crc32(prefix)
    for _ in range(n_mib):
        crc = zlib.crc32(zeros, crc)
    return head + block * n_mib + c.flush(), crc


# bz2.compress(bytes(2**28), 9): 256 MiB of zeros in 208 bytes (made once; it takes seconds).
BZ2_256_MIB = base64.b64decode(
    "QlpoOTFBWSZTWQ4J4t8BX45AAMAAAAggADCATUZCoCWpCoCXMUFZJlNZDgni3wFfjkAAwAAACCAAMIBNRkKgJakKgJcx"
    "QVkmU1kOCeLfAV+OQADAAAAIIAAwgE1GQqAlqQqAlzFBWSZTWQ4J4t8BX45AAMAAAAggADCATUZCoCWpCoCXMUFZJlNZ"
    "Dgni3wFfjkAAwAAACCAAMIBNRkKgJakKgJcxQVkmU1kezuTbASo/wADABAAIIAAwzAUppqqoSRsAIkjxdyRThQkGsXyv"
    "AA=="
)


# ---------------------------------------------------------------------------------------------
# The mutations, class by class. Each generator yields (kind, bytes); the kind is counted.


def layout(data: bytes) -> tuple[list, list, int]:
    """Offsets of the local headers, of the central directory's records, and of the end record."""
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        local, pos = [i.header_offset for i in zf.infolist()], zf.start_dir
    records = []
    while data[pos : pos + 4] == b"PK\1\2":
        records.append(pos)
        n, m, k = struct.unpack_from("<3H", data, pos + 28)
        pos += 46 + n + m + k
    return local, records, pos


def truncations(data: bytes) -> Iterator[Mutation]:
    """Every prefix of the file, from the empty file to all but the last byte."""
    local, records, end = layout(data)
    local_spans = []
    for off in local:
        n, m = struct.unpack_from("<2H", data, off + 26)
        local_spans.append(range(off, off + 30 + n + m))
    for cut in range(len(data)):
        if cut in (0, 1):
            kind = f"{cut} byte(s)"
        elif cut <= 8:
            kind = "a few bytes"
        elif cut == len(data) - 1:
            kind = "all but the last byte"
        elif cut >= end:
            kind = "inside the end record"
        elif cut >= records[0]:
            kind = "inside the central directory"
        elif any(cut in span for span in local_spans):
            kind = "inside a local header"
        else:
            kind = "inside an entry's data"
        yield f"truncated {kind}", data[:cut]


# (offset in the record, struct format) of the fields worth lying about.
CENTRAL_FIELDS = {"flags": (8, "H"), "method": (10, "H"), "crc": (16, "L"),
                  "compressed size": (20, "L"), "size": (24, "L"), "name length": (28, "H"),
                  "extra length": (30, "H"), "comment length": (32, "H"),
                  "offset": (42, "L")}  # fmt: skip
LOCAL_FIELDS = {"signature": (0, "L"), "flags": (6, "H"), "method": (8, "H"),
                "name length": (26, "H"), "extra length": (28, "H")}  # fmt: skip
END_FIELDS = {"disk": (4, "H"), "entries": (8, "H"), "total entries": (10, "H"),
              "directory size": (12, "L"), "directory offset": (16, "L"),
              "comment length": (20, "H")}  # fmt: skip


def lies(old: int, fmt: str) -> list[int]:
    top = 0xFFFF if fmt == "H" else 0xFFFFFFFF
    values = {0, 1, 6, 8, 9, 12, 14, 0x20, 0x40, 0x800, 99, top, top - 1, old ^ 0x8000}
    return sorted((values | {(old + 1) & top, (old - 1) & top}) - {old})


def flips(data: bytes) -> Iterator[Mutation]:
    """Random bit flips and byte changes, then lies in the zip's fields (a0, a4, a18, header)."""
    rng = random.Random(0)
    for _ in range(1500):
        b = bytearray(data)
        b[rng.randrange(len(b))] ^= 1 << rng.randrange(8)
        yield "flip one bit", bytes(b)
    for _ in range(500):
        b = bytearray(data)
        for _ in range(rng.randint(2, 8)):
            b[rng.randrange(len(b))] = rng.randrange(256)
        yield "change 2-8 random bytes", bytes(b)
    local, records, end = layout(data)
    fields = [(records[i], CENTRAL_FIELDS, "central") for i in (0, 4, 18, 19)]
    fields += [(local[i], LOCAL_FIELDS, "local") for i in (0, 4, 18, 19)]
    for base, table, where in [*fields, (end, END_FIELDS, "end record")]:
        for name, (off, fmt) in table.items():
            (old,) = struct.unpack_from("<" + fmt, data, base + off)
            for value in lies(old, fmt):
                b = bytearray(data)
                struct.pack_into("<" + fmt, b, base + off, value)
                yield f"zip field: {where} {name}", bytes(b)


NPY_TARGETS = ("a0.npy", "a4.npy", "a18.npy", "__header__.npy")
BAD_DESCRS = ["'|O'", "'<U1'", "'|S4'", "'|V4'", "[('a', '<f4')]", "[('a', '|O')]",
              "[('a', '<f4', (1000000000000,))]", "('<f4', (2,))", "'<M8[s]'", "'<m8'", "'<f16'",
              "'<c32'", "'>f4'", "'<i4'", "'<f8'", "'=f4'", "'bogus'", "1", "None", "'<f4,<f4'",
              "'(2,)<f4'", "'(1000000000000,)<f4'", "[1]", "[(1, 2, 3, 4)]", "{'a': 1}",
              "'<f' + '4'"]  # fmt: skip
NPY_HEADERS = [
    "{'descr': '<f4', 'fortran_order': False, 'shape': (1000000000000,), }",
    "{'descr': '<f4', 'fortran_order': False, 'shape': (4611686018427387904, 4), }",
    f"{{'descr': '<f4', 'fortran_order': False, 'shape': ({2**64}, {2**64}), }}",
    f"{{'descr': '<f4', 'fortran_order': False, 'shape': (0, {2**63 - 1}), }}",
    f"{{'descr': '<f4', 'fortran_order': False, 'shape': (0, {2**63}), }}",
    f"{{'descr': '<f4', 'fortran_order': False, 'shape': ({2**40}, 0, {2**40}), }}",
    f"{{'descr': '<f4', 'fortran_order': False, 'shape': (0, {10**18}), }}",
    "{'descr': '<f4', 'fortran_order': False, 'shape': (-1,), }",
    "{'descr': '<f4', 'fortran_order': False, 'shape': (-8, -1), }",
    "{'descr': '<f4', 'fortran_order': False, 'shape': (2, -4), }",
    "{'descr': '<f4', 'fortran_order': False, 'shape': (True, 8), }",
    "{'descr': '<f4', 'fortran_order': False, 'shape': (2.0, 4), }",
    "{'descr': '<f4', 'fortran_order': False, 'shape': (4, 2), }",
    "{'descr': '<f4', 'fortran_order': False, 'shape': (8,), }",
    "{'descr': '<f4', 'fortran_order': False, 'shape': (), }",
    "{'descr': '<f4', 'fortran_order': False, 'shape': (0,), }",
    "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 4" + ", 1" * 70 + "), }",
    "{'descr': '<f4', 'fortran_order': False, 'shape': [2, 4], }",
    "{'descr': '<f4', 'fortran_order': True, 'shape': (2, 4), }",
    "{'descr': '<f4', 'fortran_order': 1, 'shape': (2, 4), }",
    "{'descr': '<f4', 'fortran_order': None, 'shape': (2, 4), }",
    "{'descr': '<f4', 'shape': (2, 4), }",
    "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 4), 'extra': 1}",
    "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 4), 'shape': (1,)}",
    "{'descr': '<f4', 'fortran_order': False, 'shape': (2L, 4L), }",
    "{'descr': '\\d', 'fortran_order': False, 'shape': (2, 4), }",
    "{[1]: 2}",
    "{{1}: 2}",
    "{'shape': {[]}}",
    "[1, 2]",
    "(2, 4)",
    "None",
    "'{'",
    "-" * 5000 + "1",
    "(" * 300 + ")" * 300,
    "[" * 150 + "]" * 150,
    "1" * 5000,
    "{'descr': '<f4', 'fortran_order': False, 'shape': (" + "9" * 5000 + ",), }",
    "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 4), }" + " " * 20000,
    "",
    "\x00",
    "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 4), }\x00",
    "{'descr': 'é', 'fortran_order': False, 'shape': (2, 4), }",
] + [f"{{'descr': {descr}, 'fortran_order': False, 'shape': (2, 4), }}" for descr in BAD_DESCRS]


def npy_with(text: str | bytes, data: bytes, version: tuple = (1, 0)) -> bytes:
    raw = text.encode("latin1", "replace") if isinstance(text, str) else text
    length = struct.pack("<H" if version == (1, 0) else "<I", len(raw) % 2 ** (16 * version[0]))
    return b"\x93NUMPY" + bytes(version) + length + raw + data


def npy_edits(data: bytes) -> Iterator[Mutation]:
    """The .npy headers of a0, a4, a18 and the header entry rewritten, the zip's CRCs valid."""
    p = parts(data)
    for target in NPY_TARGETS:
        raw = p.npy[target]
        (hlen,) = struct.unpack_from("<H", raw, 8)
        text, body = raw[10 : 10 + hlen], raw[10 + hlen :]

        def rezip(content: bytes, target=target) -> bytes:
            return archive([entry(n, content if n == target else c) for n, c in p.npy.items()])

        for t in NPY_HEADERS:
            yield "npy header: crafted", rezip(npy_with(t, body))
        for version in ((2, 0), (3, 0), (0, 0), (1, 1), (4, 0), (255, 255)):
            yield "npy header: version", rezip(npy_with(text, body, version))
        for content in (b"", raw[:3], raw[:8], raw[:9], raw[:11], raw[: 10 + hlen - 1],
                        raw[: 10 + hlen], raw[:-1], raw + b"\0", raw + bytes(2**16),
                        b"\x93NUMPZ" + raw[6:], b"PK\3\4" + raw[4:],
                        raw[:8] + b"\xff\xff" + raw[10:], raw[:8] + b"\0\0" + raw[10:],
                        b"\x93NUMPY\x02\x00\xff\xff\xff\xff" + text + body):  # fmt: skip
            yield "npy header: truncated or lying", rezip(content)
    rng = random.Random(1)
    alphabet = "0123456789(),:'\"-{}[] .TFLNaefjl\\\n"
    for _ in range(1200):
        target = rng.choice(list(p.npy))
        raw = bytearray(p.npy[target])
        for _ in range(rng.randint(1, 3)):
            raw[10 + rng.randrange(struct.unpack_from("<H", raw, 8)[0])] = ord(rng.choice(alphabet))
        yield (
            "npy header: random characters",
            archive([entry(n, bytes(raw) if n == target else c) for n, c in p.npy.items()]),
        )


def nodes(tree: Any, path: tuple = ()) -> Iterator[tuple]:
    """The path to every node of a JSON tree, the root first."""
    yield path
    if isinstance(tree, (dict, list)):
        for k, v in tree.items() if isinstance(tree, dict) else enumerate(tree):
            yield from nodes(v, (*path, k))


def replaced(tree: Any, path: tuple, value: Any = ..., *, delete: bool = False) -> Any:
    tree = json.loads(json.dumps(tree))
    parent = tree
    for k in path[:-1]:
        parent = parent[k]
    if delete:
        del parent[path[-1]]
    else:
        parent[path[-1]] = value
    return tree


BAD_VALUES = [None, True, -1, 19, 2**63, 10**12, 10**4000, 1.5, float("nan"), -float("inf"), "x",
              [], [1, 2], {}, {"leaf": 0}, {"type": "dict", "items": []}]  # fmt: skip
TYPE_NAMES = ["os.system", "builtins.eval", "__import__", "FromCallable", "SGDState", "Warmup",
              "Checkpoint", "MLP", "NamedTuple", "object", "tuple ", "Tuple", "dict\x00",
              "AdamState.__class__", "jaxmlp.optim.AdamState"]  # fmt: skip
DEEP = 100_000


def deep_text(header: dict, where: tuple, opening: str, closing: str, depth: int = DEEP) -> str:
    """The header's JSON with the node at `where` nested `depth` deep (too deep for json.dumps)."""
    text = json.dumps(replaced(header, where, "@@DEEP@@"))
    return text.replace('"@@DEEP@@"', opening * depth + "null" + closing * depth)


def header_edits(data: bytes) -> Iterator[Mutation]:
    """The JSON header edited at every node, digest recomputed; then raw texts and deep ones."""
    p = parts(data)
    npy = {n: c for n, c in p.npy.items() if n != "__header__.npy"}

    def with_header(text: str | bytes) -> bytes:
        return ckpt(text, p.arrays, npy=npy)

    for path in list(nodes(p.header))[1:]:
        for value in BAD_VALUES + (TYPE_NAMES if path[-1] == "type" else []):
            edited = replaced(p.header, path, value)
            yield "header: a value replaced", with_header(sealed(edited, p.arrays))
        edited = replaced(p.header, path, delete=True)
        yield "header: a node deleted", with_header(sealed(edited, p.arrays))
        stale = json.dumps({**replaced(p.header, path, None), "sha256": "0" * 64})
        yield "header: a value replaced, stale digest", with_header(stale)
    good = sealed(p.header, p.arrays)
    for value in [None, [], [p.header], 1, "jaxmlp-checkpoint", float("nan"), True, 10**4000]:
        yield "header: not a dict", with_header(json.dumps(value))
    raw_texts = ["", " ", "NaN", "{", good[:-1], good + "x", good + "}", "\ufeff" + good,
                 '{"format": "jaxmlp-checkpoint", "version": ' + "1" * 5000 + "}",
                 '{"format": "jaxmlp-checkpoint", "version": 1e400}',
                 good.replace('"version": 1', '"version": 1, "version": 2'),
                 "[" * DEEP + "]" * DEEP, '{"a": ' * DEEP + "1" + "}" * DEEP]  # fmt: skip
    for text in raw_texts + [good[:cut] for cut in range(0, len(good), 37)]:
        yield "header: raw text", with_header(text)
    for text in (b"\xff\xfe\x00", good.encode("utf-16"), good.encode()[:-3] + b"\xc3}"):
        yield "header: not UTF-8", with_header(text)
    nestings = [("[", "]"), ('{"a": ', "}"), ('{"type": "list", "items": [', "]}")]
    for where in [("metadata",), ("trees", "params"), ("trees", "opt_state"), ("net", "sizes")]:
        for opening, closing in nestings:
            text = deep_text(p.header, where, opening, closing)
            yield "header: nested 100,000 deep", with_header(text)
    for depth in (10, 40, 45, 60):
        tree: Any = None
        for _ in range(depth):
            tree = {"type": "list", "items": [tree]}
        for where in [("metadata",), ("trees", "opt_state"), ("trees", "params")]:
            edited = replaced(p.header, where, tree)
            yield f"header: trees nested {depth} deep", with_header(sealed(edited, p.arrays))
    for depth in (200, 400, 600):  # below and above the 1000 frames Python allows
        text = deep_text(p.header, ("trees", "opt_state"), *nestings[2], depth=depth)
        yield f"header: trees nested {depth} deep", with_header(text)


def array_edits(data: bytes) -> Iterator[Mutation]:
    """Each array replaced (shape, dtype, order, kind), or arrays dropped or added; digest valid."""
    p = parts(data)

    def variants(a: np.ndarray) -> Iterator[tuple[str, np.ndarray]]:
        yield "flattened", a.reshape(-1)
        yield "extra axis", a[None]
        yield "transposed", a.T.copy()
        yield "empty", a.reshape(-1)[:0]
        yield "0-d", np.asarray(a.reshape(-1)[0] if a.size else 0)
        yield "fortran order", np.asfortranarray(a.reshape(2, -1) if a.size % 2 == 0 else a)
        yield "NaN", np.full(a.shape, np.nan, np.float32)
        for dt in ("float64", "float16", "int32", "int64", "uint64", "uint8", "bool",
                   "complex128", ">f4", "<U1", "|S4", "datetime64[s]", "timedelta64[s]",
                   "longdouble"):  # fmt: skip
            yield f"dtype {dt}", a.astype(dt)
        yield "dtype void", np.zeros(a.shape, "V4")
        yield "dtype structured", np.zeros(a.shape, [("x", "<f4")])

    for i, a in enumerate(p.arrays):
        for what, b in variants(a):
            arrays = [*p.arrays[:i], b, *p.arrays[i + 1 :]]
            yield f"array: {what}", ckpt(sealed(p.header, arrays), arrays)
    for arrays in (p.arrays[:-1], p.arrays[1:], [], [*p.arrays, p.arrays[0]], p.arrays[::-1]):
        yield "arrays: dropped, added or reordered", ckpt(sealed(p.header, arrays), arrays)


def rename(p: Parts, old: str, new: str | bytes) -> bytes:
    return archive([entry(new if n == old else n, c) for n, c in p.npy.items()])


def zip_entries(data: bytes) -> Iterator[Mutation]:
    """Entries dropped, renamed, duplicated, reordered, recompressed, flagged; junk around."""
    p = parts(data)
    names = list(p.npy)
    for name in names:
        yield "entries: one dropped", archive([entry(n, c) for n, c in p.npy.items() if n != name])
        yield (
            "entries: one duplicated",
            archive([entry(n, c) for n, c in p.npy.items()] + [entry(name, p.npy[name])]),
        )
        other = p.npy["a1.npy" if name == "a0.npy" else "a0.npy"]
        yield (
            "entries: one duplicated, other content",
            archive([entry(n, c) for n, c in p.npy.items()] + [entry(name, other)]),
        )
        stem = name[:-4]
        renamed = [
            stem,
            stem.upper() + ".npy",
            "b" + name,
            name + " ",
            "../" + name,
            "/" + name,
            "x/" + name,
            name.replace("a", "a0"),
            "a-1.npy",
            "a٣.npy",
            "a1e3.npy",
            name + "\0x",
            "__header__.npy",
            "a19.npy",
            "",
            name.encode("utf-16"),
        ]
        for new in renamed:
            yield "entries: one renamed", rename(p, name, new)
    for flags in (0x1, 0x8, 0x20, 0x40, 0x800):
        yield "entries: flag bits", archive([entry(n, c, flags=flags) for n, c in p.npy.items()])
    yield "entries: bad UTF-8 name", rename(p, "a0.npy", b"a0\xff.npy")
    yield "entries: reordered", archive([entry(n, p.npy[n]) for n in reversed(names)])
    yield "entries: deflated", archive([entry(n, c, 8) for n, c in p.npy.items()])
    yield "entries: bzip2", archive([entry(n, c, 12) for n, c in p.npy.items()])
    for method in (zipfile.ZIP_LZMA, zipfile.ZIP_BZIP2, zipfile.ZIP_DEFLATED):
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w", compression=method) as zf:
            for n, c in p.npy.items():
                zf.writestr(n, c)
        yield "entries: recompressed by zipfile", buf.getvalue()
    for method in (1, 6, 9, 14, 93, 98, 99, 0xFFFF):
        methods = archive([entry(n, c, method) for n, c in p.npy.items()])
        yield "entries: compression methods", methods
    junk = entry("junk.txt", b"hello")
    yield "entries: junk", archive([entry(n, c) for n, c in p.npy.items()] + [junk])
    yield "entries: junk", archive([])
    yield "entries: junk", archive([entry("__header__.npy", p.npy["__header__.npy"])])
    yield "entries: junk", archive([entry(f"j{i}", b"") for i in range(20_000)])
    everything = [entry(n, c) for n, c in p.npy.items()]
    yield "entries: junk", archive(everything, prefix=b"#!junk\n" * 9)
    yield "entries: junk", archive(everything, suffix=b"tail")
    yield "entries: junk", data + data
    yield "entries: junk", b"\x93NUMPY" + data


def distinct_shapes(p: Parts, n: int) -> bytes:
    """A valid checkpoint whose optimizer state is a list of `n` empty arrays of distinct shapes."""
    arrays = p.arrays + [np.zeros((0, i), np.float32) for i in range(1, n + 1)]
    items = [{"leaf": i} for i in range(len(p.arrays), len(arrays))]
    trees = {**p.header["trees"], "opt_state": {"type": "list", "items": items}}
    return ckpt(sealed({**p.header, "trees": trees}, arrays), arrays)


def references(p: Parts, n: int) -> bytes:
    """A valid checkpoint whose optimizer state is a list of `n` references to one array."""
    trees = {**p.header["trees"], "opt_state": {"type": "list", "items": [{"leaf": 4}] * n}}
    return ckpt(sealed({**p.header, "trees": trees}, p.arrays), p.arrays)


def bombs(data: bytes) -> Iterator[Mutation]:
    """Entries that claim (or inflate to) far more than the file holds; small enough to fuzz."""
    p = parts(data)
    claims_tb = "{'descr': '<f4', 'fortran_order': False, 'shape': (1000000000000,), }"
    zeros = npy_with(claims_tb, bytes(2**16))
    others = [entry(n, c) for n, c in p.npy.items() if n != "a0.npy"]
    yield "bomb: header claims 4 TB", archive([entry("a0.npy", zeros, 8), *others])
    claims = entry("a0.npy", zeros, 8, size=4 * 10**12)
    yield "bomb: header and directory claim 4 TB", archive([claims, *others])
    claims = entry("a0.npy", p.npy["a0.npy"], size=2**40)
    yield "bomb: directory claims 1 TiB, stored", archive([claims, *others])
    arrays = [entry(n, c) for n, c in p.npy.items() if n != "__header__.npy"]
    claims = entry("__header__.npy", npy_with(claims_tb.replace("<f4", "|u1"), bytes(2**16)), 8)
    yield "bomb: header entry claims 4 TB", archive([*arrays, claims])
    prefix = npy_with(claims_tb.replace("1000000000000", str(2**22)), b"")
    stream, crc = inflating(prefix, 16)
    for size in (len(prefix) + 2**24, 160, 0, 2**31, 2**32 - 2, 2**24):
        inflated = Entry("a0.npy", stream, crc, size, zipfile.ZIP_DEFLATED)
        yield "bomb: 16 MiB of zeros inflated", archive([inflated, *others])
    yield "bomb: 256 MiB bzip2", archive([Entry("a0.npy", BZ2_256_MIB, 0, 160, 12), *others])
    yield "bomb: 2,000 arrays of distinct shapes", distinct_shapes(p, 2_000)
    yield "bomb: 100,000 references to one array", references(p, 100_000)
    many = [entry(f"a{i}.npy", p.npy["a4.npy"]) for i in range(5_000)]
    yield "bomb: 5,000 entries", archive([*many, entry("__header__.npy", p.npy["__header__.npy"])])


CLASSES = {
    "truncations": truncations,
    "flips": flips,
    "npy headers": npy_edits,
    "json header": header_edits,
    "arrays": array_edits,
    "zip entries": zip_entries,
    "bombs": bombs,
}


# ---------------------------------------------------------------------------------------------
# Loading them.


def peak_rss_mb() -> float:
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 2**20 if sys.platform == "darwin" else peak / 2**10


def assert_well_formed(ck: checkpoint.Checkpoint) -> None:
    """What a checkpoint that loads must be: a net, params of its shapes, arrays and keys."""
    assert isinstance(ck, checkpoint.Checkpoint) and isinstance(ck.net, jm.MLP)
    assert isinstance(ck.params, tuple) and len(ck.params) == ck.net.n_layers
    for l, layer in enumerate(ck.params):
        assert set(layer) == {"W", "b"}
        assert layer["W"].shape == ck.net.sizes[l : l + 2] and isinstance(layer["W"], jax.Array)
        assert layer["b"].shape == (ck.net.sizes[l + 1],) and isinstance(layer["b"], jax.Array)
    assert all(isinstance(leaf, jax.Array) for leaf in jax.tree.leaves(ck.opt_state))
    assert ck.key is None or jax.dtypes.issubdtype(ck.key.dtype, jax.dtypes.prng_key)
    json.dumps(ck.metadata)


def load_one(path, data: bytes) -> tuple[str, float]:
    """'refused', 'loaded' or what went wrong; and the seconds the load took."""
    path.write_bytes(data)
    start = time.perf_counter()
    try:
        ck = checkpoint.load(path)
    except CheckpointError as err:
        outcome = "refused" if str(path) in str(err) else f"message without the path: {err}"
    except Exception as err:  # what the fuzz looks for
        outcome = f"{type(err).__name__}: {err!s:.300}"
    else:
        try:
            assert_well_formed(ck)
            outcome = "loaded"
        except AssertionError as err:
            outcome = f"loaded a malformed checkpoint: {err!s:.300}"
    return outcome, time.perf_counter() - start


def fuzz(folder, mutations: Iterator[Mutation]) -> tuple[Counter, Counter, dict, float]:
    """Load every mutation; count them by kind; collect what went wrong, one example per kind;
    and the longest a load took."""
    counts, loaded, wrong, slowest = Counter(), Counter(), {}, 0.0
    for i, (kind, data) in enumerate(mutations):
        # A new file each time: on ext4, truncating a file that holds data flushes it to disk.
        path = folder / f"{i}.npz"
        outcome, seconds = load_one(path, data)
        path.unlink()
        counts[kind] += 1
        loaded[kind] += outcome == "loaded"
        slowest = max(slowest, seconds)
        if seconds > LOAD_SECONDS:
            outcome = f"slow: took {seconds:.2f} s"
        if outcome not in ("refused", "loaded"):
            key = (kind, outcome.split(":")[0])
            first, n = wrong.get(key, (outcome, 0))
            wrong[key] = (first, n + 1)
    return counts, loaded, wrong, slowest


@pytest.mark.parametrize("name", list(CLASSES))
def test_fuzzed_checkpoints_are_refused_quickly_in_bounded_memory(name, valid, tmp_path):
    load_one(tmp_path / "warm.npz", valid)  # first load: JAX's own allocations, not the fuzz's
    mutations = list(CLASSES[name](valid))  # made first: what making them takes is not counted
    before, start = peak_rss_mb(), time.perf_counter()
    counts, loaded, wrong, slowest = fuzz(tmp_path, iter(mutations))
    growth = peak_rss_mb() - before
    print(f"\n{name}: {sum(counts.values())} mutations ({sum(loaded.values())} loaded) in "
          f"{time.perf_counter() - start:.1f} s, the slowest load {slowest * 1e3:.0f} ms, peak "
          f"RSS +{growth:.0f} MB")  # fmt: skip
    for kind, n in counts.items():
        print(f"  {kind}: {n}" + (f" ({loaded[kind]} loaded)" if loaded[kind] else ""))
    report = [f"{k} x{n}: {first}" for k, (first, n) in wrong.items()]
    assert not wrong, f"{len(wrong)} kinds of failure:\n" + "\n".join(report)
    assert growth < GROWTH_MB


def test_at_least_5000_mutations(valid):
    counts = {name: sum(1 for _ in gen(valid)) for name, gen in CLASSES.items()}
    print(counts, sum(counts.values()))
    assert sum(counts.values()) >= MIN_MUTATIONS
    assert all(n >= 10 for n in counts.values())


# ---------------------------------------------------------------------------------------------
# Regression tests: inputs the fuzz found that the loader once got wrong. Each comment says what
# `load` did before; now each raises CheckpointError and says why.


@pytest.fixture(scope="module")
def p(valid) -> Parts:
    return parts(valid)


def refused(tmp_path, data: bytes, match: str) -> CheckpointError:
    path = tmp_path / "bad.npz"
    path.write_bytes(data)
    with pytest.raises(CheckpointError, match=match) as info:
        checkpoint.load(path)
    assert str(path) in str(info.value)
    return info.value


def with_entry(p: Parts, name: str, content: bytes) -> bytes:
    """The checkpoint with entry `name` holding `content` (its CRC valid)."""
    return archive([entry(n, content if n == name else c) for n, c in p.npy.items()])


def with_header(p: Parts, header: Any) -> bytes:
    """The checkpoint with another JSON header, its digest recomputed."""
    return ckpt(sealed(header, p.arrays), p.arrays)


def a0_header(text: str, p: Parts) -> bytes:
    """The checkpoint with the .npy header of a0 replaced by `text`."""
    return with_entry(p, "a0.npy", npy_with(text, p.npy["a0.npy"][128:]))


@pytest.mark.parametrize("method", [1, 9, 14, 99, zipfile.ZIP_BZIP2])
def test_an_entry_compressed_otherwise_than_by_deflate_is_refused(tmp_path, p, method):
    # Was NotImplementedError ("That compression method is not supported"); bzip2 (and LZMA)
    # entries loaded, zipfile inflating each read whole, whatever the size declared: a bomb.
    data = archive([entry(n, c, method) for n, c in p.npy.items()])
    refused(tmp_path, data, rf"a0.npy is compressed by method {method}; a checkpoint's entries")


@pytest.mark.parametrize("flags", [0x1, 0x20, 0x40])
def test_an_encrypted_or_patched_entry_is_refused(tmp_path, p, flags):
    # Was RuntimeError ("password required for extraction") or NotImplementedError ("compressed
    # patched data (flag bit 5)", "strong encryption (flag bit 6)").
    data = archive([entry(n, c, flags=flags) for n, c in p.npy.items()])
    refused(tmp_path, data, rf"a0.npy is encrypted or patched \(zip flags {flags:#x}\)")


def test_a_zip_version_from_the_future_is_refused(tmp_path, valid):
    # A byte flip in "version needed to extract": was NotImplementedError ("zip file version 16.9").
    data = bytearray(valid)
    data[layout(valid)[1][0] + 6] = 169
    refused(tmp_path, bytes(data), r"not a readable checkpoint \(truncated or corrupted\?\): zip")


def test_an_array_claiming_terabytes_is_refused_before_it_is_allocated(tmp_path, p):
    # Was MemoryError ("Unable to allocate 3.64 TiB for an array with shape (1000000000000,)").
    text = "{'descr': '<f4', 'fortran_order': False, 'shape': (1000000000000,), }"
    refused(tmp_path, a0_header(text, p), r"a0.npy holds 32 bytes of data: not those of a float32 "
            r"array of shape \(1000000000000,\)")  # fmt: skip
    deflated = Entry("a0.npy", *entry("", npy_with(text, bytes(2**16)), 8)[1:])
    others = [entry(n, c) for n, c in p.npy.items() if n != "a0.npy"]
    refused(tmp_path, archive([deflated, *others]), r"a0.npy holds 65,536 bytes of data")


def test_a_shape_whose_size_overflows_is_refused(tmp_path, p):
    # Was OverflowError ("Python int too large to convert to C long").
    text = f"{{'descr': '<f4', 'fortran_order': False, 'shape': ({2**64}, {2**64}), }}"
    refused(tmp_path, a0_header(text, p), r"a0.npy holds an array of invalid shape \(1844")
    text = f"{{'descr': '<f4', 'fortran_order': False, 'shape': (0, {2**63}), }}"  # empty, yet
    refused(tmp_path, a0_header(text, p), r"a0.npy holds an array of invalid shape \(0, 9")


@pytest.mark.parametrize("text", [
    "{'descr': '<f4', 'fortran_order': False, 'shape': (True, 8), }",  # TypeError
    "{[1]: 2}",  # TypeError: unhashable type: 'list'
    "{'shape': {[]}}",  # TypeError: unhashable type: 'list'
    "{'descr': '<f4', 'fortran_order': False, 'shape': (2L, 4L), }",  # UserWarning, Python 2
    "-" * 5000 + "1",  # RecursionError during ast construction
    "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 4), '",  # tokenize.TokenError
    # refused before as well, but by NumPy or the digest:
    "{'descr': '|O', 'fortran_order': False, 'shape': (2, 4), }",
    "{'descr': [('a', '<f4')], 'fortran_order': False, 'shape': (2, 4), }",
    "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 4" + ", 1" * 70 + "), }",
])  # fmt: skip
def test_a_malformed_array_header_is_refused(tmp_path, p, text):
    refused(tmp_path, a0_header(text, p), r"is not a readable checkpoint: a0.npy (has|holds) an")


def test_an_entry_that_is_not_an_npy_array_is_refused(tmp_path, p):
    # Was AttributeError ("'bytes' object has no attribute 'tobytes'"): NumPy returns the raw
    # bytes of an entry without the .npy magic.
    data = with_entry(p, "__header__.npy", p.npy["__header__.npy"][8:])
    refused(tmp_path, data, r"__header__.npy is not a .npy array of format 1, 2 or 3")


def test_a_dict_whose_items_are_a_list_is_refused(tmp_path, p):
    # Was AttributeError ("'list' object has no attribute 'items'").
    trees = {**p.header["trees"], "opt_state": {"type": "dict", "items": []}}
    data = with_header(p, {**p.header, "trees": trees})
    refused(tmp_path, data, r"inconsistent checkpoint: a dict in the tree description has items")


@pytest.mark.parametrize("leaf", [19, 10**100, -1, True])
def test_a_key_naming_a_missing_array_is_refused(tmp_path, p, leaf):
    # Was IndexError ("list index out of range", "cannot fit 'int' into an index-sized
    # integer"); -1 loaded the last array as the key.
    data = with_header(p, {**p.header, "key": {"impl": "threefry2x32", "leaf": leaf}})
    refused(tmp_path, data, r"inconsistent checkpoint: tree description names a missing array")


def test_an_archive_without_the_arrays_the_key_names_is_refused(tmp_path, p):
    # The last array dropped, the digest recomputed: was IndexError.
    data = ckpt(sealed(p.header, p.arrays[:-1]), p.arrays[:-1])
    refused(tmp_path, data, r"names a missing array 18")


@pytest.mark.parametrize("where", [("metadata",), ("trees", "opt_state")])
def test_a_json_header_nested_100000_deep_is_refused_before_it_is_parsed(tmp_path, p, where):
    # Was RecursionError ("maximum recursion depth exceeded while decoding a JSON array").
    data = ckpt(deep_text(p.header, where, "[", "]"), p.arrays)
    refused(tmp_path, data, r"its JSON header nests 100,00\d levels deep, more than 100")
    data = ckpt(deep_text(p.header, where, '{"type": "list", "items": [', "]}", 600), p.arrays)
    refused(tmp_path, data, r"its JSON header nests 1,20\d levels deep")


def test_errors_in_the_trees_name_the_file(tmp_path, p):
    # Were raised without the file's name ("malformed tree description: True").
    trees = {**p.header["trees"], "opt_state": True}
    refused(tmp_path, with_header(p, {**p.header, "trees": trees}), r"inconsistent checkpoint")
    trees = {**p.header["trees"], "opt_state": {"type": "os.system"}}
    refused(tmp_path, with_header(p, {**p.header, "trees": trees}), r"unknown type 'os.system'")


@pytest.mark.parametrize("name", ["a0", "__header__.npy"])
def test_renamed_or_repeated_entries_are_refused(tmp_path, p, name):
    # Were loaded: an entry renamed without its .npy suffix, a repeated header.
    if name == "a0":
        refused(tmp_path, rename(p, "a0.npy", "a0"), r"holds \['a0'\] and lacks \['a0.npy'\]")
    else:
        data = archive([entry(n, c) for n, c in p.npy.items()] + [entry(name, p.npy[name])])
        refused(tmp_path, data, r"it holds entries more than once: \['__header__.npy'\]")


def test_a_zip_without_a_header_says_so_once(tmp_path):
    # The refusal keeps its own message, not wrapped in "not a readable checkpoint".
    path = tmp_path / "data.npz"
    path.write_bytes(archive([entry("x.npy", npy_bytes(np.zeros(3)))]))
    with pytest.raises(CheckpointError) as info:
        checkpoint.load(path)
    assert str(info.value) == f"{path} is not a jaxmlp checkpoint (no header)"


def test_an_entry_whose_sizes_lie_is_refused_before_it_is_read(tmp_path, p):
    # A stored entry declaring 30 MiB in a 6 KB file: refused before, but once the 30 MiB its
    # header claims were allocated. Now a stored entry's two sizes must agree, and no entry may
    # claim to store more than the file holds.
    others = [entry(n, c) for n, c in p.npy.items() if n != "a0.npy"]
    text = f"{{'descr': '<f4', 'fortran_order': False, 'shape': ({30 * 2**18 - 32},), }}"
    lying = entry("a0.npy", npy_with(text, b""), size=30 * 2**20)
    refused(tmp_path, archive([lying, *others]), r"a0.npy is stored, yet its sizes differ")
    data = bytearray(archive([entry("a0.npy", p.npy["a0.npy"], zipfile.ZIP_DEFLATED), *others]))
    struct.pack_into("<L", data, layout(bytes(data))[1][0] + 20, 2**31)  # its compressed size
    refused(tmp_path, bytes(data), r"its entries claim more bytes than the file's")


def traced_peak_mb(path) -> tuple[float, float]:
    """The peak of the traced heap while `path` loads (and is refused), and the seconds taken."""
    tracemalloc.start()
    start = time.perf_counter()
    try:
        with pytest.raises(CheckpointError):
            checkpoint.load(path)
        return tracemalloc.get_traced_memory()[1] / 2**20, time.perf_counter() - start
    finally:
        tracemalloc.stop()


@pytest.fixture(scope="module")
def gigabyte() -> tuple[int, bytes, int]:
    """A .npy entry of 1 GiB of zeros deflated to 1 MB: its size, the stream, its CRC."""
    prefix = npy_with(f"{{'descr': '<f4', 'fortran_order': False, 'shape': ({2**28},), }}", b"")
    return (len(prefix) + 2**30, *inflating(prefix, 1024))


@pytest.mark.parametrize("declared", ["honest", "small", "just under the limit"])
def test_a_gigabyte_zip_bomb_is_refused_in_bounded_memory(tmp_path, p, gigabyte, declared):
    # 1 GiB of zeros in 1 MB, behind a .npy header that claims them all: declared honestly,
    # it took 5.8 s and 2 GiB; declared 30 MiB, 1 GiB (NumPy allocated what the header claims).
    real, stream, crc = gigabyte
    size = {"honest": real, "small": 160, "just under the limit": 30 * 2**20}
    bomb = Entry("a0.npy", stream, crc, size[declared], zipfile.ZIP_DEFLATED)
    path = tmp_path / "bomb.npz"
    path.write_bytes(archive([bomb, *[entry(n, c) for n, c in p.npy.items() if n != "a0.npy"]]))
    peak, seconds = traced_peak_mb(path)
    assert peak < GROWTH_MB and seconds < LOAD_SECONDS


def test_a_bzip2_bomb_is_refused_without_inflating_it(tmp_path, p):
    # 256 MiB of zeros in 208 bytes, declared 160: it took 0.9 s and 557 MiB (zipfile inflates
    # each bzip2 read whole, whatever the size declared).
    others = [entry(n, c) for n, c in p.npy.items() if n != "a0.npy"]
    path = tmp_path / "bomb.npz"
    path.write_bytes(archive([Entry("a0.npy", BZ2_256_MIB, 0, 160, zipfile.ZIP_BZIP2), *others]))
    peak, seconds = traced_peak_mb(path)
    assert peak < 1 and seconds < LOAD_SECONDS


def test_many_arrays_of_distinct_shapes_load_quickly(tmp_path, p):
    # A valid 75 KB checkpoint of 300 empty arrays of distinct shapes took 7.7 s and 413 MB:
    # jnp.asarray compiled a function for each new shape. 1,000 would take 26 s.
    path = tmp_path / "shapes.npz"
    path.write_bytes(distinct_shapes(p, 1_000))
    before, start = peak_rss_mb(), time.perf_counter()
    ck = checkpoint.load(path)
    assert time.perf_counter() - start < LOAD_SECONDS and peak_rss_mb() - before < GROWTH_MB
    assert len(ck.opt_state) == 1_000 and ck.opt_state[-1].shape == (0, 1_000)
    assert_well_formed(ck)


def test_many_references_to_one_array_load_quickly(tmp_path, p):
    # A valid 1.3 MB checkpoint naming one array 100,000 times took 6.2 s: each reference made
    # a JAX array of its own. Now each array becomes one JAX array, shared.
    path = tmp_path / "references.npz"
    path.write_bytes(references(p, 100_000))
    start = time.perf_counter()
    ck = checkpoint.load(path)
    assert time.perf_counter() - start < LOAD_SECONDS
    assert len(ck.opt_state) == 100_000 and ck.opt_state[0] is ck.opt_state[-1]


# ---------------------------------------------------------------------------------------------
# What is right, and stays so.

UNPICKLED = []


def _unpickled() -> None:
    UNPICKLED.append("code from the file ran")


class Payload:
    def __reduce__(self):
        return _unpickled, ()


@pytest.mark.parametrize("name", ["a0.npy", "__header__.npy"])
def test_a_pickle_in_an_entry_never_runs(tmp_path, p, name):
    evil = npy_bytes(np.array([Payload()], dtype=object), allow_pickle=True)
    refused(tmp_path, with_entry(p, name, evil), rf"{name} holds an array of dtype '\|O'")
    assert not UNPICKLED


def test_a_recompressed_checkpoint_loads_and_max_expansion_bounds_it(tmp_path, monkeypatch):
    write_valid(tmp_path / "c.npz")
    p = parts((tmp_path / "c.npz").read_bytes())
    zeros = [np.zeros((2**16,), np.float32) for _ in p.arrays]  # compressible far beyond 32x
    items = [{"leaf": i} for i in range(len(p.arrays), 2 * len(p.arrays))]
    header = {
        **p.header,
        "trees": {**p.header["trees"], "opt_state": {"type": "list", "items": items}},
    }
    arrays = p.arrays + zeros
    npy = {f"a{i}.npy": npy_bytes(a) for i, a in enumerate(arrays)}
    npy["__header__.npy"] = npy_bytes(np.frombuffer(sealed(header, arrays).encode(), np.uint8))
    for method, name in ((8, "deflated.npz"), (0, "stored.npz")):
        (tmp_path / name).write_bytes(archive([entry(n, c, method) for n, c in npy.items()]))
    assert len(checkpoint.load(tmp_path / "stored.npz").opt_state) == len(zeros)
    refused(tmp_path, (tmp_path / "deflated.npz").read_bytes(), r"more than MAX_EXPANSION = 32")
    monkeypatch.setattr(checkpoint, "MAX_EXPANSION", 10_000)
    assert len(checkpoint.load(tmp_path / "deflated.npz").opt_state) == len(zeros)


def test_save_refuses_a_header_too_deep_to_load(tmp_path):
    params = jm.init_params(jax.random.key(0), NET)
    deep: Any = 1
    for _ in range(checkpoint.MAX_DEPTH):
        deep = [deep]
    with pytest.raises(ValueError, match=r"cannot save metadata .* nested deeper than 100 levels"):
        checkpoint.save(tmp_path / "c.npz", NET, params, metadata={"deep": deep})
    assert not (tmp_path / "c.npz").exists()


def test_other_npy_formats_and_byte_orders_load(tmp_path, p):
    # Formats 2 and 3 of .npy (NumPy writes them for long headers) and big-endian arrays.
    raw = p.npy["a0.npy"]
    for version in ((2, 0), (3, 0)):
        data = with_entry(p, "a0.npy", npy_with(raw[10:128], raw[128:], version))
        (tmp_path / "v.npz").write_bytes(data)
        assert_well_formed(checkpoint.load(tmp_path / "v.npz"))
    arrays = [a.astype(a.dtype.newbyteorder(">")) for a in p.arrays]
    (tmp_path / "be.npz").write_bytes(ckpt(sealed(p.header, arrays), arrays))
    ck = checkpoint.load(tmp_path / "be.npz")
    np.testing.assert_array_equal(ck.params[0]["W"], p.arrays[0])
