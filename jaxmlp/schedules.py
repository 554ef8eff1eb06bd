"""Learning-rate schedules: pure functions of the step whose parameters are data.

A schedule maps ``step`` — the number of updates already taken, 0 at the first update — to a
learning rate. An optimizer given a schedule uses ``schedule(state.count)`` for each update.

Each schedule here is a small NamedTuple: its fields (``lr0``, ``decay``, …) are arrays, so
they are pytree leaves that live in the optimizer state. Changing one between jitted steps
(``state._replace(learning_rate=state.learning_rate._replace(lr0=...))`` or
`jaxmlp.optim.set_hyperparams`) never recompiles, and `jax.vmap` sweeps them. Which schedule
it is (its type) is structure: switching kinds recompiles.

Any Python callable ``step -> lr`` is accepted too, wrapped in `FromCallable`. It is a closure
constant, not data: the function is part of the compiled program, so a different function
recompiles. It receives an integer array (a tracer under `jit`), so write it with `jax.numpy`.

Schedules, with ``t`` the step:

====================  ======================================================================
`constant`            ``value``
`inverse_time`        ``lr0 / (1 + decay·t)``  (the book's per-step decay)
`exponential`         ``lr0 · decay_rate^(t / transition_steps)``  (floor of the power if
                      ``staircase``)
`cosine`              ``lr0 · ((1 − alpha)·½(1 + cos(π·min(t, T)/T)) + alpha)``, ``T =
                      decay_steps``
`piecewise_constant`  ``values[i]`` where ``i`` = number of ``boundaries`` that are ``<= t``
`warmup`              linear from ``init_value`` to ``schedule(0)`` over ``warmup_steps``,
                      then ``schedule(t − warmup_steps)``
====================  ======================================================================
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from jaxmlp._checks import as_array, check_range, is_concrete


def _float(value: Any) -> jax.Array:
    return as_array(value, jnp.result_type(float))


def _checked_as_floats(schedule: Any) -> Any:
    """`schedule`, built from a factory's arguments, checked; then its fields as float arrays.

    The arguments are checked as given, so a message shows the value the caller wrote (``-0.1``,
    not its float32 rounding).
    """
    return type(schedule)(*map(_float, schedule.check()))


def _t(step: Any, like: jax.Array | float) -> jax.Array:
    """The step as a float of the schedule's dtype (the default float's for a Python number)."""
    dtype = jnp.result_type(float) if isinstance(like, (int, float)) else like.dtype
    return jnp.asarray(step).astype(dtype)


class Constant(NamedTuple):
    """``lr(t) = value``."""

    value: jax.Array | float

    def __call__(self, step: Any) -> jax.Array | float:
        """The learning rate at `step` (the same at every step)."""
        return self.value

    def check(self) -> Constant:
        """Validate the fields (when concrete); return self."""
        check_range("constant: value", self.value)
        return self


class InverseTime(NamedTuple):
    """``lr(t) = lr0 / (1 + decay·t)``: the book's learning-rate decay."""

    lr0: jax.Array | float
    decay: jax.Array | float

    def __call__(self, step: Any) -> jax.Array:
        """The learning rate at `step`."""
        return self.lr0 / (1 + self.decay * _t(step, self.lr0))

    def check(self) -> InverseTime:
        """Validate the fields (when concrete); return self."""
        check_range("inverse_time: lr0", self.lr0)
        check_range("inverse_time: decay", self.decay)
        return self


class Exponential(NamedTuple):
    """``lr(t) = lr0 · decay_rate^(t / transition_steps)``, the power floored if staircase."""

    lr0: jax.Array | float
    decay_rate: jax.Array | float
    transition_steps: jax.Array | float
    staircase: jax.Array | bool

    def __call__(self, step: Any) -> jax.Array:
        """The learning rate at `step`."""
        p = _t(step, self.lr0) / self.transition_steps
        p = jnp.where(self.staircase, jnp.floor(p), p)
        return self.lr0 * self.decay_rate**p

    def check(self) -> Exponential:
        """Validate the fields (when concrete); return self."""
        check_range("exponential: lr0", self.lr0)
        check_range("exponential: decay_rate", self.decay_rate)
        check_range("exponential: transition_steps", self.transition_steps, low_open=True)
        return self


