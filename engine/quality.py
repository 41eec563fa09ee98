"""Realised model quality: label events joined to predictions, graded per window of pairs.

With ``kafka.topics.labels`` set, the engine keeps every inference event's prediction that
carries an ``id`` in a :class:`~driftline.labels.LabelJoin` (``[labels] ttl`` of event time,
at most ``[labels] max_pending``), and reads label events — ``{"id": "req-81f3", "label":
1}``, JSON or Arrow, field names from ``[events]`` — from the labels topic. Each label
matched to its prediction becomes a pair of the prediction's model version; every
``[labels] window`` pairs close a *performance window*, published on the windows topic as a
record of kind ``performance``::

    {"model": "fraud", "version": "7", "kind": "performance", "source": "labels",
     "window": {"index": 3, "start": ..., "end": ..., "count": 1000},
     "task": "classification",
     "realised": {"accuracy": 0.91, "precision": ..., "recall": ..., "log_loss": ...,
                  "roc_auc": ..., "pairs": 1000},
     "estimated": {"accuracy": 0.93, ...},   # CBPE on the same predictions' scores
     "baseline": {"accuracy": 0.94, ...},    # CBPE on the training scores
     "labels": {"unmatched": 12, "expired": 40, "evicted": 0, "pending": 5300},
     "changes": [...], "reasons": [...], "observed_health": "ok", "health": "ok"}

``start`` and ``end`` are the earliest and latest event times of the graded predictions.
Regression models (``[models.proxy] task = "regression"``) get ``mae`` and ``rmse``.

Accuracy, log loss, MAE and RMSE are tested for a rise in their loss per pair beyond the
sampling error of a window (:class:`~driftline.proxy.LossShift`, a CUSUM of z statistics);
precision, recall and ROC AUC go through the model's change detector, as the proxy metrics
do; all go through the rules (:class:`~driftline.proxy.ProxyTracker`; a rule such as
``metric = "accuracy", min_ratio = 0.9`` compares with the training scores' CBPE
estimate). The verdict of a
model version's latest performance window is folded into the observed health of each of its
inference windows until the next performance window replaces it, so realised quality feeds
the same health, hysteresis, alerts and actions as drift.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pyarrow as pa
from numpy.typing import NDArray

from driftline.baseline import Baseline
from driftline.columns import to_float
from driftline.detectors import NumericReference
from driftline.health import Health
from driftline.labels import LOSS_BOUNDS, LabelJoin, Matched, graded, pair_losses, realised_quality
from driftline.proxy import ProxyBaseline, ProxyConfig, ProxyTracker, estimated_quality

CLASSIFICATION_METRICS = ("accuracy", "precision", "recall", "log_loss", "roc_auc")
REGRESSION_METRICS = ("mae", "rmse")
WORSE = {
    **dict.fromkeys(("accuracy", "precision", "recall", "roc_auc"), "down"),
    **dict.fromkeys(("log_loss", "mae", "rmse"), "up"),
}
"""The direction in which each realised metric gets worse: the only one that raises
health (a model doing better than before is no alarm)."""
METRICS = (*CLASSIFICATION_METRICS, *REGRESSION_METRICS)
KIND = "performance"

Setup = Callable[[str, str], "tuple[Baseline, ProxyConfig] | None"]
"""A model version's baseline and proxy config, or None when it is not monitored here."""


@dataclass(frozen=True)
class LabelsConfig:
    """``[labels]``."""

    ttl: float = 86_400.0
    """Seconds of event time a prediction waits for its label."""
    max_pending: int = 1_000_000
    window: int = 1000
    """Matched pairs per performance window."""


@dataclass
class _Open:
    """The pairs of a model version not yet in a closed performance window."""

    index: int = 0
    ts: list[NDArray[np.float64]] = field(default_factory=list)
    scores: list[NDArray[np.float64]] = field(default_factory=list)
    labels: list[NDArray[np.float64]] = field(default_factory=list)
    count: int = 0

    def add(self, m: Matched) -> None:
        self.ts.append(m.ts)
        self.scores.append(m.scores)
        self.labels.append(m.labels)
        self.count += len(m)

    def take(self, n: int) -> tuple[NDArray[np.float64], ...]:
        """The first ``n`` pairs (removed)."""
        ts, scores, labels = (np.concatenate(x) for x in (self.ts, self.scores, self.labels))
        self.ts, self.scores, self.labels = [ts[n:]], [scores[n:]], [labels[n:]]
        self.count -= n
        return ts[:n], scores[:n], labels[:n]

    def arrays(self) -> tuple[NDArray[np.float64], ...]:
        if not self.ts:
            return (np.empty(0),) * 3
        return tuple(np.concatenate(x) for x in (self.ts, self.scores, self.labels))


