import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxmlp as jm
from jaxmlp import losses
from tests import reference as ref

# Every output activation each loss accepts.
PAIRS = (
    [("mse", act) for act in jm.activations.NAMES]
    + [("mae", act) for act in jm.activations.NAMES]
    + [
        ("binary_crossentropy", "sigmoid"),
        ("binary_crossentropy", "softmax"),
        ("categorical_crossentropy", "softmax"),
        ("categorical_crossentropy", "sigmoid"),
    ]
)


def targets(rng, loss, batch, out, one_hot=False):
    if loss == "categorical_crossentropy":
        labels = rng.integers(0, out, size=batch)
        return ref.one_hot(labels, out) if one_hot else labels
    if loss == "binary_crossentropy":
        return rng.integers(0, 2, size=(batch, out)).astype(float)
    return rng.normal(size=(batch, out))


@pytest.mark.parametrize("depth", [1, 2, 3], ids=lambda d: f"{d}_layers")
@pytest.mark.parametrize("loss, act", PAIRS, ids=[f"{a}+{l}" for l, a in PAIRS])
def test_objective_equals_numpy_reference(x64, loss, act, depth):
    rng = np.random.default_rng(depth)
    sizes = (3, 5, 6, 4)[-depth - 1 :]
    acts = ["tanh", "relu"][: depth - 1] + [act]
    Ws = [rng.normal(size=(i, o)) for i, o in zip(sizes[:-1], sizes[1:])]
    bs = [rng.normal(size=o) for o in sizes[1:]]
    regs = [(0.01, 0.02, 0.003, 0.004)] * depth
    x = rng.normal(size=(9, sizes[0]))
    y = targets(rng, loss, 9, sizes[-1])
    his, hos = ref.forward(Ws, bs, acts, x)
    expected_data = ref.data_loss(loss, act, his[-1], hos[-1], y)
    expected_pen = ref.penalty(Ws, bs, regs)

    net = jm.MLP(sizes, acts)
    params = tuple({"W": jnp.asarray(W), "b": jnp.asarray(b)} for W, b in zip(Ws, bs))
    reg = jm.Regularization(*regs[0])
    total, parts = jm.objective(net, params, jnp.asarray(x), jnp.asarray(y), loss=loss, reg=reg)
    np.testing.assert_allclose(parts["data"], expected_data, rtol=1e-10)
    np.testing.assert_allclose(parts["penalty"], expected_pen, rtol=1e-10)
    np.testing.assert_allclose(total, expected_data + expected_pen, rtol=1e-10)


@pytest.mark.parametrize("act", ["softmax", "sigmoid"])
def test_integer_and_one_hot_labels_agree(x64, act):
    rng = np.random.default_rng(0)
    net = jm.MLP((3, 4), (act,))
    params = ({"W": jnp.asarray(rng.normal(size=(3, 4))), "b": jnp.zeros(4)},)
    x = jnp.asarray(rng.normal(size=(6, 3)))
    labels = rng.integers(0, 4, size=6)
    a, _ = jm.objective(net, params, x, jnp.asarray(labels), loss="categorical_crossentropy")
    b, _ = jm.objective(
        net, params, x, jnp.asarray(ref.one_hot(labels, 4)), loss="categorical_crossentropy"
    )
    np.testing.assert_allclose(a, b, rtol=1e-12)


@pytest.mark.parametrize(
    "loss, act, y",
    [
        ("categorical_crossentropy", "softmax", jnp.array([0, 1])),
        ("binary_crossentropy", "sigmoid", jnp.array([[0.0, 1.0], [1.0, 0.0]])),
    ],
    ids=["softmax+cce", "sigmoid+bce"],
)
def test_fused_losses_are_stable_for_huge_logits(loss, act, y):
    # The logits reach ±1000: probabilities saturate to exactly 0 and 1 in float32.
    net = jm.MLP((2, 2), (act,))
    params = ({"W": jnp.array([[1000.0, -1000.0], [-1000.0, 1000.0]]), "b": jnp.zeros(2)},)
    x = jnp.array([[1.0, 0.0], [0.0, 1.0]])
    value, _ = jm.objective(net, params, x, y, loss=loss)
    grads = jax.grad(lambda p: jm.objective(net, p, x, y, loss=loss)[0])(params)
    chex.assert_tree_all_finite((value, grads))
    # Row 0 predicts class 0 with certainty and row 1 class 1.
    if loss == "categorical_crossentropy":
        # First row correct (loss 0), second row wrong by a logit gap of 2000.
        np.testing.assert_allclose(value, 0.0, atol=1e-6)
        wrong, _ = jm.objective(net, params, x, jnp.array([1, 0]), loss=loss)
        np.testing.assert_allclose(wrong, 2000.0, rtol=1e-6)
    else:
        # Targets disagree everywhere: each element costs softplus(1000) = 1000.
        np.testing.assert_allclose(value, 1000.0, rtol=1e-6)


