"""What a wrong backward pass got wrong, and where it starts: `gradcheck`'s findings.

A backward pass computes, from the output layer down, each layer's error ``delta_l = dL/dz_l``
(the seeds' ``err_HO_l``), then its leaves ``dW_l = a_{l−1}ᵀ·delta_l + penalty'`` and
``db_l = Σ delta_l + penalty'``, then the error of the layer below,
``delta_{l−1} = f'(z_{l−1}) ⊙ (delta_l·W_lᵀ)``. A bug in one step makes everything after it
wrong, so the leaves below a wrong error are wrong too without any bug of their own.

`diagnose` walks the layers in that order and, at each, asks what the user's numbers would be if
the code so far were right, given what it has already explained above (its *hypothesis*):

1. When the user's backward returned its errors (``(grads, deltas)``), each ``delta_l`` is
   compared with the step from the user's own ``delta_{l+1}``; a step that does not follow is
   the source, and a ``delta_l`` that is wrong only because ``delta_{l+1}`` was is
   ``"propagated"``. Without them, the layer's two leaves are tried against known errors in
   ``delta_l``: a constant factor (the sign of ``E = Y − Ŷ``, a sum for a mean, a ½ or a 2)
   and the classic activation mistakes (``f'`` applied to the activation instead of the
   pre-activation, a missing ``f'``, ReLU's derivative taken as 1 at 0). One that explains both
   leaves becomes the hypothesis for the layers below.
2. Each leaf is then compared with what follows from that error. A leaf that matches it but not
   autodiff is ``"propagated"``; a leaf that matches neither has a bug of its own, classified
   in this order: ``"nonfinite"``, ``"zero"``, ``"transpose"``, ``"penalty"`` (the difference is
   a regularization term, missing, doubled, halved or with a wrong strength), ``"scale"`` (a
   constant multiple, of the whole leaf or of its data part), else ``"unexplained"`` with the
   worst entry.

The findings come in that order, top layer first; the source is the first finding that is not
``"propagated"``. Everything here is NumPy on the host, in the check's dtype; ``close`` is the
check's own tolerance ``|m − e| <= atol + rtol·|e|``.
"""

from __future__ import annotations

import dataclasses
import functools
from typing import NamedTuple

import jax
import numpy as np

from jaxmlp import activations as _act
from jaxmlp.model import MLP
from jaxmlp.regularization import Regularization, l1_sign

KINDS = ("scale", "penalty", "transpose", "activation", "zero", "nonfinite", "propagated",
         "unexplained")  # fmt: skip
"""Every `Finding.kind`, in the order of the module docstring's explanation."""


@dataclasses.dataclass(frozen=True)
class Finding:
    """One thing `gradcheck` found wrong, in one leaf (``"W"``, ``"b"``) or error (``"delta"``).

    Attributes:
      layer: the layer, from 0.
      leaf: ``"W"``, ``"b"``, or ``"delta"`` for the layer's error ``dL/dz`` (when the backward
        returned it).
      kind: one of `KINDS`.
      factor: for ``"scale"``, the constant ``manual / reference``; for ``"penalty"``, the
        multiple of the term that the manual gradient holds (0: missing, 2: doubled, ½: λ in place
        of 2λ); for ``"propagated"``, the source's factor if it has one; else None.
      message: one line: where, what, and the usual causes.
    """

    layer: int
    leaf: str
    kind: str
    factor: float | None
    message: str

    def __str__(self) -> str:
        return self.message


