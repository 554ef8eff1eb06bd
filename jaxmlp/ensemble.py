"""Many models trained at once: `fit_many` runs `jaxmlp.fit`'s compiled epochs under `jax.vmap`.

K models of one architecture — differing in initial weights (seeds), regularization strengths or
optimizer hyperparameters — train in one compiled program on the same data. Every leaf of their
parameters and optimizer states carries a leading axis of size K (`stack` builds such trees
from a list, `unstack` splits them again); a regularization strength is either one number
shared by all models or an array of K values. Model ``k`` gets exactly the updates, history and
final parameters that ``fit`` would give it alone (to float rounding): this is the tool for λ
sweeps, learning-rate sweeps and seed ensembles. It compiles once instead of K times and runs
one loop instead of K (the driver and the program are `fit`'s, with the models axis as an
option); how much time it saves beyond that depends on how well the device runs batched matrix
products of the net's sizes (``benchmarks/bench_many.py`` measures it).
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax.extend import core as jax_core
from jax.sharding import Mesh, NamedSharding
from jax.sharding import PartitionSpec as P
from jax.tree_util import PyTreeDef

from jaxmlp import _placement, memory
from jaxmlp._checks import check_key, check_net, check_params, compute_dtype
from jaxmlp._driver import (
    Callback,
    check_data,
    check_options,
    early_stopping_inputs,
    own_copies,
    train,
)
from jaxmlp._epochs import Models, Spec, Subsets, history_buffer
from jaxmlp.early_stopping import EarlyStopping
from jaxmlp.fit import FitResult, stop_reason
from jaxmlp.metrics import precision_of
from jaxmlp.model import MLP, Params
from jaxmlp.optim import Optimizer, OptState
from jaxmlp.regularization import FIELDS, RegLike, Regularization, per_layer, zero_strengths


class FitManyResult(NamedTuple):
    """What `fit_many` returns; every array has a leading axis of K models.

    Attributes:
      params: the trained parameters, each leaf ``(K, ...)`` (a diverged model's last good ones).
      opt_state: the optimizer states that go with them, each leaf ``(K, ...)``.
      history: the fields of `jaxmlp.fit`'s history, each ``(K, epochs, ...)``; a model that
        diverged has NaN in the rows after its last good epoch.
      stop_reasons: one per model: None when every epoch ran, else why it stopped early.
      epochs_run: ``(K,)`` epochs each model completed.
      best_epochs: with early stopping, ``(K,)`` each model's best epoch (1-based; 0 when none
        counted); without, None.
      early_state: early stopping's state at the end (every leaf ``(K, ...)``), or None.
      last_state: with ``restore_best``, the last epoch's stacked ``(params, opt_state)``.
    """

    params: Params
    opt_state: OptState
    history: dict[str, np.ndarray]
    stop_reasons: tuple[str | None, ...]
    epochs_run: np.ndarray
    best_epochs: np.ndarray | None = None
    early_state: Any = None
    last_state: Any = None

    def model(self, k: int) -> FitResult:
        """Model `k`'s result as `jaxmlp.fit` returns it (history cut to its epochs)."""
        params, opt_state = take((self.params, self.opt_state), k)
        history = {name: h[k, : self.epochs_run[k]] for name, h in self.history.items()}
        best = None if self.best_epochs is None else int(self.best_epochs[k]) or None
        early, last = (None if t is None else take(t, k) for t in (self.early_state,
                                                                    self.last_state))  # fmt: skip
        return FitResult(params, opt_state, history, self.stop_reasons[k], best, early, last)


def stack(trees: Sequence[Any]) -> Any:
    """Stack K pytrees of the same structure along a new leading axis of size K.

    For `fit_many`'s params, optimizer states and regularizations: stacking
    ``Regularization(l2w=a)`` and ``Regularization(l2w=b)`` gives ``Regularization(l2w=[a, b])``.

    Args:
      trees: K trees with the same structure and leaf shapes.

    Returns:
      One tree whose leaves have shape ``(K, *leaf.shape)``.

    >>> from jaxmlp.ensemble import stack
    >>> stack([Regularization(l2w=1e-4), Regularization(l2w=1e-3)]).l2w
    Array([0.0001, 0.001 ], dtype=float32)
    """
    trees = list(trees)
    if not trees:
        raise ValueError("stack needs at least one tree")
    first = jax.tree.structure(trees[0])
    structure: PyTreeDef
    for i, structure in enumerate(map(jax.tree.structure, trees[1:]), 1):
        if structure != first:
            raise ValueError(f"trees[{i}] has structure {structure}; trees[0] has {first}")

    def stack_leaves(*leaves: Any) -> jax.Array:
        a = jnp.stack([jnp.asarray(v) for v in leaves])
        return a.astype(a.dtype)  # Python numbers stack to a weakly typed array; make it concrete

    if not all(map(_host_copyable, jax.tree.leaves(trees))):
        return jax.tree.map(stack_leaves, *trees)  # keys, or leaves placed on chosen devices
    # On the host, then one transfer: stacking on the device compiles a program per shape.
    return jax.device_put(jax.tree.map(lambda *leaves: np.stack(leaves), *trees))


