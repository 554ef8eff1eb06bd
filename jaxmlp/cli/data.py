"""The data of a ``jaxmlp train`` run: generated, the digits or a file; the task and the net.

`setup` turns the options into a `Problem`: the data (split and standardized), the task chosen
by `choose_task`'s rule, the loss and the net. `jaxmlp.cli.train` runs it.
"""

from __future__ import annotations

import math
import os
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from jaxmlp import datasets
from jaxmlp._checks import check_problem
from jaxmlp.cli.config import TrainConfig, default_activations
from jaxmlp.model import MLP

GENERATED = ("spiral", "vertical", "sine")
CCE = "categorical_crossentropy"
MAX_CLASSES = 50  # more distinct whole-number targets than this: a regression


class Problem(NamedTuple):
    """What every model of a run shares: the data, the net, the loss, the number of updates."""

    net: MLP
    loss: str
    task: str  # "classification" or "regression"
    x: jax.Array
    y: jax.Array
    validation: tuple[jax.Array, jax.Array] | None
    total_steps: int


def data_seed(config: TrainConfig) -> int:
    """The seed of the data: ``--data-seed``, else ``--seed``."""
    return config.seed if config.data_seed is None else config.data_seed


def keys(seed: int) -> jax.Array:
    """The five keys of a run: data, validation draw, validation split, init and shuffles."""
    return jax.random.split(jax.random.key(seed), 5)


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
    return jnp.asarray(arr.astype(np.int32))


def setup(config: TrainConfig) -> Problem:
    """The data, the net and the loss of the options; the data's errors as one line."""
    x, y, validation = load_data(config)
    task, why = choose_task(config, y)
    if config.data not in GENERATED:
        print(f"task: {task} ({why}; --task overrides)" if why != "--task" else
              f"task: {task} (--task)")  # fmt: skip
    loss = config.loss or ("categorical_crossentropy" if task == "classification" else "mse")
    if loss == "categorical_crossentropy":
        y = as_labels(y, "target")
        if validation:
            validation = (validation[0], as_labels(validation[1], "validation target"))
        out_features = int(max(np.max(y), np.max(validation[1]) if validation else 0)) + 1
    else:
        out_features = int(np.shape(y)[1]) if np.ndim(y) == 2 else 1
        if np.ndim(y) == 1:
            y = jnp.asarray(y, jnp.result_type(float))[:, None]
            if validation:
                validation = (validation[0], jnp.asarray(validation[1], y.dtype)[:, None])
    hidden = tuple(int(v) for v in config.hidden.split(",") if v.strip())
    activations = default_activations(len(hidden), loss)
    if config.activations:
        activations = tuple(a.strip() for a in config.activations.split(","))
    net = MLP((int(np.shape(x)[1]), *hidden, out_features), activations)
    for xs, ys in [(x, y)] + ([validation] if validation else []):
        check_problem(net, xs, ys, loss)
    batches = math.ceil(len(x) / min(config.batch_size or len(x), len(x)))
    return Problem(net, loss, task, x, y, validation, max(1, config.epochs * batches))


def load_data(config: TrainConfig):
    """``(x, y, validation)``: generated, the digits or a file; split and standardized."""
    data_key, val_key, split_key, _, _ = keys(data_seed(config))
    name = config.data
    if name in GENERATED:
        samples = config.samples or (1000 if name == "sine" else 100)
        val_samples = samples if config.val_samples is None else config.val_samples
        if name == "sine":  # the book validates its sine model on the same deterministic grid
            x, y = datasets.sine(samples)
            validation = datasets.sine(val_samples) if val_samples else None
        else:
            make = datasets.spiral if name == "spiral" else datasets.vertical
            x, y = make(data_key, samples, config.classes)
            validation = make(val_key, val_samples, config.classes) if val_samples else None
        standardize = config.standardize == "yes"
    elif name == "digits" or os.path.splitext(name)[1].lower() in (".npz", ".csv"):
        x, y = datasets.digits() if name == "digits" else datasets.load_arrays(name)
        fraction = 0.2 if config.val_fraction is None else config.val_fraction
        validation = None
        if fraction:
            (x, y), validation = datasets.train_val_split(split_key, x, y, fraction)
        standardize = config.standardize != "no"
    else:
        raise ValueError(
            f"--data must be one of spiral, vertical, sine, digits, or a .npz/.csv file; "
            f"got {name!r}"
        )
    if standardize:
        x, stats = datasets.standardize(x)
        if validation:
            validation = (datasets.standardize(validation[0], *stats)[0], validation[1])
    return jnp.asarray(x), jnp.asarray(y), validation
