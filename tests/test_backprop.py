"""The hand-written backward pass (`jaxmlp.backprop`) and the loss gradients beside each loss.

Truths: the first seed's tables transcribed literally in NumPy (column vectors), `jax.grad` of
`jaxmlp.objective` in float64, and known values at the kinks.
"""

import logging

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxmlp as jm
from jaxmlp import losses
from jaxmlp.backprop import backprop, value_and_backprop
from tests import reference as ref

ACTIVATIONS = ("linear", "sigmoid", "tanh", "relu", "leaky_relu", "softmax")
CCE, BCE = "categorical_crossentropy", "binary_crossentropy"
ALL_REG = jm.Regularization(l1w=1e-2, l1b=2e-2, l2w=3e-2, l2b=4e-2)
# Sizes shared by the grid below: eager ops compile once per shape, so reusing them is fast.
N_IN, HIDDEN, N_OUT, BATCH = 3, 5, 4, 7


@pytest.fixture
def x64():
    with jax.enable_x64(True):
        yield


def random_params(sizes, seed=0, scale=1.0):
    """Weights ~ N(0, scale²/fan_in), biases ~ N(0, 0.1²), in the current default float."""
    rng = np.random.default_rng(seed)
    return tuple(
        {
            "W": jnp.asarray(rng.normal(size=(i, o)) * scale / np.sqrt(i)),
            "b": jnp.asarray(0.1 * rng.normal(size=o)),
        }
        for i, o in zip(sizes[:-1], sizes[1:])
    )


def random_targets(loss, out_act, batch, out, seed=1, labels="int"):
    rng = np.random.default_rng(seed)
    if loss == CCE:
        y = rng.integers(0, out, batch)
        return jnp.asarray(ref.one_hot(y, out)) if labels == "onehot" else jnp.asarray(y)
    if loss == BCE:
        return jnp.asarray(rng.integers(0, 2, (batch, out)).astype(float))
    return jnp.asarray(rng.normal(size=(batch, out)))


def autodiff(net, params, x, y, loss, reg=None):
    return jax.grad(lambda p: jm.objective(net, p, x, y, loss=loss, reg=reg)[0])(params)


def problem(acts, loss, *, hidden=HIDDEN, labels="int", seed=0, scale=1.0, batch=BATCH):
    sizes = (N_IN,) + (hidden,) * (len(acts) - 1) + (N_OUT,)
    net = jm.MLP(sizes, acts)
    params = random_params(sizes, seed, scale)
    x = jnp.asarray(np.random.default_rng(seed + 7).normal(size=(batch, N_IN)))
    return net, params, x, random_targets(loss, acts[-1], batch, N_OUT, seed + 1, labels)


# The batch of 7 is longer than every layer, so forward and backward run in column form; a
# batch of 3 is not, so they run in rows (`jaxmlp.model.column_form`). Both are checked.
FORMS = {"columns": BATCH, "rows": 3}


# --------------------------------------------------------------------------------------------
# The seeds' own network, literally


