"""`fit`: whole epochs compiled into one program, with a history a regularization study needs.

How a run executes:

- An epoch is a `jax.lax.scan` over mini-batches, reshuffled every epoch with
  ``fold_in(key, epoch)`` — so the shuffles depend only on the key and the epoch number, and a
  run resumed from a checkpoint sees the same batches as one that never stopped.
- When the data does not divide into batches, the last batch is shorter, as in the book: it is
  padded to full size and the padding is masked out of the loss, so every epoch runs the same
  compiled program.
- Several epochs run per call of the compiled program (a `jax.lax.while_loop` with a dynamic
  trip count, sized so a call lasts about a quarter of a second), which keeps the progress bar
  live without paying Python's dispatch per step. The whole run compiles once.
- After every epoch the loss and the parameters are checked for NaN and inf. A diverging run
  stops there, keeps the last good parameters and optimizer state, and says so in a warning and
  in ``result.stop_reason``.
"""

from __future__ import annotations

import functools
import math
import time
import warnings
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from jaxmlp._checks import check_choice
from jaxmlp.model import MLP, Params, check_params, forward
from jaxmlp.objective import check_problem, objective
from jaxmlp.optim import Optimizer, OptState, apply_updates, learning_rate_of
from jaxmlp.regularization import RegLike, penalty
from jaxmlp.train import GRADS, value_and_grads

_MAX_EPOCHS_PER_CALL = 1000
_TARGET_SECONDS_PER_CALL = 0.25


class FitResult(NamedTuple):
    """What `fit` returns.

    Attributes:
      params: the trained parameters (the last good ones if the run diverged).
      opt_state: the optimizer state that goes with them.
      history: per-epoch metrics, a dict of NumPy arrays (see `fit`).
      stop_reason: None when every epoch ran, else why the run stopped early.
    """

    params: Params
    opt_state: OptState
    history: dict[str, np.ndarray]
    stop_reason: str | None


def task_of(loss: str) -> str:
    """``"classification"`` for the cross-entropies, ``"regression"`` for mse and mae."""
    return "classification" if loss.endswith("crossentropy") else "regression"


def _correct(loss: str, out: jax.Array, y: jax.Array, precision: jax.Array) -> jax.Array:
    """Per-example count of correct predictions (per-element for binary and regression)."""
    if loss == "categorical_crossentropy":
        labels = y if y.ndim == 1 else jnp.argmax(y, axis=1)
        return (jnp.argmax(out, axis=1) == labels).astype(out.dtype)
    if loss == "binary_crossentropy":
        return jnp.mean(((out > 0.5) == (y > 0.5)).astype(out.dtype), axis=1)
    return jnp.mean((jnp.abs(out - y) < precision).astype(out.dtype), axis=1)


def weight_stats(params: Params) -> dict[str, jax.Array]:
    """Per layer: ``Σ|W|`` (``w_l1``), ``√ΣW²`` (``w_l2``), share of exact zeros (``w_zeros``)."""
    Ws = [p["W"] for p in params]
    return {
        "w_l1": jnp.stack([jnp.sum(jnp.abs(W)) for W in Ws]),
        "w_l2": jnp.stack([jnp.sqrt(jnp.sum(W * W)) for W in Ws]),
        "w_zeros": jnp.stack([jnp.mean((W == 0).astype(W.dtype)) for W in Ws]),
    }


def _tree_finite(tree: Any) -> jax.Array:
    return jnp.all(jnp.stack([jnp.all(jnp.isfinite(a)) for a in jax.tree.leaves(tree)]))


