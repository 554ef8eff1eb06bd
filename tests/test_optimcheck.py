"""`jaxmlp.optimcheck`: each variant named when a candidate is it, departures, errors, the CLI.

Every candidate below is written here, in NumPy, from its equations: an independent reference
for the module's variants, not a call into them.
"""

import sys
import textwrap
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxmlp.cli
from jaxmlp import optim, schedules
from jaxmlp.cli import optimcheck as optimcheck_cli
from jaxmlp.optimcheck import CandidateError, OptimcheckReport, optimcheck

STEPS = 8
rng = np.random.default_rng(0)
PARAMS = (
    {"W": rng.normal(size=(2, 3)), "b": np.zeros(3)},
    {"W": rng.normal(size=(3, 2)), "b": np.zeros(2)},
)
WEIGHTS = (True, False, True, False)  # leaves in order [0]['W'], [0]['b'], [1]['W'], [1]['b']


def leafwise(leaf, moments):
    """A step function of ``leaf(i, w, g, t, *moments) -> (w, *moments)`` over the leaves."""

    def step(params, grads, state, t):
        ws, tree = jax.tree.flatten(params)
        gs = jax.tree.leaves(grads)
        if state is None:
            state = [[np.zeros(np.shape(w))] * moments for w in ws]
        out = [leaf(i, np.asarray(w), np.asarray(g), t, *s)
               for i, (w, g, s) in enumerate(zip(ws, gs, state))]  # fmt: skip
        return tree.unflatten([o[0] for o in out]), [o[1:] for o in out]

    return step


def rate(lr, t):
    """A learning rate given as a number or as a function of the step."""
    return lr(t) if callable(lr) else lr


def adam_np(lr=0.01, b1=0.9, b2=0.999, eps=1e-8, eps_root=0.0, correct_m=True,
            correct_v=True, amsgrad=None, decoupled=0.0, l2=0.0, decays=WEIGHTS):  # fmt: skip
    """Kingma & Ba's Adam; AMSGrad's max "before" or "after" bias correction; AdamW's decay."""

    def leaf(i, w, g, t, m, v, v_max):
        g = g + l2 * decays[i] * w
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g * g
        m_hat = m / (1 - b1 ** (t + 1)) if correct_m else m
        v_hat = v / (1 - b2 ** (t + 1)) if correct_v else v
        if amsgrad == "before":
            v_max = np.maximum(v_max, v)
            v_hat = v_max / (1 - b2 ** (t + 1)) if correct_v else v_max
        elif amsgrad == "after":
            v_max = v_hat = np.maximum(v_max, v_hat)
        w = w - rate(lr, t) * decoupled * decays[i] * w  # PyTorch's AdamW: decay first
        return w - rate(lr, t) * m_hat / (np.sqrt(v_hat + eps_root) + eps), m, v, v_max

    return leafwise(leaf, 3)


def sgd_np(lr=0.1, mu=0.9, form="torch", nesterov=False):
    """Momentum as PyTorch (v = μv + g), as a moving average, or the book's (v = μv − ηg)."""

    def leaf(i, w, g, t, v):
        if form == "book":
            v = mu * v - rate(lr, t) * g
            return w + v, v
        v = mu * v + ((1 - mu) * g if form == "ema" else g)
        return w - rate(lr, t) * (g + mu * v if nesterov else v), v

    return leafwise(leaf, 1)


def rmsprop_np(lr=0.01, rho=0.9, eps=1e-7, eps_root=0.0, centered=False):
    def leaf(i, w, g, t, s, mean):
        s = rho * s + (1 - rho) * g * g
        mean = rho * mean + (1 - rho) * g
        var = np.maximum(s - mean * mean, 0) if centered else s
        return w - lr * g / (np.sqrt(var + eps_root) + eps), s, mean

    return leafwise(leaf, 2)


def adagrad_np(lr=0.1, eps=1e-7, eps_root=0.0):
    def leaf(i, w, g, t, G):
        G = G + g * g
        return w - lr * g / (np.sqrt(G + eps_root) + eps), G

    return leafwise(leaf, 1)


def from_1(lr0, d):
    return lambda t: lr0 / (1 + d * (t + 1))


