import csv
import json
import re
import subprocess
import sys

import chex
import numpy as np
import pytest

import jaxmlp as jm
from jaxmlp.cli import main

OUTPUTS = {"metrics.csv", "history.json", "checkpoint.npz", "curves.png", "decision_boundary.png"}


def read_csv(path):
    with open(path) as f:
        rows = list(csv.reader(f))
    return rows[0], np.array(rows[1:], dtype=float)


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
    ):
        assert option in help_text
