"""The HTTP API and /metrics over an in-process engine (no broker: the engine thread is the
test's own, ``Service.run`` a plain call).

The oracle for what the API reports is what the engine published to its sink, and for
HTTP ingestion the same events through the Kafka path (``Engine.process``).
"""

from __future__ import annotations

import io
import re
from pathlib import Path
from typing import Any

import orjson
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from fastapi.testclient import TestClient
from kafka_io import events, json_messages
from sinks import MemorySink
from test_engine import config

from driftline.action_store import ActionStore
from driftline.actions import Policy, Proposal, action_key
from driftline.alerts import Alerter
from driftline.api import create_app
from driftline.engine import Engine
from driftline.events import ARROW
from driftline.health import Change, Health
from driftline.metrics import EngineCollector, make_registry
from driftline.outbox import Outbox
from driftline.service import Recent, Service

TOKEN = "s3cret-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


class Rig:
    """An engine, the service over it, the app and a client."""

    def __init__(self, data: Path, tmp: Path, extra: str = "", **api: Any) -> None:
        self.cfg = config(data, tmp, extra=extra)
        self.sink = MemorySink()
        self.recent = Recent(self.sink, keep=self.cfg.api.keep_windows)
        self.engine = Engine(self.cfg, self.recent)
        self.outbox = Outbox(tmp / "alerts.db")
        self.store = ActionStore(tmp / "actions.db")
        self.service = Service(self.engine, self.recent, outbox=self.outbox, store=self.store)
        self.service.restored = self.service.assigned = True
        self.collector = EngineCollector(
            self.service, self.cfg.metrics, lag=lambda: {("inf", 0): 7}
        )
        self.registry = make_registry(self.collector)
        cfg_api = self.cfg.api
        for k, v in api.items():
            cfg_api = type(cfg_api)(**{**cfg_api.__dict__, k: v})
        self.app = create_app(self.service, cfg_api, registry=self.registry, token=TOKEN)
        self.client = TestClient(self.app)

    def post_events(self, rows: list[dict[str, Any]], **kw: Any) -> Any:
        return self.client.post("/v1/events", content=orjson.dumps(rows), headers=AUTH, **kw)

    def metric(self, name: str, **labels: str) -> float | None:
        return self.registry.get_sample_value(name, labels)


@pytest.fixture
def rig(data: Path, tmp_path: Path) -> Rig:
    return Rig(data, tmp_path)


def serving(data: Path) -> pa.Table:
    return pq.read_table(data / "serving.parquet")


def test_http_ingestion_equals_the_kafka_path(data: Path, tmp_path: Path, rig: Rig) -> None:
    table = serving(data).slice(0, 6000)
    rows = events(table)
    for start in range(0, len(rows), 1500):  # four requests
        r = rig.post_events(rows[start : start + 1500])
        assert r.status_code == 200, r.text
        assert r.json() == {"accepted": 1500, "kind": "inference"}
    kafka_sink = MemorySink()
    (tmp_path / "k").mkdir()
    Engine(config(data, tmp_path / "k"), kafka_sink).process(json_messages(table))
    assert len(rig.sink.records) == len(kafka_sink.records) == 5  # 3 skew + 2 drift
    for ours, theirs in zip(rig.sink.records, kafka_sink.records, strict=True):
        assert ours["kind"] == theirs["kind"]
        assert ours["window"]["count"] == theirs["window"]["count"]
        assert ours["features"] == theirs["features"]
    assert rig.engine.positions == {}  # nothing to commit: HTTP events have no offsets


def test_models_version_and_windows_report_what_was_published(data: Path, rig: Rig) -> None:
    assert rig.client.get("/v1/models").json() == {"models": []}
    assert rig.post_events(events(serving(data).slice(0, 6000))).status_code == 200
    models = rig.client.get("/v1/models").json()["models"]
    assert [(m["model"], m["version"]) for m in models] == [("fraud", "7")]
    skews = [r for r in rig.sink.records if r["kind"] == "skew"]
    drifts = [r for r in rig.sink.records if r["kind"] == "drift"]
    assert models[0]["health"] == skews[-1]["health"]
    assert models[0]["last_window"] == skews[-1]["window"]
    assert models[0]["events"] == {"inference": 6000}

    v = rig.client.get("/v1/models/fraud/versions/7").json()
    assert v["health"] == skews[-1]["health"]
    assert v["dataset_drift"] == skews[-1]["dataset_drift"]
    assert v["features"]["amount"]["skew"] == skews[-1]["features"]["amount"]
    assert v["features"]["amount"]["drift"] == drifts[-1]["features"]["amount"]
    assert v["features"]["(prediction)"]["skew"] == skews[-1]["prediction"]

    w = rig.client.get("/v1/models/fraud/versions/7/windows", params={"limit": 2}).json()
    assert w["windows"] == rig.sink.records[::-1][:2]  # newest first
    assert len(rig.client.get("/v1/models/fraud/versions/7/windows").json()["windows"]) == 5


