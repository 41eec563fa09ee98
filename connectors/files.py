"""Read Parquet, CSV, JSONL and Arrow IPC files as a stream of Arrow record batches.

Memory stays bounded by the batch size, whatever the file length: every format is read with
pyarrow's streaming readers. Errors from pyarrow or the OS become
:class:`driftline.exceptions.DataError` with a one-line reason.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import orjson
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.ipc as ipc
import pyarrow.json as pajson
import pyarrow.parquet as pq

from driftline.columns import json_column
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
        raise DataError(
            f"{path}: cannot tell the file format from '{path.suffix}' (known: {known})"
        )
    return fmt


def read_batches(
    path: str | Path,
    *,
    columns: list[str] | None = None,
    batch_rows: int = DEFAULT_BATCH_ROWS,
    fmt: FileFormat | None = None,
    on_invalid: Callable[[int, str], None] | None = None,
) -> Iterator[pa.RecordBatch]:
    """Yield the file's rows as record batches of about ``batch_rows`` rows.

    ``columns`` restricts what is read, where the format allows it (Parquet, Arrow); the
    other formats read every column and the caller selects.

    With ``on_invalid``, JSONL is read tolerantly (see :func:`_jsonl_tolerant`): a line that
    is not a JSON object is passed to ``on_invalid(line_number, reason)`` and skipped.
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
        elif kind is FileFormat.JSONL and on_invalid is not None:
            yield from _jsonl_tolerant(p, batch_rows, on_invalid)
        elif kind is FileFormat.JSONL:
            yield from _jsonl(p, batch_rows)
        else:
            yield from _arrow(p, columns)
    except (pa.ArrowException, OSError, ValueError) as exc:
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise DataError(f"{p}: cannot read as {kind.value}: {reason}") from exc


def schema_of(
    path: str | Path, fmt: FileFormat | None = None, *, tolerant: bool = False
) -> pa.Schema:
    """The file's schema (for JSONL and CSV: as inferred from the first block)."""
    p = Path(path)
    kind = fmt or (detect_format(p) if p.is_file() else None)
    if kind is FileFormat.PARQUET:
        # from the footer: a first batch would decode a row group (tens of MB held by
        # Arrow's memory pool for the rest of a replay); an unreadable footer falls
        # through to read_batches, which says what is wrong
        try:
            with pq.ParquetFile(p) as f:
                rows, schema = f.metadata.num_rows, f.schema_arrow
        except (pa.ArrowException, OSError, ValueError):
            rows = None
        if rows:
            return schema
        if rows == 0:
            raise DataError(f"{path}: the file has no rows")
    skip = (lambda _line, _reason: None) if tolerant else None
    for batch in read_batches(path, fmt=fmt, batch_rows=1024, on_invalid=skip):
        return batch.schema
    raise DataError(f"{path}: the file has no rows")


PARQUET_BUFFER = 1 << 16
"""Parquet column chunks are read through a buffer of this many bytes, not whole (no
pre-buffering): the reader then holds a buffer per column instead of every column chunk of
the row group at once, which keeps replay's resident set lower at the same speed. 64 KiB,
not 1 MiB: the buffers are held for every column read, so 25 columns of 1 MiB buffers
would be 25 MB."""


def _parquet(p: Path, columns: list[str] | None, batch_rows: int) -> Iterator[pa.RecordBatch]:
    with pq.ParquetFile(p, buffer_size=PARQUET_BUFFER, pre_buffer=False) as f:
        names = set(f.schema_arrow.names)
        wanted = [c for c in columns if c in names] if columns is not None else None
        for i in range(f.metadata.num_row_groups):
            # one row group at a time: a reader given them all reads ahead and holds more
            yield from f.iter_batches(
                batch_size=batch_rows, row_groups=[i], columns=wanted, use_threads=False
            )


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
            reader.get_batch(i) for i in range(reader.num_record_batches)
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


def _flatten(obj: dict[str, Any], prefix: str, out: dict[str, Any]) -> None:
    for key, value in obj.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            _flatten(value, name + ".", out)
        else:
            out[name] = value


def _jsonl_tolerant(
    p: Path, batch_rows: int, on_invalid: Callable[[int, str], None]
) -> Iterator[pa.RecordBatch]:
    """JSON lines parsed one by one with orjson: tolerant of mixed types and bad lines.
    Nested objects are flattened to dotted names (``features.amount``)."""
    rows: list[dict[str, Any]] = []
    names: dict[str, None] = {}
    with p.open("rb") as fh:
        for number, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            try:
                obj = orjson.loads(line)
            except orjson.JSONDecodeError as exc:
                on_invalid(number, f"not JSON ({exc})")
                continue
            if not isinstance(obj, dict):
                on_invalid(number, f"a JSON {type(obj).__name__}, not an object")
                continue
            flat: dict[str, Any] = {}
            _flatten(obj, "", flat)
            names.update(dict.fromkeys(flat))
            rows.append(flat)
            if len(rows) >= batch_rows:
                yield _batch(rows, names)
                rows = []
    if rows:
        yield _batch(rows, names)


def _batch(rows: list[dict[str, Any]], names: dict[str, None]) -> pa.RecordBatch:
    arrays = [json_column([r.get(n) for r in rows]) for n in names]
    return pa.RecordBatch.from_arrays(arrays, names=list(names))
