"""Gradient verification: a backward pass against autodiff and finite differences, diagnosed.

`gradcheck` computes three gradients of `jaxmlp.objective`:

- the *manual* one, from `jaxmlp.backprop.backprop` or a backward function of your own (in
  jaxmlp's layout or the seeds', `jaxmlp.layouts`);
- *autodiff*, ``jax.grad`` of the objective (and ``dL/dz`` of every layer);
- *finite differences*, ``(f(w + ε) − f(w − ε)) / 2ε`` on a random sample of entries per leaf,

and compares them leaf by leaf (each layer's ``W`` and ``b``) in a `GradcheckReport`. When the
manual gradient is wrong, `jaxmlp.diagnosis` says what and where: ``report.findings`` (a wrong
scale, a penalty term, a transpose, an activation's derivative, …) and ``report.source``, the
leaf where the error starts; the leaves it explains below are marked ``"propagated"``. A
backward that also returns its layer errors ``(grads, deltas)`` is checked step by step.

It runs in float64 by default (``dtype="float64"``), with ``jax.enable_x64`` inside the call
only; ``dtype="float32"`` checks in single precision, with tolerances that follow the dtype
(`DEFAULTS`). Finite differences (`jaxmlp.finite_differences`) are meaningless across a kink,
so a sampled entry is skipped (and counted) when its stencil ``[w − ε, w + ε]`` holds one. Manual
and autodiff gradients follow the same conventions at the kinks (``relu'(0) = 0``,
``sign(0) = +1``, …), so they are compared on every entry, kinks included.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import html
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from jaxmlp import activations as _act
from jaxmlp import diagnosis, layouts
from jaxmlp import losses as _losses
from jaxmlp._checks import check_choice, check_count, check_problem
from jaxmlp.backprop import backprop, backward
from jaxmlp.diagnosis import Finding, StepCheck
from jaxmlp.finite_differences import cast_problem, central_differences, dtype_name, seed_of
from jaxmlp.model import MLP, Params, intermediates
from jaxmlp.objective import objective_and_output, objective_of
from jaxmlp.regularization import RegLike, penalty_grad, per_layer


class Tolerances(NamedTuple):
    """A dtype's default step and tolerances (see `DEFAULTS`)."""

    eps: float
    rtol: float
    atol: float
    fd_rtol: float
    fd_atol: float


DEFAULTS = {
    # Manual and autodiff agree to rounding: ~1e-16 relative, larger where terms cancel.
    # Central differences err by ~ε²·|f‴|/6 + u·|f|/ε: ~1e-12 + 1e-10 at ε = 1e-6.
    "float64": Tolerances(eps=1e-6, rtol=1e-7, atol=1e-9, fd_rtol=1e-5, fd_atol=1e-7),
    # u = 6e-8: manual and autodiff differ by summation order (~1e-6 relative); central
    # differences near their best step ε ≈ u^(1/3)·scale ≈ 1e-2 err by ~1e-4 of |f|.
    "float32": Tolerances(eps=1e-2, rtol=1e-4, atol=1e-6, fd_rtol=1e-2, fd_atol=1e-3),
}
"""Default finite-difference step and tolerances per dtype, used for each one not given."""

RTOL, ATOL, FD_RTOL, FD_ATOL = (DEFAULTS["float64"][i] for i in (1, 2, 3, 4))
EPS = DEFAULTS["float64"].eps
N_SAMPLES = 16
NOISE = 4.0  # the noise floor: NOISE·u·|f|/ε, the rounding error of a central difference

Backward = Callable[..., Any]


class FDSample(NamedTuple):
    """The finite differences of one leaf.

    ``index``: the flat indices of the sampled entries; ``values``: their central differences;
    ``kink_free``: which were compared (the others' stencils hold a kink).
    """

    layer: int
    leaf: str
    index: np.ndarray  # type: ignore[assignment]  # the field shadows tuple.index; it is public
    values: np.ndarray
    kink_free: np.ndarray


