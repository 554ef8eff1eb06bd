"""The regularized objective: data loss plus penalty, a pure function of the parameters."""

from __future__ import annotations

import functools

import jax
from jax import Array

from jaxmlp import losses as _losses
from jaxmlp._checks import check_problem
from jaxmlp.losses import Mask
from jaxmlp.model import MLP, Params, intermediates
from jaxmlp.regularization import (
    RegLike,
    Regularization,
    penalty,
    per_layer,
    without_zeros,
    zero_strengths,
)


def objective(net: MLP, params: Params, x: Array, y: Array, *, loss: str, reg: RegLike = None,
              mask: Mask = None) -> tuple[Array, dict[str, Array]]:  # fmt: skip
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
      mask: optional 0/1 weight per example, shape ``(batch,)``: the data loss is then the
        mean over the examples whose weight is 1 (how `jaxmlp.fit` handles a short last
        batch without recompiling).

    Returns:
      ``(total, {"data": data_loss, "penalty": penalty})``, all scalars.

    The checks run in Python on the arguments as given; the computation is one program,
    compiled once per net, loss, shapes and dtypes (`jax.jit`), so that a call outside `jax.jit`
    does not run, and compile, each operation on its own. Inside `jax.jit`, `jax.grad` or
    `jax.vmap` it is traced like any function (under ``jax.disable_jit()`` it runs op by op).

    >>> net = MLP((2, 4, 3), ("relu", "softmax"))
    >>> params = init_params(jax.random.key(0), net)
    >>> total, parts = objective(net, params, jnp.ones((5, 2)), jnp.zeros(5, int),
    ...                          loss="categorical_crossentropy", reg=Regularization(l2w=1e-3))
    >>> sorted(parts)
    ['data', 'penalty']
    """
    x, y, mask = check_problem(net, x, y, loss, mask, params)
    regs = per_layer(reg, net.n_layers)
    return _objective(net, params, x, y, loss=loss, regs=regs, zeros=zero_strengths(regs),
                      mask=mask)  # fmt: skip


@functools.partial(jax.jit, static_argnames=("net", "loss", "zeros"))
def _objective(net: MLP, params: Params, x: Array, y: Array, *, loss: str,
               regs: tuple[Regularization, ...], zeros: tuple, mask: Mask) -> tuple:  # fmt: skip
    """`objective` on checked arguments, compiled; the strengths marked in `zeros` left out."""
    reg = without_zeros(regs, zeros)
    zs, acts = intermediates(net, params, x)
    total, (parts, _) = objective_of(net, params, zs, acts, y, loss=loss, reg=reg, mask=mask)
    return total, parts


def objective_of(net: MLP, params: Params, zs: list, acts: list, y: Array, *, loss: str,
                 reg: RegLike, mask: Mask = None) -> tuple[Array, tuple[dict, Array]]:  # fmt: skip
    """`objective` given the forward pass (`jaxmlp.model.intermediates`), without the checks.

    For callers that validated their inputs once: `objective`, `jaxmlp.backprop`,
    `jaxmlp.train` and the compiled epochs of `jaxmlp.fit`. Returns ``(total, (parts,
    output))``, the form `jax.value_and_grad(..., has_aux=True)` takes.
    """
    data = _losses.data_loss(loss, net.output_activation, zs[-1], acts[-1], y, mask)
    pen = penalty(params, reg)
    return data + pen, ({"data": data, "penalty": pen}, acts[-1])


def objective_and_output(net: MLP, params: Params, x: Array, y: Array, *, loss: str,
                         reg: RegLike = None, mask: Mask = None) -> tuple:  # fmt: skip
    """`objective` and the network's output from one forward pass, without the checks."""
    zs, acts = intermediates(net, params, x)
    return objective_of(net, params, zs, acts, y, loss=loss, reg=reg, mask=mask)
