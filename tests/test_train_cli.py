import csv
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import chex
import jax
import numpy as np
import pytest
import scipy.stats

import jaxmlp as jm
from jaxmlp.cli import main
from jaxmlp.cli import train as train_command

OUTPUTS = {"metrics.csv", "history.json", "checkpoint.npz", "curves.png", "decision_boundary.png",
           "summary.csv", "summary.json"}  # fmt: skip


def read_csv(path):
    """The header and the numbers of a CSV; NaN for an empty cell or a swept ``full`` batch."""
    with open(path) as f:
        rows = list(csv.reader(f))
    cells = [[np.nan if c in ("", "full") else float(c) for c in r] for r in rows[1:]]
    return rows[0], np.array(cells, dtype=float)


def test_defaults_write_every_output(tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["train", "--epochs", "5", "--out", str(out), "--no-progress"]) == 0
    assert {p.name for p in out.iterdir()} == OUTPUTS
    header, rows = read_csv(out / "metrics.csv")
    assert header[:7] == [
        "epoch",
        "loss",
        "data_loss",
        "penalty",
        "accuracy",
        "val_loss",
        "val_accuracy",
    ]
    assert {"learning_rate", "w_l1_0", "w_l1_1", "w_l2_1", "w_zeros_0"} <= set(header)
    np.testing.assert_array_equal(rows[:, 0], [1, 2, 3, 4, 5])
    saved = json.loads((out / "history.json").read_text())
    # The book's chapter-14 setting is the default.
    assert saved["net"] == {"sizes": [2, 64, 3], "activations": ["relu", "softmax"]}
    assert saved["loss"] == "categorical_crossentropy"
    c = saved["config"]
    assert (c["optimizer"], c["lr"], c["decay"], c["eps"]) == ("adam", 0.02, 5e-7, 1e-7)
    assert (c["l2w"], c["l2b"], c["reg_layers"], c["epochs"] if "epochs" in c else 5) == (
        5e-4,
        5e-4,
        "hidden",
        5,
    )
    np.testing.assert_allclose(saved["history"]["loss"], rows[:, 1], rtol=1e-6)
    ck = jm.load(out / "checkpoint.npz")
    assert ck.metadata["epoch"] == 5 and int(ck.opt_state.count) == 5
    # L2 on the hidden layer only: the penalty is that of the first layer's parameters.
    p0 = ck.params[0]
    np.testing.assert_allclose(saved["history"]["penalty"][-1] > 0, True)
    np.testing.assert_allclose(
        float(jm.penalty(ck.params, (jm.Regularization(l2w=5e-4, l2b=5e-4), None))),
        5e-4 * float((p0["W"] ** 2).sum() + (p0["b"] ** 2).sum()),
        rtol=1e-6,
    )
    printed = capsys.readouterr().out
    assert "epoch 5, acc " in printed and "validation, acc " in printed


def test_chapter_14_shortened(tmp_path, capsys):
    """The book's experiment, 1000 of its 10000 epochs: well on its way to 0.95 / 0.83."""
    out = tmp_path / "ch14"
    assert (
        main(["train", "--epochs", "1000", "--out", str(out), "--no-progress", "--no-plots"]) == 0
    )
    _, rows = read_csv(out / "metrics.csv")
    acc, val_acc = rows[-1, 4], rows[-1, 6]
    assert acc >= 0.85, acc
    assert val_acc >= 0.75, val_acc
    assert rows[-1, 1] < 0.5 * rows[0, 1]


def test_resume_continues_bit_exactly(tmp_path):
    common = ["train", "--no-progress", "--no-plots", "--batch-size", "64", "--hidden", "16"]
    straight, split = tmp_path / "straight", tmp_path / "split"
    assert main([*common, "--epochs", "7", "--out", str(straight)]) == 0
    assert main([*common, "--epochs", "4", "--checkpoint-every", "2", "--out", str(split)]) == 0
    # The resumed run takes its settings from the checkpoint, whatever else is given.
    assert (
        main(
            [
                "train",
                "--resume",
                "--epochs",
                "7",
                "--out",
                str(split),
                "--no-progress",
                "--no-plots",
                "--lr",
                "5",
            ]
        )
        == 0
    )
    assert (split / "metrics.csv").read_text() == (straight / "metrics.csv").read_text()
    a, b = jm.load(straight / "checkpoint.npz"), jm.load(split / "checkpoint.npz")
    chex.assert_trees_all_equal((a.params, a.opt_state), (b.params, b.opt_state))


