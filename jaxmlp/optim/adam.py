"""Adam and AdamW: momentum on the gradient, RMSprop scaling, both bias-corrected.

``m_t`` and ``v_t`` are moving averages of ``g`` and ``g²``; with ``t = count + 1`` the step is
``W = W − η_t·m̂_t / (√(v̂_t + eps_root) + eps)``, ``m̂_t = m_t / (1 − β1^t)``, ``v̂_t =
v_t / (1 − β2^t)``. `adamw` adds the decoupled decay ``−η_t·λ·W``, which Adam's scaling does not
touch (not the same as L2 in the loss: see `adamw`).
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax.tree_util import PyTreeDef

from jaxmlp.optim import base
from jaxmlp.schedules import ScheduleLike


class AdamState(NamedTuple):
    """State of `adam`: hyperparameters, the moments ``m_t``, ``v_t`` and (amsgrad) ``max v``.

    ``nu_max`` is ``None`` unless the optimizer uses AMSGrad.
    """

    count: jax.Array  # type: ignore[assignment]  # shadows tuple.count, as optax states do
    learning_rate: Any
    b1: jax.Array
    b2: jax.Array
    eps: jax.Array
    eps_root: jax.Array
    mu: Any
    nu: Any
    nu_max: Any

    # A class attribute, not a field: NamedTuple allows it at runtime; mypy does not.
    hyperparameters = base.Hyperparameters(  # type: ignore[misc]
        learning_rate=base.LEARNING_RATE, b1=base.FRACTION, b2=base.FRACTION, **base.EPSILONS
    )


class AdamWState(NamedTuple):
    """State of `adamw`: `AdamState`'s fields plus the decoupled ``weight_decay``."""

    count: jax.Array  # type: ignore[assignment]  # shadows tuple.count, as optax states do
    learning_rate: Any
    b1: jax.Array
    b2: jax.Array
    eps: jax.Array
    eps_root: jax.Array
    weight_decay: jax.Array
    mu: Any
    nu: Any
    nu_max: Any

    # A class attribute, not a field: NamedTuple allows it at runtime; mypy does not.
    hyperparameters = base.Hyperparameters(  # type: ignore[misc]
        AdamState.hyperparameters, weight_decay=base.NONNEGATIVE
    )


def _fresh(hypers: dict[str, Any], params: Any, amsgrad: bool) -> dict[str, Any]:
    """A fresh `AdamState`'s or `AdamWState`'s fields: the count, hyperparameters and moments."""
    fields, (mu, nu, *nu_max) = base.initial(hypers, params, (0,) * (3 if amsgrad else 2))
    return {**fields, "mu": mu, "nu": nu, "nu_max": nu_max[0] if amsgrad else None}


def _adam_direction(grads: Any, state: Any, amsgrad: bool) -> tuple[Any, Any]:
    """``m̂_t / (√(v̂_t + eps_root) + eps)`` and the new state (`AdamState` or `AdamWState`).

    The new state holds the new moments ``m_t``, ``v_t``, ``max v`` and the next count.
    """
    base.check_state_matches(grads, state.mu, f"the {type(state).__name__}'s mu")
    b1, b2 = state.b1, state.b2
    t = base.next_count(state.count).astype(b1.dtype)
    mu = base.ema(state.mu, grads, b1, 1)  # seeds: m_t = β1·m_{t−1} + (1 − β1)·g
    nu = base.ema(state.nu, grads, b2, 2)  # seeds: v_t = β2·v_{t−1} + (1 − β2)·g²
    nu_max, v = None, nu
    if amsgrad:  # PyTorch: the running maximum of v_t, taken before bias correction
        base.check_state_matches(grads, state.nu_max, f"the {type(state).__name__}'s nu_max")
        nu_max = v = jax.tree.map(jnp.maximum, state.nu_max, nu)

    def direction(m_t: jax.Array, v_t: jax.Array) -> jax.Array:
        m_hat = m_t / (1 - b1**t)  # seeds: m̂_t = m_t / (1 − β1^t)
        v_hat = v_t / (1 - b2**t)  # seeds: v̂_t = v_t / (1 − β2^t)
        return m_hat / (jnp.sqrt(v_hat + state.eps_root) + state.eps)

    new = state._replace(count=base.next_count(state.count), mu=mu, nu=nu, nu_max=nu_max)
    return jax.tree.map(direction, mu, v), new