def seed_step(W1, W2, W3, B1, B2, B3, X, Y, lr):
    """One step of the first seed's tables, literally, in its column-vector notation.

    ``X`` is features × batch, ``W_k`` is fan_out × fan_in, ``B_k`` a column vector. The seeds
    write ``HO^T · err`` in row notation; with column vectors the same product is ``err · HOᵀ``
    (fan_out × fan_in), and the bias update sums ``err`` over the batch columns.
    """
    sig = ref.sigmoid

    def dsig(z):  # σ'(z) = σ(z)(1 − σ(z))
        return sig(z) * (1 - sig(z))

    HI_1 = W1 @ X + B1  # HI_1 = W1·X + B1
    HO_1 = sig(HI_1)  # HO_1 = σ(HI_1)
    HI_2 = W2 @ HO_1 + B2  # HI_2 = W2·HO_1 + B2
    HO_2 = sig(HI_2)  # HO_2 = σ(HI_2)
    HO_final = W3 @ HO_2 + B3  # HO_final = W3·HO_2 + B3
    Y_hat = sig(HO_final)  # Ŷ = σ(HO_final)
    E = Y - Y_hat  # E = Y − Ŷ
    err_HO_final = E * dsig(HO_final)  # err_HO_final = E · σ'(HO_final)
    err_HO_2 = (W3.T @ err_HO_final) * dsig(HI_2)  # err_HO_2 = err_HO_final · W3ᵀ · σ'(HI_2)
    err_HO_1 = (W2.T @ err_HO_2) * dsig(HI_1)  # err_HO_1 = err_HO_2 · W2ᵀ · σ'(HI_1)
    new = {
        "W3": W3 + lr * err_HO_final @ HO_2.T,  # W3 = W3 + lr · HO_2ᵀ · err_HO_final
        "B3": B3 + lr * err_HO_final.sum(axis=1, keepdims=True),  # B3 = B3 + lr · err_HO_final
        "W2": W2 + lr * err_HO_2 @ HO_1.T,  # W2 = W2 + lr · HO_1ᵀ · err_HO_2
        "B2": B2 + lr * err_HO_2.sum(axis=1, keepdims=True),
        "W1": W1 + lr * err_HO_1 @ X.T,  # W1 = W1 + lr · Xᵀ · err_HO_1
        "B1": B1 + lr * err_HO_1.sum(axis=1, keepdims=True),
    }
    return new, (HI_1, HI_2, HO_final)


def test_seed_network_one_step_equals_backprop_plus_sgd(x64):
    """The seeds' 3-layer sigmoid MLP: one step of its tables equals backprop + optim.sgd.

    Loss scaling: the seeds' ``E = Y − Ŷ`` and additive updates are gradient descent on
    ``½·Σ(Y − Ŷ)²`` summed over the batch and the outputs, while our ``mse`` is the mean
    ``Σ(Y − Ŷ)² / (N·K)``. The gradients differ by the factor ``N·K/2``, so the seeds' step with
    learning rate ``lr`` is our SGD step with ``lr·N·K/2`` (N = 7 examples, K = 4 outputs).
    """
    rng = np.random.default_rng(42)
    n_in, h1, h2, K, N, lr = N_IN, HIDDEN, HIDDEN, N_OUT, BATCH, 0.3
    W1, W2, W3 = (rng.normal(size=s) for s in ((h1, n_in), (h2, h1), (K, h2)))
    B1, B2, B3 = (rng.normal(size=(s, 1)) for s in (h1, h2, K))
    X, Y = rng.normal(size=(n_in, N)), rng.uniform(size=(K, N))
    new, (HI_1, HI_2, HO_final) = seed_step(W1, W2, W3, B1, B2, B3, X, Y, lr)

    net = jm.MLP((n_in, h1, h2, K), ("sigmoid", "sigmoid", "sigmoid"))
    # Batch first: W = W_seedᵀ, b = B_seed as a row, x = Xᵀ, y = Yᵀ.
    params = tuple(
        {"W": jnp.asarray(W.T), "b": jnp.asarray(B[:, 0])}
        for W, B in ((W1, B1), (W2, B2), (W3, B3))
    )
    x, y = jnp.asarray(X.T), jnp.asarray(Y.T)
    zs, _ = jm.forward_intermediates(net, params, x)
    grads = backprop(net, params, x, y, loss="mse")
    opt = jm.optim.sgd(lr * N * K / 2)
    updates, _ = opt.update(grads, opt.init(params), params)
    stepped = jm.apply_updates(params, updates)

    for z, HI in zip(zs, (HI_1, HI_2, HO_final)):
        np.testing.assert_allclose(np.asarray(z), HI.T, rtol=1e-12)
    for k, layer in zip((1, 2, 3), stepped):
        assert layer["W"].dtype == jnp.float64
        np.testing.assert_allclose(np.asarray(layer["W"]).T, new[f"W{k}"], rtol=1e-12)
        np.testing.assert_allclose(np.asarray(layer["b"]), new[f"B{k}"][:, 0], rtol=1e-12)
    # The step moved every parameter: the comparison is not between unchanged arrays.
    assert np.min(np.abs(new["W1"] - W1)) > 0 and np.min(np.abs(new["B3"] - B3)) > 1e-4


