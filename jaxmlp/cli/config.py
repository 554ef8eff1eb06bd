"""The command line's settings, each declared once as a field of a frozen dataclass.

A field's `option` carries its default, help text, option group and, for ``jaxmlp train``,
whether it defines the run (saved in the checkpoint and ``history.json``, restored by
``--resume``), its lower bound, whether ``--sweep`` may vary it, and, for the settings a
``--preset`` decides, each preset's value. Everything else derives from the declaration:
`add_options` builds the argparse options, `from_namespace` the config, `RUN_KEYS`,
`SWEEPABLE` and `PRESETS` the saved settings, the sweepable names and the presets' tables. To
add an option, add a field here and read it where it is used.
"""

from __future__ import annotations

import argparse
import dataclasses
import types
import typing
from typing import Any, NamedTuple

from jaxmlp import losses, model
from jaxmlp.activations import NAMES as ACTIVATION_NAMES
from jaxmlp.gradcheck import ATOL, DEFAULTS, EPS, FD_ATOL, FD_RTOL, N_SAMPLES, RTOL

OPTIMIZERS = ("sgd", "adagrad", "rmsprop", "adam", "adamw")
SCHEDULES = ("inverse_time", "constant", "exponential", "cosine")
ADAM = ("adam", "adamw")
ADAPTIVE = ("adagrad", "rmsprop", *ADAM)
ACTIONS = {bool: "store_true", list: "append"}  # a bool field is a switch, a list repeatable
GENERATED = ("spiral", "vertical", "sine")  # the book's generators; anything else is a file
PRESET_NAMES = ("book", "general")
FULL_BATCH = 0  # ``--batch-size full`` before the preset is applied (then None, as saved)
MEMBER = ("seed", "fold", "rung")  # a model's values that are not settings (seed, fold, rung)
NO_EARLY_STOPPING = -1  # ``--early-stopping-patience off`` before the preset (then None)
STRUCTURAL = ("width", "depth", "hidden", "batch_size")
"""The names ``--sweep`` may vary that change the compiled program: one `fit_many` per value."""


class Sweep(NamedTuple):
    """Where ``--sweep`` may vary a setting: the optimizers and schedules it affects (None: all).

    Swept settings live in the regularization, the optimizer state or the schedule as data, so
    K models share one compiled program; everything else shapes the program.
    """

    optimizers: tuple[str, ...] | None = None
    schedules: tuple[str, ...] | None = None
    low: float = 0  # the smallest value a sweep may give
    kind: type = float  # the values' type (set from the field's type)

    def applies(self, optimizer: str | None, schedule: str | None) -> bool:
        """Whether sweeping the setting has an effect with this optimizer and schedule.

        None (not given, before `resolve_preset`) is in no restricted list.
        """
        optimizer_ok = self.optimizers is None or optimizer in self.optimizers
        return optimizer_ok and (self.schedules is None or schedule in self.schedules)


def option(default: Any, help: str, group: str = "", *, run: bool = True, **argparse_kw) -> Any:
    """A dataclass field declaring one command-line option.

    Args:
      default: the default (parsed like a command-line value when `parse` is given).
      help: the help text; `add_options` adds "(default: ...)" unless it says "default" or the
        option is a switch.
      group: the option group's title in ``--help``.
      run: whether the setting defines a run (saved, and restored by ``--resume``).
      **argparse_kw: ``metavar``, ``choices``; ``parse`` (argparse's ``type``); ``low`` (the
        value must be ``>= low``); ``sweep`` (a `Sweep`: ``--sweep`` may vary it).
    """
    meta = dict(help=help, group=group, run=run, **argparse_kw)
    return dataclasses.field(default=default, metadata=meta)


def preset_option(values: dict[str, Any], help: str, group: str, **argparse_kw) -> Any:
    """A `option` whose default each ``--preset`` sets: `values` maps a preset to its value.

    The field's own default is None, "not given": `resolve_preset` fills it from the preset.
    """
    if set(values) != set(PRESET_NAMES):
        raise ValueError(f"a preset option needs a value for each of {PRESET_NAMES}")
    return option(None, help, group, preset=values, **argparse_kw)


