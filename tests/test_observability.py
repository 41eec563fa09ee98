"""``driftline serve`` as a real process, looked at the way users look at it: over HTTP,
through Debian's Prometheus (scraping it, evaluating the repository's alert rules), and in
headless Chromium (the status page).

One engine runs for the module: the example's serving events through the broker, whose
later windows drift until health is critical.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import orjson
import pyarrow.parquet as pq
import pytest
from brokers import free_port
from deploy_files import queried_metrics
from kafka_io import create_topics, events, produce_events, write_config
from services import colours, missing_service, near, running, screenshot

REPO = Path(__file__).resolve().parent.parent
RULES = REPO / "dashboards" / "prometheus" / "rules.yml"
TOKEN = "observability-token"
PROMETHEUS_APT = "apt-get install -y --no-install-recommends prometheus"
T = TypeVar("T")


def wait_for(what: str, fn: Callable[[], T | None], timeout: float = 60.0) -> T:
    deadline = time.monotonic() + timeout
    while True:
        value = fn()
        if value is not None:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.2)


def http(
    url: str, body: bytes | None = None, headers: dict[str, str] | None = None
) -> tuple[int, bytes]:
    req = urllib.request.Request(url, data=body, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


@dataclass
class Engine:
    base: str
    proc: subprocess.Popen[bytes]
    log: Path

    def get(self, path: str) -> Any:
        status, body = http(self.base + path)
        assert status == 200, (path, status, body[:500])
        return orjson.loads(body)


@pytest.fixture(scope="module")
def engine(broker: str, data: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Engine]:
    tmp = tmp_path_factory.mktemp("observability")
    topics = {
        "inference": "obs-in",
        "windows": "obs-win",
        "dead_letter": "obs-dlq",
        "alerts": "obs-alerts",
    }
    create_topics(broker, topics.values())
    port = free_port()
    cfg = write_config(
        tmp / "d.toml",
        broker,
        topics,
        data / "fraud.dlb",
        tmp / "state",
        api=f'port = {port}\ntoken_env = "OBS_TOKEN"',
    )
    produce_events(broker, topics["inference"], events(pq.read_table(data / "serving.parquet")))
    base = f"http://127.0.0.1:{port}"
    argv = [sys.executable, "-m", "driftline", "serve", "--config", str(cfg)]
    log = tmp / "serve.log"
    env = {**os.environ, "OBS_TOKEN": TOKEN}
    with running(
        argv, log, f"{base}/readyz", "driftline serve", 60, env=env, stop_timeout=30
    ) as proc:
        e = Engine(base, proc, log)
        wait_for(
            "critical health",
            lambda: (
                True
                if any(m["health"] == "critical" for m in e.get("/v1/models")["models"])
                else None
            ),
            timeout=120,
        )
        yield e


def families(text: str) -> set[str]:
    """Metric family names declared in a Prometheus exposition, with a histogram's
    ``_bucket``/``_sum``/``_count`` series and a counter's ``_total`` name."""
    out = set()
    for line in text.splitlines():
        if line.startswith("# TYPE "):
            _, _, name, kind = line.split(" ", 3)
            out.add(name)
            if kind == "histogram":
                out |= {f"{name}_bucket", f"{name}_sum", f"{name}_count"}
            if kind == "counter":
                out.add(f"{name}_total")
        elif line and not line.startswith("#"):
            out.add(line.split("{")[0].split(" ")[0])
    return out


def test_every_metric_the_dashboards_and_rules_query_is_exported(engine: Engine) -> None:
    status, body = http(engine.base + "/metrics")
    assert status == 200
    exported = families(body.decode())
    queried = queried_metrics()
    assert queried, "no metric found in dashboards/ and the rules"
    assert queried - {"up"} <= exported, sorted(queried - {"up"} - exported)


