"""`jaxmlp.gradcheck`: verdicts on right and wrong backward passes, kinks, and the report."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxmlp as jm
from jaxmlp.backprop import backprop
from jaxmlp.gradcheck import GradcheckReport, gradcheck
from jaxmlp.regularization import per_layer

CCE = "categorical_crossentropy"
NET = jm.MLP((3, 6, 4), ("relu", "softmax"))


def data(net=NET, loss=CCE, batch=10, seed=0):
    rng = np.random.default_rng(seed)
    x = jnp.asarray(rng.normal(size=(batch, net.in_features)), jnp.float32)
    if loss == CCE:
        y = jnp.asarray(rng.integers(0, net.out_features, batch))
    elif loss == "binary_crossentropy":
        y = jnp.asarray(rng.integers(0, 2, (batch, net.out_features)), jnp.float32)
    else:
        y = jnp.asarray(rng.normal(size=(batch, net.out_features)), jnp.float32)
    return x, y


def random_params(net=NET, seed=0):
    """Weights ~ N(0, 2/fan_in) and biases ~ N(0, 0.1²), so that no bias sits on the L1 kink."""
    rng = np.random.default_rng(seed)
    return tuple(
        {
            "W": jnp.asarray(rng.normal(size=(i, o)) * np.sqrt(2 / i), jnp.float32),
            "b": jnp.asarray(0.1 * rng.normal(size=o), jnp.float32),
        }
        for i, o in zip(net.sizes[:-1], net.sizes[1:])
    )


# The backward passes below are compiled (as a user may do): quicker tests.
jit_backprop = jax.jit(backprop, static_argnames=("net", "loss"))


@functools.partial(jax.jit, static_argnames=("net", "loss"))
def backward_missing_factor_2(net, params, x, y, *, loss, reg):
    """A wrong backward pass: the L2 gradient written ``l2·w`` instead of ``2·l2·w``."""
    grads = backprop(net, params, x, y, loss=loss, reg=reg)
    return tuple(
        {"W": g["W"] - r.l2w * p["W"], "b": g["b"] - r.l2b * p["b"]}
        for g, p, r in zip(grads, params, per_layer(reg, len(params)))
    )


@functools.partial(jax.jit, static_argnames=("net", "loss"))
def backward_sign_zero_at_zero(net, params, x, y, *, loss, reg):
    """A backward pass with ``jnp.sign`` for the L1 gradient: 0 at exactly 0, not +1."""
    grads = backprop(net, params, x, y, loss=loss)
    return tuple(
        {k: g[k] + l1 * jnp.sign(p[k]) + 2 * l2 * p[k] for k, l1, l2 in
         (("W", r.l1w, r.l2w), ("b", r.l1b, r.l2b))}
        for g, p, r in zip(grads, params, per_layer(reg, len(params)))
    )  # fmt: skip


CASES = {
    "relu-softmax-cce-elastic": (NET, CCE, jm.Regularization(1e-3, 2e-3, 3e-3, 4e-3)),
    "tanh-sigmoid-bce-l2": (
        jm.MLP((3, 5, 2), ("tanh", "sigmoid")),
        "binary_crossentropy",
        jm.Regularization(l2w=1e-2),
    ),
    "leaky-sigmoid-linear-mse-per-layer": (
        jm.MLP((3, 4, 4, 2), ("leaky_relu", "sigmoid", "linear")),
        "mse",
        (jm.Regularization(l1w=1e-2), None, jm.Regularization(l2b=1e-2)),
    ),
}


@pytest.mark.parametrize("case", list(CASES))
def test_passes_for_backprop(case):
    net, loss, reg = CASES[case]
    x, y = data(net, loss)
    report = gradcheck(net, random_params(net), x, y, loss=loss, reg=reg)
    assert isinstance(report, GradcheckReport) and report.passed
    assert [(r.layer, r.leaf) for r in report.rows] == [
        (l, leaf) for l in range(net.n_layers) for leaf in ("W", "b")
    ]
    for row, (fan_in, fan_out) in zip(report.rows[::2], zip(net.sizes[:-1], net.sizes[1:])):
        assert row.shape == (fan_in, fan_out)
    for row in report.rows:
        assert row.autodiff_abs <= 1e-12  # float64: equal up to rounding
        assert row.fd_checked + row.fd_skipped == min(16, int(np.prod(row.shape)))
        assert row.fd_checked > 0 and row.fd_abs <= 1e-7
        assert row.autodiff_fd_abs <= 1e-7


def test_missing_factor_2_in_l2_gradient_fails():
    x, y = data()
    params, lam = random_params(), 1e-2
    reg = jm.Regularization(l2w=lam)
    right = gradcheck(NET, params, x, y, loss=CCE, reg=reg, backward=jit_backprop)
    wrong = gradcheck(NET, params, x, y, loss=CCE, reg=reg, backward=backward_missing_factor_2)
    assert right.passed and not wrong.passed
    # Only the weights carry the L2 penalty: exactly the W rows fail.
    assert [(r.layer, r.leaf) for r in wrong.failures] == [(0, "W"), (1, "W")]
    for row in wrong.failures:
        W = np.asarray(params[row.layer]["W"], np.float64)
        # manual − autodiff = −l2·W: the largest error is l2·max|W|, where |W| is largest.
        np.testing.assert_allclose(row.autodiff_abs, lam * np.abs(W).max(), rtol=1e-9)
        assert row.worst == np.unravel_index(np.abs(W).argmax(), W.shape)
        assert row.fd_abs > 1e-5  # finite differences see it too
    for row in wrong.rows[1::2]:
        assert row.passed and row.autodiff_abs <= 1e-12


def test_l1_sign_convention_at_zero_fails_and_is_skipped_by_finite_differences():
    x, y = data()
    params = tuple({"W": p["W"], "b": jnp.zeros_like(p["b"])} for p in random_params(seed=1))
    reg = jm.Regularization(l1w=1e-3, l1b=0.1)
    report = gradcheck(NET, params, x, y, loss=CCE, reg=reg, backward=backward_sign_zero_at_zero)
    assert [(r.layer, r.leaf) for r in report.failures] == [(0, "b"), (1, "b")]
    for row in report.failures:
        np.testing.assert_allclose(row.autodiff_abs, 0.1, rtol=1e-12)  # sign(0): 0 vs +1
        # Every bias sits on the L1 kink: no finite difference is meaningful there.
        assert row.fd_checked == 0 and row.fd_skipped == row.shape[0]
        assert row.fd_abs is None and row.autodiff_fd_abs is None
    assert gradcheck(NET, params, x, y, loss=CCE, reg=reg).passed  # backprop: sign(0) = +1


def test_finite_differences_skip_a_relu_at_its_kink():
    x, y = data()
    params = random_params()
    W0, b0 = params[0]["W"].at[:, 2].set(0.0), params[0]["b"].at[2].set(0.0)
    params = ({"W": W0, "b": b0}, params[1])  # hidden unit 2: z = 0 for every example
    report = gradcheck(NET, params, x, y, loss=CCE, n_samples=100)  # every entry sampled
    assert report.passed
    skipped = {(r.layer, r.leaf): r.fd_skipped for r in report.rows}
    assert skipped == {(0, "W"): 3, (0, "b"): 1, (1, "W"): 0, (1, "b"): 0}
    # Why: across the kink, central differences give half the right-sided slope, not the
    # relu'(0) = 0 that backprop and autodiff use (test_backprop::test_kink_relu_at_zero).
    with jax.enable_x64(True):
        p64 = jax.tree.map(lambda a: jnp.asarray(a, jnp.float64), params)
        x64 = jnp.asarray(x, jnp.float64)

        @jax.jit
        def f(b2):
            p = ({"W": p64[0]["W"], "b": p64[0]["b"].at[2].set(b2)}, p64[1])
            return jm.objective(NET, p, x64, y, loss=CCE)[0]

        central = float(f(1e-6) - f(-1e-6)) / 2e-6
        right = float(f(1e-6) - f(0.0)) / 1e-6
    assert abs(right) > 1e-3
    np.testing.assert_allclose(central, right / 2, rtol=1e-4)


def test_report_table_and_html():
    x, y = data()
    reg = jm.Regularization(l2w=1e-2)
    good = gradcheck(NET, random_params(), x, y, loss=CCE, reg=reg)
    bad = gradcheck(
        NET, random_params(), x, y, loss=CCE, reg=reg, backward=backward_missing_factor_2
    )
    lines = str(good).splitlines()
    assert lines[0].startswith("MLP(sizes=(3, 6, 4), activations=('relu', 'softmax')), loss=")
    assert "backward: jaxmlp.backprop.backprop" in lines[1]
    assert lines[3].split() == ["manual", "−", "autodiff", "manual", "−", "findiff"] + [
        "autodiff",
        "−",
        "findiff",
        "findiff",
    ]
    assert lines[4].split()[:3] == ["layer", "leaf", "shape"] and lines[4].endswith("result")
    rows = [line.split() for line in lines[5:9]]
    assert [r[:2] for r in rows] == [["0", "W"], ["0", "b"], ["1", "W"], ["1", "b"]]
    assert all(r[-1] == "ok" for r in rows)
    row = good.rows[0]
    assert rows[0][-8:-2] == [
        f"{v:.2e}"
        for v in (
            row.autodiff_abs,
            row.autodiff_rel,
            row.fd_abs,
            row.fd_rel,
            row.autodiff_fd_abs,
            row.autodiff_fd_rel,
        )
    ]
    assert [r[-2] for r in rows] == ["16/0", "6/0", "16/0", "4/0"]  # n/skip
    assert lines[-1].startswith("PASSED in float64: manual vs autodiff within rtol=1e-07")
    bad_text = str(bad)
    assert "backward: tests.test_gradcheck.backward_missing_factor_2" in bad_text
    assert bad_text.splitlines()[-1].startswith("FAILED (2 of 4)")
    rows = [line.split() for line in bad_text.splitlines() if line[:5].strip().isdigit()]
    assert [r[-1] for r in rows] == ["FAIL", "ok"] * 2
    first = bad.rows[0]  # under a failing row: the ratio, the transposed match, the worst entry
    text = bad_text.splitlines()
    below = text[next(i for i, line in enumerate(text) if line.endswith("FAIL")) + 1]
    worst = ", ".join(map(str, first.worst))
    assert f"worst [{worst}]: manual {first.worst_manual:.6g}, autodiff " in below
    assert "transposed: no" in below and first.ratio is None and "ratio —" in below
    html = bad._repr_html_()
    assert html.count("<tr") == 5 and html.count('style="background:#fdd"') == 2
    assert "<table>" in html and "FAILED (2 of 4)" in html


def test_runs_in_float64_and_leaves_x64_off():
    x, y = data()
    params = random_params()
    assert params[0]["W"].dtype == jnp.float32
    report = gradcheck(NET, params, x, y, loss=CCE)
    # float32 central differences with eps = 1e-6 would be off by about 1e-2.
    assert max(r.fd_abs for r in report.rows) < 1e-8
    assert jnp.zeros(()).dtype == jnp.float32 and not jax.config.jax_enable_x64


def test_no_finite_differences_with_zero_samples_and_fixed_key():
    x, y = data()
    params = random_params()
    report = gradcheck(NET, params, x, y, loss=CCE, n_samples=0)
    assert report.passed
    assert all(r.fd_checked == 0 and r.fd_abs is None for r in report.rows)
    assert "      —" in str(report)
    a = gradcheck(NET, params, x, y, loss=CCE, key=jax.random.key(3))
    b = gradcheck(NET, params, x, y, loss=CCE, key=jax.random.PRNGKey(3))  # raw keys too
    assert a == b


@pytest.mark.parametrize(
    "kwargs,error,match",
    [
        (dict(eps=0.0), ValueError, "eps must be a finite number > 0; got 0.0"),
        (dict(n_samples=-1), ValueError, "n_samples must be an integer >= 0; got -1"),
        (dict(fd_rtol=-1.0), ValueError, "fd_rtol must be a finite number >= 0"),
        (dict(backward="backprop"), TypeError, "backward must be a function"),
        (dict(key=0), TypeError, "key must be a JAX PRNG key"),
        (dict(loss="hinge"), ValueError, "unknown loss 'hinge'"),
        (dict(reg=(None,)), ValueError, "reg must hold one Regularization per layer"),
    ],
    ids=["eps", "n_samples", "fd_rtol", "backward-type", "key", "loss", "reg"],
)
def test_bad_arguments(kwargs, error, match):
    x, y = data()
    kwargs = {"loss": CCE, **kwargs}
    with pytest.raises(error, match=match):
        gradcheck(NET, random_params(), x, y, **kwargs)


def test_bad_inputs_fail_like_objective():
    x, y = data()
    params = random_params()
    for args in [(x[:, :2], y), (x, y[:4]), (x, y.astype(jnp.float32))]:
        with pytest.raises(ValueError) as want:
            jm.objective(NET, params, *args, loss=CCE)
        with pytest.raises(ValueError) as got:
            gradcheck(NET, params, *args, loss=CCE)
        assert str(got.value) == str(want.value)


def test_backward_returning_wrong_gradients_is_reported():
    x, y = data()

    def no_biases(net, params, x, y, *, loss, reg):
        return tuple({"W": g["W"]} for g in jit_backprop(net, params, x, y, loss=loss, reg=reg))

    def transposed(net, params, x, y, *, loss, reg):
        g = jit_backprop(net, params, x, y, loss=loss, reg=reg)
        return ({"W": g[0]["W"].T, "b": g[0]["b"]}, g[1])

    with pytest.raises(ValueError, match="backward must return gradients shaped like params"):
        gradcheck(NET, random_params(), x, y, loss=CCE, backward=no_biases)
    report = gradcheck(NET, random_params(), x, y, loss=CCE, backward=transposed)
    assert report.source == (0, "W") and report.findings[0].kind == "transpose"
    assert report.rows[0].transposed and not report.rows[0].passed and report.rows[1].passed


def test_backward_receives_float64_and_reg_in_the_form_given():
    x, y = data()
    seen = {}

    def spy(net, params, x, y, *, loss, reg):
        seen.update(reg=reg, W=params[0]["W"].dtype, x=x.dtype)
        return jit_backprop(net, params, x, y, loss=loss, reg=reg)

    reg = jm.Regularization(l2w=1e-3)
    assert gradcheck(NET, random_params(), x, y, loss=CCE, reg=reg, backward=spy).passed
    assert isinstance(seen["reg"], jm.Regularization)
    assert seen["reg"].l2w.dtype == seen["W"] == seen["x"] == np.float64
    assert float(seen["reg"].l2w) == 1e-3
    gradcheck(NET, random_params(), x, y, loss=CCE, backward=spy)
    assert seen["reg"] is None
