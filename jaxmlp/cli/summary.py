"""The closing summary of a ``jaxmlp train`` run: printed, and saved as CSV and JSON.

One row per setting (a combination of the swept values; the whole run when nothing is swept):
over its seeds that ran to the end (diverged models left out), ``n`` and, per final metric
(the last epoch's, and ``test_*`` on the final parameters), the mean, the sample standard
deviation and the 95% Student-t interval of the mean (`jaxmlp.stats.summary`); a setting with
one model has its values and no interval. With ``--baseline NAME=V`` each setting is also
compared with its baseline, the setting that has NAME=V and the same other swept values:
paired over the seeds (seed k with seed k, `jaxmlp.stats.paired`), the mean difference
(setting − baseline), its 95% interval, t and the two-sided p.

``summary.json``: ``{"confidence", "seeds", "folds", "names", "metrics", "baseline",
"settings": [{"values", "models", "n", "metrics": {name: {"mean", "std", "ci_low",
"ci_high"}}, "baseline": {"values", "metrics": {name: {"n", "mean", "ci_low", "ci_high", "t",
"p"}}} or None}]}``.
``summary.csv``: one row per setting: the swept names, ``n``, then per metric ``M``, ``M_std``,
``M_low``, ``M_high`` and, with a baseline, ``M_diff``, ``M_diff_low``, ``M_diff_high``,
``M_p`` (empty where a number does not apply).
"""

from __future__ import annotations

import csv
import math
import os
from typing import Any

from jaxmlp import stats
from jaxmlp.cli.config import MEMBER
from jaxmlp.cli.outputs import fmt, write_json

CONFIDENCE = 0.95


def summarize(values: list[dict], finals: list[dict], left_out: list[bool], seeds: int,
              baseline: tuple[str, Any] | None = None,
              folds: int = 1) -> dict[str, Any]:  # fmt: skip
    """The summary of a run (see the module's docstring for its form).

    Args:
      values: per model, its seed and swept values (seeds fastest).
      finals: per model, its final and test metrics (`jaxmlp.cli.scores.finals`).
      left_out: per model, whether to leave it out (it diverged).
      seeds: the number of seeds of each setting.
      baseline: ``--baseline``'s name and value, or None.
      folds: the folds of each seed (``--folds``): a setting's models are its seeds × folds,
        and a baseline pairs seed s, fold f with seed s, fold f.
    """
    names = [k for k in values[0] if k not in MEMBER]
    metrics = [m for m in _ordered(finals) if all(m in f for f in finals if f)]
    settings = []
    block = seeds * folds
    for first in range(0, len(values), block):
        ks = list(range(first, min(first + block, len(values))))
        good = [k for k in ks if not left_out[k] and finals[k]]
        row = {"values": {n: values[first][n] for n in names}, "models": ks, "n": len(good),
               "metrics": {m: _spread([finals[k][m] for k in good]) for m in metrics},
               "baseline": None}  # fmt: skip
        settings.append(row)
    if baseline is not None:
        for row in settings:
            row["baseline"] = _compare(row, settings, baseline, finals, left_out, metrics)
    return {"confidence": CONFIDENCE, "seeds": seeds, "folds": folds, "names": names,
            "metrics": metrics,
            "baseline": None if baseline is None else f"{baseline[0]}={fmt(baseline[1])}",
            "settings": settings}  # fmt: skip


def _ordered(finals: list[dict]) -> list[str]:
    seen: list[str] = []
    for f in finals:
        seen += [m for m in (f or {}) if m not in seen]
    return seen


def _spread(xs: list[float]) -> dict[str, float | None]:
    """Mean, std and interval of `xs`; only the mean of one value, nothing of none."""
    xs = [x for x in xs if math.isfinite(x)]
    if len(xs) >= 2:
        s = stats.summary(xs, CONFIDENCE)
        return {"mean": s.mean, "std": s.std, "ci_low": s.ci_low, "ci_high": s.ci_high}
    return {"mean": xs[0] if xs else None, "std": None, "ci_low": None, "ci_high": None}


def _compare(row: dict, settings: list[dict], baseline: tuple[str, Any], finals: list[dict],
             left_out: list[bool], metrics: list[str]) -> dict | None:  # fmt: skip
    """`row` against its baseline setting, paired over the seeds; None for the baseline."""
    name, value = baseline
    want = {**row["values"], name: value}
    base = next(s for s in settings if s["values"] == want)
    if base is row:
        return None
    pairs = [(k, b) for k, b in zip(row["models"], base["models"])
             if not left_out[k] and not left_out[b] and finals[k] and finals[b]]  # fmt: skip
    out: dict[str, dict[str, float | None]] = {}
    for m in metrics:
        a = [finals[k][m] for k, _ in pairs]
        b = [finals[j][m] for _, j in pairs]
        ok = [(x, y) for x, y in zip(a, b) if math.isfinite(x) and math.isfinite(y)]
        if len(ok) < 2:
            out[m] = {"n": len(ok), "mean": None, "ci_low": None, "ci_high": None, "t": None,
                      "p": None}  # fmt: skip
            continue
        p = stats.paired([x for x, _ in ok], [y for _, y in ok], CONFIDENCE)
        out[m] = {"n": p.n, "mean": p.mean, "ci_low": p.ci_low, "ci_high": p.ci_high, "t": p.t,
                  "p": p.p}  # fmt: skip
    return {"values": want, "metrics": out}


