import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxmlp as jm
from tests import reference as ref

# ---- MLP ----------------------------------------------------------------------------------


def test_mlp_is_hashable_and_a_static_jit_argument():
    net = jm.MLP([2, 8, 3], ["relu", "softmax"])
    assert net == jm.MLP((2, 8, 3), ("relu", "softmax"))
    assert hash(net) == hash(jm.MLP((2, 8, 3), ("relu", "softmax")))
    assert (net.n_layers, net.in_features, net.out_features) == (2, 2, 3)
    params = jm.init_params(jax.random.key(0), net)
    f = jax.jit(jm.forward, static_argnums=0)
    np.testing.assert_allclose(
        f(net, params, jnp.ones((4, 2))), jm.forward(net, params, jnp.ones((4, 2)))
    )


@pytest.mark.parametrize(
    "sizes, acts, error, match",
    [
        ((3,), (), ValueError, r"at least 2 entries"),
        (
            (2, 0, 3),
            ("relu", "softmax"),
            ValueError,
            r"sizes\[1\] must be a positive integer; got 0",
        ),
        ((2, 2.5), ("relu",), ValueError, r"sizes\[1\] must be a positive integer; got 2.5"),
        ((2, True), ("relu",), ValueError, r"sizes\[1\]"),
        ((2, 8, 3), ("relu",), ValueError, r"one name per layer: 2 .* got 1"),
        ((2, 3), ("gelu",), ValueError, r"unknown activations\[0\] 'gelu'"),
        ((2, 3), "relu", TypeError, r"activations must be a sequence"),
        (5, ("relu",), TypeError, r"sizes must be a sequence"),
    ],
    ids=[
        "one_size",
        "zero_width",
        "float_width",
        "bool_width",
        "too_few_activations",
        "unknown_activation",
        "activation_string",
        "sizes_int",
    ],
)
def test_mlp_rejects_bad_architectures(sizes, acts, error, match):
    with pytest.raises(error, match=match):
        jm.MLP(sizes, acts)


# ---- init_params --------------------------------------------------------------------------


def test_init_params_shapes_and_zero_biases():
    net = jm.MLP((2, 64, 32, 3), ("relu", "tanh", "softmax"))
    params = jm.init_params(jax.random.key(0), net)
    assert isinstance(params, tuple) and len(params) == 3
    assert [(p["W"].shape, p["b"].shape) for p in params] == [
        ((2, 64), (64,)),
        ((64, 32), (32,)),
        ((32, 3), (3,)),
    ]
    for p in params:
        assert p["W"].dtype == jnp.float32
        assert np.all(np.asarray(p["b"]) == 0)


@pytest.mark.parametrize(
    "scheme, std",
    [("he", np.sqrt(2 / 400)), ("glorot", np.sqrt(6 / 800) / np.sqrt(3)), ("nnfs", 0.01)],
    ids=["he", "glorot", "nnfs"],
)
def test_init_schemes_have_the_stated_spread(scheme, std):
    net = jm.MLP((400, 400), ("linear",))
    W = np.asarray(jm.init_params(jax.random.key(1), net, scheme=scheme)[0]["W"])
    assert abs(W.mean()) < 0.05 * std
    assert W.std() == pytest.approx(std, rel=0.02)
    if scheme == "glorot":
        assert np.abs(W).max() <= np.sqrt(6 / 800)


def test_init_follows_x64(x64):
    params = jm.init_params(jax.random.key(0), jm.MLP((2, 3), ("relu",)))
    assert params[0]["W"].dtype == jnp.float64 and params[0]["b"].dtype == jnp.float64


def test_init_is_deterministic_in_the_key():
    net = jm.MLP((2, 5, 3), ("relu", "softmax"))
    a, b = jm.init_params(jax.random.key(3), net), jm.init_params(jax.random.key(3), net)
    c = jm.init_params(jax.random.key(4), net)
    np.testing.assert_array_equal(a[0]["W"], b[0]["W"])
    assert not np.array_equal(a[0]["W"], c[0]["W"])


@pytest.mark.parametrize("dtype", [jnp.float32, jnp.float64])
def test_init_params_gives_the_bits_of_the_op_by_op_draw(dtype):
    """One compiled program per net draws exactly what earlier versions drew op by op, so a
    seed gives the same weights (and a notebook's numbers stay put) across versions."""
    net = jm.MLP((3, 17, 5, 2), ("tanh", "relu", "sigmoid"))
    with jax.enable_x64(dtype == jnp.float64):
        for scheme in ("he", "glorot", "nnfs"):
            got = jm.init_params(jax.random.key(4), net, scheme, dtype=dtype)
            keys = jax.random.split(jax.random.key(4), net.n_layers)
            for k, p, fan_in, fan_out in zip(keys, got, net.sizes[:-1], net.sizes[1:]):
                shape = (fan_in, fan_out)
                if scheme == "he":
                    W = jax.random.normal(k, shape, dtype) * np.sqrt(2.0 / fan_in)
                elif scheme == "glorot":
                    r = np.sqrt(6.0 / (fan_in + fan_out))
                    W = jax.random.uniform(k, shape, dtype, minval=-r, maxval=r)
                else:
                    W = 0.01 * jax.random.normal(k, shape, dtype)
                np.testing.assert_array_equal(p["W"], W, err_msg=scheme)
                assert p["W"].dtype == dtype and not np.any(p["b"])


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        ({"key": 0}, TypeError, r"key must be a JAX PRNG key"),
        ({"scheme": "xavier"}, ValueError, r"unknown scheme 'xavier'; expected one of 'he'"),
        ({"dtype": jnp.int32}, ValueError, r"dtype must be a floating dtype"),
        ({"net": (2, 3)}, TypeError, r"net must be a jaxmlp.MLP"),
    ],
    ids=["int_key", "unknown_scheme", "int_dtype", "not_a_net"],
)
def test_init_params_rejects_bad_arguments(kwargs, error, match):
    args = {"key": jax.random.key(0), "net": jm.MLP((2, 3), ("relu",))} | kwargs
    with pytest.raises(error, match=match):
        jm.init_params(**args)


