"""Every kernel against the naive NumPy/SciPy oracle: seeded data, ties, NaN/inf, empty,
constant and single-value windows, and hypothesis properties."""

from __future__ import annotations

import math

import naive
import numpy as np
import pytest
from hypothesis import assume, example, given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from scipy import stats

from driftline.detectors import (
    bin_counts,
    categorical_reference,
    categorical_statistics,
    chi2_test,
    js_distance,
    ks_2samp,
    linf,
    numeric_reference,
    numeric_statistics,
    numeric_statistics_between,
    psi,
    wasserstein,
)
from driftline.detectors.ecdf import cdf_integral, ks_w1_merge, ks_w1_sorted
from driftline.detectors.location import mean_shift_test
from driftline.detectors.quality import bucket_counts
from driftline.detectors.sorting import _insertion_pass, finite_sorted

KS_TOL = 1e-9
P_TOL = 1e-6
TOL = 1e-9


def js_close(a: float, b: float) -> bool:
    """JS distances agree: to TOL, or where both are near 0 as divergences (the distance
    is a square root, which turns a divergence's 1e-16 rounding into 1e-8)."""
    return close(a, b, TOL) or abs(a * a - b * b) <= 1e-14


def close(a: float, b: float, tol: float) -> bool:
    if a == b:
        return True
    if math.isnan(a) or math.isnan(b):
        return math.isnan(a) and math.isnan(b)
    return abs(a - b) <= tol * max(1.0, abs(b))


# Values drawn from a small grid make ties common; the float strategy adds NaN and ±inf.
tied = hnp.arrays(np.float64, st.integers(0, 300), elements=st.integers(-5, 5).map(float))
wild = hnp.arrays(
    np.float64,
    st.integers(0, 300),
    elements=st.floats(-1e6, 1e6) | st.sampled_from([0.0, np.nan, np.inf, -np.inf]),
)
samples = tied | wild


@given(samples, samples)
def test_ks_matches_scipy(ref: np.ndarray, cur: np.ndarray) -> None:
    d, p = ks_2samp(ref, cur)
    nd, np_ = naive.ks(ref, cur)
    assert close(d, nd, KS_TOL)
    assert close(p, np_, P_TOL)


@given(samples, samples)
def test_wasserstein_matches_scipy(ref: np.ndarray, cur: np.ndarray) -> None:
    f = naive.finite(ref)
    sd = float(f.std()) if f.size else 0.0
    got = wasserstein(ref, cur, sd)
    assert close(got, naive.wasserstein(ref, cur), 1e-9)


@given(samples, samples, st.integers(1, 12))
def test_binning_and_distances_match(ref: np.ndarray, cur: np.ndarray, bins: int) -> None:
    e = naive.edges(ref, bins)
    counts = bin_counts(cur, e)
    assert counts.sum() == naive.finite(cur).size
    c = naive.props(cur, e)
    r = naive.props(ref, e)
    assume(naive.finite(ref).size > 0)
    if counts.sum():
        assert np.allclose(counts / counts.sum(), c, rtol=0, atol=1e-15)
        assert close(psi(r, c), naive.psi(r, c), TOL)
        assert js_close(js_distance(r, c), naive.js(r, c))


# Proportions, so no subnormals: for those SciPy's midpoint underflows and it returns inf.
props = st.floats(0, 1, allow_subnormal=False)


@given(
    st.lists(props, min_size=1, max_size=60).flatmap(
        lambda r: st.tuples(st.just(r), st.lists(props, min_size=len(r), max_size=len(r)))
    )
)
@example(([1e-17, 0.0625], [0.0, 1.0]))  # found in CI: the square root of rounding
def test_js_and_linf_on_arbitrary_vectors(pair: tuple[list[float], list[float]]) -> None:
    r, c = (np.array(x) for x in pair)
    assert js_close(js_distance(r, c), naive.js(r, c))
    assert linf(r, c) == pytest.approx(float(np.max(np.abs(c - r))), abs=0)


@given(
    st.lists(st.integers(0, 10_000), min_size=1, max_size=60).flatmap(
        lambda c: st.tuples(st.just(c), st.lists(st.floats(0, 1), min_size=len(c), max_size=len(c)))
    )
)
def test_chi2_matches_scipy(pair: tuple[list[int], list[float]]) -> None:
    counts = np.array(pair[0], dtype=np.int64)
    r = np.array(pair[1])
    assume(r.sum() > 0)
    r = r / r.sum()
    stat, p = chi2_test(counts, r)
    nstat, np_ = naive.chi2(counts, r)
    assert close(stat, nstat, 1e-9)
    assert close(p, np_, P_TOL)


