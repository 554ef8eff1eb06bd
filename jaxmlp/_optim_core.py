"""The optimizer protocol and the helpers that `jaxmlp.optim` and `jaxmlp.transforms` share.

Private: users import `Optimizer` and `check_state_matches` from `jaxmlp.optim`. This module
exists so that the optimizers and the transformations can share one state discipline
(hyperparameters as checked array leaves, a saturating ``count``) without importing each other.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from jaxmlp._checks import check_range
from jaxmlp.schedules import FromCallable, ScheduleLike, is_schedule

Updates = Any
OptState = Any

_INT32_MAX = int(np.iinfo(np.int32).max)

# The admissible interval of every hyperparameter a state can hold (checked when concrete).
_UNIT = (0.0, 1.0)
_NONNEG = (0.0, math.inf)
RANGES = {
    "learning_rate": _NONNEG,
    "momentum": _UNIT,
    "rho": _UNIT,
    "b1": _UNIT,
    "b2": _UNIT,
    "eps": _NONNEG,
    "eps_root": _NONNEG,
    "weight_decay": _NONNEG,
    "max_norm": _NONNEG,
    "l1w": _NONNEG,
    "l1b": _NONNEG,
}


class Optimizer(NamedTuple):
    """A pure optimizer: ``init(params)`` and ``update(grads, state, params)``.

    ``init`` returns the state; ``update`` returns ``(updates, new_state)``. A transformation
    (`jaxmlp.transforms`) is the same pair of functions.
    """

    init: Callable[[Any], OptState]
    update: Callable[..., tuple[Updates, OptState]]


def hyper(name: str, value: Any) -> jax.Array:
    """A hyperparameter as a float array of JAX's default float dtype, checked if concrete."""
    low, high = RANGES[name]
    check_range(name, value, low, high)
    return jnp.asarray(value, dtype=jnp.result_type(float))


def as_learning_rate(value: ScheduleLike) -> Any:
    """A float as an array leaf, a schedule as itself, another callable as `FromCallable`."""
    if is_schedule(value):
        return value.check()
    if callable(value):
        return FromCallable(value)
    return hyper("learning_rate", value)


def lr_now(state: Any) -> jax.Array:
    """The learning rate of the update about to be made: ``schedule(count)`` or the value."""
    lr = state.learning_rate
    return lr(state.count) if is_schedule(lr) else lr


def check_state(state: Any, cls: type, who: str) -> None:
    """Raise TypeError unless `state` is the `cls` that ``who(...).init`` makes."""
    if not isinstance(state, cls):
        raise TypeError(
            f"state must be the {cls.__name__} made by {who}(...).init(params); got "
            f"{type(state).__name__}"
        )


def count0() -> jax.Array:
    """The step count of a fresh state: an int32 zero."""
    return jnp.zeros((), jnp.int32)


def next_count(count: jax.Array) -> jax.Array:
    """``count + 1``, saturating instead of wrapping around to a negative step."""
    return jnp.where(count < _INT32_MAX, count + 1, count)


def is_bias(path: tuple[Any, ...]) -> bool:
    """True for a leaf stored under the dict key ``"b"`` (a layer's bias)."""
    return bool(path) and isinstance(path[-1], jax.tree_util.DictKey) and path[-1].key == "b"


def need_params(params: Any, who: str) -> None:
    """Raise ValueError when an update that needs the params was called without them."""
    if params is None:
        raise ValueError(f"{who} needs the params: call opt.update(grads, state, params)")


def check_state_matches(params: Any, tree: Any, what: str) -> None:
    """Raise ValueError unless `tree` (a part of an optimizer state) is shaped like `params`."""
    p_struct, t_struct = jax.tree.structure(params), jax.tree.structure(tree)
    if p_struct != t_struct:
        raise ValueError(
            f"{what} does not match the params tree: state holds {t_struct}, params are "
            f"{p_struct}; initialize the optimizer state with opt.init(params)"
        )
    for p, t in zip(jax.tree.leaves(params), jax.tree.leaves(tree)):
        if jnp.shape(p) != jnp.shape(t):
            raise ValueError(
                f"{what} does not match the params: a leaf of shape {jnp.shape(t)} stands "
                f"where params have {jnp.shape(p)}; initialize it with opt.init(params)"
            )
