"""Pearson χ² goodness-of-fit of a window's category counts against the reference mix.

χ² = Σ (o_i − e_i)² / e_i with e_i = n · r_i (Pearson, 1900) and k − 1 degrees of freedom —
``scipy.stats.chisquare(o, f_exp=e)``. A category absent from the reference (r_i = 0, e.g. the
``__other__`` bucket of a feature whose every training value is in the top-K) would make the
statistic infinite, so reference proportions are floored at ``PSI_EPSILON`` and renormalised
to sum to 1 before the expected counts are formed.
"""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import NDArray

from ._jit import kernel
from .psi import PSI_EPSILON
from .special import chi2_sf


@kernel
def _chi2(
    counts: NDArray[np.int64], ref_props: NDArray[np.float64], eps: float
) -> tuple[float, float]:
    k = counts.shape[0]
    n = 0
    for i in range(k):
        n += counts[i]
    if n == 0 or k == 0:
        return math.nan, math.nan
    norm = 0.0
    for i in range(k):
        norm += max(ref_props[i], eps)
    stat = 0.0
    for i in range(k):
        e = n * (max(ref_props[i], eps) / norm)
        d = counts[i] - e
        stat += d * d / e
    return stat, chi2_sf(stat, float(k - 1))


def chi2_test(
    counts: NDArray[np.int64], ref_props: NDArray[np.float64], eps: float = PSI_EPSILON
) -> tuple[float, float]:
    """(χ² statistic, p-value) of ``counts`` against ``ref_props``; NaN for an empty window.

    >>> import numpy as np
    >>> stat, p = chi2_test(np.array([30, 50, 20]), np.array([0.3, 0.4, 0.3]))
    >>> round(stat, 6), round(p, 6)
    (5.833333, 0.054114)
    """
    c = np.ascontiguousarray(counts, dtype=np.int64)
    r = np.ascontiguousarray(ref_props, dtype=np.float64)
    if c.ndim != 1 or c.shape != r.shape:
        raise ValueError(
            f"counts and proportions must be 1-D of equal length, got {c.shape}, {r.shape}"
        )
    stat, p = _chi2(c, r, eps)
    return float(stat), float(p)
