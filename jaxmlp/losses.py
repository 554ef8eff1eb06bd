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
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from jaxmlp._checks import check_array, check_choice, check_finite, is_concrete

NAMES: tuple[str, ...] = ("mse", "mae", "binary_crossentropy", "categorical_crossentropy")
PROBABILITY_OUTPUTS: tuple[str, ...] = ("sigmoid", "softmax")
CLIP = 1e-7
FUSED: dict[str, str] = {"categorical_crossentropy": "softmax", "binary_crossentropy": "sigmoid"}


def mse(pred: jax.Array, y: jax.Array) -> jax.Array:
    """Mean squared error ``mean((y − ŷ)²)`` over every element."""
    return jnp.mean((y - pred) ** 2)


def mae(pred: jax.Array, y: jax.Array) -> jax.Array:
    """Mean absolute error ``mean(|y − ŷ|)`` over every element."""
    return jnp.mean(jnp.abs(y - pred))


def binary_crossentropy(prob: jax.Array, y: jax.Array) -> jax.Array:
    """``−mean(y·log p + (1−y)·log(1−p))`` with ``p`` clipped to ``[1e-7, 1 − 1e-7]``."""
    p = jnp.clip(prob, CLIP, 1 - CLIP)
    return -jnp.mean(y * jnp.log(p) + (1 - y) * jnp.log(1 - p))


def binary_crossentropy_from_logits(z: jax.Array, y: jax.Array) -> jax.Array:
    """Binary cross-entropy of ``σ(z)``, computed from the logits: ``mean(softplus(z) − y·z)``."""
    return jnp.mean(jax.nn.softplus(z) - y * z)


def categorical_crossentropy(prob: jax.Array, y: jax.Array) -> jax.Array:
    """``−mean_i log p_i[y_i]`` (integer labels) or ``−mean_i Σ_k y_ik log p_ik`` (one-hot).

    ``p`` is clipped to ``[1e-7, 1 − 1e-7]`` as in the book.
    """
    logp = jnp.log(jnp.clip(prob, CLIP, 1 - CLIP))
    return -jnp.mean(_pick(logp, y))


def categorical_crossentropy_from_logits(z: jax.Array, y: jax.Array) -> jax.Array:
    """Categorical cross-entropy of ``softmax(z)``, from the logits via ``log_softmax``."""
    return -jnp.mean(_pick(jax.nn.log_softmax(z, axis=-1), y))


def _pick(logp: jax.Array, y: jax.Array) -> jax.Array:
    """Per example ``Σ_k y_k log p_k``; for integer labels, ``log p[label]``."""
    if y.ndim == 1:
        return jnp.take_along_axis(logp, y[:, None].astype(jnp.int32), axis=1)[:, 0]
    return jnp.sum(y * logp, axis=1)


def check_loss(loss: Any, output_activation: str, out_features: int) -> None:
    """Raise ValueError for an unknown loss or one the output activation cannot feed."""
    check_choice("loss", loss, NAMES)
    if loss.endswith("crossentropy") and output_activation not in PROBABILITY_OUTPUTS:
        raise ValueError(
            f"loss={loss!r} needs probabilities from the output layer (activation 'sigmoid' or "
            f"'softmax'); the net's output activation is {output_activation!r}. For logits, "
            f"use {FUSED[loss]!r} as the output activation: the loss is then computed from the "
            f"logits, stably."
        )
    if loss == "categorical_crossentropy" and out_features < 2:
        raise ValueError(
            "loss='categorical_crossentropy' needs at least 2 outputs; for one output use "
            "'binary_crossentropy' with a 'sigmoid' output"
        )


def check_targets(loss: str, y: Any, batch: int, out_features: int, name: str = "y") -> None:
    """Raise a clear error unless `y` fits `loss` and an output of ``(batch, out_features)``."""
    check_array(name, y)
    shape = tuple(np.shape(y))
    dtype = jnp.result_type(y)
    if loss == "categorical_crossentropy":
        if len(shape) == 1:
            if shape[0] != batch:
                raise ValueError(f"{name} must hold {batch} labels, one per row of x; got {shape}")
            if not jnp.issubdtype(dtype, jnp.integer):
                raise ValueError(
                    f"{name} as class labels of shape ({batch},) must have an integer dtype; "
                    f"got {dtype} (use y.astype(int), or one-hot rows of shape ({batch}, "
                    f"{out_features}))"
                )
            if is_concrete(y):
                arr = np.asarray(y)
                if arr.size and (arr.min() < 0 or arr.max() >= out_features):
                    raise ValueError(
                        f"{name} holds class labels in [{arr.min()}, {arr.max()}]; expected "
                        f"integers in [0, {out_features - 1}] for {out_features} outputs"
                    )
            return
        if shape != (batch, out_features):
            raise ValueError(
                f"{name} must be integer labels of shape ({batch},) or one-hot rows of shape "
                f"({batch}, {out_features}); got {shape}"
            )
    elif shape != (batch, out_features):
        hint = " (use y.reshape(-1, 1))" if shape == (batch,) and out_features == 1 else ""
        raise ValueError(
            f"{name} must have shape ({batch}, {out_features}) to match the net's output for "
            f"loss={loss!r}; got {shape}{hint}"
        )
    check_finite(name, y)
    if loss.endswith("crossentropy") and is_concrete(y):
        arr = np.asarray(y)
        if arr.size and (arr.min() < 0 or arr.max() > 1):
            raise ValueError(
                f"{name} for loss={loss!r} must hold targets in [0, 1]; got values in "
                f"[{arr.min()}, {arr.max()}]"
            )


def data_loss(loss: str, output_activation: str, z: jax.Array, a: jax.Array, y: jax.Array):
    """The data loss of an output layer with logits `z` and activations `a` against `y`.

    Uses the logits for the fused pairs (softmax + categorical, sigmoid + binary
    cross-entropy) and the activations otherwise. Inputs are assumed validated.
    """
    y = jnp.asarray(y)
    if loss == "mse":
        return mse(a, y)
    if loss == "mae":
        return mae(a, y)
    if loss == "binary_crossentropy":
        if output_activation == "sigmoid":
            return binary_crossentropy_from_logits(z, y)
        return binary_crossentropy(a, y)
    if output_activation == "softmax":
        return categorical_crossentropy_from_logits(z, y)
    return categorical_crossentropy(a, y)
