"""``jaxmlp train``: train a net from the command line; write metrics, a checkpoint and plots.

With no options it runs the book's chapter-14 experiment: spiral data (100 samples × 3
classes; validation on a fresh draw of the same size), a 2-64-3 ReLU/softmax net, categorical
cross-entropy, L2 of 5e-4 on the hidden layer's weights and biases, Adam with learning rate
0.02 and the book's decay ``0.02 / (1 + 5e-7·step)``, ε = 1e-7, 10000 full-batch epochs.

Outputs in ``--out`` (default ``runs/<data>``): ``metrics.csv`` (one row per epoch),
``history.json`` (the settings, the history and the final metrics), ``checkpoint.npz`` (see
`jaxmlp.checkpoint`; it and ``history.json`` are written every ``--checkpoint-every`` epochs
and at the end, ``metrics.csv`` at the end or when training stops), and, with
matplotlib installed, ``curves.png`` and, for 2-D inputs, ``decision_boundary.png``.
``--resume`` continues from the checkpoint in ``--out`` with the settings saved there, up to
``--epochs`` epochs in all, and produces exactly the numbers an uninterrupted run would.

Many models at once: ``--seeds N`` trains N models with seeds seed, …, seed+N−1, and each
``--sweep NAME=V1,V2,...`` one model per value (several sweeps and --seeds form a grid), in one
compiled program (`jaxmlp.fit_many`) on the data of ``--seed`` (or ``--data-seed``). Model k
equals, to float rounding, the single run ``jaxmlp train --seed S_k --data-seed SEED --NAME V_k
...``: its seed draws its initial weights and shuffles. ``--out`` then holds ``metrics.csv``
(one row per model and epoch, with columns model, seed and the swept names), ``history.json``
(the settings, and per model its values, history, final metrics and stop reason), ``model_<k>/``
(a single run's ``checkpoint.npz``, ``history.json`` and ``metrics.csv``: ``--resume --out
DIR/model_<k>`` continues that model alone) and, with matplotlib, ``curves.png`` (every model)
and ``decision_boundary.png`` (the best model by validation accuracy). A summary table, with the
mean ± std over the seeds of each setting, ends the run.

exit status: 0 done, 1 training (of any model) diverged, 2 bad options or data, 130 interrupted
(SIGINT or SIGTERM: the files are written at the epoch reached; --resume continues)

How a run flows: `run` checks the options, `jaxmlp.cli.data.setup` builds the data, the task,
the net and the loss, `make_models` each model's optimizer, initial parameters and shuffle key,
and `train` calls `jaxmlp.fit` (one model) or `jaxmlp.fit_many` (K) once, with a callback that
writes the checkpoints; `jaxmlp.cli.report` prints the results and draws the plots.
"""

from __future__ import annotations

import dataclasses
import functools
import itertools
import math
import os
import signal
import sys
import threading
import time
import warnings
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from jaxmlp import optim, schedules
from jaxmlp._driver import Snapshot
from jaxmlp.cli import outputs, report
from jaxmlp.cli.config import RUN_KEYS, SWEEPABLE, TrainConfig, check_bounds
from jaxmlp.cli.data import Problem, data_seed, keys, setup
from jaxmlp.ensemble import FitManyResult, fit_many, stack
from jaxmlp.fit import FitResult, fit
from jaxmlp.model import Params, init_params
from jaxmlp.regularization import FIELDS as STRENGTHS
from jaxmlp.regularization import Regularization

HELP = "train a net (default: the book's chapter-14 spiral experiment)"
DESCRIPTION = __doc__.split("\n", 1)[1].split("\n\nHow a run flows")[0].strip()
Config = TrainConfig
FILL = {"sweepable": ", ".join(SWEEPABLE)}
OPTIMIZERS = {  # each optimizer's options, passed as its keyword arguments
    "sgd": ("momentum", "nesterov"),
    "adagrad": ("eps", "eps_root"),
    "rmsprop": ("rho", "centered", "momentum", "eps", "eps_root"),
    "adam": ("b1", "b2", "amsgrad", "eps", "eps_root"),
    "adamw": ("b1", "b2", "amsgrad", "eps", "eps_root", "weight_decay"),
}


