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

import numpy as np
import pyarrow as pa

from driftline import baseline as bl
from driftline.baseline import Baseline
from driftline.connectors.files import (
    DEFAULT_BATCH_ROWS,
    FileFormat,
    detect_format,
    read_batches,
    schema_of,
)
from driftline.detectors import DriftPolicy
from driftline.exceptions import ConfigError, DataError
from driftline.health import Health, fold
from driftline.monitor import Monitor, column_floats, policy_for, resolve_columns
from driftline.output import Progress, TableWriter, jsonl
from driftline.proxy import TASKS, ProxyConfig, ProxyTracker
from driftline.quality import performance_record, quality_tracker
from driftline.windows import Window, WindowSpec, count_windows, time_windows, to_seconds


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
    task: str = "classification"
    """How the label grades the prediction (``[models.proxy] task`` in serve)."""
    score_threshold: float = 0.5
    """Classification: a score at or above it is a positive call (``[models.proxy]
    threshold``)."""


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
    label = label_column(monitor.baseline, names)
    if label is not None:
        mapping[label] = monitor.baseline.label.name  # type: ignore[union-attr]
    if opts.time_column is not None:
        mapping.setdefault(opts.time_column, opts.time_column)
    wanted = list(mapping)
    # Only the monitored columns are read where the format allows (Parquet, Arrow); JSONL
    # is read line by line, tolerating stray types and bad lines (counted, not fatal).
    columns = wanted if fmt in (FileFormat.PARQUET, FileFormat.ARROW) else None
    on_invalid = invalid if tolerant else None

    def selected() -> Iterator[pa.RecordBatch]:
        # windows by event time keep the reader's default batches: their watermark moves
        # per batch, so the batch size decides which out-of-order rows are late
        rows = READ_ROWS if spec.rows is not None else DEFAULT_BATCH_ROWS
        batches = read_batches(
            data, columns=columns, fmt=fmt, on_invalid=on_invalid, batch_rows=rows
        )
        for b in batches:
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
        realised = Realised.of(baseline, monitor, opts)
        for window in windows_of(opts, spec, monitor, progress, invalid):
            if invalid.pending:
                window = replace(window, invalid_events=invalid.take())
            record = monitor.record(window)
            performance = realised.grade(window, record) if realised is not None else None
            any_drift = any_drift or record["health"] != "ok"
            rows += window.count
            if table is None:
                out.write(jsonl(record))
                if performance is not None:
                    out.write(jsonl(performance))
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


def label_column(baseline: Baseline, names: list[str]) -> str | None:
    """The data column holding the baseline's label (its own name, or ``label``), when the
    baseline has a label and a prediction to grade; else None."""
    label = baseline.label
    if label is None or baseline.prediction is None:
        return None
    return next((c for c in (label.name, "label") if c in names), None)


@dataclass
class Realised:
    """Realised quality of the rows that carry their label: each window's predictions
    graded against its labels, as serve grades the label join's pairs
    (:func:`driftline.quality.performance_record`, ``"source": "data"``), the series
    through the same change detector, and its verdict folded into the window's health."""

    monitor: Monitor
    tracker: ProxyTracker
    prediction: str
    label: str
    time_column: str | None

    @staticmethod
    def of(baseline: Baseline, monitor: Monitor, opts: ReplayOptions) -> Realised | None:
        if baseline.label is None or baseline.prediction is None:
            return None
        if opts.task not in TASKS:
            raise ConfigError(f"--task must be one of {', '.join(TASKS)}, got {opts.task!r}")
        if not 0.0 <= opts.score_threshold <= 1.0:
            raise ConfigError(f"--score-threshold must be in [0, 1], got {opts.score_threshold}")
        cfg = ProxyConfig(task=opts.task, threshold=opts.score_threshold)
        return Realised(
            monitor,
            quality_tracker(baseline, cfg),
            baseline.prediction.name,
            baseline.label.name,
            opts.time_column,
        )

    def grade(self, window: Window, record: dict[str, Any]) -> dict[str, Any] | None:
        """The window's ``performance`` record (None when no row has a label), after
        folding its verdict into ``record``'s health and reasons."""
        if not any(self.label in t.column_names for t in window.parts):
            return None
        labels = column_floats(window.chunks(self.label))[0]
        scores = column_floats(window.chunks(self.prediction))[0]
        if self.time_column is not None:
            ts = np.concatenate([to_seconds(c) for c in window.chunks(self.time_column)])
        else:
            ts = np.full(labels.shape[0], np.nan)
        key = (self.monitor.model, self.monitor.version)
        perf = performance_record(
            key, window.index, self.tracker, ts, scores, labels, source="data"
        )
        fold(record, Health.parse(perf["observed_health"]), perf["reasons"])
        return perf


READ_ROWS = 10_000
"""Rows per batch read from the file for windows by count. Windows are put together from
batches, so smaller batches hold less beside the window being filled (a batch of 65,536
rows × 25 float64 columns is 13 MB, one of 10,000 is 2 MB). Windows by event time read
the default 65,536 (see :func:`windows_of`)."""


def _open(path: str | None, binary: bool) -> Any:
    """Standard output (text or bytes), or the file ``path``; the caller closes a file."""
    if path is None:
        return sys.stdout.buffer if binary else sys.stdout
    try:
        return open(path, "wb" if binary else "w")
    except OSError as exc:
        raise ConfigError(f"-o {path}: cannot write: {exc.strerror}") from exc
