"""The forms a backward function given to `jaxmlp.gradcheck` may take: jaxmlp's, or the seeds'.

``layout="jaxmlp"`` (the default): the function gets jaxmlp's arrays, ``x`` of shape
``(batch, features)`` and ``params`` a tuple of ``{"W": (fan_in, fan_out), "b": (fan_out,)}``
dicts, and returns the gradient of `jaxmlp.objective` shaped like ``params`` — or the pair
``(grads, deltas)``, ``deltas[l] = dL/dz_l`` of shape ``(batch, fan_out)``, checked step by step.

``layout="seeds"``: the function is written literally from the seed tables. It gets

- ``params``: a list with one ``{"W": (fan_out, fan_in), "b": (fan_out, 1)}`` dict per layer
  (the seeds' ``W·X + B``);
- ``x``: ``X`` of shape ``(features, batch)``, one example per column;
- ``y``: ``Y`` of shape ``(outputs, batch)`` (class labels one-hot);
- ``reg``: a tuple with one `jaxmlp.Regularization` per layer (always this one form);

and returns, per layer, the seeds' *update direction* ``{"W": HO_{l−1}ᵀ·err, "b": Σ err}`` —
as a list of dicts or of ``(dW, dB)`` pairs, ``dB`` of shape ``(fan_out, 1)`` or
``(fan_out,)`` — where ``err = E·σ′`` with ``E = Y − Ŷ``: *minus* the gradient of the seeds'
objective ``S·data_loss + penalty``. ``S`` makes the data loss the seeds' sum: ``N·K/2`` for
``mse`` (``½·ΣΣ(Y − Ŷ)²``), ``N·K`` for ``mae`` and ``binary_crossentropy``, ``N`` for
``categorical_crossentropy`` (``N`` examples, ``K`` outputs); the penalty is added unscaled,
as seeds 001–003 add it (``W = W + lr·(HO_{l−1}ᵀ·err − 2λW)``). It may also return
``(directions, errs)``, ``errs[l]`` the seeds' ``err_HO`` of shape ``(fan_out, batch)``.

The conversion to jaxmlp's gradient, which the report states: ``W`` and ``b`` transposed and
flattened, then ``g = (−D − ∇penalty)/S + ∇penalty``; an error ``δ = −errᵀ/S``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import numpy as np

from jaxmlp._checks import check_choice
from jaxmlp.model import MLP
from jaxmlp.regularization import RegLike, penalty_grad, per_layer

LAYOUTS = ("jaxmlp", "seeds")


class BackwardError(RuntimeError):
    """The user's backward function raised; the original exception is its ``__cause__``."""


class Returned(NamedTuple):
    """What a backward function returned, in jaxmlp's layout (NumPy arrays).

    ``grads`` shaped like params (a leaf may be transposed: `jaxmlp.diagnosis` says so);
    ``deltas`` one ``dL/dz_l`` per layer, or None; ``conversion`` the conversion applied, in words
    (None in jaxmlp's layout).
    """

    grads: tuple
    deltas: tuple | None
    conversion: str | None


def seeds_scale(loss: str, n: int, k: int) -> tuple[float, str]:
    """The seeds' ``S`` (data loss as a sum) for `loss`, and its formula in words."""
    if loss == "mse":
        return n * k / 2, f"N·K/2 = {n}·{k}/2 (½ΣΣ(Y − Ŷ)²)"
    if loss == "categorical_crossentropy":
        return float(n), f"N = {n} (the cross-entropy summed over the batch)"
    return float(n * k), f"N·K = {n}·{k} (the loss summed over every element)"


def call(backward: Callable, layout: str, problem: tuple) -> Returned:
    """Run the user's `backward` on ``problem = (net, params, x, y, loss, reg)`` in `layout`.

    Raises:
      BackwardError: `backward` raised (its exception chained, traceback kept).
      TypeError, ValueError: what it returned does not fit the layout (the message names the fix).
    """
    check_choice("layout", layout, LAYOUTS)
    net, params, x, y, loss, reg = problem
    if layout == "seeds":
        args = seeds_arguments(net, params, x, y, loss, reg)
    else:
        args = (net, params, x, y, {"loss": loss, "reg": reg})
    try:
        out = backward(*args[:4], **args[4])
    except Exception as e:
        hint = ""
        if layout == "jaxmlp" and isinstance(e, (TypeError, ValueError)):
            hint = ("; if it follows the seeds' tables (column vectors, W of shape (fan_out, "
                    "fan_in)), pass layout='seeds'")  # fmt: skip
        raise BackwardError(f"backward raised {type(e).__name__}: {e}{hint}") from e
    grads, deltas = split(out)
    if layout == "seeds":
        return from_seeds(grads, deltas, problem)
    grads, deltas = as_numpy(grads), None if deltas is None else tuple(map(np.asarray, deltas))
    check_jaxmlp_shapes(grads, params)
    check_deltas(deltas, net, np.shape(x)[0], "(batch, fan_out)", lambda n, b: (b, n))
    return Returned(grads, deltas, None)


def seeds_arguments(net: MLP, params: Any, x: Any, y: Any, loss: str, reg: RegLike) -> tuple:
    """The seeds' ``(net, params, X, Y, {"loss", "reg"})`` from jaxmlp's arrays."""
    seeds_params = [{"W": np.asarray(p["W"]).T, "b": np.asarray(p["b"])[:, None]} for p in params]
    x, y = np.asarray(x), np.asarray(y)
    if y.ndim == 1:  # class labels, one-hot as the seeds' Y
        y = np.eye(net.out_features, dtype=x.dtype)[y]
    kwargs = {"loss": loss, "reg": per_layer(reg, net.n_layers)}
    return net, seeds_params, x.T, y.T, kwargs


