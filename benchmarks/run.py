"""Training throughput of jaxmlp beside NumPy, PyTorch, JAX+optax and Flax, in one process.

    python benchmarks/run.py                          # every workload, every installed peer
    python benchmarks/run.py --workloads tiny,small --quick
    python benchmarks/run.py --peers-fixed          # fit reshuffles, the peers do not

Every implementation trains the same MLP (ReLU hidden layers, softmax cross-entropy on the
logits, ``5e-4·ΣW²`` on the weights, Adam ``lr=1e-3, b1=0.9, b2=0.999, eps=1e-8``) from the same
initial weights on the same data: ``--batches`` mini-batches per epoch, reshuffled every epoch.
Before timing, each trains 3 epochs over the first 4 batches in a fixed order, and its
per-epoch mean losses must agree with jaxmlp's to ``--rtol`` (float32 arithmetic, different
summation orders); a disagreement is printed and makes the exit status 1.

With ``--no-shuffle`` nobody shuffles (the training steps alone); with ``--peers-fixed`` the
peers (and the jaxmlp step loop) step through the batches in the same order every epoch while
`jaxmlp.fit` reshuffles, its default: issue 17's comparison, where the shuffle is part of
fit's time and not of the peers'.

Throughput is samples per second in steady state: after a warm-up (which compiles), each
implementation is timed on runs of whole epochs lasting about ``--seconds``, the runs of all
implementations interleaved, and the median of ``--repeats`` runs is kept. "compile" is the
first call's time minus the steady time of the same work (JAX implementations only). The
matmul peak is measured in the same process (float32 2048² `jnp.dot`, best of 10); "% peak" is
``samples/s · 6·Σ fan_in·fan_out / peak`` (forward and backward FLOPs per sample).

jaxmlp rows: `jaxmlp.fit` (whole epochs compiled; autodiff and the hand-written backprop), and a
Python loop over `jaxmlp.make_train_step`. Peers missing from the environment are skipped with
a note; install them with ``pip install -e ".[bench]"``.
"""

from __future__ import annotations

import argparse
import importlib.util
import math
import os
import platform
import statistics
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np

import jaxmlp as jm

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from peers import MODULES, PEERS, Problem, shuffled_batches  # noqa: E402

CCE = "categorical_crossentropy"
WORKLOADS = {
    "tiny": ((2, 64, 3), 300),
    "small": ((64, 128, 128, 10), 128),
    "mnist": ((784, 256, 256, 10), 128),
    "wide": ((784, 1024, 1024, 10), 1024),
}
CHECK_BATCHES, CHECK_EPOCHS = 4, 3


def make_problem(sizes, batch, n_batches, seed=0, shuffle=True, fit_shuffle=True) -> Problem:
    """Gaussian inputs, labels from a random linear teacher, He-initialised weights."""
    rng = np.random.default_rng(seed)
    n = n_batches * batch
    x = rng.normal(size=(n, sizes[0])).astype(np.float32)
    y = np.argmax(x @ rng.normal(size=(sizes[0], sizes[-1])), axis=1).astype(np.int32)
    net = jm.MLP(sizes, ("relu",) * (len(sizes) - 2) + ("softmax",))
    params = jm.init_params(jax.random.key(seed), net, dtype=jnp.float32)
    params = tuple((np.asarray(p["W"]), np.asarray(p["b"])) for p in params)
    return Problem(sizes=tuple(sizes), batch=batch, x=x, y=y, params=params, shuffle=shuffle,
                   fit_shuffle=fit_shuffle)  # fmt: skip


class _Jaxmlp:
    def __init__(self, pb: Problem):
        self.pb = pb
        self.net = jm.MLP(pb.sizes, ("relu",) * (len(pb.sizes) - 2) + ("softmax",))
        self.params0 = tuple({"W": jnp.asarray(W), "b": jnp.asarray(b)} for W, b in pb.params)
        self.opt = jm.optim.adam(pb.lr, b1=pb.b1, b2=pb.b2, eps=pb.eps)
        self.reg = jm.Regularization(l2w=pb.l2)
        self.x, self.y = jnp.asarray(pb.x), jnp.asarray(pb.y)
        self.key = jax.random.key(0)


