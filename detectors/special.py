"""Numba-compiled special functions used by the drift detectors.

Everything here is a pure function of scalars, compiled with the project's ``kernel``
options (``detectors/_jit.py``) and depending only on :mod:`math`, :mod:`numpy` and
:mod:`numba` at runtime.  The
functions are *total*: every input gives a defined float result (NaN for invalid
arguments) and nothing raises.

Public functions
----------------
kstwo_sf(n, d)
    Survival function P(D_n >= d) of the two-sided one-sample Kolmogorov-Smirnov
    statistic, following the algorithm selection of Simard & L'Ecuyer (2011) with the
    same region thresholds as ``scipy.stats.kstwo`` so that results agree with SciPy.
ks_2samp_asymp_pvalue(d, n1, n2)
    The two-sided asymptotic p-value reported by
    ``scipy.stats.ks_2samp(x, y, method="asymp")``.
chi2_sf(x, df)
    Chi-square survival function via the regularized upper incomplete gamma function.

References
----------
[SL11]  R. Simard, P. L'Ecuyer (2011). "Computing the Two-Sided Kolmogorov-Smirnov
        Distribution". Journal of Statistical Software 39(11), 1-18.
[MTW03] G. Marsaglia, W. W. Tsang, J. Wang (2003). "Evaluating Kolmogorov's
        Distribution". Journal of Statistical Software 8(18), 1-4.
[D68]   J. Durbin (1968). "The Probability that the Sample Distribution Function Lies
        Between Two Parallel Straight Lines". Ann. Math. Statist. 39, 398-411.
[P74]   J. Pomeranz (1974). "Exact Cumulative Distribution of the Kolmogorov-Smirnov
        Statistic for Small Samples (Algorithm 487)". Comm. ACM 17(12), 703-704.
[PG76]  W. Pelz, I. J. Good (1976). "Approximating the Lower Tail-Areas of the
        Kolmogorov-Smirnov One-Sample Statistic". J. R. Stat. Soc. B 38(2), 152-156.
[RG82]  H. Ruben, J. Gambino (1982). "The Exact Distribution of Kolmogorov's Statistic
        D_n for n <= 10". Ann. Inst. Statist. Math. 34, 167-173.
[BT51]  Z. W. Birnbaum, F. H. Tingey (1951). "One-Sided Confidence Contours for
        Probability Distribution Functions". Ann. Math. Statist. 22(4), 592-596.
[L00]   C. Loader (2000). "Fast and Accurate Computation of Binomial Probabilities".
[NR]    W. H. Press et al., Numerical Recipes, 3rd ed., section 6.2 (incomplete gamma).
[AS]    M. Abramowitz, I. A. Stegun, Handbook of Mathematical Functions, 6.5.
[T79]   N. M. Temme (1979). "The Asymptotic Expansion of the Incomplete Gamma
        Functions". SIAM J. Math. Anal. 10(4), 757-766.
"""

from __future__ import annotations

import math

import numpy as np

from ._jit import kernel

__all__ = ["chi2_sf", "ks_2samp_asymp_pvalue", "kstwo_sf"]

_NAN = float("nan")
_INF = float("inf")
_LN2 = math.log(2.0)
_LOG_2PI = math.log(2.0 * math.pi)
_HALF_LOG_2PI = 0.5 * _LOG_2PI
_SQRT_2PI = math.sqrt(2.0 * math.pi)
_PI2 = math.pi**2
_PI4 = math.pi**4
_PI6 = math.pi**6
_EPS = 2.220446049250313e-16
# log of the smallest normal double, 2**-1022 (exp() below this is denormal/zero).
_LOG_DBL_MIN = -708.3964185322641
# Rescaling thresholds (exact powers of two) for the matrix / recursion methods.
_BIG = 2.0**256
_SMALL = 2.0**-256

