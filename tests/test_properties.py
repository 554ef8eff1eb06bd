"""Property-based tests (hypothesis) of the public contract of jaxmlp's data functions.

Property 1, the contract: every call of `fit`, `objective`, `backprop`, `evaluate` and
`predict` on generated architectures, losses, output activations, batch sizes,
regularizations, data dtypes, shapes and values either returns finite results (with the
parameters' floating dtype) or raises `ValueError`/`TypeError` whose message names the
offending argument. Anything else fails: another exception type, an error from inside JAX that
names no argument, a warning, an invalid input that is silently accepted, a non-finite result,
an output whose dtype is not the parameters'.

Property 2: on valid float64 problems the hand-written `backprop` equals `jax.grad` of
`objective`.

Profiles: ``HYPOTHESIS_PROFILE=ci`` (default; deterministic, a few hundred examples in all) or
``HYPOTHESIS_PROFILE=thorough`` (5000 examples per test).

Each distinct failure the properties found is also kept below as a plain regression test with
its concrete input (section "Regressions").
"""

from __future__ import annotations

import dataclasses
import functools
import os
import re
import warnings
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import jaxmlp as jm
from jaxmlp import activations as _act
from jaxmlp import losses as _losses


@pytest.fixture(autouse=True)
def _no_patch_suggestion(request):
    """Keep hypothesis's pytest plugin from writing a patch file for a failing test.

    To write it, the plugin imports `hypothesis.extra._patching` (libcst), whose import emits a
    DeprecationWarning (mypy_extensions) that ``filterwarnings = ["error"]`` turns into an
    INTERNALERROR hiding the failures. The failures themselves are reported as usual.
    """
    yield
    if hasattr(request.node, "_hypothesis_failing_examples"):
        del request.node._hypothesis_failing_examples


# --------------------------------------------------------------------------- profiles

settings.register_profile(
    "ci",
    max_examples=60,
    deadline=None,
    derandomize=True,
    database=None,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.register_profile(
    "thorough",  # full ranges; HYPOTHESIS_EXAMPLES=N sets the examples per test
    max_examples=int(os.environ.get("HYPOTHESIS_EXAMPLES", "5000")),
    deadline=None,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow],
)
PROFILE = os.environ.get("HYPOTHESIS_PROFILE", "ci")


def profile(ci_examples: int) -> settings:
    """The selected profile; under "ci" with this test's share of the examples."""
    base = settings.get_profile(PROFILE)
    return settings(base, max_examples=ci_examples if PROFILE == "ci" else base.max_examples)


# --------------------------------------------------------------------------- vocabulary

ACTIVATIONS = _act.NAMES
LOSSES = _losses.NAMES
DATA_DTYPES = ("int8", "uint8", "int32", "int64", "bool")
DATA_DTYPES += ("float16", "bfloat16", "float32", "float64")
INT_DTYPES = ("int8", "uint8", "int32", "int64")
FLOAT_DTYPES = ("float16", "bfloat16", "float32", "float64")
LABEL_DTYPES = ("int8", "uint8", "int32", "int64", "bool")
SGD = jm.optim.sgd(1e-3)  # module level: the same optimizer object lets `fit` reuse programs
ADAM = jm.optim.adam(1e-3)
OPTIMIZERS = {"sgd": SGD, "adam": ADAM}

# Messages of errors raised from inside JAX or NumPy rather than by a validator: even when one
# happens to contain an argument's name ("invalid PRNG key data"), it does not explain the call.
FOREIGN = (
    "scan body function carry",
    "dot_general",
    "Incompatible shapes",
    "invalid PRNG key",
    "Need at least one array",
    "division by zero",
    "broadcast",
    "cannot reshape",
    "while_loop",
    "cond_fun",
    "body_fun",
    "take_along_axis",
)


def np_dtype(name: str) -> np.dtype:
    return np.dtype(jnp.bfloat16) if name == "bfloat16" else np.dtype(name)


def valid_pair(loss: str, out_act: str, out: int) -> bool:
    """Whether `jaxmlp._checks.check_loss` should accept the loss for this output layer."""
    if loss not in LOSSES:
        return False
    if loss.endswith("crossentropy") and out_act not in _losses.PROBABILITY_OUTPUTS:
        return False
    return not (loss == "categorical_crossentropy" and out < 2)


# --------------------------------------------------------------------------- cases


