"""Schedules against NumPy transcriptions of their formulas, composition, and bad input."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxmlp import optim, schedules

STEPS = np.arange(0, 120)


def book_decay(learning_rate, decay, iterations):
    """The book's pre_update_params, literally."""
    return learning_rate * (1.0 / (1.0 + decay * iterations))


def np_exponential(lr0, rate, T, staircase, t):
    p = t / T
    return lr0 * rate ** (math.floor(p) if staircase else p)


def np_cosine(lr0, T, alpha, t):
    return lr0 * ((1 - alpha) * 0.5 * (1 + math.cos(math.pi * min(t, T) / T)) + alpha)


def np_piecewise(boundaries, values, t):
    for b, v in zip(boundaries, values):
        if t < b:
            return v
    return values[-1]


# (id, schedule factory, NumPy value at step t)
SCHEDULES = [
    ("constant", lambda: schedules.constant(0.3), lambda t: 0.3),
    (
        "inverse_time-book",
        lambda: schedules.inverse_time(1.0, 1e-3),
        lambda t: book_decay(1.0, 1e-3, t),
    ),
    (
        "inverse_time-fast",
        lambda: schedules.inverse_time(0.02, 0.5),
        lambda t: book_decay(0.02, 0.5, t),
    ),
    (
        "exponential",
        lambda: schedules.exponential(0.1, 0.9, transition_steps=7),
        lambda t: np_exponential(0.1, 0.9, 7, False, t),
    ),
    (
        "exponential-staircase",
        lambda: schedules.exponential(0.1, 0.5, transition_steps=10, staircase=True),
        lambda t: np_exponential(0.1, 0.5, 10, True, t),
    ),
    ("cosine", lambda: schedules.cosine(0.5, 100), lambda t: np_cosine(0.5, 100, 0.0, t)),
    (
        "cosine-alpha",
        lambda: schedules.cosine(0.5, 50, alpha=0.2),
        lambda t: np_cosine(0.5, 50, 0.2, t),
    ),
    (
        "piecewise_constant",
        lambda: schedules.piecewise_constant([10, 30, 31], [1.0, 0.5, 0.25, 0.0]),
        lambda t: np_piecewise([10, 30, 31], [1.0, 0.5, 0.25, 0.0], t),
    ),
    (
        "piecewise_constant-no-boundary",
        lambda: schedules.piecewise_constant([], [0.7]),
        lambda t: 0.7,
    ),
]


@pytest.mark.parametrize("make, want", [s[1:] for s in SCHEDULES], ids=[s[0] for s in SCHEDULES])
def test_schedule_equals_its_formula(x64, make, want):
    schedule = make()
    got = jax.jit(jax.vmap(schedule))(jnp.asarray(STEPS, jnp.int32))
    assert got.dtype == jnp.float64
    np.testing.assert_allclose(got, [want(int(t)) for t in STEPS], rtol=1e-12, atol=1e-15)
    # Called one step at a time with a Python int, too.
    np.testing.assert_allclose(schedule(17), want(17), rtol=1e-12)


def test_schedules_are_float32_by_default():
    for _, make, want in SCHEDULES:
        value = make()(jnp.int32(5))
        assert value.dtype == jnp.float32
        np.testing.assert_allclose(value, want(5), rtol=1e-6)


@pytest.mark.parametrize(
    "make, want", [s[1:] for s in SCHEDULES[1:8:2]], ids=[s[0] for s in SCHEDULES[1:8:2]]
)
@pytest.mark.parametrize("W, init", [(0, 0.0), (1, 0.0), (12, 0.0), (12, 0.05)])
def test_warmup_composes_with_any_schedule(x64, make, want, W, init):
    schedule = schedules.warmup(make(), warmup_steps=W, init_value=init)
    got = jax.jit(jax.vmap(schedule))(jnp.asarray(STEPS, jnp.int32))
    expected = [
        init + (want(0) - init) * t / W if t < W else want(t - W) for t in (int(s) for s in STEPS)
    ]
    np.testing.assert_allclose(got, expected, rtol=1e-12, atol=1e-15)


def test_warmup_of_a_float_and_of_a_python_function(x64):
    flat = schedules.warmup(0.1, warmup_steps=4)
    np.testing.assert_allclose([flat(t) for t in range(6)], [0, 0.025, 0.05, 0.075, 0.1, 0.1])
    fn = schedules.warmup(lambda k: 0.1 / (k + 1), warmup_steps=2, init_value=0.0)
    np.testing.assert_allclose([fn(t) for t in range(5)], [0, 0.05, 0.1, 0.05, 0.1 / 3])


