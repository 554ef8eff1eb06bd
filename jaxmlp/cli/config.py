"""The command line's settings, each declared once as a field of a frozen dataclass.

A field's `option` carries its default, help text, option group and, for ``jaxmlp train``,
whether it defines the run (saved in the checkpoint and ``history.json``, restored by
``--resume``), its lower bound, and whether ``--sweep`` may vary it. Everything else derives from
the declaration: `add_options` builds the argparse options, `from_namespace` the config,
`RUN_KEYS` and `SWEEPABLE` the saved settings and the sweepable names. To add an option, add a
field here and read it where it is used.
"""

from __future__ import annotations

import argparse
import dataclasses
import types
import typing
from typing import Any, NamedTuple

from jaxmlp.activations import NAMES as ACTIVATION_NAMES
from jaxmlp.gradcheck import ATOL, EPS, FD_ATOL, FD_RTOL, N_SAMPLES, RTOL
from jaxmlp.losses import FUSED
from jaxmlp.losses import NAMES as LOSS_NAMES
from jaxmlp.model import INIT_SCHEMES

OPTIMIZERS = ("sgd", "adagrad", "rmsprop", "adam", "adamw")
SCHEDULES = ("inverse_time", "constant", "exponential", "cosine")
ADAM = ("adam", "adamw")
ADAPTIVE = ("adagrad", "rmsprop", *ADAM)


class Sweep(NamedTuple):
    """Where ``--sweep`` may vary a setting: the optimizers and schedules it affects (None: all).

    Swept settings live in the regularization, the optimizer state or the schedule as data, so
    K models share one compiled program; everything else shapes the program.
    """

    optimizers: tuple[str, ...] | None = None
    schedules: tuple[str, ...] | None = None
    low: float = 0  # the smallest value a sweep may give
    kind: type = float  # the values' type (set from the field's type)

    def applies(self, optimizer: str, schedule: str) -> bool:
        """Whether sweeping the setting has an effect with this optimizer and schedule."""
        return optimizer in (self.optimizers or [optimizer]) and schedule in (
            self.schedules or [schedule]
        )


def option(default: Any, help: str, *, group: str = "", run: bool = True, **argparse_kw) -> Any:
    """A dataclass field declaring one command-line option.

    Args:
      default: the default (parsed like a command-line value when `parse` is given).
      help: the help text.
      group: the option group's title in ``--help``.
      run: whether the setting defines a run (saved, and restored by ``--resume``).
      **argparse_kw: ``metavar``, ``choices``; ``parse`` (argparse's ``type``); ``low`` (the
        value must be ``>= low``); ``sweep`` (a `Sweep`: ``--sweep`` may vary it); ``flag``.
    """
    return dataclasses.field(
        default=default, metadata=dict(help=help, group=group, run=run, **argparse_kw)
    )


def add_options(parser: argparse.ArgumentParser, cls: type, groups: dict, **fill: str) -> None:
    """Add an option to `parser` for every field of `cls`, in their groups (titles → notes).

    `fill` completes help texts that hold ``{name}`` placeholders.
    """
    hints = typing.get_type_hints(cls)
    made: dict[str, Any] = {}
    for f in dataclasses.fields(cls):
        meta = f.metadata
        title = meta["group"]
        if title not in made:
            made[title] = parser.add_argument_group(title, groups.get(title)) if title else parser
        kind = _base_type(hints[f.name])
        kw: dict[str, Any] = {"default": f.default, "help": meta["help"].format(**fill)}
        if kind is bool:
            kw["action"] = "store_true"
        elif kind is list:
            kw["action"] = "append"
        else:
            kw["type"] = meta.get("parse", kind)
        kw.update({k: meta[k] for k in ("metavar", "choices") if k in meta})
        made[title].add_argument(meta.get("flag", "--" + f.name.replace("_", "-")), **kw)


def _base_type(hint: Any) -> type:
    """``int`` for ``int | None``; ``list`` for ``list[str] | None``."""
    if isinstance(hint, types.UnionType):
        hint = next(a for a in typing.get_args(hint) if a is not type(None))
    return typing.get_origin(hint) or hint


