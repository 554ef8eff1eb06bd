"""Optimizers written by hand as pure state transitions over pytrees, in the seeds' notation.

An optimizer is a pair of pure functions::

    state = opt.init(params)
    updates, state = opt.update(grads, state, params)
    params = apply_updates(params, updates)        # params + updates, leaf by leaf

Unlike optax, hyperparameters (learning rate, β, ε, …) live in the state as arrays, not in
the closures: changing one between steps (`set_hyperparams`) never recompiles a jitted step,
and `jax.vmap` over stacked states with different hyperparameters trains many models at once.
Only structural choices (``nesterov``, ``centered``, ``amsgrad``, the AdamW mask) are fixed
when the optimizer is made. Every ``learning_rate`` is a float or a schedule
(`jaxmlp.schedules`); update number ``k`` (0 for the first) uses ``schedule(k)``.

ε placement. Every adaptive optimizer divides by ``√(s + eps_root) + eps``: ``eps`` is added
outside the square root (PyTorch, the book), ``eps_root`` inside (the seeds, Keras, optax's
Adagrad and RMSprop). ``eps=0, eps_root=ε`` is the seeds' ``√(G_t + ε)``.

Transformations compose with `chain`: `clip_by_global_norm` before an optimizer rescales the
gradients; `proximal_l1` after it soft-thresholds the step so that L1 yields exact zeros. They
live in `jaxmlp.transforms` and are re-exported here. Updates are cast to each parameter
leaf's dtype.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from jaxmlp._checks import check_range, is_concrete
from jaxmlp._optim_core import (
    RANGES,
    Optimizer,
    OptState,
    Updates,
    as_learning_rate,
    check_state,
    check_state_matches,
    count0,
    hyper,
    is_bias,
    lr_now,
    need_params,
    next_count,
)
from jaxmlp.schedules import FromCallable, ScheduleLike, is_schedule
from jaxmlp.transforms import (
    ClipState,
    ProximalL1State,
    _layer_strengths,
    chain,
    clip_by_global_norm,
    proximal_l1,
)

__all__ = [
    "AdagradState",
    "AdamState",
    "AdamWState",
    "ClipState",
    "OptState",
    "Optimizer",
    "ProximalL1State",
    "RMSPropState",
    "SGDState",
    "Updates",
    "adagrad",
    "adam",
    "adamw",
    "apply_updates",
    "chain",
    "check_state_matches",
    "clip_by_global_norm",
    "learning_rate_of",
    "proximal_l1",
    "rmsprop",
    "set_hyperparams",
    "sgd",
]


# ---------------------------------------------------------------------------------------------
# Helpers


def _check_eps(eps: Any, eps_root: Any, who: str) -> None:
    if is_concrete(eps) and is_concrete(eps_root):
        if np.all(np.asarray(eps) == 0) and np.all(np.asarray(eps_root) == 0):
            raise ValueError(
                f"{who}: eps and eps_root are both 0, so a coordinate whose gradients have all "
                "been 0 would divide 0 by 0; set eps > 0 (added outside the square root) or "
                "eps_root > 0 (inside)"
            )


def _zeros(params: Any) -> Any:
    return jax.tree.map(jnp.zeros_like, params)


def _ema(moment: Any, grads: Any, decay: jax.Array, order: int) -> Any:
    """``decay·moment + (1 − decay)·g^order``, kept in the moment's dtype."""
    return jax.tree.map(
        lambda m, g: (decay * m + (1 - decay) * g**order).astype(m.dtype), moment, grads
    )


def _descent(lr: jax.Array, direction: Any, like: Any) -> Any:
    """``−lr·direction``, each leaf cast to the dtype of the matching leaf of `like`."""
    return jax.tree.map(lambda d, p: (-lr * d).astype(p.dtype), direction, like)


def _is_bool(x: Any) -> bool:
    return isinstance(x, (bool, np.bool_)) or getattr(x, "dtype", None) == jnp.bool_


def _where(mask: Any, x: jax.Array) -> jax.Array:
    """`x` where `mask` holds, else 0; a Python bool mask is resolved while tracing."""
    if isinstance(mask, (bool, np.bool_)):
        return x if mask else jnp.zeros_like(x)
    return jnp.where(mask, x, jnp.zeros_like(x))


