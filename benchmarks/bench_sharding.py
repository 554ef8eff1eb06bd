"""Data parallelism on CPU: `jaxmlp.fit(..., devices=D)` against the plain `fit`.

    python benchmarks/bench_sharding.py                      # tiny, small, mnist; D = 1, 2, 4
    python benchmarks/bench_sharding.py --workloads mnist --devices 1,4 --repeats 3

A CPU becomes D JAX devices with ``--xla_force_host_platform_device_count=D``, which has to be
set before JAX starts: every D runs in its own process. The devices share the machine's cores,
so this measures what the sharded program costs (splitting each batch, summing the gradients
across devices, the padding of batches to a multiple of D) — not a speed-up, which needs
devices with their own compute (GPUs, TPU cores, hosts). Each figure is the median of
``--repeats`` whole `fit` calls of about ``--seconds`` each, after a warm-up call that compiles;
the problem is `benchmarks/run.py`'s (20 batches per epoch, Adam, L2, reshuffled every epoch).
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import statistics
import subprocess
import sys
import time

WORKLOADS = ("tiny", "small", "mnist")


def child(workloads: list[str], repeats: int, seconds: float) -> None:
    """In a process with D devices: time plain fit (D = 1) and fit on a D-device mesh."""
    import jax
    import jax.numpy as jnp

    import jaxmlp as jm

    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    from run import WORKLOADS as SIZES
    from run import make_problem

    devices = jax.device_count()
    for w in workloads:
        sizes, batch = SIZES[w]
        pb = make_problem(sizes, batch, 20)
        net = jm.MLP(sizes, ("relu",) * (len(sizes) - 2) + ("softmax",))
        x, y = jnp.asarray(pb.x), jnp.asarray(pb.y)
        opt = jm.optim.adam(pb.lr, b1=pb.b1, b2=pb.b2, eps=pb.eps)
        params = jm.init_params(jax.random.key(0), net)
        kw = dict(
            loss="categorical_crossentropy",
            reg=jm.Regularization(l2w=pb.l2),
            batch_size=batch,
            key=jax.random.key(0),
            progress=False,
        )
        variants = {"mesh": {"devices": devices}}
        if devices == 1:
            variants = {"plain": {}, **variants}
        for name, extra in variants.items():
            fit = functools.partial(jm.fit, net, params, opt, x, y, **kw, **extra)
            t, compile_s, loss = time_fit(fit, repeats, seconds)
            row = {"workload": w, "variant": name, "devices": devices}
            row |= {"samples_per_s": x.shape[0] / t, "ms_per_epoch": t * 1e3}
            row |= {"compile_s": compile_s, "loss": [float(v) for v in loss]}
            print(json.dumps(row), flush=True)


def time_fit(fit, repeats: int, seconds: float) -> tuple[float, float, list[float]]:
    """Median seconds per epoch, compile seconds of the first call, and 2 epochs' losses."""
    import jax

    def run(epochs):
        start = time.perf_counter()
        r = fit(epochs=epochs)
        jax.block_until_ready(r.params)
        return time.perf_counter() - start, r.history["loss"]

    first, _ = run(1)
    per_epoch = min(run(3)[0] / 3, first)
    epochs = max(3, round(seconds / max(per_epoch, 1e-6)))
    t = statistics.median(run(epochs)[0] / epochs for _ in range(repeats))
    return t, max(0.0, first - t), list(run(2)[1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workloads", default=",".join(WORKLOADS), help="comma-separated")
    parser.add_argument("--devices", default="1,2,4", help="comma-separated device counts")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--seconds", type=float, default=0.5, help="length of one timed run")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    workloads = args.workloads.split(",")
    if args.child:
        child(workloads, args.repeats, args.seconds)
        return

    rows = []
    load = os.getloadavg()[0]
    for d in sorted({1, *map(int, args.devices.split(","))}):
        env = dict(os.environ, JAX_PLATFORMS="cpu")
        env["XLA_FLAGS"] = f"--xla_force_host_platform_device_count={d}"
        cmd = [sys.executable, __file__, "--child", "--workloads", args.workloads,
               "--repeats", str(args.repeats), "--seconds", str(args.seconds)]  # fmt: skip
        out = subprocess.run(cmd, env=env, capture_output=True, text=True, check=True).stdout
        rows += [json.loads(line) for line in out.splitlines() if line.startswith("{")]
        print(f"  D = {d}: done", file=sys.stderr)

    import jax

    counts = sorted({r["devices"] for r in rows})
    print(
        f"jax {jax.__version__}, {os.cpu_count()} CPU cores, load {load:.2f} at the start; "
        f"samples per second (median of {args.repeats}); compile time of the first call"
    )
    header = ["workload (sizes, batch)", "fit, 1 device"] + [f"mesh, {d} device(s)" for d in counts]
    print("| " + " | ".join(header) + " | max loss difference |")
    print("|---" * (len(header) + 1) + "|")
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    from run import WORKLOADS as SIZES

    for w in workloads:
        mine = {(r["variant"], r["devices"]): r for r in rows if r["workload"] == w}
        plain = mine[("plain", 1)]
        cells = [f"{plain['samples_per_s'] / 1e3:.1f} k ({plain['compile_s']:.1f} s)"]
        diff = 0.0
        for d in counts:
            r = mine[("mesh", d)]
            ratio = r["samples_per_s"] / plain["samples_per_s"]
            cells.append(f"{r['samples_per_s'] / 1e3:.1f} k, {ratio:.2f}× ({r['compile_s']:.1f} s)")
            diff = max(diff, max(abs(a - b) for a, b in zip(r["loss"], plain["loss"])))
        sizes, batch = SIZES[w]
        name = f"{w} {'-'.join(map(str, sizes))}, {batch}"
        print(f"| {name} | " + " | ".join(cells) + f" | {diff:.1e} |")


if __name__ == "__main__":
    main()
