"""Alerts: the alert of a health change, its payloads, deduplication; the durable outbox
(backoff, persistence, bound); delivery over real HTTP (receivers in threads that verify
signatures and count deliveries per idempotency key, taken down and brought back on the same
port), and Alertmanager's own API with Debian's Alertmanager binary."""

from __future__ import annotations

import hashlib
import logging
import random
import sqlite3
import time
import urllib.request
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st
from receivers import Answer, HookServer, alertmanager
from test_engine import config

from driftline.alerts import (
    ALERTNAME,
    Alert,
    AlertCounters,
    Alerter,
    RenderOptions,
    fingerprint,
    render,
    render_alertmanager,
    render_alertmanager_api,
    render_json,
    render_pagerduty,
    render_slack,
)
from driftline.connectors.webhooks import Dispatcher, Receiver, sign, verify_signature
from driftline.exceptions import AlertError, ConfigError, OutboxFull
from driftline.health import Change, Health
from driftline.outbox import Outbox, RetryPolicy
from driftline.serve import Alerting

OK, WARN, CRIT = Health.OK, Health.WARNING, Health.CRITICAL
NOW = 1_795_300_000.25
LATER = 1_795_300_300.5
SECRET = b"hmac-secret-0123456789"
FAST = RetryPolicy(base=0.05, cap=0.2, max_age=60.0)
"""Backoff for delivery tests: retries within tenths of a second."""
REASONS = ("amount: psi 0.31 > 0.25", "country: linf 0.2 > 0.1")
OPTIONS = RenderOptions(
    receiver="oncall",
    external_url="https://grafana.example/d/drift?var-model={model}&var-version={version}",
    source="driftline-prod",
    labels={"team": "risk"},
    routing_key="R0UTING-KEY-abcdef",
)
LINK = "https://grafana.example/d/drift?var-model=fraud&var-version=7"


def firing(previous: Health = OK, level: Health = CRIT, sequence: int = 1) -> Alert:
    return Alert.from_change(
        "fraud", "7", Change(previous, level, 12, REASONS), sequence=sequence, now=NOW
    )


def resolved(previous: Health = CRIT, sequence: int = 2) -> Alert:
    return Alert.from_change(
        "fraud", "7", Change(previous, OK, 20, ()), sequence=sequence, now=LATER, started=NOW
    )


def receiver(url: str, name: str = "hook", **kw: object) -> Receiver:
    return Receiver(name=name, url=url, timeout=2.0, **kw)  # type: ignore[arg-type]


@pytest.fixture
def outbox(tmp_path: Path) -> Iterator[Outbox]:
    box = Outbox(tmp_path / "outbox.db", policy=FAST, rng=random.Random(7))
    yield box
    box.close()


def incident(alerter: Alerter, model: str, version: str = "1") -> list[Alert]:
    """ok → warning → critical → ok for one model version: three alerts."""
    out = []
    for window, (a, b) in enumerate([(OK, WARN), (WARN, CRIT), (CRIT, OK)]):
        alert = alerter.on_change(model, version, Change(a, b, window, (f"{model} drifted",)))
        assert alert is not None
        out.append(alert)
    return out


# -- the alert ---------------------------------------------------------------------------


def test_firing_then_resolved_share_the_fingerprint() -> None:
    up, down = firing(), resolved()
    assert (up.status, up.severity, up.health, up.previous) == (
        "firing",
        "critical",
        "critical",
        "ok",
    )
    assert (up.starts_at, up.changed_at, up.ends_at, up.window) == (NOW, NOW, None, 12)
    assert up.reasons == REASONS
    # the resolved alert keeps the severity it resolves, the incident's start, and ends now
    assert (down.status, down.severity, down.health, down.previous) == (
        "resolved",
        "critical",
        "ok",
        "critical",
    )
    assert (down.starts_at, down.changed_at, down.ends_at) == (NOW, LATER, LATER)
    assert up.fingerprint == down.fingerprint
    assert up.id != down.id
    expected_id = hashlib.sha256(orjson.dumps([up.fingerprint, 1, NOW])).hexdigest()[:32]
    assert up.id == expected_id
    assert Alert.from_record(up.to_record()) == up


def test_an_escalation_keeps_the_incident_start_and_replaces_the_other_severity() -> None:
    esc = Alert.from_change("m", "1", Change(WARN, CRIT, 5, ()), sequence=2, now=LATER, started=NOW)
    assert (esc.status, esc.severity, esc.starts_at, esc.replaces) == (
        "firing",
        "critical",
        NOW,
        "warning",
    )
    fresh = Alert.from_change("m", "1", Change(OK, WARN, 5, ()), sequence=3, now=LATER)
    assert (fresh.starts_at, fresh.replaces) == (LATER, None)
    # what the receivers have open (the last alert sent) wins over change.previous, which
    # differs when an alert was refused or the engine lost its health state
    lost = Alert.from_change(
        "m", "1", Change(OK, WARN, 5, ()), sequence=4, now=LATER, started=NOW, opened="critical"
    )
    assert (lost.replaces, lost.starts_at) == ("critical", NOW)
    down = Alert.from_change(
        "m", "1", Change(WARN, OK, 6, ()), sequence=5, now=LATER, opened="critical"
    )
    assert (down.status, down.severity, down.replaces) == ("resolved", "critical", None)
    with pytest.raises(ValueError, match="must change the health"):
        Alert.from_change("m", "1", Change(OK, OK, 5, ()), sequence=1, now=NOW)


def test_fingerprint_is_sha256_of_alertname_model_version() -> None:
    expected = hashlib.sha256(b'["DriftlineModelHealth","fraud","7"]').hexdigest()
    assert fingerprint("fraud", "7") == expected == firing().fingerprint
    assert fingerprint("fraud", "8") != expected
    assert fingerprint("a", "bc") != fingerprint("ab", "c")  # no ambiguous concatenation


