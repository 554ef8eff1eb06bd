"""Optimizers against literal NumPy transcriptions of the seed equations, and their contract.

Each reference below is the seeds' update written out for one array in float64 NumPy,
independent of jaxmlp; `run_reference` applies it leaf by leaf over a gradient sequence.
"""

import functools
import importlib
import math
from typing import NamedTuple

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxmlp import optim, schedules
from jaxmlp.optim import apply_updates, set_hyperparams

# ---------------------------------------------------------------------------------------------
# NumPy references (float64, one leaf at a time). ``lr`` is a number or a function of the step
# k (0 at the first update); ``t = k + 1``. ``is_bias`` says whether the leaf is a bias.


def lr_at(lr, k):
    return lr(k) if callable(lr) else lr


def np_sgd(lr, momentum=0.0, nesterov=False):
    def init(w):
        return {"v": np.zeros_like(w)}

    def step(g, w, s, k, is_bias):
        v = momentum * s["v"] + g  # v_t = μ·v_{t−1} + g_t
        d = g + momentum * v if nesterov else v
        return -lr_at(lr, k) * d, {"v": v}  # W = W − η·v_t

    return init, step


def np_adagrad(lr, eps, eps_root, initial=0.0):
    def init(w):
        return {"G": np.full_like(w, initial)}

    def step(g, w, s, k, is_bias):
        G = s["G"] + g**2  # G_t = Σ g²
        return -lr_at(lr, k) * g / (np.sqrt(G + eps_root) + eps), {"G": G}

    return init, step


def np_rmsprop(lr, rho, eps, eps_root, centered=False, momentum=0.0):
    def init(w):
        return {"S": np.zeros_like(w), "gbar": np.zeros_like(w), "b": np.zeros_like(w)}

    def step(g, w, s, k, is_bias):
        S = rho * s["S"] + (1 - rho) * g**2  # S_t = ρ·S_{t−1} + (1 − ρ)·g²
        gbar = rho * s["gbar"] + (1 - rho) * g
        var = np.maximum(S - gbar**2, 0) if centered else S
        b = momentum * s["b"] + g / (np.sqrt(var + eps_root) + eps)
        return -lr_at(lr, k) * b, {"S": S, "gbar": gbar, "b": b}

    return init, step


def np_adam(lr, b1, b2, eps, eps_root, amsgrad=False, weight_decay=0.0, decays=None):
    decays = decays or (lambda is_bias: False)

    def init(w):
        return {"m": np.zeros_like(w), "v": np.zeros_like(w), "vmax": np.zeros_like(w)}

    def step(g, w, s, k, is_bias):
        t = k + 1
        m = b1 * s["m"] + (1 - b1) * g  # m_t
        v = b2 * s["v"] + (1 - b2) * g**2  # v_t
        vmax = np.maximum(s["vmax"], v)
        m_hat = m / (1 - b1**t)
        v_hat = (vmax if amsgrad else v) / (1 - b2**t)
        d = m_hat / (np.sqrt(v_hat + eps_root) + eps)
        if decays(is_bias):
            d = d + weight_decay * w  # decoupled: W = W − η·λ·W
        return -lr_at(lr, k) * d, {"m": m, "v": v, "vmax": vmax}

    return init, step


def np_inverse_time(lr0, decay):
    return lambda k: lr0 / (1 + decay * k)


def np_cosine(lr0, T, alpha):
    return lambda k: lr0 * ((1 - alpha) * 0.5 * (1 + math.cos(math.pi * min(k, T) / T)) + alpha)


def np_warmup(inner, W, init_value=0.0):
    return lambda k: init_value + (inner(0) - init_value) * k / W if k < W else inner(k - W)


def run_reference(ref, leaves, grad_seq):
    """Trajectory of the params (list of leaf lists) and the final states, in float64."""
    init, step = ref
    ws = [np.asarray(w, np.float64) for w, _ in leaves]
    states = [init(w) for w in ws]
    traj = []
    for k, grads in enumerate(grad_seq):
        for i, ((_, is_bias), g) in enumerate(zip(leaves, grads)):
            u, states[i] = step(g, ws[i], states[i], k, is_bias)
            ws[i] = ws[i] + u
        traj.append([w.copy() for w in ws])
    return traj, states


# ---------------------------------------------------------------------------------------------
# Test data: a two-layer params tree and 50 random gradients with exact zeros.

SHAPES = [((3, 2), False), ((2,), True), ((2, 1), False), ((1,), True)]  # W1 b1 W2 b2


def make_problem(steps=50, seed=0):
    rng = np.random.default_rng(seed)
    leaves = [(rng.normal(size=shape), is_bias) for shape, is_bias in SHAPES]
    grad_seq = []
    for _ in range(steps):
        grads = []
        for shape, _ in SHAPES:
            g = rng.normal(size=shape) * rng.choice([0.01, 1.0, 10.0])
            g[rng.random(shape) < 0.3] = 0.0  # exact zeros, often
            grads.append(g)
        grads[0][0, 0] = 0.0  # a coordinate whose gradient is always exactly 0
        grad_seq.append(grads)
    return leaves, grad_seq