# --------------------------------------------------------------------------------------------
# backprop == jax.grad(objective), float64, rtol 1e-10

LOSS_OUTPUTS = (
    [("mse", a, "int") for a in ACTIVATIONS]
    + [("mae", a, "int") for a in ("linear", "softmax")]
    + [(BCE, "sigmoid", "int"), (BCE, "softmax", "int")]
    + [(CCE, out, labels) for out in ("softmax", "sigmoid") for labels in ("int", "onehot")]
)


def assert_matches_autodiff(net, params, x, y, loss, reg):
    manual = backprop(net, params, x, y, loss=loss, reg=reg)
    chex.assert_trees_all_equal_shapes_and_dtypes(manual, params)
    chex.assert_trees_all_close(manual, autodiff(net, params, x, y, loss, reg), rtol=1e-10, atol=0)
    return manual


@pytest.mark.parametrize(
    "loss,out,labels",
    LOSS_OUTPUTS,
    ids=[
        f"{loss}-{out}" + ("-onehot" if lab == "onehot" else "") for loss, out, lab in LOSS_OUTPUTS
    ],
)
@pytest.mark.parametrize("batch", list(FORMS.values()), ids=list(FORMS))
def test_matches_autodiff_every_loss_and_output(x64, loss, out, labels, batch):
    # Moderate weights keep clipped probabilities away from the clip, where 1 − p loses digits
    # and two correct orders of evaluation differ at 1e-9; the clip itself is a kink case below.
    net, params, x, y = problem(("tanh", out), loss, labels=labels, scale=0.5, batch=batch)
    assert jm.model.column_form(net, batch) == (batch == FORMS["columns"])
    assert_matches_autodiff(net, params, x, y, loss, ALL_REG)


def test_the_column_form_runs_only_on_a_measured_backend(x64, monkeypatch):
    """On a backend whose figures were not measured (`jaxmlp.tuning`), the plain row form."""
    net, params, x, y = problem(("tanh", "softmax"), CCE, batch=FORMS["columns"])
    columns = backprop(net, params, x, y, loss=CCE, reg=ALL_REG)
    assert jm.model.column_form(net, x.shape[0])
    monkeypatch.setattr(jm.tuning, "MEASURED", ())
    assert not jm.tuning.tuned() and not jm.model.column_form(net, x.shape[0])
    rows = assert_matches_autodiff(net, params, x, y, CCE, ALL_REG)
    chex.assert_trees_all_close(rows, columns, rtol=1e-12)


DEPTHS = [(1, "-")] + [(d, a) for d in (2, 3, 4) for a in ACTIVATIONS]
HEADS = {1: ("sigmoid", "mse"), 2: ("softmax", CCE), 3: ("sigmoid", BCE), 4: ("linear", "mse")}


@pytest.mark.parametrize(
    "depth,hidden", DEPTHS, ids=[f"{d}-layer-{a}" if d > 1 else "1-layer" for d, a in DEPTHS]
)
@pytest.mark.parametrize("batch", list(FORMS.values()), ids=list(FORMS))
def test_matches_autodiff_every_depth_and_hidden_activation(x64, depth, hidden, batch):
    out, loss = HEADS[depth]
    net, params, x, y = problem((hidden,) * (depth - 1) + (out,), loss, seed=depth, batch=batch)
    assert_matches_autodiff(net, params, x, y, loss, jm.Regularization(l2w=1e-3, l2b=1e-3))


