"""`fit`: whole epochs compiled into one program, with a history a regularization study needs.

How a run executes (`jaxmlp._driver` on the host, `jaxmlp._epochs` compiled):

- An epoch is a `jax.lax.scan` over mini-batches, reshuffled every epoch with
  ``fold_in(key, epoch)`` — so the shuffles depend only on the key and the epoch number, and a
  run resumed from a checkpoint sees the same batches as one that never stopped. The shuffle is
  a keyed pseudo-random permutation computed without sorting, and the epoch's batches are
  gathered once, before the scan.
- When the data does not divide into batches, the last batch is shorter, as in the book: it is
  padded to full size and the padding is masked out of the loss, so every epoch runs the same
  compiled program.
- Several epochs run per call of the compiled program (a `jax.lax.while_loop` with a dynamic
  trip count, sized so a call lasts about a quarter of a second), which keeps the progress bar
  live without paying Python's dispatch per step. The whole run compiles once.
- After every epoch the loss and the parameters are checked for NaN and inf. A diverging run
  stops there, keeps the last good parameters and optimizer state, and says so in a warning and
  in ``result.stop_reason``.
- A callback (``callback=fn, callback_every=E``) sees a `jaxmlp.Snapshot` on the host every E
  epochs and may stop the run.
"""

from __future__ import annotations

import functools
import warnings
from collections.abc import Sequence
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh

from jaxmlp import _placement
from jaxmlp._checks import (
    check_count,
    check_forward,
    check_key,
    check_params,
    check_problem,
    compute_dtype,
)
from jaxmlp._driver import (
    Callback,
    Outcome,
    check_data,
    check_options,
    early_stopping_inputs,
    own_copies,
    train,
)
from jaxmlp._epochs import Spec, history_buffer
from jaxmlp.early_stopping import EarlyStopping
from jaxmlp.metrics import (
    correct,
    precision_of,
    regression_metrics,
    regression_sums,
    task_of,
    total_squares,
)
from jaxmlp.model import MLP, Params, forward
from jaxmlp.objective import objective_and_output
from jaxmlp.optim import Optimizer, OptState
from jaxmlp.regularization import RegLike, penalty, per_layer, without_zeros, zero_strengths


class FitResult(NamedTuple):
    """What `fit` returns.

    Attributes:
      params: the trained parameters (the last good ones if the run diverged).
      opt_state: the optimizer state that goes with them.
      history: per-epoch metrics, a dict of NumPy arrays (see `fit`).
      stop_reason: None when every epoch ran, else why the run stopped early.
      best_epoch: with early stopping, the best epoch (1-based, counting ``initial_epoch``;
        None when no epoch counted); without, None.
      early_state: with early stopping, its state at the end (a
        `jaxmlp.early_stopping.Watch`: pass it back as ``early_state=`` to continue the run),
        else None.
      last_state: with early stopping and ``restore_best``, the last epoch's ``(params,
        opt_state)`` (`params` being the best epoch's); continue the run from them, with
        ``early_state``. Else None: `params` are the last epoch's.
    """

    params: Params
    opt_state: OptState
    history: dict[str, np.ndarray]
    stop_reason: str | None
    best_epoch: int | None = None
    early_state: Any = None
    last_state: Any = None

    def table(self, per_layer: bool = True) -> dict[str, np.ndarray]:
        """The history as a table: `history_table` of ``self.history``.

        ``pandas.DataFrame(result.table())`` or a CSV writer takes it as it is.
        """
        return history_table(self.history, per_layer)


def history_table(history: dict[str, Any], per_layer: bool = True) -> dict[str, np.ndarray]:
    """A history as columns of one number per epoch, in its order.

    A per-layer field (``w_l1``, ``w_l2``, ``w_zeros``: one value per layer and epoch) becomes
    one column per layer, ``w_l2_0``, ``w_l2_1``, …, or is left out with ``per_layer=False``.

    >>> table = history_table({"epoch": np.arange(1, 3), "loss": np.array([0.9, 0.7]),
    ...                        "w_l2": np.array([[1.0, 2.0], [1.1, 2.1]])})
    >>> list(table), table["w_l2_1"].tolist()
    (['epoch', 'loss', 'w_l2_0', 'w_l2_1'], [2.0, 2.1])
    """
    columns = {}
    for k, v in history.items():
        v = np.asarray(v)
        if v.ndim == 1:
            columns[k] = v
        elif per_layer:
            columns.update({f"{k}_{layer}": v[:, layer] for layer in range(v.shape[1])})
    return columns


