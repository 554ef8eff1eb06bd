"""Statistics for results over seeds or folds: mean, spread, Student-t intervals, paired tests.

A score from one training run depends on the seed and on the split; `jaxmlp.cross_validate` and
``jaxmlp train --seeds`` give one score per fold or seed, and this module turns such a list into
a mean with an interval, or compares two models run on the same seeds or folds. Everything runs
on the host in float64 with NumPy and Python's `math`; it needs neither JAX nor SciPy.

For n values x with mean m, the sample standard deviation is
``s = sqrt(sum((x - m)**2) / (n - 1))`` and the standard error ``sem = s / sqrt(n)``. The
two-sided interval at confidence c is ``m ± t_{(1+c)/2, n-1} · sem``, with t the Student-t
quantile with n - 1 degrees of freedom. `paired` applies this to the differences ``d = a - b``
and adds the paired t-test: ``t = mean(d) / (s_d / sqrt(n))`` and the two-sided p-value
``p = 2 · P(T_{n-1} > |t|)``.

The t distribution comes from the regularized incomplete beta function I_x(a, b), evaluated by
its continued fraction (modified Lentz's method): for T with ν degrees of freedom and
``x = ν / (ν + t²)``, ``P(T ≤ t) = I_x(ν/2, 1/2) / 2`` for t ≤ 0 and
``P(|T| > |t|) = I_x(ν/2, 1/2)``. The p-value is computed from I directly (not as 1 - cdf), so
it keeps its relative precision when it is tiny. The quantile starts from a normal quantile or
a tail bound and is refined by Newton steps on log(cdf), kept inside a bracket.
"""

from __future__ import annotations

import math
from typing import Any, NamedTuple

import numpy as np

__all__ = ["Paired", "Summary", "paired", "summary", "t_cdf", "t_quantile"]


class Summary(NamedTuple):
    """Mean, spread and Student-t interval of a sample (see `summary`)."""

    n: int
    mean: float
    std: float
    sem: float
    ci_low: float
    ci_high: float
    confidence: float

    def text(self, digits: int = 3) -> str:
        """``"mean [ci_low, ci_high]"`` with `digits` decimal places: ``0.959 [0.955, 0.963]``."""
        return _interval_text(self.mean, self.ci_low, self.ci_high, digits)


class Paired(NamedTuple):
    """Mean difference, its interval and the paired t-test (see `paired`)."""

    n: int
    mean: float
    std: float
    ci_low: float
    ci_high: float
    t: float
    p: float
    confidence: float

    def text(self, digits: int = 3) -> str:
        """``"mean [ci_low, ci_high]"`` of the differences with `digits` decimal places."""
        return _interval_text(self.mean, self.ci_low, self.ci_high, digits)


def _interval_text(mean: float, low: float, high: float, digits: int) -> str:
    return f"{mean:.{digits}f} [{low:.{digits}f}, {high:.{digits}f}]"


# --------------------------------------------------------------------------- input checks


def _number(name: str, value: Any) -> float:
    """`value` as a float; TypeError unless it is a real number (not a bool or a string)."""
    if isinstance(value, (bool, np.bool_, str, bytes)):
        raise TypeError(f"{name} must be a real number; got {type(value).__name__}")
    try:
        return float(value)
    except (TypeError, ValueError):
        raise TypeError(f"{name} must be a real number; got {type(value).__name__}") from None


def _in_unit_interval(name: str, value: Any) -> float:
    v = _number(name, value)
    if not 0.0 < v < 1.0:
        raise ValueError(f"{name} must be in the open interval (0, 1); got {value!r}")
    return v


def _positive(name: str, value: Any) -> float:
    v = _number(name, value)
    if not v > 0.0:
        raise ValueError(f"{name} must be > 0; got {value!r}")
    return v


def _values(name: str, values: Any, caller: str, what: str = "values") -> np.ndarray:
    """`values` as a finite 1-D float64 array of at least 2 numbers, or a one-line error."""
    expected = f"{name} must be a 1-D sequence of real numbers"
    if isinstance(values, (str, bytes)):
        raise TypeError(f"{expected}; got {type(values).__name__}")
    try:
        arr = np.asarray(values)
    except (TypeError, ValueError):  # ragged nesting
        raise TypeError(f"{expected}; got a ragged {type(values).__name__}") from None
    if arr.ndim != 1:
        got = type(values).__name__ if arr.ndim == 0 else f"an array of shape {arr.shape}"
        raise TypeError(f"{expected}; got {got}")
    if arr.dtype.kind not in "iuf" and "float" not in arr.dtype.name:  # (bfloat16 is kind V)
        raise TypeError(f"{expected}; got elements of dtype {arr.dtype}")
    arr = arr.astype(np.float64)
    if arr.size < 2:
        raise ValueError(
            f"{caller} needs at least 2 {what} for a sample std and an interval; got {arr.size}"
        )
    bad = ~np.isfinite(arr)
    if bad.any():
        n_nan = int(np.isnan(arr).sum())
        raise ValueError(
            f"{name} must be finite; it holds {n_nan} NaN and {int(bad.sum()) - n_nan} "
            f"infinite value(s), the first at index {int(np.argmax(bad))}"
        )
    return arr


