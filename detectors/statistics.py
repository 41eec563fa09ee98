"""One window of one column compared with its frozen reference: every statistic at once."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from ._jit import kernel
from .binning import _bin_counts_sorted, proportions
from .chi2 import _chi2
from .ecdf import ks_w1_merge, ks_w1_sorted
from .jensen_shannon import _js_distance
from .linf import _linf
from .location import moments_shift_test, pooled_moments_pvalue, window_moments
from .psi import PSI_EPSILON, _psi
from .quality import bucket_counts, out_of_range_sorted
from .reference import CategoricalReference, NumericReference
from .sorting import finite_sorted
from .special import chi2_sf, ks_2samp_asymp_pvalue


@dataclass(frozen=True)
class NumericStatistics:
    """Statistics of a numeric window. Distribution statistics use the finite values only
    and are NaN when there are none."""

    count: int
    """Rows in the window, whatever their value."""
    n: int
    """Finite values, the ones the distribution statistics use."""
    psi: float
    ks_statistic: float
    ks_pvalue: float
    js_distance: float
    wasserstein: float
    mean_shift: float
    """(window mean − reference mean) / reference std (:mod:`~driftline.detectors.location`)."""
    mean_pvalue: float
    """Two-sided p-value of Welch's test for a shift of the mean."""
    missing: int
    nonfinite: int
    out_of_range: int
    type_errors: int
    bin_counts: NDArray[np.int64]
    pooled_mean_pvalue: float = math.nan
    """The two-window test: Welch's p-value of this window and the one before it taken as
    one sample, against the reference; NaN without a window before."""

    @property
    def missing_rate(self) -> float:
        return self.missing / self.count if self.count else math.nan


@dataclass(frozen=True)
class CategoricalStatistics:
    """Statistics of a categorical window over the reference buckets (top-K + ``__other__``)."""

    count: int
    n: int
    """Non-missing values."""
    psi: float
    linf: float
    chi2_statistic: float
    chi2_pvalue: float
    js_distance: float
    missing: int
    unseen: int
    type_errors: int
    bucket_counts: NDArray[np.int64]
    chi2_shift_pvalue: float = math.nan
    """The shift test's χ² p-value: as ``chi2_pvalue`` (a goodness-of-fit test against the
    reference proportions), with the statistic corrected for the reference's own sampling
    error (divided by 1 + n/N; :func:`_chi2_shift`)."""
    pooled_chi2_pvalue: float = math.nan
    """The two-window test: ``chi2_shift_pvalue`` of this window's and the one before's
    bucket counts added up; NaN without a window before."""

    @property
    def missing_rate(self) -> float:
        return self.missing / self.count if self.count else math.nan

    @property
    def unseen_rate(self) -> float:
        return self.unseen / self.n if self.n else math.nan


N_NUMERIC = 7
"""How many statistics the numeric kernels return (:data:`NumericValues`)."""
NumericValues = tuple[float, float, float, float, float, float, float]
"""PSI, KS statistic, KS p-value, JS distance, normed W1, mean shift, mean-shift p-value."""


def numeric_statistics(
    ref: NumericReference,
    values: NDArray[np.float64],
    type_errors: int = 0,
    before: NDArray[np.float64] | None = None,
) -> NumericStatistics:
    """Compare a window of float64 values (NaN for missing) with ``ref``; given the values
    of the window before it, ``before`` (NaN for missing), also the two-window test
    (``pooled_mean_pvalue``)."""
    prev = None if before is None else finite_sorted(_window(before))[0]
    return numeric_statistics_and_sorted(ref, values, type_errors, prev)[0]


def numeric_statistics_and_sorted(
    ref: NumericReference,
    values: NDArray[np.float64],
    type_errors: int = 0,
    before: NDArray[np.float64] | None = None,
) -> tuple[NumericStatistics, NDArray[np.float64]]:
    """:func:`numeric_statistics` given the window before already sorted (``before``, as
    this returns it), and the window's own sorted finite values: what a stream of windows
    passes from one to the next."""
    arr = _window(values)
    cur, n_nan, n_inf = finite_sorted(arr)
    stats = numeric_statistics_sorted(ref, cur, arr.shape[0], n_nan, n_inf, type_errors, before)
    return stats, cur


def _window(values: NDArray[np.float64]) -> NDArray[np.float64]:
    arr = np.asarray(values, dtype=np.float64)
    if arr.ndim != 1:
        raise ValueError(f"a window must be 1-D, got shape {arr.shape}")
    return np.ascontiguousarray(arr)