ADAM, AMSGRAD = optim.adam(0.01), optim.adam(0.01, amsgrad=True)
ADAMW, SGD = optim.adamw(0.01, weight_decay=0.1), optim.sgd(0.1, 0.9)
DECAYING_SGD = optim.sgd(schedules.inverse_time(0.1, 0.5), 0.9)
VARIANTS = {
    "adam-eps-inside": (ADAM, adam_np(eps=0, eps_root=1e-8), "eps_inside_root"),
    "adam-eps-outside": (optim.adam(0.01, eps=0, eps_root=1e-8), adam_np(), "eps_outside_root"),
    "adam-uncorrected": (ADAM, adam_np(correct_m=False, correct_v=False), "no_bias_correction"),
    "adam-v-corrected": (ADAM, adam_np(correct_m=False), "bias_correction_v_only"),
    "adam-m-corrected": (ADAM, adam_np(correct_v=False), "bias_correction_m_only"),
    "adam-amsgrad": (ADAM, adam_np(amsgrad="before"), "amsgrad"),
    "adam-amsgrad-after": (ADAM, adam_np(amsgrad="after"), "amsgrad_max_after_correction"),
    "amsgrad-plain": (AMSGRAD, adam_np(), "no_amsgrad"),
    "amsgrad-after": (AMSGRAD, adam_np(amsgrad="after"), "amsgrad_max_after_correction"),
    "amsgrad-uncorrected": (
        AMSGRAD,
        adam_np(amsgrad="before", correct_m=False, correct_v=False),
        "no_bias_correction",
    ),  # fmt: skip
    "adamw-l2": (ADAMW, adam_np(l2=0.1), "l2_in_gradient"),
    "adamw-no-decay": (ADAMW, adam_np(), "no_weight_decay"),
    "adamw-biases-decay": (ADAMW, adam_np(decoupled=0.1, decays=(True,) * 4), "decay_every_leaf"),
    "adamw-eps-inside": (ADAMW, adam_np(eps=0, eps_root=1e-8, decoupled=0.1), "eps_inside_root"),
    "sgd-ema": (SGD, sgd_np(form="ema"), "momentum_ema"),
    "sgd-nesterov": (SGD, sgd_np(nesterov=True), "nesterov"),
    "nesterov-plain": (optim.sgd(0.1, 0.9, nesterov=True), sgd_np(), "no_nesterov"),
    "sgd-book-decaying": (
        DECAYING_SGD,
        sgd_np(lambda t: 0.1 / (1 + 0.5 * t), form="book"),
        "momentum_book",
    ),  # fmt: skip
    "sgd-decay-from-1": (DECAYING_SGD, sgd_np(from_1(0.1, 0.5)), "decay_from_step_1"),
    "adam-decay-from-1": (
        optim.adam(schedules.inverse_time(0.01, 0.5)),
        adam_np(from_1(0.01, 0.5)),
        "decay_from_step_1",
    ),  # fmt: skip
    "rmsprop-eps-inside": (
        optim.rmsprop(0.01),
        rmsprop_np(eps=0, eps_root=1e-7),
        "eps_inside_root",
    ),  # fmt: skip
    "rmsprop-centered": (optim.rmsprop(0.01), rmsprop_np(centered=True), "centered"),
    "centered-plain": (optim.rmsprop(0.01, centered=True), rmsprop_np(), "not_centered"),
    "adagrad-eps-inside": (
        optim.adagrad(0.1),
        adagrad_np(eps=0, eps_root=1e-7),
        "eps_inside_root",
    ),  # fmt: skip
}


@pytest.mark.parametrize("reference, candidate, name", VARIANTS.values(), ids=VARIANTS.keys())
def test_a_candidate_that_is_a_variant_is_named(reference, candidate, name):
    report = optimcheck(candidate, reference, PARAMS, steps=STEPS)
    assert not report.passed
    assert report.match == name, str(report)
    assert f"(variant {name}" not in report.message  # the message says what it is, in words
    assert report.message.startswith("FAILED: your ") and "; it is " in report.message
    (found,) = [v for v in report.variants if v.name == name]
    assert found.follows == STEPS and not found.coincides


