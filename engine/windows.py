"""Windows over a stream of tables: by row count or by event time, tumbling or sliding.

A windower is pushed tables as they arrive and returns the windows that close; it never
reads ahead, so the same code serves a file replay and a Kafka consumer. Its state is a
plain value (:meth:`snapshot` / :meth:`restore`) so that a checkpoint can carry open
windows across a restart.

- Count windows hold ``size`` rows and close every ``step`` rows (tumbling when the step is
  the size; sliding windows overlap by ``size - step`` rows).
- Event-time windows ``[k·step, k·step + size)`` are aligned to the epoch and close once the
  watermark — the largest event time seen, minus the allowed lateness — reaches their end;
  the wall clock never closes a window. Rows are kept in panes of ``step`` seconds, so a row
  is stored once however many sliding windows it belongs to. A row whose every window has
  closed is *late*: counted and reported with the next window that closes, not used. A row
  with no usable event time is counted as ``invalid_time``.
"""

from __future__ import annotations

import datetime as dt
import math
import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from numpy.typing import NDArray

from driftline.columns import numpy_of
from driftline.exceptions import ConfigError, DataError

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)\s*$")
_UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}


def parse_duration(text: str) -> float:
    """'500ms', '30s', '5m', '1h', '2d' → seconds."""
    m = _DURATION.match(text)
    if not m:
        raise ConfigError(f"a duration looks like 30s, 5m, 1h or 2d; got '{text}'")
    seconds = float(m.group(1)) * _UNIT_SECONDS[m.group(2)]
    if seconds <= 0:
        raise ConfigError(f"a duration must be positive, got '{text}'")
    return seconds


@dataclass(frozen=True)
class WindowSpec:
    """``rows`` for count windows, or ``seconds`` (with ``lateness``) for event-time ones."""

    rows: int | None = None
    seconds: float | None = None
    lateness: float = 0.0
    step: float | None = None
    """Rows (count windows) or seconds (event time) between window closes; None: tumbling."""

    @staticmethod
    def parse(text: str, lateness: str | None = None) -> WindowSpec:
        t = text.strip()
        if t.isdigit():
            rows = int(t)
            if rows < 1:
                raise ConfigError(f"--window must be a positive number of rows, got {rows}")
            return WindowSpec(rows=rows)
        late = parse_duration(lateness) if lateness else 0.0
        return WindowSpec(seconds=parse_duration(t), lateness=late)


@dataclass(frozen=True)
class Window:
    """The rows of one window, as the parts they were read in (parts may differ in schema:
    a tolerant JSONL read can type a column differently from one batch to the next)."""

    index: int
    parts: tuple[pa.Table, ...]
    start: float | None
    end: float | None
    late_events: int = 0
    invalid_time: int = 0
    partial: bool = False
    invalid_events: int = 0

    @property
    def count(self) -> int:
        return sum(int(t.num_rows) for t in self.parts)

    @cached_property
    def _names(self) -> list[frozenset[str]]:
        return [frozenset(t.column_names) for t in self.parts]

    def column_names(self) -> set[str]:
        """Every column some part has."""
        return set().union(*self._names)

    def chunks(self, name: str) -> list[pa.ChunkedArray | pa.Array]:
        """The column's values part by part (nulls where a part lacks the column)."""
        return [
            t.column(name) if name in names else pa.nulls(t.num_rows)
            for t, names in zip(self.parts, self._names, strict=True)
        ]


def to_seconds(arr: pa.Array | pa.ChunkedArray) -> NDArray[np.float64]:
    """Event times as float seconds since the epoch (NaN where absent or unreadable)."""
    t = arr.type
    if pa.types.is_timestamp(t):
        per_second = {"s": 1, "ms": 1e3, "us": 1e6, "ns": 1e9}[t.unit]
        ints = numpy_of(pc.cast(arr, pa.int64()))
        return np.asarray(ints, dtype=np.float64) / per_second
    if pa.types.is_integer(t) or pa.types.is_floating(t):  # unchecked, as in columns.to_float
        return np.asarray(numpy_of(pc.cast(arr, pa.float64(), safe=False)), dtype=np.float64)
    if pa.types.is_string(t) or pa.types.is_large_string(t):
        return _iso_seconds(arr)
    raise DataError(
        f"the time column has type {t}; use epoch seconds, a timestamp or ISO-8601 text"
    )