@dataclasses.dataclass(frozen=True)
class Defect:
    """One thing wrong with a call: the argument names its error may cite; hard: must raise."""

    what: str
    names: tuple[str, ...]
    hard: bool = True


@dataclasses.dataclass
class Case:
    """A generated call, described compactly (arrays are built from `seed` in the test)."""

    sizes: tuple[int, ...]
    acts: tuple[str, ...]
    loss: str
    n: int
    x_dtype: str
    y_form: str  # "rows" (n, out), "labels" (n,)
    y_dtype: str
    x64: bool
    p_dtype: str
    reg: Any  # None, a 4-tuple of strengths, or a tuple of per-layer 4-tuples/None
    x_defect: str | None = None
    y_defect: str | None = None
    p_defect: str | None = None
    batch_size: Any = None
    key: str = "none"
    validation: str = "none"
    val_dtype: str = "float32"
    epochs: int = 1
    grads: str = "autodiff"
    opt: str = "sgd"
    seed: int = 0

    @property
    def net(self) -> jm.MLP:
        return jm.MLP(self.sizes, self.acts)


DEFECTS = (
    "x:features", "x:transposed", "x:1d", "x:nan", "x:inf", "x:empty",
    "y:rows", "y:cols", "y:1d", "y:range", "y:float_labels", "y:nan",
    "p:transposed_W", "p:missing_layer", "p:list",
    "loss:pairing", "loss:unknown", "reg:negative", "reg:length",
)  # fmt: skip
# Under "ci", widths and batch lengths come from small sets so that shapes (and so JAX's
# compiled kernels) repeat between examples; "thorough" draws every width 1-32 and length 1-40.
CI_WIDTHS = (1, 2, 3, 8, 32)
CI_LENGTHS = (1, 2, 3, 5, 8, 33, 40)


@st.composite
def strengths(draw, negative: bool = False):
    """A Regularization's four strengths: 0 (Python or NumPy), small values; one negative."""
    values = st.sampled_from([0.0, 0, 1e-4, 1e-2, 0.3, np.float32(1e-3), np.float64(1e-3)])
    out = [draw(values) for _ in range(4)]
    if negative:
        out[draw(st.integers(0, 3))] = -1e-3
    return tuple(out)


@st.composite
def regs(draw, n_layers: int, defect: str | None = None):
    if defect == "negative":
        return draw(strengths(negative=True))
    if defect == "length":
        return tuple(draw(st.none() | strengths()) for _ in range(n_layers + 1))
    kind = draw(st.sampled_from(["none", "one", "per_layer"]))
    if kind == "none":
        return None
    if kind == "one":
        return draw(strengths())
    return tuple(draw(st.none() | strengths()) for _ in range(n_layers))


@st.composite
def cases(draw, *, widths=None, ns=None, max_depth: int = 5, defects: bool = True):
    """Architecture, loss, data description and at most one defect (half of the cases)."""
    thorough = PROFILE != "ci"
    defect = draw(st.sampled_from((None,) * len(DEFECTS) + DEFECTS)) if defects else None
    where, what = defect.split(":") if defect else (None, None)
    depth = draw(st.integers(1, max_depth))
    widths = widths or (None if thorough else CI_WIDTHS)
    width = st.sampled_from(widths) if widths else st.integers(1, 32)
    sizes = tuple(draw(width) for _ in range(depth + 1))
    acts = tuple(draw(st.sampled_from(ACTIVATIONS)) for _ in range(depth))
    loss = draw(st.sampled_from(LOSSES))
    if where == "loss" and what == "unknown":
        loss = draw(st.sampled_from(["crossentropy", "MSE", "l2", ""]))
    elif where == "loss":  # a cross-entropy the output cannot feed
        loss = draw(st.sampled_from(["binary_crossentropy", "categorical_crossentropy"]))
        others = [a for a in ACTIVATIONS if a not in _losses.PROBABILITY_OUTPUTS]
        acts = acts[:-1] + (draw(st.sampled_from(others)),)
    else:  # only pairings `check_loss` accepts
        if loss.endswith("crossentropy") and acts[-1] not in _losses.PROBABILITY_OUTPUTS:
            acts = acts[:-1] + (draw(st.sampled_from(_losses.PROBABILITY_OUTPUTS)),)
        if loss == "categorical_crossentropy" and sizes[-1] < 2:
            sizes = sizes[:-1] + (2,)
    ns = ns or (None if thorough else CI_LENGTHS)
    n = draw(st.sampled_from(ns) if ns else st.integers(1, 40))
    x64 = draw(st.booleans())
    p_dtype = draw(st.sampled_from(["float32", "float64"])) if x64 else "float32"
    x_dtype = draw(st.sampled_from(DATA_DTYPES))
    if loss == "categorical_crossentropy" and draw(st.booleans()):
        y_form, y_dtype = "labels", draw(st.sampled_from(LABEL_DTYPES))
    else:
        y_form, y_dtype = "rows", draw(st.sampled_from(DATA_DTYPES))
    reg = draw(regs(len(sizes) - 1, what if where == "reg" else None))
    seed = draw(st.integers(0, 2**16))
    pick = {w: (what if where == w else None) for w in ("x", "y", "p")}
    return Case(sizes, acts, loss, n, x_dtype, y_form, y_dtype, x64, p_dtype, reg,
                pick["x"], pick["y"], pick["p"], seed=seed)  # fmt: skip


