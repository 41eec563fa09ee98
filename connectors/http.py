"""The HTTP server of ``driftline serve``: uvicorn running the API app in a thread."""

from __future__ import annotations

import logging
import socket
import threading
import time
from typing import Any

import uvicorn

from driftline.exceptions import ConfigError

log = logging.getLogger("driftline.http")


class HttpServer:
    """Binds ``host:port`` at construction (so a taken port fails the start with a clear
    error, and port 0 is resolved), serves ``app`` from :meth:`start` until :meth:`stop`."""

    def __init__(self, app: Any, host: str, port: int) -> None:
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self.sock = socket.socket(family, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            self.sock.bind((host, port))
        except OSError as exc:
            self.sock.close()
            raise ConfigError(f"api: cannot listen on {host}:{port}: {exc.strerror}") from None
        self.host = host
        self.port: int = self.sock.getsockname()[1]
        config = uvicorn.Config(
            app, log_level="warning", lifespan="off", access_log=False, timeout_graceful_shutdown=2
        )
        self.server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._run, name="driftline-http", daemon=True)

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    def _run(self) -> None:
        self.server.run(sockets=[self.sock])

    def start(self, timeout: float = 10.0) -> None:
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not self.server.started and self._thread.is_alive():
            if time.monotonic() > deadline:
                break
            time.sleep(0.01)
        log.info("API on %s (status page /, OpenAPI /docs, metrics /metrics)", self.url)

    def stop(self) -> None:
        self.server.should_exit = True
        self._thread.join(timeout=5.0)
        self.sock.close()
