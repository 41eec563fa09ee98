"""Drift decisions: which statistic decides, at which threshold, and how many features make
dataset drift.

Defaults, and why (see docs/statistics.md for the longer story):

* Windows of at least ``min_rows_for_distance = 1000`` values decide on an effect-size
  distance, **PSI ≥ 0.1** for numeric and categorical features alike. 0.1 is the "moderate
  shift" line of credit-risk practice (0.1 / 0.25, Siddiqi 2006). With no drift, PSI over B
  bins behaves like χ²_{B−1}·(1/n + 1/N) (Yurdakul 2018): at n = 1000 and 10 bins its 99.9th
  percentile is ≈0.03, so a stationary window does not reach 0.1, while a 0.5-std mean shift
  gives PSI ≈ 0.23. A distance does not shrink towards "significant" as windows grow, which
  is the false-alarm trap of p-values on large windows.
* Smaller windows are too noisy for a fixed distance (PSI's null mean grows as (B−1)/n), so,
  as Evidently does for small data, they decide on a test: KS for numeric, χ² for
  categorical, at ``alpha = 0.05`` after Benjamini-Hochberg correction across the features
  of the window.
* Windows of that size also flag a feature whose **shift test** is significant at the strict
  level ``shift_alpha = 1e-5`` with an effect above a floor: for numeric features Welch's
  test for a shift of the mean (:mod:`~driftline.detectors.location`) with
  ``|mean_shift| ≥ min_mean_shift = 0.02`` reference standard deviations, for categorical
  ones the χ² test (with its statistic corrected for the reference's own sampling error,
  ``chi2_shift_pvalue``) with ``linf ≥ min_linf = 0.005``. A slow drift starts far below PSI 0.1
  (a 0.05-std mean shift gives PSI ≈ 0.0025) but is already plain to a test on 10,000 rows
  (z ≈ 4.8); the level is strict so that a monitor of 25 features closing 100 windows a day
  raises a false flag about once in 40 days (25 · 100 · 1e-5), and the floors keep very
  large windows from flagging shifts too small to matter. ``shift_alpha = 0`` turns it off.
  The test is made on two scales, the window alone and the window with the one before it
  (evidence accumulated across windows), at ``shift_alpha / 2`` each when both exist: on a
  drift that ramps up, the two windows together see the larger effect first (see
  :meth:`DriftPolicy.shift` and docs/statistics.md).
* A window shows **dataset drift** when at least ``drift_share = 0.5`` of its features drift
  (Evidently's default share).
* Thresholds calibrated for a baseline (``driftline baseline build --calibrate``) replace
  the fixed distance threshold per feature, at every window size.
"""

from __future__ import annotations

import enum
import math
from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np

from .multiple import benjamini_hochberg
from .statistics import CategoricalStatistics, NumericStatistics

DEFAULT_THRESHOLD = 0.1
DEFAULT_MIN_ROWS_FOR_DISTANCE = 1000
DEFAULT_ALPHA = 0.05
DEFAULT_DRIFT_SHARE = 0.5
DEFAULT_SHIFT_ALPHA = 1e-5
DEFAULT_MIN_MEAN_SHIFT = 0.02
DEFAULT_MIN_LINF = 0.005
POOLED_GATE = 0.05
"""The two-window scale of the shift test flags a window only when the window's own
p-value is below this: the window itself must lean towards the change."""


class Statistic(enum.StrEnum):
    """A distance a drift decision can rest on (the field names of the output contract)."""

    PSI = "psi"
    JS_DISTANCE = "js_distance"
    WASSERSTEIN = "wasserstein"
    KS_STATISTIC = "ks_statistic"
    LINF = "linf"


NUMERIC_STATISTICS = frozenset(
    {Statistic.PSI, Statistic.JS_DISTANCE, Statistic.WASSERSTEIN, Statistic.KS_STATISTIC}
)
CATEGORICAL_STATISTICS = frozenset({Statistic.PSI, Statistic.JS_DISTANCE, Statistic.LINF})


class Method(enum.StrEnum):
    """How a feature's decision was made in a window."""

    DISTANCE = "distance"
    TEST = "test"
    """A p-value: KS or χ² after BH correction (small windows), or the shift test."""
    NONE = "none"
    """No values to decide on (empty window, or the column is absent)."""


FeatureStatistics = NumericStatistics | CategoricalStatistics


@dataclass(frozen=True)
class FeatureDecision:
    drift: bool
    method: Method
    statistic: str
    """Name of the field decided on (a distance, ``ks_pvalue`` or ``chi2_pvalue`` for small
    windows, or a shift test's ``mean_pvalue``, ``chi2_shift_pvalue``,
    ``pooled_mean_pvalue`` or ``pooled_chi2_pvalue``)."""
    value: float
    threshold: float
    """Distance threshold, or alpha for a test (applied to the BH-adjusted p-value of the
    small-window tests, to the p-value itself for the shift test)."""
    adjusted_pvalue: float = math.nan
    """BH-adjusted p-value (small-window tests only; NaN otherwise)."""


@dataclass(frozen=True)
class WindowDecision:
    features: Mapping[str, FeatureDecision]
    share: float
    drift: bool

    @property
    def drifted(self) -> list[str]:
        return [name for name, d in self.features.items() if d.drift]