def init_states(opt: Optimizer, params: Params) -> OptState:
    """Fresh optimizer states for stacked `params`: ``jax.vmap(opt.init)(params)``.

    When the state does not depend on the parameters' values (every jaxmlp optimizer: zero
    moments, a count and the hyperparameters), one model's state is made on the host and
    repeated K times in one transfer, so nothing compiles (`jax.vmap` outside `jax.jit` compiles
    each operation of ``init`` for each new shape: about 0.5 s for Adam on a two-layer net);
    an ``init`` that reads the values runs under `jax.vmap`.

    >>> from jaxmlp.ensemble import init_states, stack
    >>> from jaxmlp.optim import adam
    >>> params = stack([{"w": jnp.ones(2)}, {"w": jnp.zeros(2)}, {"w": jnp.ones(2)}])
    >>> init_states(adam(1e-3), params).mu["w"].shape
    (3, 2)
    """
    K = int(np.shape(jax.tree.leaves(params)[0])[0])
    one = jax.tree.map(lambda a: np.zeros(np.shape(a)[1:], a.dtype), params)
    jaxpr = jax.make_jaxpr(opt.init)(one).jaxpr
    inputs = set(jaxpr.invars)
    used = [v for e in jaxpr.eqns for v in e.invars] + list(jaxpr.outvars)
    reads = any(isinstance(v, jax_core.Var) and v in inputs for v in used)
    state = None if reads else opt.init(one)
    if state is None or not all(map(_host_copyable, jax.tree.leaves(state))):
        return jax.vmap(opt.init)(params)
    repeat = jax.tree.map(lambda a: np.broadcast_to(a, (K,) + np.shape(a)), jax.device_get(state))
    return jax.device_put(repeat)


def _host_copyable(a: Any) -> bool:
    """Whether `a` can go through the host and back unchanged: not a PRNG key, not placed."""
    if isinstance(a, jax.Array):
        return not (a.committed or jax.dtypes.issubdtype(a.dtype, jax.dtypes.prng_key))
    return True


def take(tree: Any, k: int) -> Any:
    """Model `k` of a stacked tree: every leaf indexed ``[k]``.

    >>> from jaxmlp.ensemble import stack, take
    >>> take(stack([{"w": jnp.zeros(2)}, {"w": jnp.ones(2)}]), 1)["w"]
    Array([1., 1.], dtype=float32)
    """
    return jax.tree.map(lambda a: a[k], tree)


def take_reg(regs: tuple, models: Any) -> tuple:
    """The per-layer regularizations of the models `models` (indices into the K models).

    A strength shared by all models stays as it is; one with a value per model is indexed.

    >>> from jaxmlp.ensemble import take_reg
    >>> take_reg((Regularization(l2w=jnp.array([1.0, 2.0, 3.0]), l1w=0.5),), [2, 0])[0].l2w
    Array([3., 1.], dtype=float32)
    """
    models = np.asarray(models)

    def pick(strength: Any) -> Any:
        return strength if np.ndim(strength) == 0 else jnp.asarray(strength)[models]

    return tuple(Regularization(*[pick(getattr(r, f)) for f in FIELDS]) for r in regs)


def unstack(tree: Any) -> list[Any]:
    """The K trees of a stacked tree, the inverse of `stack`."""
    leaves = jax.tree.leaves(tree)
    if not leaves:
        raise ValueError("unstack needs a tree with at least one array leaf")
    return [take(tree, k) for k in range(jnp.shape(leaves[0])[0])]


