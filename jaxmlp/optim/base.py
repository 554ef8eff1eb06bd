"""The optimizer protocol, hyperparameter declarations, and what every optimizer shares.

An `Optimizer` is a pair of pure functions, ``init(params) -> state`` and
``update(grads, state, params) -> (updates, state)``; `apply_updates` adds the updates to the
params. Every state is a NamedTuple holding a saturating int32 ``count`` (the updates taken so
far) and its hyperparameters as array leaves. Each state class declares them::

    class SGDState(NamedTuple):
        ...
        hyperparameters = Hyperparameters(learning_rate=LEARNING_RATE, momentum=FRACTION)

Each declaration is a `Hyper`: the admissible interval, how the factory's argument becomes the
initial leaf (`Hyper.initial`) and how `set_hyperparams` turns a new value into a replacement
leaf (`Hyper.replacement`: same dtype, same shape, so a jitted step does not recompile). The
factories build their states from the same declarations (`Hyperparameters.initial`), so each
interval is written once.

The helpers below are the pieces of the updates: ``−η_t·d`` with ``η_t = schedule(count)`` or the
fixed rate (`descent`, `lr_now`), the moving average ``β·m + (1 − β)·g^k`` (`ema`), a fresh state's
leaves (`initial`), and the checks every ``update`` runs on its state.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax.tree_util import PyTreeDef

from jaxmlp._checks import as_array, check_range, check_tree_matches, is_concrete
from jaxmlp.schedules import as_schedule, is_schedule

Updates = Any
OptState = Any


class Optimizer(NamedTuple):
    """A pure optimizer: ``init(params)`` and ``update(grads, state, params)``.

    ``init`` returns the state; ``update`` returns ``(updates, new_state)``. A transformation
    (`jaxmlp.optim.transforms`) is the same pair of functions.

    Equality is by program: two optimizers made by jaxmlp's factories compare equal (and hash
    alike) when their ``update`` is the same computation — the same factory with the same
    structural options (``nesterov``, ``amsgrad``, ``centered``, the AdamW mask, a chain of equal
    parts). Hyperparameters live in the state as data, so ``adam(1e-3) == adam(1e-2)``: a loop
    that makes a new optimizer for each `jaxmlp.fit` call reuses one compiled program. Other
    optimizers (a pair of your own functions) compare as tuples of their functions.
    """

    init: Callable[[Any], OptState]
    update: Callable[..., tuple[Updates, OptState]]

    def __eq__(self, other: object) -> bool:
        mine, theirs = program_of(self), program_of(other)
        if mine is not None and theirs is not None:
            return mine == theirs
        return tuple.__eq__(self, other)

    def __ne__(self, other: object) -> bool:
        return not self == other

    def __hash__(self) -> int:
        key = program_of(self)
        return tuple.__hash__(self) if key is None else hash(("Optimizer", key))


def program(update: Callable, *key: Any) -> Callable:
    """Mark `update` as the computation named by `key` (hashable): see `Optimizer`'s equality.

    The factories call it with their name and structural options, e.g. ``("adam", amsgrad)``.
    """
    update.program = key  # type: ignore[attr-defined]
    return update


def program_of(opt: Any) -> tuple | None:
    """The `program` key of an optimizer's ``update``, or None (not made by a factory)."""
    update = opt[1] if isinstance(opt, tuple) and len(opt) == 2 else None
    return getattr(update, "program", None)


def apply_updates(params: Any, updates: Updates) -> Any:
    """``params + updates`` leaf by leaf, keeping each parameter's dtype.

    Standing alone, it lets manual and autodiff gradients go through the same step.

    >>> apply_updates({"w": jnp.array([1.0, 2.0])}, {"w": jnp.array([0.5, -0.5])})["w"]
    Array([1.5, 1.5], dtype=float32)
    """
    p_struct: PyTreeDef = jax.tree.structure(params)
    u_struct = jax.tree.structure(updates)
    if p_struct != u_struct:
        raise ValueError(
            f"updates must have the same tree structure as params; got {u_struct} for "
            f"params {p_struct}"
        )
    return jax.tree.map(lambda p, u: (p + u).astype(jnp.result_type(p)), params, updates)


