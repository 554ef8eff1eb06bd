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
from jaxmlp._checks import is_concrete
from jaxmlp.metrics import correct, weight_stats
from jaxmlp.model import MLP
from jaxmlp.objective import objective_and_output
from jaxmlp.optim import Optimizer, apply_updates, learning_rate_of
from jaxmlp.regularization import FIELDS, Regularization
from jaxmlp.train import value_and_grads

MAX_EPOCHS_PER_CALL = 1000  # rows of the history buffers one call fills
# The history's fields in a readable order (JAX's tree functions sort dict keys).
ORDER = ("loss", "data_loss", "penalty", "accuracy", "val_loss", "val_accuracy")
ORDER += ("learning_rate", "w_l1", "w_l2", "w_zeros")


class Models(NamedTuple):
    """How K models share `program`'s arguments (its ``in_axes`` under `jax.vmap`).

    ``reg_axes[l]`` holds, per strength of layer ``l``, 0 (one value per model) or None
    (shared); ``key_axis`` is 0 for K shuffle keys, None for one shared key.
    """

    reg_axes: tuple[tuple[int | None, ...], ...]
    key_axis: int | None


class Spec(NamedTuple):
    """What shapes the compiled program, and so its cache key: every field is hashable.

    ``zeros`` marks, per layer and strength, a concrete 0 whose term is left out of the program.
    ``mesh`` (one model only): every batch's rows are split over its "data" axis. ``models``:
    None for one model, else how K models share the arguments.
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


_FEISTEL_ROUNDS = 6


def _mix(v: jax.Array, k: jax.Array) -> jax.Array:
    """A keyed hash of 32-bit words: murmur3's finalizer applied to ``v ^ k``."""
    v = (v ^ k) * jnp.uint32(0x9E3779B1)
    v = (v ^ (v >> 16)) * jnp.uint32(0x85EBCA6B)
    v = (v ^ (v >> 13)) * jnp.uint32(0xC2B2AE35)
    return v ^ (v >> 16)


def permutation(key: jax.Array, n: int) -> jax.Array:
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


def zero_strengths(regs: tuple[Regularization, ...]) -> tuple[tuple[bool, ...], ...]:
    """Per layer and strength, whether it is a concrete scalar 0 (its term can be left out)."""

    def zero(v: Any) -> bool:
        return is_concrete(v) and np.ndim(v) == 0 and float(v) == 0

    return tuple(tuple(zero(getattr(r, f)) for f in FIELDS) for r in regs)


def _without_zeros(regs: Any, zeros: tuple[tuple[bool, ...], ...]) -> tuple:
    """`regs` with the strengths marked in `zeros` replaced by a Python 0.0.

    `penalty` and `backprop` skip such terms: a run without L1 does not compute ``Σ|W|`` and
    its gradient every step (a few percent of a step on large layers).
    """

    def without(r: Regularization, zs: tuple[bool, ...]) -> Regularization:
        strengths = [0.0 if z else getattr(r, f) for f, z in zip(FIELDS, zs)]
        return Regularization.tree_unflatten(None, strengths)

    return tuple(without(r, zs) for r, zs in zip(regs, zeros))


def select(keep: jax.Array, new: Any, old: Any) -> Any:
    """Leaf by leaf ``new`` where `keep` holds, else ``old``; `keep` is () or (K,) per model."""

    def pick(a: jax.Array, b: jax.Array) -> jax.Array:
        k = keep.reshape(keep.shape + (1,) * (a.ndim - keep.ndim))
        return jnp.where(k, a, b)

    return jax.tree.map(pick, new, old)


def epoch_batches(spec: Spec, epoch: jax.Array, key: jax.Array, x: jax.Array, y: jax.Array):
    """The epoch's batches stacked ``(n_batches, batch_size, ...)`` and their 0/1 mask (or None).

    One gather per epoch. With a mesh, see `sharded_batches`.
    """
    n, batch_size = spec.n, spec.batch_size
    n_batches = math.ceil(n / batch_size)
    padded = n_batches * batch_size
    masked = padded > n  # a short last batch, padded to full size and masked out of the loss
    # One batch of all the data: its order cannot change a mean, so there is nothing to shuffle.
    shuffle = spec.shuffle and n_batches > 1
    if spec.mesh is not None:
        return sharded_batches(spec, shuffle, n_batches, epoch, key, x, y)
    if shuffle:
        order = permutation(jax.random.fold_in(key, epoch), n)
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


def sharded_batches(spec: Spec, shuffle: bool, n_batches: int, epoch, key, x, y):
    """`epoch_batches` with each batch's rows split over the mesh's "data" axis.

    Every batch gets ``slots`` rows, `batch_size` rounded up to a multiple of the D devices:
    batch ``i`` holds examples ``order[i·B : (i+1)·B]`` (fewer in a short last batch) and the
    padding rows are masked out of the loss, so the updates are those of `batch_size` without a
    mesh. The indices are laid out before the gather, so each device gathers only its own rows
    from its copy of the data.
    """
    n, batch_size, mesh = spec.n, spec.batch_size, spec.mesh
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
    updates, state = spec.opt.update(g, state, params)
    params = apply_updates(params, updates)
    hits = correct(spec.loss, out, yb, precision)
    if m is None:
        k, hits = spec.batch_size, jnp.sum(hits)
    else:
        k, hits = jnp.sum(m), jnp.sum(m * hits)  # k: real examples in the batch
    batch_sums = {"loss": k * total, "data_loss": k * parts["data"],
                  "penalty": k * parts["penalty"], "accuracy": hits}  # fmt: skip
    sums = {name: sums[name] + batch_sums[name] for name in sums}
    return (params, state, sums), None


