"""`gradcheck`'s findings: bugs planted in a NumPy backward pass, named by kind, factor and place.

The backward pass below is a literal NumPy transcription of the seeds' steps (independent of
`jaxmlp.backprop`), with one classic bug switched on at one layer. Each test asserts what the
report says: the kind, the factor, ``report.source``, and "propagated" below the source.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxmlp as jm
from jaxmlp.gradcheck import gradcheck

CCE, BCE = "categorical_crossentropy", "binary_crossentropy"
SLOPE = 0.01
F = {  # f(z) and f'(z), written out
    "sigmoid": (lambda z: 1 / (1 + np.exp(-z)), lambda z: np.exp(-z) / (1 + np.exp(-z)) ** 2),
    "tanh": (np.tanh, lambda z: 1 - np.tanh(z) ** 2),
    "relu": (lambda z: np.where(z > 0, z, 0.0), lambda z: np.where(z > 0, 1.0, 0.0)),
    "leaky_relu": (lambda z: np.where(z > 0, z, SLOPE * z), lambda z: np.where(z > 0, 1, SLOPE)),
    "linear": (lambda z: z, np.ones_like),
}


def softmax(z):
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def planted(bug=None, at=None, deltas=False):
    """A backward pass with `bug` in layer `at` (None: correct), optionally returning deltas."""

    def backward(net, params, x, y, *, loss, reg):
        P = [{k: np.asarray(v) for k, v in p.items()} for p in params]
        x, y = np.asarray(x), np.asarray(y)
        n, k = x.shape[0], net.out_features
        zs, acts = [], [x]
        for p, name in zip(P, net.activations):
            zs.append(acts[-1] @ p["W"] + p["b"])
            acts.append(softmax(zs[-1]) if name == "softmax" else F[name][0](zs[-1]))
        a, z, out = acts[-1], zs[-1], net.output_activation
        if loss == CCE:  # softmax: fused
            delta = (a - np.eye(k)[y]) / n
        elif loss == BCE:  # sigmoid: fused
            delta = (a - y) / (n * k)
        else:
            g = 2 * (a - y) / (n * k) if loss == "mse" else np.sign(a - y) / (n * k)
            delta = g * derivative(bug, at, len(P) - 1, out, z, a, g)
        grads, ds = [None] * len(P), [None] * len(P)
        for l in reversed(range(len(P))):
            delta = {"sign": -delta, "double": 2 * delta}.get(bug if at == l else None, delta)
            ds[l] = delta
            W, b = P[l]["W"], P[l]["b"]
            dW, db = acts[l].T @ delta, delta.sum(axis=0)
            l2 = 0.0 if (bug, at) == ("no_l2", l) else reg.l2w
            l2 = reg.l2w / 2 if (bug, at) == ("half_l2", l) else l2
            dW, db = dW + 2 * l2 * W, db + 2 * reg.l2b * b
            dW = {"transpose": dW.T, "summed": n * dW}.get(bug if at == l else None, dW)
            db = {"zero": 0 * db, "summed": n * db}.get(bug if at == l else None, db)
            grads[l] = {"W": dW, "b": db}
            if l:
                name, g = net.activations[l - 1], delta @ W.T
                delta = g * derivative(bug, at, l - 1, name, zs[l - 1], acts[l], g)
        grads = tuple(grads)
        return (grads, tuple(ds)) if deltas else grads

    return backward


def derivative(bug, at, layer, name, z, a, g):
    """``f'`` of a layer, or the bug's version of it where the bug is planted."""
    if at == layer and bug == "sigma_of_a":
        return F[name][1](a)
    if at == layer and bug == "no_derivative":
        return np.ones_like(z)
    if at == layer and bug == "relu_at_0":
        return np.where(z >= 0, 1.0, 0.0)
    return F[name][1](z)


def problem(depth, activation, loss, batch=6, seed=0):
    """A net of `depth` layers with hidden `activation` and the loss's natural output."""
    out = {CCE: "softmax", BCE: "sigmoid"}.get(loss, activation)
    sizes = (3, 5, 4, 4, 5)[:depth] + (3,)
    net = jm.MLP(sizes, (activation,) * (depth - 1) + (out,))
    params = jm.init_params(jax.random.key(seed), net)
    rng = np.random.default_rng(seed)
    x = jnp.asarray(rng.normal(size=(batch, 3)), jnp.float32)
    if loss == CCE:
        y = jnp.asarray(rng.integers(0, 3, batch))
    elif loss == BCE:
        y = jnp.asarray(rng.integers(0, 2, (batch, 3)), jnp.float32)
    else:
        y = jnp.asarray(rng.normal(size=(batch, 3)), jnp.float32)
    return net, params, x, y


