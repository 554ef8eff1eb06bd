"""jaxmlp.stats against scipy.stats: the t distribution, summaries, paired t-tests, errors."""

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from jaxmlp import stats

ss = pytest.importorskip("scipy.stats")  # (scipy is a test dependency only)

RTOL = 1e-10
DFS = [1, 2, 3, 5, 10, 30, 100, 999]
QS = [1e-6, 1e-5, 1e-4, 1e-3, 0.01, 0.025, 0.05, 0.1, 0.2, 0.3, 0.4, 0.45, 0.5]
QS = QS + [1.0 - q for q in reversed(QS[:-1])]
TS = np.concatenate([-np.logspace(-3, 3, 25), [0.0], np.logspace(-3, 3, 25)])
NS = [2, 3, 4, 5, 7, 10, 20, 50, 100, 300, 1000]
CONFIDENCES = [0.9, 0.95, 0.99]


@pytest.fixture(autouse=True)
def _no_patch_suggestion(request):
    """Keep hypothesis from writing a patch file for a failing test (see test_properties.py)."""
    yield
    if hasattr(request.node, "_hypothesis_failing_examples"):
        del request.node._hypothesis_failing_examples


# --------------------------------------------------------------------------- t distribution


@pytest.mark.parametrize("df", DFS)
def test_t_cdf_matches_scipy(df):
    # (scipy's cdf for df=1 loses digits for |t| < 1e-6, so the closed forms check tiny t below)
    ours = np.array([stats.t_cdf(t, df) for t in TS])
    np.testing.assert_allclose(ours, ss.t.cdf(TS, df), rtol=RTOL, atol=1e-300)


def test_t_cdf_closed_forms_near_zero_and_far_out():
    for t in [-1e-12, -1e-8, 1e-8, 1e-3]:
        np.testing.assert_allclose(stats.t_cdf(t, 1), 0.5 + math.atan(t) / math.pi, rtol=RTOL)
        np.testing.assert_allclose(stats.t_cdf(t, 2), 0.5 + t / (2 * math.sqrt(2 + t * t)), RTOL)
    for t in [-10.0, -1e10, -1e100]:  # the lower tails, written without cancellation
        np.testing.assert_allclose(stats.t_cdf(t, 1), math.atan(-1 / t) / math.pi, rtol=RTOL)
        root = math.sqrt(2 + t * t)
        np.testing.assert_allclose(stats.t_cdf(t, 2), 1 / (root * (root - t)), rtol=RTOL)
    small = stats.t_cdf(-1e300, 1)  # 1 / (π·1e300): no overflow of 1e300²
    np.testing.assert_allclose(small, 1 / (math.pi * 1e300), rtol=RTOL)
    assert stats.t_quantile(1e-100, 1) == pytest.approx(-1 / (math.pi * 1e-100), rel=RTOL)
    assert stats.t_quantile(1e-300, 0.1) == -math.inf  # (about -1e3000)
    assert stats.t_cdf(-math.inf, 3) == 0.0 and stats.t_cdf(math.inf, 3) == 1.0
    assert stats.t_cdf(0.0, 7) == 0.5


@pytest.mark.parametrize("df", DFS)
def test_t_quantile_matches_scipy(df):
    ours = np.array([stats.t_quantile(q, df) for q in QS])
    np.testing.assert_allclose(ours, ss.t.ppf(QS, df), rtol=RTOL, atol=1e-14)


@pytest.mark.parametrize("df", [0.3, 1, 2.5, 30, 999])
def test_t_quantile_inverts_t_cdf(df):
    for q in [1e-30, 1e-12, 1e-6, 0.01, 0.3, 0.5 - 1e-9, 0.5, 0.7, 1 - 1e-6]:
        t = stats.t_quantile(q, df)
        np.testing.assert_allclose(stats.t_cdf(t, df), q, rtol=1e-11)


# --------------------------------------------------------------------------- summary, paired


