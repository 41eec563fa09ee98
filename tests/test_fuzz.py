"""Hostile input (issue 8): property-based fuzzing of every edge that reads bytes from
outside — the JSON and Arrow event decoders, the engine's decode path, ``POST /v1/events``,
the TOML config loader and the ``.dlb`` baseline reader.

The properties hold for ANY input:

- a decoder never raises: every message ends as rows of a decoded table or as a dead letter
  with a reason and a code (for JSON, exactly one of the two per message: good + dead =
  total), and the good events of a batch keep their values next to the bad ones;
- the engine stays able to work: after hostile messages, a good batch is counted and closes
  its windows as if nothing had happened;
- HTTP ingestion answers 4xx with a reason, never 5xx; an oversized body is 413;
- the config loader raises only ConfigError (naming the key whose value has the wrong type);
- the baseline reader raises only BaselineError, whatever the bytes (truncated, bit-flipped,
  a length field that lies).

``test_regression_*`` are the cases fuzzing found, each with what happened before its fix.
The coverage-guided harnesses (atheris) are in ``fuzz/``; ``test_atheris_harnesses_run``
runs each for a few seconds.
"""

from __future__ import annotations

import io
import math
import os
import re
import signal
import subprocess
import sys
import zipfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sinks import MemorySink
from test_api import AUTH, Rig
from test_engine import config as engine_config

from driftline import baseline as bl
from driftline import config as cfgmod
from driftline.engine import Engine, Messages
from driftline.events import (
    ARROW,
    JSON,
    MAX_TS,
    MESSAGE,
    Decoded,
    FieldMap,
    decode_arrow,
    decode_batch,
    decode_labels,
)
from driftline.exceptions import BaselineError, ConfigError

REPO = Path(__file__).resolve().parents[1]
FIELDS = FieldMap()
NOW = 1_795_300_000.0
CODES = {
    "not_json",
    "not_object",
    "missing_field",
    "bad_time",
    "empty",
    "unsupported_content_type",
    "not_arrow",
    "bad_arrow",
}
"""Every dead-letter code the decoders give (DeadLetter.code, the metric label)."""


def fuzz(examples: int) -> Any:
    """Settings of a fuzz property: its number of examples (kept small enough that the
    module runs in under a minute). No deadline per example: a loaded machine's stall is
    not a failure, and Hypothesis times an example after it returns, so a deadline would
    not stop a decoder that hangs either (the engine properties run under
    :func:`hard_timeout`)."""
    return settings(
        max_examples=examples,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
    )


@contextmanager
def hard_timeout(seconds: int) -> Iterator[None]:
    """Fail (rather than hang the suite) if the block runs longer than ``seconds``: the
    deadline above is checked only when an example returns."""

    def alarm(_signum: int, _frame: Any) -> None:
        raise TimeoutError(f"still running after {seconds} s: a hang")

    previous = signal.signal(signal.SIGALRM, alarm)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


# -- JSON events ---------------------------------------------------------------------------

COUNTRIES = ["DE", "FR", "IT", "US", "BR"]


@st.composite
def good_events(draw: st.DrawFn) -> dict[str, Any]:
    return {
        "model": "fraud",
        "version": draw(st.sampled_from(["7", 7])),
        "id": draw(st.text(min_size=1, max_size=12)),
        "ts": draw(st.floats(1.7e9, 1.8e9)),
        "features": {
            "amount": draw(st.floats(0, 1e4)),
            "country": draw(st.sampled_from(COUNTRIES)),
            "age": draw(st.none() | st.integers(18, 90)),
        },
        "prediction": draw(st.floats(0, 1)),
    }


def _json(event: dict[str, Any]) -> bytes:
    return orjson.dumps(event)


def _replace_value(raw: bytes, key: bytes, token: bytes) -> bytes:
    """``raw`` with the JSON value of the (first) ``"key":`` replaced by ``token``."""
    m = re.search(rb'"' + key + rb'":(-?[0-9.eE+\-]+|"[^"]*"|null)', raw)
    assert m is not None, (raw, key)
    return raw[: m.start(1)] + token + raw[m.end(1) :]


JSON_INTS = st.integers(-(2**63), 2**64 - 1)
"""The integers JSON writers emit (orjson's range)."""

Case = tuple[bytes, str]
"""A message and what must become of it: ``ok`` (decoded) or a dead-letter code."""


def _random_bytes_case(b: bytes) -> Case:
    try:
        obj = orjson.loads(b)
    except orjson.JSONDecodeError:
        return b, "not_json"
    if not isinstance(obj, dict):
        return b, "not_object" if b.strip() else "empty"
    return b, "any"  # an object by chance: judged on its fields


@st.composite
def hostile_json(draw: st.DrawFn) -> Case:
    """One hostile JSON message and its fate."""
    event = draw(good_events())
    raw = _json(event)
    kind = draw(
        st.sampled_from(
            [
                "bytes",
                "deep_bare",
                "deep_feature",
                "big_int",
                "non_finite",
                "ts_range",
                "wrong_model",
                "wrong_version",
                "wrong_features",
                "wrong_ts",
                "wrong_other",
                "missing",
                "duplicate_keys",
                "not_utf8",
                "reserved_feature",
            ]
        )
    )
    if kind == "bytes":
        return _random_bytes_case(draw(st.binary(min_size=1, max_size=64)))
    if kind == "deep_bare":
        depth = draw(st.sampled_from([100, 1024, 1025, 5000, 60_000]))
        opener, closer = draw(st.sampled_from([(b"[", b"]"), (b'{"a":', b"}")]))
        body = opener * depth + b"1" + closer * depth
        shallow = "not_object" if opener == b"[" else "missing_field"
        return body, "not_json" if depth > 1024 else shallow
    if kind == "deep_feature":
        depth = draw(st.sampled_from([10, 300, 1022, 1023, 1100, 60_000]))
        nested = b"[" * depth + b"1" + b"]" * depth
        # the event's own object and features add 2 levels to orjson's 1024
        return _replace_value(raw, b"amount", nested), "ok" if depth <= 1022 else "not_json"
    if kind == "big_int":
        n = draw(st.integers(2**63, 2**300) | st.integers(-(2**300), -(2**63) - 1))
        key = draw(st.sampled_from([b"amount", b"age", b"prediction", b"ts"]))
        want = "ok" if key != b"ts" or (MAX_TS > n > -62_135_596_800) else "bad_time"
        return _replace_value(raw, key, str(n).encode()), want
    if kind == "non_finite":
        token = draw(st.sampled_from([b"NaN", b"Infinity", b"-Infinity", b"1e400", b"-1e999"]))
        key = draw(st.sampled_from([b"amount", b"prediction", b"ts"]))
        return _replace_value(raw, key, token), "not_json"
    if kind == "ts_range":
        ts = draw(st.sampled_from([1e300, -1e300, 1e19, MAX_TS, -7e10, 2.6e11]))
        return _json({**event, "ts": ts}), "bad_time"
    wrong = st.one_of(
        st.integers(-(2**63), 2**64 - 1),  # what JSON writers emit as integers
        st.floats(allow_nan=False, allow_infinity=False),
        st.booleans(),
        st.lists(JSON_INTS, max_size=3),
        st.dictionaries(st.text(max_size=3), JSON_INTS, max_size=2),
    )
    if kind == "wrong_model":
        value = draw(wrong | st.just("") | st.none())
        return _json({**event, "model": value}), "missing_field"
    if kind == "wrong_version":
        value = draw(wrong.filter(lambda v: not isinstance(v, int) or isinstance(v, bool)))
        return _json({**event, "version": value}), "missing_field"
    if kind == "wrong_features":
        value = draw(wrong.filter(lambda v: not isinstance(v, dict)) | st.text(max_size=5))
        return _json({**event, "features": value}), "missing_field"
    if kind == "wrong_ts":
        value = draw(
            st.booleans()
            | st.lists(JSON_INTS, max_size=2)
            | st.dictionaries(st.text(max_size=2), JSON_INTS, max_size=1)
            | st.text(alphabet="xyz ", min_size=1, max_size=6)
        )
        return _json({**event, "ts": value}), "bad_time"
    if kind == "wrong_other":  # id, prediction and feature values of any type: still events
        key = draw(st.sampled_from(["id", "prediction", "amount", "country"]))
        value = draw(wrong | st.text(max_size=5) | st.none())
        if key in ("amount", "country"):
            return _json({**event, "features": {**event["features"], key: value}}), "ok"
        return _json({**event, key: value}), "ok"
    if kind == "missing":
        key = draw(st.sampled_from(["model", "version", "features"]))
        return _json({k: v for k, v in event.items() if k != key}), "missing_field"
    if kind == "duplicate_keys":  # the last one counts (as orjson and pyarrow read it)
        body = raw[1:]
        return b'{"model":"not-this-one","version":[],' + body, "ok"
    if kind == "not_utf8":
        bad = draw(st.sampled_from([b"\xff", b"\xc3\x28", b"\xed\xa0\x80", b"\xf8\x88"]))
        return raw.replace(b'"fraud"', b'"fr' + bad + b'aud"'), "not_json"
    assert kind == "reserved_feature"
    name = draw(st.sampled_from(["ts", "id", "prediction", MESSAGE]))
    value = draw(wrong | st.text(max_size=5))
    return _json({**event, "features": {**event["features"], name: value}}), "ok"


