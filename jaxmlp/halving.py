"""Successive halving: train K models together, and at each rung keep the best 1/η of them.

The rungs are the epochs ``r, r·η, r·η², …`` below `epochs` (``r = min_epochs``). At a rung the
models still training are ranked by a monitored history field at that epoch (a model that
diverged ranks last and is dropped), the best ``max(1, ⌊m/η⌋)`` of the ``m`` go on, and the
others stop there. The survivors are compacted into a smaller `jaxmlp.fit_many` program
(``initial_epoch`` continues their shuffles and the optimizer states go with them), so a pruned
model costs nothing after its rung: each survivor's run equals, to float rounding, its run in
an unpruned program of all K models, and the models kept at each rung are those that run ranks
highest. (Float rounding differs between programs of different sizes; training that amplifies
it — loss spikes of a high learning rate in float32 — can then rank a later rung differently
from a replay of the unpruned run. In float64 the tests find the same models and parameters
to 1e-9.) Each program size compiles once; ``compact=False`` trains every model in one
program instead, the pruned ones frozen.
"""

from __future__ import annotations

from typing import Any, NamedTuple, cast

import jax
import numpy as np

from jaxmlp._checks import check_count, check_key
from jaxmlp._epochs import monitorable
from jaxmlp.early_stopping import EarlyStopping
from jaxmlp.ensemble import fit_many, take, take_reg
from jaxmlp.fit import FitResult
from jaxmlp.model import MLP, Params
from jaxmlp.optim import Optimizer, OptState
from jaxmlp.regularization import RegLike, per_layer


class HalvingResult(NamedTuple):
    """What `successive_halving` returns.

    Attributes:
      params: every model's final parameters, stacked: a survivor's after the last epoch, a
        pruned model's at its last rung (``take(result.params, result.survivors)``: the
        survivors').
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

    def model(self, k: int) -> FitResult:
        """Model `k`'s result as `jaxmlp.fit` returns it; a pruned model's stop reason says so."""
        params, opt_state = take((self.params, self.opt_state), k)
        runs = int(np.sum(~np.isnan(self.history["loss"][k])))
        history = {name: h[k, :runs] for name, h in self.history.items()}
        survived = k in self.survivors
        end = self.history["epoch"].shape[1] if survived else self.rungs[self.rung[k]]
        reason = None
        if runs < end:  # stopped before its rung (or the end): the loss became NaN or infinite
            reason = f"diverged at epoch {runs + 1}; kept its parameters after epoch {runs}"
        elif not survived:
            reason = (f"pruned by successive halving at rung {self.rung[k] + 1} (epoch {end}): "
                      f"score {self.scores[k, self.rung[k]]:.6g}")  # fmt: skip
        return FitResult(params, opt_state, history, reason)

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
                       rows: Any = None, validation_rows: Any = None, compact: bool = True,
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
      compact: True (default): the survivors of each rung continue in a smaller program, so a
        pruned model costs nothing, at the price of one compilation per program size (K,
        K/η, …). False: one program of K models throughout, the pruned ones frozen (stopped
        as by a callback): one compilation, but their share of every batched step is still
        computed. ``model_epochs`` counts trained epochs either way.
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
    validation = fit_kw.get("validation") is not None
    fields = monitorable(loss, validation)
    if monitor not in fields:  # checked before anything trains
        why = " (val_ fields need validation=...)" if monitor.startswith("val_") else ""
        raise ValueError(f"monitor must be a history field of this run{why}: one of "
                         f"{', '.join(fields)}; got {monitor!r}")  # fmt: skip
    maximize = EarlyStopping(monitor, mode).maximize()
    state = jax.vmap(opt.init)(params) if opt_state is None else opt_state
    key = jax.random.key(0) if key is None else key
    members = Members(params, state, per_layer(reg, net.n_layers), key, rows, validation_rows)
    K = int(np.shape(jax.tree.leaves(params)[0])[0])
    ranking = Ranking(rungs_of(min_epochs, eta, epochs), eta, maximize, monitor, K)
    run = _compacted if compact else _in_one_program
    members, history, model_epochs = run(net, opt, x, y, loss, members, ranking, epochs, fit_kw)
    return HalvingResult(members.params, members.opt_state, ranking.alive, ranking.rungs,
                         ranking.rung, ranking.scores, history, model_epochs)  # fmt: skip


class Ranking:
    """The rungs' bookkeeping: which models are alive, each model's rung and scores."""

    def __init__(self, rungs: tuple[int, ...], eta: int, maximize: bool, monitor: str, K: int):
        self.rungs, self.eta, self.maximize, self.monitor = rungs, eta, maximize, monitor
        self.alive, self.rung = np.arange(K), np.zeros(K, int)
        self.scores = np.full((K, len(rungs)), np.nan)

    def decide(self, i: int, history: dict[str, np.ndarray], row: int) -> None:
        """At rung `i`, rank the alive models by ``history[monitor][alive, row]`` and prune.

        `history` holds all K models (the pruned ones' rows NaN).
        """
        self.scores[self.alive, i] = history[self.monitor][self.alive, row]
        self.alive = self.alive[keep_best(self.scores[self.alive, i], self.eta, self.maximize)]
        self.rung[self.alive] = i + 1


def _compacted(net, opt, x, y, loss, members, ranking, epochs, fit_kw):
    """Train segment by segment, each rung's survivors in a program of their own."""
    history, model_epochs, done = None, 0, 0
    for i, stop in enumerate((*ranking.rungs, epochs)):
        alive = ranking.alive
        part = members.take(alive)
        result = fit_many(net, part.params, opt, x, y, loss=loss, reg=part.reg,
                          epochs=stop - done, initial_epoch=done, opt_state=part.opt_state,
                          key=part.key, rows=part.rows, validation_rows=part.validation_rows,
                          **fit_kw)  # fmt: skip
        history = _record(history, result.history, alive, done, epochs)
        members = members.put(alive, result.params, result.opt_state)
        model_epochs, done = model_epochs + int(np.sum(result.epochs_run)), stop
        if i < len(ranking.rungs):
            ranking.decide(i, history, stop - 1)
    return members, history, model_epochs


def _in_one_program(net, opt, x, y, loss, members, ranking, epochs, fit_kw):
    """Train all K in one program; a callback at each rung stops the pruned models."""
    K = len(ranking.alive)

    def at_rung(snapshot):
        if snapshot.epoch not in ranking.rungs:
            return None
        ranking.decide(ranking.rungs.index(snapshot.epoch), snapshot.history, snapshot.epoch - 1)
        return ~np.isin(np.arange(K), ranking.alive)

    every = ranking.rungs[0] if ranking.rungs else epochs
    result = fit_many(net, members.params, opt, x, y, loss=loss, reg=members.reg, epochs=epochs,
                      opt_state=members.opt_state, key=members.key, rows=members.rows,
                      validation_rows=members.validation_rows, callback=at_rung,
                      callback_every=every, **fit_kw)  # fmt: skip
    members = members._replace(params=result.params, opt_state=result.opt_state)
    return members, dict(result.history), int(np.sum(result.epochs_run))


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
        reg = take_reg(self.reg, idx)
        key = self.key if check_key(self.key) == () else self.key[idx]
        rows, vrows = ([lists[k] for k in idx] if lists is not None else None
                       for lists in (self.rows, self.validation_rows))  # fmt: skip
        # Any: `take` annotates its index as int; it indexes every leaf with an array as well
        params, state = take((self.params, self.opt_state), cast(Any, idx))
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
