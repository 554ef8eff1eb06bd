"""Data losses, averaged as in the book.

``mse``, ``mae`` and ``binary_crossentropy`` average over every element (batch and outputs);
``categorical_crossentropy`` sums over classes and averages over the batch.

Two pairs are computed from the logits ``z`` of the last layer, exactly and stably (no NaN or
inf even for ``|z| = 1000``):

- softmax + categorical cross-entropy: ``−mean_i Σ_k y_ik · log_softmax(z_i)_k``;
- sigmoid + binary cross-entropy: ``mean(softplus(z) − y·z)``, which equals
  ``−mean(y·log σ(z) + (1−y)·log(1−σ(z)))``.

Every other cross-entropy pairing (sigmoid output with categorical cross-entropy, softmax output
with binary cross-entropy) works on the probabilities, clipped to ``[1e-7, 1 − 1e-7]`` as the
book clips them. Cross-entropy on an output that is not a probability (linear, relu,
leaky_relu, tanh) is refused with an error: ``log`` of it would be NaN.

Each loss has its gradient written by hand beside it (``mse_grad`` …), for the hand-written
backward pass in `jaxmlp.backprop`: ``dL/dŷ`` for a loss of the output activations, ``dL/dz``
for a loss computed from the logits. They follow what `jax.grad` of the forward code above
returns, kinks included:

- ``mae`` at ``ŷ = y``: the loss is ``|y − ŷ|`` and ``|·|'(0) = +1`` (as ``jax.grad(jnp.abs)``
  and the L1 penalty), so ``dL/dŷ = −1/N`` there.
- clipped cross-entropy: the clip passes the gradient through (factor 1) strictly inside
  ``(1e-7, 1 − 1e-7)``, blocks it (0) outside, and halves it (0.5) exactly at a bound, as
  ``jnp.clip`` (a ``maximum`` then a ``minimum``, which split ties) does.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from jax import Array

NAMES: tuple[str, ...] = ("mse", "mae", "binary_crossentropy", "categorical_crossentropy")
PROBABILITY_OUTPUTS: tuple[str, ...] = ("sigmoid", "softmax")
CLIP = 1e-7
FUSED: dict[str, str] = {"categorical_crossentropy": "softmax", "binary_crossentropy": "sigmoid"}
Mask = jax.Array | None
"""Optional 0/1 weights per example, shape ``(batch,)``: means over the rows whose weight is 1."""


def _mean(values: Array, mask: Mask) -> Array:
    """Mean over every element of `values`; with a 0/1 `mask` over the batch, over kept rows.

    `values` is ``(batch,)`` or ``(batch, outputs)``. With a mask, the result is the plain mean
    of the rows whose mask is 1, as if the others were not there (a short last batch).
    """
    if mask is None:
        return jnp.mean(values)
    m = mask.reshape((-1,) + (1,) * (values.ndim - 1)).astype(values.dtype)
    per_row = values.size // values.shape[0]
    return jnp.sum(values * m) / (jnp.sum(m) * per_row)


def _per_element(like: Array, mask: Mask) -> Array:
    """The weight of each element in `_mean`: ``1/N``, or ``mask/(Σmask·outputs)`` per row."""
    if mask is None:
        return jnp.asarray(1 / like.size, like.dtype)
    m = mask.reshape((-1,) + (1,) * (like.ndim - 1)).astype(like.dtype)
    return m / (jnp.sum(m) * (like.size // like.shape[0]))


def _per_row(like: Array, mask: Mask) -> Array:
    """The weight of each row in a batch mean: ``1/B``, or ``mask/Σmask`` (shape (B, 1))."""
    if mask is None:
        return jnp.asarray(1 / like.shape[0], like.dtype)
    m = mask.astype(like.dtype)[:, None]
    return m / jnp.sum(m)


def mse(pred: Array, y: Array, mask: Mask = None) -> Array:
    """Mean squared error ``mean((y − ŷ)²)`` over every element."""
    return _mean((y - pred) ** 2, mask)


def mse_grad(pred: Array, y: Array, mask: Mask = None) -> Array:
    """Gradient of `mse` with respect to ``ŷ``: ``2·(ŷ − y) / N``, ``N`` = every element.

    >>> mse_grad(jnp.array([[1.0, 2.0]]), jnp.array([[0.0, 2.0]]))
    Array([[1., 0.]], dtype=float32)
    """
    return 2 * (pred - y) * _per_element(pred, mask)


def mae(pred: Array, y: Array, mask: Mask = None) -> Array:
    """Mean absolute error ``mean(|y − ŷ|)`` over every element."""
    return _mean(jnp.abs(y - pred), mask)


def mae_grad(pred: Array, y: Array, mask: Mask = None) -> Array:
    """Gradient of `mae` with respect to ``ŷ``: ``−sign(y − ŷ) / N``, with ``sign(0) = +1``.

    At ``ŷ = y`` this is ``−1/N``: the convention of ``jax.grad(jnp.abs)(0.0) = 1``.

    >>> mae_grad(jnp.array([[1.0, 2.0]]), jnp.array([[0.0, 2.0]]))
    Array([[ 0.5, -0.5]], dtype=float32)
    """
    sign = jnp.where(y - pred >= 0, 1, -1).astype(pred.dtype)  # +1 at 0, as `l1_sign`
    return -sign * _per_element(pred, mask)


def _clip_grad(p: Array) -> Array:
    """Derivative of ``jnp.clip(p, 1e-7, 1 − 1e-7)``: 1 inside, 0 outside, 0.5 at a bound."""
    lo, hi = jnp.asarray(CLIP, p.dtype), jnp.asarray(1 - CLIP, p.dtype)
    inside = jnp.where((p > lo) & (p < hi), 1.0, 0.0)
    return jnp.where((p == lo) | (p == hi), 0.5, inside).astype(p.dtype)


def binary_crossentropy(prob: Array, y: Array, mask: Mask = None) -> Array:
    """``−mean(y·log p + (1−y)·log(1−p))`` with ``p`` clipped to ``[1e-7, 1 − 1e-7]``."""
    p = jnp.clip(prob, CLIP, 1 - CLIP)
    return -_mean(y * jnp.log(p) + (1 - y) * jnp.log(1 - p), mask)


def binary_crossentropy_grad(prob: Array, y: Array, mask: Mask = None) -> Array:
    """Gradient of `binary_crossentropy` with respect to ``p``: ``(−y/p + (1−y)/(1−p)) / N``.

    ``p`` clipped as in the loss; the result is multiplied by the clip's derivative (0 where
    the clip is active).

    >>> binary_crossentropy_grad(jnp.array([[0.5, 0.5]]), jnp.array([[1.0, 0.0]]))
    Array([[-1.,  1.]], dtype=float32)
    """
    p = jnp.clip(prob, CLIP, 1 - CLIP)
    return (-y / p + (1 - y) / (1 - p)) * _per_element(prob, mask) * _clip_grad(prob)


def binary_crossentropy_from_logits(z: Array, y: Array, mask: Mask = None) -> Array:
    """Binary cross-entropy of ``σ(z)``, computed from the logits: ``mean(softplus(z) − y·z)``."""
    return _mean(jax.nn.softplus(z) - y * z, mask)


def binary_crossentropy_from_logits_grad(z: Array, y: Array, mask: Mask = None) -> Array:
    """Gradient of `binary_crossentropy_from_logits` with respect to ``z``: ``(σ(z) − y) / N``.

    >>> binary_crossentropy_from_logits_grad(jnp.array([[0.0, 0.0]]), jnp.array([[1.0, 0.0]]))
    Array([[-0.25,  0.25]], dtype=float32)
    """
    return (jax.nn.sigmoid(z) - y) * _per_element(z, mask)


def categorical_crossentropy(prob: Array, y: Array, mask: Mask = None) -> Array:
    """``−mean_i log p_i[y_i]`` (integer labels) or ``−mean_i Σ_k y_ik log p_ik`` (one-hot).

    ``p`` is clipped to ``[1e-7, 1 − 1e-7]`` as in the book.
    """
    logp = jnp.log(jnp.clip(prob, CLIP, 1 - CLIP))
    return -_mean(_pick(logp, y), mask)


def categorical_crossentropy_from_logits(z: Array, y: Array, mask: Mask = None) -> Array:
    """Categorical cross-entropy of ``softmax(z)``, from the logits via ``log_softmax``."""
    return -_mean(_pick(jax.nn.log_softmax(z, axis=-1), y), mask)


def categorical_crossentropy_grad(prob: Array, y: Array, mask: Mask = None) -> Array:
    """Gradient of `categorical_crossentropy` with respect to ``p``: ``−t / (B·p)``.

    ``t`` is `y` one-hot encoded when it holds integer labels, ``B`` the batch size; ``p`` is
    clipped as in the loss and the result multiplied by the clip's derivative.

    >>> categorical_crossentropy_grad(jnp.array([[0.5, 0.25]]), jnp.array([[0.5, 0.5]]))
    Array([[-1., -2.]], dtype=float32)
    """
    t = _targets(y, prob)
    p = jnp.clip(prob, CLIP, 1 - CLIP)
    return -t / p * _per_row(prob, mask) * _clip_grad(prob)


def categorical_crossentropy_from_logits_grad(z: Array, y: Array, mask: Mask = None) -> Array:
    """Gradient of `categorical_crossentropy_from_logits` with respect to ``z``.

    ``(softmax(z) · Σ_k t_k − t) / B`` per row, which is the familiar ``(softmax(z) − t) / B``
    for one-hot rows or integer labels (``Σ_k t_k = 1``); ``t`` as in
    `categorical_crossentropy_grad`.

    >>> categorical_crossentropy_from_logits_grad(jnp.zeros((1, 2)), jnp.array([0]))
    Array([[-0.5,  0.5]], dtype=float32)
    """
    t = _targets(y, z)
    s = jax.nn.softmax(z, axis=-1)
    if y.ndim == 1:  # integer labels: every row of t sums to 1
        return (s - t) * _per_row(z, mask)
    return (s * jnp.sum(t, axis=1, keepdims=True) - t) * _per_row(z, mask)


def _targets(y: Array, like: Array) -> Array:
    """`y` as rows of targets shaped like `like`: integer labels one-hot encoded."""
    return jax.nn.one_hot(y, like.shape[1], dtype=like.dtype) if y.ndim == 1 else y


def _pick(logp: Array, y: Array) -> Array:
    """Per example ``Σ_k y_k log p_k``; for integer labels, ``log p[label]``."""
    if y.ndim == 1:
        return jnp.take_along_axis(logp, y[:, None].astype(jnp.int32), axis=1)[:, 0]
    return jnp.sum(y * logp, axis=1)


def data_loss(loss: str, output_activation: str, z: Array, a: Array, y: Array,
              mask: Mask = None) -> Array:  # fmt: skip
    """The data loss of an output layer with logits `z` and activations `a` against `y`.

    Uses the logits for the fused pairs (softmax + categorical, sigmoid + binary
    cross-entropy) and the activations otherwise. `mask` (0/1 per example) restricts the mean
    to the examples it keeps. Inputs are assumed validated.
    """
    value, _ = _pair(loss, output_activation)
    return value(z if fused(loss, output_activation) else a, jnp.asarray(y), mask)


def fused(loss: str, output_activation: str) -> bool:
    """True when `loss` is computed from the logits of `output_activation` (the fused pairs)."""
    return FUSED.get(loss) == output_activation


def _pair(loss: str, output_activation: str):
    """The loss function and its hand-written gradient: of the logits for the fused pairs."""
    return (_FROM_LOGITS if fused(loss, output_activation) else _FROM_OUTPUTS)[loss]


def data_loss_grad(loss: str, output_activation: str, z: Array, a: Array, y: Array,
                   mask: Mask = None) -> Array:  # fmt: skip
    """Hand-written gradient of `data_loss`: ``dL/dz`` for the fused pairs, else ``dL/da``.

    Mirrors `data_loss`: for softmax + categorical and sigmoid + binary cross-entropy (see
    `fused`) the loss is a function of the logits `z`, and the result is the output layer's
    error ``dL/dz`` directly (``(softmax(z) − t)/B``, ``(σ(z) − y)/N``). Otherwise it is
    ``dL/da`` with respect to the activations `a`, still to be carried through the output
    activation's derivative. Inputs are assumed validated.

    Args:
      loss: a name in `NAMES`.
      output_activation: the net's last activation.
      z: logits of the output layer, shape ``(batch, out_features)``.
      a: activations of the output layer, same shape.
      y: targets as for `data_loss`.
      mask: optional 0/1 weights per example, as for `data_loss`.

    Returns:
      An array shaped like `z`.

    >>> z = jnp.array([[0.0, 0.0]])
    >>> data_loss_grad("categorical_crossentropy", "softmax", z, jax.nn.softmax(z), jnp.array([1]))
    Array([[ 0.5, -0.5]], dtype=float32)
    """
    _, grad = _pair(loss, output_activation)
    return grad(z if fused(loss, output_activation) else a, jnp.asarray(y), mask)


_FROM_OUTPUTS = {
    "mse": (mse, mse_grad),
    "mae": (mae, mae_grad),
    "binary_crossentropy": (binary_crossentropy, binary_crossentropy_grad),
    "categorical_crossentropy": (categorical_crossentropy, categorical_crossentropy_grad),
}
_FROM_LOGITS = {
    "binary_crossentropy": (binary_crossentropy_from_logits, binary_crossentropy_from_logits_grad),
    "categorical_crossentropy": (
        categorical_crossentropy_from_logits,
        categorical_crossentropy_from_logits_grad,
    ),
}