def fit(net: MLP, params: Params, opt: Optimizer, x: Any, y: Any, *, loss: str,
        reg: RegLike = None, epochs: int = 1, batch_size: int | None = None,
        validation: tuple[Any, Any] | None = None, key: jax.Array | None = None,
        shuffle: bool = True, grads: str = "autodiff", opt_state: OptState | None = None,
        initial_epoch: int = 0, progress: bool = True, mesh: Mesh | None = None,
        devices: int | Sequence[jax.Device] | None = None, callback: Callback | None = None,
        callback_every: int = 1, early_stopping: EarlyStopping | None = None,
        early_state: Any = None) -> FitResult:  # fmt: skip
    """Train `net` on ``(x, y)`` for `epochs` epochs of mini-batch updates.

    Args:
      net: the architecture.
      params: initial parameters (not modified; `fit` works on a copy).
      opt: an optimizer from `jaxmlp.optim`.
      x: inputs ``(n, net.in_features)``.
      y: targets as for `jaxmlp.objective`.
      loss: the data loss's name.
      reg: a `Regularization`, a tuple with one per layer, or None.
      epochs: number of epochs to run (0 returns at once).
      batch_size: examples per update; None (default) is the full batch, one update per epoch
        as in the book. The last batch of an epoch is shorter when `batch_size` does not divide
        ``n``.
      validation: ``(x_val, y_val)`` evaluated after every epoch, or None.
      key: PRNG key for the shuffles (default ``jax.random.key(0)``).
      shuffle: reshuffle the examples every epoch (not done when one batch holds all the data,
        `batch_size` None or ≥ n: the mean over the batch does not depend on the order).
      grads: ``"autodiff"`` or ``"manual"`` (the hand-written `jaxmlp.backprop`).
      opt_state: optimizer state to continue from (default ``opt.init(params)``).
      initial_epoch: number of epochs already run (when resuming): epoch numbering, and so the
        shuffles, continue from there.
      progress: show a progress bar (``tqdm.auto``: a widget in notebooks, text elsewhere).
      mesh: a `jax.sharding.Mesh` with an axis named ``"data"`` (`jaxmlp.sharding.data_mesh`):
        data parallelism. Parameters, optimizer state and data are replicated on its devices,
        every batch's rows are split over them and the gradients summed across them; the
        results equal those without a mesh up to float rounding (the sums run in another
        order). When the D devices do not divide `batch_size`, every batch is padded to the
        next multiple of D with rows masked out of the loss: the same updates, with that share
        of the work wasted. In a run of several processes (after `jax.distributed.initialize`)
        every process calls `fit` with the same arguments; data a process holds only part of
        goes through `jaxmlp.sharding.from_process_rows`. The returned arrays are replicated
        on the mesh.
      devices: shorthand for ``mesh=jaxmlp.sharding.data_mesh(devices)``: a number of devices
        (the first of `jax.devices()`) or a list of them.
      callback: a function called on the host after every epoch whose number (counting
        `initial_epoch`) is a multiple of `callback_every`, with a `jaxmlp.Snapshot`: the
        epoch, copies of the parameters and optimizer state, and the history so far. It may
        return True to stop the run there (``stop_reason`` then says so; no warning). Use it to
        write checkpoints, log metrics or keep the best parameters; ``jaxmlp train`` writes its
        checkpoints this way. Each call ends a call of the compiled program, so a small
        `callback_every` costs speed.
      callback_every: ``E >= 1``, the period of `callback` in epochs.
      early_stopping: a `jaxmlp.EarlyStopping`: stop when its monitored history field stops
        improving, decided inside the compiled loop after every epoch (rule:
        `jaxmlp.early_stopping`). ``result.best_epoch`` is the best epoch; with
        ``restore_best`` (the default) ``result.params`` and ``result.opt_state`` are that
        epoch's, whether or not the run stopped early (the history still has every epoch run).
      early_state: early stopping's state to continue from (with `initial_epoch`):
        ``Snapshot.early_state`` or ``FitResult.early_state`` of the run being resumed (and
        then its ``last_state`` as `params` and `opt_state`, not its restored best).

    Ctrl-C (SIGINT) while `fit` trains ends the run after the current call of the compiled
    program, a whole number of epochs, and returns the result so far (``stop_reason``
    ``"interrupted after epoch E"``, no warning): continue it with ``initial_epoch=E`` and
    the returned state. A second Ctrl-C interrupts at once (KeyboardInterrupt).

    Returns:
      A `FitResult` ``(params, opt_state, history, stop_reason)``. ``history`` maps names to
      arrays with one row per epoch run: ``epoch`` (1-based, counting `initial_epoch`),
      ``loss`` (total), ``data_loss``, ``penalty`` and ``accuracy`` — averaged over the epoch's
      examples while the parameters change, as the book's accumulated metrics are —,
      ``learning_rate`` (of the epoch's last update), ``val_loss`` (data loss) and
      ``val_accuracy`` after the epoch when `validation` is given, and per layer (shape
      ``(epochs, n_layers)``) ``w_l1`` ``Σ|W|``, ``w_l2`` ``√ΣW²`` and ``w_zeros``, the share
      of weights that are exactly zero. Accuracy is the share of correct classes for
      categorical cross-entropy, of correct 0/1 outputs for binary cross-entropy, and the
      book's ``|ŷ − y| < std(y_train)/250`` for mse and mae.
    """
    check_options(grads, callback, callback_every)
    mesh = _placement.resolve_mesh(mesh, devices, _placement.DATA, "fit")
    key = jax.random.key(0) if key is None else key
    key_shape = check_key(key)
    if key_shape != ():
        raise ValueError(f"key must be one PRNG key; got keys of shape {key_shape}")
    if mesh is not None and jax.process_count() > 1:
        # Global arrays become host values for the checks; everything else must agree.
        values = jax.tree.map(_placement.host_value, (x, y, validation, params, opt_state))
        x, y, validation, params, opt_state = values
        named = {"x": x, "y": y, "validation": validation, "params": params,
                 "opt_state": opt_state, "key": key, "reg": reg}  # fmt: skip
        _placement.check_same_in_every_process(named)
    check_params(net, params)
    x, y, xv, yv, batch_size, regs = check_data(net, x, y, validation, loss=loss, reg=reg,
                                                epochs=epochs, initial_epoch=initial_epoch,
                                                batch_size=batch_size,
                                                dtype=compute_dtype(params))  # fmt: skip
    state = opt.init(params) if opt_state is None else opt_state
    spec = Spec(net, opt, loss, grads, x.shape[0], batch_size, shuffle,
                validation is not None, zero_strengths(regs), mesh)  # fmt: skip
    spec, watch, numbers = early_stopping_inputs(spec, early_stopping, params, state, (), x.dtype,
                                                 early_state)  # fmt: skip
    args = (key, x, y, xv, yv, regs, precision_of(loss, y, x.dtype), None)
    # (Host arrays, which the program's call copies: an eager jnp operation would compile.)
    alive = np.logical_not(False if watch is None else watch.stopped)  # resumed: done
    rest = (history_buffer(spec, x.dtype), args, alive, watch, numbers)
    if mesh is None:
        params, state = own_copies(params, state, made=opt_state is None)
    else:
        params, state = _placement.place((params, state), _placement.replicated(mesh), copy=True)
        rest = _placement.place(rest, _placement.replicated(mesh))
    with _placement.running_on(mesh):
        outcome = train(spec, (params, state, *rest), epochs=epochs, initial_epoch=initial_epoch,
                        progress=progress, callback=callback, every=callback_every)  # fmt: skip
    reason = stop_reason(outcome, initial_epoch, early=early_stopping)
    if reason and not (outcome.stopped or outcome.interrupted or outcome.early_stopped):
        warnings.warn(reason, RuntimeWarning, stacklevel=2)
    best = None if outcome.best_epoch is None else int(outcome.best_epoch) or None
    return FitResult(outcome.params, outcome.opt_state, outcome.history, reason, best,
                     outcome.early_state, outcome.last_state)  # fmt: skip


