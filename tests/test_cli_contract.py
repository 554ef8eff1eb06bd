"""`jaxmlp train` on the data users have: the task is decided by a stated rule, interrupted runs
lose nothing, and a run's saved settings and files are what the README says."""

import csv
import json
import os
import re
import signal
import subprocess
import sys
import time

import jax
import numpy as np
import pytest

import jaxmlp as jm
from jaxmlp.cli import main


def write_csv(path, x, y):
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow([f"f{i}" for i in range(x.shape[1])] + ["target"])
        for row, t in zip(x, y):
            w.writerow([*row, t])


def diabetes_like(n=120, seed=0):
    """Features and a whole-number regression target with many distinct values (25..346)."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 4)).round(4)
    y = np.clip(150 + 60 * x @ np.array([1.0, -0.5, 0.3, 0.2]) + rng.normal(0, 10, n), 25, 346)
    return x, np.round(y).astype(int)


def train(tmp_path, *args):
    out = tmp_path / "run"
    code = main(["train", "--out", str(out), "--no-progress", "--no-plots", *args])
    return code, out


def test_a_whole_number_target_with_many_values_is_regression(tmp_path, capsys):
    x, y = diabetes_like()
    assert len(np.unique(y)) > 50
    write_csv(tmp_path / "diabetes.csv", x, y)
    code, out = train(tmp_path, "--data", str(tmp_path / "diabetes.csv"), "--epochs", "5")
    assert code == 0
    printed = capsys.readouterr().out
    # (counted on the training rows: 20% are held out for validation)
    assert re.search(r"task: regression \(the target holds \d+ distinct values, more than the 50",
                     printed)  # fmt: skip
    saved = json.loads((out / "history.json").read_text())
    assert saved["net"]["sizes"] == [4, 64, 1] and saved["loss"] == "mse"
    assert saved["task"] == "regression"


def test_a_float_target_in_an_npz_is_regression(tmp_path, capsys):
    x, y = diabetes_like()
    np.savez(tmp_path / "d.npz", x=x.astype(np.float32), y=(y / 10).astype(np.float32))
    code, out = train(tmp_path, "--data", str(tmp_path / "d.npz"), "--epochs", "3")
    assert code == 0
    assert "task: regression (the target is not whole numbers" in capsys.readouterr().out
    assert json.loads((out / "history.json").read_text())["net"]["sizes"][-1] == 1


def test_a_few_whole_number_classes_are_classification(tmp_path, capsys):
    x, _ = diabetes_like()
    y = (x[:, 0] > 0).astype(int) + (x[:, 1] > 0.5).astype(int)
    write_csv(tmp_path / "c.csv", x, y)
    code, out = train(tmp_path, "--data", str(tmp_path / "c.csv"), "--epochs", "3")
    assert code == 0
    assert "task: classification (3 classes" in capsys.readouterr().out
    saved = json.loads((out / "history.json").read_text())
    assert saved["net"]["sizes"][-1] == 3 and saved["loss"] == "categorical_crossentropy"
    assert saved["classes"] == 3 and saved["config"]["classes"] is None


def test_task_overrides_the_rule(tmp_path, capsys):
    x, _ = diabetes_like()
    y = (x[:, 0] > 0).astype(int)
    write_csv(tmp_path / "c.csv", x, y)
    args = ("--data", str(tmp_path / "c.csv"), "--epochs", "2", "--task", "regression")
    code, out = train(tmp_path, *args)
    assert code == 0
    assert "task: regression (--task)" in capsys.readouterr().out
    assert json.loads((out / "history.json").read_text())["net"]["sizes"][-1] == 1


def test_classification_of_a_float_target_is_refused_without_a_problem_changing_hint(
    tmp_path, capsys
):
    x, y = diabetes_like()
    np.savez(tmp_path / "d.npz", x=x, y=y / 10)
    code, _ = train(tmp_path, "--data", str(tmp_path / "d.npz"), "--task", "classification")
    assert code == 2
    err = capsys.readouterr().err
    assert "--task classification needs whole-number class labels" in err
    assert "astype" not in err


def test_single_run_history_holds_what_the_readme_says(tmp_path):
    code, out = train(tmp_path, "--epochs", "4")
    assert code == 0
    saved = json.loads((out / "history.json").read_text())
    assert saved["epochs_run"] == 4 and saved["config"]["epochs"] == 4
    assert saved["stop_reason"] is None and saved["task"] == "classification"
    final = saved["final"]
    assert final["loss"] == saved["history"]["loss"][-1]
    assert final["val_accuracy"] == saved["history"]["val_accuracy"][-1]


def test_resume_keeps_no_plots(tmp_path):
    out = tmp_path / "run"
    assert main(["train", "--epochs", "3", "--out", str(out), "--no-progress", "--no-plots"]) == 0
    assert main(["train", "--epochs", "6", "--out", str(out), "--no-progress", "--resume"]) == 0
    assert not any(p.suffix == ".png" for p in out.iterdir())


# ---- interrupted runs ------------------------------------------------------------------------


def cli(*args, **kw):
    env = dict(os.environ, JAX_PLATFORMS="cpu")
    return subprocess.Popen([sys.executable, "-m", "jaxmlp", "train", "--no-progress", *args],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            **kw)  # fmt: skip


def leaves(tree):
    return [np.asarray(a) for a in jax.tree.leaves(tree)]


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_an_interrupted_run_saves_everything_and_resumes_bit_exactly(tmp_path, sig):
    out = tmp_path / "run"
    common = ("--hidden", "16", "--checkpoint-every", "1000000", "--batch-size", "50")
    proc = cli("--out", str(out), "--epochs", "1000000", *common)
    deadline = time.time() + 120
    while not out.exists() and time.time() < deadline:
        time.sleep(0.2)  # made once the options and data are checked, before compiling
    time.sleep(4.0)  # compiled and training
    proc.send_signal(sig)
    stdout, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 130, stderr
    lines = [line for line in stderr.splitlines() if "interrupted" in line]
    assert len(lines) == 1, stderr
    epoch = int(lines[0].split("interrupted at epoch ")[1].split(";")[0])
    assert 0 < epoch < 1000000
    assert f"resume with jaxmlp train --resume --out {out}" in lines[0]
    ck = jm.load(out / "checkpoint.npz")
    assert ck.metadata["epoch"] == epoch
    with open(out / "metrics.csv") as f:
        assert len(list(csv.reader(f))) == epoch + 1
    saved = json.loads((out / "history.json").read_text())
    assert saved["epochs_run"] == epoch and len(saved["history"]["loss"]) == epoch
    if sig == signal.SIGTERM:
        return  # the same files as after SIGINT (checked above); resuming them is checked once
    # Resumed to epoch + 20, it equals one uninterrupted run of epoch + 20 epochs.
    total = str(epoch + 20)
    resumed = cli("--out", str(out), "--epochs", total, "--resume", "--no-plots")
    straight = cli("--out", str(tmp_path / "straight"), "--epochs", total, "--no-plots", *common)
    for p in (resumed, straight):
        _, err = p.communicate(timeout=300)
        assert p.returncode == 0, err
    a, b = jm.load(out / "checkpoint.npz"), jm.load(tmp_path / "straight" / "checkpoint.npz")
    for u, v in zip(leaves((a.params, a.opt_state)), leaves((b.params, b.opt_state))):
        np.testing.assert_array_equal(u, v)
    ha = json.loads((out / "history.json").read_text())["history"]
    hb = json.loads((tmp_path / "straight" / "history.json").read_text())["history"]
    assert ha == hb
