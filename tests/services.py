"""Real services for tests: what to do when one is not installed, starting one and waiting
for it, and screenshots in headless Chromium."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest
from numpy.typing import NDArray

from driftline.processes import stop


def missing_service(reason: str) -> None:
    """Skip the test here, or fail it in CI (``DRIFTLINE_REQUIRE_SERVICES=1``, set by
    ``.ci/run``), where every service must be present."""
    if os.environ.get("DRIFTLINE_REQUIRE_SERVICES") == "1":
        pytest.fail(f"required test service missing: {reason}")
    pytest.skip(reason)


@contextmanager
def running(
    argv: list[str],
    log: Path,
    ready_url: str,
    what: str,
    timeout: float = 30.0,
    *,
    env: dict[str, str] | None = None,
    stop_timeout: float = 10.0,
) -> Iterator[subprocess.Popen[bytes]]:
    """Run a service (its output to ``log``) until the block ends; enter once ``ready_url``
    answers 200. Terminated at the end, killed if it does not stop within ``stop_timeout``."""
    with log.open("wb") as out:
        proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, env=env)
    try:
        deadline = time.monotonic() + timeout
        while True:
            try:
                with urllib.request.urlopen(ready_url, timeout=1) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"{what} did not start: {log.read_text()[-2000:]}")
            time.sleep(0.05)
        yield proc
    finally:
        stop(proc, stop_timeout)


CHROMIUM_APT = "apt-get install -y --no-install-recommends chromium"


def screenshot(url: str, path: Path, width: int, height: int) -> NDArray[np.int16]:
    """``url`` rendered by Debian's headless Chromium into the PNG ``path``; its pixels as an
    (n, 3) RGB array. Skips (or fails in CI) without Chromium."""
    from PIL import Image

    binary = shutil.which("chromium")
    if binary is None:
        missing_service(f"Chromium is not installed (CI: {CHROMIUM_APT})")
    assert binary is not None
    with tempfile.TemporaryDirectory() as profile:
        r = subprocess.run(
            [
                binary,
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",  # else this closed network refuses many
                "--disable-component-update",
                "--disable-sync",
                f"--user-data-dir={profile}",
                f"--window-size={width},{height}",
                f"--screenshot={path}",
                url,
            ],
            capture_output=True,
            timeout=120,
        )
    assert r.returncode == 0 and path.exists(), r.stderr[-2000:]
    image = Image.open(path).convert("RGB")
    assert image.size == (width, height)
    return np.asarray(image, dtype=np.int16).reshape(-1, 3)


def colours(pixels: NDArray[np.int16]) -> int:
    """How many distinct colours (a blank page has one or two)."""
    return len(np.unique(pixels, axis=0))


def near(pixels: NDArray[np.int16], rgb: tuple[int, int, int], tolerance: int = 10) -> int:
    """How many pixels are within ``tolerance`` of ``rgb`` in every channel."""
    return int((np.abs(pixels - rgb) < tolerance).all(axis=1).sum())
