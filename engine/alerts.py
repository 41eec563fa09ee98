"""Alerts: one notification per health change of a model version, rendered for receivers.

The engine reports every change of a model version's health as a
:class:`~driftline.health.Change`. :class:`Alerter` (the engine's ``on_change``) turns it
into an :class:`Alert`: ``firing`` when health becomes ``warning`` or ``critical``,
``resolved`` when it returns to ``ok``. It drops an alert that repeats the last one stored
for the same model version (the same severity firing again, or a second ``resolved``: an
engine that restarts from an older checkpoint emits the same change again), and stores the
rest in the durable outbox
(:mod:`driftline.outbox`), one row per receiver, from which
:mod:`driftline.connectors.webhooks` delivers them.

Identity:

- ``fingerprint``: SHA-256 (hex) of ``[alertname, model, version]``. Every alert of one
  model version shares it, so a ``resolved`` carries the fingerprint of the ``firing`` it
  ends; receivers group and deduplicate by it (PagerDuty's ``dedup_key``).
- ``sequence``: 1, 2, 3, … per fingerprint, one per alert sent (kept in the outbox file).
- ``id``: the idempotency key of one alert, SHA-256 (first 32 hex digits) of
  ``[fingerprint, sequence, changed_at]``. Sent as the ``Idempotency-Key`` header, equal on
  every retry of the alert, different for every alert (the timestamp keeps it unique even
  when an outbox file is replaced and the sequence starts again at 1).

``severity`` is the level that fires (``warning`` or ``critical``); a ``resolved`` alert
keeps the severity of the alert it resolves, so that its labels equal the firing alert's
(Alertmanager identifies an alert by its labels). A firing alert of the other severity
(warning → critical, or back) ``replaces`` the one firing before.

Payloads (``render(alert, format, options)``), one per receiver format:

``json``, driftline's own (``schema`` ``"driftline.alert/v1"``)::

    {"schema": "driftline.alert/v1",
     "id": "<idempotency key>", "fingerprint": "<64 hex>", "sequence": 2,
     "alertname": "DriftlineModelHealth", "status": "firing" | "resolved",
     "severity": "warning" | "critical",
     "model": "fraud", "version": "7",
     "health": "critical", "previous_health": "warning",   # ok | warning | critical
     "reasons": ["amount: psi 0.31 > 0.25"],
     "window": 12,                                          # index of the window that
                                                            # completed the change
     "starts_at": "2026-11-22T08:00:00.000Z",               # the incident's first firing
     "changed_at": "2026-11-22T08:05:00.000Z",              # this change
     "ends_at": null | "…Z",                                # set when resolved
     "replaces": null | "warning" | "critical",             # the severity this firing
                                                            # alert ends (escalation)
     "summary": "fraud version 7 is critical: …",
     "labels": {"alertname": …, "model": …, "version": …, "severity": …, <extra labels>},
     "url": null | "<options.external_url with {model} and {version} filled in>"}

``alertmanager``: the body Alertmanager's webhook receiver posts (version ``"4"``), one
alert per body; ``alertmanager_api``: the list body of Alertmanager's ``POST /api/v2/alerts``;
``slack``: an incoming-webhook message (``text`` and ``blocks``); ``pagerduty``: an Events
API v2 event. Each renderer cites the public document of its format.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
import re
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, get_args
from urllib.parse import quote

import orjson

from driftline.exceptions import AlertError, ConfigError
from driftline.health import Change, Health

if TYPE_CHECKING:
    from driftline.outbox import Outbox, Sent

log = logging.getLogger("driftline.alerts")

ALERTNAME = "DriftlineModelHealth"
SCHEMA = "driftline.alert/v1"

Status = Literal["firing", "resolved"]
Severity = Literal["warning", "critical"]
HealthName = Literal["ok", "warning", "critical"]
Format = Literal["json", "alertmanager", "slack", "pagerduty", "alertmanager_api"]
FORMATS: tuple[Format, ...] = get_args(Format)
CountState = Literal["enqueued", "deduplicated", "refused", "delivered", "retried", "dead"]
"""What happened to an alert, the ``state`` label of ``driftline_alerts_total``."""

_HEALTH: dict[Health, HealthName] = {
    Health.OK: "ok",
    Health.WARNING: "warning",
    Health.CRITICAL: "critical",
}
_SEVERITY: dict[Health, Severity] = {Health.WARNING: "warning", Health.CRITICAL: "critical"}
_LABEL_NAME = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*\Z")
_OWN_LABELS = ("alertname", "model", "version", "severity")
_GO_ZERO_TIME = "0001-01-01T00:00:00Z"
"""Alertmanager's ``endsAt`` of an alert that has no end yet (Go's zero ``time.Time``)."""
SLACK_HEADER_LIMIT = 150
"""Characters of a Slack header block's text (Block Kit limit)."""
SLACK_TEXT_LIMIT = 3000
"""Characters of a Slack section block's text (Block Kit limit)."""
PAGERDUTY_SUMMARY_LIMIT = 1024
"""Characters of a PagerDuty event's ``payload.summary`` (Events API v2 limit)."""


