"""Push-based windowers: count and event-time, tumbling and sliding, snapshot and restore.

The oracle is a direct definition: a window is the list of rows it should hold, computed
from the whole stream at once; the windowers see the stream in arbitrary pieces.
"""

from __future__ import annotations

import itertools
import math

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import given
from hypothesis import strategies as st

from driftline.windows import (
    CountWindower,
    TimeWindower,
    Window,
    Windower,
    restore_windower,
)


def stream(values: list[float], ts: list[float | None] | None = None) -> pa.Table:
    cols = {"v": pa.array(values, pa.float64())}
    if ts is not None:
        cols["ts"] = pa.array(ts, pa.float64())
    return pa.table(cols)


def rows(w: Window) -> list[float]:
    return [x for part in w.chunks("v") for x in part.to_pylist()]


def pieces(table: pa.Table, cuts: list[int]) -> list[pa.Table]:
    bounds = sorted({0, table.num_rows, *(c % (table.num_rows + 1) for c in cuts)})
    return [table.slice(a, b - a) for a, b in itertools.pairwise(bounds)]


def run(w: Windower, parts: list[pa.Table], snapshot_at: int | None = None) -> list[Window]:
    """Push the parts; optionally snapshot and restore (through Arrow IPC) mid-stream."""
    out: list[Window] = []
    for i, part in enumerate(parts):
        if snapshot_at is not None and i == snapshot_at:
            meta, tables = w.snapshot()
            copies = [pa.ipc.open_stream(_ipc(t)).read_all() for t in tables]
            w = restore_windower(meta, copies)
        out.extend(w.push(part))
    return out + w.flush()


def _ipc(t: pa.Table) -> pa.Buffer:
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, t.schema) as writer:
        writer.write_table(t)
    return sink.getvalue()


def count_oracle(n: int, size: int, step: int) -> list[tuple[list[float], bool]]:
    out = []
    k = 0
    while k * step + size <= n:
        out.append((list(map(float, range(k * step, k * step + size))), False))
        k += 1
    closed_until = (k - 1) * step + size if k else 0
    if n > closed_until:  # the next window, cut short by the end of the data
        out.append((list(map(float, range(k * step, n))), True))
    return out


@given(
    n=st.integers(0, 60),
    size=st.integers(1, 12),
    step_frac=st.floats(0.01, 1.0),
    cuts=st.lists(st.integers(0, 60), max_size=6),
    snap=st.integers(0, 6),
)
def test_count_windows_match_the_definition(
    n: int, size: int, step_frac: float, cuts: list[int], snap: int
) -> None:
    step = max(1, min(size, math.ceil(size * step_frac)))
    parts = pieces(stream(list(map(float, range(n)))), cuts)
    got = run(CountWindower(size, step), parts, snapshot_at=snap)
    want = count_oracle(n, size, step)
    assert [(rows(w), w.partial) for w in got] == want
    assert [w.index for w in got] == list(range(len(got)))


def test_sliding_count_windows_overlap() -> None:
    got = run(CountWindower(4, 2), [stream([float(i) for i in range(9)])])
    assert [rows(w) for w in got] == [[0, 1, 2, 3], [2, 3, 4, 5], [4, 5, 6, 7], [6, 7, 8]]
    assert [w.partial for w in got] == [False, False, False, True]


def time_oracle(
    ts: list[float | None], size: float, step: float, lateness: float
) -> tuple[dict[float, list[float]], int, int]:
    """Window start → values, plus late and untimed counts, by replaying the watermark rule
    one row at a time (the windowers see batches; lateness is judged per row here, so
    batches of one row are used with this oracle)."""
    m = round(size / step)
    windows: dict[int, list[float]] = {}
    watermark = -math.inf
    closed_before = -(2**62)  # first window index not closed
    late = untimed = 0
    for i, t in enumerate(ts):
        if t is None:
            untimed += 1
            continue
        pane = math.floor(t / step)
        if pane < closed_before:
            late += 1
            continue
        for k in range(pane - m + 1, pane + 1):
            if k >= closed_before:
                windows.setdefault(k, []).append(float(i))
        watermark = max(watermark, t - lateness)
        closed_before = max(closed_before, math.floor((watermark - size) / step + 1e-9) + 1)
    return {k * step: v for k, v in sorted(windows.items())}, late, untimed


@given(
    ts=st.lists(st.one_of(st.none(), st.integers(0, 50).map(float)), max_size=40),
    m=st.integers(1, 3),
    lateness=st.sampled_from([0.0, 5.0]),
    snap=st.integers(0, 40),
)
def test_time_windows_match_the_definition(
    ts: list[float | None], m: int, lateness: float, snap: int
) -> None:
    size, step = 10.0 * m, 10.0
    table = stream([float(i) for i in range(len(ts))], ts)
    parts = [table.slice(i, 1) for i in range(len(ts))]
    got = run(TimeWindower(size, "ts", step, lateness), parts, snapshot_at=snap)
    want, late, untimed = time_oracle(ts, size, step, lateness)
    timed = {w.start: sorted(rows(w)) for w in got if w.count}
    assert timed == {k: sorted(v) for k, v in want.items()}
    # counts with no window left to carry them come in an empty partial window
    assert all(w.partial and w.start is None for w in got if not w.count)
    assert sum(w.late_events for w in got) == late
    assert sum(w.invalid_time for w in got) == untimed
    assert all(w.end - w.start == size for w in got if w.start is not None)


def test_sliding_time_windows_hold_each_row_in_every_window_it_belongs_to() -> None:
    ts = [0.0, 15.0, 25.0, 65.0]
    got = run(TimeWindower(30.0, "ts", 10.0), [stream([1, 2, 3, 4], ts)])
    starts = {w.start: rows(w) for w in got}
    assert starts[-20.0] == [1.0] and starts[0.0] == [1.0, 2.0, 3.0]
    assert starts[10.0] == [2.0, 3.0] and starts[20.0] == [3.0] and starts[60.0] == [4.0]
    assert [w.partial for w in got if w.start == 60.0] == [True]


def test_a_late_row_counts_once_and_is_reported_with_the_next_window() -> None:
    w = TimeWindower(60.0, "ts")
    assert w.push(stream([1, 2], [0.0, 130.0])) != []
    closed = w.push(stream([3, 4], [10.0, 250.0]))  # 10.0: its window closed at watermark 130
    assert sum(x.late_events for x in closed) == 1
    assert [rows(x) for x in closed] == [[2.0]]


def test_bad_arguments_are_refused() -> None:
    with pytest.raises(ValueError, match="step <= size"):
        CountWindower(5, 6)
    with pytest.raises(ValueError, match="multiple of the step"):
        TimeWindower(60.0, "ts", 25.0)
    with pytest.raises(ValueError, match="unknown windower"):
        restore_windower({"kind": "hourly"}, [])
    meta, _ = CountWindower(5).snapshot()
    with pytest.raises(ValueError, match="do not match"):
        restore_windower({**meta, "have": 3}, [])


def test_windows_carry_their_event_time_span() -> None:
    got = run(CountWindower(3, time_column="ts"), [stream([1, 2, 3], [5.0, None, 2.0])])
    assert (got[0].start, got[0].end, got[0].invalid_time) == (2.0, 5.0, 1)
    assert np.isclose(got[0].count, 3)
