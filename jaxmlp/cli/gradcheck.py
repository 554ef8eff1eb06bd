"""``jaxmlp gradcheck``: a backward pass checked, on random data or your own.

Compare the hand-written gradient (jaxmlp.backprop, or --backward) with jax.grad
on every entry and with central finite differences on sampled entries away from
kinks, in float64 (or --dtype float32, with tolerances that follow it). Prints
one row per layer and leaf (W, b) with the largest absolute and relative errors,
then what is wrong and where it starts (the findings).

Data: random unless --data: x ~ N(0, 1); targets: class labels
(categorical_crossentropy), 0/1 (binary_crossentropy) or N(0, 1) (mse, mae).
Weights by --init, biases ~ N(0, 0.1²) (off the L1 kink at 0), unless --params
gives a checkpoint's net and weights.

exit status: 0 check passed, 1 mismatch, 2 bad options, 3 --backward raised
(its traceback on stderr)

example: jaxmlp gradcheck --sizes 4,32,32,3 --activations tanh,relu,softmax --l2w 1e-3
"""

from __future__ import annotations

import importlib
import os
import sys
import traceback
from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np

from jaxmlp import checkpoint, datasets
from jaxmlp._checks import check_count, check_problem
from jaxmlp.checkpoint import CheckpointError
from jaxmlp.cli.config import GradcheckConfig, default_activations
from jaxmlp.gradcheck import gradcheck
from jaxmlp.layouts import BackwardError
from jaxmlp.model import MLP, init_params
from jaxmlp.regularization import Regularization

BIAS_STD = 0.1  # the std of the random biases, as the docstring (the --help text) states
HELP = "check the hand-written backward pass on a random net"
DESCRIPTION = __doc__.split("\n", 1)[1].strip()  # --help shows the docstring after its title
Config = GradcheckConfig
FILL: dict[str, str] = {}
SETTINGS = ("n_samples", "eps", "rtol", "atol", "fd_rtol", "fd_atol")


def run(config: GradcheckConfig) -> int:
    """Run ``jaxmlp gradcheck`` with `config`; return the exit status."""
    try:
        backward = load_backward(config.backward) if config.backward else None
        check_count("--batch", config.batch, 1)
        reg = Regularization(l1w=config.l1w, l1b=config.l1b, l2w=config.l2w, l2b=config.l2b)
        settings = {k: getattr(config, k) for k in SETTINGS}
        net, params, x, y = problem_of(config)
        check_problem(net, x, y, config.loss, params=params)
        kwargs = {"backward": backward, "layout": config.layout, "dtype": config.dtype}
        gradcheck_settings = dict(settings, **kwargs, key=jax.random.key(config.seed))
    except (ValueError, TypeError, CheckpointError, FileNotFoundError) as e:
        print(f"jaxmlp gradcheck: error: {e}", file=sys.stderr)
        return 2
    try:
        report = gradcheck(net, params, x, y, loss=config.loss, reg=reg, **gradcheck_settings)
    except BackwardError as e:  # the user's code: its traceback, and a status of its own
        traceback.print_exception(e.__cause__, file=sys.stderr)
        print(f"jaxmlp gradcheck: error: your {e}", file=sys.stderr)
        return 3
    except (ValueError, TypeError) as e:  # what --backward returned does not fit
        print(f"jaxmlp gradcheck: error: {e}", file=sys.stderr)
        return 2
    where = f"data {config.data}" if config.data else "random data"
    print(f"jaxmlp gradcheck: {where}, batch {x.shape[0]}, seed {config.seed}")
    print(report)
    return 0 if report.passed else 1


def problem_of(config: GradcheckConfig) -> tuple:
    """``(net, params, x, y)``: random, or from ``--data`` and ``--params`` where given."""
    if config.params is not None:
        loaded = checkpoint.load(config.params)
        net, params = loaded.net, loaded.params
    else:
        activations = config.activations or default_activations(len(config.sizes) - 2,
                                                                config.loss)  # fmt: skip
        net = MLP(sizes=config.sizes, activations=activations)
        params = None
    random_params, x, y = random_problem(net, config)
    if config.data is not None:
        x, y = datasets.load_arrays(config.data)
        x, y = jnp.asarray(x[: config.batch]), jnp.asarray(y[: config.batch])
        if config.loss == "categorical_crossentropy" and y.ndim == 2 and y.shape[1] == 1:
            y = y[:, 0]  # a CSV's label column
    return net, random_params if params is None else params, x, y


# One compiled program for all layers, rather than a random-number kernel compiled per shape.
_init_params = jax.jit(init_params, static_argnums=(1, 2))


def random_problem(net: MLP, config: GradcheckConfig) -> tuple:
    """Weights by ``init_params``, biases ~ N(0, BIAS_STD²), x ~ N(0, 1), targets for the loss.

    The weights come from the library's schemes (JAX's generator); the rest from NumPy's,
    seeded alike, which spares compiling JAX random-number kernels for every shape.
    """
    rng = np.random.default_rng(config.seed)
    dtype = jnp.result_type(float)
    params = tuple(
        {"W": layer["W"], "b": jnp.asarray(BIAS_STD * rng.normal(size=layer["b"].shape), dtype)}
        for layer in _init_params(jax.random.key(config.seed), net, config.init)
    )
    x = jnp.asarray(rng.normal(size=(config.batch, net.in_features)), dtype)
    shape = (config.batch, net.out_features)
    if config.loss == "categorical_crossentropy":
        labels = rng.integers(0, net.out_features, config.batch)
        y = np.eye(net.out_features)[labels] if config.labels == "onehot" else labels
    elif config.loss == "binary_crossentropy":
        y = rng.integers(0, 2, shape)
    else:
        y = rng.normal(size=shape)
    return params, x, jnp.asarray(y, jnp.int32 if np.ndim(y) == 1 else dtype)


def load_backward(spec: str) -> Callable:
    """The function ``MODULE:FUNCTION``, imported from the current directory."""
    module_name, sep, attr = spec.partition(":")
    if not sep or not module_name or not attr:
        raise ValueError(f"--backward must look like MODULE:FUNCTION; got {spec!r}")
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    try:
        module = importlib.import_module(module_name)
    except ImportError as e:
        raise ValueError(f"--backward: cannot import {module_name!r}: {e}") from None
    fn = getattr(module, attr, None)
    if not callable(fn):
        raise ValueError(f"--backward: {module_name!r} has no function {attr!r}")
    return fn