REGS = {
    "none": None,
    "l1w": jm.Regularization(l1w=0.05),
    "l1b": jm.Regularization(l1b=0.05),
    "l2w": jm.Regularization(l2w=0.05),
    "l2b": jm.Regularization(l2b=0.05),
    "all": ALL_REG,
    "per-layer": (jm.Regularization(l1w=0.1), None, jm.Regularization(l2w=0.2, l2b=0.3)),
}


@pytest.mark.parametrize("name", list(REGS))
def test_matches_autodiff_each_regularizer(x64, name):
    net, params, x, y = problem(("relu", "tanh", "softmax"), CCE, seed=3)
    manual = assert_matches_autodiff(net, params, x, y, CCE, REGS[name])
    # Against the data gradient alone: the penalty's gradient is l1·sign(w) + 2·l2·w per layer.
    plain = backprop(net, params, x, y, loss=CCE)
    for layer, p, g, g0 in zip(range(3), params, manual, plain):
        r = jm.regularization.per_layer(REGS[name], 3)[layer]
        for leaf, l1, l2 in (("W", r.l1w, r.l2w), ("b", r.l1b, r.l2b)):
            w = np.asarray(p[leaf])
            expected = l1 * np.where(w >= 0, 1.0, -1.0) + 2 * l2 * w
            np.testing.assert_allclose(g[leaf] - g0[leaf], expected, rtol=1e-9, atol=1e-15)


def test_float32_by_default():
    # The docstring's example (same shapes: the eager kernels compile once for both).
    net = jm.MLP((2, 4, 3), ("relu", "softmax"))
    params = jm.init_params(jax.random.key(0), net)
    x, y = jnp.asarray(np.random.default_rng(0).normal(size=(5, 2))), jnp.array([0, 1, 2, 1, 0])
    assert params[0]["W"].dtype == x.dtype == jnp.float32
    manual = backprop(net, params, x, y, loss=CCE)
    chex.assert_trees_all_equal_dtypes(manual, params)
    auto = jax.jit(autodiff, static_argnums=(0, 4))(net, params, x, y, CCE)  # one compile
    chex.assert_trees_all_close(manual, auto, rtol=1e-5, atol=1e-7)


def test_value_and_backprop_matches_objective(x64):
    net, params, x, y = problem(("sigmoid", "softmax"), CCE, labels="onehot")
    (total, parts), grads = value_and_backprop(net, params, x, y, loss=CCE, reg=ALL_REG)
    want_total, want_parts = jm.objective(net, params, x, y, loss=CCE, reg=ALL_REG)
    np.testing.assert_allclose(total, want_total, rtol=1e-14)
    chex.assert_trees_all_close(parts, want_parts, rtol=1e-14)
    chex.assert_trees_all_close(grads, backprop(net, params, x, y, loss=CCE, reg=ALL_REG))


# --------------------------------------------------------------------------------------------
# Kinks and saturation: named cases, equal to autodiff *at* the kink


def dead_unit_problem(hidden, unit=2):
    """A relu-family net whose hidden ``unit`` has all-zero incoming weights and bias: z = 0."""
    net, params, x, y = problem((hidden, "softmax"), CCE, seed=5)
    W0 = params[0]["W"].at[:, unit].set(0.0)
    b0 = params[0]["b"].at[unit].set(0.0)
    return net, ({"W": W0, "b": b0}, params[1]), x, y


def test_kink_relu_at_zero(x64):
    net, params, x, y = dead_unit_problem("relu")
    assert np.all(np.asarray(jm.forward_intermediates(net, params, x)[0][0])[:, 2] == 0.0)
    manual = assert_matches_autodiff(net, params, x, y, CCE, None)
    # relu'(0) = 0: nothing flows into the unit sitting exactly at the kink.
    assert np.all(np.asarray(manual[0]["W"])[:, 2] == 0.0) and manual[0]["b"][2] == 0.0
    assert np.all(np.asarray(manual[0]["b"])[[0, 1, 3, 4]] != 0.0)