# Region thresholds of the Simard & L'Ecuyer [SL11] algorithm selection, with the
# exact values SciPy uses, so that the same method is chosen on both sides.
_SMALL_N = 140  # n <= 140: exact methods everywhere
_DURBIN_MAX_NXX_SMALL_N = 0.754693  # n <= 140: Durbin for n*d^2 below this
_POMERANZ_MAX_NXX = 4.0  # n <= 140: Pomeranz for n*d^2 below this
_UPPER_TAIL_NXX = 2.2  # n > 140: 2*smirnov for n*d^2 at or above this
_ZERO_NXX = 370.0  # n > 140: survival function is 0 for n*d^2 at or above this
_DURBIN_MAX_N = 100000  # n > 140: Durbin if n <= this and n*d^1.5 <= 1.4
_DURBIN_MAX_ND15 = 1.4
# Shortcut (not in [SL11]): the Durbin cost grows like (n d)^3 log n, but in the part of its
# n > 140 region where the CDF is below 1e-12 the survival function is 1 - CDF with the
# CDF negligible; there the Pelz-Good CDF (within ~30% relative of the exact one for these
# tiny values, checked for 141 <= n <= 1e5) is used instead, changing the result by < 1e-12.
_DURBIN_MIN_CDF = 1e-12
# The one-sided Smirnov distribution switches to its asymptotic approximation above this
# sample size (SciPy's SMIRNOV_MAX_COMPUTE_N); reproduced for agreement with SciPy.
_SMIRNOV_MAX_EXACT_N = 1000000
# The Birnbaum-Tingey sum is evaluated on every integer for n < 2 * _BT_NODES; above, in
# the upper-tail region, on a subsampled integer grid with step n // _BT_NODES (see
# _smirnov_sf_sum).
_BT_NODES = 256
# Above this shape parameter Q(a, x) is evaluated by Temme's uniform expansion.
_TEMME_MIN_A = 1.0e6


# --------------------------------------------------------------------------------------
# Small helpers
# --------------------------------------------------------------------------------------


@kernel
def _stirlerr(k: float) -> float:
    """Stirling-formula error log(k!) - log(sqrt(2 pi k) (k/e)^k) for real k > 0.

    For k > 15 uses the asymptotic series with Bernoulli-number coefficients
    1/12, 1/360, 1/1260, 1/1680, 1/1188 (Loader [L00]); below it uses lgamma directly,
    where no significant cancellation occurs.
    """
    if k > 15.0:
        r = 1.0 / (k * k)
        return (
            1.0 / 12.0
            - r * (1.0 / 360.0 - r * (1.0 / 1260.0 - r * (1.0 / 1680.0 - r * (1.0 / 1188.0))))
        ) / k
    return math.lgamma(k + 1.0) - (k + 0.5) * math.log(k) + k - _HALF_LOG_2PI


@kernel
def _log_nfact_over_npown(n: float) -> float:
    """log(n! / n^n) = log(sqrt(2 pi n)) - n + stirlerr(n), without cancellation."""
    return 0.5 * (_LOG_2PI + math.log(n)) - n + _stirlerr(n)


@kernel
def _bd0(x: float, m: float) -> float:
    """Deviance term x*log(x/m) + m - x (Loader [L00]), accurate when x ~ m."""
    if abs(x - m) < 0.1 * (x + m):
        v = (x - m) / (x + m)
        s = (x - m) * v
        ej = 2.0 * x * v
        v2 = v * v
        for j in range(1, 1000):
            ej *= v2
            s1 = s + ej / (2 * j + 1)
            if s1 == s:
                return s1
            s = s1
        return s
    return x * math.log(x / m) + m - x


@kernel
def _round_half_even(v: float) -> float:
    """Round to the nearest integer, ties to even (numpy.round semantics)."""
    f = math.floor(v)
    r = v - f
    if r > 0.5:
        return f + 1.0
    if r < 0.5:
        return f
    if 0.5 * f == math.floor(0.5 * f):
        return f
    return f + 1.0


@kernel
def _clip01(p: float) -> float:
    if p < 0.0:
        return 0.0
    if p > 1.0:
        return 1.0
    return p


# --------------------------------------------------------------------------------------
# Durbin matrix method [D68], as organised by Marsaglia, Tsang & Wang [MTW03]
# --------------------------------------------------------------------------------------


@kernel
def _rescale_matrix(a: np.ndarray, m: int) -> int:
    """Scale a by an exact power of two so max|a| is near 1; return the exponent removed."""
    mx = 0.0
    for i in range(m):
        for j in range(m):
            v = abs(a[i, j])
            if v > mx:
                mx = v
    if mx == 0.0 or (mx < _BIG and mx > _SMALL):
        return 0
    e = math.frexp(mx)[1]
    f = math.ldexp(1.0, -e)
    for i in range(m):
        for j in range(m):
            a[i, j] *= f
    return e


