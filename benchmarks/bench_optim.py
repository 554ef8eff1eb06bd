"""Optimizer step time, and what hyperparameters-as-data buy in a learning-rate sweep.

Run by hand (never a timed test)::

    python benchmarks/bench_optim.py [--width 256] [--steps 200] [--sweep 8]

Part 1 times one jitted ``update + apply_updates`` per optimizer on the parameters of an MLP
``(784, width, width, 10)``. Part 2 sweeps ``--sweep`` learning rates for Adam three ways:
changing the rate in the state between calls of one jitted step (one compilation), `jax.vmap`
over stacked states (one compilation, all rates at once), and a new optimizer whose rate is a
Python closure constant for each value (one compilation per rate: the optax-style baseline).
"""

import argparse
import time

import jax
import jax.numpy as jnp

import jaxmlp as jm
from jaxmlp import optim, schedules


def timed(fn, *args, repeat):
    out = jax.block_until_ready(fn(*args))  # compile and warm up
    start = time.perf_counter()
    for _ in range(repeat):
        out = fn(*args)
    jax.block_until_ready(out)
    return (time.perf_counter() - start) / repeat * 1e6, out


def make_step(opt):
    @jax.jit
    def step(params, state, grads):
        updates, state = opt.update(grads, state, params)
        return optim.apply_updates(params, updates), state

    return step


def step_times(params, grads, repeat):
    optimizers = {
        "sgd(momentum=0.9)": optim.sgd(0.1, 0.9),
        "adagrad": optim.adagrad(0.1),
        "rmsprop(centered, momentum)": optim.rmsprop(1e-3, centered=True, momentum=0.9),
        "adam": optim.adam(1e-3),
        "adam(warmup+cosine schedule)": optim.adam(
            schedules.warmup(schedules.cosine(1e-3, 1000), 100)
        ),
        "adamw": optim.adamw(1e-3),
        "chain(clip, adam)": optim.chain(optim.clip_by_global_norm(1.0), optim.adam(1e-3)),
        "chain(sgd, proximal_l1)": optim.chain(optim.sgd(0.1), optim.proximal_l1(0.1, 1e-4)),
    }
    print(f"{'optimizer':32s} {'µs / step':>10s}")
    for name, opt in optimizers.items():
        us, _ = timed(make_step(opt), params, opt.init(params), grads, repeat=repeat)
        print(f"{name:32s} {us:10.1f}")


def sweep(params, grads, n, steps):
    lrs = jnp.logspace(-4, -1, n)
    base = optim.adam(1e-3)
    traces = []

    def count(fn):
        def wrapped(*args):
            traces.append(1)
            return fn(*args)

        return wrapped

    def run(step, state):
        p = params
        for _ in range(steps):
            p, state = step(p, state, grads)
        return jax.block_until_ready(p)

    # 1. One jitted step; the rate changes in the state.
    step = jax.jit(count(make_step(base).__wrapped__))
    start = time.perf_counter()
    for lr in lrs:
        run(step, optim.set_hyperparams(base.init(params), learning_rate=lr))
    print(f"state data, one step:   {time.perf_counter() - start:6.2f} s, {len(traces)} trace(s)")

    # 2. vmap over stacked states: all rates at once.
    traces.clear()
    states = jax.vmap(lambda lr: optim.set_hyperparams(base.init(params), learning_rate=lr))(lrs)
    inner = make_step(base).__wrapped__
    vstep = jax.jit(count(jax.vmap(inner, in_axes=(0, 0, None))))
    stacked = jax.tree.map(lambda x: jnp.stack([x] * n), params)
    start = time.perf_counter()
    p = stacked
    for _ in range(steps):
        p, states = vstep(p, states, grads)
    jax.block_until_ready(p)
    print(f"vmap over states:       {time.perf_counter() - start:6.2f} s, {len(traces)} trace(s)")

    # 3. Closure constants: a new optimizer (and compilation) per rate.
    traces.clear()
    start = time.perf_counter()
    for lr in lrs:
        opt = optim.adam(lambda k, lr=float(lr): lr)  # a Python callable is a closure constant
        run(jax.jit(count(make_step(opt).__wrapped__)), opt.init(params))
    print(f"closure constants:      {time.perf_counter() - start:6.2f} s, {len(traces)} trace(s)")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--width", type=int, default=256)
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--sweep", type=int, default=8)
    args = parser.parse_args()
    net = jm.MLP((784, args.width, args.width, 10), ("relu", "relu", "softmax"))
    params = jm.init_params(jax.random.key(0), net)
    grads = jax.tree.map(lambda p: 1e-3 * jnp.ones_like(p), params)
    print(f"device: {jax.devices()[0]}, params: {sum(p.size for p in jax.tree.leaves(params))}")
    step_times(params, grads, repeat=args.steps)
    print()
    sweep(params, grads, args.sweep, steps=args.steps // 4)


if __name__ == "__main__":
    main()
