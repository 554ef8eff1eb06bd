"""Scale-out: `fit` and `fit_many` on a mesh equal their single-device runs.

The multi-device checks run in subprocesses (4 forced CPU devices; 2 processes of 2 devices
each), so this pytest process keeps its one device. The subprocess half of this file is
`four_devices_worker` (``python tests/test_sharding.py four-devices OUT``) and
`disagreeing_process_worker` (``... disagree RANK PORT OUT``, two at once).
"""

import contextlib
import io
import json
import os
import pathlib
import re
import socket
import subprocess
import sys

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.sharding import AxisType, Mesh, NamedSharding
from jax.sharding import PartitionSpec as P

import jaxmlp as jm
from jaxmlp.ensemble import fit_many, stack

ROOT = pathlib.Path(__file__).resolve().parent.parent
NET = jm.MLP((2, 16, 3), ("relu", "softmax"))
LOSS = "categorical_crossentropy"
# float32: the sharded run sums each batch's gradient over devices, in another order.
RTOL, ATOL = 2e-5, 2e-6
# fit's configurations: (grads, optimizer, batch size); each gradient source and optimizer
# once (every configuration compiles twice, and compiling is most of the time). 90 examples:
# batches of 32 end with a short one of 26 (masked); batches of 30 are padded to 32 rows, 8 per
# device (masked).
CASES = [("autodiff", "sgd_momentum", 32), ("manual", "adam", 30)]


def optimizer(name):
    return jm.optim.sgd(0.3, momentum=0.9) if name == "sgd_momentum" else jm.optim.adam(0.02)


def subprocess_env(devices):
    env = dict(os.environ, JAX_PLATFORMS="cpu")
    env["XLA_FLAGS"] = f"--xla_force_host_platform_device_count={devices}"
    return env


def run_checked(cmd, env, timeout):
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=timeout)
    assert proc.returncode == 0, f"{cmd} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    return proc


# ---- the subprocess: 4 CPU devices --------------------------------------------------------


def _capture_programs(sink):
    """Record the optimized HLO of every compiled epoch loop that `fit`/`fit_many` run."""
    driver_module = sys.modules["jaxmlp._driver"]
    original = driver_module.program

    def spy(spec):
        run = original(spec)

        def wrapped(*call_args):
            if not getattr(wrapped, "seen", False):
                wrapped.seen = True
                # The executable the call below uses: XLA compiles it once.
                sink.append(run.lower(*call_args).compile().as_text())
            return run(*call_args)

        return wrapped

    driver_module.program = spy


def _dots(hlo):
    """Shapes of the matrix products in an HLO text, e.g. ``{'f32[8,16]', 'f32[4,32,16]'}``."""
    return set(re.findall(r"(f32\[[\d,]+\])\{[\d,]+\} dot\(", hlo))


def hidden_product(dots, rows, models=None):
    """Whether `dots` holds the hidden layer's product (16 features) over `rows` examples.

    The forward pass computes it as ``(rows, 16)`` or, in its column form (batch longer than
    the widest layer), as ``(16, rows)``; under `vmap` with a leading axis of `models`.
    """
    lead = "" if models is None else f"{models},"
    return f"f32[{lead}{rows},16]" in dots or f"f32[{lead}16,{rows}]" in dots


def _sharding_facts(a):
    s = a.sharding
    return {
        "spec": list(s.spec) if isinstance(s, NamedSharding) else None,
        "devices": len(s.device_set),
        "replicated": bool(s.is_fully_replicated),
        "shard_shapes": sorted({tuple(sh.data.shape) for sh in a.addressable_shards}),
    }


def _save_tree(out, prefix, tree):
    for path, leaf in jax.tree_util.tree_leaves_with_path(tree):
        out[prefix + jax.tree_util.keystr(path)] = np.asarray(leaf)