class Problem(NamedTuple):
    """What `diagnose` needs of the checked problem, as NumPy arrays in the check's dtype.

    ``zs[l]``, ``acts[l + 1]``: layer ``l``'s pre-activation and activation (``acts[0] = x``),
    ``(batch, features)``; ``deltas[l]`` autodiff's ``dL/dz_l``; ``autodiff`` its gradients;
    ``output_grad`` ``dL/da`` of the output layer (None for a fused loss, whose error comes
    from the logits); ``regs`` one `Regularization` per layer; ``penalty`` the penalty's
    gradient (`jaxmlp.regularization.penalty_grad`), shaped like the params; ``rtol``,
    ``atol`` the check's tolerance; ``seeds_scale`` the seeds' ``S`` when the backward was
    written in the seeds' layout (`jaxmlp.layouts`: its penalty terms are unscaled, its
    messages in its terms), else None.
    """

    net: MLP
    params: tuple
    zs: list
    acts: list
    deltas: list
    autodiff: tuple
    output_grad: np.ndarray | None
    loss: str
    regs: tuple[Regularization, ...]
    penalty: tuple
    rtol: float
    atol: float
    seeds_scale: float | None = None


class _Belief(NamedTuple):
    """The diagnosis so far: the error believed to reach the layer, its scale of the penalty."""

    delta: np.ndarray | None  # the user's delta of the layer just done (true, or hypothesised)
    penalty_scale: float  # the multiple of the penalty gradient in the user's leaves
    source: int | None  # the layer whose explained error the current belief comes from
    factor: float | None


def close(m: np.ndarray, e: np.ndarray, problem: Problem) -> bool:
    """True when `m` equals `e` within the check's tolerance, entry by entry."""
    if np.shape(m) != np.shape(e) or not np.all(np.isfinite(m)):
        return False
    return bool(np.all(np.abs(m - e) <= problem.atol + problem.rtol * np.abs(e)))


def penalty_terms(w: np.ndarray, l1: float, l2: float, names: tuple[str, str]) -> list:
    """The penalty's gradient terms of one leaf: ``(name, formula, term)`` for each nonzero one."""
    terms = []
    if l1:
        sign = np.asarray(l1_sign(w), w.dtype)  # +1 at 0, as the penalty's gradient has it
        terms.append((names[0], f"{names[0]}·sign({names[0][-1].upper()})", l1 * sign))
    if l2:
        terms.append((names[1], f"2·{names[1]}·{names[1][-1].upper()}", 2 * l2 * w))
    return terms


def leaf_penalty(problem: Problem, layer: int, leaf: str) -> np.ndarray:
    """The penalty's gradient for one leaf (``l1·sign(w) + 2·l2·w``), zeros without one."""
    return problem.penalty[layer][leaf]


def leaves_from(problem: Problem, layer: int, delta: np.ndarray, penalty_scale: float) -> dict:
    """A layer's leaves given its error: ``a_{l−1}ᵀ·delta`` and ``Σ delta``, plus the penalty's."""
    data = {"W": problem.acts[layer].T @ delta, "b": delta.sum(axis=0)}
    return {k: data[k] + penalty_scale * leaf_penalty(problem, layer, k) for k in data}


def upstream(problem: Problem, layer: int, delta_above: np.ndarray | None) -> np.ndarray | None:
    """``dL/da_l`` given the error of the layer above (None at a fused output layer)."""
    if layer == problem.net.n_layers - 1:
        return problem.output_grad
    return delta_above @ problem.params[layer + 1]["W"].T


def step(problem: Problem, layer: int, g: np.ndarray | None) -> np.ndarray:
    """The error ``dL/dz_l`` from ``g = dL/da_l``: ``f.backward(z_l, g)``.

    At a fused output layer (``g`` None) autodiff's, which the loss gives from the logits.
    """
    if g is None:
        return problem.deltas[layer]
    z = problem.zs[layer]
    return np.asarray(_backward(problem.net.activations[layer], z, g), z.dtype)


@functools.partial(jax.jit, static_argnums=0)
def _backward(name: str, z: jax.Array, g: jax.Array) -> jax.Array:
    """``f.backward(z, g)`` for the activation `name`, compiled (one program, not one per op)."""
    return _act.get(name).backward(z, g)


