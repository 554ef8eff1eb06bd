"""The models of a ``jaxmlp train`` run, in compiled groups: optimizers, penalties, weights.

`make_groups` turns the options and the swept values (`jaxmlp.cli.sweeps`) into `Group`s: one
per combination of the structural values (width, depth, batch size: what changes the compiled
program), each with its `jaxmlp.cli.data.Problem`, its models (every combination of the
values held as data, times the seeds) and their regularization. Model k's seed draws its
initial weights and its shuffles; its hyperparameters live in its optimizer state, so the
models of a group share the first one's update.
"""

from __future__ import annotations

import dataclasses
import itertools
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from jaxmlp import optim, schedules
from jaxmlp.cli.config import TrainConfig
from jaxmlp.cli.data import Data, Problem, keys, setup
from jaxmlp.cli.outputs import label
from jaxmlp.cli.sweeps import model_config, structural
from jaxmlp.model import Params, init_params
from jaxmlp.regularization import FIELDS as STRENGTHS
from jaxmlp.regularization import Regularization

OPTIMIZERS = {  # each optimizer's options, passed as its keyword arguments
    "sgd": ("momentum", "nesterov"),
    "adagrad": ("eps", "eps_root"),
    "rmsprop": ("rho", "centered", "momentum", "eps", "eps_root"),
    "adam": ("b1", "b2", "amsgrad", "eps", "eps_root"),
    "adamw": ("b1", "b2", "amsgrad", "eps", "eps_root", "weight_decay"),
}


class Model(NamedTuple):
    """One model of a run: its settings, the values that set it apart, its initial state."""

    config: TrainConfig  # the settings of the single run it equals
    values: dict[str, Any]  # its seed, then its swept values
    opt: optim.Optimizer
    params: Params
    opt_state: optim.OptState
    key: jax.Array
    early_state: Any = None  # early stopping's state, when resumed from a checkpoint


class Group(NamedTuple):
    """The models of one compiled program: one `fit` (one model) or one `fit_many`."""

    problem: Problem
    models: list[Model]
    numbers: list[int]  # the models' numbers in the run (their model_<k> folders)
    reg: tuple  # one Regularization per layer; a swept strength holds one value per model


def grid(config: TrainConfig, sweeps: dict[str, list[Any]]) -> list[dict[str, Any]]:
    """Every model's seed, fold and swept values: the first sweep outermost, the folds fastest."""
    seeds = range(config.seed, config.seed + config.seeds)
    folds = [{"fold": f} for f in range(config.folds)] if config.folds else [{}]
    return [{"seed": seed, **fold, **dict(zip(sweeps, combo))}
            for combo in itertools.product(*sweeps.values()) for seed in seeds
            for fold in folds]  # fmt: skip


def make_groups(config: TrainConfig, data: Data, sweeps: dict[str, list[Any]]) -> list[Group]:
    """The run's models, one `Group` per combination of the structural swept values.

    Groups come in the order of their first model; the task is announced once.
    """
    entries = grid(config, sweeps)
    shapes: dict[tuple, list[int]] = {}
    for k, values in enumerate(entries):
        shapes.setdefault(tuple(structural(values).items()), []).append(k)
    many, groups = len(entries) > 1, []
    for i, (shape, numbers) in enumerate(shapes.items()):
        base = model_config(config, dict(shape))
        problem = setup(base, data, announce=i == 0)
        models = [make_model(config, entries[k], problem, "warmup" in sweeps, many)
                  for k in numbers]  # fmt: skip
        groups.append(Group(problem, models, numbers, regularization(base, problem, models)))
    return groups


def make_model(config: TrainConfig, values: dict[str, Any], problem: Problem,
               warmup_always: bool, many: bool) -> Model:  # fmt: skip
    """The model of these seed and swept values: its settings, optimizer and initial state."""
    mine = model_config(config, values)
    try:
        opt = optimizer(mine, problem.total_steps, warmup_always)
    except (ValueError, TypeError) as err:
        if not many:
            raise
        raise ValueError(f"--sweep: the model with {label(values)}: {err}") from None
    _, _, _, init_key, shuffle_key = keys(values["seed"])
    params = init_params(init_key, problem.net, scheme=config.init)
    return Model(mine, values, opt, params, opt.init(params), shuffle_key)


def regularization(config: TrainConfig, problem: Problem, models: list[Model]) -> tuple:
    """One `Regularization` per layer; a swept strength holds one value per model."""
    assert config.reg_layers is not None  # set by resolve_preset
    n_layers, which = problem.net.n_layers, config.reg_layers.strip()
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
    assert config.schedule is not None and config.optimizer is not None  # set by resolve_preset
    decay_steps = config.decay_steps or steps
    # Both by name: schedules.<schedule>(lr, *its arguments), optim.<optimizer>(lr, **options).
    after_lr: dict[str, list[float]] = {
        "inverse_time": [config.decay], "exponential": [config.decay_rate, decay_steps],
        "cosine": [decay_steps], "constant": []}  # fmt: skip
    lr = getattr(schedules, config.schedule)(config.lr, *after_lr[config.schedule])
    if config.warmup or warmup_always:
        lr = schedules.warmup(lr, config.warmup)
    options = {name: getattr(config, name) for name in OPTIMIZERS[config.optimizer]}
    return getattr(optim, config.optimizer)(lr, **options)


def resumed(groups: list[Group], ck: Any, out: str) -> list[Group]:
    """The one model of a resumed run in the state its checkpoint `ck` (in `out`) holds."""
    group = groups[0]
    if ck.net != group.problem.net:
        raise ValueError(f"the checkpoint in {out} holds {ck.net}, not {group.problem.net}")
    last = ck.extra.get("last", {"params": ck.params, "opt_state": ck.opt_state})
    early = ck.extra.get("early_stopping")
    model = group.models[0]._replace(params=last["params"], opt_state=last["opt_state"],
                                     key=ck.key, early_state=early)  # fmt: skip
    return [group._replace(models=[model])]


def with_seed_data(config: TrainConfig) -> TrainConfig:
    """Many models share the data of ``--seed`` (or ``--data-seed``): name it."""
    seed = config.seed if config.data_seed is None else config.data_seed
    return dataclasses.replace(config, data_seed=seed)
