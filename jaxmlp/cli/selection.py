"""Model selection on the command line: early stopping, ``--folds`` and ``--halving``.

`check` refuses combinations that cannot work, before anything trains; `early_stopping` builds
the `jaxmlp.EarlyStopping` of the options; `fold_rows` gives each model of a group its rows of
the training data (`jaxmlp.selection.fold_rows`: the folds are drawn from the data seed, so
every seed and swept value sees the same folds, and stratified by class); `halve` trains a
group with `jaxmlp.successive_halving` and returns each model's `jaxmlp.FitResult`.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import jax
import numpy as np

from jaxmlp._epochs import monitorable
from jaxmlp.cli.config import TrainConfig
from jaxmlp.early_stopping import EarlyStopping
from jaxmlp.fit import FitResult
from jaxmlp.halving import successive_halving
from jaxmlp.selection import fold_rows as folds_of


def check(config: TrainConfig, problem: Any, models: int) -> None:
    """Raise ValueError (one line, naming the options) for what cannot be trained as asked."""
    validation = problem.validation is not None or bool(config.folds)
    scalar = monitorable(problem.loss, validation)
    watched = config.early_stopping_patience is not None or config.halving
    if watched and config.monitor not in scalar:
        hint = " (val_ fields need validation data)" if config.monitor.startswith("val_") else ""
        raise ValueError(f"--monitor must be a history field of this run{hint}: one of "
                         f"{', '.join(scalar)}; got {config.monitor!r}")  # fmt: skip
    if config.halving and config.early_stopping_patience is not None:
        raise ValueError("--halving decides the stops itself: it takes no "
                         "--early-stopping-patience")  # fmt: skip
    if config.halving and config.folds:
        raise ValueError("--halving ranks whole models, --folds splits each into folds: use one "
                         "of them")  # fmt: skip
    if config.halving and models < 2:
        raise ValueError("--halving ranks several models: add --seeds N or --sweep")
    if config.folds and config.val_data is not None:
        raise ValueError("--folds validates every model on its held-out fold: it takes no "
                         "--val-data")  # fmt: skip
    if config.folds and config.folds > problem.x.shape[0]:
        raise ValueError(f"--folds {config.folds} is more than the {problem.x.shape[0]} "
                         "training rows")  # fmt: skip


def for_folds(config: TrainConfig) -> TrainConfig:
    """With ``--folds``, no validation split or draw: the folds hold the validation out."""
    if not config.folds:
        return config
    if config.val_fraction not in (None, 0) or config.val_samples not in (None, 0):
        raise ValueError("--folds validates every model on its held-out fold: it takes no "
                         "--val-fraction or --val-samples")  # fmt: skip
    return dataclasses.replace(config, val_fraction=0.0, val_samples=0)


def check_resume(config: TrainConfig) -> None:
    """``--resume`` continues one model: not a cross-validation or a halving."""
    for name in ("folds", "halving"):
        if getattr(config, name):
            raise ValueError(f"--resume continues one model; it takes no --{name}")


def early_stopping(config: TrainConfig) -> EarlyStopping | None:
    """The options' `jaxmlp.EarlyStopping`, or None without ``--early-stopping-patience``."""
    if config.early_stopping_patience is None:
        return None
    return EarlyStopping(config.monitor, "auto", float(config.min_delta),
                         config.early_stopping_patience, config.start_from_epoch,
                         config.restore_best == "yes")  # fmt: skip


def fold_rows(config: TrainConfig, problem: Any, values: list[dict]) -> dict[str, Any]:
    """``fit_many``'s arguments that give each model its fold: rows, held-out rows, validation."""
    seed = config.seed if config.data_seed is None else config.data_seed
    key = jax.random.fold_in(jax.random.key(seed), 15)  # the folds' own stream of the data seed
    y = np.asarray(problem.y)
    assert config.folds is not None  # called with --folds only
    split = folds_of(key, y, config.folds, stratify=problem.task == "classification")
    return {"rows": [split[v["fold"]][0] for v in values],
            "validation_rows": [split[v["fold"]][1] for v in values],
            "validation": (problem.x, problem.y)}  # fmt: skip


def halve(config: TrainConfig, net: Any, params: Any, opt: Any, x: Any, y: Any,
          kw: dict) -> tuple[list[FitResult], np.ndarray]:  # fmt: skip
    """Train K stacked models by successive halving; each model's result and rung reached."""
    eta = config.halving
    assert eta is not None  # called with --halving only
    epochs = kw.pop("epochs")
    first = config.halving_min_epochs or max(1, epochs // eta**2)
    for name in ("callback", "callback_every", "initial_epoch", "early_stopping"):
        kw.pop(name, None)
    result = successive_halving(net, params, opt, x, y, eta=eta, min_epochs=first,
                                epochs=max(epochs, 1), monitor=config.monitor, **kw)  # fmt: skip
    K = len(result.rung)
    return [result.model(k) for k in range(K)], result.rung