class Cosine(NamedTuple):
    """``lr(t) = lr0 · ((1 − alpha)·½(1 + cos(π·min(t, T)/T)) + alpha)``, ``T = decay_steps``."""

    lr0: jax.Array | float
    decay_steps: jax.Array | float
    alpha: jax.Array | float

    def __call__(self, step: Any) -> jax.Array:
        """The learning rate at `step`."""
        t = jnp.minimum(_t(step, self.lr0), self.decay_steps)
        cosine_decay = 0.5 * (1 + jnp.cos(jnp.pi * t / self.decay_steps))
        return self.lr0 * ((1 - self.alpha) * cosine_decay + self.alpha)

    def check(self) -> Cosine:
        """Validate the fields (when concrete); return self."""
        check_range("cosine: lr0", self.lr0)
        check_range("cosine: decay_steps", self.decay_steps, low_open=True)
        check_range("cosine: alpha", self.alpha, 0.0, 1.0, high_open=False)
        return self


class PiecewiseConstant(NamedTuple):
    """``lr(t) = values[i]`` with ``i`` the number of ``boundaries`` that are ``<= t``."""

    boundaries: jax.Array
    values: jax.Array

    def __call__(self, step: Any) -> jax.Array:
        """The learning rate at `step`."""
        i = jnp.sum(jnp.asarray(step) >= self.boundaries)
        return self.values[i]

    def check(self) -> PiecewiseConstant:
        """Validate the fields (when concrete); return self."""
        # Leading axes are allowed: a stack of schedules (for vmap) is checked entry by entry.
        b, v = self.boundaries, self.values
        if jnp.ndim(b) < 1 or jnp.ndim(v) < 1 or jnp.shape(v)[-1] != jnp.shape(b)[-1] + 1:
            raise ValueError(
                "piecewise_constant: values must hold one more entry than boundaries; got "
                f"boundaries of shape {jnp.shape(b)} and values of shape {jnp.shape(v)}"
            )
        check_range("piecewise_constant: boundaries", b)
        check_range("piecewise_constant: values", v)
        if is_concrete(b) and np.any(np.diff(np.asarray(b), axis=-1) <= 0):
            raise ValueError(
                "piecewise_constant: boundaries must be strictly increasing; got "
                f"{np.asarray(b).tolist()}"
            )
        return self


class Warmup(NamedTuple):
    """Linear warmup from ``init_value`` to ``schedule(0)``, then ``schedule(t − warmup_steps)``."""

    schedule: Any
    warmup_steps: jax.Array
    init_value: jax.Array

    def __call__(self, step: Any) -> jax.Array:
        """The learning rate at `step`."""
        step = jnp.asarray(step)
        peak = self.schedule(jnp.zeros_like(step))
        frac = _t(step, self.init_value) / _t(jnp.maximum(self.warmup_steps, 1), self.init_value)
        ramp = self.init_value + (peak - self.init_value) * frac
        # Clamped so the inner schedule never sees a negative step (its value is unused there).
        after = self.schedule(jnp.maximum(step - self.warmup_steps, 0))
        return jnp.where(step < self.warmup_steps, ramp, after)

    def check(self) -> Warmup:
        """Validate the fields (when concrete); return self."""
        if not is_schedule(self.schedule):
            raise TypeError(
                f"warmup: schedule must be a schedule; got {type(self.schedule).__name__}"
            )
        self.schedule.check()
        check_range("warmup: warmup_steps", self.warmup_steps)
        check_range("warmup: init_value", self.init_value)
        return self