def error_variants(problem: Problem, layer: int, g: np.ndarray | None) -> list:
    """The classic wrong errors of a layer: ``(kind, message, delta)`` from ``g = dL/da_l``."""
    name = problem.net.activations[layer]
    if g is None or name == "linear":
        return []
    f, z, a = _act.get(name), problem.zs[layer], problem.acts[layer + 1]
    names = (
        ("Ŷ", "HO_final")
        if layer == problem.net.n_layers - 1
        else (f"HO_{layer + 1}", f"HI_{layer + 1}")
    )
    seeds = f" (in the seeds' names: σ′({names[0]}) written for σ′({names[1]}))"
    out = [("activation", f"the activation's derivative is missing: dL/dz taken as dL/da "
            f"(multiply by {name}′(z))", g)]  # fmt: skip
    if f.derivative is not None:
        where = seeds if name == "sigmoid" else ""
        text = f"{name}′ applied to the activation a = {name}(z) instead of the pre-activation z"
        out.append(("activation", text + where, g * np.asarray(f.derivative(a), a.dtype)))
    if name in ("relu", "leaky_relu"):
        d = np.where(z >= 0, 1.0, 0.0 if name == "relu" else _act.LEAKY_RELU_SLOPE)
        out.append(
            (
                "activation",
                f"{name}′(0) taken as 1 (jaxmlp and jax.grad take "
                f"{name}′(0) = {0 if name == 'relu' else _act.LEAKY_RELU_SLOPE})",
                g * d,
            )
        )
    return out


def scale_causes(c: float, n: int, k: int, seeds: bool = False) -> str:
    """The usual causes of a gradient ``c`` times the reference, batch ``n``, ``k`` outputs.

    `seeds`: the backward was written in the seeds' layout (its directions already converted).
    """
    sign = (
        "the sign: E = Y − Ŷ in the seeds (their err points downhill and the updates add); "
        "E written Ŷ − Y?"
        if seeds
        else "the sign: the seeds' err = E·σ′ with E = Y − Ŷ is "
        "minus the gradient (their updates add); return −err terms, or pass layout='seeds'"
    )
    causes = [
        (-1.0, sign),
        (2.0, "the L2 derivative is 2λw, or an MSE convention: d/dŷ (ŷ − y)² is 2(ŷ − y), "
         "d/dŷ ½(ŷ − y)² is (ŷ − y)"),
        (0.5, "the 2 of d/dŷ (ŷ − y)² dropped (½(ŷ − y)² differentiated), or λ in place of 2λ"),
        (n, f"the batch size N = {n}: the loss summed over the batch instead of averaged"),
        (1 / n, f"1/N (N = {n}): averaged twice, divided by the batch size once more"),
        (k, f"K = {k} outputs: averaged over the batch only; jaxmlp's mean runs over every "
         "element"),
        (1 / k, f"1/K (K = {k}): divided by the outputs once more"),
        (n * k, f"N·K = {n * k}: summed over every element instead of averaged"),
        (n * k / 2, "N·K/2: the gradient of the seeds' ½Σ(Y − Ŷ)²; pass layout='seeds'"),
        (-n * k / 2, "−N·K/2: the seeds' update direction of ½Σ(Y − Ŷ)²; pass layout='seeds'"),
    ][: -2 if seeds else None]  # fmt: skip
    found = [text for value, text in causes if np.isclose(c, value, rtol=1e-3, atol=0)]
    if not found:  # a known factor with the sign flipped
        found = [f"the sign is flipped, and {text}" for value, text in causes
                 if value > 0 and np.isclose(c, -value, rtol=1e-3, atol=0)]  # fmt: skip
    return "; or ".join(dict.fromkeys(found)) or "no usual cause has this factor"


def _fit(m: np.ndarray, e: np.ndarray) -> float | None:
    """The least-squares factor ``c`` of ``m ≈ c·e`` (None when ``e`` is 0)."""
    ee = float(np.vdot(e, e))
    return float(np.vdot(m, e)) / ee if ee > 0 else None