def test_other_data_sets(tmp_path):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(40, 3))
    y = (x[:, 0] > 0).astype(int)
    np.savez(tmp_path / "d.npz", x=x, y=y)
    assert (
        main(
            [
                "train",
                "--data",
                str(tmp_path / "d.npz"),
                "--epochs",
                "3",
                "--no-progress",
                "--out",
                str(tmp_path / "npz"),
            ]
        )
        == 0
    )
    saved = json.loads((tmp_path / "npz" / "history.json").read_text())
    assert saved["net"]["sizes"] == [3, 64, 2]
    assert len(saved["history"]["val_accuracy"]) == 3  # 20% held out
    assert not (tmp_path / "npz" / "decision_boundary.png").exists()  # 3-D inputs
    assert (
        main(
            [
                "train",
                "--data",
                "sine",
                "--samples",
                "50",
                "--epochs",
                "3",
                "--no-progress",
                "--out",
                str(tmp_path / "sine"),
                "--no-plots",
            ]
        )
        == 0
    )
    saved = json.loads((tmp_path / "sine" / "history.json").read_text())
    assert saved["loss"] == "mse" and saved["net"]["activations"] == ["relu", "linear"]
    assert (
        main(
            [
                "train",
                "--data",
                "digits",
                "--epochs",
                "2",
                "--no-progress",
                "--no-plots",
                "--hidden",
                "32",
                "--batch-size",
                "128",
                "--optimizer",
                "sgd",
                "--lr",
                "0.1",
                "--momentum",
                "0.9",
                "--schedule",
                "constant",
                "--out",
                str(tmp_path / "digits"),
            ]
        )
        == 0
    )
    saved = json.loads((tmp_path / "digits" / "history.json").read_text())
    assert saved["net"]["sizes"] == [64, 32, 10]


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--optimizer", "lbfgs"], r"argument --optimizer: invalid choice: 'lbfgs'"),
        (["--epochs", "-3"], r"--epochs must be >= 0; got -3"),
        (["--data", "missing.csv"], r"data file not found: missing.csv"),
        (["--data", "mnist"], r"--data must be one of spiral, vertical, sine, digits"),
        (["--l2w", "-1"], r"Regularization.l2w must be >= 0; got -1.0"),
        (["--lr", "-0.1"], r"--lr must be >= 0; got -0.1"),
        (["--activations", "relu,gelu"], r"unknown activations\[1\] 'gelu'"),
        (["--resume"], r"--resume: no checkpoint in"),
        (["--reg-layers", "5"], r"--reg-layers: no layer 5 in a net of 2 layers"),
        (["--loss", "binary_crossentropy"], r"targets in \[0, 1\]; got values in \[0.0, 2.0\]"),
    ],
    ids=[
        "unknown_optimizer",
        "negative_epochs",
        "missing_file",
        "unknown_data",
        "negative_strength",
        "negative_lr",
        "unknown_activation",
        "resume_nothing",
        "reg_layer",
        "bce_on_three_classes",
    ],
)
def test_bad_options_exit_2_with_one_line(tmp_path, capsys, argv, message):
    code = main(
        [
            "train",
            "--out",
            str(tmp_path / "o"),
            "--epochs",
            "1",
            "--no-progress",
            "--no-plots",
            *argv,
        ]
    )
    err = capsys.readouterr().err
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in err, err
    assert re.search(message, lines[0]), lines[0]


def test_divergence_exits_1_and_keeps_the_last_good_checkpoint(tmp_path, capsys):
    out = tmp_path / "div"
    code = main(
        [
            "train",
            "--optimizer",
            "sgd",
            "--lr",
            "1e30",
            "--schedule",
            "constant",
            "--epochs",
            "50",
            "--out",
            str(out),
            "--no-progress",
            "--no-plots",
        ]
    )
    assert code == 1
    assert "training diverged at epoch" in capsys.readouterr().err
    ck = jm.load(out / "checkpoint.npz")
    chex.assert_tree_all_finite(ck.params)


