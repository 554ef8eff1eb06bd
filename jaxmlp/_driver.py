"""The host side of `jaxmlp.fit` and `jaxmlp.fit_many`: one driver for one model or for K.

A private module with public names. `fit` and `fit_many` validate their own arguments (with
`check_data` for what they share), build the `jaxmlp._epochs.Spec` of their compiled program,
then call `train`, which

- calls the compiled program in chunks of epochs, each sized to last about a quarter of a second
  (one epoch at first) and to end where the callback is due, so a progress bar stays live
  without paying Python's dispatch per step;
- copies each chunk's history rows into the run's history, on the host;
- calls the callback every ``callback_every`` epochs with a `Snapshot`, and stops the models it
  asks to stop;
- ends when every epoch ran or no model is alive: a stopped or diverged model costs no more
  calls of the program.
"""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Callable
from types import FrameType
from typing import Any, NamedTuple

import jax
import numpy as np

from jaxmlp import early_stopping
from jaxmlp._checks import check_choice, check_count, check_counts, check_problem
from jaxmlp._epochs import (
    MAX_EPOCHS_PER_CALL,
    ORDER,
    Spec,
    monitorable,
    program,
    select,
    unpack_rows,
)
from jaxmlp.early_stopping import EarlyStopping, Watch
from jaxmlp.model import MLP, Params
from jaxmlp.optim import OptState
from jaxmlp.regularization import RegLike, per_layer
from jaxmlp.train import GRADS

TARGET_SECONDS_PER_CALL = 0.25


class Snapshot(NamedTuple):
    """What a training callback receives: ``fit(..., callback=fn, callback_every=E)``.

    The callback is called on the host after every epoch whose number is a multiple of E. It
    returns None or False to go on, True to stop; under `jaxmlp.fit_many`, also an array of K
    bools to stop those models (they keep their state; the others go on).

    Attributes:
      epoch: the last epoch run, counted from 1 and including ``initial_epoch``.
      params: the parameters after it (a copy, safe to keep).
      opt_state: the optimizer state that goes with them (a copy).
      history: the history so far, in the form of the result's (read-only views).
      running: whether each model is still training: True for `fit`, ``(K,)`` for `fit_many`.
      early_state: with early stopping, its state after this epoch (a copy; pass it back as
        ``fit(..., early_state=...)`` with ``initial_epoch=epoch`` to resume exactly), else None.
    """

    epoch: int
    params: Params
    opt_state: OptState
    history: dict[str, np.ndarray]
    running: np.ndarray
    early_state: Watch | None = None


Callback = Callable[[Snapshot], Any]


class Outcome(NamedTuple):
    """What `train` returns: the final state and, per model, how its run ended."""

    params: Params
    opt_state: OptState
    history: dict[str, np.ndarray]
    epochs_done: int  # epochs in which any model ran: the history's rows
    alive: np.ndarray  # () or (K,): still training when the run ended
    runs: np.ndarray  # epochs each model completed
    stopped: np.ndarray  # stopped by the callback (not diverged)
    interrupted: bool  # ended early by SIGINT (Ctrl-C): the models alive then are still alive
    best_epoch: np.ndarray | None  # early stopping's best epoch per model (0: none), or None
    early_stopped: np.ndarray  # stopped by early stopping
    early_state: Watch | None  # early stopping's state at the end (to resume it), or None
    last_state: tuple | None  # with restore_best: the last epoch's (params, opt_state)


def check_data(net: MLP, x, y, validation, *, loss, reg: RegLike, epochs, initial_epoch,
               batch_size, dtype):  # fmt: skip
    """Validate what `fit` and `fit_many` share, once, outside the compiled loop.

    Returns ``(x, y, x_val, y_val, batch_size, regs)``: the data as arrays in `dtype` (the
    parameters'; labels as int32), the batch size resolved (``n`` for None), one
    `Regularization` per layer; without validation data, a row of zeros stands in (its
    results are not recorded).
    """
    x, y, _ = check_problem(net, x, y, loss, dtype=dtype)
    regs = per_layer(reg, net.n_layers)
    batch_size = check_counts(epochs, initial_epoch, batch_size, x.shape[0])
    if validation is None:  # zeros from the host (the program's call copies them; slicing a
        # device array would compile a program per shape)
        xv, yv = (np.zeros((1,) + a.shape[1:], a.dtype) for a in (x, y))
        return x, y, xv, yv, batch_size, regs
    if not isinstance(validation, (tuple, list)) or len(validation) != 2:
        raise TypeError("validation must be a pair (x_val, y_val)")
    xv, yv = validation
    xv, yv, _ = check_problem(net, xv, yv, loss, dtype=dtype, what="validation")
    return x, y, xv, yv, batch_size, regs


