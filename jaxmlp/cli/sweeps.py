"""``--sweep`` and ``--baseline`` of ``jaxmlp train``: the grid of models a run trains.

Two kinds of swept names. Those held as data (`jaxmlp.cli.config.SWEEPABLE`: strengths, the
learning rate, the schedule's and the optimizer's numbers) live in the regularization, the
optimizer state or the schedule, so all the models of one compiled program can differ in them.
The structural ones (`jaxmlp.cli.config.STRUCTURAL`: ``width``, ``depth``, ``hidden``,
``batch_size``) change the compiled program: `jaxmlp.cli.train` trains one program per
combination of their values (a group), each with every combination of the data values and
seeds. Models are numbered over the whole grid, the first sweep outermost and the seeds
fastest, whatever the groups.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

from jaxmlp.cli.config import MEMBER, RUN_KEYS, STRUCTURAL, SWEEPABLE, TrainConfig
from jaxmlp.cli.data import hidden_sizes


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
        if name not in allowed and name not in STRUCTURAL:
            why = _why_not_sweepable(name, config)
            raise ValueError(
                f"--sweep {name}: cannot sweep it ({why}); sweepable here: "
                f"{', '.join(allowed + list(STRUCTURAL))}"
            )
        if name in sweeps:
            raise ValueError(f"--sweep {name} given twice; give all its values in one --sweep")
        sweeps[name] = [sweep_value(name, v.strip()) for v in values.split(",")]
    _check_structure(config, sweeps)
    return sweeps


def _why_not_sweepable(name: str, config: TrainConfig) -> str:
    if name == "seed":
        return "use --seeds N"
    if name in SWEEPABLE:
        return f"no effect with --optimizer {config.optimizer} --schedule {config.schedule}"
    return "fixed for a run: run one command per value" if name in RUN_KEYS else "unknown name"


def sweep_value(name: str, raw: str) -> Any:
    """One swept value of `name`, checked: a number, or a structural value.

    Structural values: ``width`` an integer >= 1, ``depth`` >= 0, ``hidden`` sizes joined by
    ``-`` (kept as text), ``batch_size`` an integer >= 1 or ``full`` (None).
    """
    if name in STRUCTURAL:
        return _structural_value(name, raw)
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


def _structural_value(name: str, raw: str) -> Any:
    if name == "batch_size" and raw.lower() == "full":
        return None
    if name == "hidden":
        try:
            hidden_sizes(raw.replace("-", ","))
        except ValueError:
            raise ValueError(
                f"--sweep hidden: expected layer sizes joined by '-' such as 64-32; got {raw!r}"
            ) from None
        return raw
    low = 0 if name == "depth" else 1
    try:
        value = int(raw)
    except ValueError:
        value = None
    if value is None or value < low:
        full = " or full" if name == "batch_size" else ""
        raise ValueError(f"--sweep {name}: expected an integer >= {low}{full}; got {raw!r}")
    return value


def _check_structure(config: TrainConfig, sweeps: dict[str, list[Any]]) -> None:
    if "hidden" in sweeps and ({"width", "depth"} & set(sweeps)):
        raise ValueError("--sweep hidden sets every layer size: not with --sweep width or depth")
    if config.activations and ({"depth", "hidden"} & set(sweeps)):
        raise ValueError(
            "--sweep depth or hidden changes the number of layers: not with --activations "
            "(one activation per layer); the default activations follow the depth"
        )
    if "depth" in sweeps and "width" not in sweeps and not hidden_sizes(config.hidden):
        raise ValueError("--sweep depth needs a width: give --hidden N or --sweep width=...")
    if "width" in sweeps and "depth" not in sweeps and not hidden_sizes(config.hidden):
        raise ValueError("--sweep width sets the hidden layers' size: --hidden '' has none")


def structural(values: dict[str, Any]) -> dict[str, Any]:
    """The structural part of a model's swept values (the key of its compiled group)."""
    return {k: v for k, v in values.items() if k in STRUCTURAL}


def model_config(config: TrainConfig, values: dict[str, Any]) -> TrainConfig:
    """The single run's settings of a model with these seed and swept values.

    ``width`` and ``depth`` become ``--hidden``: ``width`` every hidden layer's size (as many
    layers as ``--hidden`` has), ``depth`` the number of hidden layers (of ``--hidden``'s first
    size, or the swept width).
    """
    data_values = {k: v for k, v in values.items() if k not in STRUCTURAL and k not in MEMBER[1:]}
    shape = structural(values)
    sizes = list(hidden_sizes(config.hidden))
    if "hidden" in shape:
        sizes = [int(v) for v in shape["hidden"].split("-")]
    if "width" in shape:
        sizes = [shape["width"]] * len(sizes)
    if "depth" in shape:
        sizes = [shape.get("width", sizes[0] if sizes else 0)] * shape["depth"]
    if {"hidden", "width", "depth"} & set(shape):
        data_values["hidden"] = ",".join(str(s) for s in sizes)
    if "batch_size" in shape:
        data_values["batch_size"] = shape["batch_size"]
    return dataclasses.replace(config, **data_values)


def parse_baseline(config: TrainConfig, sweeps: dict[str, list[Any]]) -> tuple[str, Any] | None:
    """``--baseline NAME=V`` as ``(name, value)``: a swept name and one of its values."""
    if config.baseline is None:
        return None
    name, sep, raw = config.baseline.partition("=")
    name = name.strip().replace("-", "_")
    if not sep or not name or not raw.strip():
        raise ValueError(f"--baseline must be NAME=V; got {config.baseline!r}")
    if name not in sweeps:
        swept = ", ".join(sweeps) or "none"
        raise ValueError(f"--baseline {name}: not a swept name (swept: {swept})")
    if config.seeds < 2:
        raise ValueError(
            f"--baseline compares settings paired over their seeds: it needs --seeds 2 or "
            f"more; got --seeds {config.seeds}"
        )
    value = sweep_value(name, raw.strip())
    if value not in sweeps[name]:
        raise ValueError(
            f"--baseline {name}={raw.strip()}: not one of the swept values "
            f"{', '.join(str(v) for v in sweeps[name])}"
        )
    return name, value