def _check_models_axis(name: str, tree: Any, K: int, hint: str) -> None:
    """Raise unless every leaf of `tree` has a leading axis of `K` models."""
    for path, leaf in jax.tree_util.tree_leaves_with_path(tree):
        if np.ndim(leaf) < 1 or np.shape(leaf)[0] != K:
            raise ValueError(
                f"{name}{jax.tree_util.keystr(path)} must have a leading axis of K = {K} models "
                f"{hint}; got shape {tuple(np.shape(leaf))}"
            )


def _n_models(net: MLP, params: Any) -> int:
    """K from stacked `params`, with errors that say how stacking looks."""
    if not isinstance(params, tuple) or not params or not isinstance(params[0], dict):
        check_params(net, params)  # raises the usual structural error
    W0 = params[0].get("W")
    if np.ndim(W0) != 3:
        raise ValueError(
            "params must be stacked, every leaf with a leading axis of K models "
            f"(jaxmlp.ensemble.stack([...])): params[0]['W'] should have shape (K, "
            f"{net.sizes[0]}, {net.sizes[1]}); got {tuple(np.shape(W0))}"
        )
    K = int(np.shape(W0)[0])
    _check_models_axis("params", params, K, "(from params[0]['W'])")
    # One model's shapes, without a copy (indexing a device array compiles a program per shape).
    shapes = jax.tree.map(lambda a: np.broadcast_to(np.zeros((), a.dtype), np.shape(a)[1:])
                          if hasattr(a, "dtype") else a, params)  # fmt: skip
    check_params(net, shapes)
    return K


def _reg_axes(reg: RegLike, n_layers: int, K: int) -> tuple[tuple, tuple[tuple[Any, ...], ...]]:
    """The per-layer regularizations and, per strength, 0 (one per model) or None (shared)."""
    regs = per_layer(reg, n_layers)
    for l, r in enumerate(regs):
        for name in FIELDS:
            shape = tuple(np.shape(getattr(r, name)))
            if shape not in ((), (K,)):
                raise ValueError(
                    f"reg (layer {l}) {name} must be a number shared by all models or an array "
                    f"of shape ({K},), one per model; got shape {shape}"
                )
    # Axis 0 for the strengths of shape (K,), None for the shared numbers:
    return regs, tuple(tuple(0 if np.ndim(getattr(r, f)) else None for f in FIELDS) for r in regs)


def _key_axis(key: Any, K: int) -> int | None:
    """None for one key shared by all models, 0 for K keys (one shuffle order per model)."""
    shape = check_key(key)
    if shape in ((), (K,)):
        return None if shape == () else 0
    raise ValueError(
        f"key must be one PRNG key (the same shuffles for every model) or {K} keys, one per "
        f"model (jax.random.split(key, {K})); got keys of shape {shape}"
    )


def _rows(name: str, rows: Any, K: int, n: int, of: str) -> list[np.ndarray]:
    """`rows` as K non-empty int arrays of indices into `n` rows, with errors that name them."""
    if isinstance(rows, (str, bytes)) or not hasattr(rows, "__len__") or len(rows) != K:
        got = len(rows) if hasattr(rows, "__len__") else type(rows).__name__
        raise ValueError(f"{name} must hold K = {K} index arrays, one per model; got {got}")
    out = []
    for k, r in enumerate(rows):
        r = np.asarray(r)
        if r.ndim != 1 or not r.size or not np.issubdtype(r.dtype, np.integer):
            raise ValueError(
                f"{name}[{k}] must be a non-empty 1-D array of integer row indices; got "
                f"shape {r.shape} of {r.dtype}"
            )
        if r.min() < 0 or r.max() >= n:
            bad = int(r[(r < 0) | (r >= n)][0])
            raise ValueError(f"{name}[{k}] indexes {of} of {n} rows, 0 to {n - 1}; got {bad}")
        out.append(r.astype(np.int32))
    return out


def _padded(lists: list[np.ndarray]) -> tuple[jax.Array, jax.Array]:
    """K index arrays as one ``(K, longest)`` array padded with 0, and their lengths."""
    longest = max(len(r) for r in lists)
    rows = np.zeros((len(lists), longest), np.int32)
    for k, r in enumerate(lists):
        rows[k, : len(r)] = r
    return jnp.asarray(rows), jnp.asarray([len(r) for r in lists], jnp.int32)


