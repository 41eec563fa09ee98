"""Exponential ("galloping") search on a sorted array, used by the merge-free kernels.

When a small sorted window is walked against a large sorted reference, each step moves the
reference position forward by a little; galloping from the last position costs
O(log distance) instead of O(log n) or O(n). (Bentley & Yao, "An almost optimal algorithm
for unbounded searching", 1976.)
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from ._jit import kernel

_SCAN = 32
"""Steps taken one by one before galloping. When the reference is ~10× the window the next
position is usually a few steps on, and a predictable linear scan beats the unpredictable
branches of a search. 32 was the fastest of 4, 8, 16 and 32 when this was written; to
compare again, change it and rerun ``python benchmarks/kernels.py``."""


@kernel
def gallop_left(a: NDArray[np.float64], x: float, lo: int) -> int:
    """First index ``i >= lo`` with ``a[i] >= x`` (``len(a)`` if none); requires a[lo-1] < x."""
    n = a.shape[0]
    end = min(n, lo + _SCAN)
    while lo < end:
        if a[lo] >= x:
            return lo
        lo += 1
    if lo >= n or a[lo] >= x:
        return lo
    step = 1
    hi = lo + 1
    while hi < n and a[hi] < x:
        lo = hi
        step *= 2
        hi = lo + step
    if hi > n:
        hi = n
    # invariant: a[lo] < x, and a[hi] >= x or hi == n
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if a[mid] < x:
            lo = mid
        else:
            hi = mid
    return hi


@kernel
def gallop_right(a: NDArray[np.float64], x: float, lo: int) -> int:
    """First index ``i >= lo`` with ``a[i] > x`` (``len(a)`` if none); requires a[lo-1] <= x."""
    n = a.shape[0]
    end = min(n, lo + _SCAN)
    while lo < end:
        if a[lo] > x:
            return lo
        lo += 1
    if lo >= n or a[lo] > x:
        return lo
    step = 1
    hi = lo + 1
    while hi < n and a[hi] <= x:
        lo = hi
        step *= 2
        hi = lo + step
    if hi > n:
        hi = n
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if a[mid] <= x:
            lo = mid
        else:
            hi = mid
    return hi