def apply_updates(params: Any, updates: Updates) -> Any:
    """``params + updates`` leaf by leaf, keeping each parameter's dtype.

    Standing alone, it lets manual and autodiff gradients go through the same step.

    >>> apply_updates({"w": jnp.array([1.0, 2.0])}, {"w": jnp.array([0.5, -0.5])})["w"]
    Array([1.5, 1.5], dtype=float32)
    """
    p_struct, u_struct = jax.tree.structure(params), jax.tree.structure(updates)
    if p_struct != u_struct:
        raise ValueError(
            f"updates must have the same tree structure as params; got {u_struct} for "
            f"params {p_struct}"
        )
    return jax.tree.map(lambda p, u: (p + u).astype(jnp.result_type(p)), params, updates)


# ---------------------------------------------------------------------------------------------
# SGD


class SGDState(NamedTuple):
    """State of `sgd`: step count, hyperparameters, and the velocity ``trace``."""

    count: jax.Array
    learning_rate: Any
    momentum: jax.Array
    trace: Any

    hyperparameters = ("learning_rate", "momentum")


def sgd(learning_rate: ScheduleLike, momentum: float = 0.0, nesterov: bool = False) -> Optimizer:
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
    lr0 = as_learning_rate(learning_rate)
    mu0 = hyper("momentum", momentum)

    def init(params: Any) -> SGDState:
        return SGDState(count0(), lr0, mu0, _zeros(params))

    def update(grads: Any, state: SGDState, params: Any = None) -> tuple[Updates, SGDState]:
        check_state(state, SGDState, "sgd")
        check_state_matches(grads, state.trace, "the SGD state's trace")
        mu = state.momentum
        trace = jax.tree.map(lambda v, g: (mu * v + g).astype(v.dtype), state.trace, grads)
        step = jax.tree.map(lambda g, v: g + mu * v, grads, trace) if nesterov else trace
        updates = _descent(lr_now(state), step, state.trace)
        return updates, state._replace(count=next_count(state.count), trace=trace)

    return Optimizer(init, update)


# ---------------------------------------------------------------------------------------------
# Adagrad


class AdagradState(NamedTuple):
    """State of `adagrad`: step count, hyperparameters, and ``G_t = Σ g²``."""

    count: jax.Array
    learning_rate: Any
    eps: jax.Array
    eps_root: jax.Array
    sum_of_squares: Any

    hyperparameters = ("learning_rate", "eps", "eps_root")


def adagrad(
    learning_rate: ScheduleLike,
    eps: float = 1e-7,
    eps_root: float = 0.0,
    initial_accumulator_value: float = 0.0,
) -> Optimizer:
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
    lr0 = as_learning_rate(learning_rate)
    eps0, eps_root0 = hyper("eps", eps), hyper("eps_root", eps_root)
    check_range("initial_accumulator_value", initial_accumulator_value)
    if not (is_concrete(initial_accumulator_value) and np.all(initial_accumulator_value > 0)):
        _check_eps(eps, eps_root, "adagrad")

    def init(params: Any) -> AdagradState:
        G0 = jax.tree.map(lambda p: jnp.full_like(p, initial_accumulator_value), params)
        return AdagradState(count0(), lr0, eps0, eps_root0, G0)

    def update(grads: Any, state: AdagradState, params: Any = None):
        check_state(state, AdagradState, "adagrad")
        check_state_matches(grads, state.sum_of_squares, "the Adagrad state's sum_of_squares")
        # seeds: G_t = G_{t−1} + g²
        G = jax.tree.map(lambda s, g: (s + g**2).astype(s.dtype), state.sum_of_squares, grads)
        step = jax.tree.map(lambda g, s: g / (jnp.sqrt(s + state.eps_root) + state.eps), grads, G)
        updates = _descent(lr_now(state), step, G)
        return updates, state._replace(count=next_count(state.count), sum_of_squares=G)

    return Optimizer(init, update)


# ---------------------------------------------------------------------------------------------
# RMSprop


class RMSPropState(NamedTuple):
    """State of `rmsprop`: hyperparameters, ``S_t``, the mean gradient and the momentum buffer.

    ``grad_avg`` (the running mean of ``g``) is ``None`` unless the optimizer is centered.
    """

    count: jax.Array
    learning_rate: Any
    rho: jax.Array
    eps: jax.Array
    eps_root: jax.Array
    momentum: jax.Array
    nu: Any
    grad_avg: Any
    trace: Any

    hyperparameters = ("learning_rate", "rho", "eps", "eps_root", "momentum")


