"""One training step: value and gradient of the objective, then the optimizer's update."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax

from jaxmlp.losses import check_loss
from jaxmlp.model import MLP, Params
from jaxmlp.objective import objective
from jaxmlp.optim import Optimizer, OptState, apply_updates
from jaxmlp.regularization import RegLike


def train_step(
    net: MLP,
    opt: Optimizer,
    params: Params,
    opt_state: OptState,
    x: jax.Array,
    y: jax.Array,
    *,
    loss: str,
    reg: RegLike = None,
) -> tuple[Params, OptState, dict[str, jax.Array]]:
    """One step of gradient descent on the regularized objective; pure, not jitted.

    Computes ``jax.value_and_grad`` of `jaxmlp.objective`, lets `opt` turn the gradients into
    updates and applies them. Use `make_train_step` for a compiled version, or jit/vmap/scan this
    function yourself.

    Returns:
      ``(params, opt_state, metrics)`` with ``metrics = {"loss", "data", "penalty"}`` measured
      at the parameters *before* the update.
    """

    def total(p):
        return objective(net, p, x, y, loss=loss, reg=reg)

    (value, parts), grads = jax.value_and_grad(total, has_aux=True)(params)
    updates, opt_state = opt.update(grads, opt_state, params)
    params = apply_updates(params, updates)
    return params, opt_state, {"loss": value, **parts}


def make_train_step(net: MLP, opt: Optimizer, *, loss: str) -> Callable[..., Any]:
    """A jit-compiled `train_step` for one architecture, optimizer and loss.

    The returned function is ``step(params, opt_state, x, y, reg=None) -> (params, opt_state,
    metrics)``. It compiles once per input shape and dtype: new data values, regularization
    strengths or optimizer hyperparameters (which live in `opt_state`) reuse the compiled
    program. Validate data once before the loop: inside `jit`, checks on values (NaN, label
    range) cannot run; checks on shapes still do.

    >>> net = MLP((2, 8, 3), ("relu", "softmax"))
    >>> opt = sgd(0.5)
    >>> step = make_train_step(net, opt, loss="categorical_crossentropy")
    >>> params = init_params(jax.random.key(0), net)
    >>> x, y = spiral(jax.random.key(1), samples=10)
    >>> params, state, metrics = step(params, opt.init(params), x, y, Regularization(l2w=1e-4))
    >>> sorted(metrics)
    ['data', 'loss', 'penalty']
    """
    if not isinstance(net, MLP):
        raise TypeError(f"net must be a jaxmlp.MLP; got {type(net).__name__}")
    if not isinstance(opt, Optimizer):
        raise TypeError(
            "opt must be a jaxmlp optimizer such as jaxmlp.optim.sgd(0.1); got "
            f"{type(opt).__name__}"
        )
    # Fail now, not at the first call, on a bad loss name or loss/activation pair.
    check_loss(loss, net.output_activation, net.out_features)

    @jax.jit
    def step(params, opt_state, x, y, reg=None):
        return train_step(net, opt, params, opt_state, x, y, loss=loss, reg=reg)

    return step
