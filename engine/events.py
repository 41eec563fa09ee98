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

A batch of JSON messages is decoded in one call of pyarrow's JSON reader (columns built in
C++, no Python object per event) whenever the batch is well formed and its columns have one
type each; otherwise — a broken message, a feature that is a number in one event and text in
another — the batch is decoded message by message with orjson, which keeps every good event
and dead-letters each bad one with its reason. Both paths give the same values.

Every decoded table carries :data:`MESSAGE`, the index of the message each row came from,
so that a later stage can still dead-letter the original bytes of a row.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import orjson
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.json as pj
from numpy.typing import NDArray

from driftline.columns import json_column
from driftline.exceptions import DataError
from driftline.windows import parse_ts, to_seconds

JSON = "application/json"
ARROW = "application/vnd.apache.arrow.stream"
MESSAGE = "__message"
"""Column of every decoded table: the index, in the decoded batch, of the row's message."""
FAST_PATH_MIN = 16
"""Batches smaller than this skip the columnar JSON reader (its set-up costs more)."""
MIN_TS = -62_135_596_800.0
"""0001-01-01T00:00:00Z: the earliest event time (what ISO-8601 text can say)."""
MAX_TS = 253_402_300_800.0
"""10000-01-01T00:00:00Z: event times must be before it. A time beyond (say, 1e300, or
milliseconds read as seconds) would push the watermark so far that every later event of the
stream is late."""
MAX_DEPTH = 1024
"""Deepest nesting of a JSON message (orjson's own limit). pyarrow's JSON reader has none and
overflows the stack on a value nested ~50,000 deep, so a batch that may hold a deeper one
goes the message-by-message path, where orjson dead-letters it."""
RESERVED = frozenset({"id", "ts", "prediction", MESSAGE})
"""Column names of a decoded table that are not features; a feature of one of these names
is kept as ``features.<name>`` (which the monitor finds too)."""


def _valid_time(ts: float) -> bool:
    return MIN_TS <= ts < MAX_TS


def _feature_name(name: str) -> str:
    return f"features.{name}" if name in RESERVED else name


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
    """What is wrong, for a person (sent in the dead-letter message's header)."""
    code: str = "invalid"
    """A fixed, short name of the kind of fault, for counting (metric label ``reason``)."""
    message: int = 0
    """Index of the message in the decoded batch."""


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


def field_at(obj: Mapping[str, Any], dotted: str) -> Any:
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
    messages: list[int] = field(default_factory=list)
    ids: list[Any] = field(default_factory=list)
    ts: list[float] = field(default_factory=list)
    predictions: list[Any] = field(default_factory=list)
    features: dict[str, list[Any]] = field(default_factory=dict)

    def append(
        self, message: int, event_id: Any, ts: float, features: Mapping[str, Any], prediction: Any
    ) -> None:
        n = len(self.ids)
        for key, value in features.items():
            name = _feature_name(key)
            column = self.features.get(name)
            if column is None:
                column = self.features[name] = [None] * n
            column.append(value)
        for column in self.features.values():
            if len(column) == n:  # absent from this event
                column.append(None)
        self.messages.append(message)
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
        columns[MESSAGE] = pa.array(self.messages, pa.int64())
        return pa.table(columns)


def _nows(now: float | Sequence[float], n: int) -> Sequence[float]:
    return [float(now)] * n if isinstance(now, int | float) else now


def decode_json(values: Sequence[bytes], fields: FieldMap, now: float | Sequence[float]) -> Decoded:
    """JSON messages → per-version tables. ``now`` (one time, or one per message, such as
    the Kafka record timestamps) stands in for a missing ``ts``."""
    nows = _nows(now, len(values))
    if len(nows) != len(values):
        raise ValueError(f"{len(values)} messages but {len(nows)} fallback times")
    fast = _decode_json_columnar(values, fields, nows) if len(values) >= FAST_PATH_MIN else None
    return fast if fast is not None else _decode_json_each(values, fields, nows)


