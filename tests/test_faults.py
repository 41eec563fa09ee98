"""Fault tests (issue 8, "Reliability"): real ``driftline serve`` processes against the real
broker (Tansu), real webhook receivers and a real MLflow server, each fault made for real:

- the engine killed (``kill -9``) ten times at seeded random points while events arrive;
- the broker killed and a new, empty one started on the same port;
- the webhook receiver and the MLflow registry down, then back;
- the state directory made unwritable (``chattr +i``: the tests run as root, for whom file
  modes are no obstacle), then writable again;
- SIGTERM while a window close waits on the registry (another writer holds its lock).

Every test compares what the engine published with ``driftline replay`` of the same events
or with an uninterrupted run, and reads ``/readyz`` and ``/metrics`` of the running engine.
docs/guarantees.md says which promise each test checks.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
import sqlite3
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

import orjson
import pyarrow.parquet as pq
import pytest
from kafka import KafkaConsumer, TopicPartition
from kafka_io import (
    create_topics,
    events,
    produce_events,
    producer,
    read_all,
    topics_for,
    write_config,
)
from mlflow_server import mlflow_server
from prometheus_client.parser import text_string_to_metric_families
from receivers import HookServer
from services import missing_service

from driftline.connectors.mlflow_registry import MlflowRegistry
from driftline.connectors.sqlite_registry import SqliteRegistry
from driftline.connectors.tansu import free_port, tansu
from driftline.demo import api_url
from driftline.registry import HEALTH_TAG, register

DRIFTLINE = [sys.executable, "-m", "driftline"]
WINDOW = 500
"""Events per window: the 12,000 events of the ``data`` fixture make 24 windows."""

Record = dict[str, Any]
Key = tuple[str, str, int]


# -- helpers ------------------------------------------------------------------------------


def wait_for(check: Callable[[], Any], what: str, timeout: float = 60.0) -> Any:
    """Poll ``check`` until it returns something true; that value. Fails naming ``what``."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")
        time.sleep(0.05)


class Engine:
    """One ``driftline serve`` process with its API on ``port`` (0: the free port serve
    picks, read from its log; a port chosen by the test could be taken before serve binds
    it); its log in a file (a pipe would fill up and stall a long-running process)."""

    def __init__(
        self, config: Path, port: int, *args: str, env: dict[str, str] | None = None
    ) -> None:
        self._port = port
        self.log = config.parent / f"serve-{time.monotonic_ns()}.log"
        with self.log.open("wb") as out:
            self.proc = subprocess.Popen(
                [*DRIFTLINE, "serve", "--config", str(config), *args],
                stdout=out,
                stderr=subprocess.STDOUT,
                env=env,
            )

    def text(self) -> str:
        return self.log.read_text(errors="replace")

    @property
    def base(self) -> str | None:
        """The API's address; None while serve has not logged it yet (port 0)."""
        if self._port:
            return f"http://127.0.0.1:{self._port}"
        return api_url(self.log)

    def get(self, path: str) -> tuple[int, Any]:
        """Status and JSON body of a GET; (0, None) when nothing answers."""
        base = self.base
        if base is None:
            return 0, None
        try:
            with urllib.request.urlopen(f"{base}{path}", timeout=5) as r:
                body = r.read()
                status = r.status
        except urllib.error.HTTPError as exc:
            body, status = exc.read(), exc.code
        except OSError:
            return 0, None
        try:
            return status, orjson.loads(body)
        except orjson.JSONDecodeError:
            return status, body.decode()

    def readyz(self) -> tuple[int, Any]:
        return self.get("/readyz")

    def metrics(self) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
        status, text = self.get("/metrics")
        assert status == 200, (status, text)
        out = {}
        for family in text_string_to_metric_families(text):
            for s in family.samples:
                out[(s.name, frozenset(s.labels.items()))] = s.value
        return out

    def metric(self, name: str, **labels: str) -> float:
        """The sum of the samples of ``name`` whose labels include ``labels`` (0 if none)."""
        want = set(labels.items())
        return sum(v for (n, ls), v in self.metrics().items() if n == name and want <= ls)

    def events(self) -> float:
        return self.metric("driftline_events_total")

    def wait_ready(self, timeout: float = 60.0) -> Any:
        def ready() -> Any:
            assert self.proc.poll() is None, self.text()[-3000:]
            status, body = self.readyz()
            return body if status == 200 else None

        return wait_for(ready, "/readyz to answer 200", timeout)

    def wait_events(self, n: int, timeout: float = 60.0) -> None:
        def done() -> bool:
            assert self.proc.poll() is None, self.text()[-3000:]
            return self.readyz()[0] != 0 and self.events() >= n

        wait_for(done, f"{n} events processed", timeout)
        assert self.events() == n

    def stop(self, timeout: float = 60.0) -> str:
        """SIGTERM; the log once it exited 0."""
        self.proc.send_signal(signal.SIGTERM)
        return self.finish(timeout)

    def finish(self, timeout: float = 120.0) -> str:
        self.proc.wait(timeout)
        assert self.proc.returncode == 0, self.text()[-3000:]
        return self.text()

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(30)


