"""Transformations (`jaxmlp.transforms`): clipping, chaining and proximal L1 against NumPy.

The proximal references are the soft-threshold step written out for one array in float64 NumPy;
the per-layer strengths are looked up by hand, layer by layer, independently of jaxmlp.
"""

import json
import math

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxmlp as jm
from jaxmlp import checkpoint, optim, schedules, transforms
from jaxmlp.optim import apply_updates, set_hyperparams
from tests.test_optim import SHAPES, as_tree, make_problem, run_jax

# ---------------------------------------------------------------------------------------------
# The module split: everything stays reachable from jaxmlp.optim.


def test_transforms_are_re_exported_from_optim():
    for name in ("chain", "clip_by_global_norm", "proximal_l1", "ClipState", "ProximalL1State"):
        assert getattr(optim, name) is getattr(transforms, name)
        assert name in optim.__all__
    assert transforms.chain(optim.sgd(0.1)).__class__ is optim.Optimizer


# ---------------------------------------------------------------------------------------------
# Clipping and chaining.


def np_clip(grads, max_norm):
    norm = math.sqrt(sum(float(np.sum(g**2)) for g in grads))
    return [g * (max_norm / norm) if norm > max_norm else g for g in grads]


@pytest.mark.parametrize("max_norm", [0.5, 5.0], ids=["clips-often", "clips-rarely"])
def test_chain_clip_then_sgd_momentum_equals_numpy(x64, max_norm):
    leaves, grad_seq = make_problem(steps=20, seed=3)
    opt = optim.chain(optim.clip_by_global_norm(max_norm), optim.sgd(0.1, momentum=0.9))
    got, state = run_jax(opt, leaves, grad_seq)
    ws = [w.copy() for w, _ in leaves]
    vs = [np.zeros_like(w) for w in ws]
    clipped_steps = 0
    for k, grads in enumerate(grad_seq):
        clipped = np_clip(grads, max_norm)
        clipped_steps += clipped[0] is not grads[0]
        for i, g in enumerate(clipped):
            vs[i] = 0.9 * vs[i] + g
            ws[i] = ws[i] - 0.1 * vs[i]
        for a, b in zip(got[k], ws):
            np.testing.assert_allclose(a, b, rtol=1e-9, atol=1e-12)
    assert 0 < clipped_steps < 20  # both branches of the clip were exercised
    assert isinstance(state, tuple) and [int(s.count) for s in state] == [20, 20]


def test_clip_leaves_small_gradients_alone_and_handles_zero():
    clip = optim.clip_by_global_norm(1.0)
    g = {"a": jnp.array([0.3, 0.4])}
    out, _ = clip.update(g, clip.init(g))
    np.testing.assert_array_equal(out["a"], g["a"])
    out, _ = clip.update({"a": jnp.zeros(2)}, clip.init(g))
    np.testing.assert_array_equal(out["a"], [0.0, 0.0])


def test_set_hyperparams_on_a_chain_inner_state():
    opt = optim.chain(optim.clip_by_global_norm(1.0), optim.sgd(0.1))
    params = {"w": jnp.zeros(2)}
    state = opt.init(params)
    state = (set_hyperparams(state[0], max_norm=0.5), set_hyperparams(state[1], learning_rate=1.0))
    u, _ = opt.update({"w": jnp.array([3.0, 4.0])}, state, params)
    np.testing.assert_allclose(u["w"], [-0.3, -0.4], rtol=1e-6)


# ---------------------------------------------------------------------------------------------
# Proximal L1: exact zeros, and the closed-form prox.


def soft_threshold(x, thr):
    return np.sign(x) * np.maximum(np.abs(x) - thr, 0)


def test_proximal_l1_step_is_the_closed_form_prox(x64):
    rng = np.random.default_rng(4)
    leaves = [rng.normal(size=shape) for shape, _ in SHAPES]
    steps = [rng.normal(size=shape) * 0.3 for shape, _ in SHAPES]
    params, updates = as_tree(leaves), as_tree(steps)
    prox = optim.proximal_l1(0.2, l1w=0.5, l1b=2.0)
    new, state = jax.jit(prox.update)(updates, prox.init(params), params)
    got = jax.tree.leaves(apply_updates(params, new))
    for (w, u, (_, is_bias)), g in zip(zip(leaves, steps, SHAPES), got):
        np.testing.assert_allclose(g, soft_threshold(w + u, 0.2 * (2.0 if is_bias else 0.5)))
    assert sum(int(np.sum(g == 0)) for g in got) > 0  # some entries fell inside the threshold


