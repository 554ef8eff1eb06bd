"""``jaxmlp train``: train a net from the command line; write metrics, a checkpoint and plots.

With no options it runs the book's chapter-14 experiment: spiral data (100 samples × 3
classes; validation on a fresh draw of the same size), a 2-64-3 ReLU/softmax net, categorical
cross-entropy, L2 of 5e-4 on the hidden layer's weights and biases, Adam with learning rate
0.02 and the book's decay ``0.02 / (1 + 5e-7·step)``, ε = 1e-7, 10000 full-batch epochs. For
the digits or a file (``--data FILE``) the general preset applies instead: Adam at 1e-3 with a
constant rate, batches of 32, L2 of 1e-4 on every layer's weights and none on the biases
(``--preset book`` gives the book's settings; options given explicitly always win).

Outputs in ``--out`` (default ``runs/<data>``): ``metrics.csv`` (one row per epoch),
``history.json`` (the settings, the history and the final metrics), ``checkpoint.npz`` (see
`jaxmlp.checkpoint`; it and ``history.json`` are written every ``--checkpoint-every`` epochs
and at the end, ``metrics.csv`` at the end or when training stops), ``summary.csv`` and
``summary.json`` (the closing summary), ``split.npz`` (the rows of ``--data`` a validation
split took, when one was made) and, with matplotlib installed, ``curves.png`` and, for 2-D
inputs, ``decision_boundary.png``. ``--resume`` continues from the checkpoint in ``--out`` with
the settings saved there, up to ``--epochs`` epochs in all, and produces exactly the numbers an
uninterrupted run would. A regression reports R², RMSE and MAE; with a standardized target
(``--standardize-targets``) RMSE and MAE are in the target's units, the losses in the
standardized ones. ``--test-data`` is scored once, at the end.

Many models at once: ``--seeds N`` trains N models with seeds seed, …, seed+N−1, and each
``--sweep NAME=V1,V2,...`` one model per value (several sweeps and --seeds form a grid), in one
compiled program (`jaxmlp.fit_many`) on the data of ``--seed`` (or ``--data-seed``); values of
width, depth, hidden or batch_size change the program and are trained as one program each.
Model k equals, to float rounding, the single run ``jaxmlp train --seed S_k --data-seed SEED
--NAME V_k ...``: its seed draws its initial weights and shuffles. ``--out`` then holds
``metrics.csv`` (one row per model and epoch, with columns model, seed and the swept names),
``history.json`` (the settings, and per model its values, history, final metrics and stop
reason), ``model_<k>/`` (a single run's ``checkpoint.npz``, ``history.json`` and
``metrics.csv``: ``--resume --out DIR/model_<k>`` continues that model alone), the summary
files and, with matplotlib, ``curves.png`` (every model) and ``decision_boundary.png`` (the
best model by validation accuracy). A summary with, per setting, the mean and 95% interval over
its seeds of each final metric ends the run; ``--baseline NAME=V`` adds each setting's paired
difference from the setting NAME=V.

exit status: 0 done, 1 training (of any model) diverged, 2 bad options or data, 130 interrupted
(SIGINT or SIGTERM: the files are written at the epoch reached; --resume continues)

How a run flows: `run` checks the options (`plan`: the preset, the sweeps), `jaxmlp.cli.data`
reads the data, `jaxmlp.cli.models.make_groups` builds one group per compiled program (its
problem, and each model's optimizer, initial parameters and shuffle key), and `train` calls
`jaxmlp.fit` (one model) or `jaxmlp.fit_many` (K) once per group, with a callback that writes
the checkpoints, then scores ``--test-data``; `jaxmlp.cli.report` prints the results, saves the
summary and draws the plots.
"""

from __future__ import annotations

import dataclasses
import functools
import os
import signal
import sys
import threading
import time
import warnings
from typing import Any, NamedTuple, cast

import jax.numpy as jnp
import numpy as np

from jaxmlp._driver import Snapshot
from jaxmlp.cli import config as options
from jaxmlp.cli import outputs, report, selection
from jaxmlp.cli.config import RUN_KEYS, TrainConfig, check_bounds
from jaxmlp.cli.data import load_data
from jaxmlp.cli.models import Group, make_groups, resumed, with_seed_data
from jaxmlp.cli.scores import in_units, score
from jaxmlp.cli.sweeps import parse_baseline, parse_sweeps
from jaxmlp.ensemble import FitManyResult, fit_many, stack
from jaxmlp.fit import FitResult, fit

