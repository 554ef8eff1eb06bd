"""RMSprop, Adagrad with a decaying average in place of the sum, and its variants: `rmsprop`.

``S_t = ρ·S_{t−1} + (1 − ρ)·g_t²`` and ``W = W − η_t·g_t / (√(S_t + eps_root) + eps)``, with
PyTorch's centered (the variance ``S_t − ḡ_t²`` in the root) and momentum variants.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from jaxmlp.optim import base
from jaxmlp.schedules import ScheduleLike


class RMSPropState(NamedTuple):
    """State of `rmsprop`: hyperparameters, ``S_t``, the mean gradient and the momentum buffer.

    ``grad_avg`` (the running mean of ``g``) is ``None`` unless the optimizer is centered.
    """

    count: jax.Array  # type: ignore[assignment]  # shadows tuple.count, as optax states do
    learning_rate: Any
    rho: jax.Array
    eps: jax.Array
    eps_root: jax.Array
    momentum: jax.Array
    nu: Any
    grad_avg: Any
    trace: Any

    # A class attribute, not a field: NamedTuple allows it at runtime; mypy does not.
    hyperparameters = base.Hyperparameters(  # type: ignore[misc]
        learning_rate=base.LEARNING_RATE, rho=base.FRACTION, **base.EPSILONS, momentum=base.FRACTION
    )


def rmsprop(
    learning_rate: ScheduleLike, rho: float = 0.9, eps: float = 1e-7, eps_root: float = 0.0,
    centered: bool = False, momentum: float = 0.0,
) -> base.Optimizer:  # fmt: skip
    """RMSprop: Adagrad with an exponentially decaying average in place of the sum.

    The seeds' equations, then PyTorch's centered and momentum variants::

        S_t = ρ·S_{t−1} + (1 − ρ)·g_t²
        ḡ_t = ρ·ḡ_{t−1} + (1 − ρ)·g_t                (centered only)
        D_t = √(S_t − ḡ_t² + eps_root) + eps          (√(S_t + eps_root) + eps if not centered)
        b_t = μ·b_{t−1} + g_t / D_t
        W   = W − η_t·b_t

    With ``μ = 0`` the last two lines are the seeds' ``W = W − η·g/√(S_t + ε)`` (``eps=0,
    eps_root=ε``) or the book's ``W = W − η·g/(√S_t + ε)`` (``eps=1e-7``, the default). Rounding
    can make ``S_t − ḡ_t²`` (a variance) slightly negative; it is clamped at 0.

    Args:
      learning_rate: ``η >= 0``, a float or a schedule (the book uses 0.001).
      rho: ``ρ`` in ``[0, 1)``.
      eps: ``>= 0``, added outside the square root.
      eps_root: ``>= 0``, added inside the square root.
      centered: divide by the root of the variance ``S_t − ḡ_t²`` rather than of ``S_t``.
      momentum: ``μ`` in ``[0, 1)`` (PyTorch's momentum buffer; the learning rate applies to the
        buffer, as in PyTorch).

    Returns:
      An `Optimizer` whose state is an `RMSPropState`.

    >>> opt = rmsprop(0.01, rho=0.9, eps=0.0, eps_root=1e-8)
    >>> params = {"w": jnp.array([1.0])}
    >>> updates, _ = opt.update({"w": jnp.array([3.0])}, opt.init(params), params)
    >>> updates["w"]  # −η·g/√((1 − ρ)·g²) = −0.01·3/√0.9
    Array([-0.0316227...], dtype=float32)
    """
    hypers = RMSPropState.hyperparameters.initial(
        learning_rate=learning_rate, rho=rho, momentum=momentum, eps=eps, eps_root=eps_root
    )
    base.check_eps(eps, eps_root, "rmsprop")

    def init(params: Any) -> RMSPropState:
        fields, (nu, trace, *avg) = base.initial(hypers, params, (0,) * (3 if centered else 2))
        return RMSPropState(nu=nu, grad_avg=avg[0] if centered else None, trace=trace, **fields)

    def update(grads: Any, state: RMSPropState, params: Any = None):
        base.check_state(state, RMSPropState, "rmsprop")
        base.check_state_matches(grads, state.nu, "the RMSprop state's nu")
        nu = base.ema(state.nu, grads, state.rho, 2)  # seeds: S_t = ρ·S_{t−1} + (1 − ρ)·g²
        grad_avg, var = None, nu
        if centered:
            base.check_state_matches(grads, state.grad_avg, "the RMSprop state's grad_avg")
            grad_avg = base.ema(state.grad_avg, grads, state.rho, 1)
            var = jax.tree.map(lambda s, m: jnp.maximum(s - m**2, 0), nu, grad_avg)
        step = jax.tree.map(lambda g, v: g / (jnp.sqrt(v + state.eps_root) + state.eps), grads, var)
        mu = state.momentum
        trace = jax.tree.map(lambda b, s: (mu * b + s).astype(b.dtype), state.trace, step)
        updates = base.descent(base.lr_now(state), trace, state.trace)
        return updates, state._replace(
            count=base.next_count(state.count), nu=nu, grad_avg=grad_avg, trace=trace
        )

    return base.Optimizer(init, base.program(update, "rmsprop", centered))