@dataclasses.dataclass(frozen=True)
class LeafCheck:
    """One row of a `GradcheckReport`: the comparison for one leaf of one layer.

    Errors are maxima over the leaf: ``abs = |g − r|``, ``rel = |g − r| / max(|g|, |r|)`` (0
    where both are 0); the finite-difference ones over the checked entries only (None if none
    was checked). A NaN in a gradient shows as a NaN error and fails the leaf; a leaf returned
    transposed is compared transposed back.

    Attributes:
      layer: index of the layer, from 0.
      leaf: ``"W"`` or ``"b"``.
      shape: the leaf's shape.
      autodiff_abs, autodiff_rel: manual against autodiff, over every entry.
      worst: index of the entry where manual and autodiff differ most.
      worst_manual, worst_autodiff: the two values there.
      ratio: the median of manual/autodiff when the leaf is close to a constant multiple of
        autodiff (within 0.1%), else None.
      transposed: whether the manual leaf, transposed, equals autodiff (a transposed shape, or a
        square ``W``).
      below_noise: every entry of both gradients lies below the finite-difference noise floor
        (`GradcheckReport.noise_floor`): finite differences cannot confirm this leaf.
      fd_checked: entries compared with finite differences.
      fd_skipped: sampled entries left out because they sit near a kink.
      fd_abs, fd_rel: manual against finite differences.
      autodiff_fd_abs, autodiff_fd_rel: autodiff against finite differences (checks the
        reference itself).
      passed: manual within tolerance of autodiff on every entry and of finite differences on
        every checked entry.
    """

    layer: int
    leaf: str
    shape: tuple[int, ...]
    autodiff_abs: float
    autodiff_rel: float
    worst: tuple[int, ...]
    fd_checked: int
    fd_skipped: int
    fd_abs: float | None
    fd_rel: float | None
    autodiff_fd_abs: float | None
    autodiff_fd_rel: float | None
    passed: bool
    worst_manual: float = float("nan")
    worst_autodiff: float = float("nan")
    ratio: float | None = None
    transposed: bool = False
    below_noise: bool = False


