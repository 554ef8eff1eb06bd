"""`jaxmlp train` with early stopping, --folds and --halving, against the library and by hand.

Each fold member must equal `jaxmlp.fit` on its split (the split rebuilt from the documented
rule); early stopping must keep the best epoch and resume exactly; halving must stop the
models at their rungs in the numbers η says; the bad combinations must be one-line errors.
"""

import csv
import json

import jax
import numpy as np
import pytest

import jaxmlp as jm
from jaxmlp.cli import main
from jaxmlp.cli.config import TrainConfig
from jaxmlp.cli.data import load_data, setup
from jaxmlp.cli.models import make_groups

QUIET = ["--no-progress", "--no-plots"]


def train(out, *argv):
    return main(["train", "--out", str(out), *QUIET, *argv])


def load(path):
    with open(path) as f:
        return json.load(f)


def rows(path):
    with open(path) as f:
        return list(csv.DictReader(f))


def test_each_fold_equals_fit_on_its_split(tmp_path):
    assert train(tmp_path, "--epochs", "12", "--folds", "3", "--seeds", "2", "--batch-size",
                 "64") == 0  # fmt: skip
    saved = load(tmp_path / "history.json")
    assert [(m["seed"], m["fold"]) for m in saved["models"]] == [(s, f) for s in (0, 1)
                                                                  for f in range(3)]  # fmt: skip
    assert {r["fold"] for r in rows(tmp_path / "metrics.csv")} == {"0", "1", "2"}
    # The same data and models the command built, and the folds by the documented rule.
    config = TrainConfig(epochs=12, folds=3, seeds=2, batch_size=64, val_samples=0,
                         data_seed=0)  # fmt: skip
    from jaxmlp.cli.config import resolve_preset

    config = resolve_preset(config)
    group = make_groups(config, load_data(config), {})[0]
    problem = group.problem
    split = jm.selection.fold_rows(jax.random.fold_in(jax.random.key(0), 15),
                                   np.asarray(problem.y), 3)  # fmt: skip
    held = np.sort(np.concatenate([h for _, h in split]))
    np.testing.assert_array_equal(held, np.arange(300))
    for k in (0, 4):
        model, (train_rows, val_rows) = group.models[k], split[k % 3]
        alone = jm.fit(problem.net, model.params, model.opt, problem.x[train_rows],
                       problem.y[train_rows], loss=problem.loss, reg=group.reg, epochs=12,
                       batch_size=64, validation=(problem.x[val_rows], problem.y[val_rows]),
                       key=model.key, progress=False)  # fmt: skip
        history = saved["models"][k]["history"]
        for field in ("loss", "val_loss", "val_accuracy"):
            np.testing.assert_allclose(history[field], alone.history[field], rtol=2e-5)
    summary = load(tmp_path / "summary.json")
    assert summary["folds"] == 3 and summary["settings"][0]["n"] == 6


def test_early_stopping_keeps_the_best_epoch_and_resumes_exactly(tmp_path, capsys):
    args = ["--epochs", "300", "--early-stopping-patience", "10", "--start-from-epoch", "30",
            "--lr", "0.1", "--checkpoint-every", "20"]  # fmt: skip
    assert train(tmp_path / "whole", *args) == 0
    whole = load(tmp_path / "whole" / "history.json")
    best, ran = whole["best_epoch"], whole["epochs_run"]
    assert whole["stop_reason"].startswith("early stopping: val_loss did not improve")
    assert 100 < ran < 300 and 30 < best < ran
    h = whole["history"]
    assert h["val_loss"][best - 1] == min(h["val_loss"][30:])  # the best counted epoch kept
    assert whole["final"]["val_accuracy"] == pytest.approx(h["val_accuracy"][best - 1])
    assert "early stopping" in capsys.readouterr().out
    ck = jm.load(tmp_path / "whole" / "checkpoint.npz")
    config = TrainConfig(**{**whole["config"], "epochs": 300})
    problem = setup(config, load_data(config))
    ev = jm.evaluate(ck.net, ck.params, *problem.validation, loss=problem.loss)
    assert ev["accuracy"] == pytest.approx(h["val_accuracy"][best - 1], abs=1e-6)
    # Stopped after 100 epochs, then resumed: the same decisions and numbers.
    assert train(tmp_path / "part", *args[:1], "100", *args[2:]) == 0
    assert "early_stopping" in jm.load(tmp_path / "part" / "checkpoint.npz").extra
    assert main(["train", "--resume", "--out", str(tmp_path / "part"), "--epochs", "300",
                 *QUIET]) == 0  # fmt: skip
    part = load(tmp_path / "part" / "history.json")
    assert (part["best_epoch"], part["epochs_run"], part["stop_reason"]) == (
        best, ran, whole["stop_reason"])  # fmt: skip
    np.testing.assert_array_equal(part["history"]["val_loss"], h["val_loss"])


