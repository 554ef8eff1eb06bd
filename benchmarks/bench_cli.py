"""The wall time of ``jaxmlp train`` against its own training time: cache off, cold and warm.

    python benchmarks/bench_cli.py                    # the default run, 3 times each
    python benchmarks/bench_cli.py --repeats 5 -- --epochs 200

Each run is a fresh ``jaxmlp train --no-plots --no-progress`` process (extra arguments after
``--``) in a new output folder; its wall time is measured here, its training time is the
seconds it prints ("…; 2.8 s; outputs in …"). Three ways:

- ``off``: ``JAXMLP_COMPILE_CACHE=off``, every program compiled;
- ``cold``: the persistent compilation cache in an empty folder (compiles, then writes);
- ``warm``: the same folder again (the programs load from disk).

Target (issue 17): warm wall ≤ 1.5× the training time. What is left is Python's and JAX's
imports and the run's own work on the host (data, checks, outputs).
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time


def one(cache: str, args: list[str]) -> tuple[float, float]:
    """One ``jaxmlp train`` process: (wall seconds, training seconds it printed)."""
    out = tempfile.mkdtemp(prefix="jaxmlp-bench-")
    env = dict(os.environ, JAXMLP_COMPILE_CACHE=cache)
    command = [sys.executable, "-m", "jaxmlp", "train", "--no-plots", "--no-progress",
               "--out", out, *args]  # fmt: skip
    start = time.perf_counter()
    done = subprocess.run(command, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - start
    shutil.rmtree(out, ignore_errors=True)
    if done.returncode != 0:
        raise RuntimeError(f"jaxmlp train failed:\n{done.stdout}\n{done.stderr}")
    found = re.search(r"; ([0-9.]+) s; outputs in", done.stdout)
    if found is None:
        raise RuntimeError(f"no training time in the output:\n{done.stdout}")
    return wall, float(found.group(1))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("train_args", nargs="*", help="after --: arguments of jaxmlp train")
    args = parser.parse_args()
    runs: dict[str, list[tuple[float, float]]] = {"off": [], "cold": [], "warm": []}
    for _ in range(args.repeats):
        folder = tempfile.mkdtemp(prefix="jaxmlp-xla-")
        runs["off"].append(one("off", args.train_args))
        runs["cold"].append(one(folder, args.train_args))
        runs["warm"].append(one(folder, args.train_args))
        shutil.rmtree(folder, ignore_errors=True)
    print(f"{os.cpu_count()} cores; load {os.getloadavg()[0]:.2f}; jaxmlp train "
          f"{' '.join(args.train_args) or '(defaults)'}; median of {args.repeats}\n")  # fmt: skip
    print("| compilation cache | wall (s) | training (s) | wall / training |")
    print("|---|---|---|---|")
    for name, rs in runs.items():
        wall = statistics.median(w for w, _ in rs)
        train = statistics.median(t for _, t in rs)
        print(f"| {name} | {wall:.1f} | {train:.1f} | {wall / train:.2f}× |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
