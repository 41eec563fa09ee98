"""Detector classes: a frozen reference, thresholds, and the last window's result.

Each follows one pattern: parameters are validated in ``__init__``; ``update(window)``
compares one whole window with the reference and returns ``self``; results are read from
properties, which never change state. Successive windows are taken as one stream: each is
also tested together with the one before it (the shift test's two-window scale,
:meth:`~driftline.detectors.DriftPolicy.shift`).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Self

import numpy as np
from numpy.typing import NDArray

from .policy import (
    CATEGORICAL_STATISTICS,
    NUMERIC_STATISTICS,
    DriftPolicy,
    FeatureDecision,
    Statistic,
    WindowDecision,
)
from .reference import CategoricalReference, NumericReference
from .statistics import (
    CategoricalStatistics,
    NumericStatistics,
    categorical_statistics,
    numeric_statistics_and_sorted,
)


class _FeatureDetector:
    _stats: NumericStatistics | CategoricalStatistics | None
    _decision: FeatureDecision | None

    def __init__(self, name: str, policy: DriftPolicy) -> None:
        self.name = name
        self.policy = policy
        self._reset()

    def _reset(self) -> None:
        self._stats = None
        self._decision = None

    def _decide(self) -> None:
        assert self._stats is not None
        self._decision = self.policy.decide({self.name: self._stats}).features[self.name]

    @property
    def drift_detected(self) -> bool:
        """Whether the last window drifted (a single feature: no multiple-testing correction)."""
        return self._decision is not None and self._decision.drift

    @property
    def statistic(self) -> float:
        """The value the last decision rested on (a distance, or a p-value for small windows)."""
        return self._decision.value if self._decision is not None else math.nan

    @property
    def decision(self) -> FeatureDecision | None:
        return self._decision


class NumericDriftDetector(_FeatureDetector):
    """Drift of one numeric feature against its training reference.

    >>> import numpy as np
    >>> from driftline.detectors import NumericDriftDetector, numeric_reference
    >>> rng = np.random.default_rng(7)
    >>> det = NumericDriftDetector(numeric_reference(rng.normal(size=20_000)))
    >>> det.update(rng.normal(size=5_000)).drift_detected
    False
    >>> det.update(rng.normal(0.5, 1.0, size=5_000)).drift_detected
    True
    >>> round(det.statistic, 3)
    0.265
    """

    _stats: NumericStatistics | None

    def __init__(
        self,
        reference: NumericReference,
        statistic: Statistic = Statistic.PSI,
        threshold: float = 0.1,
        *,
        policy: DriftPolicy | None = None,
        name: str = "feature",
    ) -> None:
        if statistic not in NUMERIC_STATISTICS:
            raise ValueError(f"statistic must be one of {sorted(NUMERIC_STATISTICS)}")
        self.reference = reference
        super().__init__(
            name, policy or DriftPolicy(numeric_statistic=statistic, threshold=threshold)
        )

    def _reset(self) -> None:
        super()._reset()
        self._before: NDArray[np.float64] | None = None

    def update(self, window: NDArray[np.float64]) -> Self:
        self._stats, self._before = numeric_statistics_and_sorted(
            self.reference, window, before=self._before
        )
        self._decide()
        return self

    @property
    def statistics(self) -> NumericStatistics | None:
        return self._stats


class CategoricalDriftDetector(_FeatureDetector):
    """Drift of one categorical feature against its training category mix.

    >>> from driftline.detectors import CategoricalDriftDetector, categorical_reference
    >>> ref = categorical_reference(["DE"] * 500 + ["FR"] * 300 + ["IT"] * 200)
    >>> det = CategoricalDriftDetector(ref)
    >>> det.update(["DE"] * 990 + ["FR"] * 610 + ["IT"] * 400).drift_detected
    False
    >>> det.update(["DE"] * 700 + ["FR"] * 600 + ["IT"] * 400 + ["ES"] * 300).drift_detected
    True
    >>> round(det.statistics.unseen_rate, 2)
    0.15
    """

    _stats: CategoricalStatistics | None

    def __init__(
        self,
        reference: CategoricalReference,
        statistic: Statistic = Statistic.PSI,
        threshold: float = 0.1,
        *,
        policy: DriftPolicy | None = None,
        name: str = "feature",
    ) -> None:
        if statistic not in CATEGORICAL_STATISTICS:
            raise ValueError(f"statistic must be one of {sorted(CATEGORICAL_STATISTICS)}")
        self.reference = reference
        super().__init__(
            name, policy or DriftPolicy(categorical_statistic=statistic, threshold=threshold)
        )

    def update(self, window: list[str | None] | NDArray[np.int64]) -> Self:
        """A window as values (strings or None) or as codes from ``reference.encode``."""
        codes = window if isinstance(window, np.ndarray) else self.reference.encode(window)
        before = self._stats.bucket_counts if self._stats is not None else None
        self._stats = categorical_statistics(self.reference, codes, before_counts=before)
        self._decide()
        return self

    @property
    def statistics(self) -> CategoricalStatistics | None:
        return self._stats


class DatasetDriftDetector:
    """All features of a window decided together: BH across tested features, and the share
    of drifted features for dataset drift.

    >>> import numpy as np
    >>> from driftline.detectors import DatasetDriftDetector, numeric_reference
    >>> rng = np.random.default_rng(3)
    >>> refs = {f"x{i}": numeric_reference(rng.normal(size=10_000)) for i in range(4)}
    >>> det = DatasetDriftDetector(refs)
    >>> window = {f"x{i}": rng.normal(0.6 if i < 2 else 0.0, 1, size=3_000) for i in range(4)}
    >>> det.update(window).drift_detected, det.share, det.drifted
    (True, 0.5, ['x0', 'x1'])
    """

    def __init__(
        self,
        references: Mapping[str, NumericReference | CategoricalReference],
        policy: DriftPolicy | None = None,
    ) -> None:
        if not references:
            raise ValueError("a dataset detector needs at least one feature reference")
        self.references = dict(references)
        self.policy = policy or DriftPolicy()
        self._reset()

    def _reset(self) -> None:
        self._stats: dict[str, NumericStatistics | CategoricalStatistics | None] = {}
        self._decision: WindowDecision | None = None
        self._sorted_before: dict[str, NDArray[np.float64]] = {}
        """Each numeric feature's window before, its sorted finite values."""
        self._counts_before: dict[str, NDArray[np.int64]] = {}
        """Each categorical feature's window before, its bucket counts."""

    def update(self, window: Mapping[str, object]) -> Self:
        """``window`` maps feature names to values (float arrays, or category lists/codes);
        a feature missing from it has no data in this window (nor a window before for the
        next one's two-window test)."""
        stats: dict[str, NumericStatistics | CategoricalStatistics | None] = {}
        sorted_now: dict[str, NDArray[np.float64]] = {}
        counts_now: dict[str, NDArray[np.int64]] = {}
        for name, ref in self.references.items():
            values = window.get(name)
            if values is None:
                stats[name] = None
            elif isinstance(ref, NumericReference):
                num, sorted_now[name] = numeric_statistics_and_sorted(
                    ref, np.asarray(values, dtype=np.float64), before=self._sorted_before.get(name)
                )
                stats[name] = num
            else:
                codes = values if isinstance(values, np.ndarray) else ref.encode(list(values))  # type: ignore[call-overload]
                before = self._counts_before.get(name)
                cat = categorical_statistics(ref, codes, before_counts=before)
                stats[name] = cat
                counts_now[name] = cat.bucket_counts
        self._sorted_before, self._counts_before = sorted_now, counts_now
        self._stats = stats
        self._decision = self.policy.decide(stats)
        return self

    @property
    def statistics(self) -> Mapping[str, NumericStatistics | CategoricalStatistics | None]:
        return self._stats

    @property
    def decision(self) -> WindowDecision | None:
        return self._decision

    @property
    def drift_detected(self) -> bool:
        return self._decision is not None and self._decision.drift

    @property
    def share(self) -> float:
        return self._decision.share if self._decision is not None else math.nan

    @property
    def drifted(self) -> list[str]:
        return self._decision.drifted if self._decision is not None else []