@dataclasses.dataclass(frozen=True)
class GradcheckReport:
    """What `gradcheck` found: one `LeafCheck` per leaf, the findings, the settings, the verdict.

    ``str(report)`` is a fixed-width table with the findings under it, one line each; in a
    notebook the report displays as an HTML table with failing rows marked.

    Attributes:
      rows: one `LeafCheck` per layer and leaf, in the order of ``params``.
      title: the net, the loss and the backward function checked.
      rtol, atol: tolerance of manual against autodiff: ``|m − a| <= atol + rtol·|a|``.
      fd_rtol, fd_atol: tolerance of manual against finite differences, likewise.
      eps: the finite-difference step.
      n_samples: entries sampled per leaf for finite differences.
      dtype: the precision the check ran in, ``"float64"`` or ``"float32"``.
      findings: what is wrong, a `jaxmlp.diagnosis.Finding` per wrong leaf or layer error, top
        layer first; empty when the check passed.
      steps: when the backward returned its layer errors, one `jaxmlp.diagnosis.StepCheck` per
        layer (the seeds' table for this net); else empty.
      autodiff: autodiff's gradient, shaped like params (NumPy arrays).
      finite_differences: one `FDSample` per leaf.
      conversion: the layout conversion applied to the backward's result, or None.
      noise_floor: ``4·u·|f|/ε``, the rounding error of a central difference.
    """

    rows: tuple[LeafCheck, ...]
    title: str
    rtol: float
    atol: float
    fd_rtol: float
    fd_atol: float
    eps: float
    n_samples: int
    dtype: str = "float64"
    findings: tuple[Finding, ...] = ()
    steps: tuple[StepCheck, ...] = ()
    autodiff: Any = dataclasses.field(default=None, compare=False)
    finite_differences: tuple[FDSample, ...] = dataclasses.field(default=(), compare=False)
    conversion: str | None = None
    noise_floor: float = 0.0

    @property
    def passed(self) -> bool:
        """True when every leaf passed and nothing was found wrong (layer errors included)."""
        return all(row.passed for row in self.rows) and not self.findings

    @property
    def failures(self) -> tuple[LeafCheck, ...]:
        """The rows that did not pass."""
        return tuple(row for row in self.rows if not row.passed)

    @property
    def source(self) -> tuple[int, str] | None:
        """``(layer, leaf)`` where the error starts: the first finding not "propagated"."""
        first = next((f for f in self.findings if f.kind != "propagated"), None)
        return None if first is None else (first.layer, first.leaf)

    def _verdict(self) -> str:
        failed = len(self.failures) or len(self.findings)
        word = "PASSED" if self.passed else f"FAILED ({failed} of {len(self.rows)})"
        text = (
            f"{word} in {self.dtype}: manual vs autodiff within rtol={self.rtol:g}, "
            f"atol={self.atol:g}; vs finite differences (eps={self.eps:g}, up to "
            f"{self.n_samples} entries per leaf) within rtol={self.fd_rtol:g}, "
            f"atol={self.fd_atol:g}"
        )
        if self.dtype == "float32":
            text += (f"\nfloat32 resolves differences above rtol={self.rtol:g} only: a bug smaller "
                     "than that (a ×1.0001 factor) needs dtype='float64'")  # fmt: skip
        if any(r.below_noise for r in self.rows):
            text += (f"\n* every entry below the finite-difference noise floor "
                     f"{self.noise_floor:.1e}: only autodiff confirms these leaves")  # fmt: skip
        return text

    def _notes(self) -> list[str]:
        """The conversion, the step table and the findings, as text lines."""
        lines = [] if self.conversion is None else [self.conversion, ""]
        if self.steps:
            lines += ["step by step (your layer errors against autodiff's dL/dz):"]
            lines += ["  " + _step_line(s) for s in self.steps] + [""]
        if self.findings:
            source = self.source
            assert source is not None  # a "propagated" finding follows the finding it comes from
            lines += ["findings (top layer first):"] + [f"  {f.message}" for f in self.findings]
            lines += [f"  the error starts at layer {source[0]} {source[1]}"] + [""]
        return lines

    def __str__(self) -> str:
        w = max([5] + [len(str(r.shape)) for r in self.rows])
        groups = ("manual − autodiff", "manual − findiff", "autodiff − findiff")
        # The group titles span the error columns, past the layer, leaf and shape columns.
        head = " " * (w + 14) + "   ".join(f"{g:^20s}" for g in groups) + "  findiff"
        names = ("layer", "leaf", "shape", *("max abs", "max rel") * 3, "n/skip", "result")
        lines = [self.title, "", head, _ROW.format(*names, w=w).rstrip()]
        for r in self.rows:
            lines += [_ROW.format(*_cells(r), w=w).rstrip()] + ([] if r.passed else [_extra(r)])
        return "\n".join([*lines, "", *self._notes(), self._verdict()])

    def _repr_html_(self) -> str:
        heads = ["layer", "leaf", "shape", "manual−autodiff abs", "rel", "manual−findiff abs"]
        heads += ["rel", "autodiff−findiff abs", "rel", "n/skip", "result", "diagnosis"]
        out = [f"<p><b>{html.escape(self.title)}</b></p>", "<table>", "<tr>"]
        out += [f"<th>{h}</th>" for h in heads] + ["</tr>"]
        for r in self.rows:
            style = "" if r.passed else ' style="background:#fdd"'
            cells = [*_cells(r), "" if r.passed else _extra(r).strip()]
            out.append(f"<tr{style}>" + "".join(f"<td>{html.escape(c)}</td>" for c in cells))
            out.append("</tr>")
        notes = "<br>".join(html.escape(line) for line in self._notes() if line)
        out += ["</table>", f"<p>{notes}</p>" if notes else ""]
        return "\n".join([*out, f"<p>{html.escape(self._verdict())}</p>"])


# One row of the text table: layer, leaf, shape (`w` wide), three pairs of errors, n/skip, result.
_ROW = "{:>5} {:4s}  {:{w}s}  {:>9s}  {:>9s}   {:>9s}  {:>9s}   {:>9s}  {:>9s}  {:>7s}  {:6s}"


def _cells(r: LeafCheck) -> list[str]:
    """A report row's cells as text, for the text and the HTML table alike."""
    errors: tuple[float | None, ...] = (r.autodiff_abs, r.autodiff_rel, r.fd_abs, r.fd_rel)
    errors += (r.autodiff_fd_abs, r.autodiff_fd_rel)
    result = ("ok" if r.passed else "FAIL") + ("*" if r.below_noise else "")
    numbers = ["—" if v is None else f"{v:.2e}" for v in errors]
    return [str(r.layer), r.leaf, str(r.shape), *numbers, f"{r.fd_checked}/{r.fd_skipped}", result]


