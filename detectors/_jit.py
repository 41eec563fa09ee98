"""One place for the Numba options every kernel uses.

``cache=True`` writes compiled machine code next to the module (``__pycache__``), so only
the first run on a machine pays the compile. ``error_model="numpy"`` makes a division by
zero return inf/nan like NumPy instead of raising, which keeps kernels total.
"""

from __future__ import annotations

from typing import Any, TypeVar

import numba

F = TypeVar("F")


def kernel(func: F) -> F:
    """Compile ``func`` in nopython mode with the project's options."""
    compiled: Any = numba.njit(cache=True, nogil=True, error_model="numpy")(func)
    return compiled  # type: ignore[no-any-return]