class JaxmlpFit(_Jaxmlp):
    """`jaxmlp.fit`: the run compiled once; several epochs per compiled call."""

    def __init__(self, pb, grads="autodiff"):
        super().__init__(pb)
        self.grads = grads
        self.name = f"jaxmlp fit ({grads})"
        self.params, self.state, self.done = self.params0, None, 0

    def fit(self, params, x, y, epochs, **kw):
        return jm.fit(
            self.net, params, self.opt, x, y, loss=CCE, reg=self.reg, epochs=epochs,
            batch_size=self.pb.batch, grads=self.grads, progress=False, **kw,
        )  # fmt: skip

    def check(self, xs, ys, epochs):
        x, y = np.reshape(xs, (-1, xs.shape[-1])), np.reshape(ys, (-1,))
        result = self.fit(self.params0, x, y, epochs, shuffle=False)
        return [float(v) for v in result.history["loss"]]

    def train(self, epochs):
        r = self.fit(
            self.params, self.x, self.y, epochs, key=self.key, opt_state=self.state,
            initial_epoch=self.done, shuffle=self.pb.fit_shuffle,
        )  # fmt: skip
        self.params, self.state, self.done = r.params, r.opt_state, self.done + epochs


class JaxmlpStep(_Jaxmlp):
    """A Python loop over `jaxmlp.make_train_step` (jitted, one dispatch per batch)."""

    name = "jaxmlp step loop"

    def __init__(self, pb):
        super().__init__(pb)
        self.step = jm.make_train_step(self.net, self.opt, loss=CCE)
        self.shuffle = shuffled_batches(pb.n_batches, pb.shuffle)
        self.params, self.state, self.epoch = self.params0, self.opt.init(self.params0), 0

    def check(self, xs, ys, epochs):
        params, state = self.params0, self.opt.init(self.params0)
        out = []
        for _ in range(epochs):
            losses = []
            for x, y in zip(jnp.asarray(xs), jnp.asarray(ys)):
                params, state, m = self.step(params, state, x, y, self.reg)
                losses.append(float(m["loss"]))
            out.append(float(np.mean(losses)))
        return out

    def train(self, epochs):
        for _ in range(epochs):
            self.epoch += 1
            batches = self.shuffle(jax.random.fold_in(self.key, self.epoch), self.x, self.y)
            for xb, yb in batches:
                self.params, self.state, _ = self.step(self.params, self.state, xb, yb, self.reg)
        jax.block_until_ready(self.params)


JAXMLP = {
    "fit_autodiff": lambda pb: JaxmlpFit(pb, "autodiff"),
    "fit_manual": lambda pb: JaxmlpFit(pb, "manual"),
    "jaxmlp_step": JaxmlpStep,
}
IS_JAX = {"fit_autodiff", "fit_manual", "jaxmlp_step", "optax_step", "optax_scan", "flax"}


def matmul_peak(n=2048, repeats=10) -> float:
    """Best float32 ``n×n @ n×n`` throughput of `jnp.dot`, in FLOP/s."""
    a = jnp.asarray(np.random.default_rng(0).normal(size=(n, n)), jnp.float32)
    dot = jax.jit(jnp.dot)
    dot(a, a).block_until_ready()
    best = math.inf
    for _ in range(repeats):
        start = time.perf_counter()
        dot(a, a).block_until_ready()
        best = min(best, time.perf_counter() - start)
    return 2 * n**3 / best


def timed(fn, *args):
    start = time.perf_counter()
    fn(*args)
    return time.perf_counter() - start


def bench_workload(name, sizes, batch, impls, args):
    pb = make_problem(sizes, batch, args.batches, shuffle=not (args.no_shuffle or args.peers_fixed),
                      fit_shuffle=not args.no_shuffle)  # fmt: skip
    built = {key: make(pb) for key, make in impls.items()}

    # Agreement: per-epoch mean losses over fixed-order batches, against jaxmlp's fit.
    xs = pb.x[: CHECK_BATCHES * batch].reshape(CHECK_BATCHES, batch, -1)
    ys = pb.y[: CHECK_BATCHES * batch].reshape(CHECK_BATCHES, batch)
    losses = {key: np.asarray(impl.check(xs, ys, CHECK_EPOCHS)) for key, impl in built.items()}
    ref = losses["fit_autodiff"]
    deviation = {key: float(np.max(np.abs(v / ref - 1))) for key, v in losses.items()}

    # Warm-up (compiles), then calibrate epochs per timed run.
    first, per_run = {}, {}
    for key, impl in built.items():
        first[key] = timed(impl.train, 1)
        epoch = min(timed(impl.train, 1), timed(impl.train, 1))
        per_run[key] = max(1, round(args.seconds / epoch))
    times = {key: [] for key in built}
    for _ in range(args.repeats):
        for key, impl in built.items():
            times[key].append(timed(impl.train, per_run[key]) / per_run[key])
    epoch_s = {key: statistics.median(v) for key, v in times.items()}
    rate = {key: pb.n / t for key, t in epoch_s.items()}
    compile_s = {key: max(0.0, first[key] - epoch_s[key]) for key in built if key in IS_JAX}
    return {
        "rate": rate,
        "compile": compile_s,
        "deviation": deviation,
        "losses": losses,
        "flops": 6 * sum(a * b for a, b in zip(sizes[:-1], sizes[1:])),
    }