def _extra(r: LeafCheck) -> str:
    """The line under a failing row: the ratio, the transposed match and the worst entry."""
    ratio = "—" if r.ratio is None else f"{r.ratio:.4g}"
    index = ", ".join(map(str, r.worst))
    return (f"      ratio {ratio}; transposed: {'yes' if r.transposed else 'no'}; worst "
            f"[{index}]: manual {r.worst_manual:.6g}, autodiff {r.worst_autodiff:.6g}")  # fmt: skip


def _step_line(s: StepCheck) -> str:
    """One line of the step table: the seeds' names, the shape, the error, the first wrong row."""
    hi, ho, err = s.names
    first = "" if s.first_wrong is None else f", first wrong row {s.first_wrong}"
    return (f"layer {s.layer}: {hi} → {ho}, {err} {s.shape}: max |Δ| {s.max_abs:.2e} "
            f"{s.status}{first}")  # fmt: skip


def gradcheck(net: MLP, params: Params, x: jax.Array, y: jax.Array, *, loss: str,
              reg: RegLike = None, backward: Backward | None = None, layout: str = "jaxmlp",
              dtype: Any = None, n_samples: int = N_SAMPLES, eps: float | None = None,
              rtol: float | None = None, atol: float | None = None, fd_rtol: float | None = None,
              fd_atol: float | None = None,
              key: jax.Array | None = None) -> GradcheckReport:  # fmt: skip
    """Check a backward pass against ``jax.grad`` and finite differences, and diagnose it.

    For every leaf ``g`` of the manual gradient, with ``a`` from autodiff and ``d`` from central
    differences ``d_i = (f(w + ε·e_i) − f(w − ε·e_i)) / 2ε`` of the objective ``f``, a leaf
    passes when, entry by entry::

        |g − a| <= atol + rtol·|a|          (every entry)
        |g − d| <= fd_atol + fd_rtol·|d|    (the sampled entries away from kinks)

    Settings left None take the dtype's `DEFAULTS`: in float64 ``eps=1e-6, rtol=1e-7,
    atol=1e-9, fd_rtol=1e-5, fd_atol=1e-7``; in float32 ``eps=1e-2, rtol=1e-4, atol=1e-6,
    fd_rtol=1e-2, fd_atol=1e-3``. ``n_samples=16`` entries per leaf (every entry of a smaller
    leaf). When a leaf fails, ``report.findings`` says why (`jaxmlp.diagnosis`).

    `params`, `x`, float targets and the regularization strengths are cast to `dtype` on the
    host (float64 runs inside ``jax.enable_x64`` for this call only); a `backward` function
    receives them so, with `reg` in the form it was given (layout "jaxmlp").

    Args:
      net: the architecture.
      params: a tuple of ``{"W", "b"}`` dicts, one per layer.
      x: inputs, shape ``(batch, net.in_features)``.
      y: targets as for `jaxmlp.objective`.
      loss: the data loss's name.
      reg: a `Regularization`, a tuple with one per layer, or None.
      backward: the backward pass to check, ``backward(net, params, x, y, *, loss, reg)``,
        returning grads shaped like `params` or ``(grads, deltas)`` with ``deltas[l] = dL/dz_l``
        of shape ``(batch, fan_out)``; by default `jaxmlp.backprop.backprop` (deltas included).
      layout: ``"jaxmlp"``, or ``"seeds"`` for a backward written literally from the seed
        tables: column vectors, ``W`` of shape ``(fan_out, fan_in)``, update directions of
        ``½ΣΣ(Y − Ŷ)²``; converted as `jaxmlp.layouts` describes, the report says how.
      dtype: ``"float64"`` (default) or ``"float32"``.
      n_samples: entries per leaf for finite differences (0: none).
      eps: finite-difference step ``ε > 0``.
      rtol: relative tolerance of the manual gradient against autodiff.
      atol: absolute tolerance of the manual gradient against autodiff.
      fd_rtol: relative tolerance of the manual gradient against finite differences.
      fd_atol: absolute tolerance of the manual gradient against finite differences.
      key: PRNG key choosing the sampled entries; ``jax.random.key(0)`` by default.

    Returns:
      A `GradcheckReport`: ``report.passed``, ``report.findings``, ``report.source``;
      ``print(report)`` shows the table and the findings.

    Raises:
      jaxmlp.layouts.BackwardError: `backward` raised (chained: its traceback is kept).

    >>> from jaxmlp.gradcheck import gradcheck
    >>> net = MLP((3, 5, 2), ("tanh", "sigmoid"))
    >>> params = init_params(jax.random.key(0), net)
    >>> x, y = jax.random.normal(jax.random.key(1), (8, 3)), jnp.ones((8, 2))
    >>> report = gradcheck(net, params, x, y, loss="binary_crossentropy",
    ...                    reg=Regularization(l2w=1e-3))
    >>> report.passed, report.source, [(r.layer, r.leaf, r.fd_checked) for r in report.rows]
    (True, None, [(0, 'W', 15), (0, 'b', 5), (1, 'W', 10), (1, 'b', 2)])
    >>> def doubled(net, params, x, y, *, loss, reg):  # a classic: the 2 of (ŷ − y)² twice
    ...     return jax.tree.map(lambda g: 2 * g, backprop(net, params, x, y, loss=loss, reg=reg))
    >>> bad = gradcheck(net, params, x, y, loss="binary_crossentropy", backward=doubled)
    >>> bad.source, bad.findings[0].kind, round(bad.findings[0].factor, 9)  # (fitted: ±1 ulp)
    ((1, 'W'), 'scale', 2.0)
    >>> print(bad.findings[0])  # doctest: +ELLIPSIS
    layer 1 W: 2× the reference, from the layer's error dL/dz — the L2 derivative is 2λw, ...
    """
    check_problem(net, x, y, loss, params=params)
    per_layer(reg, net.n_layers)  # validates reg as objective does
    dtype = dtype_name(dtype)
    given = {"eps": eps, "rtol": rtol, "atol": atol, "fd_rtol": fd_rtol, "fd_atol": fd_atol}
    settings = {k: DEFAULTS[dtype]._asdict()[k] if v is None else v for k, v in given.items()}
    check_settings(n_samples=n_samples, **settings)
    _check_backward(backward, layout)
    rng = np.random.default_rng(seed_of(jax.random.key(0) if key is None else key))
    title = (
        f"{net!r}, loss={loss!r}, reg={reg!r}\n"
        f"backward: {_name(backward or backprop)}  ({dtype}; finite differences on sampled "
        "entries)"
    )
    # float32 runs keep the caller's x64 setting.
    with jax.enable_x64(True) if dtype == "float64" else contextlib.nullcontext():
        problem = cast_problem((net, params, x, y, loss, reg), dtype)
        computed = _computed(problem, backward, layout, rng, n_samples, settings["eps"])
        return _report(computed, title, dtype, settings, n_samples)  # diagnosis in `dtype` too


