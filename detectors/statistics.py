"""One window of one column compared with its frozen reference: every statistic at once."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from ._jit import kernel
from .binning import _bin_counts_sorted, proportions
from .chi2 import _chi2
from .ecdf import ks_w1_sorted
from .jensen_shannon import _js_distance
from .linf import _linf
from .psi import PSI_EPSILON, _psi
from .quality import bucket_counts, out_of_range_sorted
from .reference import CategoricalReference, NumericReference
from .sorting import finite_sorted
from .special import ks_2samp_asymp_pvalue


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
    missing: int
    nonfinite: int
    out_of_range: int
    type_errors: int
    bin_counts: NDArray[np.int64]

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

    @property
    def missing_rate(self) -> float:
        return self.missing / self.count if self.count else math.nan

    @property
    def unseen_rate(self) -> float:
        return self.unseen / self.n if self.n else math.nan


def numeric_statistics(
    ref: NumericReference, values: NDArray[np.float64], type_errors: int = 0
) -> NumericStatistics:
    """Compare a window of float64 values (NaN for missing) with ``ref``."""
    arr = np.asarray(values, dtype=np.float64)
    if arr.ndim != 1:
        raise ValueError(f"a window must be 1-D, got shape {arr.shape}")
    cur, n_nan, n_inf = finite_sorted(np.ascontiguousarray(arr))
    return numeric_statistics_sorted(ref, cur, arr.shape[0], n_nan, n_inf, type_errors)


def numeric_statistics_sorted(
    ref: NumericReference,
    cur: NDArray[np.float64],
    count: int,
    missing: int,
    nonfinite: int,
    type_errors: int = 0,
) -> NumericStatistics:
    """:func:`numeric_statistics` of a window already reduced to its sorted finite values
    (what :func:`~driftline.detectors.sorting.finite_sorted` returns), so that one sort
    serves several references."""
    n = cur.shape[0]
    psi, d, p, js, w1, oor, counts = _numeric_compare(
        ref.sample, ref.integral, ref.edges, ref.proportions, ref.min, ref.max, ref.std, cur
    )
    if n == 0 or ref.sample.shape[0] == 0:
        oor = 0
    return NumericStatistics(
        count=count,
        n=n,
        psi=psi,
        ks_statistic=d,
        ks_pvalue=p,
        js_distance=js,
        wasserstein=w1,
        missing=missing,
        nonfinite=nonfinite,
        out_of_range=oor,
        type_errors=type_errors,
        bin_counts=counts,
    )


@kernel
def _numeric_compare(
    sample: NDArray[np.float64],
    integral: NDArray[np.float64],
    edges: NDArray[np.float64],
    props: NDArray[np.float64],
    lo: float,
    hi: float,
    std: float,
    cur: NDArray[np.float64],
) -> tuple[float, float, float, float, float, int, NDArray[np.int64]]:
    """Every statistic of one sorted finite window against one reference, in one compiled
    call: the engine runs many columns on several threads, and each return to Python must
    take the interpreter lock back, so fewer, larger calls scale better."""
    n = cur.shape[0]
    counts = _bin_counts_sorted(cur, edges)
    if n == 0 or sample.shape[0] == 0:
        nan = math.nan
        return nan, nan, nan, nan, nan, 0, counts
    cur_props = counts / n
    d, w1 = ks_w1_sorted(sample, integral, cur)
    p = ks_2samp_asymp_pvalue(d, sample.shape[0], n)
    oor = out_of_range_sorted(cur, lo, hi)
    norm = std if std > 0 and math.isfinite(std) else 1.0
    return (
        _psi(props, cur_props, PSI_EPSILON),
        d,
        p,
        _js_distance(props, cur_props),
        w1 / norm,
        oor,
        counts,
    )


def categorical_statistics(
    ref: CategoricalReference, codes: NDArray[np.int64], type_errors: int = 0
) -> CategoricalStatistics:
    """Compare a window of category codes (see :meth:`CategoricalReference.encode`) with ``ref``."""
    c = np.ascontiguousarray(codes, dtype=np.int64)
    k = ref.proportions.shape[0]
    counts, missing, unseen = bucket_counts(c, k)
    n = int(counts.sum())
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
        missing=missing,
        unseen=unseen,
        type_errors=type_errors,
        bucket_counts=counts,
    )