def fingerprint(model: str, version: str, alertname: str = ALERTNAME) -> str:
    """SHA-256 hex of ``[alertname, model, version]`` (JSON, so no two triples collide).

    >>> fingerprint("fraud", "7")[:16]
    '558ca0e9194df39b'
    """
    return hashlib.sha256(orjson.dumps([alertname, model, version])).hexdigest()


def rfc3339(t: float) -> str:
    """Seconds since the epoch as RFC 3339 UTC with milliseconds: ``2026-11-22T08:00:00.000Z``."""
    return dt.datetime.fromtimestamp(t, dt.UTC).isoformat(timespec="milliseconds")[:-6] + "Z"


@dataclass(frozen=True)
class Alert:
    """One notification: a model version's health changed. A plain value, stored in the
    outbox as JSON (:meth:`to_record`, :meth:`from_record`)."""

    model: str
    version: str
    status: Status
    severity: Severity
    health: HealthName
    previous: HealthName
    reasons: tuple[str, ...]
    window: int
    sequence: int
    starts_at: float
    changed_at: float
    ends_at: float | None = None
    replaces: Severity | None = None
    """Firing only: the other severity, firing until now, that this alert ends (an
    escalation warning → critical, or back)."""
    alertname: str = ALERTNAME

    @classmethod
    def from_change(
        cls,
        model: str,
        version: str,
        change: Change,
        *,
        sequence: int,
        now: float,
        started: float | None = None,
        opened: Severity | None = None,
        alertname: str = ALERTNAME,
        known: bool = False,
    ) -> Alert:
        """The alert of ``change``.

        ``opened`` is the severity of the alert firing at the receivers (from the last alert
        sent), and ``started`` when that incident first fired (kept as ``starts_at`` by an
        escalation and by the ``resolved``). When ``opened`` is not given it is read from
        ``change.previous``; the two differ only when alerts were lost or refused, and then
        the receivers' view is what the next alert must end. With ``known``, ``opened`` is
        the receivers' view even when None (the last alert resolved): a firing alert then
        replaces nothing.
        """
        if change.current == change.previous:
            raise ValueError(f"a change must change the health, got {change.current} twice")
        if sequence < 1:
            raise ValueError(f"sequence must be a positive integer, got {sequence}")
        firing = change.current is not Health.OK
        if opened is None and change.previous is not Health.OK and not (known and firing):
            opened = _SEVERITY[change.previous]
        severity = _SEVERITY[change.current] if firing else opened
        if severity is None:  # resolved from ok: ruled out by the first check
            raise ValueError("a resolved alert needs the severity it resolves")
        return cls(
            model=model,
            version=version,
            status="firing" if firing else "resolved",
            severity=severity,
            health=_HEALTH[change.current],
            previous=_HEALTH[change.previous],
            reasons=tuple(change.reasons),
            window=change.window,
            sequence=sequence,
            starts_at=now if started is None else started,
            changed_at=now,
            ends_at=None if firing else now,
            replaces=opened if firing and opened != severity else None,
            alertname=alertname,
        )

    @property
    def fingerprint(self) -> str:
        return fingerprint(self.model, self.version, self.alertname)

    @property
    def id(self) -> str:
        """The idempotency key: one per (fingerprint, sequence), the same on every retry."""
        key = orjson.dumps([self.fingerprint, self.sequence, self.changed_at])
        return hashlib.sha256(key).hexdigest()[:32]

    @property
    def summary(self) -> str:
        subject = f"{self.model} version {self.version}"
        if self.status == "resolved":
            return f"{subject} recovered (was {self.severity})"
        return f"{subject} is {self.severity}: {self.description}"

    @property
    def description(self) -> str:
        if self.status == "resolved":
            return "health is back to ok"
        return "; ".join(self.reasons) or f"health is {self.health}"

    def labels(self, extra: Mapping[str, str] | None = None) -> dict[str, str]:
        """Alertmanager-style labels: ``alertname``, ``model``, ``version``, ``severity``,
        then ``extra`` (static labels from the config)."""
        own = {
            "alertname": self.alertname,
            "model": self.model,
            "version": self.version,
            "severity": self.severity,
        }
        return {**own, **(extra or {})}

    def to_record(self) -> bytes:
        return orjson.dumps(self)

    @classmethod
    def from_record(cls, data: bytes | str) -> Alert:
        fields = orjson.loads(data)
        fields["reasons"] = tuple(fields["reasons"])
        return cls(**fields)


