"""What ``driftline serve`` publishes when Kafka is off (``[kafka] enabled = false``):
JSON lines appended to files under ``<state.dir>/out/``.

- ``windows.jsonl``: the window records (the output contract of the ``windows`` topic);
- ``alerts.jsonl``: alerts in driftline's JSON format;
- ``actions.jsonl``: actions (what the ``actions`` topic would carry);
- ``dead-letter.jsonl``: ``{"code", "reason", "origin", "value"}`` per refused event, the
  value as UTF-8 text where it decodes, else base64 (``"value_base64"``).

:meth:`JsonlSink.flush` writes and fsyncs the files: the checkpoint is written after it, so
every record the state covers is on disk.
"""

from __future__ import annotations

import base64
import os
import threading
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

import orjson

from driftline.output import jsonl

if TYPE_CHECKING:
    from driftline.engine import Origin
    from driftline.events import DeadLetter

FILES = ("windows", "alerts", "actions", "dead-letter")


class JsonlSink:
    """The engine's sink (window records, dead letters), the alerts' and the actions'."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        directory.mkdir(parents=True, exist_ok=True)
        self._files: dict[str, IO[bytes]] = {
            name: (directory / f"{name}.jsonl").open("ab") for name in FILES
        }
        self._lock = threading.Lock()  # alerts and actions come from other threads

    def _write(self, name: str, line: bytes) -> None:
        with self._lock:
            self._files[name].write(line)

    def publish(self, record: dict[str, Any]) -> None:
        self._write("windows", jsonl(record))

    def publish_alert(self, fingerprint: str, alert: dict[str, Any]) -> None:
        self._write("alerts", jsonl(alert))

    def publish_action(self, key: str, document: bytes, timeout: float = 30.0) -> None:
        """One action, on disk (fsynced) when this returns: the executor records the step
        as done only then."""
        with self._lock:
            f = self._files["actions"]
            f.write(document.rstrip(b"\n") + b"\n")
            f.flush()
            os.fsync(f.fileno())

    def dead_letter(self, letter: DeadLetter, origin: Origin) -> None:
        doc: dict[str, Any] = {
            "code": letter.code,
            "reason": letter.reason,
            "origin": f"{origin.topic}/{origin.partition}/{origin.offset}",
        }
        try:
            doc["value"] = letter.value.decode("utf-8")
        except UnicodeDecodeError:
            doc["value_base64"] = base64.b64encode(letter.value).decode("ascii")
        self._write("dead-letter", orjson.dumps(doc) + b"\n")

    def flush(self) -> None:
        with self._lock:
            for f in self._files.values():
                f.flush()
                os.fsync(f.fileno())

    def close(self) -> None:
        self.flush()
        with self._lock:
            for f in self._files.values():
                f.close()


class NoSource:
    """The source of a serve without Kafka: nothing to poll (events arrive through
    ``POST /v1/events``), nothing to commit. Ready at once: it owns no partitions."""

    def __init__(self, *, on_revoked: Any = None, on_assigned: Any = None) -> None:
        self._on_assigned = on_assigned
        self._wake = threading.Event()

    def start(self) -> None:
        if self._on_assigned is not None:
            self._on_assigned(set(), {}).result()

    def poll(self, timeout_ms: int) -> list[Any]:
        self._wake.wait(timeout_ms / 1000)
        return []

    def highwaters(self) -> dict[tuple[str, int], int]:
        return {}

    def commit(self, positions: Any) -> bool:
        return True

    def close(self) -> None:
        self._wake.set()