def four_devices_worker(out_dir):
    jax.config.update("jax_numpy_rank_promotion", "raise")
    assert jax.device_count() == 4, jax.devices()
    programs = []
    _capture_programs(programs)
    x, y = jm.spiral(jax.random.key(0), samples=30)
    validation = jm.spiral(jax.random.key(1), samples=5)
    params = jm.init_params(jax.random.key(2), NET)
    arrays, facts = {}, {"fit": {}, "errors": {}}
    mesh = jm.sharding.data_mesh()
    for grads, opt_name, batch_size in CASES:
        kw = dict(
            loss=LOSS,
            reg=jm.Regularization(l1w=1e-4, l2w=1e-3, l2b=1e-3),
            epochs=4,
            batch_size=batch_size,
            validation=validation,
            key=jax.random.key(3),
            grads=grads,
            progress=False,
        )
        opt = optimizer(opt_name)
        name = f"{grads}-{opt_name}-{batch_size}"
        single = jm.fit(NET, params, opt, x, y, **kw)
        sharded = jm.fit(NET, params, opt, x, y, mesh=mesh, **kw)
        for tag, r in (("single", single), ("sharded", sharded)):
            _save_tree(arrays, f"{name}/{tag}/params", r.params)
            _save_tree(arrays, f"{name}/{tag}/opt_state", r.opt_state)
            for k, h in r.history.items():
                arrays[f"{name}/{tag}/history/{k}"] = h
        facts["fit"][name] = {
            "params": [_sharding_facts(a) for a in jax.tree.leaves(sharded.params)],
            "opt_state": [_sharding_facts(a) for a in jax.tree.leaves(sharded.opt_state)],
            "single_dots": sorted(_dots(programs[-2])),
            "sharded_dots": sorted(_dots(programs[-1])),
            "sharded_all_reduces": programs[-1].count("all-reduce("),
            "single_all_reduces": programs[-2].count("all-reduce("),
        }
    # The placement fit gives an epoch's batches: 3 batches of 32 rows, 8 rows per device.
    xs = jm.sharding.shard_batches(jnp.zeros((3, 32, 2)), mesh)
    facts["batches"] = _sharding_facts(xs)
    facts["batches_on"] = sorted(d.id for d in xs.sharding.device_set)

    # fit_many: 4 models, one per device.
    seeds, l2s = [4, 5, 6, 7], [0.0, 1e-3, 1e-2, 3e-2]
    many_params = stack([jm.init_params(jax.random.key(s), NET) for s in seeds])
    kw = dict(
        loss=LOSS,
        reg=jm.Regularization(l2w=jnp.array(l2s), l1w=1e-4),
        epochs=4,
        batch_size=32,
        validation=validation,
        key=jax.random.split(jax.random.key(8), 4),
        progress=False,
    )
    opt = jm.optim.adam(0.02)
    single = fit_many(NET, many_params, opt, x, y, **kw)
    sharded = fit_many(NET, many_params, opt, x, y, mesh=jm.sharding.models_mesh(), **kw)
    for tag, r in (("single", single), ("sharded", sharded)):
        _save_tree(arrays, f"many/{tag}/params", r.params)
        _save_tree(arrays, f"many/{tag}/opt_state", r.opt_state)
        for k, h in r.history.items():
            arrays[f"many/{tag}/history/{k}"] = h
    facts["many"] = {
        "params": [_sharding_facts(a) for a in jax.tree.leaves(sharded.params)],
        "single_dots": sorted(_dots(programs[-2])),
        "sharded_dots": sorted(_dots(programs[-1])),
    }

    mesh_types_worker(arrays, facts, x, y, params)

    # Errors that need several devices.
    def error_of(fn):
        try:
            fn()
        except ValueError as e:
            return str(e)
        return None

    three = stack([jm.init_params(jax.random.key(s), NET) for s in range(3)])
    facts["errors"]["many_not_divisible"] = error_of(
        lambda: fit_many(NET, three, opt, x, y, loss=LOSS, devices=4, progress=False)
    )
    grid = Mesh(np.array(jax.devices()).reshape(2, 2), ("data", "models"))
    facts["errors"]["second_axis"] = error_of(
        lambda: jm.fit(NET, params, opt, x, y, loss=LOSS, mesh=grid, progress=False)
    )
    np.savez(os.path.join(out_dir, "arrays.npz"), **arrays)
    with open(os.path.join(out_dir, "facts.json"), "w") as f:
        json.dump(facts, f)