HELP = "train a net (default: the book's chapter-14 spiral experiment)"
DESCRIPTION = __doc__.split("\n", 1)[1].split("\n\nHow a run flows")[0].strip()
Config = TrainConfig
FILL = {"sweepable": ", ".join(options.SWEEPABLE), "structural": ", ".join(options.STRUCTURAL)}
ERRORS = (ValueError, TypeError, FileNotFoundError, ImportError, KeyError)


class Run(NamedTuple):
    """Everything `train` needs: where, the options, the groups of models, the resumed rows."""

    out: str
    config: TrainConfig
    settings: dict[str, Any]  # the run's settings, as its history.json records them
    groups: list[Group]
    history: dict[str, np.ndarray]  # a resumed run's rows so far
    baseline: tuple[str, Any] | None  # --baseline's name and value

    @property
    def size(self) -> int:
        """The number of models."""
        return sum(len(g.models) for g in self.groups)

    def per_model(self, what: str) -> list:
        """Each model's `what` (``"problem"``, ``"values"``) in the order of their numbers."""
        found = {k: (g.problem if what == "problem" else getattr(m, what))
                 for g in self.groups for k, m in zip(g.numbers, g.models)}  # fmt: skip
        return [found[k] for k in range(self.size)]


def run(config: TrainConfig) -> int:
    """Run ``jaxmlp train`` with `config`; return the exit status."""
    try:
        plan_ = plan(config)
    except ERRORS as err:
        print(f"jaxmlp train: error: {err}", file=sys.stderr)
        return 2
    start = time.perf_counter()
    results, tests = train(plan_)
    seconds = time.perf_counter() - start
    report.report(plan_.out, plan_.config, plan_.per_model("problem"),
                  plan_.per_model("values"), results, tests, seconds, plan_.baseline)  # fmt: skip
    return exit_status(plan_.out, plan_.config, results)


def plan(config: TrainConfig) -> Run:
    """The run the options ask for: settings resolved and checked, data read, models built.

    A fresh run takes the settings a preset leaves unset from it; a resumed run takes every
    setting that defines it from its checkpoint. Makes ``--out`` once everything is checked.
    """
    check_bounds(config)
    data_name = os.path.splitext(os.path.basename(config.data))[0] or "data"
    out = config.out or os.path.join("runs", data_name)
    history, ck = {}, None
    if config.resume:
        parse_sweeps(config)  # refuses --seeds and --sweep
        selection.check_resume(config)  # and --folds, --halving
        ck, saved, history = outputs.load_run(out, RUN_KEYS)
        config = dataclasses.replace(config, **{k: saved[k] for k in RUN_KEYS})
    else:
        config = selection.for_folds(options.resolve_preset(config))
    check_bounds(config)
    sweeps = parse_sweeps(config)
    baseline = parse_baseline(config, sweeps)
    if sweeps or config.seeds > 1:  # many models share the data of --seed
        config = with_seed_data(config)
    data = load_data(config)
    groups = make_groups(config, data, sweeps)
    if ck is not None:
        groups = resumed(groups, ck, out)
    selection.check(config, groups[0].problem, sum(len(g.models) for g in groups))
    settings = run_settings(config)
    if sum(len(g.models) for g in groups) > 1:
        seeds = list(range(config.seed, config.seed + config.seeds))
        many = {
            k: getattr(config, k) for k in ("baseline", "folds", "halving", "halving_min_epochs")
        }
        settings.update(seeds=seeds, sweep=sweeps, **many)
    os.makedirs(out, exist_ok=True)
    outputs.save_split(out, data.split)
    return Run(out, config, settings, groups, history, baseline)