def _decode_json_each(values: Sequence[bytes], fields: FieldMap, nows: Sequence[float]) -> Decoded:
    out = Decoded()
    groups: dict[tuple[str, str], _Group] = {}
    for i, value in enumerate(values):
        try:
            obj = orjson.loads(value)
        except orjson.JSONDecodeError as exc:
            out.dead.append(DeadLetter(value, f"not JSON: {exc}", "not_json", i))
            continue
        if not isinstance(obj, dict):
            reason = f"a JSON {type(obj).__name__}, not an object"
            out.dead.append(DeadLetter(value, reason, "not_object", i))
            continue
        problem, code, key, ts = _check(obj, fields, nows[i])
        if problem:
            out.dead.append(DeadLetter(value, problem, code, i))
            continue
        assert key is not None and ts is not None
        group = groups.get(key)
        if group is None:
            group = groups[key] = _Group()
        group.append(
            i,
            field_at(obj, fields.id),
            ts,
            field_at(obj, fields.features),
            field_at(obj, fields.prediction),
        )
    for key, group in groups.items():
        out.add(key, group.table())
    return out


def _check(
    obj: Mapping[str, Any], fields: FieldMap, now: float
) -> tuple[str | None, str, tuple[str, str] | None, float | None]:
    model = field_at(obj, fields.model)
    if not isinstance(model, str) or not model:
        return f"missing or empty field '{fields.model}'", "missing_field", None, None
    version = _version(field_at(obj, fields.version))
    if version is None:
        reason = f"missing field '{fields.version}' (a string or an integer)"
        return reason, "missing_field", None, None
    features = field_at(obj, fields.features)
    if not isinstance(features, dict):
        reason = f"field '{fields.features}' must be an object of feature values"
        return reason, "missing_field", None, None
    raw_ts = field_at(obj, fields.ts)
    ts = now if raw_ts is None else parse_ts(raw_ts)
    if ts is None:
        reason = f"field '{fields.ts}' must be epoch seconds or ISO-8601, got {raw_ts!r}"
        return reason, "bad_time", None, None
    if not _valid_time(ts):
        reason = f"field '{fields.ts}' must be a time in the years 1 to 9999, got {raw_ts!r}"
        return reason, "bad_time", None, None
    return None, "", (model, version), ts


def _at(table: pa.Table, dotted: str) -> pa.ChunkedArray | pa.Array | None:
    """The column at a dotted path through struct columns, or None."""
    first, *rest = dotted.split(".")
    if first not in table.column_names:
        return None
    col: pa.ChunkedArray | pa.Array = table.column(first)
    for part in rest:
        t = col.type
        if not pa.types.is_struct(t) or t.get_field_index(part) < 0:
            return None
        col = pc.struct_field(col, part)
    return col


