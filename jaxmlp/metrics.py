"""Metrics computed from the network's output: the one accuracy rule, and weight statistics.

The accuracy rule (`correct`) depends on the loss the net is trained with:

- ``categorical_crossentropy``: the predicted class is the ``argmax`` of the row;
- ``binary_crossentropy``: an output is right when ``output > 0.5`` agrees with ``y > 0.5``;
- ``mse`` and ``mae``: the book's regression "accuracy", ``|ŷ − y| < precision``, with
  ``precision = std(y_train) / 250``.

`jaxmlp.fit`'s history, `jaxmlp.evaluate`, `accuracy` and the plots all use it.

For regression (``mse``, ``mae``) the headline metrics are `r2`, `rmse` and `mae`, computed
from sums (`regression_sums`, `total_squares`) so that a compiled epoch can accumulate them
over its batches and `regression_metrics` turn them into numbers:

- ``rmse = √(Σ(ŷ − y)² / (n·outputs))`` and ``mae = Σ|ŷ − y| / (n·outputs)``, over every
  element, as the losses average;
- ``r2`` = the mean over the outputs of ``1 − Σ(ŷ − y)² / Σ(y − ȳ)²``, with ``ȳ`` the mean of
  the scored rows (scikit-learn's ``r2_score``, ``multioutput="uniform_average"``); an output
  whose target is constant scores 1 if it is predicted exactly, else 0 (scikit-learn's
  ``force_finite``).
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from jaxmlp._checks import as_array
from jaxmlp.model import Params


def task_of(loss: str) -> str:
    """``"classification"`` for the cross-entropies, ``"regression"`` for mse and mae."""
    return "classification" if loss.endswith("crossentropy") else "regression"


def precision_of(loss: str, y: Any, dtype: Any = None) -> jax.Array:
    """The regression accuracy's tolerance ``std(y) / 250`` (0, unused, for classification)."""
    dtype = dtype or jnp.result_type(float)
    if task_of(loss) != "regression":
        return as_array(0.0, dtype)  # from the host: nothing to compile
    return (jnp.std(y) / 250).astype(dtype)


def predicted_class(outputs: jax.Array) -> jax.Array:
    """The class each row predicts: ``argmax``, or ``output > 0.5`` for a single output."""
    if outputs.shape[-1] == 1:
        return (outputs[..., 0] > 0.5).astype(jnp.int32)
    return jnp.argmax(outputs, axis=-1)


def correct(loss: str, outputs: jax.Array, y: jax.Array, precision: Any = 0.0) -> jax.Array:
    """Per example, the share of its predictions that are right (1 or 0 for one class).

    Args:
      loss: the loss the net is trained with; it decides the rule (see the module's docstring).
      outputs: the network's output ``(batch, outputs)``.
      y: integer labels ``(batch,)`` or targets shaped like `outputs`.
      precision: the regression tolerance (`precision_of`), unused for classification.

    Returns:
      An array ``(batch,)`` of the outputs' dtype.
    """
    if loss == "categorical_crossentropy":
        labels = y if y.ndim == 1 else jnp.argmax(y, axis=1)
        return (jnp.argmax(outputs, axis=1) == labels).astype(outputs.dtype)
    if loss == "binary_crossentropy":
        hit = (outputs > 0.5) == (y > 0.5)
    else:
        hit = jnp.abs(outputs - y) < precision
    return jnp.mean(hit.astype(outputs.dtype), axis=1)


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
    if width == 1 and y.shape != (batch, 1):
        raise ValueError(f"y must have shape ({batch}, 1) for one output; got {tuple(np.shape(y))}")
    if width > 1 and y.shape not in ((batch,), (batch, width)):
        raise ValueError(
            f"y must be labels of shape ({batch},) or one-hot rows of shape "
            f"({batch}, {width}); got {tuple(np.shape(y))}"
        )
    loss = "binary_crossentropy" if width == 1 else "categorical_crossentropy"
    return jnp.mean(correct(loss, outputs.astype(jnp.result_type(float)), y))


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
    precision = precision_of("mse", y) if precision is None else precision
    return jnp.mean(correct("mse", outputs, y, precision))


REGRESSION_FIELDS = ("r2", "rmse", "mae")