def _mean_std(name: str, x: np.ndarray) -> tuple[float, float]:
    """Mean and sample std (ddof=1) of finite `x`; ValueError if they overflow float64."""
    with np.errstate(over="ignore", invalid="ignore"):
        mean, std = float(np.mean(x)), float(np.std(x, ddof=1))
    if not (math.isfinite(mean) and math.isfinite(std)):
        raise ValueError(f"{name} are too large: their mean or std overflows float64")
    return mean, std


# --------------------------------------------------------------------------- numerics

_TINY = 1e-300  # keeps Lentz's denominators away from 0
_EPS = 4e-16  # two rounding steps around 1
_HUGE = 1.7976931348623157e308  # the largest float


def _beta_fraction(a: float, b: float, x: float) -> float:
    """The continued fraction of I_x(a, b), by the modified Lentz method (converges for small x)."""
    c, d = 1.0, 1.0 - (a + b) * x / (a + 1.0)
    d = 1.0 / (d if abs(d) > _TINY else _TINY)
    h = d
    for m in range(1, 10_000):
        for coef in (  # the even term d_2m, then the odd term d_2m+1
            m * (b - m) * x / ((a + 2 * m - 1) * (a + 2 * m)),
            -(a + m) * (a + b + m) * x / ((a + 2 * m) * (a + 2 * m + 1)),
        ):
            d = 1.0 + coef * d
            d = 1.0 / (d if abs(d) > _TINY else _TINY)
            c = 1.0 + coef / c
            c = c if abs(c) > _TINY else _TINY
            h *= c * d
        if abs(c * d - 1.0) < _EPS:
            break
    return h


def _beta_inc(a: float, b: float, x: float, y: float, log_x: float, log_y: float) -> float:
    """Regularized incomplete beta I_x(a, b), given x, y = 1 - x and their logarithms."""
    if x > (a + 1.0) / (a + b + 2.0):  # the fraction converges fast only below this point
        return 1.0 - _beta_front(b, a, log_y, log_x) * _beta_fraction(b, a, y)
    return _beta_front(a, b, log_x, log_y) * _beta_fraction(a, b, x)


def _beta_front(a: float, b: float, log_x: float, log_y: float) -> float:
    """The prefactor x^a·y^b / (a·B(a, b)) of the continued fraction, through logarithms."""
    return math.exp(a * log_x + b * log_y - _log_beta(a, b)) / a


def _stirling_rest(z: float) -> float:
    """lgamma(z) - ((z - 1/2)·log z - z + log(2π)/2), to 1e-17 for z >= 100."""
    return 1.0 / (12.0 * z) - 1.0 / (360.0 * z**3) + 1.0 / (1260.0 * z**5)


def _log_beta(a: float, b: float) -> float:
    """Log B(a, b); for B(a, 1/2) with a large, without lgamma's cancellation (error ~ a·eps)."""
    big, small = max(a, b), min(a, b)
    if small != 0.5 or big < 100.0:
        return math.lgamma(a) + math.lgamma(b) - math.lgamma(a + b)
    # lgamma(big + 1/2) - lgamma(big) from Stirling's series; the large terms cancel exactly
    gap = big * math.log1p(0.5 / big) - 0.5 + 0.5 * math.log(big)
    gap += _stirling_rest(big + 0.5) - _stirling_rest(big)
    return 0.5 * math.log(math.pi) - gap


def _two_tail(t: float, df: float) -> float:
    """P(|T| > |t|) = I_x(df/2, 1/2) with x = df / (df + t²), through s = min(r, 1/r).

    With r = |t| / sqrt(df), x and 1 - x are s²/(1 + s²) and 1/(1 + s²) in some order; they and
    their logarithms are computed without cancellation, overflow or underflow, so the result
    keeps its relative precision far into the tails.
    """
    abs_t, root_df = abs(t), math.sqrt(df)
    if abs_t == 0.0 or abs_t == math.inf:
        return 1.0 if abs_t == 0.0 else 0.0
    log_s = -abs(math.log(abs_t) - math.log(root_df))
    s2 = math.exp(2.0 * log_s)
    small, big = s2 / (1.0 + s2), 1.0 / (1.0 + s2)
    log_small, log_big = 2.0 * log_s - math.log1p(s2), -math.log1p(s2)
    if abs_t > root_df:
        return _beta_inc(0.5 * df, 0.5, small, big, log_small, log_big)
    return _beta_inc(0.5 * df, 0.5, big, small, log_big, log_small)