def test_python_dash_m_runs_train(tmp_path):
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "jaxmlp",
            "train",
            "--epochs",
            "2",
            "--no-progress",
            "--no-plots",
            "--out",
            str(tmp_path / "m"),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    assert "epoch 2, acc" in proc.stdout
    help_text = subprocess.run(
        [sys.executable, "-m", "jaxmlp", "train", "--help"],
        capture_output=True,
        text=True,
        timeout=60,
    ).stdout
    for option in (
        "--data",
        "--hidden",
        "--loss",
        "--optimizer",
        "--schedule",
        "--l2w",
        "--epochs",
        "--batch-size",
        "--seed",
        "--out",
        "--resume",
        "--seeds",
        "--sweep",
        "--data-seed",
        "--preset",
        "--val-data",
        "--test-data",
        "--standardize-targets",
        "--baseline",
    ):
        assert option in help_text
    words = " ".join(help_text.split())
    assert "(default: 0.02 with --preset book, 0.001 with --preset general)" in words
    assert "width, depth, hidden, batch_size: one compiled program per value" in words


# Many models at once: --seeds and --sweep. Small runs: 60 examples in batches of 25 (a short
# last batch, three shuffled batches per epoch), a 2-8-3 net, 4 epochs.
SMALL = ["--samples", "20", "--hidden", "8", "--batch-size", "25", "--epochs", "4",
         "--no-progress"]  # fmt: skip


def train(out, *argv, plots=False):
    return main(["train", *SMALL, "--out", str(out), *argv, *([] if plots else ["--no-plots"])])


def model_rows(out, k):
    """Model k's rows of a many-model metrics.csv, without the model/seed/swept columns."""
    header, rows = read_csv(out / "metrics.csv")
    start = header.index("epoch")
    return header[start:], rows[rows[:, 0] == k][:, start:]


def assert_model_equals_single(many_out, k, single_out, rtol=2e-5, atol=1e-6):
    header, got = model_rows(many_out, k)
    single_header, want = read_csv(single_out / "metrics.csv")
    assert header == single_header
    np.testing.assert_array_equal(got[:, 0], want[:, 0])
    np.testing.assert_allclose(got, want, rtol=rtol, atol=atol, err_msg=f"model {k}")
    a = jm.load(many_out / f"model_{k}" / "checkpoint.npz")
    b = jm.load(single_out / "checkpoint.npz")
    chex.assert_trees_all_close(a.params, b.params, rtol=rtol, atol=atol)
    chex.assert_trees_all_close(a.opt_state, b.opt_state, rtol=rtol, atol=atol)
    # The same epoch and settings: the model's checkpoint is the single run's.
    assert a.metadata["epoch"] == b.metadata["epoch"]
    single = b.metadata["config"]
    mine = {k: v for k, v in a.metadata["config"].items() if k != "no_plots"}  # an output choice
    single = {k: v for k, v in single.items() if k != "no_plots"}
    assert mine == {**single, "data_seed": single["data_seed"] or single["seed"]}
    np.testing.assert_array_equal(jax.random.key_data(a.key), jax.random.key_data(b.key))


