"""jaxmlp: a functional multilayer perceptron in JAX, with its backpropagation written out.

Parameters are pytrees (a tuple of ``{"W", "b"}`` dicts); pure functions give the forward pass
and the regularized objective; `jax.grad` differentiates it and `jax.jit` compiles it.
"""

from jaxmlp import (
    activations,
    checkpoint,
    compile_cache,
    datasets,
    diagnosis,
    early_stopping,
    ensemble,
    finite_differences,
    halving,
    layouts,
    losses,
    memory,
    metrics,
    optim,
    schedules,
    selection,
    sharding,
    stats,
    tuning,
)
from jaxmlp._driver import Snapshot
from jaxmlp.backprop import backprop, value_and_backprop
from jaxmlp.checkpoint import Checkpoint, CheckpointError, load, save
from jaxmlp.datasets import spiral
from jaxmlp.diagnosis import Finding
from jaxmlp.early_stopping import EarlyStopping
from jaxmlp.ensemble import FitManyResult, fit_many
from jaxmlp.finite_differences import EpsSweep, eps_sweep
from jaxmlp.fit import FitResult, evaluate, fit, history_table, predict
from jaxmlp.gradcheck import GradcheckReport, LeafCheck, gradcheck
from jaxmlp.halving import HalvingResult, successive_halving
from jaxmlp.layouts import BackwardError
from jaxmlp.metrics import accuracy
from jaxmlp.model import MLP, Params, forward, forward_intermediates, init_params
from jaxmlp.objective import objective
from jaxmlp.optim import apply_updates, transforms
from jaxmlp.optimcheck import OptimcheckReport, optimcheck
from jaxmlp.regularization import Regularization, penalty, penalty_grad
from jaxmlp.selection import CVResult, cross_validate
from jaxmlp.train import make_train_step, train_step

__version__ = "0.2.0"  # the one version number: pyproject.toml reads it (CHANGELOG.md)

# fmt: off
__all__ = [
    "BackwardError", "CVResult", "Checkpoint", "CheckpointError", "EarlyStopping", "EpsSweep",
    "Finding", "FitManyResult", "FitResult", "GradcheckReport", "HalvingResult", "LeafCheck",
    "MLP", "OptimcheckReport", "Params", "Regularization", "Snapshot", "accuracy", "activations",
    "apply_updates", "backprop", "checkpoint", "compile_cache", "cross_validate", "datasets",
    "diagnosis", "early_stopping", "ensemble", "eps_sweep", "evaluate", "finite_differences",
    "fit", "fit_many", "forward", "forward_intermediates", "gradcheck", "halving", "history_table",
    "init_params", "layouts", "load", "losses", "make_train_step", "memory", "metrics",
    "objective", "optim", "optimcheck", "penalty", "penalty_grad", "predict", "save", "schedules",
    "selection", "sharding", "spiral", "stats", "successive_halving", "train_step", "transforms",
    "tuning", "value_and_backprop",
]
# fmt: on
