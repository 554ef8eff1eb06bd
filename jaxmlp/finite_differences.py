"""Finite differences of `jaxmlp.objective`, and where they cannot be trusted.

Central differences ``d_i = (f(w + ε·e_i) − f(w − ε·e_i)) / 2ε`` along single entries of one
leaf: the reference `jaxmlp.gradcheck` checks both the hand-written backward pass and autodiff
against. Their error is about ``ε²·|f‴|/6`` (truncation) plus ``u·|f|/ε`` (rounding, ``u`` the
dtype's unit roundoff), smallest near ``ε ≈ u^(1/3)``.

Finite differences are meaningless across a kink, so an entry is flagged when its stencil
``[w − ε, w + ε]`` holds one: when moving it by ``+ε`` or ``−ε`` flips any kink indicator of the
objective (`kink_signature`): the side of 0 of a ReLU or leaky-ReLU pre-activation anywhere in
the net (for any example), the sign of an MAE residual ``y − ŷ``, a clipped probability
crossing a clip bound, or the sign of the entry itself when it carries an L1 penalty.

`eps_sweep` measures that error against ``ε`` (the "V curve"), to see where the step should be.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from jaxmlp import losses as _losses
from jaxmlp._checks import check_choice, check_count, check_key, check_problem
from jaxmlp.model import MLP, Params, intermediates
from jaxmlp.objective import objective_and_output
from jaxmlp.regularization import RegLike, per_layer


@functools.partial(jax.jit, static_argnames=("net", "loss"))
def value_and_kinks(net: MLP, params: Params, x: jax.Array, y: jax.Array, loss: str, reg):
    """The objective and its kink signature (see `kink_signature`) at `params`, both arrays."""
    value = objective_and_output(net, params, x, y, loss=loss, reg=reg)[0]
    return value, kink_signature(net, params, x, y, loss, reg)


def central_differences(problem: tuple, params: Params, path: tuple, index: np.ndarray, eps: float):
    """Central differences along the entries `index` of one leaf, and which are kink-free (arrays).

    `problem` is ``(net, x, y, loss, reg)``; `path` the leaf's key path in `params` (``[l]["W"]``);
    the objective is evaluated in the dtype of `params`.

    Entry ``i`` is kink-free when the kink signature is the same at ``w_i − ε``, ``w_i`` and
    ``w_i + ε``: no kink lies inside the stencil. An entry that ``± ε`` does not move in its
    dtype (``w ± ε`` rounds to ``w``) gets NaN and is not kink-free: it is not compared.
    """
    net, x, y, loss, reg = problem
    l, name = path[0].idx, path[1].key
    s0 = np.asarray(value_and_kinks(net, params, x, y, loss, reg)[1])
    w = np.asarray(params[l][name])

    def shifted(i: int, h: float) -> tuple[float, float, bool]:
        """The objective with entry `i` moved by `h`, the entry, and whether the signature is s0."""
        w_h = w.copy()
        w_h.flat[i] += h
        p_h = params[:l] + ({**params[l], name: jax.device_put(w_h)},) + params[l + 1 :]
        v, s = value_and_kinks(net, p_h, x, y, loss, reg)
        return float(v), float(w_h.flat[i]), np.array_equal(np.asarray(s), s0)

    d, ok = np.full(len(index), np.nan), np.zeros(len(index), bool)
    for j, i in enumerate(index):
        (up, w_up, same_up), (down, w_down, same_down) = shifted(i, eps), shifted(i, -eps)
        if w_up == w_down:  # ε below the entry's resolution in its dtype: no difference at all
            continue
        # Divide by the step the dtype represents (w ± ε rounded), not by 2ε: in float32 the
        # two differ by up to u·|w|/ε, an error larger than the truncation's.
        d[j], ok[j] = (up - down) / (w_up - w_down), same_up and same_down
    return d, ok


def kink_signature(
    net: MLP, params: Params, x: jax.Array, y: jax.Array, loss: str, reg: RegLike
) -> jax.Array:
    """Booleans that change only where the objective has a kink (see the module docstring)."""
    zs, acts = intermediates(net, params, x)
    parts = [(z > 0).ravel() for z, f in zip(zs, net.activations) if f in ("relu", "leaky_relu")]
    a = acts[-1]
    if loss == "mae":
        parts.append((y - a >= 0).ravel())
    if loss.endswith("crossentropy") and not _losses.fused(loss, net.output_activation):
        lo, hi = jnp.asarray(_losses.CLIP, a.dtype), jnp.asarray(1 - _losses.CLIP, a.dtype)
        parts += [(a > lo).ravel(), (a < hi).ravel()]
    for layer, r in zip(params, per_layer(reg, net.n_layers)):
        parts += [((layer[k] >= 0) | (l1 == 0)).ravel() for k, l1 in (("W", r.l1w), ("b", r.l1b))]
    return jnp.concatenate(parts)


# Default steps per dtype, half a decade apart, around the optimum u^(1/3) (4.8e-6 in float64,
# 3.9e-3 in float32): 6.7 and 4.6 decades left of it, where rounding dominates, 4.3 and 2.4 right
# of it, where truncation does, so that both arms of the V show their slopes. float32 stops at
# 1e-7, where f(w + ε) and f(w − ε) already round to the same value for most entries, and below
# which w ± ε rounds to w itself for |w| >= 2.
EPS_GRIDS = {"float64": np.logspace(-12, -1, 23), "float32": np.logspace(-7, 0, 15)}
FLOOR = 1e-3  # of the leaf's largest |gradient|: the smallest scale errors are relative to


@dataclasses.dataclass(frozen=True, eq=False)
class EpsSweep:
    """The error of central differences against the step ``ε``: what `eps_sweep` measured.

    Attributes:
      eps: the steps, shape ``(n,)``.
      max_error: per step, the largest relative error ``|d − a| / max(|a|, floor)`` over the
        sampled entries checked at that step (NaN where none was).
      median_error: per step, their median.
      skipped: per step, the sampled entries left out because their stencil
        ``[w − ε, w + ε]`` crosses a kink.
      unresolved: per step, the entries left out because ``w + ε`` and ``w − ε`` round to the
        same number in `dtype` (a step below the resolution at ``w``).
      n_entries: the entries sampled (over all leaves).
      dtype: ``"float32"`` or ``"float64"``, the dtype the objective was evaluated in.
    """

    eps: np.ndarray
    max_error: np.ndarray
    median_error: np.ndarray
    skipped: np.ndarray
    unresolved: np.ndarray
    n_entries: int
    dtype: str

    @property
    def best_eps(self) -> float:
        """The step with the smallest median error (NaN if no step checked an entry)."""
        if np.all(np.isnan(self.median_error)):
            return float("nan")
        return float(self.eps[np.nanargmin(self.median_error)])

    @property
    def min_error(self) -> float:
        """The smallest median error, that at `best_eps`."""
        return float(np.nanmin(self.median_error)) if np.isfinite(self.best_eps) else np.nan

    @property
    def unit_roundoff(self) -> float:
        """``u`` of `dtype`: half the machine epsilon, 2⁻⁵³ ≈ 1.1e-16 or 2⁻²⁴ ≈ 6.0e-8."""
        return float(np.finfo(self.dtype).eps) / 2

    @property
    def predicted_best(self) -> float:
        """``u^(1/3)``: the textbook optimal step, up to the factor ``(3|f|/|f‴|)^(1/3)``."""
        return self.unit_roundoff ** (1 / 3)

    def __str__(self) -> str:
        lines = [
            f"central differences in {self.dtype} against jax.grad in float64 "
            f"({self.n_entries} sampled entries)",
            "relative error |d − a| / max(|a|, floor)",
            f"{'eps':>9s}  {'median':>9s}  {'max':>9s}  skipped",
        ]
        best = self.best_eps
        for h, med, top, skip in zip(self.eps, self.median_error, self.max_error, self.skipped):
            mark = "  <- min" if h == best else ""
            lines.append(f"{h:9.2e}  {med:9.2e}  {top:9.2e}  {skip:7d}{mark}")
        lines.append(f"best eps {best:.2e}; u^(1/3) = {self.predicted_best:.2e}")
        return "\n".join(lines)


def eps_sweep(net: MLP, params: Params, x: jax.Array, y: jax.Array, *, loss: str,
              reg: RegLike = None, eps: Sequence[float] | np.ndarray | None = None,
              n_samples: int = 8, dtype: str | None = None,
              key: jax.Array | None = None) -> EpsSweep:  # fmt: skip
    """The error of central differences for each step ``ε``: the V curve on log-log axes.

    For each ``ε``, central differences ``d`` (`central_differences`) of the objective on the
    same sampled entries, evaluated in `dtype`, are compared with ``a``, ``jax.grad`` of the
    objective in float64 at the same point (`params`, `x`, float `y` and `reg` first cast to
    `dtype`, so both see one function). The error of an entry is ``|d − a| / max(|a|, floor)``
    with ``floor`` = 1e-3 × the leaf's largest ``|a|`` (`FLOOR`): the rounding error of ``d`` is
    absolute, about ``u·|f|/ε`` whatever ``a``, so an entry with a near-zero gradient would
    otherwise show a huge relative error that says nothing about the step.

    The error of ``d`` is about ``ε²·|f‴|/6 + u·|f|/ε`` (``u`` the unit roundoff of `dtype`):

    - right of the minimum truncation dominates: error ∝ ``ε²``, slope +2 on log-log axes;
    - left of it rounding dominates: error ∝ ``u·|f|/ε``, slope −1;
    - the bottom lies near ``ε ≈ (3u·|f|/|f‴|)^(1/3)``, ``u^(1/3)`` up to the function's scale
      (`EpsSweep.predicted_best`): 4.8e-6 in float64, 3.9e-3 in float32, with an error of the
      order of ``u^(2/3)`` there (2e-11 and 2e-5) times the function's scale. `gradcheck`'s
      default steps (`jaxmlp.gradcheck.DEFAULTS`) lie near the bottom: ``1e-6`` in float64 (on
      the left arm), ``1e-2`` in float32.

    Entries whose stencil crosses a kink at a step (`kink_signature`: ReLU, MAE, clipping, L1)
    are left out at that step and counted in ``skipped``; so are, in ``unresolved``, those whose
    step rounds away (``w + ε == w − ε`` in `dtype`). The entries are chosen as `gradcheck`
    chooses them: up to `n_samples` per leaf, with `key`. One compiled `value_and_kinks` per
    dtype serves every step.

    Args:
      net: the architecture.
      params: a tuple of ``{"W", "b"}`` dicts, one per layer.
      x: inputs, shape ``(batch, net.in_features)``.
      y: targets as for `jaxmlp.objective`.
      loss: the data loss's name.
      reg: a `Regularization`, a tuple with one per layer, or None.
      eps: the steps, a 1-D sequence of finite numbers ``> 0``; by default `EPS_GRIDS` of
        `dtype`: 23 steps from 1e-12 to 1e-1 in float64, 15 from 1e-7 to 1 in float32.
      n_samples: entries per leaf (every entry of a smaller leaf), at least 1.
      dtype: ``"float64"`` (default) or ``"float32"``, the dtype of the differences.
      key: PRNG key choosing the entries; ``jax.random.key(0)`` by default.

    Returns:
      An `EpsSweep`; ``print(sweep)`` shows the table, ``sweep.best_eps`` the best step.

    >>> from jaxmlp.finite_differences import eps_sweep
    >>> net = MLP((3, 5, 1), ("tanh", "linear"))
    >>> params = init_params(jax.random.key(0), net)
    >>> x, y = jax.random.normal(jax.random.key(1), (8, 3)), jnp.ones((8, 1))
    >>> sweep = eps_sweep(net, params, x, y, loss="mse", n_samples=4)
    >>> 1e-7 < sweep.best_eps < 1e-4, sweep.min_error < 1e-8
    (True, True)
    >>> print(sweep)  # doctest: +ELLIPSIS
    central differences in float64 against jax.grad in float64 (13 sampled entries)
    relative error |d − a| / max(|a|, floor)
          eps     median        max  skipped
     1.00e-12 ...
    ...  <- min
    ...
    best eps ...; u^(1/3) = 4.81e-06
    """
    check_problem(net, x, y, loss, params=params)
    per_layer(reg, net.n_layers)  # validates reg as objective does
    check_count("n_samples", n_samples, 1)
    dtype = dtype_name(dtype)
    steps = EPS_GRIDS[dtype] if eps is None else _check_eps(eps)
    rng = np.random.default_rng(seed_of(jax.random.key(0) if key is None else key))
    with jax.enable_x64(True):
        problem, params_d, sampled = _sample(net, params, x, y, loss, reg, dtype, rng, n_samples)
        rows = [_errors(problem, params_d, sampled, float(h)) for h in steps]
    max_error, median_error, skipped, unresolved = (np.array(c) for c in zip(*rows))
    n_entries = sum(len(s[1]) for s in sampled)
    return EpsSweep(steps, max_error, median_error, skipped, unresolved, n_entries, dtype)


def _sample(net: MLP, params: Params, x, y, loss: str, reg, dtype: str, rng, n_samples: int):
    """Cast the problem to `dtype`; sample entries per leaf; their float64 gradient and floor.

    Returns ``(problem, params_d, sampled)`` with `problem` as `central_differences` takes it
    and, per leaf, ``(path, index, a, floor)``: ``a`` the exact gradient at the entries.
    """
    # The float64 reference is computed from the cast values: both see one function at one point.
    cast = cast_problem((net, params, x, y, loss, reg), dtype)
    _, params64, x64, y64, _, reg64 = cast_problem(cast, "float64")
    _, params_d, x_d, y_d, _, reg_d = cast
    auto = jax.tree.map(np.asarray, _grad(net, params64, x64, y64, loss, reg64))
    scale = max(float(np.max(np.abs(g))) for g in jax.tree.leaves(auto))
    sampled = []
    for path, leaf in jax.tree_util.tree_leaves_with_path(params_d):  # W_0, b_0, W_1, …
        index = np.sort(rng.choice(leaf.size, min(n_samples, leaf.size), replace=False))
        a = auto[path[0].idx][path[1].key].ravel()
        top = float(np.max(np.abs(a))) or scale or 1.0  # an all-zero leaf: the gradient's scale
        sampled.append((path, index, a[index], FLOOR * top))
    return (net, x_d, y_d, loss, reg_d), params_d, sampled


def _errors(problem: tuple, params: Params, sampled: list, h: float) -> tuple:
    """At step `h`: the max and median error over the checked entries, skipped, unresolved."""
    errors, skipped, unresolved = [], 0, 0
    for path, index, a, floor in sampled:
        w = np.asarray(params[path[0].idx][path[1].key]).ravel()[index]
        resolved = (w + h) != (w - h)  # in the leaf's dtype, as `central_differences` steps
        unresolved += int((~resolved).sum())
        if not resolved.any():
            continue
        d, ok = central_differences(problem, params, path, index[resolved], h)
        a_ok = a[resolved][ok]
        errors.append(np.abs(d[ok] - a_ok) / np.maximum(np.abs(a_ok), floor))
        skipped += int((~ok).sum())
    e = np.concatenate(errors) if errors else np.zeros(0)
    if not e.size:
        return np.nan, np.nan, skipped, unresolved
    return float(np.max(e)), float(np.median(e)), skipped, unresolved


@functools.partial(jax.jit, static_argnames=("net", "loss"))
def _grad(net: MLP, params: Params, x: jax.Array, y: jax.Array, loss: str, reg) -> Params:
    """``jax.grad`` of the objective, compiled."""
    return jax.grad(lambda p: objective_and_output(net, p, x, y, loss=loss, reg=reg)[0])(params)


def dtype_name(dtype: Any) -> str:
    """The dtype's name, ``"float64"`` for None; ValueError unless float32 or float64."""
    if dtype is None:
        return "float64"
    try:
        name = np.dtype(dtype).name
    except TypeError:
        name = dtype
    check_choice("dtype", name, ("float32", "float64"))
    return name