EQUAL = {
    "adam": (ADAM, adam_np()),
    "seeds-adam": (optim.adam(0.01, eps=0, eps_root=1e-8), adam_np(eps=0, eps_root=1e-8)),
    "amsgrad": (AMSGRAD, adam_np(amsgrad="before")),
    "adamw": (ADAMW, adam_np(decoupled=0.1)),
    "book-momentum-constant-rate": (SGD, sgd_np(form="book")),
    "rmsprop": (optim.rmsprop(0.01), rmsprop_np()),
    "adagrad": (optim.adagrad(0.1), adagrad_np()),
    "the-reference-itself": (ADAM, ADAM),
    "a-plain-pair": (SGD, (SGD.init, SGD.update)),
}


@pytest.mark.parametrize("reference, candidate", EQUAL.values(), ids=EQUAL.keys())
def test_a_correct_candidate_passes(reference, candidate):
    report = optimcheck(candidate, reference, PARAMS, steps=STEPS)
    assert report.passed, str(report)
    assert report.match == "reference" and report.first_departure is None
    assert report.variants == () and report.message.startswith("PASSED: your ")


class GradientTransformation(NamedTuple):  # optax's shape of an optimizer
    init: Any
    update: Any


def test_an_optax_like_pair_in_jax_passes():
    b1, b2, eps = 0.9, 0.999, 1e-8

    def init(params):
        zeros = jax.tree.map(jnp.zeros_like, params)
        return {"count": 0, "mu": zeros, "nu": zeros}

    def update(grads, state, params=None):
        t = state["count"] + 1
        mu = jax.tree.map(lambda m, g: b1 * m + (1 - b1) * g, state["mu"], grads)
        nu = jax.tree.map(lambda v, g: b2 * v + (1 - b2) * g**2, state["nu"], grads)
        step = jax.tree.map(lambda m, v: -0.01 * (m / (1 - b1**t)) /
                            (jnp.sqrt(v / (1 - b2**t)) + eps), mu, nu)  # fmt: skip
        return step, {"count": t, "mu": mu, "nu": nu}

    report = optimcheck(GradientTransformation(init, update), ADAM, PARAMS, steps=STEPS)
    assert report.passed, str(report)


def test_a_candidate_that_matches_nothing_names_its_first_departure():
    def swapped_after_3(params, grads, state, t):  # β1 and β2 exchanged from step 3 on
        b1, b2 = (0.9, 0.999) if t < 3 else (0.999, 0.9)
        return adam_np(b1=b1, b2=b2)(params, grads, state, t)

    report = optimcheck(swapped_after_3, ADAM, PARAMS, steps=STEPS)
    assert report.match is None and not report.passed
    assert report.first_departure.step == 3
    assert "matches no known variant" in report.message and "at step 3, " in report.message


def test_a_sign_error_in_one_leaf_is_located():
    correct = adam_np()

    def wrong_bias_1(params, grads, state, t):
        new, state = correct(params, grads, state, t)
        b = params[1]["b"] - (new[1]["b"] - params[1]["b"])  # the step of [1]['b'] reversed
        return (new[0], {"W": new[1]["W"], "b": b}), state

    report = optimcheck(wrong_bias_1, ADAM, PARAMS, steps=STEPS)
    d = report.first_departure
    assert report.match is None
    assert (d.step, d.leaf) == (0, "[1]['b']")
    assert d.candidate - PARAMS[1]["b"][d.index] == pytest.approx(
        -(d.reference - PARAMS[1]["b"][d.index])
    )
    failing = {(r.step, r.leaf) for r in report.rows if not r.passed}
    assert failing == {(t, "[1]['b']") for t in range(STEPS)}
    assert "at step 0, [1]['b'], index " in report.message