def add_options(parser: argparse.ArgumentParser, cls: type, groups: dict, **fill: str) -> None:
    """Add an option to `parser` for every field of `cls`, in their groups (titles → notes).

    `fill` completes help texts that hold ``{name}`` placeholders.
    """
    hints = typing.get_type_hints(cls)
    made: dict[str, Any] = {"": parser}  # the option groups by title; "" for none
    for f in dataclasses.fields(cls):
        meta, kind, title = f.metadata, _base_type(hints[f.name]), f.metadata["group"]
        if title not in made:
            made[title] = parser.add_argument_group(title, groups.get(title))
        help = meta["help"].format(**fill)
        if "preset" in meta and len(set(meta["preset"].values())) == 1:
            value = _shown(next(iter(meta["preset"].values())), f.name)
            help += f" (default: {value}, either --preset)"
        elif "preset" in meta:
            shown = [f"{_shown(v, f.name)} with --preset {p}" for p, v in meta["preset"].items()]
            help += f" (default: {', '.join(shown)})"
        elif "default" not in help and kind is not bool:
            help += " (default: %(default)s)"
        kw = {"action": ACTIONS[kind]} if kind in ACTIONS else {"type": meta.get("parse", kind)}
        kw.update({k: meta[k] for k in ("metavar", "choices") if k in meta})
        made[title].add_argument(flag(f.name), default=f.default, help=help, **kw)


def _shown(value: Any, name: str) -> str:
    """A preset's value in ``--help``: None is the full batch, or no early stopping."""
    if value is None:
        return "full" if name == "batch_size" else "off"
    return str(value)


def _base_type(hint: Any) -> type:
    """``int`` for ``int | None``; ``list`` for ``list[str] | None``."""
    if isinstance(hint, types.UnionType):
        hint = next(a for a in typing.get_args(hint) if a is not type(None))
    return typing.get_origin(hint) or hint


def from_namespace(cls: type, namespace: argparse.Namespace) -> Any:
    """The `cls` config of parsed options."""
    return cls(**{f.name: getattr(namespace, f.name) for f in dataclasses.fields(cls)})


def resolve_preset(config: Any) -> Any:
    """`config` with its preset decided and every setting it left unset taken from that preset.

    ``--preset auto`` is ``book`` for the generated data and ``general`` for the digits and
    files. Settings given explicitly are kept; ``--batch-size full`` becomes None (the full
    batch, as a run saves it), and so does ``--early-stopping-patience off`` (none; also the
    general preset's patience when there is no validation data or with ``--halving``). A
    resumed run takes its resolved settings from its checkpoint instead.
    """
    name = config.preset
    if name == "auto":
        name = "book" if config.data in GENERATED else "general"
    values = {"preset": name}
    for f in dataclasses.fields(config):
        if "preset" in f.metadata:
            value = getattr(config, f.name)
            value = f.metadata["preset"][name] if value is None else value
            values[f.name] = None if f.name == "batch_size" and value == FULL_BATCH else value
    patience = values["early_stopping_patience"]
    no_validation = config.val_fraction == 0 and config.val_data is None and not config.folds
    not_given = config.early_stopping_patience is None
    if patience == NO_EARLY_STOPPING or (not_given and (no_validation or config.halving)):
        values["early_stopping_patience"] = None  # off; a preset's with nothing to monitor or
        # with --halving, which decides the stops itself
    return dataclasses.replace(config, **values)


def int_or(word: str, meaning: int, low: int) -> Any:
    """An argparse type: an integer ``>= low``, or `word` (returned as `meaning`)."""
    want = "a positive integer" if low == 1 else f"an integer >= {low}"

    def parse(text: str) -> int:
        if text.strip().lower() == word:
            return meaning
        try:
            value = int(text)
        except ValueError:
            value = low - 1
        if value < low:
            raise argparse.ArgumentTypeError(f"expected {want} or {word!r}; got {text!r}")
        return value

    parse.__name__ = f"integer or {word}"  # argparse names the type in some messages
    return parse


patience_arg = int_or("off", NO_EARLY_STOPPING, 0)
"""``--early-stopping-patience``: an integer >= 0, or ``off``."""
batch_size_arg = int_or("full", FULL_BATCH, 1)
"""``--batch-size``: a positive integer, or ``full`` for the whole training set."""


def flag(name: str) -> str:
    """The option spelling of a setting: ``--batch-size`` for ``batch_size``."""
    return "--" + name.replace("_", "-")