def test_proximal_l1_makes_exact_zeros_where_the_subgradient_step_does_not(x64):
    """Lasso with an orthonormal design: minimize ‖Xw − y‖²/(2n) + λ‖w‖₁ with XᵀX = n·I.

    The data term's gradient is w − z (z = Xᵀy/n) and the minimizer is the closed form
    soft(z, λ), exactly 0 where |z| <= λ. Proximal gradient descent reaches it, zeros exact; the
    seeds' subgradient step λ·sign(w) only chatters around 0.
    """
    z = jnp.array([2.0, -1.5, 0.3, -0.2, 0.05, 0.0, 1.0, -0.4])
    lam, eta = 0.5, 0.3
    want = soft_threshold(np.asarray(z), lam)

    def data_grad(p):
        return {"W": p["W"] - z}

    def run(opt, grad_fn):
        @jax.jit
        def step(p, s):
            u, s = opt.update(grad_fn(p), s, p)
            return apply_updates(p, u), s

        p = {"W": jnp.ones(8)}
        s = opt.init(p)
        for _ in range(100):
            p, s = step(p, s)
        return np.asarray(p["W"])

    prox = run(optim.chain(optim.sgd(eta), optim.proximal_l1(eta, l1w=lam)), data_grad)
    l1 = lambda p: jax.grad(lambda w: lam * jnp.sum(jnp.abs(w)))(p["W"])  # noqa: E731
    subgrad = run(optim.sgd(eta), lambda p: {"W": data_grad(p)["W"] + l1(p)})

    np.testing.assert_allclose(prox, want, rtol=1e-12, atol=0)
    assert np.sum(prox == 0) == np.sum(want == 0) == 5
    assert np.sum(subgrad == 0) == 0  # no exact zeros, ...
    np.testing.assert_allclose(subgrad[want == 0], 0, atol=eta * lam)  # ... just chatter
    np.testing.assert_allclose(subgrad[want != 0], want[want != 0], atol=eta * lam)


# ---------------------------------------------------------------------------------------------
# Proximal L1 with one strength per layer.

# A three-layer params tree: W1 (3, 4), b1 (4,), W2 (4, 2), b2 (2,), W3 (2, 1), b3 (1,).
LAYER_SHAPES = [(3, 4), (4, 2), (2, 1)]


def three_layers(rng, scale=1.0):
    return [(rng.normal(size=s) * scale, rng.normal(size=s[1:]) * scale) for s in LAYER_SHAPES]


def to_tree(layers):
    return tuple({"W": jnp.asarray(W), "b": jnp.asarray(b)} for W, b in layers)


def np_proximal_sgd(layers, grads, lr, l1w, l1b):
    """One step of proximal gradient descent, per layer, in NumPy (None: strength 0).

    ``w̃ = w − η·g``, then ``sign(w̃)·max(|w̃| − η·λ_layer, 0)``; a layer with λ = 0 keeps w̃.
    """
    out = []
    for l, ((W, b), (gW, gb)) in enumerate(zip(layers, grads)):
        new = []
        for w, g, lam in ((W, gW, l1w[l]), (b, gb, l1b[l])):
            w_tilde = w - lr * g
            lam = 0.0 if lam is None else lam
            new.append(soft_threshold(w_tilde, lr * lam) if lam > 0 else w_tilde)
        out.append(tuple(new))
    return out


PER_LAYER = [
    # (id, l1w, l1b): a zero layer (None and 0.0), every combination of weights and biases.
    ("hidden-only", (1.0, None, None), (1.0, None, None)),
    ("middle-zero", (0.8, 0.0, 1.5), (None, 1.2, 2.0)),
    ("weights-only", (0.5, 1.5, 1.0), 0.0),
]


