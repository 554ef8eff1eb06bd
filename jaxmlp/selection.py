"""Cross-validation and bootstrap ensembles as members of one `jaxmlp.fit_many` program.

Each member of the program trains on its own rows of the data and validates on its own rows
(``fit_many(..., rows=, validation_rows=)``): the data is held once, the lists of rows are
padded to the longest and the padding masked, so folds of different sizes share one
compilation, and member k equals a separate `jaxmlp.fit` on its split.

- `fold_rows`: the k folds' training and held-out rows (stratified by class or not).
- `bootstrap_rows`: resamples with replacement and their out-of-bag rows.
- `cross_validate`: the folds × seeds × swept values in one program; the per-fold scores and
  their summary (`jaxmlp.stats`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from jaxmlp import stats
from jaxmlp._checks import check_count, check_key, check_net
from jaxmlp.early_stopping import EarlyStopping
from jaxmlp.ensemble import FitManyResult, fit_many, stack, take_reg
from jaxmlp.metrics import task_of
from jaxmlp.model import MLP, init_params
from jaxmlp.optim import Optimizer, set_hyperparams
from jaxmlp.regularization import FIELDS, RegLike, per_layer

Rows = tuple[tuple[np.ndarray, np.ndarray], ...]


def fold_rows(key: jax.Array, y: Any, folds: int = 5, stratify: bool = True) -> Rows:
    """The `folds` folds of ``len(y)`` rows: per fold, ``(training rows, held-out rows)``.

    The rows are shuffled with `key`; fold sizes differ by at most one. With `stratify` and
    class labels (integers ``(n,)`` or one-hot rows ``(n, classes)``), each class's rows are
    dealt in turn to the folds, so every fold holds each class's count divided by `folds`,
    rounded up or down (its proportions within one example). Float targets (a regression)
    are not stratified. The held-out rows of the folds partition ``range(n)``.
    """
    check_count("folds", folds, 2)
    y = np.asarray(y)
    n = y.shape[0] if y.ndim else 0
    if n < folds:
        raise ValueError(f"folds must be at most the number of rows, {n}; got {folds}")
    order = np.asarray(jax.random.permutation(key, n))
    labels = _labels(y) if stratify else None
    if labels is not None:  # class by class, in the shuffled order within each
        order = order[np.argsort(labels[order], kind="stable")]
    fold_of = np.empty(n, np.int64)
    fold_of[order] = np.arange(n) % folds
    every = np.arange(n)
    return tuple((every[fold_of != f], every[fold_of == f]) for f in range(folds))


def _labels(y: np.ndarray) -> np.ndarray | None:
    """Class labels of `y` (integers, or the argmax of one-hot rows), or None for a regression."""
    if y.ndim == 1 and np.issubdtype(y.dtype, np.integer):
        return y
    if y.ndim == 2 and y.shape[1] > 1 and np.all((y == 0) | (y == 1)):
        return np.argmax(y, axis=1)
    return None


def bootstrap_rows(key: jax.Array, n: int, members: int) -> Rows:
    """`members` bootstrap resamples of `n` rows: ``(rows drawn with replacement, out-of-bag)``.

    For ``fit_many(..., rows=[r for r, _ in b], validation=(x, y), validation_rows=[o for _, o
    in b])``: each member trains on its resample and validates on the rows it never drew (a
    resample that draws every row, rare for n > 5, has an empty out-of-bag set and is drawn
    again).
    """
    check_count("n", n, 2)
    check_count("members", members, 1)
    out = []
    for k in jax.random.split(key, members):
        while True:
            drawn = np.asarray(jax.random.randint(k, (n,), 0, n))
            oob = np.setdiff1d(np.arange(n), drawn)
            if oob.size:
                break
            k = jax.random.fold_in(k, 1)
        out.append((drawn, oob))
    return tuple(out)


class CVResult(NamedTuple):
    """What `cross_validate` returns; member ``(v·seeds + s)·folds + f`` is value v, seed s, fold f.

    Attributes:
      fit: the `jaxmlp.FitManyResult` of all members (``fit.model(m)``: member m alone).
      rows: per fold, ``(training rows, held-out rows)`` (`fold_rows`).
      value: ``(K,)`` each member's value index; ``seed`` and ``fold`` the same.
      scores: per history field, ``(values, seeds, folds)``: its validation value at the epoch
        whose parameters the member returns (the best epoch with early stopping and
        ``restore_best``, else the last it ran).
      epochs: ``(values, seeds, folds)`` that epoch.
    """

    fit: FitManyResult
    rows: Rows
    value: np.ndarray
    seed: np.ndarray
    fold: np.ndarray
    scores: dict[str, np.ndarray]
    epochs: np.ndarray

    def summary(self, field: str = "val_loss", confidence: float = 0.95) -> list[stats.Summary]:
        """Per swept value, `jaxmlp.stats.summary` of `field` over its seeds × folds."""
        if field not in self.scores:
            raise ValueError(f"field must be one of {', '.join(self.scores)}; got {field!r}")
        return [stats.summary(v.reshape(-1), confidence) for v in self.scores[field]]


def cross_validate(net: MLP, key: jax.Array, opt: Optimizer, x: Any, y: Any, *, loss: str,
                   folds: int = 5, stratify: bool = True, reg: RegLike = None, epochs: int = 1,
                   batch_size: int | None = None, seeds: int = 1, init: str = "he",
                   hyperparams: dict[str, Sequence[float]] | None = None,
                   early_stopping: EarlyStopping | None = None,
                   **fit_kw: Any) -> CVResult:  # fmt: skip
    """k-fold cross-validation, with seeds and swept values, as one `jaxmlp.fit_many` program.

    Member ``(v, s, f)`` starts from ``init_params(seed key s, net, init)`` with the shuffles of
    seed s, takes value v of the swept settings, trains on fold f's training rows and
    validates on its held-out rows; it equals ``fit(net, params_s, opt, x[train_f],
    y[train_f], validation=(x[held_f], y[held_f]), key=shuffle key s, ...)``.

    Args:
      net: the architecture.
      key: the folds, initial weights and shuffles derive from it (``jax.random.split(key, 3)``:
        folds; init keys and shuffle keys, one per seed).
      opt: the optimizer.
      x: inputs ``(n, net.in_features)``.
      y: targets (class labels are stratified).
      loss: the data loss's name.
      folds: k, at least 2.
      stratify: keep each class's share in every fold (classification targets only).
      reg: a `Regularization` (or one per layer); a strength may be an array of V values, one
        per swept value.
      epochs: epochs per member.
      batch_size: as for `jaxmlp.fit`.
      seeds: initial weights and shuffles per fold.
      init: the weight initialisation scheme.
      hyperparams: optimizer hyperparameters to sweep, name → V values (``{"learning_rate":
        [1e-3, 1e-2]}``), set with `jaxmlp.optim.set_hyperparams`.
      early_stopping: a `jaxmlp.EarlyStopping`, applied to every member on its own.
      **fit_kw: passed to `jaxmlp.fit_many` (``grads``, ``shuffle``, ``progress``, ``mesh``, ...).

    Returns:
      A `CVResult`.
    """
    check_net(net)
    check_key(key)
    check_count("seeds", seeds, 1)
    check_count("epochs", epochs, 1)
    fold_key, init_key, shuffle_key = jax.random.split(key, 3)
    split = fold_rows(fold_key, y, folds, stratify and task_of(loss) == "classification")
    regs = per_layer(reg, net.n_layers)
    V = _values(regs, hyperparams)
    value, seed, fold = (a.reshape(-1) for a in np.indices((V, seeds, folds)))
    given = np.dtype(getattr(x, "dtype", None) or np.asarray(x).dtype)
    dtype = given if np.issubdtype(given, np.floating) else jnp.result_type(float)
    keys = jax.random.split(init_key, seeds)
    starts = [init_params(k, net, init, dtype=dtype) for k in keys]
    params = stack([starts[s] for s in seed])
    states = [opt.init(starts[s]) for s in seed]
    for name, values in (hyperparams or {}).items():
        states = [set_hyperparams(st, **{name: values[v]}) for st, v in zip(states, value)]
    regs = take_reg(regs, value)  # each member's swept value
    state = stack(states)
    result = fit_many(net, params, opt, x, y, loss=loss, reg=regs, epochs=epochs,
                      batch_size=batch_size, validation=(x, y), opt_state=state,
                      key=jax.random.split(shuffle_key, seeds)[seed], early_stopping=early_stopping,
                      rows=[split[f][0] for f in fold], validation_rows=[split[f][1] for f in fold],
                      **fit_kw)  # fmt: skip
    scores, chosen = _scores(result, early_stopping, (V, seeds, folds))
    return CVResult(result, split, value, seed, fold, scores, chosen)


def _values(regs: tuple, hyperparams: dict | None) -> int:
    """V, the number of swept values (1 when none); raises unless every sweep has V."""
    lengths = {f"reg (layer {l}) {f}": np.size(getattr(r, f)) for l, r in enumerate(regs)
               for f in FIELDS if np.ndim(getattr(r, f))}  # fmt: skip
    for name, values in (hyperparams or {}).items():
        if isinstance(values, (str, dict)) or not hasattr(values, "__len__") or not len(values):
            raise ValueError(f"hyperparams[{name!r}] must be a list of values; got {values!r:.60}")
        lengths[f"hyperparams[{name!r}]"] = len(values)
    if len(set(lengths.values())) > 1:
        detail = ", ".join(f"{k}: {v}" for k, v in lengths.items())
        raise ValueError(f"every swept setting must have the same number of values; got {detail}")
    return next(iter(lengths.values()), 1)


def _scores(result: FitManyResult, early: EarlyStopping | None, shape: tuple) -> tuple:
    """Each member's validation metrics at the epoch of its returned parameters, and that epoch."""
    last = np.asarray(result.epochs_run) - 1
    row = last
    if early is not None and early.restore_best:
        best = np.asarray(result.best_epochs) - 1
        row = np.where(best >= 0, best, last)
    members = np.arange(len(row))
    epoch0 = result.history["epoch"][:, 0] - 1  # epochs before this call (initial_epoch)
    scores = {k: v[members, np.maximum(row, 0)].reshape(shape) for k, v in result.history.items()
              if k.startswith("val_")}  # fmt: skip
    return scores, (epoch0 + row + 1).reshape(shape)
