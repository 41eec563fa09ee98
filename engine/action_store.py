"""The actions' durable record and audit log: one SQLite file (WAL, ``synchronous=FULL``),
``<state.dir>/actions.db`` by default, shared by the engine and ``driftline actions``.

An action's ``status``:

- ``pending``: waiting for approval (mode ``approve``) — ``approved`` or ``rejected`` next;
- ``queued`` (modes ``auto`` and ``dry-run``) and ``approved``: for the executor to run;
  a failure that may pass (a registry or endpoint that is down) stays here with a later
  ``next_attempt``;
- ``done``, ``failed``, ``rejected``, ``skipped`` (nothing to do any more, e.g. the alias
  was moved by someone else) and ``dry-run`` (what would have been done is recorded): final.

The primary key is the proposal's idempotency key, so a window replayed after a crash
cannot create a second action. Every change of status is a row of ``audit`` with the time,
the actor (``engine``, ``executor``, or who approved) and the detail: the audit log is
append-only.
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from driftline.exceptions import ActionConflict, ActionError, UnknownAction
from driftline.sqlite_file import SqliteFile

if TYPE_CHECKING:  # driftline.actions imports the webhook connector: not needed to read
    from driftline.actions import Proposal

Status = Literal[
    "pending", "approved", "queued", "done", "failed", "rejected", "skipped", "dry-run"
]
RUNNABLE = ("queued", "approved")
FINAL = ("done", "failed", "rejected", "skipped", "dry-run")
SCHEMA_VERSION = 1
MIN_PREFIX = 6
"""Characters of an action id accepted as an abbreviation (like a git hash)."""

_SCHEMA = """
CREATE TABLE IF NOT EXISTS actions (
    id TEXT PRIMARY KEY,
    seq INTEGER NOT NULL,
    action TEXT NOT NULL,
    policy TEXT NOT NULL,
    mode TEXT NOT NULL,
    model TEXT NOT NULL,
    version TEXT NOT NULL,
    window INTEGER NOT NULL,
    health TEXT NOT NULL,
    reason TEXT NOT NULL,
    status TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt REAL NOT NULL,
    created REAL NOT NULL,
    updated REAL NOT NULL,
    detail TEXT NOT NULL DEFAULT '{}',
    result TEXT
);
CREATE INDEX IF NOT EXISTS actions_queue ON actions (status, next_attempt);
CREATE INDEX IF NOT EXISTS actions_cooldown ON actions (policy, model, version, created);
CREATE TABLE IF NOT EXISTS audit (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    action_id TEXT NOT NULL,
    at REAL NOT NULL,
    event TEXT NOT NULL,
    actor TEXT NOT NULL,
    detail TEXT NOT NULL DEFAULT ''
);
CREATE INDEX IF NOT EXISTS audit_action ON audit (action_id, seq);
"""
_COLUMNS = (
    "id, action, policy, mode, model, version, window, health, reason, status, attempts, "
    "next_attempt, created, updated, detail, result"
)


@dataclass(frozen=True)
class Record:
    id: str
    action: str
    policy: str
    mode: str
    model: str
    version: str
    window: int
    health: str
    reason: str
    status: Status
    attempts: int
    next_attempt: float
    created: float
    updated: float
    detail: dict[str, Any]
    """What the executor did or found (the alias moved from/to, the answers)."""
    result: str | None

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "action": self.action,
            "policy": self.policy,
            "mode": self.mode,
            "model": self.model,
            "version": self.version,
            "window": self.window,
            "health": self.health,
            "reason": self.reason,
            "status": self.status,
            "attempts": self.attempts,
            "created": self.created,
            "updated": self.updated,
            "detail": self.detail,
            "result": self.result,
        }


@dataclass(frozen=True)
class AuditEntry:
    action_id: str
    at: float
    event: str
    actor: str
    detail: str


def _record(row: Sequence[Any]) -> Record:
    (id_, action, policy, mode, model, version, window, health, reason, status, attempts,
     next_attempt, created, updated, detail, result) = row  # fmt: skip
    return Record(
        str(id_), str(action), str(policy), str(mode), str(model), str(version), int(window),
        str(health), str(reason), status, int(attempts), float(next_attempt), float(created),
        float(updated), json.loads(detail), result,
    )  # fmt: skip


class ActionStore(SqliteFile):
    """Actions and their audit log in the SQLite file at ``path`` (created if missing).
    Safe to share between threads; several processes may open the same file (the engine
    and ``driftline actions approve``)."""

    WHAT = "action store"
    ERROR = ActionError
    SCHEMA = _SCHEMA
    SCHEMA_VERSION = SCHEMA_VERSION

    def __init__(self, path: str | Path, *, clock: Callable[[], float] = time.time) -> None:
        self.clock = clock
        super().__init__(path)

    @staticmethod
    def _audit(
        db: sqlite3.Connection, id_: str, now: float, event: str, actor: str, detail: str
    ) -> None:
        db.execute(
            "INSERT INTO audit (action_id, at, event, actor, detail) VALUES (?, ?, ?, ?, ?)",
            (id_, now, event, actor, detail),
        )

    # -- the engine ----------------------------------------------------------------------

    def propose(self, p: Proposal) -> Literal["created", "duplicate", "cooldown"]:
        """Record a proposal: ``duplicate`` when its key is known (a replayed window),
        ``cooldown`` when the same policy acted on the same model version less than its
        cooldown ago (nothing is recorded), else ``created``."""
        now = self.clock()
        policy = p.policy
        status: Status = "pending" if policy.mode == "approve" else "queued"
        with self._tx() as db:
            if db.execute("SELECT 1 FROM actions WHERE id = ?", (p.key,)).fetchone():
                return "duplicate"
            last = db.execute(
                "SELECT MAX(created) FROM actions WHERE policy = ? AND model = ? AND version = ?",
                (policy.name, p.model, p.version),
            ).fetchone()[0]
            if last is not None and now - float(last) < policy.cooldown:
                return "cooldown"
            seq = db.execute("SELECT COALESCE(MAX(seq), 0) + 1 FROM actions").fetchone()[0]
            db.execute(
                f"INSERT INTO actions ({_COLUMNS}, seq) VALUES "
                "(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 0, ?, ?, ?, '{}', NULL, ?)",
                (p.key, policy.action, policy.name, policy.mode, p.model, p.version, p.window,
                 p.health, p.reason, status, now, now, now, seq),
            )  # fmt: skip
            self._audit(db, p.key, now, "proposed", "engine", f"{policy.mode}: {p.reason}")
        if status == "queued":
            self._notify()
        return "created"

    # -- people ------------------------------------------------------------------------------

    def resolve_id(self, given: str) -> str:
        """The full id of ``given`` (an id, or an unambiguous prefix of >= 6 characters)."""
        if len(given) < MIN_PREFIX:
            raise ActionError(f"action id {given!r}: give at least {MIN_PREFIX} characters")
        rows = self._read(
            "SELECT id FROM actions WHERE id >= ? AND id < ? LIMIT 2", (given, given + "\U0010ffff")
        )
        if not rows:
            raise UnknownAction(f"no action {given!r} (see `driftline actions list`)")
        if len(rows) > 1:
            raise ActionError(f"action id {given!r} is ambiguous: give more characters")
        return str(rows[0][0])

    def decide(self, given: str, approve: bool, actor: str, note: str = "") -> Record:
        """Approve or reject a pending action."""
        id_ = self.resolve_id(given)
        now = self.clock()
        status: Status = "approved" if approve else "rejected"
        with self._tx() as db:
            row = db.execute("SELECT status FROM actions WHERE id = ?", (id_,)).fetchone()
            if row[0] != "pending":
                raise ActionConflict(
                    f"action {id_} is {row[0]}, not pending: only a pending action can be {status}"
                )
            db.execute(
                "UPDATE actions SET status = ?, updated = ?, next_attempt = ? WHERE id = ?",
                (status, now, now, id_),
            )
            self._audit(db, id_, now, status, actor, note)
        if approve:
            self._notify()
        return self.get(id_)

    # -- the executor --------------------------------------------------------------------

    def due(self, now: float, limit: int = 20) -> list[Record]:
        """Runnable actions whose next attempt has come, oldest first."""
        rows = self._read(
            f"SELECT {_COLUMNS} FROM actions WHERE status IN {RUNNABLE} "
            "AND next_attempt <= ? ORDER BY seq LIMIT ?",
            (now, limit),
        )
        return [_record(r) for r in rows]

    def next_due(self) -> float | None:
        rows = self._read(f"SELECT MIN(next_attempt) FROM actions WHERE status IN {RUNNABLE}")
        return None if rows[0][0] is None else float(rows[0][0])

    def progress(self, id_: str, detail: dict[str, Any], event: str) -> None:
        """Record a step done (so that a retry does not do it twice), e.g. the alias moved."""
        now = self.clock()
        with self._tx() as db:
            db.execute(
                "UPDATE actions SET detail = ?, updated = ? WHERE id = ?",
                (json.dumps(detail, sort_keys=True), now, id_),
            )
            self._audit(db, id_, now, "step", "executor", event)

    def retry(self, id_: str, reason: str, next_attempt: float) -> None:
        now = self.clock()
        with self._tx() as db:
            db.execute(
                "UPDATE actions SET attempts = attempts + 1, next_attempt = ?, updated = ?, "
                "result = ? WHERE id = ?",
                (next_attempt, now, reason, id_),
            )
            self._audit(db, id_, now, "retry", "executor", reason)

    def finish(self, id_: str, status: Status, result: str) -> None:
        if status not in FINAL:
            raise ValueError(f"finish() takes a final status, got {status!r}")
        now = self.clock()
        with self._tx() as db:
            db.execute(
                "UPDATE actions SET status = ?, attempts = attempts + 1, updated = ?, "
                "result = ? WHERE id = ?",
                (status, now, result, id_),
            )
            self._audit(db, id_, now, status, "executor", result)

    # -- reading -------------------------------------------------------------------------

    def get(self, given: str) -> Record:
        id_ = self.resolve_id(given)
        rows = self._read(f"SELECT {_COLUMNS} FROM actions WHERE id = ?", (id_,))
        return _record(rows[0])

    def recent(self, status: str | None = None, limit: int = 100) -> list[Record]:
        """The newest actions first (of one status, when given)."""
        where, args = ("WHERE status = ?", [status]) if status else ("", [])
        rows = self._read(
            f"SELECT {_COLUMNS} FROM actions {where} ORDER BY seq DESC LIMIT ?", (*args, limit)
        )
        return [_record(r) for r in rows]

    def audit(self, given: str) -> list[AuditEntry]:
        id_ = self.resolve_id(given)
        rows = self._read(
            "SELECT action_id, at, event, actor, detail FROM audit WHERE action_id = ? "
            "ORDER BY seq",
            (id_,),
        )
        return [AuditEntry(str(a), float(t), str(e), str(who), str(d)) for a, t, e, who, d in rows]