def rmsprop(
    learning_rate: ScheduleLike,
    rho: float = 0.9,
    eps: float = 1e-7,
    eps_root: float = 0.0,
    centered: bool = False,
    momentum: float = 0.0,
) -> Optimizer:
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
    lr0 = as_learning_rate(learning_rate)
    rho0, mu0 = hyper("rho", rho), hyper("momentum", momentum)
    eps0, eps_root0 = hyper("eps", eps), hyper("eps_root", eps_root)
    _check_eps(eps, eps_root, "rmsprop")

    def init(params: Any) -> RMSPropState:
        grad_avg = _zeros(params) if centered else None
        return RMSPropState(
            count0(), lr0, rho0, eps0, eps_root0, mu0, _zeros(params), grad_avg, _zeros(params)
        )

    def update(grads: Any, state: RMSPropState, params: Any = None):
        check_state(state, RMSPropState, "rmsprop")
        check_state_matches(grads, state.nu, "the RMSprop state's nu")
        nu = _ema(state.nu, grads, state.rho, 2)  # seeds: S_t = ρ·S_{t−1} + (1 − ρ)·g²
        if centered:
            check_state_matches(grads, state.grad_avg, "the RMSprop state's grad_avg")
            grad_avg = _ema(state.grad_avg, grads, state.rho, 1)
            var = jax.tree.map(lambda s, m: jnp.maximum(s - m**2, 0), nu, grad_avg)
        else:
            grad_avg, var = None, nu
        step = jax.tree.map(lambda g, v: g / (jnp.sqrt(v + state.eps_root) + state.eps), grads, var)
        trace = jax.tree.map(
            lambda b, s: (state.momentum * b + s).astype(b.dtype), state.trace, step
        )
        updates = _descent(lr_now(state), trace, state.trace)
        new = state._replace(count=next_count(state.count), nu=nu, grad_avg=grad_avg, trace=trace)
        return updates, new

    return Optimizer(init, update)


# ---------------------------------------------------------------------------------------------
# Adam and AdamW


class AdamState(NamedTuple):
    """State of `adam`: hyperparameters, the moments ``m_t``, ``v_t`` and (amsgrad) ``max v``.

    ``nu_max`` is ``None`` unless the optimizer uses AMSGrad.
    """

    count: jax.Array
    learning_rate: Any
    b1: jax.Array
    b2: jax.Array
    eps: jax.Array
    eps_root: jax.Array
    mu: Any
    nu: Any
    nu_max: Any

    hyperparameters = ("learning_rate", "b1", "b2", "eps", "eps_root")


class AdamWState(NamedTuple):
    """State of `adamw`: `AdamState`'s fields plus the decoupled ``weight_decay``."""

    count: jax.Array
    learning_rate: Any
    b1: jax.Array
    b2: jax.Array
    eps: jax.Array
    eps_root: jax.Array
    weight_decay: jax.Array
    mu: Any
    nu: Any
    nu_max: Any

    hyperparameters = ("learning_rate", "b1", "b2", "eps", "eps_root", "weight_decay")


def _adam_hypers(b1: float, b2: float, eps: float, eps_root: float, who: str) -> tuple:
    hypers = hyper("b1", b1), hyper("b2", b2), hyper("eps", eps), hyper("eps_root", eps_root)
    _check_eps(eps, eps_root, who)
    return hypers


def _adam_direction(grads: Any, state: Any, amsgrad: bool) -> tuple[Any, Any, Any, Any]:
    """``m̂_t / (√(v̂_t + eps_root) + eps)`` and the new ``m_t``, ``v_t``, ``max v``."""
    check_state_matches(grads, state.mu, f"the {type(state).__name__}'s mu")
    b1, b2 = state.b1, state.b2
    t = next_count(state.count).astype(b1.dtype)
    mu = _ema(state.mu, grads, b1, 1)  # seeds: m_t = β1·m_{t−1} + (1 − β1)·g
    nu = _ema(state.nu, grads, b2, 2)  # seeds: v_t = β2·v_{t−1} + (1 − β2)·g²
    if amsgrad:  # PyTorch: the running maximum of v_t, taken before bias correction
        check_state_matches(grads, state.nu_max, f"the {type(state).__name__}'s nu_max")
        nu_max = jax.tree.map(jnp.maximum, state.nu_max, nu)
        v = nu_max
    else:
        nu_max, v = None, nu

    def direction(m_t: jax.Array, v_t: jax.Array) -> jax.Array:
        m_hat = m_t / (1 - b1**t)  # seeds: m̂_t = m_t / (1 − β1^t)
        v_hat = v_t / (1 - b2**t)  # seeds: v̂_t = v_t / (1 − β2^t)
        return m_hat / (jnp.sqrt(v_hat + state.eps_root) + state.eps)

    return jax.tree.map(direction, mu, v), mu, nu, nu_max


