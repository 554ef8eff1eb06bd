"""Activation functions, each with its derivative written by hand beside it.

A layer computes ``z = x @ W + b`` and then ``a = f(z)``. For the element-wise activations the
derivative is the seeds' ``σ'(z)``, and the error carried back through the layer is
``dL/dz = dL/da * f'(z)`` (the seeds' ``err · σ'(HI)``). Softmax mixes the outputs of a row, so
its backward pass is the vector-Jacobian product ``s * (g - Σ g·s)`` instead.

Conventions at the kinks: ``relu'(0) = 0`` and ``leaky_relu'(0) = negative_slope`` (the
derivative of the left piece), which is also what ``jax.grad`` of the forward functions below
returns. ``leaky_relu`` uses a slope of 0.01 for negative inputs.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import jax
import jax.numpy as jnp

from jaxmlp._checks import check_choice

LEAKY_RELU_SLOPE = 0.01


def linear(z: jax.Array) -> jax.Array:
    """Identity: ``a = z``."""
    return z


def linear_derivative(z: jax.Array) -> jax.Array:
    """``d a / d z = 1``."""
    return jnp.ones_like(z)


def sigmoid(z: jax.Array) -> jax.Array:
    """Logistic sigmoid ``σ(z) = 1 / (1 + e^{-z})``, stable for large ``|z|``."""
    return jax.nn.sigmoid(z)


def sigmoid_derivative(z: jax.Array) -> jax.Array:
    """``σ'(z) = σ(z) · (1 − σ(z))``."""
    s = sigmoid(z)
    return s * (1 - s)


def tanh(z: jax.Array) -> jax.Array:
    """Hyperbolic tangent."""
    return jnp.tanh(z)


def tanh_derivative(z: jax.Array) -> jax.Array:
    """``tanh'(z) = 1 − tanh(z)²``."""
    t = jnp.tanh(z)
    return 1 - t * t


def relu(z: jax.Array) -> jax.Array:
    """Rectified linear unit ``max(z, 0)``, written so that its autodiff derivative at 0 is 0."""
    # Not jnp.maximum(z, 0): its gradient at exactly 0 is 0.5.
    return jnp.where(z > 0, z, jnp.zeros_like(z))


def relu_derivative(z: jax.Array) -> jax.Array:
    """1 where ``z > 0``, else 0 (0 at exactly 0)."""
    return jnp.where(z > 0, jnp.ones_like(z), jnp.zeros_like(z))


def leaky_relu(z: jax.Array) -> jax.Array:
    """``z`` where ``z > 0``, else ``0.01 · z``."""
    return jnp.where(z > 0, z, LEAKY_RELU_SLOPE * z)


def leaky_relu_derivative(z: jax.Array) -> jax.Array:
    """1 where ``z > 0``, else 0.01 (0.01 at exactly 0)."""
    return jnp.where(z > 0, jnp.ones_like(z), jnp.full_like(z, LEAKY_RELU_SLOPE))


def softmax(z: jax.Array) -> jax.Array:
    """Row-wise softmax ``s_i = e^{z_i} / Σ_j e^{z_j}`` over the last axis; stable for large z."""
    return jax.nn.softmax(z, axis=-1)


def softmax_backward(z: jax.Array, g: jax.Array) -> jax.Array:
    """Vector-Jacobian product of softmax: ``dL/dz = s ⊙ (g − Σ_j g_j s_j)`` with ``g = dL/ds``.

    The Jacobian is ``diag(s) − s sᵀ`` per row; multiplying it by ``g`` gives the line above
    without forming the matrix.
    """
    s = softmax(z)
    return s * (g - jnp.sum(g * s, axis=-1, keepdims=True))


class Activation(NamedTuple):
    """An activation's forward function and its hand-written backward pass.

    Attributes:
      name: the name used in `jaxmlp.MLP`.
      fn: ``a = fn(z)``.
      backward: ``backward(z, g)`` returns ``dL/dz`` given ``g = dL/da``.
      derivative: the element-wise derivative ``f'(z)``, or None for softmax.
    """

    name: str
    fn: Callable[[jax.Array], jax.Array]
    backward: Callable[[jax.Array, jax.Array], jax.Array]
    derivative: Callable[[jax.Array], jax.Array] | None


def _elementwise(name: str, fn, derivative) -> Activation:
    return Activation(name, fn, lambda z, g: g * derivative(z), derivative)


ACTIVATIONS: dict[str, Activation] = {
    "linear": _elementwise("linear", linear, linear_derivative),
    "sigmoid": _elementwise("sigmoid", sigmoid, sigmoid_derivative),
    "tanh": _elementwise("tanh", tanh, tanh_derivative),
    "relu": _elementwise("relu", relu, relu_derivative),
    "leaky_relu": _elementwise("leaky_relu", leaky_relu, leaky_relu_derivative),
    "softmax": Activation("softmax", softmax, softmax_backward, None),
}

NAMES: tuple[str, ...] = tuple(ACTIVATIONS)


def get(name: str) -> Activation:
    """Look up an activation by name; unknown names raise ValueError listing the known ones.

    >>> get("relu").fn(jnp.array([-1.0, 0.0, 2.0]))
    Array([0., 0., 2.], dtype=float32)
    """
    check_choice("activation", name, NAMES)
    return ACTIVATIONS[name]
