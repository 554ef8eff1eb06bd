"""The ``jaxmlp`` command line: ``jaxmlp gradcheck`` in-process, and once as ``python -m``."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

import jaxmlp as jm
from jaxmlp.cli import main

ROOT = Path(__file__).resolve().parents[1]


def table_rows(out):
    """The report's rows: lines that start with a layer index."""
    return [line.split() for line in out.splitlines() if line[:5].strip().isdigit()]


def test_gradcheck_defaults_pass(capsys):
    assert main(["gradcheck"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("jaxmlp gradcheck: random data, batch 32, seed 0\n")
    assert "MLP(sizes=(2, 16, 3), activations=('relu', 'softmax'))" in out
    assert "loss='categorical_crossentropy'" in out
    rows = table_rows(out)
    assert [r[:2] for r in rows] == [["0", "W"], ["0", "b"], ["1", "W"], ["1", "b"]]
    assert [r[-2:] for r in rows] == [["16/0", "ok"], ["16/0", "ok"], ["16/0", "ok"], ["3/0", "ok"]]
    assert all(float(r[-8]) <= 1e-12 for r in rows)  # manual − autodiff, max abs
    assert out.splitlines()[-1].startswith("PASSED")


def test_gradcheck_options(capsys):
    argv = ["gradcheck", "--sizes", "4,6,5,2", "--activations", "tanh,leaky_relu,sigmoid"]
    argv += ["--loss", "binary_crossentropy", "--l1w", "1e-3", "--l1b", "2e-3", "--l2w", "3e-3"]
    argv += ["--l2b", "4e-3", "--batch", "8", "--seed", "3", "--n-samples", "5", "--init", "glorot"]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "random data, batch 8, seed 3" in out
    assert "MLP(sizes=(4, 6, 5, 2), activations=('tanh', 'leaky_relu', 'sigmoid'))" in out
    assert "reg=Regularization(l1w=0.001, l1b=0.002, l2w=0.003, l2b=0.004)" in out
    rows = table_rows(out)
    assert len(rows) == 6 and [r[-2] for r in rows] == ["5/0", "5/0", "5/0", "5/0", "5/0", "2/0"]


def test_gradcheck_onehot_labels(capsys):
    assert main(["gradcheck", "--labels", "onehot", "--n-samples", "3"]) == 0
    assert capsys.readouterr().out.splitlines()[-1].startswith("PASSED")


def test_gradcheck_mismatch_exits_1(capsys):
    argv = ["gradcheck", "--l2w", "1e-2", "--n-samples", "3"]
    argv += ["--backward", "tests.test_gradcheck:backward_missing_factor_2"]
    assert main(argv) == 1
    out = capsys.readouterr().out
    assert "backward: tests.test_gradcheck.backward_missing_factor_2" in out
    assert [r[-1] for r in table_rows(out)] == ["FAIL", "ok", "FAIL", "ok"]
    assert out.splitlines()[-1].startswith("FAILED (2 of 4)")


BAD = {
    "sizes-not-integers": (["--sizes", "2,x,3"], "argument --sizes: expected comma-separated"),
    "activations-count": (["--activations", "relu"], "activations must hold one name per layer"),
    "activation-name": (["--activations", "relu,softplus"], "unknown activations[1] 'softplus'"),
    "loss-unknown": (["--loss", "hinge"], "argument --loss: invalid choice: 'hinge'"),
    "loss-output": (["--activations", "relu,tanh"], "loss='categorical_crossentropy' needs"),
    "negative-strength": (["--l2w", "-1"], "Regularization.l2w must be >= 0; got -1.0"),
    "batch": (["--batch", "0"], "--batch must be a positive integer; got 0"),
    "eps": (["--eps", "0"], "eps must be a finite number > 0"),
    "backward-spec": (["--backward", "nocolon"], "--backward must look like MODULE:FUNCTION"),
    "backward-module": (["--backward", "no_such_module:f"], "cannot import 'no_such_module'"),
    "backward-function": (["--backward", "tests.test_cli:nothing"], "has no function 'nothing'"),
    "unknown-option": (["--bogus"], "unrecognized arguments: --bogus"),
}


@pytest.mark.parametrize("case", list(BAD))
def test_bad_options_exit_2_with_one_line(capsys, case):
    argv, message = BAD[case]
    assert main(["gradcheck", *argv]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    lines = captured.err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("jaxmlp gradcheck: error: ")
    assert message in lines[0] and "Traceback" not in captured.err


def test_no_command_exits_2(capsys):
    assert main([]) == 2
    assert capsys.readouterr().err == (
        "jaxmlp: error: choose a command: train, gradcheck, optimcheck (see 'jaxmlp --help')\n"
    )


def test_help_explains_every_option(capsys):
    assert main(["gradcheck", "--help"]) == 0
    out = capsys.readouterr().out
    for option in ["--sizes", "--activations", "--loss", "--labels", "--l1w", "--l1b", "--l2w"]:
        assert option in out
    for option in ["--l2b", "--batch", "--seed", "--init", "--n-samples", "--eps", "--rtol"]:
        assert option in out
    for option in ["--atol", "--fd-rtol", "--fd-atol", "--backward", "--dtype", "--data"]:
        assert option in out
    assert "--params CHECKPOINT" in out and "--layout {jaxmlp,seeds}" in out
    assert "exit status: 0 check passed, 1 mismatch, 2 bad options, 3 --backward raised" in out
    flat = " ".join(out.split())  # argparse wraps the help texts
    assert "(default: 2,16,3)" in out and "(default: 1e-06 in float64, 0.01 in float32)" in flat
    assert main(["--help"]) == 0
    assert "gradcheck" in capsys.readouterr().out


def test_python_dash_m_entry_point():
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    argv = [sys.executable, "-m", "jaxmlp", "gradcheck", "--sizes", "3,4,2", "--loss", "mse"]
    done = subprocess.run(argv, capture_output=True, text=True, cwd=ROOT, env=env, timeout=120)
    assert done.returncode == 0, done.stderr
    # Without --activations: relu for hidden layers, then the loss's natural output.
    assert "MLP(sizes=(3, 4, 2), activations=('relu', 'linear')), loss='mse'" in done.stdout
    assert done.stdout.splitlines()[-1].startswith("PASSED")


def test_gradcheck_prints_findings_and_a_raising_backward_exits_3(tmp_path, monkeypatch, capsys):
    (tmp_path / "mine.py").write_text(
        "import jax\n"
        "from jaxmlp.backprop import backprop\n"
        "def negated(net, params, x, y, *, loss, reg):\n"
        "    return jax.tree.map(lambda g: -g, backprop(net, params, x, y, loss=loss, reg=reg))\n"
        "def broken(net, params, x, y, *, loss, reg):\n"
        "    raise KeyError('my bug')\n"
    )
    monkeypatch.chdir(tmp_path)
    assert main(["gradcheck", "--n-samples", "0", "--backward", "mine:negated"]) == 1
    out = capsys.readouterr().out
    assert "findings (top layer first):\n  layer 1 W: -1× the reference" in out
    assert "the error starts at layer 1 W" in out
    assert main(["gradcheck", "--backward", "mine:broken"]) == 3
    err = capsys.readouterr().err
    assert "Traceback" in err and "raise KeyError('my bug')" in err
    assert (
        err.splitlines()[-1] == "jaxmlp gradcheck: error: your backward raised KeyError: 'my bug'"
    )


def test_gradcheck_on_a_checkpoint_and_a_data_file(tmp_path, capsys):
    import jax
    import numpy as np

    import jaxmlp as jm

    net = jm.MLP((2, 5, 3), ("tanh", "softmax"))
    jm.save(tmp_path / "ck.npz", net, jm.init_params(jax.random.key(4), net))
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(40, 2)).astype(np.float32), rng.integers(0, 3, 40)
    np.savez(tmp_path / "d.npz", x=x, y=y)
    argv = ["gradcheck", "--params", str(tmp_path / "ck.npz"), "--data", str(tmp_path / "d.npz")]
    assert main([*argv, "--batch", "12", "--n-samples", "2"]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"jaxmlp gradcheck: data {tmp_path / 'd.npz'}, batch 12, seed 0\n")
    assert "MLP(sizes=(2, 5, 3), activations=('tanh', 'softmax'))" in out
    assert main(["gradcheck", "--params", str(tmp_path / "none.npz")]) == 2
    assert "jaxmlp gradcheck: error:" in capsys.readouterr().err


def test_version_is_one_number(capsys):
    """jaxmlp --version prints jaxmlp.__version__, which is also the installed package's."""
    import importlib.metadata

    assert main(["--version"]) == 0
    assert capsys.readouterr().out.strip() == f"jaxmlp {jm.__version__}"
    assert importlib.metadata.version("jaxmlp") == jm.__version__
