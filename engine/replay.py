"""``driftline replay``: a data file through windows and the monitor, records out.

Memory is bounded by one window plus one read batch: the reader streams record batches,
only the baseline's columns (and the time column) are read, and records are written as
windows close.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from driftline import baseline as bl
from driftline.connectors.files import FileFormat, detect_format, read_batches, schema_of
from driftline.detectors import DriftPolicy
from driftline.exceptions import ConfigError, DataError
from driftline.monitor import Monitor, policy_for
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
    try:
        return DriftPolicy(**kwargs)  # type: ignore[arg-type]
    except ValueError as exc:
        raise ConfigError(f"--{str(exc).replace('_', '-')}") from exc


def windows_of(opts: ReplayOptions, monitor: Monitor, progress: Progress) -> Iterator[Window]:
    spec = WindowSpec.parse(opts.window, opts.lateness)
    if spec.seconds is not None and opts.time_column is None:
        raise ConfigError(f"--window {opts.window} is a duration: it needs --time-column")
    if opts.lateness and spec.seconds is None:
        raise ConfigError("--lateness applies to event-time windows only (--window 5m …)")
    data = Path(opts.data)
    fmt = detect_format(data)
    names = schema_of(data, fmt).names
    if opts.time_column is not None and opts.time_column not in names:
        raise DataError(f"{data}: time column '{opts.time_column}' is not in the data")
    for name in monitor.absent_columns(names):
        progress.update(f"note: baseline column '{name}' is absent from {data.name}", force=True)
    wanted = [c.name for c in monitor.baseline.monitored if c.name in names]
    if opts.time_column is not None and opts.time_column not in wanted:
        wanted.append(opts.time_column)
    # Only the monitored columns are read where the format allows (Parquet, Arrow).
    columns = wanted if fmt in (FileFormat.PARQUET, FileFormat.ARROW) else None
    batches = (
        b.select([n for n in wanted if n in b.schema.names])
        for b in read_batches(data, columns=columns, fmt=fmt)
    )
    if spec.rows is not None:
        return count_windows(batches, spec.rows, opts.time_column)
    assert spec.seconds is not None and opts.time_column is not None
    return time_windows(batches, opts.time_column, spec.seconds, spec.lateness)


def replay(opts: ReplayOptions, *, fmt: str = "table", output: str | None = None, quiet: bool = False) -> bool:
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
    )
    any_drift = False
    rows = 0
    binary = fmt == "jsonl"
    out = _open(output, binary)
    try:
        table = None if binary else TableWriter.for_stream(out)  # type: ignore[arg-type]
        if table is not None:
            table.header()
        for window in windows_of(opts, monitor, progress):
            record = monitor.record(window)
            any_drift = any_drift or record["health"] != "ok"
            rows += window.count
            if table is None:
                out.write(jsonl(record))  # type: ignore[arg-type]
            else:
                table.write(record)
            progress.update(f"{window.index + 1} windows, {rows:,} rows")
        if table is not None:
            table.summary()
    finally:
        if output is not None:
            out.close()
        else:
            out.flush()
    progress.done()
    return any_drift


def _open(path: str | None, binary: bool):  # type: ignore[no-untyped-def]
    if path is None:
        return sys.stdout.buffer if binary else sys.stdout
    try:
        return open(path, "wb" if binary else "w")  # noqa: SIM115 - closed by replay()
    except OSError as exc:
        raise ConfigError(f"-o {path}: cannot write: {exc.strerror}") from exc