# --------------------------------------------------------------------------- building a call


def values(rng: np.random.Generator, shape, dtype: str, unit: bool = False) -> np.ndarray:
    """Data of `dtype`: small integers, booleans, or floats in [-2, 2] ([0, 1] if `unit`)."""
    if dtype == "bool":
        return rng.random(shape) < 0.5
    if dtype in INT_DTYPES:
        low = 0 if unit or dtype == "uint8" else -3
        return rng.integers(low, 2 if unit else 4, shape).astype(dtype)
    v = rng.uniform(0, 1, shape) if unit else rng.uniform(-2, 2, shape)
    return v.astype(np_dtype(dtype))


def targets(rng, case: Case, n: int, form: str, dtype: str) -> np.ndarray:
    out = case.sizes[-1]
    if form == "labels":
        labels = rng.integers(0, out, n)
        return labels.astype(np_dtype(dtype)) if dtype != "bool" else labels.astype(bool)
    if case.loss == "categorical_crossentropy":
        onehot = np.eye(out)[rng.integers(0, out, n)] if n else np.zeros((0, out))
        return onehot.astype(np_dtype(dtype))
    if case.loss == "binary_crossentropy":
        return values(rng, (n, out), dtype, unit=True)
    return values(rng, (n, out), dtype)


def build(case: Case, rng: np.random.Generator, *, n: int | None = None, x_dtype=None,
          x_defect=None, y_defect=None) -> tuple[np.ndarray, np.ndarray, list[Defect]]:  # fmt: skip
    """Inputs and targets for `case` (or for its validation data), with the defects applied."""
    net = case.net
    n = case.n if n is None else n
    x_dtype = x_dtype or case.x_dtype
    found: list[Defect] = []
    if x_defect == "empty":
        n = 0
        found.append(Defect("empty data", ("x", "y"), hard=False))
    x = values(rng, (n, net.in_features), x_dtype)
    y = targets(rng, case, n, case.y_form, case.y_dtype)
    if case.y_form == "labels" and case.y_dtype == "bool":
        # Boolean class labels: either accepted (as 0/1) or refused with a clear error.
        found.append(Defect("bool labels", ("y",), hard=False))
    if x_defect == "features":
        x = values(rng, (n, net.in_features + 1), x_dtype)
        found.append(Defect("x with a wrong feature count", ("x",)))
    elif x_defect == "transposed" and n != net.in_features:
        x = np.ascontiguousarray(x.T)
        found.append(Defect("x transposed", ("x",)))
    elif x_defect == "1d":
        x = x.reshape(-1)
        found.append(Defect("1-D x", ("x",)))
    elif x_defect in ("nan", "inf") and x_dtype in FLOAT_DTYPES and n:
        x = x.copy()
        x[rng.integers(0, n), rng.integers(0, net.in_features)] = np.nan
        if x_defect == "inf":
            x[np.isnan(x)] = -np.inf
        found.append(Defect(f"{x_defect} in x", ("x",)))
    if y_defect == "rows":
        y = targets(rng, case, n + 1, case.y_form, case.y_dtype)
        found.append(Defect("y with wrong rows", ("y",)))
    elif y_defect == "cols":
        y = np.zeros((n, net.out_features + 1), np_dtype(case.y_dtype))
        found.append(Defect("y with wrong columns", ("y",)))
    elif y_defect == "1d" and case.y_form == "rows" and case.loss != "categorical_crossentropy":
        y = y[:, 0].copy()
        found.append(Defect("1-D y for a non-categorical loss", ("y",)))
    elif y_defect == "range" and n and case.loss.endswith("crossentropy"):
        y = y.copy()
        if case.y_form == "labels":
            if case.y_dtype != "bool":
                y[rng.integers(0, n)] = net.out_features if case.y_dtype == "uint8" else -1
                found.append(Defect("class label out of range", ("y",)))
        elif case.y_dtype != "bool" and case.y_dtype != "uint8":
            y.flat[rng.integers(0, y.size)] = -1
            found.append(Defect("target outside [0, 1]", ("y",)))
    elif y_defect == "float_labels" and case.loss == "categorical_crossentropy" and n:
        y = np.zeros(n, np.float32)
        found.append(Defect("float class labels", ("y",)))
    elif y_defect == "nan" and case.y_form == "rows" and case.y_dtype in FLOAT_DTYPES and n:
        y = y.copy()
        y.flat[rng.integers(0, y.size)] = np.nan
        found.append(Defect("NaN in y", ("y",)))
    return x, y, found