def test_kink_leaky_relu_at_zero(x64):
    net, params, x, y = dead_unit_problem("leaky_relu")
    manual = assert_matches_autodiff(net, params, x, y, CCE, None)
    # leaky_relu'(0) = 0.01, the slope of the left piece: in NumPy, the error arriving at the
    # unit, (softmax(z_2) − t)/B · W_2ᵀ, times 0.01, summed over the batch.
    Ws, bs = [np.asarray(p["W"]) for p in params], [np.asarray(p["b"]) for p in params]
    zs, acts = ref.forward(Ws, bs, net.activations, np.asarray(x))
    delta_2 = (acts[-1] - ref.one_hot(np.asarray(y), N_OUT)) / BATCH
    want = 0.01 * (delta_2 @ Ws[1].T)[:, 2].sum()
    np.testing.assert_allclose(manual[0]["b"][2], want, rtol=1e-12)
    assert abs(want) > 1e-6


@pytest.mark.parametrize("leaf", ["W", "b"])
def test_kink_l1_at_zero(x64, leaf):
    net, params, x, y = problem(("tanh", "softmax"), CCE, seed=6)
    params = ({**params[0], leaf: params[0][leaf].at[..., 1].set(0.0)}, params[1])
    lam = 0.05
    reg = jm.Regularization(**{f"l1{leaf.lower()}": lam})
    manual = assert_matches_autodiff(net, params, x, y, CCE, reg)
    plain = backprop(net, params, x, y, loss=CCE)
    # sign(0) = +1 (the seeds' `if weight >= 0: 1`): the penalty adds exactly +λ at 0.
    np.testing.assert_allclose(manual[0][leaf][..., 1] - plain[0][leaf][..., 1], lam, rtol=1e-12)


@pytest.mark.parametrize("loss", ["mse", BCE])
def test_saturated_sigmoid_output(x64, loss):
    net, params, x, y = problem(("tanh", "sigmoid"), loss, seed=8)
    params = (params[0], {"W": params[1]["W"], "b": jnp.array([800.0, -800.0, 900.0, -750.0])})
    manual = assert_matches_autodiff(net, params, x, y, loss, None)
    chex.assert_tree_all_finite(manual)
    if loss == "mse":  # σ'(±800) = 0: no error gets through the output layer
        assert np.all(np.asarray(manual[1]["b"]) == 0.0)
    else:  # fused: dL/dz = (σ(z) − y)/N, with σ(z) exactly 0 or 1
        want = (np.array([1.0, 0.0, 1.0, 0.0]) - np.asarray(y)).sum(axis=0) / y.size
        np.testing.assert_allclose(manual[1]["b"], want, rtol=1e-12)


def test_saturated_sigmoid_hidden(x64):
    net, params, x, y = problem(("sigmoid", "softmax"), CCE, seed=9)
    params = ({"W": params[0]["W"], "b": jnp.full((HIDDEN,), 1000.0)}, params[1])
    manual = assert_matches_autodiff(net, params, x, y, CCE, None)
    assert np.all(np.asarray(manual[0]["W"]) == 0.0)  # σ'(1000) = 0


def test_saturated_softmax_crossentropy(x64):
    net, params, x, y = problem(("tanh", "softmax"), CCE, seed=10)
    big = jnp.array([1000.0, -1000.0, 0.0, 500.0])  # class 0 takes all the probability
    params = (params[0], {"W": params[1]["W"], "b": big})
    manual = assert_matches_autodiff(net, params, x, y, CCE, None)
    # dL/db = mean over the batch of (softmax(z) − t) = (e_0 − t) on average.
    want = (np.eye(N_OUT)[0] - ref.one_hot(np.asarray(y), N_OUT)).mean(axis=0)
    np.testing.assert_allclose(manual[1]["b"], want, rtol=1e-12, atol=1e-300)


