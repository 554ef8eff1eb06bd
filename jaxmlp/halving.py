"""Successive halving: train K models together, and at each rung keep the best 1/η of them.

The rungs are the epochs ``r, r·η, r·η², …`` below `epochs` (``r = min_epochs``). At a rung the
models still training are ranked by a monitored history field at that epoch (a model that
diverged ranks last and is dropped), the best ``max(1, ⌊m/η⌋)`` of the ``m`` go on, and the
others stop there. The survivors are compacted into a smaller `jaxmlp.fit_many` program
(``initial_epoch`` continues their shuffles and the optimizer states go with them), so a pruned
model costs nothing after its rung: each survivor's run equals its run in an unpruned program
of all K models, and the models kept at each rung are those that run ranks highest.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from jaxmlp._checks import check_count, check_key
from jaxmlp.early_stopping import EarlyStopping
from jaxmlp.ensemble import fit_many, take
from jaxmlp.model import MLP, Params
from jaxmlp.optim import Optimizer, OptState
from jaxmlp.regularization import FIELDS, RegLike, Regularization, per_layer


class HalvingResult(NamedTuple):
    """What `successive_halving` returns.

    Attributes:
      params: the survivors' final parameters, stacked (in the order of `survivors`).
      opt_state: their optimizer states.
      survivors: the indices (of the K models) that trained every epoch.
      rungs: the epochs at which the models were ranked.
      rung: ``(K,)`` the number of rungs each model passed (``len(rungs)`` for a survivor).
      scores: ``(K, len(rungs))`` the monitored value at each rung a model reached (NaN after).
      history: the fields of `jaxmlp.fit_many`'s history, ``(K, epochs, ...)``, NaN after a
        model's last epoch.
      model_epochs: epochs trained, summed over the models.
    """

    params: Params
    opt_state: OptState
    survivors: np.ndarray
    rungs: tuple[int, ...]
    rung: np.ndarray
    scores: np.ndarray
    history: dict[str, np.ndarray]
    model_epochs: int

    def saved(self) -> float:
        """The share of model-epochs pruning saved against training all K for every epoch."""
        K, epochs = self.rung.shape[0], self.history["epoch"].shape[1]
        return 1 - self.model_epochs / (K * epochs)


def rungs_of(min_epochs: int, eta: int, epochs: int) -> tuple[int, ...]:
    """The rung epochs ``r, r·η, r·η², …`` below `epochs`."""
    out, r = [], min_epochs
    while r < epochs:
        out.append(r)
        r *= eta
    return tuple(out)


def keep_best(scores: np.ndarray, eta: int, maximize: bool) -> np.ndarray:
    """Indices of the best ``max(1, ⌊m/η⌋)`` of `scores` (NaN last, ties by index), in order."""
    key = -scores if maximize else scores
    finite = np.flatnonzero(np.isfinite(key))
    ranked = finite[np.argsort(key[finite], kind="stable")]
    return np.sort(ranked[: max(1, len(scores) // eta)])


def successive_halving(net: MLP, params: Params, opt: Optimizer, x: Any, y: Any, *, loss: str,
                       eta: int = 3, min_epochs: int = 1, epochs: int = 1,
                       monitor: str = "val_loss", mode: str = "auto", reg: RegLike = None,
                       opt_state: OptState | None = None, key: jax.Array | None = None,
                       rows: Any = None, validation_rows: Any = None,
                       **fit_kw: Any) -> HalvingResult:  # fmt: skip
    """Train K stacked models with successive halving (see the module's docstring).

    Args:
      net: the architecture.
      params: K stacked initial parameters (`jaxmlp.ensemble.stack`).
      opt: the optimizer.
      x: inputs, shared.
      y: targets, shared.
      loss: the data loss's name.
      reg: as for `jaxmlp.fit_many`: strengths shared or one per model.
      opt_state: stacked optimizer states (per-model hyperparameters), default ``opt.init``.
      key: one shuffle key, or K.
      rows: K index arrays, each model's training rows, or None.
      validation_rows: K index arrays into the validation data, or None.
      eta: η >= 2, the share ``1/η`` kept at each rung.
      min_epochs: r >= 1, the first rung.
      epochs: the survivors' epochs in all.
      monitor: the history field that ranks the models (``"val_loss"`` needs ``validation``).
      mode: ``"min"``, ``"max"`` or ``"auto"`` (max for accuracies and R²), as in
        `jaxmlp.EarlyStopping`.
      **fit_kw: more arguments of `jaxmlp.fit_many` (``batch_size``, ``validation``,
        ``grads``, ``shuffle``, ``progress``); not ``early_stopping`` nor ``callback``.

    Returns:
      A `HalvingResult`.
    """
    check_count("eta", eta, 2)
    check_count("min_epochs", min_epochs, 1)
    check_count("epochs", epochs, 1)
    for name in ("early_stopping", "callback", "initial_epoch"):
        if name in fit_kw:
            raise TypeError(f"successive_halving takes no {name}: the rungs decide the stops")
    maximize = EarlyStopping(monitor, mode).maximize()
    state = jax.vmap(opt.init)(params) if opt_state is None else opt_state
    key = jax.random.key(0) if key is None else key
    K = int(np.shape(jax.tree.leaves(params)[0])[0])
    members = Members(params, state, per_layer(reg, net.n_layers), key, rows, validation_rows)
    rungs, alive, done = rungs_of(min_epochs, eta, epochs), np.arange(K), 0
    scores, rung, history, model_epochs = (
        np.full((K, len(rungs)), np.nan),
        np.zeros(K, int),
        None,
        0,
    )
    for i, stop in enumerate((*rungs, epochs)):
        part = members.take(alive)
        result = fit_many(net, part.params, opt, x, y, loss=loss, reg=part.reg,
                          epochs=stop - done, initial_epoch=done, opt_state=part.opt_state,
                          key=part.key, rows=part.rows, validation_rows=part.validation_rows,
                          **fit_kw)  # fmt: skip
        history = _record(history, result.history, alive, done, epochs)
        members = members.put(alive, result.params, result.opt_state)
        model_epochs, done = model_epochs + int(np.sum(result.epochs_run)), stop
        if i < len(rungs):
            if monitor not in result.history:
                fields = ", ".join(k for k in result.history if k != "epoch")
                raise ValueError(
                    f"monitor must be a history field, one of {fields}; got {monitor!r}"
                )
            scores[alive, i] = result.history[monitor][:, -1]
            alive = alive[keep_best(scores[alive, i], eta, maximize)]
            rung[alive] = i + 1
    final = members.take(alive)
    return HalvingResult(final.params, final.opt_state, alive, rungs, rung, scores, history,
                         model_epochs)  # fmt: skip


class Members(NamedTuple):
    """The K models' per-model arguments of `jaxmlp.fit_many`; `take` selects some of them."""

    params: Params
    opt_state: OptState
    reg: tuple
    key: jax.Array
    rows: Any
    validation_rows: Any

    def take(self, idx: np.ndarray) -> Members:
        """The models `idx`, as `jaxmlp.fit_many` takes them."""

        def pick(a: Any) -> Any:
            return a if np.ndim(a) == 0 else jnp.asarray(a)[idx]

        reg = tuple(Regularization(*[pick(getattr(r, f)) for f in FIELDS]) for r in self.reg)
        key = self.key if check_key(self.key) == () else self.key[idx]
        rows, vrows = ([lists[k] for k in idx] if lists is not None else None
                       for lists in (self.rows, self.validation_rows))  # fmt: skip
        params, state = take((self.params, self.opt_state), idx)
        return Members(params, state, reg, key, rows, vrows)

    def put(self, idx: np.ndarray, params: Params, opt_state: OptState) -> Members:
        """These members with the models `idx` given new parameters and optimizer states."""

        def put(full: jax.Array, part: jax.Array) -> jax.Array:
            return full.at[idx].set(part)

        new = jax.tree.map(put, (self.params, self.opt_state), (params, opt_state))
        return self._replace(params=new[0], opt_state=new[1])


def _record(history: dict | None, part: dict, idx: np.ndarray, done: int, epochs: int) -> dict:
    """`history` (K models, every epoch; NaN where not run) with a segment's rows filled in."""
    if history is None:  # the first segment has every model
        K = len(idx)
        history = {k: np.full((K, epochs) + v.shape[2:], np.nan) for k, v in part.items()}
        history["epoch"] = np.tile(np.arange(1, epochs + 1), (K, 1))
    span = part["loss"].shape[1]
    for k, v in part.items():
        if k != "epoch":
            history[k][idx, done : done + span] = v
    return history