def stop_reason(outcome: Outcome, initial_epoch: int, model: int | None = None,
                early: EarlyStopping | None = None) -> str | None:  # fmt: skip
    """Why a model stopped early (None if it ran every epoch).

    Diverged, stopped by early stopping (`early`) or by the callback, or interrupted (SIGINT).
    """
    k = () if model is None else model
    epoch = initial_epoch + int(outcome.runs[k])
    if outcome.stopped[k]:
        return f"stopped by the callback after epoch {epoch}"
    if outcome.early_stopped[k]:  # only with early stopping
        assert outcome.best_epoch is not None and early is not None
        best = int(outcome.best_epoch[k])
        kept = f"; kept the parameters of epoch {best}" if early.restore_best else ""
        return (f"early stopping: {early.monitor} did not improve for {early.patience} epochs; "
                f"stopped after epoch {epoch} (best epoch {best}){kept}")  # fmt: skip
    if outcome.alive[k]:
        return f"interrupted after epoch {epoch}" if outcome.interrupted else None
    diverged = f"diverged at epoch {epoch + 1}: the loss or the parameters became NaN or infinite"
    if model is not None:
        return f"model {model} {diverged}; kept its parameters after epoch {epoch}"
    advice = "Lower the learning rate or check the data."
    return f"training {diverged}; kept the parameters after epoch {epoch}. {advice}"