@given(samples, samples)
def test_merge_walk_matches_scipy_and_the_galloping_walk(a: np.ndarray, b: np.ndarray) -> None:
    fa, fb = np.sort(naive.finite(a)), np.sort(naive.finite(b))
    d, w1 = ks_w1_merge(fa, fb)
    assert close(d, naive.ks(fa, fb)[0], KS_TOL)
    raw = naive.wasserstein(fa, fb) * (fa.std() if fa.size and fa.std() > 0 else 1.0)
    assert close(w1, raw, 1e-9)
    if fa.size and fb.size:  # the two walks agree; the KS statistic to the last bit
        d2, w2 = ks_w1_sorted(fa, cdf_integral(fa), fb)
        assert d == d2
        assert close(w1, w2, 1e-9)


@given(samples, samples)
@example(np.array([1.0, 2.0]), np.array([2.0, 3.0, 4.0]))  # an even number of steps
@example(np.array([1.0, 2.0]), np.array([2.0, 3.0]))  # an odd number: one more walked down
@example(np.array([5.0]), np.array([5.0]))
def test_merge_walk_is_the_plain_walk_to_the_last_bit(a: np.ndarray, b: np.ndarray) -> None:
    """Two walks at once (up the lower half of the steps, down the upper half) give the KS
    statistic and W1 of one upward walk bit for bit: the same states, the same operations,
    the area added in the same order."""
    fa, fb = np.sort(naive.finite(a)), np.sort(naive.finite(b))
    got, want = ks_w1_merge(fa, fb), naive.union_walk(fa, fb)
    assert all(map(naive.same, got, want))


@given(samples, samples, st.integers(1, 12))
def test_window_against_window_matches_oracle(prev: np.ndarray, cur: np.ndarray, bins: int) -> None:
    """Drift: a window against the one before, binned on the baseline's edges."""
    base = np.linspace(-5.0, 5.0, 101)
    e = naive.edges(base, bins)
    p, c = np.sort(naive.finite(prev)), np.sort(naive.finite(cur))
    got = numeric_statistics_between(p, e, c, cur.size, int(np.isnan(cur).sum()), 0)
    d, pvalue = naive.ks(p, c)
    assert close(got.ks_statistic, d, KS_TOL)
    assert close(got.ks_pvalue, pvalue, P_TOL)
    empty = p.size == 0 or c.size == 0
    # normed by the previous window's std, or by 1 where it is 0: a constant window (first ==
    # last; NumPy's std of equal values can come out a rounding error above 0) or one whose
    # variance underflows
    sd = 0.0 if empty or p[0] == p[-1] else float(p.std())
    scale = sd if sd > 0 else 1.0
    raw = math.nan if empty else float(stats.wasserstein_distance(p, c))
    assert close(got.wasserstein, raw / scale, 1e-9)
    rp, rc = naive.props(p, e), naive.props(c, e)
    assert close(got.psi, math.nan if empty else naive.psi(rp, rc), TOL)
    assert js_close(got.js_distance, math.nan if empty else naive.js(rp, rc))
    oor = 0 if empty else int(((c < p.min()) | (c > p.max())).sum())
    assert got.out_of_range == oor
    want_shift, want_p = naive.mean_shift(p, c)  # the window before as the reference
    assert close(got.mean_pvalue, want_p, P_TOL)
    if math.isfinite(want_shift):
        assert abs(got.mean_shift - want_shift) <= 1e-9 * (1 + float(np.abs(c).max()) / scale)
    else:
        assert got.mean_shift == want_shift or math.isnan(got.mean_shift)
    assert (
        got.bin_counts.tolist()
        == np.bincount(np.searchsorted(e, c, side="right"), minlength=e.size + 1).tolist()
    )


@given(samples, samples)
@example(np.full(5, 3.0), np.full(4, 3.0))  # both constant, equal: p = 1
@example(np.full(5, 3.0), np.full(4, 4.0))  # both constant, apart: p = 0, shift +inf
@example(np.array([1.0]), np.arange(10.0))  # one reference value: undefined
@example(np.array([0.0, *[2e-177] * 7]), np.array([0.0, *[2e-177] * 7]))  # spread underflows
def test_mean_shift_test_matches_welch(ref: np.ndarray, cur: np.ndarray) -> None:
    """The shift test against Welch's z written out in NumPy (naive.mean_shift)."""
    r, c = naive.finite(ref), np.sort(naive.finite(cur))
    constant = r.size > 0 and r.min() == r.max()  # as naive.mean_shift takes it
    mean = (float(r[0]) if constant else float(r.mean())) if r.size else math.nan
    sd = (0.0 if constant else float(r.std())) if r.size else math.nan
    shift, p = mean_shift_test(c, mean, sd, r.size)
    if sd == 0 and not constant and c.size >= 2 and float(c.std()) == 0:
        # Values so small (|x| < 1e-154) that both samples' squared deviations underflow:
        # no spread to measure against, and whether the means differ is the rounding of
        # two sums. The verdict must still be consistent: no shift and p = 1, or an
        # infinite shift and p = 0.
        assert (shift, p) == (0.0, 1.0) or (math.isinf(shift) and p == 0.0), (shift, p)
        return
    want_shift, want_p = naive.mean_shift(ref, cur)
    scale = 1.0 + (float(np.abs(c).max()) / sd if c.size and sd > 0 else 0.0)
    if math.isinf(want_shift) or math.isnan(want_shift):
        assert shift == want_shift or (math.isnan(shift) and math.isnan(want_shift))
    else:
        assert abs(shift - want_shift) <= 1e-9 * scale
    assert close(p, want_p, P_TOL)


