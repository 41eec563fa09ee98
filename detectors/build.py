"""Build frozen references from in-memory training data.

The streaming baseline builder (``driftline baseline build``) gathers the same summaries
batch by batch and finishes with :func:`numeric_reference_from_sample` and
:func:`categorical_reference_from_counts`, so both paths give identical references.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import numpy as np
from numpy.typing import NDArray

from .binning import bin_counts_sorted, proportions
from .reference import CategoricalReference, NumericReference

DEFAULT_BINS = 10
DEFAULT_SAMPLE = 100_000
DEFAULT_TOP_K = 50
DEFAULT_VOCABULARY_CAP = 10_000


def quantile_edges(sorted_sample: NDArray[np.float64], bins: int) -> NDArray[np.float64]:
    """Interior edges at the 1/B … (B−1)/B quantiles (NumPy's linear method); repeated
    quantiles (ties, constant data) collapse, leaving fewer, non-empty-able bins."""
    if bins < 1:
        raise ValueError(f"bins must be a positive integer, got {bins}")
    if sorted_sample.shape[0] == 0 or bins == 1:
        return np.empty(0, dtype=np.float64)
    return np.unique(np.quantile(sorted_sample, np.arange(1, bins) / bins))


def numeric_reference_from_sample(
    sample: NDArray[np.float64],
    *,
    count: int,
    missing: int,
    nonfinite: int,
    mean: float,
    std: float,
    minimum: float,
    maximum: float,
    bins: int = DEFAULT_BINS,
) -> NumericReference:
    ordered = np.sort(np.asarray(sample, dtype=np.float64))
    edges = quantile_edges(ordered, bins)
    props = proportions(bin_counts_sorted(ordered, edges))
    return NumericReference(
        sample=ordered,
        edges=edges,
        proportions=props,
        count=count,
        missing=missing,
        nonfinite=nonfinite,
        mean=mean,
        std=std,
        min=minimum,
        max=maximum,
    )


def numeric_reference(
    values: Iterable[float] | NDArray[np.float64],
    *,
    bins: int = DEFAULT_BINS,
    sample: int = DEFAULT_SAMPLE,
    seed: int = 0,
) -> NumericReference:
    """Reference of a numeric training column held in memory (NaN counts as missing).

    >>> import numpy as np
    >>> ref = numeric_reference(np.arange(100.0), bins=4)
    >>> ref.edges.tolist(), ref.proportions.tolist()
    ([24.75, 49.5, 74.25], [0.25, 0.25, 0.25, 0.25])
    """
    arr = np.asarray(values, dtype=np.float64)
    finite = arr[np.isfinite(arr)]
    n_nan = int(np.isnan(arr).sum())
    kept = finite
    if finite.shape[0] > sample:
        rng = np.random.default_rng(seed)
        kept = rng.choice(finite, size=sample, replace=False)
    empty = finite.shape[0] == 0
    return numeric_reference_from_sample(
        kept,
        count=arr.shape[0],
        missing=n_nan,
        nonfinite=arr.shape[0] - n_nan - finite.shape[0],
        mean=float(finite.mean()) if not empty else float("nan"),
        std=float(finite.std()) if not empty else float("nan"),
        minimum=float(finite.min()) if not empty else float("nan"),
        maximum=float(finite.max()) if not empty else float("nan"),
        bins=bins,
    )


def categorical_reference_from_counts(
    counts: Mapping[str, int],
    *,
    count: int,
    missing: int,
    top_k: int = DEFAULT_TOP_K,
    vocabulary_cap: int = DEFAULT_VOCABULARY_CAP,
    vocabulary_complete: bool = True,
) -> CategoricalReference:
    """Top-K categories by count (ties broken by name, so the result is deterministic)."""
    if top_k < 1:
        raise ValueError(f"top_k must be a positive integer, got {top_k}")
    ranked = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
    top = ranked[:top_k]
    total = sum(counts.values())
    other = total - sum(c for _, c in top)
    raw = np.array([c for _, c in top] + [other], dtype=np.float64)
    props = raw / total if total else np.zeros(raw.shape[0])
    vocabulary = tuple(name for name, _ in ranked[:vocabulary_cap])
    return CategoricalReference(
        categories=tuple(name for name, _ in top),
        proportions=props,
        vocabulary=vocabulary,
        vocabulary_complete=vocabulary_complete and len(ranked) <= vocabulary_cap,
        count=count,
        missing=missing,
    )


def categorical_reference(
    values: Iterable[str | None], *, top_k: int = DEFAULT_TOP_K
) -> CategoricalReference:
    """Reference of a categorical training column held in memory (None is missing).

    >>> ref = categorical_reference(["a", "b", "a", None, "c", "a"], top_k=2)
    >>> ref.buckets, ref.proportions.tolist()
    (('a', 'b', '__other__'), [0.6, 0.2, 0.2])
    """
    counts: dict[str, int] = {}
    n = 0
    missing = 0
    for v in values:
        n += 1
        if v is None:
            missing += 1
        else:
            counts[v] = counts.get(v, 0) + 1
    return categorical_reference_from_counts(counts, count=n, missing=missing, top_k=top_k)