def test_given_grads_are_the_stream():
    grads = [jax.tree.map(lambda w, g=g: np.full(np.shape(w), g), PARAMS) for g in (1, -2, 0.5)]
    report = optimcheck(sgd_np(form="ema"), SGD, PARAMS, grads=grads)
    assert report.steps == 3 and report.match == "momentum_ema"
    assert "your grads" in report.title
    # plain SGD after one step of gradient 1: w − 0.1; the EMA form moves (1 − μ) as far
    first = report.rows[0]
    assert first.reference == pytest.approx(PARAMS[0]["W"][first.index] - 0.1)
    assert first.candidate == pytest.approx(PARAMS[0]["W"][first.index] - 0.01)


def test_the_report_shows_the_steps_around_the_departure():
    report = optimcheck(adam_np(eps=0, eps_root=1e-8), ADAM, PARAMS, steps=20)
    assert isinstance(report, OptimcheckReport)
    text = str(report)
    steps = {int(line.split()[0]) for line in text.splitlines() if line[:4].strip().isdigit()}
    assert steps == {0, 1, 2}
    assert "steps 0–2 of 20" in text and "eps_inside_root                20  <- yours" in text
    assert text.splitlines()[-1] == report.message
    page = report._repr_html_()
    assert page.count("<tr") == 1 + 3 * 4 and 'style="background:#fdd"' in page


ERRORS = {
    "grads-structure": (
        dict(grads=[{"W": np.ones(3)}]),
        ValueError,
        r"grads\[0\] \(grads holds one tree shaped like params per step\) must "
        r"be shaped like params",
    ),  # fmt: skip
    "grads-shape": (
        dict(grads=[PARAMS, (PARAMS[0], {"W": np.ones((2, 3)), "b": np.ones(2)})]),
        ValueError,
        r"grads\[1\] .*: the leaf \[1\]\['W'\] has shape \(2, 3\), "
        r"params have \(3, 2\)",
    ),  # fmt: skip
    "grads-not-a-sequence": (dict(grads=7), TypeError, "grads must be a non-empty sequence"),
    "steps": (dict(steps=0), ValueError, "steps must be a positive integer; got 0"),
    "steps-and-grads": (dict(steps=2, grads=[PARAMS]), ValueError, r"steps must be len\(grads\)"),
    "key-and-grads": (dict(grads=[PARAMS], key=jax.random.key(1)), ValueError, "key"),
    "rtol": (dict(rtol=-1.0), ValueError, r"rtol must be >= 0; got -1.0"),
}


@pytest.mark.parametrize("kwargs, error, message", ERRORS.values(), ids=ERRORS.keys())
def test_bad_arguments_are_named(kwargs, error, message):
    with pytest.raises(error, match=message):
        optimcheck(adam_np(), ADAM, PARAMS, **kwargs)


BAD_OPTIMIZERS = {
    "candidate-not-callable": (42, ADAM, TypeError, "candidate must be an optimizer with init"),
    "candidate-half-pair": (
        (ADAM.init, 3),
        ADAM,
        TypeError,
        "candidate's init and update must both be functions",
    ),  # fmt: skip
    "reference-not-jaxmlp": (
        adam_np(),
        GradientTransformation(ADAM.init, ADAM.update),
        TypeError,
        "reference must be an optimizer made by jaxmlp.optim.sgd",
    ),
    "reference-a-chain": (
        adam_np(),
        optim.chain(optim.clip_by_global_norm(1.0), ADAM),
        TypeError,
        "reference must be .* whose state is <class 'tuple'>",
    ),  # fmt: skip
}


@pytest.mark.parametrize("candidate, reference, error, message", BAD_OPTIMIZERS.values(),
                         ids=BAD_OPTIMIZERS.keys())  # fmt: skip
def test_bad_optimizers_are_named(candidate, reference, error, message):
    with pytest.raises(error, match=message):
        optimcheck(candidate, reference, PARAMS, steps=2)


def test_a_candidate_returning_the_wrong_tree_is_named_with_step_and_leaf():
    def transposes_at_step_2(params, grads, state, t):
        new, state = adam_np()(params, grads, state, t)
        return (new if t < 2 else (new[0], {**new[1], "W": new[1]["W"].T})), state

    with pytest.raises(CandidateError, match=r"at step 2: the leaf \[1\]\['W'\] has shape \(2, 3"):
        optimcheck(transposes_at_step_2, ADAM, PARAMS, steps=4)
    with pytest.raises(CandidateError, match=r"update must return a pair \(updates, state\); at "
                       "step 0 it returned dict"):  # fmt: skip
        optimcheck((ADAM.init, lambda g, s, p: g[0]), ADAM, PARAMS, steps=2)