@dataclass(frozen=True)
class RenderOptions:
    """What a payload needs besides the alert; the dispatcher makes one per receiver."""

    receiver: str = "driftline"
    """Receiver name (Alertmanager webhook ``receiver``)."""
    external_url: str = ""
    """Link to the model version (a dashboard, driftline's API); ``{model}`` and
    ``{version}`` are replaced by the URL-quoted names. Empty: no links."""
    source: str = "driftline"
    """PagerDuty ``payload.source``: where driftline runs (a host or service name)."""
    labels: Mapping[str, str] = field(default_factory=dict)
    """Extra static labels for the Alertmanager formats and driftline's JSON (team, env)."""
    firing_ttl: float = 86400.0
    """``alertmanager_api``: the ``endsAt`` of a firing alert is this many seconds ahead.
    Alertmanager resolves an alert by itself when it has not heard of it by ``endsAt``;
    driftline sends one alert per change, so this is kept long (default 24 h)."""
    routing_key: str = field(default="", repr=False)
    """PagerDuty integration key (a secret: not shown in repr)."""

    def __post_init__(self) -> None:
        for name, value in self.labels.items():
            if not _LABEL_NAME.match(name) or name.startswith("__"):
                raise ConfigError(
                    f"alerts.labels: {name!r} is not a valid label name "
                    "(letters, digits and _, not starting with a digit or __)"
                )
            if name in _OWN_LABELS:
                raise ConfigError(f"alerts.labels: {name!r} is set by driftline; use another name")
            if not isinstance(value, str) or not value:
                raise ConfigError(f"alerts.labels.{name} must be a non-empty string, got {value!r}")
        if not self.firing_ttl > 0:
            raise ConfigError(f"alerts.firing_ttl must be positive, got {self.firing_ttl}")

    def link(self, alert: Alert) -> str | None:
        if not self.external_url:
            return None
        return self.external_url.replace("{model}", quote(alert.model, safe="")).replace(
            "{version}", quote(alert.version, safe="")
        )


Renderer = Callable[[Alert, RenderOptions], Any]


def render_json(alert: Alert, options: RenderOptions) -> dict[str, Any]:
    """driftline's own payload; the fields are documented in the module docstring."""
    return {
        "schema": SCHEMA,
        "id": alert.id,
        "fingerprint": alert.fingerprint,
        "sequence": alert.sequence,
        "alertname": alert.alertname,
        "status": alert.status,
        "severity": alert.severity,
        "model": alert.model,
        "version": alert.version,
        "health": alert.health,
        "previous_health": alert.previous,
        "reasons": list(alert.reasons),
        "window": alert.window,
        "starts_at": rfc3339(alert.starts_at),
        "changed_at": rfc3339(alert.changed_at),
        "ends_at": None if alert.ends_at is None else rfc3339(alert.ends_at),
        "replaces": alert.replaces,
        "summary": alert.summary,
        "labels": alert.labels(options.labels),
        "url": options.link(alert),
    }