def _decode_json_columnar(
    values: Sequence[bytes], fields: FieldMap, nows: Sequence[float]
) -> Decoded | None:
    """The whole batch in one pass of pyarrow's JSON reader; None when the batch needs the
    message-by-message path (a message that is not one JSON object on one line, columns
    whose type changes between events, required fields of the wrong type)."""
    n = len(values)
    if _may_nest_deeper(values, MAX_DEPTH):
        return None
    buf = b"\n".join(values)
    if buf.count(b"\n") != n - 1:  # a message spans lines: let orjson judge it
        return None
    try:
        table = pj.read_json(pa.py_buffer(buf))
        for f in table.schema:  # the reader does not check that keys and text are UTF-8
            _check_field(f)
        table.validate(full=True)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError):
        return None
    if table.num_rows != n:  # blank messages, or several objects in one
        return None
    model = _at(table, fields.model)
    version = _at(table, fields.version)
    features = _at(table, fields.features)
    if model is None or not pa.types.is_string(model.type):
        return None
    if version is None or not (
        pa.types.is_string(version.type) or pa.types.is_integer(version.type)
    ):
        return None
    if features is None or not pa.types.is_struct(features.type):
        return None
    raw_ts = _at(table, fields.ts)
    if raw_ts is None:
        ts = np.asarray(nows, dtype=np.float64)
    else:
        try:
            seconds = to_seconds(raw_ts)
        except DataError:
            return None
        absent = pc.is_null(raw_ts).to_numpy(zero_copy_only=False)
        if np.isnan(seconds[~absent]).any():  # unreadable times: reasons per message
            return None
        ts = np.where(absent, np.asarray(nows, dtype=np.float64), seconds)
    if not ((ts >= MIN_TS) & (ts < MAX_TS)).all():  # times out of range: reasons per message
        return None
    versions = pc.cast(version, pa.string())
    # Kleene logic: a null model has a null length, and or_(true, null) would be null, which
    # pc.any skips: the event would be dropped without a dead letter
    bad = pc.or_kleene(
        pc.or_kleene(pc.is_null(model), pc.equal(pc.utf8_length(model), 0)),
        pc.or_kleene(pc.is_null(versions), pc.is_null(features)),
    )
    if pc.any(bad).as_py():
        return None
    if isinstance(features, pa.ChunkedArray):
        features = features.combine_chunks()
    columns: dict[str, Any] = {
        "id": _column_or_nulls(table, fields.id, n, pa.string()),
        "ts": pa.array(ts, pa.float64()),
    }
    for i in range(features.type.num_fields):
        columns[_feature_name(features.type.field(i).name)] = features.field(i)
    columns["prediction"] = _column_or_nulls(table, fields.prediction, n, None)
    columns[MESSAGE] = pa.array(np.arange(n, dtype=np.int64))
    out = Decoded()
    _split_by_version(pa.table(columns), model, versions, out)
    return out


def _may_nest_deeper(values: Sequence[bytes], depth: int) -> bool:
    """Whether some message may nest deeper than ``depth`` (it has more brackets): only
    messages longer than ``2 * depth`` bytes can, and only those are counted."""
    if max(map(len, values)) <= 2 * depth:
        return False
    return any(v.count(b"[") + v.count(b"{") > depth for v in values if len(v) > 2 * depth)


def _column_or_nulls(
    table: pa.Table, dotted: str, n: int, cast: pa.DataType | None
) -> pa.ChunkedArray | pa.Array:
    col = _at(table, dotted)
    if col is None:
        return pa.nulls(n, cast or pa.null())
    return pc.cast(col, cast) if cast is not None and col.type != cast else col


def _constant(arr: pa.ChunkedArray | pa.Array) -> bool:
    """Whether every value equals the first, which is not null."""
    first = arr[0]
    return first.is_valid and bool(pc.all(pc.equal(arr, first)).as_py()) and arr.null_count == 0


def _split_by_version(
    whole: pa.Table,
    models: pa.ChunkedArray | pa.Array,
    versions: pa.ChunkedArray | pa.Array,
    out: Decoded,
) -> None:
    """Rows of ``whole`` into ``out``, one table per (model, version) in order of first
    appearance; rows without a model or version are left out (the caller reports them)."""
    if len(models) and _constant(models) and _constant(versions):  # the usual batch
        out.add((models[0].as_py(), versions[0].as_py()), whole)
        return
    keys = pa.table({"m": models, "v": versions})
    groups = keys.group_by(["m", "v"], use_threads=False).aggregate([])
    if groups.num_rows == 1:
        row = groups.to_pylist()[0]
        if row["m"] is not None and row["v"] is not None:
            out.add((row["m"], row["v"]), whole)
        return
    for row in groups.to_pylist():
        if row["m"] is None or row["v"] is None:
            continue
        mask = pc.and_(pc.equal(models, row["m"]), pc.equal(versions, row["v"]))
        out.add((row["m"], row["v"]), whole.filter(mask))


