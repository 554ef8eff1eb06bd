"""The ``jaxmlp`` command line (also ``python -m jaxmlp``).

Subcommands:

- ``jaxmlp train``: train a net and write metrics, a checkpoint and plots; with no options, the
  book's chapter-14 spiral experiment (`jaxmlp.train_cli`).
- ``jaxmlp gradcheck``: a random net and random data; the hand-written backward pass checked
  against autodiff and finite differences (`jaxmlp.gradcheck.gradcheck`), the report printed.

Exit status: 0 on success, 1 when a gradient check fails or training diverges, 2 on bad
options (a one-line message on stderr). Each subcommand is a pair of functions, one adding
its options to a parser and one running it, listed in `_COMMANDS`.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Callable
from typing import NoReturn

import jax
import jax.numpy as jnp
import numpy as np

from jaxmlp import losses as _losses
from jaxmlp._checks import check_problem
from jaxmlp.activations import NAMES as ACTIVATION_NAMES
from jaxmlp.gradcheck import (
    ATOL,
    EPS,
    FD_ATOL,
    FD_RTOL,
    N_SAMPLES,
    RTOL,
    check_settings,
    gradcheck,
)
from jaxmlp.model import INIT_SCHEMES, MLP, init_params
from jaxmlp.regularization import Regularization
from jaxmlp.train_cli import add_train

BIAS_STD = 0.1


class _Parser(argparse.ArgumentParser):
    """An argument parser whose usage errors are one line on stderr, exit status 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see '{self.prog} --help')\n")


class _UsageError(Exception):
    """A bad option found after parsing; reported like argparse's own errors."""


def _int_list(text: str) -> tuple[int, ...]:
    try:
        return tuple(int(v) for v in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected comma-separated integers such as 2,16,3; got {text!r}"
        ) from None


def _name_list(text: str) -> tuple[str, ...]:
    return tuple(v.strip() for v in text.split(","))


def _add_gradcheck(sub: argparse._SubParsersAction, name: str) -> None:
    p = sub.add_parser(
        name,
        help="check the hand-written backward pass on a random net",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description=(
            "Build a random net and random data, then compare the hand-written gradient\n"
            "(jaxmlp.backprop, or --backward) with jax.grad on every entry and with central\n"
            "finite differences on sampled entries away from kinks, in float64. Prints one\n"
            "row per layer and leaf (W, b) with the largest absolute and relative errors.\n\n"
            "Data: x ~ N(0, 1); targets: class labels (categorical_crossentropy), 0/1\n"
            "(binary_crossentropy) or N(0, 1) (mse, mae). Weights by --init; biases\n"
            f"~ N(0, {BIAS_STD}²), off the L1 kink at 0.\n\n"
            "exit status: 0 check passed, 1 mismatch, 2 bad options\n\n"
            "example: jaxmlp gradcheck --sizes 4,32,32,3 --activations tanh,relu,softmax "
            "--l2w 1e-3"
        ),
    )
    p.add_argument(
        "--sizes",
        type=_int_list,
        default="2,16,3",
        metavar="N,N,...",
        help="layer sizes, inputs first (default: %(default)s)",
    )
    p.add_argument(
        "--activations",
        type=_name_list,
        metavar="NAME,...",
        help="one activation per layer, from: "
        + ", ".join(ACTIVATION_NAMES)
        + " (default: relu for hidden layers, then the loss's natural output: "
        "softmax, sigmoid, or linear for mse/mae)",
    )
    p.add_argument(
        "--loss",
        choices=_losses.NAMES,
        default="categorical_crossentropy",
        help="data loss (default: %(default)s)",
    )
    p.add_argument(
        "--labels",
        choices=("int", "onehot"),
        default="int",
        help="targets of categorical_crossentropy: integer labels or one-hot rows "
        "(default: %(default)s)",
    )
    for name, what in (("l1w", "Σ|W|"), ("l1b", "Σ|b|"), ("l2w", "ΣW²"), ("l2b", "Σb²")):
        p.add_argument(
            f"--{name}",
            type=float,
            default=0.0,
            metavar="λ",
            help=f"strength of the {what} penalty, every layer (default: 0)",
        )
    p.add_argument(
        "--batch", type=int, default=32, help="examples in the random batch (default: %(default)s)"
    )
    p.add_argument(
        "--seed",
        type=int,
        default=0,
        help="seed of the net, the data and the sampled entries (default: %(default)s)",
    )
    p.add_argument(
        "--init",
        choices=INIT_SCHEMES,
        default="he",
        help="weight initialisation (default: %(default)s)",
    )
    p.add_argument(
        "--n-samples",
        type=int,
        default=N_SAMPLES,
        dest="n_samples",
        help="entries per leaf checked with finite differences (default: %(default)s)",
    )
    p.add_argument(
        "--eps", type=float, default=EPS, help="finite-difference step (default: %(default)s)"
    )
    p.add_argument(
        "--rtol",
        type=float,
        default=RTOL,
        help="relative tolerance vs autodiff (default: %(default)s)",
    )
    p.add_argument(
        "--atol",
        type=float,
        default=ATOL,
        help="absolute tolerance vs autodiff (default: %(default)s)",
    )
    p.add_argument(
        "--fd-rtol",
        type=float,
        default=FD_RTOL,
        help="relative tolerance vs finite differences (default: %(default)s)",
    )
    p.add_argument(
        "--fd-atol",
        type=float,
        default=FD_ATOL,
        help="absolute tolerance vs finite differences (default: %(default)s)",
    )
    p.add_argument(
        "--backward",
        metavar="MODULE:FUNCTION",
        help="check your own backward pass instead of jaxmlp's: a function "
        "f(net, params, x, y, *, loss, reg) -> grads, importable from the current "
        "directory",
    )
    p.set_defaults(run=_run_gradcheck, command_parser=p)