def _annotations(alert: Alert) -> dict[str, str]:
    return {
        "summary": alert.summary,
        "description": alert.description,
        "health": alert.health,
        "previous_health": alert.previous,
        "window": str(alert.window),
        "driftline_alert_id": alert.id,
    }


def _label_set(labels: Mapping[str, str]) -> str:
    """``{a="x", b="y"}`` as Alertmanager prints a label set (values JSON-quoted)."""
    return "{" + ", ".join(f"{k}={orjson.dumps(v).decode()}" for k, v in labels.items()) + "}"


def render_alertmanager(alert: Alert, options: RenderOptions) -> dict[str, Any]:
    """The body Alertmanager's webhook receiver posts, so that tools written for it accept
    driftline's alerts. Format: https://prometheus.io/docs/alerting/latest/configuration/#webhook_config
    (one alert per body; the group is the model version)."""
    labels = alert.labels(options.labels)
    annotations = _annotations(alert)
    group = {"alertname": alert.alertname, "model": alert.model, "version": alert.version}
    return {
        "version": "4",
        "groupKey": f"{{}}:{_label_set(group)}",
        "truncatedAlerts": 0,
        "status": alert.status,
        "receiver": options.receiver,
        "groupLabels": group,
        "commonLabels": labels,
        "commonAnnotations": annotations,
        "externalURL": options.link(alert) or "",
        "alerts": [
            {
                "status": alert.status,
                "labels": labels,
                "annotations": annotations,
                "startsAt": rfc3339(alert.starts_at),
                "endsAt": _GO_ZERO_TIME if alert.ends_at is None else rfc3339(alert.ends_at),
                "generatorURL": options.link(alert) or "",
                "fingerprint": alert.fingerprint,
            }
        ],
    }


def render_alertmanager_api(alert: Alert, options: RenderOptions) -> list[dict[str, Any]]:
    """The list body of Alertmanager's ``POST /api/v2/alerts`` (``postableAlerts``):
    https://prometheus.io/docs/alerting/latest/clients/ and the OpenAPI spec
    https://github.com/prometheus/alertmanager/blob/main/api/v2/openapi.yaml.

    Alertmanager identifies an alert by its labels, severity included. A firing alert gets
    ``endsAt`` ``firing_ttl`` ahead; a resolved one ``endsAt`` now. An escalation (warning
    → critical, or back) also ends the alert of the previous severity, in the same body.
    """
    now = rfc3339(alert.changed_at)
    generator = options.link(alert)

    def one(severity: Severity, ends_at: str) -> dict[str, Any]:
        body: dict[str, Any] = {
            "labels": {**alert.labels(options.labels), "severity": severity},
            "annotations": _annotations(alert),
            "startsAt": rfc3339(alert.starts_at),
            "endsAt": ends_at,
        }
        if generator:
            body["generatorURL"] = generator
        return body

    if alert.status == "resolved":
        return [one(alert.severity, now)]
    out = [one(alert.severity, rfc3339(alert.changed_at + options.firing_ttl))]
    if alert.replaces is not None:
        out.insert(0, one(alert.replaces, now))
    return out


