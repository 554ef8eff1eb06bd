"""Early stopping and the best epoch's state, decided inside the compiled epoch loop, per model.

``jaxmlp.fit(..., early_stopping=jaxmlp.EarlyStopping(...))`` and the same on `jaxmlp.fit_many`.
The rule is Keras 3's ``EarlyStopping``, on the epochs numbered as in the history (from 1,
counting ``initial_epoch``):

- an epoch *counts* when its number is greater than ``start_from_epoch`` (the first
  ``start_from_epoch`` epochs are a warm-up);
- a counted epoch *improves* when its monitored value beats the best so far by more than
  ``min_delta``: ``value < best − min_delta`` for a minimized field, ``value > best + min_delta``
  for a maximized one (the first counted epoch always improves unless its value is NaN);
- every counted epoch adds 1 to a wait count, and an improvement sets it back to 0; training
  stops after a counted epoch that does not improve when the wait count has reached
  ``patience`` (and the epoch is not the first);
- the first counted epoch is the best one until another improves.

One difference from Keras: with ``restore_best`` the result holds the best epoch's parameters
and optimizer state whether or not training stopped early (Keras restores them only when it
stopped). The state starts afresh at each call of `fit`, unless it is passed back: a run
continued with ``initial_epoch=E`` and ``early_state=`` the state after epoch E
(`jaxmlp.Snapshot.early_state`, ``FitResult.early_state``) decides exactly as one that never
stopped; without it, patience counts from the restart.

`watch` is the pure transition the compiled loop applies after every epoch; `Watch` is its
state, one entry per model.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from jaxmlp._checks import check_choice, check_count

MODES = ("auto", "min", "max")
MAXIMIZED = ("accuracy", "r2")  # mode "auto" maximizes a field whose name holds one of these


class EarlyStopping(NamedTuple):
    """Stop a model when its monitored history field stops improving; keep its best epoch.

    Attributes:
      monitor: a history field: ``"val_loss"``, ``"val_accuracy"``, ``"loss"``, ``"val_r2"``, …
      mode: ``"min"``, ``"max"``, or ``"auto"``: max for accuracies and R², else min.
      min_delta: an improvement must beat the best by more than this (``>= 0``).
      patience: counted epochs without improvement after which training stops (``>= 0``).
      start_from_epoch: the number of first epochs that do not count (a warm-up).
      restore_best: return the best epoch's parameters and optimizer state (always, not only
        when training stopped early).
    """

    monitor: str = "val_loss"
    mode: str = "auto"
    min_delta: float = 0.0
    patience: int = 10
    start_from_epoch: int = 0
    restore_best: bool = True

    def maximize(self) -> bool:
        """Whether the monitored field is maximized (mode ``"max"``, or ``"auto"`` for accuracy)."""
        if self.mode == "auto":
            return any(word in self.monitor for word in MAXIMIZED)
        return self.mode == "max"

    def check(self, fields: tuple[str, ...]) -> Watching:
        """Raise unless the settings are valid and `monitor` is one of `fields`; the static part."""
        check_choice("early_stopping.mode", self.mode, MODES)
        if self.monitor not in fields:
            why = " (val_ fields need validation=...)" if self.monitor.startswith("val_") else ""
            raise ValueError(
                f"early_stopping.monitor must be a history field of this run{why}: one of "
                f"{', '.join(fields)}; got {self.monitor!r}"
            )
        delta = self.min_delta
        if isinstance(delta, bool) or not isinstance(delta, (int, float, np.floating)):
            raise TypeError(f"early_stopping.min_delta must be a number; got {delta!r}")
        if not (np.isfinite(delta) and delta >= 0):
            raise ValueError(f"early_stopping.min_delta must be finite and >= 0; got {delta}")
        check_count("early_stopping.patience", self.patience, 0)
        check_count("early_stopping.start_from_epoch", self.start_from_epoch, 0)
        if not isinstance(self.restore_best, (bool, np.bool_)):
            raise TypeError(
                f"early_stopping.restore_best must be a bool; got {self.restore_best!r}"
            )
        return Watching(self.monitor, self.maximize(), bool(self.restore_best))

    def numbers(self, dtype: Any) -> tuple[jax.Array, jax.Array, jax.Array]:
        """``(min_delta, patience, start_from_epoch)`` as arrays: data, not part of the program."""
        # Cast on the host, then one transfer (a jnp cast compiles a program per dtype).
        return tuple(jax.device_put([np.asarray(self.min_delta, dtype),
                                     np.asarray(self.patience, np.int32),
                                     np.asarray(self.start_from_epoch, np.int32)]))  # fmt: skip


class Watching(NamedTuple):
    """The static part of an `EarlyStopping`, part of the compiled program's cache key."""

    monitor: str
    maximize: bool
    restore_best: bool