REG = jm.Regularization(l2w=1e-2, l2b=1e-3)


def check(depth, activation, loss, bug, at, deltas=False, reg=REG):
    net, params, x, y = problem(depth, activation, loss)
    backward = planted(bug, at, deltas)
    return gradcheck(net, params, x, y, loss=loss, reg=reg, backward=backward, n_samples=0)


# (depth, hidden activation, loss, bug, layer, kind, factor): every kind, depths 1–4, every
# activation and loss.
CASES = [
    (1, "linear", "mse", "double", 0, "scale", 2.0),
    (2, "tanh", CCE, "sign", 1, "scale", -1.0),
    (3, "relu", BCE, "double", 1, "scale", 2.0),
    (4, "leaky_relu", "mae", "summed", 2, "scale", 6.0),
    (3, "sigmoid", "mse", "no_l2", 2, "penalty", 0.0),
    (2, "relu", CCE, "half_l2", 0, "penalty", 0.5),
    (3, "tanh", BCE, "transpose", 1, "transpose", None),
    (4, "sigmoid", "mse", "sigma_of_a", 3, "activation", None),
    (3, "sigmoid", CCE, "sigma_of_a", 1, "activation", None),
    (4, "tanh", BCE, "no_derivative", 2, "activation", None),
    (2, "leaky_relu", "mse", "no_derivative", 1, "activation", None),
    (3, "relu", "mae", "zero", 0, "zero", None),
]


@pytest.mark.parametrize("depth,activation,loss,bug,at,kind,factor", CASES)
def test_each_kind_names_its_source_and_propagates_below(depth, activation, loss, bug, at, kind,
                                                         factor):  # fmt: skip
    report = check(depth, activation, loss, bug, at)
    assert not report.passed and report.source[0] == at
    source = report.findings[0]
    assert (source.layer, source.kind) == (at, kind), report.findings
    assert source.factor == (None if factor is None else pytest.approx(factor))
    # Below the source: "propagated" (errors in delta) or nothing (leaf-local bugs); never a
    # second source.
    others = [f for f in report.findings if f.kind != "propagated"]
    assert {f.layer for f in others} == {at}
    propagates = bug in ("double", "sign", "sigma_of_a", "no_derivative")
    below = {(f.layer, f.leaf) for f in report.findings if f.kind == "propagated"}
    assert below == ({(l, k) for l in range(at) for k in "Wb"} if propagates else set())
    assert f"layer {at} {source.leaf}" in source.message


def test_a_correct_backward_has_no_findings_at_every_depth_and_loss():
    for depth, activation, loss in [(1, "tanh", "mse"), (2, "relu", CCE), (3, "sigmoid", BCE),
                                    (4, "leaky_relu", "mae")]:  # fmt: skip
        report = check(depth, activation, loss, None, None, deltas=depth % 2 == 0)
        assert report.passed and report.findings == () and report.source is None


def test_messages_name_the_usual_causes():
    text = {
        "sign": check(2, "tanh", "mse", "sign", 1).findings[0].message,
        "summed": check(2, "tanh", "mse", "summed", 1).findings[0].message,
        "no_l2": check(2, "tanh", "mse", "no_l2", 1).findings[0].message,
        "sigma": check(2, "sigmoid", "mse", "sigma_of_a", 1).findings[0].message,
    }
    assert "E = Y − Ŷ" in text["sign"]
    assert "summed over the batch instead of averaged" in text["summed"]
    assert "the term 2·l2w·W (l2w) is missing" in text["no_l2"]
    assert "sigmoid′ applied to the activation" in text["sigma"] and "σ′(HO_final)" in text["sigma"]


def test_deltas_name_the_first_wrong_step_and_mark_the_rest_propagated():
    report = check(3, "sigmoid", "mse", "sigma_of_a", 1, deltas=True)
    assert report.source == (1, "delta")
    assert [(f.layer, f.leaf, f.kind) for f in report.findings][:4] == [
        (1, "delta", "activation"), (1, "W", "propagated"), (1, "b", "propagated"),
        (0, "delta", "propagated"),
    ]  # fmt: skip
    assert [s.status for s in report.steps] == ["propagated", "FAIL", "ok"]
    assert [s.names for s in report.steps][1:] == [
        ("HI_2", "HO_2", "err_HO_2"),
        ("HO_final", "Ŷ", "err_HO_final"),
    ]
    assert report.steps[1].first_wrong == 0 and "step by step" in str(report)


