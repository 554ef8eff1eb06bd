"""Gradient verification: a backward pass against autodiff and finite differences.

`gradcheck` computes, in float64, three gradients of `jaxmlp.objective`:

- the *manual* one, from `jaxmlp.backprop.backprop` or a backward function of your own;
- *autodiff*, ``jax.grad`` of the objective;
- *finite differences*, ``(f(w + ε) − f(w − ε)) / 2ε`` on a random sample of entries per leaf,

and compares them leaf by leaf (each layer's ``W`` and ``b``) in a `GradcheckReport`.

Finite differences (`jaxmlp.finite_differences`) are meaningless across a kink, so a sampled
entry is skipped (and counted) when its stencil ``[w − ε, w + ε]`` holds one. Manual
and autodiff gradients follow the same conventions at the kinks (``relu'(0) = 0``,
``sign(0) = +1``, …), so they are compared on every entry, kinks included.
"""

from __future__ import annotations

import dataclasses
import functools
import html
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from jaxmlp._checks import check_count, check_key, check_problem, check_tree_matches
from jaxmlp.backprop import backprop, backward
from jaxmlp.finite_differences import central_differences
from jaxmlp.model import MLP, Params, intermediates
from jaxmlp.objective import objective_and_output
from jaxmlp.regularization import RegLike, per_layer

RTOL, ATOL = 1e-7, 1e-9
FD_RTOL, FD_ATOL = 1e-5, 1e-7
EPS = 1e-6
N_SAMPLES = 16

Backward = Callable[..., Params]


@dataclasses.dataclass(frozen=True)
class LeafCheck:
    """One row of a `GradcheckReport`: the comparison for one leaf of one layer.

    Errors are maxima over the leaf: ``abs = |g − r|``, ``rel = |g − r| / max(|g|, |r|)`` (0
    where both are 0); the finite-difference ones over the checked entries only (None if none
    was checked). A NaN in a gradient shows as a NaN error and fails the leaf.

    Attributes:
      layer: index of the layer, from 0.
      leaf: ``"W"`` or ``"b"``.
      shape: the leaf's shape.
      autodiff_abs, autodiff_rel: manual against autodiff, over every entry.
      worst: index of the entry where manual and autodiff differ most.
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


@dataclasses.dataclass(frozen=True)
class GradcheckReport:
    """What `gradcheck` found: one `LeafCheck` per leaf, the settings, and the verdict.

    ``str(report)`` is a fixed-width table; in a notebook the report displays as an HTML table
    with failing rows marked.

    Attributes:
      rows: one `LeafCheck` per layer and leaf, in the order of ``params``.
      title: the net, the loss and the backward function checked.
      rtol, atol: tolerance of manual against autodiff: ``|m − a| <= atol + rtol·|a|``.
      fd_rtol, fd_atol: tolerance of manual against finite differences, likewise.
      eps: the finite-difference step.
      n_samples: entries sampled per leaf for finite differences.
    """

    rows: tuple[LeafCheck, ...]
    title: str
    rtol: float
    atol: float
    fd_rtol: float
    fd_atol: float
    eps: float
    n_samples: int

    @property
    def passed(self) -> bool:
        """True when every leaf passed."""
        return all(row.passed for row in self.rows)

    @property
    def failures(self) -> tuple[LeafCheck, ...]:
        """The rows that did not pass."""
        return tuple(row for row in self.rows if not row.passed)

    def _verdict(self) -> str:
        word = "PASSED" if self.passed else f"FAILED ({len(self.failures)} of {len(self.rows)})"
        return (
            f"{word}: manual vs autodiff within rtol={self.rtol:g}, atol={self.atol:g}; "
            f"vs finite differences (eps={self.eps:g}, up to {self.n_samples} entries per leaf) "
            f"within rtol={self.fd_rtol:g}, atol={self.fd_atol:g}"
        )

    def __str__(self) -> str:
        w = max([5] + [len(str(r.shape)) for r in self.rows])
        groups = ("manual − autodiff", "manual − findiff", "autodiff − findiff")
        # The group titles span the error columns, past the layer, leaf and shape columns.
        head = " " * (w + 14) + "   ".join(f"{g:^20s}" for g in groups) + "  findiff"
        names = ("layer", "leaf", "shape", *("max abs", "max rel") * 3, "n/skip", "result")
        lines = [self.title, "", head, _ROW.format(*names, w=w)]
        lines += [_ROW.format(*_cells(r), w=w) for r in self.rows]
        return "\n".join([*lines, "", self._verdict()])

    def _repr_html_(self) -> str:
        heads = ["layer", "leaf", "shape", "manual−autodiff abs", "rel", "manual−findiff abs"]
        heads += ["rel", "autodiff−findiff abs", "rel", "n/skip", "result"]
        out = [f"<p><b>{html.escape(self.title)}</b></p>", "<table>", "<tr>"]
        out += [f"<th>{h}</th>" for h in heads] + ["</tr>"]
        for r in self.rows:
            style = "" if r.passed else ' style="background:#fdd"'
            out.append(f"<tr{style}>" + "".join(f"<td>{html.escape(c)}</td>" for c in _cells(r)))
            out.append("</tr>")
        out += ["</table>", f"<p>{html.escape(self._verdict())}</p>"]
        return "\n".join(out)


# One row of the text table: layer, leaf, shape (`w` wide), three pairs of errors, n/skip, result.
_ROW = "{:>5} {:4s}  {:{w}s}  {:>9s}  {:>9s}   {:>9s}  {:>9s}   {:>9s}  {:>9s}  {:>7s}  {}"


def _cells(r: LeafCheck) -> list[str]:
    """A report row's cells as text, for the text and the HTML table alike."""
    errors = (r.autodiff_abs, r.autodiff_rel, r.fd_abs, r.fd_rel)
    errors += (r.autodiff_fd_abs, r.autodiff_fd_rel)
    counts, result = f"{r.fd_checked}/{r.fd_skipped}", "ok" if r.passed else "FAIL"
    numbers = ["—" if v is None else f"{v:.2e}" for v in errors]
    return [str(r.layer), r.leaf, str(r.shape), *numbers, counts, result]


