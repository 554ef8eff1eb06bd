"""Backpropagation by hand, from the seed equations, for any depth.

The seeds write a 3-layer sigmoid MLP on column vectors; we write the same steps batch first
(``x`` of shape ``(batch, features)``, ``W`` of shape ``(fan_in, fan_out)``, so
``W_seed = Wᵀ``), for any number of layers, any activation and any loss::

    seeds (000)                                  here
    HI_l = W_l·HO_{l−1} + B_l,  HO_l = σ(HI_l)   z = a_prev @ W + b,  a = f(z)
    err_HO_final = E · σ'(HO_final)              delta = f.backward(z, dL/da)   (output layer)
    err_HO_l = err_HO_{l+1} · W_{l+1}ᵀ · σ'(HI_l)   delta = f.backward(z, delta @ W.T)
    W_l = W_l + lr · HO_{l−1}ᵀ · err_HO_l        dW = a_prev.T @ delta
    B_l = B_l + lr · err_HO_l                    db = Σ_batch delta
    seeds 001–003: λ·sign(w), 2λw                dW += l1w·sign(W) + 2·l2w·W   (same for b)

When the batch is longer than the widest layer (`jaxmlp.model.column_form`), the forward pass
runs in the seeds' own column form, and so does the backward pass: the same lines on
transposed arrays, ``delta`` of shape ``(features, batch)``, ``delta ← f.backward(z, W @ delta)``
and ``dW = a_prev.T @ delta.T``. The numbers are the same up to float rounding; narrow nets
run faster on a CPU.

``f.backward(z, g)`` is ``g · f'(z)`` for the element-wise activations (the seeds' ``· σ'``) and
softmax's vector-Jacobian product otherwise. For the fused pairs, softmax + categorical and
sigmoid + binary cross-entropy, the output error comes straight from the logits:
``delta = (ŷ − y)/B`` and ``(ŷ − y)/N`` (`jaxmlp.losses.data_loss_grad`).

Sign and scale: the seeds' ``err`` is *minus* the gradient of ``½·Σ(Y − Ŷ)²`` (``E = Y − Ŷ``,
and the updates add). Here ``delta = +dL/dz`` of our objective, whose data loss is a mean, and
the optimizer subtracts. With the mean squared error, the seeds' step with learning rate ``lr``
is our SGD step with ``lr·N·K/2`` (``N`` examples, ``K`` outputs).

Kinks follow the same conventions as `jax.grad` of the forward code, so the two agree exactly
there too: ``relu'(0) = 0``, ``leaky_relu'(0) = 0.01``, L1's ``sign(0) = +1``.
"""

from __future__ import annotations

import functools
from typing import Any

import jax
import jax.numpy as jnp
from jax import Array

from jaxmlp import activations as _act
from jaxmlp import losses as _losses
from jaxmlp._checks import check_problem
from jaxmlp.losses import Mask
from jaxmlp.model import MLP, Params, column_form, intermediates
from jaxmlp.objective import objective_of
from jaxmlp.regularization import (
    RegLike,
    Regularization,
    add_penalty_grad,
    per_layer,
    without_zeros,
    zero_strengths,
)