@given(st.text(max_size=20), st.text(max_size=20), st.integers(1, 10**6))
def test_fingerprint_is_stable_and_ids_unique(model: str, version: str, seq: int) -> None:
    a = Alert.from_change(model, version, Change(OK, WARN, 1, ()), sequence=seq, now=NOW)
    b = Alert.from_change(model, version, Change(WARN, OK, 2, ()), sequence=seq + 1, now=NOW)
    assert a.fingerprint == b.fingerprint == fingerprint(model, version)
    assert len(a.fingerprint) == 64 and int(a.fingerprint, 16) >= 0
    assert a.id != b.id and len(a.id) == 32


# -- payloads ----------------------------------------------------------------------------


def test_json_payload() -> None:
    up = firing()
    assert render_json(up, OPTIONS) == {
        "schema": "driftline.alert/v1",
        "id": up.id,
        "fingerprint": up.fingerprint,
        "sequence": 1,
        "alertname": "DriftlineModelHealth",
        "status": "firing",
        "severity": "critical",
        "model": "fraud",
        "version": "7",
        "health": "critical",
        "previous_health": "ok",
        "reasons": list(REASONS),
        "window": 12,
        "starts_at": "2026-11-21T22:26:40.250Z",
        "changed_at": "2026-11-21T22:26:40.250Z",
        "ends_at": None,
        "replaces": None,
        "summary": "fraud version 7 is critical: amount: psi 0.31 > 0.25; country: linf 0.2 > 0.1",
        "labels": {
            "alertname": "DriftlineModelHealth",
            "model": "fraud",
            "version": "7",
            "severity": "critical",
            "team": "risk",
        },
        "url": LINK,
    }
    down = render_json(resolved(), RenderOptions())
    assert (down["status"], down["health"], down["previous_health"]) == (
        "resolved",
        "ok",
        "critical",
    )
    assert (down["ends_at"], down["url"]) == ("2026-11-21T22:31:40.500Z", None)
    assert down["summary"] == "fraud version 7 recovered (was critical)"
    assert orjson.loads(render(firing(), "json", OPTIONS)) == render_json(firing(), OPTIONS)


def test_alertmanager_webhook_payload() -> None:
    up = firing()
    annotations = {
        "summary": up.summary,
        "description": "amount: psi 0.31 > 0.25; country: linf 0.2 > 0.1",
        "health": "critical",
        "previous_health": "ok",
        "window": "12",
        "driftline_alert_id": up.id,
    }
    labels = {
        "alertname": "DriftlineModelHealth",
        "model": "fraud",
        "version": "7",
        "severity": "critical",
        "team": "risk",
    }
    assert render_alertmanager(up, OPTIONS) == {
        "version": "4",
        "groupKey": '{}:{alertname="DriftlineModelHealth", model="fraud", version="7"}',
        "truncatedAlerts": 0,
        "status": "firing",
        "receiver": "oncall",
        "groupLabels": {"alertname": "DriftlineModelHealth", "model": "fraud", "version": "7"},
        "commonLabels": labels,
        "commonAnnotations": annotations,
        "externalURL": LINK,
        "alerts": [
            {
                "status": "firing",
                "labels": labels,
                "annotations": annotations,
                "startsAt": "2026-11-21T22:26:40.250Z",
                "endsAt": "0001-01-01T00:00:00Z",
                "generatorURL": LINK,
                "fingerprint": up.fingerprint,
            }
        ],
    }
    down = render_alertmanager(resolved(), RenderOptions())
    assert down["status"] == down["alerts"][0]["status"] == "resolved"
    assert down["alerts"][0]["endsAt"] == "2026-11-21T22:31:40.500Z"
    assert down["alerts"][0]["labels"]["severity"] == "critical"  # equal to the firing's
    assert down["alerts"][0]["fingerprint"] == up.fingerprint
    assert down["commonAnnotations"]["description"] == "health is back to ok"
    assert (down["receiver"], down["externalURL"]) == ("driftline", "")
    odd = Alert.from_change('fr"aud', "7", Change(OK, WARN, 1, ()), sequence=1, now=NOW)
    assert render_alertmanager(odd, OPTIONS)["groupKey"] == (
        '{}:{alertname="DriftlineModelHealth", model="fr\\"aud", version="7"}'
    )


def test_alertmanager_api_payload() -> None:
    up = firing(OK, WARN)
    [one] = render_alertmanager_api(up, OPTIONS)
    assert one == {
        "labels": {
            "alertname": "DriftlineModelHealth",
            "model": "fraud",
            "version": "7",
            "severity": "warning",
            "team": "risk",
        },
        "annotations": {
            "summary": up.summary,
            "description": "amount: psi 0.31 > 0.25; country: linf 0.2 > 0.1",
            "health": "warning",
            "previous_health": "ok",
            "window": "12",
            "driftline_alert_id": up.id,
        },
        "startsAt": "2026-11-21T22:26:40.250Z",
        "endsAt": "2026-11-22T22:26:40.250Z",  # firing_ttl (24 h) ahead
        "generatorURL": LINK,
    }
    # an escalation ends the warning alert (Alertmanager keys alerts by labels) and fires
    # the critical one, in one body
    esc = Alert.from_change(
        "fraud", "7", Change(WARN, CRIT, 13, REASONS), sequence=2, now=LATER, started=NOW
    )
    ended, fired = render_alertmanager_api(esc, RenderOptions(firing_ttl=60))
    assert (ended["labels"]["severity"], ended["endsAt"]) == ("warning", "2026-11-21T22:31:40.500Z")
    assert (fired["labels"]["severity"], fired["endsAt"]) == (
        "critical",
        "2026-11-21T22:32:40.500Z",
    )
    assert ended["startsAt"] == fired["startsAt"] == "2026-11-21T22:26:40.250Z"
    assert "generatorURL" not in fired
    assert render_json(esc, OPTIONS)["replaces"] == "warning"
    [down] = render_alertmanager_api(resolved(CRIT), OPTIONS)
    assert (down["labels"]["severity"], down["endsAt"]) == ("critical", "2026-11-21T22:31:40.500Z")