def epoch_function(spec: Spec):
    """One epoch as a pure function, for one model or, under `jax.vmap`, for many.

    ``(params, state, epoch, key, x, y, xv, yv, reg, precision) -> (params, state, row, ok)``,
    with ``ok`` false when the loss or the new parameters are not finite. `reg` is a tuple with
    one `Regularization` per layer; the strengths marked in ``spec.zeros`` are taken as 0.
    """

    def epoch_fn(params, state, epoch, key, x, y, xv, yv, reg, precision):
        reg = _without_zeros(reg, spec.zeros)
        step = functools.partial(train_batch, spec, reg=reg, precision=precision)
        sums = dict.fromkeys(("loss", "data_loss", "penalty", "accuracy"), jnp.zeros((), x.dtype))
        batches = epoch_batches(spec, epoch, key, x, y)
        (params, state, sums), _ = jax.lax.scan(step, (params, state, sums), batches)
        row = {k: v / spec.n for k, v in sums.items()} | weight_stats(params)
        row["learning_rate"] = jnp.asarray(learning_rate_of(state), x.dtype)
        if spec.has_val:
            parts, out = objective_and_output(spec.net, params, xv, yv, loss=spec.loss, reg=reg)[1]
            row["val_loss"] = parts["data"]
            row["val_accuracy"] = jnp.mean(correct(spec.loss, out, yv, precision))
        finite = [jnp.all(jnp.isfinite(a)) for a in jax.tree.leaves(params)]
        ok = jnp.isfinite(row["loss"]) & jnp.all(jnp.stack(finite))
        return params, state, row, ok

    return epoch_fn


def epoch_loop(epoch_fn, params, state, first_epoch, count, alive, runs, buffers, *args):
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
            k: b.at[i].set(select(live, row[k], jnp.nan).astype(b.dtype))
            for k, b in buffers.items()
        }
        params, state = select(live, (new_params, new_state), (params, state))
        i, runs = i + jnp.any(live).astype(i.dtype), runs + live.astype(runs.dtype)
        return i, params, state, buffers, live, runs

    init = (jnp.zeros((), jnp.int32), params, state, buffers, alive, runs)
    done, params, state, buffers, alive, runs = jax.lax.while_loop(cond, body, init)
    return params, state, buffers, done, alive, runs


@functools.lru_cache(maxsize=32)
def program(spec: Spec):
    """The compiled loop ``(params, state, first_epoch, count, alive, runs, buffers, *args)``.

    ``args`` are ``(key, x, y, xv, yv, regs, precision)``; the result is ``(params, state,
    buffers, done, alive, runs)``. Cached on the `Spec`, so calling `fit` again with the same
    net, optimizer object, loss and data size (a loop over seeds or strengths) reuses the
    compilation. With K models the epoch runs under `jax.vmap` (the program follows its
    inputs' shardings, so a "models" mesh needs no change here); with a "data" mesh every
    argument and result is replicated and the batches inside are split.
    """
    epoch_fn = epoch_function(spec)
    if spec.models is not None:
        reg_spec = tuple(Regularization(*row) for row in spec.models.reg_axes)
        in_axes = (0, 0, None, spec.models.key_axis, None, None, None, None, reg_spec, None)
        epoch_fn = jax.vmap(epoch_fn, in_axes=in_axes)

    def loop(params, state, first_epoch, count, alive, runs, buffers, *args):
        return epoch_loop(epoch_fn, params, state, first_epoch, count, alive, runs, buffers, *args)

    # Compile logs (jax.log_compiles) name the program after its caller.
    loop.__name__ = "_fit_epochs" if spec.models is None else "_fit_many_epochs"
    shardings = {}
    if spec.mesh is not None:
        everywhere = _placement.replicated(spec.mesh)
        shardings = dict(in_shardings=everywhere, out_shardings=everywhere)
    return jax.jit(loop, donate_argnums=(0, 1, 6), **shardings)


def history_buffers(spec: Spec, dtype: Any, models: int | None = None) -> dict[str, jax.Array]:
    """Zeroed per-epoch buffers of a fixed size (so the program does not depend on `epochs`).

    Each is ``(MAX_EPOCHS_PER_CALL, [K,] ...)``; the per-layer weight statistics add an axis.
    """
    lead = (MAX_EPOCHS_PER_CALL,) + (() if models is None else (models,))
    names = [k for k in ORDER if spec.has_val or not k.startswith("val_")]
    per_layer = (spec.net.n_layers,)  # the axis of the weight statistics w_l1, w_l2, w_zeros
    return {k: jnp.zeros(lead + (per_layer if k.startswith("w_") else ()), dtype) for k in names}