def shuffled(args) -> str:
    """Who reshuffles every epoch, in words."""
    if args.no_shuffle:
        return "nobody"
    return "jaxmlp's fit only" if args.peers_fixed else "everyone"


def fmt_rate(r):
    return f"{r / 1e6:.2f} M/s" if r >= 1e6 else f"{r / 1e3:.1f} k/s"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workloads", default=",".join(WORKLOADS), help="comma-separated")
    parser.add_argument("--batches", type=int, default=20, help="mini-batches per epoch")
    parser.add_argument("--repeats", type=int, default=5, help="timed runs per implementation")
    parser.add_argument("--seconds", type=float, default=0.5, help="length of one timed run")
    parser.add_argument("--rtol", type=float, default=1e-4, help="loss agreement tolerance")
    parser.add_argument(
        "--no-shuffle", action="store_true", help="the same batch order every epoch, for all"
    )
    parser.add_argument(
        "--peers-fixed", action="store_true", help="only jaxmlp's fit reshuffles (issue 17)"
    )
    parser.add_argument("--quick", action="store_true", help="3 repeats of 0.25 s")
    args = parser.parse_args()
    if args.quick:
        args.repeats, args.seconds = 3, 0.25
    names = args.workloads.split(",")
    for w in names:
        if w not in WORKLOADS:
            parser.error(f"unknown workload {w!r}; expected some of {', '.join(WORKLOADS)}")

    impls = {}
    for key, cls in PEERS.items():
        module = MODULES.get(key)
        if module and importlib.util.find_spec(module) is None:
            print(f"note: {cls.name} skipped ({module} is not installed)")
            continue
        impls[key] = cls
    impls.update(JAXMLP)
    peers = [k for k in impls if k in PEERS]

    peak = matmul_peak()
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    extra = ""
    if "torch" in impls:
        import torch

        extra = f", torch {torch.__version__} ({torch.get_num_threads()} threads)"
    cpu = platform.processor() or platform.machine()
    print(
        f"\njax {jax.__version__} on {jax.devices()[0].device_kind} ({cpu}, "
        f"{os.cpu_count()} cores){extra}; matmul peak "
        f"{peak / 1e9:.0f} GFLOP/s; load {load:.2f}; {args.batches} batches per epoch, median "
        f"of {args.repeats} runs of ~{args.seconds} s; shuffled: {shuffled(args)}\n"
    )
    results = {}
    for w in names:
        sizes, batch = WORKLOADS[w]
        results[w] = bench_workload(w, sizes, batch, impls, args)
        print(f"  {w}: done", file=sys.stderr)

    labels = {k: (impls[k].name if k in PEERS else JAXMLP_LABEL[k]) for k in impls}
    print("| workload (sizes, batch) | " + " | ".join(labels[k] for k in impls) + " |")
    print("|---" * (len(impls) + 1) + "|")
    for w in names:
        sizes, batch = WORKLOADS[w]
        r = results[w]["rate"]
        cells = [fmt_rate(r[k]) for k in impls]
        print(f"| {w} {'-'.join(map(str, sizes))}, {batch} | " + " | ".join(cells) + " |")

    print(
        "\n| workload | best peer | fit/best | manual/autodiff time | fit % of matmul peak | "
        "compile fit / optax scan (s) | max loss deviation |"
    )
    print("|---|---|---|---|---|---|---|")
    ok = True
    for w in names:
        res = results[w]
        r, c = res["rate"], res["compile"]
        best = max(peers, key=lambda k: r[k]) if peers else None
        ratio = f"{r['fit_autodiff'] / r[best]:.2f}×" if best else "—"
        share = r["fit_autodiff"] * res["flops"] / peak
        dev = max(res["deviation"].values())
        ok &= dev <= args.rtol
        worst = max(res["deviation"], key=res["deviation"].get)
        comp = f"{c['fit_autodiff']:.2f} / {c.get('optax_scan', float('nan')):.2f}"
        print(
            f"| {w} | {impls[best].name if best else '—'} | {ratio} | "
            f"{r['fit_autodiff'] / r['fit_manual']:.2f} | {share:.0%} | {comp} | "
            f"{dev:.1e} ({labels[worst]}) |"
        )
    print(f"\nloss agreement (rtol {args.rtol:g}): {'ok' if ok else 'FAILED'}")
    if not ok:
        for w in names:
            for k, v in results[w]["losses"].items():
                print(f"  {w} {labels[k]}: {v}")
    return 0 if ok else 1


JAXMLP_LABEL = {
    "fit_autodiff": "jaxmlp fit",
    "fit_manual": "jaxmlp fit (manual)",
    "jaxmlp_step": "jaxmlp step loop",
}

if __name__ == "__main__":
    sys.exit(main())
