"""Compare windows of one model version with a reference and shape the output record.

Two comparisons share one preparation of the window (each numeric column sorted once):

- *skew* (``kind: "skew"``): the window against the training baseline;
- *drift* (``kind: "drift"``): the window against the previous window of the same stream,
  binned on the baseline's edges and categories so the two kinds read alike.

The record is the output contract of DESIGN.md: ``model``, ``version``, ``kind``, ``window``,
``features`` (per column its statistics and ``drift``), ``prediction``, ``quality``,
``dataset_drift`` and ``health``. Health for a single window: ``critical`` when the dataset
drifts, ``warning`` when any feature or the prediction drifts or a baseline column is
absent, ``ok`` otherwise (the engine's hysteresis over windows comes on top of this).
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import pyarrow as pa
from numpy.typing import NDArray

from driftline.baseline import Baseline, Column
from driftline.columns import CategoryEncoder, to_float
from driftline.detectors import (
    CategoricalReference,
    CategoricalStatistics,
    DriftPolicy,
    FeatureDecision,
    Method,
    NumericReference,
    NumericStatistics,
    Statistic,
    categorical_statistics,
    numeric_statistics_sorted,
)
from driftline.detectors._jit import kernel
from driftline.detectors.binning import _bin_counts_sorted
from driftline.detectors.ecdf import cdf_integral
from driftline.detectors.quality import bucket_counts
from driftline.detectors.sorting import finite_sorted
from driftline.windows import Window

Stats = NumericStatistics | CategoricalStatistics
Reference = NumericReference | CategoricalReference


@dataclass(frozen=True, eq=False)
class Prepared:
    """One column of one window, ready to compare with any reference of that column:
    numeric columns as their sorted finite values, categorical ones as bucket codes."""

    numeric: bool
    values: NDArray[np.float64] | NDArray[np.int64]
    count: int
    missing: int
    nonfinite: int
    type_errors: int


@kernel
def _reference_numbers(
    cur: NDArray[np.float64], edges: NDArray[np.float64]
) -> tuple[NDArray[np.float64], NDArray[np.float64], float, float]:
    """Bin proportions, CDF integral, mean and (population) std of sorted finite values."""
    n = cur.shape[0]
    counts = _bin_counts_sorted(cur, edges)
    props = counts / n if n else np.zeros(counts.shape[0])
    if n == 0:
        return props, cdf_integral(cur), math.nan, math.nan
    mean = cur.sum() / n
    var = 0.0
    for x in cur:
        var += (x - mean) * (x - mean)
    return props, cdf_integral(cur), mean, math.sqrt(var / n)


def compare(ref: Reference, p: Prepared) -> Stats:
    if isinstance(ref, NumericReference):
        values = np.asarray(p.values, dtype=np.float64)  # no copy: already float64
        return numeric_statistics_sorted(
            ref, values, p.count, p.missing, p.nonfinite, p.type_errors
        )
    return categorical_statistics(ref, np.asarray(p.values, dtype=np.int64), p.type_errors)


def window_reference(base: Reference, p: Prepared) -> Reference:
    """A reference made of one window's values, on the bins (or categories) of ``base``."""
    if isinstance(base, NumericReference):
        cur = np.asarray(p.values, dtype=np.float64)
        props, integral, mean, std = _reference_numbers(cur, base.edges)
        nan = math.nan
        n = cur.shape[0]
        ref = NumericReference(
            sample=cur,
            edges=base.edges,
            proportions=props,
            count=p.count,
            missing=p.missing,
            nonfinite=p.nonfinite,
            mean=mean,
            std=std,
            min=float(cur[0]) if n else nan,
            max=float(cur[-1]) if n else nan,
        )
        ref.__dict__["integral"] = integral  # the cached property, computed in the same call
        return ref
    k = len(base.categories)
    counts, missing, _ = bucket_counts(p.values.astype(np.int64, copy=False), k + 1)
    total = int(counts.sum())
    return CategoricalReference(
        categories=base.categories,
        proportions=counts / total if total else np.zeros(k + 1),
        vocabulary=base.vocabulary,
        vocabulary_complete=base.vocabulary_complete,
        count=p.count,
        missing=missing,
    )


MISSING_RATE_RISE = 0.05
"""A column whose missing rate exceeds its training rate by more than this (5 points) is a
data-quality problem: an upstream field breaking shows up here before it shows up as drift."""
TYPE_ERROR_RATE = 0.01
"""More than 1 % of a column's values of the wrong type is a data-quality problem."""


def policy_for(baseline: Baseline, base: DriftPolicy | None = None) -> DriftPolicy:
    """The policy to use with ``baseline``: calibrated thresholds when it has them."""
    policy = base or DriftPolicy()
    cal = baseline.calibration
    if cal is None:
        return policy
    return replace(
        policy,
        numeric_statistic=Statistic(cal.numeric_statistic),
        categorical_statistic=Statistic(cal.categorical_statistic),
        calibrated=dict(cal.thresholds),
    )