def own_copies(params: Any, state: Any, *, made: bool) -> tuple[Any, Any]:
    """Copies of `params` and `state` for the program, which donates them.

    The caller's arrays must stay valid; a state the run `made` itself (``opt.init``) is its own.
    """
    if made:
        return jax.device_put(params, may_alias=False), state
    return jax.device_put((params, state), may_alias=False)


def check_options(grads: Any, callback: Any, callback_every: Any) -> None:
    """Raise unless `grads` names a gradient source and `callback` and `callback_every` fit.

    `callback` must be None or a function of a `Snapshot`, `callback_every` a positive integer.
    """
    check_choice("grads", grads, GRADS)
    if callback is not None and not callable(callback):
        raise TypeError(f"callback must be a function of a Snapshot; got {type(callback).__name__}")
    check_count("callback_every", callback_every, 1)


def early_stopping_inputs(spec: Spec, early: Any, params: Any, state: Any, shape: tuple,
                          dtype: Any, resume: Watch | None = None) -> tuple:  # fmt: skip
    """`spec` with `early`'s static part, and early stopping's initial state and settings.

    Raises unless `early` is None or a valid `EarlyStopping` whose monitor is a field of the
    run's history (one number per epoch: not the per-layer weight statistics), and `resume`
    None or a state of the same form as a new one (`Snapshot.early_state`).
    """
    if early is None:
        if resume is not None:
            raise ValueError("early_state continues early stopping: pass early_stopping as well")
        return spec, None, None
    if not isinstance(early, EarlyStopping):
        raise TypeError(
            f"early_stopping must be a jaxmlp.EarlyStopping or None; got {type(early).__name__}"
        )
    watching = early.check(monitorable(spec.loss, spec.has_val))
    watch = early_stopping.start(watching, params, state, shape, dtype)
    if resume is not None:
        watch = early_stopping.check_state(resume, watch)
    return spec._replace(early=watching), watch, early.numbers(dtype)


def train(spec: Spec, inputs: tuple, *, epochs: int, initial_epoch: int, progress: bool,
          callback: Callback | None = None, every: int = 1) -> Outcome:  # fmt: skip
    """Run `spec`'s compiled program for `epochs` epochs, or until no model is alive.

    Args:
      spec: the program's `Spec`.
      inputs: ``(params, state, buffer, args, alive, watch, numbers)`` as the program takes
        them, placed (and `params` and `state` copied: the program donates them); `watch` and
        `numbers` are early stopping's state and settings, or None.
      epochs: epochs to run.
      initial_epoch: epochs run before (the numbering, and so the shuffles, continue).
      progress: show a progress bar.
      callback: called with a `Snapshot` after every epoch whose number is a multiple of
        `every`, or None.
      every: the callback's period in epochs.
    """
    loop = Loop(spec, inputs, epochs, initial_epoch)
    bar = _progress_bar(epochs, initial_epoch) if progress and epochs else None
    per_call, interrupt = 1, Interrupt()
    try:
        with interrupt:
            while loop.done < epochs and loop.live.any() and not interrupt.seen:
                count = min(per_call, epochs - loop.done, MAX_EPOCHS_PER_CALL)
                if callback is not None:
                    count = min(count, every - loop.epoch % every)
                start = time.perf_counter()
                ran = loop.advance(count)
                if bar is not None:
                    bar.update(ran)
                    bar.set_postfix(_postfix(loop.last_row()), refresh=False)
                if callback is not None and loop.live.any() and loop.epoch % every == 0:
                    loop.stop(_stops(callback(loop.snapshot()), loop.live))
                elapsed = time.perf_counter() - start
                per_call = max(1, int(count * TARGET_SECONDS_PER_CALL / max(elapsed, 1e-9)))
    finally:
        if bar is not None:
            bar.close()
    return loop.outcome(interrupt.seen and loop.done < epochs and bool(loop.live.any()))


