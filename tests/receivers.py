"""Real alert receivers for tests: an HTTP server in a thread (``HookServer``) and Debian's
Alertmanager binary (``alertmanager``). No HTTP is mocked.

``HookServer`` listens on a fixed loopback port, so it can be taken down (connections are
refused) and brought back on the same port; it checks every request's signature, answers
with scripted statuses (200 once the script is used up) and counts the requests it answered
2xx per ``Idempotency-Key``.
"""

from __future__ import annotations

import shutil
import threading
import time
from collections import Counter, deque
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import orjson
from brokers import free_port
from services import missing_service, running

from driftline.connectors.webhooks import verify_signature

ALERTMANAGER_BINARIES = ("prometheus-alertmanager", "alertmanager")
ALERTMANAGER_APT = "apt-get install -y --no-install-recommends prometheus-alertmanager"


@dataclass(frozen=True)
class Answer:
    status: int = 200
    body: bytes = b"ok"
    headers: tuple[tuple[str, str], ...] = ()
    delay: float = 0.0
    """Seconds to wait before answering (a slow receiver, for timeouts)."""


@dataclass(frozen=True)
class Request:
    path: str
    headers: dict[str, str]
    body: bytes
    signed: bool
    """The signature header verifies against the server's secret (True when no secret)."""
    answered: int
    at: float
    """When the request arrived (before any scripted delay)."""

    @property
    def key(self) -> str:
        return self.headers.get("Idempotency-Key", "")

    def json(self) -> object:
        return orjson.loads(self.body)


class HookServer:
    def __init__(self, secret: bytes | None = None, port: int | None = None) -> None:
        self.secret = secret
        self.port = port if port is not None else free_port()
        self.requests: list[Request] = []
        self.script: deque[Answer] = deque()
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"

    def answer(self, *answers: Answer) -> None:
        with self._lock:
            self.script.extend(answers)

    def delivered(self) -> Counter[str]:
        """Requests answered 2xx, per Idempotency-Key."""
        with self._lock:
            return Counter(r.key for r in self.requests if 200 <= r.answered < 300)

    def received(self) -> list[Request]:
        """Every request, in the order they arrived."""
        with self._lock:
            return sorted(self.requests, key=lambda r: r.at)

    def _next(self) -> Answer:
        with self._lock:
            return self.script.popleft() if self.script else Answer()

    def _record(self, request: Request) -> None:
        with self._lock:
            self.requests.append(request)

    def up(self) -> HookServer:
        hook = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                headers = dict(self.headers.items())
                signed = hook.secret is None or verify_signature(
                    hook.secret, body, headers.get("X-Driftline-Signature")
                )
                arrived = time.time()
                answer = hook._next()
                if answer.delay:
                    time.sleep(answer.delay)
                status = answer.status if signed else 401
                hook._record(Request(self.path, headers, body, signed, status, arrived))
                self.send_response(status)
                for name, value in answer.headers:
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(answer.body)))
                self.end_headers()
                self.wfile.write(answer.body)

            def log_message(self, format: str, *args: object) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()
        return self

    def down(self) -> None:
        if self._server is None:
            return
        self._server.shutdown()
        self._server.server_close()
        assert self._thread is not None
        self._thread.join(5)
        self._server = self._thread = None

    def __enter__(self) -> HookServer:
        return self.up()

    def __exit__(self, *exc: object) -> None:
        self.down()


def alertmanager_binary() -> str | None:
    for name in ALERTMANAGER_BINARIES:
        found = shutil.which(name)
        if found:
            return found
    return None


_AM_CONFIG = """\
route:
  receiver: default
  group_wait: 1s
receivers:
  - name: default
"""


@contextmanager
def alertmanager(workdir: Path) -> Iterator[str]:
    """Run Alertmanager on a free loopback port; yield its base URL. Skips the test when the
    binary is not installed."""
    binary = alertmanager_binary()
    if binary is None:
        missing_service(f"Alertmanager is not installed (CI: {ALERTMANAGER_APT})")
    workdir.mkdir(parents=True, exist_ok=True)
    config = workdir / "alertmanager.yml"
    config.write_text(_AM_CONFIG)
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    argv = [
        binary,
        f"--config.file={config}",
        f"--storage.path={workdir / 'data'}",
        f"--web.listen-address=127.0.0.1:{port}",
        "--cluster.listen-address=",
    ]
    with running(argv, workdir / "alertmanager.log", f"{base}/-/ready", "Alertmanager", 15):
        yield base
