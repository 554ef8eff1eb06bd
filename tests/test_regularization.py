import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.flatten_util import ravel_pytree

import jaxmlp as jm
from tests import reference as ref

SEED_REG = jm.Regularization(l1w=0.01, l1b=0.005, l2w=0.001, l2b=0.0005)


def seed_example_params():
    """The seeds' worked example, weights [0.5, -1.2, 0.8] and biases [0.2, -0.1], as a
    1-1-1-1 network: one weight and one bias per layer (the third bias is 0)."""
    return tuple(
        {"W": jnp.array([[w]]), "b": jnp.array([b])}
        for w, b in zip([0.5, -1.2, 0.8], [0.2, -0.1, 0.0])
    )


def test_seed_worked_example_total_loss(x64):
    """Data loss 0.3 and λ = 0.01, 0.005, 0.001, 0.0005 give total loss 0.328855."""
    net = jm.MLP((1, 1, 1, 1), ("linear", "linear", "linear"))
    params = seed_example_params()
    x = jnp.array([[1.0]])
    # Choose the target so that the mean squared error is exactly 0.3.
    y = jm.forward(net, params, x) + jnp.sqrt(0.3)
    total, parts = jm.objective(net, params, x, y, loss="mse", reg=SEED_REG)
    np.testing.assert_allclose(parts["data"], 0.3, rtol=1e-12)
    np.testing.assert_allclose(parts["penalty"], 0.028855, rtol=1e-12)
    np.testing.assert_allclose(total, 0.328855, rtol=1e-12)
    np.testing.assert_allclose(jm.penalty(params, SEED_REG), 0.028855, rtol=1e-12)


def test_seed_worked_example_float32():
    total = 0.3 + jm.penalty(seed_example_params(), SEED_REG)
    assert total.dtype == jnp.float32
    np.testing.assert_allclose(total, 0.328855, rtol=1e-6)


def random_params(rng, sizes, zeros=False):
    params = []
    for i, o in zip(sizes[:-1], sizes[1:]):
        W, b = rng.normal(size=(i, o)), rng.normal(size=o)
        if zeros:
            W[0, 0] = 0.0
            b[0] = 0.0
        params.append({"W": jnp.asarray(W), "b": jnp.asarray(b)})
    return tuple(params)


def test_per_layer_strengths(x64):
    rng = np.random.default_rng(0)
    params = random_params(rng, (3, 4, 5, 2))
    regs = [(0.1, 0.0, 0.0, 0.2), None, (0.0, 0.3, 0.4, 0.0)]
    reg = tuple(None if r is None else jm.Regularization(*r) for r in regs)
    Ws = [np.asarray(p["W"]) for p in params]
    bs = [np.asarray(p["b"]) for p in params]
    expected = ref.penalty(Ws, bs, [r or (0, 0, 0, 0) for r in regs])
    np.testing.assert_allclose(jm.penalty(params, reg), expected, rtol=1e-12)
    np.testing.assert_allclose(jm.penalty(params, None), 0.0)


@pytest.mark.parametrize(
    "reg",
    [
        jm.Regularization(l1w=0.1),
        jm.Regularization(l1b=0.1),
        jm.Regularization(l2w=0.1),
        jm.Regularization(l2b=0.1),
        jm.Regularization(0.01, 0.02, 0.03, 0.04),
    ],
    ids=["l1w", "l1b", "l2w", "l2b", "all"],
)
def test_hand_penalty_gradient_equals_autodiff(x64, reg):
    params = random_params(np.random.default_rng(1), (3, 4, 2), zeros=True)
    autodiff = jax.grad(jm.penalty)(params, reg)
    manual = jm.penalty_grad(params, reg)
    jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-12), manual, autodiff)


def test_l1_gradient_at_zero_is_plus_lambda():
    """The seeds' `if weight >= 0: 1`: at exactly 0 the L1 subgradient is +λ, through the
    public objective's jax.grad as well as the hand-written gradient."""
    net = jm.MLP((2, 2), ("linear",))
    params = ({"W": jnp.zeros((2, 2)), "b": jnp.zeros(2)},)
    reg = jm.Regularization(l1w=0.3, l1b=0.7)
    x, y = jnp.zeros((1, 2)), jnp.zeros((1, 2))  # data gradient is exactly 0 here
    grads = jax.grad(lambda p: jm.objective(net, p, x, y, loss="mse", reg=reg)[0])(params)
    np.testing.assert_array_equal(grads[0]["W"], np.full((2, 2), 0.3, np.float32))
    np.testing.assert_array_equal(grads[0]["b"], np.full(2, 0.7, np.float32))
    manual = jm.penalty_grad(params, reg)
    np.testing.assert_array_equal(manual[0]["W"], grads[0]["W"])
    np.testing.assert_array_equal(manual[0]["b"], grads[0]["b"])


