"""A background thread that works in passes: the alert dispatcher and the action executor.

Each pass runs :meth:`Passes.run_once`; the thread then sleeps until the earliest
:meth:`Passes.next_due` or ``poll_interval`` (work that another process stores is seen by
polling), and wakes at once when :meth:`Passes.wake` is called (the store's listener: work
stored by this process). A pass that raises is logged and the next one runs: the thread
outlives a bad pass (disk full, a bug).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

log = logging.getLogger("driftline.background")


class Passes:
    WHAT = "background thread"
    """For thread names and messages."""

    def __init__(self, poll_interval: float, clock: Callable[[], float] = time.time) -> None:
        self.poll_interval = poll_interval
        self.clock = clock
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None

    def run_once(self) -> int:
        raise NotImplementedError

    def next_due(self) -> float | None:
        """When work is due next (None: nothing waiting)."""
        return None

    def after_pass(self) -> None:
        """Called on the thread after every pass."""

    def wake(self) -> None:
        self._wake.set()

    @property
    def stopping(self) -> bool:
        return self._stopping.is_set()

    def start(self) -> None:
        if self._thread is not None:
            raise RuntimeError(f"the {self.WHAT} is already running")
        self._stopping.clear()
        name = "driftline-" + self.WHAT.replace(" ", "-")
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def stop(self, timeout: float | None = None) -> None:
        """Stop after the pass in flight; wait for the thread (up to ``timeout`` seconds)."""
        thread, self._thread = self._thread, None
        if thread is None:
            return
        self._stopping.set()
        self._wake.set()
        thread.join(timeout)
        if thread.is_alive():
            log.warning("the %s did not stop within %s s", self.WHAT, timeout)

    def _run(self) -> None:
        while not self._stopping.is_set():
            wait = self.poll_interval
            try:
                self.run_once()
                due = self.next_due()
                if due is not None:
                    wait = min(wait, max(0.0, due - self.clock()))
            except Exception:
                log.exception("%s: pass failed; next in %s s", self.WHAT, self.poll_interval)
            self.after_pass()
            if wait > 0:
                self._wake.wait(wait)
            self._wake.clear()