def as_tree(leaf_list):
    W1, b1, W2, b2 = (jnp.asarray(x) for x in leaf_list)
    return ({"W": W1, "b": b1}, {"W": W2, "b": b2})


def run_jax(opt, leaves, grad_seq):
    """The params after each update (leaf lists), and the final state."""

    @jax.jit
    def step(params, state, grads):
        updates, state = opt.update(grads, state, params)
        return apply_updates(params, updates), state

    params = as_tree([w for w, _ in leaves])
    state = opt.init(params)
    traj = []
    for grads in grad_seq:
        params, state = step(params, state, as_tree(grads))
        traj.append(jax.tree.leaves(params))
    return traj, state


def no_bias_decay(is_bias):
    return not is_bias


# (id, optimizer factory, NumPy reference factory); factories so arrays are made under x64.
CASES = [
    ("sgd", lambda: optim.sgd(0.1), lambda: np_sgd(0.1)),
    ("sgd-nesterov", lambda: optim.sgd(0.05, 0.9, True), lambda: np_sgd(0.05, 0.9, True)),
    (
        "sgd-book-decay",
        lambda: optim.sgd(schedules.inverse_time(0.5, 0.1), 0.5),
        lambda: np_sgd(np_inverse_time(0.5, 0.1), 0.5),
    ),
    (
        "adagrad-seeds",
        lambda: optim.adagrad(0.5, eps=0.0, eps_root=1e-8),
        lambda: np_adagrad(0.5, 0.0, 1e-8),
    ),
    (
        "adagrad-torch-lr_decay",
        lambda: optim.adagrad(schedules.inverse_time(0.1, 0.01), eps=1e-10),
        lambda: np_adagrad(np_inverse_time(0.1, 0.01), 1e-10, 0.0),
    ),
    (
        "adagrad-keras",
        lambda: optim.adagrad(0.1, eps=0.0, eps_root=1e-7, initial_accumulator_value=0.1),
        lambda: np_adagrad(0.1, 0.0, 1e-7, initial=0.1),
    ),
    (
        "rmsprop-seeds",
        lambda: optim.rmsprop(0.01, eps=0.0, eps_root=1e-8),
        lambda: np_rmsprop(0.01, 0.9, 0.0, 1e-8),
    ),
    (
        "rmsprop-momentum",
        lambda: optim.rmsprop(0.01, rho=0.99, eps=1e-8, momentum=0.9),
        lambda: np_rmsprop(0.01, 0.99, 1e-8, 0.0, momentum=0.9),
    ),
    (
        "rmsprop-centered-momentum-cosine",
        lambda: optim.rmsprop(
            schedules.cosine(0.01, 30, alpha=0.1),
            eps=1e-6,
            eps_root=1e-9,
            centered=True,
            momentum=0.5,
        ),
        lambda: np_rmsprop(np_cosine(0.01, 30, 0.1), 0.9, 1e-6, 1e-9, True, 0.5),
    ),
    ("adam", lambda: optim.adam(0.01), lambda: np_adam(0.01, 0.9, 0.999, 1e-8, 0.0)),
    (
        "adam-amsgrad",
        lambda: optim.adam(0.01, b1=0.5, b2=0.9, amsgrad=True),
        lambda: np_adam(0.01, 0.5, 0.9, 1e-8, 0.0, amsgrad=True),
    ),
    (
        "adam-warmup-cosine",
        lambda: optim.adam(schedules.warmup(schedules.cosine(0.02, 40), 10, 0.001)),
        lambda: np_adam(np_warmup(np_cosine(0.02, 40, 0.0), 10, 0.001), 0.9, 0.999, 1e-8, 0.0),
    ),
    (
        "adamw",
        lambda: optim.adamw(0.01, weight_decay=0.1),
        lambda: np_adam(0.01, 0.9, 0.999, 1e-8, 0.0, weight_decay=0.1, decays=no_bias_decay),
    ),
    (
        "adamw-mask-all-amsgrad",
        lambda: optim.adamw(
            0.01, weight_decay=0.5, amsgrad=True, mask=lambda p: jax.tree.map(lambda _: True, p)
        ),
        lambda: np_adam(0.01, 0.9, 0.999, 1e-8, 0.0, True, 0.5, decays=lambda is_bias: True),
    ),
    (
        "adamw-seeds-inverse-time",
        lambda: optim.adamw(schedules.inverse_time(0.05, 0.1), eps=0.0, eps_root=1e-8),
        lambda: np_adam(
            np_inverse_time(0.05, 0.1),
            0.9,
            0.999,
            0.0,
            1e-8,
            weight_decay=1e-2,
            decays=no_bias_decay,
        ),
    ),
]


F32_IDS = ("sgd-nesterov", "adagrad-keras", "rmsprop-centered-momentum-cosine", "adamw")


