"""Early stopping against a literal NumPy transcription of Keras 3's rule, in fit and fit_many.

The transcription (`keras_rule`) follows ``keras.callbacks.EarlyStopping.on_epoch_end`` line by
line, on the history of a run without early stopping: early stopping does not change training
before it stops, so that history is the one the rule sees. The difference jaxmlp documents —
the best epoch's state is returned whether or not the run stopped — is checked against a
separate run of exactly the best epoch's length.
"""

import functools
import logging

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import jaxmlp as jm
from jaxmlp import early_stopping as es_module
from jaxmlp.early_stopping import EarlyStopping, Watching, watch
from jaxmlp.ensemble import stack

CCE = "categorical_crossentropy"
EPOCHS = 80
SEQ = 30  # the length of the sequences the property test draws


def keras_rule(values, mode, min_delta, patience, start_from_epoch):
    """(stopped epoch or None, best epoch), both 0-based, as Keras 3's EarlyStopping decides."""
    monitor_op = np.less if mode == "min" else np.greater
    delta = -min_delta if mode == "min" else min_delta  # Keras: min_delta *= -1 for less
    best = np.inf if mode == "min" else -np.inf
    wait, best_epoch, best_weights = 0, 0, None
    for epoch, current in enumerate(values):
        if epoch < start_from_epoch:
            continue
        if best_weights is None:  # the first counted epoch's weights are the best so far
            best_weights, best_epoch = epoch, epoch
        wait += 1
        if monitor_op(current - delta, best):
            best, best_epoch, best_weights = current, epoch, epoch
            wait = 0
            continue
        if wait >= patience and epoch > 0:
            return epoch, best_epoch
    return None, best_epoch


def problem():
    x, y = jm.spiral(jax.random.key(0), samples=50)
    xv, yv = jm.spiral(jax.random.key(1), samples=50)
    net = jm.MLP((2, 32, 3), ("relu", "softmax"))
    cast = lambda a: jnp.asarray(a, jnp.float64)  # noqa: E731
    params = jax.tree.map(cast, jm.init_params(jax.random.key(2), net))
    return net, params, cast(x), y, (cast(xv), yv)


OPT = jm.optim.adam(0.02)  # one object: the compiled programs are shared across the cases
CASES = [  # monitor, mode, min_delta, patience, start_from_epoch, restore_best
    ("val_loss", "auto", 0.0, 3, 0, True),
    ("val_loss", "min", 1e-3, 5, 0, True),
    ("val_loss", "auto", 0.0, 4, 20, False),
    ("val_accuracy", "auto", 0.0, 6, 0, True),
    ("val_accuracy", "max", 0.01, 2, 5, False),
    ("loss", "auto", 0.0, 0, 0, True),
]


@pytest.mark.parametrize("case", CASES, ids=[f"{c[0]}-{c[1]}-p{c[3]}-s{c[4]}" for c in CASES])
def test_fit_follows_the_keras_rule_and_returns_the_best_epoch(x64, case):
    monitor, mode, min_delta, patience, start, restore = case
    net, params, x, y, val = problem()
    kw = dict(loss=CCE, batch_size=50, validation=val, progress=False)
    free = jm.fit(net, params, OPT, x, y, epochs=EPOCHS, **kw)
    keras_mode = mode if mode != "auto" else ("max" if "accuracy" in monitor else "min")
    stopped, best = keras_rule(free.history[monitor], keras_mode, min_delta, patience, start)
    es = jm.EarlyStopping(monitor, mode, min_delta, patience, start, restore)
    result = jm.fit(net, params, OPT, x, y, epochs=EPOCHS, early_stopping=es, **kw)
    ran = EPOCHS if stopped is None else stopped + 1
    assert len(result.history["epoch"]) == ran
    assert result.best_epoch == best + 1
    for k in free.history:  # the same epochs as the free run, up to the stop
        np.testing.assert_allclose(result.history[k], free.history[k][:ran], rtol=1e-12)
    if stopped is None:
        assert result.stop_reason is None
    else:
        assert result.stop_reason.startswith(f"early stopping: {monitor} did not improve")
        assert f"stopped after epoch {ran} (best epoch {best + 1})" in result.stop_reason
    # restore_best: the best epoch's state (also when the run did not stop); else the last.
    reference = jm.fit(net, params, OPT, x, y, epochs=best + 1 if restore else ran, **kw)
    for a, b in zip(jax.tree.leaves(result), jax.tree.leaves(reference[:2])):
        np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-14)


