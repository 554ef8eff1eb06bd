import logging
import warnings

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxmlp as jm
from jaxmlp import checkpoint

NET = jm.MLP((2, 16, 3), ("relu", "softmax"))
LOSS = "categorical_crossentropy"
FIELDS = {
    "epoch",
    "loss",
    "data_loss",
    "penalty",
    "accuracy",
    "learning_rate",
    "val_loss",
    "val_accuracy",
    "w_l1",
    "w_l2",
    "w_zeros",
}


def data(samples=30, seed=0):
    return jm.spiral(jax.random.key(seed), samples=samples)


def count_compilations(caplog, fn):
    with caplog.at_level(logging.WARNING), jax.log_compiles(True):
        out = fn()
    msgs = [r.getMessage() for r in caplog.records]
    return out, sum("Finished XLA compilation of jit(_fit_epochs)" in m for m in msgs)


def test_fit_compiles_once_reduces_the_loss_and_records_every_field(caplog):
    x, y = data()
    xv, yv = data(seed=1)
    params = jm.init_params(jax.random.key(2), NET)
    opt = jm.optim.adam(0.05)
    reg = jm.Regularization(l2w=5e-4, l2b=5e-4)
    result, compiles = count_compilations(
        caplog,
        lambda: jm.fit(
            NET,
            params,
            opt,
            x,
            y,
            loss=LOSS,
            reg=reg,
            epochs=40,
            batch_size=32,
            validation=(xv, yv),
            key=jax.random.key(3),
            progress=False,
        ),
    )
    assert compiles == 1
    h = result.history
    assert set(h) == FIELDS
    for k in FIELDS - {"w_l1", "w_l2", "w_zeros"}:
        assert h[k].shape == (40,), k
    for k in ("w_l1", "w_l2", "w_zeros"):
        assert h[k].shape == (40, 2), k
    np.testing.assert_array_equal(h["epoch"], np.arange(1, 41))
    assert h["loss"][-1] < 0.9 * h["loss"][0]
    assert h["accuracy"][-1] > h["accuracy"][0] + 0.1
    np.testing.assert_allclose(h["loss"], h["data_loss"] + h["penalty"], rtol=1e-5)
    # Weight statistics of the final parameters, computed independently.
    W = [np.asarray(p["W"]) for p in result.params]
    np.testing.assert_allclose(h["w_l1"][-1], [np.abs(w).sum() for w in W], rtol=1e-5)
    np.testing.assert_allclose(h["w_l2"][-1], [np.sqrt((w**2).sum()) for w in W], rtol=1e-5)
    # Validation metrics of the final parameters, computed independently.
    _, parts = jm.objective(NET, result.params, xv, yv, loss=LOSS, reg=reg)
    np.testing.assert_allclose(h["val_loss"][-1], parts["data"], rtol=1e-5)
    np.testing.assert_allclose(
        h["val_accuracy"][-1], jm.accuracy(jm.forward(NET, result.params, xv), yv)
    )
    np.testing.assert_allclose(h["learning_rate"], 0.05, rtol=1e-6)
    assert result.stop_reason is None
    assert int(result.opt_state.count) == 40 * 3  # 90 examples in batches of 32: 3 per epoch


def test_manual_gradients_give_the_same_history(x64):
    x, y = data()
    params = jm.init_params(jax.random.key(2), NET)
    opt = jm.optim.sgd(0.5, momentum=0.9)
    kw = dict(
        loss=LOSS,
        reg=jm.Regularization(1e-4, 1e-4, 1e-3, 1e-3),
        epochs=5,
        batch_size=25,
        key=jax.random.key(3),
        progress=False,
    )
    auto = jm.fit(NET, params, opt, x, y, grads="autodiff", **kw)
    manual = jm.fit(NET, params, opt, x, y, grads="manual", **kw)
    chex.assert_trees_all_close(manual.history, auto.history, rtol=1e-10)
    chex.assert_trees_all_close(manual.params, auto.params, rtol=1e-10)


