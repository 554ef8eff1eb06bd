"""Data sets and data preparation: the book's generators, files, standardization, splits.

Everything here runs offline: the book's data sets are generated from their formulas, the
digits set is the copy scikit-learn installs with itself, and files are read from disk.
No loader uses pickle.
"""

from __future__ import annotations

import csv
import os
import zipfile
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from jaxmlp._checks import check_count, check_finite


def spiral(key: jax.Array, samples: int = 100, classes: int = 3,
           noise: float = 0.2) -> tuple[jax.Array, jax.Array]:  # fmt: skip
    """The book's spiral data: `classes` interleaved arms of `samples` points each in 2-D.

    For class ``c`` and ``i = 0 … samples−1``: ``r = i/(samples−1)``,
    ``t = 4c + 4·i/(samples−1) + noise·N(0, 1)``, and the point is
    ``(r·sin(2.5t), r·cos(2.5t))`` — the formula of ``nnfs.datasets.spiral_data``, with our own
    random numbers.

    Args:
      key: a JAX PRNG key.
      samples: points per class.
      classes: number of classes (arms).
      noise: standard deviation of the angular noise.

    Returns:
      ``(x, y)``: ``x`` of shape ``(samples·classes, 2)`` (default float dtype), ``y`` integer
      labels of shape ``(samples·classes,)``, class by class.

    >>> x, y = spiral(jax.random.key(0), samples=100, classes=3)
    >>> x.shape, y.shape, int(y.max())
    ((300, 2), (300,), 2)
    """
    _check_classes(samples, classes, "noise", noise)
    dtype = jnp.result_type(float)
    r = jnp.linspace(0.0, 1.0, samples, dtype=dtype)
    xs = []
    for c, k in enumerate(jax.random.split(key, classes)):
        t = jnp.linspace(4.0 * c, 4.0 * (c + 1), samples, dtype=dtype)
        t = t + noise * jax.random.normal(k, (samples,), dtype)
        xs.append(jnp.stack([r * jnp.sin(2.5 * t), r * jnp.cos(2.5 * t)], axis=1))
    y = jnp.repeat(jnp.arange(classes, dtype=jnp.int32), samples)
    return jnp.concatenate(xs, axis=0), y


def vertical(key: jax.Array, samples: int = 100, classes: int = 3,
             spread: float = 0.1) -> tuple[jax.Array, jax.Array]:  # fmt: skip
    """The book's vertical data: one Gaussian blob per class, side by side.

    Class ``c`` is centred at ``(c/3, 0.5)`` with standard deviation `spread` on both axes
    (``nnfs.datasets.vertical_data``).

    Returns:
      ``(x, y)`` with ``x`` of shape ``(samples·classes, 2)`` and integer labels ``y``.

    >>> x, y = vertical(jax.random.key(0), samples=50, classes=3)
    >>> x.shape, y.shape
    ((150, 2), (150,))
    """
    _check_classes(samples, classes, "spread", spread)
    dtype = jnp.result_type(float)
    noise = jax.random.normal(key, (classes, samples, 2), dtype) * spread
    cx = jnp.arange(classes, dtype=dtype) / 3
    centres = jnp.stack([cx, jnp.full_like(cx, 0.5)], axis=1)
    x = (noise + centres[:, None, :]).reshape(classes * samples, 2)
    return x, jnp.repeat(jnp.arange(classes, dtype=jnp.int32), samples)


def _check_classes(samples: int, classes: int, name: str, spread: float) -> None:
    """Raise ValueError unless `samples` and `classes` are positive and `spread` is >= 0."""
    check_count("samples", samples, 1)
    check_count("classes", classes, 1)
    if not spread >= 0:
        raise ValueError(f"{name} must be >= 0; got {spread!r}")


