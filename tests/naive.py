"""Plain NumPy/SciPy versions of every statistic: the oracle the kernels are tested against.

Written for clarity, not speed: the whole reference and window are sorted and merged, as
SciPy does, so an error in the kernels' merge-free walks cannot hide here.
"""

from __future__ import annotations

import math

import numpy as np
from scipy import stats
from scipy.spatial.distance import jensenshannon

EPS = 1e-4


def finite(a: np.ndarray) -> np.ndarray:
    a = np.asarray(a, dtype=float)
    return a[np.isfinite(a)]


def edges(ref: np.ndarray, bins: int = 10) -> np.ndarray:
    ref = finite(ref)
    if ref.size == 0 or bins == 1:
        return np.empty(0)
    return np.unique(np.quantile(ref, np.arange(1, bins) / bins))


def props(values: np.ndarray, e: np.ndarray) -> np.ndarray:
    v = finite(values)
    counts = np.bincount(np.searchsorted(e, v, side="right"), minlength=e.size + 1)
    return counts / v.size if v.size else counts.astype(float)


def psi(r: np.ndarray, c: np.ndarray) -> float:
    r = np.maximum(r, EPS)
    c = np.maximum(c, EPS)
    return float(np.sum((c - r) * np.log(c / r)))


def js(r: np.ndarray, c: np.ndarray) -> float:
    if r.sum() == 0 or c.sum() == 0:
        return float("nan")
    # SciPy takes sqrt(divergence / 2) without clipping: for nearly equal vectors rounding
    # can make the divergence a tiny negative number and the distance NaN. The divergence
    # is >= 0 (Lin 1991), so that NaN is a rounded 0.
    with np.errstate(invalid="ignore"):
        d = float(jensenshannon(r, c, base=2))
    return 0.0 if np.isnan(d) else d


def ks(ref: np.ndarray, cur: np.ndarray) -> tuple[float, float]:
    ref, cur = finite(ref), finite(cur)
    if ref.size == 0 or cur.size == 0:
        return float("nan"), float("nan")
    # The statistic does not depend on the method; "asymp" gives the p-value we match.
    with np.errstate(divide="ignore", invalid="ignore"):  # SciPy's own n = 0 case
        res = stats.ks_2samp(ref, cur, method="asymp")
    return float(res.statistic), float(res.pvalue)


def wasserstein(ref: np.ndarray, cur: np.ndarray) -> float:
    ref, cur = finite(ref), finite(cur)
    if ref.size == 0 or cur.size == 0:
        return float("nan")
    sd = ref.std()
    return float(stats.wasserstein_distance(ref, cur) / (sd if sd > 0 else 1.0))


def same(a: float, b: float) -> bool:
    """Equal floats, NaN equal to NaN: results that must agree to the last bit."""
    return (math.isnan(a) and math.isnan(b)) or a == b


def union_walk(a: np.ndarray, b: np.ndarray) -> tuple[float, float]:
    """(KS statistic, raw W1) of two sorted finite samples by the plain walk over their
    union in order, a's copies of a value before b's: at each distinct value x's last copy,
    i = #(a <= x) and j = #(b <= x); D is the largest |i/M − j/m| among those with the
    largest integer |i·m − j·M|, and W1 the sum of |i·m − j·M|·(x' − x) in order, divided by
    M·m. The floating-point operations ``ecdf.ks_w1_merge`` promises to reproduce exactly."""
    big_m, m = len(a), len(b)
    if big_m == 0 or m == 0:
        return math.nan, math.nan
    merged = sorted([(float(v), 0) for v in a] + [(float(v), 1) for v in b])
    i = j = 0
    best, d, area = -1, 0.0, 0.0
    for step, (x, side) in enumerate(merged[:-1]):
        i, j = (i + 1, j) if side == 0 else (i, j + 1)
        gap = merged[step + 1][0] - x
        k = abs(i * m - j * big_m)
        area += k * gap
        if gap > 0 and k >= best:
            f = abs(i / big_m - j / m)
            d = f if k > best else max(d, f)
            best = k
    return d, area / big_m / m


def chi2(counts: np.ndarray, r: np.ndarray) -> tuple[float, float]:
    n = counts.sum()
    if n == 0:
        return float("nan"), float("nan")
    rr = np.maximum(r, EPS)
    res = stats.chisquare(counts, f_exp=n * rr / rr.sum())
    return float(res.statistic), float(res.pvalue)


def mean_shift(ref: np.ndarray, cur: np.ndarray) -> tuple[float, float]:
    """Welch's z for a shift of the mean, written out (Welch 1947): (x̄ − μ) / √(s²/n + S²/N)
    with both sample variances (ddof 1), two-sided p from the normal distribution; the shift
    in the reference's population standard deviations."""
    r, c = finite(ref), finite(cur)
    if r.size < 2 or c.size < 2:
        return math.nan, math.nan
    constant = c.min() == c.max()  # a constant sample is its value exactly, std 0
    ref_constant = r.min() == r.max()
    ref_mean = float(r[0]) if ref_constant else float(r.mean())
    diff = (float(c[0]) if constant else float(c.mean())) - ref_mean
    sd = 0.0 if ref_constant else float(r.std())
    shift = diff / sd if sd > 0 else (0.0 if diff == 0 else math.copysign(math.inf, diff))
    var = 0.0 if constant else float(c.var(ddof=1))
    ref_var = 0.0 if ref_constant else float(r.var(ddof=1))
    se = math.sqrt(var / c.size + ref_var / r.size)
    if se == 0:
        return shift, 1.0 if diff == 0 else 0.0
    return shift, float(2 * stats.norm.sf(abs(diff / se)))


def numeric_window(ref: np.ndarray, cur: np.ndarray, bins: int = 10) -> dict[str, float]:
    e = edges(ref, bins)
    r, c = props(ref, e), props(cur, e)
    d, p = ks(ref, cur)
    shift, mean_p = mean_shift(ref, cur)
    empty = finite(cur).size == 0
    return {
        "mean_shift": shift,
        "mean_pvalue": mean_p,
        "psi": float("nan") if empty else psi(r, c),
        "js_distance": float("nan") if empty else js(r, c),
        "ks_statistic": d,
        "ks_pvalue": p,
        "wasserstein": wasserstein(ref, cur),
    }


def category_buckets(ref: list, top_k: int = 50) -> list[str]:
    seen = [v for v in ref if v is not None]
    uniq, counts = np.unique(np.array(seen, dtype=object).astype(str), return_counts=True)
    order = sorted(range(len(uniq)), key=lambda i: (-counts[i], uniq[i]))
    return [str(uniq[i]) for i in order[:top_k]]


def category_counts(values: list, buckets: list[str]) -> np.ndarray:
    index = {b: i for i, b in enumerate(buckets)}
    out = np.zeros(len(buckets) + 1, dtype=np.int64)
    for v in values:
        if v is not None:
            out[index.get(v, len(buckets))] += 1
    return out


def categorical_window(ref: list, cur: list, top_k: int = 50) -> dict[str, float]:
    buckets = category_buckets(ref, top_k)
    rc = category_counts(ref, buckets)
    cc = category_counts(cur, buckets)
    r = rc / rc.sum()
    if cc.sum() == 0:
        nan = float("nan")
        return {"psi": nan, "js_distance": nan, "linf": nan, "chi2_pvalue": nan}
    c = cc / cc.sum()
    return {
        "psi": psi(r, c),
        "js_distance": js(r, c),
        "linf": float(np.max(np.abs(c - r))),
        "chi2_pvalue": chi2(cc, r)[1],
    }