# ---------------------------------------------------------------------------------------------
# Hyperparameter declarations


@dataclass(frozen=True)
class Hyper:
    """A hyperparameter in ``[low, high)``: how a value becomes (or replaces) a state leaf.

    Values are checked against the interval when concrete (not under `jit`).
    """

    low: float = 0.0
    high: float = math.inf

    def initial(self, name: str, value: Any) -> Any:
        """The leaf a factory puts in a fresh state: a float array of JAX's default float dtype."""
        check_range(name, value, self.low, self.high)
        return as_array(value, jnp.result_type(float))

    def replacement(self, owner: str, name: str, old: Any, value: Any) -> Any:
        """The leaf `set_hyperparams` puts in place of `old` in an `owner` state.

        A number is checked, cast to the dtype of `old` and broadcast to its shape. A schedule
        (or a function ``step -> lr``) replaces only a schedule of the same kind.
        """
        if is_schedule(old) or callable(value):  # every schedule is callable
            return _new_schedule(owner, name, old, as_schedule(value) if callable(value) else value)
        check_range(name, value, self.low, self.high)
        return _new_leaf(name, value, old)


@dataclass(frozen=True)
class LearningRate(Hyper):
    """A learning rate: a number ``>= 0``, a schedule, or a function ``step -> lr``."""

    def initial(self, name: str, value: Any) -> Any:
        """A number as an array leaf, a schedule as itself, another callable as `FromCallable`."""
        if callable(value):  # every schedule is callable
            return as_schedule(value).check()
        return super().initial(name, value)


LEARNING_RATE = LearningRate()
NONNEGATIVE = Hyper()  # ε, weight decay, a maximum norm: in [0, ∞)
FRACTION = Hyper(0.0, 1.0)  # β, ρ, a momentum: in [0, 1)


class Hyperparameters(dict):
    """A state type's declarations: each hyperparameter's field name mapped to its `Hyper`."""

    def initial(self, **values: Any) -> dict[str, Any]:
        """The leaves of a fresh state from the factory's arguments, by name, in their order."""
        return {name: self[name].initial(name, value) for name, value in values.items()}


# Every adaptive optimizer's two ε: eps outside the square root, eps_root inside.
EPSILONS = Hyperparameters(eps=NONNEGATIVE, eps_root=NONNEGATIVE)


def _new_schedule(owner: str, name: str, old: Any, value: Any) -> Any:
    """`value` as a replacement for the schedule `old`, of the same kind and dtypes."""
    if not is_schedule(old):
        raise ValueError(
            f"{owner}.{name} holds a fixed value; a schedule would change the state's structure "
            "(and recompile): build the optimizer with the schedule as its learning_rate instead"
        )
    if not is_schedule(value):
        raise ValueError(
            f"{owner}.{name} holds a schedule ({type(old).__name__}); pass a schedule of the "
            f"same kind, e.g. {name}=state.{name}._replace(...)"
        )
    new_struct: PyTreeDef = jax.tree.structure(value)
    if new_struct != jax.tree.structure(old):
        raise ValueError(
            f"{owner}.{name} holds {jax.tree.structure(old)}; got {jax.tree.structure(value)}: "
            "another kind of schedule (or another function) changes the state's structure and "
            "recompiles; build a new optimizer instead"
        )
    value.check()
    return jax.tree.map(lambda v, o: _new_leaf(name, v, o), value, old)


def _new_leaf(name: str, value: Any, old: jax.Array) -> jax.Array:
    new = jnp.asarray(value, dtype=old.dtype)
    try:
        return jnp.broadcast_to(new, jnp.shape(old))
    except ValueError:
        raise ValueError(
            f"{name} must broadcast to the shape the state holds, {jnp.shape(old)}; got shape "
            f"{jnp.shape(new)}"
        ) from None