@kernel
def _durbin_cdf(n: int, d: float) -> float:
    """P(D_n < d) by the Durbin matrix formula [D68] in the form of [MTW03].

    Write n*d = k - h with k = ceil(n*d), 0 <= h < 1, m = 2k - 1.  The m x m matrix H has
    H[i, j] = 1/(i-j+1)! for i-j+1 >= 0 (else 0), then the first column has h^(i+1)/(i+1)!
    subtracted, the last row has h^(m-j)/(m-j)! subtracted, and H[m-1, 0] gains
    (2h-1)^m/m! when 2h > 1.  Then P(D_n < d) = n!/n^n * (H^n)[k-1, k-1].

    H^n is formed by binary powering, keeping only the row vector e_k^T H^(...) for the
    accumulated product (powers of H commute), so the cost is one m x m squaring per bit
    of n, and each squaring computes only half the entries (persymmetry).  Magnitudes are
    kept in range by exact power-of-two rescaling (the [MTW03] overflow guard), with the
    exponents tracked separately.
    """
    fn = float(n)
    nd = fn * d
    k = math.ceil(nd)
    if k < 1:
        return 0.0
    h = k - nd
    m = 2 * k - 1
    inv_fact = np.empty(m + 2)
    inv_fact[0] = 1.0
    for i in range(1, m + 2):
        inv_fact[i] = inv_fact[i - 1] / i
    hm = np.zeros((m, m))
    for i in range(m):
        for j in range(min(i + 2, m)):
            hm[i, j] = inv_fact[i - j + 1]
    hp = 1.0
    for i in range(m):
        hp *= h
        hm[i, 0] -= hp * inv_fact[i + 1]
        # last row: H[m-1, m-1-i] -= h^(i+1)/(i+1)!
        hm[m - 1, m - 1 - i] -= hp * inv_fact[i + 1]
    if 2.0 * h - 1.0 > 0.0:
        hm[m - 1, 0] += (2.0 * h - 1.0) ** m * inv_fact[m]

    row = np.zeros(m)
    row[k - 1] = 1.0
    tmp_row = np.empty(m)
    sq = np.empty((m, m))
    row_exp = 0
    pw_exp = 0
    e = n
    while True:
        if e & 1:
            for j in range(m):
                tmp_row[j] = 0.0
            for i in range(m):
                ri = row[i]
                if ri != 0.0:
                    for j in range(m):
                        tmp_row[j] += ri * hm[i, j]
            mx = 0.0
            for j in range(m):
                row[j] = tmp_row[j]
                if abs(row[j]) > mx:
                    mx = abs(row[j])
            row_exp += pw_exp
            if mx != 0.0 and (mx > _BIG or mx < _SMALL):
                ex = math.frexp(mx)[1]
                f = math.ldexp(1.0, -ex)
                for j in range(m):
                    row[j] *= f
                row_exp += ex
        e >>= 1
        if e == 0:
            break
        # hm <- hm @ hm.  H is persymmetric (H[i, j] == H[m-1-j, m-1-i], exactly, by
        # construction) and so are its powers: compute the entries on or above the
        # anti-diagonal (i + j <= m - 1) and mirror the rest, halving the work.
        for i in range(m):
            jmax = m - i
            for j in range(jmax):
                sq[i, j] = 0.0
            for kk in range(m):
                a = hm[i, kk]
                if a != 0.0:
                    for j in range(jmax):
                        sq[i, j] += a * hm[kk, j]
        for i in range(m):
            for j in range(m - i):
                hm[i, j] = sq[i, j]
            for j in range(m - i, m):
                hm[i, j] = sq[m - 1 - j, m - 1 - i]
        pw_exp = 2 * pw_exp + _rescale_matrix(hm, m)

    val = row[k - 1]
    if not (val > 0.0):
        return 0.0
    logp = math.log(val) + row_exp * _LN2 + _log_nfact_over_npown(fn)
    if logp >= 0.0:
        return 1.0
    return math.exp(logp)


# --------------------------------------------------------------------------------------
# Pomeranz recursion [P74]
# --------------------------------------------------------------------------------------


