"""The compiled program behind `jaxmlp.fit` and `jaxmlp.fit_many`: shuffles, batches, epochs.

A private module with public names; `jaxmlp._driver` is its caller. From the inside out:

- `train_batch`: one update, the `jaxmlp.train.value_and_grads` of a batch, the optimizer's step,
  and the sums the epoch's history row needs.
- `epoch_batches`: an epoch's batches, gathered once before the scan. The shuffle is
  ``permutation(fold_in(key, epoch), n)``, so it depends only on the key and the epoch number and
  a resumed run sees the batches of one that never stopped. A short last batch is padded to
  full size and masked out of the loss, so every epoch runs the same program.
- `epoch_function`: one epoch, a `jax.lax.scan` over the batches, then the validation metrics and
  the weight statistics of its history row, and whether the result is finite.
- `epoch_loop`: up to ``count`` epochs in a `jax.lax.while_loop`, while any model is alive. A
  model whose epoch ends with a non-finite loss or parameters keeps its previous state, gets
  NaN in its row and stops.
- `program`: the loop compiled, for one model or, under `jax.vmap`, for K models (the models
  axis is an option of the program, `Spec.models`), and cached by its `Spec`.
"""

from __future__ import annotations

import functools
import math
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh

from jaxmlp import _placement
from jaxmlp.early_stopping import Watching, watch
from jaxmlp.metrics import (
    REGRESSION_FIELDS,
    correct,
    regression_metrics,
    regression_sums,
    task_of,
    total_squares,
    weight_stats,
)
from jaxmlp.model import MLP
from jaxmlp.objective import objective_and_output
from jaxmlp.optim import Optimizer, apply_updates, learning_rate_of
from jaxmlp.regularization import Regularization, without_zeros
from jaxmlp.train import value_and_grads

MAX_EPOCHS_PER_CALL = 1000  # rows of the history buffers one call fills
# The history's fields in a readable order (JAX's tree functions sort dict keys).
ORDER: tuple[str, ...] = ("loss", "data_loss", "penalty", "accuracy", "r2", "rmse", "mae")
ORDER += ("val_loss", "val_accuracy", "val_r2", "val_rmse", "val_mae")
ORDER += ("learning_rate", "w_l1", "w_l2", "w_zeros")


class Models(NamedTuple):
    """How K models share `program`'s arguments (its ``in_axes`` under `jax.vmap`).

    ``reg_axes[l]`` holds, per strength of layer ``l``, 0 (one value per model) or None
    (shared); ``key_axis`` is 0 for K shuffle keys, None for one shared key; ``group`` the
    number of models each step of `in_groups` runs at once, or None for all K.
    """

    reg_axes: tuple[tuple[int | None, ...], ...]
    key_axis: int | None
    group: int | None = None  # models per group (`in_groups`); None: all K under one vmap


class Spec(NamedTuple):
    """What shapes the compiled program, and so its cache key: every field is hashable.

    ``zeros`` marks, per layer and strength, a concrete 0 whose term is left out of the program.
    ``mesh`` (one model only): every batch's rows are split over its "data" axis. ``models``:
    None for one model, else how K models share the arguments. ``subsets`` (K models): each
    trains on its own rows of the data and validates on its own rows of the validation data
    (`Subsets`); ``n`` is then the longest list of rows. ``early``: the static part of an
    `jaxmlp.EarlyStopping` (its monitor, direction and whether it keeps the best state), or None.
    """

    net: MLP
    opt: Optimizer
    loss: str
    grads: str
    n: int
    batch_size: int
    shuffle: bool
    has_val: bool
    zeros: tuple[tuple[bool, ...], ...]
    mesh: Mesh | None = None
    models: Models | None = None
    subsets: bool = False
    early: Watching | None = None


_FEISTEL_ROUNDS = 6


def _mix(v: jax.Array, k: jax.Array) -> jax.Array:
    """A keyed hash of 32-bit words: murmur3's finalizer applied to ``v ^ k``."""
    v = (v ^ k) * jnp.uint32(0x9E3779B1)
    v = (v ^ (v >> 16)) * jnp.uint32(0x85EBCA6B)
    v = (v ^ (v >> 13)) * jnp.uint32(0xC2B2AE35)
    return v ^ (v >> 16)


