"""One place for the Numba options every kernel uses.

``cache=True`` writes compiled machine code next to the module (``__pycache__``), so only
the first run on a machine pays the compile. ``error_model="numpy"`` makes a division by
zero return inf/nan like NumPy instead of raising, which keeps kernels total.
"""

from __future__ import annotations

import sys
from typing import Any, TypeVar

import numba

F = TypeVar("F")


def numpy_support_without_blas() -> None:
    """Load Numba's NumPy support (``numba.np.arraymath``) without its BLAS probe. On
    import that module checks for BLAS by importing ``scipy.linalg.cython_blas``, which
    stays resident for the life of the process; no kernel here uses ``np.dot`` or
    ``np.linalg``, so when SciPy is not loaded yet the probe is made to fail, and Numba
    records that it has no BLAS.
    ``scipy.linalg`` stays importable: the block is lifted at once. But Numba's ``np.dot``
    and ``np.linalg`` then fail to compile for the rest of the process, so only the CLI's
    file commands, which own their process, call this (``driftline.cli``), never an import
    of the library (``tests/test_lean.py::test_replay_loads_neither_pandas_nor_blas``)."""
    if "scipy.linalg" in sys.modules or "numba.np.arraymath" in sys.modules:
        return
    sys.modules["scipy.linalg"] = None  # type: ignore[assignment]  # its import fails
    try:
        import numba.np.arraymath  # noqa: F401
    finally:
        if sys.modules.get("scipy.linalg", 0) is None:
            del sys.modules["scipy.linalg"]


def kernel(func: F) -> F:
    """Compile ``func`` in nopython mode with the project's options."""
    compiled: Any = numba.njit(cache=True, nogil=True, error_model="numpy")(func)
    return compiled  # type: ignore[no-any-return]