def _run_gradcheck(args: argparse.Namespace) -> int:
    try:
        backward = _load_backward(args.backward) if args.backward else None
        activations = args.activations or (
            ("relu",) * (len(args.sizes) - 2) + (_losses.FUSED.get(args.loss, "linear"),)
        )
        net = MLP(sizes=args.sizes, activations=activations)
        if args.batch < 1:
            raise ValueError(f"--batch must be a positive integer; got {args.batch}")
        reg = Regularization(l1w=args.l1w, l1b=args.l1b, l2w=args.l2w, l2b=args.l2b)
        settings = {k: getattr(args, k) for k in ("n_samples", "eps", "rtol", "atol")}
        settings.update(fd_rtol=args.fd_rtol, fd_atol=args.fd_atol)
        check_settings(**settings)
        params, x, y = _random_problem(net, args)
        check_problem(net, x, y, args.loss)
    except (ValueError, TypeError, _UsageError) as e:
        print(f"jaxmlp gradcheck: error: {e}", file=sys.stderr)
        return 2
    # Outside the try: an error raised in a --backward function keeps its traceback.
    key = jax.random.key(args.seed)
    report = gradcheck(
        net, params, x, y, loss=args.loss, reg=reg, backward=backward, key=key, **settings
    )
    print(f"jaxmlp gradcheck: random data, batch {args.batch}, seed {args.seed}")
    print(report)
    return 0 if report.passed else 1


# One compiled program for all layers, rather than a random-number kernel compiled per shape.
_init_params = jax.jit(init_params, static_argnums=(1, 2))


def _random_problem(net: MLP, args: argparse.Namespace) -> tuple:
    """Weights by ``init_params``, biases ~ N(0, BIAS_STD²), x ~ N(0, 1), targets for the loss.

    The weights come from the library's schemes (JAX's generator); the rest from NumPy's,
    seeded alike, which spares compiling JAX random-number kernels for every shape.
    """
    rng = np.random.default_rng(args.seed)
    dtype = jnp.result_type(float)
    params = tuple(
        {"W": layer["W"], "b": jnp.asarray(BIAS_STD * rng.normal(size=layer["b"].shape), dtype)}
        for layer in _init_params(jax.random.key(args.seed), net, args.init)
    )
    x = jnp.asarray(rng.normal(size=(args.batch, net.in_features)), dtype)
    shape = (args.batch, net.out_features)
    if args.loss == "categorical_crossentropy":
        labels = rng.integers(0, net.out_features, args.batch)
        y = np.eye(net.out_features)[labels] if args.labels == "onehot" else labels
    elif args.loss == "binary_crossentropy":
        y = rng.integers(0, 2, shape)
    else:
        y = rng.normal(size=shape)
    y = jnp.asarray(y, jnp.int32 if np.ndim(y) == 1 else dtype)
    return params, x, y


def _load_backward(spec: str) -> Callable:
    module_name, sep, attr = spec.partition(":")
    if not sep or not module_name or not attr:
        raise _UsageError(f"--backward must look like MODULE:FUNCTION; got {spec!r}")
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    try:
        module = importlib.import_module(module_name)
    except ImportError as e:
        raise _UsageError(f"--backward: cannot import {module_name!r}: {e}") from None
    fn = getattr(module, attr, None)
    if not callable(fn):
        raise _UsageError(f"--backward: {module_name!r} has no function {attr!r}")
    return fn


_COMMANDS: dict[str, Callable[[argparse._SubParsersAction, str], None]] = {
    "train": add_train,
    "gradcheck": _add_gradcheck,
}


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="jaxmlp",
        description="jaxmlp: a functional multilayer perceptron in JAX, with its "
        "backpropagation written out.",
        epilog="Run 'jaxmlp COMMAND --help' for a command's options.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, add in _COMMANDS.items():
        add(sub, name)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the ``jaxmlp`` command line with `argv` (default: ``sys.argv[1:]``).

    Returns:
      The exit status: 0 on success, 1 when a check fails, 2 on bad options.
    """
    parser = _parser()
    try:
        args, extra = parser.parse_known_args(argv)
        if args.command is None:
            parser.error("choose a command: " + ", ".join(_COMMANDS))
        if extra:  # reported by the subcommand, whose options they were meant for
            args.command_parser.error(f"unrecognized arguments: {' '.join(extra)}")
    except SystemExit as e:  # --help (0) or a usage error (2), already printed
        return e.code if isinstance(e.code, int) else 2
    return args.run(args)