def test_seeds_give_the_models_of_single_runs_with_those_seeds(tmp_path, capsys):
    many = tmp_path / "many"
    assert train(many, "--seed", "5", "--seeds", "3") == 0
    printed = capsys.readouterr().out
    # Model k: weights and shuffles from seed 5 + k, the data of seed 5. Model 0 is the plain
    # run with --seed 5 (--seeds 1 is a single run); the others name the data seed.
    singles = [tmp_path / f"single{k}" for k in range(3)]
    assert train(singles[0], "--seed", "5", "--seeds", "1") == 0
    assert not (singles[0] / "model_0").exists()
    for k in (1, 2):
        assert train(singles[k], "--seed", str(5 + k), "--data-seed", "5") == 0
    for k in range(3):
        assert_model_equals_single(many, k, singles[k])
    # Three different models, not one three times.
    w = [jm.load(many / f"model_{k}" / "checkpoint.npz").params[0]["W"] for k in range(3)]
    assert not np.allclose(w[0], w[1]) and not np.allclose(w[1], w[2])
    saved = json.loads((many / "history.json").read_text())
    assert saved["config"]["seeds"] == [5, 6, 7] and saved["config"]["data_seed"] == 5
    assert [m["seed"] for m in saved["models"]] == [5, 6, 7]
    single = json.loads((singles[2] / "history.json").read_text())["history"]
    np.testing.assert_allclose(saved["models"][2]["history"]["val_loss"], single["val_loss"],
                               rtol=2e-5)  # fmt: skip
    assert saved["models"][2]["final"]["val_accuracy"] == single["val_accuracy"][-1]
    # The table: a header, one line per model, then the mean and 95% interval over the seeds.
    lines = printed.splitlines()
    assert lines[0].split() == ["model", "seed", "acc", "loss", "val_acc", "val_loss"]
    _, rows = read_csv(many / "metrics.csv")
    for k in range(3):
        cells = lines[1 + k].split()
        assert cells[:2] == [str(k), str(5 + k)]
        last = rows[rows[:, 0] == k][-1]
        np.testing.assert_allclose([float(c) for c in cells[2:]], last[[6, 3, 8, 7]], atol=6e-4)
    assert lines[4].startswith("mean [95% interval] over 3 seeds")
    val_acc = rows[rows[:, 2] == 4][:, 8]  # epoch 4 of each model
    half = scipy.stats.t.ppf(0.975, 2) * val_acc.std(ddof=1) / np.sqrt(3)
    low, high = val_acc.mean() - half, val_acc.mean() + half
    assert f"val_acc {val_acc.mean():.3f} [{low:.3f}, {high:.3f}]" in lines[5]
    # A model's directory is a single run's: --resume continues that model alone.
    for out in (many / "model_1", singles[1]):
        resume = ["train", "--resume", "--epochs", "6", "--out", str(out), "--no-progress"]
        assert main([*resume, "--no-plots"]) == 0
    _, got = read_csv(many / "model_1" / "metrics.csv")
    _, want = read_csv(singles[1] / "metrics.csv")
    np.testing.assert_array_equal(got[:, 0], [1, 2, 3, 4, 5, 6])
    np.testing.assert_allclose(got, want, rtol=2e-5, atol=1e-6)


def test_a_sweep_grid_gives_the_models_of_single_runs(tmp_path, capsys):
    many = tmp_path / "many"
    assert train(many, "--sweep", "l2w=0,1e-3", "--sweep", "lr=0.01,0.02", plots=True) == 0
    printed = capsys.readouterr().out
    assert {p.name for p in many.iterdir()} == {
        "metrics.csv", "history.json", "curves.png", "decision_boundary.png",
        "summary.csv", "summary.json", "model_0", "model_1", "model_2", "model_3",
    }  # fmt: skip
    assert {p.name for p in (many / "model_2").iterdir()} == {
        "checkpoint.npz",
        "history.json",
        "metrics.csv",
    }
    header, rows = read_csv(many / "metrics.csv")
    assert header[:5] == ["model", "seed", "l2w", "lr", "epoch"]
    grid = [(0.0, 0.01), (0.0, 0.02), (1e-3, 0.01), (1e-3, 0.02)]  # the first sweep outermost
    for k, (l2w, lr) in enumerate(grid):
        mine = rows[rows[:, 0] == k]
        np.testing.assert_array_equal(mine[:, 1:5], [[0, l2w, lr, e] for e in (1, 2, 3, 4)])
        single = tmp_path / f"single{k}"
        assert train(single, "--l2w", str(l2w), "--lr", str(lr)) == 0
        assert_model_equals_single(many, k, single)
    saved = json.loads((many / "history.json").read_text())
    assert saved["config"]["sweep"] == {"l2w": [0.0, 1e-3], "lr": [0.01, 0.02]}
    assert [(m["l2w"], m["lr"]) for m in saved["models"]] == grid
    assert all(m["stop_reason"] is None and m["epochs_run"] == 4 for m in saved["models"])
    assert set(saved["models"][0]["final"]) == {
        "accuracy", "loss", "data_loss", "penalty", "val_accuracy", "val_loss",
    }  # fmt: skip
    # The sweep did something: the L2 models' weights are smaller at the same learning rate.
    w = [jm.load(many / f"model_{k}" / "checkpoint.npz").params[0]["W"] for k in range(4)]
    assert float((w[2] ** 2).sum()) < float((w[0] ** 2).sum())
    lines = printed.splitlines()
    assert lines[0].split() == ["model", "seed", "l2w", "lr", "acc", "loss", "val_acc", "val_loss"]
    assert lines[3].split()[:4] == ["2", "0", "0.001", "0.01"]
    assert "4 models of MLP" in lines[5] and "mean ±" not in printed  # one seed: no spread


