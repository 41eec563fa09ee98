"""The durable alert outbox: one SQLite file (WAL journal, ``synchronous=FULL``).

One row per (alert, receiver), in one of three states:

- ``pending``: not delivered yet. :meth:`Outbox.due` hands out the rows whose
  ``next_attempt`` has come, at most one per (receiver, fingerprint) at a time and in the
  order they were stored, so a receiver never sees a model version's ``resolved`` before its
  ``firing``.
- ``delivered``: the receiver answered 2xx. Marked once; a crash between the answer and
  the mark sends the alert again with the same ``Idempotency-Key``, which lets the receiver
  drop the duplicate (at-least-once on the wire, exactly once from the outbox's view).
- ``dead``: given up, with the reason: a permanent refusal (4xx), ``max_attempts``
  failures, or older than ``max_age``. Dead rows are kept (and counted by the dispatcher),
  never dropped silently.

A failed attempt is retried after an exponential backoff with full jitter
(:class:`RetryPolicy`). The file holds at most ``max_rows`` rows: to make room, the oldest
delivered rows go first, then the oldest dead ones; when every row is still pending the
new alert is refused with :class:`~driftline.exceptions.OutboxFull` (and counted in
:attr:`Outbox.refused`). The table ``sent`` keeps, per fingerprint, the last alert stored
(status, severity, sequence, start of the incident), which :class:`~driftline.alerts.Alerter`
uses to drop repeats, across restarts. A new :class:`Outbox` on the same file carries on
where the last one stopped. One dispatcher drains one file.
"""

from __future__ import annotations

import math
import random
import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from driftline.alerts import Alert, Severity, Status
from driftline.exceptions import AlertError, ConfigError, OutboxFull
from driftline.sqlite_file import SqliteFile