def read_arrow(value: bytes) -> pa.Table:
    """One Arrow IPC stream, fully validated (offsets, lengths, UTF-8): later compute
    kernels trust what they are given, and a corrupt stream that is read but not validated
    can crash the process. Raises :class:`pyarrow.ArrowException` (or ``OSError``)."""
    table = pa.ipc.open_stream(pa.py_buffer(value)).read_all()
    for f in table.schema:  # first: validate() reads the names too
        _check_field(f)
    table.validate(full=True)
    return table


def _check_field(f: pa.Field) -> None:
    """Raise :class:`pyarrow.ArrowInvalid` if a field name, at any depth, is not UTF-8
    (pyarrow would raise UnicodeDecodeError wherever the name is read), or a field is a
    union: no event field is one, and pyarrow's struct_field kernel crashed the process on
    an empty batch with a ``dense_union<>`` feature (found by fuzz/arrow_events.py)."""
    try:
        f.name  # noqa: B018 (decoded on access)
    except UnicodeDecodeError as exc:
        raise pa.ArrowInvalid(f"a field name is not UTF-8: {exc}") from None
    t = f.type
    if pa.types.is_dictionary(t):
        t = t.value_type
    if pa.types.is_union(t):
        raise pa.ArrowInvalid(f"column '{f.name}' is a union ({t}), which events cannot hold")
    for i in range(t.num_fields):
        _check_field(t.field(i))


def _duplicate(names: Sequence[str]) -> str | None:
    seen: set[str] = set()
    for name in names:
        if name in seen:
            return name
        seen.add(name)
    return None


def decode_arrow(value: bytes, fields: FieldMap, now: float, message: int = 0) -> Decoded:
    """One Arrow IPC stream message (a batch of events) → per-version tables."""
    out = Decoded()

    def dead(reason: str, code: str) -> Decoded:
        out.dead.append(DeadLetter(value, reason, code, message))
        return out

    try:
        table = read_arrow(value)
    except (pa.ArrowException, OSError) as exc:
        return dead(f"not an Arrow IPC stream: {str(exc)[:200]}", "not_arrow")
    names = table.column_names
    twice = _duplicate(names)
    if twice is not None:
        return dead(f"Arrow batch has two columns named '{twice}'", "bad_arrow")
    for required in (fields.model, fields.version):
        if required not in names:
            return dead(f"Arrow batch has no '{required}' column", "missing_field")
    meta = {fields.model, fields.version, fields.id, fields.ts, fields.label}
    feature_columns: dict[str, pa.ChunkedArray] = {}
    for name in names:
        if name in meta or name == fields.prediction:
            continue
        col = table.column(name)
        if name != fields.features:
            feature_columns[_feature_name(name)] = col
            continue
        if not pa.types.is_struct(col.type):
            return dead(f"Arrow column '{fields.features}' must be a struct", "bad_arrow")
        for i in range(col.type.num_fields):  # a struct's fields: the features
            inner = col.type.field(i).name
            short = _feature_name(inner)
            key = f"{fields.features}.{inner}" if short in names else short
            if key in feature_columns:
                reason = f"Arrow batch has feature '{inner}' twice"
                return dead(reason, "bad_arrow")
            feature_columns[key] = pc.struct_field(col, [i])
    n = table.num_rows
    ts = _arrow_ts(table, fields.ts, now)
    if ts is None:
        return dead(f"Arrow column '{fields.ts}' is not a time", "bad_time")
    try:
        models = pc.cast(table.column(fields.model), pa.string())
        versions = pc.cast(table.column(fields.version), pa.string())
        ids = (
            pc.cast(table.column(fields.id), pa.string())
            if fields.id in table.column_names
            else pa.nulls(n, pa.string())
        )
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
        return dead(f"Arrow model, version or id column is not text: {exc}", "bad_arrow")
    base = {
        "id": ids,
        "ts": ts,
        **feature_columns,
        "prediction": (
            table.column(fields.prediction)
            if fields.prediction in table.column_names
            else pa.nulls(n)
        ),
        MESSAGE: pa.array(np.full(n, message, dtype=np.int64)),
    }
    whole = pa.table(base)
    in_range = pc.and_(pc.greater_equal(ts, MIN_TS), pc.less(ts, MAX_TS))
    late = n - (pc.sum(in_range).as_py() or 0)
    if late:
        whole, models, versions = (
            whole.filter(in_range),
            models.filter(in_range),
            versions.filter(in_range),
        )
    _split_by_version(whole, models, versions, out)
    missing = pc.sum(pc.or_(pc.is_null(models), pc.is_null(versions))).as_py() or 0
    if missing:
        dead(f"{missing} rows of the Arrow batch have no model or version", "missing_field")
    if late:
        reason = f"{late} rows of the Arrow batch have a time outside the years 1 to 9999"
        dead(reason, "bad_time")
    return out


