"""The data users really have: every dtype, empty data, misplaced arguments, keys.

The dtype policy (README, "Conventions"): computation runs in the parameters' floating dtype;
inputs ``x`` (and one-hot or regression targets) of any integer, boolean or floating dtype are
cast to it; class labels stay integers. So each public entry point given data of dtype D must
return exactly what it returns for the same values cast by hand to the parameters' dtype.
"""

import jax
import jax.numpy as jnp
import ml_dtypes
import numpy as np
import pytest

import jaxmlp as jm
from jaxmlp.ensemble import fit_many, stack

NET = jm.MLP((3, 5, 3), ("tanh", "softmax"))
REGRESSION = jm.MLP((3, 4, 2), ("sigmoid", "linear"))
CCE = "categorical_crossentropy"
DATA_DTYPES = ["int8", "uint8", "int32", "int64", "bool", "float16", "bfloat16", "float32",
               "float64"]  # fmt: skip


def raw_data(dtype, n=12, seed=0):
    """Inputs of `dtype` holding small whole numbers (exact in every dtype), and labels."""
    rng = np.random.default_rng(seed)
    if dtype == "bool":
        x = rng.integers(0, 2, size=(n, 3)).astype(bool)
    else:
        x = rng.integers(0, 6, size=(n, 3)).astype(ml_dtypes.bfloat16 if dtype == "bfloat16"
                                                    else dtype)  # fmt: skip
    return x, rng.integers(0, 3, size=n).astype(np.int32)


def params_of(dtype, net=NET):
    p = jm.init_params(jax.random.key(1), net)
    return jax.tree.map(lambda a: np.asarray(a, dtype), p)


def same(a, b):
    for u, v in zip(jax.tree.leaves(a), jax.tree.leaves(b)):
        assert jnp.result_type(u) == jnp.result_type(v), (jnp.result_type(u), jnp.result_type(v))
        np.testing.assert_array_equal(np.asarray(u), np.asarray(v))


OPT = jm.optim.adam(1e-2)  # one object: a new optimizer would compile fit's program again


def calls(params, x, y):
    """Every public entry point on ``(x, y)``; returns their results by name."""
    opt = OPT
    kw = dict(loss=CCE, reg=jm.Regularization(l2w=1e-3))
    fit_kw = dict(**kw, epochs=2, batch_size=5, progress=False, validation=(x[:4], y[:4]))
    many = stack([params, params])
    step = jm.train_step(NET, opt, params, opt.init(params), x, y, **kw)
    return {
        "objective": jm.objective(NET, params, x, y, **kw),
        "backprop": jm.backprop(NET, params, x, y, **kw),
        "gradcheck": jm.gradcheck(NET, params, x, y, **kw, n_samples=2).passed,
        "fit": jm.fit(NET, params, opt, x, y, **fit_kw)[:3],
        "fit_many": fit_many(NET, many, opt, x, y, **fit_kw)[:3],
        "evaluate": jm.evaluate(NET, params, x, y, **kw),
        "predict": jm.predict(NET, params, x),
        "train_step": step,
    }


@pytest.mark.parametrize("x64", [False, True], ids=["x64-off", "x64-on"])
@pytest.mark.parametrize("param_dtype", ["float32", "float64"])
def test_every_data_dtype_runs_as_its_values_in_the_params_dtype(x64, param_dtype):
    with jax.enable_x64(x64):
        params = params_of(param_dtype)
        dtype = jnp.result_type(*jax.tree.leaves(params))
        assert dtype == (jnp.float64 if x64 and param_dtype == "float64" else jnp.float32)
        for data_dtype in DATA_DTYPES:
            x, y = raw_data(data_dtype)
            reference = calls(params, np.asarray(x).astype(np.float32).astype(dtype), y)
            got = calls(params, x, y)
            for name in reference:
                if name == "gradcheck":
                    assert got[name], data_dtype
                else:
                    same(got[name], reference[name])
            assert jnp.result_type(got["predict"]) == dtype
            assert jnp.result_type(got["objective"][0]) == dtype


def test_float32_data_in_a_float64_session_trains_in_float64(x64):
    params = params_of("float64")
    x, y = raw_data("float32")
    opt = jm.optim.sgd(0.1)
    r = jm.fit(NET, params, opt, x, y, loss=CCE, epochs=3, progress=False)
    ref = jm.fit(NET, params, opt, x.astype(np.float64), y, loss=CCE, epochs=3, progress=False)
    same(r[:3], ref[:3])
    assert r.params[0]["W"].dtype == jnp.float64
    many = fit_many(NET, stack([params] * 2), opt, x, y, loss=CCE, epochs=3, progress=False)
    assert many.params[0]["W"].dtype == jnp.float64
    np.testing.assert_array_equal(many.model(1).params[0]["W"], ref.params[0]["W"])


def test_regression_targets_of_any_dtype_are_cast(x64):
    params = params_of("float64", REGRESSION)
    x, _ = raw_data("int32")
    y = (np.arange(24) % 5).reshape(12, 2).astype(np.int16)
    got = jm.objective(REGRESSION, params, x, y, loss="mse")[0]
    ref = jm.objective(REGRESSION, params, x.astype(np.float64), y.astype(np.float64), loss="mse")[
        0
    ]
    assert got.dtype == jnp.float64
    np.testing.assert_array_equal(got, ref)


def test_float32_params_with_float64_data_compute_in_float32(x64):
    params = params_of("float32")
    x, y = raw_data("float64")
    out = jm.predict(NET, params, x)
    assert out.dtype == jnp.float32
    np.testing.assert_array_equal(out, jm.predict(NET, params, x.astype(np.float32)))


