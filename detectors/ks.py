"""Two-sample Kolmogorov-Smirnov statistic on exact values, and its asymptotic p-value.

D = sup_x |F_ref(x) − F_cur(x)| over the empirical CDFs — the value of
``scipy.stats.ks_2samp(ref, cur).statistic``, computed by the walk in :mod:`.ecdf`.

The p-value is SciPy's ``method="asymp"``: the Kolmogorov distribution of the two-sided
one-sample statistic at n = round(M·m / (M + m)) (see :mod:`.special`).
"""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import NDArray

from ._jit import kernel
from .ecdf import cdf_integral, ks_w1_sorted
from .sorting import finite_sorted
from .special import ks_2samp_asymp_pvalue


@kernel
def ks_pvalue(d: float, n_ref: int, n_cur: int) -> float:
    """Asymptotic two-sided p-value of statistic ``d`` (NaN for NaN)."""
    if math.isnan(d):
        return math.nan
    return ks_2samp_asymp_pvalue(d, n_ref, n_cur)


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
    r, _, _ = finite_sorted(_as_1d(ref))
    c, _, _ = finite_sorted(_as_1d(cur))
    d, _ = ks_w1_sorted(r, cdf_integral(r), c)
    return float(d), float(ks_pvalue(d, r.shape[0], c.shape[0]))


def _as_1d(a: NDArray[np.float64]) -> NDArray[np.float64]:
    arr = np.ascontiguousarray(a, dtype=np.float64)
    if arr.ndim != 1:
        raise ValueError(f"expected a 1-D array, got shape {arr.shape}")
    return arr
