"""Tumbling windows over a stream of record batches: by row count, or by event time.

Event time closes windows, never the wall clock. With event-time windows, a window
``[start, start + size)`` (aligned to multiples of ``size`` since the epoch) closes once the
watermark — the largest event time seen, minus the allowed lateness — reaches its end. A row
that arrives for a window already closed is *late*: counted, and reported with the next
window that closes. A row with no usable event time is counted as ``invalid_time``.
"""

from __future__ import annotations

import datetime as dt
import math
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from numpy.typing import NDArray

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

    def has(self, name: str) -> bool:
        return any(name in t.column_names for t in self.parts)

    def chunks(self, name: str) -> list[pa.ChunkedArray | pa.Array]:
        """The column's values part by part (nulls where a part lacks the column)."""
        return [
            t.column(name) if name in t.column_names else pa.nulls(t.num_rows) for t in self.parts
        ]


def to_seconds(arr: pa.Array | pa.ChunkedArray) -> NDArray[np.float64]:
    """Event times as float seconds since the epoch (NaN where absent or unreadable)."""
    t = arr.type
    if pa.types.is_timestamp(t):
        per_second = {"s": 1, "ms": 1e3, "us": 1e6, "ns": 1e9}[t.unit]
        ints = pc.cast(arr, pa.int64()).to_numpy(zero_copy_only=False)
        return np.asarray(ints, dtype=np.float64) / per_second
    if pa.types.is_integer(t) or pa.types.is_floating(t):
        return np.asarray(
            pc.cast(arr, pa.float64()).to_numpy(zero_copy_only=False), dtype=np.float64
        )
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


def count_windows(
    batches: Iterable[pa.RecordBatch], rows: int, time_column: str | None = None
) -> Iterator[Window]:
    """Tumbling windows of ``rows`` rows; the rest at the end is a partial window."""
    pending: list[pa.RecordBatch] = []
    have = 0
    index = 0
    for batch in batches:
        offset = 0
        while offset < batch.num_rows:
            take = min(rows - have, batch.num_rows - offset)
            pending.append(batch.slice(offset, take))
            have += take
            offset += take
            if have == rows:
                yield _count_window(index, pending, time_column, partial=False)
                index += 1
                pending, have = [], 0
    if have:
        yield _count_window(index, pending, time_column, partial=True)


def _count_window(
    index: int, parts: list[pa.RecordBatch], time_column: str | None, partial: bool
) -> Window:
    tables = tuple(pa.Table.from_batches([b]) for b in parts)
    start = end = None
    invalid = 0
    if time_column is not None:
        ts = np.concatenate([to_seconds(t.column(time_column)) for t in tables])
        ok = ~np.isnan(ts)
        invalid = int((~ok).sum())
        if ok.any():
            start, end = float(ts[ok].min()), float(ts[ok].max())
    return Window(index, tables, start, end, invalid_time=invalid, partial=partial)


def time_windows(
    batches: Iterable[pa.RecordBatch], time_column: str, seconds: float, lateness: float = 0.0
) -> Iterator[Window]:
    """Tumbling event-time windows of ``seconds``, closed by the watermark."""
    open_parts: dict[int, list[pa.Table]] = {}
    watermark = -math.inf
    closed_until = -math.inf  # every window ending at or before this has been emitted
    index = 0
    late = 0
    invalid = 0
    for batch in batches:
        if batch.schema.get_field_index(time_column) < 0:
            raise DataError(f"time column '{time_column}' is not in the data")
        ts = to_seconds(batch.column(time_column))
        ok = ~np.isnan(ts)
        invalid += int((~ok).sum())
        keys = np.floor(ts[ok] / seconds).astype(np.int64)
        rows = np.nonzero(ok)[0]
        is_late = (keys + 1) * seconds <= closed_until
        late += int(is_late.sum())
        keys, rows = keys[~is_late], rows[~is_late]
        if keys.shape[0]:
            order = np.argsort(keys, kind="stable")
            keys, rows = keys[order], rows[order]
            bounds = np.flatnonzero(np.diff(keys)) + 1
            table = pa.Table.from_batches([batch])
            for part_rows, key in zip(np.split(rows, bounds), keys[np.r_[0, bounds]], strict=True):
                open_parts.setdefault(int(key), []).append(table.take(part_rows))
            watermark = max(watermark, float(ts[ok].max()) - lateness)
        for key in sorted(k for k in open_parts if (k + 1) * seconds <= watermark):
            yield _time_window(index, key, seconds, open_parts.pop(key), late, invalid)
            closed_until = max(closed_until, (key + 1) * seconds)
            index += 1
            late = invalid = 0
    for key in sorted(open_parts):
        yield _time_window(index, key, seconds, open_parts.pop(key), late, invalid, partial=True)
        index += 1
        late = invalid = 0


def _time_window(
    index: int,
    key: int,
    seconds: float,
    parts: list[pa.Table],
    late: int,
    invalid: int,
    partial: bool = False,
) -> Window:
    return Window(index, tuple(parts), key * seconds, (key + 1) * seconds, late, invalid, partial)
