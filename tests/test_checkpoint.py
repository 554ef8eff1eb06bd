import json
import os
from typing import NamedTuple

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxmlp as jm
from jaxmlp import checkpoint

NET = jm.MLP((2, 5, 3), ("relu", "softmax"))


def saved(tmp_path, **kwargs):
    params = jm.init_params(jax.random.key(0), NET)
    opt = jm.optim.sgd(0.1, momentum=0.9)
    state = opt.init(params)
    # One real step so the state holds non-zero values.
    grads = jax.tree.map(jnp.ones_like, params)
    _, state = opt.update(grads, state, params)
    path = tmp_path / "ckpt.npz"
    checkpoint.save(
        path,
        NET,
        params,
        state,
        key=jax.random.key(7),
        metadata={"epoch": 12, "note": "hi"},
        **kwargs,
    )
    return path, params, state


def test_round_trip_is_exact(tmp_path):
    path, params, state = saved(tmp_path)
    ck = checkpoint.load(path)
    assert ck.net == NET
    assert type(ck.opt_state) is type(state)
    chex.assert_trees_all_equal((ck.params, ck.opt_state), (params, state))
    assert ck.opt_state.count.dtype == jnp.int32
    np.testing.assert_array_equal(
        jax.random.key_data(ck.key), jax.random.key_data(jax.random.key(7))
    )
    assert ck.metadata == {"epoch": 12, "note": "hi"}
    assert os.listdir(tmp_path) == ["ckpt.npz"]


def test_round_trip_float64(tmp_path, x64):
    path, params, state = saved(tmp_path)
    ck = checkpoint.load(path)
    assert ck.params[0]["W"].dtype == jnp.float64
    chex.assert_trees_all_equal(ck.params, params)


def test_crash_mid_write_keeps_the_previous_checkpoint(tmp_path, monkeypatch):
    path, params, _ = saved(tmp_path)
    before = path.read_bytes()

    def crash(f, **arrays):
        f.write(b"half a file")
        raise KeyboardInterrupt("power cut")

    monkeypatch.setattr(np, "savez", crash)
    with pytest.raises(KeyboardInterrupt):
        checkpoint.save(path, NET, jax.tree.map(lambda a: a + 1, params))
    assert path.read_bytes() == before
    assert os.listdir(tmp_path) == ["ckpt.npz"]  # no temporary file left behind
    monkeypatch.undo()
    chex.assert_trees_all_equal(checkpoint.load(path).params, params)


def test_truncated_file_gives_a_clear_error(tmp_path):
    path, _, _ = saved(tmp_path)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(
        checkpoint.CheckpointError, match=r"not a readable checkpoint \(truncated or corrupted\?\)"
    ):
        checkpoint.load(path)


def rewrite(path, change):
    with np.load(path, allow_pickle=False) as data:
        arrays = {k: data[k] for k in data.files}
    header = json.loads(arrays["__header__"].tobytes())
    change(arrays, header)
    arrays["__header__"] = np.frombuffer(json.dumps(header).encode(), dtype=np.uint8)
    np.savez(path, **arrays)


def test_tampered_weights_are_detected(tmp_path):
    path, _, _ = saved(tmp_path)
    rewrite(path, lambda arrays, header: arrays.__setitem__("a0", arrays["a0"] * 2))
    with pytest.raises(checkpoint.CheckpointError, match=r"does not match its SHA-256 digest"):
        checkpoint.load(path)


def test_a_forged_type_name_is_refused_not_imported(tmp_path):
    path, _, _ = saved(tmp_path)

    def forge(arrays, header):
        header["trees"]["opt_state"]["type"] = "os.system"
        header.pop("sha256")
        header["sha256"] = checkpoint._digest(
            header, [arrays[f"a{i}"] for i in range(len(arrays) - 1)]
        )

    rewrite(path, forge)
    with pytest.raises(checkpoint.CheckpointError, match=r"unknown type 'os.system'"):
        checkpoint.load(path)


def test_object_arrays_are_never_unpickled(tmp_path):
    path = tmp_path / "evil.npz"
    np.savez(path, __header__=np.array([{"format": "jaxmlp-checkpoint"}], dtype=object))
    with pytest.raises(checkpoint.CheckpointError, match=r"not a readable checkpoint"):
        checkpoint.load(path)


def test_other_files_are_not_checkpoints(tmp_path):
    path = tmp_path / "data.npz"
    np.savez(path, x=np.zeros(3))
    with pytest.raises(
        checkpoint.CheckpointError, match=r"is not a jaxmlp checkpoint \(no header\)"
    ):
        checkpoint.load(path)
    with pytest.raises(FileNotFoundError, match=r"checkpoint not found: .*missing.npz"):
        checkpoint.load(tmp_path / "missing.npz")


def test_save_refuses_what_it_cannot_load(tmp_path):
    params = jm.init_params(jax.random.key(0), NET)
    with pytest.raises(TypeError, match=r"metadata must be JSON-serializable"):
        checkpoint.save(tmp_path / "c.npz", NET, params, metadata={"f": object()})
    with pytest.raises(TypeError, match=r"cannot save a leaf of type builtin_function"):
        checkpoint.save(tmp_path / "c.npz", NET, params, opt_state=(print,))
    with pytest.raises(ValueError, match=r"params must hold 2 layer"):
        checkpoint.save(tmp_path / "c.npz", NET, params[:1])


