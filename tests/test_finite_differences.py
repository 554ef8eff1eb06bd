"""`jaxmlp.finite_differences.eps_sweep`: the V curve of central differences, and its plot."""

import functools

import jax
import jax.numpy as jnp
import matplotlib
import numpy as np
import pytest

import jaxmlp as jm
from jaxmlp import plotting
from jaxmlp.finite_differences import EPS_GRIDS, EpsSweep, eps_sweep, value_and_kinks

matplotlib.use("Agg")

TANH = jm.MLP((3, 6, 2), ("tanh", "linear"))


def smooth_problem(seed=0):
    """A tanh net with an MSE loss: no kinks, so every sampled entry is checked at every ε."""
    rng = np.random.default_rng(seed)
    params = tuple(
        {
            "W": jnp.asarray(rng.normal(size=(i, o)) / np.sqrt(i), jnp.float32),
            "b": jnp.asarray(0.1 * rng.normal(size=o), jnp.float32),
        }
        for i, o in zip(TANH.sizes[:-1], TANH.sizes[1:])
    )
    x = jnp.asarray(rng.normal(size=(16, 3)), jnp.float32)
    y = jnp.asarray(rng.normal(size=(16, 2)), jnp.float32)
    return params, x, y


@functools.cache
def sweep(dtype):
    """The default sweep in `dtype`, shared by the tests that read its numbers (about 0.5 s)."""
    return eps_sweep(TANH, *smooth_problem(), loss="mse", dtype=dtype)


def slope(s: EpsSweep, select: np.ndarray) -> float:
    """The least-squares slope of log(median error) against log(ε) on the selected steps."""
    return float(np.polyfit(np.log10(s.eps[select]), np.log10(s.median_error[select]), 1)[0])


def test_float64_sweep_is_a_v():
    # Measured (seed 0): best ε 3.2e-5 with a median error of 1.4e-10; the ends 1.3e7 (ε=1e-12)
    # and 8.5e6 (ε=0.1) times the minimum. Over seeds 0..4 the best ε is 1e-5 or 3.2e-5.
    s = sweep("float64")
    assert s.dtype == "float64" and s.n_entries == 8 + 6 + 8 + 2  # W_0, b_0 (6), W_1, b_1 (2)
    np.testing.assert_array_equal(s.eps, EPS_GRIDS["float64"])
    assert not s.skipped.any() and not s.unresolved.any()
    assert np.all(s.max_error >= s.median_error)
    assert s.median_error[0] > 1e5 * s.min_error and s.median_error[-1] > 1e5 * s.min_error
    assert s.min_error < 1e-9
    assert s.unit_roundoff == 2.0**-53 and s.predicted_best == pytest.approx(4.81e-6, rel=1e-3)
    # u^(1/3) times the function's scale (3|f|/|f'''|)^(1/3), here about 2 to 7.
    assert s.predicted_best / 30 <= s.best_eps <= 30 * s.predicted_best


def test_float64_slopes_truncation_and_rounding():
    # Measured: +2.00 right (ε >= 10·best: pure truncation, ε²·f'''/6), −1.03 left (ε <= best/1000:
    # pure rounding, u·|f|/ε); −0.96 to −1.03 over seeds 0..4.
    s = sweep("float64")
    assert 1.5 <= slope(s, s.eps >= 10 * s.best_eps) <= 2.5
    assert -1.6 <= slope(s, s.eps <= s.best_eps / 1000) <= -0.5


def test_float32_sweep_bottom_is_higher_and_further_right():
    # Measured: best ε 1e-2 (seeds 0..4 alike) with a median error of 2.7e-5, 2e5 times the
    # float64 minimum (u^(2/3) predicts a ratio of about 6e5). u^(1/3) = 3.9e-3 times the
    # scale factor 2 to 7 measured in float64 gives 8e-3 to 3e-2; the asserted range adds half
    # a decade each side: 1e-3 to 3.2e-2.
    s, s64 = sweep("float32"), sweep("float64")
    assert s.dtype == "float32" and s.unit_roundoff == 2.0**-24
    np.testing.assert_array_equal(s.eps, EPS_GRIDS["float32"])
    assert 1e-3 <= s.best_eps <= 3.2e-2
    assert s.min_error > 1e4 * s64.min_error
    assert s.min_error < 1e-3
    # The rounding arm: from 1e-6 to best/100 the error falls as 1/ε (measured −1.04).
    assert -1.6 <= slope(s, (s.eps >= 1e-6) & (s.eps <= s.best_eps / 100)) <= -0.5
    # At the largest steps truncation dominates in both dtypes: the same error.
    np.testing.assert_allclose(s.median_error[-3], s64.median_error[-1], rtol=0.05)