def _slack_escape(text: str) -> str:
    """Slack's three control characters, escaped as its formatting reference asks:
    https://api.slack.com/reference/surfaces/formatting#escaping"""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def render_slack(alert: Alert, options: RenderOptions) -> dict[str, Any]:
    """A Slack incoming-webhook message: ``text`` (the notification's fallback) and Block
    Kit ``blocks``. https://api.slack.com/messaging/webhooks,
    https://api.slack.com/reference/block-kit/blocks"""
    icon = {"warning": ":warning:", "critical": ":rotating_light:"}[alert.severity]
    if alert.status == "resolved":
        icon = ":white_check_mark:"
        title = f"RESOLVED {alert.model} version {alert.version}: health is ok"
    else:
        title = f"{alert.severity.upper()} {alert.model} version {alert.version}"
    reasons = "\n".join(f"• {_slack_escape(r)}" for r in alert.reasons)
    detail = reasons or _slack_escape(alert.description)
    fields = [
        ("Model", alert.model),
        ("Version", alert.version),
        ("Health", f"{alert.previous} → {alert.health}"),
        ("Window", str(alert.window)),
    ]
    context = f"driftline · started {rfc3339(alert.starts_at)}"
    if alert.ends_at is not None:
        context += f" · ended {rfc3339(alert.ends_at)}"
    context += f" · fingerprint {alert.fingerprint[:12]}"
    link = options.link(alert)
    if link:
        context += f" · <{link}|open>"
    return {
        "text": f"{icon} {_slack_escape(alert.summary)}",
        "blocks": [
            {
                "type": "header",
                "text": {
                    "type": "plain_text",
                    "text": _clip(title, SLACK_HEADER_LIMIT),
                    "emoji": True,
                },
            },
            {
                "type": "section",
                "text": {"type": "mrkdwn", "text": _clip(detail, SLACK_TEXT_LIMIT)},
                "fields": [
                    {"type": "mrkdwn", "text": f"*{name}*\n{_slack_escape(value)}"}
                    for name, value in fields
                ],
            },
            {"type": "context", "elements": [{"type": "mrkdwn", "text": context}]},
        ],
    }


def render_pagerduty(alert: Alert, options: RenderOptions) -> dict[str, Any]:
    """A PagerDuty Events API v2 event: ``trigger`` while firing, ``resolve`` at recovery,
    ``dedup_key`` the fingerprint (so the resolve closes the alert the trigger opened).
    https://developer.pagerduty.com/docs/events-api-v2/trigger-events/ — a resolve carries
    no ``payload`` (the API reads only routing_key, dedup_key and event_action from it)."""
    event: dict[str, Any] = {
        "routing_key": options.routing_key,
        "event_action": "trigger" if alert.status == "firing" else "resolve",
        "dedup_key": alert.fingerprint,
    }
    if alert.status == "resolved":
        return event
    event["payload"] = {
        "summary": _clip(alert.summary, PAGERDUTY_SUMMARY_LIMIT),
        "source": options.source,
        "severity": alert.severity,
        "timestamp": rfc3339(alert.changed_at),
        "component": alert.model,
        "group": f"{alert.model}/{alert.version}",
        "class": "model health",
        "custom_details": {
            "model": alert.model,
            "version": alert.version,
            "health": alert.health,
            "previous_health": alert.previous,
            "reasons": list(alert.reasons),
            "window": alert.window,
            "started": rfc3339(alert.starts_at),
            "alert_id": alert.id,
            "labels": dict(options.labels),
        },
    }
    event["client"] = "driftline"
    link = options.link(alert)
    if link:
        event["client_url"] = link
        event["links"] = [{"href": link, "text": f"{alert.model} version {alert.version}"}]
    return event


RENDERERS: Mapping[Format, Renderer] = {
    "json": render_json,
    "alertmanager": render_alertmanager,
    "slack": render_slack,
    "pagerduty": render_pagerduty,
    "alertmanager_api": render_alertmanager_api,
}


def render(alert: Alert, format: Format, options: RenderOptions) -> bytes:
    """The body (JSON bytes) of ``alert`` for a receiver of ``format``."""
    return orjson.dumps(RENDERERS[format](alert, options))