def quality_baseline(baseline: Baseline, cfg: ProxyConfig) -> ProxyBaseline:
    """The training values a realised series is compared with: for classification, the
    CBPE estimate of the training scores (what the model expected of itself)."""
    pred = baseline.prediction
    if cfg.task != "classification" or pred is None:
        return ProxyBaseline({})
    ref = pred.reference
    if not isinstance(ref, NumericReference) or not ref.sample.shape[0]:
        return ProxyBaseline({})
    est = estimated_quality(ref.sample, cfg.threshold)  # the sample is kept sorted
    return ProxyBaseline({k: float(v) for k, v in est.items() if v is not None})


def quality_tracker(baseline: Baseline, cfg: ProxyConfig) -> ProxyTracker:
    """The change tests and rules of one model version's realised quality series.
    Accuracy and log loss (classification), MAE and RMSE (regression) are means of a loss
    per pair, and are tested on those losses by a :class:`~driftline.proxy.LossShift`,
    which measures a window against the sampling error of its own pairs. Precision,
    recall and ROC AUC go through the model's change detector relative to the CBPE
    estimate of the training scores."""
    if cfg.task == "classification":
        series: tuple[str, ...] = CLASSIFICATION_METRICS
        bounds: dict[str, float | None] = {m: LOSS_BOUNDS[m] for m in ("accuracy", "log_loss")}
    else:
        series, bounds = REGRESSION_METRICS, dict.fromkeys(REGRESSION_METRICS)
    return ProxyTracker(
        cfg,
        quality_baseline(baseline, cfg),
        series=series,
        worse=WORSE,
        bounds=bounds,
    )


def performance_record(
    key: tuple[str, str],
    index: int,
    tracker: ProxyTracker,
    ts: NDArray[np.float64],
    scores: NDArray[np.float64],
    labels: NDArray[np.float64],
    *,
    source: str,
) -> dict[str, Any]:
    """Grade one window of (score, label) pairs, feed the realised series to ``tracker``
    and return the ``performance`` record (without the label join's ``labels`` counts);
    its ``observed_health`` and ``reasons`` are the verdict to fold into health."""
    cfg = tracker.cfg
    realised = realised_quality(cfg.task, cfg.threshold, scores, labels)  # type: ignore[arg-type]
    losses = pair_losses(cfg.task, cfg.threshold, scores, labels)  # type: ignore[arg-type]
    changes, reasons, severity = tracker.update(realised, losses)
    finite = ts[np.isfinite(ts)]
    record: dict[str, Any] = {
        "model": key[0],
        "version": key[1],
        "kind": KIND,
        "source": source,
        "window": {
            "index": index,
            "start": float(finite.min()) if finite.shape[0] else None,
            "end": float(finite.max()) if finite.shape[0] else None,
            "count": int(labels.shape[0]),
        },
        "task": cfg.task,
        "realised": realised,
        "baseline": dict(tracker.baseline.values),
        "changes": changes,
        "reasons": [f"realised {r}" for r in reasons],
        "observed_health": severity,
    }
    if cfg.task == "classification":
        valid = np.sort(scores[graded(cfg.task, scores, labels)])  # type: ignore[arg-type]
        record["estimated"] = estimated_quality(valid, cfg.threshold)
    return record