def test_optimizer_hyperparameters_and_a_warmup_from_zero_sweep_exactly(tmp_path):
    """Values held in the optimizer state (momentum) and the schedule (warm-up, 0 included)."""
    many = tmp_path / "many"
    sgd = ["--optimizer", "sgd", "--lr", "0.1", "--schedule", "constant"]
    assert train(many, *sgd, "--sweep", "momentum=0,0.9", "--sweep", "warmup=0,3") == 0
    # Models (0, 0), (0, 3), (0.9, 0), (0.9, 3); model 2's 0-step warm-up is no warm-up at all.
    for k, (momentum, warmup) in ((1, (0, 3)), (2, (0.9, 0))):
        single = tmp_path / f"single{k}"
        assert train(single, *sgd, "--momentum", str(momentum), "--warmup", str(warmup)) == 0
        assert_model_equals_single(many, k, single)
    # The rate of each epoch's last update (steps 2, 5, 8, 11): the warm-up ends at step 3.
    header, rows = model_rows(many, 1)
    lr = header.index("learning_rate")
    np.testing.assert_allclose(rows[:, lr], [0.2 / 3, 0.1, 0.1, 0.1], rtol=1e-6)
    np.testing.assert_allclose(model_rows(many, 2)[1][:, lr], [0.1] * 4, rtol=1e-7)


def test_a_diverging_member_exits_1_and_the_others_are_saved(tmp_path, capsys):
    out = tmp_path / "div"
    argv = ["--optimizer", "sgd", "--schedule", "constant", "--sweep", "lr=0.1,1e30,0.2"]
    assert train(out, *argv, "--epochs", "30") == 1
    captured = capsys.readouterr()
    assert re.search(r"jaxmlp train: model 1 diverged at epoch \d+", captured.err)
    assert "model 0" not in captured.err and "model 2" not in captured.err
    lines = captured.out.splitlines()
    assert re.fullmatch(r"1 +0 +1e\+30 +diverged at epoch \d+", lines[2])
    assert len(lines[1].split()) == len(lines[3].split()) == 7  # models 0 and 2: their numbers
    saved = json.loads((out / "history.json").read_text())
    runs = [m["epochs_run"] for m in saved["models"]]
    assert runs[0] == runs[2] == 30 and runs[1] < 30
    assert saved["models"][1]["stop_reason"].startswith(f"model 1 diverged at epoch {runs[1] + 1}")
    _, rows = read_csv(out / "metrics.csv")
    assert [int((rows[:, 0] == k).sum()) for k in range(3)] == runs
    ck = jm.load(out / "model_1" / "checkpoint.npz")
    chex.assert_tree_all_finite(ck.params)
    assert ck.metadata["epoch"] == runs[1]
    assert jm.load(out / "model_2" / "checkpoint.npz").metadata["epoch"] == 30


def test_structural_sweeps_run_one_program_per_group(tmp_path, capsys, monkeypatch):
    """Width and batch size change the compiled program: one fit_many per combination of them,
    each with the models of the data values (here l2w), numbered over the whole grid; every
    model equals its single run."""
    calls = []
    real = train_command.fit_many

    def counted(net, params, *args, **kw):
        calls.append((net.sizes, kw["batch_size"], len(jax.tree.leaves(params)[0])))
        return real(net, params, *args, **kw)

    monkeypatch.setattr(train_command, "fit_many", counted)
    many = tmp_path / "many"
    argv = ["--sweep", "width=4,8", "--sweep", "l2w=0,1e-3", "--sweep", "batch_size=25,full"]
    assert train(many, *argv, plots=True) == 0
    printed = capsys.readouterr().out
    assert calls == [((2, 4, 3), 25, 2), ((2, 4, 3), None, 2), ((2, 8, 3), 25, 2),
                     ((2, 8, 3), None, 2)]  # fmt: skip
    header, rows = read_csv(many / "metrics.csv")
    assert header[:6] == ["model", "seed", "width", "l2w", "batch_size", "epoch"]
    grid = [(w, l2w, b) for w in (4, 8) for l2w in (0.0, 1e-3) for b in (25, "full")]
    for k, (width, l2w, batch) in enumerate(grid):
        mine = rows[rows[:, 0] == k]
        np.testing.assert_array_equal(mine[:, 2:4], [[width, l2w]] * 4)
        assert np.isnan(mine[0, 4]) == (batch == "full")
        ck = jm.load(many / f"model_{k}" / "checkpoint.npz")
        assert ck.net.sizes == (2, width, 3) and ck.metadata["config"]["hidden"] == str(width)
    for k in (3, 4):  # (4, 1e-3, full) and (8, 0, 25)
        width, l2w, batch = grid[k]
        single = tmp_path / f"single{k}"
        options = ["--hidden", str(width), "--l2w", str(l2w), "--batch-size", str(batch)]
        assert train(single, *options) == 0
        assert_model_equals_single(many, k, single)
    lines = printed.splitlines()
    assert lines[0].split() == ["model", "seed", "width", "l2w", "batch_size", "acc", "loss",
                                "val_acc", "val_loss"]  # fmt: skip
    assert lines[4].split()[:5] == ["3", "0", "4", "0.001", "full"]
    assert lines[9].startswith("8 models of MLP(sizes=(2, 4, 3)") and "(2, 8, 3)" in lines[9]
    summary = json.loads((many / "summary.json").read_text())
    assert [s["values"] for s in summary["settings"]] == [
        {"width": w, "l2w": l2w, "batch_size": None if b == "full" else b} for w, l2w, b in grid
    ]


