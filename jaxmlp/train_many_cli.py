"""``jaxmlp train --seeds N --sweep NAME=V1,V2,...``: many models in one run of `fit_many`.

The models are every combination of the swept values (the first ``--sweep`` varies slowest)
times the seeds (varying fastest). All share the data drawn from ``--seed`` (or ``--data-seed``);
model k's initial weights and shuffle order come from its own seed, so model k equals the single
run ``jaxmlp train --seed <its seed> --data-seed <--seed>`` with its swept values. Outputs in
``--out``: ``metrics.csv`` and ``history.json`` for all models (a ``model`` column, the seed and
the swept values), ``model_<k>/`` with what that model's single run writes (so ``--resume --out
DIR/model_<k>`` continues one model), a summary table, and the plots.
"""

from __future__ import annotations

import argparse
import csv
import itertools
import math
import os
import sys
import time
import warnings
from typing import Any

import jax.numpy as jnp
import numpy as np

from jaxmlp import ensemble as _ensemble
from jaxmlp._epochs import select
from jaxmlp.metrics import task_of
from jaxmlp.model import init_params
from jaxmlp.train_cli import (
    RUN_KEYS,
    STRENGTHS,
    SWEEPABLE,
    UsageError,
    _append,
    _csv_columns,
    _csv_row,
    _fail,
    _keys,
    _optimizer,
    _regularization,
    _save_run,
    _setup,
    _write_json,
)


def many_models(args: argparse.Namespace) -> bool:
    """Whether the options ask for several models (checked); ``--seeds 1`` alone is one run."""
    if args.seeds < 1:
        raise UsageError(f"--seeds must be >= 1; got {args.seeds}")
    many = bool(args.sweep) or args.seeds > 1
    if many and args.resume:
        raise UsageError(
            "--resume continues one run; it cannot be combined with --seeds or --sweep "
            "(continue one model of a sweep with --resume --out DIR/model_<k>)"
        )
    return many


def _sweepable(args: argparse.Namespace) -> list[str]:
    """The names ``--sweep`` accepts with this run's optimizer and schedule."""
    return [
        name
        for name, (_, optimizers, schedules_) in SWEEPABLE.items()
        if (optimizers is None or args.optimizer in optimizers)
        and (schedules_ is None or args.schedule in schedules_)
    ]


def _parse_sweeps(args: argparse.Namespace) -> list[tuple[str, list[Any]]]:
    """The ``--sweep NAME=V1,V2,...`` options as ``[(name, values)]``, names and values checked.

    The ranges that depend on the optimizer (β in [0, 1), ...) are checked when each model's
    optimizer is built, as for a single run.
    """
    allowed = _sweepable(args)
    sweeps: list[tuple[str, list[Any]]] = []
    for text in args.sweep or ():
        name, sep, values = text.partition("=")
        name = name.strip().replace("-", "_")
        if not sep or not name or not values.strip():
            raise UsageError(f"--sweep must be NAME=V1,V2,...; got {text!r}")
        if name not in allowed:
            if name == "seed":
                why = "use --seeds N"
            elif name in SWEEPABLE:
                why = f"no effect with --optimizer {args.optimizer} --schedule {args.schedule}"
            elif name in RUN_KEYS:
                why = "it changes the compiled program"
            else:
                why = "unknown name"
            raise UsageError(
                f"--sweep {name}: cannot sweep it ({why}); sweepable here: {', '.join(allowed)}"
            )
        if any(name == done for done, _ in sweeps):
            raise UsageError(f"--sweep {name} given twice; give all its values in one --sweep")
        sweeps.append((name, [_sweep_value(name, v.strip()) for v in values.split(",")]))
    return sweeps


def _sweep_value(name: str, raw: str) -> float | int:
    kind = SWEEPABLE[name][0]
    try:
        value = kind(raw)
    except ValueError:
        expected = "an integer" if kind is int else "a number"
        raise UsageError(f"--sweep {name}: expected {expected}; got {raw!r}") from None
    if not math.isfinite(value):
        raise UsageError(f"--sweep {name}: values must be finite; got {raw!r}")
    low = 1 if name == "decay_steps" else 0
    if value < low:
        raise UsageError(f"--sweep {name}: values must be >= {low}; got {raw}")
    return value


def _label(model: dict[str, Any]) -> str:
    """``seed 3, l2w=0.001, lr=0.02``: a model's seed and swept values."""
    return ", ".join(
        [f"seed {model['seed']}"] + [f"{k}={_fmt(v)}" for k, v in model.items() if k != "seed"]
    )


