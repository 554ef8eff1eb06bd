"""One training step: value and gradient of the objective, then the optimizer's update.

The gradient comes from autodiff (``grads="autodiff"``: `jax.value_and_grad` of
`jaxmlp.objective`) or from the hand-written backward pass (``grads="manual"``:
`jaxmlp.backprop.value_and_backprop`); everything else in the step is the same.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import jax
from jax import Array

from jaxmlp._checks import check_choice, check_loss, check_problem
from jaxmlp.backprop import backward
from jaxmlp.losses import Mask
from jaxmlp.model import MLP, Params, intermediates
from jaxmlp.objective import objective_and_output, objective_of
from jaxmlp.optim import Optimizer, OptState, apply_updates
from jaxmlp.regularization import RegLike

GRADS: tuple[str, ...] = ("autodiff", "manual")


def value_and_grads(net: MLP, params: Params, x: Array, y: Array, *, loss: str,
                    reg: RegLike = None, grads: str = "autodiff",
                    mask: Mask = None) -> tuple:  # fmt: skip
    """The objective, its parts, the network's output and the gradient, from one forward pass.

    ``grads="autodiff"`` differentiates `jaxmlp.objective` with `jax.value_and_grad`;
    ``grads="manual"`` uses the hand-written `jaxmlp.backprop.backward`. `mask` as for
    `jaxmlp.objective`. Inputs are not checked: `train_step` and `jaxmlp.fit` check them once.

    Returns:
      ``((total, {"data", "penalty"}, output), grads)``.
    """
    if grads == "manual":
        zs, acts = intermediates(net, params, x)
        g = backward(net, params, zs, acts, y, loss=loss, reg=reg, mask=mask)
        total, (parts, out) = objective_of(net, params, zs, acts, y, loss=loss, reg=reg, mask=mask)
    else:
        f = functools.partial(objective_and_output, net, loss=loss, reg=reg, mask=mask)
        (total, (parts, out)), g = jax.value_and_grad(f, has_aux=True)(params, x, y)
    return (total, parts, out), g


def train_step(net: MLP, opt: Optimizer, params: Params, opt_state: OptState, x: Array, y: Array,
               *, loss: str, reg: RegLike = None,
               grads: str = "autodiff") -> tuple[Params, OptState, dict[str, Array]]:  # fmt: skip
    """One step of gradient descent on the regularized objective; pure, not jitted.

    Computes the value and gradient of `jaxmlp.objective`, lets `opt` turn the gradients into
    updates and applies them. Use `make_train_step` for a compiled version, or jit/vmap/scan this
    function yourself.

    Args:
      net: the architecture.
      opt: an optimizer such as ``jaxmlp.optim.sgd(0.1)``.
      params: a tuple of ``{"W", "b"}`` dicts, one per layer.
      opt_state: ``opt.init(params)`` or the state a previous step returned.
      x: inputs, shape ``(batch, net.in_features)``.
      y: targets as for `jaxmlp.objective`.
      loss: the data loss's name.
      reg: a `Regularization`, a tuple with one per layer, or None.
      grads: ``"autodiff"`` (`jax.value_and_grad`) or ``"manual"`` (the hand-written
        `jaxmlp.backprop.backprop`, from the same forward pass as the reported loss).

    Returns:
      ``(params, opt_state, metrics)`` with ``metrics = {"loss", "data", "penalty"}`` measured
      at the parameters *before* the update.
    """
    check_choice("grads", grads, GRADS)
    x, y, _ = check_problem(net, x, y, loss, params=params)
    (value, parts, _), g = value_and_grads(net, params, x, y, loss=loss, reg=reg, grads=grads)
    updates, opt_state = opt.update(g, opt_state, params)
    params = apply_updates(params, updates)
    return params, opt_state, {"loss": value, **parts}


def make_train_step(net: MLP, opt: Optimizer, *, loss: str,
                    grads: str = "autodiff") -> Callable[..., Any]:  # fmt: skip
    """A jit-compiled `train_step` for one architecture, optimizer, loss and gradient source.

    The returned function is ``step(params, opt_state, x, y, reg=None) -> (params, opt_state,
    metrics)``. It compiles once per input shape and dtype: new data values, regularization
    strengths or optimizer hyperparameters (which live in `opt_state`) reuse the compiled
    program. Validate data once before the loop: inside `jit`, checks on values (NaN, label
    range) cannot run; checks on shapes still do. ``grads="manual"`` takes the gradients from
    the hand-written `jaxmlp.backprop.backprop` instead of autodiff (see `train_step`).

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
        got = type(opt).__name__
        raise TypeError(f"opt must be a jaxmlp optimizer such as jaxmlp.optim.sgd(0.1); got {got}")
    # Fail now, not at the first call, on a bad loss name or loss/activation pair.
    check_loss(loss, net.output_activation, net.out_features)
    check_choice("grads", grads, GRADS)

    @jax.jit
    def step(params, opt_state, x, y, reg=None):
        return train_step(net, opt, params, opt_state, x, y, loss=loss, reg=reg, grads=grads)

    return step