def test_a_wrong_delta_whose_leaves_cancel_is_still_found():
    net, params, x, y = problem(3, "tanh", "mse")
    right = planted(None, None, deltas=True)

    def cancelling(*args, **kwargs):  # reports delta_1 doubled, but its leaves are right
        grads, deltas = right(*args, **kwargs)
        return grads, (deltas[0], 2 * deltas[1], deltas[2])

    report = gradcheck(net, params, x, y, loss="mse", reg=REG, backward=cancelling, n_samples=0)
    assert all(r.passed for r in report.rows) and not report.passed
    assert report.source == (1, "delta") and report.findings[0].kind == "scale"
    assert report.findings[0].factor == pytest.approx(2.0)


def test_float32_defaults_pass_a_correct_backward_and_float64_catches_a_small_factor():
    net, params, x, y = problem(3, "tanh", BCE, batch=16)
    for loss in (BCE,):
        report = gradcheck(net, params, x, y, loss=loss, reg=REG, dtype="float32", n_samples=4)
        assert report.passed and report.dtype == "float32" and report.eps == 1e-2
        assert "float32 resolves differences above rtol=0.0001 only" in str(report)
    right = planted()

    def off(*args, **kwargs):
        grads = right(*args, **kwargs)
        return grads[:-1] + ({"W": 1.001 * grads[-1]["W"], "b": grads[-1]["b"]},)

    report = gradcheck(net, params, x, y, loss=BCE, reg=REG, backward=off, n_samples=0)
    assert report.source == (2, "W") and report.findings[0].kind == "scale"
    assert report.findings[0].factor == pytest.approx(1.001) and report.rows[4].ratio == 1.001


def test_leaves_below_the_noise_floor_are_reported_as_such():
    net, params, x, y = problem(2, "sigmoid", "mse")
    report = gradcheck(net, params, 1e-12 * x, y, loss="mse", n_samples=2)  # dW_0 = xᵀ·δ ≈ 1e-13
    assert report.passed and [r.below_noise for r in report.rows] == [True, False, False, False]
    assert 1e-10 < report.noise_floor < 1e-8
    assert "below the finite-difference noise floor" in str(report)
    assert str(report).splitlines()[5].split()[-1] == "ok*"


def test_misshaped_leaves_are_named_transposed_or_from_another_layer():
    net, params, x, y = problem(3, "tanh", "mse")  # W shapes (3, 5), (5, 4), (4, 3)
    right = planted()

    def mixed(*args, **kwargs):
        g = right(*args, **kwargs)
        return ({"W": 2 * g[0]["W"].T, "b": g[0]["b"]}, g[1], {"W": g[1]["W"], "b": g[2]["b"]})

    report = gradcheck(net, params, x, y, loss="mse", reg=REG, backward=mixed, n_samples=0)
    first, second = report.findings
    assert (first.layer, first.kind) == (2, "transpose") and "layer 1's W" in first.message
    assert (second.layer, second.kind) == (0, "transpose")
    assert "transposed back: 2× the reference" in second.message
    assert report.source == (2, "W") and not report.rows[0].passed


def test_relu_derivative_taken_as_1_at_0_is_named():
    _, _, x, y = problem(2, "relu", "mse")
    net = jm.MLP((3, 5, 3), ("relu", "linear"))
    params = jm.init_params(jax.random.key(0), net)
    x = x.at[:2].set(0.0)  # zero rows and zero biases: z = 0 exactly in layer 0
    backward = planted("relu_at_0", 0)
    report = gradcheck(net, params, x, y, loss="mse", reg=REG, backward=backward, n_samples=0)
    assert report.source == (0, "W") and report.findings[0].kind == "activation"
    assert "relu′(0) taken as 1" in report.findings[0].message


def test_the_forms_a_backward_may_not_take_get_a_message_naming_the_fix():
    net, params, x, y = problem(2, "tanh", "mse")
    right = planted()

    def as_list(*args, **kwargs):
        return list(right(*args, **kwargs))

    def seeds_shapes(*args, **kwargs):
        return tuple({"W": g["W"].T, "b": g["b"][:, None]} for g in right(*args, **kwargs))

    def column_vectors(net, params, x, y, *, loss, reg):
        return params[0]["W"].T @ x  # the seeds' W·X on row-major arrays

    with pytest.raises(TypeError, match=r"return tuple\(grads\), or pass layout='seeds'"):
        gradcheck(net, params, x, y, loss="mse", reg=REG, backward=as_list)
    with pytest.raises(ValueError, match="the seeds' layout; pass layout='seeds'"):
        gradcheck(net, params, x, y, loss="mse", reg=REG, backward=seeds_shapes)
    with pytest.raises(jm.BackwardError, match="dot_general.*pass layout='seeds'") as info:
        gradcheck(net, params, x, y, loss="mse", reg=REG, backward=column_vectors)
    assert isinstance(info.value.__cause__, TypeError)