@pytest.mark.parametrize("l1w, l1b", [c[1:] for c in PER_LAYER], ids=[c[0] for c in PER_LAYER])
def test_per_layer_proximal_sgd_trajectory_equals_numpy(x64, l1w, l1b):
    """30 steps of chain(sgd, proximal_l1) with per-layer strengths and a decaying learning rate
    equal the NumPy transcription; a layer whose strength is 0 follows plain SGD."""
    rng = np.random.default_rng(7)
    layers = three_layers(rng)
    lr = schedules.inverse_time(0.4, 0.1)
    np_lr = lambda k: 0.4 / (1 + 0.1 * k)  # noqa: E731
    opt = optim.chain(optim.sgd(lr), optim.proximal_l1(lr, l1w=l1w, l1b=l1b))
    step = jax.jit(lambda p, s, g: opt.update(g, s, p))
    params = to_tree(layers)
    state = opt.init(params)
    l1w_list = l1w if isinstance(l1w, tuple) else (l1w,) * 3
    l1b_list = l1b if isinstance(l1b, tuple) else (l1b,) * 3
    zeros_seen = np.zeros(3, bool)  # per layer: has a weight ever been exactly 0?
    for k in range(30):
        grads = [(rng.normal(size=W.shape), rng.normal(size=b.shape)) for W, b in layers]
        updates, state = step(params, state, to_tree(grads))
        params = apply_updates(params, updates)
        layers = np_proximal_sgd(layers, grads, np_lr(k), l1w_list, l1b_list)
        for l, (W, b) in enumerate(layers):
            for got, want in ((params[l]["W"], W), (params[l]["b"], b)):
                np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-15, err_msg=f"step {k}")
            zeros_seen[l] |= bool(np.any(np.asarray(params[l]["W"]) == 0))
    np.testing.assert_array_equal(zeros_seen, [bool(lam) for lam in l1w_list])  # only with L1


def test_a_zero_strength_layer_gets_the_inner_update_unchanged():
    """After Adam, a layer with strength 0 receives Adam's update bit for bit, another layer is
    soft-thresholded: the transformation touches only the layers it was given."""
    rng = np.random.default_rng(1)
    params = to_tree(three_layers(rng, scale=0.05))
    grads = to_tree(three_layers(rng))
    adam = optim.adam(0.1)
    inner, _ = adam.update(grads, adam.init(params), params)
    opt = optim.chain(adam, optim.proximal_l1(0.1, l1w=(None, 2.0, 0.0), l1b=(0.0, None, 0.5)))
    updates, _ = opt.update(grads, opt.init(params), params)
    for leaf in ("W", "b"):
        np.testing.assert_array_equal(updates[0][leaf], inner[0][leaf])
    np.testing.assert_array_equal(updates[1]["b"], inner[1]["b"])
    np.testing.assert_array_equal(updates[2]["W"], inner[2]["W"])
    for l, leaf, lam in ((1, "W", 2.0), (2, "b", 0.5)):
        w = np.asarray(params[l][leaf], np.float64)
        want = soft_threshold(w + np.asarray(inner[l][leaf], np.float64), 0.1 * lam) - w
        np.testing.assert_allclose(updates[l][leaf], want, rtol=1e-5, atol=1e-7)
    # Adam's first step is ±0.1 and |w| is small, so |w̃| < 0.2 = η·λ: every W of layer 1 is 0.
    assert np.all(np.asarray(apply_updates(params, updates)[1]["W"]) == 0)


def test_per_layer_forms_agree_and_a_number_means_every_layer():
    rng = np.random.default_rng(2)
    params = to_tree(three_layers(rng))
    updates = to_tree(three_layers(rng, scale=0.1))

    def step(**strengths):
        prox = optim.proximal_l1(0.5, **strengths)
        state = prox.init(params)
        return prox.update(updates, state, params)[0], state

    tuple_form, state = step(l1w=(0.4, None, 0.1))
    for other in (
        step(l1w=[0.4, 0.0, 0.1])[0],
        step(l1w=np.array([0.4, 0.0, 0.1]))[0],
        step(l1w=jnp.array([0.4, 0.0, 0.1]))[0],
    ):
        chex.assert_trees_all_equal(other, tuple_form)
    assert state.l1w.shape == (3,) and state.l1b.shape == ()
    np.testing.assert_allclose(state.l1w, [0.4, 0.0, 0.1], rtol=1e-7)
    # The old call form: one number for every layer, same as a tuple repeating it.
    chex.assert_trees_all_equal(step(l1w=0.3, l1b=0.1)[0], step(l1w=(0.3,) * 3, l1b=(0.1,) * 3)[0])