def adam(
    learning_rate: ScheduleLike,
    b1: float = 0.9,
    b2: float = 0.999,
    eps: float = 1e-8,
    eps_root: float = 0.0,
    amsgrad: bool = False,
) -> Optimizer:
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
    lr0 = as_learning_rate(learning_rate)
    b1_, b2_, eps_, eps_root_ = _adam_hypers(b1, b2, eps, eps_root, "adam")

    def init(params: Any) -> AdamState:
        nu_max = _zeros(params) if amsgrad else None
        return AdamState(
            count0(), lr0, b1_, b2_, eps_, eps_root_, _zeros(params), _zeros(params), nu_max
        )

    def update(grads: Any, state: AdamState, params: Any = None):
        check_state(state, AdamState, "adam")
        step, mu, nu, nu_max = _adam_direction(grads, state, amsgrad)
        updates = _descent(lr_now(state), step, state.mu)
        return updates, state._replace(count=next_count(state.count), mu=mu, nu=nu, nu_max=nu_max)

    return Optimizer(init, update)


def _decay_mask(mask: Any, params: Any) -> Any:
    """The AdamW mask as a pytree of bools shaped like `params`, checked."""
    if mask is None:
        return jax.tree_util.tree_map_with_path(lambda path, _: not is_bias(path), params)
    tree = mask(params) if callable(mask) else mask
    p_struct, m_struct = jax.tree.structure(params), jax.tree.structure(tree)
    if p_struct != m_struct or not all(_is_bool(m) for m in jax.tree.leaves(tree)):
        raise ValueError(
            "mask must be a pytree of bools shaped like params (or a function params -> such a "
            f"tree); got {m_struct} for params {p_struct}"
        )
    return tree


def adamw(
    learning_rate: ScheduleLike,
    b1: float = 0.9,
    b2: float = 0.999,
    eps: float = 1e-8,
    eps_root: float = 0.0,
    weight_decay: float = 1e-2,
    mask: Any = None,
    amsgrad: bool = False,
) -> Optimizer:
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
    lr0 = as_learning_rate(learning_rate)
    b1_, b2_, eps_, eps_root_ = _adam_hypers(b1, b2, eps, eps_root, "adamw")
    wd0 = hyper("weight_decay", weight_decay)

    def init(params: Any) -> AdamWState:
        _decay_mask(mask, params)  # fail now on a mask that does not fit the params
        nu_max = _zeros(params) if amsgrad else None
        z1, z2 = _zeros(params), _zeros(params)
        return AdamWState(count0(), lr0, b1_, b2_, eps_, eps_root_, wd0, z1, z2, nu_max)

    def update(grads: Any, state: AdamWState, params: Any = None):
        check_state(state, AdamWState, "adamw")
        need_params(params, "adamw")
        check_state_matches(grads, params, "params")
        step, mu, nu, nu_max = _adam_direction(grads, state, amsgrad)
        lam = state.weight_decay
        step = jax.tree.map(
            lambda s, w, m: s + _where(m, lam * w), step, params, _decay_mask(mask, params)
        )
        updates = _descent(lr_now(state), step, state.mu)
        return updates, state._replace(count=next_count(state.count), mu=mu, nu=nu, nu_max=nu_max)

    return Optimizer(init, update)


# ---------------------------------------------------------------------------------------------
# Reading and changing hyperparameters


def _state_with_lr(state: Any) -> Any:
    """`state` if it has a learning rate, else the first inner state of a chain that has one."""
    if hasattr(state, "learning_rate"):
        return state
    if isinstance(state, tuple) and not hasattr(state, "_fields"):
        for inner in state:
            found = _state_with_lr(inner)
            if found is not None:
                return found
    return None