def subsets(rows: Any, validation_rows: Any, K: int, y: jax.Array, n_val: int | None,
            loss: str, dtype: Any) -> Subsets | None:  # fmt: skip
    """`fit_many`'s per-model rows as `jaxmlp._epochs.Subsets`, or None when neither is given.

    Without `rows` every model trains on all the rows; without `validation_rows` every model
    validates on all the validation rows.
    """
    if rows is None and validation_rows is None:
        return None
    if validation_rows is not None and n_val is None:
        raise ValueError(
            "validation_rows index the validation data: pass validation=(x_val, y_val) as well "
            "(for cross-validation, the training data itself)"
        )
    n = y.shape[0]
    train = [np.arange(n)] * K if rows is None else _rows("rows", rows, K, n, "the data")
    val = [np.arange(n_val or 1)] * K
    if validation_rows is not None:
        assert n_val is not None  # refused above
        val = _rows("validation_rows", validation_rows, K, n_val, "the validation data")
    precision = jnp.stack([precision_of(loss, y[r], dtype) for r in train])
    return Subsets(*_padded(train), *_padded(val), precision)


def _group(net: MLP, stacked: tuple, K: int, group_size: int | None, mesh: Mesh | None,
           **sizes: Any) -> int | None:  # fmt: skip
    """The `Models.group` of the program: None for all K side by side (see `jaxmlp.memory`)."""
    one = jax.tree.map(lambda a: jax.ShapeDtypeStruct(a.shape[1:], a.dtype), stacked)
    if mesh is not None:
        if group_size not in (None, K):
            raise ValueError("group_size runs the models in groups on one device; with a "
                             "mesh every device runs its share at once: pass one or the "
                             "other")  # fmt: skip
        return None
    breakdown = memory.estimate(net, *one, models=K, **sizes)
    group = memory.group_size(breakdown, group_size, memory.device_memory())
    return None if group == K else group


def _check_mesh(mesh: Mesh | None, K: int) -> None:
    if mesh is not None and jax.process_count() > 1:
        raise ValueError(
            f"fit_many(mesh=...) splits the models over the devices of one process; this run "
            f"has {jax.process_count()} processes. Across processes, use fit's data parallelism "
            "or give each process its own share of the models"
        )
    if mesh is not None and K % mesh.shape[_placement.MODELS]:
        D = mesh.shape[_placement.MODELS]
        raise ValueError(
            f"fit_many with a mesh splits the K = {K} models over the {D} devices of its "
            f"'models' axis, so {D} must divide K: train a multiple of {D} models, or use a "
            f"mesh of a divisor of {K} devices (devices=...)"
        )


