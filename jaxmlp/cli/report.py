"""What ``jaxmlp train`` prints and draws at the end of a run, for one model or for K.

One model: its last epoch's metrics, the validation (and test) metrics of its final
parameters, and ``curves.png`` and ``decision_boundary.png``. K models: a table with one line
per model, the summary (`jaxmlp.cli.summary`: per setting, the mean and 95% interval over its
seeds, and the paired comparison with ``--baseline``), ``curves.png`` with every model and the
decision boundary of the best one by validation accuracy. The summary is saved as
``summary.csv`` and ``summary.json`` in every case. A classification's headline metrics are
accuracy and loss; a regression's R², RMSE and MAE (in the target's units).
"""

from __future__ import annotations

import os
import sys
from typing import Any

from jaxmlp.cli import summary
from jaxmlp.cli.config import MEMBER
from jaxmlp.cli.outputs import fmt, label
from jaxmlp.cli.scores import final_metrics, finals, score
from jaxmlp.fit import FitResult

CLASSIFICATION = {"accuracy": "acc", "loss": "loss"}
REGRESSION = {"r2": "r2", "rmse": "rmse", "mae": "mae"}


def headline(task: str) -> dict[str, str]:
    """The metrics a table and a summary show, and their printed names, for a task."""
    base = CLASSIFICATION if task == "classification" else REGRESSION
    return {f"{p}{m}": f"{p}{s}" for p in ("", "val_", "test_") for m, s in base.items()}


def report(out: str, config: Any, problems: list, values: list[dict], results: list,
           tests: list, seconds: float, baseline: tuple | None = None) -> None:  # fmt: skip
    """Print the run's results, save its summary, then draw its plots unless ``--no-plots``.

    Args:
      out: the run's folder.
      config: its settings (`jaxmlp.cli.config.TrainConfig`).
      problems: per model, its `jaxmlp.cli.data.Problem`.
      values: per model, its seed and swept values.
      results: per model, its `jaxmlp.FitResult`.
      tests: per model, its test metrics (None without ``--test-data``).
      seconds: the training's wall time.
      baseline: ``--baseline``'s name and value, or None.
    """
    problem = problems[0]
    ends = [finals(r.history, t, r.best_epoch) for r, t in zip(results, tests)]
    shown = {m: s for m, s in headline(problem.task).items() if any(m in f for f in ends)}
    if len(results) == 1:
        _print_one(problem, results[0], tests[0])
    else:
        _print_table(values, results, ends, shown)
    seeds = config.seeds if len(results) > 1 else 1
    folds = config.folds or 1 if len(results) > 1 else 1
    left_out = [bool(r.stop_reason and "diverged" in r.stop_reason) for r in results]
    closing = summary.summarize(values, ends, left_out, seeds, baseline, folds)
    if len(results) > 1 and seeds * folds > 1:
        print("\n".join(summary.lines(closing, shown)))
    summary.save(out, closing)
    many = f"{len(results)} models of " if len(results) > 1 else ""
    nets = "; ".join(dict.fromkeys(str(p.net) for p in problems))
    print(f"{many}{nets}; {_what(problem)}; {seconds:.1f} s; outputs in {out}/")
    if config.no_plots:
        return
    try:
        _plot(out, problems, values, results, seeds)
    except ImportError as err:
        print(f"jaxmlp train: no plots: {err}", file=sys.stderr)


def _what(problem: Any) -> str:
    if problem.task == "classification":
        return "accuracy as in the book"
    if problem.target is None:
        return "R², RMSE and MAE"
    mean, std = (summary.number(v) for v in problem.target)
    return (f"R², RMSE and MAE in the target's units; trained on it standardized (mean {mean}, "
            f"std {std}), the losses in those units")  # fmt: skip


def _print_one(problem: Any, result: FitResult, test: dict | None) -> None:
    h = result.history
    if len(h["epoch"]):
        last = final_metrics(h)
        assert last is not None  # an epoch ran
        print(f"epoch {int(h['epoch'][-1])}, {_headline_text(problem.task, last)}, "
              f"loss {last['loss']:.3f} (data {last['data_loss']:.3f}, reg "
              f"{last['penalty']:.3f}), lr {h['learning_rate'][-1]:.6g}")  # fmt: skip
    if problem.validation is not None:
        ev = score(problem, result.params, problem.validation)
        print(f"validation, {_headline_text(problem.task, ev)}, loss {ev['loss']:.3f}")
    if test is not None:
        print(f"test, {_headline_text(problem.task, test)}, loss {test['loss']:.3f}")


