"""Tests for driftline.detectors.special against SciPy (the reference implementation).

Tolerances (from the specification of the module):

* kstwo_sf / ks_2samp_asymp_pvalue: 1e-9 absolute against scipy.stats.kstwo / ks_2samp.
* chi2_sf: 1e-9 relative or 1e-12 absolute against scipy.stats.chi2.sf.

The file also runs with NUMBA_DISABLE_JIT=1 (pure-Python path); the number of random
examples is reduced there because the interpreted matrix/recursion methods are slow.
"""

from __future__ import annotations

import doctest
import functools
import itertools
import math

import numba
import numpy as np
import pytest
import scipy.stats as st
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as hs

from driftline.detectors import special
from driftline.detectors.special import chi2_sf, ks_2samp_asymp_pvalue, kstwo_sf

JIT = not getattr(numba.config, "DISABLE_JIT", False)
KS_ATOL = 1e-9
CHI2_RTOL = 1e-9
CHI2_ATOL = 1e-12

SETTINGS = settings(
    max_examples=150 if JIT else 15,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow],
)


@functools.cache
def scipy_kstwo_sf(n: int, d: float) -> float:
    return float(st.kstwo.sf(d, n))


def assert_ks_close(n: int, d: float) -> None:
    got = kstwo_sf(n, d)
    want = scipy_kstwo_sf(n, d)
    assert abs(got - want) <= KS_ATOL, (n, d, n * d * d, got, want)


def assert_chi2_close(got: float, want: float, x: float, df: float) -> None:
    err = abs(got - want)
    assert err <= CHI2_ATOL or err <= CHI2_RTOL * abs(want), (x, df, got, want)


# ---------------------------------------------------------------------------------------
# kstwo_sf
# ---------------------------------------------------------------------------------------

GRID_N = [1, 2, 3, 5, 10, 50, 139, 140, 141, 500, 1000, 9091, 10**5, 10**6]


def _grid_d(n: int) -> list[float]:
    """d values spread over [0, 1] plus the algorithm region boundaries (and neighbours).

    SciPy's exact one-sided sum takes ~1.5 s per call at n = 1e6 in the upper-tail region
    (2.2 <= n d^2 < 354), so only a few points are placed there for that n.
    """
    base = list(np.linspace(0.0, 1.0, 41 if JIT else 11))
    edges = [0.5 / n, 1.0 / n, 1.0 - 1.0 / n, 0.5, (1.4 / n) ** (2.0 / 3.0)]
    heavy = n >= 10**6
    cs = (2.2, 370.0) if heavy else (0.754693, 4.0, 2.2, 354.0, 354.2, 370.0)
    edges += [math.sqrt(c / n) for c in cs]
    pts = [math.sqrt(20.0 / n)] if heavy else []
    for e in edges:
        if 0.0 <= e <= 1.0:
            pts += [e, float(np.nextafter(e, 0.0)), float(np.nextafter(e, 2.0))]
            if JIT and not heavy:
                pts += [e * 0.97, e * 1.03]
    return sorted({min(max(float(v), 0.0), 1.0) for v in base + pts})


@pytest.mark.parametrize("n", GRID_N)
def test_kstwo_sf_grid(n: int) -> None:
    for d in _grid_d(n):
        assert_ks_close(n, d)


@pytest.mark.parametrize("n", [1, 2, 3, 5, 10, 50, 140, 141, 1000, 10**5, 10**6, 10**7])
def test_kstwo_sf_exact_ends(n: int) -> None:
    assert kstwo_sf(n, 0.0) == 1.0
    assert kstwo_sf(n, 1.0) == 0.0
    assert kstwo_sf(n, 0.5 / n) == 1.0  # below the support: P(D_n >= d) = 1
    if n >= 2:
        # Ruben-Gambino upper end, 2 (1 - d)^n
        d = 1.0 - 0.5 / n
        assert kstwo_sf(n, d) == pytest.approx(2.0 * (0.5 / n) ** n, rel=1e-12, abs=0.0)