def test_halving_stops_models_at_their_rungs(tmp_path):
    assert train(tmp_path, "--epochs", "27", "--seeds", "3", "--sweep", "l2w=0,5e-3,5e-2",
                 "--halving", "3") == 0  # fmt: skip
    saved = load(tmp_path / "history.json")
    runs = sorted(m["epochs_run"] for m in saved["models"])
    assert runs == [3] * 6 + [9] * 2 + [27]  # rungs 3 and 9 (27/3²): 9 → 3 → 1
    assert sorted(m["rung"] for m in saved["models"]) == [0] * 6 + [1] * 2 + [2]
    for m in saved["models"]:
        if m["epochs_run"] < 27:
            assert m["stop_reason"].startswith("pruned by successive halving at rung")
    assert {r["rung"] for r in rows(tmp_path / "metrics.csv")} == {"0", "1", "2"}


def test_the_general_preset_stops_early_only_with_validation(tmp_path):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(200, 4)).astype(np.float32)
    y = (x[:, 0] + x[:, 1] > 0).astype(np.int64)
    np.savez(tmp_path / "d.npz", x=x, y=y)
    assert train(tmp_path / "a", "--data", str(tmp_path / "d.npz"), "--epochs", "3") == 0
    config = load(tmp_path / "a" / "history.json")["config"]
    assert config["early_stopping_patience"] == 20 and config["monitor"] == "val_loss"
    assert train(tmp_path / "b", "--data", str(tmp_path / "d.npz"), "--epochs", "3",
                 "--val-fraction", "0") == 0  # fmt: skip
    assert load(tmp_path / "b" / "history.json")["config"][
        "early_stopping_patience"] is None  # fmt: skip
    assert train(tmp_path / "c", "--data", str(tmp_path / "d.npz"), "--epochs", "3",
                 "--early-stopping-patience", "off") == 0  # fmt: skip
    assert load(tmp_path / "c" / "history.json")["best_epoch"] is None


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--halving", "3"], "--halving ranks several models: add --seeds N or --sweep"),
        (
            ["--halving", "3", "--seeds", "3", "--early-stopping-patience", "3"],
            "--halving decides the stops itself: it takes no --early-stopping-patience",
        ),
        (
            ["--halving", "3", "--seeds", "2", "--folds", "2"],
            "--halving ranks whole models, --folds splits each into folds: use one of them",
        ),
        (
            ["--folds", "3", "--val-samples", "50"],
            "--folds validates every model on its held-out fold: it takes no --val-fraction",
        ),
        (
            ["--early-stopping-patience", "3", "--monitor", "val_r2"],
            "--monitor must be a history field of this run (val_ fields need validation data)",
        ),
        (
            ["--early-stopping-patience", "3", "--val-samples", "0"],
            "--monitor must be a history field of this run (val_ fields need validation data): "
            "one of loss, data_loss, penalty, accuracy, learning_rate; got 'val_loss'",
        ),
        (["--early-stopping-patience", "-2"], "expected an integer >= 0 or 'off'; got '-2'"),
        (["--folds", "1"], "--folds must be >= 2; got 1"),
        (["--resume", "--folds", "3"], "--resume continues one model; it takes no --folds"),
    ],
)
def test_bad_model_selection_options_are_one_line_errors(tmp_path, capsys, argv, message):
    code = train(tmp_path, "--epochs", "2", *argv)
    err = capsys.readouterr().err
    assert code == 2
    assert message in err and len(err.strip().splitlines()) == 1
