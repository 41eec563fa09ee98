"""One walk over two empirical CDFs gives both the KS statistic and the Wasserstein-1 distance.

Both statistics compare the step functions F_ref (the frozen reference sample, M values) and
F_cur (the window, m values), which change only at data points:

* KS, D = sup |F_ref − F_cur| (Smirnov 1939): the supremum is reached at a data point, as the
  value there or as the left limit. At each distinct window value w, F_ref(w⁻) = #(ref < w)/M
  and F_ref(w) = #(ref ≤ w)/M; between two window values F_cur is constant and F_ref
  monotone, so those two points bound every reference point in between.
* Wasserstein-1, W = ∫ |F_ref − F_cur| dx (Vallender 1974). The reference's CDF integral is
  prepared once (``cdf_integral``); between two window values F_cur is a constant c and the
  integrand changes sign at most once, where F_ref reaches c (at ref[⌈c·M⌉ − 1]), so each
  stretch is two differences of the prepared integral.

The reference position moves forward by galloping, so a window costs O(m log(M/m)) instead of
the O((M + m) log(M + m)) of sorting the union.
"""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import NDArray

from ._jit import kernel
from ._search import gallop_left, gallop_right


@kernel
def cdf_integral(ref: NDArray[np.float64]) -> NDArray[np.float64]:
    """``P`` of length M + 1: P[k] = ∫ F_ref from ref[0] to ref[k−1] (P[0] = P[1] = 0)."""
    big_m = ref.shape[0]
    out = np.zeros(big_m + 1, dtype=np.float64)
    for k in range(1, big_m):
        out[k + 1] = out[k] + (k / big_m) * (ref[k] - ref[k - 1])
    return out


@kernel
def _area(ref: NDArray[np.float64], integ: NDArray[np.float64], k: int, t: float) -> float:
    # ∫_{-inf}^{t} F_ref, given k = #(ref <= t)
    if k == 0:
        return 0.0
    return float(integ[k] + (k / ref.shape[0]) * (t - ref[k - 1]))


@kernel
def _stretch(
    ref: NDArray[np.float64],
    integ: NDArray[np.float64],
    s: float,
    ks: int,
    t: float,
    kt: int,
    c: float,
    q: int,
) -> float:
    # ∫_s^t |F_ref − c|, where F_ref >= c exactly from x* = ref[q-1] on (x* = -inf if q == 0).
    a_s = _area(ref, integ, ks, s)
    a_t = _area(ref, integ, kt, t)
    if q == 0:
        return (a_t - a_s) - c * (t - s)
    xstar = float(ref[q - 1])
    if xstar <= s:
        return (a_t - a_s) - c * (t - s)
    if xstar >= t:
        return c * (t - s) - (a_t - a_s)
    a_u = float(integ[q])  # ∫ F_ref up to ref[q-1]
    return (c * (xstar - s) - (a_u - a_s)) + ((a_t - a_u) - c * (t - xstar))


@kernel
def ks_w1_sorted(
    ref: NDArray[np.float64], integ: NDArray[np.float64], cur: NDArray[np.float64]
) -> tuple[float, float]:
    """(KS statistic, raw W1) between sorted finite ``ref`` (with its ``cdf_integral``) and
    sorted finite ``cur``; NaN for an empty side."""
    big_m = ref.shape[0]
    m = cur.shape[0]
    if big_m == 0 or m == 0:
        return math.nan, math.nan
    d = 0.0
    w1 = 0.0
    hi_prev = 0  # #(ref <= previous window value)
    prev = 0.0
    j_prev = 0  # #(cur <= previous window value)
    j = 0
    while j < m:
        w = cur[j]
        j2 = j + 1
        while j2 < m and cur[j2] == w:
            j2 += 1
        lo = gallop_left(ref, w, hi_prev)
        hi = gallop_right(ref, w, lo)
        d = max(d, abs(lo / big_m - j / m), abs(hi / big_m - j2 / m))
        if j == 0:
            w1 += _area(ref, integ, hi, w)  # left tail, F_cur = 0
        else:
            q = (j_prev * big_m + m - 1) // m  # ⌈(j_prev/m)·M⌉ in integers
            w1 += _stretch(ref, integ, prev, hi_prev, w, hi, j_prev / m, q)
        hi_prev = hi
        prev = w
        j_prev = j2
        j = j2
    last_ref = ref[big_m - 1]
    if last_ref > prev:  # right tail, F_cur = 1
        tail = _area(ref, integ, big_m, last_ref) - _area(ref, integ, hi_prev, prev)
        w1 += (last_ref - prev) - tail
    return d, w1