def check_bounds(config: Any) -> None:
    """Raise ValueError for the first setting below its declared ``low``, as one line."""
    for f in dataclasses.fields(config):
        low, value = f.metadata.get("low"), getattr(config, f.name)
        if low is not None and value is not None and not value >= low:
            raise ValueError(f"{flag(f.name)} must be >= {low}; got {value}")


PRESET, DATA, MODEL = "preset", "data", "model"
REG = "regularization (strengths of the penalty terms)"
OPT, TRAIN = "optimizer", "training and output"
MANY = "many models at once (one compiled program; see jaxmlp.fit_many)"
SELECT = "model selection (early stopping, cross-validation, successive halving)"
GROUP_NOTES = {  # the text under a group's title in --help
    PRESET: "The defaults of the settings marked 'with --preset': book (chapter 14 of the book)\n"
    "or general (for data of your own). Options given explicitly win over the preset.",
    MANY: "Each combination of the --sweep values and the seeds is one model (seeds vary "
    "fastest);\nmodel k equals 'jaxmlp train --seed S_k --data-seed SEED' with its values. Not "
    "with\n--resume: continue one model with --resume --out DIR/model_<k>.",
}
ALL = Sweep()


def _strength(what: str, default: float, group: str = REG) -> Any:
    return option(default, f"strength of {what}", group, metavar="λ", sweep=ALL)