def seeds_student(bug=None):
    """The seeds' tables for a 3-layer sigmoid net, literally: columns, E = Y − Ŷ, updates add."""

    def sigma(z):
        return 1 / (1 + np.exp(-z))

    def backward(net, params, X, Y, *, loss, reg):
        (W1, B1), (W2, B2), (W3, B3) = [(np.asarray(p["W"]), np.asarray(p["b"])) for p in params]
        HI1 = W1 @ X + B1
        HO1 = sigma(HI1)
        HI2 = W2 @ HO1 + B2
        HO2 = sigma(HI2)
        HO_final = W3 @ HO2 + B3
        E = Y - sigma(HO_final)
        at = sigma(HO_final) if bug == "sigma_of_yhat" else HO_final
        err_final = E * sigma(at) * (1 - sigma(at))
        err2 = (W3.T @ err_final) * sigma(HI2) * (1 - sigma(HI2))
        err1 = (W2.T @ err2) * sigma(HI1) * (1 - sigma(HI1))
        out = [(err @ HO.T - 2 * r.l2w * W, err.sum(axis=1, keepdims=True))
               for err, HO, W, r in ((err1, X, W1, reg[0]), (err2, HO1, W2, reg[1]),
                                     (err_final, HO2, W3, reg[2]))]  # fmt: skip
        if bug == "no_l2":  # layer 1's penalty forgotten
            out[1] = (err2 @ HO1.T, out[1][1])
        if bug == "transpose":  # layer 1's direction as HO·errᵀ
            out[1] = (HO1 @ err2.T - 2 * reg[1].l2w * W2.T, out[1][1])
        return out, [err1, err2, err_final]

    return backward


def test_the_seeds_layout_is_checked_as_written_and_converted_in_words():
    net = jm.MLP((3, 5, 4, 2), ("sigmoid",) * 3)
    _, params, x, _ = problem(3, "sigmoid", "mse")
    params = jm.init_params(jax.random.key(1), net)
    y = jnp.asarray(np.random.default_rng(1).uniform(size=(6, 2)), jnp.float32)
    kwargs = {"loss": "mse", "reg": REG, "layout": "seeds", "n_samples": 2}
    report = gradcheck(net, params, x, y, backward=seeds_student(), **kwargs)
    assert report.passed and report.conversion.startswith("layout='seeds': W (fan_out, fan_in)")
    assert "S = N·K/2 = 6·2/2" in report.conversion and len(report.steps) == 3
    bad = gradcheck(net, params, x, y, backward=seeds_student("sigma_of_yhat"), **kwargs)
    assert bad.source == (2, "delta") and bad.findings[0].kind == "activation"
    assert "σ′(HO_final)" in bad.findings[0].message
    for bug, kind, factor in (("no_l2", "penalty", 0.0), ("transpose", "transpose", None)):
        found = gradcheck(net, params, x, y, backward=seeds_student(bug), **kwargs).findings[0]
        assert (found.layer, found.leaf, found.kind) == (1, "W", kind)
        assert found.factor == (None if factor is None else pytest.approx(factor))
        assert "pass layout='seeds'" not in found.message


def test_nonfinite_and_unexplained_leaves():
    net, params, x, y = problem(2, "tanh", "mse")
    right = planted()

    def broken(*args, **kwargs):
        g = right(*args, **kwargs)
        w = np.array(g[1]["W"])
        w[0, 1] = np.nan
        noisy = g[0]["W"] + np.arange(g[0]["W"].size).reshape(g[0]["W"].shape) * 1e-3
        return ({"W": noisy, "b": g[0]["b"]}, {"W": w, "b": g[1]["b"]})

    report = gradcheck(net, params, x, y, loss="mse", reg=REG, backward=broken, n_samples=0)
    top, below = report.findings
    assert (top.layer, top.kind) == (1, "nonfinite") and "1 of 15 entries" in top.message
    assert "the first at [0, 1]" in top.message
    assert (below.layer, below.kind, below.factor) == (0, "unexplained", None)
    assert "no known error explains it" in below.message and "worst at [2, 4]" in below.message
    assert report.source == (1, "W")
