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
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import os
import sys
import time
import warnings
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from jaxmlp import checkpoint, datasets, schedules
from jaxmlp import losses as _losses
from jaxmlp import optim as _optim
from jaxmlp._checks import check_inputs, check_problem
from jaxmlp.activations import NAMES as ACTIVATION_NAMES
from jaxmlp.fit import evaluate, fit
from jaxmlp.metrics import task_of
from jaxmlp.model import INIT_SCHEMES, MLP, init_params
from jaxmlp.regularization import Regularization

GENERATED = ("spiral", "vertical", "sine")
OPTIMIZERS = ("sgd", "adagrad", "rmsprop", "adam", "adamw")
SCHEDULES = ("inverse_time", "constant", "exponential", "cosine")
# Options that define a run; saved in the checkpoint and reused by --resume.
RUN_KEYS = (
    "data", "samples", "classes", "val_samples", "val_fraction", "standardize", "hidden",
    "activations", "init", "loss", "l1w", "l1b", "l2w", "l2b", "reg_layers", "optimizer", "lr",
    "schedule", "decay", "decay_rate", "decay_steps", "warmup", "momentum", "nesterov", "rho",
    "centered", "b1", "b2", "eps", "eps_root", "amsgrad", "weight_decay", "batch_size", "seed",
    "grads", "data_seed",
)  # fmt: skip
STRENGTHS = ("l1w", "l1b", "l2w", "l2b")
# What --sweep accepts: name -> (value type, optimizers it applies to, schedules it applies to);
# None: all. These live in the regularization or the optimizer state as data, so the K models
# share one compiled program. Everything else (sizes, batch size, optimizer, loss) shapes it.
SWEEPABLE: dict[str, tuple[type, tuple[str, ...] | None, tuple[str, ...] | None]] = {
    **{name: (float, None, None) for name in STRENGTHS},
    "lr": (float, None, None),
    "decay": (float, None, ("inverse_time",)),
    "decay_rate": (float, None, ("exponential",)),
    "decay_steps": (int, None, ("exponential", "cosine")),
    "warmup": (int, None, None),
    "momentum": (float, ("sgd", "rmsprop"), None),
    "rho": (float, ("rmsprop",), None),
    "b1": (float, ("adam", "adamw"), None),
    "b2": (float, ("adam", "adamw"), None),
    "eps": (float, ("adagrad", "rmsprop", "adam", "adamw"), None),
    "eps_root": (float, ("adagrad", "rmsprop", "adam", "adamw"), None),
    "weight_decay": (float, ("adamw",), None),
}


class UsageError(ValueError):
    """A bad combination of options, reported as one line."""