def make_params(case: Case, rng: np.random.Generator) -> tuple[Any, list[Defect]]:
    params = jm.init_params(jax.random.key(case.seed), case.net, dtype=case.p_dtype)
    if case.p_defect == "transposed_W" and any(p["W"].shape[0] != p["W"].shape[1] for p in params):
        params = tuple({"W": p["W"].T, "b": p["b"]} for p in params)
        return params, [Defect("params with transposed W", ("params",))]
    if case.p_defect == "missing_layer":
        return params[:-1], [Defect("params missing a layer", ("params",))]
    if case.p_defect == "list":
        return list(params), [Defect("params as a list", ("params",))]
    return params, []


def make_reg(case: Case) -> tuple[Any, list[Defect]]:
    """The `reg` argument as a thunk (a negative strength raises when it is made)."""
    found = []
    spec = case.reg
    if spec is None:
        return (lambda: None), found
    if len(spec) == 4 and not isinstance(spec[0], tuple) and spec[0] is not None:
        layers, single = [spec], True
    else:
        layers, single = list(spec), False
    if any(s is not None and min(float(v) for v in s) < 0 for s in layers):
        found.append(Defect("negative strength", ("l1w", "l1b", "l2w", "l2b", "reg")))
    if not single and len(layers) != case.net.n_layers:
        found.append(Defect("reg with the wrong number of layers", ("reg",)))

    def make():
        made = [None if s is None else jm.Regularization(*s) for s in layers]
        return made[0] if single else tuple(made)

    return make, found


def loss_defects(case: Case) -> list[Defect]:
    if valid_pair(case.loss, case.acts[-1], case.sizes[-1]):
        return []
    return [Defect("loss the output layer cannot feed", ("loss",))]


# --------------------------------------------------------------------------- the contract


def _names(message: str, name: str) -> bool:
    return re.search(rf"(?<![A-Za-z0-9_]){re.escape(name)}(?![A-Za-z0-9_])", message) is not None


def contract(call, defects: list[Defect], check) -> None:
    """Run `call`; assert it returns a checked result or raises a clear error for `defects`.

    Exceptions other than ValueError and TypeError propagate unchanged (hypothesis then tells
    distinct ones apart by where they were raised).
    """
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            result = call()
        except (ValueError, TypeError) as e:
            msg = f"{type(e).__name__}: {e}"
            assert defects, f"a valid call raised {msg}"
            foreign = [f for f in FOREIGN if f in str(e)]
            assert not foreign, f"an error from inside JAX, not a validator: {msg}"
            names = sorted({n for d in defects for n in d.names})
            assert any(_names(str(e), n) for n in names), (
                f"the error names none of {names} (defects: {[d.what for d in defects]}): {msg}"
            )
            return
    hard = [d.what for d in defects if d.hard]
    assert not hard, f"invalid input accepted without an error: {hard}"
    check(result, caught)


def no_warnings(caught, allowed: str | None = None) -> None:
    unexpected = [w for w in caught if allowed is None or allowed not in str(w.message)]
    assert not unexpected, "warnings: " + "; ".join(
        f"{w.category.__name__}: {w.message}" for w in unexpected
    )