def fit_many(net: MLP, params: Params, opt: Optimizer, x: Any, y: Any, *, loss: str,
             reg: RegLike = None, epochs: int = 1, batch_size: int | None = None,
             validation: tuple[Any, Any] | None = None, key: jax.Array | None = None,
             shuffle: bool = True, grads: str = "autodiff", opt_state: OptState | None = None,
             initial_epoch: int = 0, progress: bool = True, mesh: Mesh | None = None,
             devices: int | Sequence[jax.Device] | None = None, callback: Callback | None = None,
             callback_every: int = 1, early_stopping: EarlyStopping | None = None,
             early_state: Any = None, rows: Any = None, validation_rows: Any = None,
             group_size: int | None = None) -> FitManyResult:  # fmt: skip
    """Train K models of `net` at once on ``(x, y)``, in one compiled program.

    Model ``k`` follows `jaxmlp.fit` exactly: for every mini-batch
    ``θ_k ← θ_k + opt.update(∇_θ [data_loss(θ_k) + penalty(θ_k, reg_k)], state_k)``, with the
    same shuffles, masking of a short last batch and history. The K models run side by side
    (`jax.vmap` inside the compiled epoch loop). A model whose loss or parameters become NaN or
    infinite stops there (keeps its last good parameters and state, NaN in its later history
    rows, a reason in ``stop_reasons``); the others go on.

    Args:
      net: the architecture, shared by all models.
      params: stacked initial parameters, each leaf ``(K, ...)``, e.g.
        ``stack([init_params(jax.random.key(s), net) for s in seeds])``.
      opt: an optimizer from `jaxmlp.optim`; its structure (which optimizer, schedule kind) is
        shared, its hyperparameters may differ per model through `opt_state`.
      x: inputs ``(n, net.in_features)``, shared.
      y: targets as for `jaxmlp.objective`, shared.
      loss: the data loss's name.
      reg: a `Regularization` (or one per layer) whose strengths are numbers (shared) or arrays
        of shape ``(K,)`` (one per model), e.g. ``Regularization(l2w=jnp.array([1e-4, 1e-3]))``.
      epochs: epochs to run for every model.
      batch_size: examples per update (None: the full batch), as for `jaxmlp.fit`.
      validation: ``(x_val, y_val)`` evaluated after every epoch, or None.
      key: one PRNG key (every model sees the same shuffles, as K separate `fit` calls with that
        key) or K keys (``jax.random.split(key, K)``: one shuffle order per model). Default
        ``jax.random.key(0)``.
      shuffle: reshuffle the examples every epoch (not when one batch holds all the data).
      grads: ``"autodiff"`` or ``"manual"``.
      opt_state: stacked optimizer states, each leaf ``(K, ...)``; default ``opt.init`` of every
        model. Per-model hyperparameters: ``stack([set_hyperparams(opt.init(p), learning_rate=
        lr) for p, lr in zip(unstack(params), rates)])``.
      initial_epoch: epochs already run (when resuming), as for `jaxmlp.fit`.
      progress: show a progress bar with the best loss and the number of models still running.
      mesh: a `jax.sharding.Mesh` with an axis named ``"models"``
        (`jaxmlp.sharding.models_mesh`): the K models are split over its D devices, K/D each
        (D must divide K), and the data is replicated; the models never communicate, so each
        equals its unsharded run up to float rounding. The returned arrays stay split. The
        devices must belong to this process (one host).
      devices: shorthand for ``mesh=jaxmlp.sharding.models_mesh(devices)``.
      callback: as for `jaxmlp.fit`, with stacked params and states and a history with the
        models axis first; ``snapshot.running`` says which models still train. It may return
        True (stop all) or K bools (stop those models: they keep their state, their later rows
        are NaN and ``stop_reasons`` says so).
      callback_every: the period of `callback` in epochs.
      early_stopping: a `jaxmlp.EarlyStopping`, applied to each model on its own inside the
        compiled loop: a model that stops is frozen (NaN in its later rows), the others go on,
        and the program ends when all have stopped. ``result.best_epochs`` holds each model's
        best epoch; with ``restore_best`` its parameters and state are that epoch's.
      early_state: early stopping's stacked state to continue from, as for `jaxmlp.fit`.
      rows: K index arrays into ``(x, y)``, one per model, of any lengths (repeats allowed: a
        bootstrap resample): model k trains on ``x[rows[k]], y[rows[k]]`` exactly as
        ``fit(..., x[rows[k]], y[rows[k]])`` would (the same shuffles and batches), while the
        data is held once. Inside, the lists are padded to the longest and the padding masked.
      validation_rows: K index arrays into the validation data: model k validates on those
        rows. For cross-validation pass ``validation=(x, y)`` and the held-out rows
        (`jaxmlp.cross_validate` does).
      group_size: how many models run side by side, a divisor of K: the program runs the K/G
        groups one after another (`jax.lax.map`), with the same numbers as all at once. None
        (the default): all K, unless `jaxmlp.memory.estimate` says they would not fit in the
        device's memory; then the largest group that fits, and a ValueError with the estimate
        when not even one model does. Not with a mesh.

    Returns:
      A `FitManyResult` ``(params, opt_state, history, stop_reasons, epochs_run, best_epochs)``;
      ``result.model(k)`` is model k's `jaxmlp.FitResult`.

    >>> from jaxmlp.ensemble import fit_many, stack
    >>> net = MLP((2, 8, 3), ("relu", "softmax"))
    >>> params = stack([init_params(jax.random.key(s), net) for s in range(3)])
    >>> x, y = spiral(jax.random.key(0), samples=20)
    >>> reg = Regularization(l2w=jnp.array([0.0, 1e-3, 1e-2]))  # a λ per model
    >>> result = fit_many(net, params, sgd(0.5), x, y, loss="categorical_crossentropy",
    ...                   reg=reg, epochs=4, batch_size=20, progress=False)
    >>> result.history["loss"].shape, result.params[0]["W"].shape
    ((3, 4), (3, 2, 8))
    >>> result.model(2).history["penalty"].shape
    (4,)
    """
    check_options(grads, callback, callback_every)
    mesh = _placement.resolve_mesh(mesh, devices, _placement.MODELS, "fit_many")
    check_net(net)
    K = _n_models(net, params)
    _check_mesh(mesh, K)
    regs, reg_axes = _reg_axes(reg, net.n_layers, K)
    x, y, xv, yv, batch_size, regs = check_data(net, x, y, validation, loss=loss, reg=regs,
                                                epochs=epochs, initial_epoch=initial_epoch,
                                                batch_size=batch_size,
                                                dtype=compute_dtype(params))  # fmt: skip
    key = jax.random.key(0) if key is None else key
    key_axis = _key_axis(key, K)
    # (opt_state None, the default, has no leaves to check.)
    _check_models_axis("opt_state", opt_state, K, "(stack K states with jaxmlp.ensemble.stack)")
    state = init_states(opt, params) if opt_state is None else opt_state
    params, state = own_copies(params, state, made=opt_state is None)
    split = subsets(rows, validation_rows, K, y, xv.shape[0] if validation else None, loss,
                    x.dtype)  # fmt: skip
    n = x.shape[0] if split is None else split.rows.shape[1]
    group = _group(net, (params, state), K, group_size, mesh, n=n, batch_size=min(batch_size, n),
                   n_val=xv.shape[0] if validation else 0,
                   per_model_data=key_axis == 0 or split is not None, dtype=x.dtype)  # fmt: skip
    spec = Spec(net, opt, loss, grads, n, min(batch_size, n), shuffle, validation is not None,
                zero_strengths(regs), models=Models(reg_axes, key_axis, group),
                subsets=split is not None)  # fmt: skip
    spec, watch, numbers = early_stopping_inputs(spec, early_stopping, params, state, (K,),
                                                 x.dtype, early_state)  # fmt: skip
    args = (key, x, y, xv, yv, regs, precision_of(loss, y, x.dtype), split)
    alive = np.ones((K,), bool) if watch is None else np.logical_not(watch.stopped)
    inputs = (params, state, history_buffer(spec, x.dtype, K), args, alive,
              watch, numbers)  # fmt: skip
    if mesh is not None:
        inputs = _place_models(mesh, inputs, reg_axes, key_axis)
    with _placement.running_on(mesh):
        outcome = train(spec, inputs, epochs=epochs, initial_epoch=initial_epoch,
                        progress=progress, callback=callback, every=callback_every)  # fmt: skip
    reasons = tuple(stop_reason(outcome, initial_epoch, k, early_stopping) for k in range(K))
    ended = outcome.alive | outcome.stopped | outcome.early_stopped
    diverged = [k for k in range(K) if not ended[k]]
    if diverged:
        warnings.warn(f"{len(diverged)} of {K} models diverged (models {diverged}); they kept "
                      "their last good parameters and the others went on. See result.stop_reasons.",
                      RuntimeWarning, stacklevel=2)  # fmt: skip
    return FitManyResult(outcome.params, outcome.opt_state, outcome.history, reasons, outcome.runs,
                         outcome.best_epoch, outcome.early_state, outcome.last_state)  # fmt: skip


