"""Data-quality counts for one window of a feature.

Numeric: ``missing`` (null or NaN), ``nonfinite`` (±inf), ``out_of_range`` (finite but
outside the training [min, max]). Categorical: ``missing`` (null) and ``unseen`` (never seen in
training). Type errors (a string where a number belongs) are found where values are decoded,
before a kernel sees them, and are counted there.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from ._jit import kernel


@kernel
def out_of_range_sorted(sorted_finite: NDArray[np.float64], lo: float, hi: float) -> int:
    """How many sorted finite values lie below ``lo`` or above ``hi``."""
    below = np.searchsorted(sorted_finite, lo, side="left")
    above = sorted_finite.shape[0] - np.searchsorted(sorted_finite, hi, side="right")
    return int(below + above)


@kernel
def bucket_counts(codes: NDArray[np.int64], n_buckets: int) -> tuple[NDArray[np.int64], int, int]:
    """Counts per bucket for category codes.

    A code in ``[0, n_buckets)`` is a bucket; ``-1`` is missing; ``-2`` is a value never seen
    in training, counted as unseen *and* in the last bucket (``__other__``).
    Returns (counts, missing, unseen).
    """
    counts = np.zeros(n_buckets, dtype=np.int64)
    missing = 0
    unseen = 0
    for i in range(codes.shape[0]):
        c = codes[i]
        if c >= 0:
            counts[min(c, n_buckets - 1)] += 1
        elif c == -1:
            missing += 1
        else:
            unseen += 1
            counts[n_buckets - 1] += 1
    return counts, missing, unseen