@contextmanager
def engine(config: Path, port: int, *args: str, **kw: Any) -> Iterator[Engine]:
    """An engine that is killed at the end of the block if it still runs (a failed test)."""
    e = Engine(config, port, *args, **kw)
    try:
        yield e
    finally:
        e.kill()


def setup(
    broker: str, name: str, data: Path, tmp_path: Path, extra: str = "", interval: str = "1s"
) -> tuple[dict[str, str], Path, int]:
    """Fresh topics (named fault-NAME: the session's broker is shared with
    tests/test_serve.py), and a config reading them with its API on a free port that serve
    picks (port 0, returned for :class:`Engine`)."""
    topics = topics_for(f"fault-{name}")
    create_topics(broker, topics.values())
    port = 0
    cfg = write_config(
        tmp_path / f"{name}.toml",
        broker,
        topics,
        data / "fraud.dlb",
        tmp_path / f"{name}-state",
        window=f"size = {WINDOW}",
        extra=extra,
        api=f"port = {port}",
    )
    text = cfg.read_text()
    cfg.write_text(text.replace('interval = "1s"', f'interval = "{interval}"'))
    return topics, cfg, port


def serving_events(data: Path, version: str = "7") -> list[dict[str, Any]]:
    return events(pq.read_table(data / "serving.parquet"), version=version)


def published(broker: str, topic: str, expected: int) -> dict[Key, Record]:
    """The records of a windows topic by (kind, source, window index); a record published
    twice (a crash between publishing and the checkpoint) must be identical both times."""
    out: dict[Key, Record] = {}
    for _, value, _ in read_all(broker, topic, expected):
        r = orjson.loads(value)
        key = (r["kind"], r["source"], r["window"]["index"])
        if key in out:
            assert out[key] == r, f"{key} published twice with different content"
        out[key] = r
    return out


def assert_replay(got: dict[Key, Record], want: list[Record], indices: range) -> None:
    """The skew records of windows ``indices`` are ``driftline replay``'s."""
    skew = {k[2]: r for k, r in got.items() if k[0] == "skew"}
    assert sorted(skew) == list(indices), sorted(skew)
    for i in indices:
        g, w = skew[i], want[i]
        assert g["window"]["count"] == w["window"]["count"] == WINDOW
        assert g["window"]["start"] == w["window"]["start"]
        assert g["features"] == w["features"], i
        assert g["prediction"] == w["prediction"], i
        assert g["dataset_drift"] == w["dataset_drift"], i
        assert g["observed_health"] == w["health"], i