MESH_TYPES = ("auto", "explicit", "auto-context", "explicit-context")


def mesh_types_worker(arrays, facts, x, y, params):
    """`fit` and `fit_many` on meshes made JAX's way: Auto and Explicit axes, given or current.

    `jax.make_mesh` makes Explicit axes by default; ``jax.set_mesh`` makes a mesh current.
    """
    kinds = {"auto": (AxisType.Auto,), "explicit": (AxisType.Explicit,)}
    kw = dict(loss=LOSS, epochs=3, batch_size=32, key=jax.random.key(3), progress=False)
    opt = jm.optim.adam(0.02)
    many = stack([jm.init_params(jax.random.key(s), NET) for s in range(4)])
    keys = jax.random.split(jax.random.key(8), 4)
    runs = {"fit/single": jm.fit(NET, params, opt, x, y, **kw)}
    runs["ens/single"] = fit_many(NET, many, opt, x, y, **{**kw, "key": keys})
    facts["mesh_devices"], facts["mesh_errors"] = {}, {}
    for tag in MESH_TYPES:
        kind, context = tag.split("-")[0], tag.endswith("context")
        for what, axis in (("fit", "data"), ("ens", "models")):
            mesh = jax.make_mesh((4,), (axis,), axis_types=kinds[kind])
            with jax.set_mesh(mesh) if context else contextlib.nullcontext():
                given = {} if context else {"mesh": mesh}
                if what == "fit":
                    r = jm.fit(NET, params, opt, x, y, **kw, **given)
                else:
                    r = fit_many(NET, many, opt, x, y, **{**kw, "key": keys}, **given)
            runs[f"{what}/{tag}"] = r
            devices = {len(a.sharding.device_set) for a in jax.tree.leaves(r.params)}
            facts["mesh_devices"][f"{what}/{tag}"] = sorted(devices)
    for name, r in runs.items():
        _save_tree(arrays, f"meshes/{name}/params", r.params)
        _save_tree(arrays, f"meshes/{name}/opt_state", r.opt_state)
        for k, h in r.history.items():
            arrays[f"meshes/{name}/history/{k}"] = h
    # A current mesh without the axis a function splits over is refused, naming it.
    with jax.set_mesh(jax.make_mesh((4,), ("models",))):
        try:
            jm.fit(NET, params, opt, x, y, **kw)
        except ValueError as e:
            facts["mesh_errors"]["fit_in_models_mesh"] = str(e)


def disagreeing_process_worker(rank, port, out_dir):
    """One of 2 processes whose arguments differ: fit must refuse, naming the argument."""
    jax.config.update("jax_platforms", "cpu")
    jax.distributed.initialize(
        coordinator_address=f"127.0.0.1:{port}", num_processes=2, process_id=rank
    )
    x, y = jm.spiral(jax.random.key(0), samples=5)
    mesh = jm.sharding.data_mesh()
    errors = {}
    for name in ("params", "x"):
        params = jm.init_params(jax.random.key(rank if name == "params" else 0), NET)
        xs = x + rank if name == "x" else x
        try:
            jm.fit(NET, params, jm.optim.sgd(0.1), xs, y, loss=LOSS, mesh=mesh, progress=False)
        except ValueError as e:
            errors[name] = str(e)
    many = stack([jm.init_params(jax.random.key(0), NET)] * 4)
    try:
        fit_many(NET, many, jm.optim.sgd(0.1), x, y, loss=LOSS, devices=4, progress=False)
    except ValueError as e:
        errors["fit_many"] = str(e)
    with open(os.path.join(out_dir, f"errors{rank}.json"), "w") as f:
        json.dump(errors, f)
    jax.distributed.shutdown()