class QualityStreams:
    """The label join and every model version's performance windows (see the module
    docstring). ``baselines`` gives a model version's baseline and proxy config."""

    def __init__(self, cfg: LabelsConfig) -> None:
        self.cfg = cfg
        self.join = LabelJoin(cfg.ttl, cfg.max_pending)
        self._open: dict[tuple[str, str], _Open] = {}
        self._trackers: dict[tuple[str, str], ProxyTracker] = {}
        self.orphaned = 0
        """Matched pairs of a model version this engine no longer monitors (not graded)."""
        self.verdicts: dict[tuple[str, str], tuple[int, list[str]]] = {}
        """The latest performance window's (health level, reasons) per model version."""

    def forget(self, model: str, version: str) -> None:
        """The engine stopped monitoring the version (retired): its open performance window
        and series go; its predictions still waiting for labels expire by ``labels.ttl``."""
        key = (model, version)
        self._open.pop(key, None)
        self._trackers.pop(key, None)
        self.verdicts.pop(key, None)

    # -- predictions and labels ----------------------------------------------------------

    def predictions(self, model: str, version: str, table: pa.Table) -> None:
        """Remember an inference batch's predictions (its ``id``, ``ts``, ``prediction``)."""
        scores, _ = to_float(table.column("prediction"))
        ts = np.asarray(table.column("ts").to_numpy(zero_copy_only=False), dtype=np.float64)
        self.join.add(model, version, table.column("id"), ts, scores)

    def labels(
        self,
        ids: list[str],
        values: NDArray[np.float64],
        setup: Setup,
    ) -> list[dict[str, Any]]:
        """Join labels; returns the performance records of the windows that closed.
        ``setup(model, version)`` gives (baseline, proxy config), or None when the model
        version is no longer monitored (its pairs are then dropped)."""
        out = []
        for key, matched in self.join.match(ids, values).items():
            got = setup(*key)
            if got is None:  # its inference stream moved to another engine (rebalance)
                self.orphaned += len(matched)
                continue
            baseline, cfg = got
            w = self._open.setdefault(key, _Open())
            w.add(matched)
            while w.count >= self.cfg.window:
                out.append(self._close(key, w, baseline, cfg, *w.take(self.cfg.window)))
        return out

    def _tracker(self, key: tuple[str, str], baseline: Baseline, cfg: ProxyConfig) -> ProxyTracker:
        t = self._trackers.get(key)
        if t is None:
            t = self._trackers[key] = quality_tracker(baseline, cfg)
        return t

    def _close(
        self,
        key: tuple[str, str],
        w: _Open,
        baseline: Baseline,
        cfg: ProxyConfig,
        ts: NDArray[np.float64],
        scores: NDArray[np.float64],
        labels: NDArray[np.float64],
    ) -> dict[str, Any]:
        tracker = self._tracker(key, baseline, cfg)
        record = performance_record(key, w.index, tracker, ts, scores, labels, source="labels")
        c = self.join.counters
        record["labels"] = {
            "unmatched": c.unmatched,
            "expired": c.expired[key],
            "evicted": c.evicted[key],
            "pending": self.join.pending,
        }
        self.verdicts[key] = (int(Health.parse(record["observed_health"])), record["reasons"])
        w.index += 1
        return record

    def verdict(self, model: str, version: str) -> tuple[Health, list[str]]:
        level, reasons = self.verdicts.get((model, version), (0, []))
        return Health(level), reasons

    # -- checkpoints ---------------------------------------------------------------------

    def snapshot(self) -> tuple[dict[str, Any], dict[str, NDArray[Any]]]:
        meta, arrays = self.join.snapshot()
        out = {f"join.{k}": v for k, v in arrays.items()}
        windows = []
        for i, (key, w) in enumerate(self._open.items()):
            for name, a in zip(("ts", "scores", "labels"), w.arrays(), strict=True):
                out[f"lw{i}.{name}"] = a
            windows.append([*key, w.index])
        trackers = []
        for i, (key, t) in enumerate(self._trackers.items()):
            out[f"lq{i}"] = np.frombuffer(t.dumps(), dtype=np.uint8)
            trackers.append(list(key))
        verdicts = [[*k, level, reasons] for k, (level, reasons) in self.verdicts.items()]
        state = {"join": meta, "windows": windows, "trackers": trackers, "verdicts": verdicts}
        return state, out

    def restore(
        self,
        state: Mapping[str, Any],
        arrays: Mapping[str, NDArray[Any]],
        setup: Setup,
    ) -> None:
        join_arrays = {k[5:]: v for k, v in arrays.items() if k.startswith("join.")}
        self.join = LabelJoin.restore(
            self.cfg.ttl, self.cfg.max_pending, state["join"], join_arrays
        )
        self._open = {}
        for i, (model, version, index) in enumerate(state["windows"]):
            w = _Open(index=int(index))
            m = Matched(*(arrays[f"lw{i}.{n}"] for n in ("ts", "scores", "labels")))
            if len(m):
                w.add(m)
            self._open[(model, version)] = w
        self._trackers = {}
        for i, (model, version) in enumerate(state["trackers"]):
            got = setup(model, version)
            if got is None:
                continue
            tracker = self._tracker((model, version), *got)
            tracker.loads(arrays[f"lq{i}"].tobytes())
        self.verdicts = {
            (m, v): (int(level), list(reasons)) for m, v, level, reasons in state["verdicts"]
        }