def test_integer_params_are_refused_naming_them():
    params = jax.tree.map(lambda a: np.asarray(a).astype(np.int32), params_of("float32"))
    x, y = raw_data("float32")
    with pytest.raises(TypeError, match=r"params must have a floating dtype.*got int32"):
        jm.objective(NET, params, x, y, loss=CCE)


def test_float_labels_get_a_message_that_keeps_the_problem():
    params = params_of("float32")
    x, y = raw_data("float32")
    with pytest.raises(ValueError, match=r"y as class labels .* integer dtype; got float32") as e:
        jm.objective(NET, params, x, y.astype(np.float32), loss=CCE)
    assert "regression" in str(e.value)


# ---- errors that name the argument -----------------------------------------------------------


def spiral():
    x, y = jm.spiral(jax.random.key(0), samples=10)
    return x, y, jm.init_params(jax.random.key(1), jm.MLP((2, 8, 3), ("relu", "softmax")))


SPIRAL_NET = jm.MLP((2, 8, 3), ("relu", "softmax"))


@pytest.mark.parametrize(
    "call",
    ["fit", "fit_many", "objective", "backprop", "evaluate", "predict", "gradcheck", "train_step"],
)
def test_empty_data_is_refused_naming_x(call):
    x, y, params = spiral()
    x, y = x[:0], y[:0]
    opt = jm.optim.sgd(0.1)
    fns = {
        "fit": lambda: jm.fit(SPIRAL_NET, params, opt, x, y, loss=CCE, progress=False),
        "fit_many": lambda: fit_many(
            SPIRAL_NET, stack([params] * 2), opt, x, y, loss=CCE, progress=False
        ),  # fmt: skip
        "objective": lambda: jm.objective(SPIRAL_NET, params, x, y, loss=CCE),
        "backprop": lambda: jm.backprop(SPIRAL_NET, params, x, y, loss=CCE),
        "evaluate": lambda: jm.evaluate(SPIRAL_NET, params, x, y, loss=CCE),
        "predict": lambda: jm.predict(SPIRAL_NET, params, x),
        "gradcheck": lambda: jm.gradcheck(SPIRAL_NET, params, x, y, loss=CCE),
        "train_step": lambda: jm.train_step(
            SPIRAL_NET, opt, params, opt.init(params), x, y, loss=CCE
        ),  # fmt: skip
    }
    with pytest.raises(ValueError, match=r"x must hold at least one row; got shape \(0, 2\)"):
        fns[call]()


def test_empty_validation_data_is_named():
    x, y, params = spiral()
    with pytest.raises(ValueError, match=r"validation x must hold at least one row"):
        jm.fit(SPIRAL_NET, params, jm.optim.sgd(0.1), x, y, loss=CCE, progress=False,
               validation=(x[:0], y[:0]))  # fmt: skip


@pytest.mark.parametrize("fn", ["fit", "fit_many"])
def test_validation_data_is_named_as_such(fn):
    x, y, params = spiral()
    bad_x = (jnp.ones((5, 3)), y[:5])
    bad_y = (x[:5], y[:4])
    out_of_range = (x[:5], y[:5].at[0].set(7))
    if fn == "fit":
        run = lambda v: jm.fit(SPIRAL_NET, params, jm.optim.sgd(0.1), x, y, loss=CCE,  # noqa: E731
                               validation=v, progress=False)  # fmt: skip
    else:
        run = lambda v: fit_many(SPIRAL_NET, stack([params] * 2), jm.optim.sgd(0.1), x, y,  # noqa: E731
                                 loss=CCE, validation=v, progress=False)  # fmt: skip
    with pytest.raises(
        ValueError, match=r"^validation x must have shape \(batch, 2\); got \(5, 3\)"
    ):
        run(bad_x)
    with pytest.raises(ValueError, match=r"^validation y must hold 5 labels"):
        run(bad_y)
    with pytest.raises(ValueError, match=r"^validation y holds class labels in \[0, 7\]"):
        run(out_of_range)


@pytest.mark.parametrize("key", [3, np.int64(3), "seed", 3.0, [0, 3]])
@pytest.mark.parametrize("fn", ["fit", "fit_many"])
def test_a_key_that_is_not_a_prng_key_is_refused(fn, key):
    x, y, params = spiral()
    opt = jm.optim.sgd(0.1)
    with pytest.raises(TypeError, match=r"key must be a JAX PRNG key such as jax.random.key\("):
        if fn == "fit":
            jm.fit(SPIRAL_NET, params, opt, x, y, loss=CCE, key=key, progress=False)
        else:
            fit_many(SPIRAL_NET, stack([params] * 2), opt, x, y, loss=CCE, key=key,
                     progress=False)  # fmt: skip


def test_an_integer_key_gets_the_call_that_makes_one():
    x, y, params = spiral()
    with pytest.raises(TypeError, match=r"use jax.random.key\(3\)"):
        jm.fit(SPIRAL_NET, params, jm.optim.sgd(0.1), x, y, loss=CCE, key=3, progress=False)


@pytest.mark.parametrize("fn", ["objective", "backprop", "predict", "fit"])
def test_a_transposed_x_is_named_as_x(fn):
    x, y, params = spiral()
    calls = {
        "objective": lambda: jm.objective(SPIRAL_NET, params, x.T, y, loss=CCE),
        "backprop": lambda: jm.backprop(SPIRAL_NET, params, x.T, y, loss=CCE),
        "predict": lambda: jm.predict(SPIRAL_NET, params, x.T),
        "fit": lambda: jm.fit(
            SPIRAL_NET, params, jm.optim.sgd(0.1), x.T, y, loss=CCE, progress=False
        ),  # fmt: skip
    }
    with pytest.raises(ValueError, match=r"^x must have shape \(batch, 2\); got \(2, 30\) "
                       r"\(it looks transposed: pass x.T\)"):  # fmt: skip
        calls[fn]()