def test_slack_payload() -> None:
    alert = Alert.from_change(
        "fraud", "7", Change(OK, WARN, 3, ("score < 0.2 & rising",)), sequence=1, now=NOW
    )
    msg = render_slack(alert, OPTIONS)
    assert msg["text"] == ":warning: fraud version 7 is warning: score &lt; 0.2 &amp; rising"
    header, section, context = msg["blocks"]
    assert header == {
        "type": "header",
        "text": {"type": "plain_text", "text": "WARNING fraud version 7", "emoji": True},
    }
    assert section["text"] == {"type": "mrkdwn", "text": "• score &lt; 0.2 &amp; rising"}
    assert [f["text"] for f in section["fields"]] == [
        "*Model*\nfraud",
        "*Version*\n7",
        "*Health*\nok → warning",
        "*Window*\n3",
    ]
    assert context["type"] == "context"
    assert context["elements"][0]["text"] == (
        f"driftline · started 2026-11-21T22:26:40.250Z · fingerprint {alert.fingerprint[:12]}"
        f" · <{LINK}|open>"
    )
    down = render_slack(resolved(), RenderOptions())
    assert down["text"] == ":white_check_mark: fraud version 7 recovered (was critical)"
    assert down["blocks"][0]["text"]["text"] == "RESOLVED fraud version 7: health is ok"
    assert down["blocks"][1]["text"]["text"] == "health is back to ok"
    assert "ended 2026-11-21T22:31:40.500Z" in down["blocks"][2]["elements"][0]["text"]
    long = Alert.from_change(
        "m" * 300, "1", Change(OK, CRIT, 1, ("x" * 5000,)), sequence=1, now=NOW
    )
    blocks = render_slack(long, OPTIONS)["blocks"]
    assert len(blocks[0]["text"]["text"]) == 150 and blocks[0]["text"]["text"].endswith("…")
    assert len(blocks[1]["text"]["text"]) == 3000


def test_pagerduty_payload() -> None:
    up = firing(OK, CRIT)
    assert render_pagerduty(up, OPTIONS) == {
        "routing_key": "R0UTING-KEY-abcdef",
        "event_action": "trigger",
        "dedup_key": up.fingerprint,
        "payload": {
            "summary": up.summary,
            "source": "driftline-prod",
            "severity": "critical",
            "timestamp": "2026-11-21T22:26:40.250Z",
            "component": "fraud",
            "group": "fraud/7",
            "class": "model health",
            "custom_details": {
                "model": "fraud",
                "version": "7",
                "health": "critical",
                "previous_health": "ok",
                "reasons": list(REASONS),
                "window": 12,
                "started": "2026-11-21T22:26:40.250Z",
                "alert_id": up.id,
                "labels": {"team": "risk"},
            },
        },
        "client": "driftline",
        "client_url": LINK,
        "links": [{"href": LINK, "text": "fraud version 7"}],
    }
    assert render_pagerduty(firing(OK, WARN), OPTIONS)["payload"]["severity"] == "warning"
    assert render_pagerduty(resolved(), OPTIONS) == {
        "routing_key": "R0UTING-KEY-abcdef",
        "event_action": "resolve",
        "dedup_key": up.fingerprint,
    }
    assert "routing_key" not in repr(OPTIONS) and "R0UTING" not in repr(OPTIONS)


def test_render_options_check_labels() -> None:
    with pytest.raises(ConfigError, match="'severity' is set by driftline"):
        RenderOptions(labels={"severity": "x"})
    with pytest.raises(ConfigError, match="'1team' is not a valid label name"):
        RenderOptions(labels={"1team": "x"})


# -- deduplication -----------------------------------------------------------------------


def test_alerter_drops_a_repeat_and_survives_restart(tmp_path: Path) -> None:
    path = tmp_path / "outbox.db"
    box = Outbox(path)
    counters = AlertCounters()
    alerter = Alerter(box, ["a", "b"], counters=counters, clock=lambda: NOW)
    first = alerter.on_change("fraud", "7", Change(OK, WARN, 3, ("psi",)))
    assert first is not None and first.sequence == 1
    assert alerter.on_change("fraud", "7", Change(OK, WARN, 3, ("psi",))) is None  # re-emitted
    esc = alerter.on_change("fraud", "7", Change(WARN, CRIT, 5, ("psi",)))
    assert esc is not None and (esc.sequence, esc.starts_at) == (2, NOW)  # a new severity
    assert alerter.on_change("fraud", "8", Change(OK, WARN, 5, ())) is not None  # other version
    assert box.counts() == {"pending": 6, "delivered": 0, "dead": 0}  # 3 alerts × 2 receivers
    box.close()

    # the engine restarts from an older checkpoint and emits the escalation again
    box = Outbox(path)
    again = Alerter(box, ["a", "b"], counters=counters, clock=lambda: LATER)
    assert again.on_change("fraud", "7", Change(WARN, CRIT, 5, ("psi",))) is None
    end = again.on_change("fraud", "7", Change(CRIT, OK, 9, ()))
    assert end is not None
    assert (end.status, end.severity, end.sequence, end.starts_at) == (
        "resolved",
        "critical",
        3,
        NOW,
    )
    assert again.on_change("fraud", "7", Change(CRIT, OK, 9, ())) is None
    assert again.on_change("fraud", "7", Change(WARN, OK, 9, ())) is None  # nothing open
    assert box.counts()["pending"] == 8
    assert counters.get("fraud", "warning", "enqueued") == 2  # fraud/7 and fraud/8
    assert counters.get("fraud", "critical", "enqueued") == 2
    assert counters.get("fraud", "critical", "deduplicated") == 2
    assert counters.get("fraud", "warning", "deduplicated") == 2

    # the engine lost its health state: ok → critical while warning is open at receivers
    up = again.on_change("fraud", "8", Change(OK, CRIT, 10, ()))
    assert up is not None and up.replaces == "warning" and up.starts_at == NOW
    box.close()


