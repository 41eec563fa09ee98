"""Frozen reference statistics of one column, as read from a baseline.

Everything here comes from the training (reference) data only and never changes while
windows are compared with it (the bin edges, proportions and sorted sample are not
recomputed from reference ∪ window).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property

import numpy as np
from numpy.typing import NDArray

from ._jit import kernel
from .ecdf import cdf_integral

OTHER = "__other__"
"""Name of the bucket that holds every category outside the reference's top-K."""


@kernel
def _is_sorted(a: NDArray[np.float64]) -> bool:
    for i in range(1, a.shape[0]):  # noqa: SIM110 (a compiled loop, not a generator)
        if a[i] < a[i - 1]:
            return False
    return True


@dataclass(frozen=True, eq=False)
class NumericReference:
    """Reference of a numeric column.

    ``sample`` is sorted and finite (all finite training values, or a seeded reservoir
    sample of them); ``edges`` are the interior bin edges and ``proportions`` the share of the
    sample in each of the ``len(edges) + 1`` bins.
    """

    sample: NDArray[np.float64]
    edges: NDArray[np.float64]
    proportions: NDArray[np.float64]
    count: int
    missing: int
    nonfinite: int
    mean: float
    std: float
    min: float
    max: float

    def __post_init__(self) -> None:
        if self.sample.ndim != 1 or self.edges.ndim != 1 or self.proportions.ndim != 1:
            raise ValueError("sample, edges and proportions must be 1-D")
        if self.proportions.shape != (self.edges.shape[0] + 1,):
            raise ValueError(
                f"{self.edges.shape[0]} edges need {self.edges.shape[0] + 1} proportions, "
                f"got {self.proportions.shape[0]}"
            )
        if not _is_sorted(self.sample):
            raise ValueError("the reference sample must be sorted")

    @cached_property
    def integral(self) -> NDArray[np.float64]:
        """The CDF integral of the sample, prepared once for the Wasserstein kernel."""
        return cdf_integral(self.sample)

    @property
    def missing_rate(self) -> float:
        return self.missing / self.count if self.count else 0.0

    @property
    def finite(self) -> int:
        """Finite training values (the ones ``mean`` and ``std`` are of)."""
        return self.count - self.missing - self.nonfinite


@dataclass(frozen=True, eq=False)
class CategoricalReference:
    """Reference of a categorical column.

    ``categories`` are the top-K training categories; ``proportions`` has one entry per
    category plus a last one for :data:`OTHER`. ``vocabulary`` lists every category seen in
    training (the top-K first) up to a cap; ``vocabulary_complete`` is false when the cap
    cut it, and then "unseen" means "not in the stored vocabulary".
    """

    categories: tuple[str, ...]
    proportions: NDArray[np.float64]
    vocabulary: tuple[str, ...]
    vocabulary_complete: bool
    count: int
    missing: int
    _index: dict[str, int] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        k = len(self.categories)
        if self.proportions.shape != (k + 1,):
            raise ValueError(f"{k} categories need {k + 1} proportions (with {OTHER})")
        if tuple(self.vocabulary[:k]) != tuple(self.categories):
            raise ValueError("the vocabulary must start with the top-K categories")
        object.__setattr__(self, "_index", {v: i for i, v in enumerate(self.vocabulary)})

    @property
    def buckets(self) -> tuple[str, ...]:
        return (*self.categories, OTHER)

    @property
    def missing_rate(self) -> float:
        return self.missing / self.count if self.count else 0.0

    def encode(self, values: list[str | None]) -> NDArray[np.int64]:
        """Codes for :func:`driftline.detectors.quality.bucket_counts` (a plain-Python path;
        the engine encodes whole Arrow columns in C++ instead).

        A top-K category is its index; another training category is ``len(categories)``
        (the ``__other__`` bucket); a missing value is −1; a never-seen value is −2.
        """
        k = len(self.categories)
        out = np.empty(len(values), dtype=np.int64)
        for i, v in enumerate(values):
            if v is None:
                out[i] = -1
            else:
                idx = self._index.get(v)
                out[i] = -2 if idx is None else min(idx, k)
        return out
