"""Writers for replay records: JSON lines, and a readable terminal table."""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass, field
from typing import IO, Any

import orjson


def jsonl(record: dict[str, Any]) -> bytes:
    """One record as a JSON line (NaN and ±inf become null, as JSON has no such numbers)."""
    return orjson.dumps(record, option=orjson.OPT_SERIALIZE_NUMPY) + b"\n"


_COLOURS = {"ok": "32", "warning": "33", "critical": "31"}


@dataclass
class TableWriter:
    """Prints a line per window with the drifted features highlighted, then a summary."""

    out: IO[str]
    colour: bool = False
    windows: int = 0
    health: dict[str, int] = field(default_factory=lambda: {"ok": 0, "warning": 0, "critical": 0})
    drifted: dict[str, int] = field(default_factory=dict)
    worst: dict[str, float] = field(default_factory=dict)

    @classmethod
    def for_stream(cls, out: IO[str]) -> TableWriter:
        return cls(out, colour=hasattr(out, "isatty") and out.isatty())

    def _paint(self, text: str, code: str) -> str:
        return f"\x1b[{code}m{text}\x1b[0m" if self.colour else text

    def header(self) -> None:
        self.out.write(
            f"{'window':>6} {'rows':>8}  {'share':>5}  {'health':<8}  drifted; problems\n"
        )

    def write(self, r: dict[str, Any]) -> None:
        self.windows += 1
        self.health[r["health"]] += 1
        drifted = []
        columns = dict(r["features"])
        if r.get("prediction"):
            columns["(prediction)"] = r["prediction"]
        for name, f in columns.items():
            stat = (f.get("decision") or {}).get("statistic")
            value = f.get(stat) if stat else None
            if isinstance(value, float):
                self.worst[name] = max(self.worst.get(name, 0.0), value)
            if f.get("drift"):
                self.drifted[name] = self.drifted.get(name, 0) + 1
                drifted.append(f"{name} ({stat} {value:.3g})" if isinstance(value, float) else name)
        health = r["health"]
        share = r["dataset_drift"]["share"]
        line = (
            f"{r['window']['index']:>6} {r['window']['count']:>8}  {share:>5.2f}  "
            f"{self._paint(f'{health:<8}', _COLOURS[health])}  "
        )
        problems = r["quality"].get("problems", [])
        shown = [self._paint(", ".join(drifted), "1;31")] if drifted else []
        shown += [self._paint(p, "33") for p in problems]
        line += "; ".join(shown) if shown else "-"
        self.out.write(line + "\n")

    def summary(self) -> None:
        h = self.health
        self.out.write(
            f"\n{self.windows} windows: {h['ok']} ok, {h['warning']} warning, "
            f"{h['critical']} critical\n"
        )
        if not self.drifted:
            self.out.write("no feature drifted\n")
            return
        self.out.write(f"{'feature':<24} {'drifted windows':>15}\n")
        for name, n in sorted(self.drifted.items(), key=lambda kv: (-kv[1], kv[0])):
            self.out.write(f"{name:<24} {n:>15}\n")


class Progress:
    """Progress lines on stderr for long work, at most every ``every`` seconds: rewritten in
    place on a terminal, plain lines otherwise. Silent when disabled."""

    def __init__(self, enabled: bool = True, every: float | None = None) -> None:
        self.enabled = enabled
        self.tty = sys.stderr.isatty()
        self.every = every if every is not None else (0.2 if self.tty else 5.0)
        self._last = time.monotonic()  # the first line too waits one interval: short work is quiet
        self._shown = False

    def update(self, message: str, *, force: bool = False) -> None:
        now = time.monotonic()
        if not self.enabled or (not force and now - self._last < self.every):
            return
        self._last = now
        self._shown = True
        sys.stderr.write(("\r\x1b[K" + message) if self.tty else (message + "\n"))
        sys.stderr.flush()

    def done(self, message: str | None = None) -> None:
        if not self.enabled:
            return
        if self.tty and self._shown:
            sys.stderr.write("\r\x1b[K")
        if message:
            sys.stderr.write(message + "\n")
        sys.stderr.flush()