@jax.tree_util.register_pytree_node_class
class FromCallable:
    """A user function ``step -> lr`` as a schedule: a closure constant, not data.

    It has no leaves; the function is part of the pytree's structure, so replacing it with
    another function recompiles a jitted step (the same function object does not).
    """

    def __init__(self, fn: Callable[[jax.Array], Any]) -> None:
        self.fn = fn

    def __call__(self, step: Any) -> jax.Array:
        """The learning rate at `step`: ``fn(step)`` as a float array."""
        return _float(self.fn(step))

    def __repr__(self) -> str:
        return f"FromCallable({self.fn!r})"

    def check(self) -> FromCallable:
        """Nothing to validate ahead of time; return self."""
        return self

    def tree_flatten(self) -> tuple[tuple[()], Callable[[jax.Array], Any]]:
        """No leaves; the function is static structure."""
        return (), self.fn

    @classmethod
    def tree_unflatten(cls, fn: Callable[[jax.Array], Any], leaves: Any) -> FromCallable:
        """Rebuild from the static function."""
        return cls(fn)


Schedule = Constant | InverseTime | Exponential | Cosine | PiecewiseConstant | Warmup | FromCallable
"""Any schedule object of this module."""

ScheduleLike = float | jax.Array | Schedule | Callable[[jax.Array], Any]
"""What a ``learning_rate`` argument accepts: a number, a schedule, or a function of the step."""

TYPES = (Constant, InverseTime, Exponential, Cosine, PiecewiseConstant, Warmup)
"""The schedule types whose parameters are data (every one but `FromCallable`): NamedTuples of
arrays, which a checkpoint can hold."""


def is_schedule(x: Any) -> bool:
    """True for a schedule object of this module (including `FromCallable`)."""
    return isinstance(x, (*TYPES, FromCallable))


def as_schedule(x: Any) -> Schedule:
    """`x` itself if it is a schedule, `FromCallable(x)` for another callable."""
    if not callable(x):  # every schedule is callable
        raise TypeError(f"expected a schedule or a function step -> lr; got {type(x).__name__}")
    return x if is_schedule(x) else FromCallable(x)


def constant(value: float | jax.Array) -> Constant:
    """A constant learning rate.

    ``lr(t) = value``.

    Args:
      value: ``>= 0``.

    >>> constant(0.1)(7)
    Array(0.1, dtype=float32)
    """
    return _checked_as_floats(Constant(value))


def inverse_time(lr0: float, decay: float) -> InverseTime:
    """The book's decay: ``lr0 / (1 + decay·t)``, ``t`` counted from 0 at the first update.

    The book's optimizers compute ``learning_rate · 1 / (1 + decay · iterations)`` before each
    update, with ``iterations`` 0 at the first; PyTorch's ``Adagrad(lr_decay=...)`` uses the
    same law.

    Args:
      lr0: initial learning rate, ``>= 0``.
      decay: ``>= 0``; 0 is a constant learning rate.

    >>> inverse_time(1.0, 0.5)(2)
    Array(0.5, dtype=float32)
    """
    return _checked_as_floats(InverseTime(lr0, decay))


def exponential(
    lr0: float, decay_rate: float, transition_steps: float = 1, staircase: bool = False
) -> Exponential:
    """Exponential decay: ``lr0 · decay_rate^(t / transition_steps)``.

    With ``staircase`` the exponent is ``floor(t / transition_steps)``: the rate drops once
    every ``transition_steps`` updates (Keras' ``ExponentialDecay`` and optax's
    ``exponential_decay`` follow the same law).

    Args:
      lr0: initial learning rate, ``>= 0``.
      decay_rate: factor per ``transition_steps`` updates, ``>= 0``.
      transition_steps: ``> 0``.
      staircase: decay in discrete steps.

    >>> exponential(1.0, 0.5, transition_steps=2)(4)
    Array(0.25, dtype=float32)
    """
    # The arguments as given are checked first, as in `_checked_as_floats`.
    Exponential(lr0, decay_rate, transition_steps, staircase).check()
    if not isinstance(staircase, (bool, np.bool_)):
        raise TypeError(f"exponential: staircase must be a bool; got {staircase!r}")
    return Exponential(
        _float(lr0), _float(decay_rate), _float(transition_steps), jnp.asarray(staircase)
    )


