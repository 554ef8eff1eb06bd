"""Adagrad, each coordinate's step shrinking with its summed squared gradients: `adagrad`.

``G_t = G_{t−1} + g_t²`` and ``W = W − η_t·g_t / (√(G_t + eps_root) + eps)``: the seeds' ``ε``
inside the root is ``eps_root``, the book's outside it is ``eps``.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from jaxmlp._checks import check_range, is_concrete
from jaxmlp.optim import base
from jaxmlp.schedules import ScheduleLike


class AdagradState(NamedTuple):
    """State of `adagrad`: step count, hyperparameters, and ``G_t = Σ g²``."""

    count: jax.Array  # type: ignore[assignment]  # shadows tuple.count, as optax states do
    learning_rate: Any
    eps: jax.Array
    eps_root: jax.Array
    sum_of_squares: Any

    # A class attribute, not a field: NamedTuple allows it at runtime; mypy does not.
    hyperparameters = base.Hyperparameters(  # type: ignore[misc]
        learning_rate=base.LEARNING_RATE, **base.EPSILONS
    )


def adagrad(
    learning_rate: ScheduleLike, eps: float = 1e-7, eps_root: float = 0.0,
    initial_accumulator_value: float = 0.0,
) -> base.Optimizer:  # fmt: skip
    """Adagrad: each coordinate's step shrinks with the sum of its squared gradients.

    The seeds' equations, with ``G_0 = initial_accumulator_value``::

        G_t = G_{t−1} + g_t²
        W   = W − η_t·g_t / (√(G_t + eps_root) + eps)

    The seeds' ``η/√(G_t + ε)`` is ``eps=0, eps_root=ε``; the book's is ``eps=1e-7`` (the
    default) with ``eps_root=0``; PyTorch's ``Adagrad(lr_decay=d)`` is
    ``learning_rate=schedules.inverse_time(lr, d)`` with ``eps=1e-10``.

    Args:
      learning_rate: ``η >= 0``, a float or a schedule (the book uses 1.0).
      eps: ``>= 0``, added outside the square root.
      eps_root: ``>= 0``, added inside the square root.
      initial_accumulator_value: ``G_0 >= 0``.

    Returns:
      An `Optimizer` whose state is an `AdagradState`.

    >>> opt = adagrad(1.0, eps=0.0, eps_root=1e-8)
    >>> params = {"w": jnp.array([1.0, 1.0])}
    >>> updates, _ = opt.update({"w": jnp.array([2.0, 0.0])}, opt.init(params), params)
    >>> updates["w"]
    Array([-1., -0.], dtype=float32)
    """
    hypers = AdagradState.hyperparameters.initial(
        learning_rate=learning_rate, eps=eps, eps_root=eps_root
    )
    check_range("initial_accumulator_value", initial_accumulator_value)
    if not (is_concrete(initial_accumulator_value) and np.all(initial_accumulator_value > 0)):
        base.check_eps(eps, eps_root, "adagrad")

    def init(params: Any) -> AdagradState:
        fields, (G0,) = base.initial(hypers, params, (initial_accumulator_value,))
        return AdagradState(sum_of_squares=G0, **fields)

    def update(grads: Any, state: AdagradState, params: Any = None):
        base.check_state(state, AdagradState, "adagrad")
        base.check_state_matches(grads, state.sum_of_squares, "the Adagrad state's sum_of_squares")
        # seeds: G_t = G_{t−1} + g²
        G = jax.tree.map(lambda s, g: (s + g**2).astype(s.dtype), state.sum_of_squares, grads)
        step = jax.tree.map(lambda g, s: g / (jnp.sqrt(s + state.eps_root) + state.eps), grads, G)
        updates = base.descent(base.lr_now(state), step, G)
        return updates, state._replace(count=base.next_count(state.count), sum_of_squares=G)

    return base.Optimizer(init, base.program(update, "adagrad"))