def test_str_marks_the_minimum_once():
    s = sweep("float64")
    text = str(s)
    assert text.count("<- min") == 1
    (row,) = [line for line in text.splitlines() if line.endswith("<- min")]
    assert float(row.split()[0]) == pytest.approx(s.best_eps, rel=1e-2)
    assert len(text.splitlines()) == len(s.eps) + 4
    assert "float64" in text and "u^(1/3) = 4.81e-06" in text


def test_relu_entry_near_a_kink_is_skipped_at_large_steps():
    # z[0, 0] = x[0] @ W_0[:, 0] + b_0[0] = 1e-3: moving b_0[0] or W_0[0, 0] (x[0, 0] = -1) by
    # ε > 1e-3 crosses the ReLU's kink. Every other pre-activation is >= 0.4 away, farther than
    # any ε·|x| (<= 2e-2) here, and W_0[1, 0] does not move z[0, 0] (x[0, 1] = 0).
    net = jm.MLP((2, 2, 1), ("relu", "linear"))
    W0 = np.array([[1.0, 0.5], [0.0, 0.3]])
    params = (
        {"W": jnp.asarray(W0, jnp.float32), "b": jnp.asarray([1.001, 2.0], jnp.float32)},
        {"W": jnp.asarray([[0.7], [-0.4]], jnp.float32), "b": jnp.asarray([0.1], jnp.float32)},
    )
    x = jnp.asarray([[-1.0, 0.0], [1.0, 1.0], [2.0, -1.0], [-2.0, 2.0]], jnp.float32)
    y = jnp.asarray([[0.5], [-0.2], [1.0], [0.3]], jnp.float32)
    s = eps_sweep(net, params, x, y, loss="mse", eps=[1e-6, 1e-4, 1e-2])
    assert s.n_entries == 4 + 2 + 2 + 1  # every entry sampled
    np.testing.assert_array_equal(s.skipped, [0, 0, 2])
    # Within one linear region the objective is quadratic in each entry: central differences
    # are exact up to rounding. The kink's two entries, left in, would be off by 25% and 150%.
    assert np.all(s.max_error < 1e-6)


def test_labels_l1_and_relu_kinks():
    # Class labels stay integers; the L1 penalty and the ReLUs add kinks, crossed only by the
    # largest steps (measured: 0, 1 and 8 of 26 entries skipped).
    net = jm.MLP((3, 6, 4), ("relu", "softmax"))
    params = jm.init_params(jax.random.key(0), net)
    x, y = jax.random.normal(jax.random.key(1), (10, 3)), jnp.arange(10) % 4
    reg = (jm.Regularization(l1w=1e-3), None)
    s = eps_sweep(net, params, x, y, loss="categorical_crossentropy", reg=reg,
                  eps=[1e-6, 1e-2, 1e-1], dtype="float32")  # fmt: skip
    assert s.skipped[0] == 0 and 0 < s.skipped[-1] < s.n_entries
    assert np.all(np.diff(s.skipped) >= 0)
    assert s.median_error[1] < 1e-3 and s.median_error[0] > s.median_error[1]


def test_float32_step_below_resolution_is_unresolved():
    # float32's spacing at 1 is 1.2e-7: 1 ± 1e-8 both round to 1, and the entry is left out.
    net = jm.MLP((1, 1), ("linear",))
    params = ({"W": jnp.ones((1, 1)), "b": jnp.full((1,), 0.5)},)
    x, y = jnp.ones((3, 1)), jnp.zeros((3, 1))
    s = eps_sweep(net, params, x, y, loss="mse", eps=[1e-8, 1e-3], dtype="float32")
    np.testing.assert_array_equal(s.unresolved, [2, 0])  # b = 0.5 likewise
    assert np.isnan(s.median_error[0]) and np.isfinite(s.median_error[1])
    assert s.best_eps == 1e-3