def test_clipped_crossentropy_saturated(x64):
    """A sigmoid output under categorical cross-entropy: probabilities beyond the clip."""
    net, params, x, y = problem(("tanh", "sigmoid"), CCE, seed=11)
    params = (params[0], {"W": params[1]["W"], "b": jnp.array([-40.0, 40.0, 0.0, -40.0])})
    manual = assert_matches_autodiff(net, params, x, y, CCE, None)
    # σ(−40) < 1e-7 and σ(40) > 1 − 1e-7: the clip blocks the gradient of those outputs.
    assert manual[1]["b"][0] == 0.0 and manual[1]["b"][1] == 0.0 and manual[1]["b"][3] == 0.0
    assert manual[1]["b"][2] != 0.0


def test_mae_at_zero_residual(x64):
    net, params, x, _ = problem(("tanh", "linear"), "mae", seed=12)
    y = jm.forward(net, params, x)  # ŷ = y exactly: every residual at the kink
    manual = assert_matches_autodiff(net, params, x, y, "mae", None)
    # |·|'(0) = +1 on y − ŷ, so dL/dŷ = −1/N everywhere and dL/db_out = −batch/N = −1/K.
    np.testing.assert_allclose(manual[1]["b"], np.full(N_OUT, -1.0 / N_OUT), rtol=1e-14)


# --------------------------------------------------------------------------------------------
# Loss gradients, one by one

GRADS = {
    "mse": (losses.mse, losses.mse_grad),
    "mae": (losses.mae, losses.mae_grad),
    "bce": (losses.binary_crossentropy, losses.binary_crossentropy_grad),
    "bce-logits": (
        losses.binary_crossentropy_from_logits,
        losses.binary_crossentropy_from_logits_grad,
    ),
    "cce": (losses.categorical_crossentropy, losses.categorical_crossentropy_grad),
    "cce-logits": (
        losses.categorical_crossentropy_from_logits,
        losses.categorical_crossentropy_from_logits_grad,
    ),
}


def loss_inputs(name, labels, seed=0):
    rng = np.random.default_rng(seed)
    shape = (BATCH, N_OUT)
    if name.endswith("logits"):
        pred = rng.normal(size=shape) * 3
    elif name in ("bce", "cce"):
        pred = rng.uniform(0.05, 0.95, size=shape)
    else:
        pred = rng.normal(size=shape)
    if name.startswith("cce") and labels == "int":
        y = rng.integers(0, N_OUT, BATCH)
    elif name.startswith("cce") and labels == "soft":  # rows not summing to 1
        y = rng.uniform(size=shape)
    elif name.startswith(("bce", "cce")):
        y = ref.one_hot(rng.integers(0, N_OUT, BATCH), N_OUT)
    else:
        y = rng.normal(size=shape)
    return jnp.asarray(pred), jnp.asarray(y)


LOSS_GRAD_CASES = [(n, "onehot") for n in GRADS] + [
    ("cce", "int"),
    ("cce-logits", "int"),
    ("cce", "soft"),
    ("cce-logits", "soft"),
]


@pytest.mark.parametrize(
    "name,labels", LOSS_GRAD_CASES, ids=[f"{n}-{l}" for n, l in LOSS_GRAD_CASES]
)
def test_loss_grad_matches_autodiff(x64, name, labels):
    fn, grad = GRADS[name]
    pred, y = loss_inputs(name, labels)
    np.testing.assert_allclose(grad(pred, y), jax.grad(fn)(pred, y), rtol=1e-12, atol=1e-17)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_clip_gradient_at_and_beyond_the_bounds(dtype):
    """The clip's gradient is 1 inside, 0 outside and 0.5 exactly at a bound, like jnp.clip."""
    with jax.enable_x64(dtype == "float64"):
        lo, hi = np.asarray(1e-7, dtype), np.asarray(1 - 1e-7, dtype)
        p = jnp.asarray([[0.0, lo, 0.3, hi, 1.0]], dtype)
        y = jnp.asarray([[1.0, 1.0, 1.0, 0.0, 0.0]], dtype)
        for (fn, grad), n in ((GRADS["bce"], p.size), (GRADS["cce"], 1)):  # n: the mean's count
            g = np.asarray(jax.jit(grad)(p, y))  # compiled: one kernel instead of many
            np.testing.assert_allclose(g, jax.jit(jax.grad(fn))(p, y), rtol=1e-6)
            assert g[0, 0] == 0.0 and g[0, 4] == 0.0  # clipped: no gradient, no inf
            np.testing.assert_allclose(g[0, 1], -0.5 / lo / n, rtol=1e-6)  # half of −1/(n·p)