@pytest.mark.parametrize(
    ("path", "params"),
    [
        ("/v1/models/fraud/versions/8", {}),
        ("/v1/models/nope/versions/7/windows", {}),
    ],
)
def test_unknown_model_version_is_404(rig: Rig, path: str, params: dict[str, Any]) -> None:
    r = rig.client.get(path, params=params)
    assert r.status_code == 404
    assert "seen yet" in r.json()["detail"]


@pytest.mark.parametrize("limit", [0, -1, 101, "many"])
def test_windows_limit_is_validated(rig: Rig, limit: Any) -> None:
    r = rig.client.get("/v1/models/fraud/versions/7/windows", params={"limit": limit})
    assert r.status_code == 422
    assert r.json()["detail"][0]["loc"] == ["query", "limit"]


def test_ndjson_and_arrow_bodies(data: Path, rig: Rig) -> None:
    table = serving(data).slice(0, 2500)
    rows = events(table)
    ndjson = b"\n".join(orjson.dumps(e) for e in rows[:1000]) + b"\n\n"
    r = rig.client.post(
        "/v1/events", content=ndjson, headers={**AUTH, "content-type": "application/x-ndjson"}
    )
    assert r.status_code == 200 and r.json()["accepted"] == 1000
    arrow = pa.table(
        {
            "model": ["fraud"] * 1500,
            "version": ["7"] * 1500,
            "id": table["id"].slice(1000),
            "ts": table["ts"].slice(1000),
            "features": pa.StructArray.from_arrays(
                [table[f].slice(1000).combine_chunks() for f in ("amount", "country")],
                ["amount", "country"],
            ),
            "prediction": table["score"].slice(1000),
        }
    )
    sink = io.BytesIO()
    with pa.ipc.new_stream(sink, arrow.schema) as writer:
        writer.write_table(arrow)
    r = rig.client.post(
        "/v1/events", content=sink.getvalue(), headers={**AUTH, "content-type": ARROW}
    )
    assert r.status_code == 200, r.text
    assert r.json()["accepted"] == 1500
    assert rig.engine.counters.events[("fraud", "7", "inference")] == 2500
    assert rig.sink.records[0]["window"]["count"] == 2000


def test_an_invalid_event_rejects_the_request_with_its_index_and_field(
    data: Path, rig: Rig
) -> None:
    rows = events(serving(data).slice(0, 10))
    del rows[3]["model"]
    rows[7]["ts"] = "yesterday"
    r = rig.post_events(rows)
    assert r.status_code == 422
    errors = r.json()["detail"]["errors"]
    assert [(e["event"], e["code"]) for e in errors] == [(3, "missing_field"), (7, "bad_time")]
    assert "'model'" in errors[0]["reason"] and "'ts'" in errors[1]["reason"]
    assert rig.engine.counters.events == {}  # all or nothing
    assert rig.engine.counters.invalid == {"missing_field": 1, "bad_time": 1}
    assert rig.metric("driftline_invalid_events_total", reason="bad_time") == 1
    assert rig.sink.dead == []  # the client was told: not dead-lettered as well

    ndjson = orjson.dumps(rows[0]) + b"\n[1, 2]\n"
    r = rig.client.post(
        "/v1/events", content=ndjson, headers={**AUTH, "content-type": "application/x-ndjson"}
    )
    assert r.status_code == 422
    assert r.json()["detail"]["errors"][0]["line"] == 2