class _Computed(NamedTuple):
    manual: tuple
    deltas: tuple | None
    conversion: str | None
    reference: diagnosis.Problem
    samples: tuple[FDSample, ...]
    value: float


def _computed(problem: tuple, backward: Backward | None, layout: str, rng, n_samples: int,
              eps: float) -> _Computed:  # fmt: skip
    """Manual, autodiff and finite differences of the cast problem, as NumPy arrays."""
    net, params, x, y, loss, reg = problem
    ref = _host(_reference(net, params, x, y, loss, reg))
    if backward is None:
        grads, deltas = _host(_backprop(net, params, x, y, loss, reg))
        returned = layouts.Returned(grads, deltas, None)
    else:
        returned = layouts.call(backward, layout, problem)
    samples = []
    for path, leaf in jax.tree_util.tree_leaves_with_path(params):  # W_0, b_0, W_1, …
        index = np.sort(rng.choice(leaf.size, min(n_samples, leaf.size), replace=False))
        d, ok = central_differences((net, x, y, loss, reg), params, path, index, eps)
        samples.append(FDSample(path[0].idx, path[1].key, index, d, ok))
    tol = {"rtol": 0.0, "atol": 0.0}  # set by _report
    regs = tuple(jax.tree.map(float, r) for r in per_layer(_host(reg), net.n_layers))
    host_params = _host(params)
    seeds = None
    if layout == "seeds":  # the seeds' S: their unscaled penalty, their terms in messages
        seeds = layouts.seeds_scale(loss, x.shape[0], net.out_features)[0]
    penalty = ref["penalty_grad"]
    reference = diagnosis.Problem(net, host_params, ref["zs"], ref["acts"], ref["deltas"],
                                  ref["grads"], ref["output_grad"], loss, regs, penalty, **tol,
                                  seeds_scale=seeds)  # fmt: skip
    return _Computed(returned.grads, returned.deltas, returned.conversion, reference,
                     tuple(samples), float(ref["value"]))  # fmt: skip


