"""Speed of a jitted training step with hand-written gradients against autodiff.

Both steps are `jaxmlp.make_train_step` (objective, gradient, SGD update, compiled with
`jax.jit`); they differ only in ``grads="manual"`` (`jaxmlp.backprop`) or ``grads="autodiff"``
(`jax.value_and_grad`). Random data; each timing is the median of several repeats of a run of
steps, after warm-up, with the two variants interleaved.

    python benchmarks/bench_grads.py                # without regularization
    python benchmarks/bench_grads.py --reg          # L1 + L2 on weights and biases

Target: manual time <= 1.2 × autodiff time.
"""

import argparse
import statistics
import time

import jax
import jax.numpy as jnp
import numpy as np

import jaxmlp as jm

CCE = "categorical_crossentropy"
WORKLOADS = {
    "tiny": ((2, 64, 3), ("relu", "softmax"), 300),
    "small": ((64, 128, 128, 10), ("relu", "relu", "softmax"), 128),
    "mnist": ((784, 256, 256, 10), ("relu", "relu", "softmax"), 128),
}


def run(step, params, state, x, y, reg, steps):
    """Time `steps` consecutive steps (parameters carried over), in seconds per step."""
    start = time.perf_counter()
    for _ in range(steps):
        params, state, metrics = step(params, state, x, y, reg)
    jax.block_until_ready((params, metrics))
    return (time.perf_counter() - start) / steps


def bench(name, sizes, activations, batch, *, reg, steps, repeats):
    net = jm.MLP(sizes, activations)
    rng = np.random.default_rng(0)
    x = jnp.asarray(rng.normal(size=(batch, sizes[0])), jnp.float32)
    y = jnp.asarray(rng.integers(0, sizes[-1], batch), jnp.int32)
    params = jm.init_params(jax.random.key(0), net)
    opt = jm.optim.sgd(0.01)
    state = opt.init(params)
    steps_by = {g: jm.make_train_step(net, opt, loss=CCE, grads=g) for g in ("autodiff", "manual")}
    for step in steps_by.values():  # compile and warm up
        run(step, params, state, x, y, reg, 5)
    times = {g: [] for g in steps_by}
    for _ in range(repeats):
        for g, step in steps_by.items():
            times[g].append(run(step, params, state, x, y, reg, steps))
    t = {g: statistics.median(v) for g, v in times.items()}
    ratio = t["manual"] / t["autodiff"]
    print(
        f"{name:<6s} {'-'.join(map(str, sizes)):<16s} {batch:>5d}  "
        f"{batch / t['autodiff']:>12,.0f}  {batch / t['manual']:>12,.0f}  "
        f"{t['autodiff'] * 1e6:>9.1f}  {t['manual'] * 1e6:>9.1f}  {ratio:>6.2f}"
    )
    return ratio


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reg", action="store_true", help="L1 + L2 on weights and biases")
    parser.add_argument("--steps", type=int, default=100, help="steps per timed run")
    parser.add_argument("--repeats", type=int, default=7, help="timed runs per variant")
    parser.add_argument("--only", choices=list(WORKLOADS), nargs="*", help="workloads to run")
    args = parser.parse_args()
    reg = jm.Regularization(1e-5, 1e-5, 5e-4, 5e-4) if args.reg else None
    print(
        f"jax {jax.__version__} on {jax.devices()[0].device_kind}; jitted train step, SGD; "
        f"reg={'L1+L2' if args.reg else 'none'}; median of {args.repeats} runs of "
        f"{args.steps} steps"
    )
    print(
        f"{'':6s} {'sizes':<16s} {'batch':>5s}  {'autodiff/s':>12s}  {'manual/s':>12s}  "
        f"{'auto µs':>9s}  {'man µs':>9s}  {'ratio':>6s}"
    )
    ratios = [
        bench(name, *spec, reg=reg, steps=args.steps, repeats=args.repeats)
        for name, spec in WORKLOADS.items()
        if not args.only or name in args.only
    ]
    print("samples/s: higher is better; ratio = manual time / autodiff time (target <= 1.2)")
    print(f"worst ratio: {max(ratios):.2f}")


if __name__ == "__main__":
    main()
