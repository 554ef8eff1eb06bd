import logging

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxmlp as jm
from jaxmlp.ensemble import fit_many, init_states, stack, take, take_reg, unstack
from jaxmlp.optim import set_hyperparams

NET = jm.MLP((2, 16, 3), ("relu", "softmax"))
LOSS = "categorical_crossentropy"


def data(samples=30, seed=0):
    return jm.spiral(jax.random.key(seed), samples=samples)


def count_compilations(caplog, fn, name):
    with caplog.at_level(logging.WARNING), jax.log_compiles(True):
        out = fn()
    msgs = [r.getMessage() for r in caplog.records]
    return out, sum(f"Finished XLA compilation of jit({name})" in m for m in msgs)


def assert_same_as_fit(many, k, single, rtol, atol=0.0):
    got = many.model(k)
    chex.assert_trees_all_close(got.params, single.params, rtol=rtol, atol=atol)
    chex.assert_trees_all_close(got.opt_state, single.opt_state, rtol=rtol, atol=atol)
    assert set(got.history) == set(single.history)
    for name, h in single.history.items():
        np.testing.assert_allclose(
            got.history[name], h, rtol=rtol, atol=atol, err_msg=f"model {k}: {name}"
        )
    assert got.stop_reason is None and single.stop_reason is None


def test_k_models_equal_k_separate_fits_and_compile_once(x64, caplog):
    """Seeds, L2 strengths and learning rates differ per model; the short last batch is masked."""
    x, y = data()
    xv, yv = data(seed=1)
    seeds, l2s, rates = [2, 3, 4], [0.0, 1e-3, 1e-2], [0.05, 0.02, 0.01]
    opt = jm.optim.adam(0.05)
    params = [jm.init_params(jax.random.key(s), NET) for s in seeds]
    states = [set_hyperparams(opt.init(p), learning_rate=r) for p, r in zip(params, rates)]
    reg = jm.Regularization(l1w=1e-4, l2w=jnp.array(l2s), l2b=1e-4)
    kw = dict(
        loss=LOSS,
        epochs=6,
        batch_size=32,  # 90 examples: 32, 32, 26
        validation=(xv, yv),
        key=jax.random.key(5),
        progress=False,
    )
    many, compiles = count_compilations(
        caplog,
        lambda: fit_many(NET, stack(params), opt, x, y, reg=reg, opt_state=stack(states), **kw),
        "_fit_many_epochs",
    )
    assert compiles == 1
    assert many.history["loss"].shape == (3, 6)
    assert many.history["w_l2"].shape == (3, 6, 2)
    np.testing.assert_array_equal(many.epochs_run, [6, 6, 6])
    assert many.stop_reasons == (None, None, None)
    for k in range(3):
        reg_k = jm.Regularization(l1w=1e-4, l2w=l2s[k], l2b=1e-4)
        single = jm.fit(NET, params[k], opt, x, y, reg=reg_k, opt_state=states[k], **kw)
        assert_same_as_fit(many, k, single, rtol=1e-10)
    # The sweep did something: more L2, smaller weights.
    assert many.history["w_l2"][0, -1, 0] > many.history["w_l2"][2, -1, 0]


def test_per_model_keys_and_manual_gradients(x64):
    """K keys give each model its own shuffles: model k equals fit with keys[k]."""
    x, y = data(samples=20)
    opt = jm.optim.sgd(0.3, momentum=0.9)
    params = [jm.init_params(jax.random.key(s), NET) for s in (0, 1)]
    keys = jax.random.split(jax.random.key(7), 2)
    reg = jm.Regularization(l2w=jnp.array([1e-4, 1e-2]))
    kw = dict(loss=LOSS, epochs=4, batch_size=16, grads="manual", progress=False)
    many = fit_many(NET, stack(params), opt, x, y, reg=reg, key=keys, **kw)
    for k in range(2):
        single = jm.fit(
            NET, params[k], opt, x, y, reg=jm.Regularization(l2w=[1e-4, 1e-2][k]), key=keys[k], **kw
        )
        assert_same_as_fit(many, k, single, rtol=1e-10)


