"""The deployment artifacts (docker-compose.yml, dashboards/) read for tests.

``queried_metrics()`` is the set of metric names the Grafana dashboards and the Prometheus
alert rules query; a test that scrapes a running engine checks each one is exported.
``ENGINE_METRICS`` is what the engine exports: names, labels and, where the set is closed,
label values.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, get_args

import yaml

from driftline.alerts import CountState
from driftline.metrics import CHECKS, STATISTICS

ROOT = Path(__file__).resolve().parent.parent
COMPOSE = ROOT / "docker-compose.yml"
DOCKERFILE = ROOT / "Dockerfile"
DOCKERIGNORE = ROOT / ".dockerignore"
DASHBOARDS = ROOT / "dashboards"
GRAFANA_DASHBOARDS = DASHBOARDS / "grafana" / "dashboards"
PROMETHEUS_CONFIG = DASHBOARDS / "prometheus" / "prometheus.yml"
RULES = DASHBOARDS / "prometheus" / "rules.yml"
RULES_TEST = DASHBOARDS / "prometheus" / "rules.test.yml"
ALERTMANAGER_CONFIG = DASHBOARDS / "alertmanager" / "alertmanager.yml"
ENGINE_CONFIG = DASHBOARDS / "driftline" / "driftline.toml"
OBSERVABILITY_DOC = ROOT / "docs" / "observability.md"

Labels = dict[str, tuple[str, ...] | None]
"""Label name -> its closed set of values, or None when any value may occur."""

_MV: Labels = {"model": None, "version": None}
_SKEW_DRIFT = ("skew", "drift")
ENGINE_METRICS: dict[str, Labels] = {
    "driftline_events_total": {**_MV, "kind": ("inference", "features")},
    "driftline_invalid_events_total": {"reason": None},
    "driftline_feature_drift": {
        **_MV,
        "feature": None,
        "statistic": STATISTICS,
        "kind": _SKEW_DRIFT,
    },
    "driftline_feature_drifted": {**_MV, "feature": None, "kind": _SKEW_DRIFT},
    "driftline_dataset_drift_share": {**_MV, "kind": _SKEW_DRIFT},
    "driftline_model_health": dict(_MV),
    "driftline_window_close_seconds_bucket": {"le": None},
    "driftline_window_close_seconds_sum": {},
    "driftline_window_close_seconds_count": {},
    "driftline_windows_total": {**_MV, "kind": None},
    "driftline_consumer_lag": {"topic": None, "partition": None},
    "driftline_alerts_total": {
        "model": None,
        "severity": None,
        "state": get_args(CountState),
    },
    "driftline_actions_total": {"action": None, "outcome": None},
    "driftline_proxy_metric": {**_MV, "metric": None},
    "driftline_realised_quality": {**_MV, "metric": None},
    "driftline_estimated_quality": {**_MV, "metric": None},
    "driftline_data_quality": {**_MV, "check": CHECKS},
    "driftline_label_events_total": {},
    "driftline_ready": {},
    "process_resident_memory_bytes": {},
    "process_cpu_seconds_total": {},
}
"""What the engine's /metrics exports (the contract the dashboards and rules rely on)."""

TARGET_LABELS = ("job", "instance")
"""Labels Prometheus adds to every scraped series."""
PROMETHEUS_METRICS: dict[str, Labels] = {
    "up": {},
    "ALERTS": {"alertname": None, "alertstate": ("pending", "firing"), "severity": None},
}
"""Series Prometheus makes itself, which the dashboards may query too."""

GRAFANA_INTERVALS = ("__rate_interval", "__interval", "__range")


@dataclass(frozen=True)
class Query:
    """A PromQL expression and where it comes from (for messages)."""

    where: str
    expr: str


def load_yaml(path: Path) -> Any:
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def compose() -> dict[str, Any]:
    data = load_yaml(COMPOSE)
    assert isinstance(data, dict)
    return data


def dashboards() -> dict[str, dict[str, Any]]:
    """Every Grafana dashboard, by file name."""
    return {
        p.name: json.loads(p.read_text(encoding="utf-8"))
        for p in sorted(GRAFANA_DASHBOARDS.glob("*.json"))
    }


