"""One SQLite file of durable state (the alert outbox, the action store): opened with a WAL
journal and ``synchronous=FULL`` (a committed transaction survives a power cut), its schema
created or checked, shared between threads under one lock, and SQLite's errors turned into
driftline's (:class:`~driftline.exceptions.DriftlineError` subclasses naming the file)."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from driftline.exceptions import DriftlineError


class SqliteFile:
    """Subclasses set ``WHAT`` (for messages), ``ERROR``, ``SCHEMA`` and ``SCHEMA_VERSION``.
    Several processes may open the same file; a file written by a newer driftline (a higher
    ``user_version``) is refused."""

    WHAT = "state file"
    ERROR: type[DriftlineError] = DriftlineError
    SCHEMA = ""
    SCHEMA_VERSION = 1

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._lock = threading.RLock()
        self._listeners: list[Callable[[], None]] = []
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(
                self.path, timeout=30.0, isolation_level=None, check_same_thread=False
            )
        except (sqlite3.Error, OSError) as exc:
            raise self.ERROR(f"{self.path}: cannot open the {self.WHAT}: {exc}") from None
        try:
            version = self._db.execute("PRAGMA user_version").fetchone()[0]
            if version > self.SCHEMA_VERSION:
                raise self.ERROR(
                    f"{self.path}: the {self.WHAT} is from a newer driftline (schema "
                    f"{version}, this one reads {self.SCHEMA_VERSION}); upgrade driftline"
                )
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=FULL")
            self._db.executescript(self.SCHEMA)
            self._db.execute(f"PRAGMA user_version={self.SCHEMA_VERSION}")
        except sqlite3.Error as exc:
            self._db.close()
            raise self.ERROR(f"{self.path}: cannot open the {self.WHAT}: {exc}") from None
        except DriftlineError:
            self._db.close()
            raise

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def subscribe(self, listener: Callable[[], None]) -> None:
        """Call ``listener`` whenever this process stores work for a background thread (the
        thread then wakes at once, instead of at its next poll)."""
        self._listeners.append(listener)

    def _notify(self) -> None:
        for listener in self._listeners:
            listener()

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        """One write transaction (taken at once: ``BEGIN IMMEDIATE``)."""
        with self._lock:
            try:
                self._db.execute("BEGIN IMMEDIATE")
                try:
                    yield self._db
                except BaseException:
                    self._db.execute("ROLLBACK")
                    raise
                self._db.execute("COMMIT")
            except sqlite3.Error as exc:
                raise self.ERROR(f"{self.path}: {self.WHAT}: {exc}") from None

    def _read(self, sql: str, args: Sequence[object] = ()) -> list[Any]:
        with self._lock:
            try:
                return self._db.execute(sql, args).fetchall()
            except sqlite3.Error as exc:
                raise self.ERROR(f"{self.path}: {self.WHAT}: {exc}") from None