def split(out: Any) -> tuple[Any, Any]:
    """``(grads, deltas)`` from a backward's result: ``grads`` alone or the pair."""
    if isinstance(out, tuple) and len(out) == 2 and isinstance(out[0], (tuple, list)):
        if len(out[0]) and isinstance(out[0][0], (dict, tuple, list)):
            return out
    return out, None


def as_numpy(tree: Any) -> Any:
    """`tree` with NumPy arrays for leaves; tuples, lists and dicts kept."""
    if isinstance(tree, dict):
        return {k: as_numpy(v) for k, v in tree.items()}
    if isinstance(tree, (tuple, list)):
        return type(tree)(as_numpy(v) for v in tree)
    return np.asarray(tree)


def check_jaxmlp_shapes(grads: Any, params: Any) -> None:
    """Raise with the fix when `grads` does not have jaxmlp's form (a transposed W is allowed)."""
    if isinstance(grads, list):
        raise TypeError("backward returned a list; jaxmlp's layout is a tuple of {'W', 'b'} "
                        "dicts like params: return tuple(grads), or pass layout='seeds' if your "
                        "backward follows the seeds' tables")  # fmt: skip
    # Any: jaxlib ships no stub for PyTreeDef, so mypy cannot compare two of them
    got: Any = jax.tree.structure(grads)
    like: Any = jax.tree.structure(params)
    if got != like:
        raise ValueError(f"backward must return gradients shaped like params ({like}); got {got}")
    seeds_like = all(
        np.shape(g["W"]) == np.shape(p["W"])[::-1] and np.shape(g["b"]) == (len(p["b"]), 1)
        for g, p in zip(grads, params)
    )
    if seeds_like and any(np.shape(p["W"])[0] != np.shape(p["W"])[1] for p in params):
        raise ValueError("backward returned W of shape (fan_out, fan_in) and b of shape "
                         "(fan_out, 1): the seeds' layout; pass layout='seeds' to check it as "
                         "the seeds write it (sign and scale converted too)")  # fmt: skip
    shapes = [np.shape(p[k]) for p in params for k in ("W", "b")]
    for l, (g, p) in enumerate(zip(grads, params)):
        for k in ("W", "b"):
            got, want = np.shape(g[k]), np.shape(p[k])
            if got != want and got != want[::-1] and got not in shapes:
                fix = " (return b.ravel())" if k == "b" and got == (*want, 1) else ""
                raise ValueError(f"backward returned a gradient of shape {got} for "
                                 f"params[{l}]['{k}'] of shape {want}{fix}")  # fmt: skip


def check_deltas(deltas: Any, net: MLP, batch: int, form: str, shape: Callable) -> None:
    """Raise unless `deltas` holds one array per layer of shape ``shape(fan_out, batch)``."""
    if deltas is None:
        return
    if len(deltas) != net.n_layers:
        raise ValueError(f"backward returned {len(deltas)} layer errors; the net has "
                         f"{net.n_layers} layers (one {form} array each)")  # fmt: skip
    for l, (d, n) in enumerate(zip(deltas, net.sizes[1:])):
        want = shape(n, batch)
        if np.shape(d) not in (want, want[::-1]):
            raise ValueError(f"backward returned an error of shape {np.shape(d)} for layer {l}; "
                             f"expected {want}, {form}")  # fmt: skip


def from_seeds(directions: Any, errs: Any, problem: tuple) -> Returned:
    """The gradient (and errors) in jaxmlp's layout from the seeds' update directions."""
    net, params, x, y, loss, reg = problem
    n, k = np.shape(x)[0], net.out_features
    if not isinstance(directions, (list, tuple)) or len(directions) != net.n_layers:
        raise ValueError(f"layout='seeds': backward must return a list with one {{'W', 'b'}} "
                         f"dict or (dW, dB) pair per layer ({net.n_layers}); got "
                         f"{type(directions).__name__}")  # fmt: skip
    s, formula = seeds_scale(loss, n, k)
    pen = as_numpy(penalty_grad(params, reg))
    grads = []
    for l, (d, p, g_pen) in enumerate(zip(directions, params, pen)):
        dW, dB = (d["W"], d["b"]) if isinstance(d, dict) else d
        dW, dB = np.asarray(dW), np.asarray(dB)
        fan_in, fan_out = np.shape(p["W"])
        shapes = ((fan_out, fan_in), (fan_in, fan_out))
        if dW.shape not in shapes or dB.shape not in ((fan_out, 1), (fan_out,)):
            raise ValueError(
                f"layout='seeds': layer {l} returned W {dW.shape} and b {dB.shape};"
                f" the seeds' shapes are ({fan_out}, {fan_in}) and ({fan_out}, 1)"
            )
        # A W returned transposed stays so, converted entry by entry: the report says transpose.
        pen_w = g_pen["W"] if dW.shape == (fan_out, fan_in) else g_pen["W"].T
        grads.append({"W": (-dW.T - pen_w) / s + pen_w,
                      "b": (-dB.ravel() - g_pen["b"]) / s + g_pen["b"]})  # fmt: skip
    deltas = None
    if errs is not None:
        check_deltas(errs, net, n, "(fan_out, batch), the seeds' err_HO", lambda m, b: (m, b))
        deltas = tuple(-np.asarray(e).T / s for e in errs)
    conversion = (f"layout='seeds': W (fan_out, fan_in) and b (fan_out, 1) transposed; the "
                  f"update directions of S·data + penalty with S = {formula} converted to "
                  "gradients g = (−D − ∇penalty)/S + ∇penalty; err_HO to −errᵀ/S")  # fmt: skip
    return Returned(tuple(grads), deltas, conversion)
