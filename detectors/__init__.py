"""Drift statistics (Numba kernels over NumPy arrays) and the detectors built on them.

Nothing here does I/O or reads configuration: references come in as frozen values, windows
as arrays, results go out as frozen dataclasses.
"""

from .binning import bin_counts, bin_counts_sorted, proportions
from .build import (
    categorical_reference,
    categorical_reference_from_counts,
    numeric_reference,
    numeric_reference_from_sample,
    quantile_edges,
)
from .chi2 import chi2_test
from .detector import CategoricalDriftDetector, DatasetDriftDetector, NumericDriftDetector
from .jensen_shannon import js_distance
from .ks import ks_2samp
from .linf import linf
from .multiple import benjamini_hochberg
from .policy import DriftPolicy, FeatureDecision, Method, Statistic, WindowDecision
from .psi import PSI_EPSILON, psi
from .reference import OTHER, CategoricalReference, NumericReference
from .statistics import (
    CategoricalStatistics,
    NumericStatistics,
    categorical_statistics,
    numeric_statistics,
    numeric_statistics_between,
    numeric_statistics_sorted,
)
from .wasserstein import wasserstein

__all__ = [
    "OTHER",
    "PSI_EPSILON",
    "CategoricalDriftDetector",
    "CategoricalReference",
    "CategoricalStatistics",
    "DatasetDriftDetector",
    "DriftPolicy",
    "FeatureDecision",
    "Method",
    "NumericDriftDetector",
    "NumericReference",
    "NumericStatistics",
    "Statistic",
    "WindowDecision",
    "benjamini_hochberg",
    "bin_counts",
    "bin_counts_sorted",
    "categorical_reference",
    "categorical_reference_from_counts",
    "categorical_statistics",
    "chi2_test",
    "js_distance",
    "ks_2samp",
    "linf",
    "numeric_reference",
    "numeric_reference_from_sample",
    "numeric_statistics",
    "numeric_statistics_between",
    "numeric_statistics_sorted",
    "proportions",
    "psi",
    "quantile_edges",
    "wasserstein",
]