def gradcheck(net: MLP, params: Params, x: jax.Array, y: jax.Array, *, loss: str,
              reg: RegLike = None, backward: Backward | None = None,
              n_samples: int = N_SAMPLES, eps: float = EPS, rtol: float = RTOL, atol: float = ATOL,
              fd_rtol: float = FD_RTOL, fd_atol: float = FD_ATOL,
              key: jax.Array | None = None) -> GradcheckReport:  # fmt: skip
    """Check a backward pass against ``jax.grad`` and finite differences, in float64.

    For every leaf ``g`` of the manual gradient, with ``a`` from autodiff and ``d`` from central
    differences ``d_i = (f(w + ε·e_i) − f(w − ε·e_i)) / 2ε`` of the objective ``f``, a leaf
    passes when, entry by entry::

        |g − a| <= atol + rtol·|a|          (every entry)
        |g − d| <= fd_atol + fd_rtol·|d|    (the sampled entries away from kinks)

    Defaults: ``rtol=1e-7, atol=1e-9`` (both are exact up to rounding), ``eps=1e-6``,
    ``fd_rtol=1e-5, fd_atol=1e-7`` (the error of central differences in float64 is about
    ``ε² + 1e-16·|f|/ε``), ``n_samples=16`` entries per leaf (every entry of a smaller leaf).
    Entries near kinks are skipped for finite differences (see the module's docstring).

    Everything runs with 64-bit floats enabled (``jax.enable_x64`` inside this call only);
    `params`, `x`, float targets and the regularization strengths are cast to float64; a
    `backward` function receives them so, with `reg` in the form it was given.

    Args:
      net: the architecture.
      params: a tuple of ``{"W", "b"}`` dicts, one per layer.
      x: inputs, shape ``(batch, net.in_features)``.
      y: targets as for `jaxmlp.objective`.
      loss: the data loss's name.
      reg: a `Regularization`, a tuple with one per layer, or None.
      backward: the backward pass to check, with `backprop`'s signature
        ``backward(net, params, x, y, *, loss, reg) -> grads`` (grads shaped like `params`);
        by default `jaxmlp.backprop.backprop`.
      n_samples: entries per leaf for finite differences (0: none).
      eps: finite-difference step ``ε > 0``.
      rtol: relative tolerance of the manual gradient against autodiff.
      atol: absolute tolerance of the manual gradient against autodiff.
      fd_rtol: relative tolerance of the manual gradient against finite differences.
      fd_atol: absolute tolerance of the manual gradient against finite differences.
      key: PRNG key choosing the sampled entries; ``jax.random.key(0)`` by default.

    Returns:
      A `GradcheckReport`; ``report.passed`` is the verdict, ``print(report)`` the table.

    >>> from jaxmlp.gradcheck import gradcheck
    >>> net = MLP((3, 5, 2), ("tanh", "sigmoid"))
    >>> params = init_params(jax.random.key(0), net)
    >>> x, y = jax.random.normal(jax.random.key(1), (8, 3)), jnp.ones((8, 2))
    >>> report = gradcheck(net, params, x, y, loss="binary_crossentropy",
    ...                    reg=Regularization(l2w=1e-3))
    >>> report.passed, [(r.layer, r.leaf, r.fd_checked) for r in report.rows]
    (True, [(0, 'W', 15), (0, 'b', 5), (1, 'W', 10), (1, 'b', 2)])
    >>> print(report)  # doctest: +ELLIPSIS
    MLP(sizes=(3, 5, 2), activations=('tanh', 'sigmoid')), loss='binary_crossentropy', ...
    <BLANKLINE>
    ...
    layer leaf  shape     max abs    max rel ...
        0 W     (3, 5)   ...     15/0  ok
    ...
    PASSED: manual vs autodiff within rtol=1e-07, atol=1e-09; ...
    """
    check_problem(net, x, y, loss, params=params)
    per_layer(reg, net.n_layers)  # validates reg as objective does
    tolerances = {"rtol": rtol, "atol": atol, "fd_rtol": fd_rtol, "fd_atol": fd_atol}
    check_settings(n_samples=n_samples, eps=eps, **tolerances)
    if backward is not None and not callable(backward):
        raise TypeError(
            "backward must be a function backward(net, params, x, y, *, loss, reg) -> grads; "
            f"got {type(backward).__name__}"
        )
    rng = np.random.default_rng(_seed(jax.random.key(0) if key is None else key))
    title = (
        f"{net!r}, loss={loss!r}, reg={reg!r}\n"
        f"backward: {_name(backward or backprop)}  (float64; finite differences on sampled entries)"
    )
    problem = (net, params, x, y, loss, reg)
    with jax.enable_x64(True):
        manual, auto, sampled = _three_gradients(problem, backward, rng, n_samples, eps)
    rows = tuple(_leaf_check(manual, auto, *s, **tolerances) for s in sampled)
    floats = {name: float(tol) for name, tol in tolerances.items()}
    return GradcheckReport(rows, title, eps=float(eps), n_samples=int(n_samples), **floats)


