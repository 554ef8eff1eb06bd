"""The data of a ``jaxmlp train`` run: generated, the digits or a file; the task and the net.

`load_data` reads the options' data once: the training rows, the validation rows (a fresh
draw, ``--val-data`` or a split of ``--data``, whose row indices it keeps) and ``--test-data``,
features standardized with the training rows' statistics. `setup` turns it into a `Problem`:
the task chosen by `choose_task`'s rule, the loss, the targets (a regression's standardized
when ``--standardize-targets`` says so, see `TargetScale`) and the net. `jaxmlp.cli.train` runs
it, once per compiled group of a sweep.
"""

from __future__ import annotations

import math
import os
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from jaxmlp import datasets
from jaxmlp._checks import as_array, check_problem
from jaxmlp.cli.config import GENERATED, TrainConfig, default_activations
from jaxmlp.model import MLP

CCE = "categorical_crossentropy"
MAX_CLASSES = 50  # more distinct whole-number targets than this: a regression


class TargetScale(NamedTuple):
    """A regression target's standardization: the net learns ``(y − mean) / std``.

    One mean and one standard deviation over all the training split's target values (for a
    target of several columns too), so that RMSE and MAE convert exactly (times `std`) and R² and
    the book's accuracy do not change.
    """

    mean: float
    std: float

    def scale(self, y: Any) -> jax.Array:
        """`y` in the units the net is trained in."""
        y = jnp.asarray(y)
        return ((y - self.mean) / self.std).astype(y.dtype)

    def as_dict(self) -> dict[str, float]:
        """``{"mean", "std"}``, as ``history.json`` and the checkpoint's metadata hold it."""
        return {"mean": self.mean, "std": self.std}


class Data(NamedTuple):
    """The rows of a run before the task is decided; features already standardized."""

    x: jax.Array
    y: jax.Array
    validation: tuple[jax.Array, jax.Array] | None
    test: tuple[jax.Array, jax.Array] | None
    split: dict[str, np.ndarray] | None  # {"train": rows, "val": rows} of --data, if split


class Problem(NamedTuple):
    """What every model of a compiled group shares: the data, the net, the loss, the updates.

    `y` and the targets of `validation` and `test` are in the units the net is trained in: a
    standardized regression's are scaled by `target` (None: not standardized).
    """

    net: MLP
    loss: str
    task: str  # "classification" or "regression"
    x: jax.Array
    y: jax.Array
    validation: tuple[jax.Array, jax.Array] | None
    total_steps: int
    test: tuple[jax.Array, jax.Array] | None = None
    target: TargetScale | None = None
    split: dict[str, np.ndarray] | None = None


def data_seed(config: TrainConfig) -> int:
    """The seed of the data: ``--data-seed``, else ``--seed``."""
    return config.seed if config.data_seed is None else config.data_seed


def keys(seed: int) -> tuple[jax.Array, ...]:
    """The five keys of a run: data, validation draw, validation split, init and shuffles."""
    return _split5(jax.random.key(seed))


@jax.jit
def _split5(key: jax.Array) -> tuple[jax.Array, ...]:
    """`key` split in 5, compiled once (split and unpacked op by op, two programs per call)."""
    return tuple(jax.random.split(key, 5))


def choose_task(config: TrainConfig, y: Any) -> tuple[str, str]:
    """Classification or regression, and why: ``--task``, ``--loss``, else the target's values.

    The rule (README, "The command line"): a target of several columns, of floats, with negative
    values or more than `MAX_CLASSES` distinct values is a regression; whole numbers from 0 with
    at most `MAX_CLASSES` distinct values are class labels.
    """
    if config.task != "auto":
        return config.task, "--task"
    if config.loss:
        task = "regression" if config.loss in ("mse", "mae") else "classification"
        return task, f"--loss {config.loss}"
    y = np.asarray(y)
    values, distinct = y.reshape(-1), len(np.unique(y))
    if y.ndim == 2 and y.shape[1] > 1:
        return "regression", f"the target has {y.shape[1]} columns"
    if not np.all(values == np.round(values)):
        return "regression", "the target is not whole numbers"
    if not np.issubdtype(y.dtype, np.integer):
        return "regression", "the target is stored as floats"
    if values.min() < 0:
        return "regression", "the target has negative values"
    if distinct > MAX_CLASSES:
        return (
            "regression",
            f"the target holds {distinct} distinct values, more than the "
            f"{MAX_CLASSES} a classification may have",
        )
    return (
        "classification",
        f"{int(values.max()) + 1} classes: whole numbers from 0, at most "
        f"{MAX_CLASSES} distinct values",
    )