def backprop(net: MLP, params: Params, x: Array, y: Array, *, loss: str, reg: RegLike = None,
             mask: Mask = None, return_deltas: bool = False) -> Any:  # fmt: skip
    """The gradient of `jaxmlp.objective`, computed by hand with the seeds' equations.

    From the output layer ``L`` down to the first::

        delta_L = dL/dz_L                      (seeds: err_HO_final)
        dW_l    = a_{l−1}ᵀ · delta_l + l1w·sign(W_l) + 2·l2w·W_l
        db_l    = Σ_batch delta_l      + l1b·sign(b_l) + 2·l2b·b_l
        delta_{l−1} = (delta_l · W_lᵀ) ⊙ f'_{l−1}(z_{l−1})   (seeds: err_HO_{l−1})

    with ``a_0 = x`` and ``sign(0) = +1``. Pure; inputs are validated exactly as
    `jaxmlp.objective` validates them, and like it the computation is compiled once per net,
    loss, shapes and dtypes (``net`` and ``loss`` static under an outer `jax.jit`).

    Args: those of `jaxmlp.objective` (``params`` a tuple of ``{"W": (fan_in, fan_out),
    "b": (fan_out,)}`` dicts, one per layer), and ``return_deltas``: also return each layer's
    error ``delta_l = ∂objective/∂z_l`` (the seeds' ``err_HO_l``), shape ``(batch, fan_out)``.

    Returns:
      A pytree shaped like `params` (same dtypes): ``∂objective/∂W`` and ``∂objective/∂b``; with
      ``return_deltas``, the pair ``(grads, deltas)``, ``deltas`` a tuple with one array per
      layer — the form `jaxmlp.gradcheck` checks step by step.

    >>> from jaxmlp.backprop import backprop
    >>> net = MLP((2, 4, 3), ("relu", "softmax"))
    >>> params = init_params(jax.random.key(0), net)
    >>> x, y = jnp.ones((5, 2)), jnp.array([0, 1, 2, 1, 0])
    >>> grads = backprop(net, params, x, y, loss="categorical_crossentropy")
    >>> [(g["W"].shape, g["b"].shape) for g in grads]
    [((2, 4), (4,)), ((4, 3), (3,))]
    >>> abs(float(grads[1]["b"].sum())) < 1e-6  # Σ_k (softmax − t)_k = 0 for every example
    True

    `jaxmlp.gradcheck.gradcheck` compares it with ``jax.grad`` and finite differences.
    """
    x, y, mask = check_problem(net, x, y, loss, mask, params)
    regs = per_layer(reg, net.n_layers)
    return _backprop(net, params, x, y, loss=loss, regs=regs, zeros=zero_strengths(regs),
                     mask=mask, return_deltas=bool(return_deltas))  # fmt: skip


@functools.partial(jax.jit, static_argnames=("net", "loss", "zeros", "return_deltas"))
def _backprop(net: MLP, params: Params, x: Array, y: Array, *, loss: str,
              regs: tuple[Regularization, ...], zeros: tuple, mask: Mask,
              return_deltas: bool) -> Any:  # fmt: skip
    """`backprop` on checked arguments, compiled; the strengths marked in `zeros` left out."""
    reg = without_zeros(regs, zeros)
    zs, acts = intermediates(net, params, x)
    return backward(net, params, zs, acts, y, loss=loss, reg=reg, mask=mask,
                    return_deltas=return_deltas)  # fmt: skip


def value_and_backprop(net: MLP, params: Params, x: Array, y: Array, *, loss: str,
                       reg: RegLike = None, mask: Mask = None) -> tuple:  # fmt: skip
    """`jaxmlp.objective` and its `backprop` gradient from one forward pass.

    The hand-written counterpart of
    ``jax.value_and_grad(lambda p: objective(net, p, x, y, ...), has_aux=True)(params)``, with
    the same output structure. Arguments as for `backprop`.

    Returns:
      ``((total, {"data": data_loss, "penalty": penalty}), grads)``.

    >>> from jaxmlp.backprop import value_and_backprop
    >>> net = MLP((2, 4, 3), ("relu", "softmax"))
    >>> zeros = jax.tree.map(jnp.zeros_like, init_params(jax.random.key(0), net))
    >>> (total, parts), grads = value_and_backprop(
    ...     net, zeros, jnp.ones((5, 2)), jnp.array([0, 1, 2, 1, 0]),
    ...     loss="categorical_crossentropy")
    >>> round(float(total), 4)  # uniform probabilities: log 3
    1.0986
    """
    x, y, mask = check_problem(net, x, y, loss, mask, params)
    regs = per_layer(reg, net.n_layers)
    return _value_and_backprop(net, params, x, y, loss=loss, regs=regs,
                               zeros=zero_strengths(regs), mask=mask)  # fmt: skip