def committed(broker: str, group: str, topic: str) -> int | None:
    """The offset the engine's group has committed on partition 0 of ``topic``."""
    c = KafkaConsumer(
        bootstrap_servers=broker,
        group_id=group,
        enable_auto_commit=False,
        allow_auto_create_topics=False,
    )
    try:
        return c.committed(TopicPartition(topic, 0))  # type: ignore[no-any-return]
    finally:
        c.close()


@pytest.fixture(scope="module")
def replayed(data: Path) -> list[Record]:
    """``driftline replay`` of the serving file in windows of 500: the records the engine
    must reproduce (the full windows; the test data set has 24)."""
    r = subprocess.run(
        [*DRIFTLINE, "replay", str(data / "serving.parquet"), "--baseline",
         str(data / "fraud.dlb"), "--window", str(WINDOW), "--time-column", "ts",
         "--format", "jsonl", "-q"],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    records = [json.loads(line) for line in r.stdout.splitlines()]
    # serve without a label topic publishes no performance records: compare the skew ones
    full = [rec for rec in records if rec["kind"] == "skew" and not rec["window"]["partial"]]
    assert [r["window"]["index"] for r in full] == list(range(24))
    return full


# -- kill -9 ------------------------------------------------------------------------------


KILLS = 10


def test_ten_kill_9_at_random_points_give_the_records_of_an_uninterrupted_run(
    broker: str, data: Path, tmp_path: Path
) -> None:
    """Events arrive steadily while the engine is killed ten times, each at a seeded random
    moment after it is ready (restoring, polling, closing a window, writing a checkpoint:
    wherever it is); a last run finishes the stream. Every record equals the one of an
    uninterrupted run over the same events, field by field."""
    evs = serving_events(data)
    n_records = 2 * (len(evs) // WINDOW) - 1
    plain_topics, plain_cfg, plain_port = setup(broker, "plain", data, tmp_path)
    produce_events(broker, plain_topics["inference"], evs)
    with engine(plain_cfg, plain_port, "--idle-exit", "2") as e:
        e.finish()
    plain = published(broker, plain_topics["windows"], n_records)
    assert len(plain) == n_records

    topics, cfg, port = setup(broker, "killed", data, tmp_path, interval="200ms")
    sent = 0
    stop = threading.Event()

    def feed() -> None:  # ~250 events/s: the stream lasts about as long as the kills
        nonlocal sent
        p = producer(broker)
        try:
            for i in range(0, len(evs), 125):
                chunk = evs[i : i + 125]
                for ev in chunk:
                    p.send(topics["inference"], orjson.dumps(ev), key=b"fraud",
                           headers=[("content-type", b"application/json")])  # fmt: skip
                p.flush()
                sent += len(chunk)
                if stop.wait(0.5):
                    break
        finally:
            p.close()

    feeder = threading.Thread(target=feed, daemon=True)
    feeder.start()
    rng = random.Random(20260808)
    kills: list[tuple[float, float, int]] = []  # (delay after ready, events processed, sent)
    try:
        while len(kills) < KILLS:
            e = Engine(cfg, port)
            try:
                e.wait_ready()
                delay = rng.uniform(0.0, 2.0)
                time.sleep(delay)  # the random kill point, not a synchronisation
                processed = e.events()
                e.proc.send_signal(signal.SIGKILL)
            finally:
                e.kill()
            assert e.proc.returncode == -signal.SIGKILL, e.text()[-3000:]
            kills.append((delay, processed, sent))
        feeder.join(120)
    finally:
        stop.set()
    assert sent == len(evs)
    with engine(cfg, port, "--idle-exit", "3") as e:
        e.finish()
    got = published(broker, topics["windows"], n_records)
    assert got.keys() == plain.keys()
    for key, record in plain.items():
        assert got[key] == record, key
    assert len(kills) == KILLS
    # killed mid-stream: events were still arriving, at different points of the stream, and
    # the engine had processed some of them (a kill during start-up alone would prove less).
    # Events processed per run are counted per process and come in the feeder's chunks of
    # 125, so equal counts in two runs are expected and say nothing about the kill point.
    mid_stream = [k for k in kills if k[2] < len(evs)]
    assert len(mid_stream) >= KILLS // 2, kills
    assert len({k[2] for k in mid_stream}) >= KILLS // 2, kills
    assert sum(k[1] > 0 for k in kills) >= KILLS // 2, kills


# -- the state directory ------------------------------------------------------------------


@contextmanager
def immutable(path: Path) -> Iterator[None]:
    """``path`` (a directory) refuses new entries and renames, even to root."""
    if shutil.which("chattr") is None:
        missing_service("chattr (e2fsprogs) is needed to make a directory unwritable to root")
    subprocess.run(["chattr", "+i", str(path)], check=True)
    try:
        yield
    finally:
        subprocess.run(["chattr", "-i", str(path)], check=True)


def test_unwritable_state_dir_stops_commits_and_readiness_until_it_is_writable(
    broker: str, data: Path, replayed: list[Record], tmp_path: Path
) -> None:
    """The checkpoint cannot be written: the engine goes on processing, counts the failed
    checkpoints, answers /readyz 503 naming the state, and commits no offset (the committed
    offset stays where the last checkpoint was). Writable again, the next checkpoint is
    written, offsets are committed, it is ready; every record equals replay's."""
    topics, cfg, port = setup(broker, "state", data, tmp_path, interval="500ms")
    state = tmp_path / "state-state"
    group = f"g-{tmp_path.name}"
    evs = serving_events(data)
    produce_events(broker, topics["inference"], evs[:6000])
    with engine(cfg, port) as e:
        e.wait_ready()
        e.wait_events(6000)
        wait_for(lambda: committed(broker, group, topics["inference"]) == 6000, "commit of 6000")
        before = e.metric("driftline_checkpoints_total")
        assert e.metric("driftline_checkpoint_failures_total") == 0

        with immutable(state):
            produce_events(broker, topics["inference"], evs[6000:9000])
            e.wait_events(9000)
            wait_for(
                lambda: e.metric("driftline_checkpoint_failures_total") >= 3,
                "three failed checkpoints",
            )
            status, body = e.readyz()
            assert status == 503 and body["ready"] is False, body
            assert any(
                r.startswith("state: cannot write the checkpoint") for r in body["reasons"]
            ), body
            assert e.metric("driftline_ready") == 0
            assert e.proc.poll() is None
            assert committed(broker, group, topics["inference"]) == 6000  # no commit
            failed_at = e.metric("driftline_checkpoints_total")

        body = e.wait_ready(30)  # writable again: the next checkpoint is written
        assert body == {"ready": True, "reasons": []}
        assert e.metric("driftline_checkpoints_total") > failed_at >= before
        wait_for(lambda: committed(broker, group, topics["inference"]) == 9000, "commit of 9000")
        produce_events(broker, topics["inference"], evs[9000:])
        e.wait_events(12_000)
        log = e.stop()
    assert "checkpoint failed, offsets not committed" in log
    assert "checkpoint written again" in log
    got = published(broker, topics["windows"], 47)
    assert_replay(got, replayed, range(24))
    assert committed(broker, group, topics["inference"]) == 12_000


# -- SIGTERM during a window close --------------------------------------------------------


def test_sigterm_during_a_window_close_drains_and_the_restart_finishes_the_stream(
    broker: str, data: Path, replayed: list[Record], tmp_path: Path
) -> None:
    """The first health change of a window close writes the registry, whose database another
    writer holds locked: the close waits there, and SIGTERM comes then. The engine finishes
    the window (the lock is let go), drains, writes its checkpoint and exits 0; a restart
    processes the rest. Records equal replay's, none published twice with other content,
    and the registry holds the health the engine ended with."""
    registry = tmp_path / "reg.db"
    topics, cfg, port = setup(
        broker, "term", data, tmp_path, extra=f"[registry]\nurl = 'sqlite:///{registry}'\n"
    )
    evs = serving_events(data)
    with engine(cfg, port) as e:
        e.wait_ready()  # the registry file exists now
        holder = sqlite3.connect(registry, isolation_level=None, timeout=30)
        holder.execute("BEGIN EXCLUSIVE")  # e.g. an operator's `driftline registry alias`
        try:
            produce_events(broker, topics["inference"], evs)
            wait_for(lambda: "health ok -> " in e.text(), "a health change")
            # the close logs the change, then writes the registry: it waits on the lock
            windows = e.metric("driftline_windows_total")
            e.proc.send_signal(signal.SIGTERM)
            wait_for(lambda: "SIGTERM: draining" in e.text(), "the signal taken")
            time.sleep(1.0)  # the lock stays held a while after the signal
            assert e.proc.poll() is None, e.text()[-3000:]  # still inside the window close
            assert e.metric("driftline_windows_total") == windows
        finally:
            holder.execute("ROLLBACK")
            holder.close()
        log = e.finish(60)
    assert "drained: checkpoint written and offsets committed" in log
    first_run = published(broker, topics["windows"], 1)
    assert first_run, "nothing published before the drain"
    with engine(cfg, port, "--idle-exit", "3") as e:
        e.finish()
    got = published(broker, topics["windows"], 47)
    assert_replay(got, replayed, range(24))
    for key, record in first_run.items():
        assert got[key] == record
    changes = [r["health_change"]["to"] for k, r in sorted(got.items()) if "health_change" in r]
    reg = SqliteRegistry(registry)
    try:
        tags = reg.model("fraud").versions[0].tags
    finally:
        reg.close()
    last = max((k for k in got if k[0] == "skew" and "health_change" in got[k]), key=lambda k: k[2])
    assert changes and tags[HEALTH_TAG] == got[last]["health_change"]["to"]


# -- the broker ---------------------------------------------------------------------------


def test_broker_killed_and_restarted_empty_the_engine_reconnects_and_reports_the_gap(
    data: Path, replayed: list[Record], tmp_path: Path
) -> None:
    """The broker is killed after the engine has processed 6,000 events, and a new one, with
    nothing of the old one's data (this broker keeps data in memory), starts on the same
    port. Meanwhile the engine fails its offset commits and says so in /readyz and
    /metrics; afterwards its position (6,000) is out of range of the new topic (3,000
    events): it resets to the earliest offset (``kafka.auto_offset_reset``), counts the gap
    in ``driftline_offset_resets_total``, names it in /readyz, and goes on. Its producer,
    failed for good with the old broker, is replaced and sends again. Windows 0-11 (before)
    and 12-17 (after) equal replay's: the state lost nothing across the broker's loss."""
    port = free_port()
    evs = serving_events(data)
    topics = topics_for("fault-restart")
    bootstrap = f"127.0.0.1:{port}"
    cfg = write_config(
        tmp_path / "restart.toml", bootstrap, topics, data / "fraud.dlb", tmp_path / "state",
        window=f"size = {WINDOW}", api="port = 0",
    )  # fmt: skip
    group = f"g-{tmp_path.name}"
    with ExitStack() as running:
        with tansu(tmp_path / "broker-1.log", port=port):
            create_topics(bootstrap, topics.values())
            produce_events(bootstrap, topics["inference"], evs[:6000])
            # started once its topics exist (else it exits 2 naming them), and it outlives
            # this broker
            e = running.enter_context(engine(cfg, 0))
            e.wait_ready()
            e.wait_events(6000)
            wait_for(lambda: committed(bootstrap, group, topics["inference"]) == 6000, "commit")
            before = published(bootstrap, topics["windows"], 23)
        # the broker is gone (SIGKILL): the engine stays up and says what is wrong
        _, body = wait_for(
            lambda: (r := e.readyz())[0] == 503 and r, "/readyz 503 without the broker"
        )
        assert any(r.startswith("kafka: offsets not committed") for r in body["reasons"]), body
        assert e.metric("driftline_offset_commit_failures_total") >= 1
        assert e.proc.poll() is None
        with tansu(tmp_path / "broker-2.log", port=port):
            create_topics(bootstrap, topics.values())  # what an operator recreates
            produce_events(bootstrap, topics["inference"], evs[6000:9000])
            resets = {"topic": topics["inference"], "partition": "0"}
            wait_for(
                lambda: e.metric("driftline_offset_resets_total", **resets) == 1,
                "the offset reset counted",
                timeout=90,
            )
            e.wait_events(9000, timeout=60)
            body = e.wait_ready(60)  # commits work again; the gap is named, still ready
            gap = f"kafka {topics['inference']}/0: offset 6000 out of range"
            assert any(r.startswith(gap) for r in body["reasons"]), body
            after = published(bootstrap, topics["windows"], 11)
            log = e.stop()
    assert "reset to the earliest offset" in log
    assert_replay(before, replayed, range(12))
    assert_replay(after, replayed, range(12, 18))


# -- the webhook receiver and MLflow ------------------------------------------------------


def test_webhook_receiver_and_mlflow_down_and_back(
    broker: str, data: Path, replayed: list[Record], tmp_path: Path, mlflow_exe: Path
) -> None:
    """The on-call webhook and the MLflow registry are both down while health changes; the
    engine keeps processing and stays ready. When they are back, every alert arrives once
    (the set the health changes call for, signed), and MLflow's health tag of the version
    is the engine's latest health, though it changed while MLflow was down."""
    store, mlflow_port = tmp_path / "mlflow", free_port()
    store.mkdir()
    hook = HookServer(secret=b"hook-secret")  # not up: connections are refused
    with mlflow_server(mlflow_exe, store, port=mlflow_port) as address:
        reg = MlflowRegistry(f"mlflow+{address}?timeout=2")
        register(reg, "fraud", "1", data / "fraud.dlb")
        reg.close()
    extra = (
        f"[registry]\nurl = 'mlflow+{address}?timeout=2'\nbaseline_dirs = ['{data}']\n"
        "[health]\nhysteresis = 1\n"
        "[alerts]\nretry_base = '0.2s'\nretry_cap = '1s'\n[[alerts.receivers]]\n"
        f"name = 'oncall'\nurl = '{hook.url}'\nsecret_env = 'HOOK_SECRET'\n"
    )
    topics, cfg, port = setup(broker, "hooks", data, tmp_path, extra=extra)
    env = {**os.environ, "HOOK_SECRET": "hook-secret"}
    evs = serving_events(data, version="1")
    with engine(cfg, port, env=env) as e:
        with mlflow_server(mlflow_exe, store, port=mlflow_port) as address:
            e.wait_ready()
            produce_events(broker, topics["inference"], evs[:WINDOW])
            e.wait_events(WINDOW)  # the baseline found through MLflow, window 0 closed
            reg = MlflowRegistry(f"mlflow+{address}")
            try:
                first = wait_for(lambda: reg.model("fraud").versions[0].tags, "window 0's tags")
            finally:
                reg.close()
        # MLflow is down now (stopped), and the webhook receiver is not up
        produce_events(broker, topics["inference"], evs[WINDOW:])
        e.wait_events(len(evs))
        got = published(broker, topics["windows"], 47)
        skew = [got[k] for k in sorted(got) if k[0] == "skew"]
        changes = [r["health_change"] for r in skew if "health_change" in r]
        late = [r for r in skew[1:] if "health_change" in r]
        assert late, "no health change while MLflow was down: the test proves nothing"
        alerts = [orjson.loads(v) for _, v, _ in read_all(broker, topics["alerts"], len(changes))]
        assert [a["health"] for a in alerts] == [c["to"] for c in changes]
        wait_for(lambda: e.metric("driftline_alerts_total", state="retried") >= 2, "alerts retried")
        wait_for(lambda: "health not written to the registry" in e.text(), "a failed write")
        assert e.readyz()[0] == 200  # neither is needed to be ready
        assert e.metric("driftline_alerts_total", state="delivered") == 0
        with mlflow_server(mlflow_exe, store, port=mlflow_port) as address:
            hook.up()
            try:
                ids = {a["id"] for a in alerts}
                wait_for(lambda: set(hook.delivered()) == ids, "every alert delivered")
                reg = MlflowRegistry(f"mlflow+{address}")
                try:
                    # the latest change, made while MLflow was down (retried writes may
                    # pass through the earlier ones first)
                    latest = changes[-1]["to"]
                    tags = wait_for(
                        lambda: (
                            (t := reg.model("fraud").versions[0].tags) != first
                            and t.get(HEALTH_TAG) == latest
                            and t
                        ),
                        "MLflow's health tags brought up to date",
                    )
                finally:
                    reg.close()
                wait_for(
                    lambda: e.metric("driftline_alerts_total", state="delivered") == len(ids),
                    "the deliveries counted",
                )
                e.stop()
                delivered = hook.delivered()
                received = hook.received()
            finally:
                hook.down()
    assert tags[HEALTH_TAG] == changes[-1]["to"]
    assert set(delivered) == ids and set(delivered.values()) == {1}  # once each
    assert all(r.signed for r in received)
    assert [r.json()["id"] for r in received if r.answered == 200] == [a["id"] for a in alerts]  # type: ignore[index]
    assert_replay(got, replayed, range(24))


def test_a_restart_while_mlflow_is_down_waits_not_ready_and_resumes_once_it_is_back(
    broker: str, data: Path, replayed: list[Record], tmp_path: Path, mlflow_exe: Path
) -> None:
    """The checkpoint's version has its baseline through MLflow, and MLflow is down when the
    engine starts again: the engine waits, not ready, with the registry as the reason. A
    SIGTERM then exits 0 and leaves the checkpoint as it was. Started again, it resumes
    once MLflow is back, and the records over the whole run are replay's."""
    store, mlflow_port = tmp_path / "mlflow", free_port()
    store.mkdir()
    url = f"mlflow+http://127.0.0.1:{mlflow_port}?timeout=1"
    extra = f"[registry]\nurl = '{url}'\nretry = '2s'\nbaseline_dirs = ['{data}']\n"
    topics, cfg, port = setup(broker, "registry-restart", data, tmp_path, extra=extra)
    checkpoint = tmp_path / "registry-restart-state" / "checkpoint.zip"
    evs = serving_events(data, version="1")
    half = 10 * WINDOW + WINDOW // 2  # window 10 open at the stop
    with mlflow_server(mlflow_exe, store, port=mlflow_port) as address:
        reg = MlflowRegistry(f"mlflow+{address}")
        register(reg, "fraud", "1", data / "fraud.dlb")
        reg.close()
        with engine(cfg, port) as e:
            e.wait_ready()
            produce_events(broker, topics["inference"], evs[:half])
            e.wait_events(half)
            e.stop()
    saved = checkpoint.read_bytes()
    # MLflow is down now
    with engine(cfg, port) as e:

        def waiting() -> Any:
            status, body = e.readyz()
            return status == 503 and any(r.startswith("registry: ") for r in body["reasons"])

        wait_for(waiting, "/readyz 503 with the registry as the reason")
        log = e.stop()
    assert "cannot resume yet, the checkpoint's baselines" in log
    assert "stopped before resuming" in log
    assert checkpoint.read_bytes() == saved
    with engine(cfg, port) as e:
        wait_for(waiting, "/readyz 503 with the registry as the reason, again")
        with mlflow_server(mlflow_exe, store, port=mlflow_port):
            e.wait_ready()
            produce_events(broker, topics["inference"], evs[half:])
            e.wait_events(len(evs) - half)
            e.stop()
    assert "resumed from the checkpoint" in e.text()
    got = published(broker, topics["windows"], 47)
    assert_replay(got, replayed, range(24))