class AlertCounters:
    """Alerts by ``(model, severity, state)``, for ``driftline_alerts_total``. Shared by the
    alerter (enqueued, deduplicated, refused) and the dispatcher (delivered, retried, dead);
    a collector reads :meth:`snapshot` at scrape time."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counts: dict[tuple[str, str, CountState], int] = {}

    def inc(self, model: str, severity: str, state: CountState, n: int = 1) -> None:
        with self._lock:
            key = (model, severity, state)
            self._counts[key] = self._counts.get(key, 0) + n

    def get(self, model: str, severity: str, state: CountState) -> int:
        with self._lock:
            return self._counts.get((model, severity, state), 0)

    def total(self, state: CountState) -> int:
        with self._lock:
            return sum(n for (_, _, s), n in self._counts.items() if s == state)

    def snapshot(self) -> dict[tuple[str, str, CountState], int]:
        with self._lock:
            return dict(self._counts)


def _repeats(last: Sent | None, alert: Alert) -> bool:
    """The receivers already know: the same severity firing, or nothing open to resolve."""
    if last is None or last.status != alert.status:
        return False
    return alert.status == "resolved" or last.severity == alert.severity


class Alerter:
    """The engine's ``on_change``: a health change becomes an alert in the outbox, one row
        per receiver, unless it repeats the last alert stored for that model version (the same
    severity firing again, or a second ``resolved``). An outbox
        that is full or cannot be written is logged and counted (``refused``), never fatal to
        the engine; the alert is then not recorded as sent, so the same change emitted again is
        tried again."""

    def __init__(
        self,
        outbox: Outbox,
        receivers: Sequence[str],
        *,
        counters: AlertCounters | None = None,
        clock: Callable[[], float] = time.time,
        alertname: str = ALERTNAME,
        republish: Callable[[Alert], None] | None = None,
    ) -> None:
        if len(set(receivers)) != len(receivers):
            raise ConfigError(f"alerts.receivers: names must be unique, got {list(receivers)}")
        self.outbox = outbox
        self.receivers = tuple(receivers)
        self.counters = counters if counters is not None else AlertCounters()
        self.clock = clock
        self.alertname = alertname
        self.republish = republish
        """Called with the stored alert when a change repeats it exactly (the same status
        and severity): after a crash the engine replays the windows since its last
        checkpoint and their changes again, and while the receivers have had the alert
        (the outbox is durable), what was published to the alerts topic after that
        checkpoint may have been lost with the process. The topic gets it again, as the
        windows topic gets the replayed windows' records again: at least once."""
        self._lock = threading.Lock()

    def on_change(self, model: str, version: str, change: Change) -> Alert | None:
        """Store the alert of ``change``; return it, or None when dropped or refused."""
        with self._lock:
            fp = fingerprint(model, version, self.alertname)
            try:
                last = self.outbox.last(fp)
            except AlertError as exc:  # the outbox cannot be read: never fatal to the engine
                log.error("model %r version %r: alert not stored: %s", model, version, exc)
                self.counters.inc(model, str(change.current), "refused")
                return None
            opened = last if last is not None and last.status == "firing" else None
            alert = Alert.from_change(
                model,
                version,
                change,
                sequence=1 if last is None else last.sequence + 1,
                now=self.clock(),
                started=None if opened is None else opened.starts_at,
                opened=None if opened is None else opened.severity,
                alertname=self.alertname,
                known=last is not None,
            )
            if _repeats(last, alert):
                log.info(
                    "model %r version %r: %s %s alert already sent, dropped",
                    model,
                    version,
                    alert.severity,
                    alert.status,
                )
                self.counters.inc(model, alert.severity, "deduplicated")
                exact = last is not None and (last.status, last.severity) == (
                    alert.status,
                    alert.severity,
                )
                if self.republish is not None and exact:
                    try:
                        stored = self.outbox.last_alert(fp)
                    except AlertError as exc:
                        log.error(
                            "model %r version %r: not published again: %s", model, version, exc
                        )
                    else:
                        if stored is not None:
                            self.republish(stored)
                return None
            try:
                self.outbox.enqueue(alert, self.receivers)
            except AlertError as exc:
                log.error(
                    "model %r version %r: %s %s alert not stored: %s",
                    model,
                    version,
                    alert.severity,
                    alert.status,
                    exc,
                )
                self.counters.inc(model, alert.severity, "refused")
                return None
            self.counters.inc(model, alert.severity, "enqueued")
            return alert
