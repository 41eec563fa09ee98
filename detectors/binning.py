"""Binning against frozen edges.

Edges are the reference's interior cut points (``B - 1`` of them for ``B`` bins). The first
and last bins are open-ended, so every finite value lands in a bin: value ``v`` goes to bin
``i`` when ``edges[i-1] <= v < edges[i]`` — the convention of
``np.searchsorted(edges, v, side="right")``. Non-finite values are not binned; the
data-quality kernels count them.
"""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import NDArray

from ._jit import kernel


@kernel
def _bin_counts(values: NDArray[np.float64], edges: NDArray[np.float64]) -> NDArray[np.int64]:
    counts = np.zeros(edges.shape[0] + 1, dtype=np.int64)
    for i in range(values.shape[0]):
        v = values[i]
        if math.isfinite(v):
            counts[np.searchsorted(edges, v, side="right")] += 1
    return counts


@kernel
def _bin_counts_sorted(
    sorted_finite: NDArray[np.float64], edges: NDArray[np.float64]
) -> NDArray[np.int64]:
    # On sorted data a bin count is a difference of two positions: O(B log n), not O(n).
    n_bins = edges.shape[0] + 1
    counts = np.empty(n_bins, dtype=np.int64)
    prev = 0
    for i in range(edges.shape[0]):
        pos = np.searchsorted(sorted_finite, edges[i], side="left")
        counts[i] = pos - prev
        prev = pos
    counts[n_bins - 1] = sorted_finite.shape[0] - prev
    return counts


def bin_counts(values: NDArray[np.float64], edges: NDArray[np.float64]) -> NDArray[np.int64]:
    """Count the finite ``values`` per bin; NaN and ±inf are skipped.

    >>> import numpy as np
    >>> bin_counts(np.array([0.5, 1.0, 1.5, 3.0, np.nan]), np.array([1.0, 2.0])).tolist()
    [1, 2, 1]
    """
    return _bin_counts(_as_f64(values), _as_f64(edges))


def bin_counts_sorted(
    sorted_finite: NDArray[np.float64], edges: NDArray[np.float64]
) -> NDArray[np.int64]:
    """Like :func:`bin_counts` for values already sorted and all finite (faster)."""
    return _bin_counts_sorted(_as_f64(sorted_finite), _as_f64(edges))


def proportions(counts: NDArray[np.int64]) -> NDArray[np.float64]:
    """Counts divided by their total; all zeros (not NaN) when the total is 0."""
    total = counts.sum()
    if total == 0:
        return np.zeros(counts.shape[0], dtype=np.float64)
    return counts / float(total)


def _as_f64(a: NDArray[np.float64]) -> NDArray[np.float64]:
    arr = np.asarray(a, dtype=np.float64)
    if arr.ndim != 1:
        raise ValueError(f"expected a 1-D array, got shape {arr.shape}")
    return np.ascontiguousarray(arr)
