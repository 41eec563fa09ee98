"""Two-sample Kolmogorov-Smirnov statistic on exact values, and its asymptotic p-value.

D = sup_x |F_ref(x) − F_cur(x)| over the empirical CDFs — the value of
``scipy.stats.ks_2samp(ref, cur).statistic``. Both CDFs are right-continuous step
functions, so the supremum is reached at a data point, either as the value there or as the
left limit. Walking the distinct window values in order and galloping through the sorted
reference gives, at each window value w, F_ref(w⁻) = #(ref < w)/M and F_ref(w) = #(ref ≤ w)/M;
between two window values F_cur is constant and F_ref monotone, so those two points bound
every reference point in between. Cost O(m log(M/m)) for a window of m against a reference
of M, instead of the O((M + m) log(M + m)) of sorting the union.

The p-value is SciPy's ``method="asymp"``: the Kolmogorov distribution of the two-sided
one-sample statistic at n = round(M·m / (M + m)) (see :mod:`.special`).
"""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import NDArray

from ._jit import kernel
from ._search import gallop_left, gallop_right
from .special import ks_2samp_asymp_pvalue


@kernel
def _ks_statistic_sorted(ref: NDArray[np.float64], cur: NDArray[np.float64]) -> float:
    big_m = ref.shape[0]
    m = cur.shape[0]
    if big_m == 0 or m == 0:
        return math.nan
    best = 0.0
    lo = 0  # #(ref < w) for the current w
    hi = 0  # #(ref <= w)
    j = 0
    while j < m:
        w = cur[j]
        j2 = j + 1
        while j2 < m and cur[j2] == w:
            j2 += 1
        lo = gallop_left(ref, w, hi)
        hi = gallop_right(ref, w, lo)
        # left limit at w: F_cur = j/m ; value at w: F_cur = j2/m
        d_left = abs(lo / big_m - j / m)
        d_at = abs(hi / big_m - j2 / m)
        if d_left > best:
            best = d_left
        if d_at > best:
            best = d_at
        j = j2
    return best


@kernel
def ks_sorted(ref: NDArray[np.float64], cur: NDArray[np.float64]) -> tuple[float, float]:
    """(statistic, asymptotic p-value) for sorted, finite ``ref`` and ``cur``."""
    d = _ks_statistic_sorted(ref, cur)
    if math.isnan(d):
        return d, math.nan
    return d, ks_2samp_asymp_pvalue(d, ref.shape[0], cur.shape[0])


def ks_2samp(ref: NDArray[np.float64], cur: NDArray[np.float64]) -> tuple[float, float]:
    """KS statistic and asymptotic p-value of two samples (NaN and ±inf dropped).

    The statistic equals ``scipy.stats.ks_2samp(ref, cur).statistic`` and the p-value
    ``scipy.stats.ks_2samp(ref, cur, method="asymp").pvalue``; an empty side gives NaN.

    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> d, p = ks_2samp(rng.normal(size=1000), rng.normal(0.2, 1, size=500))
    >>> round(d, 3), f"{p:.3e}"
    (0.158, '9.969e-08')
    """
    r = np.sort(_finite(ref))
    c = np.sort(_finite(cur))
    d, p = ks_sorted(r, c)
    return float(d), float(p)


def _finite(a: NDArray[np.float64]) -> NDArray[np.float64]:
    arr = np.asarray(a, dtype=np.float64)
    if arr.ndim != 1:
        raise ValueError(f"expected a 1-D array, got shape {arr.shape}")
    return arr[np.isfinite(arr)]