def _headline_text(task: str, metrics: dict[str, float]) -> str:
    """``acc 0.950`` or ``r2 0.912, rmse 3.21, mae 2.40``: a set's headline metrics."""
    names = REGRESSION if task == "regression" and "r2" in metrics else {"accuracy": "acc"}
    return ", ".join(f"{s} {summary.number(metrics[m])}" for m, s in names.items())


def _print_table(values: list[dict], results: list, ends: list[dict], shown: dict) -> None:
    """One line per model: its seed, swept values and final metrics (or how it stopped)."""
    members = [k for k in MEMBER if k in values[0]]  # seed, and fold or rung
    names = [k for k in values[0] if k not in MEMBER]  # the swept names
    stops = any(r.best_epoch or "rung" in v for v, r in zip(values, results))
    head = ["model", *members, *names, *(["epochs", "best"] if stops else []), *shown.values()]
    rows = []
    for k, (v, r, end) in enumerate(zip(values, results, ends)):
        cells = [str(k), *(fmt(v[n]) for n in [*members, *names])]
        if stops:  # early stopping or halving: the epochs run, the epoch whose state is kept
            ran = len(r.history["epoch"])
            cells += [str(ran), str(r.best_epoch or ran)]
        reason = r.stop_reason or ""
        if "diverged" in reason:
            epoch = int(r.history["epoch"][-1]) if len(r.history["epoch"]) else 0
            cells.append(f"diverged at epoch {epoch + 1}")
        elif not end:
            cells.append(reason or "no epochs run")
        else:
            cells += [summary.number(end[m]) for m in shown]
        rows.append(cells)
    # A "diverged at epoch e" cell spans the metric columns and does not widen them.
    fixed = [r if len(r) == len(head) else r[:-1] for r in [head, *rows]]
    widths = [max(len(r[i]) for r in fixed if i < len(r)) for i in range(len(head))]
    for r in [head, *rows]:
        print("  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip())


def _plot(out: str, problems: list, values: list[dict], results: list, seeds: int) -> None:
    """curves.png, and for a 2-D classifier decision_boundary.png (the best model's of K)."""
    from jaxmlp import plotting

    histories, curves = [r.history for r in results], os.path.join(out, "curves.png")
    if len(results) == 1 and len(histories[0]["epoch"]):
        plotting.plot_history(histories[0], curves)
    elif len(results) > 1 and any(len(h["epoch"]) for h in histories):
        labels = [f"{k}: {label(v)}" for k, v in enumerate(values)]
        settings = [", ".join(f"{n}={fmt(x)}" for n, x in v.items() if n not in MEMBER) or "all"
                    for v in values]  # fmt: skip
        plotting.plot_histories(histories, labels, curves, settings=settings)
    _plot_boundary(out, problems, values, results)


def _plot_boundary(out: str, problems: list, values: list[dict], results: list) -> None:
    from jaxmlp import plotting

    problem = problems[0]
    if problem.net.in_features != 2 or problem.task != "classification":
        return
    title = ("validation" if problem.validation is not None else "training") + " data"
    best = 0
    if len(results) > 1:  # the best model that ran: by accuracy, then by loss
        field = "val_accuracy" if problem.validation is not None else "accuracy"
        ends = [final_metrics(r.history) for r in results]
        ran = {k: f for k, f in enumerate(ends) if f and "diverged" not in (results[k].stop_reason
                                                                             or "")}  # fmt: skip
        if not ran:
            return
        best = max(ran, key=lambda k: (ran[k][field], -ran[k]["loss"]))
        title = f"best: model {best} ({label(values[best])}), {title}"
    x, y = problem.validation or (problem.x, problem.y)
    path = os.path.join(out, "decision_boundary.png")
    plotting.plot_decision_boundary(problems[best].net, results[best].params, x, y, path,
                                    title=title)  # fmt: skip
