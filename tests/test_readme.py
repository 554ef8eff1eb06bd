"""The README's quickstart runs, and prints what its comments say."""

import contextlib
import io
import pathlib
import re
import sys
import types

import numpy as np

README = pathlib.Path(__file__).resolve().parent.parent / "README.md"


def python_blocks():
    return re.findall(r"```python\n(.*?)```", README.read_text(), re.S)


def test_quickstart_prints_what_its_comments_state():
    code = python_blocks()[0]
    expected = [
        line.split("#", 1)[1].strip()
        for line in code.splitlines()
        if line.startswith("print(") and "#" in line
    ]
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(compile(code, "README.md", "exec"), {})
    printed = out.getvalue().strip().splitlines()
    assert len(printed) == len(expected)
    for got, want in zip(printed, expected):
        if want in ("True", "False"):
            assert got == want
            continue
        # Same numbers; the trained accuracies may move in the third decimal across CPUs.
        np.testing.assert_allclose(
            [float(v) for v in got.split()], [float(v) for v in want.split()], atol=0.02
        )


def test_the_callback_example_keeps_the_best_epoch():
    """The "Training runs" example, run after the quickstart: a best epoch before the last."""
    blocks = python_blocks()
    example = next(b for b in blocks if "def keep_best" in b)
    namespace, out = {}, io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(compile(blocks[0], "README.md", "exec"), namespace)
        out.truncate(0)
        out.seek(0)
        exec(compile(example, "README.md", "exec"), namespace)
    epoch, best, last = (float(v) for v in out.getvalue().split())
    stated = [float(v) for v in example.rsplit("#", 1)[1].split()]
    assert epoch % 100 == 0 and epoch < 10000 and best < last
    np.testing.assert_allclose([best, last], stated[1:], atol=0.05)
    assert namespace["best"]["params"][0]["W"].shape == (2, 64)


def test_setup_block_holds_the_two_commands():
    block = re.search(r"```bash\n(.*?)```", README.read_text(), re.S).group(1)
    lines = [line for line in block.splitlines() if line.strip()]
    assert lines == [
        'pip install -e ".[plot]" && jaxmlp train',
        'pip install -e ".[test]" && python -m pytest',
    ]


def test_the_model_selection_example_prints_what_the_readme_shows():
    """The "Model selection" example: 30 members in one program, the stated intervals and p."""
    text = README.read_text()
    section = text[text.index("## Model selection") :]
    code = re.search(r"```python\n(.*?)```", section, re.S).group(1)
    shown = re.search(r"which prints[^\n]*\n\n```\n(.*?)```", section, re.S).group(1).split("\n")
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(compile(code, "README.md", "exec"), {})
    printed = out.getvalue().strip().splitlines()
    assert printed[0] == shown[0] == "(30, 2, 64)"
    assert len(printed) == len([line for line in shown if line])
    numbers = r"-?\d+\.\d+(?:e[-+]\d+)?"
    for got, want in zip(printed[1:], shown[1:]):
        got_p, want_p = (re.findall(r"p=(\d\.\d+)", line) for line in (got, want))
        got, want = (re.sub(r" p=\d\.\d+", "", line) for line in (got, want))
        np.testing.assert_allclose(
            [float(v) for v in re.findall(numbers, got)],
            [float(v) for v in re.findall(numbers, want)],
            atol=0.03,  # trained accuracies move by a few rows across CPUs and jax builds
        )
        # A p-value moves more with those rows (0.78 and 0.61 on two 2-core machines): what the
        # README concludes from it is that 5e-4 is not distinguishable from no penalty.
        assert len(got_p) == len(want_p) and all(float(p) > 0.2 for p in got_p + want_p)


def test_the_logger_recipe_logs_every_epoch(monkeypatch):
    """The TensorBoard recipe, after the quickstart, with a stand-in writer: every field of
    every epoch is logged once, at its epoch number, per-layer fields as columns."""
    logged = []

    class Writer:
        def __init__(self, folder):
            self.folder = folder

        def add_scalar(self, name, value, step):
            logged.append((name, step, value))

        def close(self):
            logged.append(("closed", 0, 0.0))

    for name in ("torch", "torch.utils", "torch.utils.tensorboard"):
        monkeypatch.setitem(sys.modules, name, types.ModuleType(name))
    sys.modules["torch.utils.tensorboard"].SummaryWriter = Writer
    blocks = python_blocks()
    recipe = next(b for b in blocks if "SummaryWriter" in b)
    namespace = {}
    with contextlib.redirect_stdout(io.StringIO()):
        exec(compile(blocks[0], "README.md", "exec"), namespace)
        exec(compile(recipe, "README.md", "exec"), namespace)
    assert logged[-1][0] == "closed"
    steps = [step for name, step, _ in logged if name == "loss"]
    assert steps == list(range(1, 1001))
    names = {name for name, _, _ in logged}
    assert {"loss", "accuracy", "learning_rate", "w_l2_0", "w_l2_1"} <= names
    assert all(np.isfinite(v) for n, _, v in logged if n == "loss")