@pytest.mark.parametrize("make_opt, make_ref", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_trajectory_equals_seed_equations(x64, make_opt, make_ref):
    """50 steps on random gradients with exact zeros equal the NumPy transcription (float64)."""
    leaves, grad_seq = make_problem()
    got, state = run_jax(make_opt(), leaves, grad_seq)
    want, ref_states = run_reference(make_ref(), leaves, grad_seq)
    for k, (g, w) in enumerate(zip(got, want)):
        for a, b in zip(g, w):
            assert a.dtype == jnp.float64
            np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-12, err_msg=f"step {k}")
    assert int(state.count) == 50
    # The accumulators agree too (G_t, S_t, m_t, v_t), not only the weights.
    fields = {"G": "sum_of_squares", "S": "nu", "m": "mu", "v": "nu"}
    for ref_key, field in fields.items():
        if ref_key in ref_states[0] and hasattr(state, field):
            for a, s in zip(jax.tree.leaves(getattr(state, field)), ref_states):
                np.testing.assert_allclose(a, s[ref_key], rtol=1e-6, atol=1e-14)


FLOAT32_CASES = [c for c in CASES if c[0] in F32_IDS]


def accumulators(state):
    """The state's arrays that are not hyperparameters nor the count (G, S, m, v, ...)."""
    skip = {*type(state).hyperparameters, "count"}
    return jax.tree.leaves([x for f, x in state._asdict().items() if f not in skip])


@pytest.mark.parametrize(
    "make_opt, make_ref", [c[1:] for c in FLOAT32_CASES], ids=[c[0] for c in FLOAT32_CASES]
)
def test_float32_trajectory(make_opt, make_ref):
    """In float32 the trajectory stays float32 and follows the float64 reference closely."""
    leaves, grad_seq = make_problem(steps=20)
    f32 = lambda xs: [np.float32(x) for x in xs]  # noqa: E731
    leaves32 = [(np.float32(w), b) for w, b in leaves]
    got, state = run_jax(make_opt(), leaves32, [f32(g) for g in grad_seq])
    want, _ = run_reference(make_ref(), leaves, grad_seq)
    for g, w in zip(got[-1], want[-1]):
        assert g.dtype == jnp.float32
        np.testing.assert_allclose(g, w, rtol=1e-4, atol=1e-5)
    assert all(x.dtype == jnp.float32 for x in accumulators(state))
    assert state.count.dtype == jnp.int32


@pytest.mark.parametrize(
    "make_opt",
    [c[1] for c in CASES if c[0] in ("sgd-nesterov", "adagrad-seeds", "rmsprop-momentum", "adamw")],
    ids=["sgd", "adagrad", "rmsprop", "adamw"],
)
def test_float32_params_stay_float32_under_x64(x64, make_opt):
    """Hyperparameters are float64 under x64, but updates and state keep the params' dtype."""
    leaves, grad_seq = make_problem(steps=3)
    opt = make_opt()
    params = jax.tree.map(lambda x: x.astype(jnp.float32), as_tree([w for w, _ in leaves]))
    state = opt.init(params)
    traces = []
    step = jax.jit(lambda g, s, p: (traces.append(1), opt.update(g, s, p))[1])
    for grads in grad_seq:
        g32 = jax.tree.map(lambda x: x.astype(jnp.float32), as_tree(grads))
        updates, state = step(g32, state, params)
        params = apply_updates(params, updates)
    assert all(u.dtype == jnp.float32 for u in jax.tree.leaves(updates))
    assert all(p.dtype == jnp.float32 for p in jax.tree.leaves(params))
    assert all(x.dtype == jnp.float32 for x in accumulators(state))
    assert len(traces) == 1  # the state's dtypes did not drift between steps


# ---------------------------------------------------------------------------------------------
# The book's optimizers (Sentdex/nnfs_book, Chapter 15), transcribed literally: its defaults and
# its lr/(1 + decay·iterations) are reproduced by the settings given in the README table.


class BookOptimizer:
    """The book's four optimizer classes in one, acting on a list of arrays."""

    def __init__(
        self,
        kind,
        learning_rate,
        decay=0.0,
        epsilon=1e-7,
        momentum=0.0,
        rho=0.9,
        beta_1=0.9,
        beta_2=0.999,
    ):
        self.kind, self.learning_rate, self.decay = kind, learning_rate, decay
        self.current_learning_rate, self.iterations = learning_rate, 0
        self.epsilon, self.momentum, self.rho = epsilon, momentum, rho
        self.beta_1, self.beta_2 = beta_1, beta_2
        self.m, self.cache = None, None

    def step(self, weights, dweights):
        if self.decay:  # pre_update_params
            self.current_learning_rate = self.learning_rate * (
                1.0 / (1.0 + self.decay * self.iterations)
            )
        if self.m is None:
            self.m = [np.zeros_like(w) for w in weights]
            self.cache = [np.zeros_like(w) for w in weights]
        lr, out = self.current_learning_rate, []
        for i, (w, d) in enumerate(zip(weights, dweights)):
            if self.kind == "sgd":
                update = self.momentum * self.m[i] - lr * d
                self.m[i] = update
            elif self.kind == "adagrad":
                self.cache[i] += d**2
                update = -lr * d / (np.sqrt(self.cache[i]) + self.epsilon)
            elif self.kind == "rmsprop":
                self.cache[i] = self.rho * self.cache[i] + (1 - self.rho) * d**2
                update = -lr * d / (np.sqrt(self.cache[i]) + self.epsilon)
            else:
                self.m[i] = self.beta_1 * self.m[i] + (1 - self.beta_1) * d
                m_corrected = self.m[i] / (1 - self.beta_1 ** (self.iterations + 1))
                self.cache[i] = self.beta_2 * self.cache[i] + (1 - self.beta_2) * d**2
                c_corrected = self.cache[i] / (1 - self.beta_2 ** (self.iterations + 1))
                update = -lr * m_corrected / (np.sqrt(c_corrected) + self.epsilon)
            out.append(w + update)
        self.iterations += 1  # post_update_params
        return out