def rows_by_message(out: Decoded) -> dict[int, dict[str, Any]]:
    """Every decoded row by the index of its message (asserting none comes twice)."""
    rows: dict[int, dict[str, Any]] = {}
    for (model, version), tables in out.tables.items():
        for t in tables:
            for row in t.to_pylist():
                i = row[MESSAGE]
                assert i not in rows, f"message {i} decoded twice"
                rows[i] = {**row, "model": model, "version": version}
    return rows


def check_accounting(out: Decoded, n: int) -> tuple[dict[int, dict[str, Any]], dict[int, str]]:
    """One message, one fate: a row or a dead letter (with a reason and a known code)."""
    rows = rows_by_message(out)
    dead: dict[int, str] = {}
    for d in out.dead:
        assert d.message not in dead, f"message {d.message} dead-lettered twice"
        assert d.code in CODES and d.reason.strip(), d
        dead[d.message] = d.code
    assert not set(rows) & set(dead)
    assert set(rows) | set(dead) == set(range(n))  # good + dead = total
    return rows, dead


@fuzz(100)
@given(
    goods=st.lists(good_events(), min_size=0, max_size=24),
    bads=st.lists(hostile_json(), min_size=1, max_size=6),
    order=st.randoms(use_true_random=False),
)
def test_json_batches_dead_letter_each_bad_message_and_keep_the_good_ones(
    goods: list[dict[str, Any]], bads: list[Case], order: Any
) -> None:
    # batches of 1 to 30 messages: both the message-by-message and the columnar path
    items: list[tuple[bytes, str, dict[str, Any] | None]] = [(_json(g), "ok", g) for g in goods]
    items += [(raw, want, None) for raw, want in bads]
    order.shuffle(items)
    values = [raw for raw, _, _ in items]
    out = decode_batch(values, [JSON] * len(values), FIELDS, [NOW] * len(values))
    rows, dead = check_accounting(out, len(values))
    for i, (_, want, event) in enumerate(items):
        if want == "ok":
            assert i in rows, (values[i][:200], out.dead)
        elif want != "any":
            assert dead.get(i) == want, (values[i][:200], dead.get(i), want)
        if event is not None:  # a good event keeps its values beside the bad ones
            row = rows[i]
            assert row["id"] == event["id"] and row["ts"] == event["ts"]
            assert (row["model"], row["version"]) == ("fraud", "7")
            # a column whose type differs between events is text (its numbers become type
            # errors or parse back, see driftline.columns): the same value either way
            assert float(row["prediction"]) == event["prediction"]
            assert float(row["amount"]) == event["features"]["amount"]
            assert row["country"] == event["features"]["country"]


@fuzz(80)
@given(
    goods=st.lists(good_events(), min_size=16, max_size=20),
    bad=hostile_json(),
    at=st.integers(0, 20),
)
def test_one_bad_message_in_a_columnar_batch(
    goods: list[dict[str, Any]], bad: Case, at: int
) -> None:
    # 16+ messages: pyarrow's columnar reader decodes the batch when it can; the one bad
    # message must still be dead-lettered (not dropped) and the others decoded
    values = [_json(g) for g in goods]
    at = min(at, len(values))
    values.insert(at, bad[0])
    out = decode_batch(values, [JSON] * len(values), FIELDS, [NOW] * len(values))
    rows, dead = check_accounting(out, len(values))
    assert len(rows) >= len(goods)
    if bad[1] not in ("ok", "any"):
        assert dead == {at: bad[1]}


@fuzz(60)
@given(
    values=st.lists(st.binary(max_size=200) | st.none(), min_size=1, max_size=20),
    ctypes=st.lists(
        st.sampled_from([None, JSON, ARROW, "text/plain", "APPLICATION/JSON; charset=x", ""]),
        min_size=20,
        max_size=20,
    ),
)
def test_any_bytes_of_any_content_type_end_as_rows_or_dead_letters(
    values: list[bytes | None], ctypes: list[str | None]
) -> None:
    ctypes = ctypes[: len(values)]
    out = decode_batch(values, ctypes, FIELDS, [NOW] * len(values))
    rows = rows_by_message(out)
    dead = {d.message for d in out.dead}
    assert all(d.code in CODES and d.reason for d in out.dead)
    assert set(rows) | dead == set(range(len(values)))
    for i, v in enumerate(values):
        if not v:
            assert i in dead  # empty or absent: a dead letter "empty"
    labels = decode_labels(values, ctypes, FIELDS)  # the label path takes the same bytes
    assert len(labels.ids) == len(labels.values)
    assert all(math.isfinite(x) or math.isnan(x) for x in labels.values)


@fuzz(100)
@given(
    st.lists(
        st.tuples(
            st.sampled_from(["content-type", "Content-Type", "x"]) | st.text(max_size=5),
            st.none() | st.binary(max_size=40) | st.sampled_from([ARROW.encode(), b"\xff"]),
        ),
        max_size=4,
    )
    | st.none()
)
def test_kafka_content_type_header_of_any_bytes(headers: list[tuple[str, bytes | None]]) -> None:
    # the Kafka source reads the content type from the record headers: any bytes give a
    # string (or None), and decoding then takes it as JSON, Arrow or unsupported
    from driftline.connectors.kafka import _content_type

    ctype = _content_type(headers)  # type: ignore[arg-type]
    first = next((v for k, v in headers or [] if k == "content-type" and v is not None), None)
    assert ctype == (None if first is None else first.decode("utf-8", "replace"))
    out = decode_batch([GOOD_JSON], [ctype], FIELDS, [NOW])
    media = JSON if ctype is None else ctype.split(";")[0].strip().lower()
    if media == JSON:
        assert out.events == 1
    else:
        assert out.events == 0 and len(out.dead) == 1


GOOD_JSON = b'{"model":"fraud","version":"7","features":{"amount":1.0}}'


# -- Arrow events --------------------------------------------------------------------------


def ipc(table: pa.Table) -> bytes:
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema) as w:
        w.write_table(table)
    return bytes(sink.getvalue().to_pybytes())