def test_mae_grad_at_zero_residual_is_minus_one_over_n(x64):
    pred, _ = loss_inputs("mae", "onehot")
    want = np.full(pred.shape, -1 / pred.size)
    np.testing.assert_allclose(losses.mae_grad(pred, pred), want, rtol=1e-15)
    np.testing.assert_allclose(jax.grad(losses.mae)(pred, pred), want, rtol=1e-15)


# --------------------------------------------------------------------------------------------
# jit, vmap, validation


def test_jit_equals_eager(x64):
    net, params, x, y = problem(("relu", "leaky_relu", "softmax"), CCE, seed=13)
    jitted = jax.jit(backprop, static_argnames=("net", "loss"))
    chex.assert_trees_all_close(
        jitted(net, params, x, y, loss=CCE, reg=ALL_REG),
        backprop(net, params, x, y, loss=CCE, reg=ALL_REG),
        rtol=1e-12,
    )


def test_vmap_over_regularization_strengths(x64):
    net, params, x, y = problem(("tanh", "sigmoid"), BCE, seed=14)
    strengths = jnp.array([0.0, 1e-3, 1e-1])

    def grad_at(l2):
        return backprop(net, params, x, y, loss=BCE, reg=jm.Regularization(l1w=l2, l2w=l2))

    batched = jax.jit(jax.vmap(grad_at))(strengths)
    for i, l2 in enumerate([0.0, 1e-3, 1e-1]):
        row = jax.tree.map(lambda g, i=i: g[i], batched)
        chex.assert_trees_all_close(row, grad_at(l2), rtol=1e-12)


def test_vmap_over_batches_of_data(x64):
    net, params, _, _ = problem(("relu", "softmax"), CCE, seed=15)
    rng = np.random.default_rng(0)
    xs = jnp.asarray(rng.normal(size=(3, BATCH, N_IN)))
    ys = jnp.asarray(rng.integers(0, N_OUT, (3, BATCH)))
    batched = jax.jit(jax.vmap(lambda x, y: backprop(net, params, x, y, loss=CCE)))(xs, ys)
    for i in range(3):
        row = jax.tree.map(lambda g, i=i: g[i], batched)
        chex.assert_trees_all_close(row, autodiff(net, params, xs[i], ys[i], CCE), rtol=1e-12)


def _bad_inputs():
    net, params, x, y = problem(("relu", "softmax"), CCE)
    mlp_linear = jm.MLP(net.sizes, ("relu", "linear"))
    return {
        "x-shape": dict(x=x[:, :2]),
        "x-nan": dict(x=x.at[0, 0].set(jnp.nan)),
        "x-list": dict(x=[[1.0, 2.0, 3.0]]),
        "y-shape": dict(y=y[:3]),
        "y-label-range": dict(y=y.at[0].set(N_OUT)),
        "y-float-labels": dict(y=y.astype(float)),
        "loss-unknown": dict(loss="hinge"),
        "loss-output": dict(net=mlp_linear),
        "net-type": dict(net="mlp"),
        "params-list": dict(params=list(params)),
        "params-shape": dict(params=({"W": params[0]["W"].T, "b": params[0]["b"]}, params[1])),
        "params-layers": dict(params=params[:1]),
        "reg-length": dict(reg=(jm.Regularization(),)),
        "reg-type": dict(reg={"l2w": 1e-3}),
    }, dict(net=net, params=params, x=x, y=y, loss=CCE, reg=None)


