"""Gradient transformations that compose with the optimizers: clipping, chaining, proximal L1.

A transformation is an `Optimizer` like the others, ``init(params) -> state`` and
``update(updates, state, params) -> (updates, state)``, that rewrites what it is given instead
of turning gradients into a descent step. `chain` runs several in sequence::

    opt = chain(clip_by_global_norm(1.0), adam(1e-3))                 # clip, then Adam
    opt = chain(sgd(0.1), proximal_l1(0.1, l1w=(1e-4, None)))         # step, then soft-threshold

As for the optimizers, hyperparameters (``max_norm``, the L1 strengths, the learning rate) live
in the state as arrays, so `jaxmlp.optim.set_hyperparams` changes them without recompiling; an
L1 strength is one number for every layer or one per layer (`LayerStrengths`). Everything here
is also available from `jaxmlp.optim` (``jm.optim.chain`` and so on); ``jm.transforms`` is this
module.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from jaxmlp.optim import base
from jaxmlp.schedules import ScheduleLike

# ---------------------------------------------------------------------------------------------
# Clipping


class ClipState(NamedTuple):
    """State of `clip_by_global_norm`: step count and the maximum norm."""

    count: jax.Array  # type: ignore[assignment]  # shadows tuple.count, as optax states do
    max_norm: jax.Array

    # A class attribute, not a field: NamedTuple allows it at runtime; mypy does not.
    hyperparameters = base.Hyperparameters(max_norm=base.NONNEGATIVE)  # type: ignore[misc]


def clip_by_global_norm(max_norm: float) -> base.Optimizer:
    """Rescale the whole gradient tree so that its global L2 norm is at most `max_norm`.

    ::

        ‖g‖ = √(Σ_leaves Σ g²)
        g  ← g · max_norm / ‖g‖     if ‖g‖ > max_norm, else g unchanged

    A transformation, not an optimizer: put it first in a `chain`, e.g.
    ``chain(clip_by_global_norm(1.0), adam(1e-3))``.

    Args:
      max_norm: ``>= 0``.

    Returns:
      An `Optimizer` (a transformation) whose state is a `ClipState`.

    >>> clip = clip_by_global_norm(1.0)
    >>> g = {"a": jnp.array([3.0]), "b": jnp.array([4.0])}  # ‖g‖ = 5
    >>> clipped, _ = clip.update(g, clip.init(g))
    >>> clipped["a"], clipped["b"]
    (Array([0.6], dtype=float32), Array([0.8], dtype=float32))
    """
    hypers = ClipState.hyperparameters.initial(max_norm=max_norm)

    def init(params: Any) -> ClipState:
        return ClipState(**base.initial(hypers)[0])

    def update(grads: Any, state: ClipState, params: Any = None):
        base.check_state(state, ClipState, "clip_by_global_norm")
        leaves = jax.tree.leaves(grads)
        if not leaves:
            return grads, state._replace(count=base.next_count(state.count))
        norm = jnp.sqrt(sum(jnp.sum(g.astype(jnp.result_type(*leaves)) ** 2) for g in leaves))
        over = norm > state.max_norm
        scale = jnp.where(over, state.max_norm / jnp.where(over, norm, 1), 1)
        clipped = jax.tree.map(lambda g: (g * scale).astype(g.dtype), grads)
        return clipped, state._replace(count=base.next_count(state.count))

    return base.Optimizer(init, base.program(update, "clip_by_global_norm"))


# ---------------------------------------------------------------------------------------------
# Chaining


def chain(*transforms: base.Optimizer) -> base.Optimizer:
    """Compose transformations: each one's output is the next one's input.

    ``chain(a, b).update(g, (sa, sb), params)`` runs ``u, sa = a.update(g, sa, params)`` then
    ``u, sb = b.update(u, sb, params)``. The state is the tuple of the inner states; change a
    hyperparameter of one with ``state = (set_hyperparams(state[0], max_norm=0.5), state[1])``.

    Args:
      *transforms: one or more optimizers or transformations.

    Returns:
      An `Optimizer` whose state is a tuple with one state per transformation.

    >>> from jaxmlp.optim import sgd
    >>> opt = chain(clip_by_global_norm(1.0), sgd(0.5))
    >>> params = {"w": jnp.array([0.0, 0.0])}
    >>> updates, state = opt.update({"w": jnp.array([3.0, 4.0])}, opt.init(params), params)
    >>> updates["w"]  # clipped to norm 1, then −η·g
    Array([-0.3, -0.4], dtype=float32)
    """
    if not transforms:
        raise ValueError("chain needs at least one transformation; got none")
    for i, t in enumerate(transforms):
        if not isinstance(t, base.Optimizer):
            raise TypeError(
                f"chain: transforms[{i}] must be a jaxmlp optimizer or transformation such as "
                f"jaxmlp.optim.sgd(0.1); got {type(t).__name__}"
            )

    def init(params: Any) -> tuple:
        return tuple(t.init(params) for t in transforms)

    def update(grads: Any, state: tuple, params: Any = None):
        if not isinstance(state, tuple) or len(state) != len(transforms):
            raise ValueError(
                f"the state of a chain of {len(transforms)} must be a tuple of as many inner "
                f"states (opt.init(params)); got {type(state).__name__}"
                + (f" of length {len(state)}" if isinstance(state, tuple) else "")
            )
        new_states = []
        for t, s in zip(transforms, state):
            grads, s = t.update(grads, s, params)
            new_states.append(s)
        return grads, tuple(new_states)

    parts = tuple(base.program_of(t) for t in transforms)
    if all(key is not None for key in parts):
        update = base.program(update, "chain", parts)
    return base.Optimizer(init, update)


# ---------------------------------------------------------------------------------------------
# Proximal L1

Strengths = float | jax.Array | Sequence[float | jax.Array | None]
"""An L1 strength: one number for every layer, or a tuple with one per layer (None for 0)."""


@dataclass(frozen=True)
class LayerStrengths(base.Hyper):
    """An L1 strength ``>= 0``: one number for every layer, or one per layer of a params tuple."""

    def initial(self, name: str, value: Any) -> jax.Array:
        """`value` as a strength array: shape ``()`` for one number, ``(L,)`` for one per layer.

        A tuple or list holds one entry per layer, ``None`` for 0; a 1-D array is taken as one
        entry per layer. Every entry must be a finite number ``>= 0`` (checked when concrete).
        """
        if isinstance(value, (tuple, list)):
            if not value:
                raise ValueError(
                    f"{name} must be a number or a tuple with one strength per layer; got an "
                    f"empty {type(value).__name__}"
                )
            entries = []
            for l, v in enumerate(value):
                v = 0.0 if v is None else v
                if np.ndim(v) != 0:
                    raise ValueError(
                        f"{name}[{l}] must be a number (the strength of layer {l}) or None; got "
                        f"shape {tuple(np.shape(v))}"
                    )
                entries.append(super().initial(f"{name}[{l}]", v))
            return jnp.stack(entries)
        if np.ndim(value) > 1:
            raise ValueError(
                f"{name} must be a number, or one number per layer (a tuple or a 1-D array); got "
                f"shape {tuple(np.shape(value))}"
            )
        if np.ndim(value) == 1 and np.shape(value)[0] == 0:
            raise ValueError(f"{name} must hold at least one strength; got an empty array")
        return super().initial(name, value)

    def replacement(self, owner: str, name: str, old: Any, value: Any) -> Any:
        """One number for every layer or one per layer, as in `initial`, cast like `old`."""
        value = value if callable(value) else self.initial(name, value)
        return super().replacement(owner, name, old, value)


STRENGTHS = LayerStrengths()


class ProximalL1State(NamedTuple):
    """State of `proximal_l1`: step count, learning rate and the L1 strengths.

    ``l1w`` and ``l1b`` each have shape ``()`` (one strength for every leaf) or ``(L,)`` (one
    per layer of a params tuple with L layers).
    """

    count: jax.Array  # type: ignore[assignment]  # shadows tuple.count, as optax states do
    learning_rate: Any
    l1w: jax.Array
    l1b: jax.Array

    # A class attribute, not a field: NamedTuple allows it at runtime; mypy does not.
    hyperparameters = base.Hyperparameters(  # type: ignore[misc]
        learning_rate=base.LEARNING_RATE, l1w=STRENGTHS, l1b=STRENGTHS
    )


def _check_layers(params: Any, strengths: dict[str, jax.Array], who: str) -> None:
    """Raise unless every per-layer strength has one entry per layer of `params`."""
    per_layer = {k: v for k, v in strengths.items() if jnp.ndim(v) == 1}
    if per_layer and not isinstance(params, (tuple, list)):
        raise ValueError(
            f"{who}: {next(iter(per_layer))} gives one strength per layer, so params must be a "
            f"tuple with one entry per layer (jaxmlp's layout); got {type(params).__name__}"
        )
    for name, v in per_layer.items():
        if jnp.shape(v)[0] != len(params):
            raise ValueError(
                f"{who}: {name} must give one strength per layer: expected {len(params)} (the "
                f"params have {len(params)} layers); got {jnp.shape(v)[0]}"
            )


def proximal_l1(
    learning_rate: ScheduleLike, l1w: Strengths = 0.0, l1b: Strengths = 0.0
) -> base.Optimizer:
    """Soft-thresholding after the step: the proximal L1 update, which makes exact zeros.

    The seeds say L1 drives weights to *exactly* zero, but a subgradient step
    ``w − η·(g + λ·sign(w))`` almost never lands on 0: it overshoots and oscillates around it.
    The proximal step of the penalty ``λ·Σ|w|`` (the seeds' and jaxmlp's L1 term) does::

        w̃ = w + u                                   (u: the inner optimizer's update)
        w ← sign(w̃)·max(|w̃| − η_t·λ, 0)

    with ``λ = l1b`` for leaves under the key ``"b"`` and ``l1w`` for every other leaf. A leaf
    whose ``λ`` is 0 gets ``u`` unchanged. Use it last in a `chain`, with the same learning rate
    (or schedule) as the optimizer before it, and *instead of* the L1 term of
    `jaxmlp.Regularization` (both would count the penalty twice). After `sgd` this is proximal
    gradient descent (ISTA); after an adaptive optimizer the threshold uses the plain learning
    rate, not the per-coordinate step size.

    Per layer, as for `jaxmlp.Regularization`: each strength is one number for every layer, or a
    tuple with one entry per layer of the params tuple (``None`` for 0), so
    ``proximal_l1(η, l1w=(1e-4, None), l1b=(1e-4, None))`` is the proximal form of
    ``reg=(Regularization(l1w=1e-4, l1b=1e-4), None)``: the hidden layer only, in a two-layer
    net. The strengths are arrays in the state: `jaxmlp.optim.set_hyperparams` changes them
    (``l1w=(2e-4, 0.0)``) without recompiling, and `jax.vmap` sweeps them.

    Args:
      learning_rate: ``η >= 0``, a float or a schedule; the threshold is ``η_t·λ``.
      l1w: ``λ >= 0`` for weights (every leaf not under a ``"b"`` key): a number, or a tuple
        (or 1-D array) with one per layer.
      l1b: ``λ >= 0`` for biases, likewise.

    Returns:
      An `Optimizer` (a transformation) whose state is a `ProximalL1State`. Its ``init`` and
      ``update`` raise ValueError when a per-layer strength does not have one entry per layer
      of the params.

    >>> from jaxmlp.optim import sgd
    >>> opt = chain(sgd(0.1), proximal_l1(0.1, l1w=0.5))
    >>> params = {"W": jnp.array([0.03, -1.0, 0.5])}
    >>> u, _ = opt.update({"W": jnp.array([0.0, 0.0, 1.0])}, opt.init(params), params)
    >>> apply_updates(params, u)["W"]  # threshold 0.1·0.5 = 0.05
    Array([ 0.  , -0.95,  0.35], dtype=float32)

    Per layer: the first layer's weights are thresholded, the second layer is left alone.

    >>> params = ({"W": jnp.array([0.03, -1.0]), "b": jnp.zeros(1)},
    ...           {"W": jnp.array([0.03, -1.0]), "b": jnp.zeros(1)})
    >>> prox = proximal_l1(0.1, l1w=(0.5, None))
    >>> u, _ = prox.update(jax.tree.map(jnp.zeros_like, params), prox.init(params), params)
    >>> [layer["W"] for layer in apply_updates(params, u)]
    [Array([ 0.  , -0.95], dtype=float32), Array([ 0.03, -1.  ], dtype=float32)]
    """
    hypers = ProximalL1State.hyperparameters.initial(learning_rate=learning_rate, l1w=l1w, l1b=l1b)
    l1w0, l1b0 = hypers["l1w"], hypers["l1b"]
    if jnp.ndim(l1w0) == jnp.ndim(l1b0) == 1 and jnp.shape(l1w0) != jnp.shape(l1b0):
        raise ValueError(
            "l1w and l1b must give the same number of layers; got "
            f"{jnp.shape(l1w0)[0]} and {jnp.shape(l1b0)[0]}"
        )

    def init(params: Any) -> ProximalL1State:
        _check_layers(params, {"l1w": l1w0, "l1b": l1b0}, "proximal_l1")
        return ProximalL1State(**base.initial(hypers)[0])

    def update(updates: Any, state: ProximalL1State, params: Any = None):
        base.check_state(state, ProximalL1State, "proximal_l1")
        base.need_params(params, "proximal_l1")
        base.check_state_matches(updates, params, "params")
        _check_layers(params, {"l1w": state.l1w, "l1b": state.l1b}, "proximal_l1")
        lr = base.lr_now(state)

        def strength(path: tuple[Any, ...]) -> jax.Array:
            lam = state.l1b if base.is_bias(path) else state.l1w
            # A per-layer strength: the layer is the leaf's index in the params tuple.
            return lam[path[0].idx] if jnp.ndim(lam) == 1 else lam

        def prox(path: tuple[Any, ...], w: jax.Array, u: jax.Array) -> jax.Array:
            threshold = lr * strength(path)
            w_tilde = w + u
            w_new = jnp.sign(w_tilde) * jnp.maximum(jnp.abs(w_tilde) - threshold, 0)
            # A zero threshold passes u through untouched (w + u − w may round differently).
            return jnp.where(threshold > 0, w_new - w, u).astype(w.dtype)

        new = jax.tree_util.tree_map_with_path(prox, params, updates)
        return new, state._replace(count=base.next_count(state.count))

    return base.Optimizer(init, base.program(update, "proximal_l1"))
