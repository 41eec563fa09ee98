"""Sort a window's finite values, counting NaN and ±inf on the way.

A least-significant-digit radix sort (Knuth, TAOCP vol. 3, §5.2.5) on order-preserving
64-bit keys: a float's bits, with all bits flipped for negatives and the sign bit set for
the rest, compare as unsigned integers in the same order as the floats. Six passes of 11-bit
digits; all six digit histograms are built in one read, and a pass whose digit is the same
for every key (high exponent bits, often) is skipped. It drops NaN/±inf in the same pass.
On 10,000 continuous values it ran 2.5–3× faster than ``np.sort`` here (a CPU without a
SIMD float64 sort); on heavily tied integers about as fast (0.9×). Measure with
``python benchmarks/kernels.py``. −0.0 is stored as 0.0 (they are one value to every statistic).
"""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import NDArray

from ._jit import kernel

_DIGIT_BITS = 11
_PASSES = 6  # 6 × 11 = 66 ≥ 64 bits
_RADIX = 1 << _DIGIT_BITS


@kernel
def finite_sorted(values: NDArray[np.float64]) -> tuple[NDArray[np.float64], int, int]:
    """(sorted finite values, count of NaN, count of ±inf)."""
    n = values.shape[0]
    sign = np.uint64(1) << np.uint64(63)
    mask = np.uint64(_RADIX - 1)
    keys = np.empty(n, dtype=np.uint64)
    m = 0
    n_nan = 0
    n_inf = 0
    for i in range(n):
        v = values[i]
        if math.isnan(v):
            n_nan += 1
        elif math.isinf(v):
            n_inf += 1
        else:
            if v == 0.0:
                v = 0.0
            b = np.float64(v).view(np.uint64)
            keys[m] = (~b) if (b & sign) else (b | sign)
            m += 1
    hist = np.zeros((_PASSES, _RADIX), dtype=np.int64)
    for i in range(m):
        k = keys[i]
        for p in range(_PASSES):
            hist[p, (k >> np.uint64(_DIGIT_BITS * p)) & mask] += 1
    src = keys[:m]
    dst = np.empty(m, dtype=np.uint64)
    for p in range(_PASSES):
        shift = np.uint64(_DIGIT_BITS * p)
        counts = hist[p]
        if m == 0 or counts[(src[0] >> shift) & mask] == m:
            continue
        total = 0
        for d in range(_RADIX):
            c = counts[d]
            counts[d] = total
            total += c
        for i in range(m):
            d = (src[i] >> shift) & mask
            dst[counts[d]] = src[i]
            counts[d] += 1
        src, dst = dst, src
    out = np.empty(m, dtype=np.float64)
    for i in range(m):
        k = src[i]
        b = (k & ~sign) if (k & sign) else ~k
        out[i] = np.uint64(b).view(np.float64)
    return out, n_nan, n_inf