def sine(samples: int = 1000) -> tuple[jax.Array, jax.Array]:
    """The book's regression data: ``x = i/samples`` for ``i < samples``, ``y = sin(2πx)``.

    Deterministic, as ``nnfs.datasets.sine_data``.

    Returns:
      ``(x, y)``, both of shape ``(samples, 1)``.

    >>> x, y = sine(4)
    >>> x[:, 0].tolist(), [round(v, 3) for v in y[:, 0].tolist()]
    ([0.0, 0.25, 0.5, 0.75], [0.0, 1.0, -0.0, -1.0])
    """
    check_count("samples", samples, 1)
    x = jnp.arange(samples, dtype=jnp.result_type(float))[:, None] / samples
    return x, jnp.sin(2 * jnp.pi * x)


def digits() -> tuple[np.ndarray, np.ndarray]:
    """The 8×8 handwritten digits that scikit-learn installs with itself (1797 images).

    Needs the optional extra: ``pip install "jaxmlp[digits]"``. Pixel values are 0–16; use
    `standardize` (or divide by 16) before training.

    Returns:
      ``(x, y)``: ``x`` float of shape ``(1797, 64)``, ``y`` integer labels 0–9 of shape
      ``(1797,)``, as numpy arrays.
    """
    try:
        from sklearn.datasets import load_digits
    except ImportError as err:  # pragma: no cover - depends on the environment
        raise ImportError(
            "the digits data set comes with scikit-learn: pip install 'jaxmlp[digits]'"
        ) from err
    data = load_digits()
    return data.data.astype(np.float32), data.target.astype(np.int32)


def load_arrays(path: str | os.PathLike, *, x_key: str = "x", y_key: str = "y",
                target_column: int = -1):  # fmt: skip
    """Read ``(x, y)`` from a ``.npz`` or ``.csv`` file, without pickle.

    - ``.npz``: arrays named `x_key` and `y_key` (default ``"x"`` and ``"y"``); object arrays
      are refused (``allow_pickle=False``).
    - ``.csv``: numbers separated by commas, an optional header line (skipped when it does not
      parse as numbers); column `target_column` (default: the last) is ``y`` — integer labels
      when every value is a whole number, else floats of shape ``(n, 1)`` — and the other
      columns are ``x``.

    Raises:
      FileNotFoundError: there is no such file.
      ValueError: the file cannot be read as data; the message names it and says why.
    """
    path = os.fspath(path)
    if not os.path.exists(path):
        raise FileNotFoundError(f"data file not found: {path}")
    ext = os.path.splitext(path)[1].lower()
    if ext == ".npz":
        x, y = _read_npz(path, x_key, y_key)
    elif ext == ".csv":
        x, y = _read_csv(path, target_column)
    else:
        raise ValueError(f"data file must end in .npz or .csv; got {path}")
    if len(x) != len(y):
        raise ValueError(f"{path}: x has {len(x)} rows but y has {len(y)}")
    check_finite(f"x read from {path}", x)
    check_finite(f"y read from {path}", y)
    return x, y


def _read_npz(path: str, x_key: str, y_key: str):
    try:
        with open(path, "rb") as f, np.load(f, allow_pickle=False) as data:
            missing = [k for k in (x_key, y_key) if k not in data.files]
            if missing:
                raise ValueError(f"{path} has no array named {missing[0]!r}; it holds {data.files}")
            return data[x_key], data[y_key]
    except ValueError as err:
        if "pickle" in str(err).lower():
            raise ValueError(f"{path} holds object arrays, which are not loaded") from err
        raise
    except (OSError, zipfile.BadZipFile, EOFError) as err:
        raise ValueError(f"{path} is not a readable .npz file: {err}") from err


def _read_csv(path: str, target_column: int):
    with open(path, newline="") as f:
        rows = [r for r in csv.reader(f) if r and any(c.strip() for c in r)]
    if rows:
        try:
            [float(c) for c in rows[0]]
        except ValueError:
            rows = rows[1:]  # a header
    if not rows:
        raise ValueError(f"{path} holds no data rows")
    width = len(rows[0])
    table = np.empty((len(rows), width))
    for i, r in enumerate(rows):
        if len(r) != width:
            raise ValueError(f"{path}: line {i + 1} has {len(r)} columns; expected {width}")
        try:
            table[i] = [float(c) for c in r]
        except ValueError as err:
            raise ValueError(f"{path}: line {i + 1} is not all numbers: {err}") from err
    if width < 2:
        raise ValueError(f"{path} needs at least 2 columns (features and a target)")
    col = target_column % width
    y = table[:, col]
    x = np.delete(table, col, axis=1).astype(np.float32)
    if np.all(np.isfinite(y)) and np.all(y == np.round(y)):
        return x, y.astype(np.int32)
    return x, y.astype(np.float32)[:, None]