def exit_status(out: str, config: TrainConfig, results: list[FitResult]) -> int:
    """Print why training stopped early, if it did; 130 interrupted, 1 diverged, else 0.

    Divergence goes to stderr; early stopping and pruning are results, not failures: printed
    for one model (the table shows them for K).
    """
    reasons = [r.stop_reason for r in results if r.stop_reason]
    interrupted = [r for r in reasons if r.startswith("interrupted")]
    failed = [r for r in reasons if "diverged" in r]
    for reason in failed:
        print(f"jaxmlp train: {reason}", file=sys.stderr)
    if len(results) == 1 and reasons and not (failed or interrupted):
        print(reasons[0])
    if interrupted:
        epoch = max(int(r.history["epoch"][-1]) for r in results if len(r.history["epoch"]))
        where = f"{out}/model_<k>" if len(results) > 1 else out
        print(f"jaxmlp train: interrupted at epoch {epoch}; resume with jaxmlp train --resume "
              f"--out {where} --epochs {config.epochs}", file=sys.stderr)  # fmt: skip
        return 130
    return 1 if failed else 0


def interruptible(run_fn):
    """`run_fn` with SIGTERM treated as Ctrl-C, and Ctrl-C outside training as exit status 130.

    While training, `jaxmlp.fit` ends the run at the end of its current call of the compiled
    program on the first SIGINT; the files are then written as at the end of a run.
    """

    @functools.wraps(run_fn)
    def wrapped(config: TrainConfig) -> int:
        main = threading.current_thread() is threading.main_thread()
        as_sigint = lambda *_: signal.raise_signal(signal.SIGINT)  # noqa: E731
        previous = signal.signal(signal.SIGTERM, as_sigint) if main else None
        try:
            return run_fn(config)
        except KeyboardInterrupt:
            print("jaxmlp train: interrupted; the last checkpoint written, if any, is intact",
                  file=sys.stderr)  # fmt: skip
            return 130
        finally:
            if main:
                signal.signal(signal.SIGTERM, previous)

    return wrapped


run = interruptible(run)


def run_settings(config: TrainConfig) -> dict[str, Any]:
    """The settings that define a run, as its checkpoint and history.json record them.

    With them the epochs asked for (``--resume`` takes a new count); ``classes`` only for the
    generated data it applies to.
    """
    settings = {k: getattr(config, k) for k in RUN_KEYS}
    if config.data not in ("spiral", "vertical"):
        settings["classes"] = None
    return {**settings, "epochs": config.epochs}


def train(run: Run) -> tuple[list[FitResult], list[dict | None]]:
    """Train the groups one after another, then score ``--test-data``; write every file.

    Returns each model's result with its whole history (a resumed run's included; RMSE and MAE
    in the target's units) and its test metrics (None without ``--test-data``). After an
    interruption the groups not yet trained keep their initial state, with no epochs run.
    """
    slots: list[FitResult | None] = [None] * run.size
    stopped = False
    for group in run.groups:
        mine = [_untrained(m) for m in group.models] if stopped else train_group(run, group)
        stopped = stopped or any((r.stop_reason or "").startswith("interrupted") for r in mine)
        for k, r in zip(group.numbers, mine):
            slots[k] = r
    results = cast(list[FitResult], slots)  # the groups' numbers are every model's, 0..size-1
    tests: list[dict | None] = [None] * run.size
    for group in run.groups:
        for k in group.numbers:
            if group.problem.test is not None and len(results[k].history["epoch"]):
                tests[k] = score(group.problem, results[k].params, group.problem.test)
    for group in run.groups:
        save(run, group, [results[k] for k in group.numbers], [tests[k] for k in group.numbers])
    if run.size > 1:
        outputs.save_models(run.out, run.settings, run.per_model("problem"),
                            run.per_model("values"), results, tests)  # fmt: skip
    return results, tests


def train_group(run: Run, group: Group) -> list[FitResult]:
    """Train one group's models: one `fit`, or one `fit_many`, writing checkpoints as they go."""
    config, problem, models = run.config, group.problem, group.models
    done = int(run.history["epoch"][-1]) if run.history else 0
    kw: dict[str, Any]  # fit's keyword arguments, of many types
    kw = dict(loss=problem.loss, reg=group.reg, batch_size=models[0].config.batch_size,
              validation=problem.validation, grads=config.grads, initial_epoch=done,
              epochs=max(config.epochs - done, 0), progress=not config.no_progress,
              callback=lambda snapshot: save_snapshot(run, group, snapshot),
              callback_every=config.checkpoint_every)  # fmt: skip
    early = selection.early_stopping(config)
    if early is not None:
        kw["early_stopping"] = early
    net, x, y, first = problem.net, problem.x, problem.y, models[0]
    with warnings.catch_warnings():  # divergence is reported once, with the exit status
        warnings.simplefilter("ignore", RuntimeWarning)
        if len(models) == 1:
            state, key = first.opt_state, first.key
            if "early_stopping" in kw:
                kw["early_state"] = first.early_state  # a resumed run's, else None
            results = [fit(net, first.params, first.opt, x, y, opt_state=state, key=key, **kw)]
        else:
            results = _train_many(config, group, kw)
    return [r._replace(history=_joined(run.history, in_units(problem, r.history)))
            for r in results]  # fmt: skip


