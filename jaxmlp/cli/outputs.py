"""A ``jaxmlp train`` run on disk: ``history.json``, ``metrics.csv`` and ``checkpoint.npz``.

One model's folder holds what `save_model` writes; ``--resume`` reads it back with `load_run`.
A run of K models holds one such folder per model, ``model_<k>/``, and the combined files of
`save_models`; ``split.npz`` (`save_split`) holds the rows of a split of ``--data``. Every file
is written whole to a temporary name and then renamed over the old one, so a crash leaves the
previous version intact.
"""

from __future__ import annotations

import csv
import json
import os
from typing import Any

import numpy as np

from jaxmlp import checkpoint
from jaxmlp.cli.config import MEMBER
from jaxmlp.cli.scores import final_metrics
from jaxmlp.fit import history_table

OLD_DEFAULTS = {"data_seed": None, "task": "auto", "no_plots": False, "preset": "book",
                "val_data": None, "test_data": None, "standardize_targets": "no",
                "early_stopping_patience": None, "monitor": "val_loss", "min_delta": 0.0,
                "start_from_epoch": 0, "restore_best": "yes"}  # fmt: skip
"""The settings of runs saved before they existed, as those runs had them."""


def write_json(path: str, obj: Any) -> None:
    """Write `obj` as JSON, atomically."""
    tmp = path + ".tmp"
    text = json.dumps(obj)  # one shot: the C encoder (json.dump streams through Python code)
    with open(tmp, "w") as f:
        f.write(text)
    os.replace(tmp, path)


def csv_columns(history: dict[str, np.ndarray]) -> tuple[list[str], list[np.ndarray]]:
    """The CSV header and columns of a history: per-layer fields become ``name_<layer>``."""
    table = history_table(history)
    return list(table), list(table.values())


