"""Metrics computed from the network's output."""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np


def accuracy(outputs: jax.Array, y: jax.Array) -> jax.Array:
    """Classification accuracy: the share of rows whose predicted class is the true one.

    - Several outputs: the predicted class is ``argmax`` of the row; `y` holds integer labels
      ``(batch,)`` or one-hot rows ``(batch, classes)``.
    - One output (binary, sigmoid): the prediction is ``output > 0.5``; `y` is ``(batch, 1)``
      of 0s and 1s.

    >>> accuracy(jnp.array([[0.9, 0.1], [0.2, 0.8]]), jnp.array([0, 0]))
    Array(0.5, dtype=float32)
    """
    outputs, y = jnp.asarray(outputs), jnp.asarray(y)
    if outputs.ndim != 2:
        raise ValueError(f"outputs must have shape (batch, outputs); got {outputs.shape}")
    batch, width = outputs.shape
    if width == 1:
        if y.shape != (batch, 1):
            raise ValueError(
                f"y must have shape ({batch}, 1) for one output; got {tuple(np.shape(y))}"
            )
        correct = (outputs > 0.5) == (y > 0.5)
    else:
        if y.shape == (batch, width):
            y = jnp.argmax(y, axis=1)
        elif y.shape != (batch,):
            raise ValueError(
                f"y must be labels of shape ({batch},) or one-hot rows of shape "
                f"({batch}, {width}); got {tuple(np.shape(y))}"
            )
        correct = jnp.argmax(outputs, axis=1) == y
    return jnp.mean(correct.astype(jnp.result_type(float)))


def regression_accuracy(outputs: jax.Array, y: jax.Array, precision: Any = None) -> jax.Array:
    """The book's regression "accuracy": the share of elements with ``|ŷ − y| < precision``.

    ``precision`` defaults to ``std(y) / 250``, as in the book; pass the training set's value
    when scoring validation data so both use the same yardstick.

    >>> y = jnp.array([[0.0], [1.0], [2.0], [3.0]])
    >>> regression_accuracy(y + jnp.array([[0.0], [0.001], [0.5], [0.0]]), y)
    Array(0.75, dtype=float32)
    """
    outputs, y = jnp.asarray(outputs), jnp.asarray(y)
    if outputs.shape != y.shape:
        raise ValueError(f"y must have the shape of outputs {outputs.shape}; got {y.shape}")
    if precision is None:
        precision = jnp.std(y) / 250
    close = jnp.abs(outputs - y) < precision
    return jnp.mean(close.astype(jnp.result_type(float)))