def test_a_diverging_model_stops_and_the_others_go_on():
    x, y = data()
    opt = jm.optim.sgd(0.1)
    params = jm.init_params(jax.random.key(2), NET)
    rates = [0.1, 1e30, 0.2]  # the middle one overflows float32 within a few epochs
    states = stack([set_hyperparams(opt.init(params), learning_rate=r) for r in rates])
    with pytest.warns(RuntimeWarning, match=r"1 of 3 models diverged \(models \[1\]\)"):
        many = fit_many(
            NET, stack([params] * 3), opt, x, y, loss=LOSS, epochs=20, opt_state=states,
            progress=False,
        )  # fmt: skip
    with pytest.warns(RuntimeWarning, match="diverged"):
        bad = jm.fit(
            NET, params, opt, x, y, loss=LOSS, epochs=20, progress=False, opt_state=take(states, 1)
        )
    stopped = len(bad.history["loss"])
    assert stopped < 20
    np.testing.assert_array_equal(many.epochs_run, [20, stopped, 20])
    assert many.stop_reasons[0] is None and many.stop_reasons[2] is None
    assert f"model 1 diverged at epoch {stopped + 1}" in many.stop_reasons[1]
    # The diverged model kept its last good state, as fit does; NaN marks its later rows.
    model1 = many.model(1)
    chex.assert_trees_all_close(model1.params, bad.params, rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(model1.history["loss"], bad.history["loss"], rtol=1e-4)
    assert np.all(np.isnan(many.history["loss"][1, stopped:]))
    for k in (0, 2):
        single = jm.fit(
            NET, params, opt, x, y, loss=LOSS, epochs=20, opt_state=take(states, k), progress=False
        )
        # float32: the batched matrix products round differently from the single ones.
        assert_same_as_fit(many, k, single, rtol=1e-4, atol=1e-6)


def test_stack_unstack_and_take_round_trip():
    trees = [jm.init_params(jax.random.key(s), NET) for s in range(3)]
    stacked = stack(trees)
    chex.assert_shape(stacked[1]["W"], (3, 16, 3))
    for k, tree in enumerate(unstack(stacked)):
        chex.assert_trees_all_equal(tree, trees[k])
        chex.assert_trees_all_equal(take(stacked, k), trees[k])
    with pytest.raises(ValueError, match=r"trees\[1\] has structure"):
        stack([trees[0], trees[0][:1]])


def _bad(kind):
    x, y = data(samples=10)
    params = stack([jm.init_params(jax.random.key(s), NET) for s in range(3)])
    opt = jm.optim.sgd(0.1)
    args = dict(params=params, opt_state=None, reg=None, key=None)
    if kind == "reg":
        args["reg"] = jm.Regularization(l2w=jnp.array([1e-3, 1e-2]))
    elif kind == "opt_state":
        args["opt_state"] = stack([opt.init(jm.init_params(jax.random.key(0), NET))] * 2)
    elif kind == "key":
        args["key"] = jax.random.split(jax.random.key(0), 4)
    elif kind == "unstacked":
        args["params"] = jm.init_params(jax.random.key(0), NET)
    elif kind == "leaf":
        p = list(params)
        p[1] = {"W": p[1]["W"], "b": p[1]["b"][:2]}
        args["params"] = tuple(p)
    params = args.pop("params")
    return lambda: fit_many(NET, params, opt, x, y, loss=LOSS, progress=False, **args)


@pytest.mark.parametrize(
    "kind, match",
    [
        ("reg", r"reg \(layer 0\) l2w must be a number shared by all models or an array of "
                r"shape \(3,\), one per model; got shape \(2,\)"),
        ("opt_state", r"opt_state\.count must have a leading axis of K = 3 models .*got shape "
                      r"\(2,\)"),
        ("key", r"key must be one PRNG key .* or 3 keys, one per model .*got keys of shape "
                r"\(4,\)"),
        ("unstacked", r"params must be stacked, every leaf with a leading axis of K models .* "
                      r"params\[0\]\['W'\] should have shape \(K, 2, 16\); got \(2, 16\)"),
        ("leaf", r"params\[1\]\['b'\] must have a leading axis of K = 3 models .*got shape "
                 r"\(2, 3\)"),
    ],
    ids=["reg_K", "opt_state_K", "keys_K", "unstacked_params", "params_leaf_K"],
)  # fmt: skip
def test_mismatched_model_counts_are_refused(kind, match):
    with pytest.raises(ValueError, match=match):
        _bad(kind)()


def test_a_callback_stops_one_model_and_the_others_go_on(x64):
    """Model 1 is stopped at epoch 4: it keeps its state there, as fit for 4 epochs gives it."""
    x, y = data()
    opt = jm.optim.sgd(0.2, momentum=0.9)
    params = [jm.init_params(jax.random.key(s), NET) for s in range(3)]
    kw = dict(loss=LOSS, batch_size=32, progress=False)
    seen = []

    def stop_model_1(snapshot):
        seen.append((snapshot.epoch, snapshot.running.tolist()))
        assert snapshot.history["loss"].shape == (3, snapshot.epoch)
        return np.array([False, snapshot.epoch == 4, False])

    many = fit_many(NET, stack(params), opt, x, y, epochs=10, callback=stop_model_1,
                    callback_every=2, **kw)  # fmt: skip
    assert seen == [(2, [True] * 3), (4, [True] * 3)] + [
        (e, [True, False, True]) for e in (6, 8, 10)
    ]
    np.testing.assert_array_equal(many.epochs_run, [10, 4, 10])
    assert many.stop_reasons == (None, "stopped by the callback after epoch 4", None)
    assert np.all(np.isnan(many.history["loss"][1, 4:]))
    for k, epochs in ((0, 10), (1, 4), (2, 10)):
        single = jm.fit(NET, params[k], opt, x, y, epochs=epochs, **kw)
        chex.assert_trees_all_close(many.model(k).params, single.params, rtol=1e-10)
        np.testing.assert_allclose(
            many.model(k).history["loss"], single.history["loss"], rtol=1e-10
        )


def test_models_in_groups_equal_all_at_once(x64):
    """group_size runs K/G groups one after another (lax.map): the same numbers as all K at once,
    with per-model strengths beside shared ones, per-model keys, per-model rows and a mask."""
    x, y = data()
    xv, yv = data(seed=1)
    K = 4
    params = stack([jm.init_params(jax.random.key(s), NET) for s in range(K)])
    reg = jm.Regularization(l1w=1e-4, l2w=jnp.array([0.0, 1e-3, 1e-2, 1e-1]))
    rows = [np.arange(0, 90, 1 + k % 2) for k in range(K)]  # different lengths: padded, masked
    kw = dict(loss=LOSS, reg=reg, epochs=2, batch_size=20, validation=(xv, yv), rows=rows,
              key=jax.random.split(jax.random.key(3), K), progress=False)  # fmt: skip
    whole = fit_many(NET, params, jm.optim.adam(0.05), x, y, **kw)
    # Model 1's 45 rows fill 3 of the 5 batches of the longest list: the 2 batches of padding
    # only make no update and add nothing to the history (they once made its loss NaN).
    one = {k: v for k, v in kw.items() if k not in ("rows", "key", "reg")}
    single = jm.fit(NET, take(params, 1), jm.optim.adam(0.05), x[rows[1]], y[rows[1]],
                    key=kw["key"][1], reg=take_reg((reg,), 1)[0], **one)  # fmt: skip
    assert_same_as_fit(whole, 1, single, rtol=1e-10, atol=1e-12)
    grouped = fit_many(NET, params, jm.optim.adam(0.05), x, y, group_size=2, **kw)
    chex.assert_trees_all_close(grouped[:2], whole[:2], rtol=1e-12, atol=1e-15)
    for name, h in whole.history.items():
        np.testing.assert_allclose(grouped.history[name], h, rtol=1e-12, err_msg=name)


def test_group_size_must_divide_k_and_a_run_that_cannot_fit_is_refused(monkeypatch):
    x, y = data()
    params = stack([jm.init_params(jax.random.key(s), NET) for s in range(4)])
    kw = dict(loss=LOSS, epochs=1, batch_size=30, progress=False)
    with pytest.raises(ValueError, match=r"group_size must be a divisor of the K = 4 models "
                                         r"\(1, 2, 4\) or None; got 3"):  # fmt: skip
        fit_many(NET, params, jm.optim.sgd(0.1), x, y, group_size=3, **kw)
    # A device of 64 KiB: 4 models' state (2 · 4 · 4 · 115 floats, about 14 KiB) and the data fit,
    # but not a step's activations of 4 models at once, nor, at 16 KiB, even of one.
    step = 30 * (2 + 16 + 3) * jm.memory.ACTIVATION_COPIES * 4
    breakdown = jm.memory.Breakdown(state=2 * 4 * 4 * 115, data=0, step=step,
                                    shared=2 * 90 * 5 * 4, models=4)  # fmt: skip
    assert breakdown.live(4) > 0.8 * 64 * 2**10 >= breakdown.live(2)
    assert jm.memory.group_size(breakdown, None, 64 * 2**10) == 2
    monkeypatch.setattr(jm.memory, "device_memory", lambda device=None: 64 * 2**10)
    small = fit_many(NET, params, jm.optim.sgd(0.1), x, y, **kw)  # in groups of 2, unasked
    whole = fit_many(NET, params, jm.optim.sgd(0.1), x, y, group_size=4, **kw)
    chex.assert_trees_all_close(small.params, whole.params, rtol=1e-6)
    monkeypatch.setattr(jm.memory, "device_memory", lambda device=None: 16 * 2**10)
    refused = r"4 models of this net need about \d+ KiB \(4 models' parameters and optimizer "
    with pytest.raises(ValueError, match=refused + r".* more than 80% of the device's 16 KiB"):
        fit_many(NET, params, jm.optim.sgd(0.1), x, y, **kw)


@pytest.mark.parametrize(
    "opt",
    [
        jm.optim.adam(1e-3, amsgrad=True),
        jm.optim.adamw(1e-3),
        jm.optim.sgd(0.1, momentum=0.9),
        jm.optim.rmsprop(1e-3, centered=True),
        jm.optim.adagrad(0.1, initial_accumulator_value=0.25),
        jm.optim.adam(jm.schedules.cosine(1e-2, 100)),
        jm.optim.chain(jm.optim.clip_by_global_norm(1.0), jm.optim.sgd(0.1)),
    ],
    ids=[
        "adam-amsgrad",
        "adamw",
        "sgd-momentum",
        "rmsprop-centered",
        "adagrad",
        "schedule",
        "chain",
    ],
)
def test_init_states_equals_vmap_of_init(x64, opt):
    # Made on the host from one model's state: the same leaves, dtypes and values as vmap(init).
    dtype = "float64" if x64 else "float32"
    params = stack([jm.init_params(jax.random.key(s), NET, dtype=dtype) for s in range(3)])
    got, want = init_states(opt, params), jax.vmap(opt.init)(params)
    assert jax.tree.structure(got) == jax.tree.structure(want)
    for g, w in zip(jax.tree.leaves(got), jax.tree.leaves(want)):
        assert (g.shape, g.dtype, g.weak_type) == (w.shape, w.dtype, w.weak_type)
        np.testing.assert_array_equal(g, w)


def test_init_states_runs_an_init_that_reads_the_values_under_vmap():
    # A state that copies the parameters (weight averaging, say) must see each model's own.
    remember = jm.optim.Optimizer(lambda p: {"start": jax.tree.map(lambda a: 2.0 * a, p)},
                                  lambda g, s, p=None: (g, s))  # fmt: skip
    params = stack([jm.init_params(jax.random.key(s), NET) for s in range(3)])
    state = init_states(remember, params)
    chex.assert_trees_all_close(state["start"], jax.tree.map(lambda a: 2.0 * a, params))


def test_fit_many_compiles_only_its_program(caplog):
    # Sizes no other test uses, so no eager kernel is already compiled for them: the first call
    # checks, makes the states and stops a model without compiling anything but its loop.
    net = jm.MLP((3, 11, 4), ("tanh", "softmax"))
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(40, 3)).astype(np.float32), rng.integers(0, 4, 40)
    params = stack([jm.init_params(jax.random.key(s), net) for s in range(3)])

    def stop_model_0(snapshot):
        return np.array([snapshot.epoch >= 2, False, False])

    def run():
        return fit_many(net, params, jm.optim.adam(1e-2), x, y, loss=LOSS, epochs=4,
                        batch_size=16, progress=False, callback=stop_model_0)  # fmt: skip

    with caplog.at_level(logging.WARNING), jax.log_compiles(True):
        result = run()
    compiled = [
        r.getMessage() for r in caplog.records if "Finished XLA compilation" in r.getMessage()
    ]
    assert len(compiled) == 1 and "jit(_fit_many_epochs)" in compiled[0], compiled
    assert list(result.epochs_run) == [2, 4, 4]
