"""`fit`: whole epochs compiled into one program, with a history a regularization study needs.

How a run executes:

- An epoch is a `jax.lax.scan` over mini-batches, reshuffled every epoch with
  ``fold_in(key, epoch)`` — so the shuffles depend only on the key and the epoch number, and a
  run resumed from a checkpoint sees the same batches as one that never stopped. The shuffle is
  a keyed pseudo-random permutation computed without sorting (`_permutation`), and the epoch's
  batches are gathered once, before the scan.
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
from collections.abc import Sequence
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh

from jaxmlp import sharding as _sharding
from jaxmlp._checks import check_choice, check_inputs, check_params, check_problem, is_concrete
from jaxmlp.metrics import correct, precision_of, weight_stats
from jaxmlp.model import MLP, Params, forward
from jaxmlp.objective import objective, objective_and_output
from jaxmlp.optim import Optimizer, OptState, apply_updates, learning_rate_of
from jaxmlp.regularization import _FIELDS, RegLike, Regularization, penalty, per_layer
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


def _tree_finite(tree: Any) -> jax.Array:
    return jnp.all(jnp.stack([jnp.all(jnp.isfinite(a)) for a in jax.tree.leaves(tree)]))


def _select(keep: jax.Array, new: Any, old: Any) -> Any:
    """Leaf by leaf ``new`` where `keep` holds, else ``old``; `keep` is () or (K,) per model."""

    def pick(a: jax.Array, b: jax.Array) -> jax.Array:
        k = keep.reshape(keep.shape + (1,) * (a.ndim - keep.ndim))
        return jnp.where(k, a, b)

    return jax.tree.map(pick, new, old)


_FEISTEL_ROUNDS = 6


def _mix(v: jax.Array, k: jax.Array) -> jax.Array:
    """A keyed hash of 32-bit words: murmur3's finalizer applied to ``v ^ k``."""
    v = (v ^ k) * jnp.uint32(0x9E3779B1)
    v = (v ^ (v >> 16)) * jnp.uint32(0x85EBCA6B)
    v = (v ^ (v >> 13)) * jnp.uint32(0xC2B2AE35)
    return v ^ (v >> 16)