def _fmt(value: float | int) -> str:
    return str(value) if isinstance(value, int) else f"{value:.7g}"


def run_many(args: argparse.Namespace, out: str) -> int:
    """Train every combination of seeds and swept values with `jaxmlp.fit_many`; report."""
    try:
        sweeps = _parse_sweeps(args)
        names = [name for name, _ in sweeps]
        base = argparse.Namespace(**vars(args))
        base.data_seed = args.seed if args.data_seed is None else args.data_seed
        run = _setup(base, warmup_always="warmup" in names)
        net = run["net"]
        # Seeds vary fastest, so the seeds of one setting are neighbours in every output.
        models = [
            {"seed": seed, **dict(zip(names, combo))}
            for combo in itertools.product(*(values for _, values in sweeps))
            for seed in range(args.seed, args.seed + args.seeds)
        ]
        params, states, keys, configs, opt = [], [], [], [], None
        for model in models:
            margs = argparse.Namespace(**{**vars(base), **model})
            try:
                opt_k = _optimizer(margs, run["total_steps"], "warmup" in names)
            except (ValueError, TypeError) as err:
                raise UsageError(f"--sweep: the model with {_label(model)}: {err}") from None
            # Hyperparameters live in the state, so every model can share the first's update.
            opt = opt or opt_k
            _, _, _, init_key, shuffle_key = _keys(model["seed"])
            params.append(init_params(init_key, net, scheme=args.init))
            states.append(opt_k.init(params[-1]))
            keys.append(shuffle_key)
            configs.append({k: getattr(margs, k) for k in RUN_KEYS})
        dtype = jnp.result_type(float)
        strengths = {n: jnp.asarray([m[n] for m in models], dtype) for n in names if n in STRENGTHS}
        reg = _regularization(base, net.n_layers, **strengths)
        os.makedirs(out, exist_ok=True)
    except (ValueError, TypeError, FileNotFoundError, ImportError, KeyError) as err:
        return _fail(str(err))

    K = len(models)
    config = {
        **{k: getattr(base, k) for k in RUN_KEYS},
        "seeds": [m["seed"] for m in models[: args.seeds]],
        "sweep": dict(sweeps),
    }
    params, state = _ensemble.stack(params), _ensemble.stack(states)
    # One key when the seeds are one: the same shuffles for all, without K copies of them.
    key = keys[0] if args.seeds == 1 else jnp.stack(keys)
    kw = dict(
        loss=run["loss"],
        reg=reg,
        batch_size=args.batch_size,
        validation=run["validation"],
        key=key,
        grads=args.grads,
        progress=False,
    )
    hists: list[dict[str, np.ndarray]] = [{} for _ in models]
    reasons: list[str | None] = [None] * K
    alive = np.ones(K, bool)
    saved = dict(out=out, run=run, models=models, keys=keys, configs=configs, config=config)
    bar = None
    if not args.no_progress and args.epochs:
        from tqdm.auto import tqdm

        bar = tqdm(total=args.epochs, unit="epoch", desc=f"jaxmlp train ({K} models)")
    start, done, segment = time.perf_counter(), 0, 10
    while done < args.epochs and alive.any():
        next_ckpt = (done // args.checkpoint_every + 1) * args.checkpoint_every
        n = min(segment, args.epochs - done, next_ckpt - done)
        t0 = time.perf_counter()
        with warnings.catch_warnings():
            # Divergences are reported below, once per model, with the exit status.
            warnings.simplefilter("ignore", RuntimeWarning)
            result = _ensemble.fit_many(net, params, opt, run["x"], run["y"], epochs=n,
                                        opt_state=state, initial_epoch=done, **kw)  # fmt: skip
        # A model that stopped earlier ran again from its last good state; that is discarded.
        params = _select_models(alive, result.params, params)
        state = _select_models(alive, result.opt_state, state)
        for k in np.flatnonzero(alive):
            model_k = result.model(int(k))
            hists[k] = _append(hists[k], model_k.history)
            if model_k.stop_reason:
                reasons[k], alive[k] = model_k.stop_reason, False
        done += n
        if bar is not None:
            bar.update(n)
            bar.set_postfix(_many_postfix(hists, alive), refresh=False)
        final = done >= args.epochs or not alive.any()
        if final or done == next_ckpt:
            _save_many(params, state, hists, reasons, final=final, **saved)
        elapsed = time.perf_counter() - t0
        segment = max(1, min(10 * segment, int(n * 0.5 / max(elapsed, 1e-6))))
    if bar is not None:
        bar.close()
    seconds = time.perf_counter() - start
    if not args.epochs:
        _save_many(params, state, hists, reasons, final=True, **saved)
    _report_many(out, run, models, params, hists, reasons, args, seconds)
    for reason in reasons:
        if reason:
            print(f"jaxmlp train: {reason}", file=sys.stderr)
    return 1 if any(reasons) else 0


def _select_models(mask: np.ndarray, new: Any, old: Any) -> Any:
    """Model k from `new` where ``mask[k]``, else from `old` (trees with a leading K axis)."""
    return new if mask.all() else select(jnp.asarray(mask), new, old)


def _many_postfix(hists: list[dict[str, np.ndarray]], alive: np.ndarray) -> dict[str, str]:
    field = "val_accuracy" if "val_accuracy" in hists[0] else "accuracy"
    last = [h[field][-1] for h, a in zip(hists, alive) if a and len(h.get(field, ()))]
    out = {"running": f"{int(alive.sum())}/{len(alive)}"}
    if last:
        out[f"best_{'val_acc' if field == 'val_accuracy' else 'acc'}"] = f"{max(last):.3f}"
    return out


def _final(history: dict[str, np.ndarray]) -> dict[str, float] | None:
    """The last epoch's metrics, None when no epoch ran."""
    if not history or not len(history["epoch"]):
        return None
    fields = ("accuracy", "loss", "data_loss", "penalty", "val_accuracy", "val_loss")
    return {k: float(history[k][-1]) for k in fields if k in history}


def _save_many(
    params, state, hists, reasons, *, final, out, run, models, keys, configs, config
) -> None:
    """Each model's directory as a single run writes it; when `final`, the combined files too.

    Only the per-model checkpoints and histories are needed to continue a model
    (``--resume --out DIR/model_<k>``); the combined history.json and metrics.csv, and each
    model's metrics.csv, are written once, at the end.
    """
    net, names = run["net"], [k for k in models[0] if k != "seed"]
    entries = []
    for k, model in enumerate(models):
        where = os.path.join(out, f"model_{k}")
        os.makedirs(where, exist_ok=True)
        history = hists[k] or {"epoch": np.zeros(0, int)}
        state_k = _ensemble.take(state, k)
        if model.get("warmup") == 0:
            # The single run has no warm-up to wrap its schedule in (rates are the same).
            state_k = state_k._replace(learning_rate=state_k.learning_rate.schedule)
        _save_run(where, net, _ensemble.take(params, k), state_k, keys[k], configs[k], history,
                  run, final=final)  # fmt: skip
        if not final:
            continue
        entries.append(
            {
                "model": k,
                **model,
                "dir": f"model_{k}",
                "epochs_run": len(history["epoch"]),
                "stop_reason": reasons[k],
                "final": _final(history),
                "history": {name: np.asarray(v).tolist() for name, v in history.items()},
            }
        )
    if not final:
        return
    _write_json(
        os.path.join(out, "history.json"),
        {
            "config": config,
            "net": {"sizes": list(net.sizes), "activations": list(net.activations)},
            "loss": run["loss"],
            "models": entries,
        },
    )
    prefix = ["model", "seed", *names]
    header = next((_csv_columns(h)[0] for h in hists if h), ["epoch"])
    tmp = os.path.join(out, "metrics.csv.tmp")
    with open(tmp, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(prefix + header)
        for k, (model, history) in enumerate(zip(models, hists)):
            first = [k] + [_fmt(model[name]) for name in ["seed", *names]]
            for row in zip(*_csv_columns(history)[1]):
                w.writerow(first + _csv_row(header, row))
    os.replace(tmp, os.path.join(out, "metrics.csv"))


def _report_many(out, run, models, params, hists, reasons, args, seconds) -> None:
    """One line per model, mean ± std over the seeds of each setting, then the plots."""
    names = [k for k in models[0] if k != "seed"]
    val = run["validation"] is not None
    head = ["model", "seed", *names, "acc", "loss"] + (["val_acc", "val_loss"] if val else [])
    rows, finals = [], [_final(h) for h in hists]
    for k, (model, final) in enumerate(zip(models, finals)):
        cells = [str(k), *(_fmt(model[n]) for n in ["seed", *names])]
        if reasons[k]:
            epoch = int(hists[k]["epoch"][-1]) if final else 0
            cells.append(f"diverged at epoch {epoch + 1}")
        elif final is None:
            cells.append("no epochs run")
        else:
            metrics = ["accuracy", "loss"] + (["val_accuracy", "val_loss"] if val else [])
            cells += [f"{final[m]:.3f}" for m in metrics]
        rows.append(cells)
    # A "diverged at epoch e" cell spans the metric columns and does not widen them.
    fixed = [r if len(r) == len(head) else r[:-1] for r in [head, *rows]]
    widths = [max(len(r[i]) for r in fixed if i < len(r)) for i in range(len(head))]
    for r in [head, *rows]:
        print("  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip())
    if args.seeds > 1:
        _print_seed_stats(models, finals, reasons, names, val, args.seeds)
    what = "accuracy" if task_of(run["loss"]) == "classification" else "regression accuracy"
    print(f"{len(models)} models of {run['net']}; {what} as in the book; {seconds:.1f} s; "
          f"outputs in {out}/")  # fmt: skip
    if args.no_plots:
        return
    try:
        _plot_many(out, run, models, params, hists, reasons, finals)
    except ImportError as err:
        print(f"jaxmlp train: no plots: {err}", file=sys.stderr)


def _print_seed_stats(models, finals, reasons, names, val, n_seeds) -> None:
    """Mean ± sample standard deviation over the seeds of each setting (diverged ones left out)."""
    print(f"mean ± std over {n_seeds} seeds (sample std; diverged models left out):")
    metrics = ["accuracy", "loss"] + (["val_accuracy", "val_loss"] if val else [])
    short = {"accuracy": "acc", "loss": "loss", "val_accuracy": "val_acc", "val_loss": "val_loss"}
    for first in range(0, len(models), n_seeds):
        group = range(first, first + n_seeds)
        setting = ", ".join(f"{n}={_fmt(models[first][n])}" for n in names) or "all models"
        good = [finals[k] for k in group if finals[k] and not reasons[k]]
        if not good:
            print(f"  {setting}: every seed diverged")
            continue
        parts = []
        for m in metrics:
            v = np.array([f[m] for f in good])
            std = f" ± {v.std(ddof=1):.3f}" if len(v) > 1 else ""
            parts.append(f"{short[m]} {v.mean():.3f}{std}")
        counted = f" ({len(good)} of {n_seeds} seeds)" if len(good) < n_seeds else ""
        print(f"  {setting}: {', '.join(parts)}{counted}")


def _plot_many(out, run, models, params, hists, reasons, finals) -> None:
    """curves.png: every model's loss and accuracy; decision_boundary.png: the best model's."""
    from jaxmlp import plotting

    if not any(h and len(h["epoch"]) for h in hists):
        return
    plt = plotting._pyplot()
    fig, (ax_loss, ax_acc) = plt.subplots(1, 2, figsize=(11, 4), dpi=100)
    cmap = plt.get_cmap("viridis")
    for k, (model, h) in enumerate(zip(models, hists)):
        if not h or not len(h["epoch"]):
            continue
        color = cmap(k / max(len(models) - 1, 1))
        ax_loss.plot(h["epoch"], h["loss"], color=color, label=f"{k}: {_label(model)}")
        ax_acc.plot(h["epoch"], h["accuracy"], color=color)
        if "val_loss" in h:
            ax_loss.plot(h["epoch"], h["val_loss"], color=color, linestyle="--")
            ax_acc.plot(h["epoch"], h["val_accuracy"], color=color, linestyle="--")
    dashed = "; dashed: validation" if run["validation"] is not None else ""
    ax_loss.set(xlabel="epoch", ylabel="loss", title=f"Loss (solid: train{dashed})")
    ax_acc.set(xlabel="epoch", ylabel="accuracy", title="Accuracy", ylim=(0, 1.02))
    if len(models) <= 12:
        ax_loss.legend(fontsize="small")
    fig.tight_layout()
    fig.savefig(os.path.join(out, "curves.png"))
    plt.close(fig)

    net = run["net"]
    field = "val_accuracy" if run["validation"] is not None else "accuracy"
    ranked = [(f[field], -f["loss"], -k) for k, f in enumerate(finals) if f and not reasons[k]]
    if net.in_features != 2 or task_of(run["loss"]) != "classification" or not ranked:
        return
    best = -max(ranked)[2]
    x, y = run["validation"] or (run["x"], run["y"])
    plotting.plot_decision_boundary(
        net,
        _ensemble.take(params, best),
        x,
        y,
        os.path.join(out, "decision_boundary.png"),
        title=f"best: model {best} ({_label(models[best])}), "
        + ("validation" if run["validation"] is not None else "training")
        + " data",
    )