def _report(c: _Computed, title: str, dtype: str, settings: dict, n_samples: int):
    """The `GradcheckReport` of the computed gradients."""
    u = float(np.finfo(dtype).eps) / 2
    floor = NOISE * u * max(abs(c.value), u) / settings["eps"]
    reference = c.reference._replace(rtol=settings["rtol"], atol=settings["atol"])
    rows = tuple(_leaf_check(c.manual, reference, s, settings, floor) for s in c.samples)
    findings, steps = diagnosis.diagnose(reference, c.manual, c.deltas)
    if any(not r.passed for r in rows) and not findings:  # finite differences disagree alone
        findings = tuple(_fd_finding(r) for r in rows if not r.passed)
    title += "" if c.conversion is None else "  (seeds' layout, converted)"
    return GradcheckReport(
        rows, title, dtype=dtype, n_samples=int(n_samples), findings=findings, steps=steps,
        autodiff=reference.autodiff, finite_differences=c.samples, conversion=c.conversion,
        noise_floor=floor, **{k: float(v) for k, v in settings.items()},
    )  # fmt: skip


def _fd_finding(r: LeafCheck) -> Finding:
    """A finding for a leaf that matches autodiff but not finite differences."""
    return Finding(
        r.layer,
        r.leaf,
        "unexplained",
        None,
        f"layer {r.layer} {r.leaf}: matches "
        f"autodiff but not finite differences (max rel {r.fd_rel:.2e}): the "
        "objective itself, or eps, is off — try jaxmlp.finite_differences.eps_sweep",
    )


def _leaf_check(manual: tuple, ref: diagnosis.Problem, s: FDSample, settings: dict,
                floor: float) -> LeafCheck:  # fmt: skip
    """One row of the report: manual against autodiff everywhere, against `s` where sampled."""
    a = ref.autodiff[s.layer][s.leaf]
    m = np.asarray(manual[s.layer][s.leaf], a.dtype)
    transposed = m.ndim == 2 and m.T.shape == a.shape and diagnosis.close(m.T, a, ref)
    shaped = m.shape == a.shape
    if not shaped:  # compared transposed back, or not at all (another layer's shape); fails
        m = m.T if m.T.shape == a.shape else np.full(a.shape, np.nan)
    ok = s.kink_free
    d, m_s, a_s = s.values[ok], m.ravel()[s.index][ok], a.ravel()[s.index][ok]
    diff = np.abs(np.nan_to_num(m - a, nan=np.inf))
    passed = np.all(np.abs(m - a) <= settings["atol"] + settings["rtol"] * np.abs(a))
    fd_ok = np.abs(m_s - d) <= settings["fd_atol"] + settings["fd_rtol"] * np.abs(d)
    worst = np.unravel_index(int(np.argmax(diff)), m.shape)
    autodiff_abs, autodiff_rel = _max(np.abs(m - a)), _max_rel(m, a)
    assert autodiff_abs is not None and autodiff_rel is not None  # a leaf has an entry or more
    return LeafCheck(
        layer=s.layer, leaf=s.leaf, shape=tuple(a.shape),
        autodiff_abs=autodiff_abs, autodiff_rel=autodiff_rel,
        worst=tuple(int(i) for i in worst), worst_manual=float(m[worst]),
        worst_autodiff=float(a[worst]), ratio=diagnosis.median_ratio(m, a), transposed=transposed,
        below_noise=bool(np.max(np.abs(a), initial=0) < floor > np.max(np.abs(m), initial=0)),
        fd_checked=int(ok.sum()), fd_skipped=int((~ok).sum()),
        fd_abs=_max(np.abs(m_s - d)), fd_rel=_max_rel(m_s, d),
        autodiff_fd_abs=_max(np.abs(a_s - d)), autodiff_fd_rel=_max_rel(a_s, d),
        passed=bool(shaped and passed and np.all(fd_ok)),
    )  # fmt: skip