def set_hyperparams(state: NamedTuple, **values: Any) -> NamedTuple:
    """A copy of one optimizer's `state` with some hyperparameters changed.

    Values are cast to the dtype (and broadcast to the shape) already in the state, so a jitted
    step that takes the state does not recompile. A learning rate that is a schedule is
    replaced by a schedule of the same kind, e.g. ``learning_rate=
    state.learning_rate._replace(lr0=0.01)``; a float cannot replace a schedule nor the reverse
    (that changes the state's structure: build a new optimizer). For a `chain`, change an inner
    state: ``(set_hyperparams(state[0], ...), state[1])``. The per-layer L1 strengths of a
    `proximal_l1` state take a tuple (``l1w=(2e-4, None)``) or one number for every layer.

    Args:
      state: the state of one optimizer or transformation (e.g. an `AdamState`).
      **values: new values by name, checked like the optimizer's arguments.

    Returns:
      The new state.

    >>> state = sgd(0.1).init({"w": jnp.zeros(2)})
    >>> float(set_hyperparams(state, learning_rate=0.05).learning_rate)
    0.05...
    """
    declared = getattr(type(state), "hyperparameters", None)
    if declared is None:
        raise TypeError(
            "state must be the state of one jaxmlp optimizer (SGDState, AdamState, ...); got "
            f"{type(state).__name__} (for a chain, change one inner state: state[i])"
        )
    owner = type(state).__name__
    new = {}
    for name, value in values.items():
        if name not in declared:
            raise ValueError(
                f"unknown hyperparameter {name!r} for {owner}; expected one of {list(declared)}"
            )
        new[name] = declared[name].replacement(owner, name, getattr(state, name), value)
    return state._replace(**new)


# ---------------------------------------------------------------------------------------------
# Reading the learning rate


def lr_now(state: Any) -> jax.Array:
    """The learning rate of the update about to be made: ``schedule(count)`` or the value."""
    lr = state.learning_rate
    return lr(state.count) if is_schedule(lr) else lr


def _state_with_lr(state: Any) -> Any:
    """`state` if it has a learning rate, else the first inner state of a chain that has one."""
    if hasattr(state, "learning_rate"):
        return state
    chained = state if isinstance(state, tuple) and not hasattr(state, "_fields") else ()
    return next((found for found in map(_state_with_lr, chained) if found is not None), None)


def learning_rate_of(state: Any) -> jax.Array:
    """The learning rate of the most recent update: ``schedule(count − 1)`` or the fixed value.

    Before the first update it is the rate the first update will use (``schedule(0)``). For a
    `chain`, the rate of its first transformation that has one; NaN when none has.

    Args:
      state: an optimizer state, or a chain's tuple of states.

    Returns:
      A scalar (batched when the state is).

    >>> from jaxmlp import schedules
    >>> opt = sgd(schedules.inverse_time(1.0, 1.0))
    >>> params = {"w": jnp.zeros(1)}
    >>> state = opt.init(params)
    >>> for _ in range(3):
    ...     _, state = opt.update({"w": jnp.ones(1)}, state, params)
    >>> learning_rate_of(state)  # the third update used 1 / (1 + 2)
    Array(0.33333334, dtype=float32)
    """
    inner = _state_with_lr(state)
    if inner is None:
        return jnp.asarray(jnp.nan, jnp.result_type(float))
    lr = inner.learning_rate
    return lr(jnp.maximum(inner.count - 1, 0)) if is_schedule(lr) else lr


# ---------------------------------------------------------------------------------------------
# Pieces of the updates


def next_count(count: jax.Array) -> jax.Array:
    """``count + 1``, saturating instead of wrapping around to a negative step."""
    return jnp.where(count < jnp.iinfo(jnp.int32).max, count + 1, count)


