"""The regularized objective: data loss plus penalty, a pure function of the parameters."""

from __future__ import annotations

from typing import Any

import jax

from jaxmlp import losses as _losses
from jaxmlp.model import MLP, Params, forward_intermediates
from jaxmlp.regularization import RegLike, penalty


def check_problem(net: MLP, x: Any, y: Any, loss: Any) -> None:
    """Validate the loss name against the net's output and the targets against `x`."""
    if not isinstance(net, MLP):
        raise TypeError(f"net must be a jaxmlp.MLP; got {type(net).__name__}")
    _losses.check_loss(loss, net.output_activation, net.out_features)
    batch = x.shape[0] if hasattr(x, "shape") and len(x.shape) == 2 else None
    if batch is not None:
        _losses.check_targets(loss, y, batch, net.out_features)


def objective(
    net: MLP,
    params: Params,
    x: jax.Array,
    y: jax.Array,
    *,
    loss: str,
    reg: RegLike = None,
) -> tuple[jax.Array, dict[str, jax.Array]]:
    """Regularized loss ``data_loss(forward(x), y) + penalty(params, reg)``.

    The data loss is a mean (see `jaxmlp.losses`); the penalty is added unscaled. Differentiate
    the first output with `jax.grad`; the second holds its two parts.

    Args:
      net: the architecture.
      params: a tuple of ``{"W", "b"}`` dicts, one per layer.
      x: inputs, shape ``(batch, net.in_features)``.
      y: targets: shape ``(batch, net.out_features)``, or integer labels of shape ``(batch,)``
        for ``categorical_crossentropy``.
      loss: ``"mse"``, ``"mae"``, ``"binary_crossentropy"`` or ``"categorical_crossentropy"``.
      reg: a `Regularization`, a tuple with one per layer, or None.

    Returns:
      ``(total, {"data": data_loss, "penalty": penalty})``, all scalars.

    >>> net = MLP((2, 4, 3), ("relu", "softmax"))
    >>> params = init_params(jax.random.key(0), net)
    >>> total, parts = objective(net, params, jnp.ones((5, 2)), jnp.zeros(5, int),
    ...                          loss="categorical_crossentropy", reg=Regularization(l2w=1e-3))
    >>> sorted(parts)
    ['data', 'penalty']
    """
    check_problem(net, x, y, loss)
    zs, acts = forward_intermediates(net, params, x)
    data = _losses.data_loss(loss, net.output_activation, zs[-1], acts[-1], y)
    pen = penalty(params, reg)
    return data + pen, {"data": data, "penalty": pen}