def write_csv(path: str, prefix: list[str], tables: list[tuple[list[Any], dict]]) -> None:
    """One row per epoch of each history, after its `prefix` cells (e.g. model, seed), atomically.

    Args:
      path: the file to write.
      prefix: the names of the leading columns (none for one model).
      tables: ``(cells, history)`` pairs: the leading cells and the history of one model.
    """
    header: list[str] = []  # every history's columns; a net with fewer layers leaves cells empty
    for names in sorted((csv_columns(h)[0] for _, h in tables), key=len, reverse=True):
        header += [c for c in names if c not in header]  # the deepest net's order
    header = header or ["epoch"]
    tmp = path + ".tmp"
    with open(tmp, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(prefix + header)
        for cells, history in tables:
            names, columns = csv_columns(history)
            at = [names.index(h) if h in names else None for h in header]
            for row in zip(*columns):
                values = ["" if i is None else int(row[i]) if h == "epoch" else f"{row[i]:.7g}"
                          for h, i in zip(header, at)]  # fmt: skip
                w.writerow(cells + values)
    os.replace(tmp, path)


def layout(net: Any) -> dict[str, list]:
    """A net's layer sizes and activations, as ``history.json`` records them."""
    return {"sizes": list(net.sizes), "activations": list(net.activations)}


def describe(problem: Any, config: dict) -> dict[str, Any]:
    """The part of ``history.json`` that says what was trained: settings, net, loss, task, data.

    ``classes`` is the number of classes of a classification (None for a regression);
    ``target_scale`` the standardization of a regression's target (``{"mean", "std"}``: the net
    predicts ``(y − mean) / std``), None when not standardized; ``split`` the sizes of the
    training and validation rows of a split of ``--data`` (their indices in ``split.npz``),
    None when there was none.
    """
    task = problem.task
    classes = problem.net.out_features if task == "classification" else None
    scale = problem.target.as_dict() if problem.target is not None else None
    split = problem.split
    split = {"file": "split.npz", **{k: len(v) for k, v in split.items()}} if split else None
    return {"config": config, "net": layout(problem.net), "loss": problem.loss, "task": task,
            "classes": classes, "target_scale": scale, "split": split}  # fmt: skip


def as_lists(history: dict[str, np.ndarray]) -> dict[str, list]:
    """A history as JSON-ready lists."""
    return {k: np.asarray(v).tolist() for k, v in history.items()}


def save_model(where, problem, params, state, key, config, history, *, reason=None,
               final=True, test=None, best_epoch=None, early_state=None,
               last_state=None) -> None:  # fmt: skip
    """history.json (and metrics.csv when `final`), then the checkpoint that points at them.

    history.json holds the settings, the net, loss, task and data (`describe`), the epochs run,
    the stop reason (`reason`), the best epoch (with early stopping, else None), the final
    metrics (the best epoch's when there is one, else the last's), the `test` metrics (None
    without ``--test-data``) and the history. ``--resume`` needs it beside the checkpoint;
    metrics.csv is for people, and writing it whole at every checkpoint of a long run would cost
    more than the training. The checkpoint's metadata holds the epoch, the settings and the target's
    standardization (``target_scale``, None when not standardized); with early stopping its
    state rides along (the checkpoint's ``extra["early_stopping"]``), and when the parameters
    saved are the best epoch's, the last epoch's too (``extra["last"]``), so ``--resume``
    continues exactly as a run that never stopped.
    """
    epoch = int(history["epoch"][-1]) if len(history["epoch"]) else 0
    about = describe(problem, config)
    write_json(os.path.join(where, "history.json"),
               {**about, "epochs_run": len(history["epoch"]), "stop_reason": reason,
                "best_epoch": best_epoch, "final": final_metrics(history, best_epoch), "test": test,
                "history": as_lists(history)})  # fmt: skip
    if final:
        write_csv(os.path.join(where, "metrics.csv"), [], [([], history)])
    meta = {"epoch": epoch, "config": config, "target_scale": about["target_scale"]}
    extra = {} if early_state is None else {"early_stopping": early_state}
    if last_state is not None:
        extra["last"] = {"params": last_state[0], "opt_state": last_state[1]}
    checkpoint.save(os.path.join(where, "checkpoint.npz"), problem.net, params, state, key=key,
                    metadata=meta, extra=extra)  # fmt: skip


def save_split(where: str, split: dict[str, np.ndarray] | None) -> None:
    """``split.npz``: int64 arrays ``train`` and ``val``, the rows of ``--data`` (no pickle)."""
    if split is None:
        return
    tmp = os.path.join(where, ".split.npz.tmp")
    # Any: NumPy's stub would match a dict of arrays' values to savez's allow_pickle: bool
    arrays: dict[str, Any] = {k: np.asarray(v, np.int64) for k, v in split.items()}
    with open(tmp, "wb") as f:
        np.savez(f, **arrays)
    os.replace(tmp, os.path.join(where, "split.npz"))


def load_run(out: str, run_keys: tuple[str, ...]):
    """The checkpoint, the settings and the history of the run in `out`, for ``--resume``.

    The history is cut at the checkpoint's epoch (history.json may be written later).
    """
    path = os.path.join(out, "checkpoint.npz")
    if not os.path.exists(path):
        raise FileNotFoundError(f"--resume: no checkpoint in {out} (looked for {path})")
    ck = checkpoint.load(path)
    for name in os.listdir(out):  # what writes of a killed run left behind (never complete)
        if name.startswith(".tmp-") and name.endswith(".npz"):
            os.remove(os.path.join(out, name))
    config = ck.metadata.get("config")
    if isinstance(config, dict):
        # Checkpoints from before --data-seed, --task, saving --no-plots, --preset, ...:
        config = {**OLD_DEFAULTS, **config}
    if not isinstance(config, dict) or any(k not in config for k in run_keys):
        raise ValueError(f"--resume: {path} was not written by 'jaxmlp train'")
    epoch = int(ck.metadata.get("epoch", 0))
    with open(os.path.join(out, "history.json")) as f:
        history = {k: np.asarray(v) for k, v in json.load(f)["history"].items()}
    if len(history.get("epoch", [])) < epoch:
        raise ValueError(f"--resume: {out}/history.json stops before the checkpoint's epoch")
    keep = np.asarray(history["epoch"]) <= epoch
    history = {k: v[keep] for k, v in history.items()} if epoch else {}
    return ck, config, history


def fmt(value: float | int | str | None) -> str:
    """A swept value or seed as the outputs print it: ``3``, ``0.001``, ``64-32``, ``full``."""
    if value is None:
        return "full"  # a swept batch size of the whole training set
    return str(value) if isinstance(value, (int, str)) else f"{value:.7g}"


def label(values: dict[str, Any]) -> str:
    """``seed 3, l2w=0.001, lr=0.02``: a model's seed and swept values."""
    swept = [f"{k}={fmt(v)}" for k, v in values.items() if k not in MEMBER]
    return ", ".join([f"seed {values['seed']}", *swept])


def save_models(out: str, settings: dict, problems: list, values: list[dict], results: list,
                tests: list) -> None:  # fmt: skip
    """A run of K models' combined history.json and metrics.csv (model, seed, swept columns).

    Args:
      out: the run's folder.
      settings: the run's settings (with the seeds and the sweeps).
      problems: per model, its net and loss (`jaxmlp.cli.data.Problem`); the nets differ when a
        structural setting is swept.
      values: per model, its seed and swept values.
      results: per model, its `jaxmlp.FitResult`.
      tests: per model, its test metrics (None without ``--test-data``).
    """
    names = list(values[0])  # the seed, then the swept names
    entries, tables = [], []
    for k, (v, r, p, t) in enumerate(zip(values, results, problems, tests)):
        h = r.history
        entries.append({"model": k, **v, "dir": f"model_{k}", "net": layout(p.net),
                        "epochs_run": len(h["epoch"]), "stop_reason": r.stop_reason,
                        "best_epoch": r.best_epoch, "final": final_metrics(h, r.best_epoch),
                        "test": t,
                        "history": as_lists(h)})  # fmt: skip
        tables.append(([k, *(fmt(v[n]) for n in names)], h))
    summary = describe(problems[0], settings)
    write_json(os.path.join(out, "history.json"), {**summary, "models": entries})
    write_csv(os.path.join(out, "metrics.csv"), ["model", *names], tables)
