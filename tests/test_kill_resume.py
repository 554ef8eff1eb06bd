"""``jaxmlp train`` killed with SIGKILL at any moment resumes to the uninterrupted run's numbers.

Real runs in subprocesses (``python -m jaxmlp train``): spiral data, the default 2-64-3 net and
Adam, mini-batches of 64 (5 updates per epoch, reshuffled from the key and the epoch number),
150 epochs, ``--checkpoint-every 1``: ``history.json`` and ``checkpoint.npz`` are rewritten after
every epoch, and writing them is most of the run's time, so kills often land mid-write.

`test_killed_runs_resume_bit_exactly`, 12 kill points in 4 groups (one test each, so that
pytest-xdist spreads them; every group spans the whole run):

- 8 kills spread evenly over the run after its first checkpoint, at epochs 9, 27, ..., 134 (the
  moment ``history.json`` first holds that epoch, then a wall-time offset of 0 to 1 epoch's time,
  spread by the golden ratio); then 3 kill at once (``time``), 3 at the start of the next
  checkpoint write (``npz``: a ``.tmp-*`` file appears, or the file changes) and 2 at the start
  of the next ``history.json`` write (``json``: its temporary file appears, or it changes).
  Every one of them must kill a running process and leave a checkpoint. (They are placed by
  progress, not by wall time alone: on this shared 2-core machine a run's speed varies by 2× or
  more with the load, and kills timed from a reference run's duration landed after the end.)
- 4 special kills, one per group: 0.5 s after the start (nothing written yet), at the first file
  write and at the first checkpoint write (both before a checkpoint exists), and when the final
  ``metrics.csv`` is being written (just before the final checkpoint). Those that leave no
  checkpoint (counted; a race decides) need ``--resume`` to refuse with exit status 2 and "no
  checkpoint", and a plain rerun in the same folder, stray temporary files and all, to give the
  reference's outputs.

After each kill: ``jaxmlp.checkpoint.load`` reads the checkpoint (SHA-256 digest verified);
``history.json`` is whole JSON, holds the checkpoint's epoch or one more (it is written first),
and its rows are the reference's; a ``metrics.csv`` that exists is the reference's. Then
``--resume --epochs 150``, with the killed process's temporary files still there, must end with
params, optimizer state and key equal leaf by leaf (``np.array_equal``; same dtypes, shapes and
tree structure), the same checkpoint metadata, and ``history.json`` (settings, net, loss,
history) and ``metrics.csv`` byte for byte those of the uninterrupted reference run. Each group
needs one kill that left a temporary file behind, i.e. landed inside a write (up to 6 extra
kills aimed at writes make sure of it when the machine's timing made the others miss). A checkpoint
written in place (not temp file + rename) fails the digest or zip check after a kill mid-write;
a resume one epoch off (history cut at ``< epoch``, an epoch trained twice or skipped, shuffles
numbered from the wrong epoch) fails the final comparisons; a checkpoint written before
``history.json`` fails the row count.

`test_same_command_in_two_fresh_processes_is_identical`: the same command in two fresh
processes without a compilation cache writes identical checkpoint leaves, key and metadata, and
identical ``history.json`` (settings, net, loss and history; it holds no timings) and
``metrics.csv``, and they equal the reference's.

The kill runs share a per-worker persistent JAX compilation cache, filled by the reference run
(compiled cold), so a process starts in about 2 s instead of 5; the reruns after early kills
are whole warm runs, so they also check that a cached compilation gives the same numbers.

Measured (2 cores, ``-n 2``): the file alone in 56 s (87 CPU-seconds), the four kill groups
14–18 s each (22–26 s each inside the whole suite with 16 kills; 141–200 s for the file with
24). Each of these changes to the package, tried one at a time on a copy when the file had 24
kills, made it fail: the checkpoint written in place, the history cut at ``< epoch`` on
resume, ``initial_epoch`` one too high, the checkpoint written before ``history.json``,
``history.json`` written in place. Every group still needs a kill inside a write, so the
in-place writes stay caught with fewer kills.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, NamedTuple

import jax
import numpy as np
import pytest

from jaxmlp import checkpoint

EPOCHS = 150
COMMAND = [sys.executable, "-m", "jaxmlp", "train"]
QUIET = ["--no-plots", "--no-progress"]
RUN = ["--epochs", str(EPOCHS), "--batch-size", "64", "--checkpoint-every", "1", *QUIET]
RESUME = ["--resume", "--epochs", str(EPOCHS), *QUIET]  # only its final files are compared

GROUPS = 4
SPREAD = 8  # kills after the first checkpoint; kill i goes to group i % GROUPS
LAST = 0.95  # the last spread kill's share of the epochs
MODES = ("npz", "time", "json")  # spread kill i's is MODES[i % 3]
RETRIES = 6  # extra kills aimed at writes when none of a group's landed inside one
SPECIAL = ("startup", "first-write", "first-npz", "final-csv")  # one in each group
TIMEOUT = 120.0
POLL = 0.002  # seconds between looks at the run's folder
POLL_WRITE = 0.0002  # when waiting for a write to begin
CACHE = ("JAX_COMPILATION_CACHE_DIR", "JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS",
         "JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES")  # fmt: skip
GOLDEN = (5**0.5 - 1) / 2


class Reference(NamedTuple):
    env: dict[str, str]  # with the compilation cache the reference run filled
    out: Path
    history: dict[str, Any]  # its history.json
    epoch_seconds: float  # its mean time per epoch after the first checkpoint


class KillPoint(NamedTuple):
    index: int  # 0 ... SPREAD - 1; negative for the special kills
    mode: str
    epoch: int = 0  # spread kills: the epoch history.json holds first
    offset: float = 0.0  # then this many epochs' time

    def __str__(self) -> str:
        where = f"epoch {self.epoch} + {self.offset:.2f}" if self.index >= 0 else "special"
        return f"kill {self.index} ({self.mode}, {where})"


def spread_point(i: int) -> KillPoint:
    epoch = max(1, round(LAST * EPOCHS * (i + 0.5) / SPREAD))
    return KillPoint(i, MODES[i % len(MODES)], epoch, (i * GOLDEN) % 1)


def kill_points(group: int) -> list[KillPoint]:
    special = [KillPoint(-1 - group, SPECIAL[group])] if group < len(SPECIAL) else []
    return special + [spread_point(i) for i in range(group, SPREAD, GROUPS)]


assert sum(len([p for p in kill_points(g) if p.index >= 0]) for g in range(GROUPS)) >= SPREAD


def plain_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k not in CACHE}


def launch(out: Path, args: list[str], env: dict[str, str]) -> subprocess.Popen:
    return subprocess.Popen(
        [*COMMAND, *args, "--out", str(out)],
        cwd=out.parent,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )


def run(out: Path, args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(
        [*COMMAND, *args, "--out", str(out)],
        cwd=out.parent,
        env=env,
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
    )


def wait_for(condition, proc: subprocess.Popen, poll: float = POLL) -> bool:
    """Poll `condition` until it holds (True) or `proc` ends (False)."""
    end = time.monotonic() + TIMEOUT
    while time.monotonic() < end:
        if condition():
            return True
        if proc.poll() is not None:
            return condition()
        time.sleep(poll)
    raise TimeoutError(f"{proc.args} neither did it nor ended in {TIMEOUT} s")


def temp_files(out: Path) -> list[str]:
    """The temporary files of interrupted writes: ``.tmp-*`` (checkpoint), ``*.tmp`` (others)."""
    try:
        return sorted(n for n in os.listdir(out) if n.startswith(".tmp-") or n.endswith(".tmp"))
    except FileNotFoundError:
        return []


def stat(path: Path):
    try:
        s = os.stat(path)
    except FileNotFoundError:
        return None
    return s.st_ino, s.st_size, s.st_mtime_ns


def write_begun(mode: str, out: Path):
    """A condition: the next write of `mode` in `out` has begun, or the file has changed.

    ``npz``: the checkpoint (a ``.tmp-*`` file appears); ``json``: ``history.json`` (its
    temporary file); ``csv``: ``metrics.csv`` (written once, at the end); ``write``: any file.
    A change counts too, so that a file written in place is caught mid-write.
    """
    ckpt, hist, csv = out / "checkpoint.npz", out / "history.json", out / "metrics.csv"
    before = stat(ckpt), stat(hist)

    def begun() -> bool:
        temps = temp_files(out)
        if mode == "json":
            return any("history" in n for n in temps) or stat(hist) != before[1]
        if mode == "csv":
            return any("metrics" in n for n in temps) or csv.exists()
        if mode == "npz":
            return any(n.startswith(".tmp-") for n in temps) or stat(ckpt) != before[0]
        return bool(temps) or (stat(ckpt), stat(hist)) != before

    return begun


def history_size(history: dict[str, Any], rows: int) -> int:
    """The size of a history.json like `history` cut to its first `rows` rows."""
    cut = {**history, "history": {k: v[:rows] for k, v in history["history"].items()}}
    return len(json.dumps(cut).encode())


def reached(ref: Reference, out: Path, epoch: int):
    """A condition: history.json in `out` holds `epoch` (judged by its size, as the reference's)."""
    full = (ref.out / "history.json").stat().st_size
    size = history_size(ref.history, epoch) * full / history_size(ref.history, EPOCHS)
    return lambda: (stat(out / "history.json") or (0, 0))[1] >= size


def read_history(out: Path) -> dict[str, Any]:
    with open(out / "history.json") as f:
        return json.load(f)


def assert_same_outputs(out: Path, ref: Path, what: str) -> None:
    """`out` holds the run in `ref` exactly: checkpoint leaves, history.json, metrics.csv."""
    a, b = checkpoint.load(out / "checkpoint.npz"), checkpoint.load(ref / "checkpoint.npz")
    assert a.net == b.net, what
    assert a.metadata == b.metadata, f"{what}: checkpoint metadata {a.metadata} != {b.metadata}"
    trees_a, trees_b = (a.params, a.opt_state), (b.params, b.opt_state)
    assert jax.tree.structure(trees_a) == jax.tree.structure(trees_b), what
    leaves = zip(jax.tree.leaves(trees_a), jax.tree.leaves(trees_b))
    for i, (x, y) in enumerate(leaves):
        x, y = np.asarray(x), np.asarray(y)
        assert x.dtype == y.dtype and x.shape == y.shape, f"{what}: leaf {i}"
        assert np.array_equal(x, y), f"{what}: leaf {i} differs, max |Δ| {np.max(np.abs(x - y))}"
    key_a, key_b = jax.random.key_data(a.key), jax.random.key_data(b.key)
    assert np.array_equal(key_a, key_b), f"{what}: the saved PRNG key differs"
    ha, hb = read_history(out), read_history(ref)
    assert ha["history"] == hb["history"], f"{what}: history.json's history differs"
    assert ha == hb, f"{what}: history.json differs outside the history"
    metrics = (out / "metrics.csv").read_bytes()
    assert metrics == (ref / "metrics.csv").read_bytes(), f"{what}: metrics.csv differs"


@pytest.fixture(scope="module")
def reference(tmp_path_factory) -> Reference:
    """The uninterrupted run, compiled cold into a fresh compilation cache (one per worker)."""
    root = tmp_path_factory.mktemp("kill-resume")
    env = plain_env()
    env.update(dict(zip(CACHE, (str(root / "jax-cache"), "0", "0"))))
    out = root / "reference"
    proc = launch(out, RUN, env)
    assert wait_for((out / "checkpoint.npz").exists, proc)
    start = time.monotonic()
    _, err = proc.communicate(timeout=TIMEOUT)
    seconds = time.monotonic() - start
    assert proc.returncode == 0, err
    assert not temp_files(out)
    history = read_history(out)
    assert history["history"]["epoch"] == list(range(1, EPOCHS + 1))
    return Reference(env, out, history, seconds / EPOCHS)


def kill_and_check(ref: Reference, point: KillPoint, out: Path) -> dict[str, Any]:
    """Start the run, SIGKILL it at `point`, check what it left, recover; return what happened."""
    start = time.monotonic()
    proc = launch(out, RUN, ref.env)
    if point.mode == "startup":
        time.sleep(0.5)
    elif point.mode.startswith(("first-", "final-")):
        wait_for(write_begun(point.mode.split("-")[1], out), proc, POLL_WRITE)
    else:
        assert wait_for(reached(ref, out, point.epoch), proc), f"{point}: no epoch {point.epoch}"
        time.sleep(point.offset * ref.epoch_seconds)
        if point.mode != "time":
            wait_for(write_begun(point.mode, out), proc, POLL_WRITE)
    proc.send_signal(signal.SIGKILL)
    _, err = proc.communicate(timeout=TIMEOUT)
    killed = proc.returncode == -signal.SIGKILL
    assert killed or proc.returncode == 0, f"{point}: exit status {proc.returncode}\n{err}"
    seen = dict(point=point, at=time.monotonic() - start, killed=killed, temps=temp_files(out))

    ckpt = out / "checkpoint.npz"
    if ckpt.exists():
        ck = checkpoint.load(ckpt)  # checks the digest: a torn write raises CheckpointError
        epoch = ck.metadata["epoch"]
        assert 1 <= epoch <= EPOCHS, f"{point}: a checkpoint of epoch {epoch}"
        history = read_history(out)["history"]  # whole JSON, or this raises
        rows = len(history["epoch"])
        seen.update(epoch=epoch, rows=rows)
        assert epoch <= rows <= epoch + 1, f"{point}: checkpoint of epoch {epoch}, {rows} rows"
        for k, v in history.items():
            assert v == ref.history["history"][k][:rows], f"{point}: history.json's {k!r} differs"
        if (out / "metrics.csv").exists():
            metrics = (ref.out / "metrics.csv").read_bytes()
            assert (out / "metrics.csv").read_bytes() == metrics, f"{point}: metrics.csv differs"
        proc = run(out, RESUME, ref.env)
        assert proc.returncode == 0, f"{point}: --resume from epoch {epoch} failed\n{proc.stderr}"
    else:
        seen.update(epoch=None, rows=None)
        proc = run(out, RESUME, ref.env)
        assert proc.returncode == 2, f"{point}: --resume without a checkpoint\n{proc.stderr}"
        assert "no checkpoint" in proc.stderr, proc.stderr
        proc = run(out, RUN, ref.env)  # start over, in the folder as the kill left it
        assert proc.returncode == 0, f"{point}: the rerun after the kill failed\n{proc.stderr}"
    assert_same_outputs(out, ref.out, str(point))
    return seen


@pytest.mark.parametrize("group", range(GROUPS))
def test_killed_runs_resume_bit_exactly(reference, tmp_path, group):
    seen = []
    for point in kill_points(group):
        name = f"kill_{point.index:02d}" if point.index >= 0 else f"special_{point.mode}"
        seen.append(kill_and_check(reference, point, tmp_path / name))
    print(f"group {group}; reference: {reference.epoch_seconds * 1e3:.1f} ms per epoch")
    for s in seen:
        print(f"  {str(s['point']):34s} at {s['at']:5.2f} s: "
              f"{'killed' if s['killed'] else 'finished'}, checkpoint of epoch {s['epoch']}, "
              f"history.json rows {s['rows']}, temporary files {s['temps']}")  # fmt: skip
    spread = [s for s in seen if s["point"].index >= 0]
    assert all(s["killed"] and s["epoch"] is not None for s in spread)
    # A kill aimed at a write can miss it (the rename came first); aim again, a few times, so
    # every group has one that landed inside a write.
    for extra in range(RETRIES):
        if any(s["temps"] for s in seen):
            break
        point = KillPoint(100 + extra, ("npz", "json")[extra % 2], 10 + 20 * extra, 0.0)
        seen.append(kill_and_check(reference, point, tmp_path / f"retry_{extra}"))
    assert any(s["temps"] for s in seen), "no kill of this group landed inside a write"


def test_same_command_in_two_fresh_processes_is_identical(reference, tmp_path):
    env = plain_env()  # no compilation cache: each process compiles for itself
    for name in ("first", "second"):
        proc = run(tmp_path / name, RUN, env)
        assert proc.returncode == 0, proc.stderr
        assert not temp_files(tmp_path / name)
    saved = read_history(tmp_path / "first")  # settings, net, loss, history: no timings
    fields = {"config", "net", "loss", "task", "classes", "epochs_run", "stop_reason", "final"}
    fields |= {"target_scale", "split", "test", "best_epoch"}
    assert set(saved) == fields | {"history"}, set(saved)
    assert not [k for k in saved["history"] if "time" in k or "second" in k], list(saved["history"])
    assert_same_outputs(tmp_path / "second", tmp_path / "first", "a second fresh process")
    assert_same_outputs(tmp_path / "first", reference.out, "a fresh process vs the reference")