@dataclass(frozen=True)
class DriftPolicy:
    """Thresholds and rules; validated once, then shared by every window."""

    numeric_statistic: Statistic = Statistic.PSI
    categorical_statistic: Statistic = Statistic.PSI
    threshold: float = DEFAULT_THRESHOLD
    min_rows_for_distance: int = DEFAULT_MIN_ROWS_FOR_DISTANCE
    alpha: float = DEFAULT_ALPHA
    drift_share: float = DEFAULT_DRIFT_SHARE
    shift_alpha: float = DEFAULT_SHIFT_ALPHA
    min_mean_shift: float = DEFAULT_MIN_MEAN_SHIFT
    min_linf: float = DEFAULT_MIN_LINF
    calibrated: Mapping[str, float] = field(default_factory=dict)
    """Per-feature thresholds on the feature's decision statistic, from calibration."""

    def __post_init__(self) -> None:
        if self.numeric_statistic not in NUMERIC_STATISTICS:
            raise ValueError(f"numeric_statistic cannot be {self.numeric_statistic!s}")
        if self.categorical_statistic not in CATEGORICAL_STATISTICS:
            raise ValueError(f"categorical_statistic cannot be {self.categorical_statistic!s}")
        if not (self.threshold > 0 and math.isfinite(self.threshold)):
            raise ValueError(f"threshold must be a positive number, got {self.threshold}")
        if self.min_rows_for_distance < 0:
            raise ValueError(
                f"min_rows_for_distance must be >= 0, got {self.min_rows_for_distance}"
            )
        if not 0 < self.alpha < 1:
            raise ValueError(f"alpha must be in (0, 1), got {self.alpha}")
        if not 0 < self.drift_share <= 1:
            raise ValueError(f"drift_share must be in (0, 1], got {self.drift_share}")
        if not 0 <= self.shift_alpha < 1:
            raise ValueError(f"shift_alpha must be in [0, 1), got {self.shift_alpha}")
        for name in ("min_mean_shift", "min_linf"):
            value = getattr(self, name)
            if not (value >= 0 and math.isfinite(value)):
                raise ValueError(f"{name} must be a number >= 0, got {value}")

    def statistic_for(self, stats: FeatureStatistics) -> Statistic:
        if isinstance(stats, NumericStatistics):
            return self.numeric_statistic
        return self.categorical_statistic

    def threshold_for(self, name: str) -> float:
        return self.calibrated.get(name, self.threshold)

    def shift(self, stats: FeatureStatistics) -> FeatureDecision | None:
        """The shift test's flag on a window decided by distance, or None.

        Two scales: the window alone (``mean_pvalue`` / ``chi2_shift_pvalue``) and, when there was
        a window before it, the two windows taken together (``pooled_mean_pvalue`` /
        ``pooled_chi2_pvalue``), each then at ``shift_alpha / 2`` (Bonferroni), so that a
        stationary feature-window is falsely flagged with probability at most
        ``shift_alpha`` either way. The effect floor applies to the window itself, and the
        two windows flag only when the window alone leans the same way (its own p-value
        below :data:`POOLED_GATE`): without that, a window back to normal right after a
        drifted one would be flagged for its neighbour's drift."""
        if self.shift_alpha <= 0:
            return None
        if isinstance(stats, NumericStatistics):
            names = ("mean_pvalue", "pooled_mean_pvalue")
            ps = (stats.mean_pvalue, stats.pooled_mean_pvalue)
            effect = abs(stats.mean_shift) >= self.min_mean_shift  # NaN compares False
        else:
            names = ("chi2_shift_pvalue", "pooled_chi2_pvalue")
            ps = (stats.chi2_shift_pvalue, stats.pooled_chi2_pvalue)
            effect = stats.linf >= self.min_linf
        if not effect:
            return None
        own, pooled = ps
        if math.isnan(pooled):
            if own < self.shift_alpha:  # NaN compares False
                return FeatureDecision(True, Method.TEST, names[0], float(own), self.shift_alpha)
            return None
        level = self.shift_alpha / 2
        if own < level:
            return FeatureDecision(True, Method.TEST, names[0], float(own), level)
        if pooled < level and own < POOLED_GATE:
            return FeatureDecision(True, Method.TEST, names[1], float(pooled), level)
        return None

    def decide(self, window: Mapping[str, FeatureStatistics | None]) -> WindowDecision:
        """Decide every feature of one window, then the dataset.

        ``None`` stands for a feature with no data in the window (e.g. absent column): it
        does not drift and does not count in the share.
        """
        decisions: dict[str, FeatureDecision] = {}
        tested: list[tuple[str, str, float]] = []
        for name, stats in window.items():
            if stats is None or stats.n == 0:
                decisions[name] = FeatureDecision(False, Method.NONE, "", math.nan, math.nan)
                continue
            if name in self.calibrated or stats.n >= self.min_rows_for_distance:
                stat = self.statistic_for(stats)
                value = float(getattr(stats, stat.value))
                limit = self.threshold_for(name)
                by_distance = FeatureDecision(
                    bool(value >= limit), Method.DISTANCE, stat.value, value, limit
                )
                if not by_distance.drift:
                    by_distance = self.shift(stats) or by_distance
                decisions[name] = by_distance
            elif isinstance(stats, NumericStatistics):
                tested.append((name, "ks_pvalue", stats.ks_pvalue))
            else:
                tested.append((name, "chi2_pvalue", stats.chi2_pvalue))
        if tested:
            adjusted = benjamini_hochberg(np.array([p for _, _, p in tested]))
            for (name, field_name, p), adj in zip(tested, adjusted, strict=True):
                drift = bool(adj < self.alpha)  # NaN compares False
                decisions[name] = FeatureDecision(
                    drift, Method.TEST, field_name, p, self.alpha, float(adj)
                )
        decided = [d for d in decisions.values() if d.method is not Method.NONE]
        share = sum(d.drift for d in decided) / len(decided) if decided else 0.0
        ordered = {name: decisions[name] for name in window}
        return WindowDecision(ordered, share, bool(decided) and share >= self.drift_share)
