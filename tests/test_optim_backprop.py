"""The seeds' check: training on gradients from the manual `backprop` equals training on
`jax.grad`, step for step, for every optimizer (float64, tight tolerance)."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxmlp as jm
from jaxmlp import optim, schedules
from jaxmlp.backprop import backprop

NET = jm.MLP((2, 8, 6, 3), ("tanh", "sigmoid", "softmax"))
LOSS = "categorical_crossentropy"
STEPS = 20


@functools.partial(jax.jit, static_argnums=0)
def manual_grads(net, params, x, y, reg):
    return backprop(net, params, x, y, loss=LOSS, reg=reg)


@functools.partial(jax.jit, static_argnums=0)
def autodiff_grads(net, params, x, y, reg):
    return jax.grad(lambda p: jm.objective(net, p, x, y, loss=LOSS, reg=reg)[0])(params)


OPTIMIZERS = {
    "sgd-nesterov": lambda: optim.sgd(0.5, momentum=0.9, nesterov=True),
    "adagrad-seeds": lambda: optim.adagrad(0.3, eps=0.0, eps_root=1e-8),
    "rmsprop-centered-momentum": lambda: optim.rmsprop(0.01, centered=True, momentum=0.5),
    "adam-amsgrad-warmup": lambda: optim.adam(schedules.warmup(0.05, 5), amsgrad=True),
    "clip-adamw": lambda: optim.chain(
        optim.clip_by_global_norm(0.5), optim.adamw(schedules.inverse_time(0.05, 0.1))
    ),
    "sgd-proximal-l1": lambda: optim.chain(
        optim.sgd(0.5), optim.proximal_l1(0.5, l1w=1e-3, l1b=1e-3)
    ),
}


def train(opt, update, grad_fn, params, x, y, reg):
    state = opt.init(params)
    trajectory = []
    for _ in range(STEPS):
        updates, state = update(grad_fn(NET, params, x, y, reg), state, params)
        params = optim.apply_updates(params, updates)
        trajectory.append(params)
    return trajectory


@pytest.mark.parametrize("make_opt", OPTIMIZERS.values(), ids=OPTIMIZERS.keys())
def test_backprop_and_autodiff_trajectories_agree(x64, make_opt):
    rng = np.random.default_rng(0)
    params = tuple(
        {
            "W": jnp.asarray(rng.normal(size=(m, n)) / np.sqrt(m)),
            "b": jnp.asarray(rng.normal(size=n)),
        }
        for m, n in zip(NET.sizes[:-1], NET.sizes[1:])
    )
    x, y = jnp.asarray(rng.normal(size=(24, 2))), jnp.asarray(rng.integers(0, 3, size=24))
    reg = jm.Regularization(l1w=1e-3, l1b=5e-4, l2w=1e-3, l2b=5e-4)
    assert x.dtype == jnp.float64
    opt = make_opt()
    update = jax.jit(opt.update)  # one compiled update serves both runs
    manual = train(opt, update, manual_grads, params, x, y, reg)
    auto = train(opt, update, autodiff_grads, params, x, y, reg)
    for k, (a, b) in enumerate(zip(manual, auto)):
        for u, v in zip(jax.tree.leaves(a), jax.tree.leaves(b)):
            np.testing.assert_allclose(u, v, rtol=1e-9, atol=1e-12, err_msg=f"step {k}")
    moved = jax.tree.map(lambda p0, p: float(jnp.max(jnp.abs(p - p0))), params, manual[-1])
    assert max(jax.tree.leaves(moved)) > 1e-3  # the trajectory went somewhere