@kernel
def _pomeranz_cdf(n: int, d: float) -> float:
    """P(D_n < d) by the Pomeranz recursion [P74] (as described in [SL11]).

    With t = n*d = l + f (l integer, 0 <= f < 1) the event D_n < d is
    i - t < n*U_(i) < i - 1 + t for all i.  The boundary points i - t and i - 1 + t cut
    [0, n] at the positions j + f and j + 1 - f, so consecutive cut points are spaced
    g, 1-2g, 2g, 1-2g, ..., 2g, 1-2g, g with g = min(f, 1-f).  If N(s) counts the scaled
    uniforms below s, the constraints become integer bounds lo <= N(A) <= hi at every cut
    point A.  The counts in successive gaps are multinomial, so the recursion is
        V_A'[j] = sum_{i <= j} V_A[i] * gap^(j-i) / (j-i)!,
    restricted to lo(A') <= j <= hi(A'), and P(D_n < d) = n!/n^n * V_n[n].
    Values are kept in range by exact power-of-two rescaling.
    """
    fn = float(n)
    t = fn * d
    ell = math.floor(t)
    f = t - ell
    g = min(f, 1.0 - f)
    c2f = math.ceil(2.0 * f)  # 0, 1 or 2, exact
    width = 2 * ell + 8
    # Poisson-like weights gap^r / r! for the three gap lengths g, 1-2g and 2g.
    pw = np.empty((3, width + 1))
    gaps = (g, 1.0 - 2.0 * g, 2.0 * g)
    for s in range(3):
        pw[s, 0] = 1.0
        for r in range(1, width + 1):
            pw[s, r] = pw[s, r - 1] * gaps[s] / r
    cur = np.zeros(width + 1)
    nxt = np.zeros(width + 1)
    cur[0] = 1.0
    cur_lo = 0
    cur_hi = 0
    expo = 0
    n_points = 2 * n + 1  # cut points after the origin, the last one being A = n
    for p in range(n_points):
        if p == n_points - 1:
            # A = n (integer point)
            lo = n - ell + 1 - (1 if f > 0.0 else 0)
            hi = n + ell + (1 if f > 0.0 else 0) - 1
            s = 0
        else:
            j = p // 2
            lower = p % 2 == 0  # first point inside unit [j, j+1]
            is_f_type = lower == (f <= 0.5)
            if is_f_type:  # A = j + f
                lo = j - ell + 1
                hi = j + ell + c2f - 1
            else:  # A = j + 1 - f
                lo = j + 2 - ell - c2f
                hi = j + ell
            if p == 0:
                s = 0
            elif lower:
                s = 2
            else:
                s = 1
        lo = max(lo, 0)
        hi = min(hi, n)
        if hi < lo:
            return 0.0
        mx = 0.0
        for jj in range(lo, hi + 1):
            acc = 0.0
            top = min(jj, cur_hi)
            for ii in range(cur_lo, top + 1):
                acc += cur[ii - cur_lo] * pw[s, jj - ii]
            nxt[jj - lo] = acc
            if acc > mx:
                mx = acc
        if mx == 0.0:
            return 0.0
        if mx > _BIG or mx < _SMALL:
            ex = math.frexp(mx)[1]
            fac = math.ldexp(1.0, -ex)
            for jj in range(hi - lo + 1):
                nxt[jj] *= fac
            expo += ex
        cur, nxt = nxt, cur
        cur_lo = lo
        cur_hi = hi
    if cur_hi != n:
        return 0.0
    val = cur[n - cur_lo]
    if not (val > 0.0):
        return 0.0
    logp = math.log(val) + expo * _LN2 + _log_nfact_over_npown(fn)
    if logp >= 0.0:
        return 1.0
    return math.exp(logp)


# --------------------------------------------------------------------------------------
# Pelz-Good asymptotic series [PG76], in the form given in [SL11]
# --------------------------------------------------------------------------------------


@kernel
def _pelz_good_cdf(n: int, d: float) -> float:
    """Pelz-Good approximation of P(D_n <= d) = K0 + K1/n^(1/2) + K2/n + K3/n^(3/2).

    With z = d*sqrt(n), q = exp(-pi^2/(8 z^2)), r = exp(-pi^2/(2 z^2)) and j = 2k-1:
      K0 = sqrt(2pi)/z * sum_k q^(j^2)
      K1 = sqrt(2pi)/(6 z^4) * sum_k (pi^2 j^2/4 - z^2) q^(j^2)
      K2 = sqrt(2pi)/(72 z^7) * sum_k (6z^6 + 2z^4 + pi^2 (2z^4 - 5z^2) j^2/4
                                         + pi^4 (1 - 2z^2) j^4/16) q^(j^2)
           - pi^2 sqrt(2pi)/(36 z^3) * sum_{k>=1} k^2 r^(k^2)
      K3 = sqrt(2pi)/(6480 z^10) * sum_k (pi^6 (5 - 30z^2) j^6/64
                                         + pi^4 (212z^4 - 60z^2) j^4/16
                                         + pi^2 (135z^4 - 96z^6) j^2/4
                                         - 30z^6 - 90z^8) q^(j^2)
           + pi^2 sqrt(2pi)/(216 z^6) * sum_{k>=1} (3z^2 - pi^2 k^2) k^2 r^(k^2)
    (constants as used by SciPy's implementation of [SL11]).
    """
    fn = float(n)
    z = math.sqrt(fn) * d
    z2 = z * z
    lq = -_PI2 / (8.0 * z2)
    if lq < -708.0:
        return 0.0
    z4 = z2 * z2
    z6 = z4 * z2
    z8 = z4 * z4
    s0 = 0.0
    s1 = 0.0
    s2 = 0.0
    s3 = 0.0
    for k in range(1, 100000):
        j2 = float(2 * k - 1) ** 2
        ex = lq * j2
        if ex < -745.0:
            break
        w = math.exp(ex)
        s0 += w
        s1 += (_PI2 * j2 / 4.0 - z2) * w
        s2 += (
            6.0 * z6
            + 2.0 * z4
            + _PI2 * (2.0 * z4 - 5.0 * z2) * j2 / 4.0
            + _PI4 * (1.0 - 2.0 * z2) * j2 * j2 / 16.0
        ) * w
        s3 += (
            _PI6 * (5.0 - 30.0 * z2) * j2 * j2 * j2 / 64.0
            + _PI4 * (212.0 * z4 - 60.0 * z2) * j2 * j2 / 16.0
            + _PI2 * (135.0 * z4 - 96.0 * z6) * j2 / 4.0
            - 30.0 * z6
            - 90.0 * z8
        ) * w
    t2 = 0.0
    t3 = 0.0
    lr = 4.0 * lq
    for k in range(1, 100000):
        k2 = float(k) * k
        ex = lr * k2
        if ex < -745.0:
            break
        w = math.exp(ex)
        t2 += k2 * w
        t3 += (3.0 * z2 - _PI2 * k2) * k2 * w
    k0 = _SQRT_2PI / z * s0
    k1 = _SQRT_2PI / (6.0 * z4) * s1
    k2_ = _SQRT_2PI / (72.0 * z6 * z) * s2 - _PI2 * _SQRT_2PI / (36.0 * z2 * z) * t2
    k3 = _SQRT_2PI / (6480.0 * z8 * z2) * s3 + _PI2 * _SQRT_2PI / (216.0 * z6) * t3
    rn = math.sqrt(fn)
    return k0 + k1 / rn + k2_ / fn + k3 / (fn * rn)