class Watch(NamedTuple):
    """Early stopping's state, with a leading models axis under `jaxmlp.fit_many`.

    ``best`` is the best value so far, negated for a maximized field (so lower is better; +inf
    before any); ``best_epoch`` the best epoch (0: none yet); ``wait`` the counted epochs since
    the last improvement; ``stopped`` whether it stopped the model; ``params`` and ``opt_state``
    the best epoch's (None without ``restore_best``).
    """

    best: jax.Array
    best_epoch: jax.Array
    wait: jax.Array
    stopped: jax.Array
    params: Any
    opt_state: Any


def start(watching: Watching, params: Any, opt_state: Any, shape: tuple, dtype: Any) -> Watch:
    """The state before any epoch: for one model (``shape ()``) or K (``(K,)``)."""
    keep = watching.restore_best
    # From the host and copies, in one transfer: eager jnp operations compile a program each.
    counters = [np.full(shape, np.inf, dtype), np.zeros(shape, np.int32),
                np.zeros(shape, np.int32), np.zeros(shape, bool)]  # fmt: skip
    best = (params, opt_state) if keep else (None, None)
    return Watch(*jax.device_put((*counters, *best), may_alias=False))


def check_state(state: Any, new: Watch) -> Watch:
    """`state` (a `Watch` from a `Snapshot` or a checkpoint) as arrays, if it has `new`'s form.

    The arrays are copies: the run donates its early stopping state to the compiled program, and
    the caller's `state` must stay valid (to resume from it again). Raises ValueError naming the
    first field whose structure, shape or dtype differs (another net, number of models,
    ``restore_best`` or float precision).
    """
    if not isinstance(state, Watch):
        raise TypeError(
            f"early_state must be a Watch (Snapshot.early_state); got {type(state).__name__}"
        )
    for name, a, b in zip(Watch._fields, state, new):
        # Any: jaxlib ships no stub for PyTreeDef, so mypy cannot compare two of them
        a_struct: Any = jax.tree.structure(a)
        if a_struct != jax.tree.structure(b):
            raise ValueError(
                f"early_state.{name} does not match this run (restore_best, net or models differ)"
            )
        for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)):
            dtype = x.dtype if hasattr(x, "dtype") else np.asarray(x).dtype
            if np.shape(x) != np.shape(y) or dtype != y.dtype:
                raise ValueError(
                    f"early_state.{name} has arrays of shape {np.shape(x)} and dtype "
                    f"{dtype}; this run needs {np.shape(y)} {y.dtype}"
                )
    # Host values cast on the host, then one transfer (eager casts compile a program each).
    host = jax.tree.map(lambda x, y: x if isinstance(x, jax.Array) else np.asarray(x, y.dtype),
                        state, new)  # fmt: skip
    return jax.device_put(host, may_alias=False)


def watch(watching: Watching, w: Watch, value: jax.Array, epoch: jax.Array, live: jax.Array,
          numbers: tuple) -> tuple[Watch, jax.Array, jax.Array]:  # fmt: skip
    """One epoch's transition: the new state, where the state is the best, and what stops.

    Returns ``(watch, best, stop)``: ``best`` marks the models whose state after this epoch is
    now the best one, ``stop`` those early stopping stops. The returned state's ``params`` and
    ``opt_state`` are the old ones: the caller replaces them by the epoch's where ``best``
    holds (with ``restore_best``).

    Args:
      watching: the static settings.
      w: the state before the epoch.
      value: the monitored field of the epoch's history row (``()`` or ``(K,)``).
      epoch: the epoch's number, from 1.
      live: which models ran the epoch (and stayed finite).
      numbers: ``EarlyStopping.numbers``.
    """
    min_delta, patience, start_from = numbers
    score = -value if watching.maximize else value
    counted = live & (epoch > start_from)
    better = counted & (score + min_delta.astype(score.dtype) < w.best)  # NaN never improves
    take = better | (counted & (w.best_epoch == 0))  # the first counted epoch is the best so far
    wait = jnp.where(better, 0, w.wait + counted.astype(w.wait.dtype))
    stop = counted & ~better & (wait >= patience) & (epoch > 1)
    new = Watch(jnp.where(better, score, w.best), jnp.where(take, epoch, w.best_epoch), wait,
                w.stopped | stop, w.params, w.opt_state)  # fmt: skip
    return new, take, stop