def evaluate(net: MLP, params: Params, x: Any, y: Any, *, loss: str, reg: RegLike = None,
             batch_size: int = 4096) -> dict[str, float]:  # fmt: skip
    """Loss and accuracy of `params` on ``(x, y)``, computed in batches of `batch_size`.

    Returns:
      ``{"loss", "data_loss", "penalty", "accuracy"}`` as Python floats, with accuracy defined
      as in `fit` (regression precision ``std(y)/250`` of this `y`); for ``mse`` and ``mae``
      also ``"r2"``, ``"rmse"`` and ``"mae"`` (`jaxmlp.metrics`).
    """
    x, y, _ = check_problem(net, x, y, loss, params=params)
    check_count("batch_size", batch_size, 1)
    regs = per_layer(reg, net.n_layers)
    pen = float(_penalty(params, regs, zero_strengths(regs)))
    precision = precision_of(loss, y, x.dtype)
    sums = None
    for start in range(0, x.shape[0], batch_size):
        xb, yb = x[start : start + batch_size], y[start : start + batch_size]
        batch = _eval_batch(net, loss, params, xb, yb, precision)
        sums = batch if sums is None else jax.tree.map(jnp.add, sums, batch)
    assert sums is not None  # check_problem refuses data without rows
    n = x.shape[0]
    data = float(sums["data"]) / n
    out = {"loss": data + pen, "data_loss": data, "penalty": pen,
           "accuracy": float(sums["hits"]) / n}  # fmt: skip
    if task_of(loss) == "regression":
        metrics = regression_metrics(sums["sse"], sums["sae"], total_squares(y), n)
        out |= {k: float(v) for k, v in metrics.items()}
    return out


@functools.partial(jax.jit, static_argnums=2)
def _penalty(params, regs, zeros):
    """The penalty of `params`, compiled; the strengths marked in `zeros` left out."""
    return penalty(params, without_zeros(regs, zeros))


@functools.partial(jax.jit, static_argnums=(0, 1))
def _eval_batch(net, loss, params, x, y, precision):
    """A batch's sums: data loss times its rows, correct examples, and squared/absolute errors."""
    _, (parts, out) = objective_and_output(net, params, x, y, loss=loss)
    sums = {"data": parts["data"] * x.shape[0], "hits": jnp.sum(correct(loss, out, y, precision))}
    if task_of(loss) == "regression":
        sums |= regression_sums(out, y)
    return sums


def predict(net: MLP, params: Params, x: Any, *, batch_size: int = 4096) -> jax.Array:
    """The network's outputs for `x`, computed in batches of `batch_size` rows."""
    x = check_forward(net, params, x)
    check_count("batch_size", batch_size, 1)
    starts = range(0, x.shape[0], batch_size)
    outs = [_forward_jit(net, params, x[start : start + batch_size]) for start in starts]
    return jnp.concatenate(outs, axis=0)


_forward_jit = jax.jit(forward, static_argnums=0)
