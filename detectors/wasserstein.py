"""Wasserstein-1 (earth mover's) distance between the reference sample and a window,
normalised by the reference standard deviation.

W1 = ∫ |F_ref(x) − F_cur(x)| dx (Vallender, 1974: for one-dimensional distributions the
Wasserstein-1 distance is the L1 distance between CDFs) — ``scipy.stats.wasserstein_distance``,
computed by the walk in :mod:`.ecdf`. Divided by the reference std so a threshold means the
same for every feature (Evidently's "normed" Wasserstein); a constant reference (std 0) has
no scale, so it is divided by 1.
"""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import NDArray

from .ecdf import cdf_integral, ks_w1_sorted
from .ks import _as_1d
from .sorting import finite_sorted


def wasserstein(ref: NDArray[np.float64], cur: NDArray[np.float64], ref_std: float) -> float:
    """W1 between two samples (NaN and ±inf dropped) divided by ``ref_std`` (by 1 when 0).

    >>> import numpy as np
    >>> round(wasserstein(np.array([0.0, 1.0, 2.0]), np.array([1.0, 2.0, 3.0]), 1.0), 6)
    1.0
    """
    r, _, _ = finite_sorted(_as_1d(ref))
    c, _, _ = finite_sorted(_as_1d(cur))
    _, w1 = ks_w1_sorted(r, cdf_integral(r), c)
    return float(w1) / normaliser(ref_std)


def normaliser(ref_std: float) -> float:
    """The divisor for the normed distance: the reference std, or 1 for a constant reference."""
    return ref_std if ref_std > 0 and math.isfinite(ref_std) else 1.0