# --------------------------------------------------------------------------------------
# One-sided Smirnov distribution: Birnbaum-Tingey sum [BT51]
# --------------------------------------------------------------------------------------


@kernel
def _bt_log_term(fn: float, nx: float, x: float, v: float) -> float:
    """log of the v-th Birnbaum-Tingey term  x * C(n,v) (x+v/n)^(v-1) (1-x-v/n)^(n-v).

    With p = x + v/n the term equals (x/p) * Binomial(n, p).pmf(v), and the binomial
    probability is evaluated in Loader's saddle-point form [L00]
        log pmf = stirlerr(n) - stirlerr(v) - stirlerr(n-v) - bd0(v, np) - bd0(n-v, nq)
                  - log(2 pi v (n-v) / n) / 2,
    which avoids the cancellation of the huge log-binomial against the log-powers.  Here
    n*p = n*x + v and n*q = n - v - n*x, so bd0(v, np) = v (s - log1p(s)) with s = nx/v and
    bd0(n-v, nq) = (n-v)(s' - log1p(s')) with s' = -nx/(n-v).
    """
    if v == 0.0:
        return fn * math.log1p(-x)
    nv = fn - v
    if nv - nx <= 0.0:
        return -_INF
    s1 = nx / v
    s2 = -nx / nv
    lc = (
        _stirlerr(fn)
        - _stirlerr(v)
        - _stirlerr(nv)
        - v * (s1 - math.log1p(s1))
        - nv * (s2 - math.log1p(s2))
    )
    lf = _LOG_2PI + math.log(v) + math.log(nv) - math.log(fn)
    return -math.log1p(v / nx) + lc - 0.5 * lf