def good_arrow(n: int = 5) -> pa.Table:
    return pa.table(
        {
            "model": ["fraud"] * n,
            "version": ["7"] * n,
            "id": [f"r{i}" for i in range(n)],
            "ts": [NOW + i for i in range(n)],
            "features": pa.array(
                [{"amount": float(i), "country": COUNTRIES[i % 5]} for i in range(n)]
            ),
            "prediction": [i / n for i in range(n)],
        }
    )


GOOD_IPC = ipc(good_arrow())


def arrow_rows(out: Decoded) -> int:
    """Rows decoded plus rows the dead letters count ("3 rows of the Arrow batch …")."""
    counted = 0
    for d in out.dead:
        m = re.match(r"(\d+) rows of the Arrow batch", d.reason)
        counted += int(m.group(1)) if m else 0
    return out.events + counted


def check_arrow(value: bytes, table_rows: int | None) -> Decoded:
    out = decode_arrow(value, FIELDS, NOW, message=3)
    assert all(d.code in CODES and d.reason and d.message == 3 for d in out.dead)
    assert all(
        t.column(MESSAGE).to_pylist() == [3] * t.num_rows for p in out.tables.values() for t in p
    )
    whole = [d for d in out.dead if not re.match(r"\d+ rows", d.reason)]
    if whole:  # the message is refused as a whole: nothing of it decoded
        assert len(out.dead) == 1 and out.events == 0
    elif table_rows is not None:
        assert arrow_rows(out) == table_rows  # good rows + dead rows = rows of the batch
    return out


@fuzz(80)
@given(st.binary(max_size=400))
def test_arrow_random_bytes(value: bytes) -> None:
    out = check_arrow(value, None)
    assert out.events == 0 and [d.code for d in out.dead] in (["not_arrow"], ["empty"], [])


@fuzz(100)
@given(cut=st.integers(0, len(GOOD_IPC) - 1))
def test_arrow_truncated_stream(cut: int) -> None:
    out = check_arrow(GOOD_IPC[:cut], None)
    # a stream cut at a message boundary is a shorter valid stream: never more than it had,
    # and what is decoded is the original's values
    assert out.events <= 5
    for tables in out.tables.values():
        for t in tables:
            assert t.column("id").to_pylist() == [f"r{i}" for i in range(t.num_rows)]


@fuzz(150)
@given(st.lists(st.tuples(st.integers(0, len(GOOD_IPC) - 1), st.integers(0, 255)), max_size=4))
def test_arrow_corrupted_stream(flips: list[tuple[int, int]]) -> None:
    b = bytearray(GOOD_IPC)
    for pos, val in flips:
        b[pos] = val
    out = check_arrow(bytes(b), None)
    for tables in out.tables.values():  # what is decoded is valid Arrow
        for t in tables:
            t.validate(full=True)


ARROW_TYPES = {
    "string": (pa.string(), lambda i: f"s{i % 3}"),
    "large_string": (pa.large_string(), lambda i: f"s{i % 3}"),
    "int64": (pa.int64(), lambda i: i),
    "uint64": (pa.uint64(), lambda i: 2**64 - 1 - i),
    "float64": (pa.float64(), lambda i: [1.5, math.nan, math.inf, -1e308][i % 4]),
    "bool": (pa.bool_(), lambda i: i % 2 == 0),
    "binary": (pa.binary(), lambda i: b"\xff\x00" * i),
    "null": (pa.null(), lambda i: None),
    "list": (pa.list_(pa.int64()), lambda i: [i, i]),
    "struct": (pa.struct([("a", pa.int64())]), lambda i: {"a": i}),
    "map": (pa.map_(pa.string(), pa.int64()), lambda i: [("k", i)]),
    "timestamp_s": (pa.timestamp("s"), lambda i: [0, 2**62, -(2**62)][i % 3]),
    "timestamp_ns_tz": (pa.timestamp("ns", "Asia/Kolkata"), lambda i: i * 10**18),
    "date32": (pa.date32(), lambda i: i),
    "duration": (pa.duration("s"), lambda i: i),
    "decimal": (pa.decimal128(38, 2), lambda i: i),
    "dict_string": (pa.dictionary(pa.int8(), pa.string()), lambda i: f"d{i % 2}"),
    "float32": (pa.float32(), lambda i: [2.5, math.nan, 3.0, -1e38][i % 4]),
    "float16": (pa.float16(), lambda i: [0.5, math.nan, 3.0, -math.inf][i % 4]),
    "dict_float16": (pa.dictionary(pa.int8(), pa.float16()), lambda i: i % 2),
    "dict_struct": (pa.dictionary(pa.int8(), pa.struct([("a", pa.int64())])), lambda i: i % 2),
}
DICTIONARIES = {  # built from their parts: Arrow dictionary-encodes neither type
    "dict_float16": pa.array([0.5, 3.0], pa.float32()).cast(pa.float16()),
    "dict_struct": pa.array([{"a": 0}, {"a": 1}]),
}


def arrow_column(kind: str, n: int, nulls: list[bool]) -> pa.Array:
    t, make = ARROW_TYPES[kind]
    values = [None if nulls[i % len(nulls)] else make(i) for i in range(n)]
    if kind in DICTIONARIES:
        return pa.DictionaryArray.from_arrays(pa.array(values, pa.int8()), DICTIONARIES[kind])
    if pa.types.is_dictionary(t):
        return pa.array(values, t.value_type).dictionary_encode()
    if kind == "float16":  # pa.array takes no Python floats as float16
        return pa.array(values, pa.float32()).cast(pa.float16())
    return pa.array(values, t)


@st.composite
def hostile_arrow(draw: st.DrawFn) -> pa.Table:
    """An Arrow batch with the event columns (and features) of arbitrary types, some
    absent, some twice."""
    n = draw(st.integers(0, 6))
    nulls = draw(st.lists(st.booleans(), min_size=1, max_size=4))
    kinds = st.sampled_from(sorted(ARROW_TYPES))
    names: list[str] = []
    arrays: list[pa.Array] = []
    for name in ("model", "version", "id", "ts", "prediction", "label"):
        choice = draw(st.sampled_from(["right", "other", "absent"]))
        if choice == "absent":
            continue
        if choice == "right":
            kind = {"model": "string", "version": "int64", "ts": "float64"}.get(name, "string")
        else:
            kind = draw(kinds)
        names.append(name)
        arrays.append(arrow_column(kind, n, nulls))
    feature_names = st.sampled_from(["amount", "country", "ts", "id", "prediction", MESSAGE, ""])
    fields = draw(st.lists(st.tuples(feature_names, kinds), max_size=4))
    if fields and draw(st.booleans()):  # a features struct
        children = [arrow_column(k, n, nulls) for _, k in fields]
        struct_names = [name for name, _ in fields]
        names.append("features")
        arrays.append(pa.StructArray.from_arrays(children, struct_names))
    else:  # flat feature columns (names may repeat the event columns')
        for name, kind in fields:
            names.append(name)
            arrays.append(arrow_column(kind, n, nulls))
    return pa.Table.from_arrays(arrays, names=names)


@fuzz(200)
@given(hostile_arrow())
def test_arrow_batches_of_any_schema(table: pa.Table) -> None:
    out = check_arrow(ipc(table), table.num_rows)
    for (model, version), tables in out.tables.items():
        assert isinstance(model, str) and isinstance(version, str)
        for t in tables:
            assert t.column_names[:2] == ["id", "ts"] and t.column_names[-1] == MESSAGE
            assert len(set(t.column_names)) == t.num_columns
            ts = t.column("ts").to_numpy(zero_copy_only=False)
            assert ((ts >= -62_135_596_800) & (ts < MAX_TS)).all()


# -- the engine: hostile messages, then a good batch ---------------------------------------


