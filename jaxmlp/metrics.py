"""Metrics computed from the network's output."""

from __future__ import annotations

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
