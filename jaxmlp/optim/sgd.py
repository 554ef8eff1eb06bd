"""Stochastic gradient descent with optional (Nesterov) momentum: `SGDState` and `sgd`.

The seeds' step is ``W = W − η·∇W``; with momentum ``μ`` the velocity ``v_t = μ·v_{t−1} + g_t``
takes the gradient's place (PyTorch's and optax's form).
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax

from jaxmlp.optim import base
from jaxmlp.schedules import ScheduleLike


class SGDState(NamedTuple):
    """State of `sgd`: step count, hyperparameters, and the velocity ``trace``."""

    count: jax.Array  # type: ignore[assignment]  # shadows tuple.count, as optax states do
    learning_rate: Any
    momentum: jax.Array
    trace: Any

    # A class attribute, not a field: NamedTuple allows it at runtime; mypy does not.
    hyperparameters = base.Hyperparameters(  # type: ignore[misc]
        learning_rate=base.LEARNING_RATE, momentum=base.FRACTION
    )


def sgd(
    learning_rate: ScheduleLike, momentum: float = 0.0, nesterov: bool = False
) -> base.Optimizer:
    """Stochastic gradient descent, with optional (Nesterov) momentum.

    The seeds' plain step ``W = W − η·∇W`` when ``momentum = 0``. With momentum ``μ``::

        v_t = μ·v_{t−1} + g_t
        W   = W − η_t·v_t                (nesterov: W = W − η_t·(g_t + μ·v_t))

    This is PyTorch's and optax's form. The book writes ``v_t = μ·v_{t−1} − η_t·g_t;
    W = W + v_t``; with a constant learning rate the two produce identical weights (with a
    decaying one they differ: the book scales each gradient by the rate of its own step).

    Args:
      learning_rate: ``η >= 0``, a float or a schedule.
      momentum: ``μ`` in ``[0, 1)``; 0 is plain gradient descent.
      nesterov: use Nesterov's look-ahead form.

    Returns:
      An `Optimizer` whose state is an `SGDState`.

    >>> opt = sgd(0.1)
    >>> params = {"w": jnp.array([1.0, -2.0])}
    >>> updates, state = opt.update({"w": jnp.array([0.5, 0.5])}, opt.init(params), params)
    >>> apply_updates(params, updates)["w"]
    Array([ 0.95, -2.05], dtype=float32)
    """
    hypers = SGDState.hyperparameters.initial(learning_rate=learning_rate, momentum=momentum)

    def init(params: Any) -> SGDState:
        fields, (trace,) = base.initial(hypers, params, (0,))
        return SGDState(trace=trace, **fields)

    def update(grads: Any, state: SGDState, params: Any = None) -> tuple[base.Updates, SGDState]:
        base.check_state(state, SGDState, "sgd")
        base.check_state_matches(grads, state.trace, "the SGD state's trace")
        mu = state.momentum
        trace = jax.tree.map(lambda v, g: (mu * v + g).astype(v.dtype), state.trace, grads)
        step = jax.tree.map(lambda g, v: g + mu * v, grads, trace) if nesterov else trace
        updates = base.descent(base.lr_now(state), step, state.trace)
        return updates, state._replace(count=base.next_count(state.count), trace=trace)

    return base.Optimizer(init, base.program(update, "sgd", nesterov))