@pytest.mark.parametrize(
    ("body", "error"),
    [
        (b"{not json", "not_json"),
        (b'"a string"', "not_events"),
        (b"3", "not_events"),
        (b"", "empty"),
        (b"[" * 5000 + b"]" * 5000, "not_json"),  # nested past orjson's depth limit
    ],
)
def test_bodies_that_are_not_events_are_422(rig: Rig, body: bytes, error: str) -> None:
    r = rig.client.post("/v1/events", content=body, headers=AUTH)
    assert r.status_code == 422
    assert r.json()["detail"]["error"] == error


def test_a_json_array_of_non_objects_names_each_element(rig: Rig) -> None:
    r = rig.post_events([1, "x", None])  # type: ignore[list-item]
    assert r.status_code == 422
    errors = r.json()["detail"]["errors"]
    assert [e["event"] for e in errors] == [0, 1, 2]


def test_body_over_the_limit_is_413(data: Path, tmp_path: Path) -> None:
    rig = Rig(data, tmp_path, max_body_bytes=1000)
    big = orjson.dumps(events(serving(data).slice(0, 50)))
    r = rig.client.post("/v1/events", content=big, headers=AUTH)
    assert r.status_code == 413
    assert "1000" in r.json()["detail"]

    def chunks() -> Any:  # no Content-Length: the limit holds while reading
        for i in range(0, len(big), 300):
            yield big[i : i + 300]

    r = rig.client.post("/v1/events", content=chunks(), headers=AUTH)
    assert r.status_code == 413
    assert rig.engine.counters.events == {}


def test_unsupported_content_type_is_415(rig: Rig) -> None:
    r = rig.client.post(
        "/v1/events", content=b"a,b\n1,2", headers={**AUTH, "content-type": "text/csv"}
    )
    assert r.status_code == 415
    assert "text/csv" in r.json()["detail"]


def test_labels_need_the_labels_topic(rig: Rig) -> None:
    r = rig.client.post(
        "/v1/events", params={"kind": "labels"}, content=b'[{"id": "a", "label": 1}]', headers=AUTH
    )
    assert r.status_code == 422
    assert "kafka.topics.labels" in r.json()["detail"]


# -- the token ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("headers", "status"),
    [
        ({}, 401),
        ({"Authorization": "Basic abc"}, 401),
        ({"Authorization": "Bearer wrong"}, 403),
        ({"Authorization": f"Bearer {TOKEN}x"}, 403),
        (AUTH, 200),
    ],
)
def test_writes_need_the_bearer_token(rig: Rig, headers: dict[str, str], status: int) -> None:
    r = rig.client.post("/v1/events", content=b"[]", headers=headers)
    assert r.status_code == status
    if status == 200:
        assert r.json()["accepted"] == 0


def test_without_a_token_writes_are_refused(data: Path, tmp_path: Path) -> None:
    rig = Rig(data, tmp_path)
    app = create_app(rig.service, rig.cfg.api, registry=rig.registry, token=None)
    client = TestClient(app)
    r = client.post("/v1/events", content=b"[]", headers=AUTH)
    assert r.status_code == 403
    assert "token_env" in r.json()["detail"]
    assert client.get("/v1/models").status_code == 200  # reads stay open


def test_protected_reads(data: Path, tmp_path: Path) -> None:
    rig = Rig(data, tmp_path, protect_reads=True)
    for path in ("/", "/v1/models", "/v1/alerts", "/v1/actions"):
        assert rig.client.get(path).status_code == 401, path
        assert rig.client.get(path, headers=AUTH).status_code == 200, path
    for path in ("/healthz", "/readyz", "/metrics"):  # probes and Prometheus stay open
        assert rig.client.get(path).status_code == 200, path


# -- alerts and actions -------------------------------------------------------------------


def _propose(store: ActionStore, window: int) -> str:
    policy = Policy("rb", "rollback", mode="approve", health=Health.CRITICAL, cooldown=0.0)
    key = action_key("rb", "fraud", "7", "inference", window)
    p = Proposal(key, policy, "fraud", "7", window, "critical", "amount drifted")
    assert store.propose(p) == "created"
    return store.recent()[0].id