def _arrow_ts(table: pa.Table, name: str, now: float) -> pa.Array | None:
    """Event times in seconds; ``now`` where a row has none; None if the column is no time."""
    if name not in table.column_names:
        return pa.array(np.full(table.num_rows, now))
    try:
        seconds = to_seconds(table.column(name))
    except (DataError, pa.ArrowInvalid):  # not a time, or integers too large for a double
        return None
    return pa.array(np.where(np.isnan(seconds), now, seconds))


def _media_type(content_type: str | None) -> str:
    return JSON if content_type is None else content_type.split(";")[0].strip().lower()


def decode(value: bytes, content_type: str | None, fields: FieldMap, now: float) -> Decoded:
    """One message of either content type."""
    return decode_batch([value], [content_type], fields, [now])


def decode_batch(
    values: Sequence[bytes | None],
    content_types: Sequence[str | None],
    fields: FieldMap,
    nows: Sequence[float],
) -> Decoded:
    """A batch of messages of any content types (JSON ones decoded together). Dead letters
    and :data:`MESSAGE` refer to positions in ``values``."""
    out = Decoded()
    json_at: list[int] = []
    for i, (value, ctype) in enumerate(zip(values, content_types, strict=True)):
        media = _media_type(ctype)
        if value is None or len(value) == 0:
            out.dead.append(DeadLetter(value or b"", "empty message", "empty", i))
        elif media == JSON:
            json_at.append(i)
        elif media == ARROW:
            part = decode_arrow(value, fields, nows[i], i)
            for key, tables in part.tables.items():
                for t in tables:
                    out.add(key, t)
            out.dead.extend(part.dead)
        else:
            reason = f"unsupported content-type '{ctype}'"
            out.dead.append(DeadLetter(value, reason, "unsupported_content_type", i))
    if json_at:
        if len(json_at) == len(values):
            part = decode_json(values, fields, nows)  # type: ignore[arg-type]
        else:
            sub = decode_json([values[i] for i in json_at], fields, [nows[i] for i in json_at])  # type: ignore[misc]
            part = _renumber(sub, np.asarray(json_at, dtype=np.int64))
        for key, tables in part.tables.items():
            for t in tables:
                out.add(key, t)
        out.dead.extend(part.dead)
    out.dead.sort(key=lambda d: d.message)
    return out


@dataclass
class DecodedLabels:
    """Label events of a batch: request ids and their labels as floats (see
    :func:`driftline.labels.label_values`), and the dead letters."""

    ids: list[str] = field(default_factory=list)
    values: list[float] = field(default_factory=list)
    dead: list[DeadLetter] = field(default_factory=list)


