"""Jensen-Shannon distance, base 2, between two proportion vectors.

JS(p, q) = sqrt( (KL(p‖m) + KL(q‖m)) / 2 ) with m = (p + q) / 2 and logs in base 2 (Lin,
"Divergence measures based on the Shannon entropy", 1991), so it lies in [0, 1]. Both
vectors are normalised to sum to 1 first, as ``scipy.spatial.distance.jensenshannon`` does;
an all-zero vector (an empty window) gives NaN.
"""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import NDArray

from ._jit import kernel
from .psi import _pair


@kernel
def _js_distance(p: NDArray[np.float64], q: NDArray[np.float64]) -> float:
    sp = 0.0
    sq = 0.0
    for i in range(p.shape[0]):
        sp += p[i]
        sq += q[i]
    if not (sp > 0.0 and sq > 0.0):
        return math.nan
    total = 0.0
    for i in range(p.shape[0]):
        a = p[i] / sp
        b = q[i] / sq
        m = 0.5 * (a + b)
        if m > 0.0:  # m underflows only for subnormal a, b, whose terms are ~0 anyway
            if a > 0.0:
                total += a * math.log(a / m)
            if b > 0.0:
                total += b * math.log(b / m)
    total = total / math.log(2.0)
    return math.sqrt(max(total / 2.0, 0.0))


def js_distance(p: NDArray[np.float64], q: NDArray[np.float64]) -> float:
    """Jensen-Shannon distance (base 2).

    >>> import numpy as np
    >>> round(js_distance(np.array([0.5, 0.5]), np.array([0.9, 0.1])), 6)
    0.383136
    """
    a, b = _pair(p, q)
    return float(_js_distance(a, b))