# ---- the tests -----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def four_devices(tmp_path_factory):
    out = tmp_path_factory.mktemp("four_devices")
    run_checked(
        [sys.executable, __file__, "four-devices", str(out)], subprocess_env(4), timeout=600
    )
    with open(out / "facts.json") as f:
        facts = json.load(f)
    return dict(np.load(out / "arrays.npz")), facts


def assert_same_run(arrays, name):
    single = {k.split("/single/", 1)[1]: v for k, v in arrays.items() if f"{name}/single/" in k}
    sharded = {k.split("/sharded/", 1)[1]: v for k, v in arrays.items() if f"{name}/sharded/" in k}
    assert set(single) == set(sharded) and len(single) > 10
    for k in single:
        np.testing.assert_allclose(sharded[k], single[k], rtol=RTOL, atol=ATOL, err_msg=k)


@pytest.mark.parametrize("case", CASES, ids=["-".join(map(str, c)) for c in CASES])
def test_fit_on_four_devices_equals_one_device(four_devices, case):
    arrays, facts = four_devices
    name = "-".join(map(str, case))
    assert_same_run(arrays, name)
    # The runs trained: the loss fell.
    loss = arrays[f"{name}/single/history/loss"]
    assert loss[-1] < loss[0]
    f = facts["fit"][name]
    # Parameters and optimizer state: one full copy on each of the 4 devices.
    for leaf in f["params"] + f["opt_state"]:
        assert leaf == {
            "spec": [],
            "devices": 4,
            "replicated": True,
            "shard_shapes": leaf["shard_shapes"],
        }
    assert [tuple(s) for s in f["params"][0]["shard_shapes"]] == [(2, 16)]
    # The compiled program splits every batch of 32 rows (30 padded to 32) into 4 x 8 rows and
    # sums the gradients across the devices; the single-device one computes all 32 rows.
    assert hidden_product(f["sharded_dots"], 8) and not hidden_product(f["sharded_dots"], 32)
    assert hidden_product(f["single_dots"], case[2])
    assert f["sharded_all_reduces"] >= 1 and f["single_all_reduces"] == 0


def test_batches_are_split_over_the_data_axis(four_devices):
    _, facts = four_devices
    assert facts["batches"] == {
        "spec": [None, "data"],
        "devices": 4,
        "replicated": False,
        "shard_shapes": [[3, 8, 2]],
    }
    assert facts["batches_on"] == [0, 1, 2, 3]


def test_fit_many_on_four_devices_splits_the_models(four_devices):
    arrays, facts = four_devices
    assert_same_run(arrays, "many")
    f = facts["many"]
    for leaf in f["params"]:
        assert leaf["spec"] == ["models"] and leaf["devices"] == 4
        assert not leaf["replicated"] and len(leaf["shard_shapes"]) == 1
        assert leaf["shard_shapes"][0][0] == 1  # one model of 4 per device
    # One model per device: the products lose their models axis (4 models unsharded).
    assert hidden_product(f["single_dots"], 32, models=4)
    assert hidden_product(f["sharded_dots"], 32)
    assert not hidden_product(f["sharded_dots"], 32, models=4)


@pytest.mark.parametrize("tag", MESH_TYPES)
@pytest.mark.parametrize("what", ["fit", "ens"])
def test_meshes_of_every_axis_type_equal_one_device(four_devices, what, tag):
    arrays, facts = four_devices
    assert facts["mesh_devices"][f"{what}/{tag}"] == [4]  # the run used the mesh's devices
    prefix = f"meshes/{what}/"
    single = {k[len(prefix + "single/") :]: v for k, v in arrays.items()
              if k.startswith(prefix + "single/")}  # fmt: skip
    assert len(single) > 10
    for k, v in single.items():
        got = arrays[f"{prefix}{tag}/{k}"]
        np.testing.assert_allclose(got, v, rtol=RTOL, atol=ATOL, err_msg=f"{tag} {k}")