def decode_labels(
    values: Sequence[bytes | None], content_types: Sequence[str | None], fields: FieldMap
) -> DecodedLabels:
    """Label events — ``{"id": "req-81f3", "label": 1}`` per JSON message, or an Arrow
    stream with id and label columns (dotted paths through structs) — with the same
    content-type and empty-message rules as :func:`decode_batch`. A message that cannot be
    read, an event without an id or a label, and a label that is not a number or a boolean
    are dead letters (one per Arrow message, with the count of its bad rows)."""
    from driftline.labels import label_values

    out = DecodedLabels()
    for m, (value, ctype) in enumerate(zip(values, content_types, strict=True)):
        media = _media_type(ctype)
        if value is None or len(value) == 0:
            out.dead.append(DeadLetter(value or b"", "empty message", "empty", m))
            continue
        if media not in (JSON, ARROW):
            reason = f"unsupported content-type '{ctype}'"
            out.dead.append(DeadLetter(value, reason, "unsupported_content_type", m))
            continue
        rows, bad = _label_rows(value, media, fields)
        if isinstance(rows, DeadLetter):
            out.dead.append(DeadLetter(value, rows.reason, rows.code, m))
            continue
        if bad:
            what = "event has" if media == JSON else f"{bad} rows of the Arrow batch have"
            reason = f"a label {what} no {fields.id!r} or no {fields.label!r}"
            out.dead.append(DeadLetter(value, reason, "missing_field", m))
        floats, invalid = label_values([label for _, label in rows])
        if invalid:
            shown = ", ".join(repr(rows[i][1]) for i in invalid[:3])
            reason = f"{len(invalid)} labels are not a number or a boolean: {shown}"
            out.dead.append(DeadLetter(value, reason, "bad_label", m))
        skip = set(invalid)
        for i, (event_id, _) in enumerate(rows):
            if i not in skip:
                out.ids.append(event_id)
                out.values.append(float(floats[i]))
    out.dead.sort(key=lambda d: d.message)
    return out


def _label_rows(
    value: bytes, media: str, fields: FieldMap
) -> tuple[list[tuple[str, Any]], int] | tuple[DeadLetter, int]:
    """(id, raw label) of each usable row and the number of rows without both; or the
    message's dead letter."""
    pairs: list[tuple[Any, Any]]
    if media == ARROW:
        try:
            table = read_arrow(value)
        except (pa.ArrowException, OSError) as exc:
            reason = f"not an Arrow IPC stream: {str(exc)[:200]}"
            return DeadLetter(value, reason, "bad_arrow"), 0
        twice = _duplicate(table.column_names)
        if twice is not None:
            reason = f"Arrow label batch has two columns named '{twice}'"
            return DeadLetter(value, reason, "bad_arrow"), 0
        ids, labels = _at(table, fields.id), _at(table, fields.label)
        if ids is None or labels is None:
            reason = f"Arrow label batch needs columns {fields.id!r} and {fields.label!r}"
            return DeadLetter(value, reason, "bad_arrow"), 0
        try:
            pairs = list(zip(ids.to_pylist(), labels.to_pylist(), strict=True))
        except (OverflowError, ValueError) as exc:  # e.g. a timestamp beyond Python's years
            return DeadLetter(value, f"Arrow label batch: {str(exc)[:200]}", "bad_arrow"), 0
    else:
        try:
            obj = orjson.loads(value)
        except orjson.JSONDecodeError as exc:
            return DeadLetter(value, f"not JSON: {exc}", "not_json"), 0
        if not isinstance(obj, dict):
            return DeadLetter(value, "a label event must be a JSON object", "not_object"), 0
        pairs = [(field_at(obj, fields.id), field_at(obj, fields.label))]
    rows = [
        (str(i), label)
        for i, label in pairs
        if i is not None and label is not None and not isinstance(i, bool | dict | list)
    ]
    return rows, len(pairs) - len(rows)


def _renumber(part: Decoded, positions: NDArray[np.int64]) -> Decoded:
    """Map message indices of a sub-batch back to the whole batch."""
    out = Decoded()
    for key, tables in part.tables.items():
        for t in tables:
            idx = t.column(MESSAGE).to_numpy()
            i = t.schema.get_field_index(MESSAGE)
            out.add(key, t.set_column(i, MESSAGE, pa.array(positions[idx])))
    out.dead = [DeadLetter(d.value, d.reason, d.code, int(positions[d.message])) for d in part.dead]
    return out
