"""Many models at once: `jaxmlp.ensemble.fit_many` for K models against `jaxmlp.fit` for one.

    python benchmarks/bench_many.py                  # K = 32 tiny models (2-64-3, batch 300)
    python benchmarks/bench_many.py --k 8,32,128 --workload small
    python benchmarks/bench_many.py --group 8        # fit_many(group_size=8): 4 groups of 8

The K models differ in initial weights (seeds), L2 strength and learning rate; they share the
data (``--batches`` batches per epoch, reshuffled every epoch with one key). Each timing is
the median of ``--repeats`` runs of whole `fit` / `fit_many` calls after a warm-up (which
compiles); "time ratio" is the time of K models at once over the time of one model for the
same number of epochs, and "vs K fits" how much faster that is than K separate `fit` calls.

Target (issue 7): 32 tiny models in at most 4× the time of one.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np

import jaxmlp as jm
from jaxmlp.ensemble import fit_many, stack
from jaxmlp.optim import set_hyperparams

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from run import WORKLOADS, make_problem  # noqa: E402

CCE = "categorical_crossentropy"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--k", default="32", help="comma-separated numbers of models")
    parser.add_argument("--workload", default="tiny", choices=list(WORKLOADS))
    parser.add_argument("--batches", type=int, default=20, help="mini-batches per epoch")
    parser.add_argument("--epochs", type=int, default=0, help="epochs per timed run (0: auto)")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--group", type=int, default=None, help="fit_many's group_size")
    args = parser.parse_args()

    sizes, batch = WORKLOADS[args.workload]
    pb = make_problem(sizes, batch, args.batches)
    net = jm.MLP(sizes, ("relu",) * (len(sizes) - 2) + ("softmax",))
    x, y = jnp.asarray(pb.x), jnp.asarray(pb.y)
    opt = jm.optim.adam(pb.lr, b1=pb.b1, b2=pb.b2, eps=pb.eps)
    kw = dict(loss=CCE, batch_size=batch, key=jax.random.key(0), progress=False)

    def one(epochs):
        params = jm.init_params(jax.random.key(0), net)
        r = jm.fit(net, params, opt, x, y, reg=jm.Regularization(l2w=pb.l2), epochs=epochs, **kw)
        jax.block_until_ready(r.params)

    def many(k):
        params = stack([jm.init_params(jax.random.key(s), net) for s in range(k)])
        states = stack(
            [
                set_hyperparams(opt.init(jm.init_params(jax.random.key(0), net)), learning_rate=lr)
                for lr in np.geomspace(1e-4, 1e-2, k)
            ]
        )
        reg = jm.Regularization(l2w=jnp.asarray(np.geomspace(1e-5, 1e-2, k), jnp.float32))

        def run(epochs):
            r = fit_many(
                net,
                params,
                opt,
                x,
                y,
                reg=reg,
                opt_state=states,
                epochs=epochs,
                group_size=args.group,
                **kw,
            )
            jax.block_until_ready(r.params)

        return run

    def timed(fn, epochs):
        start = time.perf_counter()
        fn(epochs)
        return time.perf_counter() - start

    load = os.getloadavg()[0]
    print(
        f"jax {jax.__version__} on {jax.devices()[0].device_kind}, {os.cpu_count()} cores; load "
        f"{load:.2f}; workload {args.workload} {'-'.join(map(str, sizes))}, batch {batch}, "
        f"{args.batches} batches per epoch; Adam; median of {args.repeats} runs"
    )
    print(
        "| K | one model (ms/epoch) | K at once (ms/epoch) | time ratio | vs K fits | compile (s) |"
    )
    print("|---|---|---|---|---|---|")
    one(1)
    for k in map(int, args.k.split(",")):
        run = many(k)
        start = time.perf_counter()
        run(1)
        first = time.perf_counter() - start
        epochs = args.epochs or max(5, round(1.0 / max(timed(run, 5) / 5, timed(one, 5) / 5, 1e-6)))
        t1, tk = [], []
        for _ in range(args.repeats):
            t1.append(timed(one, epochs) / epochs)
            tk.append(timed(run, epochs) / epochs)
        t1, tk = statistics.median(t1), statistics.median(tk)
        print(
            f"| {k} | {t1 * 1e3:.2f} | {tk * 1e3:.2f} | {tk / t1:.2f}× | {k * t1 / tk:.1f}× "
            f"faster | {max(0.0, first - tk):.2f} |"
        )


if __name__ == "__main__":
    main()