def regression_sums(outputs: jax.Array, y: jax.Array, mask: Any = None) -> dict[str, jax.Array]:
    """``{"sse": Σ(ŷ − y)² per output, "sae": Σ|ŷ − y|}`` over the rows (`mask`: 0/1 per row)."""
    err = outputs - y
    if mask is not None:
        err = err * mask[:, None]
    return {"sse": jnp.sum(err * err, axis=0), "sae": jnp.sum(jnp.abs(err))}


def total_squares(y: jax.Array, mask: Any = None) -> jax.Array:
    """``Σ(y − ȳ)²`` per output over the rows (those of `mask`), ``ȳ`` their mean."""
    if mask is None:
        return jnp.sum((y - jnp.mean(y, axis=0, keepdims=True)) ** 2, axis=0)
    m = mask[:, None]
    mean = jnp.sum(m * y, axis=0, keepdims=True) / jnp.sum(mask)
    return jnp.sum(m * (y - mean) ** 2, axis=0)


def regression_metrics(sse: Any, sae: Any, sst: Any, count: Any) -> dict[str, jax.Array]:
    """``{"r2", "rmse", "mae"}`` from `regression_sums` and `total_squares` over `count` rows."""
    sse, sst = jnp.asarray(sse), jnp.asarray(sst)
    elements = count * sse.shape[-1]
    exact = jnp.where(sse == 0, 1.0, 0.0).astype(sse.dtype)
    r2 = jnp.where(sst > 0, 1 - sse / jnp.where(sst > 0, sst, 1), exact)
    return {"r2": jnp.mean(r2, axis=-1), "rmse": jnp.sqrt(jnp.sum(sse, axis=-1) / elements),
            "mae": sae / elements}  # fmt: skip


def _regression_pair(outputs: Any, y: Any) -> tuple[jax.Array, jax.Array]:
    outputs, y = jnp.asarray(outputs), jnp.asarray(y)
    if outputs.ndim == 1:
        outputs = outputs[:, None]
    if y.ndim == 1:
        y = y[:, None]
    if outputs.ndim != 2 or outputs.shape != y.shape:
        raise ValueError(f"y must have the shape of outputs {outputs.shape}; got {y.shape}")
    return outputs, y.astype(outputs.dtype)


def r2(outputs: Any, y: Any) -> jax.Array:
    """The coefficient of determination (see the module's docstring), averaged over outputs.

    >>> r2(jnp.array([[1.0], [2.0], [3.0]]), jnp.array([[1.0], [2.0], [4.0]]))
    Array(0.78571427, dtype=float32)
    """
    outputs, y = _regression_pair(outputs, y)
    sums = regression_sums(outputs, y)
    return regression_metrics(sums["sse"], sums["sae"], total_squares(y), y.shape[0])["r2"]


def rmse(outputs: Any, y: Any) -> jax.Array:
    """The root of the mean squared error over every element.

    >>> rmse(jnp.array([[0.0], [2.0]]), jnp.array([[0.0], [0.0]]))
    Array(1.4142135, dtype=float32)
    """
    outputs, y = _regression_pair(outputs, y)
    return jnp.sqrt(jnp.mean((outputs - y) ** 2))


def mae(outputs: Any, y: Any) -> jax.Array:
    """The mean absolute error over every element.

    >>> mae(jnp.array([[0.0], [2.0]]), jnp.array([[1.0], [1.0]]))
    Array(1., dtype=float32)
    """
    outputs, y = _regression_pair(outputs, y)
    return jnp.mean(jnp.abs(outputs - y))


def weight_stats(params: Params) -> dict[str, jax.Array]:
    """Per layer: ``Σ|W|`` (``w_l1``), ``√ΣW²`` (``w_l2``), share of exact zeros (``w_zeros``)."""
    Ws = [p["W"] for p in params]
    return {
        "w_l1": jnp.stack([jnp.sum(jnp.abs(W)) for W in Ws]),
        "w_l2": jnp.stack([jnp.sqrt(jnp.sum(W * W)) for W in Ws]),
        "w_zeros": jnp.stack([jnp.mean((W == 0).astype(W.dtype)) for W in Ws]),
    }