def _place_models(mesh, inputs, reg_axes, key_axis):
    """`fit_many`'s inputs split over the mesh's "models" axis; the data replicated.

    The compiled program follows its inputs' shardings: every per-model array is split along
    its K axis, so each device runs K/D models and the program needs no change.
    """
    params, state, buffers, (key, x, y, xv, yv, regs, precision, split), alive, watch, numbers = (
        inputs
    )
    models = NamedSharding(mesh, P(_placement.MODELS))
    # The sharding of an argument by its models axis: 0 (one per model) or None (shared).
    by_axis = {0: models, None: _placement.replicated(mesh)}
    params, state, split, watch = _placement.place((params, state, split, watch), models, copy=True)
    numbers = _placement.place(numbers, by_axis[None])
    # History rows are (epochs, K, ...): the models axis is the second.
    buffers = _placement.place(buffers, NamedSharding(mesh, P(None, _placement.MODELS)))
    reg_shardings = tuple(
        Regularization.tree_unflatten(None, [by_axis[a] for a in row]) for row in reg_axes
    )
    regs = _placement.place(regs, reg_shardings)
    key, alive = _placement.place(key, by_axis[key_axis]), _placement.place(alive, models)
    x, y, xv, yv, precision = _placement.place((x, y, xv, yv, precision), by_axis[None])
    args = (key, x, y, xv, yv, regs, precision, split)
    return params, state, buffers, args, alive, watch, numbers