def _log1p_square(r: float) -> float:
    """log(1 + r²) without overflow."""
    return math.log1p(r * r) if abs(r) < 1e150 else 2.0 * math.log(abs(r))


def _cdf(t: float, df: float) -> float:
    half = 0.5 * _two_tail(t, df)
    return half if t < 0 else 1.0 - half


def _log_density_at_0(df: float) -> float:
    return math.lgamma(0.5 * (df + 1)) - math.lgamma(0.5 * df) - 0.5 * math.log(df * math.pi)


def _log_gap(t: float, q: float, df: float) -> float:
    """|log(cdf(t)) - log(q)|, inf where the cdf underflows to 0."""
    cdf = _cdf(t, df)
    return abs(math.log(cdf) - math.log(q)) if cdf > 0.0 else math.inf


def _quantile_start(q: float, df: float, log_k: float) -> float:
    """A start for `_lower_quantile`: a normal quantile or a heavy-tail bound, whichever is nearer.

    -inf when the quantile lies beyond the float range (tiny q with df well below 1).
    """
    w = math.sqrt(-2.0 * math.log(q))  # normal quantile, Abramowitz & Stegun 26.2.23
    z = -w + (2.515517 + 0.802853 * w + 0.010328 * w * w) / (
        1.0 + 1.432788 * w + 0.189269 * w * w + 0.001308 * w**3
    )
    # The density is below k·(t²/df)^(-(df+1)/2); its integral gives a point left of the root,
    # near it for heavy tails (small df), where the normal start is far off.
    log_tail = (log_k + 0.5 * (df - 1) * math.log(df) - math.log(q)) / df
    if log_tail > 709.0 and _cdf(-_HUGE, df) > q:
        return -math.inf
    tail = -math.exp(min(log_tail, math.log(_HUGE)))
    return min((z, tail), key=lambda s: _log_gap(s, q, df))


def _lower_quantile(q: float, df: float) -> float:
    """The t with P(T ≤ t) = q for 0 < q < 1/2, by Newton steps on log(cdf) kept in a bracket."""
    log_k = _log_density_at_0(df)
    t = _quantile_start(q, df, log_k)
    if t == -math.inf:
        return t
    lo, hi = -_HUGE, 0.0
    last_step = math.inf
    for _ in range(100):
        cdf = _cdf(t, df)
        if cdf == q:
            return t
        lo, hi = (lo, t) if cdf > q else (t, hi)
        log_density = log_k - 0.5 * (df + 1) * _log1p_square(t / math.sqrt(df))
        if cdf > 0.0:
            ratio = math.exp(min(math.log(cdf) - log_density, 700.0))  # cdf / density
            near = abs(cdf - q) < 0.5 * q  # then log1p keeps the digits of a small gap
            gap = math.log1p((cdf - q) / q) if near else math.log(cdf) - math.log(q)
            new, step = t - gap * ratio, abs(gap * ratio) / max(1.0, abs(t))
            if step < 1e-14 or (step < 1e-9 and step > 0.5 * last_step):
                return new  # converged, or stalled at the rounding noise of the cdf
            last_step = step
        if cdf == 0.0 or not lo < new < hi:  # bisect, geometrically across decades
            geometric = hi < 0.0 and lo < 4.0 * hi
            new = -math.sqrt(-lo) * math.sqrt(-hi) if geometric else 0.5 * lo + 0.5 * hi
        t = new
    return t


# --------------------------------------------------------------------------- public API


def t_cdf(t: float, df: float) -> float:
    """P(T ≤ t) for Student's t distribution with `df` degrees of freedom.

    Args:
        t: The point; ±inf give 0 and 1.
        df: Degrees of freedom, > 0 (need not be an integer).

    Returns:
        The cumulative probability, a float in [0, 1].
    """
    t, df = _number("t", t), _positive("df", df)
    if math.isnan(t):
        raise ValueError("t must be a number; got nan")
    return _cdf(t, df)


