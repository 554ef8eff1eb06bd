"""The architecture (`MLP`), parameter initialisation and the forward pass.

Convention (row-major, batch first, as in NumPy and the book): ``x`` has shape
``(batch, features)`` and layer ``l`` computes ``z_l = a_{l-1} @ W_l + b_l`` with ``W_l`` of
shape ``(fan_in, fan_out)`` and ``b_l`` of shape ``(fan_out,)``, then ``a_l = f_l(z_l)``. The
seeds write the same layer as ``W·X + B`` on column vectors; transposing both sides gives ours.
For a batch longer than the widest layer, `forward_intermediates` computes in that column form
(faster on a CPU for narrow nets) and returns arrays in ours.
"""

from __future__ import annotations

import dataclasses
import functools
import math
from typing import Any

import jax
import jax.numpy as jnp

from jaxmlp import activations as _act
from jaxmlp import tuning
from jaxmlp._checks import (
    check_choice,
    check_count,
    check_forward,
    check_key,
)

Params = tuple[dict[str, jax.Array], ...]
"""One ``{"W": (fan_in, fan_out), "b": (fan_out,)}`` dict per layer, input layer first."""

INIT_SCHEMES: tuple[str, ...] = ("he", "glorot", "nnfs")


@dataclasses.dataclass(frozen=True)
class MLP:
    """A multilayer perceptron's architecture: layer sizes and one activation per layer.

    Frozen and hashable, so it can be a static argument of `jax.jit`; it holds no arrays.

    Args:
      sizes: ``(in_features, hidden_1, …, out_features)``; at least two positive integers.
      activations: one name per layer (``len(sizes) - 1`` of them), each one of
        ``"linear"``, ``"sigmoid"``, ``"tanh"``, ``"relu"``, ``"leaky_relu"``, ``"softmax"``.

    >>> net = MLP(sizes=(2, 64, 3), activations=("relu", "softmax"))
    >>> net.n_layers, net.in_features, net.out_features
    (2, 2, 3)
    """

    sizes: tuple[int, ...]
    activations: tuple[str, ...]

    def __post_init__(self) -> None:
        sizes, acts = self.sizes, self.activations
        if isinstance(sizes, (str, bytes)) or not hasattr(sizes, "__iter__"):
            raise TypeError(f"sizes must be a sequence of integers; got {sizes!r}")
        if isinstance(acts, str) or not hasattr(acts, "__iter__"):
            raise TypeError(f"activations must be a sequence of names, one per layer; got {acts!r}")
        sizes, acts = tuple(sizes), tuple(acts)
        if len(sizes) < 2:
            raise ValueError(
                f"sizes must hold at least 2 entries (inputs and outputs); got {sizes!r}"
            )
        for i, n in enumerate(sizes):
            check_count(f"sizes[{i}]", n, 1)
        if len(acts) != len(sizes) - 1:
            raise ValueError(
                f"activations must hold one name per layer: {len(sizes) - 1} for sizes "
                f"{sizes!r}; got {len(acts)}: {acts!r}"
            )
        for i, name in enumerate(acts):
            check_choice(f"activations[{i}]", name, _act.NAMES)
        object.__setattr__(self, "sizes", tuple(int(n) for n in sizes))
        object.__setattr__(self, "activations", acts)

    @property
    def n_layers(self) -> int:
        """Number of layers with weights (``len(sizes) - 1``)."""
        return len(self.sizes) - 1

    @property
    def in_features(self) -> int:
        """Width of the input, ``sizes[0]``."""
        return self.sizes[0]

    @property
    def out_features(self) -> int:
        """Width of the output, ``sizes[-1]``."""
        return self.sizes[-1]

    @property
    def output_activation(self) -> str:
        """Name of the last layer's activation."""
        return self.activations[-1]


def init_params(key: jax.Array, net: MLP, scheme: str = "he", dtype: Any = None) -> Params:
    """Initial parameters for `net`: random weights, zero biases.

    Schemes, for a layer with ``fan_in`` inputs and ``fan_out`` outputs:

    - ``"he"``: ``W ~ N(0, 2 / fan_in)`` (He et al. 2015, suited to ReLU).
    - ``"glorot"``: ``W ~ U(−r, r)``, ``r = √(6 / (fan_in + fan_out))`` (Glorot & Bengio 2010,
      the uniform variant; suited to tanh and sigmoid).
    - ``"nnfs"``: ``W = 0.01 · N(0, 1)``, the book's ``0.01 * np.random.randn``.

    Args:
      key: a JAX PRNG key (``jax.random.key(0)``); one subkey per layer is split from it.
      net: the architecture.
      scheme: one of ``"he"``, ``"glorot"``, ``"nnfs"``.
      dtype: floating dtype of the arrays; by default JAX's default float (float32, or float64
        with ``jax_enable_x64``).

    Returns:
      A tuple with one ``{"W": (fan_in, fan_out), "b": (fan_out,)}`` dict per layer.

    >>> params = init_params(jax.random.key(0), MLP((2, 64, 3), ("relu", "softmax")))
    >>> [(p["W"].shape, p["b"].shape) for p in params]
    [((2, 64), (64,)), ((64, 3), (3,))]
    """
    if not isinstance(net, MLP):
        raise TypeError(f"net must be a jaxmlp.MLP; got {type(net).__name__}")
    check_choice("scheme", scheme, INIT_SCHEMES)
    check_key(key)
    dtype = jnp.result_type(float) if dtype is None else jnp.dtype(dtype)
    if not jnp.issubdtype(dtype, jnp.floating):
        raise ValueError(f"dtype must be a floating dtype; got {dtype}")
    return _draw(key, net, scheme, dtype)