@pytest.mark.parametrize("n", NS)
def test_summary_matches_numpy_and_scipy(n):
    x = np.random.default_rng(n).normal(0.9, 0.02, size=n)
    for confidence in CONFIDENCES:
        s = stats.summary(x, confidence=confidence)
        assert s.n == n and s.confidence == confidence
        np.testing.assert_allclose(s.mean, np.mean(x), rtol=1e-15)
        np.testing.assert_allclose(s.std, np.std(x, ddof=1), rtol=1e-15)
        np.testing.assert_allclose(s.sem, ss.sem(x), rtol=1e-14)
        low, high = ss.t.interval(confidence, n - 1, loc=np.mean(x), scale=ss.sem(x))
        np.testing.assert_allclose([s.ci_low, s.ci_high], [low, high], rtol=RTOL)


@pytest.mark.parametrize("n", NS)
@pytest.mark.parametrize("shift", [0.0, 0.01, 0.05])
def test_paired_matches_scipy_ttest_rel(n, shift):
    rng = np.random.default_rng(n)
    a = rng.normal(0.9, 0.02, size=n)
    b = a - shift + rng.normal(0.0, 0.01, size=n)
    d = a - b
    ref = ss.ttest_rel(a, b)
    for confidence in CONFIDENCES:
        r = stats.paired(a, b, confidence=confidence)
        assert r.n == n and r.confidence == confidence
        np.testing.assert_allclose([r.mean, r.std], [np.mean(d), np.std(d, ddof=1)], rtol=1e-13)
        np.testing.assert_allclose(r.t, ref.statistic, rtol=RTOL)
        np.testing.assert_allclose(r.p, ref.pvalue, rtol=RTOL, atol=1e-300)
        low, high = ss.t.interval(confidence, n - 1, loc=np.mean(d), scale=ss.sem(d))
        np.testing.assert_allclose([r.ci_low, r.ci_high], [low, high], rtol=RTOL)


def test_tiny_p_value_keeps_its_digits():
    a = np.linspace(0.0, 1.0, 200)
    b = a - 0.01 + 0.01 * np.sin(np.arange(200))  # t of about 20: p about 4e-49
    r = stats.paired(a, b)
    assert 0.0 < r.p < 1e-40
    np.testing.assert_allclose(r.p, ss.ttest_rel(a, b).pvalue, rtol=1e-9)


def test_degenerate_cases():
    s = stats.summary([0.5, 0.5, 0.5])
    assert (s.std, s.sem, s.ci_low, s.ci_high) == (0.0, 0.0, 0.5, 0.5)
    same = stats.paired([1.0, 2.0, 3.0], [1.0, 2.0, 3.0])
    assert (same.mean, same.std, same.t, same.p, same.ci_low, same.ci_high) == (0, 0, 0, 1, 0, 0)
    up = stats.paired([2.0, 3.0, 4.0], [1.0, 2.0, 3.0])
    assert (up.mean, up.t, up.p, up.ci_low, up.ci_high) == (1.0, math.inf, 0.0, 1.0, 1.0)
    assert stats.paired([1.0, 2.0], [2.0, 3.0]).t == -math.inf


def test_inputs_of_every_kind_and_text():
    import jax.numpy as jnp

    ref = stats.summary([0.95, 0.96, 0.97])
    assert stats.summary((0.95, 0.96, 0.97)) == ref == stats.summary(np.array([0.95, 0.96, 0.97]))
    in_jax = jnp.array([0.95, 0.96, 0.97])  # float32, read in float64
    assert stats.summary(in_jax) == stats.summary(np.asarray(in_jax, dtype=np.float64))
    assert stats.summary([1, 2, 3]).mean == 2.0 and stats.summary(np.arange(4)).n == 4
    assert isinstance(ref.mean, float) and isinstance(ref.n, int)
    assert ref._fields == ("n", "mean", "std", "sem", "ci_low", "ci_high", "confidence")
    assert stats.Paired._fields == ("n", "mean", "std", "ci_low", "ci_high", "t", "p", "confidence")
    assert ref.text() == "0.960 [0.935, 0.985]" and ref.text(1) == "1.0 [0.9, 1.0]"
    assert stats.paired([3, 4, 6], [1, 2, 3]).text(2) == "2.33 [0.90, 3.77]"


# --------------------------------------------------------------------------- properties

FLOATS = st.floats(-1e6, 1e6, allow_nan=False, allow_infinity=False)