def test_changing_per_layer_strengths_does_not_retrace():
    params = to_tree(three_layers(np.random.default_rng(3)))
    updates = jax.tree.map(jnp.zeros_like, params)
    prox = optim.proximal_l1(1.0, l1w=(0.5, None, None))

    @jax.jit
    @chex.assert_max_traces(n=1)
    def step(state):
        return prox.update(updates, state, params)[0]

    state = prox.init(params)
    for l1w in ((0.5, None, None), (None, 100.0, 0.0), 0.0, (0.0, 0.0, 100.0)):
        new = set_hyperparams(state, l1w=l1w)
        out = apply_updates(params, step(new))
        lam = l1w if isinstance(l1w, tuple) else (l1w,) * 3
        for l in range(3):
            W = np.asarray(params[l]["W"])
            want = soft_threshold(W, lam[l]) if lam[l] else W
            np.testing.assert_allclose(out[l]["W"], want, rtol=1e-6)
    assert set_hyperparams(state, l1w=0.2).l1w.shape == (3,)  # a number fills every layer
    with pytest.raises(
        ValueError, match=r"l1w must broadcast to the shape the state holds, \(3,\)"
    ):
        set_hyperparams(state, l1w=(0.1, 0.2))
    with pytest.raises(ValueError, match=r"l1w\[2\] must be >= 0; got -1.0"):
        set_hyperparams(state, l1w=(0.1, 0.2, -1.0))
    scalar_state = optim.proximal_l1(1.0, l1w=0.5).init(params)
    with pytest.raises(ValueError, match=r"must broadcast to the shape the state holds, \(\)"):
        set_hyperparams(scalar_state, l1w=(0.1, 0.2, 0.3))


def test_vmap_over_per_layer_strengths_equals_separate_runs(x64):
    """A stack of states with different per-layer strengths trains side by side under vmap,
    the way `jaxmlp.fit_many` runs them."""
    net = jm.MLP((2, 6, 3), ("tanh", "softmax"))
    x, y = jm.spiral(jax.random.key(0), samples=10)
    params = jm.init_params(jax.random.key(1), net)
    strengths = [(1e-2, None), (None, 1e-2), (5e-3, 5e-3)]
    opt = optim.chain(optim.sgd(0.5), optim.proximal_l1(0.5, l1w=(0.0, 0.0)))

    def train(state):
        def body(carry, _):
            p, s = carry
            g = jax.grad(lambda p: jm.objective(net, p, x, y, loss="categorical_crossentropy")[0])(
                p
            )
            u, s = opt.update(g, s, p)
            return (apply_updates(p, u), s), None

        return jax.lax.scan(body, (params, state), None, length=50)[0][0]

    base = opt.init(params)
    states = [(base[0], set_hyperparams(base[1], l1w=lam)) for lam in strengths]
    batched = jax.jit(jax.vmap(train))(jm.ensemble.stack(states))
    for k, state in enumerate(states):
        chex.assert_trees_all_close(jm.ensemble.take(batched, k), jax.jit(train)(state), rtol=1e-12)
    zeros = [[int(np.sum(np.asarray(layer["W"][k]) == 0)) for layer in batched] for k in range(3)]
    assert zeros[0][0] > 0 and zeros[0][1] == 0  # hidden layer only
    assert zeros[1][0] == 0 and zeros[1][1] > 0  # output layer only


def test_fit_with_hidden_layer_proximal_l1_zeros_the_hidden_layer_only():
    net = jm.MLP((2, 16, 3), ("relu", "softmax"))
    x, y = jm.spiral(jax.random.key(0), samples=30)
    params = jm.init_params(jax.random.key(1), net)
    opt = optim.chain(optim.sgd(0.5), optim.proximal_l1(0.5, l1w=(2e-2, None)))
    result = jm.fit(net, params, opt, x, y, loss="categorical_crossentropy", epochs=50,
                    progress=False)  # fmt: skip
    hidden_zeros, output_zeros = result.history["w_zeros"][-1]
    assert hidden_zeros > 0.1 and output_zeros == 0


# ---------------------------------------------------------------------------------------------
# Bad strengths give clear errors.


@pytest.mark.parametrize(
    "kwargs, error, message",
    [
        (dict(l1w=-1.0), ValueError, r"l1w must be >= 0; got -1.0"),
        (dict(l1b=(0.1, -0.5)), ValueError, r"l1b\[1\] must be >= 0; got -0.5"),
        (dict(l1w=(0.1, float("nan"))), ValueError, r"l1w\[1\] must be finite; got nan"),
        (dict(l1w=np.array([0.1, -2.0])), ValueError, r"l1w must be >= 0; got \[0.1, -2.0\]"),
        (dict(l1w=(0.1, "x")), TypeError, r"l1w\[1\] must be a number; got str"),
        (dict(l1w=()), ValueError, r"l1w must be a number or a tuple with one strength per"),
        (dict(l1w=np.ones((2, 2))), ValueError, r"l1w must be a number, or one number per layer"),
        (dict(l1w=((0.1, 0.2), 0.3)), ValueError, r"l1w\[0\] must be a number .* got shape \(2,\)"),
        (
            dict(l1w=(0.1, 0.2), l1b=(0.1, 0.2, 0.3)),
            ValueError,
            r"l1w and l1b must give the same number of layers; got 2 and 3",
        ),
    ],
    ids=lambda v: v if isinstance(v, str) else "",
)
def test_bad_strengths_are_rejected(kwargs, error, message):
    with pytest.raises(error, match=message):
        optim.proximal_l1(0.1, **kwargs)


