"""Decode serving events into column batches, one per model version.

An event is a JSON object (DESIGN.md, "Events")::

    {"model": "fraud", "version": "7", "id": "req-81f3", "ts": 1795300000.25,
     "features": {"amount": 12.5, "country": "DE"}, "prediction": 0.83}

or a row of an Arrow IPC stream (content type ``application/vnd.apache.arrow.stream``) with
the same names as columns; ``features`` may be a struct column, or the features may be
top-level columns. Field names are mappable with dotted paths (:class:`FieldMap`).

What cannot be used is not lost: a message that does not decode, or an event without a
model, version or features, becomes a :class:`DeadLetter` with the reason. A feature value
of the wrong type is kept (and counted as a type error when the window is computed).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import orjson
import pyarrow as pa
import pyarrow.compute as pc

from driftline.columns import json_column
from driftline.exceptions import DataError
from driftline.windows import parse_ts, to_seconds

JSON = "application/json"
ARROW = "application/vnd.apache.arrow.stream"


@dataclass(frozen=True)
class FieldMap:
    """Where each part of an event is, as a dotted path into the JSON object."""

    model: str = "model"
    version: str = "version"
    id: str = "id"
    ts: str = "ts"
    features: str = "features"
    prediction: str = "prediction"
    label: str = "label"


@dataclass(frozen=True)
class DeadLetter:
    value: bytes
    reason: str


@dataclass
class Decoded:
    """Events grouped by (model, version): a table with ``id``, ``ts``, the features and
    ``prediction``; plus the dead letters."""

    tables: dict[tuple[str, str], list[pa.Table]] = field(default_factory=dict)
    dead: list[DeadLetter] = field(default_factory=list)

    def add(self, key: tuple[str, str], table: pa.Table) -> None:
        self.tables.setdefault(key, []).append(table)

    @property
    def events(self) -> int:
        return sum(t.num_rows for parts in self.tables.values() for t in parts)


def _path(obj: Mapping[str, Any], dotted: str) -> Any:
    cur: Any = obj
    for part in dotted.split("."):
        if not isinstance(cur, dict):
            return None
        cur = cur.get(part)
    return cur


def _version(value: Any) -> str | None:
    if isinstance(value, str) and value:
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return None


@dataclass
class _Group:
    ids: list[Any] = field(default_factory=list)
    ts: list[float] = field(default_factory=list)
    predictions: list[Any] = field(default_factory=list)
    features: dict[str, list[Any]] = field(default_factory=dict)

    def append(
        self, event_id: Any, ts: float, features: Mapping[str, Any], prediction: Any
    ) -> None:
        n = len(self.ids)
        for name, value in features.items():
            column = self.features.get(name)
            if column is None:
                column = self.features[name] = [None] * n
            column.append(value)
        for column in self.features.values():
            if len(column) == n:  # absent from this event
                column.append(None)
        self.ids.append(event_id)
        self.ts.append(ts)
        self.predictions.append(prediction)

    def table(self) -> pa.Table:
        columns = {
            "id": pa.array([None if i is None else str(i) for i in self.ids], pa.string()),
            "ts": pa.array(self.ts, pa.float64()),
        }
        columns.update({name: json_column(values) for name, values in self.features.items()})
        columns["prediction"] = json_column(self.predictions)
        return pa.table(columns)


def decode_json(values: Iterable[bytes], fields: FieldMap, now: float) -> Decoded:
    """JSON messages → per-version tables; ``now`` stands in for a missing ``ts``."""
    out = Decoded()
    groups: dict[tuple[str, str], _Group] = {}
    for value in values:
        try:
            obj = orjson.loads(value)
        except orjson.JSONDecodeError as exc:
            out.dead.append(DeadLetter(value, f"not JSON: {exc}"))
            continue
        if not isinstance(obj, dict):
            out.dead.append(DeadLetter(value, f"a JSON {type(obj).__name__}, not an object"))
            continue
        reason, key, ts = _check(obj, fields, now)
        if reason:
            out.dead.append(DeadLetter(value, reason))
            continue
        assert key is not None and ts is not None
        group = groups.get(key)
        if group is None:
            group = groups[key] = _Group()
        group.append(
            _path(obj, fields.id), ts, _path(obj, fields.features), _path(obj, fields.prediction)
        )
    for key, group in groups.items():
        out.add(key, group.table())
    return out


def _check(
    obj: Mapping[str, Any], fields: FieldMap, now: float
) -> tuple[str | None, tuple[str, str] | None, float | None]:
    model = _path(obj, fields.model)
    if not isinstance(model, str) or not model:
        return f"missing or empty field '{fields.model}'", None, None
    version = _version(_path(obj, fields.version))
    if version is None:
        return f"missing field '{fields.version}' (a string or an integer)", None, None
    features = _path(obj, fields.features)
    if not isinstance(features, dict):
        return f"field '{fields.features}' must be an object of feature values", None, None
    raw_ts = _path(obj, fields.ts)
    ts = now if raw_ts is None else parse_ts(raw_ts)
    if ts is None:
        return f"field '{fields.ts}' must be epoch seconds or ISO-8601, got {raw_ts!r}", None, None
    return None, (model, version), ts


def decode_arrow(value: bytes, fields: FieldMap, now: float) -> Decoded:
    """One Arrow IPC stream message (a batch of events) → per-version tables."""
    out = Decoded()
    try:
        table = pa.ipc.open_stream(pa.py_buffer(value)).read_all()
    except (pa.ArrowInvalid, OSError) as exc:
        out.dead.append(DeadLetter(value, f"not an Arrow IPC stream: {exc}"))
        return out
    names = table.column_names
    for required in (fields.model, fields.version):
        if required not in names:
            out.dead.append(DeadLetter(value, f"Arrow batch has no '{required}' column"))
            return out
    if fields.features in names:
        if not pa.types.is_struct(table.schema.field(fields.features).type):
            out.dead.append(DeadLetter(value, f"Arrow column '{fields.features}' must be a struct"))
            return out
        table = table.flatten()
        prefix = fields.features + "."
        table = table.rename_columns([n.removeprefix(prefix) for n in table.column_names])
    meta = {fields.model, fields.version, fields.id, fields.ts, fields.label}
    features = [n for n in table.column_names if n not in meta and n != fields.prediction]
    n = table.num_rows
    ts = _arrow_ts(table, fields.ts, now)
    if ts is None:
        out.dead.append(DeadLetter(value, f"Arrow column '{fields.ts}' is not a time"))
        return out
    models = pc.cast(table.column(fields.model), pa.string())
    versions = pc.cast(table.column(fields.version), pa.string())
    base = {
        "id": (
            pc.cast(table.column(fields.id), pa.string())
            if fields.id in table.column_names
            else pa.nulls(n, pa.string())
        ),
        "ts": ts,
        **{name: table.column(name) for name in features},
        "prediction": (
            table.column(fields.prediction)
            if fields.prediction in table.column_names
            else pa.nulls(n)
        ),
    }
    whole = pa.table(base)
    keys = pa.table({"m": models, "v": versions})
    for row in keys.group_by(["m", "v"]).aggregate([]).to_pylist():
        if row["m"] is None or row["v"] is None:
            continue
        mask = pc.and_(pc.equal(models, row["m"]), pc.equal(versions, row["v"]))
        out.add((row["m"], row["v"]), whole.filter(mask))
    missing = pc.sum(pc.or_(pc.is_null(models), pc.is_null(versions))).as_py() or 0
    if missing:
        out.dead.append(
            DeadLetter(value, f"{missing} rows of the Arrow batch have no model or version")
        )
    return out


def _arrow_ts(table: pa.Table, name: str, now: float) -> pa.Array | None:
    """Event times in seconds; ``now`` where a row has none; None if the column is no time."""
    if name not in table.column_names:
        return pa.array(np.full(table.num_rows, now))
    try:
        seconds = to_seconds(table.column(name))
    except DataError:
        return None
    return pa.array(np.where(np.isnan(seconds), now, seconds))


def decode(value: bytes, content_type: str | None, fields: FieldMap, now: float) -> Decoded:
    """One message of either content type."""
    if content_type is None or content_type.split(";")[0].strip() == JSON:
        return decode_json([value], fields, now)
    if content_type.split(";")[0].strip() == ARROW:
        return decode_arrow(value, fields, now)
    out = Decoded()
    out.dead.append(DeadLetter(value, f"unsupported content-type '{content_type}'"))
    return out