def test_warmup_of_warmup_nests():
    inner = schedules.warmup(schedules.constant(1.0), warmup_steps=2)
    outer = schedules.warmup(inner, warmup_steps=2, init_value=0.5)
    # outer ramps 0.5 → inner(0) = 0; then inner ramps 0 → 1 over its own steps 0, 1.
    np.testing.assert_allclose([outer(t) for t in range(6)], [0.5, 0.25, 0.0, 0.5, 1.0, 1.0])


def test_schedule_parameters_are_leaves_that_vmap_and_jit_take_as_data():
    stacked = schedules.inverse_time(jnp.array([1.0, 0.5]), jnp.array([0.0, 1.0]))
    got = jax.vmap(lambda s: s(4))(stacked)
    np.testing.assert_allclose(got, [1.0, 0.1], rtol=1e-6)
    traces = []

    @jax.jit
    def at_10(schedule):
        traces.append(1)
        return schedule(10)

    for lr0 in (0.1, 0.2, 0.3):
        np.testing.assert_allclose(at_10(schedules.cosine(lr0, 20)), lr0 / 2, rtol=1e-6)
    assert len(traces) == 1


def test_optimizer_uses_schedule_of_count_from_zero(x64):
    """Update k uses schedule(k): with a unit gradient, SGD's steps are −lr0/(1 + decay·k)."""
    opt = optim.sgd(schedules.inverse_time(1.0, 0.5))
    params = {"w": jnp.zeros(1)}
    state = opt.init(params)
    steps = []
    for _ in range(4):
        u, state = opt.update({"w": jnp.ones(1)}, state, params)
        steps.append(float(u["w"][0]))
    np.testing.assert_allclose(steps, [-book_decay(1.0, 0.5, k) for k in range(4)], rtol=1e-12)


@pytest.mark.parametrize(
    "make, error, message",
    [
        (lambda: schedules.constant(-1.0), ValueError, r"constant: value must be >= 0; got -1.0"),
        (
            lambda: schedules.inverse_time(0.1, -0.5),
            ValueError,
            r"inverse_time: decay must be >= 0; got -0.5",
        ),
        (
            lambda: schedules.inverse_time(float("inf"), 0.5),
            ValueError,
            r"inverse_time: lr0 must be finite; got inf",
        ),
        (
            lambda: schedules.exponential(0.1, 0.5, transition_steps=0),
            ValueError,
            r"exponential: transition_steps must be > 0; got 0",
        ),
        (
            lambda: schedules.exponential(0.1, 0.5, staircase="yes"),
            TypeError,
            r"exponential: staircase must be a bool; got 'yes'",
        ),
        (
            lambda: schedules.cosine(0.1, decay_steps=-10),
            ValueError,
            r"cosine: decay_steps must be > 0; got -10",
        ),
        (
            lambda: schedules.cosine(0.1, 10, alpha=1.5),
            ValueError,
            r"cosine: alpha must be in \[0, 1\]; got 1.5",
        ),
        (
            lambda: schedules.piecewise_constant([10, 5], [1.0, 0.5, 0.1]),
            ValueError,
            r"boundaries must be strictly increasing; got \[10, 5\]",
        ),
        (
            lambda: schedules.piecewise_constant([10], [1.0]),
            ValueError,
            r"values must hold one more entry than boundaries; got boundaries of shape \(1,\)",
        ),
        (
            lambda: schedules.piecewise_constant([2.5], [1.0, 0.5]),
            TypeError,
            r"boundaries must be integers; got \[2.5\]",
        ),
        (
            lambda: schedules.piecewise_constant([10], [1.0, -0.5]),
            ValueError,
            r"piecewise_constant: values must be >= 0; got \[1.0, -0.5\]",
        ),
        (
            lambda: schedules.warmup(schedules.constant(0.1), warmup_steps=-1),
            ValueError,
            r"warmup: warmup_steps must be >= 0; got -1",
        ),
        (
            lambda: schedules.warmup(schedules.constant(0.1), warmup_steps=2.5),
            TypeError,
            r"warmup: warmup_steps must be an integer; got 2.5",
        ),
        (
            lambda: schedules.warmup("fast", warmup_steps=2),
            TypeError,
            r"constant: value must be a number; got str",
        ),
    ],
    ids=lambda x: x if isinstance(x, str) else "",
)
def test_bad_schedule_arguments_are_rejected(make, error, message):
    with pytest.raises(error, match=message):
        make()


def test_user_function_is_wrapped_and_its_result_is_a_float_array():
    schedule = schedules.as_schedule(lambda k: 1 / (k + 1))
    assert isinstance(schedule, schedules.FromCallable)
    assert jax.tree.leaves(schedule) == []  # a closure constant: no data to sweep
    value = jax.jit(schedule)(jnp.int32(3))
    assert value.dtype == jnp.float32
    np.testing.assert_allclose(value, 0.25)
    assert schedules.as_schedule(schedule) is schedule
    with pytest.raises(TypeError, match="expected a schedule or a function step -> lr; got float"):
        schedules.as_schedule(0.1)