def test_a_current_mesh_without_the_axis_is_refused(four_devices):
    _, facts = four_devices
    message = facts["mesh_errors"]["fit_in_models_mesh"]
    assert re.search(r"current mesh .*jax.set_mesh.* axes \('models',\).*'data'", message)


def test_errors_that_need_several_devices(four_devices):
    _, facts = four_devices
    errors = facts["errors"]
    assert re.search(
        r"fit_many with a mesh splits the K = 3 models over the 4 devices of its 'models' "
        r"axis, so 4 must divide K",
        errors["many_not_divisible"],
    )
    assert re.search(
        r"fit splits its work over the mesh axis 'data' only; the mesh's other axes must have "
        r"size 1, got \{'models': 2\}",
        errors["second_axis"],
    )


def test_two_processes_train_together_and_equal_one_process(tmp_path):
    epochs = 4
    env = dict(os.environ)
    env.pop("XLA_FLAGS", None)
    proc = run_checked(
        [sys.executable, str(ROOT / "experiments/multihost.py"), "--processes", "2",
         "--devices", "2", "--epochs", str(epochs), "--out", str(tmp_path), "--timeout", "400"],
        env,
        timeout=500,
    )  # fmt: skip
    assert "-> agree" in proc.stdout
    workers = [np.load(tmp_path / f"process{r}.npz") for r in range(2)]
    for w in workers:
        np.testing.assert_array_equal(w["devices"], [2, 4])  # 2 local devices of 4 in all
    np.testing.assert_array_equal(workers[0]["rows"], [0, 60])
    np.testing.assert_array_equal(workers[1]["rows"], [60, 120])
    # The launcher's reference: the same run in one process on one device (plain fit).
    reference = np.load(tmp_path / "reference.npz")
    assert set(reference.files) == {"loss", "W0", "b0", "W1", "b1"}
    for key in reference.files:
        np.testing.assert_array_equal(workers[1][key], workers[0][key])
        np.testing.assert_allclose(
            workers[0][key], reference[key], rtol=RTOL, atol=ATOL, err_msg=key
        )
    assert reference["loss"].shape == (epochs,) and reference["loss"][-1] < reference["loss"][0]


