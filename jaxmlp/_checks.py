"""Input validation shared by the public functions.

Every check raises at the public boundary with a message that names the argument, what was
expected and what came. Shape checks run always (shapes are known while tracing); checks on
values (NaN, label ranges, negative strengths) run only on concrete arrays, that is outside
`jit`. Code that jits a loop validates its data once, before the loop.
"""

from __future__ import annotations

from typing import Any

import jax
import numpy as np


def is_concrete(x: Any) -> bool:
    """True when `x` holds values that can be read now (not a tracer inside `jit`/`grad`)."""
    return not isinstance(x, jax.core.Tracer)


def shape_of(x: Any) -> tuple[int, ...]:
    """The shape of an array-like, or () for a Python scalar."""
    return tuple(np.shape(x))


def check_array(name: str, x: Any) -> None:
    """Raise TypeError unless `x` is an array or a number."""
    if isinstance(x, (jax.Array, np.ndarray, np.generic, int, float, bool)):
        return
    if isinstance(x, jax.core.Tracer):
        return
    raise TypeError(f"{name} must be an array (jax or numpy); got {type(x).__name__}")


def check_finite(name: str, x: Any) -> None:
    """Raise ValueError if a concrete `x` holds NaN or infinite values; say where."""
    if not is_concrete(x):
        return
    arr = np.asarray(x)
    if not np.issubdtype(arr.dtype, np.inexact):
        return
    bad = ~np.isfinite(arr)
    if bad.any():
        first = tuple(int(i) for i in np.argwhere(bad)[0])
        n_nan = int(np.isnan(arr).sum())
        n_inf = int(bad.sum()) - n_nan
        raise ValueError(
            f"{name} must be finite; it holds {n_nan} NaN and {n_inf} infinite value(s), "
            f"the first at index {first}"
        )


def check_nonnegative(name: str, value: Any) -> None:
    """Raise ValueError if a concrete `value` has a negative or non-finite entry."""
    if not is_concrete(value):
        return
    arr = np.asarray(value)
    if not np.issubdtype(arr.dtype, np.number):
        raise TypeError(f"{name} must be a number; got {type(value).__name__}")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} must be finite; got {value!r}")
    if np.any(arr < 0):
        raise ValueError(f"{name} must be >= 0; got {value!r}")


def check_choice(name: str, value: Any, choices: tuple[str, ...] | list[str]) -> None:
    """Raise ValueError unless `value` is one of `choices`."""
    if not isinstance(value, str) or value not in choices:
        raise ValueError(
            f"unknown {name} {value!r}; expected one of {', '.join(map(repr, choices))}"
        )
