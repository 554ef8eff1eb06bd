"""``jaxmlp optimcheck``: your optimizer against a jaxmlp one, step by step.

Run your optimizer (--optimizer) and a jaxmlp one (--reference, with the
hyperparameters below) from the same params over the same random gradients, in
float64, and compare the parameters after every step. When they differ, name
the known variant yours follows (ε inside the root, no bias correction, AMSGrad's
maximum after correction, the book's momentum, the decay counted from 1, ...) or
the first step and leaf where it departs. See jaxmlp.optimcheck.

--optimizer MODULE:NAME is imported from the current directory. NAME is either
an optimizer, an object with init(params) -> state and update(grads, state,
params) -> (updates, state) (or a pair (init, update)), or a step function
step(params, grads, state, t) -> (params, state): t counts the steps from 0,
state is None at the first call and then what the previous call returned.

Params: those of a 3-5-2 MLP (relu, softmax) from jaxmlp.init_params with
jax.random.key(SEED): He-initialised weights, zero biases. Gradients: random,
g = z·10^-(a + b), z ~ N(0, 1), a ~ U(0, 8) per entry, b ~ U(0, 2) per step,
from SEED.

exit status: 0 yours equals the reference, 1 it does not, 2 bad options, 3 your
optimizer raised (or returned something else than documented)

example: jaxmlp optimcheck --optimizer my_adam:step --reference adam --learning-rate 1e-2
"""

from __future__ import annotations

import dataclasses
import functools
import importlib
import os
import sys
import traceback
from typing import Any

import jax

from jaxmlp import optim
from jaxmlp.cli.config import OPTIMIZERS, check_bounds, flag, option
from jaxmlp.model import MLP, init_params
from jaxmlp.optimcheck import ATOL, RTOL, CandidateError, optimcheck
from jaxmlp.schedules import ScheduleLike, inverse_time

HELP = "check your optimizer against jaxmlp's, step by step"
DESCRIPTION = __doc__.split("\n", 1)[1].strip()  # --help shows the docstring after its title
FILL: dict[str, str] = {}
SIZES, ACTIVATIONS = (3, 5, 2), ("relu", "softmax")  # the net whose params the check starts from
HYPER, CHECK = "the reference's hyperparameters (jaxmlp's defaults)", "the check"
# The factory arguments each reference takes besides its learning rate (None: the default).
ARGUMENTS = {
    "sgd": ("momentum", "nesterov"),
    "adagrad": ("eps", "eps_root"),
    "rmsprop": ("rho", "eps", "eps_root", "centered", "momentum"),
    "adam": ("b1", "b2", "eps", "eps_root", "amsgrad"),
    "adamw": ("b1", "b2", "eps", "eps_root", "weight_decay", "amsgrad"),
}


@dataclasses.dataclass(frozen=True)
class OptimcheckConfig:
    """The settings of ``jaxmlp optimcheck``: your optimizer, the reference, the check."""

    optimizer: str | None = option(None, "your optimizer, importable from the current "
                                   "directory (required, no default; see above)",
                                   metavar="MODULE:NAME")  # fmt: skip
    reference: str | None = option(None, "the jaxmlp optimizer yours should equal (required, no "
                                   "default)",
                                   choices=OPTIMIZERS)  # fmt: skip
    learning_rate: float = option(1e-3, "learning rate", HYPER, metavar="LR", low=0)
    decay: float = option(0.0, "the learning rate is inverse_time(LR, D): LR/(1 + D·t), t from "
                          "0 at the first update (default: 0, constant)", HYPER, metavar="D",
                          low=0)  # fmt: skip
    momentum: float = option(0.0, "sgd, rmsprop: momentum", HYPER)
    nesterov: bool = option(False, "sgd: Nesterov momentum", HYPER)
    rho: float = option(0.9, "rmsprop: decay of the average of g²", HYPER)
    centered: bool = option(False, "rmsprop: the centered variant", HYPER)
    b1: float = option(0.9, "adam(w): β1", HYPER)
    b2: float = option(0.999, "adam(w): β2", HYPER)
    eps: float | None = option(None, "ε added outside the square root (default: 1e-8 for adam "
                               "and adamw, 1e-7 for rmsprop and adagrad)", HYPER)  # fmt: skip
    eps_root: float = option(0.0, "ε added inside the square root", HYPER)
    amsgrad: bool = option(False, "adam(w): AMSGrad", HYPER)
    weight_decay: float = option(0.01, "adamw: decoupled weight decay λ", HYPER)
    steps: int = option(20, "steps compared", CHECK, low=1)
    seed: int = option(0, "seed of the params and of the gradients", CHECK)
    rtol: float = option(RTOL, "relative tolerance (of the distance each entry travelled)", CHECK)
    atol: float = option(ATOL, "absolute tolerance", CHECK)