def numeric_statistics_sorted(
    ref: NumericReference,
    cur: NDArray[np.float64],
    count: int,
    missing: int,
    nonfinite: int,
    type_errors: int = 0,
    before: NDArray[np.float64] | None = None,
) -> NumericStatistics:
    """:func:`numeric_statistics` of a window already reduced to its sorted finite values
    (what :func:`~driftline.detectors.sorting.finite_sorted` returns), so that one sort
    serves several references; ``before``, if given, the window before's, likewise."""
    c_mean, c_ss = window_moments(cur)
    values, oor, counts = _numeric_compare(
        ref.sample,
        ref.integral,
        ref.edges,
        ref.proportions,
        ref.min,
        ref.max,
        ref.mean,
        ref.std,
        ref.finite,
        cur,
        c_mean,
        c_ss,
    )
    pooled = math.nan
    if before is not None:
        b_mean, b_ss = window_moments(before)
        n_a, n_b = before.shape[0], cur.shape[0]
        pooled = pooled_moments_pvalue(
            n_a, b_mean, b_ss, n_b, c_mean, c_ss, ref.mean, ref.std, ref.finite
        )
    return numeric_result(
        values, oor, counts, count, cur.shape[0], missing, nonfinite, type_errors, pooled
    )


def numeric_result(
    values: NumericValues,
    out_of_range: int,
    bin_counts: NDArray[np.int64],
    count: int,
    n: int,
    missing: int,
    nonfinite: int,
    type_errors: int,
    pooled: float = math.nan,
) -> NumericStatistics:
    """The statistics object from a kernel's :data:`NumericValues` (and the two-window
    test's p-value, ``pooled``)."""
    psi, d, p, js, w1, shift, mp = values
    return NumericStatistics(
        count=count,
        n=n,
        psi=float(psi),
        ks_statistic=float(d),
        ks_pvalue=float(p),
        js_distance=float(js),
        wasserstein=float(w1),
        mean_shift=float(shift),
        mean_pvalue=float(mp),
        missing=missing,
        nonfinite=nonfinite,
        out_of_range=out_of_range,
        type_errors=type_errors,
        bin_counts=bin_counts,
        pooled_mean_pvalue=float(pooled),
    )


@kernel
def _numeric_compare(
    sample: NDArray[np.float64],
    integral: NDArray[np.float64],
    edges: NDArray[np.float64],
    props: NDArray[np.float64],
    lo: float,
    hi: float,
    mean: float,
    std: float,
    finite: int,
    cur: NDArray[np.float64],
    c_mean: float,
    c_ss: float,
) -> tuple[NumericValues, int, NDArray[np.int64]]:
    """Every statistic of one sorted finite window against one reference, in one compiled
    call: the engine runs many columns on several threads, and each return to Python must
    take the interpreter lock back, so fewer, larger calls scale better. ``(c_mean, c_ss)``:
    the window's :func:`~driftline.detectors.location.window_moments`, which the engine's
    batched kernel takes once per window for the shift tests against the reference, against
    the window before and on the two windows pooled."""
    n = cur.shape[0]
    counts = _bin_counts_sorted(cur, edges)
    if n == 0 or sample.shape[0] == 0:
        nan = math.nan
        return (nan, nan, nan, nan, nan, nan, nan), 0, counts
    cur_props = counts / n
    d, w1 = ks_w1_sorted(sample, integral, cur)
    p = ks_2samp_asymp_pvalue(d, sample.shape[0], n)
    oor = out_of_range_sorted(cur, lo, hi)
    norm = std if std > 0 and math.isfinite(std) else 1.0
    shift, mp = moments_shift_test(n, c_mean, c_ss, mean, std, finite)
    psi, js = _psi(props, cur_props, PSI_EPSILON), _js_distance(props, cur_props)
    return (psi, d, p, js, w1 / norm, shift, mp), oor, counts


def numeric_statistics_between(
    prev: NDArray[np.float64],
    edges: NDArray[np.float64],
    cur: NDArray[np.float64],
    count: int,
    missing: int,
    nonfinite: int,
    type_errors: int = 0,
) -> NumericStatistics:
    """Window ``cur`` against the window before it, ``prev`` (both sorted and finite, as
    :func:`~driftline.detectors.sorting.finite_sorted` returns them), binned on the
    baseline's ``edges``: what :func:`numeric_statistics_sorted` gives against a reference
    built from ``prev`` (its bins on ``edges``, its own std for the normed W1 and its own
    range for out-of-range), computed by merging the two windows."""
    counts = _bin_counts_sorted(cur, edges)
    p_mean, p_ss = window_moments(prev)
    c_mean, c_ss = window_moments(cur)
    values, oor = _compare_samples(prev, p_mean, p_ss, edges, cur, counts, c_mean, c_ss)
    return numeric_result(values, oor, counts, count, cur.shape[0], missing, nonfinite, type_errors)