def test_an_exact_repeat_is_published_to_the_topic_again(tmp_path: Path) -> None:
    """After a crash the engine replays the windows since its last checkpoint: a change it
    had made again repeats an alert the receivers have had (not queued again), while what
    was published to the alerts topic after that checkpoint may be lost. The stored alert
    is handed to ``republish`` again, the same alert; a change that only resembles the last
    (resolving a warning when a critical was resolved) is not."""
    box = Outbox(tmp_path / "outbox.db")
    topic: list[Alert] = []
    alerter = Alerter(box, ["a"], clock=lambda: NOW, republish=topic.append)
    warn = alerter.on_change("fraud", "7", Change(OK, WARN, 3, ("psi",)))
    other = alerter.on_change("fraud", "8", Change(OK, CRIT, 3, ()))  # stored after it
    assert warn is not None and other is not None and topic == []
    assert alerter.on_change("fraud", "7", Change(OK, WARN, 3, ("psi",))) is None  # replayed
    assert [a.to_record() for a in topic] == [warn.to_record()]
    assert box.counts()["pending"] == 2  # the receivers' rows are not queued again
    end = alerter.on_change("fraud", "7", Change(WARN, OK, 6, ()))
    assert end is not None and end.status == "resolved"
    assert alerter.on_change("fraud", "7", Change(WARN, OK, 6, ())) is None
    assert topic[1:] == [end]
    assert alerter.on_change("fraud", "7", Change(CRIT, OK, 7, ())) is None  # not the same
    assert len(topic) == 2
    box.close()


def test_serves_alerting_publishes_a_replayed_alert_again(data: Path, tmp_path: Path) -> None:
    """``driftline serve``'s wiring: the alerts topic gets a replayed change's alert again,
    the same document (the rendering is the stored alert's)."""

    class Topic:
        def __init__(self) -> None:
            self.sent: list[tuple[str, dict[str, Any]]] = []

        def publish_alert(self, fingerprint: str, alert: dict[str, Any]) -> None:
            self.sent.append((fingerprint, alert))

    sink = Topic()
    alerting = Alerting(config(data, tmp_path), sink)
    try:
        alerting("fraud", "7", Change(OK, CRIT, 4, ("psi",)))
        alerting("fraud", "7", Change(OK, CRIT, 4, ("psi",)))  # the replay after a crash
    finally:
        alerting.close()
    assert len(sink.sent) == 2 and sink.sent[0] == sink.sent[1]
    assert sink.sent[0][1]["health"] == "critical"


def test_a_firing_alert_after_a_resolved_one_replaces_nothing(outbox: Outbox) -> None:
    alerter = Alerter(outbox, ["a"], clock=lambda: NOW)
    assert alerter.on_change("m", "1", Change(OK, WARN, 1, ())) is not None
    assert alerter.on_change("m", "1", Change(WARN, OK, 2, ())) is not None
    # replayed from an older checkpoint: the receivers hold nothing open any more
    again = alerter.on_change("m", "1", Change(WARN, CRIT, 3, ()))
    assert again is not None and (again.status, again.replaces) == ("firing", None)


def test_a_resolved_after_a_fresh_outbox_is_still_sent(outbox: Outbox) -> None:
    alert = Alerter(outbox, ["a"]).on_change("m", "1", Change(WARN, OK, 2, ()))
    assert alert is not None and (alert.status, alert.severity) == ("resolved", "warning")


# -- the outbox --------------------------------------------------------------------------


@given(
    base=st.floats(0.001, 10),
    factor=st.floats(1, 1000),
    attempt=st.integers(1, 10_000),
    seed=st.integers(0, 2**32),
)
def test_backoff_is_full_jitter_within_bounds(
    base: float, factor: float, attempt: int, seed: int
) -> None:
    policy = RetryPolicy(base=base, cap=base * factor)
    ceiling = policy.ceiling(attempt)
    # factor < 2**10, so the cap is reached by the 11th attempt
    assert ceiling == (policy.cap if attempt > 40 else min(policy.cap, base * 2.0 ** (attempt - 1)))
    assert 0.0 <= policy.delay(attempt, random.Random(seed)) <= ceiling
    assert policy.ceiling(attempt + 1) >= ceiling


def test_backoff_jitter_spreads_over_the_whole_interval() -> None:
    policy = RetryPolicy(base=1.0, cap=300.0)
    assert [policy.ceiling(n) for n in (1, 2, 3, 9, 10, 50)] == [1, 2, 4, 256, 300, 300]
    rng = random.Random(11)
    draws = [policy.delay(5, rng) for _ in range(4000)]  # ceiling 16 s
    assert min(draws) < 0.2 and max(draws) > 15.8
    assert 7.5 < sum(draws) / len(draws) < 8.5  # uniform on [0, 16]: mean 8
    with pytest.raises(ConfigError, match=r"retry_cap must be at least alerts\.retry_base"):
        RetryPolicy(base=2.0, cap=1.0)


@given(failures=st.integers(1, 12), seed=st.integers(0, 1000))
def test_failed_rows_are_due_again_after_the_backoff(failures: int, seed: int) -> None:
    policy = RetryPolicy(base=1.0, cap=60.0, max_age=10**6)
    # SQLite in memory: the same SQL, without a synchronous file per example
    box = Outbox(":memory:", policy=policy, rng=random.Random(seed))
    box.enqueue(firing(), ["a"], now=0.0)
    t = 0.0
    for n in range(1, failures + 1):
        [entry] = box.due(t)
        after = box.failed(entry.id, "HTTP 503", t)
        assert after.state == "pending" and after.attempts == n and after.error == "HTTP 503"
        assert t <= after.next_attempt <= t + policy.ceiling(n)
        if after.next_attempt > t:
            assert box.due(t) == []
        t = after.next_attempt
    later = box.failed(box.due(t)[0].id, "HTTP 429", t, not_before=t + 500)
    assert later.next_attempt == t + 500  # Retry-After beyond the backoff
    box.close()