class Model(NamedTuple):
    """One model of a run: its settings, the values that set it apart, its initial state."""

    config: TrainConfig
    values: dict[str, Any]  # its seed, then its swept values
    opt: optim.Optimizer
    params: Params
    opt_state: optim.OptState
    key: jax.Array


class Run(NamedTuple):
    """Everything `train` needs: where, the options, the data and net, the models."""

    out: str
    config: TrainConfig
    settings: dict[str, Any]  # the run's settings, as its history.json records them
    problem: Problem
    models: list[Model]
    reg: tuple  # one Regularization per layer; a swept strength holds one value per model
    history: dict[str, np.ndarray]  # a resumed run's rows so far


def run(config: TrainConfig) -> int:
    """Run ``jaxmlp train`` with `config`; return the exit status."""
    try:
        check_bounds(config)
        sweeps = parse_sweeps(config)
        data_name = os.path.splitext(os.path.basename(config.data))[0] or "data"
        out = config.out or os.path.join("runs", data_name)
        history = {}
        if config.resume:
            ck, saved, history = outputs.load_run(out, RUN_KEYS)
            config = dataclasses.replace(config, **{k: saved[k] for k in RUN_KEYS})
        elif sweeps or config.seeds > 1:  # many models share the data of --seed
            config = dataclasses.replace(config, data_seed=data_seed(config))
        problem = setup(config)
        models = make_models(config, problem, sweeps)
        if config.resume:  # the one model, in the state the checkpoint holds
            if ck.net != problem.net:
                raise ValueError(f"the checkpoint in {out} holds {ck.net}, not {problem.net}")
            models = [models[0]._replace(params=ck.params, opt_state=ck.opt_state, key=ck.key)]
        reg = regularization(config, problem.net.n_layers, models)
        settings = run_settings(config)
        if len(models) > 1:
            settings.update(seeds=[m.config.seed for m in models[: config.seeds]], sweep=sweeps)
        os.makedirs(out, exist_ok=True)
    except (ValueError, TypeError, FileNotFoundError, ImportError, KeyError) as err:
        print(f"jaxmlp train: error: {err}", file=sys.stderr)
        return 2
    start = time.perf_counter()
    results = train(Run(out, config, settings, problem, models, reg, history))
    seconds = time.perf_counter() - start
    report.report(out, config, problem, [m.values for m in models], results, seconds)
    return exit_status(out, config, results)


def exit_status(out: str, config: TrainConfig, results: list[FitResult]) -> int:
    """Print why training stopped early, if it did; 130 interrupted, 1 diverged, else 0."""
    reasons = [r.stop_reason for r in results if r.stop_reason]
    interrupted = [r for r in reasons if r.startswith("interrupted")]
    for reason in reasons:
        if not reason.startswith("interrupted"):
            print(f"jaxmlp train: {reason}", file=sys.stderr)
    if interrupted:
        epoch = max(int(r.history["epoch"][-1]) for r in results if len(r.history["epoch"]))
        where = f"{out}/model_<k>" if len(results) > 1 else out
        print(f"jaxmlp train: interrupted at epoch {epoch}; resume with jaxmlp train --resume "
              f"--out {where} --epochs {config.epochs}", file=sys.stderr)  # fmt: skip
        return 130
    return 1 if reasons else 0


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


def parse_sweeps(config: TrainConfig) -> dict[str, list[Any]]:
    """``--sweep NAME=V1,V2,...`` as ``{name: values}``, names and values checked.

    The ranges that depend on the optimizer (β in [0, 1), ...) are checked when each model's
    optimizer is built, as for a single run.
    """
    if (config.sweep or config.seeds > 1) and config.resume:
        raise ValueError(
            "--resume continues one run; it cannot be combined with --seeds or --sweep "
            "(continue one model of a sweep with --resume --out DIR/model_<k>)"
        )
    allowed = [n for n, s in SWEEPABLE.items() if s.applies(config.optimizer, config.schedule)]
    sweeps: dict[str, list[Any]] = {}
    for text in config.sweep or ():
        name, sep, values = text.partition("=")
        name = name.strip().replace("-", "_")
        if not sep or not name or not values.strip():
            raise ValueError(f"--sweep must be NAME=V1,V2,...; got {text!r}")
        if name not in allowed:
            why = _why_not_sweepable(name, config)
            raise ValueError(
                f"--sweep {name}: cannot sweep it ({why}); sweepable here: {', '.join(allowed)}"
            )
        if name in sweeps:
            raise ValueError(f"--sweep {name} given twice; give all its values in one --sweep")
        sweeps[name] = [_sweep_value(name, v.strip()) for v in values.split(",")]
    return sweeps