def test_a_depth_sweep_leaves_the_missing_layers_columns_empty(tmp_path):
    many = tmp_path / "many"
    assert train(many, "--sweep", "depth=0,2") == 0
    header, rows = read_csv(many / "metrics.csv")
    assert {"w_l1_0", "w_l1_1", "w_l1_2"} <= set(header)
    col = header.index("w_l1_2")
    assert np.isnan(rows[rows[:, 0] == 0][:, col]).all()
    assert not np.isnan(rows[rows[:, 0] == 1][:, col]).any()
    single = tmp_path / "single"
    assert train(single, "--hidden", "8,8") == 0
    got = rows[rows[:, 0] == 1][:, header.index("epoch") :]
    _, want = read_csv(single / "metrics.csv")
    np.testing.assert_allclose(got, want, rtol=2e-5, atol=1e-6)
    assert jm.load(many / "model_0" / "checkpoint.npz").net.sizes == (2, 3)


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--sweep", "init=he,glorot"], r"--sweep init: cannot sweep it \(fixed for a run: run one "
         r"command per value\); sweepable here: l1w, l1b, l2w, l2b, lr, decay, warmup, b1, b2, "
         r"eps, eps_root, width, depth, hidden, batch_size$"),
        (["--sweep", "batch_size=8,0"], r"--sweep batch_size: expected an integer >= 1 or full; "
         r"got '0'"),
        (["--sweep", "width=8,x"], r"--sweep width: expected an integer >= 1; got 'x'"),
        (["--sweep", "depth=-1"], r"--sweep depth: expected an integer >= 0; got '-1'"),
        (["--sweep", "hidden=8,8-x"], r"--sweep hidden: expected layer sizes joined by '-' such "
         r"as 64-32; got '8-x'"),
        (["--sweep", "hidden=8", "--sweep", "width=4"], r"--sweep hidden sets every layer size: "
         r"not with --sweep width or depth"),
        (["--sweep", "depth=1,2", "--activations", "relu,softmax"], r"--sweep depth or hidden "
         r"changes the number of layers: not with --activations"),
        (["--sweep", "depth=1,2", "--hidden", ""], r"--sweep depth needs a width"),
        (["--sweep", "width=4,8", "--hidden", ""], r"--sweep width sets the hidden layers' size: "
         r"--hidden '' has none"),
        (["--baseline", "l2w=0"], r"--baseline l2w: not a swept name \(swept: none\)"),
        (["--sweep", "l2w=0,1e-3", "--seeds", "2", "--baseline", "lr=0.02"], r"--baseline lr: not "
         r"a swept name \(swept: l2w\)"),
        (["--sweep", "l2w=0,1e-3", "--seeds", "2", "--baseline", "l2w=5"], r"--baseline l2w=5: "
         r"not one of the swept values 0.0, 0.001"),
        (["--sweep", "l2w=0,1e-3", "--baseline", "l2w=0"], r"--baseline compares settings paired "
         r"over their seeds: it needs --seeds 2 or more; got --seeds 1"),
        (["--sweep", "l2w=0,1e-3", "--seeds", "2", "--baseline", "l2w"], r"--baseline must be "
         r"NAME=V; got 'l2w'"),
        (["--sweep", "momentum=0,0.9"], r"--sweep momentum: cannot sweep it \(no effect with "
         r"--optimizer adam --schedule inverse_time\)"),
        (["--sweep", "decay_rate=0.5"], r"--sweep decay_rate: cannot sweep it \(no effect"),
        (["--sweep", "seed=1,2"], r"--sweep seed: cannot sweep it \(use --seeds N\)"),
        (["--sweep", "gamma=1"], r"--sweep gamma: cannot sweep it \(unknown name\)"),
        (["--sweep", "lr"], r"--sweep must be NAME=V1,V2,...; got 'lr'"),
        (["--sweep", "lr=0.1,abc"], r"--sweep lr: expected a number; got 'abc'"),
        (["--sweep", "warmup=1.5"], r"--sweep warmup: expected an integer; got '1.5'"),
        (["--sweep", "lr=0.1,nan"], r"--sweep lr: values must be finite; got 'nan'"),
        (["--sweep", "l2w=0,-1e-3"], r"--sweep l2w: values must be >= 0; got -1e-3"),
        (["--sweep", "lr=0.1", "--sweep", "lr=0.2"], r"--sweep lr given twice"),
        (["--sweep", "b1=0.9,1.5"], r"--sweep: the model with seed 0, b1=1.5: b1 must be in "
         r"\[0, 1\); got 1.5"),
        (["--seeds", "0"], r"--seeds must be >= 1; got 0"),
        (["--seeds", "2", "--resume"], r"--resume continues one run; it cannot be combined with "
         r"--seeds or --sweep"),
        (["--sweep", "l2w=0,1", "--resume"], r"--resume .* cannot be combined"),
    ],
    ids=[
        "fixed_name", "batch_size", "width", "depth", "hidden", "hidden_and_width",
        "depth_and_activations", "depth_without_width", "width_without_layers",
        "baseline_without_sweep",
        "baseline_not_swept", "baseline_not_a_value", "baseline_one_seed", "baseline_no_value",
        "not_this_optimizer", "not_this_schedule", "seed",
        "unknown_name", "no_values", "not_a_number", "not_an_integer", "nan", "negative_strength",
        "twice", "optimizer_range", "zero_seeds", "resume_seeds", "resume_sweep",
    ],
)  # fmt: skip
def test_bad_many_model_options_exit_2_with_one_line(tmp_path, capsys, argv, message):
    code = train(tmp_path / "o", *argv)
    err = capsys.readouterr().err
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in err, err
    assert re.search(message, lines[0]), lines[0]
    assert not (tmp_path / "o").exists()