def median_ratio(m: np.ndarray, a: np.ndarray) -> float | None:
    """The median of ``m / a`` when ``m`` is close to a constant multiple of ``a``, else None.

    Close: the least-squares multiple leaves a residual under 0.1% of ``‖m‖``.
    """
    c = _fit(m, a) if np.shape(m) == np.shape(a) and np.all(np.isfinite(m)) else None
    if c is None or np.linalg.norm(m - c * a) > 1e-3 * np.linalg.norm(m):
        return None
    keep = np.abs(a) > 1e-12 * np.max(np.abs(a))
    return float(np.median(m[keep] / a[keep])) if keep.any() else None


def _worst(m: np.ndarray, e: np.ndarray) -> str:
    """``worst at [i, j]: manual …, reference …`` for the entry where `m` and `e` differ most."""
    diff = np.abs(np.nan_to_num(m - e, nan=np.inf))
    i = np.unravel_index(int(np.argmax(diff)), m.shape)
    index = ", ".join(str(int(v)) for v in i)
    return f"worst at [{index}]: manual {m[i]:.6g}, reference {e[i]:.6g}"


def classify(problem: Problem, where: tuple[int, str], m: np.ndarray, e: np.ndarray,
             penalty: tuple = ((), np.zeros(())), ) -> Finding:  # fmt: skip
    """Why `m` differs from the expected `e`: a `Finding` of a kind other than "propagated".

    `where` is ``(layer, leaf)``; `penalty` is ``(terms, scaled)``: the leaf's penalty terms
    (`penalty_terms`) and the multiple of the penalty gradient `e` holds.
    """
    layer, leaf = where
    at = f"layer {layer} {leaf}"
    n, k = problem.acts[0].shape[0], problem.net.out_features
    if not np.all(np.isfinite(m)):
        bad = int(np.sum(~np.isfinite(m)))
        first = ", ".join(str(int(v)) for v in np.argwhere(~np.isfinite(m))[0])
        return Finding(layer, leaf, "nonfinite", None, f"{at}: {bad} of {m.size} entries are "
                       f"NaN or infinite, the first at [{first}] (a division by 0, log(0) or "
                       "an overflow in the backward pass)")  # fmt: skip
    if not np.any(m):
        return Finding(layer, leaf, "zero", None, f"{at}: all zeros; the reference is not "
                       f"(max |reference| {np.max(np.abs(e)):.3g}): never accumulated, or a "
                       "derivative or mask that zeroes it")  # fmt: skip
    if m.ndim == 2 and m.shape == e.T.shape and close(m.T, e, problem):
        fix = ("the seeds' direction of W is err·HO_{l−1}ᵀ, of shape (fan_out, fan_in)"
               if problem.seeds_scale else "dW is a_prev.T @ delta, of shape (fan_in, fan_out); "
               "the seeds' W·X layout is (fan_out, fan_in): pass layout='seeds'")  # fmt: skip
        return Finding(layer, leaf, "transpose", None, f"{at}: the reference transposed: {fix}")
    found = None if leaf == "delta" else _penalty_finding(problem, where, m, e, *penalty)
    if found is not None:
        return found
    terms, scaled = penalty
    for data_only, p in ((False, np.zeros_like(e)), (True, scaled)):
        c = _fit(m - p, e - p)
        if c is not None and (not data_only or np.any(p)) and close(m, p + c * (e - p), problem):
            part = "its data part is " if data_only else ""
            right = " (the penalty's part is right)" if data_only else ""
            causes = scale_causes(c, n, k, bool(problem.seeds_scale))
            text = f"{at}: {part}{c:.4g}× the reference{right} — {causes}"
            return Finding(layer, leaf, "scale", c, text)
    ratio = median_ratio(m, e)
    ratio_text = "" if ratio is None else f"; ratio {ratio:.4g}"
    return Finding(layer, leaf, "unexplained", None, f"{at}: no known error explains it; "
                   f"max |manual − reference| {np.max(np.abs(m - e)):.3g}, {_worst(m, e)}"
                   f"{ratio_text}")  # fmt: skip