BOOK = [
    ("sgd", dict(learning_rate=1.0, decay=0.0, momentum=0.9), lambda: optim.sgd(1.0, 0.9)),
    (
        "adagrad",
        dict(learning_rate=1.0, decay=1e-4),
        lambda: optim.adagrad(schedules.inverse_time(1.0, 1e-4), eps=1e-7),
    ),
    (
        "rmsprop",
        dict(learning_rate=0.02, decay=1e-5, rho=0.999),
        lambda: optim.rmsprop(schedules.inverse_time(0.02, 1e-5), rho=0.999, eps=1e-7),
    ),
    (
        "adam",
        dict(learning_rate=0.05, decay=5e-7),
        lambda: optim.adam(schedules.inverse_time(0.05, 5e-7), eps=1e-7),
    ),
]


@pytest.mark.parametrize("kind, kwargs, make_opt", BOOK, ids=[b[0] for b in BOOK])
def test_book_settings_reproduce_the_books_optimizers(x64, kind, kwargs, make_opt):
    leaves, grad_seq = make_problem(steps=30, seed=1)
    book = BookOptimizer(kind, **kwargs)
    weights = [w for w, _ in leaves]
    for grads in grad_seq:
        weights = book.step(weights, grads)
    got, _ = run_jax(make_opt(), leaves, grad_seq)
    for a, b in zip(got[-1], weights):
        np.testing.assert_allclose(a, b, rtol=1e-9, atol=1e-12)


def test_book_momentum_with_decay_differs_from_ours(x64):
    """The documented exception: with momentum *and* a decaying rate, the book's velocity
    accumulates −η_k·g_k, ours η_t·Σμ^j·g — different weights."""
    leaves, grad_seq = make_problem(steps=10, seed=2)
    book = BookOptimizer("sgd", learning_rate=1.0, decay=0.1, momentum=0.9)
    weights = [w for w, _ in leaves]
    for grads in grad_seq:
        weights = book.step(weights, grads)
    got, _ = run_jax(optim.sgd(schedules.inverse_time(1.0, 0.1), 0.9), leaves, grad_seq)
    assert not np.allclose(got[-1][0], weights[0], rtol=1e-3)


# ---------------------------------------------------------------------------------------------
# Hyperparameters are data: no retracing, vmap over them.


def test_changing_hyperparameters_does_not_retrace():
    params = {"W": jnp.array([[1.0, -2.0]]), "b": jnp.array([0.5])}
    grads = {"W": jnp.array([[0.3, 0.1]]), "b": jnp.array([-0.2])}
    lr = schedules.warmup(schedules.inverse_time(0.1, 0.01), warmup_steps=3)
    opt = optim.adam(lr, amsgrad=True)

    def step(params, state):
        updates, state = opt.update(grads, state, params)
        return apply_updates(params, updates), state

    jitted = jax.jit(chex.assert_max_traces(step, n=1))
    reference = jax.jit(step)  # compiled on its own: its cache is not the one being counted
    state0 = opt.init(params)
    p1, s1 = jitted(params, state0)
    changes = [
        dict(b1=0.5),
        dict(b2=0.9, eps=1e-6),
        dict(learning_rate=s1.learning_rate._replace(init_value=0.05)),
        dict(learning_rate=lr._replace(schedule=lr.schedule._replace(lr0=0.3, decay=0.5))),
    ]
    for change in changes:
        s_new = set_hyperparams(s1, **change)
        p2, _ = jitted(p1, s_new)
        p_ref, _ = reference(p1, s_new)  # the change takes effect ...
        p_old, _ = reference(p1, s1)  # ... and makes a difference
        chex.assert_trees_all_close(p2, p_ref, rtol=1e-6)
        assert not np.allclose(p2["W"], p_old["W"], rtol=1e-7, atol=0)
    # Replacing the state's arrays directly (same dtype) does not retrace either.
    jitted(p1, s1._replace(b1=jnp.asarray(0.8, s1.b1.dtype)))


def test_changing_a_float_learning_rate_does_not_retrace():
    params = {"w": jnp.array([1.0, -1.0])}
    opt = optim.rmsprop(0.1, momentum=0.5)

    @jax.jit
    @chex.assert_max_traces(n=1)
    def step(params, state):
        updates, state = opt.update({"w": jnp.array([1.0, 0.5])}, state, params)
        return updates, state

    state = opt.init(params)
    for lr in (0.1, 0.01, 0.0):
        updates, _ = step(params, set_hyperparams(state, learning_rate=lr, rho=0.5))
        # First RMSprop step with rho = 0.5: −η·g/(√(0.5·g²) + eps) = −η·√2 (eps = 1e-7).
        np.testing.assert_allclose(updates["w"], -lr * np.sqrt(2) * np.ones(2), rtol=1e-5)


