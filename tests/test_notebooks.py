"""Execute every experiment notebook in smoke mode and check what its closing cell printed.

Each notebook runs in a fresh kernel (the test process's Python) with ``SMOKE=1``, an empty
temporary directory as the working directory (so it stands alone: nothing beside it in
experiments/ can be imported, as when it is downloaded alone or opened in Colab), and
``JAXMLP_EXPERIMENTS_OUT`` pointing at another temporary directory for any file it writes. The
notebook is executed as an in-memory copy: the committed ``.ipynb`` (with its full-size
outputs) is never rewritten.
"""

import ast
import hashlib
import pathlib
import re
import sys

import pytest

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")
pytest.importorskip("ipykernel")
pytest.importorskip("matplotlib")
pytest.importorskip("sklearn")

EXPERIMENTS = pathlib.Path(__file__).resolve().parent.parent / "experiments"
NOTEBOOKS = sorted(EXPERIMENTS.glob("[0-9][0-9]_*.ipynb"))
CELL_TIMEOUT = 300  # seconds per cell; a smoke run takes a few seconds per cell
# What a notebook may import besides the standard library: the installed package and its
# documented companions, never a module beside it in experiments/.
ALLOWED_IMPORTS = {"jaxmlp", "jax", "numpy", "matplotlib", "sklearn"}

# What each notebook must print, beyond running without error: its computed summary.
EXPECTED = {
    "01_backprop_by_hand": [
        r"gradcheck flags exactly the leaves each bug changes: True",
        r"Result: the NumPy transcription of the seed's tables and jaxmlp agree to rounding",
        r"gradcheck passed on (\d+) of \1 deeper nets",
    ],
    "02_regularization": [
        r"Result:",
        r"accuracy gap \d\.\d{3} → \d\.\d{3}",
        r"The λ sweep \(1e-04 to 1e-02\)",
        r"the proximal step \d+\.\d%",
    ],
    "03_optimizers": [
        r"Result:",
        r"final training loss on the spiral: (\S+ \d+\.\d{3}, )*Adam \d+\.\d{3}",
        r"ε placement: Adagrad: .*; Adam: ",
        r"Adam \+ L2 in the loss reached its best validation accuracy \d\.\d{3}",
    ],
    "04_digits": [
        r"parameters identical: True; optimizer state identical: True; "
        r"test probabilities identical: True",
        r"Result: a 64-64-10 MLP trained for 2 epochs",
        r"reloaded with identical parameters, optimizer state and test probabilities",
    ],
    "05_model_selection": [
        r"Result: cross-validation \(\d+ folds × \d+ seed\(s\), early stopping on the validation "
        r"loss\) chose λ = \d\.\de[-+]\d\d",
        r"Paired over \d+ new seeds \(L2 λ = \S+ minus none\): final validation accuracy "
        r"[-+]\d\.\d{3} \[[-+]\d\.\d{3}, [-+]\d\.\d{3}\] \(p = ",
        r"so it saved \d+\.\d% of the model-epochs; its winner, λ = ",
        r"winner matches the unpruned best: (True|False)",
    ],
    "06_debugging_backprop": [
        r"Result: gradcheck named (\d) of \1 planted bugs by kind and layer",
        r"The float64 V curve bottoms out at eps=\d\.\de[-+]\d\d \(median error "
        r"\d\.\de[-+]\d\d\); float32 at eps=\d\.\de[-+]\d\d",
        r"optimcheck named (\d) of \1 Adam bugs: bias_correction_v_only \(.*\), eps_inside_root",
    ],
}


def _digest(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _outputs(nb):
    """Every stream text of the executed notebook, and the number of images it displayed."""
    text, images = [], 0
    for cell in nb.cells:
        for out in cell.get("outputs", []):
            if out.get("output_type") == "stream":
                text.append(out["text"])
            images += "image/png" in out.get("data", {})
    return "".join(text), images


def test_every_notebook_has_expectations():
    assert NOTEBOOKS, f"no notebooks found in {EXPERIMENTS}"
    assert {p.stem for p in NOTEBOOKS} == set(EXPECTED)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_imports_only_the_package(path):
    nb = nbformat.read(path, as_version=4)
    imported = set()
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        for node in ast.walk(ast.parse(cell.source)):
            if isinstance(node, ast.Import):
                imported |= {alias.name.split(".")[0] for alias in node.names}
            elif isinstance(node, ast.ImportFrom):
                assert node.level == 0, f"{path.name}: relative import from {node.module!r}"
                imported.add(node.module.split(".")[0])
    foreign = imported - ALLOWED_IMPORTS - set(sys.stdlib_module_names)
    assert not foreign, f"{path.name} imports {sorted(foreign)}: a notebook must stand alone"
    assert "_common" not in path.read_text(encoding="utf-8")


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_runs_in_smoke_mode(path, tmp_path, monkeypatch):
    workdir, out = tmp_path / "workdir", tmp_path / "out"
    workdir.mkdir()
    # The kernel inherits this environment.
    monkeypatch.setenv("SMOKE", "1")
    monkeypatch.setenv("JAXMLP_EXPERIMENTS_OUT", str(out))
    monkeypatch.setenv("PYTHONDONTWRITEBYTECODE", "1")  # no __pycache__ left in experiments/
    monkeypatch.delenv("MPLBACKEND", raising=False)  # the kernel's inline backend
    before = _digest(path)
    listing = sorted(p.name for p in EXPERIMENTS.iterdir())

    nb = nbformat.read(path, as_version=4)
    client = nbclient.NotebookClient(
        nb,
        timeout=CELL_TIMEOUT,
        kernel_name="python3",
        resources={"metadata": {"path": str(workdir)}},  # the working directory
    )
    client.execute()  # raises CellExecutionError on any error

    text, images = _outputs(nb)
    for pattern in EXPECTED[path.stem]:
        assert re.search(pattern, text), f"{path.name} did not print {pattern!r}"
    assert images >= 1, f"{path.name} displayed no figure"
    closing = [c for c in nb.cells if c.cell_type == "code"][-1]
    closing_text = "".join(o.get("text", "") for o in closing.outputs)
    assert closing_text.startswith("Result"), f"{path.name}: the closing cell printed no result"
    assert _digest(path) == before, "the committed notebook was modified"
    assert sorted(p.name for p in EXPERIMENTS.iterdir()) == listing, "files left in experiments/"
    assert not any(workdir.iterdir()), f"{path.name} wrote into its working directory"
    if path.stem == "04_digits":
        assert (out / "digits_mlp.npz").is_file()