def parse_ts(value: object) -> float | None:
    """Epoch seconds, or ISO-8601 text (UTC when it has no offset); None if neither."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        try:
            d = dt.datetime.fromisoformat(value)
        except ValueError:
            return None
        if d.tzinfo is None:
            d = d.replace(tzinfo=dt.UTC)
        return d.timestamp()
    return None


def _iso_seconds(arr: pa.Array | pa.ChunkedArray) -> NDArray[np.float64]:
    for target in (pa.timestamp("us", tz="UTC"), pa.timestamp("us")):
        try:
            return to_seconds(pc.cast(arr, target))
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            continue
    # mixed formats: value by value
    parsed = (parse_ts(v) for v in arr.to_pylist())
    return np.array([np.nan if t is None else t for t in parsed], dtype=np.float64)


class CountWindower:
    """Windows of ``size`` rows, one closing every ``step`` rows (default: ``size``)."""

    def __init__(self, size: int, step: int | None = None, time_column: str | None = None):
        step = size if step is None else step
        if size < 1 or not 1 <= step <= size:
            raise ValueError(f"need 1 <= step <= size, got size={size}, step={step}")
        self.size, self.step, self.time_column = size, step, time_column
        self.index = 0
        self._parts: list[pa.Table] = []
        self._have = 0
        self._until_close = size
        self._fresh = 0  # rows pushed since the last window closed

    def push(self, table: pa.Table) -> list[Window]:
        out: list[Window] = []
        offset, n = 0, table.num_rows
        while offset < n:
            take = min(self._until_close, n - offset)
            self._parts.append(table.slice(offset, take))
            self._have += take
            self._fresh += take
            self._until_close -= take
            offset += take
            if self._until_close == 0:
                out.append(self._emit(partial=False))
                self._keep_last(self.size - self.step)
                self._until_close = self.step
        return out

    def flush(self) -> list[Window]:
        """The rows not yet in a closed window, as a partial window (end of input)."""
        if not self._fresh:
            return []
        window = self._emit(partial=True)
        self._parts, self._have, self._until_close = [], 0, self.size
        return [window]

    def _emit(self, partial: bool) -> Window:
        tables = tuple(self._parts)
        start = end = None
        invalid = 0
        if self.time_column is not None:
            ts = np.concatenate([to_seconds(t.column(self.time_column)) for t in tables])
            ok = ~np.isnan(ts)
            invalid = int((~ok).sum())
            if ok.any():
                start, end = float(ts[ok].min()), float(ts[ok].max())
        window = Window(self.index, tables, start, end, invalid_time=invalid, partial=partial)
        self.index += 1
        self._fresh = 0
        return window

    def _keep_last(self, rows: int) -> None:
        drop = self._have - rows
        while drop > 0:
            first = self._parts[0]
            if first.num_rows <= drop:
                self._parts.pop(0)
                drop -= first.num_rows
            else:
                self._parts[0] = first.slice(drop)
                drop = 0
        self._have = rows

    def snapshot(self) -> tuple[dict[str, Any], list[pa.Table]]:
        meta = {
            "kind": "count",
            "size": self.size,
            "step": self.step,
            "time_column": self.time_column,
            "index": self.index,
            "have": self._have,
            "until_close": self._until_close,
            "fresh": self._fresh,
        }
        return meta, list(self._parts)

    @classmethod
    def restore(cls, meta: dict[str, Any], tables: Sequence[pa.Table]) -> CountWindower:
        w = cls(int(meta["size"]), int(meta["step"]), meta["time_column"])
        w.index, w._have = int(meta["index"]), int(meta["have"])
        w._until_close, w._fresh = int(meta["until_close"]), int(meta["fresh"])
        w._parts = list(tables)
        if sum(t.num_rows for t in w._parts) != w._have:
            raise ValueError("count window snapshot: buffered rows do not match its count")
        return w


class TimeWindower:
    """Event-time windows of ``seconds``, one starting every ``step`` seconds."""

    def __init__(
        self,
        seconds: float,
        time_column: str,
        step: float | None = None,
        lateness: float = 0.0,
    ):
        step = seconds if step is None else step
        if not 0 < step <= seconds:
            raise ValueError(f"need 0 < step <= size, got size={seconds}, step={step}")
        panes = seconds / step
        if abs(panes - round(panes)) > 1e-9:
            raise ValueError(
                f"the window size ({seconds}s) must be a multiple of the step ({step}s)"
            )
        if lateness < 0:
            raise ValueError(f"lateness must be >= 0, got {lateness}")
        self.seconds, self.step, self.lateness = seconds, step, lateness
        self.time_column = time_column
        self.panes_per_window = round(panes)
        self.index = 0
        self.watermark = -math.inf
        self._next = -(2**62)  # the first window not closed yet
        self._panes: dict[int, list[pa.Table]] = {}
        self._late = 0
        self._invalid = 0

    def push(self, table: pa.Table) -> list[Window]:
        if self.time_column not in table.column_names:
            raise DataError(f"time column '{self.time_column}' is not in the data")
        ts = to_seconds(table.column(self.time_column))
        ok = ~np.isnan(ts)
        self._invalid += int((~ok).sum())
        panes = np.floor(ts[ok] / self.step).astype(np.int64)
        rows = np.nonzero(ok)[0]
        # a row is late once the last window holding its pane (window k = pane) has closed
        late = panes < self._next
        self._late += int(late.sum())
        panes, rows = panes[~late], rows[~late]
        if panes.shape[0]:
            order = np.argsort(panes, kind="stable")
            panes, rows = panes[order], rows[order]
            bounds = np.flatnonzero(np.diff(panes)) + 1
            for part, pane in zip(np.split(rows, bounds), panes[np.r_[0, bounds]], strict=True):
                self._panes.setdefault(int(pane), []).append(table.take(part))
            self.watermark = max(self.watermark, float(ts[ok].max()) - self.lateness)
        if self.watermark == -math.inf:
            return []
        last = math.floor((self.watermark - self.seconds) / self.step + 1e-9)
        return self._close_through(last, partial=False)

    def flush(self) -> list[Window]:
        """Every window still holding rows, as partial windows (end of input). Late or
        untimed rows not yet reported come with them, or alone in an empty window."""
        if self._panes:
            return self._close_through(max(self._panes), partial=True)
        if not (self._late or self._invalid):
            return []
        empty = Window(self.index, (), None, None, self._late, self._invalid, partial=True)
        self.index += 1
        self._late = self._invalid = 0
        return [empty]

    def _close_through(self, last: int, partial: bool) -> list[Window]:
        """Close windows up to ``last``: the ones holding rows are emitted, in order."""
        if last < self._next:
            return []
        m = self.panes_per_window
        starts = sorted(
            {k for p in self._panes for k in range(p - m + 1, p + 1) if self._next <= k <= last}
        )
        out = []
        for k in starts:
            parts = [t for p in range(k, k + m) for t in self._panes.get(p, ())]
            start = k * self.step
            out.append(
                Window(
                    self.index,
                    tuple(parts),
                    start,
                    start + self.seconds,
                    self._late,
                    self._invalid,
                    partial,
                )
            )
            self.index += 1
            self._late = self._invalid = 0
        self._next = last + 1
        for p in [p for p in self._panes if p < self._next]:
            del self._panes[p]
        return out

    def snapshot(self) -> tuple[dict[str, Any], list[pa.Table]]:
        keys = sorted(self._panes)
        meta = {
            "kind": "time",
            "seconds": self.seconds,
            "step": self.step,
            "lateness": self.lateness,
            "time_column": self.time_column,
            "index": self.index,
            "watermark": None if self.watermark == -math.inf else self.watermark,
            "next": self._next,
            "late": self._late,
            "invalid": self._invalid,
            "panes": [[k, len(self._panes[k])] for k in keys],
        }
        return meta, [t for k in keys for t in self._panes[k]]

    @classmethod
    def restore(cls, meta: dict[str, Any], tables: Sequence[pa.Table]) -> TimeWindower:
        w = cls(float(meta["seconds"]), meta["time_column"], float(meta["step"]), meta["lateness"])
        w.index, w._next = int(meta["index"]), int(meta["next"])
        w.watermark = -math.inf if meta["watermark"] is None else float(meta["watermark"])
        w._late, w._invalid = int(meta["late"]), int(meta["invalid"])
        it = iter(tables)
        for key, n in meta["panes"]:
            w._panes[int(key)] = [next(it) for _ in range(int(n))]
        if next(it, None) is not None:
            raise ValueError("time window snapshot: more tables than panes")
        return w


Windower = CountWindower | TimeWindower


def restore_windower(meta: dict[str, Any], tables: Sequence[pa.Table]) -> Windower:
    if meta.get("kind") == "count":
        return CountWindower.restore(meta, tables)
    if meta.get("kind") == "time":
        return TimeWindower.restore(meta, tables)
    raise ValueError(f"unknown windower kind {meta.get('kind')!r}")


def run_windows(
    batches: Iterable[pa.RecordBatch | pa.Table], windower: Windower
) -> Iterator[Window]:
    """Push every batch through ``windower``; flush partial windows at the end."""
    for batch in batches:
        table = pa.Table.from_batches([batch]) if isinstance(batch, pa.RecordBatch) else batch
        yield from windower.push(table)
    yield from windower.flush()


def count_windows(
    batches: Iterable[pa.RecordBatch], rows: int, time_column: str | None = None
) -> Iterator[Window]:
    """Tumbling windows of ``rows`` rows; the rest at the end is a partial window."""
    return run_windows(batches, CountWindower(rows, time_column=time_column))


def time_windows(
    batches: Iterable[pa.RecordBatch], time_column: str, seconds: float, lateness: float = 0.0
) -> Iterator[Window]:
    """Tumbling event-time windows of ``seconds``, closed by the watermark."""
    return run_windows(batches, TimeWindower(seconds, time_column, lateness=lateness))
