"""Forward searches on a sorted array, used by the merge-free kernels.

When a small sorted window is walked against a large sorted reference, each step moves the
reference position forward by a little; galloping from the last position costs
O(log distance) instead of O(log n) or O(n). (Bentley & Yao, "An almost optimal algorithm
for unbounded searching", 1976.) ``count_below`` covers the usual short step without a
data-dependent branch and leaves the longer ones to galloping.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, cast

import numba
import numpy as np
from llvmlite import ir  # type: ignore[import-untyped]
from numba.core import cgutils
from numba.extending import intrinsic
from numpy.typing import NDArray

from ._jit import kernel

_SCAN = 32
"""Steps taken one by one before galloping. When the reference is ~10× the window the next
position is usually a few steps on, and a predictable linear scan beats the unpredictable
branches of a search. 32 was the fastest of 4, 8, 16 and 32 when this was written; to
compare again, change it and rerun ``python benchmarks/kernels.py``. (That was timed by
repeating one call, which lets the branch predictor learn the scan's exits; on fresh data
they are mispredicted, so ``ks_w1_sorted`` now counts blocks with ``count_below`` first
and reaches these searches only for long steps and runs of ties.)"""

BLOCK = 32
"""Reference values ``count_below`` looks at (its eight pivots are written for 32). With a
reference ~10× the window the step is longer than this about one time in 25, so the branch
that falls back to galloping is well predicted. A 64-value version (8 or 16 pivots) was
slower in the cold-cache timing of ``benchmarks/kernels.py`` when this was written."""


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


@kernel
def count_below(a: NDArray[np.float64], x: float, lo: int) -> int:
    """``#(a[lo:lo+BLOCK] < x)`` for sorted ``a``; requires ``lo + BLOCK <= len(a)``.

    On data the branch predictor has not seen, a linear scan mispredicts its exit about once
    per search, and that stall dominated the KS/Wasserstein walk; hence a search whose
    comparisons feed arithmetic, not branches (as in Khuong & Morin, "Array layouts for
    comparison-based searching", 2017). Eight pivots a[lo+3], a[lo+7], ..., a[lo+31] count
    the groups of four lying wholly below x, then three compares count inside the next group
    (its last value is a pivot, so it is >= x). The indices are unsigned because Numba adds
    a compare and a select to every signed index (for negative indices), and these loads
    are on the path from one search to the next.
    """
    u = np.uint64(lo)
    below = 4 * (
        (int(a[u + np.uint64(3)] < x) + int(a[u + np.uint64(7)] < x))
        + (int(a[u + np.uint64(11)] < x) + int(a[u + np.uint64(15)] < x))
        + (int(a[u + np.uint64(19)] < x) + int(a[u + np.uint64(23)] < x))
        + (int(a[u + np.uint64(27)] < x) + int(a[u + np.uint64(31)] < x))
    )
    g = np.uint64(lo + min(below, BLOCK - 4))  # the group after those, or the last one
    inside = int(a[g] < x) + int(a[g + np.uint64(1)] < x) + int(a[g + np.uint64(2)] < x)
    return below + inside * int(below < BLOCK)


def _prefetch_typer(typingctx: Any, a: Any, i: Any) -> Any:
    def codegen(context: Any, builder: Any, sig: Any, args: Any) -> Any:
        arr = context.make_array(sig.args[0])(context, builder, args[0])
        ptr = cgutils.get_item_pointer(  # type: ignore[no-untyped-call]
            context, builder, sig.args[0], arr, [args[1]]
        )
        i32 = ir.IntType(32)
        fnty = ir.FunctionType(ir.VoidType(), [ptr.type, i32, i32, i32])
        fn = builder.module.declare_intrinsic("llvm.prefetch", [ptr.type], fnty)
        builder.call(fn, [ptr, i32(0), i32(3), i32(1)])  # read, keep in every level, data
        return context.get_dummy_value()

    return numba.types.void(a, i), codegen


def _no_prefetch(a: NDArray[np.float64], i: int) -> None:
    """Without the JIT (NUMBA_DISABLE_JIT=1) there is nothing to prefetch."""


_Prefetch = Callable[[NDArray[np.float64], int], None]
prefetch: _Prefetch = (
    _no_prefetch
    if numba.config.DISABLE_JIT  # type: ignore[attr-defined]
    else cast(_Prefetch, intrinsic(_prefetch_typer))
)
"""``prefetch(a, i)`` asks the CPU to bring the cache line of ``a[i]`` in (LLVM's
``llvm.prefetch``), ``0 <= i < len(a)``; it changes no result. The forward walks move a few
values per search, so the hardware's own prefetch does not run far enough ahead on this
access pattern: reads that miss the cache then sit on the chain from one search to the
next."""
