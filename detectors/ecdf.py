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

The reference position only moves forward (counted a block at a time, galloping over long
steps), so a window costs O(m log(M/m)) instead of the O((M + m) log(M + m)) of sorting the
union.

What bounds the speed is not the arithmetic but the chain from one search to the next (each
starts where the last ended) and, on data the branch predictor has not learnt, the exit of a
scan, mispredicted about once per window value. Hence: the usual short step is counted
without data-dependent branches (``count_below``); the window is walked as two halves at
once, two independent chains the CPU overlaps; and the KS candidates are compared as
integers, without divisions. Every KS candidate and every Wasserstein stretch is computed
with the same floating-point operations as a single plain walk, and the stretches are added
in the same order, so both results are bit-for-bit those of that walk.
"""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import NDArray

from ._jit import kernel
from ._search import BLOCK, count_below, gallop_left, gallop_right, prefetch

_EXACT_KS = 1 << 50
"""Up to M·m = 2⁵⁰ the KS candidates are ranked by exact integers (see ``ks_w1_sorted``)."""

_AHEAD = 512
"""How far ahead of a lane (in reference values, 4 KiB) its next reads are prefetched, two
cache lines a step: one line fell behind the ~33-value steps of a 3,000-value window, four
cost time at 10,000 (timed with 21 references in turn, as in ``benchmarks/kernels.py``)."""

_BLOCKS = 8
"""Blocks counted before galloping: streaming up to 256 values beat galloping's scattered
reads for 1,000-value windows, whose steps are ~100 reference values (same timing)."""


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
def ks_w1_sorted(
    ref: NDArray[np.float64], integ: NDArray[np.float64], cur: NDArray[np.float64]
) -> tuple[float, float]:
    """(KS statistic, raw W1) between sorted finite ``ref`` (with its ``cdf_integral``) and
    sorted finite ``cur``; NaN for an empty side."""
    big_m = ref.shape[0]
    m = cur.shape[0]
    if big_m == 0 or m == 0:
        return math.nan, math.nan
    # A KS candidate is |k/M − j/m| = |k·m − j·M|/(M·m). In floating point the two quotients
    # and their difference are each at most 1 and rounded to nearest (IEEE 754), so each is
    # off by at most half an ulp of 1, 2⁻⁵⁴, and the candidate by under 2⁻⁵²; distinct exact
    # values differ by at least 1/(M·m) >= 2⁻⁵⁰. So the largest float is among the candidates
    # with the largest integer |k·m − j·M|: only those are divided out, and d is the float of
    # the plain walk (and SciPy's), without four divisions per window value.
    exact = big_m <= _EXACT_KS // m
    d = 0.0
    best = -1  # the largest |k·m − j·M| so far
    # Two lanes, the window's lower and upper half; (j, e, hp, prev, ap) is the one being
    # stepped and o_* the other: j = its next group start, e = the end of its half,
    # hp = #(ref <= prev), ap = ∫ F_ref up to prev. The lower half starts with prev = cur[0],
    # which makes the left tail (F_cur = 0) an ordinary stretch of width 0: its term is
    # (a_t − 0) − 0·0 = a_t exactly. The upper half starts at a group boundary, so no run of
    # ties is split, in the state the lower half will reach there.
    h = gallop_left(cur, cur[m // 2], 0)
    if h == 0:  # the middle value is the smallest: one lane
        h = m
    j, e, hp, prev, ap = 0, h, 0, cur[0], 0.0
    o_j, o_e, o_hp, o_prev, o_ap = h, m, 0, 0.0, 0.0
    if h < m:
        o_prev = cur[h - 1]
        o_hp = gallop_right(ref, o_prev, 0)
        o_ap = _area(ref, integ, o_hp, o_prev)
    upper = False  # whether the lane being stepped is the upper half
    w1 = 0.0  # the lower half's stretches, in order
    upper_terms = np.empty(m - h)  # the upper half's, added after them as one walk would
    n_upper = 0
    a_last = 0.0  # ∫ F_ref up to cur[m − 1]
    while j < e or o_j < o_e:
        if j < e:
            w = cur[j]
            j2 = j + 1
            while j2 < e and cur[j2] == w:
                j2 += 1
            ahead = hp + _AHEAD
            prefetch(ref, min(ahead, big_m - 1))
            prefetch(ref, min(ahead + 8, big_m - 1))
            prefetch(integ, min(ahead, big_m))
            prefetch(integ, min(ahead + 8, big_m))
            lo = hp  # #(ref < w)
            n = BLOCK
            blocks = 0
            while n == BLOCK and blocks < _BLOCKS and lo + BLOCK <= big_m:
                n = count_below(ref, w, lo)
                lo += n
                blocks += 1
            if n == BLOCK:  # a long step, or too near the end for a block
                lo = gallop_left(ref, w, lo)
            hi = lo  # #(ref <= w)
            if hi < big_m and ref[hi] == w:
                hi = gallop_right(ref, w, hi + 1)
            a_t = _area(ref, integ, hi, w)
            c = j / m  # F_cur on the stretch (prev, w)
            jm = j * big_m
            # ∫ |F_ref − c| over (prev, w). F_ref >= c exactly from ref[q − 1] on, with
            # q = ⌈c·M⌉: q <= hp is m·hp >= j·M, and q > lo is m·lo < j·M, no division.
            if m * hp >= jm:  # F_ref >= c on the whole stretch
                term = (a_t - ap) - c * (w - prev)
            elif m * lo < jm:  # F_ref < c on the whole stretch
                term = c * (w - prev) - (a_t - ap)
            else:  # F_ref crosses c at x* = ref[q − 1], inside the stretch
                q = (jm + m - 1) // m
                xstar = float(ref[q - 1])
                a_u = float(integ[q])  # ∫ F_ref up to x*
                term = (c * (xstar - prev) - (a_u - ap)) + ((a_t - a_u) - c * (w - xstar))
            if upper:
                upper_terms[n_upper] = term
                n_upper += 1
            else:
                w1 += term
            # KS at w: F_ref(w⁻) against F_cur(w⁻), and F_ref(w) against F_cur(w)
            if exact:
                k_lo = abs(lo * m - jm)
                if k_lo >= best:
                    f = abs(lo / big_m - c)
                    d = f if k_lo > best else max(d, f)
                    best = k_lo
                k_hi = abs(hi * m - j2 * big_m)
                if k_hi >= best:
                    f = abs(hi / big_m - j2 / m)
                    d = f if k_hi > best else max(d, f)
                    best = k_hi
            else:
                d = max(d, abs(lo / big_m - c), abs(hi / big_m - j2 / m))
            if j2 == m:
                a_last = a_t
            j, hp, prev, ap = j2, hi, w, a_t
        # Step the other half next: its search does not wait for this one's result.
        held = (j, e, hp, prev, ap)
        j, e, hp, prev, ap = o_j, o_e, o_hp, o_prev, o_ap
        o_j, o_e, o_hp, o_prev, o_ap = held
        upper = not upper
    for i in range(n_upper):
        w1 += upper_terms[i]
    last_ref = ref[big_m - 1]
    prev = cur[m - 1]
    if last_ref > prev:  # right tail, F_cur = 1
        tail = _area(ref, integ, big_m, last_ref) - a_last
        w1 += (last_ref - prev) - tail
    return d, w1


@kernel
def ks_w1_merge(a: NDArray[np.float64], b: NDArray[np.float64]) -> tuple[float, float]:
    """(KS statistic, raw W1) between two sorted finite samples of similar size (a window
    and the one before it), by merging them: O(M + m).

    ``ks_w1_sorted`` is built for a reference ~10× the window; on two samples of one size
    its steps are about one value long and each still counts a block, while a merge takes
    one value per step (compare them with ``python benchmarks/kernels.py``). The union is walked in
    order; after the last copy of a value x (ties are taken from both sides before x
    counts) i = #(a <= x) and j = #(b <= x), and

    * KS: D = max |i/M − j/m| over those points (SciPy's ``ks_2samp`` evaluates the same
      right-continuous CDFs at every data point);
    * W1: ∫ |F_a − F_b| = Σ |i·m − j·M| · (x' − x) / (M·m) over consecutive distinct values
      x < x' of the union (both CDFs are constant in between; Vallender 1974).

    The KS candidates are ranked by the exact integer |i·m − j·M| as in ``ks_w1_sorted``, so
    D is the float SciPy computes. NaN for an empty side.

    Two walks run at once, as in ``ks_w1_sorted``: one up from the smallest value through the
    lower half of the steps, one down from the largest through the upper half, independent
    chains the CPU overlaps (~1.3× faster than one walk on two 10,000-value windows here).
    Walking down visits the same states in reverse order (ties: the upward walk takes a's
    copies of a value before b's, so the downward one takes b's first), and its area terms
    are kept and added after the lower half's in upward order, so D and W1 are bit for bit
    those of one upward walk.
    """
    big_m = a.shape[0]
    m = b.shape[0]
    if big_m == 0 or m == 0:
        return math.nan, math.nan
    # −inf and +inf sentinels: an exhausted side is never taken, up or down; a's i-th
    # value is pa[i + 1]
    pa = np.empty(big_m + 2)
    pa[0] = -math.inf
    pa[1 : big_m + 1] = a
    pa[big_m + 1] = math.inf
    pb = np.empty(m + 2)
    pb[0] = -math.inf
    pb[1 : m + 1] = b
    pb[m + 1] = math.inf
    exact = big_m <= _EXACT_KS // m
    steps = big_m + m - 1  # the state after the last value is i = M, j = m: a zero term
    low = steps // 2  # steps walked up; the remaining ones, high >= low, are walked down
    high = steps - low
    # up: (i, j) values taken, av and bv the next of each side
    i, j, av, bv = 0, 0, pa[1], pb[1]
    # down: (ui, uj) values left, uav and ubv the largest of each side still in
    ui, uj, uav, ubv = big_m, m, pa[big_m], pb[m]
    best, d, area = -1, 0.0, 0.0
    u_best, u_d = -1, 0.0
    upper_terms = np.empty(high)  # step steps − t's term at t, added in upward order
    # Which side the next value comes from is a coin toss on data of one distribution, so a
    # branch on it is mispredicted every other step; it is taken as a 0/1 count instead
    # (1.45× faster on two 10,000-value windows here). Where x has another copy after it
    # the area term is k·0 = 0.0, and adding it changes nothing: the sum is the one over
    # distinct values, in the same order.
    for t in range(high):
        if t < low:  # up one value, x: then i = #(a <= x) and j = #(b <= x) if x's last
            from_a = av <= bv
            x = min(av, bv)
            i += from_a
            j += 1 - from_a
            av = pa[i + 1]
            bv = pb[j + 1]
            gap = min(av, bv) - x
            k = abs(i * m - j * big_m)
            area += k * gap
            if k >= best and gap > 0:  # x's last copy: both CDFs are complete at x
                best, d = _ks_candidate(k, best, d, i, j, big_m, m, exact)
        # down one value: the largest still in, nxt, goes out; the state is then the one
        # the upward walk has after taking the new largest, x
        from_b = ubv >= uav
        nxt = max(uav, ubv)
        ui -= 1 - from_b
        uj -= from_b
        uav = pa[ui]
        ubv = pb[uj]
        gap = nxt - max(uav, ubv)
        k = abs(ui * m - uj * big_m)
        upper_terms[t] = k * gap
        if k >= u_best and gap > 0:
            u_best, u_d = _ks_candidate(k, u_best, u_d, ui, uj, big_m, m, exact)
    for t in range(high - 1, -1, -1):
        area += upper_terms[t]
    if not exact or u_best == best:
        d = max(d, u_d)
    elif u_best > best:
        d = u_d
    return d, area / big_m / m


@kernel
def _ks_candidate(
    k: int, best: int, d: float, i: int, j: int, big_m: int, m: int, exact: bool
) -> tuple[int, float]:
    """The KS walk's (best, d) after the candidate |i/M − j/m|, whose exact integer is
    ``k >= best``: with ``exact``, the float of a larger integer replaces d and one of an
    equal integer may raise it; otherwise d is the largest float (``best`` unused)."""
    f = abs(i / big_m - j / m)
    if not exact:
        return best, max(d, f)
    return k, (f if k > best else max(d, f))