def _check_eps(eps: Any) -> np.ndarray:
    """`eps` as a float64 array; ValueError unless a non-empty 1-D sequence of finite ε > 0."""
    try:
        steps = np.asarray(eps, dtype=np.float64)
    except (TypeError, ValueError):
        steps = None
    if steps is None or steps.ndim != 1 or not steps.size:
        raise ValueError(f"eps must be a 1-D sequence of finite numbers > 0; got {eps!r}")
    bad = ~(np.isfinite(steps) & (steps > 0))
    if bad.any():
        raise ValueError(
            f"eps must be a 1-D sequence of finite numbers > 0; got {float(steps[bad][0])!r} at "
            f"index {int(np.argmax(bad))}"
        )
    return steps


def seed_of(key: Any) -> np.ndarray:
    """A NumPy seed from a JAX PRNG key (typed or raw ``uint32[2]``), checked.

    `jaxmlp.gradcheck` and `eps_sweep` sample their entries with ``np.random.default_rng`` of it.
    """
    check_key(key)
    if jnp.issubdtype(key.dtype, jax.dtypes.prng_key):
        key = jax.random.key_data(key)
    return np.asarray(key).ravel()


def cast_problem(problem: tuple, dtype: str) -> tuple:
    """``(net, params, x, y, loss, reg)`` with params, x, float targets and strengths in `dtype`.

    Cast on the host, then put on the device: no eager device op to compile for each new shape.
    Class labels stay integers; reg keeps its form (None, one Regularization, or one per layer)
    for a user's backward. `jaxmlp.gradcheck` and `eps_sweep` cast their problems with it.
    """
    net, params, x, y, loss, reg = problem
    host = jax.tree.map(lambda a: np.asarray(a, dtype), (params, x, reg))
    params, x, reg = jax.device_put(host)
    y = jax.device_put(np.asarray(y) if np.ndim(y) == 1 else np.asarray(y, dtype))
    return net, params, x, y, loss, reg