def add_train(sub: argparse._SubParsersAction, name: str) -> None:
    """Add the ``train`` subcommand and its options to `sub`."""
    p = sub.add_parser(
        name,
        help="train a net (default: the book's chapter-14 spiral experiment)",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description=__doc__.split("\n", 1)[1].strip()
        + "\n\nexit status: 0 done, 1 training (of any model) diverged, 2 bad options or data",
    )
    d = p.add_argument_group("data")
    d.add_argument(
        "--data",
        default="spiral",
        metavar="NAME|FILE",
        help="spiral, vertical, sine (the book's generators), digits (needs "
        "scikit-learn), or a .npz file (arrays 'x' and 'y') or .csv file (last "
        "column is the target) (default: %(default)s)",
    )
    d.add_argument(
        "--samples",
        type=int,
        metavar="N",
        help="generated data: samples per class (spiral, vertical; default 100) or "
        "in all (sine; default 1000)",
    )
    d.add_argument(
        "--classes",
        type=int,
        default=3,
        metavar="K",
        help="classes of spiral and vertical data (default: %(default)s)",
    )
    d.add_argument(
        "--val-samples",
        type=int,
        metavar="N",
        help="generated data: size of the fresh validation draw, 0 for none "
        "(default: as --samples)",
    )
    d.add_argument(
        "--val-fraction",
        type=float,
        metavar="F",
        help="digits and files: share held out for validation, 0 for none (default: 0.2)",
    )
    d.add_argument(
        "--standardize",
        choices=("auto", "yes", "no"),
        default="auto",
        help="scale features to mean 0, std 1 using the training split; auto: yes "
        "for digits and files, no for generated data (default: %(default)s)",
    )
    m = p.add_argument_group("model")
    m.add_argument(
        "--hidden",
        default="64",
        metavar="N,N,...",
        help="hidden layer sizes, comma-separated; '' for none (default: %(default)s)",
    )
    m.add_argument(
        "--activations",
        metavar="NAME,...",
        help="one per layer, from " + ", ".join(ACTIVATION_NAMES) + " (default: relu "
        "hidden layers, then softmax, sigmoid or linear to suit the loss)",
    )
    m.add_argument(
        "--init",
        choices=INIT_SCHEMES,
        default="he",
        help="weight initialisation (default: %(default)s)",
    )
    m.add_argument(
        "--loss",
        choices=_losses.NAMES,
        help="data loss (default: categorical_crossentropy for integer labels, mse otherwise)",
    )
    r = p.add_argument_group("regularization (strengths of the penalty terms)")
    for key, what, default in (
        ("l1w", "Σ|W|", 0.0),
        ("l1b", "Σ|b|", 0.0),
        ("l2w", "ΣW²", 5e-4),
        ("l2b", "Σb²", 5e-4),
    ):
        r.add_argument(
            f"--{key}",
            type=float,
            default=default,
            metavar="λ",
            help=f"strength of {what} (default: %(default)s)",
        )
    r.add_argument(
        "--reg-layers",
        default="hidden",
        metavar="WHICH",
        help="layers the penalty applies to: hidden (all but the output layer, as in "
        "the book), all, or comma-separated layer indices from 0 "
        "(default: %(default)s)",
    )
    o = p.add_argument_group("optimizer")
    o.add_argument("--optimizer", choices=OPTIMIZERS, default="adam", help="(default: %(default)s)")
    o.add_argument("--lr", type=float, default=0.02, help="learning rate (default: %(default)s)")
    o.add_argument(
        "--schedule",
        choices=SCHEDULES,
        default="inverse_time",
        help="learning-rate schedule over update steps: inverse_time lr/(1+decay·t) "
        "(the book's), constant, exponential lr·decay_rate^(t/decay_steps), cosine "
        "over decay_steps (default: %(default)s)",
    )
    o.add_argument(
        "--decay", type=float, default=5e-7, help="inverse_time decay (default: %(default)s)"
    )
    o.add_argument(
        "--decay-rate",
        type=float,
        default=0.5,
        help="exponential: factor per decay_steps (default: %(default)s)",
    )
    o.add_argument(
        "--decay-steps",
        type=int,
        metavar="T",
        help="exponential: steps per decay_rate; cosine: length of the decay "
        "(default: all the run's update steps)",
    )
    o.add_argument(
        "--warmup",
        type=int,
        default=0,
        metavar="T",
        help="linear warm-up steps before the schedule (default: %(default)s)",
    )
    o.add_argument(
        "--momentum",
        type=float,
        default=0.0,
        help="sgd and rmsprop momentum (default: %(default)s)",
    )
    o.add_argument("--nesterov", action="store_true", help="sgd: Nesterov momentum")
    o.add_argument("--rho", type=float, default=0.9, help="rmsprop decay (default: %(default)s)")
    o.add_argument("--centered", action="store_true", help="rmsprop: centered variant")
    o.add_argument("--b1", type=float, default=0.9, help="adam(w) β1 (default: %(default)s)")
    o.add_argument("--b2", type=float, default=0.999, help="adam(w) β2 (default: %(default)s)")
    o.add_argument(
        "--eps",
        type=float,
        default=1e-7,
        help="ε added outside the square root (default: %(default)s, the book's)",
    )
    o.add_argument(
        "--eps-root",
        type=float,
        default=0.0,
        help="ε added inside the square root (default: %(default)s)",
    )
    o.add_argument("--amsgrad", action="store_true", help="adam(w): AMSGrad")
    o.add_argument(
        "--weight-decay",
        type=float,
        default=0.01,
        help="adamw decoupled weight decay (default: %(default)s)",
    )
    t = p.add_argument_group("training and output")
    t.add_argument(
        "--epochs",
        type=int,
        default=10000,
        help="epochs in all, counting any resumed ones (default: %(default)s)",
    )
    t.add_argument(
        "--batch-size",
        type=int,
        metavar="B",
        help="examples per update (default: the full batch, as in the book)",
    )
    t.add_argument(
        "--seed",
        type=int,
        default=0,
        help="seed of the initial weights and the shuffles, and of the data unless "
        "--data-seed is given (default: %(default)s)",
    )
    t.add_argument(
        "--data-seed",
        type=int,
        metavar="S",
        help="seed of the generated data and of the validation split (default: --seed)",
    )
    t.add_argument(
        "--grads",
        choices=("autodiff", "manual"),
        default="autodiff",
        help="gradients from jax.grad or the hand-written backprop (default: %(default)s)",
    )
    t.add_argument("--out", metavar="DIR", help="output directory (default: runs/<data name>)")
    t.add_argument(
        "--checkpoint-every",
        type=int,
        default=1000,
        metavar="E",
        help="write the checkpoint every E epochs (default: %(default)s)",
    )
    t.add_argument(
        "--resume",
        action="store_true",
        help="continue the run whose checkpoint is in --out, with its settings",
    )
    t.add_argument("--no-plots", action="store_true", help="do not draw PNG plots")
    t.add_argument("--no-progress", action="store_true", help="no progress bar")
    e = p.add_argument_group(
        "many models at once (one compiled program; see jaxmlp.fit_many)",
        "Each combination of the --sweep values and the seeds is one model (seeds vary fastest);\n"
        "model k equals 'jaxmlp train --seed S_k --data-seed SEED' with its values. Not with\n"
        "--resume: continue one model with --resume --out DIR/model_<k>.",
    )
    e.add_argument(
        "--seeds",
        type=int,
        default=1,
        metavar="N",
        help="train N models with seeds seed, seed+1, ..., seed+N-1 (their initial weights "
        "and shuffles), all on the data of --seed or --data-seed (default: %(default)s)",
    )
    e.add_argument(
        "--sweep",
        action="append",
        metavar="NAME=V1,V2,...",
        help="one model per value; repeat for a grid (the Cartesian product, times --seeds). "
        "NAME: " + ", ".join(SWEEPABLE) + " (those of the run's optimizer and schedule)",
    )
    p.set_defaults(run=run_train, command_parser=p)