def _penalty_finding(problem: Problem, where: tuple, m: np.ndarray, e: np.ndarray, terms: tuple,
                     scaled: np.ndarray) -> Finding | None:  # fmt: skip
    """A "penalty" `Finding` when ``m − e`` is a multiple of a regularization term, else None."""
    layer, leaf = where
    at, d = f"layer {layer} {leaf}", m - e
    whole = [("penalty", "the whole penalty gradient", scaled)] if len(terms) > 1 else []
    for name, formula, t in [*terms, *whole]:
        c = _fit(d, t)
        if c is None or not close(m, e + c * t, problem):
            continue
        held = 1 + c * (problem.seeds_scale or 1.0)  # the seeds' penalty is unscaled by 1/S
        what = {
            0.0: "is missing",
            2.0: "is counted twice",
            -1.0: "enters with the wrong sign",
            0.5: "is λ·w, not 2λ·w (the λ/2·Σw² convention, not jaxmlp's λ·Σw²)",
        }
        named = [k for k in what if np.isclose(held, k, atol=1e-3)]
        held = named[0] if named else held  # 0, not 1e-16: the multiple the message names
        text = what[held] if named else f"is {held:.4g}× what it should be"
        return Finding(layer, leaf, "penalty", held, f"{at}: the term {formula} ({name}) {text}")
    w = problem.params[layer][leaf]
    c = _fit(d, w)
    if c is not None and abs(c) > 0 and close(m, e + c * w, problem):
        return Finding(layer, leaf, "penalty", None, f"{at}: an extra term {c:.4g}·{leaf}: an L2 "
                       f"gradient 2λ·{leaf} with λ = {c / 2:.4g} that this leaf's strength does "
                       "not give (another leaf's strength?)")  # fmt: skip
    return None


def _terms(problem: Problem, layer: int, leaf: str) -> tuple:
    """`penalty_terms` of one leaf, named as `Regularization` names them."""
    r, w = problem.regs[layer], problem.params[layer][leaf]
    names = ("l1w", "l2w") if leaf == "W" else ("l1b", "l2b")
    strengths = (float(getattr(r, names[0])), float(getattr(r, names[1])))
    return tuple(penalty_terms(w, *strengths, names))


class StepCheck(NamedTuple):
    """One row of the step-by-step table: a layer's error ``delta_l`` against autodiff's.

    ``names``: the seeds' names of the layer's rows (``("HI_1", "HO_1", "err_HO_1")``, the output
    layer's ``("HO_final", "Ŷ", "err_HO_final")``); ``max_abs`` over the layer; ``first_wrong``
    the first example (row of ``delta``) with a wrong entry, or None; ``status`` ``"ok"``,
    ``"propagated"`` (wrong only by the error above) or ``"FAIL"`` (this step is wrong).
    """

    layer: int
    names: tuple[str, str, str]
    shape: tuple[int, ...]
    max_abs: float
    first_wrong: int | None
    status: str


def seeds_names(layer: int, n_layers: int) -> tuple[str, str, str]:
    """The seeds' names of a layer's pre-activation, activation and error."""
    if layer == n_layers - 1:
        return "HO_final", "Ŷ", "err_HO_final"
    i = layer + 1
    return f"HI_{i}", f"HO_{i}", f"err_HO_{i}"