def test_the_api_reports_the_running_engine(engine: Engine, data: Path) -> None:
    models = engine.get("/v1/models")["models"]
    assert [(m["model"], m["version"], m["health"]) for m in models] == [("fraud", "7", "critical")]
    v = engine.get("/v1/models/fraud/versions/7")
    assert v["reasons"] and v["features"]["amount"]["skew"]["type"] == "numeric"
    windows = engine.get("/v1/models/fraud/versions/7/windows?limit=3")["windows"]
    assert len(windows) == 3
    assert windows[0]["window"]["index"] >= windows[-1]["window"]["index"]
    alerts = engine.get("/v1/alerts")["alerts"]
    assert alerts[0]["status"] == "firing" and alerts[0]["model"] == "fraud"

    # ingestion over HTTP into the running engine, with and without the token
    rows = events(pq.read_table(data / "serving.parquet").slice(0, 10), version="9")
    before = engine.get("/v1/models")
    assert http(engine.base + "/v1/events", orjson.dumps(rows))[0] == 401
    headers = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"}
    status, body = http(engine.base + "/v1/events", orjson.dumps(rows), headers)
    assert (status, orjson.loads(body)) == (200, {"accepted": 10, "kind": "inference"})
    rows[4]["features"] = "broken"
    status, body = http(engine.base + "/v1/events", orjson.dumps(rows), headers)
    assert status == 422
    assert orjson.loads(body)["detail"]["errors"][0]["event"] == 4
    assert engine.get("/v1/models") == before  # 10 events close no window
    status, body = http(engine.base + "/metrics")
    line = next(
        x for x in body.decode().splitlines() if x.startswith("driftline_events_total{")
        and 'version="9"' in x
    )  # fmt: skip
    assert line.endswith(" 10.0")


# -- Prometheus ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def prometheus(engine: Engine, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    binary = shutil.which("prometheus")
    if binary is None:
        missing_service(f"Prometheus is not installed (CI: {PROMETHEUS_APT})")
    assert binary is not None
    tmp = tmp_path_factory.mktemp("prometheus")
    target = urllib.parse.urlsplit(engine.base).netloc
    config = tmp / "prometheus.yml"
    config.write_text(
        "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n"
        f"rule_files:\n  - {RULES}\n"
        "scrape_configs:\n  - job_name: driftline\n"
        f"    static_configs:\n      - targets: ['{target}']\n"
    )
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    argv = [
        binary,
        f"--config.file={config}",
        f"--storage.tsdb.path={tmp / 'data'}",
        f"--web.listen-address=127.0.0.1:{port}",
    ]
    with running(argv, tmp / "prometheus.log", f"{base}/-/ready", "Prometheus", 30):
        yield base


def query(base: str, promql: str) -> list[dict[str, Any]]:
    status, body = http(f"{base}/api/v1/query?" + urllib.parse.urlencode({"query": promql}))
    assert status == 200, body[:500]
    result: list[dict[str, Any]] = orjson.loads(body)["data"]["result"]
    return result


def test_prometheus_scrapes_the_drift_series(engine: Engine, prometheus: str) -> None:
    promql = 'driftline_feature_drift{feature="amount",statistic="psi",kind="skew"}'
    series = wait_for("the psi series in Prometheus", lambda: query(prometheus, promql) or None)
    assert len(series) == 1
    labels = series[0]["metric"]
    assert (labels["model"], labels["version"], labels["job"]) == ("fraud", "7", "driftline")
    psi = engine.get("/v1/models/fraud/versions/7")["features"]["amount"]["skew"]["psi"]
    assert float(series[0]["value"][1]) == pytest.approx(psi)
    health = query(prometheus, 'driftline_model_health{model="fraud",version="7"}')
    assert float(health[0]["value"][1]) == 2


def test_the_critical_alert_rule_fires(engine: Engine, prometheus: str) -> None:
    def firing() -> dict[str, Any] | None:
        status, body = http(prometheus + "/api/v1/alerts")
        assert status == 200
        for a in orjson.loads(body)["data"]["alerts"]:
            if a["labels"]["alertname"] == "DriftlineModelCritical" and a["state"] == "firing":
                return dict(a)
        return None

    alert = wait_for("DriftlineModelCritical firing", firing, timeout=60)
    assert (alert["labels"]["model"], alert["labels"]["version"]) == ("fraud", "7")
    assert alert["labels"]["severity"] == "critical"


# -- the status page in a browser ---------------------------------------------------------


def test_status_page_renders_in_chromium(engine: Engine, tmp_path: Path) -> None:
    pixels = screenshot(engine.base + "/", tmp_path / "status.png", 1280, 900)
    assert colours(pixels) > 50  # text, badges, bars: not a blank page
    # the header bar (#1d2330) and the critical badge (#c62828) are drawn
    assert near(pixels, (0x1D, 0x23, 0x30), tolerance=1) > 1000
    assert near(pixels, (0xC6, 0x28, 0x28), tolerance=8) > 50