def _why_not_sweepable(name: str, config: TrainConfig) -> str:
    if name == "seed":
        return "use --seeds N"
    if name in SWEEPABLE:
        return f"no effect with --optimizer {config.optimizer} --schedule {config.schedule}"
    return "it changes the compiled program" if name in RUN_KEYS else "unknown name"


def _sweep_value(name: str, raw: str) -> float | int:
    kind, low = SWEEPABLE[name].kind, SWEEPABLE[name].low
    try:
        value = kind(raw)
    except ValueError:
        expected = "an integer" if kind is int else "a number"
        raise ValueError(f"--sweep {name}: expected {expected}; got {raw!r}") from None
    if not math.isfinite(value):
        raise ValueError(f"--sweep {name}: values must be finite; got {raw!r}")
    if value < low:
        raise ValueError(f"--sweep {name}: values must be >= {low}; got {raw}")
    return value


def regularization(config: TrainConfig, n_layers: int, models: list[Model]) -> tuple:
    """One `Regularization` per layer; a swept strength holds one value per model."""
    which = config.reg_layers.strip()
    if which in ("all", "hidden"):
        layers = set(range(n_layers if which == "all" else n_layers - 1))
    else:
        try:
            layers = {int(v) for v in which.split(",")}
        except ValueError:
            raise ValueError(
                f"--reg-layers must be hidden, all or layer indices; got {which!r}"
            ) from None
        bad = sorted(i for i in layers if not 0 <= i < n_layers)
        if bad:
            raise ValueError(f"--reg-layers: no layer {bad[0]} in a net of {n_layers} layers")
    swept = [n for n in STRENGTHS if n in models[0].values]
    dtype = jnp.result_type(float)
    strengths = {n: jnp.asarray([m.values[n] for m in models], dtype) for n in swept}
    r = Regularization(**{n: strengths.get(n, getattr(config, n)) for n in STRENGTHS})
    return tuple(r if i in layers else None for i in range(n_layers))


def optimizer(config: TrainConfig, steps: int, warmup_always: bool = False) -> optim.Optimizer:
    """The optimizer and schedule of the options, for a run of `steps` updates.

    `warmup_always` wraps even a 0-step warm-up: a 0-step `schedules.warmup` gives the wrapped
    schedule's rates exactly, and a sweep of --warmup that includes 0 needs it so that every
    model's state has the same structure.
    """
    decay_steps = config.decay_steps or steps
    # Both by name: schedules.<schedule>(lr, *its arguments), optim.<optimizer>(lr, **options).
    after_lr = {"inverse_time": [config.decay], "exponential": [config.decay_rate, decay_steps],
                "cosine": [decay_steps], "constant": []}  # fmt: skip
    lr = getattr(schedules, config.schedule)(config.lr, *after_lr[config.schedule])
    if config.warmup or warmup_always:
        lr = schedules.warmup(lr, config.warmup)
    options = {name: getattr(config, name) for name in OPTIMIZERS[config.optimizer]}
    return getattr(optim, config.optimizer)(lr, **options)


