"""What the HTTP API and ``/metrics`` see of a running engine.

The engine thread owns the engine; the API's threads only read. :class:`Recent` sits
between the engine and its sink and keeps, under a lock, the latest records of every model
version. :class:`Service` answers the API's questions from it, from the health trackers,
the alert outbox and the action store, and hands ingestion and decisions to the engine
thread (``run``) so that nothing else ever mutates the engine.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict, deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

from driftline.action_store import ActionStore
from driftline.alerts import RenderOptions, render_json
from driftline.engine import Engine, Origin, Sink
from driftline.events import DeadLetter
from driftline.health import Health
from driftline.outbox import Outbox

T = TypeVar("T")
K = TypeVar("K")
V = TypeVar("V")

_MAX_VERSIONS_KEPT = 1000
"""Model versions whose recent records are kept in memory (least recently updated go)."""


def items(d: Mapping[K, V]) -> list[tuple[K, V]]:
    """``d``'s items, read from another thread than the one that inserts into it (a resize
    during the copy raises; the copy is retried)."""
    for _ in range(100):
        try:
            return list(d.items())
        except RuntimeError:
            continue
    return list(dict(d).items())


@dataclass
class _Kept:
    """The recent records of one model version (under :class:`Recent`'s lock)."""

    windows: deque[dict[str, Any]]
    latest: dict[str, dict[str, Any]] = field(default_factory=dict)
    updated: float = 0.0


@dataclass(frozen=True)
class Latest:
    """A model version's last record of each kind (``skew``, ``drift``, ``performance``)
    and the wall-clock time of its last record."""

    records: dict[str, dict[str, Any]]
    updated: float


class Recent:
    """A :class:`~driftline.engine.Sink` that keeps the last ``keep`` records of every model
    version and passes everything on to ``sink``."""

    def __init__(self, sink: Sink, keep: int = 100, *, clock: Callable[[], float] = time.time):
        self.sink = sink
        self.keep = keep
        self.clock = clock
        self._lock = threading.Lock()
        self._versions: OrderedDict[tuple[str, str], _Kept] = OrderedDict()

    # -- the sink ------------------------------------------------------------------------

    def publish(self, record: dict[str, Any]) -> None:
        self.sink.publish(record)
        key = (str(record["model"]), str(record["version"]))
        with self._lock:
            v = self._versions.get(key)
            if v is None:
                v = self._versions[key] = _Kept(deque(maxlen=self.keep))
                while len(self._versions) > _MAX_VERSIONS_KEPT:
                    self._versions.popitem(last=False)
            else:
                self._versions.move_to_end(key)
            v.windows.append(record)
            v.latest[str(record["kind"])] = record
            v.updated = self.clock()

    def dead_letter(self, letter: DeadLetter, origin: Origin) -> None:
        self.sink.dead_letter(letter, origin)

    def flush(self) -> None:
        self.sink.flush()

    # -- reading (any thread) ------------------------------------------------------------

    def latest(self) -> list[tuple[tuple[str, str], Latest]]:
        """Every version kept, the most recently updated first."""
        with self._lock:
            return [
                (k, Latest(dict(v.latest), v.updated)) for k, v in reversed(self._versions.items())
            ]

    def get(self, model: str, version: str) -> Latest | None:
        with self._lock:
            v = self._versions.get((model, version))
            return None if v is None else Latest(dict(v.latest), v.updated)

    def windows(self, model: str, version: str) -> list[dict[str, Any]] | None:
        """The version's records kept, oldest first (None if none was)."""
        with self._lock:
            v = self._versions.get((model, version))
            return None if v is None else list(v.windows)


def feature_summary(record: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Per feature (and ``(prediction)``) of a window record: its statistics as given."""
    out = dict(record.get("features") or {})
    if record.get("prediction") is not None:
        out["(prediction)"] = record["prediction"]
    return out


@dataclass
class Faults:
    """Counts of the faults serve recovered from (``/metrics``), written by the serve loop."""

    checkpoints: int = 0
    """Checkpoints written."""
    checkpoint_failures: int = 0
    """Checkpoints that could not be written (their offsets were not committed)."""
    commit_failures: int = 0
    """Offset commits that failed (the broker unreachable); the next checkpoint retries."""
    offset_resets: dict[tuple[str, int], int] = field(default_factory=dict)
    """Per partition: positions found out of range and reset (``kafka.auto_offset_reset``)."""


class Service:
    """The engine as the API sees it.

    ``run`` executes a function on the engine thread and returns its result (the serve
    loop's worker; a plain call in tests with no other thread).
    """

    def __init__(
        self,
        engine: Engine,
        recent: Recent,
        *,
        run: Callable[[Callable[[], Any]], Any] = lambda fn: fn(),
        outbox: Outbox | None = None,
        render: RenderOptions | None = None,
        store: ActionStore | None = None,
    ) -> None:
        self.engine = engine
        self.recent = recent
        self.run = run
        """Runs a function on the engine thread (the serve loop sets its worker's call)."""
        self.outbox = outbox
        self.render = render or RenderOptions()
        self.store = store
        self.restored = False
        """The checkpoint (if any) is loaded."""
        self.assigned = False
        """The consumer has its partitions (or the source needs none)."""
        self.problems: dict[str, str] = {}
        """What keeps the engine from being ready, by component (``state``: the last
        checkpoint failed; ``kafka``: the last offset commit failed)."""
        self.notices: dict[str, str] = {}
        """What readiness reports without being unready for it, by subject (an offset reset
        of a partition: events may have been skipped)."""
        self.faults = Faults()
        self.started = time.time()

    # -- readiness -----------------------------------------------------------------------

    def readiness(self) -> tuple[bool, list[str]]:
        """Ready when the state is restored, partitions are assigned and no component has
        a problem; the reasons list the problems, then the notices (which leave it ready)."""
        reasons = []
        if not self.restored:
            reasons.append("state not restored yet")
        if not self.assigned:
            reasons.append("no partitions assigned yet")
        reasons.extend(f"{k}: {v}" for k, v in sorted(items(self.problems)))
        ready = not reasons
        reasons.extend(f"{k}: {v}" for k, v in sorted(items(self.notices)))
        return ready, reasons

    # -- models --------------------------------------------------------------------------

    def health(self) -> dict[tuple[str, str], tuple[Health, tuple[str, ...]]]:
        """Tracked health and its reasons per model version."""
        return {k: (t.state, tuple(t.reasons)) for k, t in items(self.engine.health)}

    def models(self) -> list[dict[str, Any]]:
        health = self.health()
        kept = dict(self.recent.latest())
        return [
            self._summary(key, health.get(key), kept.get(key))
            for key in sorted(set(health) | set(kept))
        ]

    def version(self, model: str, version: str) -> dict[str, Any] | None:
        key = (model, version)
        tracker = self.engine.health.get(key)
        latest = self.recent.get(model, version)
        if tracker is None and latest is None:
            return None
        tracked = None if tracker is None else (tracker.state, tuple(tracker.reasons))
        out = self._summary(key, tracked, latest)
        records = latest.records if latest is not None else {}
        skew, drift = records.get("skew"), records.get("drift")
        now = feature_summary(skew) if skew is not None else {}
        previous = feature_summary(drift) if drift is not None else {}
        out["features"] = {
            name: {"skew": stats, "drift": previous.get(name)} for name, stats in now.items()
        }
        out["quality"] = None if skew is None else skew.get("quality")
        out["proxy"] = None if skew is None else skew.get("proxy")
        out["performance"] = records.get("performance")
        return out

    def _summary(
        self,
        key: tuple[str, str],
        tracked: tuple[Health, tuple[str, ...]] | None,
        latest: Latest | None,
    ) -> dict[str, Any]:
        """What ``/v1/models`` says of a version (``/v1/models/…`` says more)."""
        state, reasons = tracked if tracked is not None else (Health.OK, ())
        skew = latest.records.get("skew") if latest is not None else None
        return {
            "model": key[0],
            "version": key[1],
            "health": str(state),
            "reasons": list(reasons),
            "last_window": None if skew is None else skew.get("window"),
            "dataset_drift": None if skew is None else skew.get("dataset_drift"),
            "updated": None if latest is None else latest.updated,
            "events": {
                s: n for (m, v, s), n in items(self.engine.counters.events) if (m, v) == key
            },
        }

    def windows(self, model: str, version: str, limit: int) -> list[dict[str, Any]] | None:
        records = self.recent.windows(model, version)
        if records is None:
            return None if (model, version) not in self.engine.health else []
        return records[-limit:][::-1]  # newest first

    # -- alerts and actions --------------------------------------------------------------

    def alerts(self, limit: int, status: str | None = None) -> list[dict[str, Any]]:
        """The latest alerts, newest first, in driftline's alert JSON (as on the alerts
        topic); ``status`` keeps only ``firing`` or ``resolved`` ones."""
        if self.outbox is None:
            return []
        history = self.outbox.history(limit if status is None else self.outbox.max_rows)
        chosen = [a for a in history if status is None or a.status == status][:limit]
        return [render_json(a, self.render) for a in chosen]

    def actions(self, status: str | None, limit: int) -> list[dict[str, Any]]:
        if self.store is None:
            return []
        return [r.to_json() for r in self.store.recent(status, limit)]

    def decide(self, action_id: str, approve: bool, actor: str, note: str) -> dict[str, Any]:
        """Approve or reject a pending action (raises ``ActionError`` with the reason)."""
        if self.store is None:
            from driftline.exceptions import ActionError

            raise ActionError("no action policies are configured ([[actions.policies]])")
        return self.store.decide(action_id, approve, actor, note).to_json()

    # -- ingestion -----------------------------------------------------------------------

    def ingest(
        self, source: str, values: list[bytes], content_types: Iterable[str | None]
    ) -> tuple[int, list[DeadLetter]]:
        """Events from ``POST /v1/events``, processed on the engine thread; all or none.
        Returns the events processed and the dead letters (nothing processed when any).
        Raises :class:`EngineStopped` when the engine thread has stopped."""
        ctypes = list(content_types)
        now = time.time()
        try:
            result: tuple[int, list[DeadLetter]] = self.run(
                lambda: self.engine.ingest(source, values, ctypes, now)
            )
        except Exception as exc:
            raise EngineStopped(f"{type(exc).__name__}: {exc}") from exc
        return result


class EngineStopped(RuntimeError):
    """The engine thread is not running (it failed, or serve is stopping)."""