def permutation(key: jax.Array, n: int, count: jax.Array | None = None) -> jax.Array:
    """A pseudo-random permutation of ``range(n)`` that is cheap inside a compiled loop.

    `jax.random.permutation` sorts random keys, which on a CPU costs more than a whole epoch of
    a small net (about 2.5 ms for n = 6000, 30 ms for n = 60000). Here a Feistel network —
    ``(a, b) → (b, a ⊕ F_r(b))`` for 6 rounds on the two halves of an m-bit integer,
    ``m = max(8, ⌈log2 n⌉)``, with ``F_r`` a hash keyed by a random word drawn from `key` — is a
    bijection of ``0 … 2^m − 1``; the values below ``n``, in the order the bijection lists them,
    are a permutation of ``range(n)``. Only elementwise work and one compaction (a running
    count and a scatter), no sort (about 0.15 ms for n = 6000).

    With `count` (a traced integer ``<= n``), the first `count` entries are the permutation that
    ``permutation(key, count)`` gives (the rest are 0): ``m`` follows `count`, so a model
    training on `count` of ``n`` padded rows shuffles exactly as a run on those rows alone.
    """
    size_bits = max(8, math.ceil(math.log2(max(n, 2))))
    bits: int | jax.Array
    limit: int | jax.Array
    if count is None:
        bits, limit = size_bits, n
    else:  # ⌈log2 count⌉ is the bit length of count − 1
        c = jnp.maximum(count, 2).astype(jnp.uint32)
        bits = jnp.maximum(8, 32 - jax.lax.clz(c - 1)).astype(jnp.uint32)
        limit = count
    width = [bits - bits // 2, bits // 2]  # widths of the halves a, b

    def low(w):  # the mask of the w low bits
        return (jnp.uint32(1) << w) - jnp.uint32(1)

    round_keys = jax.random.bits(key, (_FEISTEL_ROUNDS,), jnp.uint32)
    i = jnp.arange(1 << size_bits, dtype=jnp.uint32)
    a, b = i >> width[1], i & low(width[1])
    for r in range(_FEISTEL_ROUNDS):
        a = a ^ (_mix(b, round_keys[r]) & low(width[0]))
        a, b, width = b, a, width[::-1]
    v = (a << width[1]) | b
    keep = v < limit if count is None else (v < limit) & (i <= low(bits))
    # The kept values in order: a running count places each (`jnp.nonzero` does the same work
    # but compiles to twice the kernels: about 0.1 s more on a CPU).
    slot = jnp.where(keep, jnp.cumsum(keep, dtype=jnp.int32) - 1, n)
    return jnp.zeros(n, jnp.int32).at[slot].set(v.astype(jnp.int32), mode="drop")


def select(keep: jax.Array, new: Any, old: Any) -> Any:
    """Leaf by leaf ``new`` where `keep` holds, else ``old``; `keep` is () or (K,) per model."""

    def pick(a: jax.Array, b: jax.Array) -> jax.Array:
        k = keep.reshape(keep.shape + (1,) * (a.ndim - keep.ndim))
        return jnp.where(k, a, b)

    return jax.tree.map(pick, new, old)


class Subsets(NamedTuple):
    """Per model (a leading axis of K), the rows of the data it trains and validates on.

    ``rows`` ``(K, n)`` indexes the training data, padded to the longest list; the first
    ``count[k]`` are model k's. ``val_rows`` and ``val_count`` do the same for the validation
    data; ``precision`` is the regression accuracy's tolerance of each model's training targets.
    """

    rows: jax.Array
    count: jax.Array  # type: ignore[assignment]  # shadows tuple.count
    val_rows: jax.Array
    val_count: jax.Array
    precision: jax.Array


def epoch_batches(spec: Spec, epoch: jax.Array, key: jax.Array, x: jax.Array, y: jax.Array,
                  subset: Subsets | None = None):  # fmt: skip
    """The epoch's batches stacked ``(n_batches, batch_size, ...)`` and their 0/1 mask (or None).

    One gather per epoch. With a mesh, see `sharded_batches`; with a model's `subset` (one
    model's entries of `Subsets`), its rows in the order a run on them alone would see, then
    padding rows masked out.
    """
    n, batch_size = spec.n, spec.batch_size
    n_batches = math.ceil(n / batch_size)
    padded = n_batches * batch_size
    masked = padded > n or subset is not None  # padding rows, masked out of the loss
    # One batch of all the data: its order cannot change a mean, so there is nothing to shuffle.
    shuffle = spec.shuffle and n_batches > 1
    if spec.mesh is not None:
        return sharded_batches(spec, shuffle, n_batches, epoch, key, x, y)
    count = n if subset is None else subset.count
    order = jnp.arange(n) if masked or shuffle else None
    if shuffle and subset is None:
        order = permutation(jax.random.fold_in(key, epoch), n)
    elif shuffle:  # as a run on `count` rows: shuffled unless one batch holds them all
        assert subset is not None and order is not None
        shuffled = permutation(jax.random.fold_in(key, epoch), n, subset.count)
        order = jnp.where(count > batch_size, shuffled, order)
    if masked:
        assert order is not None
        order = jnp.concatenate([order, jnp.zeros(padded - n, order.dtype)])
    if subset is not None:
        order = subset.rows[order]
    if order is not None:
        x, y = x[order], y[order]

    def split(a):
        return a.reshape((n_batches, batch_size) + a.shape[1:])

    mask = split((jnp.arange(padded) < count).astype(x.dtype)) if masked else None
    return split(x), split(y), mask


def sharded_batches(spec: Spec, shuffle: bool, n_batches: int, epoch, key, x, y):
    """`epoch_batches` with each batch's rows split over the mesh's "data" axis.

    Every batch gets ``slots`` rows, `batch_size` rounded up to a multiple of the D devices:
    batch ``i`` holds examples ``order[i·B : (i+1)·B]`` (fewer in a short last batch) and the
    padding rows are masked out of the loss, so the updates are those of `batch_size` without a
    mesh. The indices are laid out before the gather, so each device gathers only its own rows
    from its copy of the data.
    """
    n, batch_size, mesh = spec.n, spec.batch_size, spec.mesh
    assert mesh is not None
    shards = mesh.shape[_placement.DATA]
    slots = -(-batch_size // shards) * shards
    j = jnp.arange(slots)[None, :]
    index = jnp.arange(n_batches)[:, None] * batch_size + j  # (n_batches, slots)
    valid = (j < batch_size) & (index < n)
    index = jnp.where(valid, index, 0)
    if shuffle:
        index = permutation(jax.random.fold_in(key, epoch), n)[index]
    sharded = _placement.batch_sharding(mesh)  # each batch's rows split over "data"
    index = _placement.constrain(index, sharded)
    mask = _placement.constrain(valid.astype(x.dtype), sharded) if slots * n_batches > n else None
    return x[index], y[index], mask


def train_batch(spec: Spec, carry: tuple, batch: tuple, reg: Any, precision: jax.Array):
    """One update on one batch (a `jax.lax.scan` step): ``(params, state, sums) -> same``."""
    params, state, sums = carry
    xb, yb, m = batch
    if spec.mesh is not None:
        # Each device computes its rows; XLA sums the gradients across the "data" axis.
        xb, yb, m = _placement.constrain((xb, yb, m), _placement.row_sharding(spec.mesh))
    (total, parts, out), g = value_and_grads(spec.net, params, xb, yb, loss=spec.loss, reg=reg,
                                             grads=spec.grads, mask=m)  # fmt: skip
    updates, new_state = spec.opt.update(g, state, params)
    new_params = apply_updates(params, updates)
    hits = correct(spec.loss, out, yb, precision)
    k = spec.batch_size if m is None else jnp.sum(m)  # real examples in the batch
    batch_sums = {"loss": k * total, "data_loss": k * parts["data"],
                  "penalty": k * parts["penalty"],
                  "accuracy": jnp.sum(hits if m is None else m * hits)}  # fmt: skip
    if task_of(spec.loss) == "regression":
        batch_sums |= regression_sums(out, yb, m)
    if spec.subsets:  # a batch of padding only (a model with fewer rows): no update, no sums
        real = jnp.sum(m) > 0  # (its masked means are 0/0)
        new_params, new_state = select(real, (new_params, new_state), (params, state))
        batch_sums = {name: jnp.where(real, v, 0) for name, v in batch_sums.items()}
    sums = {name: sums[name] + batch_sums[name] for name in sums}
    return (new_params, new_state, sums), None


def zero_sums(spec: Spec, dtype: Any) -> dict[str, jax.Array]:
    """The epoch's running sums before its first batch (`train_batch` adds to them)."""
    sums = dict.fromkeys(("loss", "data_loss", "penalty", "accuracy"), jnp.zeros((), dtype))
    if task_of(spec.loss) == "regression":
        sums |= {"sse": jnp.zeros((spec.net.out_features,), dtype), "sae": jnp.zeros((), dtype)}
    return sums


def training_row(spec: Spec, sums: dict, y: jax.Array, subset: Subsets | None) -> dict:
    """The epoch's training metrics from its sums: means over the examples, and R², RMSE, MAE."""
    count = spec.n if subset is None else subset.count
    row = {k: sums[k] / count for k in ("loss", "data_loss", "penalty", "accuracy")}
    if task_of(spec.loss) == "regression":
        if subset is None:
            sst = total_squares(y)
        else:
            sst = total_squares(y[subset.rows], (jnp.arange(spec.n) < count).astype(y.dtype))
        row |= regression_metrics(sums["sse"], sums["sae"], sst, count)
    return row


def validation_row(spec: Spec, params, xv, yv, reg, precision, subset: Subsets | None) -> dict:
    """The validation metrics of `params`: data loss, accuracy, and R², RMSE, MAE."""
    mask = None
    if subset is not None:
        xv, yv = xv[subset.val_rows], yv[subset.val_rows]
        mask = (jnp.arange(xv.shape[0]) < subset.val_count).astype(xv.dtype)
    parts, out = objective_and_output(spec.net, params, xv, yv, loss=spec.loss, reg=reg,
                                      mask=mask)[1]  # fmt: skip
    hits = correct(spec.loss, out, yv, precision)
    count = xv.shape[0] if subset is None else subset.val_count
    row = {"val_loss": parts["data"],
           "val_accuracy": jnp.sum(hits if mask is None else mask * hits) / count}  # fmt: skip
    if task_of(spec.loss) == "regression":
        sums = regression_sums(out, yv, mask)
        metrics = regression_metrics(sums["sse"], sums["sae"], total_squares(yv, mask), count)
        row |= {"val_" + k: v for k, v in metrics.items()}
    return row


def epoch_function(spec: Spec):
    """One epoch as a pure function, for one model or, under `jax.vmap`, for many.

    ``(params, state, epoch, key, x, y, xv, yv, reg, precision, subset) -> (params, state, row,
    ok)``, with ``ok`` false when the loss or the new parameters are not finite. `reg` is a
    tuple with one `Regularization` per layer; the strengths marked in ``spec.zeros`` are taken
    as 0. `subset` is None, or the model's `Subsets` (its `precision` then replaces the shared).
    """

    def epoch_fn(params, state, epoch, key, x, y, xv, yv, reg, precision, subset):
        reg = without_zeros(reg, spec.zeros)
        precision = precision if subset is None else subset.precision
        step = functools.partial(train_batch, spec, reg=reg, precision=precision)
        batches = epoch_batches(spec, epoch, key, x, y, subset)
        (params, state, sums), _ = jax.lax.scan(step, (params, state, zero_sums(spec, x.dtype)),
                                                batches)  # fmt: skip
        row = training_row(spec, sums, y, subset) | weight_stats(params)
        row["learning_rate"] = jnp.asarray(learning_rate_of(state), x.dtype)
        if spec.has_val:
            row |= validation_row(spec, params, xv, yv, reg, precision, subset)
        finite = [jnp.all(jnp.isfinite(a)) for a in jax.tree.leaves(params)]
        ok = jnp.isfinite(row["loss"]) & jnp.all(jnp.stack(finite))
        return params, state, row, ok

    return epoch_fn


def epoch_loop(spec, epoch_fn, carry, first_epoch, count, numbers, *args):
    """Run up to `count` epochs while any model is alive; row ``i`` of the buffers gets epoch i.

    ``carry`` is ``(params, state, alive, runs, buffers, watch)``; `buffers` holds the packed
    history rows (`pack_row`, `history_buffer`); `alive` and `runs` (epochs run so far) are
    scalars for one model or ``(K,)`` for many. A model whose epoch ends with a
    non-finite loss or parameters keeps its previous parameters and state, gets NaN in its row
    and stops; with early stopping (``spec.early``, `watch` its state, `numbers` its settings)
    a model also stops when `jaxmlp.early_stopping.watch` says so. Returns the carry and
    ``done``, the number of rows where any model lived.
    """

    def cond(loop):
        i, (_, _, alive, _, _, _) = loop
        return (i < count) & jnp.any(alive)

    def body(loop):
        i, (params, state, alive, runs, buffers, w) = loop
        new_params, new_state, row, ok = epoch_fn(params, state, first_epoch + i, *args)
        live = alive & ok
        packed = select(live, pack_row(spec, row).astype(buffers.dtype), jnp.nan)
        buffers = jax.lax.dynamic_update_index_in_dim(buffers, packed, i, 0)
        if spec.models is None:  # a branch: cheaper to compile than a select per leaf
            params, state = jax.lax.cond(live, lambda: (new_params, new_state),
                                         lambda: (params, state))  # fmt: skip
        else:
            params, state = select(live, (new_params, new_state), (params, state))
        i, runs = i + jnp.any(live).astype(i.dtype), runs + live.astype(runs.dtype)
        if spec.early is not None:
            epoch = first_epoch + i  # the epoch just run, counted from 1
            w, take, stop = watch(spec.early, w, row[spec.early.monitor], epoch, live, numbers)
            if spec.early.restore_best:
                best = select(take, (params, state), (w.params, w.opt_state))
                w = w._replace(params=best[0], opt_state=best[1])
            live = live & ~stop
        return i, (params, state, live, runs, buffers, w)

    done, carry = jax.lax.while_loop(cond, body, (jnp.zeros((), jnp.int32), carry))
    return carry, done


def in_groups(batched, in_axes: tuple, group: int):
    """`batched` (a function vmapped over K models) run on K/`group` groups in turn.

    The per-model arguments (axis 0 in `in_axes`) are reshaped to ``(K/group, group, ...)`` and
    `jax.lax.map` runs `batched` on one group at a time; the shared ones are passed whole. The
    results are those of ``batched(*args)``: each model's arithmetic is unchanged, only the
    number of models whose activations are live at once (`fit_many`'s ``group_size``, chosen by
    `jaxmlp.memory.group_size`).
    """

    def whole(axis: Any, arg: Any) -> Any:  # `axis` as a tree shaped like `arg`
        return jax.tree.map(lambda _: axis, arg) if axis is None or isinstance(axis, int) else axis

    def run(*args):
        flat, tree = jax.tree.flatten(args)
        axes = tree.flatten_up_to(tuple(whole(a, x) for a, x in zip(in_axes, args)))
        K = next(x.shape[0] for x, a in zip(flat, axes) if a == 0)
        split = [x.reshape((K // group, group) + x.shape[1:]) for x, a in zip(flat, axes) if a == 0]

        def one(per_model):
            it = iter(per_model)
            return batched(*tree.unflatten([next(it) if a == 0 else x for x, a in zip(flat, axes)]))

        out = jax.lax.map(one, split)
        return jax.tree.map(lambda o: o.reshape((K,) + o.shape[2:]), out)

    return run


@functools.lru_cache(maxsize=32)
def program(spec: Spec):
    """The compiled loop ``(carry, first_epoch, count, numbers, *args) -> (carry, done)``.

    ``carry`` is ``(params, state, alive, runs, buffers, watch)`` (see `epoch_loop`; `watch`
    and `numbers` are None without early stopping), ``args`` are ``(key, x, y, xv, yv, regs,
    precision, subsets)``. Cached on the `Spec`, so calling `fit` again with the same net,
    optimizer object, loss and data size (a loop over seeds or strengths) reuses the
    compilation. With K models the epoch runs under `jax.vmap` (the program follows its inputs'
    shardings, so a "models" mesh needs no change here); with a "data" mesh every argument and
    result is replicated and the batches inside are split.
    """
    epoch_fn = epoch_function(spec)
    if spec.models is not None:
        reg_spec = tuple(Regularization(*row) for row in spec.models.reg_axes)
        subsets_axis = 0 if spec.subsets else None
        in_axes = (0, 0, None, spec.models.key_axis, None, None, None, None, reg_spec, None,
                   subsets_axis)  # fmt: skip
        epoch_fn = jax.vmap(epoch_fn, in_axes=in_axes)
        if spec.models.group is not None:
            epoch_fn = in_groups(epoch_fn, in_axes, spec.models.group)

    def loop(carry, first_epoch, count, numbers, *args):
        return epoch_loop(spec, epoch_fn, carry, first_epoch, count, numbers, *args)

    # Compile logs (jax.log_compiles) name the program after its caller.
    loop.__name__ = "_fit_epochs" if spec.models is None else "_fit_many_epochs"
    if spec.mesh is None:
        return jax.jit(loop, donate_argnums=0)
    everywhere = _placement.replicated(spec.mesh)
    return jax.jit(loop, donate_argnums=0, in_shardings=everywhere, out_shardings=everywhere)


def fields(spec: Spec) -> tuple[str, ...]:
    """The history's fields for `spec` (``val_`` ones with validation, R² … for a regression)."""
    return history_fields(spec.loss, spec.has_val)


def history_fields(loss: str, validation: bool) -> tuple[str, ...]:
    """The fields of `jaxmlp.fit`'s history for a loss, with or without validation data."""
    regression = task_of(loss) == "regression"
    names = [k for k in ORDER if validation or not k.startswith("val_")]
    names = [k for k in names if regression or k.removeprefix("val_") not in REGRESSION_FIELDS]
    return ("epoch", *names)


def monitorable(loss: str, validation: bool) -> tuple[str, ...]:
    """The history fields early stopping and successive halving may watch: one number each.

    Every field of `history_fields` but ``epoch`` and the per-layer ``w_*``.
    """
    return tuple(k for k in history_fields(loss, validation)[1:] if not k.startswith("w_"))


def row_layout(spec: Spec) -> tuple[tuple[str, int | slice], ...]:
    """Where each history field sits in a packed row (`pack_row`).

    An index for a number; a slice of one entry per layer for a per-layer ``w_*`` statistic
    (an axis even for one layer).
    """
    layout: list[tuple[str, int | slice]] = []
    start, layers = 0, spec.net.n_layers
    for k in fields(spec)[1:]:  # all but "epoch", which the host counts
        per_layer = k.startswith("w_")
        layout.append((k, slice(start, start + layers) if per_layer else start))
        start += layers if per_layer else 1
    return tuple(layout)


def pack_row(spec: Spec, row: dict[str, jax.Array]) -> jax.Array:
    """An epoch's history row as one array ``([K,] F)``: one select and one write per epoch.

    Writing each field to a buffer of its own costs the compiled program two kernels per field
    (about a tenth of its compile time); `unpack_rows` undoes this on the host.
    """
    parts = [row[k][..., None] if isinstance(at, int) else row[k] for k, at in row_layout(spec)]
    return jnp.concatenate(parts, axis=-1)


def unpack_rows(spec: Spec, packed: np.ndarray) -> dict[str, np.ndarray]:
    """`pack_row`'s rows ``(rows, [K,] F)`` back as fields (views): numbers and per-layer arrays."""
    return {k: packed[..., at] for k, at in row_layout(spec)}


def history_buffer(spec: Spec, dtype: Any, models: int | None = None) -> np.ndarray:
    """The program's zeroed history buffer ``(MAX_EPOCHS_PER_CALL, [K,] F)`` (see `pack_row`).

    A fixed number of rows, so the program does not depend on `epochs`; made on the host (a
    device array of zeros would cost a compilation per shape before the run).
    """
    lead = (MAX_EPOCHS_PER_CALL,) + (() if models is None else (models,))
    last = row_layout(spec)[-1][1]
    width = last + 1 if isinstance(last, int) else last.stop
    return np.zeros(lead + (width,), np.dtype(dtype))