@pytest.fixture(scope="module")
def hostile_rig(data: Path, tmp_path_factory: pytest.TempPathFactory) -> Any:
    tmp = tmp_path_factory.mktemp("hostile")
    (tmp / "count").mkdir()
    (tmp / "time").mkdir()
    count = Engine(engine_config(data, tmp / "count", "size = 40"), MemorySink())
    timed = Engine(
        engine_config(data, tmp / "time", "duration = '5s'\nlateness = '1s'"), MemorySink()
    )
    return {"count": count, "time": timed, "offset": [0]}


@fuzz(60)
@given(
    bads=st.lists(hostile_json(), min_size=1, max_size=8),
    arrows=st.lists(hostile_arrow(), max_size=2),
    kind=st.sampled_from(["count", "time"]),
)
def test_engine_survives_hostile_messages_and_counts_what_follows(
    hostile_rig: dict[str, Any], bads: list[Case], arrows: list[pa.Table], kind: str
) -> None:
    engine: Engine = hostile_rig[kind]
    sink: MemorySink = engine.sink  # type: ignore[assignment]
    offset = hostile_rig["offset"]
    values: list[bytes | None] = [raw for raw, _ in bads] + [ipc(t) for t in arrows]
    ctypes = [JSON] * len(bads) + [ARROW] * len(arrows)
    offsets = list(range(offset[0], offset[0] + len(values)))
    offset[0] += len(values)
    before_dead, before_invalid = len(sink.dead), sum(engine.counters.invalid.values())
    with hard_timeout(60):
        engine.process(Messages("inf", 0, offsets, values, ctypes, [NOW] * len(values)))
    new_dead = sink.dead[before_dead:]
    assert sum(engine.counters.invalid.values()) - before_invalid == len(new_dead)
    assert all(origin.offset in offsets and letter.reason for letter, origin in new_dead)
    for i, (_, want) in enumerate(bads):  # a JSON message: its own fate, named by offset
        codes = [letter.code for letter, origin in new_dead if origin.offset == offsets[i]]
        if want in ("ok", "any"):
            assert codes in ([], ["no_baseline"]), codes
        else:
            assert codes == [want]

    # then 80 good events, later than anything so far: counted, and windows close
    events_before = engine.counters.events[("fraud", "7", "inference")]
    windows_before = engine.counters.windows
    # after every valid time a hostile batch can hold (Arrow timestamps reach 5e9 s)
    start = hostile_rig.setdefault(f"{kind}-ts", 6e9)
    good = [
        _json(
            {
                "model": "fraud",
                "version": "7",
                "id": f"g{i}",
                "ts": start + i * 0.25,
                "features": {"amount": float(i), "country": COUNTRIES[i % 5], "age": 30},
                "prediction": 0.5,
            }
        )
        for i in range(80)
    ]
    hostile_rig[f"{kind}-ts"] = start + 20 + 10  # past the window and the lateness
    offsets = list(range(offset[0], offset[0] + 80))
    offset[0] += 80
    dead_before = len(sink.dead)
    with hard_timeout(60):
        engine.process(Messages("inf", 0, offsets, good, [JSON] * 80, [NOW] * 80))
    assert len(sink.dead) == dead_before
    assert engine.counters.events[("fraud", "7", "inference")] - events_before == 80
    assert engine.counters.windows > windows_before  # 80 rows: 2 count windows, or 20 s
    assert engine.positions[("inf", 0)] == offsets[-1] + 1


# -- HTTP ingestion ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def http(data: Path, tmp_path_factory: pytest.TempPathFactory) -> Rig:
    return Rig(data, tmp_path_factory.mktemp("http"), max_body_bytes=64 * 1024)


NDJSON = "application/x-ndjson"


@fuzz(50)
@given(
    bads=st.lists(hostile_json(), min_size=1, max_size=5),
    goods=st.lists(good_events(), max_size=3),
    shape=st.sampled_from(["array", "ndjson", "raw", "arrow", "bytes"]),
    junk=st.binary(max_size=100),
)
def test_http_ingest_answers_4xx_with_a_reason_never_5xx(
    http: Rig, bads: list[Case], goods: list[dict[str, Any]], shape: str, junk: bytes
) -> None:
    messages = [raw for raw, _ in bads] + [_json(g) for g in goods]
    ctype = JSON
    if shape == "array":
        body = b"[" + b",".join(messages) + b"]"
    elif shape == "ndjson":
        body, ctype = b"\n".join(messages), NDJSON
    elif shape == "raw":
        body = messages[0]
    elif shape == "arrow":
        body, ctype = junk + GOOD_IPC[len(junk) :], ARROW
    else:
        body, ctype = junk, draw_ctype(junk)
    invalid_before = sum(http.engine.counters.invalid.values())
    with hard_timeout(60):
        r = http.client.post("/v1/events", content=body, headers={**AUTH, "content-type": ctype})
    assert r.status_code < 500, (r.status_code, r.text[:300])
    if r.status_code == 200:
        assert r.json()["accepted"] >= 0
        return
    assert r.status_code in (413, 415, 422), (r.status_code, r.text[:300])
    detail = r.json()["detail"]
    assert detail  # a reason
    if isinstance(detail, dict) and detail.get("error") == "invalid_events":
        errors = detail["errors"]
        assert all(e["code"] in CODES | {"no_baseline"} and e["reason"] for e in errors)
        # the events of a refused body are dead letters, counted
        assert sum(http.engine.counters.invalid.values()) - invalid_before == len(errors)


def draw_ctype(junk: bytes) -> str:
    return [JSON, NDJSON, ARROW, "text/plain"][junk[0] % 4] if junk else JSON


@pytest.mark.parametrize("chunked", [False, True])
def test_http_oversized_body_is_413(http: Rig, chunked: bool) -> None:
    body = b"[" + b",".join([_json({"model": "fraud", "version": "7", "features": {}})] * 3000)
    assert len(body) > 64 * 1024
    content: Any = body
    if chunked:  # no Content-Length: the size is found while reading

        def chunks() -> Iterator[bytes]:
            for i in range(0, len(body), 4096):
                yield body[i : i + 4096]

        content = chunks()
    r = http.client.post("/v1/events", content=content, headers=AUTH)
    assert r.status_code == 413 and "65536" in r.text


# -- the config loader ---------------------------------------------------------------------

KEYS: dict[str, str] = {
    "kafka.bootstrap_servers": "str",
    "kafka.group_id": "str",
    "kafka.session_timeout_ms": "int",
    "kafka.mode": "str",
    "kafka.auto_offset_reset": "str",
    "kafka.max_poll_records": "int",
    "kafka.topics": "table",
    "kafka.topics.inference": "str",
    "kafka.topics.windows": "str",
    "kafka.topics.dead_letter": "str",
    "kafka.topics.features": "str",
    "state.dir": "str",
    "state.checkpoint_interval": "dur",
    "events.model": "str",
    "events.ts": "str",
    "events.features": "str",
    "window.size": "int",
    "window.step": "int",
    "window.duration": "dur",
    "health.hysteresis": "int",
    "policy.numeric_statistic": "str",
    "policy.threshold": "num",
    "policy.min_rows_for_distance": "int",
    "policy.alpha": "num",
    "policy.drift_share": "num",
    "registry.url": "str",
    "registry.retry": "dur",
    "alerts.outbox": "str",
    "alerts.retry_base": "dur",
    "alerts.max_attempts": "int",
    "alerts.labels": "table",
    "alerts.receivers": "tables",
    "actions.db": "str",
    "actions.max_attempts": "int",
    "actions.policies": "tables",
    "labels.ttl": "dur",
    "api.enabled": "bool",
    "api.port": "int",
    "api.host": "str",
    "api.protect_reads": "bool",
    "api.max_body_bytes": "int",
    "metrics.max_versions": "int",
    "metrics.features": "strs",
    "models[0].name": "str",
    "models[0].baseline": "str",
    "models[0].categorical": "strs",
    "models[0].max_versions": "int",
    "models[0].versions": "table",
    "models[0].proxy": "table",
}
"""Real keys of driftline.toml (engine/config.py) and the kind of value each takes."""

