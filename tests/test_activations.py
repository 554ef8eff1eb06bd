import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxmlp import activations
from tests import reference as ref

ELEMENTWISE = ["linear", "sigmoid", "tanh", "relu", "leaky_relu"]


@pytest.mark.parametrize("name", activations.NAMES)
def test_forward_equals_numpy_reference(x64, name):
    z = np.random.default_rng(0).normal(size=(7, 5)) * 3
    got = activations.get(name).fn(jnp.asarray(z))
    np.testing.assert_allclose(got, ref.ACTIVATIONS[name](z), rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("name", ELEMENTWISE)
def test_hand_derivative_equals_autodiff(x64, name):
    act = activations.get(name)
    z = jnp.asarray(np.random.default_rng(1).normal(size=50) * 3)
    autodiff = jax.vmap(jax.grad(act.fn))(z)
    np.testing.assert_allclose(act.derivative(z), autodiff, rtol=1e-10, atol=1e-15)
    g = jnp.asarray(np.random.default_rng(2).normal(size=50))
    np.testing.assert_allclose(act.backward(z, g), g * autodiff, rtol=1e-10, atol=1e-15)


def test_softmax_backward_equals_vjp(x64):
    rng = np.random.default_rng(3)
    z, g = jnp.asarray(rng.normal(size=(4, 6))), jnp.asarray(rng.normal(size=(4, 6)))
    _, vjp = jax.vjp(activations.softmax, z)
    np.testing.assert_allclose(activations.softmax_backward(z, g), vjp(g)[0], rtol=1e-12)


@pytest.mark.parametrize(
    "name, expected",
    [("relu", 0.0), ("leaky_relu", 0.01), ("linear", 1.0)],
    ids=["relu_at_0_is_0", "leaky_relu_at_0_is_slope", "linear_at_0_is_1"],
)
def test_derivative_at_the_kink(name, expected):
    act = activations.get(name)
    assert act.derivative(jnp.zeros(())) == np.float32(expected)
    assert jax.grad(act.fn)(0.0) == np.float32(expected)


@pytest.mark.parametrize("name", ["sigmoid", "tanh", "softmax"])
def test_saturation_is_finite(name):
    z = jnp.array([[-1000.0, 0.0, 1000.0]])
    act = activations.get(name)
    a = act.fn(z)
    chex.assert_tree_all_finite(a)
    chex.assert_tree_all_finite(act.backward(z, jnp.ones_like(z)))
    chex.assert_tree_all_finite(jax.grad(lambda z: act.fn(z).sum())(z))


def test_unknown_name_lists_the_known_ones():
    with pytest.raises(ValueError, match=r"unknown activation 'gelu'.*'relu'"):
        activations.get("gelu")
