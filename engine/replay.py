"""``driftline replay``: a data file through windows and the monitor, records out.

Memory is bounded by one window plus one read batch: the reader streams record batches,
only the baseline's columns (and the time column) are read, and records are written as
windows close.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pyarrow as pa

from driftline import baseline as bl
from driftline.connectors.files import FileFormat, detect_format, read_batches, schema_of
from driftline.detectors import DriftPolicy
from driftline.exceptions import ConfigError, DataError
from driftline.monitor import Monitor, policy_for, resolve_columns
from driftline.output import Progress, TableWriter, jsonl
from driftline.windows import Window, WindowSpec, count_windows, time_windows


@dataclass(frozen=True)
class ReplayOptions:
    data: str
    baseline: str
    window: str
    time_column: str | None = None
    lateness: str | None = None
    model: str | None = None
    version: str | None = None
    threshold: float | None = None
    min_rows: int | None = None
    alpha: float | None = None
    drift_share: float | None = None
    shift_alpha: float | None = None
    threads: int = 0


def _policy(opts: ReplayOptions) -> DriftPolicy:
    kwargs: dict[str, float | int] = {}
    if opts.threshold is not None:
        kwargs["threshold"] = opts.threshold
    if opts.min_rows is not None:
        kwargs["min_rows_for_distance"] = opts.min_rows
    if opts.alpha is not None:
        kwargs["alpha"] = opts.alpha
    if opts.drift_share is not None:
        kwargs["drift_share"] = opts.drift_share
    if opts.shift_alpha is not None:
        kwargs["shift_alpha"] = opts.shift_alpha
    try:
        return DriftPolicy(**kwargs)  # type: ignore[arg-type]
    except ValueError as exc:
        raise ConfigError(f"--{str(exc).replace('_', '-')}") from exc


@dataclass
class InvalidLines:
    """Undecodable input lines: counted, the first few reported with their line number."""

    progress: Progress
    shown: int = 0
    pending: int = 0
    total: int = 0
    limit: int = 5

    def __call__(self, line: int, reason: str) -> None:
        self.pending += 1
        self.total += 1
        if self.shown < self.limit:
            self.shown += 1
            self.progress.update(f"warning: line {line} skipped: {reason}", force=True)

    def take(self) -> int:
        n, self.pending = self.pending, 0
        return n


def windows_of(
    opts: ReplayOptions,
    spec: WindowSpec,
    monitor: Monitor,
    progress: Progress,
    invalid: InvalidLines | None = None,
) -> Iterator[Window]:
    if spec.seconds is not None and opts.time_column is None:
        raise ConfigError(f"--window {opts.window} is a duration: it needs --time-column")
    if opts.lateness and spec.seconds is None:
        raise ConfigError("--lateness applies to event-time windows only (--window 5m …)")
    data = Path(opts.data)
    fmt = detect_format(data)
    tolerant = fmt is FileFormat.JSONL
    names = schema_of(data, fmt, tolerant=tolerant).names
    if opts.time_column is not None and opts.time_column not in names:
        raise DataError(f"{data}: time column '{opts.time_column}' is not in the data")
    mapping = resolve_columns(monitor.baseline, names)
    for name in monitor.absent_columns(list(mapping.values())):
        progress.update(f"note: baseline column '{name}' is absent from {data.name}", force=True)
    if opts.time_column is not None:
        mapping.setdefault(opts.time_column, opts.time_column)
    wanted = list(mapping)
    # Only the monitored columns are read where the format allows (Parquet, Arrow); JSONL
    # is read line by line, tolerating stray types and bad lines (counted, not fatal).
    columns = wanted if fmt in (FileFormat.PARQUET, FileFormat.ARROW) else None
    on_invalid = invalid if tolerant else None

    def selected() -> Iterator[pa.RecordBatch]:
        for b in read_batches(data, columns=columns, fmt=fmt, on_invalid=on_invalid):
            keep = [n for n in wanted if n in b.schema.names]
            yield b.select(keep).rename_columns([mapping[n] for n in keep])

    batches = selected()
    if spec.rows is not None:
        return count_windows(batches, spec.rows, opts.time_column)
    assert spec.seconds is not None and opts.time_column is not None
    return time_windows(batches, opts.time_column, spec.seconds, spec.lateness)


def replay(
    opts: ReplayOptions, *, fmt: str = "table", output: str | None = None, quiet: bool = False
) -> bool:
    """Run the replay, writing records as windows close. Returns whether any window drifted."""
    baseline = bl.load(opts.baseline)
    policy = policy_for(baseline, _policy(opts))
    cal = baseline.calibration
    progress = Progress(not quiet)
    spec = WindowSpec.parse(opts.window, opts.lateness)
    if cal is not None and spec.rows is not None and spec.rows != cal.window:
        progress.update(
            f"note: thresholds were calibrated for windows of {cal.window} rows; "
            f"this replay uses {spec.rows}",
            force=True,
        )
    monitor = Monitor(
        baseline,
        policy,
        model=opts.model or baseline.model or Path(opts.baseline).stem,
        version=opts.version or baseline.version or "0",
        threads=opts.threads,
    )
    any_drift = False
    rows = 0
    binary = fmt == "jsonl"
    out = _open(output, binary)
    try:
        table = None if binary else TableWriter.for_stream(out)
        if table is not None:
            table.header()
        invalid = InvalidLines(progress)
        for window in windows_of(opts, spec, monitor, progress, invalid):
            if invalid.pending:
                window = replace(window, invalid_events=invalid.take())
            record = monitor.record(window)
            any_drift = any_drift or record["health"] != "ok"
            rows += window.count
            if table is None:
                out.write(jsonl(record))
            else:
                table.write(record)
            progress.update(f"{window.index + 1} windows, {rows:,} rows")
        if table is not None:
            table.summary()
    finally:
        monitor.close()
        if output is not None:
            out.close()
        else:
            out.flush()
    progress.done(f"{invalid.total} invalid lines skipped" if invalid.total else None)
    return any_drift


def _open(path: str | None, binary: bool) -> Any:
    """Standard output (text or bytes), or the file ``path``; the caller closes a file."""
    if path is None:
        return sys.stdout.buffer if binary else sys.stdout
    try:
        return open(path, "wb" if binary else "w")
    except OSError as exc:
        raise ConfigError(f"-o {path}: cannot write: {exc.strerror}") from exc