def test_a_new_python_function_as_learning_rate_recompiles():
    """The documented exception: a user callable is a closure constant, not data."""
    params = {"W": jnp.ones(2)}
    traces = []

    def step(params, state):
        traces.append(1)
        return opt.update({"W": jnp.ones(2)}, state, params)

    def halving(k):
        return 0.1 * 0.5**k

    opt = optim.sgd(halving)
    jitted = jax.jit(step)
    state = opt.init(params)
    u, state = jitted(params, state)
    u, state = jitted(params, state)
    np.testing.assert_allclose(u["W"], [-0.05, -0.05], rtol=1e-6)
    assert len(traces) == 1
    with pytest.raises(ValueError, match="another kind of schedule"):
        set_hyperparams(state, learning_rate=lambda k: 0.2)


@pytest.mark.parametrize("use_schedule", [False, True], ids=["float-lr", "schedule-lr"])
def test_vmap_over_stacked_adam_states_equals_separate_runs(x64, use_schedule):
    target = jnp.array([1.0, -2.0, 0.5])

    def loss(p):
        return jnp.sum((p["w"] - target) ** 2 * jnp.array([1.0, 10.0, 0.1]))

    lrs = jnp.array([1e-3, 1e-2, 1e-1])
    if use_schedule:
        decays = jnp.array([0.0, 0.1, 1.0])
        make = lambda lr, d: optim.adam(schedules.inverse_time(lr, d))  # noqa: E731
    else:
        decays = jnp.zeros(3)
        make = lambda lr, d: optim.adam(lr)  # noqa: E731
    params = {"w": jnp.zeros(3)}
    base = make(1.0, 0.0)

    def stacked_state(lr, d):
        state = base.init(params)
        if use_schedule:
            new_lr = state.learning_rate._replace(lr0=lr, decay=d)
        else:
            new_lr = lr
        return set_hyperparams(state, learning_rate=new_lr)

    def step(opt, p, s):
        u, s = opt.update(jax.grad(loss)(p), s, p)
        return apply_updates(p, u), s

    states = jax.vmap(stacked_state)(lrs, decays)
    ps = jax.tree.map(lambda x: jnp.stack([x] * 3), params)
    vstep = jax.jit(jax.vmap(lambda p, s: step(base, p, s)))
    for _ in range(15):
        ps, states = vstep(ps, states)
    for i in range(3):
        opt = make(float(lrs[i]), float(decays[i]))
        p, s = params, opt.init(params)
        single = jax.jit(lambda p, s, opt=opt: step(opt, p, s))
        for _ in range(15):
            p, s = single(p, s)
        np.testing.assert_allclose(ps["w"][i], p["w"], rtol=1e-12, atol=1e-14)
    assert len({float(x) for x in ps["w"][:, 0]}) == 3  # three different trajectories


# ---------------------------------------------------------------------------------------------
# Convergence on a quadratic and on Rosenbrock, for every optimizer.


def quadratic(p):
    x = p["x"]
    return 0.5 * (x[0] - 1.0) ** 2 + 5.0 * (x[1] + 2.0) ** 2


def rosenbrock(p):
    x, y = p["x"][0], p["x"][1]
    return (1 - x) ** 2 + 100 * (y - x**2) ** 2


def minimize(opt, loss, x0, steps):
    params = {"x": jnp.asarray(x0, jnp.float32)}

    def body(carry, _):
        p, s = carry
        u, s = opt.update(jax.grad(loss)(p), s, p)
        return (apply_updates(p, u), s), None

    (params, _), _ = jax.jit(lambda c: jax.lax.scan(body, c, None, length=steps))(
        (params, opt.init(params))
    )
    return np.asarray(params["x"])


CONVERGENCE = [
    ("sgd", lambda: optim.sgd(0.09), lambda: optim.sgd(1.5e-3)),
    ("sgd-momentum", lambda: optim.sgd(0.05, 0.9), lambda: optim.sgd(5e-4, 0.9)),
    ("sgd-nesterov", lambda: optim.sgd(0.05, 0.9, True), lambda: optim.sgd(5e-4, 0.9, True)),
    ("adagrad", lambda: optim.adagrad(1.0), lambda: optim.adagrad(0.5)),
    (
        "rmsprop",
        lambda: optim.rmsprop(schedules.inverse_time(0.05, 0.01)),
        lambda: optim.rmsprop(schedules.inverse_time(0.01, 1e-3)),
    ),
    (
        "rmsprop-centered-momentum",
        lambda: optim.rmsprop(schedules.inverse_time(0.01, 0.01), centered=True, momentum=0.9),
        lambda: optim.rmsprop(schedules.inverse_time(1e-3, 1e-3), centered=True, momentum=0.9),
    ),
    (
        "adam",
        lambda: optim.adam(schedules.inverse_time(0.1, 0.01)),
        lambda: optim.adam(schedules.inverse_time(0.02, 1e-3)),
    ),
    (
        "adam-amsgrad",
        lambda: optim.adam(schedules.inverse_time(0.1, 0.01), amsgrad=True),
        lambda: optim.adam(schedules.inverse_time(0.02, 1e-4), amsgrad=True),
    ),
    (
        "adamw",
        lambda: optim.adamw(schedules.inverse_time(0.1, 0.01), weight_decay=1e-4),
        lambda: optim.adamw(schedules.inverse_time(0.02, 1e-3), weight_decay=1e-5),
    ),
    (
        "clip-sgd",
        lambda: optim.chain(optim.clip_by_global_norm(1.0), optim.sgd(0.05, 0.9)),
        lambda: optim.chain(optim.clip_by_global_norm(10.0), optim.sgd(5e-4, 0.9)),
    ),
]