def test_wrong_number_of_layers_names_expected_and_got():
    params = to_tree(three_layers(np.random.default_rng(0)))
    prox = optim.proximal_l1(0.1, l1w=(0.1, None))
    with pytest.raises(
        ValueError,
        match=r"proximal_l1: l1w must give one strength per layer: expected 3 \(the params have "
        r"3 layers\); got 2",
    ):
        prox.init(params)
    # A state made for other params is caught by update too.
    state = prox.init(params[:2])
    with pytest.raises(ValueError, match=r"l1w must give one strength per layer: expected 3"):
        prox.update(params, state, params)
    with pytest.raises(ValueError, match=r"params must be a tuple with one entry per layer"):
        optim.proximal_l1(0.1, l1b=(0.1,)).init({"W": jnp.ones(2), "b": jnp.ones(1)})


# ---------------------------------------------------------------------------------------------
# Checkpoints: the type names in the header did not change with the module split.


def test_chain_state_round_trips_through_a_checkpoint(tmp_path):
    net = jm.MLP((2, 4, 3), ("relu", "softmax"))
    params = jm.init_params(jax.random.key(0), net)
    opt = optim.chain(
        optim.clip_by_global_norm(1.0),
        optim.sgd(0.1),
        optim.proximal_l1(schedules.inverse_time(0.1, 0.01), l1w=(1e-3, None), l1b=2e-3),
    )
    state = opt.init(params)
    path = tmp_path / "ckpt.npz"
    jm.save(path, net, params, state)
    with np.load(path) as data:
        header = json.loads(data["__header__"].tobytes())
    types = [item.get("type") for item in header["trees"]["opt_state"]["items"]]
    assert types == ["ClipState", "SGDState", "ProximalL1State"]
    loaded = jm.load(path).opt_state
    assert type(loaded[0]) is transforms.ClipState
    assert type(loaded[2]) is transforms.ProximalL1State
    chex.assert_trees_all_equal(loaded, state)


def test_a_checkpoint_in_the_format_written_before_the_split_still_loads(tmp_path):
    """A version-1 file whose header names ProximalL1State with scalar strengths (the only kind
    before per-layer strengths), written by hand here, loads and trains on."""
    W, b = np.full((2, 3), 0.5, np.float32), np.zeros(3, np.float32)
    arrays = [W, b, np.array(4, np.int32), np.float32(0.1), np.float32(0.2), np.float32(0.0)]
    leaf = lambda i: {"leaf": i}  # noqa: E731
    header = {
        "format": "jaxmlp-checkpoint",
        "version": 1,
        "net": {"sizes": [2, 3], "activations": ["softmax"]},
        "trees": {
            "params": {
                "type": "tuple",
                "items": [{"type": "dict", "items": {"W": leaf(0), "b": leaf(1)}}],
            },
            "opt_state": {
                "type": "ProximalL1State",
                "fields": {
                    "count": leaf(2),
                    "learning_rate": leaf(3),
                    "l1w": leaf(4),
                    "l1b": leaf(5),
                },
            },
        },
        "key": None,
        "metadata": {},
    }
    header["sha256"] = checkpoint._digest(header, arrays)
    path = tmp_path / "old.npz"
    payload = {f"a{i}": a for i, a in enumerate(arrays)}
    np.savez(path, __header__=np.frombuffer(json.dumps(header).encode(), np.uint8), **payload)

    ckpt = jm.load(path)
    state = ckpt.opt_state
    assert ckpt.net == jm.MLP((2, 3), ("softmax",))
    assert type(state) is optim.ProximalL1State and int(state.count) == 4
    prox = optim.proximal_l1(0.1, l1w=0.2)
    u, state = prox.update(jax.tree.map(jnp.zeros_like, ckpt.params), state, ckpt.params)
    np.testing.assert_allclose(apply_updates(ckpt.params, u)[0]["W"], W - 0.1 * 0.2, rtol=1e-6)
    np.testing.assert_array_equal(u[0]["b"], np.zeros(3))  # l1b = 0: untouched
    assert int(state.count) == 5
