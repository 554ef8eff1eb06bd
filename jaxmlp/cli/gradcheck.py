"""``jaxmlp gradcheck``: a random net and random data; a backward pass checked.

Build a random net and random data, then compare the hand-written gradient
(jaxmlp.backprop, or --backward) with jax.grad on every entry and with central
finite differences on sampled entries away from kinks, in float64. Prints one
row per layer and leaf (W, b) with the largest absolute and relative errors.

Data: x ~ N(0, 1); targets: class labels (categorical_crossentropy), 0/1
(binary_crossentropy) or N(0, 1) (mse, mae). Weights by --init; biases
~ N(0, 0.1²), off the L1 kink at 0.

exit status: 0 check passed, 1 mismatch, 2 bad options

example: jaxmlp gradcheck --sizes 4,32,32,3 --activations tanh,relu,softmax --l2w 1e-3
"""

from __future__ import annotations

import importlib
import os
import sys
from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np

from jaxmlp._checks import check_count, check_problem
from jaxmlp.cli.config import GradcheckConfig, default_activations
from jaxmlp.gradcheck import check_settings, gradcheck
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
        activations = config.activations or default_activations(len(config.sizes) - 2, config.loss)
        net = MLP(sizes=config.sizes, activations=activations)
        check_count("--batch", config.batch, 1)
        reg = Regularization(l1w=config.l1w, l1b=config.l1b, l2w=config.l2w, l2b=config.l2b)
        settings = {k: getattr(config, k) for k in SETTINGS}
        check_settings(**settings)
        params, x, y = random_problem(net, config)
        check_problem(net, x, y, config.loss)
    except (ValueError, TypeError) as e:
        print(f"jaxmlp gradcheck: error: {e}", file=sys.stderr)
        return 2
    # Outside the try: an error raised in a --backward function keeps its traceback.
    report = gradcheck(net, params, x, y, loss=config.loss, reg=reg, backward=backward,
                       key=jax.random.key(config.seed), **settings)  # fmt: skip
    print(f"jaxmlp gradcheck: random data, batch {config.batch}, seed {config.seed}")
    print(report)
    return 0 if report.passed else 1


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
    y = jnp.asarray(y, jnp.int32 if np.ndim(y) == 1 else dtype)
    return params, x, y


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