def test_dead_after_max_attempts_or_max_age(outbox: Outbox) -> None:
    box = Outbox(outbox.path.with_name("o2.db"), policy=RetryPolicy(max_attempts=3, max_age=100))
    box.enqueue(firing(), ["a", "b", "c"], now=0.0)
    a, b, c = box.due(0.0)
    assert box.failed(a.id, "HTTP 500", 1.0).state == "pending"
    assert box.failed(a.id, "HTTP 500", 2.0).state == "pending"
    gone = box.failed(a.id, "HTTP 500", 3.0)
    assert (gone.state, gone.attempts) == ("dead", 3)
    assert gone.error == "HTTP 500 (gave up after 3 attempts)"
    old = box.failed(b.id, "connection refused", 100.0)  # a failure past max_age
    assert (
        old.state == "dead" and old.error is not None and "not delivered within 100 s" in old.error
    )
    assert box.expire(99.0) == []
    [expired] = box.expire(100.0)  # never attempted, past max_age
    assert (expired.id, expired.state) == (c.id, "dead")
    assert box.counts() == {"pending": 0, "delivered": 0, "dead": 3}
    assert [e.id for e in box.entries("dead")] == [a.id, b.id, c.id]
    box.close()


def test_outbox_survives_reopening(tmp_path: Path) -> None:
    path = tmp_path / "outbox.db"
    box = Outbox(path)
    box.enqueue(firing(), ["a", "b"])
    box.enqueue(resolved(), ["a", "b"])
    first = box.due(NOW)
    assert [(e.receiver, e.alert.status) for e in first] == [("a", "firing"), ("b", "firing")]
    assert box.delivered(first[0].id, NOW)
    assert not box.delivered(first[0].id, NOW)  # marked once
    assert box._db.execute("PRAGMA journal_mode").fetchone() == ("wal",)
    box.close()

    box = Outbox(path)
    # a's firing is delivered, so a's resolved is due; b's resolved waits for b's firing
    assert [(e.receiver, e.alert) for e in box.due(LATER)] == [("b", firing()), ("a", resolved())]
    assert box.counts() == {"pending": 3, "delivered": 1, "dead": 0}
    last = box.last(firing().fingerprint)
    assert last is not None and (last.status, last.severity, last.sequence) == (
        "resolved",
        "critical",
        2,
    )
    box.close()


def test_a_model_versions_alerts_go_out_in_order(outbox: Outbox) -> None:
    outbox.enqueue(firing(), ["a"], now=0.0)
    outbox.enqueue(resolved(), ["a"], now=0.0)
    [head] = outbox.due(0.0)
    after = outbox.failed(head.id, "HTTP 503", 0.0, not_before=10.0)
    assert outbox.due(5.0) == []  # the resolved waits for its firing
    assert outbox.next_due() == after.next_attempt
    assert outbox.due(10.0)[0].alert.status == "firing"


def test_outbox_is_bounded(tmp_path: Path) -> None:
    box = Outbox(tmp_path / "o.db", max_rows=4)
    box.enqueue(firing(sequence=1), ["a", "b"], now=1.0)
    box.enqueue(resolved(sequence=2), ["a", "b"], now=2.0)
    with pytest.raises(OutboxFull, match="holds 4 undelivered alerts"):
        box.enqueue(firing(sequence=3), ["a", "b"], now=3.0)
    assert box.refused == 1
    last = box.last(firing().fingerprint)
    assert last is not None and last.sequence == 2  # the refused alert was not recorded

    # the Alerter counts a refusal instead of raising into the engine
    counters = AlertCounters()
    assert (
        Alerter(box, ["a", "b"], counters=counters).on_change("x", "1", Change(OK, CRIT, 1, ()))
        is None
    )
    assert counters.get("x", "critical", "refused") == 1 and box.refused == 2

    a1, b1 = box.due(10.0)
    box.delivered(a1.id, 11.0)
    box.dead(b1.id, "HTTP 404", 12.0)
    # two rows are done: room is made from delivered rows first, then from dead ones
    box.enqueue(firing(sequence=3), ["a"], now=13.0)
    assert box.counts() == {"pending": 3, "delivered": 0, "dead": 1}
    box.enqueue(firing(sequence=4), ["b"], now=14.0)
    assert box.counts() == {"pending": 4, "delivered": 0, "dead": 0}
    assert [(e.receiver, e.alert.sequence) for e in box.entries()] == [
        ("a", 2),
        ("b", 2),
        ("a", 3),
        ("b", 4),
    ]
    box.close()


def test_outbox_errors_name_the_file(tmp_path: Path) -> None:
    (tmp_path / "dir.db").mkdir()
    with pytest.raises(AlertError, match=r"dir\.db: cannot open the alert outbox"):
        Outbox(tmp_path / "dir.db")


# -- delivery ----------------------------------------------------------------------------


def test_signature_verification() -> None:
    body = b'{"status":"firing"}'
    header = sign(SECRET, body)
    assert header.startswith("sha256=") and len(header) == 7 + 64
    assert verify_signature(SECRET, body, header)
    assert verify_signature(SECRET.decode(), body, header)
    assert not verify_signature(SECRET, body + b" ", header)  # body changed
    assert not verify_signature(b"other", body, header)  # wrong secret
    assert not verify_signature(SECRET, body, None)
    assert not verify_signature(SECRET, body, "")
    assert not verify_signature(SECRET, body, header.replace("sha256=", "sha1="))
    assert not verify_signature(SECRET, body, header[:-1] + "é")