def test_partial_last_batch_matches_book_style_slicing(x64):
    """Without shuffling, an epoch is the book's loop: slices of batch_size, the last shorter."""
    x, y = data(samples=10)  # 30 examples, batches of 8: 8, 8, 8, 6
    params = jm.init_params(jax.random.key(2), NET)
    opt = jm.optim.sgd(0.3)
    result = jm.fit(
        NET, params, opt, x, y, loss=LOSS, epochs=2, batch_size=8, shuffle=False, progress=False
    )
    step = jm.make_train_step(NET, opt, loss=LOSS)
    p, s = params, opt.init(params)
    losses = []
    for _ in range(2):
        total = 0.0
        for i in range(0, 30, 8):
            p, s, m = step(p, s, x[i : i + 8], y[i : i + 8])
            total += float(m["loss"]) * len(x[i : i + 8])
        losses.append(total / 30)
    chex.assert_trees_all_close(result.params, p, rtol=1e-12)
    np.testing.assert_allclose(result.history["loss"], losses, rtol=1e-12)


def test_divergence_stops_and_keeps_the_last_good_state():
    x, y = data()
    params = jm.init_params(jax.random.key(2), NET)
    # A learning rate this large overflows float32 within a few epochs.
    opt = jm.optim.sgd(1e30)
    with pytest.warns(
        RuntimeWarning, match=r"training diverged at epoch \d+: .*kept the parameters"
    ):
        result = jm.fit(NET, params, opt, x, y, loss=LOSS, epochs=50, progress=False)
    assert result.stop_reason is not None and "diverged" in result.stop_reason
    chex.assert_tree_all_finite(result.params)
    assert len(result.history["loss"]) < 50
    assert np.all(np.isfinite(result.history["loss"]))


def test_resume_from_a_checkpoint_is_bit_exact(tmp_path):
    x, y = data()
    xv, yv = data(seed=1)
    params = jm.init_params(jax.random.key(2), NET)
    opt = jm.optim.adam(jm.schedules.inverse_time(0.02, 1e-3))
    kw = dict(
        loss=LOSS,
        reg=jm.Regularization(l2w=5e-4),
        batch_size=16,
        validation=(xv, yv),
        key=jax.random.key(3),
        progress=False,
    )
    straight = jm.fit(NET, params, opt, x, y, epochs=8, **kw)
    first = jm.fit(NET, params, opt, x, y, epochs=3, **kw)
    checkpoint.save(
        tmp_path / "c.npz", NET, first.params, first.opt_state, key=kw["key"], metadata={"epoch": 3}
    )
    ck = checkpoint.load(tmp_path / "c.npz")
    kw["key"] = ck.key
    second = jm.fit(
        NET,
        ck.params,
        opt,
        x,
        y,
        epochs=5,
        opt_state=ck.opt_state,
        initial_epoch=ck.metadata["epoch"],
        **kw,
    )
    chex.assert_trees_all_equal(second.params, straight.params)
    chex.assert_trees_all_equal(second.opt_state, straight.opt_state)
    for k in straight.history:
        joined = np.concatenate([first.history[k], second.history[k]])
        np.testing.assert_array_equal(joined, straight.history[k], err_msg=k)


def test_fit_leaves_the_callers_arrays_usable():
    x, y = data()
    params = jm.init_params(jax.random.key(2), NET)
    opt = jm.optim.sgd(0.1)
    state = opt.init(params)
    jm.fit(NET, params, opt, x, y, loss=LOSS, epochs=2, opt_state=state, progress=False)
    np.asarray(params[0]["W"])  # raises if fit had donated the caller's buffers
    np.asarray(state.trace[0]["W"])


def test_progress_bar_shows_live_metrics(capsys):
    x, y = data()
    params = jm.init_params(jax.random.key(2), NET)
    jm.fit(NET, params, jm.optim.sgd(0.1), x, y, loss=LOSS, epochs=3, validation=data(seed=1))
    err = capsys.readouterr().err
    assert "epochs 1–3" in err and "3/3" in err and "val_acc=" in err