def test_processes_that_disagree_are_refused(tmp_path):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    procs = [
        subprocess.Popen(
            [sys.executable, __file__, "disagree", str(rank), str(port), str(tmp_path)],
            env=subprocess_env(2),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for rank in range(2)
    ]
    try:
        outputs = [p.communicate(timeout=300)[0] for p in procs]
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
    for p, out in zip(procs, outputs):
        assert p.returncode == 0, out[-3000:]
    for rank in range(2):
        with open(tmp_path / f"errors{rank}.json") as f:
            errors = json.load(f)
        assert set(errors) == {"params", "x", "fit_many"}
        for name in ("params", "x"):
            assert errors[name].startswith(
                f"{name} differs between processes: every process must pass the same {name}"
            )
        assert errors["fit_many"].startswith(
            "fit_many(mesh=...) splits the models over the devices of one process; this run "
            "has 2 processes"
        )


# ---- in this process: one device -----------------------------------------------------------


def test_a_one_device_mesh_gives_the_unsharded_run():
    """The sharded program on one device (what a single GPU runs) equals the plain one."""
    x, y = jm.spiral(jax.random.key(0), samples=20)
    params = jm.init_params(jax.random.key(2), NET)
    kw = dict(loss=LOSS, epochs=3, batch_size=16, key=jax.random.key(3), progress=False)
    opt = jm.optim.adam(0.02)
    plain = jm.fit(NET, params, opt, x, y, **kw)
    sharded = jm.fit(NET, params, opt, x, y, devices=1, **kw)
    chex.assert_trees_all_close(sharded.params, plain.params, rtol=1e-6, atol=1e-7)
    chex.assert_trees_all_close(sharded.history, plain.history, rtol=1e-6, atol=1e-7)
    W = sharded.params[0]["W"]
    assert W.sharding == NamedSharding(jm.sharding.data_mesh(1), P())
    np.asarray(params[0]["W"])  # the caller's arrays survive the donation


def test_the_readme_example_runs():
    section = (ROOT / "README.md").read_text().split("\n## Scale-out\n", 1)[1]
    code = re.search(r"```python\n(.*?)```", section, re.S).group(1)
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(compile(code, "README.md", "exec"), {})
    assert out.getvalue().split() == ["True"]


def test_process_helpers_in_one_process():
    assert jm.sharding.process_slice(10) == slice(0, 10)
    rows = np.arange(12.0, dtype=np.float32).reshape(6, 2)
    full = jm.sharding.from_process_rows(rows)
    np.testing.assert_array_equal(np.asarray(full), rows)
    assert full.sharding.is_fully_replicated and full.sharding.spec == P()
    assert jm.sharding.data_mesh().axis_names == ("data",)
    assert jm.sharding.models_mesh([jax.devices()[0]]).shape == {"models": 1}


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        (
            {"mesh": "data", "devices": 1},
            ValueError,
            r"fit takes mesh= or devices= \(a shorthand for a one-axis 'data' mesh\), not both",
        ),
        ({"devices": 0}, ValueError, r"devices must be between 1 and the 1 devices JAX sees"),
        ({"devices": 2}, ValueError, r"devices must be between 1 and the 1 devices .*got 2"),
        ({"devices": "gpu"}, TypeError, r"devices must be a number of devices or a list of "),
        ({"devices": [0]}, TypeError, r"devices must be a non-empty list of jax.Device"),
        ({"mesh": "data"}, TypeError, r"mesh must be a jax.sharding.Mesh .*got str"),
        (
            {"mesh": "models_mesh"},
            ValueError,
            r"fit splits the batch over a mesh axis named 'data'; the mesh has axes "
            r"\('models',\). Build one with jaxmlp.sharding.data_mesh",
        ),
    ],
    ids=["both", "zero_devices", "too_many", "devices_type", "device_list", "mesh_type", "axis"],
)
def test_fit_rejects_bad_meshes(kwargs, error, match):
    x, y = jm.spiral(jax.random.key(0), samples=5)
    params = jm.init_params(jax.random.key(2), NET)
    if kwargs.get("mesh") == "models_mesh":
        kwargs = {"mesh": jm.sharding.models_mesh()}
    with pytest.raises(error, match=match):
        jm.fit(NET, params, jm.optim.sgd(0.1), x, y, loss=LOSS, progress=False, **kwargs)


def test_fit_many_wants_a_models_axis():
    x, y = jm.spiral(jax.random.key(0), samples=5)
    params = stack([jm.init_params(jax.random.key(s), NET) for s in range(2)])
    with pytest.raises(ValueError, match=r"fit_many splits the models over a mesh axis named "):
        fit_many(
            NET, params, jm.optim.sgd(0.1), x, y, loss=LOSS, mesh=jm.sharding.data_mesh(),
            progress=False,
        )  # fmt: skip


if __name__ == "__main__":
    if sys.argv[1] == "four-devices":
        four_devices_worker(sys.argv[2])
    elif sys.argv[1] == "disagree":
        disagreeing_process_worker(int(sys.argv[2]), int(sys.argv[3]), sys.argv[4])
    else:
        raise SystemExit(f"unknown mode {sys.argv[1]!r}")