@pytest.mark.parametrize(
    "make_quad, make_rosen", [c[1:] for c in CONVERGENCE], ids=[c[0] for c in CONVERGENCE]
)
def test_convergence_on_quadratic_and_rosenbrock(make_quad, make_rosen):
    x = minimize(make_quad(), quadratic, [-3.0, 3.0], steps=1000)
    np.testing.assert_allclose(x, [1.0, -2.0], atol=1e-3)
    x = minimize(make_rosen(), rosenbrock, [-1.2, 1.0], steps=20_000)
    np.testing.assert_allclose(x, [1.0, 1.0], atol=1e-3)


# ---------------------------------------------------------------------------------------------
# AdamW's mask (clipping, chaining and proximal L1: tests/test_transforms.py).


def test_adamw_default_mask_decays_weights_not_biases():
    params = ({"W": jnp.array([[1.0, -2.0]]), "b": jnp.array([3.0])},)
    zero = jax.tree.map(jnp.zeros_like, params)
    opt = optim.adamw(0.1, weight_decay=0.5)
    updates, _ = opt.update(zero, opt.init(params), params)
    np.testing.assert_allclose(updates[0]["W"], -0.1 * 0.5 * params[0]["W"], rtol=1e-6)
    np.testing.assert_array_equal(updates[0]["b"], [0.0])


def test_adamw_mask_as_tree_and_as_function():
    params = ({"W": jnp.ones((1, 2)), "b": jnp.ones(1)}, {"W": jnp.ones((2, 1)), "b": jnp.ones(1)})
    zero = jax.tree.map(jnp.zeros_like, params)
    tree_mask = ({"W": True, "b": True}, {"W": False, "b": False})
    fn_mask = lambda p: (jax.tree.map(lambda _: True, p[0]), jax.tree.map(lambda _: False, p[1]))  # noqa: E731
    for mask in (tree_mask, fn_mask):
        opt = optim.adamw(0.1, weight_decay=0.5, mask=mask)
        u, _ = opt.update(zero, opt.init(params), params)
        np.testing.assert_allclose(u[0]["b"], [-0.05], rtol=1e-6)
        np.testing.assert_array_equal(u[1]["W"], [[0.0], [0.0]])


# ---------------------------------------------------------------------------------------------
# Bad input gives clear errors.

FACTORIES = {
    "sgd": optim.sgd,
    "adagrad": optim.adagrad,
    "rmsprop": optim.rmsprop,
    "adam": optim.adam,
    "adamw": optim.adamw,
    "proximal_l1": optim.proximal_l1,
}


@pytest.mark.parametrize("factory", FACTORIES.values(), ids=FACTORIES.keys())
def test_negative_or_nan_learning_rate_is_rejected(factory):
    with pytest.raises(ValueError, match=r"learning_rate must be >= 0; got -0.1"):
        factory(-0.1)
    with pytest.raises(ValueError, match=r"learning_rate must be finite; got nan"):
        factory(float("nan"))
    with pytest.raises(TypeError, match=r"learning_rate must be a number; got str"):
        factory("0.1")


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda: optim.adam(0.1, b1=1.0), r"b1 must be in \[0, 1\); got 1.0"),
        (lambda: optim.adam(0.1, b2=-0.1), r"b2 must be in \[0, 1\); got -0.1"),
        (lambda: optim.adamw(0.1, b1=1.5), r"b1 must be in \[0, 1\); got 1.5"),
        (lambda: optim.rmsprop(0.1, rho=1.0), r"rho must be in \[0, 1\); got 1.0"),
        (lambda: optim.rmsprop(0.1, momentum=1.0), r"momentum must be in \[0, 1\); got 1.0"),
        (lambda: optim.sgd(0.1, momentum=-0.5), r"momentum must be in \[0, 1\); got -0.5"),
        (lambda: optim.adagrad(0.1, eps=-1e-8), r"eps must be >= 0; got -1e-08"),
        (lambda: optim.adam(0.1, eps_root=-1.0), r"eps_root must be >= 0; got -1.0"),
        (lambda: optim.adamw(0.1, weight_decay=-0.1), r"weight_decay must be >= 0; got -0.1"),
        (lambda: optim.adam(0.1, eps=0.0), r"adam: eps and eps_root are both 0"),
        (lambda: optim.rmsprop(0.1, eps=0.0), r"rmsprop: eps and eps_root are both 0"),
        (lambda: optim.adagrad(0.1, eps=0.0), r"adagrad: eps and eps_root are both 0"),
        (lambda: optim.clip_by_global_norm(-1.0), r"max_norm must be >= 0; got -1.0"),
        (lambda: optim.proximal_l1(0.1, l1w=-1.0), r"l1w must be >= 0; got -1.0"),
        (
            lambda: optim.adagrad(0.1, initial_accumulator_value=-1.0),
            r"initial_accumulator_value must be >= 0; got -1.0",
        ),
    ],
    ids=lambda x: x if isinstance(x, str) else "",
)
def test_bad_hyperparameters_are_rejected(make, message):
    with pytest.raises(ValueError, match=message):
        make()


