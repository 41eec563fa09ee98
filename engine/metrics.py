"""``/metrics``: the engine's state as Prometheus metrics, read at scrape time.

One custom collector (:class:`EngineCollector`) reads the engine's counters, the health
trackers and the latest window records (:class:`~driftline.service.Recent`) whenever
Prometheus scrapes; nothing is updated on the hot path. Names and labels are DESIGN.md's:

- ``driftline_events_total{model,version,kind}``, ``driftline_invalid_events_total{reason}``,
  ``driftline_label_events_total``, ``driftline_windows_total{model,version,kind}``
- ``driftline_feature_drift{model,version,feature,statistic,kind}``,
  ``driftline_feature_drifted{model,version,feature,kind}``,
  ``driftline_dataset_drift_share{model,version,kind}`` (``kind``: ``skew`` against the
  training baseline, ``drift`` against the previous window)
- ``driftline_model_health{model,version}`` (0 ok, 1 warning, 2 critical)
- ``driftline_data_quality{model,version,check}``, ``driftline_proxy_metric{model,version,
  metric}``, ``driftline_estimated_quality`` and ``driftline_realised_quality{model,version,
  metric}``
- ``driftline_window_close_seconds`` (histogram), ``driftline_consumer_lag{topic,partition}``
- ``driftline_alerts_total{model,severity,state}``, ``driftline_actions_total{action,outcome}``
- ``driftline_checkpoints_total``, ``driftline_checkpoint_failures_total``,
  ``driftline_offset_commit_failures_total``, ``driftline_offset_resets_total{topic,
  partition}`` (faults serve recovered from)
- ``driftline_ready``, plus the process collector's ``process_*``.

Cardinality is bounded: per-version series for at most ``[metrics] max_versions`` model
versions (the most recently active), feature series for at most ``max_features`` features
of each (``[metrics] features`` first, then the baseline's order); feature names come from
the baseline, never from the events.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any

from prometheus_client import CollectorRegistry, ProcessCollector
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector

from driftline.alerts import AlertCounters
from driftline.config import MetricsConfig
from driftline.executor import ActionCounters
from driftline.health import Health
from driftline.service import Latest, Service, feature_summary, items

STATISTICS = (
    "psi",
    "ks_statistic",
    "ks_pvalue",
    "js_distance",
    "wasserstein",
    "linf",
    "chi2_pvalue",
    "missing_rate",
    "unseen_rate",
)
"""Feature statistics exported as ``driftline_feature_drift{statistic=...}``."""
CHECKS = ("type_errors", "missing_fields", "late_events", "invalid_events")
"""Window data-quality counts exported as ``driftline_data_quality{check=...}``."""
HEALTH_VALUE = {Health.OK: 0, Health.WARNING: 1, Health.CRITICAL: 2}

Lag = Callable[[], Mapping[tuple[str, int], int]]


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    value = float(value)
    return value if math.isfinite(value) else None


def _family(
    kind: type[CounterMetricFamily | GaugeMetricFamily],
    name: str,
    documentation: str,
    labels: list[str],
    samples: Iterable[tuple[tuple[Any, ...], float]],
) -> Metric:
    """A metric family with one sample per (label values, value), in label order."""
    family = kind(name, documentation, labels=labels)
    for key, value in sorted(samples):
        family.add_metric([str(k) for k in key], value)
    return family


def _numbers(
    family: GaugeMetricFamily,
    prefix: list[str],
    values: Mapping[str, Any] | None,
    names: Iterable[str] | None = None,
) -> None:
    """A sample ``prefix + [name]`` for each finite number in ``values`` (of ``names``, when
    given; of every key otherwise)."""
    values = values or {}
    for name in values if names is None else names:
        if (value := _number(values.get(name))) is not None:
            family.add_metric([*prefix, name], value)


class EngineCollector(Collector):
    """Every ``driftline_*`` metric, computed from ``service`` at each scrape."""

    def __init__(
        self,
        service: Service,
        cfg: MetricsConfig,
        *,
        alerts: AlertCounters | None = None,
        actions: ActionCounters | None = None,
        lag: Lag | None = None,
    ) -> None:
        self.service = service
        self.cfg = cfg
        self.alerts = alerts
        self.actions = actions
        self.lag = lag

    def collect(self) -> Iterator[Metric]:
        yield from self._counters()
        health = self.service.health()
        recent = self.service.recent.latest()  # the most recently updated first
        seen = {key for key, _ in recent}
        order = [key for key, _ in recent] + sorted(set(health) - seen)
        exported = order[: self.cfg.max_versions]
        chosen = set(exported)
        kept = [(key, v) for key, v in recent if key in chosen]
        dropped = len(order) - len(exported)
        h = GaugeMetricFamily(
            "driftline_model_health",
            "Health of a model version: 0 ok, 1 warning, 2 critical",
            labels=["model", "version"],
        )
        for key in sorted(exported):
            state = health.get(key, (Health.OK, ()))[0]
            h.add_metric(list(key), HEALTH_VALUE[state])
        yield h
        yield GaugeMetricFamily(
            "driftline_metrics_versions_dropped",
            "Model versions left out of per-version series ([metrics] max_versions)",
            value=dropped,
        )
        yield from self._windows(kept)
        yield from self._faults()
        ready, _ = self.service.readiness()
        yield GaugeMetricFamily(
            "driftline_ready", "1 when the engine is ready (see /readyz)", value=int(ready)
        )

    # -- counters ------------------------------------------------------------------------

    def _counters(self) -> Iterator[Metric]:
        c = self.service.engine.counters
        mv = ["model", "version"]
        yield _family(
            CounterMetricFamily,
            "driftline_events_total",
            "Events processed per model version and kind (inference or features)",
            [*mv, "kind"],
            items(c.events),
        )
        yield _family(
            CounterMetricFamily,
            "driftline_invalid_events_total",
            "Messages (or Arrow rows) rejected or dead-lettered, by reason",
            ["reason"],
            (((reason,), n) for reason, n in items(c.invalid)),
        )
        yield CounterMetricFamily(
            "driftline_label_events_total", "Valid label events read", value=c.labels
        )
        yield CounterMetricFamily(
            "driftline_versions_retired_total",
            "Model versions retired to make room for a new one (models[].max_versions)",
            value=c.retired,
        )
        yield _family(
            CounterMetricFamily,
            "driftline_windows_total",
            "Window records published per model version and kind",
            [*mv, "kind"],
            items(c.windows_by),
        )
        hist = c.close_seconds
        cumulative = itertools.accumulate(list(hist.counts))
        close = HistogramMetricFamily(
            "driftline_window_close_seconds",
            "Seconds to close a window: statistics, health and publishing",
        )
        bounds = [*map(str, hist.bounds), "+Inf"]
        close.add_metric([], list(zip(bounds, cumulative, strict=True)), sum_value=hist.sum)
        yield close
        yield _family(
            GaugeMetricFamily,
            "driftline_consumer_lag",
            "Messages behind the partition's end (high watermark minus position)",
            ["topic", "partition"],
            (self.lag() if self.lag else {}).items(),
        )
        yield _family(
            CounterMetricFamily,
            "driftline_alerts_total",
            "Alerts by model, severity and what happened to them",
            ["model", "severity", "state"],
            (self.alerts.snapshot() if self.alerts else {}).items(),
        )
        yield _family(
            CounterMetricFamily,
            "driftline_actions_total",
            "Actions by kind and outcome",
            ["action", "outcome"],
            (self.actions.snapshot() if self.actions else {}).items(),
        )

    def _faults(self) -> Iterator[Metric]:
        f = self.service.faults
        yield CounterMetricFamily(
            "driftline_checkpoints_total", "Checkpoints written", value=f.checkpoints
        )
        yield CounterMetricFamily(
            "driftline_checkpoint_failures_total",
            "Checkpoints that could not be written (offsets not committed; retried)",
            value=f.checkpoint_failures,
        )
        yield CounterMetricFamily(
            "driftline_offset_commit_failures_total",
            "Offset commits that failed (broker unreachable; retried at the next checkpoint)",
            value=f.commit_failures,
        )
        yield _family(
            CounterMetricFamily,
            "driftline_offset_resets_total",
            "Positions found out of range and reset by kafka.auto_offset_reset (a gap)",
            ["topic", "partition"],
            items(f.offset_resets),
        )

    # -- the latest windows --------------------------------------------------------------

    def _features(self, record: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
        stats = feature_summary(record)
        chosen = [f for f in self.cfg.features if f in stats]
        chosen += [f for f in stats if f not in chosen]
        return [(f, stats[f]) for f in chosen[: self.cfg.max_features]]

    def _windows(self, kept: list[tuple[tuple[str, str], Latest]]) -> Iterator[Metric]:
        drift = GaugeMetricFamily(
            "driftline_feature_drift",
            "A feature's statistic in the latest window: against the training baseline "
            "(kind=skew) or the previous window (kind=drift)",
            labels=["model", "version", "feature", "statistic", "kind"],
        )
        drifted = GaugeMetricFamily(
            "driftline_feature_drifted",
            "1 when the feature drifted in the latest window",
            labels=["model", "version", "feature", "kind"],
        )
        share = GaugeMetricFamily(
            "driftline_dataset_drift_share",
            "Share of the features that drifted in the latest window",
            labels=["model", "version", "kind"],
        )
        quality = GaugeMetricFamily(
            "driftline_data_quality",
            "Data-quality counts of the latest window",
            labels=["model", "version", "check"],
        )
        proxy = GaugeMetricFamily(
            "driftline_proxy_metric",
            "Proxy metrics of the latest window (prediction mean, positive rate, ...)",
            labels=["model", "version", "metric"],
        )
        estimated = GaugeMetricFamily(
            "driftline_estimated_quality",
            "Quality estimated from the scores alone (CBPE), latest window",
            labels=["model", "version", "metric"],
        )
        realised = GaugeMetricFamily(
            "driftline_realised_quality",
            "Quality measured against joined labels, latest performance window",
            labels=["model", "version", "metric"],
        )
        for (model, version), v in kept:
            mv = [model, version]
            for kind in ("skew", "drift"):
                record = v.records.get(kind)
                if record is None:
                    continue
                for feature, stats in self._features(record):
                    for statistic in STATISTICS:
                        if (value := _number(stats.get(statistic))) is not None:
                            drift.add_metric([*mv, feature, statistic, kind], value)
                    if "drift" in stats:
                        drifted.add_metric([*mv, feature, kind], int(bool(stats["drift"])))
                value = _number((record.get("dataset_drift") or {}).get("share"))
                if value is not None:
                    share.add_metric([*mv, kind], value)
            skew = v.records.get("skew")
            if skew is not None:
                _numbers(quality, mv, skew.get("quality"), CHECKS)
                proxies = dict(skew.get("proxy") or {})
                _numbers(estimated, mv, proxies.pop("estimated", None))
                _numbers(proxy, mv, proxies)
            performance = v.records.get("performance")
            if performance is not None:
                _numbers(realised, mv, performance.get("realised"))
        yield from (drift, drifted, share, quality, proxy, estimated, realised)


def make_registry(collector: EngineCollector, *, process: bool = True) -> CollectorRegistry:
    """A fresh registry with ``collector`` (and the process collector's ``process_*``)."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(collector)
    if process:
        ProcessCollector(registry=registry)
    return registry