@settings(max_examples=50, deadline=None)
@given(
    st.lists(FLOATS, min_size=2, max_size=60),
    st.floats(0.5, 0.999, exclude_min=True),
    st.floats(0.5, 0.999, exclude_min=True),
)
def test_interval_holds_the_mean_and_widens_with_confidence(values, c1, c2):
    c1, c2 = sorted((c1, c2))
    s1, s2 = stats.summary(values, c1), stats.summary(values, c2)
    assert s1.ci_low <= s1.mean <= s1.ci_high
    assert s2.ci_low <= s2.mean <= s2.ci_high
    width1, width2 = s1.ci_high - s1.ci_low, s2.ci_high - s2.ci_low
    assert width1 <= width2 * (1 + 1e-12) + 1e-300
    same = stats.paired(values, values, c1)
    assert (same.mean, same.t, same.p) == (0.0, 0.0, 1.0)


# --------------------------------------------------------------------------- errors


@pytest.mark.parametrize(
    "call, error, match",
    [
        (lambda: stats.summary([0.9]), ValueError,
         r"^summary needs at least 2 values for a sample std and an interval; got 1$"),
        (lambda: stats.summary([]), ValueError, r"at least 2 values .*; got 0$"),
        (lambda: stats.summary("0.9 0.8"), TypeError,
         r"^values must be a 1-D sequence of real numbers; got str$"),
        (lambda: stats.summary(0.9), TypeError, r"1-D sequence of real numbers; got float$"),
        (lambda: stats.summary([[0.9, 0.8]]), TypeError, r"got an array of shape \(1, 2\)$"),
        (lambda: stats.summary([0.9, [0.8, 0.7]]), TypeError, r"got a ragged list$"),
        (lambda: stats.summary([0.9, None]), TypeError, r"got elements of dtype object$"),
        (lambda: stats.summary([1j, 2]), TypeError, r"got elements of dtype complex128$"),
        (lambda: stats.summary([0.9, math.nan, math.inf, math.nan]), ValueError,
         r"^values must be finite; it holds 2 NaN and 1 infinite value\(s\), the first at index 1"),
        (lambda: stats.summary([1e308, 1e308]), ValueError, r"values are too large"),
        (lambda: stats.summary([1, 2], confidence=1.0), ValueError,
         r"^confidence must be in the open interval \(0, 1\); got 1.0$"),
        (lambda: stats.summary([1, 2], confidence=0), ValueError, r"\(0, 1\); got 0$"),
        (lambda: stats.summary([1, 2], confidence="95%"), TypeError,
         r"^confidence must be a real number; got str$"),
        (lambda: stats.paired([1, 2, 3], [1, 2]), ValueError,
         r"^a and b must have the same length \(one pair per seed or fold\); got 3 and 2$"),
        (lambda: stats.paired([1], [2]), ValueError, r"^paired needs at least 2 pairs .*; got 1$"),
        (lambda: stats.paired([1, 2], [1, math.nan]), ValueError,
         r"^b must be finite; it holds 1 NaN and 0 infinite value\(s\), the first at index 1$"),
        (lambda: stats.paired({1, 2}, [1, 2]), TypeError, r"^a must be a 1-D sequence .* got set$"),
        (lambda: stats.paired([1, 2], [1, 2], confidence=1.5), ValueError, r"confidence .*1.5$"),
        (lambda: stats.t_cdf(1.0, 0), ValueError, r"^df must be > 0; got 0$"),
        (lambda: stats.t_cdf(math.nan, 3), ValueError, r"^t must be a number; got nan$"),
        (lambda: stats.t_cdf("1", 3), TypeError, r"^t must be a real number; got str$"),
        (lambda: stats.t_quantile(0.5, -2.0), ValueError, r"^df must be > 0; got -2.0$"),
        (lambda: stats.t_quantile(0.0, 3), ValueError,
         r"^q must be in the open interval \(0, 1\); got 0.0$"),
        (lambda: stats.t_quantile(1, 3), ValueError, r"^q must be .*; got 1$"),
    ],
)  # fmt: skip
def test_errors_name_the_argument(call, error, match):
    with pytest.raises(error, match=match):
        call()