def save(out: str, summary: dict[str, Any]) -> None:
    """``summary.json`` and ``summary.csv`` in `out`, each written whole, then renamed."""
    write_json(os.path.join(out, "summary.json"), summary)
    names, metrics = summary["names"], summary["metrics"]
    compared = summary["baseline"] is not None
    header = [*names, "n"]
    for m in metrics:
        header += [m, f"{m}_std", f"{m}_low", f"{m}_high"]
        header += [f"{m}_diff", f"{m}_diff_low", f"{m}_diff_high", f"{m}_p"] if compared else []
    tmp = os.path.join(out, ".summary.csv.tmp")
    with open(tmp, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(header)
        for row in summary["settings"]:
            cells = [fmt(row["values"][n]) for n in names] + [row["n"]]
            for m in metrics:
                s = row["metrics"][m]
                cells += [_cell(s[k]) for k in ("mean", "std", "ci_low", "ci_high")]
                if compared:
                    d = (row["baseline"] or {"metrics": {}})["metrics"].get(m, {})
                    cells += [_cell(d.get(k)) for k in ("mean", "ci_low", "ci_high", "p")]
            w.writerow(cells)
    os.replace(tmp, os.path.join(out, "summary.csv"))


def _cell(value: float | None) -> str:
    return "" if value is None else f"{value:.7g}"


def lines(summary: dict[str, Any], shown: dict[str, str]) -> list[str]:
    """The printed summary: per setting, mean [95% interval] of the `shown` metrics.

    `shown` maps a metric to its printed name (``val_accuracy`` → ``val_acc``); with a baseline,
    each other setting's line is followed by its paired differences and p-values.
    """
    seeds, folds = summary["seeds"], summary.get("folds", 1)
    over = f"{seeds} seeds" + (f" × {folds} folds" if folds > 1 else "")
    out = [f"mean [95% interval] over {over} (Student t; diverged models left out):"]
    metrics = [m for m in shown if m in summary["metrics"]]
    for row in summary["settings"]:
        setting = ", ".join(f"{n}={fmt(v)}" for n, v in row["values"].items()) or "all models"
        if not row["n"]:
            out.append(f"  {setting}: no results (every seed diverged or did not train)")
            continue
        parts = [f"{shown[m]} {_interval(row['metrics'][m])}" for m in metrics]
        counted = f" ({row['n']} of {seeds * folds})" if row["n"] < seeds * folds else ""
        out.append(f"  {setting}: {', '.join(parts)}{counted}")
        if row["baseline"]:
            base = ", ".join(f"{n}={fmt(v)}" for n, v in row["baseline"]["values"].items())
            diffs = [f"{shown[m]} {_difference(row['baseline']['metrics'][m])}" for m in metrics]
            out.append(f"    vs {base}: {', '.join(diffs)}")
    return out


def _interval(s: dict[str, float | None]) -> str:
    mean, ci_low, ci_high = s["mean"], s["ci_low"], s["ci_high"]
    if ci_low is None:
        return "-" if mean is None else number(mean)
    assert mean is not None and ci_high is not None  # an interval has its mean and both ends
    size = max(abs(mean), abs(ci_low), abs(ci_high))
    low, high = number(ci_low, size=size), number(ci_high, size=size)
    return f"{number(mean, size=size)} [{low}, {high}]"


def _difference(d: dict[str, float | None]) -> str:
    mean, ci_low, ci_high = d["mean"], d["ci_low"], d["ci_high"]
    if mean is None:
        return f"- (only {d['n']} pairs)"
    assert ci_low is not None and ci_high is not None  # a paired mean comes with its interval
    size = max(abs(mean), abs(ci_low), abs(ci_high))
    low, high = (number(v, True, size) for v in (ci_low, ci_high))
    return f"{number(mean, True, size)} [{low}, {high}] p={d['p']:.2g}"


def number(value: float, signed: bool = False, size: float | None = None) -> str:
    """`value` as printed: three decimals, one from 1000 on, three significant digits below 0.01.

    `size` (default: the value's magnitude) decides which, so that the numbers of one interval
    are printed alike.
    """
    sign, size = "+" if signed else "", abs(value) if size is None else size
    if size >= 1000:
        return f"{value:{sign}.1f}"
    return f"{value:{sign}.3g}" if 0 < size < 0.01 else f"{value:{sign}.3f}"