def standardize(x: Any, mean: Any = None,
                std: Any = None) -> tuple[jax.Array, tuple[jax.Array, jax.Array]]:  # fmt: skip
    """Scale each feature to mean 0 and standard deviation 1.

    Compute the statistics on the training set and pass them on for validation data:
    ``x_tr, stats = standardize(x_train); x_va, _ = standardize(x_val, *stats)``. Features with
    zero spread are left centred but unscaled.

    Returns:
      ``(x_scaled, (mean, std))``.

    >>> xs, (m, s) = standardize(jnp.array([[1.0, 5.0], [3.0, 5.0]]))
    >>> xs.tolist(), m.tolist(), s.tolist()
    ([[-1.0, 0.0], [1.0, 0.0]], [2.0, 5.0], [1.0, 1.0])
    """
    x = jnp.asarray(x)
    if x.ndim != 2:
        raise ValueError(f"x must have shape (samples, features); got {x.shape}")
    mean = jnp.mean(x, axis=0) if mean is None else jnp.asarray(mean)
    if std is None:
        std = jnp.std(x, axis=0)
        std = jnp.where(std > 0, std, jnp.ones_like(std))
    return (x - mean[None, :]) / jnp.asarray(std)[None, :], (mean, std)


def train_val_split(
    key: jax.Array, x: Any, y: Any, val_fraction: float = 0.2
) -> tuple[tuple[jax.Array, jax.Array], tuple[jax.Array, jax.Array]]:
    """Shuffle with `key` and split off the last `val_fraction` of the rows for validation.

    Returns:
      ``(x_train, y_train), (x_val, y_val)``.

    >>> (xt, yt), (xv, yv) = train_val_split(jax.random.key(0), jnp.zeros((10, 2)), jnp.arange(10))
    >>> xt.shape, xv.shape
    ((8, 2), (2, 2))
    """
    n = len(x)
    if len(y) != n:
        raise ValueError(f"x has {n} rows but y has {len(y)}")
    tr, va = split_rows(key, n, val_fraction)
    x, y = jnp.asarray(x), jnp.asarray(y)
    return (x[tr], y[tr]), (x[va], y[va])


def split_rows(key: jax.Array, n: int, val_fraction: float) -> tuple[jax.Array, jax.Array]:
    """`train_val_split`'s rows: a shuffle of ``range(n)`` cut into training and validation.

    ``max(1, round(n·val_fraction))`` rows go to validation; at least one must stay to train.
    """
    if not 0 < val_fraction < 1:
        raise ValueError(f"val_fraction must be in (0, 1); got {val_fraction!r}")
    n_val = max(1, int(round(n * val_fraction)))
    if n_val >= n:
        raise ValueError(f"val_fraction={val_fraction} leaves no training rows out of {n}")
    perm = jax.random.permutation(key, n)
    return perm[: n - n_val], perm[n - n_val :]


def one_hot(y: Any, classes: int) -> jax.Array:
    """Integer labels ``(n,)`` to one-hot rows ``(n, classes)`` of the default float dtype.

    >>> one_hot(jnp.array([0, 2]), 3).tolist()
    [[1.0, 0.0, 0.0], [0.0, 0.0, 1.0]]
    """
    check_count("classes", classes, 1)
    y = jnp.asarray(y)
    if y.ndim != 1 or not jnp.issubdtype(y.dtype, jnp.integer):
        raise ValueError(f"y must be integer labels of shape (n,); got {y.dtype} {y.shape}")
    arr = np.asarray(y)
    if arr.size and (arr.min() < 0 or arr.max() >= classes):
        raise ValueError(
            f"y holds labels in [{arr.min()}, {arr.max()}]; expected [0, {classes - 1}]"
        )
    return jax.nn.one_hot(y, classes, dtype=jnp.result_type(float))