def _permutation(key: jax.Array, n: int) -> jax.Array:
    """A pseudo-random permutation of ``range(n)`` that is cheap inside a compiled loop.

    `jax.random.permutation` sorts random keys, which on a CPU costs more than a whole epoch of
    a small net (about 2.5 ms for n = 6000, 30 ms for n = 60000). Here a Feistel network —
    ``(a, b) → (b, a ⊕ F_r(b))`` for 6 rounds on the two halves of an m-bit integer,
    ``m = max(8, ⌈log2 n⌉)``, with ``F_r`` a hash keyed by a random word drawn from `key` — is a
    bijection of ``0 … 2^m − 1``; the values below ``n``, in the order the bijection lists them,
    are a permutation of ``range(n)``. Only elementwise work and one compaction, no sort (about
    0.15 ms for n = 6000).
    """
    bits = max(8, math.ceil(math.log2(max(n, 2))))
    width = [bits - bits // 2, bits // 2]  # widths of the halves a, b
    round_keys = jax.random.bits(key, (_FEISTEL_ROUNDS,), jnp.uint32)
    i = jnp.arange(1 << bits, dtype=jnp.uint32)
    a, b = i >> width[1], i & jnp.uint32((1 << width[1]) - 1)
    for r in range(_FEISTEL_ROUNDS):
        a = a ^ (_mix(b, round_keys[r]) & jnp.uint32((1 << width[0]) - 1))
        a, b, width = b, a, width[::-1]
    v = (a << width[1]) | b
    return v[jnp.nonzero(v < n, size=n)[0]].astype(jnp.int32)


def _zero_strengths(regs: tuple[Regularization, ...]) -> tuple[tuple[bool, ...], ...]:
    """Per layer and strength, whether it is a concrete scalar 0 (its term can be left out)."""

    def zero(v: Any) -> bool:
        return is_concrete(v) and np.ndim(v) == 0 and float(v) == 0

    return tuple(tuple(zero(getattr(r, f)) for f in _FIELDS) for r in regs)


def _without_zeros(regs: Any, zeros: tuple[tuple[bool, ...], ...]) -> tuple:
    """`regs` with the strengths marked in `zeros` replaced by a Python 0.0.

    `penalty` and `backprop` skip such terms: a run without L1 does not compute ``Σ|W|`` and
    its gradient every step (a few percent of a step on large layers).
    """
    return tuple(
        Regularization.tree_unflatten(
            None, [0.0 if z else getattr(r, f) for f, z in zip(_FIELDS, zs)]
        )
        for r, zs in zip(regs, zeros)
    )


def _epoch_fn(net, opt, *, loss, grads, n, batch_size, shuffle, has_val, zeros, mesh=None):
    """One epoch as a pure function, for `fit`'s loop and, under `jax.vmap`, `fit_many`'s.

    ``(params, state, epoch, key, x, y, xv, yv, reg, precision) -> (params, state, row, ok)``,
    with ``ok`` false when the loss or the new parameters are not finite. `reg` is a tuple with
    one `Regularization` per layer; the strengths marked in `zeros` are taken as exactly 0.
    With a `mesh` (not under `vmap`), every batch's rows are split over its "data" axis.
    """
    n_batches = math.ceil(n / batch_size)
    padded = n_batches * batch_size
    masked = padded > n  # a short last batch, padded to full size and masked out of the loss
    # One batch of all the data: its order cannot change a mean, so there is nothing to shuffle.
    shuffle = shuffle and n_batches > 1

    def batches(epoch, key, x, y):
        """The epoch's batches stacked ``(n_batches, batch_size, ...)``: one gather per epoch."""
        if mesh is not None:
            return _sharded_batches(epoch, key, x, y, n=n, batch_size=batch_size,
                                    shuffle=shuffle, mesh=mesh)  # fmt: skip
        if shuffle:
            order = _permutation(jax.random.fold_in(key, epoch), n)
        else:
            order = jnp.arange(n) if masked else None
        if masked:
            order = jnp.concatenate([order, jnp.zeros(padded - n, order.dtype)])
        if order is not None:
            x, y = x[order], y[order]

        def split(a):
            return a.reshape((n_batches, batch_size) + a.shape[1:])

        mask = split((jnp.arange(padded) < n).astype(x.dtype)) if masked else None
        return split(x), split(y), mask

    def epoch_fn(params, state, epoch, key, x, y, xv, yv, reg, precision):
        reg = _without_zeros(reg, zeros)

        def step(carry, batch):
            params, state, sums = carry
            xb, yb, m = batch
            if mesh is not None:
                # Each device computes its rows; XLA sums the gradients across the "data" axis.
                xb, yb, m = _sharding._constrain((xb, yb, m), _sharding._row_sharding(mesh))
            (total, parts, out), g = value_and_grads(
                net, params, xb, yb, loss=loss, reg=reg, grads=grads, mask=m
            )
            updates, state = opt.update(g, state, params)
            params = apply_updates(params, updates)
            hits = correct(loss, out, yb, precision)
            if m is None:
                k, hits = batch_size, jnp.sum(hits)
            else:
                k, hits = jnp.sum(m), jnp.sum(m * hits)  # k: real examples in the batch
            sums = {
                "loss": sums["loss"] + k * total,
                "data_loss": sums["data_loss"] + k * parts["data"],
                "penalty": sums["penalty"] + k * parts["penalty"],
                "accuracy": sums["accuracy"] + hits,
            }
            return (params, state, sums), None

        zero = jnp.zeros((), x.dtype)
        sums = dict.fromkeys(("loss", "data_loss", "penalty", "accuracy"), zero)
        xs, ys, ms = batches(epoch, key, x, y)
        (params, state, sums), _ = jax.lax.scan(step, (params, state, sums), (xs, ys, ms))
        row = {k: v / n for k, v in sums.items()}
        row["learning_rate"] = jnp.asarray(learning_rate_of(state), x.dtype)
        row.update(weight_stats(params))
        if has_val:
            _, (parts, out) = objective_and_output(net, params, xv, yv, loss=loss, reg=reg)
            row["val_loss"] = parts["data"]
            row["val_accuracy"] = jnp.mean(correct(loss, out, yv, precision))
        ok = jnp.isfinite(row["loss"]) & _tree_finite(params)
        return params, state, row, ok

    return epoch_fn


def _sharded_batches(epoch, key, x, y, *, n, batch_size, shuffle, mesh):
    """`_epoch_fn`'s batches with each batch's rows split over the mesh's "data" axis.

    Every batch gets ``slots`` rows, `batch_size` rounded up to a multiple of the D devices:
    batch ``i`` holds examples ``order[i·B : (i+1)·B]`` (fewer in a short last batch) and the
    padding rows are masked out of the loss, so the updates are those of `batch_size` without a
    mesh. The indices are laid out before the gather, so each device gathers only its own rows
    from its copy of the data.
    """
    n_batches = math.ceil(n / batch_size)
    shards = mesh.shape[_sharding.DATA]
    slots = -(-batch_size // shards) * shards
    j = jnp.arange(slots)[None, :]
    index = jnp.arange(n_batches)[:, None] * batch_size + j  # (n_batches, slots)
    valid = (j < batch_size) & (index < n)
    index = jnp.where(valid, index, 0)
    if shuffle:
        index = _permutation(jax.random.fold_in(key, epoch), n)[index]
    index = _sharding._constrain(index, _sharding.batch_sharding(mesh))
    mask = None
    if slots * n_batches > n:
        mask = _sharding._constrain(valid.astype(x.dtype), _sharding.batch_sharding(mesh))
    return x[index], y[index], mask


def _epoch_loop(epoch_fn, params, state, first_epoch, count, alive, runs, buffers, *args):
    """Run up to `count` epochs while any model is alive; row ``i`` of `buffers` gets epoch i.

    `alive` and `runs` (epochs run so far) are scalars for one model or ``(K,)`` for many. A
    model whose epoch ends with a non-finite loss or parameters keeps its previous parameters
    and state, gets NaN in its row and stops; ``done`` counts the rows where any model lived.
    """

    def cond(carry):
        i, _, _, _, alive, _ = carry
        return (i < count) & jnp.any(alive)

    def body(carry):
        i, params, state, buffers, alive, runs = carry
        new_params, new_state, row, ok = epoch_fn(params, state, first_epoch + i, *args)
        live = alive & ok
        buffers = {
            k: buffers[k].at[i].set(_select(live, row[k], jnp.nan).astype(buffers[k].dtype))
            for k in buffers
        }
        return (
            i + jnp.any(live).astype(i.dtype),
            _select(live, new_params, params),
            _select(live, new_state, state),
            buffers,
            live,
            runs + live.astype(runs.dtype),
        )

    init = (jnp.zeros((), jnp.int32), params, state, buffers, alive, runs)
    done, params, state, buffers, alive, runs = jax.lax.while_loop(cond, body, init)
    return params, state, buffers, done, alive, runs


@functools.lru_cache(maxsize=32)
def _make_epochs(net, opt, *, loss, grads, n, batch_size, shuffle, has_val, zeros, mesh=None):
    """The compiled program: run up to `count` epochs, recording one history row each.

    Cached on what shapes the program, so calling `fit` again with the same net, optimizer
    object, loss and data size (a loop over seeds or strengths) reuses the compilation. With a
    `mesh`, every argument and result is replicated on its devices and the batches inside are
    split over its "data" axis.
    """
    epoch_fn = _epoch_fn(
        net, opt, loss=loss, grads=grads, n=n, batch_size=batch_size, shuffle=shuffle,
        has_val=has_val, zeros=zeros, mesh=mesh,
    )  # fmt: skip

    def _fit_epochs(params, state, first_epoch, count, alive, runs, buffers, *args):
        return _epoch_loop(epoch_fn, params, state, first_epoch, count, alive, runs, buffers, *args)

    if mesh is None:
        return jax.jit(_fit_epochs, donate_argnums=(0, 1, 6))
    everywhere = _sharding.replicated(mesh)
    return jax.jit(
        _fit_epochs, donate_argnums=(0, 1, 6), in_shardings=everywhere, out_shardings=everywhere
    )


def _history_buffers(names, n_layers, dtype, lead=()):
    """Zeroed per-epoch buffers of a fixed size (so the program does not depend on `epochs`)."""
    cap = _MAX_EPOCHS_PER_CALL
    buffers = {k: jnp.zeros((cap, *lead), dtype) for k in names}
    for k in ("w_l1", "w_l2", "w_zeros"):
        buffers[k] = jnp.zeros((cap, *lead, n_layers), dtype)
    return buffers


def _run_compiled(run, params, state, alive, buffers, args, *, epochs, initial_epoch, bar, postfix):
    """Call the compiled epoch loop until `epochs` epochs ran or no model is alive.

    Each call runs as many epochs as fit in about `_TARGET_SECONDS_PER_CALL` (one at first), so
    the progress bar stays live. Returns ``(params, state, rows, epochs_done, alive, runs)``
    with `rows` a list of per-call dicts of host arrays.
    """
    runs = jnp.zeros(jnp.shape(alive), jnp.int32)
    if isinstance(alive, jax.Array) and alive.committed:
        # Placed on a mesh: `runs` goes where `alive` is, or the second call would recompile.
        runs = _sharding._place(runs, alive.sharding)
    rows: list[dict[str, np.ndarray]] = []
    done_total, per_call = 0, 1
    while done_total < epochs:
        count = min(per_call, epochs - done_total, _MAX_EPOCHS_PER_CALL)
        start = time.perf_counter()
        params, state, buffers, done, alive, runs = run(
            params,
            state,
            jnp.asarray(initial_epoch + done_total, jnp.int32),
            jnp.asarray(count, jnp.int32),
            alive,
            runs,
            buffers,
            *args,
        )
        done = int(done)
        host = jax.device_get(buffers)
        rows.append({k: v[:done] for k, v in host.items()})
        done_total += done
        if bar is not None:
            bar.update(done)
            bar.set_postfix(postfix(host, done), refresh=False)
        if not np.any(np.asarray(alive)):
            break
        elapsed = time.perf_counter() - start
        if count > 0 and elapsed > 0:
            per_call = max(1, int(count * _TARGET_SECONDS_PER_CALL / elapsed))
    return params, state, rows, done_total, np.asarray(alive), np.asarray(runs)


def _check_counts(epochs: Any, initial_epoch: Any, batch_size: Any, n: int) -> int:
    """Validate the epoch counts and return the batch size (``n`` for None, at most ``n``)."""
    for name, v in (("epochs", epochs), ("initial_epoch", initial_epoch)):
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 0:
            raise ValueError(f"{name} must be an integer >= 0; got {v!r}")
    if batch_size is None:
        return n
    if (
        isinstance(batch_size, bool)
        or not isinstance(batch_size, (int, np.integer))
        or batch_size < 1
    ):
        raise ValueError(f"batch_size must be a positive integer or None; got {batch_size!r}")
    return min(int(batch_size), n)


def _check_validation(net, validation, x, y, loss, reg):
    """``(x_val, y_val)`` as arrays, checked; a one-row placeholder when `validation` is None."""
    if validation is None:
        return x[:1], y[:1]
    if not isinstance(validation, (tuple, list)) or len(validation) != 2:
        raise TypeError("validation must be a pair (x_val, y_val)")
    xv, yv = jnp.asarray(validation[0]), jnp.asarray(validation[1])
    check_problem(net, xv, yv, loss)
    _check_data(net, xv, reg)
    return xv, yv


def _check_data(net: MLP, x: jax.Array, reg: RegLike, name: str = "x") -> None:
    """Check `x` (shape, NaN) and `reg` once, outside the compiled loop.

    `check_problem` has checked the targets (shape, label range); the values of the data cannot
    be checked inside `jit`.
    """
    check_inputs(net, x, name)
    per_layer(reg, net.n_layers)


def _history_names(has_val: bool) -> list[str]:
    names = ["loss", "data_loss", "penalty", "accuracy", "learning_rate"]
    return names + (["val_loss", "val_accuracy"] if has_val else [])


# Readable order (JAX's tree functions sort dict keys): epoch, training, validation, weights.
_ORDER = ["loss", "data_loss", "penalty", "accuracy", "val_loss", "val_accuracy"]
_ORDER += ["learning_rate", "w_l1", "w_l2", "w_zeros"]


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
    mesh: Mesh | None = None,
    devices: int | Sequence[jax.Device] | None = None,
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
    mesh = _sharding._resolve_mesh(mesh, devices, _sharding.DATA, "fit")
    key = jax.random.key(0) if key is None else key
    if mesh is not None and jax.process_count() > 1:
        # Global arrays become host values for the checks; everything else must agree.
        x, y, validation, params, opt_state = _sharding._host_values(
            (x, y, validation, params, opt_state)
        )
        _sharding._check_same_in_every_process(
            {"x": x, "y": y, "validation": validation, "params": params,
             "opt_state": opt_state, "key": key, "reg": reg}
        )  # fmt: skip
    check_problem(net, x, y, loss)
    check_params(net, params)
    x, y = jnp.asarray(x), jnp.asarray(y)
    _check_data(net, x, reg)
    batch_size = _check_counts(epochs, initial_epoch, batch_size, x.shape[0])
    xv, yv = _check_validation(net, validation, x, y, loss, reg)
    state = opt.init(params) if opt_state is None else opt_state
    # Copies: the compiled loop donates its buffers, and the caller's arrays must stay valid.
    if mesh is None:
        params = jax.tree.map(jnp.array, params)
        state = jax.tree.map(jnp.array, state)
    else:
        params, state = _sharding._place((params, state), _sharding.replicated(mesh), copy=True)

    regs = per_layer(reg, net.n_layers)
    run = _make_epochs(
        net,
        opt,
        loss=loss,
        grads=grads,
        n=x.shape[0],
        batch_size=batch_size,
        shuffle=shuffle,
        has_val=validation is not None,
        zeros=_zero_strengths(regs),
        mesh=mesh,
    )
    buffers = _history_buffers(_history_names(validation is not None), net.n_layers, x.dtype)
    args = (key, x, y, xv, yv, regs, precision_of(loss, y, x.dtype))
    alive = jnp.asarray(True)
    if mesh is not None:
        buffers, args, alive = _sharding._place((buffers, args, alive), _sharding.replicated(mesh))
    bar = _progress_bar(epochs, initial_epoch) if progress and epochs else None
    try:
        params, state, rows, done_total, alive, _ = _run_compiled(
            run,
            params,
            state,
            alive,
            buffers,
            args,
            epochs=epochs,
            initial_epoch=initial_epoch,
            bar=bar,
            postfix=_postfix,
        )
    finally:
        if bar is not None:
            bar.close()
    stop_reason = None
    if not alive:
        epoch = initial_epoch + done_total + 1
        stop_reason = (
            f"training diverged at epoch {epoch}: the loss or the parameters became "
            f"NaN or infinite; kept the parameters after epoch {epoch - 1}. Lower the "
            f"learning rate or check the data."
        )
        warnings.warn(stop_reason, RuntimeWarning, stacklevel=2)
    history = {k: np.concatenate([r[k] for r in rows]) if rows else np.zeros((0,)) for k in buffers}
    epoch = np.arange(initial_epoch + 1, initial_epoch + done_total + 1)
    history = {"epoch": epoch, **{k: history[k] for k in _ORDER if k in history}}
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
    check_params(net, params)
    x, y = jnp.asarray(x), jnp.asarray(y)
    _check_data(net, x, reg)
    precision = precision_of(loss, y, x.dtype)
    n = x.shape[0]
    data_sum, hits = 0.0, 0.0
    for start in range(0, n, batch_size):
        xb, yb = x[start : start + batch_size], y[start : start + batch_size]
        d, c = _eval_batch(net, loss, params, xb, yb, precision)
        data_sum += float(d) * len(xb)
        hits += float(c)
    pen = float(penalty(params, reg))
    return {
        "loss": data_sum / n + pen,
        "data_loss": data_sum / n,
        "penalty": pen,
        "accuracy": hits / n,
    }


@functools.partial(jax.jit, static_argnums=(0, 1))
def _eval_batch(net, loss, params, x, y, precision):
    total, parts = objective(net, params, x, y, loss=loss)
    out = forward(net, params, x)
    return parts["data"], jnp.sum(correct(loss, out, y, precision))


def predict(net: MLP, params: Params, x: Any, *, batch_size: int = 4096) -> jax.Array:
    """The network's outputs for `x`, computed in batches of `batch_size` rows."""
    x = jnp.asarray(x)
    outs = [
        _forward_jit(net, params, x[start : start + batch_size])
        for start in range(0, x.shape[0], batch_size)
    ]
    return jnp.concatenate(outs, axis=0)


_forward_jit = jax.jit(forward, static_argnums=0)