def test_regression_and_binary_accuracy():
    x, y = jm.datasets.sine(64)
    net = jm.MLP((1, 16, 1), ("tanh", "linear"))
    params = jm.init_params(jax.random.key(0), net)
    result = jm.fit(net, params, jm.optim.adam(0.01), x, y, loss="mse", epochs=3, progress=False)
    out = jm.forward(net, result.params, x)
    # The last epoch's accuracy is measured while the parameters change; the final one differs.
    assert 0 <= result.history["accuracy"][-1] <= 1
    ev = jm.evaluate(net, result.params, x, y, loss="mse", batch_size=10)
    np.testing.assert_allclose(ev["accuracy"], jm.metrics.regression_accuracy(out, y), rtol=1e-6)
    np.testing.assert_allclose(
        ev["data_loss"], np.mean((np.asarray(out) - np.asarray(y)) ** 2), rtol=1e-5
    )

    xb = jnp.concatenate([x, -x])
    yb = jnp.concatenate([jnp.ones((64, 1)), jnp.zeros((64, 1))])
    net = jm.MLP((1, 1), ("sigmoid",))
    params = ({"W": jnp.array([[5.0]]), "b": jnp.zeros(1)},)
    ev = jm.evaluate(net, params, xb, yb, loss="binary_crossentropy")
    # x = 0 gives exactly 0.5, counted as class 0: one miss out of 128.
    np.testing.assert_allclose(ev["accuracy"], 127 / 128)


def test_evaluate_and_predict_in_batches_equal_full_batch():
    x, y = data()
    params = jm.init_params(jax.random.key(2), NET)
    reg = jm.Regularization(l2w=1e-3)
    ev = jm.evaluate(NET, params, x, y, loss=LOSS, reg=reg, batch_size=7)
    total, parts = jm.objective(NET, params, x, y, loss=LOSS, reg=reg)
    np.testing.assert_allclose(ev["loss"], total, rtol=1e-5)
    np.testing.assert_allclose(ev["penalty"], parts["penalty"], rtol=1e-6)
    np.testing.assert_allclose(ev["accuracy"], jm.accuracy(jm.forward(NET, params, x), y))
    np.testing.assert_allclose(
        jm.predict(NET, params, x, batch_size=7), jm.forward(NET, params, x), rtol=1e-6
    )


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        ({"epochs": -1}, ValueError, r"epochs must be an integer >= 0; got -1"),
        ({"batch_size": 0}, ValueError, r"batch_size must be a positive integer or None; got 0"),
        (
            {"grads": "numeric"},
            ValueError,
            r"unknown grads 'numeric'; expected one of 'autodiff', 'manual'",
        ),
        (
            {"validation": (jnp.ones((4, 3)), jnp.zeros(4, int))},
            ValueError,
            r"x must have shape \(batch, 2\); got \(4, 3\)",
        ),
        ({"validation": jnp.ones((4, 2))}, TypeError, r"validation must be a pair"),
        (
            {"y": jnp.full(90, 5)},
            ValueError,
            r"class labels in \[5, 5\]; expected integers in \[0, 2\]",
        ),
        ({"x": jnp.full((90, 2), jnp.nan)}, ValueError, r"x must be finite"),
    ],
    ids=[
        "negative_epochs",
        "zero_batch",
        "unknown_grads",
        "validation_shape",
        "validation_pair",
        "labels",
        "nan_data",
    ],
)
def test_fit_rejects_bad_arguments(kwargs, error, match):
    x, y = data()
    args = {"x": x, "y": y} | kwargs
    x, y = args.pop("x"), args.pop("y")
    params = jm.init_params(jax.random.key(2), NET)
    with pytest.raises(error, match=match):
        jm.fit(NET, params, jm.optim.sgd(0.1), x, y, loss=LOSS, progress=False, **args)


def test_zero_epochs_returns_the_inputs():
    x, y = data()
    params = jm.init_params(jax.random.key(2), NET)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        result = jm.fit(NET, params, jm.optim.sgd(0.1), x, y, loss=LOSS, epochs=0, progress=False)
    chex.assert_trees_all_equal(result.params, params)
    assert result.history["epoch"].shape == (0,)


@pytest.mark.parametrize("n", [1, 2, 3, 90, 256, 257, 6000])
def test_shuffle_is_a_permutation_that_depends_on_the_key(n):
    epochs_module = __import__("sys").modules["jaxmlp._epochs"]
    perm = jax.jit(epochs_module.permutation, static_argnums=1)
    a = np.asarray(perm(jax.random.key(0), n))
    np.testing.assert_array_equal(np.sort(a), np.arange(n))
    if n > 3:
        assert not np.array_equal(a, np.asarray(perm(jax.random.key(1), n)))


