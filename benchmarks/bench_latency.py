"""First-call latency: a fresh process's first `jaxmlp.fit` against a hand-written optax epoch.

    python benchmarks/bench_latency.py                 # tiny 2-64-3, batch 300, 20 batches
    python benchmarks/bench_latency.py --workload mnist --repeats 5

What a notebook user waits for after changing the architecture, the loss or the batch size.
Each measurement runs in its own fresh Python process (imports and data made before the clock
starts), so nothing is compiled or cached beforehand (JAX's persistent compilation cache is off).
Timed: from the call to the trained parameters on the host's side (`jax.block_until_ready`):

- ``fit``: `jaxmlp.fit` for one epoch (argument checks, tracing, compiling, the epoch, the
  history), with the initial parameters made beforehand by `jaxmlp.init_params`; ``fit, early
  stopping`` the same with `jaxmlp.EarlyStopping` (``restore_best``); ``fit_many, 8 models``
  `jaxmlp.ensemble.fit_many` of 8 stacked models for one epoch.
- ``fit, a later call``: not a first call: the median of 21 one-epoch calls after the first,
  the same shapes (what each call of a loop over seeds or strengths pays beyond its epochs).
- ``optax scan``: the peer users write by hand: one `jax.jit` function that shuffles with
  `jax.random.permutation` and runs `jax.lax.scan` of a value_and_grad + optax Adam step over
  the batches, called once (tracing, compiling, the epoch).
- ``init_params``: `jaxmlp.init_params` for the net, also a first call.
- ``backprop``: `jaxmlp.backprop` (the hand-written gradient) on one batch, called outside
  `jax.jit`, as in a notebook cell; beside it the gradient a user writes by hand, the same loss
  and penalty, as ``jax.grad(loss)`` called directly (``grad, op by op``: JAX runs and compiles
  each operation on its own) and as ``jax.jit(jax.grad(loss))`` (``grad, jitted``).

The median of ``--repeats`` processes each; "fit / optax scan" is the ratio of the medians and
"compilations" how many XLA programs the call compiled (from `jax.log_compiles`). Target
(issue 17): fit ≤ 1.3× optax scan. Needs optax (``pip install -e ".[bench]"``).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys

SETUP = """
import json, logging, sys, time
import numpy as np
import jax, jax.numpy as jnp
import jaxmlp as jm

sizes, batch, n_batches = {sizes!r}, {batch}, {n_batches}
rng = np.random.default_rng(0)
x = rng.normal(size=(n_batches * batch, sizes[0])).astype(np.float32)
y = rng.integers(0, sizes[-1], n_batches * batch).astype(np.int32)
net = jm.MLP(sizes, ("relu",) * (len(sizes) - 2) + ("softmax",))

compiles = []
class Count(logging.Handler):
    def emit(self, record):
        if "Finished XLA compilation" in record.getMessage():
            compiles.append(record.getMessage())
logging.getLogger("jax").addHandler(Count())
logging.getLogger("jax").setLevel(logging.DEBUG)
"""

# Before the clock: the initial parameters, made and ready. Then the clock starts, counting
# the compilations from here on.
PARAMS = """
params = jm.init_params(jax.random.key(0), net)
jax.block_until_ready(params)
"""
START = """
jax.config.update("jax_log_compiles", True)
compiles.clear()
start = time.perf_counter()
"""

HAND_LOSS = """
def loss(params, x, y):
    h = x
    for l, p in enumerate(params):
        h = h @ p["W"] + p["b"]
        if l < len(params) - 1:
            h = jax.nn.relu(h)
    data = -jnp.take_along_axis(jax.nn.log_softmax(h), y[:, None], axis=1).mean()
    return data + 5e-4 * sum(jnp.sum(p["W"] * p["W"]) for p in params)
"""

CANDIDATES = {
    "fit": PARAMS
    + "opt = jm.optim.adam(1e-3)\n"
    + START
    + """
r = jm.fit(net, params, opt, x, y, loss="categorical_crossentropy",
           reg=jm.Regularization(l2w=5e-4), epochs=1, batch_size=batch, progress=False)
jax.block_until_ready(r.params)
""",
    "fit, early stopping": PARAMS
    + "opt = jm.optim.adam(1e-3)\n"
    + "es = jm.EarlyStopping(monitor='loss', patience=5, restore_best=True)\n"
    + START
    + """
r = jm.fit(net, params, opt, x, y, loss="categorical_crossentropy", early_stopping=es,
           reg=jm.Regularization(l2w=5e-4), epochs=1, batch_size=batch, progress=False)
jax.block_until_ready(r.params)
""",
    "fit_many, 8 models": """
from jaxmlp.ensemble import fit_many, stack
params = stack([jm.init_params(jax.random.key(s), net) for s in range(8)])
jax.block_until_ready(params)
opt = jm.optim.adam(1e-3)
"""
    + START
    + """
r = fit_many(net, params, opt, x, y, loss="categorical_crossentropy",
             reg=jm.Regularization(l2w=5e-4), epochs=1, batch_size=batch, progress=False)
jax.block_until_ready(r.params)
""",
    "fit, a later call": PARAMS
    + """