def _three_gradients(problem: tuple, backward: Backward | None, rng, n_samples: int, eps: float):
    """In float64: the manual gradient, autodiff, and finite differences on sampled entries.

    Returns ``(manual, auto, sampled)``, the first two as NumPy trees, and per leaf ``(path,
    leaf, index, differences, kink_free)``.
    """
    net, params, x, y, loss, reg = problem
    # Cast on the host: no eager device op to compile for each new shape.
    # reg keeps its form (None, one Regularization, or one per layer) for `backward`.
    host64 = jax.tree.map(lambda a: np.asarray(a, np.float64), (params, x, reg))
    params64, x64, reg64 = jax.device_put(host64)
    y64 = jnp.asarray(y if np.ndim(y) == 1 else np.asarray(y, np.float64))
    manual, auto = _gradients(net, params64, x64, y64, loss, reg64, backward is None)
    if backward is not None:
        manual = backward(net, params64, x64, y64, loss=loss, reg=reg64)
        check_tree_matches(
            manual,
            params64,
            "backward must return gradients shaped like params ({like}); got {tree}",
            "backward returned a gradient of shape {shape} for params{path} of shape {expected}",
        )
    manual, auto = jax.tree.map(lambda g: np.asarray(g, np.float64), (manual, auto))
    sampled = []
    for path, leaf in jax.tree_util.tree_leaves_with_path(params64):  # W_0, b_0, W_1, …
        index = np.sort(rng.choice(leaf.size, min(n_samples, leaf.size), replace=False))
        fd = (net, x64, y64, loss, reg64)
        sampled.append((path, leaf, index, *central_differences(fd, params64, path, index, eps)))
    return manual, auto, sampled


def _leaf_check(manual, auto, path, leaf, local, d, ok, *, rtol, atol, fd_rtol, fd_atol):
    """One row of the report: manual against autodiff everywhere, and against `d` at `local`."""
    l, name = path[0].idx, path[1].key
    m, a = manual[l][name], auto[l][name]
    d, m_s, a_s = d[ok], m.ravel()[local][ok], a.ravel()[local][ok]
    diff = np.abs(m - a)
    passed = np.all(diff <= atol + rtol * np.abs(a))
    passed = passed and np.all(np.abs(m_s - d) <= fd_atol + fd_rtol * np.abs(d))
    return LeafCheck(
        layer=l, leaf=name, shape=tuple(leaf.shape),
        autodiff_abs=_max(diff), autodiff_rel=_max_rel(m, a),
        worst=tuple(int(i) for i in np.unravel_index(np.argmax(diff), m.shape)),
        fd_checked=int(ok.sum()), fd_skipped=int((~ok).sum()),
        fd_abs=_max(np.abs(m_s - d)), fd_rel=_max_rel(m_s, d),
        autodiff_fd_abs=_max(np.abs(a_s - d)), autodiff_fd_rel=_max_rel(a_s, d),
        passed=bool(passed),
    )  # fmt: skip


@functools.partial(jax.jit, static_argnames=("net", "loss", "with_backprop"))
def _gradients(
    net: MLP, params: Params, x: jax.Array, y: jax.Array, loss: str, reg, with_backprop: bool
) -> tuple[Params | None, Params]:
    """``(backprop, jax.grad)`` of the objective, compiled together.

    The first is None unless `with_backprop`: a user's backward function runs as it is.
    """
    auto = jax.grad(lambda p: objective_and_output(net, p, x, y, loss=loss, reg=reg)[0])(params)
    if not with_backprop:
        return None, auto
    zs, acts = intermediates(net, params, x)
    return backward(net, params, zs, acts, y, loss=loss, reg=reg), auto


def _seed(key: Any) -> np.ndarray:
    """A NumPy seed from a JAX PRNG key (typed or raw ``uint32[2]``)."""
    check_key(key)
    if jnp.issubdtype(key.dtype, jax.dtypes.prng_key):
        key = jax.random.key_data(key)
    return np.asarray(key).ravel()


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
    module, name = getattr(fn, "__module__", None), getattr(fn, "__qualname__", None)
    return f"{module}.{name}" if module and name else repr(fn)