Config = OptimcheckConfig


class _RaisedError(Exception):
    """An exception of the user's optimizer (its ``__cause__``), carried out of `optimcheck`."""


def run(config: OptimcheckConfig) -> int:
    """Run ``jaxmlp optimcheck`` with `config`; return the exit status."""
    try:
        check_bounds(config)
        reference = build_reference(config)
        candidate = guarded(load_candidate(config.optimizer))
        params = init_params(jax.random.key(config.seed), MLP(SIZES, ACTIVATIONS))
        report = optimcheck(candidate, reference, params, steps=config.steps,
                            key=jax.random.key(config.seed), rtol=config.rtol,
                            atol=config.atol)  # fmt: skip
    except _RaisedError as e:
        cause = e.__cause__
        traceback.print_exception(cause, file=sys.stderr)
        print(f"jaxmlp optimcheck: error: your optimizer raised {type(cause).__name__}: {cause}",
              file=sys.stderr)  # fmt: skip
        return 3
    except CandidateError as e:
        print(f"jaxmlp optimcheck: error: {e}", file=sys.stderr)
        return 3
    except (ValueError, TypeError) as e:
        print(f"jaxmlp optimcheck: error: {e}", file=sys.stderr)
        return 2
    print(f"jaxmlp optimcheck: {config.optimizer} against {config.reference}, "
          f"{config.steps} steps, seed {config.seed}")  # fmt: skip
    print(report)
    return 0 if report.passed else 1


def build_reference(config: OptimcheckConfig) -> optim.Optimizer:
    """The ``--reference`` optimizer with its hyperparameters; options of others are refused."""
    if config.reference is None:
        raise ValueError(f"--reference is required: one of {', '.join(OPTIMIZERS)}")
    defaults = {f.name: f.default for f in dataclasses.fields(OptimcheckConfig)}
    for name in dict.fromkeys(a for args in ARGUMENTS.values() for a in args):
        if getattr(config, name) != defaults[name] and name not in ARGUMENTS[config.reference]:
            users = ", ".join(k for k, args in ARGUMENTS.items() if name in args)
            raise ValueError(f"{flag(name)} does not apply to {config.reference} (only to {users})")
    kwargs = {name: getattr(config, name) for name in ARGUMENTS[config.reference]}
    lr0 = config.learning_rate
    lr: ScheduleLike = inverse_time(lr0, config.decay) if config.decay else lr0
    factory = getattr(optim, config.reference)
    return factory(lr, **{k: v for k, v in kwargs.items() if v is not None})


def load_candidate(spec: str | None) -> Any:
    """The object ``MODULE:NAME``, imported from the current directory.

    Import errors are bad options; any other exception the import raises is the user's code's.
    """
    module_name, sep, attr = (spec or "").partition(":")
    if spec is None:
        raise ValueError("--optimizer MODULE:NAME is required (your optimizer or step function)")
    if not sep or not module_name or not attr:
        raise ValueError(f"--optimizer must look like MODULE:NAME; got {spec!r}")
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    importlib.invalidate_caches()  # a module written since the last import is found
    try:
        module = importlib.import_module(module_name)
    except ImportError as e:
        raise ValueError(f"--optimizer: cannot import {module_name!r}: {e}") from None
    except Exception as e:
        raise _RaisedError() from e
    found = getattr(module, attr, None)
    pair = isinstance(found, tuple) and len(found) == 2
    if not (callable(found) or pair or hasattr(found, "update")):
        what = "nothing" if found is None else type(found).__name__
        raise ValueError(
            f"--optimizer: {spec} must be an optimizer (init, update) or a step function "
            f"step(params, grads, state, t); {module_name!r} has {what} named {attr!r}"
        )
    return found


def guarded(candidate: Any) -> Any:
    """`candidate` with its functions raising `_RaisedError` from their own exceptions.

    What `optimcheck` would refuse (an ``init`` that is not a function, ...) is left as it is.
    """
    if isinstance(candidate, tuple) and len(candidate) == 2 and not hasattr(candidate, "update"):
        return tuple(map(_guarded, candidate))
    if hasattr(candidate, "update"):
        init = getattr(candidate, "init", None)
        return optim.Optimizer(_guarded(init), _guarded(candidate.update))
    return _guarded(candidate)


def _guarded(fn: Any) -> Any:
    if not callable(fn):
        return fn

    @functools.wraps(fn)
    def call(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except Exception as e:
            raise _RaisedError() from e

    return call
