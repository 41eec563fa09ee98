"""The status page (``GET /``): one self-contained HTML page, no script, no CDN.

The models, their health and reasons, and the latest statistics of every feature against
the training baseline; the recent alerts and the actions waiting for approval. The page
reloads itself every 5 s.
"""

from __future__ import annotations

import math
import time
from html import escape
from typing import Any

from driftline import __version__
from driftline.service import Service, items

_CSS = """
body{font:14px/1.4 system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:0;
 background:#f6f7f9;color:#1d2330}
header{background:#1d2330;color:#fff;padding:12px 24px;display:flex;gap:24px;align-items:baseline}
header h1{font-size:20px;margin:0}header span{opacity:.8}
main{padding:16px 24px;max-width:1200px}
section.card{background:#fff;border:1px solid #dde1e7;border-radius:6px;margin:0 0 16px;
 padding:12px 16px}
h2{font-size:16px;margin:0 0 8px}h3{font-size:14px;margin:12px 0 4px}
table{border-collapse:collapse;width:100%}
th,td{text-align:left;padding:4px 8px;border-bottom:1px solid #eef0f3}
th{font-weight:600;color:#555}td.num{text-align:right;font-variant-numeric:tabular-nums}
.badge{display:inline-block;padding:2px 10px;border-radius:10px;color:#fff;font-weight:600}
.ok{background:#2e7d32}.warning{background:#ef8f00}.critical{background:#c62828}
.bar{background:#eef0f3;width:120px;height:10px;border-radius:5px;overflow:hidden;display:inline-block}
.bar i{display:block;height:10px}
.drift{color:#c62828;font-weight:600}.quiet{color:#888}
ul{margin:4px 0;padding-left:20px}
"""

_SHOWN = ("psi", "ks_statistic", "linf", "js_distance", "wasserstein", "missing_rate")


def _fmt(value: Any) -> str:
    if isinstance(value, bool) or value is None:
        return "–" if value is None else str(value).lower()
    if isinstance(value, int | float):
        if isinstance(value, float) and not math.isfinite(value):
            return "–"
        return f"{value:.4g}"
    return escape(str(value))


def _badge(health: str) -> str:
    return f'<span class="badge {escape(health)}">{escape(health)}</span>'


def _bar(value: Any, scale: float = 0.5) -> str:
    if not isinstance(value, int | float) or not math.isfinite(value):
        return ""
    share = max(0.0, min(1.0, float(value) / scale))
    colour = "#c62828" if share >= 0.5 else "#ef8f00" if share >= 0.2 else "#2e7d32"
    return f'<span class="bar"><i style="width:{share * 100:.0f}%;background:{colour}"></i></span>'


def _version(service: Service, m: dict[str, Any]) -> str:
    detail = service.version(m["model"], m["version"]) or {}
    window = m.get("last_window") or {}
    share = (m.get("dataset_drift") or {}).get("share")
    reasons = "".join(f"<li>{escape(r)}</li>" for r in m["reasons"][:10])
    rows = []
    for name, stats in (detail.get("features") or {}).items():
        skew = stats.get("skew") or {}
        drifted = bool(skew.get("drift"))
        verdict = "drift" if drifted else "ok"
        cells = "".join(f'<td class="num">{_fmt(skew.get(s))}</td>' for s in _SHOWN)
        rows.append(
            f'<tr><td class="{"drift" if drifted else ""}">{escape(name)}</td>'
            f"<td>{escape(str(skew.get('type', '')))}</td>{cells}"
            f"<td>{_bar(skew.get('psi'))}</td>"
            f'<td class="{"drift" if drifted else "quiet"}">{verdict}</td></tr>'
        )
    head = "".join(f'<th class="num">{s}</th>' for s in _SHOWN)
    table = (
        f"<table><tr><th>feature</th><th>type</th>{head}<th>psi</th><th></th></tr>"
        + "".join(rows)
        + "</table>"
        if rows
        else '<p class="quiet">no window closed yet</p>'
    )
    events = ", ".join(f"{n:,} {k}" for k, n in sorted(m.get("events", {}).items())) or "–"
    return (
        f'<section class="card" id="{escape(m["model"])}-{escape(m["version"])}">'
        f"<h2>{escape(m['model'])} · version {escape(m['version'])} {_badge(m['health'])}</h2>"
        f"<p>last window {_fmt(window.get('index'))} ({_fmt(window.get('count'))} events) · "
        f"drifted share {_fmt(share)} · events {events}</p>"
        + (f"<ul>{reasons}</ul>" if reasons else "")
        + f"<h3>latest window against the training baseline</h3>{table}</section>"
    )


def render_status(service: Service) -> str:
    ready, why = service.readiness()
    models = service.models()
    counters = service.engine.counters
    events = sum(n for _, n in items(counters.events))
    dead = sum(n for _, n in items(counters.invalid))
    summary = (
        "<table><tr><th>model</th><th>version</th><th>health</th>"
        '<th class="num">last window</th><th class="num">drifted share</th></tr>'
        + "".join(
            f'<tr><td><a href="#{escape(m["model"])}-{escape(m["version"])}">'
            f"{escape(m['model'])}</a></td><td>{escape(m['version'])}</td>"
            f"<td>{_badge(m['health'])}</td>"
            f'<td class="num">{_fmt((m.get("last_window") or {}).get("index"))}</td>'
            f'<td class="num">{_fmt((m.get("dataset_drift") or {}).get("share"))}</td></tr>'
            for m in models
        )
        + "</table>"
        if models
        else '<p class="quiet">no model version seen yet: waiting for events</p>'
    )
    alerts = service.alerts(5)
    alert_list = "".join(
        f"<li>{escape(a['changed_at'])} {escape(a['model'])} v{escape(a['version'])}: "
        f"{escape(a['status'])} {escape(a['severity'])} — {escape(a['summary'])}</li>"
        for a in alerts
    )
    pending = service.actions("pending", 10)
    action_list = "".join(
        f"<li><code>{escape(a['id'][:12])}</code> {escape(a['action'])} of "
        f"{escape(a['model'])} v{escape(a['version'])} — {escape(a['reason'])}</li>"
        for a in pending
    )
    state = "ready" if ready else "not ready: " + "; ".join(why)
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        '<meta http-equiv="refresh" content="5">'
        '<meta name="viewport" content="width=device-width,initial-scale=1">'
        f"<title>driftline status</title><style>{_CSS}</style></head><body>"
        f"<header><h1>driftline</h1><span>{escape(state)}</span>"
        f"<span>{events:,} events · {counters.windows:,} windows · {dead:,} invalid events</span>"
        f"<span>v{escape(__version__)} · {time.strftime('%H:%M:%S')}</span></header><main>"
        f'<section class="card"><h2>Model versions</h2>{summary}</section>'
        + "".join(_version(service, m) for m in models)
        + f'<section class="card"><h2>Recent alerts</h2><ul>{alert_list or "<li>none</li>"}</ul>'
        f"<h2>Actions waiting for approval</h2><ul>{action_list or '<li>none</li>'}</ul>"
        "</section></main></body></html>"
    )
