"""What ``jaxmlp train`` prints and draws at the end of a run, for one model or for K.

One model: its last epoch's metrics, the validation metrics of its final parameters, and
``curves.png`` and ``decision_boundary.png``. K models: a table with one line per model, the
mean ± sample standard deviation over the seeds of each setting, ``curves.png`` with every
model and the decision boundary of the best one by validation accuracy.
"""

from __future__ import annotations

import os
import sys
from typing import Any

import numpy as np

from jaxmlp.cli.outputs import final_metrics, fmt, label
from jaxmlp.fit import FitResult, evaluate
from jaxmlp.metrics import task_of

SHORT = {"accuracy": "acc", "loss": "loss", "val_accuracy": "val_acc", "val_loss": "val_loss"}


def report(out: str, config: Any, problem: Any, values: list[dict], results: list, seconds):
    """Print the run's results, then draw its plots unless ``--no-plots``."""
    if len(results) == 1:
        _print_one(problem, results[0])
    else:
        names = [k for k in values[0] if k != "seed"]  # the swept names
        metrics = [m for m in SHORT if problem.validation or not m.startswith("val_")]
        _print_table(values, results, names, metrics)
        if config.seeds > 1:
            _print_seed_stats(values, results, names, metrics, config.seeds)
    what = "accuracy" if task_of(problem.loss) == "classification" else "regression accuracy"
    many = f"{len(results)} models of " if len(results) > 1 else ""
    print(f"{many}{problem.net}; {what} as in the book; {seconds:.1f} s; outputs in {out}/")
    if config.no_plots:
        return
    try:
        _plot(out, problem, values, results)
    except ImportError as err:
        print(f"jaxmlp train: no plots: {err}", file=sys.stderr)


def _print_one(problem: Any, result: FitResult) -> None:
    h = result.history
    if len(h["epoch"]):
        print(f"epoch {int(h['epoch'][-1])}, acc {h['accuracy'][-1]:.3f}, loss {h['loss'][-1]:.3f} "
              f"(data {h['data_loss'][-1]:.3f}, reg {h['penalty'][-1]:.3f}), "
              f"lr {h['learning_rate'][-1]:.6g}")  # fmt: skip
    if problem.validation is not None:
        ev = evaluate(problem.net, result.params, *problem.validation, loss=problem.loss)
        print(f"validation, acc {ev['accuracy']:.3f}, loss {ev['data_loss']:.3f}")


def _print_table(values: list[dict], results: list[FitResult], names: list, metrics: list) -> None:
    """One line per model: its seed, swept values and final metrics (or how it stopped)."""
    head = ["model", "seed", *names] + [SHORT[m] for m in metrics]
    rows = []
    for k, (v, r) in enumerate(zip(values, results)):
        cells, final = [str(k), *(fmt(v[n]) for n in ["seed", *names])], final_metrics(r.history)
        if r.stop_reason:
            epoch = int(r.history["epoch"][-1]) if final else 0
            cells.append(f"diverged at epoch {epoch + 1}")
        elif final is None:
            cells.append("no epochs run")
        else:
            cells += [f"{final[m]:.3f}" for m in metrics]
        rows.append(cells)
    # A "diverged at epoch e" cell spans the metric columns and does not widen them.
    fixed = [r if len(r) == len(head) else r[:-1] for r in [head, *rows]]
    widths = [max(len(r[i]) for r in fixed if i < len(r)) for i in range(len(head))]
    for r in [head, *rows]:
        print("  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip())


def _print_seed_stats(values: list[dict], results: list, names: list, metrics: list, n_seeds: int):
    """Mean ± sample standard deviation over the seeds of each setting (diverged ones left out)."""
    print(f"mean ± std over {n_seeds} seeds (sample std; diverged models left out):")
    for first in range(0, len(values), n_seeds):
        group = results[first : first + n_seeds]
        setting = ", ".join(f"{n}={fmt(values[first][n])}" for n in names) or "all models"
        good = [final_metrics(r.history) for r in group if not r.stop_reason]
        good = [f for f in good if f]
        if not good:
            print(f"  {setting}: every seed diverged")
            continue
        parts = [f"{SHORT[m]} {_mean_std([f[m] for f in good])}" for m in metrics]
        counted = f" ({len(good)} of {n_seeds} seeds)" if len(good) < n_seeds else ""
        print(f"  {setting}: {', '.join(parts)}{counted}")


def _mean_std(values: list[float]) -> str:
    """``0.465 ± 0.026`` (the sample standard deviation), or the one value."""
    v = np.array(values)
    return f"{v.mean():.3f}" + (f" ± {v.std(ddof=1):.3f}" if len(v) > 1 else "")


def _plot(out: str, problem: Any, values: list[dict], results: list[FitResult]) -> None:
    """curves.png, and for a 2-D classifier decision_boundary.png (the best model's of K)."""
    from jaxmlp import plotting

    histories, curves = [r.history for r in results], os.path.join(out, "curves.png")
    if len(results) == 1 and len(histories[0]["epoch"]):
        plotting.plot_history(histories[0], curves)
    elif len(results) > 1 and any(len(h["epoch"]) for h in histories):
        labels = [f"{k}: {label(v)}" for k, v in enumerate(values)]
        plotting.plot_histories(histories, labels, curves)
    if problem.net.in_features != 2 or task_of(problem.loss) != "classification":
        return
    title = ("validation" if problem.validation is not None else "training") + " data"
    best = 0
    if len(results) > 1:  # the best model that ran: by accuracy, then by loss
        field = "val_accuracy" if problem.validation is not None else "accuracy"
        finals = [final_metrics(h) for h in histories]
        ran = [k for k, f in enumerate(finals) if f and not results[k].stop_reason]
        if not ran:
            return
        best = max(ran, key=lambda k: (finals[k][field], -finals[k]["loss"]))
        title = f"best: model {best} ({label(values[best])}), {title}"
    x, y = problem.validation or (problem.x, problem.y)
    path = os.path.join(out, "decision_boundary.png")
    plotting.plot_decision_boundary(problem.net, results[best].params, x, y, path, title=title)
