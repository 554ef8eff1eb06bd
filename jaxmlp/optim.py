"""Optimizers written by hand as pure state transitions over pytrees.

An optimizer is a pair of pure functions::

    state = opt.init(params)
    updates, state = opt.update(grads, state, params)
    params = apply_updates(params, updates)        # params + updates, leaf by leaf

Unlike optax, hyperparameters (learning rate, momentum, …) live in the state as arrays, not in
the closures: changing one between steps never recompiles a jitted step, and `jax.vmap` over
states with different hyperparameters trains many models at once. Change one with
`set_hyperparams`. Only structural choices (``nesterov``) are fixed when the optimizer is made.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from jaxmlp._checks import check_nonnegative, is_concrete

Updates = Any
OptState = Any


class Optimizer(NamedTuple):
    """A pure optimizer: ``init(params)`` and ``update(grads, state, params)``.

    ``init`` returns the state; ``update`` returns ``(updates, new_state)``.
    """

    init: Callable[[Any], OptState]
    update: Callable[[Any, OptState, Any], tuple[Updates, OptState]]


def _hyper(name: str, value: Any) -> jax.Array:
    """A hyperparameter as a float array of JAX's default float dtype, checked if concrete."""
    check_nonnegative(name, value)
    return jnp.asarray(value, dtype=jnp.result_type(float))


def apply_updates(params: Any, updates: Updates) -> Any:
    """``params + updates`` leaf by leaf, keeping each parameter's dtype.

    Standing alone, it lets manual and autodiff gradients go through the same step.
    """
    p_struct, u_struct = jax.tree.structure(params), jax.tree.structure(updates)
    if p_struct != u_struct:
        raise ValueError(
            f"updates must have the same tree structure as params; got {u_struct} for "
            f"params {p_struct}"
        )
    return jax.tree.map(lambda p, u: (p + u).astype(jnp.result_type(p)), params, updates)


def check_state_matches(params: Any, tree: Any, what: str) -> None:
    """Raise ValueError unless `tree` (a part of an optimizer state) is shaped like `params`."""
    p_struct, t_struct = jax.tree.structure(params), jax.tree.structure(tree)
    if p_struct != t_struct:
        raise ValueError(
            f"{what} does not match the params tree: state holds {t_struct}, params are "
            f"{p_struct}; initialize the optimizer state with opt.init(params)"
        )
    for p, t in zip(jax.tree.leaves(params), jax.tree.leaves(tree)):
        if jnp.shape(p) != jnp.shape(t):
            raise ValueError(
                f"{what} does not match the params: a leaf of shape {jnp.shape(t)} stands "
                f"where params have {jnp.shape(p)}; initialize it with opt.init(params)"
            )


class SGDState(NamedTuple):
    """State of `sgd`: step count, hyperparameters, and the velocity ``trace``."""

    count: jax.Array
    learning_rate: jax.Array
    momentum: jax.Array
    trace: Any


def sgd(learning_rate: float, momentum: float = 0.0, nesterov: bool = False) -> Optimizer:
    """Stochastic gradient descent, with optional (Nesterov) momentum.

    The seeds' plain step ``W = W − η·∇W`` when ``momentum = 0``. With momentum ``μ``::

        v_t = μ·v_{t−1} + g_t
        W   = W − η·v_t                  (nesterov: W = W − η·(g_t + μ·v_t))

    This is PyTorch's and optax's form. The book writes ``v_t = μ·v_{t−1} − η·g_t;
    W = W + v_t``; with a constant learning rate the two produce identical weights.

    Args:
      learning_rate: ``η >= 0``.
      momentum: ``μ`` in ``[0, 1)``; 0 is plain gradient descent.
      nesterov: use Nesterov's look-ahead form.

    >>> opt = sgd(0.1)
    >>> params = {"w": jnp.array([1.0, -2.0])}
    >>> updates, state = opt.update({"w": jnp.array([0.5, 0.5])}, opt.init(params), params)
    >>> apply_updates(params, updates)["w"]
    Array([ 0.95, -2.05], dtype=float32)
    """
    lr0 = _hyper("learning_rate", learning_rate)
    mu0 = _hyper("momentum", momentum)
    if is_concrete(momentum) and float(momentum) >= 1:
        raise ValueError(f"momentum must be in [0, 1); got {momentum!r}")

    def init(params: Any) -> SGDState:
        trace = jax.tree.map(jnp.zeros_like, params)
        return SGDState(jnp.zeros((), jnp.int32), lr0, mu0, trace)

    def update(grads: Any, state: SGDState, params: Any = None) -> tuple[Updates, SGDState]:
        check_state_matches(grads, state.trace, "the SGD state's trace")
        mu = state.momentum
        trace = jax.tree.map(lambda v, g: (mu * v + g).astype(g.dtype), state.trace, grads)
        if nesterov:
            step = jax.tree.map(lambda g, v: g + mu * v, grads, trace)
        else:
            step = trace
        lr = state.learning_rate
        updates = jax.tree.map(lambda s: (-lr * s).astype(s.dtype), step)
        return updates, state._replace(count=state.count + 1, trace=trace)

    return Optimizer(init, update)


def set_hyperparams(state: NamedTuple, **values: Any) -> NamedTuple:
    """A copy of an optimizer `state` with some hyperparameters changed.

    Values are cast to the dtype already in the state, so a jitted step that takes the state
    does not recompile.

    >>> state = sgd(0.1).init({"w": jnp.zeros(2)})
    >>> float(set_hyperparams(state, learning_rate=0.05).learning_rate)
    0.05...
    """
    fields = getattr(state, "_fields", ())
    for name, value in values.items():
        if (
            name in ("count",)
            or name not in fields
            or not isinstance(getattr(state, name), jax.Array)
        ):
            known = [f for f in fields if f != "count" and isinstance(getattr(state, f), jax.Array)]
            raise ValueError(
                f"unknown hyperparameter {name!r} for {type(state).__name__}; expected one of "
                f"{known}"
            )
        check_nonnegative(name, value)
    return state._replace(
        **{k: jnp.asarray(v, dtype=getattr(state, k).dtype) for k, v in values.items()}
    )