def test_adagrad_with_a_positive_initial_accumulator_allows_no_eps():
    opt = optim.adagrad(1.0, eps=0.0, initial_accumulator_value=0.25)
    u, _ = opt.update({"w": jnp.array([0.0])}, opt.init({"w": jnp.zeros(1)}))
    np.testing.assert_array_equal(u["w"], [0.0])


def test_state_that_does_not_match_the_params_is_rejected():
    params = ({"W": jnp.ones((2, 3)), "b": jnp.ones(3)},)
    opt = optim.adam(0.1)
    state = opt.init(params)
    other_tree = ({"W": jnp.ones((2, 3)), "b": jnp.ones(3)}, {"W": jnp.ones((3, 1))})
    with pytest.raises(ValueError, match="does not match the params tree"):
        opt.update(other_tree, state, other_tree)
    wrong_shape = ({"W": jnp.ones((2, 4)), "b": jnp.ones(3)},)
    with pytest.raises(ValueError, match=r"a leaf of shape \(2, 3\) stands where params have"):
        opt.update(wrong_shape, state, wrong_shape)
    with pytest.raises(TypeError, match=r"state must be the AdamState made by adam"):
        opt.update(params, optim.sgd(0.1).init(params), params)
    with pytest.raises(ValueError, match=r"the state of a chain of 2 must be a tuple"):
        optim.chain(optim.clip_by_global_norm(1.0), opt).update(params, state, params)


def test_transformations_that_need_params_say_so():
    params = {"W": jnp.ones(2)}
    for opt in (optim.adamw(0.1), optim.proximal_l1(0.1, 0.1)):
        with pytest.raises(ValueError, match=r"needs the params: call opt.update"):
            opt.update(params, opt.init(params))


def test_bad_mask_and_bad_chain_are_rejected():
    params = {"W": jnp.ones(2), "b": jnp.ones(1)}
    with pytest.raises(ValueError, match="mask must be a pytree of bools shaped like params"):
        optim.adamw(0.1, mask={"W": True}).init(params)
    with pytest.raises(ValueError, match="mask must be a pytree of bools shaped like params"):
        optim.adamw(0.1, mask=lambda p: {"W": 1.0, "b": 0.0}).init(params)
    with pytest.raises(TypeError, match=r"chain: transforms\[1\] must be a jaxmlp optimizer"):
        optim.chain(optim.sgd(0.1), lambda g: g)
    with pytest.raises(ValueError, match="chain needs at least one transformation"):
        optim.chain()


def test_set_hyperparams_validates():
    params = {"w": jnp.zeros(2)}
    state = optim.adam(0.1).init(params)
    assert float(set_hyperparams(state, b1=0.5).b1) == 0.5
    assert set_hyperparams(state, b1=0.5).b1.dtype == state.b1.dtype
    with pytest.raises(ValueError, match=r"unknown hyperparameter 'rho' for AdamState; expected"):
        set_hyperparams(state, rho=0.5)
    with pytest.raises(ValueError, match=r"unknown hyperparameter 'count'"):
        set_hyperparams(state, count=3)
    with pytest.raises(ValueError, match=r"b2 must be in \[0, 1\); got 1.0"):
        set_hyperparams(state, b2=1.0)
    with pytest.raises(ValueError, match="holds a fixed value; a schedule would change"):
        set_hyperparams(state, learning_rate=schedules.constant(0.1))
    with pytest.raises(ValueError, match=r"must broadcast to the shape the state holds, \(\)"):
        set_hyperparams(state, learning_rate=jnp.ones(3))
    with pytest.raises(TypeError, match="state must be the state of one jaxmlp optimizer"):
        set_hyperparams((state,), b1=0.5)

    sched_state = optim.adam(schedules.inverse_time(0.1, 0.01)).init(params)
    new = set_hyperparams(sched_state, learning_rate=sched_state.learning_rate._replace(lr0=0.2))
    assert float(new.learning_rate.lr0) == pytest.approx(0.2)
    with pytest.raises(ValueError, match=r"holds a schedule \(InverseTime\); pass a schedule"):
        set_hyperparams(sched_state, learning_rate=0.1)
    with pytest.raises(ValueError, match="another kind of schedule"):
        set_hyperparams(sched_state, learning_rate=schedules.cosine(0.1, 10))
    with pytest.raises(ValueError, match=r"inverse_time: decay must be >= 0; got -1.0"):
        set_hyperparams(sched_state, learning_rate=sched_state.learning_rate._replace(decay=-1.0))