def cosine(lr0: float, decay_steps: float, alpha: float = 0.0) -> Cosine:
    """Cosine decay from ``lr0`` to ``alpha·lr0`` over ``decay_steps``, then constant.

    ``lr(t) = lr0 · ((1 − alpha)·½(1 + cos(π·min(t, T)/T)) + alpha)`` with ``T = decay_steps``
    (Loshchilov & Hutter's SGDR without restarts; optax's ``cosine_decay_schedule``).

    Args:
      lr0: initial learning rate, ``>= 0``.
      decay_steps: ``T > 0``.
      alpha: final fraction of ``lr0``, in ``[0, 1]``.

    >>> [round(float(cosine(1.0, decay_steps=10, alpha=0.1)(t)), 4) for t in (0, 5, 10, 20)]
    [1.0, 0.55, 0.1, 0.1]
    """
    return _checked_as_floats(Cosine(lr0, decay_steps, alpha))


def piecewise_constant(boundaries: Sequence[int], values: Sequence[float]) -> PiecewiseConstant:
    """Piecewise-constant learning rate: ``values[i]`` from step ``boundaries[i−1]`` on.

    ``lr(t) = values[i]`` where ``i`` is the number of boundaries ``<= t``: ``values[0]`` for
    ``t < boundaries[0]``, ``values[1]`` for ``boundaries[0] <= t < boundaries[1]``, …. This is
    optax's convention (a boundary is the first step of the new value); Keras'
    ``PiecewiseConstantDecay`` switches one step later (``t > boundary``), so Keras boundary
    ``b`` is ``b + 1`` here.

    Args:
      boundaries: strictly increasing integer steps, ``>= 0``.
      values: learning rates, one more than ``boundaries``, each ``>= 0``.

    >>> lr = piecewise_constant(boundaries=[10, 20], values=[1.0, 0.5, 0.1])
    >>> [float(lr(t)) for t in (0, 9, 10, 19, 20, 99)]
    [1.0, 1.0, 0.5, 0.5, 0.1..., 0.1...]
    """
    b, v = np.asarray(boundaries), np.asarray(values)
    if b.size and not np.issubdtype(b.dtype, np.integer):
        raise TypeError(f"piecewise_constant: boundaries must be integers; got {b.tolist()}")
    return PiecewiseConstant(jnp.asarray(b, dtype=jnp.int32), _float(v)).check()


def warmup(schedule: ScheduleLike, warmup_steps: int, init_value: float = 0.0) -> Warmup:
    """Linear warmup in front of any schedule.

    ``lr(t) = init_value + (schedule(0) − init_value)·t/W`` for ``t < W``, then
    ``schedule(t − W)``, with ``W = warmup_steps``: the wrapped schedule starts when the warmup
    ends, at its own step 0. A float `schedule` is a constant.

    Args:
      schedule: a schedule, a float, or a function ``step -> lr``.
      warmup_steps: ``W >= 0`` updates; 0 is no warmup.
      init_value: learning rate at step 0, ``>= 0``.

    >>> lr = warmup(inverse_time(1.0, 1.0), warmup_steps=4)
    >>> [float(lr(t)) for t in (0, 2, 4, 5)]
    [0.0, 0.5, 1.0, 0.5]
    """
    schedule = as_schedule(schedule) if callable(schedule) else constant(schedule)
    if isinstance(warmup_steps, bool) or not isinstance(warmup_steps, (int, np.integer)):
        raise TypeError(f"warmup: warmup_steps must be an integer; got {warmup_steps!r}")
    check_range("warmup: warmup_steps", warmup_steps)
    check_range("warmup: init_value", init_value)
    return Warmup(schedule, jnp.asarray(warmup_steps, dtype=jnp.int32), _float(init_value))