def assert_finite_array(name: str, a: Any, dtype: str, shape=None) -> None:
    a = np.asarray(a)  # NumPy, not jnp: an eager jnp operation compiles for each new shape
    assert a.dtype == np.dtype(dtype), f"{name} has dtype {a.dtype}; the params' is {dtype}"
    if shape is not None:
        assert a.shape == shape, f"{name} has shape {a.shape}; expected {shape}"
    assert np.isfinite(a).all(), f"{name} is not finite: {a}"


def _setup(case: Case):
    rng = np.random.default_rng(case.seed)
    x, y, defects = build(case, rng, x_defect=case.x_defect, y_defect=case.y_defect)
    params, d_params = make_params(case, rng)
    reg, d_reg = make_reg(case)
    return x, y, params, reg, defects + d_params + d_reg + loss_defects(case)


def check_objective_result(case: Case):
    def check(result, caught):
        no_warnings(caught)
        total, parts = result
        for name, v in (("total", total), ("data", parts["data"]), ("penalty", parts["penalty"])):
            assert_finite_array(f"objective's {name}", v, case.p_dtype, ())

    return check


def check_grads_result(case: Case, params):
    def check(result, caught):
        no_warnings(caught)
        assert jax.tree.structure(result) == jax.tree.structure(params)
        for (path, g), p in zip(
            jax.tree_util.tree_leaves_with_path(result), jax.tree.leaves(params)
        ):
            assert_finite_array(f"grad{jax.tree_util.keystr(path)}", g, case.p_dtype, p.shape)

    return check


@profile(14)
@given(cases())
def test_contract_objective(case):
    with jax.enable_x64(case.x64):
        x, y, params, reg, defects = _setup(case)
        contract(
            lambda: jm.objective(case.net, params, x, y, loss=case.loss, reg=reg()),
            defects,
            check_objective_result(case),
        )


@profile(14)
@given(cases())
def test_contract_backprop(case):
    with jax.enable_x64(case.x64):
        x, y, params, reg, defects = _setup(case)
        contract(
            lambda: jm.backprop(case.net, params, x, y, loss=case.loss, reg=reg()),
            defects,
            check_grads_result(case, params),
        )


EVAL_BATCH = st.sampled_from(["default", 1, 2, 3, "n", "n+1", 0, -1, None, 2.5, True])


def batch_size_of(spec: Any, n: int, *, none_ok: bool) -> tuple[Any, list[Defect]]:
    """A batch size from its description, and the defect it is (if any)."""
    if spec == "n":
        return n, ([Defect("batch_size 0 (empty data)", ("batch_size", "x", "y"), False)]
                   if n == 0 else [])  # fmt: skip
    if spec == "n+1":
        return n + 1, []
    if spec is None:
        return None, ([] if none_ok else [Defect("batch_size None", ("batch_size",), False)])
    if isinstance(spec, bool) or not isinstance(spec, int) or spec < 1:
        return spec, [Defect(f"batch_size {spec!r}", ("batch_size",))]
    return spec, []


@profile(12)
@given(cases(), EVAL_BATCH)
def test_contract_evaluate(case, batch):
    with jax.enable_x64(case.x64):
        x, y, params, reg, defects = _setup(case)
        kwargs = {}
        if batch != "default":
            kwargs["batch_size"], more = batch_size_of(batch, len(x), none_ok=False)
            defects += more

        def check(result, caught):
            no_warnings(caught)
            keys = {"loss", "data_loss", "penalty", "accuracy"}
            if case.loss in ("mse", "mae"):  # a regression: R², RMSE, MAE as well
                keys |= {"r2", "rmse", "mae"}
            assert set(result) == keys
            for k, v in result.items():
                assert isinstance(v, float) and np.isfinite(v), f"{k} = {v!r}"
            assert 0 <= result["accuracy"] <= 1

        contract(
            lambda: jm.evaluate(case.net, params, x, y, loss=case.loss, reg=reg(), **kwargs),
            defects,
            check,
        )