@functools.partial(jax.jit, static_argnames=("net", "loss"))
def _reference(net: MLP, params: Params, x: jax.Array, y: jax.Array, loss: str, reg) -> dict:
    """Autodiff's side, compiled.

    The objective, ``jax.grad``, every layer's ``dL/dz``, the forward table (row form),
    ``dL/da`` of the output layer (None for a fused loss) and the penalty's own gradient.
    """
    value = objective_and_output(net, params, x, y, loss=loss, reg=reg)[0]
    grads = jax.grad(lambda p: objective_and_output(net, p, x, y, loss=loss, reg=reg)[0])(params)

    def with_offsets(offsets: list) -> tuple:
        """The objective with ``offsets[l]`` added to ``z_l``: its gradient is ``dL/dz_l``."""
        a, zs, acts = x, [], [x]
        for layer, name, off in zip(params, net.activations, offsets):
            zs.append(a @ layer["W"] + layer["b"][None, :] + off)
            a = _act.get(name).fn(zs[-1])
            acts.append(a)
        return objective_of(net, params, zs, acts, y, loss=loss, reg=reg)[0], (zs, acts)

    offsets = [jnp.zeros((x.shape[0], n), x.dtype) for n in net.sizes[1:]]
    deltas, (zs, acts) = jax.grad(with_offsets, has_aux=True)(offsets)
    out = net.output_activation
    output_grad = None
    if not _losses.fused(loss, out):
        output_grad = jax.grad(lambda a: _losses.data_loss(loss, out, zs[-1], a, y))(acts[-1])
    return {"value": value, "grads": grads, "deltas": deltas, "zs": zs, "acts": acts,
            "output_grad": output_grad, "penalty_grad": penalty_grad(params, reg)}  # fmt: skip


@functools.partial(jax.jit, static_argnames=("net", "loss"))
def _backprop(net: MLP, params: Params, x: jax.Array, y: jax.Array, loss: str, reg) -> tuple:
    """`jaxmlp.backprop` with its layer errors, compiled: ``(grads, deltas)``."""
    zs, acts = intermediates(net, params, x)
    return backward(net, params, zs, acts, y, loss=loss, reg=reg, return_deltas=True)


def _host(tree: Any) -> Any:
    """`tree` with NumPy arrays for leaves (None kept)."""
    return jax.tree.map(np.asarray, tree)


def _check_backward(backward: Any, layout: str) -> None:
    """Raise unless `backward` is None or a function, and `layout` fits it."""
    check_choice("layout", layout, layouts.LAYOUTS)
    if backward is not None and not callable(backward):
        raise TypeError(
            "backward must be a function backward(net, params, x, y, *, loss, reg) -> grads; "
            f"got {type(backward).__name__}"
        )
    if layout == "seeds" and backward is None:
        raise ValueError("layout='seeds' checks a backward function of your own: pass backward=")


def _max(v: np.ndarray) -> float | None:
    return float(np.max(v)) if v.size else None


def _max_rel(g: np.ndarray, r: np.ndarray) -> float | None:
    scale = np.maximum(np.abs(g), np.abs(r))
    return _max(np.abs(g - r) / np.where(scale > 0, scale, 1.0))


def check_settings(*, n_samples: Any, eps: Any, rtol: Any, atol: Any, fd_rtol: Any,
                   fd_atol: Any) -> None:  # fmt: skip
    """Raise ValueError unless `gradcheck`'s sampling and tolerance settings are valid."""
    check_count("n_samples", n_samples)
    if not (isinstance(eps, (int, float)) and eps > 0 and np.isfinite(eps)):
        raise ValueError(f"eps must be a finite number > 0; got {eps!r}")
    for name, tol in {"rtol": rtol, "atol": atol, "fd_rtol": fd_rtol, "fd_atol": fd_atol}.items():
        if not (isinstance(tol, (int, float)) and tol >= 0 and np.isfinite(tol)):
            raise ValueError(f"{name} must be a finite number >= 0; got {tol!r}")


def _name(fn: Any) -> str:
    """``module.qualname`` of a function (a partial's function, with ``partial``)."""
    if isinstance(fn, functools.partial):
        return f"partial({_name(fn.func)}, …)"
    module, name = getattr(fn, "__module__", None), getattr(fn, "__qualname__", None)
    return f"{module}.{name}" if module and name else repr(fn)