def as_labels(y: Any, name: str) -> jax.Array:
    """`y` as integer class labels ``(n,)``, refused when it is not whole numbers."""
    arr = np.asarray(y).reshape(-1) if np.ndim(y) == 2 and np.shape(y)[1] == 1 else np.asarray(y)
    if arr.ndim != 1 or not np.all(arr == np.round(arr)) or (arr.size and arr.min() < 0):
        raise ValueError(
            f"--task classification needs whole-number class labels from 0, one per row; the "
            f"{name} has shape {np.shape(y)} and values such as {arr.reshape(-1)[:3].tolist()}"
        )
    return as_array(arr, np.int32)


def as_targets(y: Any) -> jax.Array:
    """A regression target as floats ``(n, outputs)``."""
    y = jnp.asarray(y, jnp.result_type(float))
    return y[:, None] if y.ndim == 1 else y


def setup(config: TrainConfig, data: Data | None = None, announce: bool = True) -> Problem:
    """The data (`load_data`'s, read when not given), net and loss of the options.

    For a file or the digits, prints the task chosen and why when `announce`. The data's errors
    are raised as one-line ValueErrors.
    """
    data = load_data(config) if data is None else data
    task, why = choose_task(config, data.y)
    if config.data not in GENERATED and announce:
        print(f"task: {task} ({why}; --task overrides)" if why != "--task" else
              f"task: {task} (--task)")  # fmt: skip
    loss = config.loss or (CCE if task == "classification" else "mse")
    if config.standardize_targets == "yes" and task != "regression":
        raise ValueError(f"--standardize-targets yes applies to a regression; this run is a {task}")
    sets = {"target": data.y, "validation target": None, "test target": None}
    sets.update({f"{k} target": v[1] for k, v in (("validation", data.validation),
                                                  ("test", data.test)) if v})  # fmt: skip
    target = None
    if loss == CCE:
        ys = {k: as_labels(v, k) for k, v in sets.items() if v is not None}
        out_features = 1 + max(int(np.max(np.asarray(ys[k]))) for k in ys if k != "test target")
        _check_test_classes(ys.get("test target"), out_features)
    else:
        ys = {k: as_targets(v) for k, v in sets.items() if v is not None}
        out_features = int(ys["target"].shape[1])
        target = target_scale(config, task, ys["target"])
        if target is not None:
            ys = {k: target.scale(v) for k, v in ys.items()}
    net = MLP((int(np.shape(data.x)[1]), *hidden_sizes(config.hidden), out_features),
              activations_of(config, loss))  # fmt: skip
    validation = (data.validation[0], ys["validation target"]) if data.validation else None
    test = (data.test[0], ys["test target"]) if data.test else None
    for what, rows in [("", (data.x, ys["target"])), ("validation", validation), ("test", test)]:
        if rows is not None:
            check_problem(net, *rows, loss, what=what)
    batches = math.ceil(len(data.x) / min(config.batch_size or len(data.x), len(data.x)))
    steps = max(1, config.epochs * batches)
    return Problem(net, loss, task, data.x, ys["target"], validation, steps, test, target,
                   data.split)  # fmt: skip


def hidden_sizes(text: str) -> tuple[int, ...]:
    """``--hidden 64,32`` as ``(64, 32)``; ``''`` as no hidden layer."""
    try:
        sizes = tuple(int(v) for v in text.split(",") if v.strip())
    except ValueError:
        raise ValueError(f"--hidden must be sizes such as 64,32; got {text!r}") from None
    if any(s < 1 for s in sizes):
        raise ValueError(f"--hidden: layer sizes must be >= 1; got {text!r}")
    return sizes


def activations_of(config: TrainConfig, loss: str) -> tuple[str, ...]:
    """``--activations``, else ReLU hidden layers and the loss's natural output."""
    if config.activations:
        return tuple(a.strip() for a in config.activations.split(","))
    return default_activations(len(hidden_sizes(config.hidden)), loss)


def _check_test_classes(labels: jax.Array | None, classes: int) -> None:
    if labels is not None and len(labels) and int(np.max(labels)) >= classes:
        raise ValueError(
            f"--test-data holds class {int(np.max(labels))}; the model's classes are 0 to "
            f"{classes - 1} (those of the training and validation data)"
        )


def target_scale(config: TrainConfig, task: str, y: jax.Array) -> TargetScale | None:
    """The regression target's `TargetScale` when ``--standardize-targets`` asks for one."""
    choice = config.standardize_targets
    if choice == "no" or task != "regression" or (choice == "auto" and config.data in GENERATED):
        return None
    values = np.asarray(y, np.float64)
    std = float(values.std())
    return TargetScale(float(values.mean()), std if std > 0 else 1.0)