def test_no_compilation_per_step():
    params, x, y = smooth_problem()
    eps_sweep(TANH, params, x, y, loss="mse", eps=[1e-3])
    before = value_and_kinks._cache_size()
    s = eps_sweep(TANH, params, x, y, loss="mse", eps=np.logspace(-8, -2, 7), n_samples=2)
    assert value_and_kinks._cache_size() == before
    assert len(s.eps) == 7 and s.n_entries == 8


def test_key_chooses_the_entries():
    params, x, y = smooth_problem()
    kwargs = {"loss": "mse", "eps": [1e-9], "n_samples": 3}
    a = eps_sweep(TANH, params, x, y, key=jax.random.key(0), **kwargs)
    b = eps_sweep(TANH, params, x, y, **kwargs)
    c = eps_sweep(TANH, params, x, y, key=jax.random.key(5), **kwargs)
    np.testing.assert_array_equal(a.max_error, b.max_error)  # default: jax.random.key(0)
    assert not np.array_equal(a.max_error, c.max_error)


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"eps": [1e-6, -1e-3]}, ValueError, r"eps must be .*> 0; got -0.001 at index 1"),
        ({"eps": [0.0]}, ValueError, "eps must be"),
        ({"eps": [float("nan")]}, ValueError, "eps must be"),
        ({"eps": []}, ValueError, "eps must be a 1-D sequence"),
        ({"eps": 1e-6}, ValueError, "eps must be a 1-D sequence"),
        ({"eps": [[1e-6]]}, ValueError, "eps must be a 1-D sequence"),
        ({"eps": ["small"]}, ValueError, "eps must be a 1-D sequence"),
        ({"dtype": "float16"}, ValueError, "unknown dtype 'float16'"),
        ({"dtype": "double precision"}, ValueError, "unknown dtype"),
        ({"n_samples": 0}, ValueError, "n_samples must be a positive integer"),
        ({"key": 0}, TypeError, "key must be a JAX PRNG key"),
        ({"loss": "hinge"}, ValueError, "unknown loss"),
    ],
    ids=["eps-negative", "eps-zero", "eps-nan", "eps-empty", "eps-scalar", "eps-2d",
         "eps-string", "dtype-float16", "dtype-unknown", "n_samples-0", "key-int", "loss"],
)  # fmt: skip
def test_validation_names_the_argument(kwargs, error, match):
    params, x, y = smooth_problem()
    with pytest.raises(error, match=match):
        eps_sweep(TANH, params, x, y, **{"loss": "mse", **kwargs})


def test_dtype_accepts_numpy_types():
    params, x, y = smooth_problem()
    s = eps_sweep(TANH, params, x, y, loss="mse", eps=[1e-3], n_samples=1, dtype=np.float32)
    assert s.dtype == "float32"


def test_plot_eps_sweep(tmp_path):
    import matplotlib.pyplot as plt

    s = sweep("float64")
    fig = plotting.plot_eps_sweep(s)
    try:
        ax = fig.axes[0]
        assert len(ax.get_lines()) >= 2
        assert ax.get_xscale() == ax.get_yscale() == "log"
        assert "float64" in ax.get_title() and ax.get_xlabel() and ax.get_ylabel()
        np.testing.assert_array_equal(ax.get_lines()[0].get_xdata(), s.eps)
    finally:
        plt.close(fig)
    path = tmp_path / "v.png"
    plotting.plot_eps_sweep(sweep("float32"), path=path)
    assert path.stat().st_size > 0
    fig, axes = plt.subplots(1, 2)
    try:
        assert plotting.plot_eps_sweep(s, ax=axes[1]) is fig
        assert len(axes[1].get_lines()) >= 2 and not axes[0].get_lines()
    finally:
        plt.close(fig)