def diagnose(problem: Problem, manual: tuple, deltas: tuple | None = None) -> tuple[tuple, tuple]:
    """The findings of a manual gradient (and its errors, when given), and the step table.

    Returns ``(findings, steps)``: a tuple of `Finding` (top layer first) and, when `deltas` are
    given, one `StepCheck` per layer (first layer first; else empty).

    `manual` is shaped like the params (a leaf transposed is allowed); `deltas`, when given,
    holds the user's ``dL/dz_l`` per layer, ``(batch, fan_out)``. See the module docstring.
    """
    findings: list[Finding] = []
    steps: list[StepCheck] = []
    belief = _Belief(None, 1.0, None, None)
    for l in reversed(range(problem.net.n_layers)):
        g = upstream(problem, l, belief.delta)
        if deltas is not None:
            belief, found, row = _check_delta(problem, l, deltas[l], step(problem, l, g), belief)
            findings += found
            steps.append(row)
        else:
            belief = _hypothesis(problem, l, manual[l], g, belief, findings)
        assert belief.delta is not None  # both set the layer's error, true or hypothesised
        expected = leaves_from(problem, l, belief.delta, belief.penalty_scale)
        for leaf in ("W", "b"):
            if any((f.layer, f.leaf) == (l, leaf) for f in findings):
                continue  # explained with the layer's error, by `_hypothesis`
            leaf_found = _check_leaf(problem, (l, leaf), manual[l][leaf], expected[leaf], belief)
            findings += [] if leaf_found is None else [leaf_found]
    return tuple(findings), tuple(reversed(steps))


def _check_leaf(problem: Problem, where: tuple, m: np.ndarray, e: np.ndarray,
                belief: _Belief) -> Finding | None:  # fmt: skip
    """A leaf's finding, if any: none when it matches autodiff, "propagated" when it matches `e`."""
    layer, leaf = where
    if close(m, problem.autodiff[layer][leaf], problem):
        return None
    if close(m, e, problem) and belief.source is not None:
        return _propagated(where, belief)
    if m.shape != e.shape:
        return _misshaped(problem, where, m, e, belief)
    scaled = belief.penalty_scale * leaf_penalty(problem, layer, leaf)
    return classify(problem, where, m, e, (_terms(problem, layer, leaf), scaled))


def _misshaped(problem: Problem, where: tuple, m: np.ndarray, e: np.ndarray,
               belief: _Belief) -> Finding:  # fmt: skip
    """A "transpose" finding for a leaf of another shape than its reference's."""
    layer, leaf = where
    at = f"layer {layer} {leaf}"
    if m.T.shape != e.shape:  # `jaxmlp.layouts` lets only another layer's shape through
        others = [l for l, p in enumerate(problem.params) if p[leaf].shape == m.shape]
        return Finding(layer, leaf, "transpose", None, f"{at}: shape {m.shape}, the shape of "
                       f"layer {others[0]}'s {leaf} (not {e.shape}): the layers in reverse "
                       "order?")  # fmt: skip
    if close(m.T, e, problem):
        return classify(problem, where, m, e)
    inner = _check_leaf(problem, where, m.T, e, belief)
    text = "wrong" if inner is None else inner.message.split(": ", 1)[1]
    return Finding(layer, leaf, "transpose", None, f"{at}: transposed (shape {m.shape}, not "
                   f"{e.shape}), and transposed back: {text}")  # fmt: skip


def _propagated(where: tuple, belief: _Belief) -> Finding:
    layer, leaf = where
    text = f"wrong only by what the error in layer {belief.source} explains (right given it)"
    return Finding(layer, leaf, "propagated", belief.factor, f"layer {layer} {leaf}: {text}")


