"""Checkpoints under ``state.dir``: what the engine needs to resume exactly where it was.

A checkpoint is one file, ``checkpoint.zip``: ``state.json`` (offsets, window positions,
health, counters) beside the tables of the open windows (Arrow IPC streams) and the arrays
of each stream's previous window (NumPy ``.npy``). It is written to a temporary file,
flushed and fsync'ed, then renamed over the old one and the directory fsync'ed: at any
moment the file on disk is a whole checkpoint, the new or the old.

The engine's rule (DESIGN.md, "Service"): outputs of the windows closed so far are flushed to
Kafka first, then the checkpoint is made durable, and only then are the offsets it covers
committed. A crash at any point therefore resumes from the last durable checkpoint: events
after it are read again and produce the same windows again (window records may be published
twice, identical; see docs/engine.md), and no event is counted twice in the state.

One engine owns a state directory at a time: :class:`StateDir` holds an exclusive
``flock`` on ``state.dir/lock`` for its lifetime (released by the kernel even on ``kill -9``).
"""

from __future__ import annotations

import fcntl
import io
import os
import zipfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pyarrow as pa
from numpy.typing import NDArray

from driftline.exceptions import ConfigError, DriftlineError

FORMAT_VERSION = 1
CHECKPOINT = "checkpoint.zip"


class StateError(DriftlineError):
    """The state directory cannot be used (locked, unwritable, or a checkpoint is corrupt)."""


@dataclass
class Snapshot:
    """Everything in one checkpoint: JSON-able ``meta``, and named tables and arrays."""

    meta: dict[str, Any]
    tables: dict[str, list[pa.Table]] = field(default_factory=dict)
    arrays: dict[str, NDArray[Any]] = field(default_factory=dict)


def _table_bytes(table: pa.Table) -> bytes:
    sink = io.BytesIO()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    return sink.getvalue()


def _array_bytes(arr: NDArray[Any]) -> bytes:
    sink = io.BytesIO()
    np.save(sink, np.ascontiguousarray(arr), allow_pickle=False)
    return sink.getvalue()


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class StateDir:
    """The engine's state directory, locked for one engine."""

    def __init__(self, path: Path) -> None:
        self.path = path
        try:
            path.mkdir(parents=True, exist_ok=True)
            self._lock = open(path / "lock", "a+")  # noqa: SIM115 (held for the lifetime)
        except OSError as exc:
            raise ConfigError(f"state.dir {path}: cannot use it: {exc.strerror or exc}") from None
        try:
            fcntl.flock(self._lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self._lock.seek(0)
            holder = self._lock.read().strip() or "another process"
            self._lock.close()
            raise ConfigError(
                f"state.dir {path} is in use by {holder}; give each engine its own state.dir"
            ) from None
        self._lock.seek(0)
        self._lock.truncate()
        self._lock.write(f"driftline pid {os.getpid()}\n")
        self._lock.flush()

    def close(self) -> None:
        if not self._lock.closed:
            fcntl.flock(self._lock, fcntl.LOCK_UN)
            self._lock.close()

    def __enter__(self) -> StateDir:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def checkpoint_path(self) -> Path:
        return self.path / CHECKPOINT

    def write(self, snap: Snapshot) -> int:
        """Make ``snap`` the durable checkpoint; returns its size in bytes."""
        tmp = self.path / (CHECKPOINT + ".tmp")
        meta = {"format_version": FORMAT_VERSION, **snap.meta}
        try:
            with open(tmp, "wb") as f:
                with zipfile.ZipFile(f, "w", zipfile.ZIP_STORED) as zf:
                    zf.writestr("state.json", orjson.dumps(meta))
                    for name, tables in snap.tables.items():
                        for i, t in enumerate(tables):
                            zf.writestr(f"tables/{name}/{i}.arrow", _table_bytes(t))
                    for name, arr in snap.arrays.items():
                        zf.writestr(f"arrays/{name}.npy", _array_bytes(arr))
                f.flush()
                os.fsync(f.fileno())
                size = f.tell()
            os.replace(tmp, self.checkpoint_path)
            _fsync_dir(self.path)
        except OSError as exc:
            raise StateError(
                f"cannot write the checkpoint in {self.path}: {exc.strerror or exc}"
            ) from exc
        return size

    def read(self) -> Snapshot | None:
        """The last durable checkpoint, or None when there is none."""
        path = self.checkpoint_path
        if not path.exists():
            return None
        try:
            with zipfile.ZipFile(path) as zf:
                meta = orjson.loads(zf.read("state.json"))
                version = meta.get("format_version")
                if version != FORMAT_VERSION:
                    raise StateError(
                        f"{path}: checkpoint format {version}, this driftline reads "
                        f"{FORMAT_VERSION}; move the state directory away to start afresh"
                    )
                tables: dict[str, list[tuple[int, pa.Table]]] = {}
                arrays: dict[str, NDArray[Any]] = {}
                for name in zf.namelist():
                    if name.startswith("tables/"):
                        _, group, leaf = name.split("/", 2)
                        reader = pa.ipc.open_stream(pa.py_buffer(zf.read(name)))
                        tables.setdefault(group, []).append((int(leaf[:-6]), reader.read_all()))
                    elif name.startswith("arrays/"):
                        key = name[len("arrays/") : -len(".npy")]
                        arrays[key] = np.load(io.BytesIO(zf.read(name)), allow_pickle=False)
        except StateError:
            raise
        except (OSError, zipfile.BadZipFile, KeyError, ValueError, pa.ArrowInvalid) as exc:
            raise StateError(f"{path}: the checkpoint cannot be read: {exc}") from exc
        ordered = {k: [t for _, t in sorted(v, key=lambda x: x[0])] for k, v in tables.items()}
        return Snapshot(meta, ordered, arrays)


def offsets_to_json(offsets: Mapping[tuple[str, int], int]) -> list[list[Any]]:
    return [[t, p, o] for (t, p), o in sorted(offsets.items())]


def offsets_from_json(rows: Sequence[Sequence[Any]]) -> dict[tuple[str, int], int]:
    return {(str(t), int(p)): int(o) for t, p, o in rows}