CASES = [
    ((3, 5, 3), ("tanh", "softmax"), "categorical_crossentropy"),
    ((3, 5, 4, 2), ("sigmoid", "tanh", "sigmoid"), "binary_crossentropy"),
    ((3, 6, 2), ("relu", "linear"), "mse"),
    ((3, 4, 2), ("leaky_relu", "tanh"), "mae"),
]


@pytest.mark.parametrize("sizes, acts, loss", CASES, ids=[c[2] for c in CASES])
def test_autodiff_equals_finite_differences(x64, sizes, acts, loss):
    rng = np.random.default_rng(2)
    net = jm.MLP(sizes, acts)
    params = random_params(rng, sizes)
    x = jnp.asarray(rng.normal(size=(6, sizes[0])))
    if loss == "categorical_crossentropy":
        y = jnp.asarray(rng.integers(0, sizes[-1], size=6))
    elif loss == "binary_crossentropy":
        y = jnp.asarray(rng.integers(0, 2, size=(6, sizes[-1])).astype(float))
    else:
        y = jnp.asarray(rng.normal(size=(6, sizes[-1])))
    reg = jm.Regularization(0.01, 0.02, 0.03, 0.04)

    def f(p):
        return jm.objective(net, p, x, y, loss=loss, reg=reg)[0]

    grads = jax.grad(f)(params)
    f = jax.jit(f)
    h = 1e-6
    flat, unravel = ravel_pytree(params)
    fd = np.empty(flat.size)
    for i in range(flat.size):
        e = jnp.zeros_like(flat).at[i].set(h)
        fd[i] = (f(unravel(flat + e)) - f(unravel(flat - e))) / (2 * h)
    # Random weights keep every |w| and every ReLU input far from 0 relative to h.
    np.testing.assert_allclose(ravel_pytree(grads)[0], fd, rtol=1e-6, atol=1e-9)


def test_regularization_is_a_pytree_of_data():
    reg = jm.Regularization(0.1, 0.2, 0.3, 0.4)
    assert jax.tree.leaves(reg) == [0.1, 0.2, 0.3, 0.4]
    doubled = jax.tree.map(lambda v: 2 * v, reg)
    assert isinstance(doubled, jm.Regularization) and doubled.l2b == 0.8
    # vmap over a batch of strengths: one penalty per strength.
    params = ({"W": jnp.ones((2, 2)), "b": jnp.ones(2)},)
    strengths = jm.Regularization(l2w=jnp.array([0.0, 1.0, 2.0]))
    batched = jax.vmap(jm.penalty, in_axes=(None, jm.Regularization(None, None, 0, None)))
    np.testing.assert_allclose(batched(params, strengths), [0.0, 4.0, 8.0])
    with pytest.raises(ValueError, match=r"Regularization.l1w is None"):
        jm.penalty(params, jm.Regularization(None, 0, 0, 0))


def test_elastic_net():
    r = jm.Regularization.elastic_net(0.1, l1_ratio=0.3)
    np.testing.assert_allclose([r.l1w, r.l1b, r.l2w, r.l2b], [0.03, 0.03, 0.07, 0.07])
    r = jm.Regularization.elastic_net(0.1, l1_ratio=1.0, biases=False)
    assert (r.l1w, r.l1b, r.l2w, r.l2b) == (0.1, 0.0, 0.0, 0.0)
    with pytest.raises(ValueError, match=r"l1_ratio must be in \[0, 1\]; got 1.5"):
        jm.Regularization.elastic_net(0.1, l1_ratio=1.5)
    with pytest.raises(ValueError, match=r"strength must be >= 0; got -1"):
        jm.Regularization.elastic_net(-1)


@pytest.mark.parametrize(
    "make, error, match",
    [
        (
            lambda: jm.Regularization(l2w=-1e-4),
            ValueError,
            r"Regularization.l2w must be >= 0; got -0.0001",
        ),
        (
            lambda: jm.Regularization(l1b=float("nan")),
            ValueError,
            r"Regularization.l1b must be finite",
        ),
        (lambda: jm.Regularization(l1w="big"), TypeError, r"Regularization.l1w must be a number"),
        (
            lambda: jm.penalty(
                random_params(np.random.default_rng(0), (2, 3, 2)), (jm.Regularization(),)
            ),
            ValueError,
            r"reg must hold one Regularization per layer \(2\); got 1",
        ),
        (
            lambda: jm.penalty(random_params(np.random.default_rng(0), (2, 3)), {"l2w": 0.1}),
            TypeError,
            r"reg must be a jaxmlp.Regularization",
        ),
        (
            lambda: jm.penalty(random_params(np.random.default_rng(0), (2, 3)), (0.1,)),
            TypeError,
            r"reg\[0\] must be a jaxmlp.Regularization or None; got float",
        ),
    ],
    ids=["negative", "nan", "string", "per_layer_count", "dict_reg", "float_in_tuple"],
)
def test_bad_regularization_is_named(make, error, match):
    with pytest.raises(error, match=match):
        make()