@kernel
def _smirnov_sf_sum(n: int, x: float, max_step: int) -> float:
    """P(D_n^+ >= x) by the Birnbaum-Tingey (Smirnov) sum [BT51]

        P(D_n^+ >= x) = x * sum_{v=0}^{floor(n(1-x))} C(n,v) (x+v/n)^(v-1) (1-x-v/n)^(n-v).

    All terms are positive.  Few terms: summed directly.  Otherwise the (unimodal) terms are
    summed outward from their mode (found by ternary search), stopping on each side once
    the current term times the number of terms left is below 1e-17 of the running sum.

    Subsampling, for n >= 2 * _BT_NODES, n x^2 >= 2.2 and x <= 1/4 (the region where
    kstwo_sf needs this with large n): the summand, viewed as a function of v, is analytic
    and smooth on a scale of order n/sqrt(n x^2), and its end terms are below exp(-n x / 2),
    negligible against the sum ~exp(-2 n x^2).  By the Poisson summation formula the
    unit-step sum and h times the sum over every h-th integer then both equal the integral
    up to exponentially small aliasing terms (of order exp(-sqrt(2 pi n x^2 n/h)) from the
    edges), so with h = n // _BT_NODES about _BT_NODES terms are evaluated instead of up
    to n.  Checked against the full sum to 1e-12 relative for 512 <= n <= 1e6 and
    2.2 <= n x^2 <= 354.  max_step caps h (1 forces the full sum; used by the tests).
    """
    fn = float(n)
    nx = fn * x
    vmax = math.floor(fn * (1.0 - x))
    if vmax > n:
        vmax = n
    while vmax > 0 and (fn - vmax) - nx <= 0.0:
        vmax -= 1
    if vmax < 64:
        total = 0.0
        for v in range(vmax + 1):
            total += math.exp(_bt_log_term(fn, nx, x, float(v)))
        return total
    # ternary search for the mode of the log-terms
    lo = 0
    hi = vmax
    while hi - lo > 2:
        m1 = lo + (hi - lo) // 3
        m2 = hi - (hi - lo) // 3
        if _bt_log_term(fn, nx, x, float(m1)) < _bt_log_term(fn, nx, x, float(m2)):
            lo = m1 + 1
        else:
            hi = m2 - 1
    mode = lo
    best = _bt_log_term(fn, nx, x, float(lo))
    for v in range(lo + 1, hi + 1):
        lv = _bt_log_term(fn, nx, x, float(v))
        if lv > best:
            best = lv
            mode = v
    step = 1
    if n >= 2 * _BT_NODES and nx * x >= _UPPER_TAIL_NXX and x <= 0.25:
        step = min(n // _BT_NODES, max_step)
    # sum relative to the largest term to avoid underflow of every term
    total = 1.0
    v = mode + step
    while v <= vmax:
        t = math.exp(_bt_log_term(fn, nx, x, float(v)) - best)
        total += t
        if t * ((vmax - v) // step + 1) < 1e-17 * total:
            break
        v += step
    v = mode - step
    while v >= 0:
        t = math.exp(_bt_log_term(fn, nx, x, float(v)) - best)
        total += t
        if t * (v // step + 1) < 1e-17 * total:
            break
        v -= step
    logs = best + math.log(total * step)
    if logs < -745.0:
        return 0.0
    return math.exp(logs)


@kernel
def _smirnov_sf(n: int, x: float) -> float:
    """One-sided Smirnov survival function P(D_n^+ >= x) for 0 < x < 1 and n x > 1.

    Exact (Birnbaum-Tingey sum) for n <= 1e6.  For larger n SciPy switches to the
    approximation P ~ exp(-(6 n x + 1)^2 / (18 n)); it is reproduced here so that
    kstwo_sf agrees with scipy.stats.kstwo.  Returns 0 once 2 n x^2 exceeds the log of
    the smallest normal double, where the value underflows.
    """
    fn = float(n)
    if -2.0 * fn * x * x < _LOG_DBL_MIN:
        return 0.0
    if fn * x >= fn - 1.0:
        # only the v = 0 term: (1 - x)^n
        return math.pow(1.0 - x, fn)
    if n > _SMIRNOV_MAX_EXACT_N:
        logp = -((6.0 * fn * x + 1.0) ** 2) / 18.0 / fn
        if logp < -_LN2:
            return math.exp(logp)
        return 1.0 + math.expm1(logp)
    return _smirnov_sf_sum(n, x, n)


# --------------------------------------------------------------------------------------
# Two-sided Kolmogorov-Smirnov survival function
# --------------------------------------------------------------------------------------


@kernel
def kstwo_sf(n: int, d: float) -> float:
    """Survival function P(D_n >= d) of the two-sided one-sample KS statistic D_n.

    Agrees with ``scipy.stats.kstwo.sf(d, n)``.  The algorithm is chosen by region, as in
    Simard & L'Ecuyer (2011) with SciPy's thresholds (t = n d):

    * t <= 1/2: 1.  1/2 < t <= 1: Ruben-Gambino, P(D_n < d) = n!/n^n (2t - 1)^n.
    * t >= n - 1: Ruben-Gambino, P(D_n >= d) = 2 (1 - d)^n.
    * d >= 1/2: P(D_n >= d) = 2 P(D_n^+ >= d) exactly (the two one-sided events are
      disjoint), with the Birnbaum-Tingey sum for the one-sided probability.
    * n <= 140: Durbin matrix method (Marsaglia-Tsang-Wang) for n d^2 <= 0.754693,
      Pomeranz recursion for n d^2 <= 4, otherwise 2 P(D_n^+ >= d).
    * n > 140: 0 for n d^2 >= 370; 2 P(D_n^+ >= d) for n d^2 >= 2.2; else 1 - CDF with the
      CDF from the Durbin matrix method when n <= 1e5 and n d^(3/2) <= 1.4, otherwise from
      the Pelz-Good asymptotic series (also used inside the Durbin region where the CDF is
      below 1e-12, as a shortcut that changes the result by less than 1e-12).

    d <= 0 gives 1, d >= 1 gives 0, NaN d or n < 1 (or non-integral n) gives NaN.

    >>> round(kstwo_sf(100, 0.1), 6)
    0.252693
    >>> round(kstwo_sf(5, 0.5), 6)
    0.112
    >>> kstwo_sf(10, 0.0), kstwo_sf(10, 1.0)
    (1.0, 0.0)
    """
    if math.isnan(d):
        return _NAN
    if not (n >= 1) or n >= 9.2e18:  # n must be integral and fit in int64
        return _NAN
    ni = int(n)
    if ni != n:
        return _NAN
    if d >= 1.0:
        return 0.0
    if d <= 0.0:
        return 1.0
    fn = float(ni)
    t = fn * d
    if t <= 1.0:
        if t <= 0.5:
            return 1.0
        # Ruben-Gambino: P(D_n < d) = n!/n^n (2t-1)^n for 1/(2n) < d <= 1/n
        lc = _log_nfact_over_npown(fn) + fn * math.log(2.0 * t - 1.0)
        return _clip01(1.0 - math.exp(lc))
    if t >= fn - 1.0:
        # Ruben-Gambino: P(D_n >= d) = 2 (1-d)^n for d >= 1 - 1/n
        return _clip01(2.0 * math.pow(1.0 - d, fn))
    if d >= 0.5:
        return _clip01(2.0 * _smirnov_sf(ni, d))
    nxx = t * d
    if ni <= _SMALL_N:
        if nxx <= _DURBIN_MAX_NXX_SMALL_N:
            return _clip01(1.0 - _durbin_cdf(ni, d))
        if nxx <= _POMERANZ_MAX_NXX:
            return _clip01(1.0 - _pomeranz_cdf(ni, d))
        return _clip01(2.0 * _smirnov_sf(ni, d))
    if nxx >= _ZERO_NXX:
        return 0.0
    if nxx >= _UPPER_TAIL_NXX:
        return _clip01(2.0 * _smirnov_sf(ni, d))
    cdf_pg = _pelz_good_cdf(ni, d)
    if ni <= _DURBIN_MAX_N and fn * d**1.5 <= _DURBIN_MAX_ND15 and cdf_pg >= _DURBIN_MIN_CDF:
        return _clip01(1.0 - _durbin_cdf(ni, d))
    return _clip01(1.0 - cdf_pg)


@kernel
def ks_2samp_asymp_pvalue(d: float, n1: int, n2: int) -> float:
    """Two-sided asymptotic p-value of the two-sample KS test with statistic d.

    Same value as ``scipy.stats.ks_2samp(x, y, method="asymp").pvalue`` for samples of
    sizes n1 and n2: with m >= n the sorted sizes and en = m n / (m + n) (in floating
    point), p = kstwo_sf(round(en), d) with round-half-to-even, clipped to [0, 1].  When
    round(en) is 0 (n1 = n2 = 1) SciPy's kstwo has no valid shape and returns NaN; so does
    this.  n1 <= 0 or n2 <= 0 gives NaN.

    >>> round(ks_2samp_asymp_pvalue(0.1, 1000, 800), 6)
    0.000256
    >>> round(ks_2samp_asymp_pvalue(0.3, 20, 30), 6)
    0.187357
    >>> ks_2samp_asymp_pvalue(0.3, 1, 1)
    nan
    """
    if not (n1 >= 1 and n2 >= 1):
        return _NAN
    if math.isnan(d):
        return _NAN
    a = float(n1)
    b = float(n2)
    m = max(a, b)
    k = min(a, b)
    en = m * k / (m + k)
    nr = _round_half_even(en)
    if nr < 1.0:
        return _NAN
    return _clip01(kstwo_sf(int(nr), d))


# --------------------------------------------------------------------------------------
# Chi-square survival function via the regularized upper incomplete gamma function
# --------------------------------------------------------------------------------------


@kernel
def _log_pow_exp_over_gamma1(a: float, x: float) -> float:
    """log(x^a e^(-x) / Gamma(a+1)) for a > 0, x > 0.

    For a >= 10 uses Loader's form -bd0(a, x) - stirlerr(a) - log(2 pi a)/2, which avoids
    cancelling a log(x), x and lgamma(a+1) against each other for large a.
    """
    if a < 10.0:
        return a * math.log(x) - x - math.lgamma(a + 1.0)
    return -_bd0(a, x) - _stirlerr(a) - 0.5 * (_LOG_2PI + math.log(a))


@kernel
def _gammaq_temme(a: float, x: float) -> float:
    """Temme's uniform asymptotic expansion of Q(a, x) for large a [T79] ([AS] 6.5 and
    DiDonato & Morris 1986):  with lambda = x/a and
    eta = sign(lambda-1) sqrt(2 (lambda - 1 - log lambda)),
        Q(a, x) = erfc(eta sqrt(a/2)) / 2
                  + exp(-a eta^2/2)/sqrt(2 pi a) * (C0(eta) + C1(eta)/a + ...),
    C0 = -1/3 + eta/12 - 2 eta^2/135 + eta^3/864 + ...,  C1 = -1/540 - eta/288 + ....
    Used only for a > 1e6, where the omitted terms are below 1e-15 relative to the
    leading ones in the range where Q is not negligibly small.
    """
    sigma = (x - a) / a
    # lambda - 1 - log(lambda) = sigma - log1p(sigma) >= 0
    if abs(sigma) > 0.01:
        dev = sigma - math.log1p(sigma)
    else:
        # sum_{k>=2} (-sigma)^k / k, without forming 1 + sigma
        dev = 0.0
        pk = -sigma
        for k in range(2, 40):
            pk *= -sigma
            term = pk / k
            dev += term
            if abs(term) <= 1e-17 * dev:
                break
    eta = math.sqrt(2.0 * max(dev, 0.0))
    if sigma < 0.0:
        eta = -eta
    c0 = -1.0 / 3.0 + eta * (1.0 / 12.0 + eta * (-2.0 / 135.0 + eta * (1.0 / 864.0)))
    c1 = -1.0 / 540.0 - eta / 288.0
    res = 0.5 * math.erfc(eta * math.sqrt(0.5 * a))
    ex = -0.5 * a * eta * eta
    if ex > -745.0:
        res += math.exp(ex) / math.sqrt(2.0 * math.pi * a) * (c0 + c1 / a)
    return _clip01(res)


@kernel
def _gammaq(a: float, x: float) -> float:
    """Regularized upper incomplete gamma Q(a, x) = Gamma(a, x)/Gamma(a), a > 0, x > 0.

    Series for x < a + 1 ([AS] 6.5.29 / [NR] gser):
        P(a, x) = x^a e^-x / Gamma(a+1) * sum_{k>=0} x^k / ((a+1)...(a+k)),  Q = 1 - P;
    otherwise the continued fraction ([AS] 6.5.31 / [NR] gcf) evaluated by the modified
    Lentz method:
        Q(a, x) = x^a e^-x / Gamma(a) * 1/(x+1-a- 1(1-a)/(x+3-a- 2(2-a)/(x+5-a- ...))).
    For a > 1e6 Temme's uniform expansion is used instead (same accuracy, O(1) cost).
    """
    if a > _TEMME_MIN_A:
        return _gammaq_temme(a, x)
    return _gammaq_series_cf(a, x)


@kernel
def _gammaq_series_cf(a: float, x: float) -> float:
    """Q(a, x) by the power series or the continued fraction (see _gammaq)."""
    lpre = _log_pow_exp_over_gamma1(a, x)
    if x < a + 1.0:
        term = 1.0
        s = 1.0
        ak = a
        for _ in range(100000000):
            ak += 1.0
            term *= x / ak
            s += term
            if term < s * _EPS:
                break
        p = math.exp(lpre) * s
        return _clip01(1.0 - p)
    tiny = 1e-300
    b = x + 1.0 - a
    c = 1.0 / tiny
    dd = 1.0 / b
    h = dd
    for i in range(1, 100000000):
        an = -i * (i - a)
        b += 2.0
        dd = an * dd + b
        if abs(dd) < tiny:
            dd = tiny
        c = b + an / c
        if abs(c) < tiny:
            c = tiny
        dd = 1.0 / dd
        delta = dd * c
        h *= delta
        if abs(delta - 1.0) < _EPS:
            break
    # x^a e^-x / Gamma(a) = a * x^a e^-x / Gamma(a+1)
    lq = lpre + math.log(a) + math.log(h)
    if lq < -745.0:
        return 0.0
    return _clip01(math.exp(lq))


@kernel
def chi2_sf(x: float, df: float) -> float:
    """Chi-square survival function P(X >= x) for X ~ chi2(df), i.e. Q(df/2, x/2).

    Agrees with ``scipy.stats.chi2.sf(x, df)``.  NaN in either argument or df <= 0 gives
    NaN; x <= 0 gives 1; x = inf gives 0; df = inf (with finite x) gives 1.

    >>> round(chi2_sf(3.84, 1.0), 6)
    0.050044
    >>> round(chi2_sf(10.0, 4.0), 6)
    0.040428
    >>> chi2_sf(0.0, 3.0), chi2_sf(float("inf"), 3.0)
    (1.0, 0.0)
    """
    if math.isnan(x) or math.isnan(df):
        return _NAN
    if not (df > 0.0):
        return _NAN
    if x <= 0.0:
        return 1.0
    if x == _INF:
        return 0.0
    if df == _INF:
        return 1.0
    return _gammaq(0.5 * df, 0.5 * x)