class Interrupt:
    """SIGINT (Ctrl-C) while training ends the run after the current call of the program.

    A context manager: inside it, the first SIGINT is noted (`seen`) and the previous handler
    comes back, so a second one interrupts at once (KeyboardInterrupt). Only in the main thread,
    where Python delivers signals; elsewhere it does nothing.
    """

    previous: Callable[[int, FrameType | None], Any] | int | None  # the handler to restore

    def __init__(self) -> None:
        self.seen, self.installed, self.previous = False, False, None

    def __enter__(self) -> Interrupt:
        if threading.current_thread() is threading.main_thread():
            previous = signal.signal(signal.SIGINT, self._note)
            # (None: a handler not set from Python; Python's own raises KeyboardInterrupt.)
            self.installed, self.previous = True, previous or signal.default_int_handler
        return self

    def _note(self, signum: int, frame: Any) -> None:
        self.seen = True
        signal.signal(signal.SIGINT, self.previous)

    def __exit__(self, *exc: Any) -> None:
        if self.installed and not self.seen:
            signal.signal(signal.SIGINT, self.previous)


class Loop:
    """The host's side of a run: the compiled program's carry, and the history rows so far."""

    def __init__(self, spec: Spec, inputs: tuple, epochs: int, initial_epoch: int) -> None:
        self.run, self.many = program(spec), spec.models is not None
        # Epochs run before this call and by it (the history's rows).
        self.initial_epoch, self.done = initial_epoch, 0
        self.params, self.state, self.buffers, self.args, self.alive, self.watch, self.numbers = (
            inputs
        )
        # Host arrays until the first call copies them (a transfer each costs tens of µs).
        self.runs = np.zeros(np.shape(self.alive), np.int32)
        if self.placed:  # placed on a mesh: `runs` goes there too, or calls recompile
            self.runs = jax.device_put(self.runs, self.alive.sharding)
        self.spec = spec
        empty = unpack_rows(spec, np.full((epochs,) + self.buffers.shape[1:], np.nan,
                                          self.buffers.dtype))  # fmt: skip
        self.rows = {k: v.copy() for k, v in empty.items()}
        self.live, self.stopped = np.asarray(self.alive), np.zeros(np.shape(self.alive), bool)

    @property
    def placed(self) -> bool:
        """Whether `alive` is placed on a mesh (committed): the carry's new arrays must follow."""
        return isinstance(self.alive, jax.Array) and self.alive.committed

    @property
    def epoch(self) -> int:
        """The last epoch run, counting ``initial_epoch``."""
        return self.initial_epoch + self.done

    def advance(self, count: int) -> int:
        """Call the program for up to `count` epochs; record their rows; return how many ran."""
        first, n = np.int32(self.epoch), np.int32(count)
        carry = (self.params, self.state, self.alive, self.runs, self.buffers, self.watch)
        carry, ran = self.run(carry, first, n, self.numbers, *self.args)
        self.params, self.state, self.alive, self.runs, self.buffers, self.watch = carry
        ran, host = int(ran), unpack_rows(self.spec, jax.device_get(self.buffers))
        for k, v in self.rows.items():
            v[self.done : self.done + ran] = host[k][:ran]
        self.done, self.live = self.done + ran, np.asarray(self.alive)
        return ran

    def last_row(self) -> dict[str, np.ndarray]:
        """The last epoch's history row (per model for K models)."""
        return {k: v[self.done - 1] for k, v in self.rows.items()}

    def history(self, read_only: bool = False) -> dict[str, np.ndarray]:
        """The history so far in the result's form (views of the rows, read-only when `read_only`).

        ``epoch`` first, then the fields in `ORDER`; for K models, the models axis first.
        """
        rows = {k: self.rows[k][: self.done] for k in ORDER if k in self.rows}
        if read_only:
            for v in rows.values():  # fresh views of the rows: lock them, not the rows
                v.flags.writeable = False
        epoch = np.arange(self.initial_epoch + 1, self.epoch + 1)
        if not self.many:
            return {"epoch": epoch, **rows}
        fields = {k: np.moveaxis(v, 0, 1) for k, v in rows.items()}
        return {"epoch": np.tile(epoch, (len(self.live), 1)), **fields}

    def snapshot(self) -> Snapshot:
        """What the callback sees: copies of the state, read-only views of the history."""
        # Copies (the run donates its buffers to the next call), made without a program.
        params, state, watch = jax.device_put((self.params, self.state, self.watch),
                                              may_alias=False)  # fmt: skip
        history, running = self.history(read_only=True), self.live.copy()
        return Snapshot(self.epoch, params, state, history, running, watch)

    def stop(self, stop: np.ndarray) -> None:
        """Freeze the models in `stop` (bools, one per model): the program skips them."""
        stop = stop & self.live
        if stop.any():
            self.stopped, self.live = self.stopped | stop, self.live & ~stop
            # Placed as the old one (committed only on a mesh), or the program compiles again.
            placed = self.placed
            self.alive = jax.device_put(self.live, self.alive.sharding) if placed else self.live

    def outcome(self, interrupted: bool = False) -> Outcome:
        """What `train` returns."""
        history, runs = self.history(), np.asarray(self.runs)
        params, state, w = self.params, self.state, self.watch
        best_epoch, early, last = None, np.zeros(np.shape(self.live), bool), None
        if w is not None:
            best_epoch, early = np.asarray(w.best_epoch), np.asarray(w.stopped)
            if w.params is not None:  # restore_best: the best epoch's state, where there is one
                last = (params, state)
                params, state = _choose(best_epoch > 0, (w.params, w.opt_state), (params, state))
        return Outcome(params, state, history, self.done, self.live, runs, self.stopped,
                       interrupted, best_epoch, early, w, last)  # fmt: skip