def test_kstwo_sf_small_n_closed_forms() -> None:
    # n = 1: D_1 = max(U, 1-U), P(D_1 >= d) = 2(1 - d) on [1/2, 1].
    for d in (0.5, 0.6, 0.75, 0.9, 0.999):
        assert kstwo_sf(1, d) == pytest.approx(2.0 * (1.0 - d), abs=1e-15)
    # Ruben-Gambino lower end: 1 - n!/n^n (2nd - 1)^n for 1/(2n) < d <= 1/n.
    for n in (2, 3, 7, 20):
        d = 0.8 / n
        exact = 1.0 - math.factorial(n) / n**n * (2 * n * d - 1.0) ** n
        assert kstwo_sf(n, d) == pytest.approx(exact, abs=1e-14)


@pytest.mark.parametrize("n", [1, 7, 140, 141, 5000, 10**6])
def test_kstwo_sf_monotone_in_d(n: int) -> None:
    ds = np.linspace(0.0, 1.0, 301 if JIT else 31)
    vals = [kstwo_sf(n, float(d)) for d in ds]
    assert all(0.0 <= v <= 1.0 for v in vals)
    # non-increasing, up to the small jumps where SciPy (and so kstwo_sf) switches between
    # exact and approximate methods
    assert all(b <= a + 1e-6 for a, b in itertools.pairwise(vals))


@hs.composite
def n_and_d(draw: hs.DrawFn, max_log10_n: float) -> tuple[int, float]:
    """n log-uniform in [1, 10**max_log10_n]; d uniform on [0, 1] or on the n d^2 scale."""
    n = max(round(10.0 ** draw(hs.floats(0.0, max_log10_n))), 1)
    kind = draw(hs.integers(0, 2))
    if kind == 0:
        d = draw(hs.floats(0.0, 1.0))
    else:
        c = draw(hs.floats(0.0, 30.0 if kind == 1 else 400.0))
        d = min(math.sqrt(c / n), 1.0)
    return n, d


@SETTINGS
@given(nd=n_and_d(5.0))
def test_kstwo_sf_random_up_to_1e5(nd: tuple[int, float]) -> None:
    assert_ks_close(*nd)


@settings(SETTINGS, max_examples=60 if JIT else 8)
@given(nd=n_and_d(7.0))
def test_kstwo_sf_random_up_to_1e7(nd: tuple[int, float]) -> None:
    assert_ks_close(*nd)


def test_kstwo_sf_edge_cases() -> None:
    nan = float("nan")
    assert math.isnan(kstwo_sf(10, nan))
    assert math.isnan(kstwo_sf(0, 0.3))
    assert math.isnan(kstwo_sf(-5, 0.3))
    assert math.isnan(kstwo_sf(5.5, 0.3))  # type: ignore[arg-type]  # non-integral n
    assert math.isnan(kstwo_sf(nan, 0.3))  # type: ignore[arg-type]
    assert kstwo_sf(10, -0.5) == 1.0
    assert kstwo_sf(10, -math.inf) == 1.0
    assert kstwo_sf(10, 0.0) == 1.0
    assert kstwo_sf(10, 1.0) == 0.0
    assert kstwo_sf(10, 1.5) == 0.0
    assert kstwo_sf(10, math.inf) == 0.0
    assert kstwo_sf(10**7, 0.5) == 0.0
    assert kstwo_sf(10**9, 1e-4) == pytest.approx(float(st.kstwo.sf(1e-4, 10**9)), abs=KS_ATOL)


@pytest.mark.parametrize("n", [600, 5000, 10**5] if JIT else [600])
@pytest.mark.parametrize("nxx", [2.2, 3.0, 10.0, 100.0, 354.0])
def test_subsampled_birnbaum_tingey_sum_matches_full_sum(n: int, nxx: float) -> None:
    x = math.sqrt(nxx / n)
    full = special._smirnov_sf_sum(n, x, 1)
    fast = special._smirnov_sf_sum(n, x, n)
    assert fast == pytest.approx(full, rel=1e-11, abs=0.0)


@pytest.mark.parametrize("n", [2, 3, 5, 10, 50, 140, 300] if JIT else [2, 5, 30])
def test_durbin_and_pomeranz_agree(n: int) -> None:
    # two independent exact methods for P(D_n < d)
    for c in np.linspace(0.05, 6.0, 25 if JIT else 6):
        d = math.sqrt(c / n)
        if n * d <= 1.0 or d >= 1.0:
            continue
        assert special._durbin_cdf(n, d) == pytest.approx(
            special._pomeranz_cdf(n, d), rel=1e-11, abs=1e-13
        )