def initial(hypers: dict[str, Any], params: Any = None,
            fills: tuple[Any, ...] = ()) -> tuple[dict[str, Any], list[Any]]:  # fmt: skip
    """The leaves of a fresh state: its count, its hyperparameters, and its moments.

    Returns ``({"count": 0, **hypers}, moments)``: the int32 step count, copies of the factory's
    hyperparameter leaves, and for each value in `fills` a tree shaped like `params` filled with
    it, each leaf in its parameter's dtype and placement (a moment: 0, or Adagrad's initial
    accumulator).

    Every `init` returns arrays of its own: a jitted step that donates its state (as optax users
    write one) must not delete the leaves the next `init` hands out. Outside `jax.jit` all of them
    come from the host in one transfer, so `init` compiles nothing (a `jnp.zeros_like` of each
    new shape would be a compilation of its own: tens of ms in a first call) and costs one
    transfer, not one per leaf (tens of µs each, in every `jaxmlp.fit` call).
    """
    leaves, tree = jax.tree.flatten(hypers)
    copy = [i for i, a in enumerate(leaves) if is_concrete(a) and isinstance(a, jax.Array)]
    like, like_tree = jax.tree.flatten(params)
    on_host = all(isinstance(p, (jax.Array, np.ndarray)) and is_concrete(p) for p in like)
    on_host = on_host and all(is_concrete(f) for f in fills)
    host = [np.zeros((), np.int32)] + [leaves[i] for i in copy]
    places: list[Any] = [None] * len(host)
    if on_host:
        for f in fills:
            host += [np.full(p.shape, f, p.dtype) for p in like]
            places += [p.sharding if isinstance(p, jax.Array) and p.committed else None
                       for p in like]  # fmt: skip
    count, *arrays = jax.device_put(host, places, may_alias=False)
    for i in copy:
        leaves[i] = arrays.pop(0)
    if on_host:
        n = len(like)
        moments = [jax.tree.unflatten(like_tree, arrays[j * n : (j + 1) * n])
                   for j in range(len(fills))]  # fmt: skip
    else:
        moments = [jax.tree.map(lambda p, f=f: jnp.full_like(p, f), params) for f in fills]
    return {"count": count, **jax.tree.unflatten(tree, leaves)}, moments


def ema(moment: Any, grads: Any, decay: jax.Array, order: int) -> Any:
    """``decay·moment + (1 − decay)·g^order``, kept in the moment's dtype."""
    return jax.tree.map(
        lambda m, g: (decay * m + (1 - decay) * g**order).astype(m.dtype), moment, grads
    )


def descent(lr: jax.Array, direction: Any, like: Any) -> Any:
    """``−lr·direction``, each leaf cast to the dtype of the matching leaf of `like`."""
    return jax.tree.map(lambda d, p: (-lr * d).astype(p.dtype), direction, like)


def is_bias(path: tuple[Any, ...]) -> bool:
    """True for a leaf stored under the dict key ``"b"`` (a layer's bias)."""
    return bool(path) and isinstance(path[-1], jax.tree_util.DictKey) and path[-1].key == "b"


# ---------------------------------------------------------------------------------------------
# Checks


def check_eps(eps: Any, eps_root: Any, who: str) -> None:
    """Raise ValueError when both ε are 0: a coordinate never given a gradient divides 0 by 0."""
    if all(is_concrete(e) and np.all(np.asarray(e) == 0) for e in (eps, eps_root)):
        raise ValueError(
            f"{who}: eps and eps_root are both 0, so a coordinate whose gradients have all "
            "been 0 would divide 0 by 0; set eps > 0 (added outside the square root) or "
            "eps_root > 0 (inside)"
        )


def check_state(state: Any, cls: type, who: str) -> None:
    """Raise TypeError unless `state` is the `cls` that ``who(...).init`` makes."""
    if not isinstance(state, cls):
        raise TypeError(
            f"state must be the {cls.__name__} made by {who}(...).init(params); got "
            f"{type(state).__name__}"
        )


def need_params(params: Any, who: str) -> None:
    """Raise ValueError when an update that needs the params was called without them."""
    if params is None:
        raise ValueError(f"{who} needs the params: call opt.update(grads, state, params)")


def check_state_matches(params: Any, tree: Any, what: str) -> None:
    """Raise ValueError unless `tree` (a part of an optimizer state) is shaped like `params`."""
    check_tree_matches(
        tree,
        params,
        f"{what} does not match the params tree: state holds {{tree}}, params are {{like}}; "
        "initialize the optimizer state with opt.init(params)",
        f"{what} does not match the params: a leaf of shape {{shape}} stands where params have "
        "{expected}; initialize it with opt.init(params)",
    )