DATA = os.path.join(os.path.dirname(__file__), "data", "v0.1.0")


def test_a_checkpoint_of_version_0_1_0_loads_with_every_state_type():
    """chain.npz was written by jaxmlp 0.1.0 (tests/data/v0.1.0/make.py); this version rebuilds
    the same state, type by type, and the same numbers (to the last bits a CPU may round
    differently)."""
    ck = checkpoint.load(os.path.join(DATA, "chain.npz"))
    net = jm.MLP((2, 4, 3), ("relu", "softmax"))
    assert ck.net == net and ck.metadata == {"steps": 2}
    clip, sgd, prox = ck.opt_state
    assert (type(clip), type(sgd), type(prox)) == (
        jm.optim.ClipState,
        jm.optim.SGDState,
        jm.optim.ProximalL1State,
    )
    assert type(sgd.learning_rate) is jm.schedules.Warmup
    assert type(sgd.learning_rate.schedule) is jm.schedules.InverseTime
    params = jm.init_params(jax.random.key(0), net)
    opt = jm.optim.chain(
        jm.optim.clip_by_global_norm(1.0),
        jm.optim.sgd(jm.schedules.warmup(jm.schedules.inverse_time(0.1, 1e-3), 2), momentum=0.9),
        jm.optim.proximal_l1(0.1, l1w=(1e-3, None)),
    )
    state = opt.init(params)
    for _ in range(2):
        updates, state = opt.update(jax.tree.map(jnp.ones_like, params), state, params)
        params = jm.apply_updates(params, updates)
    chex.assert_trees_all_close((ck.params, ck.opt_state), (params, state), rtol=1e-6)
    np.testing.assert_array_equal(
        jax.random.key_data(ck.key), jax.random.key_data(jax.random.key(3))
    )


# ---------------------------------------------------------------------------------------------
# The registry of loadable types, and a user's own state types.


class ScaleState(NamedTuple):
    """A user's own optimizer state (module level, as a user's class would be)."""

    count: jax.Array
    scale: jax.Array
    trace: tuple


def another_scale_state():
    """A different class of the same name (another module's, say)."""

    class ScaleState(NamedTuple):
        count: jax.Array

    return ScaleState


@pytest.fixture
def registry(monkeypatch):
    """The registry as it is, restored after the test (register changes it for the process)."""
    monkeypatch.setattr(checkpoint, "_REGISTRY", dict(checkpoint._REGISTRY))


def test_the_registry_holds_jaxmlps_state_and_schedule_types():
    expected = {*jm.optim.STATE_TYPES, *jm.schedules.TYPES, jm.early_stopping.Watch}
    assert set(checkpoint._REGISTRY.values()) == expected
    assert all(name == cls.__name__ for name, cls in checkpoint._REGISTRY.items())
    assert jm.schedules.FromCallable not in checkpoint._REGISTRY.values()


def test_a_function_as_learning_rate_still_cannot_be_saved(tmp_path):
    params = jm.init_params(jax.random.key(0), NET)
    state = jm.optim.sgd(lambda step: 0.1).init(params)
    with pytest.raises(TypeError, match=r"cannot save a leaf of type FromCallable"):
        checkpoint.save(tmp_path / "c.npz", NET, params, state)


def test_a_registered_state_type_saves_and_loads(tmp_path, registry):
    params = jm.init_params(jax.random.key(0), NET)
    state = (ScaleState(jnp.asarray(3, jnp.int32), jnp.asarray(0.5), (params[0]["b"], None)),)
    with pytest.raises(TypeError, match=r"cannot save a ScaleState: only jaxmlp's own state types"):
        checkpoint.save(tmp_path / "c.npz", NET, params, state)
    assert checkpoint.register(ScaleState) is ScaleState
    assert checkpoint.register(ScaleState) is ScaleState  # again: nothing changes
    checkpoint.save(tmp_path / "c.npz", NET, params, state)
    loaded = checkpoint.load(tmp_path / "c.npz").opt_state
    assert type(loaded[0]) is ScaleState
    chex.assert_trees_all_equal(loaded, state)


def test_register_refuses_what_is_not_a_namedtuple_class(registry):
    class Plain:
        pass

    point = ScaleState(1, 2, ())
    for bad in (Plain, tuple, dict, point, "ScaleState"):
        with pytest.raises(TypeError, match=r"register takes a NamedTuple class"):
            checkpoint.register(bad)
    assert "Plain" not in checkpoint._REGISTRY


def test_register_refuses_a_second_class_under_a_taken_name(registry):
    class SGDState(NamedTuple):
        count: jax.Array

    with pytest.raises(
        ValueError, match=r"the name 'SGDState' is taken by jaxmlp.optim.sgd.SGDState"
    ):
        checkpoint.register(SGDState)
    assert checkpoint._REGISTRY["SGDState"] is jm.optim.SGDState
    checkpoint.register(ScaleState)
    with pytest.raises(
        ValueError, match=r"'ScaleState' is taken by tests.test_checkpoint.ScaleState"
    ):
        checkpoint.register(another_scale_state())
    assert checkpoint._REGISTRY["ScaleState"] is ScaleState
