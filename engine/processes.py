"""Child processes the CLI starts (the demo's engine) and stops."""

from __future__ import annotations

import signal
import subprocess
from typing import Any


def stop(proc: subprocess.Popen[Any], timeout: float) -> None:
    """SIGTERM (a drain), then SIGKILL if ``proc`` has not exited within ``timeout``
    seconds; reaped either way. Nothing happens to a process that has already exited."""
    if proc.poll() is not None:
        return
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
