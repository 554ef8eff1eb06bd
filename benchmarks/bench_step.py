"""A user's own jitted training step built from jaxmlp's parts, against the same step with optax.

    python benchmarks/bench_step.py                       # every workload of run.py
    python benchmarks/bench_step.py --workloads tiny,mnist --repeats 9

Three steps, each one `jax.jit` function with donated parameters and state, called from a
Python loop over the same device batches (so each pays the same dispatch):

- ``optax``: ``jax.value_and_grad`` of a plain loss (ReLU layers, optax's integer-label softmax
  cross-entropy, ``5e-4·ΣW²``), ``optax.adam(1e-3)``, ``optax.apply_updates``;
- ``jaxmlp autodiff``: ``jax.value_and_grad(jm.objective, has_aux=True)``,
  ``jm.optim.adam(1e-3)``, ``jm.apply_updates``;
- ``jaxmlp manual``: the same with ``jm.value_and_backprop`` (the hand-written gradient).

Before timing, the three must give the same loss after 5 steps (rtol 1e-4, float32). Each
time is the median over ``--repeats`` interleaved runs of ``--steps`` steps. Targets (issue 17):
optax time / jaxmlp autodiff time ≥ 1.0 on every workload; autodiff / manual time ≥ 1/1.1.
Needs optax (``pip install -e ".[bench]"``).
"""

from __future__ import annotations

import argparse
import functools
import os
import statistics
import sys
import time

import jax
import jax.numpy as jnp
import optax

import jaxmlp as jm

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from run import WORKLOADS, make_problem  # noqa: E402

CCE = "categorical_crossentropy"
L2 = 5e-4


def optax_step(n_layers: int):
    """The step as optax users write it."""
    tx = optax.adam(1e-3)

    def loss(params, x, y):
        h = x
        for l, (W, b) in enumerate(params):
            h = h @ W + b
            if l < n_layers - 1:
                h = jax.nn.relu(h)
        data = optax.softmax_cross_entropy_with_integer_labels(h, y).mean()
        return data + L2 * sum(jnp.sum(W * W) for W, _ in params)

    @functools.partial(jax.jit, donate_argnums=(0, 1))
    def step(params, state, x, y):
        value, g = jax.value_and_grad(loss)(params, x, y)
        updates, state = tx.update(g, state, params)
        return optax.apply_updates(params, updates), state, value

    return tx.init, step


def jaxmlp_step(net: jm.MLP, grads: str):
    """The step written with jaxmlp's parts: its objective (or backprop), Adam, apply_updates."""
    opt, reg = jm.optim.adam(1e-3), jm.Regularization(l2w=L2)

    def value_and_grad(params, x, y):
        if grads == "manual":
            return jm.value_and_backprop(net, params, x, y, loss=CCE, reg=reg)
        f = functools.partial(jm.objective, net, loss=CCE, reg=reg)
        return jax.value_and_grad(f, has_aux=True)(params, x, y)

    @functools.partial(jax.jit, donate_argnums=(0, 1))
    def step(params, state, x, y):
        (value, _), g = value_and_grad(params, x, y)
        updates, state = opt.update(g, state, params)
        return jm.apply_updates(params, updates), state, value

    return opt.init, step


def run(init, step, params, batches, steps: int):
    """`steps` steps from fresh copies of `params`; the seconds and the last loss."""
    params = jax.tree.map(jnp.array, params)
    state = init(params)
    jax.block_until_ready((params, state))
    start = time.perf_counter()
    for i in range(steps):
        params, state, value = step(params, state, *batches[i % len(batches)])
    jax.block_until_ready(params)
    return time.perf_counter() - start, float(value)


def bench(name: str, args) -> dict:
    sizes, batch = WORKLOADS[name]
    pb = make_problem(sizes, batch, args.batches)
    net = jm.MLP(sizes, ("relu",) * (len(sizes) - 2) + ("softmax",))
    x = jnp.asarray(pb.x).reshape(args.batches, batch, -1)
    y = jnp.asarray(pb.y).reshape(args.batches, batch)
    batches = [(x[i], y[i]) for i in range(args.batches)]
    plain = tuple((jnp.asarray(W), jnp.asarray(b)) for W, b in pb.params)
    dicts = tuple({"W": W, "b": b} for W, b in plain)
    impls = {
        "optax": (*optax_step(len(sizes) - 1), plain),
        "jaxmlp autodiff": (*jaxmlp_step(net, "autodiff"), dicts),
        "jaxmlp manual": (*jaxmlp_step(net, "manual"), dicts),
    }
    losses = {k: run(init, step, p, batches, 5)[1] for k, (init, step, p) in impls.items()}
    ok = all(abs(v / losses["optax"] - 1) <= 1e-4 for v in losses.values())
    times = {k: [] for k in impls}
    for _ in range(args.repeats):
        for k, (init, step, p) in impls.items():
            times[k].append(run(init, step, p, batches, args.steps)[0] / args.steps)
    med = {k: statistics.median(v) for k, v in times.items()}
    return {"time": med, "ok": ok, "losses": losses}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workloads", default=",".join(WORKLOADS))
    parser.add_argument("--batches", type=int, default=20)
    parser.add_argument("--steps", type=int, default=200, help="steps per timed run")
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()
    print(
        f"jax {jax.__version__} on {jax.devices()[0].device_kind}, {os.cpu_count()} cores; "
        f"load {os.getloadavg()[0]:.2f}; median of {args.repeats} runs of {args.steps} steps\n"
    )
    print("| workload | optax (µs/step) | jaxmlp autodiff | jaxmlp manual | optax / jaxmlp | "
          "autodiff / manual | losses agree |")  # fmt: skip
    print("|---|---|---|---|---|---|---|")
    ok = True
    for name in args.workloads.split(","):
        r = bench(name, args)
        t, agree = r["time"], "yes" if r["ok"] else r["losses"]
        ok &= r["ok"]
        print(
            f"| {name} | {t['optax'] * 1e6:.0f} | {t['jaxmlp autodiff'] * 1e6:.0f} | "
            f"{t['jaxmlp manual'] * 1e6:.0f} | {t['optax'] / t['jaxmlp autodiff']:.2f}× | "
            f"{t['jaxmlp autodiff'] / t['jaxmlp manual']:.2f} | {agree} |"
        )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