def make_models(config: TrainConfig, problem: Problem, sweeps: dict[str, list]) -> list[Model]:
    """Every combination of the swept values (the first sweep outermost) times the seeds.

    Seeds vary fastest, so the seeds of one setting are neighbours in every output. Model k's
    seed draws its initial weights and its shuffles; hyperparameters live in its optimizer
    state, so all the models can share the first one's update.
    """
    many = bool(sweeps) or config.seeds > 1
    models = []
    for combo in itertools.product(*sweeps.values()):
        for seed in range(config.seed, config.seed + config.seeds):
            values = {"seed": seed, **dict(zip(sweeps, combo))}
            mine = dataclasses.replace(config, **values)
            try:
                opt = optimizer(mine, problem.total_steps, "warmup" in sweeps)
            except (ValueError, TypeError) as err:
                if not many:
                    raise
                raise ValueError(
                    f"--sweep: the model with {outputs.label(values)}: {err}"
                ) from None
            _, _, _, init_key, shuffle_key = keys(seed)
            params = init_params(init_key, problem.net, scheme=config.init)
            models.append(Model(mine, values, opt, params, opt.init(params), shuffle_key))
    return models


def train(run: Run) -> list[FitResult]:
    """Train the models, one `fit` or one `fit_many`, writing checkpoints as they go.

    Returns each model's result with its whole history (a resumed run's included), after
    writing every model's final files.
    """
    config, problem, models = run.config, run.problem, run.models
    done = int(run.history["epoch"][-1]) if run.history else 0
    kw = dict(loss=problem.loss, reg=run.reg, batch_size=config.batch_size,
              validation=problem.validation, grads=config.grads, initial_epoch=done,
              epochs=max(config.epochs - done, 0), progress=not config.no_progress,
              callback=lambda snapshot: save(run, snapshot, final=False),
              callback_every=config.checkpoint_every)  # fmt: skip
    net, x, y, first = problem.net, problem.x, problem.y, models[0]
    with warnings.catch_warnings():  # divergence is reported once, with the exit status
        warnings.simplefilter("ignore", RuntimeWarning)
        if len(models) == 1:
            state, key = first.opt_state, first.key
            results = [fit(net, first.params, first.opt, x, y, opt_state=state, key=key, **kw)]
        else:
            # One key when the seeds are one: the same shuffles for all, without K copies.
            key = first.key if config.seeds == 1 else jnp.stack([m.key for m in models])
            params, state = stack([m.params for m in models]), stack([m.opt_state for m in models])
            many = fit_many(net, params, first.opt, x, y, opt_state=state, key=key, **kw)
            results = [many.model(k) for k in range(len(models))]
    results = [r._replace(history=_joined(run.history, r.history)) for r in results]
    save(run, results, final=True)
    return results


def _joined(history: dict, new: dict) -> dict:
    return {k: np.concatenate([history[k], v]) for k, v in new.items()} if history else new


def save(run: Run, what: Snapshot | list[FitResult], final: bool) -> None:
    """Every model's files, from a `Snapshot` or the results; the combined ones when final.

    A snapshot at the last epoch is not written: the final save follows at once.
    """
    if not final and what.epoch >= run.config.epochs:
        return
    problem, many = run.problem, len(run.models) > 1
    results = what if final else _per_model(what, len(run.models))
    for k, (model, result) in enumerate(zip(run.models, results)):
        where = os.path.join(run.out, f"model_{k}") if many else run.out
        os.makedirs(where, exist_ok=True)
        state = result.opt_state
        if model.values.get("warmup") == 0:
            # The single run has no warm-up to wrap its schedule in (rates are the same).
            state = state._replace(learning_rate=state.learning_rate.schedule)
        # The final results hold the resumed rows already; a snapshot's history starts after them.
        h = result.history if final else _joined(run.history, result.history)
        outputs.save_model(where, problem, result.params, state, model.key,
                           run_settings(model.config), h, reason=result.stop_reason,
                           final=final)  # fmt: skip
    if many and final:
        outputs.save_models(run.out, run.settings, problem, [m.values for m in run.models], results)


def _per_model(snapshot: Snapshot, n: int) -> list[FitResult]:
    """Each of the `n` models' parameters, state and history so far, as `FitResult`s."""
    if n == 1:
        return [FitResult(snapshot.params, snapshot.opt_state, snapshot.history, None)]
    runs = np.sum(~np.isnan(snapshot.history["loss"]), axis=1)  # a stopped model's rows are NaN
    many = FitManyResult(snapshot.params, snapshot.opt_state, snapshot.history, [None] * n, runs)
    return [many.model(k) for k in range(n)]