@kernel
def _compare_samples(
    prev: NDArray[np.float64],
    p_mean: float,
    p_ss: float,
    edges: NDArray[np.float64],
    cur: NDArray[np.float64],
    cur_counts: NDArray[np.int64],
    c_mean: float,
    c_ss: float,
) -> tuple[NumericValues, int]:
    """The :data:`NumericValues` and out-of-range count of the sorted finite window
    ``cur`` (binned: ``cur_counts``; moments ``c_mean``, ``c_ss``) against the sorted
    finite ``prev`` (moments ``p_mean``, ``p_ss``; :func:`window_moments` gives both)."""
    n = cur.shape[0]
    big_m = prev.shape[0]
    if n == 0 or big_m == 0:
        nan = math.nan
        return (nan, nan, nan, nan, nan, nan, nan), 0
    props = _bin_counts_sorted(prev, edges) / big_m
    cur_props = cur_counts / n
    std = math.sqrt(p_ss / big_m)
    d, w1 = ks_w1_merge(prev, cur)
    norm = std if std > 0 and math.isfinite(std) else 1.0
    shift, mp = moments_shift_test(n, c_mean, c_ss, p_mean, std, big_m)
    p = ks_2samp_asymp_pvalue(d, big_m, n)
    psi, js = _psi(props, cur_props, PSI_EPSILON), _js_distance(props, cur_props)
    oor = out_of_range_sorted(cur, prev[0], prev[big_m - 1])
    return (psi, d, p, js, w1 / norm, shift, mp), oor


def _chi2_shift(
    counts: NDArray[np.int64], ref: CategoricalReference, stat: float | None = None
) -> float:
    """The shift test's χ² p-value: Pearson's statistic of ``counts`` against the reference
    proportions, divided by 1 + n/N. The proportions are themselves estimated from the
    reference's N values, so against them the statistic of n values drawn from the same
    distribution is about (1 + n/N)·χ²_{k−1}, not χ²_{k−1}: x − n·p̂ has covariance
    n·(1 + n/N)·(diag(p) − p·pᵀ) when x ~ Mult(n, p) and p̂ = y/N, y ~ Mult(N, p) (the
    two-sample χ² homogeneity test, to first order). Without the correction the test flags
    a stationary feature far more often than its level once n/N is not small (10× at
    n/N = 0.1 and 40 categories). A reference of unknown size (N = 0) is taken as exact.
    ``stat``: Pearson's statistic of ``counts`` when already computed."""
    n = int(counts.sum())
    if stat is None:
        stat = float(_chi2(counts, ref.proportions, PSI_EPSILON)[0])
    big_n = ref.count - ref.missing
    if n == 0 or math.isnan(stat):
        return math.nan
    factor = 1.0 + n / big_n if big_n > 0 else 1.0
    return float(chi2_sf(stat / factor, float(counts.shape[0] - 1)))


def categorical_statistics(
    ref: CategoricalReference,
    codes: NDArray[np.int64],
    type_errors: int = 0,
    before_counts: NDArray[np.int64] | None = None,
) -> CategoricalStatistics:
    """Compare a window of category codes (see :meth:`CategoricalReference.encode`) with
    ``ref``; given the bucket counts of the window before it, ``before_counts`` (its
    ``bucket_counts``), also the two-window test (``pooled_chi2_pvalue``)."""
    c = np.ascontiguousarray(codes, dtype=np.int64)
    k = ref.proportions.shape[0]
    counts, missing, unseen = bucket_counts(c, k)
    n = int(counts.sum())
    pooled = math.nan
    if before_counts is not None and n > 0:
        prev = np.asarray(before_counts, dtype=np.int64)
        if prev.shape != counts.shape:
            raise ValueError(f"before_counts has shape {prev.shape}, the reference {k} buckets")
        if prev.sum() > 0:
            pooled = _chi2_shift(counts + prev, ref)
    if n == 0:
        nan = math.nan
        return CategoricalStatistics(
            c.shape[0], 0, nan, nan, nan, nan, nan, missing, unseen, type_errors, counts
        )
    cur_props = proportions(counts)
    stat, p = _chi2(counts, ref.proportions, PSI_EPSILON)
    return CategoricalStatistics(
        count=c.shape[0],
        n=n,
        psi=float(_psi(ref.proportions, cur_props, PSI_EPSILON)),
        linf=float(_linf(ref.proportions, cur_props)),
        chi2_statistic=float(stat),
        chi2_pvalue=float(p),
        js_distance=float(_js_distance(ref.proportions, cur_props)),
        chi2_shift_pvalue=_chi2_shift(counts, ref, float(stat)),
        missing=missing,
        unseen=unseen,
        type_errors=type_errors,
        bucket_counts=counts,
        pooled_chi2_pvalue=pooled,
    )
