"""Read Parquet, CSV, JSONL and Arrow IPC files as a stream of Arrow record batches.

Memory stays bounded by the batch size, whatever the file length: every format is read with
pyarrow's streaming readers. Errors from pyarrow or the OS become
:class:`driftline.exceptions.DataError` with a one-line reason.
"""

from __future__ import annotations

import enum
from collections.abc import Iterator
from pathlib import Path

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.ipc as ipc
import pyarrow.json as pajson
import pyarrow.parquet as pq

from driftline.exceptions import DataError

DEFAULT_BATCH_ROWS = 65_536


class FileFormat(enum.StrEnum):
    PARQUET = "parquet"
    CSV = "csv"
    JSONL = "jsonl"
    ARROW = "arrow"


_SUFFIXES = {
    ".parquet": FileFormat.PARQUET,
    ".pq": FileFormat.PARQUET,
    ".csv": FileFormat.CSV,
    ".tsv": FileFormat.CSV,
    ".jsonl": FileFormat.JSONL,
    ".ndjson": FileFormat.JSONL,
    ".json": FileFormat.JSONL,
    ".arrow": FileFormat.ARROW,
    ".feather": FileFormat.ARROW,
    ".ipc": FileFormat.ARROW,
}


def detect_format(path: Path) -> FileFormat:
    fmt = _SUFFIXES.get(path.suffix.lower())
    if fmt is None:
        known = ", ".join(sorted(_SUFFIXES))
        raise DataError(f"{path}: cannot tell the file format from '{path.suffix}' (known: {known})")
    return fmt


def read_batches(
    path: str | Path,
    *,
    columns: list[str] | None = None,
    batch_rows: int = DEFAULT_BATCH_ROWS,
    fmt: FileFormat | None = None,
) -> Iterator[pa.RecordBatch]:
    """Yield the file's rows as record batches of about ``batch_rows`` rows.

    ``columns`` restricts what is read, where the format allows it (Parquet, Arrow); the
    other formats read every column and the caller selects.
    """
    p = Path(path)
    if not p.is_file():
        raise DataError(f"{p}: no such file")
    kind = fmt or detect_format(p)
    try:
        if kind is FileFormat.PARQUET:
            yield from _parquet(p, columns, batch_rows)
        elif kind is FileFormat.CSV:
            yield from _csv(p, batch_rows)
        elif kind is FileFormat.JSONL:
            yield from _jsonl(p, batch_rows)
        else:
            yield from _arrow(p, columns)
    except (pa.ArrowException, OSError, ValueError) as exc:
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise DataError(f"{p}: cannot read as {kind.value}: {reason}") from exc


def schema_of(path: str | Path, fmt: FileFormat | None = None) -> pa.Schema:
    """The file's schema (for JSONL and CSV: as inferred from the first block)."""
    for batch in read_batches(path, fmt=fmt, batch_rows=1024):
        return batch.schema
    raise DataError(f"{path}: the file has no rows")


def _parquet(p: Path, columns: list[str] | None, batch_rows: int) -> Iterator[pa.RecordBatch]:
    with pq.ParquetFile(p) as f:
        names = set(f.schema_arrow.names)
        wanted = [c for c in columns if c in names] if columns is not None else None
        yield from f.iter_batches(batch_size=batch_rows, columns=wanted)


def _csv(p: Path, batch_rows: int) -> Iterator[pa.RecordBatch]:
    delimiter = "\t" if p.suffix.lower() == ".tsv" else ","
    block = max(1 << 20, batch_rows * 64)
    reader = pacsv.open_csv(
        p,
        read_options=pacsv.ReadOptions(block_size=block),
        parse_options=pacsv.ParseOptions(delimiter=delimiter),
    )
    yield from reader


def _jsonl(p: Path, batch_rows: int) -> Iterator[pa.RecordBatch]:
    block = max(1 << 20, batch_rows * 128)
    reader = pajson.open_json(p, read_options=pajson.ReadOptions(block_size=block))
    yield from reader


def _arrow(p: Path, columns: list[str] | None) -> Iterator[pa.RecordBatch]:
    source = pa.memory_map(str(p), "r")
    try:
        reader: ipc.RecordBatchFileReader | ipc.RecordBatchStreamReader = ipc.open_file(source)
        batches: Iterator[pa.RecordBatch] = (
            reader.get_batch(i) for i in range(reader.num_record_batches)  # type: ignore[union-attr]
        )
    except pa.ArrowInvalid:
        source.seek(0)
        reader = ipc.open_stream(source)
        batches = iter(reader)
    for batch in batches:
        if columns is not None:
            keep = [c for c in columns if c in batch.schema.names]
            batch = batch.select(keep)
        yield batch