def test_actions_are_listed_approved_and_rejected(rig: Rig) -> None:
    first = _propose(rig.store, 3)
    listed = rig.client.get("/v1/actions").json()["actions"]
    assert [(a["id"], a["status"]) for a in listed] == [(first, "pending")]
    r = rig.client.post(
        f"/v1/actions/{first[:8]}/approve", json={"note": "go", "actor": "alice"}, headers=AUTH
    )
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "approved"
    audit = rig.store.audit(first)
    assert (audit[-1].event, audit[-1].actor, audit[-1].detail) == ("approved", "alice", "go")
    again = rig.client.post(f"/v1/actions/{first}/approve", headers=AUTH)
    assert again.status_code == 409
    assert "not pending" in again.json()["detail"]
    assert rig.client.get("/v1/actions", params={"status": "pending"}).json()["actions"] == []

    second = _propose(rig.store, 9)
    r = rig.client.post(f"/v1/actions/{second}/reject", headers=AUTH)
    assert r.status_code == 200 and r.json()["status"] == "rejected"
    assert rig.client.post("/v1/actions/ffffffffffff/approve", headers=AUTH).status_code == 404
    assert rig.client.post("/v1/actions/ab/approve", headers=AUTH).status_code == 400
    assert rig.client.post(f"/v1/actions/{second}/approve").status_code == 401


def test_alerts_are_listed_newest_first(rig: Rig) -> None:
    alerter = Alerter(rig.outbox, [])
    alerter.on_change("fraud", "7", Change(Health.OK, Health.CRITICAL, 4, ("amount: psi 0.3",)))
    alerter.on_change("fraud", "7", Change(Health.CRITICAL, Health.OK, 9, ()))
    alerts = rig.client.get("/v1/alerts").json()["alerts"]
    assert [(a["status"], a["severity"], a["window"]) for a in alerts] == [
        ("resolved", "critical", 9),
        ("firing", "critical", 4),
    ]
    assert alerts[1]["reasons"] == ["amount: psi 0.3"]
    firing = rig.client.get("/v1/alerts", params={"status": "firing"}).json()["alerts"]
    assert [a["window"] for a in firing] == [4]


# -- readiness ----------------------------------------------------------------------------


def test_readyz_waits_for_state_and_partitions(rig: Rig) -> None:
    rig.service.restored = rig.service.assigned = False
    r = rig.client.get("/readyz")
    assert r.status_code == 503
    assert r.json()["reasons"] == ["state not restored yet", "no partitions assigned yet"]
    assert rig.metric("driftline_ready") == 0
    rig.service.restored = rig.service.assigned = True
    assert rig.client.get("/readyz").json() == {"ready": True, "reasons": []}
    assert rig.metric("driftline_ready") == 1
    assert rig.client.get("/healthz").status_code == 200


# -- /metrics -----------------------------------------------------------------------------


def test_metrics_report_the_engine(data: Path, rig: Rig) -> None:
    rows = events(serving(data))
    assert rig.post_events(rows).status_code == 200
    r = rig.client.get("/metrics")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/plain")
    skew = [x for x in rig.sink.records if x["kind"] == "skew"][-1]
    drift = [x for x in rig.sink.records if x["kind"] == "drift"][-1]
    m = rig.metric
    key = {"model": "fraud", "version": "7"}
    assert m("driftline_events_total", **key, kind="inference") == len(rows)
    level = {"ok": 0, "warning": 1, "critical": 2}[skew["health"]]
    assert m("driftline_model_health", **key) == level
    assert skew["health"] == "critical"  # the example's later windows drift
    for feature in ("amount", "country"):
        stats = skew["features"][feature]
        assert m(
            "driftline_feature_drift", **key, feature=feature, statistic="psi", kind="skew"
        ) == pytest.approx(stats["psi"])
        assert m("driftline_feature_drifted", **key, feature=feature, kind="skew") == int(
            stats["drift"]
        )
        assert m(
            "driftline_feature_drift", **key, feature=feature, statistic="psi", kind="drift"
        ) == pytest.approx(drift["features"][feature]["psi"])
    assert m(
        "driftline_feature_drift", **key, feature="amount", statistic="ks_statistic", kind="skew"
    ) == pytest.approx(skew["features"]["amount"]["ks_statistic"])
    assert m(
        "driftline_feature_drift", **key, feature="country", statistic="linf", kind="skew"
    ) == pytest.approx(skew["features"]["country"]["linf"])
    assert m(
        "driftline_feature_drift", **key, feature="(prediction)", statistic="psi", kind="skew"
    ) == pytest.approx(skew["prediction"]["psi"])
    assert m("driftline_dataset_drift_share", **key, kind="skew") == pytest.approx(
        skew["dataset_drift"]["share"]
    )
    assert m("driftline_data_quality", **key, check="type_errors") == skew["quality"]["type_errors"]
    assert m("driftline_proxy_metric", **key, metric="prediction_mean") == pytest.approx(
        skew["proxy"]["prediction_mean"]
    )
    assert m("driftline_estimated_quality", **key, metric="accuracy") == pytest.approx(
        skew["proxy"]["estimated"]["accuracy"]
    )
    n_skew = sum(1 for x in rig.sink.records if x["kind"] == "skew")
    assert m("driftline_windows_total", **key, kind="skew") == n_skew
    assert m("driftline_window_close_seconds_count") == n_skew
    assert m("driftline_window_close_seconds_bucket", le="+Inf") == n_skew
    assert 0 < m("driftline_window_close_seconds_sum") < 60  # type: ignore[operator]
    assert m("driftline_consumer_lag", topic="inf", partition="0") == 7
    assert m("driftline_metrics_versions_dropped") == 0
    assert m("process_resident_memory_bytes") > 0  # type: ignore[operator]


