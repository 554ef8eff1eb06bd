"""A ``jaxmlp train`` run on disk: ``history.json``, ``metrics.csv`` and ``checkpoint.npz``.

One model's folder holds what `save_model` writes; ``--resume`` reads it back with `load_run`.
A run of K models holds one such folder per model, ``model_<k>/``, and the combined files of
`save_models`. Every file is written whole to a temporary name and then renamed over the old
one, so a crash leaves the previous version intact.
"""

from __future__ import annotations

import csv
import json
import os
from typing import Any

import numpy as np

from jaxmlp import checkpoint


def write_json(path: str, obj: Any) -> None:
    """Write `obj` as JSON, atomically."""
    tmp = path + ".tmp"
    text = json.dumps(obj)  # one shot: the C encoder (json.dump streams through Python code)
    with open(tmp, "w") as f:
        f.write(text)
    os.replace(tmp, path)


def csv_columns(history: dict[str, np.ndarray]) -> tuple[list[str], list[np.ndarray]]:
    """The CSV header and columns of a history: per-layer fields become ``name_<layer>``."""
    header, columns = [], []
    for k, v in history.items():
        v = np.asarray(v)
        header += [k] if v.ndim == 1 else [f"{k}_{layer}" for layer in range(v.shape[1])]
        columns += [v] if v.ndim == 1 else list(v.T)
    return header, columns


def write_csv(path: str, prefix: list[str], tables: list[tuple[list[Any], dict]]) -> None:
    """One row per epoch of each history, after its `prefix` cells (e.g. model, seed), atomically.

    Args:
      path: the file to write.
      prefix: the names of the leading columns (none for one model).
      tables: ``(cells, history)`` pairs: the leading cells and the history of one model.
    """
    header = next((csv_columns(h)[0] for _, h in tables if h), ["epoch"])
    tmp = path + ".tmp"
    with open(tmp, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(prefix + header)
        for cells, history in tables:
            for row in zip(*csv_columns(history)[1]):
                values = [int(c) if h == "epoch" else f"{c:.7g}" for h, c in zip(header, row)]
                w.writerow(cells + values)
    os.replace(tmp, path)


def describe(problem: Any, config: dict) -> dict[str, Any]:
    """The part of ``history.json`` that says what was trained: settings, net, loss and task.

    ``classes`` is the number of classes of a classification (None for a regression).
    """
    net, task = problem.net, problem.task
    layout = {"sizes": list(net.sizes), "activations": list(net.activations)}
    classes = net.out_features if task == "classification" else None
    return {"config": config, "net": layout, "loss": problem.loss, "task": task, "classes": classes}


def as_lists(history: dict[str, np.ndarray]) -> dict[str, list]:
    """A history as JSON-ready lists."""
    return {k: np.asarray(v).tolist() for k, v in history.items()}


def save_model(where, problem, params, state, key, config, history, *, reason=None,
               final=True) -> None:  # fmt: skip
    """history.json (and metrics.csv when `final`), then the checkpoint that points at them.

    history.json holds the settings, the net, loss and task, the epochs run, the stop reason
    (`reason`), the final metrics and the history. ``--resume`` needs it beside the checkpoint;
    metrics.csv is for people, and writing it whole at every checkpoint of a long run would cost
    more than the training.
    """
    epoch = int(history["epoch"][-1]) if len(history["epoch"]) else 0
    write_json(os.path.join(where, "history.json"),
               {**describe(problem, config), "epochs_run": len(history["epoch"]),
                "stop_reason": reason, "final": final_metrics(history),
                "history": as_lists(history)})  # fmt: skip
    if final:
        write_csv(os.path.join(where, "metrics.csv"), [], [([], history)])
    checkpoint.save(os.path.join(where, "checkpoint.npz"), problem.net, params, state, key=key,
                    metadata={"epoch": epoch, "config": config})  # fmt: skip


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
        # Checkpoints from before --data-seed, --task and saving --no-plots:
        config = {"data_seed": None, "task": "auto", "no_plots": False, **config}
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


def fmt(value: float | int) -> str:
    """A swept value or seed as the outputs print it: ``3``, ``0.001``."""
    return str(value) if isinstance(value, int) else f"{value:.7g}"


def label(values: dict[str, Any]) -> str:
    """``seed 3, l2w=0.001, lr=0.02``: a model's seed and swept values."""
    swept = [f"{k}={fmt(v)}" for k, v in values.items() if k != "seed"]
    return ", ".join([f"seed {values['seed']}", *swept])


def final_metrics(history: dict[str, np.ndarray]) -> dict[str, float] | None:
    """The last epoch's metrics, None when no epoch ran."""
    if not len(history["epoch"]):
        return None
    fields = ("accuracy", "loss", "data_loss", "penalty", "val_accuracy", "val_loss")
    return {k: float(history[k][-1]) for k in fields if k in history}


def save_models(out: str, settings: dict, problem: Any, values: list[dict], results: list) -> None:
    """A run of K models' combined history.json and metrics.csv (model, seed, swept columns).

    Args:
      out: the run's folder.
      settings: the run's settings (with the seeds and the sweeps).
      problem: the run's net and loss (`jaxmlp.cli.data.Problem`).
      values: per model, its seed and swept values.
      results: per model, its `jaxmlp.FitResult`.
    """
    names = list(values[0])  # the seed, then the swept names
    entries, tables = [], []
    for k, (v, r) in enumerate(zip(values, results)):
        h = r.history
        entries.append({"model": k, **v, "dir": f"model_{k}", "epochs_run": len(h["epoch"]),
                        "stop_reason": r.stop_reason, "final": final_metrics(h),
                        "history": as_lists(h)})  # fmt: skip
        tables.append(([k, *(fmt(v[n]) for n in names)], h))
    summary = describe(problem, settings)
    write_json(os.path.join(out, "history.json"), {**summary, "models": entries})
    write_csv(os.path.join(out, "metrics.csv"), ["model", *names], tables)
