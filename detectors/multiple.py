"""Multiple-testing correction across the features of a window.

Benjamini & Hochberg (1995), "Controlling the false discovery rate": sort the m p-values,
p_(i) · m / i, take the running minimum from the largest down, clip at 1. Equal to
``scipy.stats.false_discovery_control(p, method="bh")``. NaN p-values (no test) stay NaN and
do not count in m.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray


def benjamini_hochberg(pvalues: NDArray[np.float64]) -> NDArray[np.float64]:
    """BH-adjusted p-values, same order as the input.

    >>> import numpy as np
    >>> benjamini_hochberg(np.array([0.01, 0.04, np.nan, 0.03])).round(4).tolist()
    [0.03, 0.04, nan, 0.04]
    """
    p = np.asarray(pvalues, dtype=np.float64)
    out = np.full(p.shape, np.nan)
    ok = ~np.isnan(p)
    m = int(ok.sum())
    if m == 0:
        return out
    vals = p[ok]
    order = np.argsort(vals, kind="stable")
    ranked = vals[order] * m / np.arange(1, m + 1)
    ranked = np.minimum.accumulate(ranked[::-1])[::-1]
    adj = np.empty(m)
    adj[order] = np.clip(ranked, 0.0, 1.0)
    out[ok] = adj
    return out