def panels(dashboard: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """Every panel, rows' nested panels included (rows themselves too)."""
    for panel in dashboard.get("panels", []):
        yield panel
        yield from panel.get("panels", [])


def variables(dashboard: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {v["name"]: v for v in dashboard.get("templating", {}).get("list", [])}


def _variable_query(variable: dict[str, Any]) -> str | None:
    """The PromQL selector of a ``label_values(selector, label)`` query variable."""
    query = variable.get("query")
    if isinstance(query, dict):
        query = query.get("query")
    if variable.get("type") != "query" or not isinstance(query, str):
        return None
    m = re.fullmatch(r"\s*label_values\((.+),\s*\w+\s*\)\s*", query)
    if m:
        return m.group(1)
    m = re.fullmatch(r"\s*query_result\((.+)\)\s*", query)
    return m.group(1) if m else None


def dashboard_queries() -> list[Query]:
    """Every PromQL expression of the dashboards: panel targets, annotations and the
    selectors of query variables, Grafana variables still in them."""
    out: list[Query] = []
    for name, board in dashboards().items():
        for panel in panels(board):
            for t in panel.get("targets", []):
                where = f"{name}: panel {panel.get('title')!r} target {t.get('refId')}"
                out.append(Query(where, t.get("expr", "")))
        for a in board.get("annotations", {}).get("list", []):
            if "expr" in a:
                out.append(Query(f"{name}: annotation {a.get('name')!r}", a["expr"]))
        for v in variables(board).values():
            selector = _variable_query(v)
            if selector is not None:
                out.append(Query(f"{name}: variable ${v['name']}", selector))
    return out


def rule_queries() -> list[Query]:
    """Every expression of the Prometheus rules."""
    out = []
    for group in load_yaml(RULES)["groups"]:
        for rule in group["rules"]:
            name = rule.get("alert") or rule.get("record")
            out.append(Query(f"rules.yml: {group['name']}/{name}", rule["expr"]))
    return out


_VAR = re.compile(r"\$\{(\w+)(?::\w+)?\}|\$(\w+)|\[\[(\w+)\]\]")


def used_variables(text: str) -> set[str]:
    return {next(g for g in m.groups() if g) for m in _VAR.finditer(text)}


def substitute(expr: str, values: dict[str, str] | None = None) -> str:
    """``expr`` with Grafana's variables replaced by concrete values: the interval
    variables by ``5m``, others by ``values[name]`` (default ``x``)."""
    values = values or {}

    def value(m: re.Match[str]) -> str:
        name = next(g for g in m.groups() if g)
        if name in GRAFANA_INTERVALS:
            return "5m"
        return values.get(name, "x")

    return _VAR.sub(value, expr)


def variable_values(dashboard: dict[str, Any]) -> dict[str, tuple[str, ...]]:
    """The values of each custom variable (query variables are left out: unknown here)."""
    out = {}
    for name, v in variables(dashboard).items():
        if v.get("type") == "custom":
            out[name] = tuple(x.strip() for x in str(v.get("query", "")).split(",") if x.strip())
    return out


_STRING = re.compile(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'|`[^`]*`')
_NAME = re.compile(r"(?<![\w:$])([a-zA-Z_:][\w:]*)")
_SELECTOR = re.compile(r"(?<![\w:$])([a-zA-Z_:][\w:]*)\s*\{([^}]*)\}")
_MATCHER = re.compile(r'(\w+)\s*(=~|!~|!=|=)\s*"((?:[^"\\]|\\.)*)"')


def metric_names(expr: str) -> set[str]:
    """The driftline_* and process_* metric names an expression queries."""
    bare = _STRING.sub('""', expr)
    return {n for n in _NAME.findall(bare) if n.startswith(("driftline_", "process_"))}


def selectors(expr: str) -> Iterator[tuple[str, list[tuple[str, str, str]]]]:
    """(metric, [(label, operator, value), ...]) of every ``metric{...}`` in ``expr``."""
    for m in _SELECTOR.finditer(expr):
        yield m.group(1), _MATCHER.findall(m.group(2))


def queried_metrics() -> set[str]:
    """The metric names (driftline_* and process_*, histogram series by their _bucket, _sum
    and _count names as queried) used by every dashboard panel, annotation and variable and
    by every alert rule."""
    names: set[str] = set()
    for q in (*dashboard_queries(), *rule_queries()):
        names |= metric_names(q.expr)
    return names