# ---- forward ------------------------------------------------------------------------------


def random_net_params(rng, sizes):
    Ws = [rng.normal(size=(i, o)) for i, o in zip(sizes[:-1], sizes[1:])]
    bs = [rng.normal(size=o) * 0.5 for o in sizes[1:]]
    params = tuple({"W": jnp.asarray(W), "b": jnp.asarray(b)} for W, b in zip(Ws, bs))
    return Ws, bs, params


DEPTHS = {1: (3, 4), 2: (3, 5, 4), 3: (3, 6, 5, 4), 4: (3, 4, 6, 5, 4)}


# A batch of 7 is longer than every layer of DEPTHS, so the forward pass runs in its column
# form; a batch of 3 is not, so it runs in rows. Both must give the seeds' numbers.
BATCHES = {"rows": 3, "columns": 7}


@pytest.mark.parametrize("depth", sorted(DEPTHS), ids=lambda d: f"{d}_layers")
@pytest.mark.parametrize("act", jm.activations.NAMES)
@pytest.mark.parametrize("batch", list(BATCHES.values()), ids=list(BATCHES))
def test_forward_equals_numpy_reference(x64, depth, act, batch):
    rng = np.random.default_rng(depth)
    sizes = DEPTHS[depth]
    acts = (["tanh", "relu", "sigmoid", "leaky_relu"] * 2)[: depth - 1] + [act]
    assert_forward_equals_reference(rng, sizes, acts, batch)


@pytest.mark.parametrize("batch", list(BATCHES.values()), ids=list(BATCHES))
def test_forward_with_a_hidden_softmax_equals_numpy_reference(x64, batch):
    """Softmax is not element-wise: in the column form it must still run over the features."""
    rng = np.random.default_rng(5)
    assert_forward_equals_reference(rng, (3, 5, 4), ["softmax", "sigmoid"], batch)


def assert_forward_equals_reference(rng, sizes, acts, batch):
    net = jm.MLP(sizes, acts)
    Ws, bs, params = random_net_params(rng, sizes)
    x = rng.normal(size=(batch, sizes[0]))
    his, hos = ref.forward(Ws, bs, acts, x)
    np.testing.assert_allclose(jm.forward(net, params, jnp.asarray(x)), hos[-1], rtol=1e-10)
    zs, activations = jm.forward_intermediates(net, params, jnp.asarray(x))
    assert len(zs) == len(acts) and len(activations) == len(acts) + 1
    for z, hi in zip(zs, his):
        assert z.shape == hi.shape
        np.testing.assert_allclose(z, hi, rtol=1e-10)
    for a, ho in zip(activations, hos):
        assert a.shape == ho.shape
        np.testing.assert_allclose(a, ho, rtol=1e-10)


NET = jm.MLP((2, 4, 3), ("relu", "softmax"))


def good_params():
    return jm.init_params(jax.random.key(0), NET)


@pytest.mark.parametrize(
    "params, x, error, match",
    [
        (
            None,
            jnp.ones(2),
            ValueError,
            r"x must have shape \(batch, 2\); got \(2,\) \(for one example use x\[None, :\]\)",
        ),
        (None, jnp.ones((5, 3)), ValueError, r"x must have shape \(batch, 2\); got \(5, 3\)"),
        (
            None,
            jnp.array([[1.0, np.nan], [0.0, 1.0]]),
            ValueError,
            r"x must be finite; it holds 1 NaN and 0 infinite value\(s\), the first at index \(0",
        ),
        (
            None,
            jnp.array([[np.inf, 0.0]]),
            ValueError,
            r"x must be finite; it holds 0 NaN and 1 infinite",
        ),
        (None, [[1.0, 2.0]], TypeError, r"x must be an array"),
        (
            "list",
            jnp.ones((5, 2)),
            TypeError,
            r"params must be a tuple .* got list \(convert it with tuple",
        ),
        (
            "short",
            jnp.ones((5, 2)),
            ValueError,
            r"params must hold 2 layer\(s\) for sizes \(2, 4, 3\); got 1",
        ),
        (
            "transposed",
            jnp.ones((5, 2)),
            ValueError,
            r"params\[0\]\['W'\] must have shape \(2, 4\) for sizes \(2, 4, 3\); got \(4, 2\)",
        ),
        (
            "missing_b",
            jnp.ones((5, 2)),
            ValueError,
            r"params\[1\] must be a dict with keys 'W' and 'b'; got \['W'\]",
        ),
    ],
    ids=[
        "1d_x",
        "wrong_width",
        "nan_x",
        "inf_x",
        "list_x",
        "list_params",
        "too_few_layers",
        "transposed_W",
        "missing_bias",
    ],
)
def test_forward_rejects_bad_input(params, x, error, match):
    p = good_params()
    if params == "list":
        p = list(p)
    elif params == "short":
        p = p[:1]
    elif params == "transposed":
        p = ({"W": p[0]["W"].T, "b": p[0]["b"]}, p[1])
    elif params == "missing_b":
        p = (p[0], {"W": p[1]["W"]})
    with pytest.raises(error, match=match):
        jm.forward(NET, p, x)


def test_forward_under_jit_checks_shapes_at_trace_time():
    f = jax.jit(jm.forward, static_argnums=0)
    with pytest.raises(ValueError, match=r"x must have shape \(batch, 2\)"):
        f(NET, good_params(), jnp.ones((5, 3)))