def from_namespace(cls: type, namespace: argparse.Namespace) -> Any:
    """The `cls` config of parsed options."""
    return cls(**{f.name: getattr(namespace, f.name) for f in dataclasses.fields(cls)})


def flag(name: str) -> str:
    """The option spelling of a setting: ``--batch-size`` for ``batch_size``."""
    return "--" + name.replace("_", "-")


def check_bounds(config: Any) -> None:
    """Raise ValueError for the first setting below its declared ``low``, as one line."""
    for f in dataclasses.fields(config):
        low, value = f.metadata.get("low"), getattr(config, f.name)
        if low is not None and value is not None and not value >= low:
            raise ValueError(f"{flag(f.name)} must be >= {low}; got {value}")


DATA, MODEL, REG = "data", "model", "regularization (strengths of the penalty terms)"
OPT, TRAIN = "optimizer", "training and output"
MANY = "many models at once (one compiled program; see jaxmlp.fit_many)"
TRAIN_GROUPS = {
    MANY: "Each combination of the --sweep values and the seeds is one model (seeds vary "
    "fastest);\nmodel k equals 'jaxmlp train --seed S_k --data-seed SEED' with its values. Not "
    "with\n--resume: continue one model with --resume --out DIR/model_<k>.",
}
ALL = Sweep()