def _train_many(config: TrainConfig, group: Group, kw: dict) -> list[FitResult]:
    """A group of K models in one `fit_many`, with their folds, or by successive halving."""
    models, problem, first = group.models, group.problem, group.models[0]
    # One key when the seeds are one: the same shuffles for all, without K copies.
    key = first.key if config.seeds == 1 else jnp.stack([m.key for m in models])
    params, state = stack([m.params for m in models]), stack([m.opt_state for m in models])
    if config.folds:
        kw |= selection.fold_rows(config, problem, [m.values for m in models])
    args = (problem.net, params, first.opt, problem.x, problem.y)
    if config.halving:
        results, rungs = selection.halve(config, *args, {**kw, "opt_state": state, "key": key})
        for m, rung in zip(models, rungs):
            m.values["rung"] = int(rung)  # recorded in metrics.csv and history.json
        return results
    many = fit_many(*args, opt_state=state, key=key, **kw)
    return [many.model(k) for k in range(len(models))]


def _untrained(model: Any) -> FitResult:
    history = {"epoch": np.zeros(0, np.int64)}
    return FitResult(params=model.params, opt_state=model.opt_state, history=history,
                     stop_reason="interrupted before training")  # fmt: skip


def _joined(history: dict, new: dict) -> dict:
    return {k: np.concatenate([history[k], v]) for k, v in new.items()} if history else new


def save_snapshot(run: Run, group: Group, snapshot: Snapshot) -> None:
    """A group's files at a checkpoint epoch (not at the last: the final save follows at once)."""
    if snapshot.epoch >= run.config.epochs:
        return
    results = _per_model(snapshot, len(group.models))
    results = [r._replace(history=_joined(run.history, in_units(group.problem, r.history)))
               for r in results]  # fmt: skip
    save(run, group, results, [None] * len(results), final=False)


def save(run: Run, group: Group, results: list[FitResult], tests: list, final: bool = True):
    """Every model's folder of a group: its history.json, checkpoint and (final) metrics.csv."""
    many = run.size > 1
    for number, model, result, test in zip(group.numbers, group.models, results, tests):
        where = os.path.join(run.out, f"model_{number}") if many else run.out
        os.makedirs(where, exist_ok=True)
        state, last = result.opt_state, result.last_state
        if model.values.get("warmup") == 0:
            # The single run has no warm-up to wrap its schedule in (rates are the same).
            state = _unwrapped(state)
            last = None if last is None else (last[0], _unwrapped(last[1]))
        outputs.save_model(where, group.problem, result.params, state, model.key,
                           run_settings(model.config), result.history, reason=result.stop_reason,
                           final=final, test=test, best_epoch=result.best_epoch,
                           early_state=result.early_state, last_state=last)  # fmt: skip


def _unwrapped(state: Any) -> Any:
    """An optimizer state with its 0-step warm-up unwrapped (the same rates)."""
    return state._replace(learning_rate=state.learning_rate.schedule)


def _per_model(snapshot: Snapshot, n: int) -> list[FitResult]:
    """Each of the `n` models' parameters, state and history so far, as `FitResult`s."""
    if n == 1:
        return [FitResult(snapshot.params, snapshot.opt_state, snapshot.history, None,
                          early_state=snapshot.early_state)]  # fmt: skip
    runs = np.sum(~np.isnan(snapshot.history["loss"]), axis=1)  # a stopped model's rows are NaN
    many = FitManyResult(snapshot.params, snapshot.opt_state, snapshot.history, (None,) * n, runs)
    return [many.model(k) for k in range(n)]