def test_mean_shift_pvalue_is_welchs_test_on_large_windows() -> None:
    """On windows of the sizes the policy tests (1000 and up) the normal p-value is close
    to SciPy's Welch t-test (t distribution, Welch-Satterthwaite df): within 15 % at 1000
    values (p down to 1e-5), 2 % at 10,000."""
    rng = np.random.default_rng(5)
    ref = rng.gamma(2.0, size=50_000)
    cases = ((1000, 0.05, 0.15), (1000, 0.1, 0.15), (10_000, 0.03, 0.02), (10_000, 0.05, 0.02))
    for n, shift, rel in cases:
        cur = rng.gamma(2.0, size=n) + shift * ref.std()
        _, p = mean_shift_test(np.sort(cur), float(ref.mean()), float(ref.std()), ref.size)
        want = stats.ttest_ind(cur, ref, equal_var=False).pvalue
        assert p == pytest.approx(want, rel=rel), (n, shift)


def test_mean_shift_is_more_powerful_than_ks_on_a_location_shift() -> None:
    """Why the policy uses it: on a 0.05-std shift of 10,000 normal values against 100,000,
    Welch's p-value is far smaller than KS's (Pitman efficiency of KS ≈ 0.64)."""
    rng = np.random.default_rng(8)
    ref = numeric_reference(rng.normal(size=100_000))
    got = numeric_statistics(ref, rng.normal(0.05, 1.0, 10_000))
    assert got.mean_pvalue < got.ks_pvalue / 100
    assert got.mean_shift == pytest.approx(0.05, abs=0.015)


def test_seeded_numeric_window_matches_oracle() -> None:
    rng = np.random.default_rng(11)
    ref = rng.lognormal(size=30_000)
    for shift in (0.0, 0.05, 0.5):
        cur = rng.lognormal(mean=shift, size=7_000)
        cur[::97] = np.nan
        cur[5] = np.inf
        got = numeric_statistics(numeric_reference(ref), cur)
        want = naive.numeric_window(ref, cur)
        for key, value in want.items():
            tol = P_TOL if key.endswith("pvalue") else TOL
            assert close(getattr(got, key), value, tol), key
        assert got.missing == int(np.isnan(cur).sum())
        assert got.nonfinite == 1
        fin = cur[np.isfinite(cur)]
        assert got.out_of_range == int(((fin < ref.min()) | (fin > ref.max())).sum())


@pytest.mark.parametrize(
    "cur",
    [np.array([]), np.array([np.nan, np.nan]), np.array([np.inf]), np.array([2.0])],
    ids=["empty", "all-nan", "all-inf", "single"],
)
def test_degenerate_windows_are_defined(cur: np.ndarray) -> None:
    ref = numeric_reference(np.arange(1000.0))
    s = numeric_statistics(ref, cur)
    want = naive.numeric_window(np.arange(1000.0), cur)
    for key, value in want.items():
        assert close(getattr(s, key), value, P_TOL), key
    assert s.count == cur.size


def test_constant_reference_and_window() -> None:
    ref = numeric_reference(np.full(500, 3.0))
    assert ref.edges.tolist() == [3.0]  # nine equal quantiles collapse to one edge
    same = numeric_statistics(ref, np.full(200, 3.0))
    assert same.psi == 0.0 and same.ks_statistic == 0.0 and same.wasserstein == 0.0
    moved = numeric_statistics(ref, np.full(200, 4.0))
    assert moved.ks_statistic == 1.0
    assert moved.wasserstein == 1.0  # std 0: divided by 1, the raw distance
    assert close(moved.psi, naive.psi(np.array([0.0, 1.0]), np.array([0.0, 1.0])), TOL)


def test_duplicate_quantile_edges() -> None:
    values = np.concatenate([np.zeros(700), np.arange(1.0, 301.0)])
    ref = numeric_reference(values)
    assert ref.edges.tolist() == naive.edges(values).tolist()
    assert len(ref.edges) < 9
    cur = np.concatenate([np.zeros(100), np.arange(1.0, 201.0)])
    s = numeric_statistics(ref, cur)
    for key, value in naive.numeric_window(values, cur).items():
        assert close(getattr(s, key), value, P_TOL), key