def _strength(what: str, default: float, group: str, note: str = "") -> Any:
    help = f"strength of {what}{note} (default: %(default)s)"
    return option(default, help, group=group, metavar="λ", sweep=ALL)


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    """The settings of ``jaxmlp train``; the defaults are the book's chapter-14 experiment."""

    data: str = option(
        "spiral", "spiral, vertical, sine (the book's generators), digits (needs scikit-learn), "
        "or a .npz file (arrays 'x' and 'y') or .csv file (last column is the target) (default: "
        "%(default)s)", group=DATA, metavar="NAME|FILE")  # fmt: skip
    samples: int | None = option(
        None, "generated data: samples per class (spiral, vertical; default 100) or in all "
        "(sine; default 1000)", group=DATA, metavar="N")  # fmt: skip
    classes: int = option(
        3, "classes of spiral and vertical data (default: %(default)s)", group=DATA, metavar="K"
    )
    val_samples: int | None = option(
        None, "generated data: size of the fresh validation draw, 0 for none (default: as "
        "--samples)", group=DATA, metavar="N")  # fmt: skip
    val_fraction: float | None = option(
        None, "digits and files: share held out for validation, 0 for none (default: 0.2)",
        group=DATA, metavar="F")  # fmt: skip
    standardize: str = option(
        "auto", "scale features to mean 0, std 1 using the training split; auto: yes for digits "
        "and files, no for generated data (default: %(default)s)", group=DATA,
        choices=("auto", "yes", "no"))  # fmt: skip
    hidden: str = option(
        "64", "hidden layer sizes, comma-separated; '' for none (default: %(default)s)",
        group=MODEL, metavar="N,N,...")  # fmt: skip
    activations: str | None = option(
        None, f"one per layer, from {', '.join(ACTIVATION_NAMES)} (default: relu hidden layers, "
        "then softmax, sigmoid or linear to suit the loss)", group=MODEL,
        metavar="NAME,...")  # fmt: skip
    init: str = option(
        "he", "weight initialisation (default: %(default)s)", group=MODEL, choices=INIT_SCHEMES
    )
    loss: str | None = option(
        None, "data loss (default: categorical_crossentropy for integer labels, mse otherwise)",
        group=MODEL, choices=LOSS_NAMES)  # fmt: skip
    l1w: float = _strength("Σ|W|", 0.0, REG)
    l1b: float = _strength("Σ|b|", 0.0, REG)
    l2w: float = _strength("ΣW²", 5e-4, REG)
    l2b: float = _strength("Σb²", 5e-4, REG)
    reg_layers: str = option(
        "hidden", "layers the penalty applies to: hidden (all but the output layer, as in the "
        "book), all, or comma-separated layer indices from 0 (default: %(default)s)", group=REG,
        metavar="WHICH")  # fmt: skip
    optimizer: str = option("adam", "(default: %(default)s)", group=OPT, choices=OPTIMIZERS)
    lr: float = option(0.02, "learning rate (default: %(default)s)", group=OPT, low=0, sweep=ALL)
    schedule: str = option(
        "inverse_time", "learning-rate schedule over update steps: inverse_time lr/(1+decay·t) "
        "(the book's), constant, exponential lr·decay_rate^(t/decay_steps), cosine over "
        "decay_steps (default: %(default)s)", group=OPT, choices=SCHEDULES)  # fmt: skip
    decay: float = option(
        5e-7, "inverse_time decay (default: %(default)s)", group=OPT, low=0,
        sweep=Sweep(schedules=("inverse_time",)))  # fmt: skip
    decay_rate: float = option(
        0.5, "exponential: factor per decay_steps (default: %(default)s)", group=OPT,
        sweep=Sweep(schedules=("exponential",)))  # fmt: skip
    decay_steps: int | None = option(
        None, "exponential: steps per decay_rate; cosine: length of the decay (default: all "
        "the run's update steps)", group=OPT, metavar="T",
        sweep=Sweep(schedules=("exponential", "cosine"), low=1))  # fmt: skip
    warmup: int = option(
        0, "linear warm-up steps before the schedule (default: %(default)s)", group=OPT,
        metavar="T", sweep=ALL)  # fmt: skip
    momentum: float = option(
        0.0, "sgd and rmsprop momentum (default: %(default)s)", group=OPT,
        sweep=Sweep(("sgd", "rmsprop")))  # fmt: skip
    nesterov: bool = option(False, "sgd: Nesterov momentum", group=OPT)
    rho: float = option(
        0.9, "rmsprop decay (default: %(default)s)", group=OPT, sweep=Sweep(("rmsprop",))
    )
    centered: bool = option(False, "rmsprop: centered variant", group=OPT)
    b1: float = option(0.9, "adam(w) β1 (default: %(default)s)", group=OPT, sweep=Sweep(ADAM))
    b2: float = option(0.999, "adam(w) β2 (default: %(default)s)", group=OPT, sweep=Sweep(ADAM))
    eps: float = option(
        1e-7, "ε added outside the square root (default: %(default)s, the book's)", group=OPT,
        sweep=Sweep(ADAPTIVE))  # fmt: skip
    eps_root: float = option(
        0.0, "ε added inside the square root (default: %(default)s)", group=OPT,
        sweep=Sweep(ADAPTIVE))  # fmt: skip
    amsgrad: bool = option(False, "adam(w): AMSGrad", group=OPT)
    weight_decay: float = option(
        0.01, "adamw decoupled weight decay (default: %(default)s)", group=OPT, low=0,
        sweep=Sweep(("adamw",)))  # fmt: skip
    epochs: int = option(
        10000, "epochs in all, counting any resumed ones (default: %(default)s)", group=TRAIN,
        run=False, low=0)  # fmt: skip
    batch_size: int | None = option(
        None, "examples per update (default: the full batch, as in the book)", group=TRAIN,
        metavar="B")  # fmt: skip
    seed: int = option(
        0, "seed of the initial weights and the shuffles, and of the data unless --data-seed is "
        "given (default: %(default)s)", group=TRAIN)  # fmt: skip
    data_seed: int | None = option(
        None, "seed of the generated data and of the validation split (default: --seed)",
        group=TRAIN, metavar="S")  # fmt: skip
    grads: str = option(
        "autodiff", "gradients from jax.grad or the hand-written backprop (default: "
        "%(default)s)", group=TRAIN, choices=("autodiff", "manual"))  # fmt: skip
    out: str | None = option(
        None, "output directory (default: runs/<data name>)", group=TRAIN, run=False,
        metavar="DIR")  # fmt: skip
    checkpoint_every: int = option(
        1000, "write the checkpoint every E epochs (default: %(default)s)", group=TRAIN,
        run=False, metavar="E", low=1)  # fmt: skip
    resume: bool = option(
        False, "continue the run whose checkpoint is in --out, with its settings", group=TRAIN,
        run=False)  # fmt: skip
    no_plots: bool = option(False, "do not draw PNG plots", group=TRAIN, run=False)
    no_progress: bool = option(False, "no progress bar", group=TRAIN, run=False)
    seeds: int = option(
        1, "train N models with seeds seed, seed+1, ..., seed+N-1 (their initial weights and "
        "shuffles), all on the data of --seed or --data-seed (default: %(default)s)", group=MANY,
        run=False, metavar="N", low=1)  # fmt: skip
    sweep: list[str] | None = option(
        None, "one model per value; repeat for a grid (the Cartesian product, times --seeds). "
        "NAME: {sweepable} (those of the run's optimizer and schedule)", group=MANY, run=False,
        metavar="NAME=V1,V2,...")  # fmt: skip


