"""The numbers a ``jaxmlp train`` run reports, in the target's units.

A regression trained on a standardized target (`jaxmlp.cli.data.TargetScale`) learns
``(y − mean) / std``; what it reports is in the target's own units: the history's ``rmse``,
``mae``, ``val_rmse`` and ``val_mae`` times ``std`` (`in_units`), and the metrics of a data set
(`score`) from the predictions mapped back. R² and the book's accuracy do not depend on the
scale. The losses (``loss``, ``data_loss``, ``penalty``, ``val_loss``, ``test_loss``) stay
those of the training objective, in the units it is computed in.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from jaxmlp.fit import evaluate
from jaxmlp.model import Params

SCALED = ("rmse", "mae", "val_rmse", "val_mae")  # history fields in the target's units
FINAL: tuple[str, ...] = ("accuracy", "r2", "rmse", "mae", "loss", "data_loss", "penalty")
FINAL += ("val_accuracy", "val_r2", "val_rmse", "val_mae", "val_loss")


def in_units(problem: Any, history: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """A history of `problem`'s net with its RMSE and MAE in the target's units."""
    if problem.target is None:
        return history
    std = problem.target.std
    return {k: (np.asarray(v) * std).astype(np.asarray(v).dtype) if k in SCALED else v
            for k, v in history.items()}  # fmt: skip


def score(problem: Any, params: Params, rows: tuple[Any, Any]) -> dict[str, float]:
    """`params`' metrics on ``rows = (x, y)`` (`y` in the units the net is trained in).

    Returns:
      ``{"loss", "accuracy"}`` (the data loss and the accuracy as `jaxmlp.evaluate` gives them)
      and, for a regression, `jaxmlp.evaluate`'s ``r2``, ``rmse`` and ``mae`` (scikit-learn's
      ``r2_score``, root mean squared and mean absolute error over every element), RMSE and MAE
      mapped to the target's units.
    """
    x, y = rows
    ev = evaluate(problem.net, params, x, y, loss=problem.loss)
    out = {"loss": ev["data_loss"], "accuracy": ev["accuracy"]}
    if problem.task == "regression":
        std = 1.0 if problem.target is None else float(problem.target.std)
        out.update(r2=ev["r2"], rmse=ev["rmse"] * std, mae=ev["mae"] * std)
    return out


def final_metrics(history: dict[str, np.ndarray], epoch: int | None = None) -> dict | None:
    """The metrics of the last epoch, or of `epoch`; None when no epoch ran.

    Those of `FINAL` the history holds. `epoch` is for the best epoch, whose parameters early
    stopping returns.
    """
    if not len(history["epoch"]):
        return None
    row = -1 if epoch is None else int(np.flatnonzero(np.asarray(history["epoch"]) == epoch)[0])
    return {k: float(history[k][row]) for k in FINAL if k in history}


def finals(history: dict[str, np.ndarray], test: dict[str, float] | None,
           epoch: int | None = None) -> dict[str, float]:  # fmt: skip
    """A model's final metrics (of `epoch`, default the last) and test metrics, in one dict.

    The test metrics are named ``test_loss``, ``test_accuracy``, ...
    """
    last = final_metrics(history, epoch) or {}
    return {**last, **{f"test_{k}": v for k, v in (test or {}).items()}}