WRONG: dict[str, list[Any]] = {
    "str": [5, 1.5, True, [1], {"a": 1}, ""],
    "int": ["5", 1.5, True, [5], {"a": 1}, -3, math.nan],
    "num": ["0.1", True, [0.1], {"a": 1}, math.nan, -math.inf],
    "dur": [5, 1.5, True, ["5m"], "soon", "-5s", "9" * 400 + "s"],
    "bool": ["yes", 1, [True], {"a": True}],
    "strs": ["a", [1], 5, {"a": "b"}],
    "table": [5, "x", [1], True],
    "tables": [5, "x", [1], {"a": 1}],
}


def toml_value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, float):
        return (
            "nan" if math.isnan(v) else ("inf" if v > 0 else "-inf") if math.isinf(v) else repr(v)
        )
    if isinstance(v, int):
        return str(v)
    if isinstance(v, str):
        return orjson.dumps(v).decode()  # a JSON string is a TOML basic string
    if isinstance(v, list):
        return "[" + ", ".join(toml_value(x) for x in v) + "]"
    assert isinstance(v, dict)
    return (
        "{" + ", ".join(f"{orjson.dumps(k).decode()} = {toml_value(x)}" for k, x in v.items()) + "}"
    )


def config_text(baseline: Path, key: str | None = None, value: Any = None) -> str:
    """A valid config, or one with ``key`` set to ``value`` (dotted inline keys)."""
    tables: dict[str, list[str]] = {"kafka.topics": ["inference = 'inf'"], "models": []}
    model = ["name = 'fraud'", f"baseline = {orjson.dumps(str(baseline)).decode()}"]
    root: list[str] = []
    if key is not None:
        if key.startswith("models[0]."):
            sub = key.removeprefix("models[0].")
            model = [line for line in model if not line.startswith(sub + " ")]
            model.append(f"{sub} = {toml_value(value)}")
        else:
            table, _, leaf = key.rpartition(".")
            if key == "kafka.topics":
                del tables["kafka.topics"]
                tables.setdefault("kafka", []).append(f"topics = {toml_value(value)}")
            elif table == "kafka.topics":
                tables["kafka.topics"] = [
                    x for x in tables["kafka.topics"] if not x.startswith(leaf + " ")
                ] + [f"{leaf} = {toml_value(value)}"]
            else:
                tables.setdefault(table, []).append(f"{leaf} = {toml_value(value)}")
    out = root[:]
    for table, lines in tables.items():
        if table == "models":
            continue
        out += [f"[{table}]", *lines]
    out += ["[[models]]", *model]
    return "\n".join(out) + "\n"