RUN_KEYS = tuple(f.name for f in dataclasses.fields(TrainConfig) if f.metadata["run"])
"""The settings that define a run: saved with it and restored by ``--resume``."""
_HINTS = typing.get_type_hints(TrainConfig)
SWEEPABLE: dict[str, Sweep] = {
    f.name: f.metadata["sweep"]._replace(kind=_base_type(_HINTS[f.name]))
    for f in dataclasses.fields(TrainConfig)
    if "sweep" in f.metadata
}
"""The settings ``--sweep`` may vary, and for which optimizers and schedules."""


def default_activations(n_hidden: int, loss: str) -> tuple[str, ...]:
    """ReLU hidden layers, then the loss's natural output: softmax, sigmoid or linear."""
    return ("relu",) * n_hidden + (FUSED.get(loss, "linear"),)


def int_list(text: str) -> tuple[int, ...]:
    """``"2,16,3"`` as ``(2, 16, 3)``; an argparse type (its error names the option)."""
    try:
        return tuple(int(v) for v in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected comma-separated integers such as 2,16,3; got {text!r}"
        ) from None


def name_list(text: str) -> tuple[str, ...]:
    """``"relu, softmax"`` as ``("relu", "softmax")``."""
    return tuple(v.strip() for v in text.split(","))


def _tolerance(default: float, what: str) -> Any:
    return option(default, f"{what} (default: %(default)s)")


@dataclasses.dataclass(frozen=True)
class GradcheckConfig:
    """The settings of ``jaxmlp gradcheck``: a random problem and the check's tolerances."""

    sizes: tuple[int, ...] = option(
        "2,16,3", "layer sizes, inputs first (default: %(default)s)", metavar="N,N,...",
        parse=int_list)  # fmt: skip
    activations: tuple[str, ...] | None = option(
        None, f"one activation per layer, from: {', '.join(ACTIVATION_NAMES)} (default: relu "
        "for hidden layers, then the loss's natural output: softmax, sigmoid, or linear for "
        "mse/mae)", metavar="NAME,...", parse=name_list)  # fmt: skip
    loss: str = option(
        "categorical_crossentropy", "data loss (default: %(default)s)", choices=LOSS_NAMES
    )
    labels: str = option(
        "int", "targets of categorical_crossentropy: integer labels or one-hot rows (default: "
        "%(default)s)", choices=("int", "onehot"))  # fmt: skip
    l1w: float = _strength("the Σ|W| penalty", 0.0, "", ", every layer")
    l1b: float = _strength("the Σ|b| penalty", 0.0, "", ", every layer")
    l2w: float = _strength("the ΣW² penalty", 0.0, "", ", every layer")
    l2b: float = _strength("the Σb² penalty", 0.0, "", ", every layer")
    batch: int = option(32, "examples in the random batch (default: %(default)s)")
    seed: int = option(
        0, "seed of the net, the data and the sampled entries (default: %(default)s)"
    )
    init: str = option("he", "weight initialisation (default: %(default)s)", choices=INIT_SCHEMES)
    n_samples: int = _tolerance(N_SAMPLES, "entries per leaf checked with finite differences")
    eps: float = _tolerance(EPS, "finite-difference step")
    rtol: float = _tolerance(RTOL, "relative tolerance vs autodiff")
    atol: float = _tolerance(ATOL, "absolute tolerance vs autodiff")
    fd_rtol: float = _tolerance(FD_RTOL, "relative tolerance vs finite differences")
    fd_atol: float = _tolerance(FD_ATOL, "absolute tolerance vs finite differences")
    backward: str | None = option(
        None, "check your own backward pass instead of jaxmlp's: a function f(net, params, x, "
        "y, *, loss, reg) -> grads, importable from the current directory",
        metavar="MODULE:FUNCTION")  # fmt: skip