@profile(12)
@given(cases(), EVAL_BATCH)
def test_contract_predict(case, batch):
    with jax.enable_x64(case.x64):
        rng = np.random.default_rng(case.seed)
        x_defect = case.x_defect
        x, _, defects = build(case, rng, x_defect=x_defect)
        defects = [d for d in defects if d.names != ("y",)]  # predict takes no y
        if x_defect == "empty":  # predict on no rows may return a (0, out) array
            defects = [Defect("empty x", ("x",), hard=False)]
        params, more = make_params(case, rng)
        defects += more
        kwargs = {}
        if batch != "default":
            kwargs["batch_size"], more = batch_size_of(batch, len(x), none_ok=False)
            defects += more

        def check(result, caught):
            no_warnings(caught)
            shape = (np.shape(x)[0], case.sizes[-1])
            assert_finite_array("predict's output", result, case.p_dtype, shape)

        contract(lambda: jm.predict(case.net, params, x, **kwargs), defects, check)


FIT_BATCH = st.sampled_from([None, 1, 2, 3, "n", "n+1", 0, -2, 2.0, True])
FIT_KEY = st.sampled_from(["none", "typed", "raw", "int", "string", "float_array"])


@st.composite
def fit_cases(draw):
    case = draw(cases(widths=(1, 3, 8), ns=(1, 4, 5, 7), max_depth=4))
    return dataclasses.replace(
        case,
        batch_size=draw(FIT_BATCH),
        key=draw(FIT_KEY),
        validation=draw(st.sampled_from(["none", "valid", "features", "rows", "not_a_pair"])),
        val_dtype=draw(st.sampled_from(DATA_DTYPES)),
        epochs=draw(st.sampled_from([1, 2, 0])),
        grads=draw(st.sampled_from(["autodiff", "manual"])),
        opt=draw(st.sampled_from(sorted(OPTIMIZERS))),
    )


def make_key(spec: str) -> tuple[Any, list[Defect]]:
    if spec == "none":
        return None, []
    if spec == "typed":
        return jax.random.key(1), []
    if spec == "raw":
        return jax.random.PRNGKey(1), []
    bad = {"int": 3, "string": "seed", "float_array": np.zeros(2, np.float32)}[spec]
    # An unusable key: refused naming "key", or ignored when nothing is shuffled.
    return bad, [Defect(f"key {bad!r}", ("key",), hard=False)]


def make_validation(case: Case, rng) -> tuple[Any, list[Defect]]:
    if case.validation == "none":
        return None, []
    if case.validation == "not_a_pair":
        return (np.zeros((2, case.sizes[0])),), [Defect("validation not a pair", ("validation",))]
    xv, yv, _ = build(case, rng, n=3, x_dtype=case.val_dtype)
    names = ("validation", "x_val", "y_val")
    if case.validation == "features":
        xv = np.zeros((3, case.sizes[0] + 1), xv.dtype)
        return (xv, yv), [Defect("validation x with a wrong feature count", names)]
    if case.validation == "rows":
        yv = yv[:2]
        return (xv, yv), [Defect("validation y with wrong rows", names)]
    return (xv, yv), []


@profile(21)
@given(fit_cases())
def test_contract_fit(case):
    with jax.enable_x64(case.x64):
        x, y, params, reg, defects = _setup(case)
        rng = np.random.default_rng(case.seed + 1)
        key, more = make_key(case.key)
        defects += more
        validation, more = make_validation(case, rng)
        defects += more
        batch, more = batch_size_of(case.batch_size, len(x), none_ok=True)
        defects += more

        def check(result, caught):
            assert isinstance(result, jm.FitResult)
            diverged = result.stop_reason is not None and "diverged" in result.stop_reason
            no_warnings(caught, allowed="diverged" if diverged else None)
            assert result.stop_reason is None or diverged, result.stop_reason
            for (path, leaf), p in zip(
                jax.tree_util.tree_leaves_with_path(result.params), jax.tree.leaves(params)
            ):
                where = f"fit's params{jax.tree_util.keystr(path)}"
                assert leaf.dtype == np.dtype(case.p_dtype), f"{where} has dtype {leaf.dtype}"
                assert leaf.shape == p.shape
                assert diverged or np.isfinite(np.asarray(leaf)).all(), f"{where} not finite"
            assert len(result.history["loss"]) <= case.epochs

        contract(
            lambda: jm.fit(
                case.net,
                params,
                OPTIMIZERS[case.opt],
                x,
                y,
                loss=case.loss,
                reg=reg(),
                epochs=case.epochs,
                batch_size=batch,
                validation=validation,
                key=key,
                grads=case.grads,
                progress=False,
            ),  # fmt: skip
            defects,
            check,
        )