def resolve_columns(baseline: Baseline, names: list[str]) -> dict[str, str]:
    """Data column → baseline column, for the monitored columns found in the data.

    A column is found under its own name, or — for event logs in driftline's event format,
    flattened — under ``features.<name>``; the prediction column also as ``prediction``.
    """
    have = set(names)
    out: dict[str, str] = {}
    pred = baseline.prediction
    for col in baseline.monitored:
        candidates = [col.name, f"features.{col.name}"]
        if pred is not None and col.name == pred.name:
            candidates.append("prediction")
        found = next((c for c in candidates if c in have), None)
        if found is not None:
            out[found] = col.name
    return out


def _num(x: float) -> float | None:
    return None if math.isnan(x) or math.isinf(x) else x


def _rate(num: int, den: int) -> float | None:
    return num / den if den else None


@dataclass
class Monitor:
    """Windows of one model version against its baseline."""

    baseline: Baseline
    policy: DriftPolicy
    model: str
    version: str
    threads: int = 0
    """Columns computed in parallel (the kernels release the GIL); 0 means one per CPU."""
    drift_policy: DriftPolicy | None = None
    """Policy of the window-to-window comparison (default: ``policy`` without its
    calibrated thresholds, which were bootstrapped for the training baseline)."""
    pool: ThreadPoolExecutor | None = None
    """A pool shared with other monitors (the engine runs many); not shut down by close()."""

    def __post_init__(self) -> None:
        if self.threads < 0:
            raise ValueError(f"threads must be >= 0, got {self.threads}")
        self._encoders = {
            c.name: CategoryEncoder(c.reference)
            for c in self.baseline.monitored
            if isinstance(c.reference, CategoricalReference)
        }
        if self.drift_policy is None:
            self.drift_policy = replace(self.policy, calibrated={})
        self._own_pool = self.pool is None
        self._pool = self.pool
        if self._pool is None:
            workers = self.threads or os.cpu_count() or 1
            self._pool = ThreadPoolExecutor(workers, "driftline-column") if workers > 1 else None

    def close(self) -> None:
        if self._pool is not None and self._own_pool:
            self._pool.shutdown()

    def absent_columns(self, names: list[str]) -> list[str]:
        have = set(names)
        return [c.name for c in self.baseline.monitored if c.name not in have]

    def prepare(self, column: Column, chunks: list[pa.ChunkedArray | pa.Array]) -> Prepared:
        """One column of a window, given part by part, converted for comparison."""
        if isinstance(column.reference, NumericReference):
            converted = [to_float(c) for c in chunks]
            values = (
                converted[0][0]
                if len(converted) == 1
                else np.concatenate([v for v, _ in converted])
            )
            cur, n_nan, n_inf = finite_sorted(np.ascontiguousarray(values, dtype=np.float64))
            errors = sum(e for _, e in converted)
            return Prepared(True, cur, values.shape[0], n_nan, n_inf, errors)
        encoder = self._encoders[column.name]
        encoded = [encoder.encode(c) for c in chunks]
        codes = encoded[0][0] if len(encoded) == 1 else np.concatenate([c for c, _ in encoded])
        missing = int((codes == -1).sum())
        return Prepared(False, codes, codes.shape[0], missing, 0, sum(e for _, e in encoded))

    def record(self, window: Window) -> dict[str, Any]:
        """The skew record of ``window`` (against the training baseline)."""
        [(skew, _)], _ = self.compare_windows([window], None)
        return skew

    def compare_windows(
        self, windows: list[Window], previous: Mapping[str, Prepared | None] | None
    ) -> tuple[list[tuple[dict[str, Any], dict[str, Any] | None]], dict[str, Prepared | None]]:
        """Skew and drift records of consecutive windows (each one's drift against the one
        before; the first against ``previous``), and the last window's prepared columns.

        Computed column by column over all the windows, so that a column's reference
        (100,000 values and their CDF integral) serves the lot while it is in cache: the
        engine hands over every window that closed in one poll."""
        cols = self.baseline.monitored
        Row = tuple[Prepared | None, Stats | None, Stats | None]

        def one(col: Column) -> list[Row]:
            out: list[Row] = []
            before = previous.get(col.name) if previous is not None else None
            prev_ref = window_reference(col.reference, before) if before is not None else None
            for i, w in enumerate(windows):
                p = self.prepare(col, w.chunks(col.name)) if w.has(col.name) else None
                skew = compare(col.reference, p) if p is not None else None
                drift = compare(prev_ref, p) if p is not None and prev_ref is not None else None
                out.append((p, skew, drift))
                if i + 1 < len(windows):
                    prev_ref = window_reference(col.reference, p) if p is not None else None
            return out

        done = list(self._pool.map(one, cols) if self._pool is not None else map(one, cols))
        assert self.drift_policy is not None  # set in __post_init__
        records: list[tuple[dict[str, Any], dict[str, Any] | None]] = []
        for i, w in enumerate(windows):
            skew = {c.name: rows[i][1] for c, rows in zip(cols, done, strict=True)}
            skew_record = self._record(w, skew, self.policy, "skew")
            drift_record = None
            if i > 0 or previous is not None:
                drift = {c.name: rows[i][2] for c, rows in zip(cols, done, strict=True)}
                drift_record = self._record(w, drift, self.drift_policy, "drift")
            records.append((skew_record, drift_record))
        last = {c.name: rows[-1][0] for c, rows in zip(cols, done, strict=True)}
        return records, last

    def _record(
        self, window: Window, stats: dict[str, Stats | None], policy: DriftPolicy, kind: str
    ) -> dict[str, Any]:
        pred = self.baseline.prediction
        feature_stats = {c.name: stats[c.name] for c in self.baseline.features}
        decision = policy.decide(feature_stats)
        pred_decision = policy.decide({pred.name: stats[pred.name]}) if pred else None

        features = {
            c.name: self._feature(c, stats[c.name], decision.features[c.name])
            for c in self.baseline.features
        }
        absent = [name for name, s in stats.items() if s is None]
        problems = self._quality_reasons(stats)
        quality = {
            "type_errors": sum(s.type_errors for s in stats.values() if s is not None),
            "missing_fields": len(absent),
            "late_events": window.late_events,
            "invalid_time": window.invalid_time,
            "invalid_events": window.invalid_events,
            "problems": problems,
        }
        reasons = list(problems)
        reasons += [
            f"{name}: {d.statistic} {d.value:.4g} {'>=' if d.method is Method.DISTANCE else '<'} "
            f"{d.threshold:.4g}"
            + (f" (BH-adjusted p {d.adjusted_pvalue:.3g})" if d.method is Method.TEST else "")
            for name, d in decision.features.items()
            if d.drift
        ]
        pred_drift = bool(pred_decision and pred_decision.features[pred.name].drift)  # type: ignore[union-attr]
        if pred_drift and pred is not None:
            reasons.append(f"prediction {pred.name} drifted")
        if absent:
            reasons.append(f"absent from the data: {', '.join(absent)}")
        if decision.drift:
            health = "critical"
        elif reasons:
            health = "warning"
        else:
            health = "ok"
        out: dict[str, Any] = {
            "model": self.model,
            "version": self.version,
            "kind": kind,
            "window": {
                "index": window.index,
                "start": window.start,
                "end": window.end,
                "count": window.count,
                "partial": window.partial,
            },
            "features": features,
            "prediction": (
                self._feature(pred, stats[pred.name], pred_decision.features[pred.name])  # type: ignore[union-attr]
                if pred is not None
                else None
            ),
            "quality": quality,
            "dataset_drift": {
                "share": decision.share,
                "drift": decision.drift,
                "threshold": policy.drift_share,
            },
            "health": health,
            "reasons": reasons,
        }
        return out

    def _quality_reasons(self, stats: Mapping[str, Stats | None]) -> list[str]:
        out = []
        for col in self.baseline.monitored:
            s = stats[col.name]
            if s is None or s.count == 0:
                continue
            rate = s.missing / s.count
            trained = col.reference.missing_rate
            if rate - trained > MISSING_RATE_RISE:
                out.append(f"{col.name}: missing rate {rate:.1%} (training {trained:.1%})")
            if s.type_errors / s.count > TYPE_ERROR_RATE:
                out.append(f"{col.name}: {s.type_errors} values of the wrong type")
        return out

    def _feature(self, col: Column, s: Stats | None, d: FeatureDecision) -> dict[str, Any]:
        entry: dict[str, Any]
        if s is None:
            return {"type": col.kind, "absent": True, "missing_rate": 1.0, "drift": False}
        if isinstance(s, NumericStatistics):
            entry = {
                "type": "numeric",
                "psi": _num(s.psi),
                "ks_statistic": _num(s.ks_statistic),
                "ks_pvalue": _num(s.ks_pvalue),
                "js_distance": _num(s.js_distance),
                "wasserstein": _num(s.wasserstein),
                "missing_rate": _rate(s.missing, s.count),
                "nonfinite_rate": _rate(s.nonfinite, s.count),
                "out_of_range_rate": _rate(s.out_of_range, s.n),
                "type_errors": s.type_errors,
            }
        else:
            entry = {
                "type": "categorical",
                "psi": _num(s.psi),
                "linf": _num(s.linf),
                "chi2_pvalue": _num(s.chi2_pvalue),
                "js_distance": _num(s.js_distance),
                "unseen_rate": _rate(s.unseen, s.n),
                "missing_rate": _rate(s.missing, s.count),
                "type_errors": s.type_errors,
            }
        entry["drift"] = d.drift
        entry["decision"] = {
            "method": d.method.value,
            "statistic": d.statistic or None,
            "threshold": _num(d.threshold),
        }
        if d.method is Method.TEST:
            entry["decision"]["adjusted_pvalue"] = _num(d.adjusted_pvalue)
        return entry