# ---------------------------------------------------------------------------------------
# ks_2samp_asymp_pvalue
# ---------------------------------------------------------------------------------------


def scipy_ks2_pvalue(x: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    with np.errstate(divide="ignore"):  # n1 = n2 = 1 makes SciPy divide by round(0.5) = 0
        res = st.ks_2samp(x, y, method="asymp")
    return float(res.statistic), float(res.pvalue)


def assert_ks2_matches(x: np.ndarray, y: np.ndarray) -> None:
    d, want = scipy_ks2_pvalue(x, y)
    got = ks_2samp_asymp_pvalue(d, len(x), len(y))
    if math.isnan(want):
        assert math.isnan(got), (len(x), len(y), d, got)
    else:
        assert abs(got - want) <= KS_ATOL, (len(x), len(y), d, got, want)


@SETTINGS
@given(
    x=hs.lists(hs.integers(0, 12), min_size=1, max_size=150),
    y=hs.lists(hs.integers(0, 12), min_size=1, max_size=150),
    shift=hs.integers(-3, 3),
)
def test_ks2_random_samples_with_ties(x: list[int], y: list[int], shift: int) -> None:
    assert_ks2_matches(np.asarray(x, float), np.asarray(y, float) + shift)


@SETTINGS
@given(
    x=hs.lists(hs.floats(-1e6, 1e6), min_size=1, max_size=300),
    y=hs.lists(hs.floats(-1e6, 1e6), min_size=1, max_size=300),
)
def test_ks2_random_continuous_samples(x: list[float], y: list[float]) -> None:
    assert_ks2_matches(np.asarray(x), np.asarray(y))


@pytest.mark.parametrize(
    ("n1", "n2"),
    [
        (1, 1),
        (1, 2),
        (2, 2),
        (3, 3),
        (5, 5),
        (7, 7),
        (2, 6),
        (10, 10),
        (137, 1000),
        (4000, 3),
        (20000, 15000),
        (100000, 70000),
    ],
)
def test_ks2_sizes_including_rounding_ties(n1: int, n2: int) -> None:
    # en = n1 n2 / (n1 + n2) is 0.5, 1.5, 2.5, 3.5 ... for several of these: SciPy rounds
    # half to even.
    rng = np.random.default_rng(n1 * 1000003 + n2)
    for shift in (0.0, 0.1, 0.5):
        x = rng.normal(size=n1)
        y = rng.normal(loc=shift, size=n2)
        assert_ks2_matches(x, y)
        assert_ks2_matches(np.round(x), np.round(y))  # ties


def test_ks2_edge_cases() -> None:
    assert math.isnan(ks_2samp_asymp_pvalue(float("nan"), 10, 10))
    assert math.isnan(ks_2samp_asymp_pvalue(0.5, 0, 10))
    assert math.isnan(ks_2samp_asymp_pvalue(0.5, 10, 0))
    assert math.isnan(ks_2samp_asymp_pvalue(0.5, -3, 10))
    assert math.isnan(ks_2samp_asymp_pvalue(0.5, 1, 1))  # round(0.5) == 0, as in SciPy
    assert ks_2samp_asymp_pvalue(0.0, 10, 10) == 1.0
    assert ks_2samp_asymp_pvalue(-0.2, 10, 10) == 1.0
    assert ks_2samp_asymp_pvalue(1.0, 10, 10) == 0.0
    assert ks_2samp_asymp_pvalue(1.5, 10, 10) == 0.0
    # symmetric in the sample sizes
    assert ks_2samp_asymp_pvalue(0.05, 3000, 1700) == ks_2samp_asymp_pvalue(0.05, 1700, 3000)
    # equals kstwo_sf at the rounded effective size
    assert ks_2samp_asymp_pvalue(0.3, 20, 30) == kstwo_sf(12, 0.3)
    assert ks_2samp_asymp_pvalue(0.3, 5, 5) == kstwo_sf(2, 0.3)  # 2.5 -> 2
    assert ks_2samp_asymp_pvalue(0.3, 7, 7) == kstwo_sf(4, 0.3)  # 3.5 -> 4


# ---------------------------------------------------------------------------------------
# chi2_sf
# ---------------------------------------------------------------------------------------

CHI2_X = np.unique(
    np.concatenate([np.linspace(0.0, 1000.0, 401 if JIT else 41), np.geomspace(1e-8, 1000.0, 40)])
)


@pytest.mark.parametrize("df", range(1, 201))
def test_chi2_sf_grid(df: int) -> None:
    want = st.chi2.sf(CHI2_X, df)
    for x, w in zip(CHI2_X, want, strict=True):
        assert_chi2_close(chi2_sf(float(x), float(df)), float(w), float(x), df)


@SETTINGS
@given(
    log_df=hs.floats(-3.0, 6.0),
    mode=hs.integers(0, 2),
    u=hs.floats(-8.0, 8.0),
    log_x=hs.floats(-30.0, 14.0),
)
def test_chi2_sf_random(log_df: float, mode: int, u: float, log_x: float) -> None:
    # df up to 1e6: beyond a few million SciPy itself loses accuracy when Q is close to 1
    # (checked against mpmath), so it cannot serve as the oracle there.
    df = 10.0**log_df
    if mode == 0:
        x = df * math.exp(0.5 * u)
    elif mode == 1:
        x = max(df + u * math.sqrt(2.0 * df), 0.0)
    else:
        x = 10.0**log_x
    assert_chi2_close(chi2_sf(x, df), float(st.chi2.sf(x, df)), x, df)


@SETTINGS
@given(log_df=hs.floats(6.31, 12.0), u=hs.floats(0.0, 9.0))
def test_chi2_sf_large_df_upper_side(log_df: float, u: float) -> None:
    # Temme's expansion region (df > 2e6); SciPy is accurate on the x >= df side.
    df = 10.0**log_df
    x = df + u * math.sqrt(2.0 * df)
    assert_chi2_close(chi2_sf(x, df), float(st.chi2.sf(x, df)), x, df)


@settings(SETTINGS, max_examples=100 if JIT else 10)
@given(log_a=hs.floats(4.0, 7.0), u=hs.floats(-9.0, 9.0))
def test_temme_expansion_matches_series_and_continued_fraction(log_a: float, u: float) -> None:
    a = 10.0**log_a
    x = a + u * math.sqrt(a)
    t = special._gammaq_temme(a, x)
    s = special._gammaq_series_cf(a, x)
    assert abs(t - s) <= CHI2_ATOL or abs(t - s) <= CHI2_RTOL * s


def test_chi2_sf_edge_cases() -> None:
    nan, inf = float("nan"), math.inf
    assert math.isnan(chi2_sf(nan, 3.0))
    assert math.isnan(chi2_sf(1.0, nan))
    assert math.isnan(chi2_sf(1.0, 0.0))
    assert math.isnan(chi2_sf(1.0, -2.0))
    assert math.isnan(chi2_sf(-1.0, -2.0))
    assert chi2_sf(0.0, 3.0) == 1.0
    assert chi2_sf(-1.0, 3.0) == 1.0
    assert chi2_sf(-inf, 3.0) == 1.0
    assert chi2_sf(inf, 3.0) == 0.0
    assert chi2_sf(inf, inf) == float(st.chi2.sf(inf, inf)) == 0.0
    assert chi2_sf(5.0, inf) == float(st.chi2.sf(5.0, inf)) == 1.0
    assert chi2_sf(1e6, 1.0) == 0.0
    for x, df in [(1e-300, 1e-300), (3.0, 1e-300), (1e-5, 2.0), (1e-300, 1.0), (2e16, 2e16)]:
        assert_chi2_close(chi2_sf(x, df), float(st.chi2.sf(x, df)), x, df)
    # exact closed forms: df = 2 gives exp(-x/2); df = 1 gives erfc(sqrt(x/2))
    for x in (0.1, 1.0, 7.5, 40.0, 300.0):
        assert chi2_sf(x, 2.0) == pytest.approx(math.exp(-x / 2.0), rel=1e-13)
        assert chi2_sf(x, 1.0) == pytest.approx(math.erfc(math.sqrt(x / 2.0)), rel=1e-12)


# ---------------------------------------------------------------------------------------
# docstring examples
# ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("func", [kstwo_sf, ks_2samp_asymp_pvalue, chi2_sf])
def test_docstring_examples(func: object) -> None:
    doc = func.__doc__
    assert doc is not None and ">>>" in doc
    test = doctest.DocTestParser().get_doctest(doc, dict(vars(special)), "doc", None, 0)
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS)
    runner.run(test)
    assert runner.summarize(verbose=False).failed == 0