EntryState = Literal["pending", "delivered", "dead"]
SCHEMA_VERSION = 2  # 2: the alert history (version 1 files gain it on open)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS deliveries (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    alert_id TEXT NOT NULL,
    fingerprint TEXT NOT NULL,
    receiver TEXT NOT NULL,
    alert BLOB NOT NULL,
    state TEXT NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'delivered', 'dead')),
    attempts INTEGER NOT NULL DEFAULT 0,
    created REAL NOT NULL,
    next_attempt REAL NOT NULL,
    updated REAL NOT NULL,
    error TEXT,
    UNIQUE (alert_id, receiver)
);
CREATE INDEX IF NOT EXISTS deliveries_queue ON deliveries (state, receiver, fingerprint, id);
CREATE INDEX IF NOT EXISTS deliveries_done ON deliveries (state, updated);
CREATE TABLE IF NOT EXISTS sent (
    fingerprint TEXT PRIMARY KEY,
    model TEXT NOT NULL,
    version TEXT NOT NULL,
    status TEXT NOT NULL,
    severity TEXT NOT NULL,
    sequence INTEGER NOT NULL,
    starts_at REAL NOT NULL,
    updated REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS history (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    alert BLOB NOT NULL,
    changed REAL NOT NULL
);
"""
_COLUMNS = "id, receiver, alert, state, attempts, created, next_attempt, updated, error"
_HEAD = """NOT EXISTS (
    SELECT 1 FROM deliveries e WHERE e.state = 'pending' AND e.receiver = d.receiver
    AND e.fingerprint = d.fingerprint AND e.id < d.id)"""
"""Only the oldest pending row of its (receiver, fingerprint): alerts go out in order."""
_MAX_EXPONENT = 62
"""Backoff doubling stops here; any cap is reached long before (2**62 × base)."""


@dataclass(frozen=True)
class RetryPolicy:
    """Exponential backoff with full jitter: the n-th failed attempt waits a uniform random
    time in ``[0, min(cap, base·2^(n-1))]`` ("Full Jitter",
    https://aws.amazon.com/blogs/architecture/exponential-backoff-and-jitter/), so that many
    alerts retrying against one receiver spread out instead of arriving together.

    A row is given up (dead) at its ``max_attempts``-th failure (None: no limit), or when it
    is still pending ``max_age`` seconds after it was stored (an alert a day late is no
    longer worth paging for; the default limits by age only)."""

    base: float = 1.0
    cap: float = 300.0
    max_attempts: int | None = None
    max_age: float = 86400.0

    def __post_init__(self) -> None:
        if not (math.isfinite(self.base) and self.base > 0):
            raise ConfigError(f"alerts.retry_base must be a positive duration, got {self.base}")
        if not (math.isfinite(self.cap) and self.cap >= self.base):
            raise ConfigError(
                f"alerts.retry_cap must be at least alerts.retry_base ({self.base}), got {self.cap}"
            )
        if self.max_attempts is not None and self.max_attempts < 1:
            raise ConfigError(
                f"alerts.max_attempts must be a positive integer, got {self.max_attempts}"
            )
        if not self.max_age > 0:
            raise ConfigError(f"alerts.max_age must be a positive duration, got {self.max_age}")

    def ceiling(self, attempt: int) -> float:
        """The longest wait after the ``attempt``-th failure (1-based)."""
        if attempt < 1:
            raise ValueError(f"attempt must be a positive integer, got {attempt}")
        return min(self.cap, self.base * 2.0 ** min(attempt - 1, _MAX_EXPONENT))

    def delay(self, attempt: int, rng: random.Random) -> float:
        """A wait drawn uniformly from ``[0, ceiling(attempt)]``."""
        return rng.uniform(0.0, self.ceiling(attempt))


@dataclass(frozen=True)
class Entry:
    """One (alert, receiver) row."""

    id: int
    receiver: str
    alert: Alert
    state: EntryState
    attempts: int
    created: float
    next_attempt: float
    updated: float
    error: str | None


@dataclass(frozen=True)
class Sent:
    """The last alert stored for a fingerprint."""

    status: Status
    severity: Severity
    sequence: int
    starts_at: float


def _entry(row: Any) -> Entry:
    id_, receiver, alert, state, attempts, created, next_attempt, updated, error = row
    return Entry(
        id=int(id_),
        receiver=str(receiver),
        alert=Alert.from_record(alert),
        state=state,
        attempts=int(attempts),
        created=float(created),
        next_attempt=float(next_attempt),
        updated=float(updated),
        error=None if error is None else str(error),
    )


class Outbox(SqliteFile):
    """Alerts waiting for delivery, in the SQLite file at ``path`` (created if missing).

    Every method takes the time (``now``) from its caller, so tests control it. ``rng``
    draws the jitter (a seeded ``random.Random`` in tests; a fresh one by default).
    """

    WHAT = "alert outbox"
    ERROR = AlertError
    SCHEMA = _SCHEMA
    SCHEMA_VERSION = SCHEMA_VERSION

    def __init__(
        self,
        path: str | Path,
        *,
        max_rows: int = 10_000,
        policy: RetryPolicy | None = None,
        rng: random.Random | None = None,
    ) -> None:
        if max_rows < 1:
            raise ConfigError(f"alerts.outbox_max_rows must be a positive integer, got {max_rows}")
        self.max_rows = max_rows
        self.policy = policy if policy is not None else RetryPolicy()
        self.rng = rng if rng is not None else random.Random()
        self.refused = 0
        """Alerts refused because the outbox was full (since this object was made)."""
        super().__init__(path)

    # -- storing -------------------------------------------------------------------------

    def enqueue(self, alert: Alert, receivers: Sequence[str], *, now: float | None = None) -> None:
        """Store ``alert`` once per receiver and record it as the fingerprint's last alert,
        in one transaction. Raises :class:`OutboxFull` (nothing stored) when the rows still
        pending leave no room."""
        t = alert.changed_at if now is None else now
        n = len(receivers)
        with self._tx() as db:
            pending = db.execute("SELECT COUNT(*) FROM deliveries WHERE state = 'pending'")
            if pending.fetchone()[0] + n > self.max_rows:
                self.refused += 1
                raise OutboxFull(
                    f"{self.path}: the alert outbox holds {self.max_rows} undelivered alerts "
                    f"(alerts.outbox_max_rows); {alert.model!r} version {alert.version!r} "
                    f"{alert.severity} {alert.status} refused. Check the receivers."
                )
            excess = db.execute("SELECT COUNT(*) FROM deliveries").fetchone()[0] + n
            excess -= self.max_rows
            if excess > 0:  # delivered rows first (state 'delivered' < 'dead'), oldest first
                db.execute(
                    "DELETE FROM deliveries WHERE id IN (SELECT id FROM deliveries "
                    "WHERE state != 'pending' ORDER BY state = 'dead', updated, id LIMIT ?)",
                    (excess,),
                )
            record = alert.to_record()
            db.executemany(
                "INSERT INTO deliveries (alert_id, fingerprint, receiver, alert, created, "
                "next_attempt, updated) VALUES (?, ?, ?, ?, ?, ?, ?)",
                [(alert.id, alert.fingerprint, r, record, t, t, t) for r in receivers],
            )
            db.execute("INSERT INTO history (alert, changed) VALUES (?, ?)", (record, t))
            db.execute(
                "DELETE FROM history WHERE id <= (SELECT MAX(id) FROM history) - ?",
                (self.max_rows,),
            )
            db.execute(
                "INSERT INTO sent (fingerprint, model, version, status, severity, sequence, "
                "starts_at, updated) VALUES (?, ?, ?, ?, ?, ?, ?, ?) "
                "ON CONFLICT (fingerprint) DO UPDATE SET status = excluded.status, "
                "severity = excluded.severity, sequence = excluded.sequence, "
                "starts_at = excluded.starts_at, updated = excluded.updated",
                (
                    alert.fingerprint,
                    alert.model,
                    alert.version,
                    alert.status,
                    alert.severity,
                    alert.sequence,
                    alert.starts_at,
                    t,
                ),
            )
        self._notify()

    def last(self, fingerprint: str) -> Sent | None:
        """The last alert stored for ``fingerprint``, if any."""
        rows = self._read(
            "SELECT status, severity, sequence, starts_at FROM sent WHERE fingerprint = ?",
            (fingerprint,),
        )
        if not rows:
            return None
        status, severity, sequence, starts_at = rows[0]
        return Sent(status, severity, int(sequence), float(starts_at))

    # -- draining ------------------------------------------------------------------------

    def due(self, now: float, limit: int = 100) -> list[Entry]:
        """Pending rows whose time has come, oldest first, the head of each (receiver,
        fingerprint) queue only."""
        rows = self._read(
            f"SELECT {_COLUMNS} FROM deliveries d WHERE state = 'pending' "
            f"AND next_attempt <= ? AND {_HEAD} ORDER BY id LIMIT ?",
            (now, limit),
        )
        return [_entry(r) for r in rows]

    def next_due(self) -> float | None:
        """When the next pending row is due (None: nothing pending)."""
        rows = self._read(
            f"SELECT MIN(next_attempt) FROM deliveries d WHERE state = 'pending' AND {_HEAD}"
        )
        value = rows[0][0]
        return None if value is None else float(value)

    def delivered(self, entry_id: int, now: float) -> bool:
        """Mark a pending row delivered; False if it was not pending."""
        with self._tx() as db:
            cur = db.execute(
                "UPDATE deliveries SET state = 'delivered', attempts = attempts + 1, "
                "updated = ?, error = NULL WHERE id = ? AND state = 'pending'",
                (now, entry_id),
            )
            return cur.rowcount == 1

    def failed(
        self, entry_id: int, reason: str, now: float, *, not_before: float | None = None
    ) -> Entry:
        """Record a failed attempt that may succeed later: the row is due again after the
        policy's backoff (and not before ``not_before``, a receiver's Retry-After), or dead
        once it has failed ``max_attempts`` times or is older than ``max_age``."""
        with self._tx() as db:
            entry = self._get(db, entry_id)
            if entry.state != "pending":
                return entry
            attempts = entry.attempts + 1
            policy = self.policy
            if policy.max_attempts is not None and attempts >= policy.max_attempts:
                why = f"{reason} (gave up after {attempts} attempts)"
                self._kill(db, entry_id, why, now, attempts)
            elif now - entry.created >= policy.max_age:
                why = f"{reason} (gave up: not delivered within {policy.max_age:g} s)"
                self._kill(db, entry_id, why, now, attempts)
            else:
                next_attempt = now + policy.delay(attempts, self.rng)
                if not_before is not None:
                    next_attempt = max(next_attempt, not_before)
                db.execute(
                    "UPDATE deliveries SET attempts = ?, next_attempt = ?, updated = ?, "
                    "error = ? WHERE id = ?",
                    (attempts, next_attempt, now, reason, entry_id),
                )
            return self._get(db, entry_id)

    def dead(self, entry_id: int, reason: str, now: float) -> Entry:
        """Give a pending row up at once (the receiver refused it for good)."""
        with self._tx() as db:
            entry = self._get(db, entry_id)
            if entry.state == "pending":
                self._kill(db, entry_id, reason, now, entry.attempts + 1)
            return self._get(db, entry_id)

    def postpone(self, receiver: str, until: float) -> int:
        """No pending row of ``receiver`` is due before ``until`` (the receiver is failing:
        one attempt per backoff, not one per row). Returns the number of rows moved."""
        with self._tx() as db:
            cur = db.execute(
                "UPDATE deliveries SET next_attempt = ? WHERE state = 'pending' "
                "AND receiver = ? AND next_attempt < ?",
                (until, receiver, until),
            )
            return cur.rowcount

    def expire(self, now: float) -> list[Entry]:
        """Give up the pending rows older than ``max_age``; return them (now dead)."""
        cutoff = now - self.policy.max_age
        old = "SELECT 1 FROM deliveries WHERE state = 'pending' AND created <= ? LIMIT 1"
        if not self._read(old, (cutoff,)):  # the usual case: no write transaction per pass
            return []
        with self._tx() as db:
            ids = [
                r[0]
                for r in db.execute(
                    "SELECT id FROM deliveries WHERE state = 'pending' AND created <= ?",
                    (cutoff,),
                )
            ]
            for entry_id in ids:
                entry = self._get(db, entry_id)
                why = f"not delivered within {self.policy.max_age:g} s"
                if entry.error:
                    why += f" (last error: {entry.error})"
                self._kill(db, entry_id, why, now, entry.attempts)
            return [self._get(db, i) for i in ids]

    @staticmethod
    def _kill(
        db: sqlite3.Connection, entry_id: int, reason: str, now: float, attempts: int
    ) -> None:
        db.execute(
            "UPDATE deliveries SET state = 'dead', attempts = ?, updated = ?, error = ? "
            "WHERE id = ?",
            (attempts, now, reason, entry_id),
        )

    def _get(self, db: sqlite3.Connection, entry_id: int) -> Entry:
        row = db.execute(f"SELECT {_COLUMNS} FROM deliveries WHERE id = ?", (entry_id,)).fetchone()
        if row is None:
            raise AlertError(f"{self.path}: no outbox entry {entry_id}")
        return _entry(row)

    # -- reading -------------------------------------------------------------------------

    def entries(self, state: EntryState | None = None) -> list[Entry]:
        """Rows in ``state`` (all rows if None), oldest first."""
        if state is None:
            rows = self._read(f"SELECT {_COLUMNS} FROM deliveries ORDER BY id")
        else:
            rows = self._read(
                f"SELECT {_COLUMNS} FROM deliveries WHERE state = ? ORDER BY id", (state,)
            )
        return [_entry(r) for r in rows]

    def counts(self) -> dict[EntryState, int]:
        """Rows per state (dead rows are kept until room is needed)."""
        out: dict[EntryState, int] = {"pending": 0, "delivered": 0, "dead": 0}
        for state, n in self._read("SELECT state, COUNT(*) FROM deliveries GROUP BY state"):
            out[state] = int(n)
        return out

    def pending(self) -> int:
        return self.counts()["pending"]

    def last_alert(self, fingerprint: str) -> Alert | None:
        """The last alert stored for ``fingerprint``, looked up in the last 1,000 of the
        history (newest first); None when it is not among them."""
        rows = self._read("SELECT alert FROM history ORDER BY id DESC LIMIT 1000")
        for (record,) in rows:
            alert = Alert.from_record(record)
            if alert.fingerprint == fingerprint:
                return alert
        return None

    def history(self, limit: int = 100) -> list[Alert]:
        """The alerts stored, newest first (the last ``max_rows`` are kept)."""
        rows = self._read("SELECT alert FROM history ORDER BY id DESC LIMIT ?", (limit,))
        return [Alert.from_record(r[0]) for r in rows]