def test_the_cases_cover_stopping_and_not_stopping(x64):
    """The grid above is only a test of the rule if it has runs that stop and runs that don't."""
    net, params, x, y, val = problem()
    free = jm.fit(net, params, OPT, x, y, loss=CCE, epochs=EPOCHS, batch_size=50, validation=val,
                  progress=False)  # fmt: skip
    stops = []
    for monitor, mode, delta, patience, start, _ in CASES:
        mode = mode if mode != "auto" else ("max" if "accuracy" in monitor else "min")
        stops.append(keras_rule(free.history[monitor], mode, delta, patience, start)[0])
    assert any(s is None for s in stops) and sum(s is not None for s in stops) >= 3
    best = keras_rule(free.history["val_loss"], "min", 0.0, 3, 0)[1]
    assert 0 < best < EPOCHS - 1  # the best epoch is not simply the last


def test_fit_many_models_stop_on_their_own(x64):
    net, p0, x, y, val = problem()
    K = 4
    params = stack([jax.tree.map(lambda a, s=s: a * (1 + 0.2 * s), p0) for s in range(K)])
    reg = jm.Regularization(l2w=jnp.asarray([0.0, 1e-4, 1e-3, 1e-2]))
    kw = dict(loss=CCE, reg=reg, batch_size=50, validation=val, progress=False)
    free = jm.fit_many(net, params, OPT, x, y, epochs=EPOCHS, **kw)
    es = jm.EarlyStopping("val_loss", patience=4, min_delta=1e-4)
    result = jm.fit_many(net, params, OPT, x, y, epochs=EPOCHS, early_stopping=es, **kw)
    expected = [keras_rule(free.history["val_loss"][k], "min", 1e-4, 4, 0) for k in range(K)]
    runs = [EPOCHS if s is None else s + 1 for s, _ in expected]
    assert len(set(runs)) > 1  # the models stop at different epochs
    np.testing.assert_array_equal(result.epochs_run, runs)
    np.testing.assert_array_equal(result.best_epochs, [b + 1 for _, b in expected])
    for k in range(K):
        h = result.history["val_loss"][k]
        np.testing.assert_allclose(h[: runs[k]], free.history["val_loss"][k, : runs[k]], rtol=1e-12)
        assert np.isnan(h[runs[k] :]).all()  # frozen after its stop
        one = jm.fit(net, jax.tree.map(lambda a, k=k: a[k], params), OPT, x, y,
                     epochs=int(result.best_epochs[k]), loss=CCE, batch_size=50, validation=val,
                     reg=jm.Regularization(l2w=float(reg.l2w[k])), progress=False)  # fmt: skip
        model = result.model(k)
        assert model.best_epoch == result.best_epochs[k]
        for a, b in zip(jax.tree.leaves(model[:2]), jax.tree.leaves(one[:2])):
            np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-14)


def test_early_stopping_settings_are_data_and_share_one_compilation(caplog):
    """Changing patience, min_delta or start_from_epoch does not compile the program again."""
    import logging

    net = jm.MLP((2, 8, 3), ("relu", "softmax"))
    x, y = jm.spiral(jax.random.key(0), samples=20)
    params = jm.init_params(jax.random.key(1), net)
    kw = dict(loss=CCE, epochs=20, validation=(x, y), progress=False)
    jm.fit(net, params, OPT, x, y, early_stopping=jm.EarlyStopping(patience=1), **kw)
    with caplog.at_level(logging.WARNING), jax.log_compiles(True):
        for es in [jm.EarlyStopping(patience=7), jm.EarlyStopping(min_delta=0.1, patience=2),
                   jm.EarlyStopping(start_from_epoch=5, patience=3)]:  # fmt: skip
            jm.fit(net, params, OPT, x, y, early_stopping=es, **kw)
    compiles = [r for r in caplog.records if "Finished XLA compilation of jit(_fit_epochs)" in
                r.getMessage()]  # fmt: skip
    assert compiles == []