def _make_epochs(net, opt, *, loss, grads, n, batch_size, shuffle, has_val):
    """The compiled program: run up to `count` epochs, recording one history row each."""
    n_batches = math.ceil(n / batch_size)
    padded = n_batches * batch_size

    def one_epoch(params, state, epoch, key, x, y, reg, precision):
        if shuffle:
            order = jax.random.permutation(jax.random.fold_in(key, epoch), n)
        else:
            order = jnp.arange(n)
        order = jnp.concatenate([order, jnp.zeros(padded - n, order.dtype)])
        mask = (jnp.arange(padded) < n).astype(x.dtype)
        batches = (order.reshape(n_batches, batch_size), mask.reshape(n_batches, batch_size))

        def step(carry, batch):
            params, state, sums = carry
            idx, m = batch
            xb, yb = x[idx], y[idx]
            (total, parts, out), g = value_and_grads(
                net, params, xb, yb, loss=loss, reg=reg, grads=grads, mask=m
            )
            updates, state = opt.update(g, state, params)
            params = apply_updates(params, updates)
            k = jnp.sum(m)  # real examples in this batch
            sums = {
                "loss": sums["loss"] + k * total,
                "data_loss": sums["data_loss"] + k * parts["data"],
                "penalty": sums["penalty"] + k * parts["penalty"],
                "accuracy": sums["accuracy"] + jnp.sum(m * _correct(loss, out, yb, precision)),
            }
            return (params, state, sums), None

        zero = jnp.zeros((), x.dtype)
        sums = dict.fromkeys(("loss", "data_loss", "penalty", "accuracy"), zero)
        (params, state, sums), _ = jax.lax.scan(step, (params, state, sums), batches)
        row = {k: v / n for k, v in sums.items()}
        row["learning_rate"] = jnp.asarray(learning_rate_of(state), x.dtype)
        row.update(weight_stats(params))
        return params, state, row

    def validate(params, xv, yv, reg, precision):
        total, parts = objective(net, params, xv, yv, loss=loss, reg=reg)
        out = forward(net, params, xv)
        return {
            "val_loss": parts["data"],
            "val_accuracy": jnp.mean(_correct(loss, out, yv, precision)),
        }

    def _fit_epochs(params, state, first_epoch, count, key, x, y, xv, yv, reg, precision, buffers):
        def cond(carry):
            i, _, _, _, stopped = carry
            return (i < count) & ~stopped

        def body(carry):
            i, params, state, buffers, _ = carry
            new_params, new_state, row = one_epoch(
                params, state, first_epoch + i, key, x, y, reg, precision
            )
            if has_val:
                row.update(validate(new_params, xv, yv, reg, precision))
            ok = jnp.isfinite(row["loss"]) & _tree_finite(new_params)

            def keep(new, old):
                return jax.tree.map(lambda a, b: jnp.where(ok, a, b), new, old)

            buffers = {k: buffers[k].at[i].set(row[k].astype(buffers[k].dtype)) for k in buffers}
            return (
                i + ok.astype(i.dtype),
                keep(new_params, params),
                keep(new_state, state),
                buffers,
                ~ok,
            )

        init = (jnp.zeros((), jnp.int32), params, state, buffers, jnp.zeros((), bool))
        done, params, state, buffers, stopped = jax.lax.while_loop(cond, body, init)
        return params, state, buffers, done, stopped

    return jax.jit(_fit_epochs, donate_argnums=(0, 1, 11))


def fit(
    net: MLP,
    params: Params,
    opt: Optimizer,
    x: Any,
    y: Any,
    *,
    loss: str,
    reg: RegLike = None,
    epochs: int = 1,
    batch_size: int | None = None,
    validation: tuple[Any, Any] | None = None,
    key: jax.Array | None = None,
    shuffle: bool = True,
    grads: str = "autodiff",
    opt_state: OptState | None = None,
    initial_epoch: int = 0,
    progress: bool = True,
) -> FitResult:
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
      shuffle: reshuffle the examples every epoch.
      grads: ``"autodiff"`` or ``"manual"`` (the hand-written `jaxmlp.backprop`).
      opt_state: optimizer state to continue from (default ``opt.init(params)``).
      initial_epoch: number of epochs already run (when resuming): epoch numbering, and so the
        shuffles, continue from there.
      progress: show a progress bar (``tqdm.auto``: a widget in notebooks, text elsewhere).

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
    check_choice("grads", grads, GRADS)
    check_problem(net, x, y, loss)
    check_params(net, params)
    x, y = jnp.asarray(x), jnp.asarray(y)
    # Validates shapes and values (NaN, label range) once, outside the compiled loop.
    objective(net, params, x, y, loss=loss, reg=reg)
    n = x.shape[0]
    for name, v in (("epochs", epochs), ("initial_epoch", initial_epoch)):
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 0:
            raise ValueError(f"{name} must be an integer >= 0; got {v!r}")
    if batch_size is None:
        batch_size = n
    if (
        isinstance(batch_size, bool)
        or not isinstance(batch_size, (int, np.integer))
        or batch_size < 1
    ):
        raise ValueError(f"batch_size must be a positive integer or None; got {batch_size!r}")
    batch_size = min(int(batch_size), n)
    if validation is not None:
        if not isinstance(validation, (tuple, list)) or len(validation) != 2:
            raise TypeError("validation must be a pair (x_val, y_val)")
        xv, yv = jnp.asarray(validation[0]), jnp.asarray(validation[1])
        check_problem(net, xv, yv, loss)
        objective(net, params, xv, yv, loss=loss, reg=reg)
    else:
        xv, yv = x[:1], y[:1]
    key = jax.random.key(0) if key is None else key
    state = opt.init(params) if opt_state is None else opt_state
    # Copies: the compiled loop donates its buffers, and the caller's arrays must stay valid.
    params = jax.tree.map(jnp.array, params)
    state = jax.tree.map(jnp.array, state)
    precision = jnp.std(y) / 250 if task_of(loss) == "regression" else jnp.zeros(())
    precision = precision.astype(x.dtype)

    run = _make_epochs(
        net,
        opt,
        loss=loss,
        grads=grads,
        n=n,
        batch_size=batch_size,
        shuffle=shuffle,
        has_val=validation is not None,
    )
    names = ["loss", "data_loss", "penalty", "accuracy", "learning_rate"]
    if validation is not None:
        names += ["val_loss", "val_accuracy"]
    cap = min(_MAX_EPOCHS_PER_CALL, max(epochs, 1))
    buffers = {k: jnp.zeros((cap,), x.dtype) for k in names}
    buffers.update(
        {k: jnp.zeros((cap, net.n_layers), x.dtype) for k in ("w_l1", "w_l2", "w_zeros")}
    )
    rows: list[dict[str, np.ndarray]] = []
    stop_reason = None
    bar = _progress_bar(epochs, initial_epoch) if progress and epochs else None
    done_total, per_call = 0, 1
    try:
        while done_total < epochs:
            count = min(per_call, epochs - done_total, cap)
            start = time.perf_counter()
            params, state, buffers, done, stopped = run(
                params,
                state,
                jnp.asarray(initial_epoch + done_total, jnp.int32),
                jnp.asarray(count, jnp.int32),
                key,
                x,
                y,
                xv,
                yv,
                reg,
                precision,
                buffers,
            )
            done = int(done)
            host = jax.device_get(buffers)
            rows.append({k: v[:done] for k, v in host.items()})
            done_total += done
            if bar is not None:
                bar.update(done)
                bar.set_postfix(_postfix(host, done), refresh=False)
            if bool(stopped):
                epoch = initial_epoch + done_total + 1
                stop_reason = (
                    f"training diverged at epoch {epoch}: the loss or the parameters became "
                    f"NaN or infinite; kept the parameters after epoch {epoch - 1}. Lower the "
                    f"learning rate or check the data."
                )
                warnings.warn(stop_reason, RuntimeWarning, stacklevel=2)
                break
            elapsed = time.perf_counter() - start
            if count > 0 and elapsed > 0:
                per_call = max(1, int(count * _TARGET_SECONDS_PER_CALL / elapsed))
    finally:
        if bar is not None:
            bar.close()
    history = {k: np.concatenate([r[k] for r in rows]) if rows else np.zeros((0,)) for k in buffers}
    history["epoch"] = np.arange(initial_epoch + 1, initial_epoch + done_total + 1)
    return FitResult(params, state, history, stop_reason)