def load_data(config: TrainConfig) -> Data:
    """The training, validation and test rows of the options; features standardized."""
    data_key, val_key, split_key, _, _ = keys(data_seed(config))
    name, split, validation = config.data, None, None
    _check_validation_options(config)
    x: jax.Array | np.ndarray  # the generated data are JAX arrays, the read ones NumPy's
    y: jax.Array | np.ndarray
    if name in GENERATED:
        samples = config.samples or (1000 if name == "sine" else 100)
        val_samples = samples if config.val_samples is None else config.val_samples
        if name == "sine":  # the book validates its sine model on the same deterministic grid
            x, y = datasets.sine(samples)
            validation = datasets.sine(val_samples) if val_samples and not config.val_data else None
        else:
            make = datasets.spiral if name == "spiral" else datasets.vertical
            x, y = make(data_key, samples, config.classes)
            if val_samples and not config.val_data:
                validation = make(val_key, val_samples, config.classes)
        standardize = config.standardize == "yes"
    elif name == "digits" or os.path.splitext(name)[1].lower() in (".npz", ".csv"):
        x, y = datasets.digits() if name == "digits" else datasets.load_arrays(name)
        fraction = 0.2 if config.val_fraction is None else config.val_fraction
        if fraction and not config.val_data:
            x, y, validation, split = split_rows(split_key, x, y, fraction)
        standardize = config.standardize != "no"
    else:
        raise ValueError(
            f"--data must be one of spiral, vertical, sine, digits, or a .npz/.csv file; "
            f"got {name!r}"
        )
    if config.val_data:
        validation = read_file("--val-data", config.val_data, x, y)
    test = read_file("--test-data", config.test_data, x, y) if config.test_data else None
    if standardize:
        x, stats = datasets.standardize(x)
        validation, test = (_scaled(s, stats) for s in (validation, test))
    return Data(jnp.asarray(x), jnp.asarray(y), validation, test, split)


def _scaled(rows: tuple | None, stats: tuple) -> tuple | None:
    return None if rows is None else (datasets.standardize(rows[0], *stats)[0], rows[1])


def _check_validation_options(config: TrainConfig) -> None:
    if config.val_data and config.val_fraction:
        raise ValueError(
            f"--val-data reads the validation rows and --val-fraction splits them off: give "
            f"one; got --val-data {config.val_data} --val-fraction {config.val_fraction}"
        )
    if config.val_data and config.val_samples:
        raise ValueError(
            f"--val-data reads the validation rows and --val-samples draws them: give one; "
            f"got --val-data {config.val_data} --val-samples {config.val_samples}"
        )
    if config.val_fraction is not None and not 0 <= config.val_fraction < 1:
        raise ValueError(f"--val-fraction must be in [0, 1); got {config.val_fraction}")


def split_rows(key: jax.Array, x: Any, y: Any, fraction: float):
    """`datasets.train_val_split`'s split, and the rows it took: ``x, y, validation, split``.

    ``split`` holds the training and validation row indices of the data, in the order the
    rows are used.
    """
    n = len(x)
    if max(1, int(round(n * fraction))) >= n:
        raise ValueError(f"--val-fraction {fraction} leaves no training rows out of {n}")
    train, val = datasets.split_rows(key, n, fraction)
    x, y = jnp.asarray(x), jnp.asarray(y)
    split = {"train": np.asarray(train, np.int64), "val": np.asarray(val, np.int64)}
    return x[train], y[train], (x[val], y[val]), split


def read_file(option: str, path: str, x: Any, y: Any) -> tuple[jax.Array, jax.Array]:
    """The rows of a ``--val-data`` or ``--test-data`` file, checked against the training data.

    Raises:
      ValueError naming `option` when the file cannot be read or its columns do not match.
    """
    if os.path.splitext(path)[1].lower() not in (".npz", ".csv"):
        raise ValueError(f"{option} must be a .npz or .csv file; got {path!r}")
    try:
        xs, ys = datasets.load_arrays(path)
    except (ValueError, FileNotFoundError) as err:
        raise ValueError(f"{option}: {err}") from None
    features, got = int(np.shape(x)[1]), int(np.shape(xs)[1]) if np.ndim(xs) == 2 else None
    if got != features:
        raise ValueError(
            f"{option} {path} has {got} feature columns; the training data (--data) has {features}"
        )
    columns = [1 if np.ndim(t) == 1 else int(np.shape(t)[1]) for t in (y, ys)]
    if columns[0] != columns[1]:
        raise ValueError(
            f"{option} {path} has {columns[1]} target columns; the training data (--data) "
            f"has {columns[0]}"
        )
    return jnp.asarray(xs), jnp.asarray(ys)
