"""L-infinity distance between category proportions: max_i |c_i − r_i|.

Vertex AI Model Monitoring's distance for categorical features. The ``__other__`` bucket is
one of the entries, so mass moving to unseen or rare categories counts.
"""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import NDArray

from ._jit import kernel
from .psi import _pair


@kernel
def _linf(ref: NDArray[np.float64], cur: NDArray[np.float64]) -> float:
    if ref.shape[0] == 0:
        return math.nan
    best = 0.0
    for i in range(ref.shape[0]):
        d = abs(cur[i] - ref[i])
        if d > best:
            best = d
    return best


def linf(ref_props: NDArray[np.float64], cur_props: NDArray[np.float64]) -> float:
    """Largest absolute difference of proportions.

    >>> import numpy as np
    >>> round(linf(np.array([0.5, 0.3, 0.2]), np.array([0.4, 0.45, 0.15])), 12)
    0.15
    """
    a, b = _pair(ref_props, cur_props)
    return float(_linf(a, b))
