"""Finite differences of `jaxmlp.objective`, and where they cannot be trusted.

Central differences ``d_i = (f(w + ε·e_i) − f(w − ε·e_i)) / 2ε`` along single entries of one
leaf: the reference `jaxmlp.gradcheck` checks both the hand-written backward pass and autodiff
against. Their error is about ``ε²·|f‴|/6`` (truncation) plus ``u·|f|/ε`` (rounding, ``u`` the
dtype's unit roundoff), smallest near ``ε ≈ u^(1/3)``.

Finite differences are meaningless across a kink, so an entry is flagged when its stencil
``[w − ε, w + ε]`` holds one: when moving it by ``+ε`` or ``−ε`` flips any kink indicator of the
objective (`kink_signature`): the side of 0 of a ReLU or leaky-ReLU pre-activation anywhere in
the net (for any example), the sign of an MAE residual ``y − ŷ``, a clipped probability
crossing a clip bound, or the sign of the entry itself when it carries an L1 penalty.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np

from jaxmlp import losses as _losses
from jaxmlp.model import MLP, Params, intermediates
from jaxmlp.objective import objective_and_output
from jaxmlp.regularization import RegLike, per_layer


@functools.partial(jax.jit, static_argnames=("net", "loss"))
def value_and_kinks(net: MLP, params: Params, x: jax.Array, y: jax.Array, loss: str, reg):
    """The objective and its kink signature (see `kink_signature`) at `params`, both arrays."""
    value = objective_and_output(net, params, x, y, loss=loss, reg=reg)[0]
    return value, kink_signature(net, params, x, y, loss, reg)


def central_differences(problem: tuple, params: Params, path: tuple, index: np.ndarray, eps: float):
    """Central differences along the entries `index` of one leaf, and which are kink-free (arrays).

    `problem` is ``(net, x, y, loss, reg)``; `path` the leaf's key path in `params` (``[l]["W"]``);
    the objective is evaluated in the dtype of `params`.

    Entry ``i`` is kink-free when the kink signature is the same at ``w_i − ε``, ``w_i`` and
    ``w_i + ε``: no kink lies inside the stencil.
    """
    net, x, y, loss, reg = problem
    l, name = path[0].idx, path[1].key
    s0 = np.asarray(value_and_kinks(net, params, x, y, loss, reg)[1])
    w = np.asarray(params[l][name])

    def shifted(i: int, h: float) -> tuple[float, float, bool]:
        """The objective with entry `i` moved by `h`, the entry, and whether the signature is s0."""
        w_h = w.copy()
        w_h.flat[i] += h
        p_h = params[:l] + ({**params[l], name: jax.device_put(w_h)},) + params[l + 1 :]
        v, s = value_and_kinks(net, p_h, x, y, loss, reg)
        return float(v), float(w_h.flat[i]), np.array_equal(np.asarray(s), s0)

    d, ok = np.zeros(len(index)), np.zeros(len(index), bool)
    for j, i in enumerate(index):
        (up, w_up, same_up), (down, w_down, same_down) = shifted(i, eps), shifted(i, -eps)
        # Divide by the step the dtype represents (w ± ε rounded), not by 2ε: in float32 the
        # two differ by up to u·|w|/ε, an error larger than the truncation's.
        d[j], ok[j] = (up - down) / (w_up - w_down), same_up and same_down
    return d, ok


def kink_signature(
    net: MLP, params: Params, x: jax.Array, y: jax.Array, loss: str, reg: RegLike
) -> jax.Array:
    """Booleans that change only where the objective has a kink (see the module docstring)."""
    zs, acts = intermediates(net, params, x)
    parts = [(z > 0).ravel() for z, f in zip(zs, net.activations) if f in ("relu", "leaky_relu")]
    a = acts[-1]
    if loss == "mae":
        parts.append((y - a >= 0).ravel())
    if loss.endswith("crossentropy") and not _losses.fused(loss, net.output_activation):
        lo, hi = jnp.asarray(_losses.CLIP, a.dtype), jnp.asarray(1 - _losses.CLIP, a.dtype)
        parts += [(a > lo).ravel(), (a < hi).ravel()]
    for layer, r in zip(params, per_layer(reg, net.n_layers)):
        parts += [((layer[k] >= 0) | (l1 == 0)).ravel() for k, l1 in (("W", r.l1w), ("b", r.l1b))]
    return jnp.concatenate(parts)