def _postfix(host: dict[str, np.ndarray], done: int) -> dict[str, str]:
    if done == 0:
        return {}
    out = {"loss": f"{host['loss'][done - 1]:.4f}", "acc": f"{host['accuracy'][done - 1]:.3f}"}
    if "val_loss" in host:
        out["val_loss"] = f"{host['val_loss'][done - 1]:.4f}"
        out["val_acc"] = f"{host['val_accuracy'][done - 1]:.3f}"
    return out


def _progress_bar(epochs: int, initial_epoch: int):
    from tqdm.auto import tqdm

    return tqdm(
        total=epochs,
        initial=0,
        desc=f"epochs {initial_epoch + 1}–{initial_epoch + epochs}",
        unit="epoch",
    )


def evaluate(
    net: MLP,
    params: Params,
    x: Any,
    y: Any,
    *,
    loss: str,
    reg: RegLike = None,
    batch_size: int = 4096,
) -> dict[str, float]:
    """Loss and accuracy of `params` on ``(x, y)``, computed in batches of `batch_size`.

    Returns:
      ``{"loss", "data_loss", "penalty", "accuracy"}`` as Python floats, with accuracy defined
      as in `fit` (regression precision ``std(y)/250`` of this `y`).
    """
    check_problem(net, x, y, loss)
    x, y = jnp.asarray(x), jnp.asarray(y)
    objective(net, params, x[:1], y[:1], loss=loss, reg=reg)
    precision = jnp.std(y) / 250 if task_of(loss) == "regression" else jnp.zeros(())
    n = x.shape[0]
    data_sum, correct = 0.0, 0.0
    for start in range(0, n, batch_size):
        xb, yb = x[start : start + batch_size], y[start : start + batch_size]
        d, c = _eval_batch(net, loss, params, xb, yb, precision.astype(x.dtype))
        data_sum += float(d) * len(xb)
        correct += float(c)
    pen = float(penalty(params, reg))
    return {
        "loss": data_sum / n + pen,
        "data_loss": data_sum / n,
        "penalty": pen,
        "accuracy": correct / n,
    }


@functools.partial(jax.jit, static_argnums=(0, 1))
def _eval_batch(net, loss, params, x, y, precision):
    total, parts = objective(net, params, x, y, loss=loss)
    out = forward(net, params, x)
    return parts["data"], jnp.sum(_correct(loss, out, y, precision))


def predict(net: MLP, params: Params, x: Any, *, batch_size: int = 4096) -> jax.Array:
    """The network's outputs for `x`, computed in batches of `batch_size` rows."""
    x = jnp.asarray(x)
    outs = [
        _forward_jit(net, params, x[start : start + batch_size])
        for start in range(0, x.shape[0], batch_size)
    ]
    return jnp.concatenate(outs, axis=0)


_forward_jit = jax.jit(forward, static_argnums=0)