# --------------------------------------------------------------------------- backprop == grad


@profile(12)
@given(cases(defects=False), st.booleans())
def test_backprop_equals_autodiff(case, masked):
    with jax.enable_x64(True):
        rng = np.random.default_rng(case.seed)
        net = case.net
        x = rng.normal(size=(case.n, net.in_features))
        if case.loss == "categorical_crossentropy":
            if case.y_form == "labels":
                y = rng.integers(0, net.out_features, case.n)
            else:  # rows of probabilities
                y = rng.dirichlet(np.ones(net.out_features), case.n)
        elif case.loss == "binary_crossentropy":
            y = rng.uniform(size=(case.n, net.out_features))
        else:
            y = rng.normal(size=(case.n, net.out_features))
        params = jm.init_params(jax.random.key(case.seed), net, dtype="float64")
        params = tuple(
            {"W": p["W"], "b": jnp.asarray(rng.normal(scale=0.1, size=p["b"].shape))}
            for p in params
        )
        reg, _ = make_reg(case)
        reg = reg()
        mask = None
        if masked:
            m = rng.random(case.n) < 0.7
            m[rng.integers(0, case.n)] = True
            mask = jnp.asarray(m.astype(np.float64))
        manual, auto = _both_gradients(net, params, x, y, reg, mask, loss=case.loss)
        scale = max(float(np.max(np.abs(g))) for g in jax.tree.leaves(auto))
        for (path, m_), a in zip(
            jax.tree_util.tree_leaves_with_path(manual), jax.tree.leaves(auto)
        ):
            assert m_.dtype == a.dtype == jnp.float64
            np.testing.assert_allclose(
                m_, a, rtol=1e-9, atol=1e-12 * (1 + scale), err_msg=jax.tree_util.keystr(path)
            )


@functools.partial(jax.jit, static_argnames=("net", "loss"))
def _both_gradients(net, params, x, y, reg, mask, *, loss):
    """`backprop` and `jax.grad` of `objective`, in one compiled program (one compilation)."""
    kw = {"loss": loss, "reg": reg, "mask": mask}
    manual = jm.backprop(net, params, x, y, **kw)
    return manual, jax.grad(lambda p: jm.objective(net, p, x, y, **kw)[0])(params)


# --------------------------------------------------------------------------- regressions
# Each is the smallest input the properties above found for one distinct failure; they assert
# the contract, so they fail until the package is fixed.

NET11 = jm.MLP((1, 1), ("linear",))
NET32 = jm.MLP((3, 2), ("softmax",))


def _raises_naming(names: tuple[str, ...], call) -> None:
    contract(call, [Defect("regression", names)], lambda result, caught: None)


@pytest.mark.parametrize("dtype", ["int8", "bool", "float16", "bfloat16"])
def test_regression_fit_accepts_integer_bool_and_half_x(dtype):
    # Was: TypeError "scan body function carry input and carry output must have equal types".
    params = jm.init_params(jax.random.key(0), NET11)
    x = np.ones((1, 1), np_dtype(dtype))
    result = jm.fit(NET11, params, SGD, x, x, loss="mse", epochs=1, progress=False)
    assert result.stop_reason is None
    assert_finite_array("params", result.params[0]["W"], "float32", (1, 1))


def test_regression_fit_float32_x_with_float64_params():
    # Was: the same scan carry TypeError (history buffers take x's dtype, the loss params').
    with jax.enable_x64(True):
        params = jm.init_params(jax.random.key(0), NET11, dtype="float64")
        x = np.ones((1, 1), np.float32)
        result = jm.fit(NET11, params, SGD, x, x, loss="mse", epochs=1, progress=False)
        assert_finite_array("params", result.params[0]["W"], "float64", (1, 1))


def test_regression_outputs_have_the_params_dtype():
    # Was: float64 x, or a NumPy float64 strength, promote float32 params' results to float64.
    with jax.enable_x64(True):
        params = jm.init_params(jax.random.key(0), NET32, dtype=jnp.float32)
        x, y = np.ones((2, 3)), np.array([0, 1])
        total, _ = jm.objective(NET32, params, x, y, loss="categorical_crossentropy")
        assert total.dtype == jnp.float32
        assert jm.predict(NET32, params, x).dtype == jnp.float32
        reg = jm.Regularization(l2w=np.float64(1e-3))
        total, _ = jm.objective(NET32, params, x.astype(np.float32), y,
                                loss="categorical_crossentropy", reg=reg)  # fmt: skip
        assert total.dtype == jnp.float32


