"""End to end, as a user runs it: ``driftline serve`` (a real process) reads a real broker;
a stable version and a canary share the stream; the canary's inputs drift, on-call's
webhook receives the alert and the canary is aborted in the registry; then production
degrades, the rollback waits for ``driftline actions approve`` and moves ``production``
back to the previous version. Serving's notification endpoint and the actions topic see
each action once."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import orjson
import pyarrow.parquet as pq
from kafka_io import create_topics, events, produce_events, read_all, write_config
from receivers import HookServer

from driftline.action_store import ActionStore, Record
from driftline.connectors.sqlite_registry import SqliteRegistry

DRIFTLINE = [sys.executable, "-m", "driftline"]
ONCALL_SECRET = "oncall-secret"
SERVING_SECRET = "serving-secret"


def wait_for(what: str, condition: Callable[[], bool], proc: subprocess.Popen[str]) -> None:
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        if condition():
            return
        if proc.poll() is not None:
            raise AssertionError(f"serve exited ({proc.returncode}) waiting for {what}")
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def actions(path: Path) -> list[Record]:
    if not path.exists():
        return []
    store = ActionStore(path)
    try:
        return store.recent()
    finally:
        store.close()


def test_canary_aborted_then_production_rolled_back_after_approval(
    broker: str, data: Path, tmp_path: Path
) -> None:
    topics = {
        "inference": "canary-in",
        "windows": "canary-win",
        "dead_letter": "canary-dlq",
        "alerts": "canary-alerts",
        "actions": "canary-actions",
    }
    create_topics(broker, topics.values())
    registry = tmp_path / "registry.db"
    reg = SqliteRegistry(registry)
    for version in ("6", "7", "8"):
        reg.register("fraud", version, str(data / "fraud.dlb"))
    reg.set_alias("fraud", "production", "7")
    reg.set_alias("fraud", "canary", "8")

    oncall = HookServer(ONCALL_SECRET.encode()).up()
    serving = HookServer(SERVING_SECRET.encode()).up()
    extra = f"""
[health]
hysteresis = 2
[registry]
url = "sqlite:///{registry}"
baseline_dirs = ["{data}"]  # the registered baselines' directory
[alerts]
retry_base = "0.1s"
[[alerts.receivers]]
name = "oncall"
url = "{oncall.url}"
secret_env = "ONCALL_SECRET"
[[actions.policies]]
name = "abort-drifting-canary"
action = "canary_abort"
canary_worse = true
mode = "auto"
url = "{serving.url}"
secret_env = "SERVING_SECRET"
topic = true
[[actions.policies]]
name = "rollback-production"
action = "rollback"
health = "critical"
mode = "approve"
url = "{serving.url}"
secret_env = "SERVING_SECRET"
topic = true
"""
    cfg = write_config(
        tmp_path / "d.toml", broker, topics, data / "fraud.dlb", tmp_path / "st", extra=extra
    )

    table = pq.read_table(data / "serving.parquet")
    calm, drifting = table.slice(0, 4000), table.slice(6000, 6000)
    env = {**os.environ, "ONCALL_SECRET": ONCALL_SECRET, "SERVING_SECRET": SERVING_SECRET}
    proc = subprocess.Popen(
        [*DRIFTLINE, "serve", "--config", str(cfg)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    store = tmp_path / "st" / "actions.db"
    try:
        # 1. production (7) sees calm traffic, the canary (8) traffic whose inputs drifted
        produce_events(broker, topics["inference"], events(calm, version="7"))
        produce_events(broker, topics["inference"], events(drifting, version="8"))

        def aborted() -> bool:
            return any(a.action == "canary_abort" and a.status == "done" for a in actions(store))

        wait_for("the canary abort", aborted, proc)
        assert reg.model("fraud").aliases == {"production": "7"}
        wait_for("the canary's alert", lambda: any(
            r.json()["version"] == "8" for r in oncall.received()), proc)  # type: ignore[index]  # fmt: skip
        alert = next(r for r in oncall.received() if r.json()["version"] == "8")  # type: ignore[index]
        assert alert.signed and alert.json()["status"] == "firing"  # type: ignore[index]

        # 2. production degrades: the rollback waits for approval
        produce_events(broker, topics["inference"], events(drifting, version="7"))
        wait_for("the rollback proposal", lambda: any(
            a.action == "rollback" for a in actions(store)), proc)  # fmt: skip
        (rollback,) = [a for a in actions(store) if a.action == "rollback"]
        assert rollback.status == "pending" and rollback.version == "7"
        time.sleep(1.5)  # the executor does not act on a pending action
        assert reg.model("fraud").aliases == {"production": "7"}
        approve = subprocess.run(
            [*DRIFTLINE, "actions", "approve", rollback.id[:8], "--config", str(cfg), "--by", "qa"],
            capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        assert approve.returncode == 0, approve.stderr
        assert approve.stdout.strip() == (
            f"action {rollback.id} (rollback of fraud version 7) approved"
        )
        wait_for("the rollback", lambda: reg.model("fraud").aliases.get("production") == "6",
                 proc)  # fmt: skip
        wait_for("serving's notifications", lambda: len(serving.delivered()) == 2, proc)
    finally:
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=60)
        oncall.down()
        serving.down()
        reg.close()
    assert proc.returncode == 0, err[-3000:]
    done = {a.action: a for a in actions(store)}
    assert {k: v.status for k, v in done.items()} == {"canary_abort": "done", "rollback": "done"}
    assert (
        done["rollback"].result
        == "moved production 7 -> 6; POST HTTP 200; published on the actions topic"
    )
    notes = serving.received()
    assert all(n.signed for n in notes) and set(serving.delivered().values()) == {1}
    assert [n.json()["action"] for n in notes] == ["canary_abort", "rollback"]  # type: ignore[index]
    published = [orjson.loads(v) for _, v, _ in read_all(broker, topics["actions"], 2)]
    assert [(p["action"], p["version"]) for p in published] == [
        ("canary_abort", "8"),
        ("rollback", "7"),
    ]
