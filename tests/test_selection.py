"""Cross-validation, bootstrap ensembles and successive halving, against separate runs.

Every fold of `cross_validate` must equal a separate `fit` on its split (float64), the folds must
partition the rows (stratified: each class within one example of its share), the whole
validation must compile once, and halving must keep exactly the models an unpruned run ranks
highest at each rung, with the survivors' parameters of that run.
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
from jaxmlp.ensemble import stack
from jaxmlp.halving import keep_best, rungs_of
from jaxmlp.selection import bootstrap_rows, fold_rows

CCE = "categorical_crossentropy"
OPT = jm.optim.adam(0.02)  # one object: programs are shared across the tests


def count_compilations(caplog, fn):
    with caplog.at_level(logging.WARNING), jax.log_compiles(True):
        out = fn()
    msgs = [r.getMessage() for r in caplog.records]
    return out, sum("Finished XLA compilation of jit(_fit_many_epochs)" in m for m in msgs)


@settings(max_examples=40, deadline=None)
@given(n=st.integers(6, 200), folds=st.integers(2, 6), classes=st.integers(2, 5),
       seed=st.integers(0, 2**16))  # fmt: skip
def test_folds_partition_the_rows_and_keep_class_shares(n, folds, classes, seed):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, classes, n)
    split = fold_rows(jax.random.key(seed), y, folds)
    held = np.concatenate([h for _, h in split])
    np.testing.assert_array_equal(np.sort(held), np.arange(n))  # a partition
    sizes = [len(h) for _, h in split]
    assert max(sizes) - min(sizes) <= 1
    for train, h in split:
        np.testing.assert_array_equal(np.sort(np.concatenate([train, h])), np.arange(n))
        for c in range(classes):  # within one example of the class's share
            share = np.sum(y == c) / folds
            assert np.floor(share) <= np.sum(y[h] == c) <= np.ceil(share)


def test_folds_of_one_hot_regression_and_unstratified_targets():
    y = np.eye(3)[np.arange(30) % 3]
    for _, h in fold_rows(jax.random.key(0), y, 3):
        counts = np.bincount(np.argmax(y[h], 1), minlength=3)  # 10 per class: 3 or 4 per fold
        assert counts.sum() == 10 and set(counts) <= {3, 4}
    reg = np.linspace(0, 1, 31)[:, None]
    held = [h for _, h in fold_rows(jax.random.key(0), reg, 4)]
    assert sorted(np.concatenate(held)) == list(range(31))
    with pytest.raises(ValueError, match="folds must be at most the number of rows, 3; got 4"):
        fold_rows(jax.random.key(0), np.arange(3), 4)
    with pytest.raises(ValueError, match="folds must be an integer >= 2; got 1"):
        fold_rows(jax.random.key(0), np.arange(3), 1)


def spiral64(samples=40, seed=0):
    x, y = jm.spiral(jax.random.key(seed), samples=samples)
    return jnp.asarray(x, jnp.float64), y


def test_each_fold_equals_a_separate_fit_and_all_compile_once(x64, caplog):
    x, y = spiral64()
    net = jm.MLP((2, 16, 3), ("relu", "softmax"))
    es = jm.EarlyStopping(patience=4)
    reg = jm.Regularization(l2w=jnp.asarray([0.0, 1e-3]), l2b=1e-4)
    key = jax.random.key(7)
    kw = dict(loss=CCE, epochs=40, batch_size=32, progress=False)
    cv, compiles = count_compilations(caplog, lambda: jm.cross_validate(
        net, key, OPT, x, y, folds=3, seeds=2, reg=reg, early_stopping=es,
        hyperparams={"learning_rate": [0.02, 0.01]}, **kw))  # fmt: skip
    assert compiles == 1  # 3 folds × 2 seeds × 2 values, fold sizes 40 and 40 (120 rows)
    assert cv.fit.params[0]["W"].shape[0] == 12
    assert cv.scores["val_loss"].shape == (2, 2, 3)
    _, init_key, shuffle_key = jax.random.split(key, 3)
    for m in (0, 4, 11):  # value 0 seed 0 fold 0; value 0 seed 1 fold 1; value 1 seed 1 fold 2
        v, s, f = cv.value[m], cv.seed[m], cv.fold[m]
        assert m == (v * 2 + s) * 3 + f
        train, held = cv.rows[f]
        params = jm.init_params(jax.random.split(init_key, 2)[s], net, dtype=jnp.float64)
        opt_state = jm.optim.set_hyperparams(OPT.init(params), learning_rate=[0.02, 0.01][v])
        reg_v = jm.Regularization(l2w=float(reg.l2w[v]), l2b=1e-4)
        alone = jm.fit(net, params, OPT, x[train], y[train], validation=(x[held], y[held]),
                       reg=reg_v, opt_state=opt_state, key=jax.random.split(shuffle_key, 2)[s],
                       early_stopping=es, **kw)  # fmt: skip
        member = cv.fit.model(m)
        assert member.best_epoch == alone.best_epoch
        assert member.history.keys() == alone.history.keys()
        for k in alone.history:
            np.testing.assert_allclose(member.history[k], alone.history[k], rtol=1e-10)
        for a, b in zip(jax.tree.leaves(member[:2]), jax.tree.leaves(alone[:2])):
            np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-13)
        best = alone.best_epoch - 1
        assert cv.scores["val_loss"][v, s, f] == pytest.approx(alone.history["val_loss"][best])
        assert cv.epochs[v, s, f] == alone.best_epoch
    summary = cv.summary("val_accuracy")
    assert [round(t.mean, 12) for t in summary] == [
        round(float(np.mean(cv.scores["val_accuracy"][v])), 12) for v in range(2)
    ]


def test_folds_of_different_sizes_and_regression_in_one_program(x64, caplog):
    """Folds of 23 and 22 held-out rows, a regression (R² per fold), without early stopping."""
    x = jax.random.normal(jax.random.key(0), (67, 3), jnp.float64)
    y = jnp.tanh(x @ jnp.asarray([[1.0], [-0.5], [0.3]], jnp.float64))
    net = jm.MLP((3, 8, 1), ("tanh", "linear"))
    kw = dict(loss="mse", folds=3, epochs=15, batch_size=16, progress=False)
    cv, compiles = count_compilations(caplog, lambda: jm.cross_validate(
        net, jax.random.key(1), OPT, x, y, **kw))  # fmt: skip
    assert compiles == 1
    assert sorted(len(h) for _, h in cv.rows) == [22, 22, 23]
    _, init_key, shuffle_key = jax.random.split(jax.random.key(1), 3)
    for f in range(3):
        train, held = cv.rows[f]
        params = jm.init_params(jax.random.split(init_key, 1)[0], net, dtype=jnp.float64)
        alone = jm.fit(net, params, OPT, x[train], y[train], validation=(x[held], y[held]),
                       loss="mse", epochs=15, batch_size=16,
                       key=jax.random.split(shuffle_key, 1)[0], progress=False)  # fmt: skip
        for k in ("loss", "val_loss", "val_r2", "val_rmse", "r2", "accuracy", "val_accuracy"):
            np.testing.assert_allclose(cv.fit.model(f).history[k], alone.history[k], rtol=1e-10)
        pred = jm.predict(net, alone.params, x[held])
        truth, pred = np.asarray(y[held]), np.asarray(pred)
        r2 = 1 - np.sum((pred - truth) ** 2) / np.sum((truth - truth.mean()) ** 2)
        assert cv.scores["val_r2"][0, 0, f] == pytest.approx(r2, rel=1e-10)


def test_bootstrap_members_train_on_their_resamples(x64):
    x, y = spiral64(samples=20)
    net = jm.MLP((2, 8, 3), ("relu", "softmax"))
    boot = bootstrap_rows(jax.random.key(3), 60, 3)
    for drawn, oob in boot:
        assert len(drawn) == 60 and len(np.unique(drawn)) < 60
        np.testing.assert_array_equal(oob, np.setdiff1d(np.arange(60), drawn))
    p0 = jm.init_params(jax.random.key(0), net, dtype=jnp.float64)
    kw = dict(loss=CCE, epochs=10, batch_size=16, progress=False)
    rows, oobs = [d for d, _ in boot], [o for _, o in boot]
    many = jm.fit_many(net, stack([p0] * 3), OPT, x, y, validation=(x, y), rows=rows,
                       validation_rows=oobs, **kw)  # fmt: skip
    for k, (drawn, oob) in enumerate(boot):
        alone = jm.fit(net, p0, OPT, x[drawn], y[drawn], validation=(x[oob], y[oob]), **kw)
        for key in alone.history:
            np.testing.assert_allclose(many.model(k).history[key], alone.history[key], rtol=1e-10)


@pytest.mark.parametrize(
    "kw, match",
    [
        (dict(rows=[[0, 1]]), r"rows must hold K = 2 index arrays, one per model; got 1"),
        (dict(rows=[[0, 1], [0, 99]]), r"rows\[1\] indexes the data of 30 rows, 0 to 29; got 99"),
        (dict(rows=[[0, 1], []]), r"rows\[1\] must be a non-empty 1-D array of integer row"),
        (dict(rows=[[0, 1], [0.5]]), r"rows\[1\] must be a non-empty 1-D array of integer"),
        (dict(validation_rows=[[0], [1]]), r"validation_rows index the validation data: pass"),
    ],
)
def test_bad_rows_are_refused_with_a_clear_error(kw, match):
    net = jm.MLP((2, 4, 3), ("relu", "softmax"))
    x, y = jm.spiral(jax.random.key(0), samples=10)
    params = stack([jm.init_params(jax.random.key(s), net) for s in range(2)])
    with pytest.raises(ValueError, match=match):
        jm.fit_many(net, params, OPT, x, y, loss=CCE, progress=False, **kw)


def test_rungs_and_ranking():
    assert rungs_of(5, 3, 45) == (5, 15)
    assert rungs_of(1, 2, 9) == (1, 2, 4, 8)
    np.testing.assert_array_equal(
        keep_best(np.array([0.3, np.nan, 0.1, 0.2, 0.5]), 2, False), [2, 3]
    )
    np.testing.assert_array_equal(keep_best(np.array([0.3, 0.9, 0.1]), 3, True), [1])
    np.testing.assert_array_equal(keep_best(np.array([0.2, 0.2]), 3, False), [0])  # ties: index


def test_halving_keeps_what_an_unpruned_run_ranks_highest(x64, caplog):
    x, y = spiral64(samples=30)
    xv, yv = spiral64(samples=30, seed=1)
    net = jm.MLP((2, 16, 3), ("relu", "softmax"))
    K = 9
    params = stack([jm.init_params(jax.random.key(s), net, dtype=jnp.float64) for s in range(K)])
    states = stack([jm.optim.set_hyperparams(OPT.init(jax.tree.map(lambda a, k=k: a[k], params)),
                                             learning_rate=lr)
                    for k, lr in enumerate(np.repeat([0.005, 0.02, 0.05], 3))])  # fmt: skip
    reg = jm.Regularization(l2w=jnp.asarray(np.tile([0.0, 1e-3, 1e-2], 3)))
    kw = dict(loss=CCE, reg=reg, batch_size=45, validation=(xv, yv), progress=False,
              key=jax.random.split(jax.random.key(3), K), opt_state=states)  # fmt: skip
    for monitor in ("val_loss", "val_accuracy"):
        halve = functools.partial(jm.successive_halving, net, params, OPT, x, y, eta=3,
                                  min_epochs=4, epochs=36, monitor=monitor, **kw)  # fmt: skip
        result, compiles = count_compilations(caplog, halve)
        caplog.clear()
        full = jm.fit_many(net, params, OPT, x, y, epochs=36, **kw)
        alive = np.arange(K)
        for i, r in enumerate(result.rungs):  # the unpruned run's ranking at each rung
            scores = full.history[monitor][alive, r - 1]
            np.testing.assert_allclose(result.scores[alive, i], scores, rtol=1e-10)
            alive = alive[keep_best(scores, 3, monitor.endswith("accuracy"))]
            assert np.all(result.rung[alive] >= i + 1)
        np.testing.assert_array_equal(result.survivors, alive)
        assert result.rungs == (4, 12) and len(alive) == 1
        for a, b in zip(jax.tree.leaves(result[:2]), jax.tree.leaves(full[:2])):
            np.testing.assert_allclose(a[alive], b[alive], rtol=1e-9, atol=1e-12)
        pruned = int(np.flatnonzero(result.rung == 0)[0])  # stopped at the first rung, epoch 4
        model = result.model(pruned)
        assert len(model.history["epoch"]) == 4
        assert model.stop_reason.startswith("pruned by successive halving at rung 1 (epoch 4)")
        winner = result.model(int(alive[0]))
        assert winner.stop_reason is None and len(winner.history["epoch"]) == 36
        assert result.model_epochs == 9 * 4 + 3 * 8 + 1 * 24
        assert result.saved() == pytest.approx(1 - 84 / (9 * 36))
        assert compiles <= 3  # one program per number of models: 9, 3 and 1
        assert np.isnan(result.history["loss"][np.setdiff1d(np.arange(K), alive), -1]).all()
        # In one program (the pruned models frozen): the same decisions, one compilation.
        one, compiles = count_compilations(caplog, functools.partial(halve, compact=False))
        caplog.clear()
        assert compiles <= 1
        np.testing.assert_array_equal(one.survivors, result.survivors)
        np.testing.assert_array_equal(one.rung, result.rung)
        np.testing.assert_allclose(one.scores, result.scores, rtol=1e-9)
        assert one.model_epochs == result.model_epochs
        for a, b in zip(jax.tree.leaves(one[:2]), jax.tree.leaves(result[:2])):
            np.testing.assert_allclose(a, b, rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize(
    "monitor, validation, match",
    [
        ("val_loss", False, r"monitor must be a history field of this run \(val_ fields need"),
        (
            "w_l1",
            True,
            r"one of loss, data_loss, penalty, accuracy, val_loss, val_accuracy, "
            r"learning_rate; got 'w_l1'",
        ),  # fmt: skip
    ],
)
def test_halving_refuses_a_bad_monitor_before_training(monitor, validation, match, caplog):
    net = jm.MLP((2, 4, 3), ("relu", "softmax"))
    x, y = jm.spiral(jax.random.key(0), samples=10)
    params = stack([jm.init_params(jax.random.key(s), net) for s in range(4)])
    kw = dict(validation=(x, y)) if validation else {}
    with pytest.raises(ValueError, match=match):
        count_compilations(caplog, lambda: jm.successive_halving(
            net, params, OPT, x, y, loss=CCE, eta=2, epochs=4, monitor=monitor,
            progress=False, **kw))  # fmt: skip
    assert not any("_fit_many_epochs" in r.getMessage() for r in caplog.records)  # nothing ran
