"""Optimizer verification: your optimizer against a jaxmlp one, step by step, on one stream.

`optimcheck` runs a candidate optimizer (yours) and a reference (`jaxmlp.optim.sgd`, `adam`,
`adamw`, `rmsprop` or `adagrad`) from the same params over the same gradients, in float64, and
compares the parameters after every step, leaf by leaf, in an `OptimcheckReport`. When they
differ, it runs the known variants of the reference (the usual ways a transcription of the same
equations goes astray) over the same stream and names the one the candidate follows at every
step.

The variants, and how the reference's kind and flags are read, are in
`jaxmlp.optim_variants`.
"""

from __future__ import annotations

import dataclasses
import html
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from jaxmlp import optim, optim_variants
from jaxmlp._checks import check_array, check_count, check_key, check_range, check_tree_matches
from jaxmlp.optim_variants import (
    TITLES,
    Reference,
    Step,
    Variant,
    pair_step,
    reference_of,
)

RTOL, ATOL = 1e-6, 1e-9
STEPS = 20
SHOWN_STEPS = 3  # steps the table shows: around the first departure, or the last


class CandidateError(ValueError):
    """The candidate returned something that is not what `optimcheck` documents."""


@dataclasses.dataclass(frozen=True)
class StepCheck:
    """One row of an `OptimcheckReport`: one leaf of the parameters after one step.

    ``abs = |c − r|`` and ``rel = |c − r| / s`` are maxima over the leaf, with ``s`` the distance
    the reference has travelled along the entry so far: the sum of its steps' sizes (0/0 is 0).

    Attributes:
      step: the step, from 0.
      leaf: the leaf's path in params, such as ``[0]['W']``.
      shape: the leaf's shape.
      max_abs, max_rel: the largest differences.
      index: the entry that differs most (of those out of tolerance, if any).
      candidate, reference: the two values at `index`.
      passed: every entry within ``atol + rtol·s``.
    """

    step: int
    leaf: str
    shape: tuple[int, ...]
    max_abs: float
    max_rel: float
    index: tuple[int, ...]
    candidate: float
    reference: float
    passed: bool


@dataclasses.dataclass(frozen=True)
class VariantCheck:
    """How far the candidate follows one variant of the reference.

    Attributes:
      name, message: the variant (see the module's table).
      follows: steps, from the first, on which the candidate agrees with the variant.
      coincides: the variant agrees with the reference at every step of this stream.
    """

    name: str
    message: str
    follows: int
    coincides: bool


