"""Compare windows of one model version with its baseline and shape the output record.

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
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa

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
    numeric_statistics,
)
from driftline.windows import Window

Stats = NumericStatistics | CategoricalStatistics

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
    return DriftPolicy(
        numeric_statistic=Statistic(cal.numeric_statistic),
        categorical_statistic=Statistic(cal.categorical_statistic),
        threshold=policy.threshold,
        min_rows_for_distance=policy.min_rows_for_distance,
        alpha=policy.alpha,
        drift_share=policy.drift_share,
        calibrated=dict(cal.thresholds),
    )


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
    kind: str = "skew"
    threads: int = 0
    """Columns computed in parallel (the kernels release the GIL); 0 means one per CPU."""

    def __post_init__(self) -> None:
        if self.threads < 0:
            raise ValueError(f"threads must be >= 0, got {self.threads}")
        self._encoders = {
            c.name: CategoryEncoder(c.reference)
            for c in self.baseline.monitored
            if isinstance(c.reference, CategoricalReference)
        }
        workers = self.threads or os.cpu_count() or 1
        self._pool = ThreadPoolExecutor(workers, "driftline-column") if workers > 1 else None

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown()

    def absent_columns(self, names: list[str]) -> list[str]:
        have = set(names)
        return [c.name for c in self.baseline.monitored if c.name not in have]

    def statistics(self, column: Column, chunks: list[pa.ChunkedArray | pa.Array]) -> Stats:
        """One column of a window, given part by part, against its reference."""
        ref = column.reference
        if isinstance(ref, NumericReference):
            converted = [to_float(c) for c in chunks]
            values = (
                converted[0][0]
                if len(converted) == 1
                else np.concatenate([v for v, _ in converted])
            )
            return numeric_statistics(ref, values, sum(e for _, e in converted))
        encoder = self._encoders[column.name]
        encoded = [encoder.encode(c) for c in chunks]
        codes = encoded[0][0] if len(encoded) == 1 else np.concatenate([c for c, _ in encoded])
        return categorical_statistics(ref, codes, sum(e for _, e in encoded))

    def record(self, window: Window) -> dict[str, Any]:
        stats: dict[str, Stats | None] = {}
        for col in self.baseline.monitored:
            stats[col.name] = (
                self.statistics(col, window.chunks(col.name)) if window.has(col.name) else None
            )
        pred = self.baseline.prediction
        feature_stats = {c.name: stats[c.name] for c in self.baseline.features}
        decision = self.policy.decide(feature_stats)
        pred_decision = self.policy.decide({pred.name: stats[pred.name]}) if pred else None

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
            "kind": self.kind,
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
                "threshold": self.policy.drift_share,
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