def adam(
    learning_rate: ScheduleLike, b1: float = 0.9, b2: float = 0.999, eps: float = 1e-8,
    eps_root: float = 0.0, amsgrad: bool = False,
) -> base.Optimizer:  # fmt: skip
    """Adam: momentum on the gradient, RMSprop scaling, both bias-corrected.

    The seeds' equations (their "final update" line has a typo; this is the form in their own
    comparison table and in Kingma & Ba)::

        m_t = β1·m_{t−1} + (1 − β1)·g_t
        v_t = β2·v_{t−1} + (1 − β2)·g_t²
        m̂_t = m_t / (1 − β1^t),   v̂_t = v_t / (1 − β2^t)        (t = count + 1)
        W   = W − η_t·m̂_t / (√(v̂_t + eps_root) + eps)

    ``amsgrad`` follows PyTorch: ``v_t`` in ``v̂_t`` is replaced by ``max(v_1, …, v_t)``, the
    maximum taken before bias correction. The book's Adam is ``eps=1e-7``; the seeds' table
    form ``η·m̂/√(v̂ + ε)`` is ``eps=0, eps_root=ε``.

    Args:
      learning_rate: ``η >= 0``, a float or a schedule.
      b1: ``β1`` in ``[0, 1)``.
      b2: ``β2`` in ``[0, 1)``.
      eps: ``>= 0``, added outside the square root.
      eps_root: ``>= 0``, added inside the square root.
      amsgrad: use the AMSGrad variant.

    Returns:
      An `Optimizer` whose state is an `AdamState`.

    >>> opt = adam(0.1)
    >>> params = {"w": jnp.array([1.0, 1.0])}
    >>> updates, state = opt.update({"w": jnp.array([0.5, -4.0])}, opt.init(params), params)
    >>> updates["w"]  # the first step is −η·sign(g): m̂ = g and √v̂ = |g|
    Array([-0.1,  0.1], dtype=float32)
    """
    hypers = AdamState.hyperparameters.initial(
        learning_rate=learning_rate, b1=b1, b2=b2, eps=eps, eps_root=eps_root
    )
    base.check_eps(eps, eps_root, "adam")

    def init(params: Any) -> AdamState:
        return AdamState(**_fresh(hypers, params, amsgrad))

    def update(grads: Any, state: AdamState, params: Any = None):
        base.check_state(state, AdamState, "adam")
        step, new = _adam_direction(grads, state, amsgrad)
        return base.descent(base.lr_now(state), step, state.mu), new

    return base.Optimizer(init, base.program(update, "adam", amsgrad))


def _is_bool(x: Any) -> bool:
    return isinstance(x, (bool, np.bool_)) or getattr(x, "dtype", None) == jnp.bool_


def _where(mask: Any, x: jax.Array) -> jax.Array:
    """`x` where `mask` holds, else 0; a Python bool mask is resolved while tracing."""
    if isinstance(mask, (bool, np.bool_)):
        return x if mask else jnp.zeros_like(x)
    return jnp.where(mask, x, jnp.zeros_like(x))


def _mask_key(mask: Any) -> Any:
    """The AdamW mask as part of the program's key: None, the function itself, or its bools."""
    if mask is None or callable(mask):
        return mask
    leaves = jax.tree.leaves(mask)
    return jax.tree.structure(mask), tuple((np.shape(m), np.asarray(m).tobytes()) for m in leaves)


def _decay_mask(mask: Any, params: Any) -> Any:
    """The AdamW mask as a pytree of bools shaped like `params`, checked."""
    if mask is None:
        return jax.tree_util.tree_map_with_path(lambda path, _: not base.is_bias(path), params)
    tree = mask(params) if callable(mask) else mask
    p_struct: PyTreeDef = jax.tree.structure(params)
    m_struct = jax.tree.structure(tree)
    if p_struct != m_struct or not all(_is_bool(m) for m in jax.tree.leaves(tree)):
        raise ValueError(
            "mask must be a pytree of bools shaped like params (or a function params -> such a "
            f"tree); got {m_struct} for params {p_struct}"
        )
    return tree