@dataclasses.dataclass(frozen=True)
class OptimcheckReport:
    """What `optimcheck` found: one `StepCheck` per step and leaf, the variants, the verdict.

    ``str(report)`` is a fixed-width table of the steps around the first departure; in a
    notebook the report displays as an HTML table with failing rows marked.

    Attributes:
      rows: one `StepCheck` per step and leaf, step by step, leaves in the order of params.
      title: the candidate, the reference and the stream.
      steps: the steps taken.
      rtol, atol: the tolerance, ``|c − r| <= atol + rtol·s`` entry by entry (see `StepCheck`).
      variants: the variants tried (none when the candidate passed).
      match: ``"reference"`` when the candidate passed, else the name of the variant it follows
        at every step, or None.
      message: the verdict in one line.
    """

    rows: tuple[StepCheck, ...]
    title: str
    steps: int
    rtol: float
    atol: float
    variants: tuple[VariantCheck, ...]
    match: str | None
    message: str

    @property
    def passed(self) -> bool:
        """True when the candidate agrees with the reference at every step and leaf."""
        return all(row.passed for row in self.rows)

    @property
    def first_departure(self) -> StepCheck | None:
        """The first failing row (its step, leaf, index and the two values there), or None."""
        return next((r for r in self.rows if not r.passed), None)

    def _shown(self) -> tuple[list[StepCheck], str]:
        """The rows of the steps around the first departure (the last steps if none)."""
        d = self.first_departure
        focus = self.steps - 1 if d is None else d.step
        first = max(0, min(focus - SHOWN_STEPS // 2, self.steps - SHOWN_STEPS))
        last = min(self.steps, first + SHOWN_STEPS) - 1
        note = f"steps {first}–{last} of {self.steps}; " if last - first + 1 < self.steps else ""
        return [r for r in self.rows if first <= r.step <= last], note

    def __str__(self) -> str:
        shown, note = self._shown()
        w = max([5] + [len(r.leaf) for r in shown])
        names = ("step", "leaf", "shape", "max abs", "max rel", "result")
        lines = [self.title, "", _ROW.format(*names, w=w)]
        lines += [_ROW.format(*_cells(r), w=w) for r in shown]
        lines.append(f"({note}rel: relative to the distance the reference's entry travelled)")
        if self.variants:
            lines += ["", f"variants (steps of {self.steps} on which yours follows each):"]
            lines += [f"  {v.name:30s} {_follows(v, self.match)}" for v in self.variants]
        return "\n".join([*lines, "", self.message])

    def _repr_html_(self) -> str:
        shown, note = self._shown()
        out = [f"<p><b>{html.escape(self.title)}</b></p>", "<table>", "<tr>"]
        out += [f"<th>{h}</th>" for h in ("step", "leaf", "shape", "max abs", "max rel", "")]
        out.append("</tr>")
        for r in shown:
            style = "" if r.passed else ' style="background:#fdd"'
            out.append(f"<tr{style}>" + "".join(f"<td>{html.escape(c)}</td>" for c in _cells(r)))
            out.append("</tr>")
        out += ["</table>", f"<p>{html.escape(note)}rel: relative to the distance travelled</p>"]
        items = [f"<li>{html.escape(f'{v.name}: {_follows(v, self.match)}')}</li>"
                 for v in self.variants]  # fmt: skip
        out += ["<ul>", *items, "</ul>"] if items else []
        return "\n".join([*out, f"<p>{html.escape(self.message)}</p>"])


_ROW = "{:>4}  {:{w}s}  {:10s}  {:>9s}  {:>9s}  {}"


def _cells(r: StepCheck) -> list[str]:
    numbers = [f"{v:.2e}" for v in (r.max_abs, r.max_rel)]
    return [str(r.step), r.leaf, str(r.shape), *numbers, "ok" if r.passed else "FAIL"]


def _follows(v: VariantCheck, match: str | None) -> str:
    if v.coincides:
        return f"{v.follows}  (the same as the reference on this stream)"
    return f"{v.follows}" + ("  <- yours" if v.name == match else "")


def optimcheck(candidate: Any, reference: optim.Optimizer, params: Any, *,
               steps: int | None = None, grads: Sequence[Any] | None = None,
               key: jax.Array | None = None, rtol: float | None = None,
               atol: float | None = None) -> OptimcheckReport:  # fmt: skip
    """Check an optimizer against a jaxmlp one, step by step, in float64; name the variant.

    Both start from `params` and see the same gradients. After every step ``t`` the candidate's
    parameters ``c`` and the reference's ``r`` must agree entry by entry::

        |c − r| <= atol + rtol·s_t        (s_t = Σ_{k <= t} |r_k − r_{k−1}|, r_{−1} = params)

    The scale ``s_t`` is the distance the reference's entry has travelled, not the entry's size:
    a relative error in the steps shows however large the params are (and, unlike the distance
    from the start, it never comes back to 0). In float64 the two agree to about 1e-15 of it
    when they run the same equations, while float32 arithmetic is off by 1e-7 or far more
    (``1 − β2^t`` in float32 is off by 2e-5 of itself at t = 2); ``rtol=1e-6`` lies between,
    and ``atol=1e-9`` covers entries that hardly move. When they disagree, the variants of the
    module's table run too, and ``report.match`` names the one the candidate follows at every
    step.

    Everything runs with 64-bit floats enabled (``jax.enable_x64`` inside this call only):
    params and gradients are cast to float64, and the candidate should compute in the dtype of
    the params it receives. The hyperparameters of a jaxmlp state (the reference's, and the
    candidate's if it is a jaxmlp optimizer) are read back as the shortest decimal that rounds
    to them (a float32 ``0.999`` is ``0.99900001…``; read back, 0.999) in float64.

    Args:
      candidate: your optimizer: an object with ``init(params) -> state`` and
        ``update(grads, state, params) -> (updates, state)`` (a `jaxmlp.optim.Optimizer`, an
        optax-like NamedTuple), a plain pair ``(init, update)``, or a step function
        ``step(params, grads, state, t) -> (params, state)``: ``t`` is the step number from 0,
        ``state`` is None at the first call and afterwards whatever the previous call returned.
      reference: an optimizer made by `jaxmlp.optim.sgd`, `adam`, `adamw`, `rmsprop` or
        `adagrad`, with any learning rate or schedule.
      params: the initial parameters, a pytree of float arrays (such as a tuple of ``{"W",
        "b"}`` dicts).
      steps: the number of steps; by default 20, or ``len(grads)``.
      grads: the gradient of each step, a sequence of pytrees shaped like `params`. By default
        random ones, independent of the params (so both optimizers see the same stream however
        they move): ``g = z·10^−(a + b)`` with ``z ~ N(0, 1)``, ``a ~ U(0, 8)`` drawn once per
        entry (some entries only ever see gradients far below ε, where ε's placement shows) and
        ``b ~ U(0, 2)`` at every step (magnitudes drop from step to step, so that AMSGrad's
        maximum acts).
      key: PRNG key of the random gradients; ``jax.random.key(0)`` by default. Not with `grads`.
      rtol: relative tolerance, 1e-6 by default.
      atol: absolute tolerance, 1e-9 by default.

    Returns:
      An `OptimcheckReport`: ``report.passed``, ``report.match``, ``report.first_departure``,
      ``report.message``; ``print(report)`` shows the table.

    Raises:
      CandidateError: the candidate returned something other than documented (its step and
        leaf are named). An exception the candidate raises propagates as it is.

    >>> from jaxmlp.optimcheck import optimcheck
    >>> def my_adam(params, grads, state, t, lr=1e-3, b1=0.9, b2=0.999, eps=1e-8):
    ...     m, v = state or (jax.tree.map(jnp.zeros_like, params),) * 2
    ...     m = jax.tree.map(lambda m, g: b1 * m + (1 - b1) * g, m, grads)
    ...     v = jax.tree.map(lambda v, g: b2 * v + (1 - b2) * g**2, v, grads)
    ...     def new(w, m, v):  # the seeds' table: η·m̂/√(v̂ + ε)
    ...         return w - lr * m / (1 - b1 ** (t + 1)) / jnp.sqrt(v / (1 - b2 ** (t + 1)) + eps)
    ...     return jax.tree.map(new, params, m, v), (m, v)
    >>> report = optimcheck(my_adam, jm.optim.adam(1e-3), {"w": jnp.ones(4)}, steps=5)
    >>> report.passed, report.match, report.first_departure.step
    (False, 'eps_inside_root', 0)
    >>> print(report.message)  # doctest: +ELLIPSIS
    FAILED: your Adam departs from adam(0.001, ...) at step 0, ['w']; it is jaxmlp's adam(eps=0, eps_root=1e-08): ε inside the square root, √(v̂ + ε), as the seeds write it
    >>> optimcheck(my_adam, jm.optim.adam(1e-3, eps=0, eps_root=1e-8), {"w": jnp.ones(4)}).passed
    True
    """  # noqa: E501
    step, who = _as_step(candidate)
    rtol, atol = (RTOL if rtol is None else rtol), (ATOL if atol is None else atol)
    check_range("rtol", rtol)
    check_range("atol", atol)
    with jax.enable_x64(True):
        params, names = _params64(params)
        stream = _stream(params, steps, grads, key)
        ref = reference_of(reference, params)
        reference_path = _run(ref.step(), params, stream)
        candidate_path = _run(step, params, stream)
        rows = tuple(_rows(candidate_path, reference_path, names, rtol, atol))
        variants: tuple[VariantCheck, ...] = ()
        if not all(r.passed for r in rows):
            paths = (candidate_path, reference_path)
            variants = tuple(
                _try(v, params, stream, *paths, rtol, atol) for v in optim_variants.variants(ref)
            )
    source = "your grads" if grads is not None else "random gradients (see optimcheck)"
    title = f"candidate: {who}\nreference: {ref.describe()}"
    title += f"  (float64, {len(stream)} steps, {source})"
    rtol, atol = float(rtol), float(atol)
    report = OptimcheckReport(rows, title, len(stream), rtol, atol, variants, None, "")
    match, message = _verdict(report, ref)
    return dataclasses.replace(report, match=match, message=message)


# ---------------------------------------------------------------------------------------------
# The verdict


def _verdict(report: OptimcheckReport, ref: Reference) -> tuple[str | None, str]:
    """``report.match`` and ``report.message``, from its rows and variants."""
    yours, d, desc = f"your {TITLES[ref.kind]}", report.first_departure, ref.describe()
    if d is None:
        within = f"within rtol={report.rtol:g}, atol={report.atol:g}"
        return "reference", f"PASSED: {yours} equals {desc} at every step, {within}"
    failed = f"FAILED: {yours} departs from {desc} at step {d.step}, {d.leaf}"
    same = (v for v in report.variants if v.follows == report.steps and not v.coincides)
    if (found := next(same, None)) is not None:
        return found.name, f"{failed}; it is {found.message}"
    best = max(report.variants, key=lambda v: v.follows, default=None)
    closest = (f"closest: {best.name}, which it follows up to step {best.follows - 1}"
               if best and best.follows > d.step else "no variant follows it further than the "
               "reference does")  # fmt: skip
    values = f"index {d.index}: yours {d.candidate:.9g}, the reference's {d.reference:.9g}"
    return None, f"{failed}, {values}; it matches no known variant ({closest})"


def _rows(path: Trajectory, like: Trajectory, names: list[str], rtol: float, atol: float):
    """A `StepCheck` for every step and leaf of the trajectory `path` against `like`."""
    for t, (ours, theirs, scales) in enumerate(zip(path.points, like.points, like.travelled)):
        for name, c, r, s in zip(names, ours, theirs, scales):
            diff = np.abs(c - r)
            bad = ~(diff <= atol + rtol * s)  # NaN is bad
            with np.errstate(divide="ignore", invalid="ignore"):  # 0/0 is 0, x/0 is inf
                rel = np.where(diff == 0, 0.0, diff / s)
            flat = int(np.argmax(np.where(bad, diff, -np.inf) if bad.any() else diff))
            index = tuple(int(i) for i in np.unravel_index(flat, c.shape))
            yield StepCheck(
                step=t, leaf=name, shape=tuple(c.shape), max_abs=_max(diff), max_rel=_max(rel),
                index=index, candidate=float(c.ravel()[flat]), reference=float(r.ravel()[flat]),
                passed=not bad.any(),
            )  # fmt: skip


def _follows_until(path: Trajectory, like: Trajectory, rtol: float, atol: float) -> int:
    """How many steps, from the first, `path` agrees with `like` on every entry."""
    for t, (ours, theirs, scales) in enumerate(zip(path.points, like.points, like.travelled)):
        entries = zip(ours, theirs, scales)
        if not all(np.all(np.abs(c - r) <= atol + rtol * s) for c, r, s in entries):
            return t
    return len(path.points)


def _try(variant: Variant, params: Any, stream: list, candidate: Trajectory, reference: Trajectory,
         rtol: float, atol: float) -> VariantCheck:  # fmt: skip
    """Run `variant`: how far the candidate follows it, and whether it is the reference."""
    path = _run(variant.step, params, stream)
    follows = _follows_until(candidate, path, rtol, atol)
    coincides = _follows_until(path, reference, rtol, atol) == len(path.points)
    return VariantCheck(variant.name, variant.message, follows, coincides)


def _max(v: np.ndarray) -> float:
    return float(np.max(v)) if v.size else 0.0


# ---------------------------------------------------------------------------------------------
# Inputs


def _as_step(candidate: Any) -> tuple[Step, str]:
    """The candidate as a checked step function, and its name for the report."""
    init, update = getattr(candidate, "init", None), getattr(candidate, "update", None)
    if init is None and update is None and isinstance(candidate, tuple) and len(candidate) == 2:
        init, update = candidate
    if init is None and update is None:
        if not callable(candidate):
            raise TypeError(
                "candidate must be an optimizer with init(params) and update(grads, state, "
                "params), a pair (init, update), or a step function step(params, grads, state, t)"
                f" -> (params, state); got {type(candidate).__name__}"
            )
        return _user_step(candidate), f"{_name(candidate)} (a step function)"
    if not (callable(init) and callable(update)):
        raise TypeError(
            "candidate's init and update must both be functions; got "
            f"{type(init).__name__} and {type(update).__name__}"
        )
    return pair_step(init, update, _checked), f"{_name(update)} (init, update)"


def _user_step(fn: Callable) -> Step:
    """A user's step function whose results are checked."""

    def step(params: Any, grads: Any, state: Any, t: int) -> tuple[Any, Any]:
        return _checked(fn(params, grads, None if t == 0 else state, t), params, t, "step")

    return step


def _checked(out: Any, params: Any, t: int, fn: str) -> tuple[Any, Any]:
    """What the candidate's `fn` returned at step `t`: a pair (params or updates, state)."""
    first = "params" if fn == "step" else "updates"
    if not (isinstance(out, tuple) and len(out) == 2):
        raise CandidateError(f"the candidate's {fn} must return a pair ({first}, state); at step "
                             f"{t} it returned {type(out).__name__}")  # fmt: skip
    what = f"the {first} the candidate's {fn} returned at step {t}"
    _check_like(out[0], params, what, CandidateError)
    return out


def _check_like(tree: Any, params: Any, what: str, error: type) -> None:
    try:
        check_tree_matches(tree, params, f"{what} must be shaped like params ({{like}}); got "
                           "{tree}", f"{what}: the leaf {{path}} has shape {{shape}}, params "
                           "have {expected}")  # fmt: skip
    except ValueError as e:
        raise error(str(e)) from None


def _params64(params: Any) -> tuple[Any, list[str]]:
    """`params` cast to float64 on the host, then put on the device; and the leaves' paths."""
    paths = jax.tree_util.tree_leaves_with_path(params)
    for path, leaf in paths:
        check_array(f"params{jax.tree_util.keystr(path)}", leaf)
    if not sum(np.size(leaf) for _, leaf in paths):
        raise ValueError(f"params must hold at least one number; got {params!r:.60}")
    names = [jax.tree_util.keystr(path) or "params" for path, _ in paths]
    return jax.device_put(jax.tree.map(lambda w: np.asarray(w, np.float64), params)), names


def _stream(params: Any, steps: int | None, grads: Sequence[Any] | None, key: Any) -> list:
    """The gradients of each step: `grads` checked and cast to float64, or random ones."""
    if grads is None:
        steps = STEPS if steps is None else steps
        check_count("steps", steps, 1)
        return _random_grads(params, steps, jax.random.key(0) if key is None else key)
    if key is not None:
        raise ValueError("key draws random gradients; it has no use with grads")
    if isinstance(grads, (str, bytes)) or not isinstance(grads, Sequence) or not grads:
        got = "an empty sequence" if isinstance(grads, Sequence) else type(grads).__name__
        raise TypeError(f"grads must be a non-empty sequence of gradient trees; got {got}")
    if steps is not None and steps != len(grads):
        raise ValueError(f"steps must be len(grads) = {len(grads)} (or left out); got {steps}")
    for t, g in enumerate(grads):
        what = f"grads[{t}] (grads holds one tree shaped like params per step)"
        _check_like(g, params, what, ValueError)
    return [jax.device_put(jax.tree.map(lambda a: np.asarray(a, np.float64), g)) for g in grads]


def _random_grads(params: Any, steps: int, key: Any) -> list:
    """``z·10^−(a + b)``: ``a ~ U(0, 8)`` per entry, ``b ~ U(0, 2)`` per step (see optimcheck)."""
    check_key(key)
    if jnp.issubdtype(key.dtype, jax.dtypes.prng_key):
        key = jax.random.key_data(key)
    rng = np.random.default_rng(np.asarray(key).ravel())
    leaves, tree = jax.tree.flatten(params)
    scale = [rng.uniform(0, 8, np.shape(w)) for w in leaves]  # a, drawn once per entry

    def draw(a: np.ndarray) -> np.ndarray:
        return rng.normal(size=a.shape) * 10.0 ** -(a + rng.uniform(0, 2, a.shape))

    return [
        jax.device_put(jax.tree.unflatten(tree, [draw(a) for a in scale])) for _ in range(steps)
    ]


class Trajectory(NamedTuple):
    """A trajectory: the leaves after each step, and the distance each entry has travelled.

    ``travelled[t]`` is ``Σ_{s <= t} |w_s − w_{s−1}|``, the scale of the relative tolerance: it
    only grows, where the distance from the start may come back to 0 and make any relative
    difference look large.
    """

    points: list[list[np.ndarray]]
    travelled: list[list[np.ndarray]]


def _run(step: Step, params: Any, stream: list) -> Trajectory:
    """Run `step` over the stream from `params`; the leaves in float64 NumPy arrays."""
    points, travelled, state = [], [], None
    last = [np.asarray(w, np.float64) for w in jax.tree.leaves(params)]
    so_far = [np.zeros_like(w) for w in last]
    for t, grads in enumerate(stream):
        params, state = step(params, grads, state, t)
        now = [np.asarray(w, np.float64) for w in jax.tree.leaves(params)]
        so_far = [s + np.abs(w - w_) for s, w, w_ in zip(so_far, now, last)]
        points.append(now)
        travelled.append(so_far)
        last = now
    return Trajectory(points, travelled)


def _name(fn: Any) -> str:
    module, name = getattr(fn, "__module__", None), getattr(fn, "__qualname__", None)
    return f"{module}.{name}" if module and name else repr(fn)
