"""Health of a model version over windows, with hysteresis.

Each closed window is observed as ``ok``, ``warning`` or ``critical`` (see
:mod:`driftline.monitor`). The tracked state changes only once the windows have been worse
(or better) than it for ``hysteresis`` windows in a row, so one noisy window does not page
anyone and a single good window does not resolve an incident. The new state is the level of
that run closest to the old one: ``ok`` followed by ``warning, critical`` becomes
``warning``, and ``critical`` followed by ``ok, warning`` becomes ``warning``. Every change
is returned as a :class:`Change` (what alerting will turn into a notification). The state
is a plain value: :meth:`HealthTracker.snapshot` and :meth:`HealthTracker.restore` carry it
across restarts.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any


class Health(enum.IntEnum):
    """Ordered levels; the value is the Prometheus gauge value (0 ok, 1 warning, 2 critical)."""

    OK = 0
    WARNING = 1
    CRITICAL = 2

    @classmethod
    def parse(cls, text: str) -> Health:
        try:
            return cls[text.upper()]
        except KeyError:
            raise ValueError(f"health must be ok, warning or critical, got {text!r}") from None

    def __str__(self) -> str:
        return self.name.lower()


def fold(record: dict[str, Any], level: Health, reasons: Sequence[str]) -> None:
    """Fold the verdict of another series of the model version (its proxy metrics, its
    realised quality) into a window ``record``: its health raised to ``level`` and its
    ``reasons`` added. A verdict without reasons leaves the record as it is."""
    if reasons:
        record["health"] = str(max(Health.parse(record["health"]), level))
        record["reasons"] = [*record["reasons"], *reasons]


@dataclass(frozen=True)
class Change:
    previous: Health
    current: Health
    window: int
    reasons: tuple[str, ...]


@dataclass
class HealthTracker:
    hysteresis: int = 2
    state: Health = Health.OK
    candidate: Health | None = None
    streak: int = 0
    reasons: tuple[str, ...] = field(default_factory=tuple)

    def __post_init__(self) -> None:
        if self.hysteresis < 1:
            raise ValueError(f"hysteresis must be a positive integer, got {self.hysteresis}")

    def update(self, observed: Health, window: int, reasons: tuple[str, ...] = ()) -> Change | None:
        """Observe one window; return the change of state it completes, if any."""
        if observed == self.state:
            self.candidate, self.streak = None, 0
            self.reasons = reasons
            return None
        worse = observed > self.state
        if self.candidate is not None and (self.candidate > self.state) == worse:
            self.streak += 1
            nearer = min if worse else max
            self.candidate = nearer(self.candidate, observed)
        else:
            self.candidate, self.streak = observed, 1
        if self.streak < self.hysteresis:
            return None
        new = self.candidate
        change = Change(self.state, new, window, reasons)
        self.state, self.candidate, self.streak, self.reasons = new, None, 0, reasons
        return change

    def snapshot(self) -> dict[str, Any]:
        return {
            "hysteresis": self.hysteresis,
            "state": str(self.state),
            "candidate": None if self.candidate is None else str(self.candidate),
            "streak": self.streak,
            "reasons": list(self.reasons),
        }

    @classmethod
    def restore(cls, snap: dict[str, Any]) -> HealthTracker:
        cand = snap.get("candidate")
        return cls(
            hysteresis=int(snap["hysteresis"]),
            state=Health.parse(snap["state"]),
            candidate=None if cand is None else Health.parse(cand),
            streak=int(snap["streak"]),
            reasons=tuple(snap.get("reasons", ())),
        )