def t_quantile(q: float, df: float) -> float:
    """The t with P(T ≤ t) = q for Student's t distribution with `df` degrees of freedom.

    The inverse of `t_cdf`, refined by Newton steps until they are below 1e-14·max(1, |t|) (or
    stall at the cdf's rounding noise). Quantiles beyond the float range (tiny q with df well
    below 1) are ±inf.

    Args:
        q: The probability, in the open interval (0, 1).
        df: Degrees of freedom, > 0 (need not be an integer).

    Returns:
        The quantile; negative for q < 1/2, 0 at q = 1/2.
    """
    q, df = _in_unit_interval("q", q), _positive("df", df)
    if q == 0.5:
        return 0.0
    return _lower_quantile(q, df) if q < 0.5 else -_lower_quantile(1.0 - q, df)


def _half_width(sem: float, n: int, confidence: float) -> float:
    if sem == 0.0:
        return 0.0
    return -_lower_quantile(0.5 * (1.0 - confidence), n - 1.0) * sem


def summary(values: Any, confidence: float = 0.95) -> Summary:
    """Mean, sample std, standard error and Student-t interval of results over seeds or folds.

    The interval is ``mean ± t_{(1+c)/2, n-1} · sem`` with ``sem = std / sqrt(n)`` and the
    sample std (``ddof=1``). When all values are equal, std is 0 and the interval is
    ``[mean, mean]``.

    Args:
        values: A 1-D sequence of at least 2 finite real numbers (list, tuple, NumPy or JAX
            array).
        confidence: The two-sided confidence level c, in (0, 1).

    Returns:
        A `Summary` ``(n, mean, std, sem, ci_low, ci_high, confidence)`` of Python numbers.

    Raises:
        TypeError: `values` is not a 1-D sequence of real numbers.
        ValueError: fewer than 2 values, NaN or infinite values, or `confidence` not in (0, 1).

    Example:
        >>> from jaxmlp.stats import summary
        >>> s = summary([0.95, 0.96, 0.97])
        >>> s.n, round(s.mean, 6), round(s.std, 6), round(s.ci_low, 6), round(s.ci_high, 6)
        (3, 0.96, 0.01, 0.935159, 0.984841)
        >>> s.text()
        '0.960 [0.935, 0.985]'
    """
    x = _values("values", values, "summary")
    confidence = _in_unit_interval("confidence", confidence)
    n = x.size
    mean, std = _mean_std("values", x)
    sem = std / math.sqrt(n)
    half = _half_width(sem, n, confidence)
    return Summary(n, mean, std, sem, mean - half, mean + half, confidence)


def paired(a: Any, b: Any, confidence: float = 0.95) -> Paired:
    """Paired t-test of two models scored on the same seeds or folds: ``d = a - b``.

    Gives the mean difference, the sample std of d, the Student-t interval of the mean
    difference, ``t = mean / (std / sqrt(n))`` and the two-sided p-value
    ``2 · P(T_{n-1} > |t|)``. When all differences are equal (std 0): if they are 0, t is 0,
    p is 1 and the interval is ``[0, 0]``; otherwise t is ±inf, p is 0 and the interval is
    ``[mean, mean]``.

    Args:
        a: Scores of the first model, a 1-D sequence of at least 2 finite real numbers.
        b: Scores of the second model on the same seeds or folds, in the same order.
        confidence: The two-sided confidence level of the interval, in (0, 1).

    Returns:
        A `Paired` ``(n, mean, std, ci_low, ci_high, t, p, confidence)`` of Python numbers.

    Raises:
        TypeError: `a` or `b` is not a 1-D sequence of real numbers.
        ValueError: fewer than 2 pairs, lengths that differ, NaN or infinite values, or
            `confidence` not in (0, 1).

    Example:
        >>> from jaxmlp.stats import paired
        >>> r = paired([0.91, 0.93, 0.92, 0.94], [0.90, 0.91, 0.91, 0.92])
        >>> round(r.mean, 6), round(r.t, 4), round(r.p, 4)
        (0.015, 5.1962, 0.0138)
        >>> r.text()
        '0.015 [0.006, 0.024]'
    """
    x = _values("a", a, "paired", "pairs")
    y = _values("b", b, "paired", "pairs")
    if x.size != y.size:
        raise ValueError(f"a and b must have the same length (one pair per seed or fold); "
                         f"got {x.size} and {y.size}")  # fmt: skip
    confidence = _in_unit_interval("confidence", confidence)
    with np.errstate(over="ignore"):
        d = _values("a - b", x - y, "paired", "pairs")  # (finite unless it overflows)
    n = d.size
    mean, std = _mean_std("a - b", d)
    if std == 0.0:
        t, p = (0.0, 1.0) if mean == 0.0 else (math.copysign(math.inf, mean), 0.0)
    else:
        t = mean / (std / math.sqrt(n))
        p = _two_tail(t, n - 1.0)
    half = _half_width(std / math.sqrt(n), n, confidence)
    return Paired(n, mean, std, mean - half, mean + half, t, p, confidence)