def test_book_clipping_for_unfused_cross_entropy():
    # softmax output with binary cross-entropy works on probabilities clipped at 1e-7.
    p = jnp.array([[1.0, 0.0]])
    value = losses.binary_crossentropy(p, jnp.array([[0.0, 1.0]]))
    # Both elements are wrong with certainty; each costs -log of the clip bound, in float32.
    lo, hi = np.float32(1e-7), np.float32(1 - 1e-7)
    np.testing.assert_allclose(value, -(np.log(1 - hi) + np.log(lo)) / 2, rtol=1e-6)


@pytest.mark.parametrize("act", ["linear", "relu", "leaky_relu", "tanh"])
@pytest.mark.parametrize("loss", ["binary_crossentropy", "categorical_crossentropy"])
def test_cross_entropy_needs_probabilities(loss, act):
    net = jm.MLP((2, 3), (act,))
    params = jm.init_params(jax.random.key(0), net)
    y = jnp.zeros(4, int) if loss.startswith("cat") else jnp.zeros((4, 3))
    with pytest.raises(ValueError, match=rf"loss='{loss}' needs probabilities .* is '{act}'"):
        jm.objective(net, params, jnp.ones((4, 2)), y, loss=loss)


NET = jm.MLP((2, 3), ("softmax",))
PARAMS = jm.init_params(jax.random.key(0), NET)
X = jnp.ones((4, 2))


@pytest.mark.parametrize(
    "loss, y, error, match",
    [
        ("hinge", jnp.zeros(4, int), ValueError, r"unknown loss 'hinge'; expected one of 'mse'"),
        (
            "categorical_crossentropy",
            jnp.array([0, 1, 3, 2]),
            ValueError,
            r"class labels in \[0, 3\]; expected integers in \[0, 2\] for 3 outputs",
        ),
        (
            "categorical_crossentropy",
            jnp.array([0, -1, 1, 2]),
            ValueError,
            r"class labels in \[-1, 2\]",
        ),
        (
            "categorical_crossentropy",
            jnp.array([0.0, 1.0, 1.0, 2.0]),
            ValueError,
            r"must have an integer dtype; got float32",
        ),
        (
            "categorical_crossentropy",
            jnp.zeros(5, int),
            ValueError,
            r"y must hold 4 labels, one per row of x; got \(5,\)",
        ),
        (
            "categorical_crossentropy",
            jnp.zeros((4, 2)),
            ValueError,
            r"one-hot rows of shape \(4, 3\); got \(4, 2\)",
        ),
        (
            "categorical_crossentropy",
            jnp.full((4, 3), jnp.nan),
            ValueError,
            r"y must be finite; it holds 12 NaN",
        ),
        (
            "binary_crossentropy",
            jnp.full((4, 3), 2.0),
            ValueError,
            r"targets in \[0, 1\]; got values in \[2.0, 2.0\]",
        ),
        (
            "mse",
            jnp.zeros(4),
            ValueError,
            r"y must have shape \(4, 3\) to match the net's output for loss='mse'; got \(4,\)",
        ),
        ("mse", jnp.array([[0.0, 1.0, np.inf]] * 4), ValueError, r"y must be finite"),
    ],
    ids=[
        "unknown_loss",
        "label_too_big",
        "negative_label",
        "float_labels",
        "label_count",
        "one_hot_width",
        "nan_one_hot",
        "bce_target_range",
        "mse_shape",
        "inf_target",
    ],
)
def test_bad_targets_and_losses_are_named(loss, y, error, match):
    with pytest.raises(error, match=match):
        jm.objective(NET, PARAMS, X, y, loss=loss)


def test_one_output_hint_for_regression_targets():
    net = jm.MLP((2, 1), ("linear",))
    params = jm.init_params(jax.random.key(0), net)
    with pytest.raises(ValueError, match=r"got \(4,\) \(use y.reshape\(-1, 1\)\)"):
        jm.objective(net, params, X, jnp.zeros(4), loss="mse")


def test_categorical_needs_two_outputs():
    net = jm.MLP((2, 1), ("sigmoid",))
    params = jm.init_params(jax.random.key(0), net)
    with pytest.raises(ValueError, match=r"needs at least 2 outputs"):
        jm.objective(net, params, X, jnp.zeros(4, int), loss="categorical_crossentropy")