def _fail(message: str) -> int:
    print(f"jaxmlp train: error: {message}", file=sys.stderr)
    return 2


def run_train(args: argparse.Namespace) -> int:
    """Run ``jaxmlp train`` with parsed `args`; return the exit status."""
    try:
        out = args.out or os.path.join("runs", _data_name(args.data))
        if args.epochs < 0:
            raise UsageError(f"--epochs must be >= 0; got {args.epochs}")
        if args.checkpoint_every < 1:
            raise UsageError(f"--checkpoint-every must be >= 1; got {args.checkpoint_every}")
        for name in ("lr", "decay", "weight_decay"):
            value = getattr(args, name)
            if not value >= 0:
                raise UsageError(f"--{name.replace('_', '-')} must be >= 0; got {value}")
        # The many-model path lives in its own module, which imports this one's helpers.
        from jaxmlp import train_many_cli

        many = train_many_cli.many_models(args)
    except UsageError as err:
        return _fail(str(err))
    if many:
        return train_many_cli.run_many(args, out)
    try:
        history: dict[str, np.ndarray] = {}
        if args.resume:
            ck, config, history = _load_run(out)
            for k in RUN_KEYS:
                setattr(args, k, config[k])
        run = _setup(args)
        if args.resume:
            params, state, key = ck.params, ck.opt_state, ck.key
            if ck.net != run["net"]:
                raise UsageError(f"the checkpoint in {out} holds {ck.net}, not {run['net']}")
        else:
            params = init_params(run["init_key"], run["net"], scheme=args.init)
            state, key = run["opt"].init(params), run["shuffle_key"]
        os.makedirs(out, exist_ok=True)
    except (ValueError, TypeError, FileNotFoundError, ImportError, KeyError) as err:
        return _fail(str(err))

    done = int(history["epoch"][-1]) if history else 0
    config = {k: getattr(args, k) for k in RUN_KEYS}
    net, opt = run["net"], run["opt"]
    kw = dict(
        loss=run["loss"],
        reg=run["reg"],
        batch_size=args.batch_size,
        key=key,
        validation=run["validation"],
        grads=args.grads,
        progress=False,
    )
    bar = None
    if not args.no_progress and args.epochs > done:
        from tqdm.auto import tqdm

        bar = tqdm(total=args.epochs, initial=done, unit="epoch", desc="jaxmlp train")
    start, diverged, segment = time.perf_counter(), None, 10
    while done < args.epochs:
        next_ckpt = (done // args.checkpoint_every + 1) * args.checkpoint_every
        n = min(segment, args.epochs - done, next_ckpt - done)
        t0 = time.perf_counter()
        with warnings.catch_warnings():
            # A divergence is reported below, once, with the exit status.
            warnings.simplefilter("ignore", RuntimeWarning)
            result = fit(net, params, opt, run["x"], run["y"], epochs=n, opt_state=state,
                         initial_epoch=done, **kw)  # fmt: skip
        params, state = result.params, result.opt_state
        history = _append(history, result.history)
        done = int(history["epoch"][-1]) if len(history["epoch"]) else done
        if bar is not None:
            bar.update(len(result.history["epoch"]))
            bar.set_postfix(_postfix(history), refresh=False)
        final = bool(result.stop_reason) or done >= args.epochs
        if final or done == next_ckpt:
            _save_run(out, net, params, state, key, config, history, run, final=final)
        if result.stop_reason:
            diverged = result.stop_reason
            break
        elapsed = time.perf_counter() - t0
        segment = max(1, min(10 * segment, int(n * 0.5 / max(elapsed, 1e-6))))
    if bar is not None:
        bar.close()
    seconds = time.perf_counter() - start
    if not history:
        _save_run(out, net, params, state, key, config, {"epoch": np.zeros(0, int)}, run)
    _report(out, net, params, history, run, args, seconds)
    if diverged:
        print(f"jaxmlp train: {diverged}", file=sys.stderr)
        return 1
    return 0


def _data_name(data: str) -> str:
    return os.path.splitext(os.path.basename(data))[0] or "data"


def _keys(seed: int) -> jax.Array:
    """The five keys of a run: data, validation draw, validation split, init and shuffles."""
    return jax.random.split(jax.random.key(seed), 5)


def _setup(args: argparse.Namespace, warmup_always: bool = False) -> dict[str, Any]:
    """Data, net, loss, regularization and optimizer from the options."""
    _, _, _, init_key, shuffle_key = _keys(args.seed)
    # --data-seed draws the data as --seed would have: with both equal, one run's keys.
    data_key, val_key, split_key, _, _ = _keys(
        args.seed if args.data_seed is None else args.data_seed
    )
    x, y, validation = _data(args, data_key, val_key, split_key)
    loss = args.loss or ("categorical_crossentropy" if np.ndim(y) == 1 else "mse")
    if loss == "categorical_crossentropy":
        if np.ndim(y) != 1:
            raise UsageError("--loss categorical_crossentropy needs integer class labels")
        out_features = int(max(np.max(y), np.max(validation[1]) if validation else 0)) + 1
    else:
        out_features = int(np.shape(y)[1]) if np.ndim(y) == 2 else 1
        if np.ndim(y) == 1:
            y = jnp.asarray(y, jnp.result_type(float))[:, None]
            if validation:
                validation = (validation[0], jnp.asarray(validation[1], y.dtype)[:, None])
    hidden = tuple(int(v) for v in args.hidden.split(",") if v.strip()) if args.hidden else ()
    sizes = (int(np.shape(x)[1]), *hidden, out_features)
    if args.activations:
        acts = tuple(a.strip() for a in args.activations.split(","))
    else:
        acts = ("relu",) * len(hidden) + (_losses.FUSED.get(loss, "linear"),)
    net = MLP(sizes, acts)
    # Data errors now, as one line, rather than from inside the training loop.
    for xs, ys in [(x, y)] + ([validation] if validation else []):
        check_problem(net, xs, ys, loss)
        check_inputs(net, xs)
    reg = _regularization(args, net.n_layers)
    batches = math.ceil(len(x) / min(args.batch_size or len(x), len(x)))
    total_steps = max(1, args.epochs * batches)
    opt = _optimizer(args, total_steps, warmup_always)
    return dict(
        net=net,
        loss=loss,
        reg=reg,
        opt=opt,
        total_steps=total_steps,
        x=x,
        y=y,
        validation=validation,
        init_key=init_key,
        shuffle_key=shuffle_key,
    )


def _data(args, data_key, val_key, split_key):
    name = args.data
    if name in GENERATED:
        samples = args.samples or (1000 if name == "sine" else 100)
        val_samples = samples if args.val_samples is None else args.val_samples
        if name == "sine":
            # The book validates its sine model on the same deterministic grid.
            x, y = datasets.sine(samples)
            validation = datasets.sine(val_samples) if val_samples else None
        else:
            make = datasets.spiral if name == "spiral" else datasets.vertical
            x, y = make(data_key, samples, args.classes)
            validation = make(val_key, val_samples, args.classes) if val_samples else None
        standardize = args.standardize == "yes"
    else:
        if name == "digits":
            x, y = datasets.digits()
        elif os.path.splitext(name)[1].lower() in (".npz", ".csv"):
            x, y = datasets.load_arrays(name)
        else:
            raise UsageError(
                f"--data must be one of spiral, vertical, sine, digits, or a .npz/.csv file; "
                f"got {name!r}"
            )
        fraction = 0.2 if args.val_fraction is None else args.val_fraction
        if fraction:
            (x, y), validation = datasets.train_val_split(split_key, x, y, fraction)
        else:
            validation = None
        standardize = args.standardize != "no"
    if standardize:
        x, stats = datasets.standardize(x)
        if validation:
            validation = (datasets.standardize(validation[0], *stats)[0], validation[1])
    return jnp.asarray(x), jnp.asarray(y), validation


def _regularization(args, n_layers: int, **strengths: Any):
    """One `Regularization` per layer; `strengths` (e.g. one λ per model) replace the options."""
    which = args.reg_layers.strip()
    if which == "all":
        layers = set(range(n_layers))
    elif which == "hidden":
        layers = set(range(n_layers - 1))
    else:
        try:
            layers = {int(v) for v in which.split(",")}
        except ValueError:
            raise UsageError(
                f"--reg-layers must be hidden, all or layer indices; got {which!r}"
            ) from None
        bad = sorted(i for i in layers if not 0 <= i < n_layers)
        if bad:
            raise UsageError(f"--reg-layers: no layer {bad[0]} in a net of {n_layers} layers")
    r = Regularization(**{name: strengths.get(name, getattr(args, name)) for name in STRENGTHS})
    return tuple(r if i in layers else None for i in range(n_layers))


def _optimizer(args, total_steps: int, warmup_always: bool = False):
    """The optimizer and schedule of the options; warmup_always wraps even a 0-step warm-up.

    A 0-step `schedules.warmup` gives the wrapped schedule's rates exactly; a sweep of --warmup
    that includes 0 needs it so that every model's state has the same structure.
    """
    steps = args.decay_steps or total_steps
    if args.schedule == "inverse_time":
        lr = schedules.inverse_time(args.lr, args.decay)
    elif args.schedule == "exponential":
        lr = schedules.exponential(args.lr, args.decay_rate, transition_steps=steps)
    elif args.schedule == "cosine":
        lr = schedules.cosine(args.lr, steps)
    else:
        lr = schedules.constant(args.lr)
    if args.warmup or warmup_always:
        lr = schedules.warmup(lr, args.warmup)
    eps = dict(eps=args.eps, eps_root=args.eps_root)
    if args.optimizer == "sgd":
        return _optim.sgd(lr, momentum=args.momentum, nesterov=args.nesterov)
    if args.optimizer == "adagrad":
        return _optim.adagrad(lr, **eps)
    if args.optimizer == "rmsprop":
        return _optim.rmsprop(
            lr, rho=args.rho, centered=args.centered, momentum=args.momentum, **eps
        )
    adam = dict(b1=args.b1, b2=args.b2, amsgrad=args.amsgrad, **eps)
    if args.optimizer == "adamw":
        return _optim.adamw(lr, weight_decay=args.weight_decay, **adam)
    return _optim.adam(lr, **adam)


def _append(history: dict[str, np.ndarray], new: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    if not history:
        return dict(new)
    return {k: np.concatenate([history[k], new[k]]) for k in new}


def _postfix(history: dict[str, np.ndarray]) -> dict[str, str]:
    out = {"loss": f"{history['loss'][-1]:.3f}", "acc": f"{history['accuracy'][-1]:.3f}"}
    if "val_accuracy" in history:
        out["val_acc"] = f"{history['val_accuracy'][-1]:.3f}"
    return out


def _save_run(out, net, params, state, key, config, history, run, *, final: bool = True) -> None:
    """history.json (and metrics.csv when `final`) first, then the checkpoint that points at them.

    `--resume` needs history.json beside the checkpoint; metrics.csv is for people, and writing
    it whole at every checkpoint of a long run would cost more than the training.
    """
    epoch = int(history["epoch"][-1]) if len(history["epoch"]) else 0
    _write_json(
        os.path.join(out, "history.json"),
        {
            "config": config,
            "net": {"sizes": list(net.sizes), "activations": list(net.activations)},
            "loss": run["loss"],
            "history": {k: np.asarray(v).tolist() for k, v in history.items()},
        },
    )
    if final:
        _write_csv(os.path.join(out, "metrics.csv"), history)
    checkpoint.save(
        os.path.join(out, "checkpoint.npz"),
        net,
        params,
        state,
        key=key,
        metadata={"epoch": epoch, "config": config},
    )


def _write_json(path: str, obj: Any) -> None:
    tmp = path + ".tmp"
    text = json.dumps(obj)  # one shot: the C encoder (json.dump streams through Python code)
    with open(tmp, "w") as f:
        f.write(text)
    os.replace(tmp, path)


def _csv_columns(history: dict[str, np.ndarray]) -> tuple[list[str], list[np.ndarray]]:
    """The CSV header and columns of a history: per-layer fields become ``name_<layer>``."""
    columns, header = [], []
    for k, v in history.items():
        v = np.asarray(v)
        if v.ndim == 1:
            columns.append(v)
            header.append(k)
        else:
            for layer in range(v.shape[1]):
                columns.append(v[:, layer])
                header.append(f"{k}_{layer}")
    return header, columns


def _csv_row(header: list[str], row: Any) -> list[Any]:
    return [int(c) if h == "epoch" else f"{c:.7g}" for h, c in zip(header, row)]


def _write_csv(path: str, history: dict[str, np.ndarray]) -> None:
    header, columns = _csv_columns(history)
    tmp = path + ".tmp"
    with open(tmp, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(header)
        for row in zip(*columns):
            w.writerow(_csv_row(header, row))
    os.replace(tmp, path)


def _load_run(out: str):
    path = os.path.join(out, "checkpoint.npz")
    if not os.path.exists(path):
        raise FileNotFoundError(f"--resume: no checkpoint in {out} (looked for {path})")
    ck = checkpoint.load(path)
    config = ck.metadata.get("config")
    if isinstance(config, dict):
        config.setdefault("data_seed", None)  # checkpoints from before --data-seed
    if not isinstance(config, dict) or any(k not in config for k in RUN_KEYS):
        raise UsageError(f"--resume: {path} was not written by 'jaxmlp train'")
    epoch = int(ck.metadata.get("epoch", 0))
    with open(os.path.join(out, "history.json")) as f:
        saved = json.load(f)["history"]
    history = {k: np.asarray(v) for k, v in saved.items()}
    if len(history.get("epoch", [])) < epoch:
        raise UsageError(f"--resume: {out}/history.json stops before the checkpoint's epoch")
    keep = np.asarray(history["epoch"]) <= epoch
    history = {k: v[keep] for k, v in history.items()} if epoch else {}
    return ck, config, history


def _report(out, net, params, history, run, args, seconds) -> None:
    if history and len(history["epoch"]):
        h = {k: v[-1] for k, v in history.items()}
        print(
            f"epoch {int(h['epoch'])}, acc {h['accuracy']:.3f}, loss {h['loss']:.3f} "
            f"(data {h['data_loss']:.3f}, reg {h['penalty']:.3f}), lr {h['learning_rate']:.6g}"
        )
    if run["validation"] is not None:
        xv, yv = run["validation"]
        ev = evaluate(net, params, xv, yv, loss=run["loss"], reg=run["reg"])
        print(f"validation, acc {ev['accuracy']:.3f}, loss {ev['data_loss']:.3f}")
    what = "accuracy" if task_of(run["loss"]) == "classification" else "regression accuracy"
    print(f"{net}; {what} as in the book; {seconds:.1f} s; outputs in {out}/")
    if args.no_plots:
        return
    try:
        from jaxmlp import plotting

        if history and len(history["epoch"]):
            plotting.plot_history(history, os.path.join(out, "curves.png"))
        if net.in_features == 2 and task_of(run["loss"]) == "classification":
            x, y = run["validation"] or (run["x"], run["y"])
            plotting.plot_decision_boundary(
                net,
                params,
                x,
                y,
                os.path.join(out, "decision_boundary.png"),
                title="validation data",
            )
    except ImportError as err:
        print(f"jaxmlp train: no plots: {err}", file=sys.stderr)