def test_an_exception_of_the_candidate_propagates_with_its_traceback():
    def divides_by_zero(params, grads, state, t):
        return 1 / 0

    with pytest.raises(ZeroDivisionError) as raised:
        optimcheck(divides_by_zero, ADAM, PARAMS, steps=2)
    assert raised.traceback[-1].name == "divides_by_zero"


# ---- the command line --------------------------------------------------------------------


@pytest.fixture
def cli(tmp_path, monkeypatch):
    """``jaxmlp optimcheck`` (registered here), run in `tmp_path` with a module written there."""
    monkeypatch.setitem(jaxmlp.cli.COMMANDS, "optimcheck", optimcheck_cli)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "path", list(sys.path))  # the loader adds the directory to it

    def run(module, source, *args):
        (tmp_path / f"{module}.py").write_text(textwrap.dedent(source))
        return jaxmlp.cli.main(["optimcheck", "--steps", "4", *args])

    return run


def test_cli_exit_0_for_a_correct_optimizer(cli, capsys):
    source = "import jaxmlp\noptimizer = jaxmlp.optim.adam(0.01)\n"
    assert cli("oc_correct", source, "--optimizer", "oc_correct:optimizer", "--reference", "adam",
               "--learning-rate", "0.01") == 0  # fmt: skip
    out = capsys.readouterr().out
    assert out.startswith("jaxmlp optimcheck: oc_correct:optimizer against adam, 4 steps, seed 0")
    assert out.splitlines()[-1].startswith("PASSED: your Adam equals adam(0.01, b1=0.9")


def test_cli_exit_1_names_the_variant(cli, capsys):
    source = """
        import jax

        def step(params, grads, state, t):  # momentum as a moving average
            v = state or jax.tree.map(lambda w: 0 * w, params)
            v = jax.tree.map(lambda v, g: 0.9 * v + 0.1 * g, v, grads)
            return jax.tree.map(lambda w, v: w - 0.1 * v, params, v), v
    """
    args = ("--optimizer", "oc_ema:step", "--reference", "sgd", "--learning-rate", "0.1")
    assert cli("oc_ema", source, *args, "--momentum", "0.9") == 1
    out = capsys.readouterr().out
    assert "momentum_ema                   4  <- yours" in out
    assert "it is SGD with momentum as a moving average" in out.splitlines()[-1]


@pytest.mark.parametrize("args, message", [
    (("--reference", "adamx"), "argument --reference: invalid choice: 'adamx'"),
    (("--reference", "sgd", "--b1", "0.5"), "--b1 does not apply to sgd (only to adam, adamw)"),
    (("--reference", "adam", "--steps", "0"), "--steps must be >= 1; got 0"),
], ids=["reference", "option-of-another", "steps"])  # fmt: skip
def test_cli_exit_2_for_bad_options(cli, capsys, args, message):
    assert cli("oc_unused", "", "--optimizer", "oc_unused:step", *args) == 2
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 1 and err[0].startswith("jaxmlp optimcheck: error: ") and message in err[0]


def test_cli_exit_2_for_an_optimizer_that_is_not_there(cli, capsys):
    assert cli("oc_empty", "x = 1\n", "--optimizer", "oc_empty:step", "--reference", "adam") == 2
    assert "--optimizer: oc_empty:step must be an optimizer" in capsys.readouterr().err


def test_cli_exit_3_when_the_optimizer_raises(cli, capsys):
    source = """
        def step(params, grads, state, t):
            raise RuntimeError("not written yet")
    """
    assert cli("oc_raises", source, "--optimizer", "oc_raises:step", "--reference", "sgd") == 3
    err = capsys.readouterr().err
    assert "Traceback (most recent call last)" in err and 'oc_raises.py", line 3, in step' in err
    last = "jaxmlp optimcheck: error: your optimizer raised RuntimeError: not written yet"
    assert err.splitlines()[-1] == last