def test_delivery_is_signed_with_an_idempotency_key(
    outbox: Outbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HOOK_SECRET", SECRET.decode())
    with HookServer(SECRET) as server:
        hook = receiver(server.url, secret_env="HOOK_SECRET", headers={"X-Team": "risk"})
        alert = Alerter(outbox, ["hook"]).on_change("fraud", "7", Change(OK, WARN, 1, ("psi",)))
        assert alert is not None
        with Dispatcher(outbox, [hook], poll_interval=0.05) as dispatcher:
            assert dispatcher.flush(5)
        [req] = server.received()
    assert req.signed and req.answered == 200 and req.path == "/hook"
    assert req.headers["X-Driftline-Signature"] == sign(SECRET, req.body)
    assert req.headers["Idempotency-Key"] == alert.id
    assert abs(int(req.headers["X-Driftline-Timestamp"]) - time.time()) < 60
    assert req.headers["Content-Type"] == "application/json"
    assert req.headers["User-Agent"].startswith("driftline/")
    assert req.headers["X-Team"] == "risk"
    assert req.json() == render_json(alert, RenderOptions(receiver="hook"))
    assert (dispatcher.delivered, dispatcher.retried, dispatcher.dead) == (1, 0, 0)
    assert outbox.counts() == {"pending": 0, "delivered": 1, "dead": 0}


def test_header_values_from_the_environment_are_sent_and_never_logged(
    outbox: Outbox, caplog: pytest.LogCaptureFixture
) -> None:
    """``headers_env``: an Authorization header read from a variable, sent as is, and
    scrubbed (whole, and the token alone) from the outbox's errors and the logs."""
    token = "s3cr3t-bearer-token-77"
    with HookServer() as server:
        hook = Receiver(name="hook", url=server.url, headers_env={"Authorization": "HOOK_AUTH"})
        env = {"HOOK_AUTH": f"Bearer {token}"}
        server.answer(Answer(400, f"bad token {token}".encode()))
        Alerter(outbox, ["hook"]).on_change("fraud", "7", Change(OK, WARN, 1, ("psi",)))
        with caplog.at_level(logging.DEBUG):
            dispatcher = Dispatcher(outbox, [hook], poll_interval=0.05, environ=env)
            assert dispatcher.run_once() == 1
        [req] = server.received()
    assert req.headers["Authorization"] == f"Bearer {token}"
    [dead] = outbox.entries("dead")
    assert dead.error is not None and dead.error.startswith("HTTP 400: bad token ***")
    assert token not in caplog.text + repr(dispatcher._targets) + repr(hook)
    with pytest.raises(ConfigError, match=r"header 'Authorization' is read from \$HOOK_AUTH"):
        Dispatcher(outbox, [hook], environ={})
    with pytest.raises(ConfigError, match="must be a one-line string"):
        Dispatcher(outbox, [hook], environ={"HOOK_AUTH": "a\nb"})


def test_receiver_down_then_up_gets_every_alert_once(outbox: Outbox) -> None:
    down = HookServer(SECRET)  # not up: connections to its port are refused
    with HookServer(SECRET) as up:
        receivers = [
            receiver(down.url, "down", format="alertmanager", secret_env="S"),
            receiver(up.url, "up", format="slack", secret_env="S"),
        ]
        alerter = Alerter(outbox, ["down", "up"])
        env = {"S": SECRET.decode()}
        with Dispatcher(outbox, receivers, poll_interval=0.05, environ=env) as dispatcher:
            alerts = [a for m in ("m0", "m1", "m2", "m3") for a in incident(alerter, m)]
            deadline = time.monotonic() + 10
            while up.delivered().total() < len(alerts) and time.monotonic() < deadline:
                time.sleep(0.02)
            time.sleep(1.0)  # the other receiver stays down for a while
            assert outbox.pending() == len(alerts)
            down.up()
            try:
                assert dispatcher.flush(10)
                received = down.received()
            finally:
                down.down()
    keys = Counter({a.id: 1 for a in alerts})
    assert down.delivered() == keys and up.delivered() == keys  # every alert, exactly once
    assert all(r.signed for r in received + up.received())
    # each model version's alerts arrived in order: warning, critical, resolved
    order: dict[str, list[str]] = {}
    for r in received:
        body = r.json()
        assert isinstance(body, dict)
        alert = body["alerts"][0]
        order.setdefault(alert["labels"]["model"], []).append(
            f"{alert['labels']['severity']} {alert['status']}"
        )
    assert order == {
        m: ["warning firing", "critical firing", "critical resolved"]
        for m in ("m0", "m1", "m2", "m3")
    }
    # while down, one attempt per backoff for the receiver, not one per alert
    assert 1 <= dispatcher.retried <= 60
    assert dispatcher.dead == 0 and dispatcher.delivered == 2 * len(alerts)


def test_a_restart_loses_and_duplicates_nothing(tmp_path: Path) -> None:
    path = tmp_path / "outbox.db"
    server = HookServer(SECRET).up()
    hook = receiver(server.url, secret_env="S")
    env = {"S": SECRET.decode()}

    box = Outbox(path, policy=FAST)
    alerter = Alerter(box, ["hook"])
    dispatcher = Dispatcher(box, [hook], poll_interval=0.05, environ=env)
    dispatcher.start()
    before = incident(alerter, "a") + incident(alerter, "b")
    assert dispatcher.flush(5)
    server.down()
    during = incident(alerter, "c") + incident(alerter, "d")
    deadline = time.monotonic() + 5
    while dispatcher.retried == 0 and time.monotonic() < deadline:
        time.sleep(0.02)
    assert dispatcher.retried > 0
    dispatcher.stop()
    box.close()

    # a new process: new objects on the same file
    box = Outbox(path, policy=FAST)
    assert box.pending() == len(during)
    alerter = Alerter(box, ["hook"])
    assert alerter.on_change("d", "1", Change(CRIT, OK, 2, ())) is None  # re-emitted: dropped
    after = incident(alerter, "e")
    server.up()
    try:
        with Dispatcher(box, [hook], poll_interval=0.05, environ=env) as dispatcher:
            assert dispatcher.flush(10)
    finally:
        server.down()
    assert server.delivered() == Counter({a.id: 1 for a in before + during + after})
    assert box.counts() == {"pending": 0, "delivered": 15, "dead": 0}
    box.close()


def test_a_resend_after_a_crash_carries_the_same_key(outbox: Outbox) -> None:
    with HookServer() as server:
        dispatcher = Dispatcher(outbox, [receiver(server.url)])
        alert = Alerter(outbox, ["hook"]).on_change("m", "1", Change(OK, WARN, 1, ()))
        assert dispatcher.run_once() == 1
        # killed between the receiver's answer and the mark: the row is pending again
        outbox._db.execute("UPDATE deliveries SET state = 'pending'")
        assert dispatcher.run_once() == 1
    assert alert is not None
    first, second = server.received()
    assert first.key == second.key == alert.id and first.body == second.body
    assert server.delivered() == Counter({alert.id: 2})  # twice, one key: a receiver can drop one


def test_a_4xx_is_dead_and_counted(outbox: Outbox, caplog: pytest.LogCaptureFixture) -> None:
    counters = AlertCounters()
    with HookServer() as server:
        server.answer(Answer(400, b'{"error": "bad payload"}'))
        alerter = Alerter(outbox, ["hook"], counters=counters)
        with (
            caplog.at_level(logging.WARNING, "driftline"),
            Dispatcher(outbox, [receiver(server.url)], counters=counters, poll_interval=0.05) as d,
        ):
            alerter.on_change("fraud", "7", Change(OK, CRIT, 1, ()))
            assert d.flush(5)
        assert len(server.received()) == 1  # not retried
    [dead] = outbox.entries("dead")
    assert (dead.error, dead.attempts) == ('HTTP 400: {"error": "bad payload"}', 1)
    assert counters.get("fraud", "critical", "dead") == 1 == d.dead
    assert counters.get("fraud", "critical", "retried") == 0
    assert "given up" in caplog.text and "'hook'" in caplog.text


@pytest.mark.parametrize("status", [401, 404, 410, 302])
def test_other_4xx_and_redirects_are_permanent(outbox: Outbox, status: int) -> None:
    with HookServer() as server:
        server.answer(Answer(status, b"", (("Location", "http://127.0.0.1:1/elsewhere"),)))
        Alerter(outbox, ["hook"]).on_change("m", "1", Change(OK, WARN, 1, ()))
        with Dispatcher(outbox, [receiver(server.url)], poll_interval=0.05) as d:
            assert d.flush(5)
        assert len(server.received()) == 1
    assert outbox.entries("dead")[0].error == f"HTTP {status}"


def test_408_429_5xx_and_timeouts_are_retried(outbox: Outbox) -> None:
    with HookServer() as server:
        server.answer(
            Answer(503),
            Answer(408),
            Answer(200, delay=3.0),  # answered after the client's timeout
            Answer(429, headers=(("Retry-After", "1"),)),
            Answer(500),
        )
        alert = Alerter(outbox, ["hook"]).on_change("m", "1", Change(OK, WARN, 1, ()))
        # a timeout a loaded machine's round trips stay well inside, but the delay not
        hook = Receiver(name="hook", url=server.url, timeout=1.5)
        with Dispatcher(outbox, [hook], poll_interval=0.05) as d:
            assert d.flush(20)
        deadline = time.monotonic() + 10  # the late answer is recorded when it is sent
        while len(server.received()) < 6 and time.monotonic() < deadline:
            time.sleep(0.05)
        got = server.received()
    assert alert is not None
    assert [r.answered for r in got] == [503, 408, 200, 429, 500, 200]
    assert {r.key for r in got} == {alert.id}
    assert got[4].at - got[3].at >= 0.9  # Retry-After: 1
    assert (d.retried, d.delivered, d.dead) == (5, 1, 0)
    [row] = outbox.entries("delivered")
    assert row.attempts == 6


def test_unconfigured_receiver_rows_are_dead(outbox: Outbox) -> None:
    Alerter(outbox, ["gone"]).on_change("m", "1", Change(OK, WARN, 1, ()))
    d = Dispatcher(outbox, [])
    assert d.run_once() == 0
    assert outbox.entries("dead")[0].error == "receiver 'gone' is no longer configured"
    assert d.dead == 1


def test_secrets_never_reach_logs_or_errors(
    outbox: Outbox, caplog: pytest.LogCaptureFixture
) -> None:
    key, secret, token = "PD-ROUTING-KEY-42", "HMAC-SECRET-42", "T000/B000/XYZTOKEN"
    env = {"PD_KEY": key, "HOOK_SECRET": secret}
    with HookServer(secret.encode()) as server:
        url = f"{server.url}/{token}"
        env["HOOK_URL"] = url
        # the receiver echoes the request body (holding the routing key) in its 400 answer
        server.answer(Answer(503, f"upstream {url} failed".encode()))
        pd = Receiver(
            name="pd",
            url_env="HOOK_URL",
            format="pagerduty",
            routing_key_env="PD_KEY",
            secret_env="HOOK_SECRET",
            headers={"Authorization": "Bearer HEADER-TOKEN-42"},
        )
        Alerter(outbox, ["pd"]).on_change("m", "1", Change(OK, CRIT, 1, ()))
        with caplog.at_level(logging.DEBUG):
            dispatcher = Dispatcher(outbox, [pd], poll_interval=0.05, environ=env)
            assert dispatcher.run_once() == 1
            [retrying] = outbox.entries("pending")
            body = render(
                retrying.alert, "pagerduty", RenderOptions(receiver="pd", routing_key=key)
            )
            server.answer(Answer(400, b"invalid event: " + body))
            outbox._db.execute("UPDATE deliveries SET next_attempt = 0")
            assert dispatcher.run_once() == 1
        [req, _] = server.received()
        assert req.signed and orjson.loads(req.body)["routing_key"] == key
    [dead] = outbox.entries("dead")
    assert dead.error is not None and dead.error.startswith("HTTP 400: invalid event:")
    text = caplog.text + (dead.error or "") + repr(dispatcher._targets) + repr(pd)
    assert "given up" in caplog.text and "next in" in caplog.text
    for leak in (key, secret, token, "HEADER-TOKEN-42"):
        assert leak not in text
    with pytest.raises(ConfigError) as exc:
        Dispatcher(outbox, [pd], environ={"HOOK_URL": url, "HOOK_SECRET": secret})
    assert "$PD_KEY" in str(exc.value) and key not in str(exc.value)


def test_receiver_config_errors_name_the_key(tmp_path: Path) -> None:
    cases = [
        ({"url": "http://x", "format": "xml"}, "format must be one of"),
        ({"url": "http://x", "url_env": "U"}, "exactly one of url and url_env"),
        ({"url": "ftp://user:pw@x/TOKEN"}, "scheme 'ftp'"),
        ({"url": "http://x", "format": "pagerduty"}, "needs routing_key_env"),
        ({"url": "http://x", "routing_key_env": "K"}, "routing_key_env is for format 'pagerduty'"),
        ({"url": "http://x", "headers": {"Idempotency-Key": "1"}}, "is set by driftline"),
        ({"url": "http://x", "headers": {"X-A": "a\r\nb"}}, "must be a one-line string"),
        ({"url": "http://x", "headers": {"X-A": "\u2603"}}, "must be ISO-8859-1 text"),
        ({"url": "http://x", "secret_env": "NOT-A-VAR"}, "must name an environment variable"),
        ({"url": "http://x", "timeout": 0}, "timeout must be a positive number"),
        ({"url": "http://x", "headers_env": {"X A": "V"}}, "is not a valid header name"),
        ({"url": "http://x", "headers_env": {"X-A": "not a var"}}, "headers_env.X-A must name"),
        ({"url": "http://x", "headers_env": {"Idempotency-Key": "V"}}, "is set by driftline"),
        (
            {"url": "http://x", "headers": {"x-a": "1"}, "headers_env": {"X-A": "V"}},
            "in both headers and headers_env",
        ),
    ]
    for kwargs, message in cases:
        with pytest.raises(ConfigError, match=message) as exc:
            Receiver(name="r", **kwargs)  # type: ignore[arg-type]
        assert str(exc.value).startswith("alerts.receivers 'r':")
        assert "TOKEN" not in str(exc.value) and "pw" not in str(exc.value)
    box = Outbox(tmp_path / "o.db")
    with pytest.raises(ConfigError, match="names must be unique"):
        Dispatcher(box, [receiver("http://x"), receiver("http://y")])
    box.close()


def test_stop_joins_and_restarts(outbox: Outbox) -> None:
    with HookServer() as server:
        d = Dispatcher(outbox, [receiver(server.url)], poll_interval=10.0)
        d.start()
        thread = d._thread
        t0 = time.monotonic()
        d.stop()
        assert thread is not None and not thread.is_alive()
        assert time.monotonic() - t0 < 8  # woken, not waiting out the 10 s poll interval
        d.start()
        Alerter(outbox, ["hook"]).on_change("m", "1", Change(OK, WARN, 1, ()))
        assert d.flush(5)  # an enqueue wakes the dispatcher at once
        d.stop()
        d.stop()  # idempotent
        with pytest.raises(RuntimeError, match="needs a running dispatcher"):
            d.flush(1)
        assert len(server.received()) == 1


# -- Alertmanager ------------------------------------------------------------------------


def _active(base: str) -> list[dict[str, object]]:
    with urllib.request.urlopen(f"{base}/api/v2/alerts?active=true", timeout=5) as r:
        alerts = orjson.loads(r.read())
    return [a for a in alerts if a["labels"].get("alertname") == ALERTNAME]


def test_alertmanager_api_with_a_real_alertmanager(tmp_path: Path) -> None:
    with alertmanager(tmp_path / "am") as base:
        box = Outbox(tmp_path / "outbox.db", policy=FAST)
        alerter = Alerter(box, ["am"])
        am = Receiver(name="am", url=f"{base}/api/v2/alerts", format="alertmanager_api")
        options = RenderOptions(labels={"team": "risk"}, external_url="http://driftline/{model}")
        with Dispatcher(box, [am], options=options, poll_interval=0.05) as d:
            up = alerter.on_change("fraud", "7", Change(OK, WARN, 3, ("amount: psi 0.31",)))
            assert up is not None and d.flush(5)
            [alert] = _active(base)
            assert alert["labels"] == {
                "alertname": ALERTNAME,
                "model": "fraud",
                "version": "7",
                "severity": "warning",
                "team": "risk",
            }
            annotations = alert["annotations"]
            assert isinstance(annotations, dict)
            assert annotations["summary"] == "fraud version 7 is warning: amount: psi 0.31"
            assert annotations["driftline_alert_id"] == up.id
            assert alert["generatorURL"] == "http://driftline/fraud"
            assert alert["status"] == {"state": "active", "silencedBy": [], "inhibitedBy": []}

            alerter.on_change("fraud", "7", Change(WARN, CRIT, 4, ("amount: psi 0.5",)))
            assert d.flush(5)
            [alert] = _active(base)  # the warning alert ended, the critical one fires
            assert isinstance(alert["labels"], dict) and alert["labels"]["severity"] == "critical"

            alerter.on_change("fraud", "7", Change(CRIT, OK, 5, ()))
            assert d.flush(5)
            assert _active(base) == []
        assert d.dead == 0 and d.delivered == 3
        box.close()


def test_an_unreadable_outbox_is_counted_not_fatal(tmp_path: Path) -> None:
    box = Outbox(tmp_path / "o.db")
    with sqlite3.connect(tmp_path / "o.db") as db:  # the file is damaged under the engine
        db.execute("DROP TABLE sent")
    counters = AlertCounters()
    alerter = Alerter(box, ["a"], counters=counters)
    assert alerter.on_change("x", "1", Change(OK, CRIT, 1, ())) is None
    assert counters.get("x", "critical", "refused") == 1
    box.close()