@functools.partial(jax.jit, static_argnames=("net", "loss", "zeros"))
def _value_and_backprop(net: MLP, params: Params, x: Array, y: Array, *, loss: str,
                        regs: tuple[Regularization, ...], zeros: tuple,
                        mask: Mask) -> tuple:  # fmt: skip
    """`value_and_backprop` on checked arguments, compiled; `zeros` as for `backprop`."""
    reg = without_zeros(regs, zeros)
    zs, acts = intermediates(net, params, x)
    grads = backward(net, params, zs, acts, y, loss=loss, reg=reg, mask=mask)
    total, (parts, _) = objective_of(net, params, zs, acts, y, loss=loss, reg=reg, mask=mask)
    return (total, parts), grads


def backward(net: MLP, params: Params, zs: list, acts: list, y: Array, *, loss: str,
             reg: RegLike, mask: Mask = None, return_deltas: bool = False) -> Any:  # fmt: skip
    """The backward table, given the forward one (``zs``: the seeds' HI, ``acts``: HO).

    `backprop` without its checks and its forward pass: ``zs`` and ``acts`` are what
    `jaxmlp.model.intermediates` returns, `y` an array. For callers that validated their inputs
    once (`backprop`, `jaxmlp.train`, the compiled epochs of `jaxmlp.fit`).
    """
    out = _act.get(net.output_activation)
    g = _losses.data_loss_grad(loss, out.name, zs[-1], acts[-1], y, mask)
    # seeds: err_HO_final = E · σ'(HO_final); for a fused pair, g = (ŷ − y)/N is it already,
    # straight from the logits.
    delta = g if _losses.fused(loss, out.name) else out.backward(zs[-1], g)
    regs = per_layer(reg, net.n_layers)
    grads, deltas = backward_from(net, params, zs, acts, delta, net.n_layers - 1, regs)
    return (grads, deltas) if return_deltas else grads


def backward_from(net: MLP, params: Params, zs: list, acts: list, delta: Array, layer: int,
                  regs: tuple[Regularization, ...]) -> tuple[Params, tuple]:  # fmt: skip
    """The gradients of layers ``0 … layer`` and their errors, given ``delta = dL/dz_layer``.

    The seeds' backward steps from one layer down. `delta` is ``(batch, fan_out)``; `regs` holds
    one `Regularization` per layer of `net`. Returns ``(grads, deltas)``, both indexed by
    layer from 0, ``deltas[l] = dL/dz_l`` of shape ``(batch, fan_out_l)``. `backward` starts it
    at the output layer; `jaxmlp.diagnosis` restarts it at a layer with a hypothesised error.
    """
    # Where forward_intermediates computed in column form, so does the backward pass: the same
    # lines on transposed arrays, delta of shape (features, batch) (see `column_form`).
    columns = column_form(net, delta.shape[0])
    delta = delta.T if columns else delta
    grads, deltas = [], []
    for l in reversed(range(layer + 1)):
        W, b, r = params[l]["W"], params[l]["b"], regs[l]
        deltas.append(delta.T if columns else delta)
        a_prev = acts[l]  # seeds: HO_{l−1}, or X for the first layer
        dW = a_prev.T @ (delta.T if columns else delta)  # seeds: HO^T · err
        db = jnp.sum(delta, axis=1 if columns else 0)  # seeds: B += lr · err, summed over the batch
        dW = add_penalty_grad(dW, W, r.l1w, r.l2w)  # seeds 001–003: λ·sign(w) + 2λw
        db = add_penalty_grad(db, b, r.l1b, r.l2b)
        grads.append({"W": dW.astype(jnp.result_type(W)), "b": db.astype(jnp.result_type(b))})
        if l > 0:
            f_prev = _act.get(net.activations[l - 1])
            if not columns:
                delta = f_prev.backward(zs[l - 1], delta @ W.T)  # seeds: err · W^T · σ'(HI)
            elif f_prev.derivative is not None:
                delta = f_prev.backward(zs[l - 1].T, W @ delta)  # element-wise, any layout
            else:  # softmax: its vector-Jacobian product runs over the features, in rows
                delta = f_prev.backward(zs[l - 1], (W @ delta).T).T
    return tuple(reversed(grads)), tuple(reversed(deltas))