@pytest.fixture(scope="module")
def config_dir(data: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("config")
    (d / "ok.toml").write_text(config_text(data / "fraud.dlb"))
    cfgmod.load(d / "ok.toml")  # the base document is valid
    return d


@fuzz(150)
@given(st.data())
def test_config_wrong_types_are_config_errors_naming_the_key(
    config_dir: Path, data: Path, draw: st.DataObject
) -> None:
    key = draw.draw(st.sampled_from(sorted(KEYS)))
    value = draw.draw(st.sampled_from(WRONG[KEYS[key]]))
    path = config_dir / "wrong.toml"
    path.write_text(config_text(data / "fraud.dlb", key, value))
    with pytest.raises(ConfigError) as info:
        cfgmod.load(path)
    message = str(info.value)
    # the key is named: as a path ("window.size", "models[0].name") or, for the few
    # checks on a whole table, its table
    table = key.rpartition(".")[0]
    assert key in message or (table and f"{table}:" in message), (key, value, message)


@fuzz(150)
@given(
    st.binary(max_size=300)
    | st.lists(
        st.tuples(
            st.sampled_from(sorted(KEYS)),
            st.sampled_from([v for vs in WRONG.values() for v in vs] + ["5m", 10, 0.5, "x"]),
        ),
        max_size=6,
    )
)
def test_config_any_document_is_loaded_or_a_config_error(
    config_dir: Path, data: Path, doc: bytes | list[tuple[str, Any]]
) -> None:
    path = config_dir / "any.toml"
    if isinstance(doc, bytes):
        path.write_bytes(doc)
    else:  # several keys of the real catalogue, any values, stacked into one document
        text = config_text(data / "fraud.dlb")
        for key, value in doc:
            text += config_text(data / "fraud.dlb", key, value).split("[[models]]")[0]
        path.write_text(text)
    try:
        cfgmod.load(path)
    except ConfigError as exc:
        assert str(exc).startswith(str(path))  # names the file, then the key
    # anything else propagates and fails the test


# -- the baseline reader -------------------------------------------------------------------


@pytest.fixture(scope="module")
def small_baseline(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    """A real baseline file, small enough to be cut at every byte."""
    from driftline.build import BuildOptions, build_from_batches

    rng = np.random.default_rng(8)
    table = pa.table(
        {
            "x": rng.normal(size=60),
            "c": pa.array(rng.choice(["a", "b", "c"], size=60)),
            "score": rng.uniform(size=60),
        }
    )
    base, _ = build_from_batches(table.to_batches(), BuildOptions(prediction="score"))
    path = tmp_path_factory.mktemp("small") / "small.dlb"
    bl.save(base, path)
    return path.read_bytes()


def load_bytes(raw: bytes, path: Path) -> bl.Baseline | None:
    """Load ``raw`` as a baseline file: the Baseline, or None for a BaselineError."""
    path.write_bytes(raw)
    try:
        return bl.load(path)
    except BaselineError as exc:
        assert str(exc).startswith(str(path))
        return None


def test_baseline_truncated_at_every_third_byte(small_baseline: bytes, tmp_path: Path) -> None:
    path = tmp_path / "cut.dlb"
    with hard_timeout(60):
        for n in range(0, len(small_baseline), 3):
            assert load_bytes(small_baseline[:n], path) is None, n
    whole = load_bytes(small_baseline, path)
    assert whole is not None and [c.name for c in whole.columns] == ["x", "c", "score"]


def test_baseline_of_the_example_data_truncated(data: Path, tmp_path: Path) -> None:
    raw = (data / "fraud.dlb").read_bytes()
    path = tmp_path / "cut.dlb"
    with hard_timeout(60):
        for n in range(0, len(raw), 1009):
            assert load_bytes(raw[:n], path) is None, n


@fuzz(300)
@given(
    st.lists(st.tuples(st.integers(0, 10**9), st.integers(0, 7)), min_size=1, max_size=3),
    st.booleans(),
)
def test_baseline_bit_flips_are_baseline_errors(
    small_baseline: bytes, tmp_path: Path, flips: list[tuple[int, int]], header: bool
) -> None:
    b = bytearray(small_baseline)
    for pos, bit in flips:
        # half the flips where a zip keeps its structure: local headers, central directory
        span = 400 if header else len(b)
        i = pos % span if not header or pos % 2 else len(b) - 1 - pos % span
        b[i] ^= 1 << bit
    got = load_bytes(bytes(b), tmp_path / "flip.dlb")
    if got is not None:  # a flip the reader does not see (a timestamp, a spare bit)
        want = load_bytes(small_baseline, tmp_path / "orig.dlb")
        assert want is not None and [c.name for c in got.columns] == [c.name for c in want.columns]


@fuzz(60)
@given(st.binary(max_size=2000))
def test_baseline_random_bytes(tmp_path: Path, raw: bytes) -> None:
    assert load_bytes(raw, tmp_path / "random.dlb") is None


def rewrite_member(raw: bytes, name: str, change: Callable[[bytes], bytes]) -> bytes:
    """The zip archive ``raw`` with member ``name`` replaced (its CRC made right)."""
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(raw)) as zin, zipfile.ZipFile(out, "w") as zout:
        for info in zin.infolist():
            data = zin.read(info.filename)
            zout.writestr(info, change(data) if info.filename == name else data)
    return out.getvalue()


def npy_with_shape(shape: tuple[int, ...]) -> Callable[[bytes], bytes]:
    def change(data: bytes) -> bytes:
        buf = io.BytesIO(data)
        np.lib.format.read_magic(buf)
        np.lib.format.read_array_header_1_0(buf)
        head = io.BytesIO()
        header = {"descr": "<f8", "fortran_order": False, "shape": shape}
        np.lib.format.write_array_header_1_0(head, header)
        return head.getvalue() + data[buf.tell() :]

    return change


@fuzz(40)
@given(
    st.one_of(
        st.tuples(st.integers(-(2**62), 2**62)),
        st.tuples(st.integers(0, 10**6), st.integers(0, 10**6)),
        st.just(()),
    )
)
def test_baseline_sample_header_lying_about_its_length(
    small_baseline: bytes, tmp_path: Path, shape: tuple[int, ...]
) -> None:
    raw = rewrite_member(small_baseline, "columns/0/sample.npy", npy_with_shape(shape))
    with zipfile.ZipFile(io.BytesIO(small_baseline)) as zf:
        true_n = (len(zf.read("columns/0/sample.npy")) - 128) // 8
    got = load_bytes(raw, tmp_path / "lying.dlb")
    if shape == (true_n,):
        assert got is not None and got.columns[0].reference.sample.shape == (true_n,)
    else:
        assert got is None


@fuzz(80)
@given(
    key=st.sampled_from(
        ["columns", "calibration", "source", "options", "format_version", "model", "version"]
    ),
    value=st.one_of(
        st.none(),
        st.integers(-(2**63), 2**64 - 1),
        st.floats(allow_nan=False, allow_infinity=False),
        st.text(max_size=5),
        st.lists(JSON_INTS | st.text(max_size=2), max_size=3),
        st.dictionaries(
            st.sampled_from(["window", "thresholds", "name", "role", "type"]),
            JSON_INTS | st.text(max_size=2) | st.lists(JSON_INTS, max_size=2),
            max_size=4,
        ),
    ),
    column_key=st.sampled_from(
        [
            "",
            "name",
            "role",
            "type",
            "proportions",
            "edges",
            "sample",
            "count",
            "mean",
            "categories",
        ]
    ),
)
def test_baseline_manifest_values_of_any_type(
    small_baseline: bytes, tmp_path: Path, key: str, value: Any, column_key: str
) -> None:
    def change(data: bytes) -> bytes:
        m = orjson.loads(data)
        if column_key:
            m["columns"][0][column_key] = value
        else:
            m[key] = value
        return orjson.dumps(m)

    got = load_bytes(rewrite_member(small_baseline, "manifest.json", change), tmp_path / "m.dlb")
    assert got is None or isinstance(got, bl.Baseline)


# -- regressions: the cases fuzzing found ---------------------------------------------------


def test_regression_arrow_corrupt_offsets_crashed_the_process() -> None:
    # Input: a valid IPC stream of 5 events whose 'version' string offsets [0..5] had one
    # offset made 5,767,170 (one byte changed). Before: read_all() accepted it (it does not
    # validate offsets) and the first compute kernel read out of bounds: SIGSEGV, the
    # engine process died. Now: validated in full on reading, a dead letter "not_arrow".
    raw = bytearray(ipc(good_arrow()))
    offsets = np.arange(6, dtype="<i4").tobytes()
    at = raw.find(offsets)  # 'version' ("7" five times; 'model' is 0,5,10…, 'id' 0,2,4…)
    assert at > 0
    raw[at + 8 : at + 12] = np.array([5_767_170], dtype="<i4").tobytes()
    out = decode_arrow(bytes(raw), FIELDS, NOW)
    assert out.events == 0 and [d.code for d in out.dead] == ["not_arrow"]
    assert "out of bounds" in out.dead[0].reason


def test_regression_arrow_field_name_not_utf8() -> None:
    # Input: an IPC stream whose struct field name bytes are not UTF-8 (a flipped byte in
    # the schema). Before: UnicodeDecodeError out of decode_arrow. Now: "not_arrow".
    table = good_arrow()
    raw = ipc(table)
    at = raw.find(b"amount")
    bad = raw[:at] + b"\xffmount" + raw[at + 6 :]
    out = decode_arrow(bad, FIELDS, NOW)
    assert [d.code for d in out.dead] == ["not_arrow"] and "UTF-8" in out.dead[0].reason


@pytest.mark.parametrize(
    ("names", "twice"),
    [(["model", "version", "a", "a"], "a"), (["model", "model", "version", "x"], "model")],
)
def test_regression_arrow_duplicate_column_names(names: list[str], twice: str) -> None:
    # Input: a batch with two columns of one name. Before: KeyError ('Field "a" exists 2
    # times in schema') out of decode_arrow. Now: a dead letter naming the column.
    arrays = [pa.array(["m"]), pa.array(["1"]), pa.array([1.0]), pa.array([2.0])]
    out = decode_arrow(ipc(pa.Table.from_arrays(arrays, names=names)), FIELDS, NOW)
    assert [d.code for d in out.dead] == ["bad_arrow"] and f"'{twice}'" in out.dead[0].reason


def test_regression_arrow_feature_named_like_an_event_column() -> None:
    # Input: a features struct with a field 'ts' (and 'amount' also a top-level column).
    # Before: flattening made two 'ts' columns: KeyError. Now: the feature is kept as
    # 'features.ts' (where the monitor looks for it) and the event time stays the time.
    table = good_arrow(2).append_column("amount", pa.array([7.0, 8.0]))
    table = table.set_column(
        4, "features", pa.array([{"ts": "x", "amount": 1.0}, {"ts": "y", "amount": 2.0}])
    )
    out = decode_arrow(ipc(table), FIELDS, NOW)
    t = out.tables[("fraud", "7")][0]
    assert out.dead == [] and t.column("ts").to_pylist() == [NOW, NOW + 1]
    assert t.column("features.ts").to_pylist() == ["x", "y"]
    assert t.column("amount").to_pylist() == [7.0, 8.0]
    assert t.column("features.amount").to_pylist() == [1.0, 2.0]


def test_regression_arrow_uint64_time() -> None:
    # Input: a 'ts' column of uint64 holding 2**64 - 1. Before: ArrowInvalid ("Integer
    # value … not in range") out of decode_arrow; then the whole batch was "bad_time" (the
    # checked cast to float raised). Now the cast is unchecked: 2**64 - 1 seconds is past
    # the year 9999, so that row is dead-lettered as "bad_time" and the other one goes on.
    table = good_arrow(2).set_column(3, "ts", pa.array([2**64 - 1, 5], pa.uint64()))
    out = decode_arrow(ipc(table), FIELDS, NOW)
    assert [d.code for d in out.dead] == ["bad_time"] and out.events == 1
    assert out.dead[0].reason.startswith("1 rows of the Arrow batch have a time outside")


@pytest.mark.parametrize("ts", [math.inf, 1e300, 2**62])
def test_regression_event_time_beyond_year_9999(data: Path, tmp_path: Path, ts: float) -> None:
    # Input: one event with ts = inf (Arrow), or 1e300 / 2**62 (JSON), on event-time
    # windows. Before: inf raised OverflowError out of the windower (the engine died);
    # 1e300 moved the watermark so far that every later event was counted late, for ever.
    # Now: a dead letter "bad_time"; the next good events close their windows.
    engine = Engine(engine_config(data, tmp_path, "duration = '5s'"), MemorySink())
    if math.isinf(ts):
        table = good_arrow(2).set_column(3, "ts", pa.array([NOW, ts]))
        values, ctypes = [ipc(table)], [ARROW]
    else:
        values, ctypes = (
            [_json({"model": "fraud", "version": "7", "ts": ts, "features": {}})],
            [JSON],
        )
    engine.process(Messages("inf", 0, [0], values, ctypes, [NOW]))
    sink: MemorySink = engine.sink  # type: ignore[assignment]
    assert [letter.code for letter, _ in sink.dead] == ["bad_time"]
    good = [
        _json({"model": "fraud", "version": "7", "ts": NOW + i, "features": {"amount": 1.0}})
        for i in range(20)
    ]
    engine.process(Messages("inf", 0, list(range(1, 21)), good, [JSON] * 20, [NOW] * 20))
    skew = [r for r in sink.records if r["kind"] == "skew"]
    assert skew and skew[0]["quality"]["late_events"] == 0 and engine.counters.windows >= 2


@pytest.mark.parametrize("fast", [False, True])
def test_regression_feature_named_ts_overwrote_the_event_time(
    data: Path, tmp_path: Path, fast: bool
) -> None:
    # Input: {"features": {"ts": {"a": 1}, ...}} on event-time windows. Before: the feature
    # replaced the decoded 'ts' column; the windower got a struct for a time and raised
    # DataError (the engine died). Now: the feature is 'features.ts', the time is the time.
    engine = Engine(engine_config(data, tmp_path, "duration = '5s'"), MemorySink())
    n = 20 if fast else 1  # 16 or more: pyarrow's columnar reader
    values = [
        _json(
            {
                "model": "fraud",
                "version": "7",
                "ts": NOW + i,
                "features": {"ts": {"a": 1}, "amount": 1.0},
            }
        )
        for i in range(n)
    ]
    out = decode_batch(values, [JSON] * n, FIELDS, [NOW] * n)
    t = out.tables[("fraud", "7")][0]
    assert t.column("ts").to_pylist() == [NOW + i for i in range(n)]
    assert "features.ts" in t.column_names
    engine.process(Messages("inf", 0, list(range(n)), values, [JSON] * n, [NOW] * n))
    assert engine.counters.events[("fraud", "7", "inference")] == n


def test_regression_json_event_without_model_vanished_from_a_columnar_batch() -> None:
    # Found by fuzz/json_events.py (atheris). Input: 16 good events and {"on": 1} (no
    # model). Before: pyarrow's reader gave that row a null model, the null-propagating
    # or_() made its "bad" flag null, pc.any skipped it, and the row was dropped when the
    # batch was split by version: neither decoded nor dead-lettered. Now: Kleene logic, the
    # batch goes message by message and {"on": 1} is a dead letter "missing_field".
    good = _json({"model": "fraud", "version": "7", "features": {"a": 1}})
    values = [good] * 16 + [b'{"on":1}']
    out = decode_batch(values, [JSON] * 17, FIELDS, [NOW] * 17)
    assert out.events == 16
    assert [(d.message, d.code) for d in out.dead] == [(16, "missing_field")]


def test_regression_json_feature_name_not_utf8_in_a_columnar_batch() -> None:
    # Found by fuzz/json_events.py. Input: 16 good events and one whose feature name holds
    # the byte 0x97 (not UTF-8). Before: pyarrow's JSON reader took the key as it was, and
    # reading the struct field's name raised UnicodeDecodeError out of decode_batch. Now:
    # the batch goes message by message; orjson refuses that message: "not_json".
    good = _json({"model": "fraud", "version": "7", "features": {"a": 1}})
    values = [good] * 16 + [b'{"model":"fraud","version":"7","features":{"a\x97":1}}']
    out = decode_batch(values, [JSON] * 17, FIELDS, [NOW] * 17)
    assert out.events == 16 and [(d.message, d.code) for d in out.dead] == [(16, "not_json")]


def test_regression_arrow_label_batch_with_two_id_columns() -> None:
    # Found by fuzz/arrow_events.py (atheris, in a CI run). Input: an Arrow label batch
    # with two columns named "id". Before: table.column("id") raised KeyError out of
    # decode_labels. Now: one dead letter that names the column.
    table = pa.Table.from_arrays(
        [pa.array(["a"]), pa.array(["b"]), pa.array([1])], names=["id", "id", "label"]
    )
    out = decode_labels([ipc(table)], [ARROW], FIELDS)
    assert out.ids == [] and [d.code for d in out.dead] == ["bad_arrow"]
    assert "two columns named 'id'" in out.dead[0].reason


def test_regression_arrow_union_feature_in_an_empty_batch() -> None:
    # Found by fuzz/arrow_events.py (atheris, seed 7). Input: an Arrow stream of no record
    # batches whose "features" struct has a child of type dense_union<>. Before: pyarrow's
    # struct_field kernel segfaulted the process on it. Now: union columns are refused when
    # the stream is read, one dead letter.
    features = pa.struct([("amount", pa.dense_union([])), ("id", pa.string())])
    schema = pa.schema([("model", pa.string()), ("version", pa.string()), ("features", features)])
    sink = pa.BufferOutputStream()
    pa.ipc.new_stream(sink, schema).close()  # the schema, then no record batch
    data = sink.getvalue().to_pybytes()
    out = decode_arrow(data, FIELDS, NOW, message=0)
    assert [d.code for d in out.dead] == ["not_arrow"] and "union" in out.dead[0].reason
    labels = decode_labels([data], [ARROW], FIELDS)
    assert [d.code for d in labels.dead] == ["bad_arrow"]


def test_regression_arrow_label_beyond_pythons_years() -> None:
    # Input: an Arrow label batch whose label is a timestamp of 2**62 seconds. Before:
    # to_pylist raised OverflowError out of decode_labels. Now: one dead letter.
    table = pa.table({"id": ["a"], "label": pa.array([2**62], pa.timestamp("s"))})
    out = decode_labels([ipc(table)], [ARROW], FIELDS)
    assert out.ids == [] and [d.code for d in out.dead] == ["bad_arrow"]


def test_regression_json_integers_beyond_int64_in_one_feature() -> None:
    # Input: two events, feature 'a' = 2**64 - 1 and -1. Before: OverflowError out of
    # pa.array (no Arrow integer type holds both). Now: decoded; 'a' is text, so both are
    # type errors of a numeric feature (as any mixed column is).
    values = [_json({"model": "m", "version": "1", "features": {"a": v}}) for v in (2**64 - 1, -1)]
    out = decode_batch(values, [JSON] * 2, FIELDS, [NOW] * 2)
    assert out.dead == [] and out.tables[("m", "1")][0].column("a").to_pylist() == [
        "18446744073709551615",
        "-1",
    ]


def test_regression_json_nesting_that_overflowed_pyarrows_reader() -> None:
    # Input: a batch of 20 good events and one whose feature is 1,000,000 '[' deep. Before:
    # pyarrow's JSON reader (the columnar path, 16+ messages) recursed off the stack:
    # SIGSEGV. Now: such a batch goes message by message; the deep one is "not_json".
    # (Run in a child process: before the fix it killed the interpreter.)
    code = (
        "from driftline.events import decode_batch, FieldMap, JSON\n"
        "import orjson\n"
        "good = orjson.dumps({'model': 'm', 'version': '1', 'features': {'a': 1}})\n"
        'deep = b\'{"model":"m","version":"1","features":{"a":\' + b\'[\' * 10**6'
        " + b']' * 10**6 + b'}}'\n"
        "out = decode_batch([good] * 20 + [deep], [JSON] * 21, FieldMap(), [0.0] * 21)\n"
        "print(out.events, [d.code for d in out.dead])\n"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr[-500:]
    assert r.stdout.split() == ["20", "['not_json']"]


def test_regression_json_nesting_deeper_than_orjson_writes(http: Rig) -> None:
    # Input: a feature nested 300 deep (orjson reads 1024 levels, writes 254) beside events
    # where the feature is a number. Before: the mixed column fell back to text and
    # orjson.dumps raised TypeError out of the decoder; over HTTP, split_body re-serialised
    # each event and the same TypeError was a 500. Now: decoded (a type error) / 422.
    deep = b"[" * 300 + b"]" * 300
    values = [
        b'{"model":"m","version":"1","features":{"a":' + deep + b"}}",
        _json({"model": "m", "version": "1", "features": {"a": 1}}),
    ]
    out = decode_batch(values, [JSON] * 2, FIELDS, [NOW] * 2)
    assert out.dead == [] and out.tables[("m", "1")][0].column("a").to_pylist() == ["[…]", "1"]
    r = http.client.post("/v1/events", content=b"[" + b",".join(values) + b"]", headers=AUTH)
    assert r.status_code == 422 and "nested too deeply" in r.text


def test_regression_config_not_utf8(tmp_path: Path) -> None:
    # Input: a config file starting with bytes ff fe. Before: UnicodeDecodeError out of
    # config.load. Now: ConfigError naming the file.
    path = tmp_path / "bad.toml"
    path.write_bytes(b"\xff\xfe[kafka]\n")
    with pytest.raises(ConfigError, match="not valid TOML: not UTF-8"):
        cfgmod.load(path)


def test_regression_config_infinite_duration(data: Path, tmp_path: Path) -> None:
    # Input: window.duration = "999…9s" (400 nines) with step = "1s". Before: the duration
    # was inf and round(inf / 1) raised OverflowError; without a step, an infinite window
    # (or checkpoint interval, or label TTL) was accepted. Now: ConfigError naming the key.
    path = tmp_path / "inf.toml"
    huge = "9" * 400 + "s"
    path.write_text(config_text(data / "fraud.dlb", "window.duration", huge) + "")
    text = path.read_text().replace("[window]\n", "[window]\nstep = '1s'\n")
    path.write_text(text)
    with pytest.raises(ConfigError, match=r"window\.duration: a duration must be finite"):
        cfgmod.load(path)
    path.write_text(config_text(data / "fraud.dlb", "state.checkpoint_interval", huge))
    with pytest.raises(ConfigError, match=r"state\.checkpoint_interval"):
        cfgmod.load(path)


def test_regression_config_url_with_a_bad_ipv6_host(data: Path, tmp_path: Path) -> None:
    # Input: [[alerts.receivers]] url = "http://[::1" (an unclosed IPv6 bracket). Before:
    # ValueError ("Invalid IPv6 URL") out of urllib, through config.load. Now: ConfigError.
    path = tmp_path / "ipv6.toml"
    path.write_text(
        config_text(data / "fraud.dlb") + "[[alerts.receivers]]\nname = 'x'\nurl = 'http://[::1'\n"
    )
    with pytest.raises(ConfigError, match=r"alerts.receivers 'x': url is not a URL"):
        cfgmod.load(path)


def test_regression_baseline_sample_header_claims_a_trillion_values(
    small_baseline: bytes, tmp_path: Path
) -> None:
    # Input: a baseline whose columns/0/sample.npy header says shape (10**12,) (CRC made
    # right). Before: np.load allocated 7.28 TiB up front: MemoryError. Now: BaselineError
    # saying how many values the header claims and how many bytes there are.
    raw = rewrite_member(small_baseline, "columns/0/sample.npy", npy_with_shape((10**12,)))
    path = tmp_path / "lying.dlb"
    path.write_bytes(raw)
    with pytest.raises(BaselineError, match=r"says 1000000000000 values but holds \d+ bytes"):
        bl.load(path)


def test_regression_baseline_damaged_zip_members(small_baseline: bytes, tmp_path: Path) -> None:
    # Input: (a) the manifest's deflate data with a byte changed; (b) a local header's
    # compression method set to 99; (c) the central directory's "encrypted" flag set.
    # Before: zlib.error, NotImplementedError, RuntimeError out of baseline.load.
    # Now: BaselineError "corrupt baseline (zip archive: …)".
    with zipfile.ZipFile(io.BytesIO(small_baseline)) as zf:
        info = zf.getinfo("manifest.json")
    assert info.compress_type == zipfile.ZIP_DEFLATED
    local = info.header_offset
    name_len = int.from_bytes(small_baseline[local + 26 : local + 28], "little")
    extra_len = int.from_bytes(small_baseline[local + 28 : local + 30], "little")
    data_at = local + 30 + name_len + extra_len
    damaged = bytearray(small_baseline)
    damaged[data_at] = 0xFF  # deflate block type 3: reserved, "invalid block type"
    central = small_baseline.find(b"PK\x01\x02")  # the manifest's central entry comes first
    method = bytearray(small_baseline)
    method[central + 10 : central + 12] = (99).to_bytes(2, "little")
    encrypted = bytearray(small_baseline)
    encrypted[central + 8] |= 0x01
    for raw in (damaged, method, encrypted):
        path = tmp_path / "damaged.dlb"
        path.write_bytes(bytes(raw))
        with pytest.raises(BaselineError, match=r"corrupt baseline \(zip archive: "):
            bl.load(path)


def test_regression_baseline_thresholds_not_an_object(
    small_baseline: bytes, tmp_path: Path
) -> None:
    # Input: a manifest whose calibration.thresholds is a list. Before: AttributeError
    # ('list' object has no attribute 'items') out of baseline.load. Now: BaselineError.
    def change(data: bytes) -> bytes:
        m = orjson.loads(data)
        m["calibration"] = {
            "window": 1,
            "false_alarm_rate": 0.1,
            "resamples": 1,
            "seed": 1,
            "numeric_statistic": "psi",
            "categorical_statistic": "psi",
            "thresholds": [1, 2],
        }
        return orjson.dumps(m)

    path = tmp_path / "cal.dlb"
    path.write_bytes(rewrite_member(small_baseline, "manifest.json", change))
    with pytest.raises(BaselineError, match="expected a JSON object, got list"):
        bl.load(path)


# -- the atheris harnesses, briefly ---------------------------------------------------------

# Inputs per harness: a few seconds each on a 2-core machine.
HARNESSES = {"json_events": 4000, "arrow_events": 30000, "config_file": 8000, "baseline_file": 8000}


@pytest.mark.parametrize("harness", HARNESSES)
def test_atheris_harnesses_run(harness: str, tmp_path: Path) -> None:
    """Each coverage-guided harness runs a fixed number of inputs (libFuzzer seed 1, so every run
    tries the same ones) from its seed corpus and finds nothing. The searches for new
    cases are the long runs, ``python fuzz/<harness>.py -max_total_time=600``
    (fuzz/README.md); what they find is kept below as a ``test_regression_*``."""
    pytest.importorskip("atheris")
    seeds = REPO / "fuzz" / "corpus" / harness
    new = tmp_path / "new"  # libFuzzer writes new inputs to its first corpus directory
    new.mkdir()
    env = {**os.environ, "PYTHONHASHSEED": "0"}
    r = subprocess.run(
        [
            sys.executable,
            str(REPO / "fuzz" / f"{harness}.py"),
            str(new),
            str(seeds),
            "-seed=1",  # the same inputs on every CI run: a regression check, not a search
            f"-runs={HARNESSES[harness]}",
            "-max_total_time=30",
            "-timeout=20",
            "-rss_limit_mb=4096",
            f"-artifact_prefix={tmp_path}/",
        ],
        capture_output=True,
        text=True,
        timeout=180,
        env=env,
        cwd=tmp_path,
    )
    assert r.returncode == 0, r.stderr[-3000:]
    assert "Done" in r.stderr and not list(tmp_path.glob("crash-*"))
