"""Every validator of jaxmlp's public functions, in one place.

Each check raises at the public boundary with a message that names the argument, what was
expected and what came. Shape checks run always (shapes are known while tracing); checks on
values (NaN, label ranges, negative strengths) run only on concrete arrays, that is outside
`jit`. Code that jits a loop validates its data once, before the loop. Every public entry point
runs its checks once; the functions it calls inside do not check again.

This module is the bottom of the package: it imports only `jaxmlp.losses` (for the loss names),
so every other module can use it. Checks that need the architecture read the `net`'s fields
(``sizes``, ``activations``).
"""

from __future__ import annotations

import math
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from jaxmlp.losses import FUSED, NAMES, PROBABILITY_OUTPUTS


def is_concrete(x: Any) -> bool:
    """True when `x` holds values that can be read now (not a tracer inside `jit`/`grad`)."""
    return not isinstance(x, jax.core.Tracer)


def check_array(name: str, x: Any) -> None:
    """Raise TypeError unless `x` is an array or a number."""
    if not isinstance(x, (jax.Array, np.ndarray, np.generic, int, float, bool, jax.core.Tracer)):
        raise TypeError(f"{name} must be an array (jax or numpy); got {type(x).__name__}")


def check_finite(name: str, x: Any) -> None:
    """Raise ValueError if a concrete `x` holds NaN or infinite values; say where."""
    if not is_concrete(x):
        return
    arr = np.asarray(x)
    if not jnp.issubdtype(arr.dtype, jnp.inexact):  # (numpy's own test misses bfloat16)
        return
    arr = arr.astype(np.float32) if arr.dtype.itemsize < 4 else arr
    bad = ~np.isfinite(arr)
    if bad.any():
        first = tuple(int(i) for i in np.argwhere(bad)[0])
        n_nan = int(np.isnan(arr).sum())
        raise ValueError(
            f"{name} must be finite; it holds {n_nan} NaN and {int(bad.sum()) - n_nan} "
            f"infinite value(s), the first at index {first}"
        )


def check_range(name: str, value: Any, low: float = 0.0, high: float = math.inf, *,
                low_open: bool = False, high_open: bool = True) -> None:  # fmt: skip
    """Raise unless a concrete `value` is a finite number (or array) inside the interval.

    Values that are tracers (inside `jit` or `vmap`) are not checked. The message names the
    argument, the interval and the value received.
    """
    if not is_concrete(value):
        return
    arr = np.asarray(value)
    if not (np.issubdtype(arr.dtype, np.number) or arr.dtype == np.bool_):
        raise TypeError(f"{name} must be a number; got {type(value).__name__}: {value!r}")
    shown = arr.tolist()
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} must be finite; got {shown}")
    below = arr <= low if low_open else arr < low
    above = arr >= high if high_open else arr > high
    if np.any(below) or np.any(above):
        if math.isinf(high):
            want = f"> {low:g}" if low_open else f">= {low:g}"
        else:
            want = f"in {'(' if low_open else '['}{low:g}, {high:g}{')' if high_open else ']'}"
        raise ValueError(f"{name} must be {want}; got {shown}")


def check_choice(name: str, value: Any, choices: tuple[str, ...] | list[str]) -> None:
    """Raise ValueError unless `value` is one of `choices`."""
    if not isinstance(value, str) or value not in choices:
        expected = ", ".join(map(repr, choices))
        raise ValueError(f"unknown {name} {value!r}; expected one of {expected}")