@pytest.mark.parametrize("where", ["x", "y"])
def test_regression_bfloat16_nan_is_refused(where):
    # Was: accepted (`check_finite` tests np.issubdtype(dtype, np.inexact), False for
    # bfloat16), and the loss came back NaN.
    net = jm.MLP((3, 3), ("sigmoid",))
    params = jm.init_params(jax.random.key(0), net)
    x = np.ones((2, 3), jnp.bfloat16)
    y = np.full((2, 3), 0.5, jnp.bfloat16)
    (x if where == "x" else y)[0, 0] = np.nan
    _raises_naming((where,), lambda: jm.objective(net, params, x, y, loss="binary_crossentropy"))


@pytest.mark.parametrize("function", ["objective", "backprop", "evaluate", "fit"])
def test_regression_empty_data(function):
    # Was: fit and evaluate raised ZeroDivisionError; objective returned NaN.
    params = jm.init_params(jax.random.key(0), NET32)
    x, y = np.zeros((0, 3), np.float32), np.zeros((0,), np.int32)
    calls = {
        "objective": lambda: jm.objective(NET32, params, x, y, loss="categorical_crossentropy"),
        "backprop": lambda: jm.backprop(NET32, params, x, y, loss="categorical_crossentropy"),
        "evaluate": lambda: jm.evaluate(NET32, params, x, y, loss="categorical_crossentropy"),
        "fit": lambda: jm.fit(
            NET32, params, SGD, x, y, loss="categorical_crossentropy", progress=False
        ),  # fmt: skip
    }
    checks = {
        "objective": check_objective_result(
            Case((3, 2), ("softmax",), "", 0, "", "", "", False, "float32", None)
        ),  # fmt: skip
        "backprop": lambda result, caught: None,
        "evaluate": lambda result, caught: None,
        "fit": lambda result, caught: None,
    }
    contract(calls[function], [Defect("empty data", ("x", "y"), hard=False)], checks[function])


def test_regression_predict_empty_x():
    # Was: ValueError "Need at least one array to concatenate" (names no argument).
    params = jm.init_params(jax.random.key(0), NET32)

    def check(result, caught):
        assert_finite_array("predict", result, "float32", (0, 2))

    contract(lambda: jm.predict(NET32, params, np.zeros((0, 3), np.float32)),
             [Defect("empty x", ("x",), hard=False)], check)  # fmt: skip


@pytest.mark.parametrize("key", [3, np.zeros(2, np.float32), "seed"])
def test_regression_fit_invalid_key(key):
    # Was: TypeError from inside JAX ("JAX encountered invalid PRNG key data", or "Error
    # interpreting argument to <function program.<locals>.loop> as an abstract array").
    params = jm.init_params(jax.random.key(0), NET11)
    x = np.ones((4, 1), np.float32)
    _raises_naming(("key",), lambda: jm.fit(NET11, params, SGD, x, x, loss="mse", batch_size=2,
                                            key=key, progress=False))  # fmt: skip


def test_regression_fit_validation_error_names_validation():
    # Was: ValueError "x must have shape (batch, 1); got (3, 2)": names x, not the validation
    # data.
    params = jm.init_params(jax.random.key(0), NET11)
    x = np.ones((4, 1), np.float32)
    validation = (np.ones((3, 2), np.float32), np.ones((3, 1), np.float32))
    _raises_naming(("validation", "x_val"), lambda: jm.fit(
        NET11, params, SGD, x, x, loss="mse", validation=validation, progress=False))  # fmt: skip


def test_regression_fit_float64_strength_with_float32_params():
    # Was: TypeError "scan body function carry ... carry[2]['loss'] has type float32[] but
    # ... float64[]": a NumPy float64 strength promotes the loss to float64 inside the scan.
    with jax.enable_x64(True):
        params = jm.init_params(jax.random.key(0), NET11, dtype="float32")
        x = np.ones((1, 1), np.float32)
        reg = jm.Regularization(l2b=np.float64(1e-3))
        result = jm.fit(NET11, params, SGD, x, x, loss="mse", reg=reg, progress=False)
        assert_finite_array("params", result.params[0]["W"], "float32", (1, 1))