opt = jm.optim.adam(1e-3)
def call():
    r = jm.fit(net, params, opt, x, y, loss="categorical_crossentropy",
               reg=jm.Regularization(l2w=5e-4), epochs=1, batch_size=batch, progress=False)
    jax.block_until_ready(r.params)
call()
times = []
for _ in range(21):
    t = time.perf_counter()
    call()
    times.append(time.perf_counter() - t)
"""
    + START
    + "start -= sorted(times)[10]  # reported: the median of 21 later calls\n",
    "optax scan": """
import optax
params = jm.init_params(jax.random.key(0), net)
params = tuple((p["W"], p["b"]) for p in params)
jax.block_until_ready(params)
"""
    + START
    + """
tx = optax.adam(1e-3)

def loss(params, x, y):
    h = x
    for l, (W, b) in enumerate(params):
        h = h @ W + b
        if l < len(params) - 1:
            h = jax.nn.relu(h)
    data = optax.softmax_cross_entropy_with_integer_labels(h, y).mean()
    return data + 5e-4 * sum(jnp.sum(W * W) for W, _ in params)

def body(carry, batch):
    params, state = carry
    value, g = jax.value_and_grad(loss)(params, *batch)
    updates, state = tx.update(g, state, params)
    return (optax.apply_updates(params, updates), state), value

@jax.jit
def epoch(params, state, key, x, y):
    order = jax.random.permutation(key, x.shape[0])
    xs = x[order].reshape(n_batches, batch, -1)
    ys = y[order].reshape(n_batches, batch)
    (params, state), values = jax.lax.scan(body, (params, state), (xs, ys))
    return params, state, values

out = epoch(params, tx.init(params), jax.random.key(0), jnp.asarray(x), jnp.asarray(y))
jax.block_until_ready(out)
""",
    "backprop": PARAMS
    + START
    + """
g = jm.backprop(net, params, x[:batch], y[:batch], loss="categorical_crossentropy",
                reg=jm.Regularization(l2w=5e-4))
jax.block_until_ready(g)
""",
    "grad, op by op": PARAMS
    + START
    + HAND_LOSS
    + """
g = jax.grad(loss)(params, x[:batch], y[:batch])
jax.block_until_ready(g)
""",
    "grad, jitted": PARAMS
    + START
    + HAND_LOSS
    + """
g = jax.jit(jax.grad(loss))(params, x[:batch], y[:batch])
jax.block_until_ready(g)
""",
    "init_params": START
    + """
params = jm.init_params(jax.random.key(0), net)
jax.block_until_ready(params)
""",
}

REPORT = """
seconds = time.perf_counter() - start
print(json.dumps({"seconds": seconds, "compiles": len(compiles)}))
"""

WORKLOADS = {
    "tiny": ((2, 64, 3), 300),
    "small": ((64, 128, 128, 10), 128),
    "mnist": ((784, 256, 256, 10), 128),
    "wide": ((784, 1024, 1024, 10), 1024),
}


def measure(name: str, sizes, batch: int, n_batches: int) -> dict:
    """Run one candidate in a fresh process; its time (s) and number of compilations."""
    code = SETUP.format(sizes=tuple(sizes), batch=batch, n_batches=n_batches)
    code += CANDIDATES[name] + REPORT
    env = dict(os.environ, JAXMLP_COMPILE_CACHE="off")
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    if out.returncode != 0:
        raise RuntimeError(f"{name} failed:\n{out.stderr}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workload", default="tiny", choices=list(WORKLOADS))
    parser.add_argument("--batches", type=int, default=20, help="mini-batches in the epoch")
    parser.add_argument("--repeats", type=int, default=5, help="fresh processes per candidate")
    args = parser.parse_args()
    sizes, batch = WORKLOADS[args.workload]

    runs = {name: [] for name in CANDIDATES}
    for _ in range(args.repeats):  # interleaved, so a change of load hits every candidate
        for name in CANDIDATES:
            runs[name].append(measure(name, sizes, batch, args.batches))
    import jax

    print(
        f"jax {jax.__version__} on {jax.devices()[0].device_kind}, {os.cpu_count()} cores; "
        f"load {os.getloadavg()[0]:.2f}; workload {args.workload} {'-'.join(map(str, sizes))}, "
        f"batch {batch}, {args.batches} batches; median of {args.repeats} fresh processes\n"
    )
    print("| first call | seconds (median) | all runs | compilations |")
    print("|---|---|---|---|")
    median = {}
    for name, rs in runs.items():
        median[name] = statistics.median(r["seconds"] for r in rs)
        times = ", ".join(f"{r['seconds']:.3f}" for r in rs)
        print(f"| {name} | {median[name]:.3f} | {times} | {rs[0]['compiles']} |")
    ratio = median["fit"] / median["optax scan"]
    print(f"\nfit / optax scan: {ratio:.2f}× (target ≤ 1.3×)")
    for peer in ("grad, op by op", "grad, jitted"):
        print(f"backprop / {peer}: {median['backprop'] / median[peer]:.2f}×")
    return 0


if __name__ == "__main__":
    sys.exit(main())