def test_shuffle_is_close_to_uniform():
    """Over 6000 keys, every element lands in every position about equally often."""
    epochs_module = __import__("sys").modules["jaxmlp._epochs"]
    n, draws = 6, 6000
    keys = jax.random.split(jax.random.key(0), draws)
    perms = np.asarray(jax.jit(jax.vmap(lambda k: epochs_module.permutation(k, n)))(keys))
    counts = np.zeros((n, n))
    np.add.at(counts, (np.tile(np.arange(n), draws), perms.ravel()), 1)
    # Each cell is Binomial(6000, 1/6): mean 1000, standard deviation about 29.
    assert np.all(np.abs(counts - draws / n) < 5 * 29), counts
    # And the 720 orders of 6 elements all occur.
    assert len({tuple(p) for p in perms}) > 700


def test_a_second_run_with_other_values_reuses_the_compilation(caplog):
    x, y = data()
    params = jm.init_params(jax.random.key(2), NET)
    opt = jm.optim.adam(0.01)
    kw = dict(loss=LOSS, batch_size=32, progress=False)
    jm.fit(NET, params, opt, x, y, epochs=2, reg=jm.Regularization(l2w=1e-4), **kw)
    _, compiles = count_compilations(
        caplog,
        lambda: jm.fit(NET, params, opt, x + 1, y, epochs=7, reg=jm.Regularization(l2w=1e-2), **kw),
    )
    assert compiles == 0


def test_callback_sees_every_eth_epoch_and_its_state_without_recompiling(caplog):
    """Snapshots at epochs 4, 8, … (counting initial_epoch), equal to fit runs of that length."""
    x, y = data()
    params = jm.init_params(jax.random.key(2), NET)
    opt = jm.optim.adam(0.02)
    kw = dict(loss=LOSS, batch_size=32, key=jax.random.key(3), progress=False)
    seen = []
    result, compiles = count_compilations(
        caplog,
        lambda: jm.fit(
            NET, params, opt, x, y, epochs=10, callback=seen.append, callback_every=4, **kw
        ),  # fmt: skip
    )
    assert compiles == 1
    assert [s.epoch for s in seen] == [4, 8]
    first = jm.fit(NET, params, opt, x, y, epochs=4, **kw)
    chex.assert_trees_all_equal(
        (seen[0].params, seen[0].opt_state), (first.params, first.opt_state)
    )
    for name, h in first.history.items():
        np.testing.assert_array_equal(seen[0].history[name], h, err_msg=name)
    np.testing.assert_array_equal(seen[1].history["loss"], result.history["loss"][:8])
    assert bool(seen[1].running) and not seen[1].history["loss"].flags.writeable
    # Resumed at epoch 5: the epochs are numbered from there, so the callback comes at 8.
    seen.clear()
    jm.fit(NET, first.params, opt, x, y, epochs=6, opt_state=first.opt_state, initial_epoch=4,
           callback=seen.append, callback_every=4, **kw)  # fmt: skip
    assert [s.epoch for s in seen] == [8]
    eight = jm.fit(NET, params, opt, x, y, epochs=8, **kw)
    chex.assert_trees_all_equal(seen[0].params, eight.params)


def test_callback_can_stop_the_run(recwarn):
    x, y = data()
    params = jm.init_params(jax.random.key(2), NET)
    opt = jm.optim.sgd(0.1)
    kw = dict(loss=LOSS, batch_size=32, progress=False)
    result = jm.fit(NET, params, opt, x, y, epochs=20, callback=lambda s: s.epoch >= 6,
                    callback_every=3, **kw)  # fmt: skip
    assert result.stop_reason == "stopped by the callback after epoch 6"
    assert not [w for w in recwarn if issubclass(w.category, RuntimeWarning)]
    np.testing.assert_array_equal(result.history["epoch"], np.arange(1, 7))
    six = jm.fit(NET, params, opt, x, y, epochs=6, **kw)
    chex.assert_trees_all_equal((result.params, result.opt_state), (six.params, six.opt_state))


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        ({"callback": 3}, TypeError, r"callback must be a function of a Snapshot; got int"),
        ({"callback": print, "callback_every": 0}, ValueError, r"callback_every must be a "
         r"positive integer; got 0"),
        ({"callback": lambda s: "stop"}, ValueError, r"callback must return None, True or "
         r"False; got 'stop'"),
    ],
    ids=["not_callable", "every_zero", "bad_answer"],
)  # fmt: skip
def test_bad_callbacks_are_refused(kwargs, error, match):
    x, y = data()
    params = jm.init_params(jax.random.key(2), NET)
    with pytest.raises(error, match=match):
        jm.fit(NET, params, jm.optim.sgd(0.1), x, y, loss=LOSS, epochs=2, progress=False, **kwargs)