def test_learning_rate_of_reports_the_last_updates_rate():
    params = {"w": jnp.zeros(1)}
    opt = optim.chain(optim.clip_by_global_norm(1.0), optim.adam(schedules.inverse_time(0.1, 1.0)))
    state = opt.init(params)
    np.testing.assert_allclose(optim.learning_rate_of(state), 0.1, rtol=1e-6)  # the first's
    for k in range(4):
        _, state = opt.update({"w": jnp.ones(1)}, state, params)
        np.testing.assert_allclose(optim.learning_rate_of(state), 0.1 / (1 + k), rtol=1e-6)
    fixed = optim.sgd(0.3)
    assert float(optim.learning_rate_of(fixed.init(params))) == pytest.approx(0.3)
    clip = optim.clip_by_global_norm(1.0)
    assert np.isnan(optim.learning_rate_of(clip.init(params)))


# ---------------------------------------------------------------------------------------------
# The subpackage: every state type is listed and declares its hyperparameters.


def test_state_types_lists_every_state_type_of_the_subpackage():
    defined = set()
    for name in ("base", "sgd", "adagrad", "rmsprop", "adam", "transforms"):
        module = importlib.import_module(f"jaxmlp.optim.{name}")
        namedtuples = [v for v in vars(module).values() if hasattr(v, "_fields")]
        defined |= {
            c for c in namedtuples if isinstance(c, type) and c.__module__ == module.__name__
        }
    assert defined - {optim.Optimizer} == set(optim.STATE_TYPES)
    assert "STATE_TYPES" in optim.__all__


@pytest.mark.parametrize("cls", optim.STATE_TYPES, ids=lambda c: c.__name__)
def test_each_state_type_declares_its_hyperparameters(cls):
    declared = cls.hyperparameters
    assert declared and set(declared) <= set(cls._fields)
    assert all(isinstance(h, optim.base.Hyper) for h in declared.values())
    assert "count" not in declared


def test_set_hyperparams_follows_a_users_own_declaration():
    """set_hyperparams reads the declaration on the state's type; it knows no type by name."""

    class ScaleState(NamedTuple):
        count: jax.Array
        scale: jax.Array

        hyperparameters = optim.base.Hyperparameters(scale=optim.base.Hyper(0.0, 1.0))

    hypers = ScaleState.hyperparameters.initial(scale=0.5)
    state = ScaleState(count=jnp.zeros((), jnp.int32), **hypers)
    assert state.scale.dtype == jnp.result_type(float)
    new = set_hyperparams(state, scale=0.25)
    assert float(new.scale) == 0.25 and new.scale.dtype == state.scale.dtype
    with pytest.raises(ValueError, match=r"scale must be in \[0, 1\); got 1.5"):
        set_hyperparams(state, scale=1.5)
    with pytest.raises(ValueError, match=r"ScaleState.scale holds a fixed value"):
        set_hyperparams(state, scale=schedules.constant(0.1))


def test_optimizers_compare_equal_by_program():
    assert optim.adam(1e-3) == optim.adam(1e-2, b1=0.5, eps=0.0, eps_root=1e-8)
    assert hash(optim.adam(1e-3)) == hash(optim.adam(1e-2))
    assert optim.adam(1e-3) != optim.adam(1e-3, amsgrad=True) and optim.adam(1e-3) != optim.adamw(
        1e-3
    )
    assert optim.sgd(0.1) == optim.sgd(0.5, momentum=0.9) != optim.sgd(0.1, nesterov=True)
    assert optim.rmsprop(0.1) != optim.rmsprop(0.1, centered=True)
    assert optim.chain(optim.clip_by_global_norm(1.0), optim.sgd(0.1)) == optim.chain(
        optim.clip_by_global_norm(5.0), optim.sgd(0.2)
    )
    assert optim.adamw(0.1, mask=lambda p: p) != optim.adamw(0.1, mask=lambda p: p)  # functions
    mine = optim.Optimizer(lambda p: None, lambda g, s, p=None: (g, s))
    assert mine == mine and mine != optim.Optimizer(mine.init, lambda g, s, p=None: (g, s))
    assert len({optim.adam(1e-3), optim.adam(3e-4), optim.sgd(0.1)}) == 2


@pytest.mark.parametrize(
    "make",
    [*FACTORIES.values(), lambda lr: optim.clip_by_global_norm(1.0)],
    ids=[*FACTORIES.keys(), "clip"],
)
def test_a_donated_state_leaves_the_next_init_intact(make):
    """A jitted step that donates its state, as optax users write one, may run twice: each init
    returns arrays of its own (the factory's hyperparameter leaves once were shared)."""
    opt = make(0.1)
    params = ({"W": jnp.ones((2, 3)), "b": jnp.zeros(3)},)
    grads = jax.tree.map(jnp.ones_like, params)

    @functools.partial(jax.jit, donate_argnums=(0, 1))
    def step(params, state):
        updates, state = opt.update(grads, state, params)
        return optim.apply_updates(params, updates), state

    first = step(jax.tree.map(jnp.copy, params), opt.init(params))
    second = step(jax.tree.map(jnp.copy, params), opt.init(params))  # once: a deleted buffer
    chex.assert_trees_all_close(jax.block_until_ready(second), first)
