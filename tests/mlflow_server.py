"""A real MLflow tracking server for tests (``pip install -e '.[registry-test]'``).

Started on a free loopback port with a SQLite backend store in a temporary directory, one
worker and no background jobs; it answers ``/health`` after ~10-20 s (database migrations
on first start). It runs in its own process group (uvicorn is its child), which is
terminated at the end. See ../shared/TEST-SERVICES.md ("MLflow Model Registry").
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

from brokers import free_port

START_TIMEOUT = 90.0
"""Seconds to wait for /health: ~15 s is usual, a loaded CI machine takes longer."""


MLFLOW_VENV = Path(__file__).resolve().parent.parent / ".venv-mlflow"
"""Where ``make test`` installs the MLflow server: a virtualenv of its own, since MLflow
pins versions (pyarrow among them) that driftline's own environment need not share."""


def mlflow_executable() -> Path | None:
    """``$DRIFTLINE_MLFLOW``, else the ``mlflow`` of ``.venv-mlflow``, else the one next to
    this Python, else the one on PATH."""
    candidates = [os.environ.get("DRIFTLINE_MLFLOW"), MLFLOW_VENV / "bin" / "mlflow"]
    candidates.append(str(Path(sys.executable).parent / "mlflow"))
    for c in candidates:
        if c and Path(c).is_file() and os.access(c, os.X_OK):
            return Path(c)
    found = shutil.which("mlflow")
    return None if found is None else Path(found)


@contextmanager
def mlflow_server(executable: Path, directory: Path, port: int | None = None) -> Iterator[str]:
    """Run ``mlflow server`` with its store in ``directory`` on ``port`` (default: a free
    one; the same port and directory again bring a stopped server back); yield its http://
    address."""
    port = port or free_port()
    address = f"http://127.0.0.1:{port}"
    log = directory / "mlflow.log"
    command = [
        str(executable),
        "server",
        "--backend-store-uri",
        f"sqlite:///{directory / 'mlflow.db'}",
        "--default-artifact-root",
        str(directory / "artifacts"),
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--workers",
        "1",
    ]
    # the registry needs no background jobs: without them, no job runner and its consumers
    env = {**os.environ, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}
    with log.open("wb") as out:
        proc = subprocess.Popen(
            command,
            stdout=out,
            stderr=subprocess.STDOUT,
            cwd=directory,
            env=env,
            start_new_session=True,
        )
    try:
        deadline = time.monotonic() + START_TIMEOUT
        while not _healthy(address):
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(
                    f"mlflow server did not answer {address}/health within {START_TIMEOUT:g} s: "
                    f"{log.read_text(errors='replace')[-3000:]}"
                )
            time.sleep(0.2)
        _warm(address)
        yield address
    finally:
        _stop(proc)


def _warm(address: str) -> None:
    """One registry request with a long timeout: /health answers before the server has
    built its model-registry store (on the first registry request, a schema check), which
    would make a test's first request, with a client timeout of 1-2 s, time out."""
    url = f"{address}/api/2.0/mlflow/registered-models/search?max_results=1"
    with urllib.request.urlopen(url, timeout=60) as response:
        response.read()


def _healthy(address: str) -> bool:
    try:
        with urllib.request.urlopen(f"{address}/health", timeout=1) as response:
            return response.status == 200
    except OSError:
        return False


def _stop(proc: subprocess.Popen[bytes]) -> None:
    """SIGTERM to the server's process group; then SIGKILL to whatever of it is left."""
    for sig, wait in ((signal.SIGTERM, 10.0), (signal.SIGKILL, 5.0)):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            break
        with suppress(subprocess.TimeoutExpired):
            proc.wait(wait)