def test_a_run_of_version_0_1_0_resumes_bit_exactly(tmp_path):
    """run_epoch3 was written by jaxmlp 0.1.0 (tests/data/v0.1.0/make.py), and so was
    `straight`, the same run taken to 6 epochs at once.

    Resumed here, in one go or in two, it gives the same bits; and the numbers of `straight` up
    to float32 rounding (exactly, on the machine that wrote them: XLA's CPU code, and so the
    last bits of a float32 sum, can differ between CPUs).
    """
    data = Path(__file__).parent / "data" / "v0.1.0"
    resume = ["train", "--resume", "--no-progress", "--no-plots", "--out"]
    one, two = tmp_path / "one", tmp_path / "two"
    for out in (one, two):
        shutil.copytree(data / "run_epoch3", out)
    assert main([*resume, str(one), "--epochs", "6"]) == 0
    assert main([*resume, str(two), "--epochs", "5"]) == 0
    assert main([*resume, str(two), "--epochs", "6"]) == 0
    assert (one / "metrics.csv").read_text() == (two / "metrics.csv").read_text()
    a, b = jm.load(one / "checkpoint.npz"), jm.load(two / "checkpoint.npz")
    chex.assert_trees_all_equal((a.params, a.opt_state), (b.params, b.opt_state))
    old = jm.load(data / "straight" / "checkpoint.npz")
    # The same epoch and the settings 0.1.0 saved (newer versions save more: --task, ...).
    assert a.metadata["epoch"] == old.metadata["epoch"]
    assert {k: a.metadata["config"][k] for k in old.metadata["config"]} == old.metadata["config"]
    chex.assert_trees_all_close(
        (a.params, a.opt_state), (old.params, old.opt_state), rtol=1e-5, atol=1e-8
    )
    header, rows = read_csv(one / "metrics.csv")
    old_header, old_rows = read_csv(data / "straight" / "metrics.csv")
    assert header == old_header
    np.testing.assert_allclose(rows, old_rows, rtol=1e-5, atol=1e-7)