def _hypothesis(problem: Problem, l: int, manual: dict, g: np.ndarray | None, belief: _Belief,
                findings: list) -> _Belief:  # fmt: skip
    """The belief for layer `l` from its leaves alone: the user's error, known or guessed.

    The error expected from the layer above, unless the two leaves match autodiff (then the
    user's error is right here) or one known wrong error explains both (then that is the
    user's, and the layer is a source: its findings are appended to `findings`).
    """
    auto = problem.autodiff[l]
    if all(close(manual[k], auto[k], problem) for k in ("W", "b")):
        return _Belief(problem.deltas[l], 1.0, None, None)
    e_delta = step(problem, l, g)
    keep = belief._replace(delta=e_delta)
    expected = leaves_from(problem, l, e_delta, belief.penalty_scale)
    if all(close(manual[k], expected[k], problem) for k in ("W", "b")):
        return keep
    rho = belief.penalty_scale
    pen_w = rho * leaf_penalty(problem, l, "W")
    n, k = problem.acts[0].shape[0], problem.net.out_features
    candidates: list[tuple[str, float | None, str, np.ndarray, float]] = []
    if manual["W"].shape == expected["W"].shape:  # the data part scaled, or the whole leaf
        for c, r in ((_fit(manual["W"] - pen_w, expected["W"] - pen_w), 1.0),
                     (_fit(manual["W"], expected["W"]), None)):  # fmt: skip
            if c is not None and not np.isclose(c, 1.0):
                text = f"{c:.4g}× the reference, from the layer's error dL/dz"
                text += f" — {scale_causes(c, n, k, bool(problem.seeds_scale))}"
                candidates.append(("scale", c, text, c * e_delta, rho if r else c * rho))
    for kind, text, delta in error_variants(problem, l, g):
        candidates.append((kind, None, f"the layer's error dL/dz is wrong: {text}", delta, rho))
    for kind, factor, text, delta, r in candidates:
        leaves = leaves_from(problem, l, delta, r)
        if all(close(manual[k], leaves[k], problem) for k in ("W", "b")):
            findings += [Finding(l, k, kind, factor, f"layer {l} {k}: {text}") for k in ("W", "b")]
            return _Belief(delta, r, l, factor)
    return keep


def _check_delta(problem: Problem, l: int, u: np.ndarray, e_delta: np.ndarray,
                 belief: _Belief) -> tuple[_Belief, list, StepCheck]:  # fmt: skip
    """Layer `l`'s error as the user returned it, against autodiff and the step from above."""
    ref, names = problem.deltas[l], seeds_names(l, problem.net.n_layers)
    found: list[Finding] = []
    if u.ndim == 2 and u.shape == ref.T.shape and u.shape != ref.shape:
        fix = ("the seeds' err_HO is (fan_out, batch)" if problem.seeds_scale else
               "return it batch first, or pass layout='seeds'")  # fmt: skip
        found.append(Finding(l, "delta", "transpose", None, f"layer {l} delta: shape {u.shape}, "
                             f"the transpose of dL/dz's {ref.shape}: {fix}"))  # fmt: skip
        u = u.T
    wrong = ~np.isclose(u, ref, rtol=problem.rtol, atol=problem.atol) | ~np.isfinite(u)
    first = int(np.argmax(wrong.any(axis=1))) if wrong.any() else None
    if first is None:
        belief, status = _Belief(u, 1.0, None, None), "ok"
    elif close(u, e_delta, problem) and belief.source is not None:
        found.append(_propagated((l, "delta"), belief))
        belief, status = belief._replace(delta=u), "propagated"
    else:
        found.append(_classify_delta(problem, l, u, e_delta, belief))
        belief, status = _Belief(u, 1.0, l, found[-1].factor), "FAIL"
    diff = np.abs(np.nan_to_num(u - ref, nan=np.inf))
    row = StepCheck(l, names, tuple(u.shape), float(np.max(diff)), first, status)
    return belief, found, row


def _classify_delta(problem: Problem, l: int, u: np.ndarray, e_delta: np.ndarray,
                    belief: _Belief) -> Finding:  # fmt: skip
    """Why the user's error `u` of layer `l` is not the step `e_delta` from the error above."""
    g = upstream(problem, l, belief.delta)
    for kind, text, delta in error_variants(problem, l, g):
        if close(u, delta, problem):
            return Finding(l, "delta", kind, None, f"layer {l} delta: {text}")
    return classify(problem, (l, "delta"), u, e_delta)