def _choose(take: np.ndarray, new: Any, old: Any) -> Any:
    """`select` for a choice known on the host: a compiled select only when the models differ.

    (Eagerly, `select` compiles a program per leaf shape: about 40 ms each in a first call.)
    `new` is copied: its arrays stay in early stopping's state, which the result also returns.
    """
    if not take.any():
        return old
    return jax.device_put(new, may_alias=False) if take.all() else _select(take, new, old)


_select = jax.jit(select)


def _stops(answer: Any, live: np.ndarray) -> np.ndarray:
    """The callback's answer as one bool per model: None or False go on, True stops all."""
    stop = np.asarray(False if answer is None else answer)
    if stop.dtype != np.bool_ or stop.shape not in ((), live.shape):
        many = f", or {live.size} bools (one per model)" if live.ndim else ""
        raise ValueError(f"callback must return None, True or False{many}; got {answer!r:.80}")
    return np.broadcast_to(stop, live.shape)


def _postfix(last: dict[str, np.ndarray]) -> dict[str, str]:
    """The progress bar's figures: the last epoch's, or for K models the best and how many run."""
    if np.ndim(last["loss"]) == 0:
        out = {"loss": f"{last['loss']:.4f}", "acc": f"{last['accuracy']:.3f}"}
        if "val_loss" in last:
            out.update(val_loss=f"{last['val_loss']:.4f}", val_acc=f"{last['val_accuracy']:.3f}")
        return out
    alive = np.isfinite(last["loss"])
    out = {}
    for field, name in (("loss", "best_loss"), ("val_loss", "best_val_loss")):
        if field in last:
            out[name] = f"{np.nanmin(last[field]):.4f}" if alive.any() else "nan"
    out["running"] = f"{int(alive.sum())}/{alive.size}"
    return out


def _progress_bar(epochs: int, initial_epoch: int):
    from tqdm.auto import tqdm

    desc = f"epochs {initial_epoch + 1}–{initial_epoch + epochs}"
    return tqdm(total=epochs, desc=desc, unit="epoch")