def _preset_strength(what: str, book: float, general: float) -> Any:
    return preset_option({"book": book, "general": general}, f"strength of {what}", REG,
                         metavar="λ", sweep=ALL)  # fmt: skip


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    """The settings of ``jaxmlp train``; the defaults are the book's chapter-14 experiment.

    The settings a preset decides are None until `resolve_preset` fills them.
    """

    preset: str = option("auto", "book: the book's settings; general: Adam 1e-3 at a constant "
                         "rate, batches of 32, L2 1e-4 on the weights only; auto: book for the "
                         "generated data, general for digits and files", PRESET,
                         choices=("auto", *PRESET_NAMES))  # fmt: skip
    data: str = option("spiral", "spiral, vertical, sine (the book's generators), digits (needs "
                       "scikit-learn), or a .npz (arrays x, y) or .csv file (last column: the "
                       "target)", DATA, metavar="NAME|FILE")  # fmt: skip
    samples: int | None = option(None, "samples per class (spiral, vertical; default 100) or in "
                                 "all (sine; default 1000)", DATA, metavar="N")  # fmt: skip
    classes: int = option(3, "classes of spiral and vertical data", DATA, metavar="K")
    val_samples: int | None = option(None, "generated data: size of the validation draw, 0 for "
                                     "none (default: as --samples)", DATA, metavar="N")  # fmt: skip
    val_fraction: float | None = option(None, "digits and files: share held out for validation, "
                                        "0 for none (default: 0.2)", DATA, metavar="F")  # fmt: skip
    val_data: str | None = option(None, "validation data from a file (.npz or .csv, as --data); "
                                  "no split is made", DATA, metavar="FILE")  # fmt: skip
    test_data: str | None = option(None, "test data from a file (as --data): scored once, at the "
                                   "end, with the final parameters; never used for a choice",
                                   DATA, metavar="FILE")  # fmt: skip
    standardize: str = option("auto", "scale features to mean 0, std 1 on the training split; "
                              "auto: yes for digits and files", DATA,
                              choices=("auto", "yes", "no"))  # fmt: skip
    standardize_targets: str = option("auto", "regression: train on the target scaled to mean 0, "
                                      "std 1 on the training split (one mean and std over all "
                                      "its values); predictions and metrics are reported in the "
                                      "target's units; auto: yes for digits and files", DATA,
                                      choices=("auto", "yes", "no"))  # fmt: skip
    task: str = option("auto", "classification (integer class labels, softmax and categorical "
                       "cross-entropy) or regression (mse, linear output); auto: regression for "
                       "a float target, several target columns, negative values or more than "
                       "50 distinct values, else classification", DATA,
                       choices=("auto", "classification", "regression"))  # fmt: skip
    hidden: str = option("64", "hidden layer sizes, comma-separated; '' for none", MODEL,
                         metavar="N,N,...")  # fmt: skip
    activations: str | None = option(None, f"one per layer, from {', '.join(ACTIVATION_NAMES)} "
                                     "(default: relu, then the loss's output)", MODEL,
                                     metavar="NAME,...")  # fmt: skip
    init: str = option("he", "weight initialisation", MODEL, choices=model.INIT_SCHEMES)
    loss: str | None = option(None, "data loss (default: categorical_crossentropy for integer "
                              "labels, mse otherwise)", MODEL, choices=losses.NAMES)  # fmt: skip
    l1w: float = _strength("Σ|W|", 0.0)
    l1b: float = _strength("Σ|b|", 0.0)
    l2w: float | None = _preset_strength("ΣW²", 5e-4, 1e-4)
    l2b: float | None = _preset_strength("Σb²", 5e-4, 0.0)
    reg_layers: str | None = preset_option({"book": "hidden", "general": "all"}, "penalized "
                                           "layers: hidden (all but the output, as in the book), "
                                           "all, or indices from 0", REG,
                                           metavar="WHICH")  # fmt: skip
    optimizer: str | None = preset_option({"book": "adam", "general": "adam"}, "the optimizer",
                                          OPT, choices=OPTIMIZERS)  # fmt: skip
    lr: float | None = preset_option({"book": 0.02, "general": 1e-3}, "learning rate", OPT, low=0,
                                     sweep=ALL)  # fmt: skip
    schedule: str | None = preset_option({"book": "inverse_time", "general": "constant"},
                                         "learning-rate schedule over update steps: inverse_time "
                                         "lr/(1+decay·t) (the book's), constant, exponential "
                                         "lr·decay_rate^(t/decay_steps), cosine over decay_steps",
                                         OPT, choices=SCHEDULES)  # fmt: skip
    decay: float = option(5e-7, "inverse_time decay", OPT, low=0,
                          sweep=Sweep(schedules=("inverse_time",)))  # fmt: skip
    decay_rate: float = option(0.5, "exponential: factor per decay_steps", OPT,
                               sweep=Sweep(schedules=("exponential",)))  # fmt: skip
    decay_steps: int | None = option(None, "exponential: steps per decay_rate; cosine: length of "
                                     "the decay (default: all the run's steps)", OPT, metavar="T",
                                     sweep=Sweep(schedules=("exponential", "cosine"),
                                                 low=1))  # fmt: skip
    warmup: int = option(0, "linear warm-up steps before the schedule", OPT, metavar="T", sweep=ALL)
    momentum: float = option(0.0, "sgd and rmsprop momentum", OPT, sweep=Sweep(("sgd", "rmsprop")))
    nesterov: bool = option(False, "sgd: Nesterov momentum", OPT)
    rho: float = option(0.9, "rmsprop decay", OPT, sweep=Sweep(("rmsprop",)))
    centered: bool = option(False, "rmsprop: centered variant", OPT)
    b1: float = option(0.9, "adam(w) β1", OPT, sweep=Sweep(ADAM))
    b2: float = option(0.999, "adam(w) β2", OPT, sweep=Sweep(ADAM))
    eps: float = option(1e-7, "ε added outside the square root (the book's: 1e-7)", OPT,
                        sweep=Sweep(ADAPTIVE))  # fmt: skip
    eps_root: float = option(0.0, "ε added inside the square root", OPT, sweep=Sweep(ADAPTIVE))
    amsgrad: bool = option(False, "adam(w): AMSGrad", OPT)
    weight_decay: float = option(0.01, "adamw decoupled weight decay", OPT, low=0,
                                 sweep=Sweep(("adamw",)))  # fmt: skip
    epochs: int = option(10000, "epochs in all, counting any resumed ones", TRAIN, run=False, low=0)
    batch_size: int | None = preset_option({"book": None, "general": 32}, "examples per update, "
                                           "or full: the whole training set", TRAIN,
                                           metavar="B|full", parse=batch_size_arg)  # fmt: skip
    seed: int = option(0, "seed of the initial weights and the shuffles, and of the data unless "
                       "--data-seed is given", TRAIN)  # fmt: skip
    data_seed: int | None = option(None, "seed of the generated data and of the validation "
                                   "split (default: --seed)", TRAIN, metavar="S")  # fmt: skip
    grads: str = option("autodiff", "gradients from jax.grad or the hand-written backprop", TRAIN,
                        choices=("autodiff", "manual"))  # fmt: skip
    out: str | None = option(None, "output directory (default: runs/<data name>)", TRAIN,
                             run=False, metavar="DIR")  # fmt: skip
    checkpoint_every: int = option(1000, "write the checkpoint every E epochs", TRAIN, run=False,
                                   metavar="E", low=1)  # fmt: skip
    resume: bool = option(False, "continue the run whose checkpoint is in --out, with its "
                          "settings", TRAIN, run=False)  # fmt: skip
    no_plots: bool = option(False, "do not draw PNG plots (kept by --resume)", TRAIN)
    no_progress: bool = option(False, "no progress bar", TRAIN, run=False)
    seeds: int = option(1, "train N models with seeds seed, ..., seed+N-1 (their initial weights "
                        "and shuffles), on the data of --seed or --data-seed", MANY, run=False,
                        metavar="N", low=1)  # fmt: skip
    sweep: list[str] | None = option(None, "one model per value; repeat for a grid (times "
                                     "--seeds). NAME: {sweepable} (those of the run's "
                                     "optimizer and schedule), shared by one compiled program; "
                                     "or {structural}: one compiled program per value (width: "
                                     "units of every hidden layer; depth: hidden layers; "
                                     "hidden: layer sizes joined by '-', e.g. 64-32)", MANY,
                                     run=False, metavar="NAME=V1,V2,...")  # fmt: skip
    early_stopping_patience: int | None = preset_option(
        {"book": None, "general": 20}, "stop a model after P counted epochs "
        "without improvement of --monitor, and keep its best epoch (jaxmlp.EarlyStopping); "
        "'off' for none; the general preset's applies only with validation data", SELECT,
        metavar="P|off", parse=patience_arg)  # fmt: skip
    monitor: str = option("val_loss", "the history field early stopping and --halving watch: "
                          "val_loss, val_accuracy, loss, accuracy, val_r2, ... (minimized, or "
                          "maximized for accuracies and R²)", SELECT, metavar="FIELD")  # fmt: skip
    min_delta: float = option(0.0, "early stopping: an improvement must beat the best by more "
                              "than this", SELECT, metavar="D", low=0)  # fmt: skip
    start_from_epoch: int = option(0, "early stopping: the first epochs that do not count (a "
                                   "warm-up)", SELECT, metavar="E", low=0)  # fmt: skip
    restore_best: str = option("yes", "early stopping: end with the best epoch's parameters "
                               "and optimizer state (yes) or the last epoch's (no)", SELECT,
                               choices=("yes", "no"))  # fmt: skip
    folds: int | None = option(None, "K-fold cross-validation: every model (seed and swept "
                               "values) trains K times, each on K-1 folds of the training data "
                               "(stratified by class), validating on the fold held out, all in "
                               "one program; no validation split or draw is made", SELECT,
                               run=False, metavar="K", low=2)  # fmt: skip
    halving: int | None = option(None, "successive halving among the models: at the rungs R, "
                                 "R·ETA, R·ETA², ... keep the best 1/ETA by --monitor and stop "
                                 "the others", SELECT, run=False, metavar="ETA", low=2)  # fmt: skip
    halving_min_epochs: int | None = option(None, "the first rung R of --halving (default: "
                                            "--epochs / ETA², at least 1)", SELECT, run=False,
                                            metavar="R", low=1)  # fmt: skip
    baseline: str | None = option(None, "with --sweep and --seeds N >= 2: compare every setting "
                                  "with the one of NAME=V (the same other swept values), "
                                  "paired over the seeds: the difference, its 95%% interval and "
                                  "p", MANY, run=False, metavar="NAME=V")  # fmt: skip


