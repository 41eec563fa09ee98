"""Wasserstein-1 (earth mover's) distance between the reference sample and a window,
normalised by the reference standard deviation.

W1 = ∫ |F_ref(x) − F_cur(x)| dx (Vallender, 1974: for one-dimensional distributions the
Wasserstein-1 distance is the L1 distance between CDFs) — ``scipy.stats.wasserstein_distance``.
Divided by the reference std so a threshold means the same for every feature (Evidently's
"normed" Wasserstein); a constant reference (std 0) has no scale, so it is divided by 1.

The reference is frozen, so its CDF integral is prepared once: ``P[k] = ∫_{ref[0]}^{ref[k-1]}
F_ref``. Between two window values F_cur is a constant c and the integrand changes sign at most
once, where F_ref crosses c (at ref[⌈c·M⌉ − 1]); each stretch is then two differences of the
prepared integral, so the window is walked without merging it with the reference.
"""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import NDArray

from ._jit import kernel
from ._search import gallop_right
from .ks import _finite


@kernel
def cdf_integral(ref: NDArray[np.float64]) -> NDArray[np.float64]:
    """``P`` of length M + 1: P[k] = ∫ F_ref from ref[0] to ref[k−1] (P[0] = P[1] = 0)."""
    big_m = ref.shape[0]
    out = np.zeros(big_m + 1, dtype=np.float64)
    for k in range(1, big_m):
        out[k + 1] = out[k] + (k / big_m) * (ref[k] - ref[k - 1])
    return out


@kernel
def _a_of(ref: NDArray[np.float64], integ: NDArray[np.float64], k: int, t: float) -> float:
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
    a_s = _a_of(ref, integ, ks, s)
    a_t = _a_of(ref, integ, kt, t)
    if q == 0:
        return (a_t - a_s) - c * (t - s)
    xstar = float(ref[q - 1])
    if xstar <= s:
        return (a_t - a_s) - c * (t - s)
    if xstar >= t:
        return c * (t - s) - (a_t - a_s)
    a_u = float(integ[q])  # F_ref integral up to ref[q-1]
    # F_ref(x) for x in [ref[q-1], t) is >= c; before it, < c.
    return (c * (xstar - s) - (a_u - a_s)) + ((a_t - a_u) - c * (t - xstar))


@kernel
def wasserstein_sorted(
    ref: NDArray[np.float64], integ: NDArray[np.float64], cur: NDArray[np.float64]
) -> float:
    """Raw W1 between sorted finite ``ref`` (with its ``cdf_integral``) and sorted ``cur``."""
    big_m = ref.shape[0]
    m = cur.shape[0]
    if big_m == 0 or m == 0:
        return math.nan
    # Left tail: F_cur = 0 before the first window value.
    k_prev = gallop_right(ref, cur[0], 0)
    total = _a_of(ref, integ, k_prev, cur[0])
    j = 0
    while j < m:
        w = cur[j]
        j2 = j + 1
        while j2 < m and cur[j2] == w:
            j2 += 1
        if j2 == m:
            break
        nxt = cur[j2]
        k_next = gallop_right(ref, nxt, k_prev)
        q = (j2 * big_m + m - 1) // m  # ⌈(j2/m)·M⌉ in integers
        total += _stretch(ref, integ, w, k_prev, nxt, k_next, j2 / m, q)
        k_prev = k_next
        j = j2
    # Right tail: F_cur = 1 after the last window value.
    last = cur[m - 1]
    if ref[big_m - 1] > last:
        total += (ref[big_m - 1] - last) - (
            _a_of(ref, integ, big_m, ref[big_m - 1]) - _a_of(ref, integ, k_prev, last)
        )
    return total


def wasserstein(ref: NDArray[np.float64], cur: NDArray[np.float64], ref_std: float) -> float:
    """W1 between two samples divided by ``ref_std`` (by 1 when ``ref_std`` is 0).

    >>> import numpy as np
    >>> round(wasserstein(np.array([0.0, 1.0, 2.0]), np.array([1.0, 2.0, 3.0]), 1.0), 6)
    1.0
    """
    r = np.sort(_finite(ref))
    c = np.sort(_finite(cur))
    return float(wasserstein_sorted(r, cdf_integral(r), c)) / normaliser(ref_std)


def normaliser(ref_std: float) -> float:
    """The divisor for the normed distance: the reference std, or 1 for a constant reference."""
    return ref_std if ref_std > 0 and math.isfinite(ref_std) else 1.0
