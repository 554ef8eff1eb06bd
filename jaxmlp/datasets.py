"""Synthetic data sets from the book, generated (no downloads)."""

from __future__ import annotations

import jax
import jax.numpy as jnp


def spiral(key: jax.Array, samples: int = 100, classes: int = 3, noise: float = 0.2):
    """The book's spiral data: `classes` interleaved arms of `samples` points each in 2-D.

    For class ``c`` and ``i = 0 … samples−1``: ``r = i/(samples−1)``,
    ``t = 4c + 4·i/(samples−1) + noise·N(0, 1)``, and the point is
    ``(r·sin(2.5t), r·cos(2.5t))`` — the formula of ``nnfs.datasets.spiral_data``, with our own
    random numbers.

    Args:
      key: a JAX PRNG key.
      samples: points per class.
      classes: number of classes (arms).
      noise: standard deviation of the angular noise.

    Returns:
      ``(x, y)``: ``x`` of shape ``(samples·classes, 2)`` (default float dtype), ``y`` integer
      labels of shape ``(samples·classes,)``, class by class.

    >>> x, y = spiral(jax.random.key(0), samples=100, classes=3)
    >>> x.shape, y.shape, int(y.max())
    ((300, 2), (300,), 2)
    """
    for name, v in (("samples", samples), ("classes", classes)):
        if isinstance(v, bool) or not isinstance(v, int) or v < 1:
            raise ValueError(f"{name} must be a positive integer; got {v!r}")
    if not noise >= 0:
        raise ValueError(f"noise must be >= 0; got {noise!r}")
    dtype = jnp.result_type(float)
    r = jnp.linspace(0.0, 1.0, samples, dtype=dtype)
    xs = []
    for c, k in enumerate(jax.random.split(key, classes)):
        t = jnp.linspace(4.0 * c, 4.0 * (c + 1), samples, dtype=dtype)
        t = t + noise * jax.random.normal(k, (samples,), dtype)
        xs.append(jnp.stack([r * jnp.sin(2.5 * t), r * jnp.cos(2.5 * t)], axis=1))
    y = jnp.repeat(jnp.arange(classes, dtype=jnp.int32), samples)
    return jnp.concatenate(xs, axis=0), y