RUN_KEYS = tuple(f.name for f in dataclasses.fields(TrainConfig) if f.metadata["run"])
"""The settings that define a run: saved with it and restored by ``--resume``."""
_HINTS = typing.get_type_hints(TrainConfig)
SWEEPABLE: dict[str, Sweep] = {
    f.name: f.metadata["sweep"]._replace(kind=_base_type(_HINTS[f.name]))
    for f in dataclasses.fields(TrainConfig)
    if "sweep" in f.metadata
}
"""The settings ``--sweep`` may vary, and for which optimizers and schedules."""
PRESETS: dict[str, dict[str, Any]] = {
    name: {f.name: f.metadata["preset"][name] for f in dataclasses.fields(TrainConfig)
           if "preset" in f.metadata}
    for name in PRESET_NAMES
}  # fmt: skip
"""Each preset's settings: ``PRESETS["general"]["lr"]`` is 1e-3."""


def default_activations(n_hidden: int, loss: str) -> tuple[str, ...]:
    """ReLU hidden layers, then the loss's natural output: softmax, sigmoid or linear."""
    return ("relu",) * n_hidden + (losses.FUSED.get(loss, "linear"),)


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


@dataclasses.dataclass(frozen=True)
class GradcheckConfig:
    """The settings of ``jaxmlp gradcheck``: a random problem and the check's tolerances."""

    sizes: tuple[int, ...] = option("2,16,3", "layer sizes, inputs first", metavar="N,N,...",
                                    parse=int_list)  # fmt: skip
    activations: tuple[str, ...] | None = option(None, "one activation per layer, from: "
                                                 f"{', '.join(ACTIVATION_NAMES)} (default: relu, "
                                                 "then the loss's natural output)",
                                                 metavar="NAME,...", parse=name_list)  # fmt: skip
    loss: str = option("categorical_crossentropy", "data loss", choices=losses.NAMES)
    labels: str = option("int", "targets of categorical_crossentropy: integer labels or one-hot "
                         "rows", choices=("int", "onehot"))  # fmt: skip
    l1w: float = _strength("the Σ|W| penalty, every layer", 0.0, "")
    l1b: float = _strength("the Σ|b| penalty, every layer", 0.0, "")
    l2w: float = _strength("the ΣW² penalty, every layer", 0.0, "")
    l2b: float = _strength("the Σb² penalty, every layer", 0.0, "")
    batch: int = option(32, "examples in the random batch")
    seed: int = option(0, "seed of the net, the data and the sampled entries")
    init: str = option("he", "weight initialisation", choices=model.INIT_SCHEMES)
    n_samples: int = option(N_SAMPLES, "entries per leaf checked with finite differences")
    dtype: str = option("float64", "the precision of the check; tolerances and the step follow "
                        "it unless given", choices=("float64", "float32"))  # fmt: skip
    eps: float | None = option(None, f"finite-difference step (default: {EPS:g} in float64, "
                               f"{DEFAULTS['float32'].eps:g} in float32)")  # fmt: skip
    rtol: float | None = option(None, f"relative tolerance vs autodiff (default: {RTOL:g}, "
                                f"{DEFAULTS['float32'].rtol:g})")  # fmt: skip
    atol: float | None = option(None, f"absolute tolerance vs autodiff (default: {ATOL:g}, "
                                f"{DEFAULTS['float32'].atol:g})")  # fmt: skip
    fd_rtol: float | None = option(None, "relative tolerance vs finite differences (default: "
                                   f"{FD_RTOL:g}, {DEFAULTS['float32'].fd_rtol:g})")  # fmt: skip
    fd_atol: float | None = option(None, "absolute tolerance vs finite differences (default: "
                                   f"{FD_ATOL:g}, {DEFAULTS['float32'].fd_atol:g})")  # fmt: skip
    data: str | None = option(None, "check on your own data: a .npz (arrays x, y) or .csv "
                              "file (last column y); its first --batch rows",
                              metavar="FILE")  # fmt: skip
    params: str | None = option(None, "check at your own weights: a checkpoint (jaxmlp train "
                                "writes one); its net replaces --sizes and --activations",
                                metavar="CHECKPOINT")  # fmt: skip
    layout: str = option("jaxmlp", "the form of --backward: jaxmlp's (batch first) or the "
                         "seeds' (column vectors, W of shape (fan_out, fan_in), update "
                         "directions of ½Σ(Y − Ŷ)²)", choices=("jaxmlp", "seeds"))  # fmt: skip
    backward: str | None = option(None, "check your own backward pass instead of jaxmlp's: a "
                                  "function f(net, params, x, y, *, loss, reg) -> grads, "
                                  "importable from the current directory",
                                  metavar="MODULE:FUNCTION")  # fmt: skip