def test_metric_cardinality_is_bounded(data: Path, tmp_path: Path) -> None:
    extra = "\n[metrics]\nmax_versions = 1\nmax_features = 2\nfeatures = ['device']\n"
    rig = Rig(data, tmp_path, extra=extra)
    table = serving(data).slice(0, 2000)
    for version in ("7", "8"):
        assert rig.post_events(events(table, version=version)).status_code == 200
    text = rig.client.get("/metrics").text
    exported = re.findall(r'^driftline_model_health\{.*version="([^"]+)"', text, re.M)
    assert exported == ["8"]  # the most recently updated
    assert rig.metric("driftline_metrics_versions_dropped") == 1
    features = {line.split('feature="')[1].split('"')[0] for line in text.splitlines()
                if line.startswith("driftline_feature_drift{")}  # fmt: skip
    assert features == {"device", "amount"}  # the configured one first, then baseline order
    assert (
        rig.metric("driftline_events_total", model="fraud", version="7", kind="inference") == 2000
    )


def test_the_records_kept_for_the_api_are_bounded() -> None:
    """``api.keep_windows`` records per model version, of at most 1,000 versions (the least
    recently updated goes first); every record still reaches the sink behind."""
    sink = MemorySink()
    recent = Recent(sink, keep=3)

    def record(version: str, index: int) -> dict[str, Any]:
        return {"model": "m", "version": version, "kind": "skew", "window": {"index": index}}

    for i in range(10):
        recent.publish(record("1", i))
    assert [r["window"]["index"] for r in recent.windows("m", "1") or []] == [7, 8, 9]
    for v in range(2, 1002):  # 1,000 more versions
        recent.publish(record(str(v), 0))
    assert recent.get("m", "1") is None  # the oldest, dropped
    assert recent.get("m", "2") is not None and len(recent.latest()) == 1000
    assert len(sink.records) == 10 + 1000


def test_a_model_without_a_baseline_is_rejected(data: Path, tmp_path: Path) -> None:
    rig = Rig(data, tmp_path)
    rows = events(serving(data).slice(0, 4), model="fraud") + events(
        serving(data).slice(0, 2), model="churn"
    )
    r = rig.post_events(rows)
    assert r.status_code == 422
    errors = r.json()["detail"]["errors"]
    assert [(e["event"], e["code"]) for e in errors] == [(4, "no_baseline"), (5, "no_baseline")]
    assert "'churn'" in errors[0]["reason"]
    assert rig.engine.counters.events == {}


def test_status_page_shows_models_health_and_features(data: Path, tmp_path: Path) -> None:
    rig = Rig(data, tmp_path)
    empty = rig.client.get("/")
    assert empty.status_code == 200 and "waiting for events" in empty.text
    assert rig.post_events(events(serving(data))).status_code == 200
    hostile = events(serving(data).slice(0, 2000), version="<script>alert(1)</script>")
    assert rig.post_events(hostile).status_code == 200  # same model: the default baseline
    page = rig.client.get("/").text
    assert page.startswith("<!doctype html>")
    assert "<script>" not in page and "&lt;script&gt;" in page
    assert 'class="badge critical"' in page
    for feature in ("amount", "country", "device", "(prediction)"):
        assert f">{feature}</td>" in page
    assert "http://" not in page and "https://" not in page  # self-contained
