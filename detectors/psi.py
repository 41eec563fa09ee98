"""Population Stability Index.

PSI = Σ (c_i − r_i) · ln(c_i / r_i) over the reference's bins (Siddiqi, *Credit Risk
Scorecards*, 2006; Yurdakul, "Statistical properties of the population stability index",
2018), with ``c`` the current and ``r`` the reference proportions.

A bin that is empty on one side makes the log infinite, so both proportions are floored at
``PSI_EPSILON = 1e-4`` (one event in ten thousand) before the sum, without renormalising.
Why that value: it is small enough that a bin holding a real 1 % of one side still weighs
~0.046 (below the 0.1 "moderate shift" line on its own), and large enough that one empty bin
cannot dominate (a bin going from 5 % to 0 adds 0.05·ln(500) ≈ 0.31, clearly "drift"). It is
the floor Evidently uses for the same purpose.
"""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import NDArray

from ._jit import kernel

PSI_EPSILON = 1e-4


@kernel
def _psi(ref: NDArray[np.float64], cur: NDArray[np.float64], eps: float) -> float:
    total = 0.0
    for i in range(ref.shape[0]):
        r = max(ref[i], eps)
        c = max(cur[i], eps)
        total += (c - r) * math.log(c / r)
    return total


def psi(
    ref_props: NDArray[np.float64], cur_props: NDArray[np.float64], eps: float = PSI_EPSILON
) -> float:
    """PSI between two proportion vectors over the same bins.

    >>> import numpy as np
    >>> round(psi(np.array([0.5, 0.5]), np.array([0.4, 0.6])), 6)
    0.040547
    """
    ref, cur = _pair(ref_props, cur_props)
    if not eps > 0:
        raise ValueError(f"eps must be positive, got {eps}")
    return float(_psi(ref, cur, eps))


def _pair(
    ref: NDArray[np.float64], cur: NDArray[np.float64]
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    a = np.ascontiguousarray(ref, dtype=np.float64)
    b = np.ascontiguousarray(cur, dtype=np.float64)
    if a.ndim != 1 or a.shape != b.shape:
        raise ValueError(f"proportions must be 1-D of equal length, got {a.shape} and {b.shape}")
    return a, b