def check_count(name: str, value: Any, low: int = 0, alternative: str = "") -> None:
    """Raise ValueError unless `value` is an integer (not a bool) ``>= low``, or `alternative`."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
        want = "a positive integer" if low == 1 else f"an integer >= {low}"
        raise ValueError(f"{name} must be {want}{alternative}; got {value!r}")


def check_key(key: Any, name: str = "key") -> tuple[int, ...]:
    """Raise TypeError unless `key` is a JAX PRNG key (or keys); return their batch shape.

    Typed keys (``jax.random.key``) and raw ``uint32[..., 2]`` keys are accepted; the batch
    shape is ``()`` for one key and ``(K,)`` for ``jax.random.split(key, K)``. A plain integer
    is refused, not taken as a seed: a key says which random stream a call uses, and reusing
    one by accident (the same seed for two purposes) is the mistake explicit keys prevent.
    """
    if isinstance(key, (jax.Array, np.ndarray, jax.core.Tracer)):
        if jnp.issubdtype(key.dtype, jax.dtypes.prng_key):
            return tuple(key.shape)
        if key.dtype == jnp.uint32 and key.shape[-1:] == (2,):
            return tuple(key.shape[:-1])
    got = f"{type(key).__name__} {key!r:.60}"
    if isinstance(key, (int, np.integer)) and not isinstance(key, bool):
        got += f" (use jax.random.key({int(key)}))"
    raise TypeError(f"{name} must be a JAX PRNG key such as jax.random.key(0); got {got}")


def check_tree_matches(tree: Any, like: Any, structure_error: str, leaf_error: str) -> None:
    """Raise ValueError unless `tree` has the structure and the leaf shapes of `like`.

    The messages are format strings: `structure_error` gets ``{tree}`` and ``{like}`` (the two
    structures), `leaf_error` ``{path}``, ``{shape}`` (in `tree`) and ``{expected}``.
    """
    # Any: jaxlib ships no stub for PyTreeDef, so mypy cannot compare two of them
    t_struct: Any = jax.tree.structure(tree)
    l_struct: Any = jax.tree.structure(like)
    if t_struct != l_struct:
        raise ValueError(structure_error.format(tree=t_struct, like=l_struct))
    for (path, a), b in zip(jax.tree_util.tree_leaves_with_path(like), jax.tree.leaves(tree)):
        if np.shape(a) != np.shape(b):
            where = jax.tree_util.keystr(path)
            raise ValueError(leaf_error.format(path=where, shape=np.shape(b), expected=np.shape(a)))


def check_net(net: Any) -> None:
    """Raise TypeError unless `net` is an architecture (a `jaxmlp.MLP`)."""
    if not all(hasattr(net, f) for f in ("sizes", "activations", "output_activation")):
        raise TypeError(f"net must be a jaxmlp.MLP; got {type(net).__name__}")


def check_params(net: Any, params: Any, name: str = "params") -> None:
    """Raise unless `params` is a tuple of ``{"W", "b"}`` dicts; with a `net`, of its shapes."""
    if not isinstance(params, tuple):
        hint = " (convert it with tuple(...))" if isinstance(params, list) else ""
        got = f"{type(params).__name__}{hint}"
        raise TypeError(f"{name} must be a tuple with one {{'W', 'b'}} dict per layer; got {got}")
    if net is not None and len(params) != net.n_layers:
        raise ValueError(
            f"{name} must hold {net.n_layers} layer(s) for sizes {net.sizes}; got {len(params)}"
        )
    for l, layer in enumerate(params):
        if not isinstance(layer, dict) or set(layer) != {"W", "b"}:
            keys = sorted(layer) if isinstance(layer, dict) else type(layer).__name__
            raise ValueError(f"{name}[{l}] must be a dict with keys 'W' and 'b'; got {keys}")
        for leaf in ("W", "b"):
            check_array(f"{name}[{l}][{leaf!r}]", layer[leaf])
        if net is None:
            continue
        fan_in, fan_out = net.sizes[l], net.sizes[l + 1]
        for leaf, expected in (("W", (fan_in, fan_out)), ("b", (fan_out,))):
            shape = tuple(np.shape(layer[leaf]))
            if shape != expected:
                raise ValueError(
                    f"{name}[{l}][{leaf!r}] must have shape {expected} for sizes {net.sizes}; "
                    f"got {shape}"
                )


def check_numbers(name: str, x: Any) -> None:
    """Raise TypeError unless `x` holds numbers: an integer, boolean or real floating dtype."""
    dtype = np.dtype(x.dtype if hasattr(x, "dtype") else np.asarray(x).dtype)
    if not (jnp.issubdtype(dtype, jnp.integer) or jnp.issubdtype(dtype, jnp.floating)
            or dtype == np.bool_):  # fmt: skip
        raise TypeError(f"{name} must hold real numbers (integer, boolean or float); got {dtype}")


def check_inputs(net: Any, x: Any, name: str = "x") -> None:
    """Raise a clear error unless `x` is a finite ``(batch, net.in_features)`` array of numbers.

    The message names a transposed `x` and one example given without its batch axis.
    """
    check_array(name, x)
    shape = tuple(np.shape(x))
    if len(shape) != 2 or shape[1] != net.in_features:
        hint = ""
        if shape == (net.in_features,):
            hint = f" (for one example use {name.split()[-1]}[None, :])"
        elif len(shape) == 2 and shape[0] == net.in_features:
            hint = f" (it looks transposed: pass {name.split()[-1]}.T)"
        raise ValueError(f"{name} must have shape (batch, {net.in_features}); got {shape}{hint}")
    if shape[0] == 0:
        raise ValueError(f"{name} must hold at least one row; got shape {shape}")
    check_numbers(name, x)
    check_finite(name, x)


def compute_dtype(params: Any = None) -> Any:
    """The floating dtype a call computes in: that of `params`, or JAX's default float.

    Raises TypeError for parameters that are not floating point.
    """
    leaves = jax.tree.leaves(params)
    if not leaves:
        return jnp.result_type(float)
    dtype = jnp.result_type(*leaves)
    if not jnp.issubdtype(dtype, jnp.floating):
        raise TypeError(f"params must have a floating dtype (float32 or float64); got {dtype}")
    return dtype


def check_forward(net: Any, params: Any, x: Any) -> Any:
    """Validate a forward pass's `params` and inputs; return `x` in the parameters' dtype."""
    check_params(net, params)
    check_inputs(net, x)
    return jnp.asarray(x, compute_dtype(params))


def as_data(x: Any, y: Any, loss: str, dtype: Any, mask: Any = None) -> tuple[Any, Any, Any]:
    """The dtype policy: `x`, float targets and `mask` in `dtype`; class labels as int32.

    Inputs of any integer, boolean or floating dtype become numbers of the parameters' dtype,
    so a call computes in one precision whatever the data's; labels stay integers (their range
    is checked before, so int32 holds them).
    """
    labels = loss == "categorical_crossentropy" and np.ndim(y) == 1
    y = as_array(y, jnp.int32 if labels else dtype)
    return as_array(x, dtype), y, None if mask is None else as_array(mask, dtype)


def as_array(a: Any, dtype: Any) -> Any:
    """`a` as a JAX array of `dtype`; data from the host is cast there, then put on the device.

    A cast on the device would compile a program of its own for each new shape and dtype; NumPy
    rounds as XLA does, so the values are the same.
    """
    if isinstance(a, (jax.Array, jax.core.Tracer)):
        return jnp.asarray(a, dtype)
    return jax.device_put(np.asarray(a, dtype))


def check_loss(loss: Any, output_activation: str, out_features: int) -> None:
    """Raise ValueError for an unknown loss or one the output activation cannot feed."""
    check_choice("loss", loss, NAMES)
    if loss.endswith("crossentropy") and output_activation not in PROBABILITY_OUTPUTS:
        raise ValueError(
            f"loss={loss!r} needs probabilities from the output layer (activation 'sigmoid' or "
            f"'softmax'); the net's output activation is {output_activation!r}. For logits, "
            f"use {FUSED[loss]!r} as the output activation: the loss is then computed from the "
            f"logits, stably."
        )
    if loss == "categorical_crossentropy" and out_features < 2:
        raise ValueError(
            "loss='categorical_crossentropy' needs at least 2 outputs; for one output use "
            "'binary_crossentropy' with a 'sigmoid' output"
        )


def check_labels(name: str, y: Any, batch: int, out_features: int) -> None:
    """Raise unless `y` holds `batch` integer class labels in ``[0, out_features)``."""
    shape, dtype = tuple(np.shape(y)), jnp.result_type(y)
    if shape[0] != batch:
        raise ValueError(f"{name} must hold {batch} labels, one per row of x; got {shape}")
    if not jnp.issubdtype(dtype, jnp.integer):
        raise ValueError(
            f"{name} as class labels of shape ({batch},) must have an integer dtype; got "
            f"{dtype}. Class labels are whole numbers 0..{out_features - 1} (or one-hot rows of "
            f"shape ({batch}, {out_features})); a real-valued target is a regression: a loss "
            f"such as 'mse' with y of shape ({batch}, 1)"
        )
    if is_concrete(y):
        arr = np.asarray(y)
        if arr.size and (arr.min() < 0 or arr.max() >= out_features):
            raise ValueError(
                f"{name} holds class labels in [{arr.min()}, {arr.max()}]; expected integers "
                f"in [0, {out_features - 1}] for {out_features} outputs"
            )


def check_targets(loss: str, y: Any, batch: int, out_features: int, name: str = "y") -> None:
    """Raise a clear error unless `y` fits `loss` and an output of ``(batch, out_features)``."""
    check_array(name, y)
    check_numbers(name, y)
    shape = tuple(np.shape(y))
    if loss == "categorical_crossentropy" and len(shape) == 1:
        return check_labels(name, y, batch, out_features)
    if shape != (batch, out_features):
        if loss == "categorical_crossentropy":
            raise ValueError(
                f"{name} must be integer labels of shape ({batch},) or one-hot rows of shape "
                f"({batch}, {out_features}); got {shape}"
            )
        hint = " (use y.reshape(-1, 1))" if shape == (batch,) and out_features == 1 else ""
        raise ValueError(
            f"{name} must have shape ({batch}, {out_features}) to match the net's output for "
            f"loss={loss!r}; got {shape}{hint}"
        )
    check_finite(name, y)
    if loss.endswith("crossentropy") and is_concrete(y):
        arr = np.asarray(y)
        if arr.size and (arr.min() < 0 or arr.max() > 1):
            raise ValueError(
                f"{name} for loss={loss!r} must hold targets in [0, 1]; got values in "
                f"[{arr.min()}, {arr.max()}]"
            )


def check_problem(net: Any, x: Any, y: Any, loss: Any, mask: Any = None, params: Any = None,
                  *, dtype: Any = None, what: str = "") -> tuple[Any, Any, Any]:  # fmt: skip
    """Validate a call on data; return ``(x, y, mask)`` in the dtype the call computes in.

    Checks the net, the loss (it must suit the net's output), `params` (if given), the inputs,
    the targets and the mask (they must match the rows of `x`), then applies the dtype policy
    (`as_data`) in `params`' dtype, else `dtype`, else JAX's default float. `what` prefixes the
    names in messages (``"validation"``: "validation x must ..."). The one check of every
    public function that takes ``(net, params, x, y, loss)``; the functions they call inside do
    not check again.
    """
    check_net(net)
    check_loss(loss, net.output_activation, net.out_features)
    if params is not None:
        check_params(net, params)
        dtype = compute_dtype(params)
    x_name, y_name = (f"{what} x", f"{what} y") if what else ("x", "y")
    check_inputs(net, x, x_name)
    batch = np.shape(x)[0]
    check_targets(loss, y, batch, net.out_features, y_name)
    if mask is not None and tuple(jnp.shape(mask)) != (batch,):
        got = tuple(jnp.shape(mask))
        raise ValueError(f"mask must have shape ({batch},), one weight per row of x; got {got}")
    return as_data(x, y, loss, compute_dtype() if dtype is None else dtype, mask)


def check_counts(epochs: Any, initial_epoch: Any, batch_size: Any, n: int) -> int:
    """Validate the epoch counts and return the batch size (``n`` for None, at most ``n``)."""
    check_count("epochs", epochs)
    check_count("initial_epoch", initial_epoch)
    if batch_size is None:
        return n
    check_count("batch_size", batch_size, 1, " or None")
    return min(int(batch_size), n)