@pytest.mark.parametrize(
    "es, validation, match",
    [
        (jm.EarlyStopping(), False, r"monitor must be a history field .*val_ fields need valid"),
        (jm.EarlyStopping("w_l1"), True, r"monitor must be a history field.*got 'w_l1'"),
        (jm.EarlyStopping("val_r2"), True, r"monitor must be a history field.*got 'val_r2'"),
        (jm.EarlyStopping(mode="best"), True, r"unknown early_stopping.mode 'best'"),
        (jm.EarlyStopping(patience=-1), True, r"early_stopping.patience must be an integer >= 0"),
        (jm.EarlyStopping(patience=2.5), True, r"early_stopping.patience must be an integer"),
        (jm.EarlyStopping(min_delta=-0.1), True, r"min_delta must be finite and >= 0; got -0.1"),
        (jm.EarlyStopping(min_delta=float("nan")), True, r"min_delta must be finite"),
        (jm.EarlyStopping(start_from_epoch=-2), True, r"start_from_epoch must be an integer >= 0"),
        (jm.EarlyStopping(restore_best="yes"), True, r"restore_best must be a bool"),
        ({"patience": 3}, True, r"early_stopping must be a jaxmlp.EarlyStopping or None; got dict"),
    ],
)
def test_bad_early_stopping_is_refused_with_a_clear_error(es, validation, match):
    net = jm.MLP((2, 4, 3), ("relu", "softmax"))
    x, y = jm.spiral(jax.random.key(0), samples=5)
    params = jm.init_params(jax.random.key(1), net)
    val = (x, y) if validation else None
    with pytest.raises((ValueError, TypeError), match=match):
        jm.fit(net, params, OPT, x, y, loss=CCE, validation=val, early_stopping=es, progress=False)


def test_regression_monitors_r2_with_mode_auto_maximizing(x64):
    x = jax.random.normal(jax.random.key(0), (60, 2), jnp.float64)
    y = jnp.sin(x[:, :1] * 2)
    net = jm.MLP((2, 16, 1), ("tanh", "linear"))
    params = jax.tree.map(lambda a: a.astype(jnp.float64), jm.init_params(jax.random.key(1), net))
    kw = dict(loss="mse", epochs=60, batch_size=20, validation=(x[:20], y[:20]), progress=False)
    free = jm.fit(net, params, OPT, x[20:], y[20:], **kw)
    es = jm.EarlyStopping("val_r2", patience=3)
    assert es.maximize()
    result = jm.fit(net, params, OPT, x[20:], y[20:], early_stopping=es, **kw)
    stopped, best = keras_rule(free.history["val_r2"], "max", 0.0, 3, 0)
    assert result.best_epoch == best + 1
    assert len(result.history["epoch"]) == (60 if stopped is None else stopped + 1)


def test_a_run_resumed_with_its_early_state_decides_as_one_that_never_stopped(x64, tmp_path):
    """Resumed from a snapshot (through a checkpoint file) after epoch 4: the same stop, best
    epoch and parameters as the uninterrupted run; without the state, patience restarts."""
    net, params, x, y, val = problem()
    kw = dict(loss=CCE, batch_size=50, validation=val, progress=False)
    es = jm.EarlyStopping(patience=3)
    whole = jm.fit(net, params, OPT, x, y, epochs=EPOCHS, early_stopping=es, **kw)
    assert whole.stop_reason and whole.best_epoch > 4
    seen = []
    jm.fit(net, params, OPT, x, y, epochs=4, early_stopping=es, callback=seen.append, **kw)
    snap = seen[-1]
    assert int(snap.early_state.best_epoch) > 0 and int(snap.early_state.wait) >= 0
    path = tmp_path / "ck.npz"
    jm.save(path, net, snap.params, {"optimizer": snap.opt_state, "early": snap.early_state})
    ck = jm.load(path)
    rest = jm.fit(net, ck.params, OPT, x, y, epochs=EPOCHS - 4, initial_epoch=4,
                  opt_state=ck.opt_state["optimizer"], early_stopping=es,
                  early_state=ck.opt_state["early"], **kw)  # fmt: skip
    assert rest.best_epoch == whole.best_epoch
    assert rest.stop_reason == whole.stop_reason
    np.testing.assert_array_equal(rest.history["epoch"], whole.history["epoch"][4:])
    for a, b in zip(jax.tree.leaves(rest[:2]), jax.tree.leaves(whole[:2])):
        np.testing.assert_allclose(a, b, rtol=1e-12)
    # From a result that restored its best epoch: last_state holds where it ended.
    part = jm.fit(net, params, OPT, x, y, epochs=whole.best_epoch + 1, early_stopping=es, **kw)
    assert part.stop_reason is None and part.last_state is not None
    last_params, last_opt_state = part.last_state
    on = jm.fit(net, last_params, OPT, x, y, epochs=EPOCHS - whole.best_epoch - 1,
                opt_state=last_opt_state, initial_epoch=whole.best_epoch + 1, early_stopping=es,
                early_state=part.early_state, **kw)  # fmt: skip
    assert (on.best_epoch, on.stop_reason) == (whole.best_epoch, whole.stop_reason)
    for a, b in zip(jax.tree.leaves(on[:2]), jax.tree.leaves(whole[:2])):
        np.testing.assert_allclose(a, b, rtol=1e-12)
    # The run copies the state it resumes from: the same early_state resumes a second time.
    again = jm.fit(net, last_params, OPT, x, y, epochs=EPOCHS - whole.best_epoch - 1,
                   opt_state=last_opt_state, initial_epoch=whole.best_epoch + 1,
                   early_stopping=es, early_state=part.early_state, **kw)  # fmt: skip
    assert (again.best_epoch, again.stop_reason) == (on.best_epoch, on.stop_reason)
    for a, b in zip(jax.tree.leaves(again[:2]), jax.tree.leaves(on[:2])):
        np.testing.assert_array_equal(a, b)
    with pytest.raises(ValueError, match="early_state continues early stopping: pass early_st"):
        jm.fit(net, params, OPT, x, y, epochs=1, early_state=snap.early_state, **kw)
    other = jm.EarlyStopping(patience=3, restore_best=False)
    with pytest.raises(ValueError, match="early_state.params does not match this run"):
        jm.fit(net, params, OPT, x, y, epochs=1, early_stopping=other,
               early_state=snap.early_state, **kw)  # fmt: skip


