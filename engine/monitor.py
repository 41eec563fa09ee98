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
import threading
import weakref
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
    OTHER,
    CategoricalReference,
    CategoricalStatistics,
    DriftPolicy,
    FeatureDecision,
    Method,
    NumericReference,
    NumericStatistics,
    Statistic,
    bin_counts_sorted,
    categorical_statistics,
)
from driftline.detectors.quality import bucket_counts
from driftline.numeric import NumericColumns
from driftline.proxy import ProxyConfig, window_metrics
from driftline.windows import Window

Stats = NumericStatistics | CategoricalStatistics


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


def compare(
    ref: CategoricalReference, p: Prepared, before_counts: NDArray[np.int64] | None = None
) -> CategoricalStatistics:
    """A categorical window against a reference (numeric columns: ``driftline.numeric``);
    with the window before's bucket counts, also the two-window test."""
    codes = np.asarray(p.values, dtype=np.int64)
    return categorical_statistics(ref, codes, p.type_errors, before_counts)


def histogram(ref: NumericReference | CategoricalReference, p: Prepared) -> dict[str, Any]:
    """A window's distribution on its training bins, beside the training's: the PSI bins of
    a numeric column (``edges``: interior edges, a value ``v`` in bin
    ``searchsorted(edges, v, side="right")``) or the top categories and ``OTHER`` of a
    categorical one. Shares of the window's finite (numeric) or present (categorical)
    values, rounded to 6 digits. Published on the skew records of drifted features, for the
    report's reference-vs-window histograms."""
    if isinstance(ref, NumericReference):
        counts = bin_counts_sorted(np.asarray(p.values, dtype=np.float64), ref.edges)
        where: dict[str, Any] = {"edges": [float(e) for e in ref.edges]}
    else:
        k = len(ref.categories)
        counts, _, _ = bucket_counts(p.values.astype(np.int64, copy=False), k + 1)
        where = {"categories": [*ref.categories, OTHER]}
    total = int(counts.sum())
    shares = counts / total if total else np.zeros(len(counts))
    return {
        **where,
        "training": [round(float(x), 6) for x in ref.proportions],
        "window": [round(float(x), 6) for x in shares],
    }


def window_reference(base: CategoricalReference, p: Prepared) -> CategoricalReference:
    """A categorical reference made of one window's values, on the categories of ``base``
    (numeric windows are compared with each other directly: ``numeric_statistics_between``)."""
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


def column_floats(chunks: list[pa.ChunkedArray | pa.Array]) -> tuple[NDArray[np.float64], int]:
    """A numeric column's parts as one contiguous float64 array (NaN where missing), and
    the count of values of the wrong type."""
    converted = [to_float(c) for c in chunks]
    values = converted[0][0] if len(converted) == 1 else np.concatenate([v for v, _ in converted])
    return np.ascontiguousarray(values, dtype=np.float64), sum(e for _, e in converted)


def _num(x: float) -> float | None:
    return None if math.isnan(x) or math.isinf(x) else x


def _rate(num: int, den: int) -> float | None:
    return num / den if den else None


_SHARED: dict[int, tuple[weakref.ref[Baseline], NumericColumns]] = {}
_SHARED_LOCK = threading.RLock()  # the weakref callback may run in a collection under it