def adamw(
    learning_rate: ScheduleLike, b1: float = 0.9, b2: float = 0.999, eps: float = 1e-8,
    eps_root: float = 0.0, weight_decay: float = 1e-2, mask: Any = None, amsgrad: bool = False,
) -> base.Optimizer:  # fmt: skip
    """AdamW: Adam plus a decoupled weight decay ``−η·λ·W`` that Adam's scaling does not touch.

    ::

        W = W − η_t·( m̂_t / (√(v̂_t + eps_root) + eps) + λ·W )      (λ·W where the mask holds)

    the same as PyTorch's ``AdamW`` (``W ← W·(1 − η·λ)`` before the Adam step; its default
    ``λ = 1e-2`` is ours). By default the decay applies to every leaf except biases (leaves
    under the key ``"b"``), so a jaxmlp network decays its weights ``W`` only.

    AdamW versus L2 in the loss, worked out. Take one weight ``w = 1``, learning rate
    ``η = 0.1``, strength ``λ = 0.01`` and, to isolate the decay, a data gradient of 0.

    - L2 in the loss (``λ·Σw²``, the seeds' penalty, gradient ``2λw = 0.02``) goes through
      Adam: ``m̂ = 0.02`` is divided by ``√v̂ = 0.02``, so the first step is the full
      ``η = 0.1`` whatever ``λ`` is: ``w → 0.9``.
    - AdamW's decay is not divided by ``√v̂``: ``w → 1 − η·λ·w = 0.999``.

    With a large data gradient the roles flip: its ``√v̂`` also divides the L2 term, whose pull
    becomes ``≈ η·2λw/|g|`` — small for parameters with large gradients, large for those with
    small ones — while AdamW decays every weight by the same ``η·λ·w``.

    Args:
      learning_rate: ``η >= 0``, a float or a schedule.
      b1: ``β1`` in ``[0, 1)``.
      b2: ``β2`` in ``[0, 1)``.
      eps: ``>= 0``, added outside the square root.
      eps_root: ``>= 0``, added inside the square root.
      weight_decay: ``λ >= 0``.
      mask: which leaves decay: a pytree of bools shaped like params, a function ``params ->``
        such a tree, or None for every leaf that is not under a ``"b"`` key.
      amsgrad: use the AMSGrad variant (as in `adam`).

    Returns:
      An `Optimizer` whose state is an `AdamWState`.

    >>> params, no_data_grad = {"W": jnp.array([1.0])}, {"W": jnp.array([0.0])}
    >>> l2_grad = {"W": 2 * 0.01 * params["W"]}  # gradient of 0.01·Σw²
    >>> opt = adam(0.1)
    >>> u, _ = opt.update(l2_grad, opt.init(params), params)
    >>> round(float(apply_updates(params, u)["W"][0]), 4)
    0.9
    >>> opt = adamw(0.1, weight_decay=0.01)
    >>> u, _ = opt.update(no_data_grad, opt.init(params), params)
    >>> round(float(apply_updates(params, u)["W"][0]), 4)
    0.999
    """
    hypers = AdamWState.hyperparameters.initial(
        learning_rate=learning_rate, b1=b1, b2=b2, eps=eps, eps_root=eps_root
    )
    base.check_eps(eps, eps_root, "adamw")
    hypers |= AdamWState.hyperparameters.initial(weight_decay=weight_decay)

    def init(params: Any) -> AdamWState:
        _decay_mask(mask, params)  # fail now on a mask that does not fit the params
        return AdamWState(**_fresh(hypers, params, amsgrad))

    def update(grads: Any, state: AdamWState, params: Any = None):
        base.check_state(state, AdamWState, "adamw")
        base.need_params(params, "adamw")
        base.check_state_matches(grads, params, "params")
        step, new = _adam_direction(grads, state, amsgrad)
        lam, decays = state.weight_decay, _decay_mask(mask, params)
        step = jax.tree.map(lambda s, w, m: s + _where(m, lam * w), step, params, decays)
        return base.descent(base.lr_now(state), step, state.mu), new

    return base.Optimizer(init, base.program(update, "adamw", amsgrad, _mask_key(mask)))