def test_ctrl_c_ends_fit_after_the_current_chunk_and_the_run_continues_exactly():
    import signal

    net = jm.MLP((2, 8, 3), ("relu", "softmax"))
    x, y = jm.spiral(jax.random.key(0), samples=10)
    params = jm.init_params(jax.random.key(1), net)
    opt = jm.optim.adam(0.01)
    kw = dict(loss="categorical_crossentropy", batch_size=10, key=jax.random.key(2),
              progress=False)  # fmt: skip

    def press_ctrl_c(s):
        if s.epoch == 3:
            signal.raise_signal(signal.SIGINT)  # as a user's Ctrl-C during the next chunk

    before = signal.getsignal(signal.SIGINT)
    cut = jm.fit(net, params, opt, x, y, epochs=8, callback=press_ctrl_c, **kw)
    assert cut.stop_reason == "interrupted after epoch 3"
    assert len(cut.history["loss"]) == 3
    assert signal.getsignal(signal.SIGINT) is before  # the handler is the caller's again
    rest = jm.fit(net, cut.params, opt, x, y, epochs=5, opt_state=cut.opt_state,
                  initial_epoch=3, **kw)  # fmt: skip
    straight = jm.fit(net, params, opt, x, y, epochs=8, **kw)
    chex.assert_trees_all_equal(rest.params, straight.params)
    np.testing.assert_array_equal(
        np.concatenate([cut.history["loss"], rest.history["loss"]]), straight.history["loss"]
    )


def test_a_new_but_equal_optimizer_for_each_fit_compiles_once(caplog):
    """Equality by program: adam(1e-3) made five times, even adam(1e-2), is one compiled epoch."""
    x, y = data()
    params = jm.init_params(jax.random.key(2), NET)
    kw = dict(loss=LOSS, epochs=2, batch_size=16, key=jax.random.key(3), progress=False)

    def five_fits():
        lrs = (1e-3, 1e-3, 1e-3, 1e-2, 1e-3)
        return [jm.fit(NET, params, jm.optim.adam(lr), x, y, **kw) for lr in lrs]

    results, compiles = count_compilations(caplog, five_fits)
    assert compiles == 1
    chex.assert_trees_all_equal(results[0].params, results[4].params)
    assert not np.allclose(results[0].params[0]["W"], results[3].params[0]["W"])  # lr is data
    caplog.clear()
    _, compiles = count_compilations(
        caplog, lambda: jm.fit(NET, params, jm.optim.adam(1e-3, amsgrad=True), x, y, **kw)
    )
    assert compiles == 1  # another program: AMSGrad is structure


def test_the_history_converts_to_a_table_of_columns(tmp_path):
    """result.table(): one column per field and per layer; the csv module takes it as it is."""
    import csv

    x, y = jm.spiral(jax.random.key(0), samples=20)
    net = jm.MLP((2, 8, 8, 3), ("relu", "relu", "softmax"))
    params = jm.init_params(jax.random.key(1), net)
    r = jm.fit(net, params, jm.optim.adam(0.01), x, y, loss="categorical_crossentropy",
               epochs=3, batch_size=20, progress=False)  # fmt: skip
    table = r.table()
    assert list(table)[:2] == ["epoch", "loss"]
    assert [k for k in table if k.startswith("w_l2")] == ["w_l2_0", "w_l2_1", "w_l2_2"]
    assert all(v.shape == (3,) for v in table.values())
    np.testing.assert_array_equal(table["w_l2_1"], r.history["w_l2"][:, 1])
    assert not any(k.startswith("w_") for k in r.table(per_layer=False))
    path = tmp_path / "history.csv"
    with open(path, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(table))
        w.writeheader()
        w.writerows(dict(zip(table, row)) for row in zip(*table.values()))
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    assert [float(row["loss"]) for row in rows] == pytest.approx(r.history["loss"].tolist())