def shared_numeric_columns(baseline: Baseline) -> NumericColumns:
    """The numeric references of ``baseline`` laid out for the kernels (samples, CDF
    integrals, edges: tens of MB for a large baseline), built once per baseline object and
    shared, read-only, by every monitor of it: 50 model versions on one baseline file hold
    one copy, not 50. Dropped with the baseline."""
    key = id(baseline)
    with _SHARED_LOCK:
        hit = _SHARED.get(key)
        if hit is not None and hit[0]() is baseline:
            return hit[1]
        numeric = [c for c in baseline.monitored if isinstance(c.reference, NumericReference)]
        columns = NumericColumns(
            [c.name for c in numeric],
            [c.reference for c in numeric if isinstance(c.reference, NumericReference)],
        )

        def forget(_: object, key: int = key) -> None:
            with _SHARED_LOCK:
                _SHARED.pop(key, None)

        _SHARED[key] = (weakref.ref(baseline, forget), columns)
        return columns


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
    proxy: ProxyConfig | None = None
    """Proxy metrics to compute per window (the skew record's ``proxy``); None: none."""
    two_window: bool = True
    """The shift test's two-window scale (:meth:`DriftPolicy.shift`). Off for sliding
    windows: a window and the one before share rows, which would count twice."""

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
        workers = self.threads or os.cpu_count() or 1
        self._pool = self.pool
        if self._pool is None and workers > 1:
            self._pool = ThreadPoolExecutor(workers, "driftline-column")
        self._workers = workers if self._pool is not None else 1
        self._numeric = shared_numeric_columns(self.baseline)
        self._previous: dict[str, Prepared | None] | None = None  # record()'s window before

    def close(self) -> None:
        if self._pool is not None and self._own_pool:
            self._pool.shutdown()

    def absent_columns(self, names: list[str]) -> list[str]:
        have = set(names)
        return [c.name for c in self.baseline.monitored if c.name not in have]

    def prepare(self, column: Column, chunks: list[pa.ChunkedArray | pa.Array]) -> Prepared:
        """One categorical column of a window, given part by part, as bucket codes."""
        encoder = self._encoders[column.name]
        encoded = [encoder.encode(c) for c in chunks]
        codes = encoded[0][0] if len(encoded) == 1 else np.concatenate([c for c, _ in encoded])
        missing = int((codes == -1).sum())
        return Prepared(False, codes, codes.shape[0], missing, 0, sum(e for _, e in encoded))

    def record(self, window: Window) -> dict[str, Any]:
        """The skew record of ``window`` (against the training baseline), the next window of
        one stream: its two-window test takes in the window of the call before (since
        :meth:`reset`)."""
        [(skew, _)], self._previous = self.compare_windows([window], self._previous, drift=False)
        return skew

    def reset(self) -> None:
        """Forget the window :meth:`record` was given last: the next starts a new stream."""
        self._previous = None

    def compare_windows(
        self,
        windows: list[Window],
        previous: Mapping[str, Prepared | None] | None,
        drift: bool = True,
    ) -> tuple[list[tuple[dict[str, Any], dict[str, Any] | None]], dict[str, Prepared | None]]:
        """Skew and drift records of consecutive windows (each one's drift against the one
        before; the first against ``previous``), and the last window's prepared columns.
        ``drift=False`` leaves the drift records out (None) and does not compute them; the
        skew records' two-window test still uses the window before.

        Computed column by column over all the windows, so that a column's reference
        (100,000 values and their CDF integral) serves the lot while it is in cache: the
        engine hands over every window that closed in one poll."""
        cols = self.baseline.monitored
        Row = tuple[Prepared | None, Stats | None, Stats | None]
        by_name: dict[str, list[Row]] = {}
        present = [w.column_names() for w in windows]

        numeric = self._numeric
        values: list[list[NDArray[np.float64] | None]] = []
        errors: list[list[int]] = []
        for name in numeric.names:
            vs: list[NDArray[np.float64] | None] = []
            es: list[int] = []
            for w, have in zip(windows, present, strict=True):
                v, e = column_floats(w.chunks(name)) if name in have else (None, 0)
                vs.append(v)
                es.append(e)
            values.append(vs)
            errors.append(es)
        before = [previous.get(name) if previous is not None else None for name in numeric.names]
        compared = numeric.compare(
            values,
            [None if p is None else np.asarray(p.values, dtype=np.float64) for p in before],
            errors,
            self._pool,
            self._workers,
            drift,
            self.two_window,
        )
        for name, col_rows in zip(numeric.names, compared, strict=True):
            by_name[name] = [
                (None, None, None)
                if c is None
                else (
                    Prepared(
                        True,
                        c.sorted,
                        c.skew.count,
                        c.skew.missing,
                        c.skew.nonfinite,
                        c.skew.type_errors,
                    ),
                    c.skew,
                    c.drift,
                )
                for c in col_rows
            ]

        for col in cols:  # categorical columns
            ref = col.reference
            if not isinstance(ref, CategoricalReference):
                continue
            out: list[Row] = []
            prior = previous.get(col.name) if previous is not None else None
            prev_ref = window_reference(ref, prior) if drift and prior is not None else None
            prev_counts = None  # the window before's bucket counts, for the two-window test
            if prior is not None and self.two_window:
                codes = prior.values.astype(np.int64, copy=False)
                prev_counts = bucket_counts(codes, len(ref.categories) + 1)[0]
            for w, have in zip(windows, present, strict=True):
                p = self.prepare(col, w.chunks(col.name)) if col.name in have else None
                vs_ref = compare(ref, p, prev_counts) if p is not None else None
                vs_prev = None
                if drift and p is not None and prev_ref is not None:
                    vs_prev = compare(prev_ref, p)
                out.append((p, vs_ref, vs_prev))
                prev_ref = window_reference(ref, p) if drift and p is not None else None
                if self.two_window:
                    prev_counts = vs_ref.bucket_counts if vs_ref is not None else None
            by_name[col.name] = out

        done = [by_name[c.name] for c in cols]
        assert self.drift_policy is not None  # set in __post_init__
        records: list[tuple[dict[str, Any], dict[str, Any] | None]] = []
        for i, w in enumerate(windows):
            skew = {c.name: rows[i][1] for c, rows in zip(cols, done, strict=True)}
            skew_record = self._record(w, skew, self.policy, "skew")
            prepared = {c.name: rows[i][0] for c, rows in zip(cols, done, strict=True)}
            self._histograms(skew_record, prepared)
            if self.proxy is not None:
                skew_record["proxy"] = self._proxy(self.proxy, w, prepared, present[i])
            drift_record = None
            if drift and (i > 0 or previous is not None):
                against = {c.name: rows[i][2] for c, rows in zip(cols, done, strict=True)}
                drift_record = self._record(w, against, self.drift_policy, "drift")
            records.append((skew_record, drift_record))
        last = {c.name: rows[-1][0] for c, rows in zip(cols, done, strict=True)}
        return records, last

    def _proxy(
        self,
        cfg: ProxyConfig,
        window: Window,
        prepared: Mapping[str, Prepared | None],
        have: set[str],
    ) -> dict[str, Any]:
        """The window's proxy metrics, from the columns already prepared for the statistics
        (the prediction, and named fields that are numeric baseline columns) or, for other
        named fields, from the window."""

        def numeric(name: str) -> NDArray[np.float64] | None:
            p = prepared.get(name)
            return None if p is None or not p.numeric else np.asarray(p.values, np.float64)

        pred_col = self.baseline.prediction
        pred = prepared.get(pred_col.name) if pred_col is not None else None
        fields: dict[str, NDArray[np.float64] | None] = {}
        for name in cfg.fields:
            values = numeric(name)
            if values is None and name in have and name not in prepared:
                values = column_floats(window.chunks(name))[0]
            fields[name] = values
        span = None
        if window.start is not None and window.end is not None:
            span = window.end - window.start
        return window_metrics(
            cfg,
            numeric(pred_col.name) if pred_col is not None else None,
            pred.count if pred is not None else 0,
            window.count,
            span,
            fields,
        )

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
            + (f" (BH-adjusted p {d.adjusted_pvalue:.3g})" if _adjusted(d) else "")
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

    def _histograms(self, record: dict[str, Any], prepared: Mapping[str, Prepared | None]) -> None:
        """``bins`` (:func:`histogram`) on each drifted feature's entry of a skew record."""
        entries = [(c, record["features"].get(c.name)) for c in self.baseline.features]
        pred = self.baseline.prediction
        if pred is not None:
            entries.append((pred, record["prediction"]))
        for col, entry in entries:
            p = prepared.get(col.name)
            if entry is not None and entry.get("drift") and p is not None:
                entry["bins"] = histogram(col.reference, p)

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
                "mean_shift": _num(s.mean_shift),
                "mean_pvalue": _num(s.mean_pvalue),
                "pooled_mean_pvalue": _num(s.pooled_mean_pvalue),
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
                "chi2_shift_pvalue": _num(s.chi2_shift_pvalue),
                "pooled_chi2_pvalue": _num(s.pooled_chi2_pvalue),
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
        if _adjusted(d):
            entry["decision"]["adjusted_pvalue"] = _num(d.adjusted_pvalue)
        return entry


def _adjusted(d: FeatureDecision) -> bool:
    """A small-window test decided, on a BH-adjusted p-value (the shift test has none)."""
    return d.method is Method.TEST and not math.isnan(d.adjusted_pvalue)