def learning_rate_of(state: Any) -> jax.Array:
    """The learning rate of the most recent update: ``schedule(count − 1)`` or the fixed value.

    Before the first update it is the rate the first update will use (``schedule(0)``). For a
    `chain`, the rate of its first transformation that has one; NaN when none has.

    Args:
      state: an optimizer state, or a chain's tuple of states.

    Returns:
      A scalar (batched when the state is).

    >>> from jaxmlp import schedules
    >>> opt = sgd(schedules.inverse_time(1.0, 1.0))
    >>> params = {"w": jnp.zeros(1)}
    >>> state = opt.init(params)
    >>> for _ in range(3):
    ...     _, state = opt.update({"w": jnp.ones(1)}, state, params)
    >>> learning_rate_of(state)  # the third update used 1 / (1 + 2)
    Array(0.33333334, dtype=float32)
    """
    inner = _state_with_lr(state)
    if inner is None:
        return jnp.asarray(jnp.nan, jnp.result_type(float))
    lr = inner.learning_rate
    return lr(jnp.maximum(inner.count - 1, 0)) if is_schedule(lr) else lr


# Changing hyperparameters


def _new_schedule(owner: str, name: str, old: Any, value: Any) -> Any:
    """`value` as a replacement for the schedule `old`, of the same kind and dtypes."""
    if not is_schedule(old):
        raise ValueError(
            f"{owner}.{name} holds a fixed value; a schedule would change the state's structure "
            "(and recompile): build the optimizer with the schedule as its learning_rate instead"
        )
    if not is_schedule(value):
        raise ValueError(
            f"{owner}.{name} holds a schedule ({type(old).__name__}); pass a schedule of the "
            f"same kind, e.g. {name}=state.{name}._replace(...)"
        )
    if jax.tree.structure(value) != jax.tree.structure(old):
        raise ValueError(
            f"{owner}.{name} holds {jax.tree.structure(old)}; got {jax.tree.structure(value)}: "
            "another kind of schedule (or another function) changes the state's structure and "
            "recompiles; build a new optimizer instead"
        )
    value.check()
    return jax.tree.map(lambda v, o: _new_leaf(name, v, o), value, old)


def _new_leaf(name: str, value: Any, old: jax.Array) -> jax.Array:
    new = jnp.asarray(value, dtype=old.dtype)
    try:
        return jnp.broadcast_to(new, jnp.shape(old))
    except ValueError:
        raise ValueError(
            f"{name} must broadcast to the shape the state holds, {jnp.shape(old)}; got shape "
            f"{jnp.shape(new)}"
        ) from None


def set_hyperparams(state: NamedTuple, **values: Any) -> NamedTuple:
    """A copy of one optimizer's `state` with some hyperparameters changed.

    Values are cast to the dtype (and broadcast to the shape) already in the state, so a jitted
    step that takes the state does not recompile. A learning rate that is a schedule is
    replaced by a schedule of the same kind, e.g. ``learning_rate=
    state.learning_rate._replace(lr0=0.01)``; a float cannot replace a schedule nor the reverse
    (that changes the state's structure: build a new optimizer). For a `chain`, change an inner
    state: ``(set_hyperparams(state[0], ...), state[1])``. The per-layer L1 strengths of a
    `proximal_l1` state take a tuple (``l1w=(2e-4, None)``) or one number for every layer.

    Args:
      state: the state of one optimizer or transformation (e.g. an `AdamState`).
      **values: new values by name, checked like the optimizer's arguments.

    Returns:
      The new state.

    >>> state = sgd(0.1).init({"w": jnp.zeros(2)})
    >>> float(set_hyperparams(state, learning_rate=0.05).learning_rate)
    0.05...
    """
    names = getattr(type(state), "hyperparameters", None)
    if names is None:
        raise TypeError(
            "state must be the state of one jaxmlp optimizer (SGDState, AdamState, ...); got "
            f"{type(state).__name__} (for a chain, change one inner state: state[i])"
        )
    owner = type(state).__name__
    new = {}
    for name, value in values.items():
        if name not in names:
            raise ValueError(
                f"unknown hyperparameter {name!r} for {owner}; expected one of {list(names)}"
            )
        old = getattr(state, name)
        if is_schedule(old) or is_schedule(value) or callable(value):
            value = value if is_schedule(value) or not callable(value) else FromCallable(value)
            new[name] = _new_schedule(owner, name, old, value)
        else:
            if isinstance(state, ProximalL1State):  # one number, or one per layer (None: 0)
                value = _layer_strengths(name, value)
            check_range(name, value, *RANGES[name])
            new[name] = _new_leaf(name, value, old)
    return state._replace(**new)