@given(
    hnp.arrays(
        np.float64,
        st.integers(0, 500),
        elements=st.floats(allow_nan=True, allow_infinity=True, allow_subnormal=True),
    )
)
def test_radix_sort_equals_numpy(values: np.ndarray) -> None:
    _sorts_like_numpy(values)


def test_radix_sort_extremes() -> None:
    tiny = np.nextafter(0.0, 1.0)
    v = np.array([np.nan, -np.inf, 1.0, np.inf, -0.0, tiny, -tiny, 1e308, -1e308, 2.0, np.nan])
    out, n_nan, n_inf = finite_sorted(v)
    assert out.tolist() == [-1e308, -tiny, 0.0, tiny, 1.0, 2.0, 1e308]
    assert (n_nan, n_inf) == (2, 2)


def _sorts_like_numpy(values: np.ndarray) -> None:
    out, n_nan, n_inf = finite_sorted(values)
    want = np.sort(values[np.isfinite(values)])
    assert np.array_equal(out, want)  # -0.0 and 0.0 compare equal, and are one value
    assert not np.signbit(out[out == 0]).any()
    assert n_nan == int(np.isnan(values).sum()) and n_inf == int(np.isinf(values).sum())


@given(
    st.floats(-1e12, 1e12),
    st.integers(0, 52),  # past 52 the offsets' width is under an ulp: one value
    hnp.arrays(np.float64, st.integers(2, 400), elements=st.floats(0, 1)),
    st.lists(st.floats(allow_nan=True, allow_infinity=True), max_size=3),
)
def test_radix_sort_of_clusters_equals_numpy(
    centre: float, scale: int, offsets: np.ndarray, outliers: list[float]
) -> None:
    """Values packed into a narrow range (centre + offsets·2⁻ˢᶜᵃˡᵉ·|centre|) and a few
    outliers: keys that agree on the 33 bits the first passes sort by, so the insertion pass
    and, when it gives up, the full sort are what order them."""
    width = max(abs(centre), 1e-300) * 2.0**-scale
    _sorts_like_numpy(np.concatenate([centre + offsets * width, outliers]))


def test_radix_sort_paths() -> None:
    """One case per path of ``finite_sorted``: the three first passes alone (a range under
    2³³ keys wide; non-negative integers, whose keys' low bits are all zero), the insertion
    pass (continuous data; integers of both signs, whose negative keys' low bits are all
    one) and the full sort after it gives up (a dense cluster beside an outlier: ~n²/4
    inversions among the cluster, far over the budget of 2 per value; the outlier below the
    cluster too, so that a full sort of too few digits would leave it out of place)."""
    rng = np.random.default_rng(7)
    one = np.float64(1.0)
    narrow = one + rng.integers(0, 1 << 20, 3000) * np.finfo(float).eps
    ints = rng.integers(0, 100, 5000).astype(np.float64)
    signed = rng.integers(-50, 50, 5000).astype(np.float64)
    normal = rng.normal(size=10_000)
    cluster = np.concatenate([1.0 + rng.random(5000) * 1e-7, [1e10]])
    low = np.concatenate([1.0 + rng.random(5000) * 1e-7, [-1e10]])
    for values in (
        narrow,
        ints,
        signed,
        normal,
        cluster,
        cluster[::-1],
        low,
        np.sort(normal)[::-1],
    ):
        _sorts_like_numpy(values)
    assert _insertion_pass(np.array([3, 2, 1], dtype=np.uint64), 2) is False
    keys = np.array([1, 3, 2, 4], dtype=np.uint64)
    assert _insertion_pass(keys, 1) is True and keys.tolist() == [1, 2, 3, 4]


cats = st.lists(st.sampled_from(["a", "b", "c", "d", "e", "f"]) | st.none(), max_size=200)


@given(cats, cats, st.integers(1, 6))
def test_categorical_matches_oracle(ref: list, cur: list, top_k: int) -> None:
    assume(any(v is not None for v in ref))
    r = categorical_reference(ref, top_k=top_k)
    s = categorical_statistics(r, r.encode(cur))
    want = naive.categorical_window(ref, cur, top_k)
    for key, value in want.items():
        tol = P_TOL if key.endswith("pvalue") else TOL
        assert close(getattr(s, key), value, tol), key
    assert s.missing == sum(v is None for v in cur)
    seen = set(ref)
    assert s.unseen == sum(v is not None and v not in seen for v in cur)


def test_bucket_codes() -> None:
    counts, missing, unseen = bucket_counts(np.array([0, 1, 1, 2, 5, -1, -2, -2]), 3)
    # codes past the last bucket fold into __other__ (the last), -2 is unseen and other too
    assert counts.tolist() == [1, 2, 4] and missing == 1 and unseen == 2