BAD_NAMES = list(_bad_inputs()[0])


@pytest.mark.parametrize("case", BAD_NAMES)
def test_validates_exactly_like_objective(case):
    bad, good = _bad_inputs()
    kwargs = {**good, **bad[case]}
    args = [kwargs.pop(k) for k in ("net", "params", "x", "y")]
    with pytest.raises((ValueError, TypeError)) as want:
        jm.objective(*args, **kwargs)
    with pytest.raises(want.type) as got:
        backprop(*args, **kwargs)
    assert str(got.value) == str(want.value)
    argument = case.split("-")[0]
    assert argument in str(got.value) or (argument == "net" and "MLP" in str(got.value))


# --------------------------------------------------------------------------------------------
# Training step with grads="manual"


def test_manual_train_steps_equal_autodiff_steps(x64):
    net, params, x, y = problem(("tanh", "relu", "softmax"), CCE, seed=16)
    opt = jm.optim.sgd(0.5, momentum=0.9)
    runs = {}
    for grads in jm.train.GRADS:
        step = jm.make_train_step(net, opt, loss=CCE, grads=grads)
        p, s, history = params, opt.init(params), []
        for _ in range(3):
            p, s, metrics = step(p, s, x, y, ALL_REG)
            history.append(metrics)
        runs[grads] = (p, history)
    chex.assert_trees_all_close(runs["manual"], runs["autodiff"], rtol=1e-12, atol=1e-15)
    chex.assert_trees_all_equal_dtypes(runs["manual"][0], params)
    assert runs["manual"][1][2]["loss"] < runs["manual"][1][0]["loss"]  # it trains
    assert sorted(runs["manual"][1][0]) == ["data", "loss", "penalty"]


def test_train_step_rejects_unknown_grads():
    net, params, x, y = problem(("relu", "softmax"), CCE)
    opt = jm.optim.sgd(0.1)
    with pytest.raises(ValueError, match="unknown grads 'backprop'; expected one of 'autodiff'"):
        jm.make_train_step(net, opt, loss=CCE, grads="backprop")
    with pytest.raises(ValueError, match="unknown grads"):
        jm.train_step(net, opt, params, opt.init(params), x, y, loss=CCE, grads="auto")


def test_a_call_outside_jit_compiles_one_program_and_equals_op_by_op(x64, caplog):
    # objective, backprop and value_and_backprop: one program per net, loss and shapes (not one
    # per operation), reused for new values; the numbers are those of the op-by-op computation.
    net = jm.MLP((3, 5, 4, 2), ("tanh", "relu", "softmax"))
    params = jm.init_params(jax.random.key(0), net, dtype="float64")
    rng = np.random.default_rng(0)
    reg = jm.Regularization(l1w=1e-3, l2w=1e-2)
    kw = dict(loss="categorical_crossentropy", reg=reg)
    calls = {"objective": jm.objective, "backprop": backprop,
             "value_and_backprop": value_and_backprop}  # fmt: skip
    for name, fn in calls.items():
        x, y = rng.normal(size=(11, 3)), rng.integers(0, 2, 11)
        with caplog.at_level(logging.WARNING), jax.log_compiles(True):
            caplog.clear()
            first = fn(net, params, x, y, **kw)
            again = fn(net, params, x + 1.0, (y + 1) % 2, **kw)  # new values, the same shapes
        compiled = [
            r.getMessage() for r in caplog.records if "Finished XLA compilation" in r.getMessage()
        ]
        assert len(compiled) == 1, (name, compiled)
        with jax.disable_jit():
            for got, args in ((first, (x, y)), (again, (x + 1.0, (y + 1) % 2))):
                want = fn(net, params, *args, **kw)
                chex.assert_trees_all_close(got, want, rtol=1e-12, atol=1e-15)