@functools.cache
def _rule_program(maximize):
    """`early_stopping.watch` over a whole sequence, compiled once per direction."""
    watching = Watching("v", maximize, False)

    def run(values, numbers):
        def step(w, item):
            epoch, value = item
            live = ~w.stopped
            w2, _, stop = watch(watching, w, value, epoch, live, numbers)
            w2 = jax.tree.map(lambda a, b: jnp.where(live, a, b), w2, w)  # frozen once stopped
            return w2, stop & live

        w0 = es_module.start(watching, None, None, (), values.dtype)
        epochs = jnp.arange(1, values.shape[0] + 1)
        w, stops = jax.lax.scan(step, w0, (epochs, values))
        return w.best_epoch, stops

    return jax.jit(run)


@settings(max_examples=150, deadline=None)
@given(
    values=st.lists(st.floats(-3, 3, width=32, allow_subnormal=False), min_size=SEQ, max_size=SEQ),
    repeats=st.booleans(),
    maximize=st.booleans(),
    min_delta=st.sampled_from([0.0, 0.01, 0.3]),
    patience=st.integers(0, 8),
    start_from=st.integers(0, 10),
)
def test_the_transition_is_the_keras_rule_on_any_sequence(values, repeats, maximize, min_delta,
                                                          patience, start_from):  # fmt: skip
    values = np.round(values, 1) if repeats else np.asarray(values)  # ties and plateaus
    numbers = EarlyStopping(min_delta=min_delta, patience=patience, start_from_epoch=start_from)
    best, stops = _rule_program(maximize)(jnp.asarray(values, jnp.float32),
                                          numbers.numbers(jnp.float32))  # fmt: skip
    stops = np.flatnonzero(np.asarray(stops))
    mode = "max" if maximize else "min"
    stopped, best_epoch = keras_rule(np.float32(values), mode, np.float32(min_delta), patience,
                                     start_from)  # fmt: skip
    assert (stops.tolist() or [None])[0] == stopped
    assert len(stops) <= 1
    expected = 0 if start_from >= SEQ else best_epoch + 1  # 0: no epoch counted
    assert int(best) == expected


def test_a_first_fit_with_early_stopping_compiles_only_its_program(caplog):
    # Sizes no other test uses, so no eager kernel is already compiled for them: starting the
    # watch, its settings and restoring the best epoch compile nothing but the training loop.
    net = jm.MLP((3, 9, 5), ("tanh", "softmax"))
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(60, 3)).astype(np.float32), rng.integers(0, 5, 60)
    val = (rng.normal(size=(20, 3)).astype(np.float32), rng.integers(0, 5, 20))
    params = jm.init_params(jax.random.key(0), net)
    es = jm.EarlyStopping(patience=2, restore_best=True)
    with caplog.at_level(logging.WARNING), jax.log_compiles(True):
        result = jm.fit(net, params, jm.optim.adam(0.5), x, y, loss=CCE, epochs=40, batch_size=20,
                        validation=val, early_stopping=es, progress=False)  # fmt: skip
    compiled = [
        r.getMessage() for r in caplog.records if "Finished XLA compilation" in r.getMessage()
    ]
    assert len(compiled) == 1 and "jit(_fit_epochs)" in compiled[0], compiled
    assert result.best_epoch is not None and result.last_state is not None
