"""L1, L2 and elastic-net penalties on weights *and* biases, and their gradients.

For one layer with strengths ``l1w, l1b, l2w, l2b`` the penalty is (the seeds' forward pass)::

    l1w·Σ|W| + l1b·Σ|b| + l2w·ΣW² + l2b·Σb²

and the network's penalty is the sum over layers, added unscaled to the data loss. Its gradient
(the seeds' backward pass) is ``l1·sign(w) + 2·l2·w`` for each weight and bias, where the L1
subgradient at exactly 0 is taken as ``+l1`` (the seeds' ``if weight >= 0: 1``; also what
``jax.grad(jnp.abs)(0.0)`` returns).

Note on conventions: our L2 term has no ½, so its gradient is ``2λw`` as in the seeds and the
book. The seeds' other form, ``W − η(∇W + λW)``, belongs to the ``λ/2 · Σw²`` convention (that
of "weight decay" in most libraries): strength ``λ`` there equals ``λ/2`` here.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from jaxmlp._checks import check_params, check_range

FIELDS = ("l1w", "l1b", "l2w", "l2b")  # a Regularization's strengths, in its order


@jax.tree_util.register_pytree_node_class
@dataclasses.dataclass(frozen=True, eq=False)
class Regularization:
    """Strengths of the L1 and L2 penalties on a layer's weights and biases.

    The strengths are pytree leaves — data, not static configuration — so changing them never
    recompiles a jitted function and `jax.vmap` can sweep many at once. Pass one
    `Regularization` for every layer, or a tuple with one per layer (``None`` for none).

    Args:
      l1w: strength of ``Σ|W|``.
      l1b: strength of ``Σ|b|``.
      l2w: strength of ``ΣW²``.
      l2b: strength of ``Σb²``.

    All strengths must be finite and ``>= 0``. ``None`` is accepted only so that a
    `Regularization` can serve as a `jax.vmap` axis spec (``Regularization(None, None, 0,
    None)``); computing a penalty with a ``None`` strength raises an error.

    >>> Regularization(l2w=5e-4, l2b=5e-4)
    Regularization(l1w=0.0, l1b=0.0, l2w=0.0005, l2b=0.0005)
    """

    l1w: Any = 0.0
    l1b: Any = 0.0
    l2w: Any = 0.0
    l2b: Any = 0.0

    def __post_init__(self) -> None:
        for name in FIELDS:
            if getattr(self, name) is not None:
                check_range(f"Regularization.{name}", getattr(self, name))

    @classmethod
    def elastic_net(cls, strength: float, l1_ratio: float = 0.5,
                    biases: bool = True) -> Regularization:  # fmt: skip
        """Elastic net: ``strength · (l1_ratio · Σ|w| + (1 − l1_ratio) · Σw²)``.

        The seeds' ``α(λ₁Σ|w| + λ₂Σw²)`` with ``α = strength``, ``λ₁ = l1_ratio`` and
        ``λ₂ = 1 − l1_ratio``. scikit-learn's ``ElasticNet(alpha, l1_ratio)`` halves the L2
        part; use ``strength=alpha`` and strengths ``l2 = alpha·(1 − l1_ratio)/2`` by hand to
        match it.

        Args:
          strength: overall strength ``>= 0``.
          l1_ratio: share of L1, in ``[0, 1]``; 1 is pure L1 (lasso), 0 pure L2 (ridge).
          biases: also penalize the biases with the same strengths (as the seeds do).

        >>> Regularization.elastic_net(1e-3, l1_ratio=0.25)
        Regularization(l1w=0.00025, l1b=0.00025, l2w=0.00075, l2b=0.00075)
        """
        check_range("strength", strength)
        check_range("l1_ratio", l1_ratio)
        if l1_ratio > 1:
            raise ValueError(f"l1_ratio must be in [0, 1]; got {l1_ratio!r}")
        l1, l2 = strength * l1_ratio, strength * (1 - l1_ratio)
        return cls(l1w=l1, l1b=l1 if biases else 0.0, l2w=l2, l2b=l2 if biases else 0.0)

    def tree_flatten(self):
        """Flatten into the four strengths (pytree protocol)."""
        return tuple(getattr(self, f) for f in FIELDS), None

    @classmethod
    def tree_unflatten(cls, aux, children):
        """Rebuild without validation: leaves may be tracers or placeholders (pytree protocol)."""
        obj = object.__new__(cls)
        for name, value in zip(FIELDS, children):
            object.__setattr__(obj, name, value)
        return obj


RegLike = Regularization | Sequence[Regularization | None] | None


def per_layer(reg: RegLike, n_layers: int) -> tuple[Regularization, ...]:
    """Normalize `reg` to one `Regularization` per layer.

    ``None`` means no penalty; a single `Regularization` applies to every layer; a tuple or
    list must hold one entry (a `Regularization` or ``None``) per layer.
    """
    regs: tuple[Regularization, ...]
    if reg is None or isinstance(reg, Regularization):
        regs = (Regularization() if reg is None else reg,) * n_layers
    elif isinstance(reg, (tuple, list)):
        if len(reg) != n_layers:
            raise ValueError(
                f"reg must hold one Regularization per layer ({n_layers}); got {len(reg)}"
            )
        for l, r in enumerate(reg):
            if r is not None and not isinstance(r, Regularization):
                raise TypeError(
                    f"reg[{l}] must be a jaxmlp.Regularization or None; got {type(r).__name__}"
                )
        regs = tuple(Regularization() if r is None else r for r in reg)
    else:
        raise TypeError(
            "reg must be a jaxmlp.Regularization, a tuple of them (one per layer) or None; got "
            f"{type(reg).__name__}"
        )
    for r in set(regs):
        for name in FIELDS:
            if getattr(r, name) is None:
                raise ValueError(f"Regularization.{name} is None; a strength must be a number")
    return regs


def penalty(params: Any, reg: RegLike) -> jax.Array:
    """The regularization term alone: ``Σ_layers l1w·Σ|W| + l1b·Σ|b| + l2w·ΣW² + l2b·Σb²``.

    Args:
      params: a tuple of ``{"W", "b"}`` dicts, one per layer.
      reg: a `Regularization`, a tuple with one per layer, or None.

    Returns:
      A scalar.

    >>> params = ({"W": jnp.array([[0.5, -1.2, 0.8]]), "b": jnp.array([0.2, -0.1])},)
    >>> float(penalty(params, Regularization(0.01, 0.005, 0.001, 0.0005)))  # doctest: +ELLIPSIS
    0.02885...
    """
    check_params(None, params)
    total = jnp.zeros((), jnp.result_type(*[p["W"] for p in params]))
    for layer, r in zip(params, per_layer(reg, len(params))):
        W, b = layer["W"], layer["b"]
        terms = [(r.l1w, W, False), (r.l1b, b, False), (r.l2w, W, True), (r.l2b, b, True)]
        for strength, w, square in terms:  # in this order: the sum is rounded term by term
            if not is_literal_zero(strength):
                s = jnp.asarray(
                    strength, jnp.result_type(w)
                )  # the parameters' dtype (README, "Dtypes")
                total = total + s * jnp.sum(w * w if square else jnp.abs(w))
    return total


def l1_sign(w: jax.Array | np.ndarray) -> jax.Array:
    """The L1 subgradient ``sign(w)`` with ``+1`` at exactly 0 (the seeds' ``>= 0``)."""
    return jnp.where(w >= 0, jnp.ones_like(w), -jnp.ones_like(w))


def is_literal_zero(strength: Any) -> bool:
    """True for a strength that is a Python 0: its term is left out, costing no work.

    `jaxmlp.fit` passes the strengths that are exactly 0 this way.
    """
    return isinstance(strength, (int, float)) and strength == 0


def zero_strengths(regs: tuple[Regularization, ...]) -> tuple[tuple[bool, ...], ...]:
    """Per layer and strength, whether it is a concrete scalar 0 (its term can be left out)."""

    def zero(v: Any) -> bool:
        return not isinstance(v, jax.core.Tracer) and np.ndim(v) == 0 and float(v) == 0

    return tuple(tuple(zero(getattr(r, f)) for f in FIELDS) for r in regs)


def without_zeros(regs: Any, zeros: tuple[tuple[bool, ...], ...]) -> tuple:
    """`regs` with the strengths marked in `zeros` replaced by a Python 0.0.

    `penalty` and `backprop` skip such terms: a run without L1 does not compute ``Σ|W|`` and
    its gradient every step (a few percent of a step on large layers).
    """

    def without(r: Regularization, zs: tuple[bool, ...]) -> Regularization:
        strengths = [0.0 if z else getattr(r, f) for f, z in zip(FIELDS, zs)]
        return Regularization.tree_unflatten(None, strengths)

    return tuple(without(r, zs) for r, zs in zip(regs, zeros))


def add_penalty_grad(g: jax.Array, w: jax.Array, l1: Any, l2: Any) -> jax.Array:
    """``g + l1·sign(w) + 2·l2·w``: a leaf's gradient plus the penalty's, ``sign(0) = +1``.

    The seeds' ``λ·sign(w)`` and ``2λw``; a strength that is a literal 0 adds no work.
    """
    if not is_literal_zero(l1):
        g = g + jnp.asarray(l1, jnp.result_type(w)) * l1_sign(
            w
        )  # seeds: ∂(λ·Σ|w|)/∂w = λ·sign(w), +λ at 0 (`if weight >= 0: 1`)
    if not is_literal_zero(l2):
        g = g + 2 * jnp.asarray(l2, jnp.result_type(w)) * w  # seeds: ∂(λ·Σw²)/∂w = 2λw
    return g


def penalty_grad(params, reg: RegLike):
    """Hand-written gradient of `penalty`: ``l1·sign(w) + 2·l2·w`` per weight and bias.

    ``sign(0) = +1`` (see `l1_sign`). Returns a pytree shaped like `params`; `jaxmlp.backprop`
    adds the same terms (`add_penalty_grad`) to the data loss's gradient.
    """
    check_params(None, params)
    grads = []
    for layer, r in zip(params, per_layer(reg, len(params))):
        W, b = layer["W"], layer["b"]
        dW = add_penalty_grad(jnp.zeros_like(W), W, r.l1w, r.l2w)
        db = add_penalty_grad(jnp.zeros_like(b), b, r.l1b, r.l2b)
        grads.append({"W": dW.astype(W.dtype), "b": db.astype(b.dtype)})
    return tuple(grads)