barrier = jax.lax.optimization_barrier


@functools.partial(jax.jit, static_argnums=(1, 2, 3))
def _draw(key: jax.Array, net: MLP, scheme: str, dtype: Any) -> Params:
    """`init_params` after its checks, as one compiled program per net, scheme and dtype.

    (Drawn op by op, the first call of a new net compiled about ten small programs.)
    """
    # The barriers keep each draw apart from its scaling, as when drawn op by op: the same bits
    # as earlier versions for the same key (fused, a weight could differ in its last bit).
    keys = jax.random.split(key, net.n_layers)
    params = []
    for k, fan_in, fan_out in zip(keys, net.sizes[:-1], net.sizes[1:]):
        shape = (fan_in, fan_out)
        if scheme == "he":
            W = barrier(jax.random.normal(k, shape, dtype)) * math.sqrt(2.0 / fan_in)
        elif scheme == "glorot":
            r = math.sqrt(6.0 / (fan_in + fan_out))
            W = jax.random.uniform(k, shape, dtype, minval=-r, maxval=r)
        else:
            W = 0.01 * barrier(jax.random.normal(k, shape, dtype))
        params.append({"W": W, "b": jnp.zeros((fan_out,), dtype)})
    return tuple(params)


def forward_intermediates(net: MLP, params: Params,
                          x: jax.Array) -> tuple[list[jax.Array], list[jax.Array]]:  # fmt: skip
    """Every layer's pre-activation and activation: the forward table of the seeds.

    Returns ``(zs, activations)`` where ``zs[l] = activations[l] @ W_l + b_l`` (the seeds'
    ``HI``) and ``activations[l + 1] = f_l(zs[l])`` (the seeds' ``HO``); ``activations[0]`` is
    ``x``. The backward pass needs both. All are ``(batch, features)``.

    How it is computed: when the batch is longer than the widest layer, every layer runs in the
    seeds' own column form ``z_lᵀ = W_lᵀ·a_{l−1}ᵀ + b_l``, with the batch on the arrays' last
    (contiguous) axis, and the arrays returned are transposed views. Narrow layers (2 inputs,
    3 classes) then fill the CPU's vector lanes instead of wasting most of them: small nets
    train faster, and many small nets at once (`jaxmlp.ensemble.fit_many`) two to three times
    as fast (README, "Speed"). The values are the same up to float rounding.

    Args:
      net: the architecture.
      params: as returned by `init_params`.
      x: inputs, shape ``(batch, net.in_features)``.
    """
    return intermediates(net, params, check_forward(net, params, x))


def intermediates(net: MLP, params: Params,
                  x: jax.Array) -> tuple[list[jax.Array], list[jax.Array]]:  # fmt: skip
    """`forward_intermediates` without its checks, for callers that validated their inputs."""
    x = jnp.asarray(x)
    columns = column_form(net, x.shape[0])
    a = x.T if columns else x
    zs, acts = [], [x]
    for layer, name in zip(params, net.activations):
        f = _act.get(name)
        if columns:  # a is (features, batch)
            z = layer["W"].T @ a + layer["b"][:, None]  # seeds: HI = W·HO + B
            a = f.fn(z) if f.derivative is not None else f.fn(z.T).T  # softmax: over features
        else:
            z = a @ layer["W"] + layer["b"][None, :]
            a = f.fn(z)
        zs.append(z.T if columns else z)
        acts.append(a.T if columns else a)
    return zs, acts


def column_form(net: MLP, batch: int) -> bool:
    """Whether `forward_intermediates` (and `jaxmlp.backprop`) compute a batch in column form.

    True when the batch is longer than the widest layer: the batch then goes on the arrays'
    contiguous axis, where a CPU's vector lanes fill best. Only on the backends where this was
    measured (`jaxmlp.tuning.tuned`: the CPU); elsewhere always the row form.
    """
    return batch > max(net.sizes) and tuning.tuned()


def forward(net: MLP, params: Params, x: jax.Array) -> jax.Array:
    """The network's output for inputs `x`, the output layer's activation applied.

    Args:
      net: the architecture.
      params: as returned by `init_params`.
      x: inputs, shape ``(batch, net.in_features)``.

    Returns:
      Array of shape ``(batch, net.out_features)``; probabilities for a softmax output.

    >>> net = MLP((2, 8, 3), ("relu", "softmax"))
    >>> probs = forward(net, init_params(jax.random.key(0), net), jnp.ones((5, 2)))
    >>> probs.shape, bool(jnp.allclose(probs.sum(axis=1), 1.0))
    ((5, 3), True)
    """
    return forward_intermediates(net, params, x)[1][-1]
