"""Event decoding: JSON and Arrow messages to per-version tables; bad ones dead-lettered."""

from __future__ import annotations

import orjson
import pyarrow as pa
import pytest
from hypothesis import given
from hypothesis import strategies as st

from driftline.events import (
    ARROW,
    FAST_PATH_MIN,
    MESSAGE,
    FieldMap,
    _decode_json_columnar,
    _decode_json_each,
    decode,
    decode_arrow,
    decode_batch,
    decode_json,
    parse_ts,
)

NOW = 1_800_000_000.0
FIELDS = FieldMap()


def ev(**kw: object) -> bytes:
    base: dict[str, object] = {
        "model": "fraud",
        "version": "7",
        "id": "r1",
        "ts": 100.5,
        "features": {"amount": 12.5, "country": "DE"},
        "prediction": 0.8,
    }
    base.update(kw)
    return orjson.dumps({k: v for k, v in base.items() if v is not ...})


def test_json_events_group_by_version() -> None:
    out = decode_json(
        [
            ev(),
            ev(id="r2", version=8, features={"amount": 3.0}),
            ev(
                id="r3",
                ts="2026-11-22T00:00:00Z",
                features={"amount": "oops", "country": "FR", "age": 40},
            ),
            ev(id="r4", ts=...),
        ],
        FIELDS,
        NOW,
    )
    assert out.dead == [] and out.events == 4
    assert set(out.tables) == {("fraud", "7"), ("fraud", "8")}
    t7 = out.tables[("fraud", "7")][0].to_pydict()
    assert t7["id"] == ["r1", "r3", "r4"]
    assert t7["ts"] == [100.5, parse_ts("2026-11-22T00:00:00Z"), NOW]  # missing ts: now
    assert t7["amount"] == ["12.5", "oops", "12.5"]  # a stray string keeps the column as text
    assert t7["age"] == [None, 40, None]  # a feature absent from some events is null there
    assert t7["prediction"] == [0.8, 0.8, 0.8]
    assert out.tables[("fraud", "8")][0].column("amount").to_pylist() == [3.0]


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        (b"{not json", "not JSON"),
        (b"[1, 2]", "a JSON list, not an object"),
        (ev(model=...), "missing or empty field 'model'"),
        (ev(model=""), "missing or empty field 'model'"),
        (ev(version=...), "missing field 'version'"),
        (ev(version=True), "missing field 'version'"),
        (ev(features=[1, 2]), "field 'features' must be an object"),
        (ev(ts="yesterday"), "field 'ts' must be epoch seconds or ISO-8601, got 'yesterday'"),
        (ev(ts=True), "field 'ts' must be epoch seconds"),
    ],
)
def test_bad_json_is_dead_lettered_with_a_reason(value: bytes, reason: str) -> None:
    out = decode_json([value, ev()], FIELDS, NOW)
    assert out.events == 1  # the good message still goes through
    assert len(out.dead) == 1 and reason in out.dead[0].reason and out.dead[0].value == value


def test_field_map_reads_other_layouts() -> None:
    fields = FieldMap(
        model="meta.model", version="meta.v", features="inputs", prediction="out.score", ts="time"
    )
    raw = orjson.dumps(
        {"meta": {"model": "m", "v": 3}, "inputs": {"x": 1.0}, "out": {"score": 0.2}, "time": 5}
    )
    out = decode_json([raw], fields, NOW)
    t = out.tables[("m", "3")][0].to_pydict()
    assert t["x"] == [1.0] and t["prediction"] == [0.2] and t["ts"] == [5.0]


def ipc(table: pa.Table) -> bytes:
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema) as w:
        w.write_table(table)
    return sink.getvalue().to_pybytes()


def test_arrow_batches_struct_and_flat() -> None:
    struct = pa.table(
        {
            "model": ["fraud", "fraud", "spam"],
            "version": pa.array([7, 7, 1]),
            "ts": [1.0, 2.0, None],
            "features": pa.array(
                [
                    {"amount": 1.0, "country": "DE"},
                    {"amount": 2.0, "country": "FR"},
                    {"amount": 3.0, "country": "IT"},
                ]
            ),
            "prediction": [0.1, 0.2, 0.3],
        }
    )
    out = decode(ipc(struct), ARROW, FIELDS, NOW)
    assert out.dead == [] and out.events == 3
    t = out.tables[("fraud", "7")][0]
    assert t.column_names == ["id", "ts", "amount", "country", "prediction", MESSAGE]
    assert t.column("amount").to_pylist() == [1.0, 2.0]
    assert out.tables[("spam", "1")][0].column("ts").to_pylist() == [NOW]  # null time: now
    flat = pa.table({"model": ["m"], "version": ["1"], "x": [4.0], "id": [9]})
    t2 = decode_arrow(ipc(flat), FIELDS, NOW).tables[("m", "1")][0]
    assert t2.column("x").to_pylist() == [4.0] and t2.column("id").to_pylist() == ["9"]


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        (b"\x00\x01garbage", "not an Arrow IPC stream"),
        (ipc(pa.table({"version": ["1"], "x": [1.0]})), "no 'model' column"),
        (
            ipc(pa.table({"model": ["m"], "version": ["1"], "features": [1.0]})),
            "'features' must be a struct",
        ),
        (ipc(pa.table({"model": ["m"], "version": ["1"], "ts": [[1]]})), "'ts' is not a time"),
    ],
)
def test_bad_arrow_is_dead_lettered(value: bytes, reason: str) -> None:
    out = decode(value, ARROW, FIELDS, NOW)
    assert out.events == 0 and len(out.dead) == 1 and reason in out.dead[0].reason


def test_rows_without_model_are_counted_and_content_type_checked() -> None:
    t = pa.table({"model": ["m", None], "version": ["1", "1"], "x": [1.0, 2.0]})
    out = decode(ipc(t), ARROW + "; charset=binary", FIELDS, NOW)
    assert out.events == 1 and "1 rows of the Arrow batch have no model" in out.dead[0].reason
    other = decode(b"x", "text/csv", FIELDS, NOW)
    assert other.dead[0].reason == "unsupported content-type 'text/csv'"


# -- the columnar JSON path and the message-by-message path agree ----------------------

feature_values = st.one_of(
    st.none(),
    st.floats(allow_nan=False, allow_infinity=False, width=64),
    st.integers(-(2**40), 2**40),
)


@st.composite
def json_batches(draw: st.DrawFn) -> list[bytes]:
    n = draw(st.integers(FAST_PATH_MIN, 40))
    names = draw(st.lists(st.sampled_from(["a", "b", "c"]), min_size=1, max_size=3, unique=True))
    versions = draw(st.sampled_from([["7"], ["7", "8"], [7]]))
    out = []
    for i in range(n):
        feats = {k: draw(feature_values) for k in names if draw(st.booleans()) or k == names[0]}
        event: dict[str, object] = {
            "model": "m",
            "version": versions[i % len(versions)],
            "id": f"r{i}",
            "features": feats,
            "prediction": draw(st.one_of(st.none(), st.floats(0, 1))),
        }
        if draw(st.booleans()):
            event["ts"] = float(draw(st.integers(0, 10**9)))
        out.append(orjson.dumps(event))
    return out


def _as_floats(t: pa.Table) -> dict[str, list[float | None]]:
    from driftline.columns import to_float

    return {
        name: [None if x != x else x for x in to_float(t.column(name))[0].tolist()]
        for name in t.column_names
        if name not in ("id",)
    }


@given(json_batches())
def test_columnar_and_per_message_json_decoding_agree(values: list[bytes]) -> None:
    nows = [float(1000 + i) for i in range(len(values))]
    fast = _decode_json_columnar(values, FIELDS, nows)
    slow = _decode_json_each(values, FIELDS, nows)
    assert fast is not None, "a well-formed, uniformly typed batch takes the columnar path"
    assert fast.dead == slow.dead == []
    assert fast.tables.keys() == slow.tables.keys()
    for key in slow.tables:
        (f,), (s,) = fast.tables[key], slow.tables[key]
        assert f.column("id").to_pylist() == s.column("id").to_pylist()
        ff, sf = _as_floats(f), _as_floats(s)
        for name in sf:
            if name in ff:
                assert ff[name] == sf[name], name
            else:  # a feature absent from every event of this version in the columnar table
                assert all(v is None for v in sf[name]), name


def test_a_broken_message_sends_the_batch_down_the_per_message_path() -> None:
    values = [ev(id=f"r{i}") for i in range(FAST_PATH_MIN)] + [b"{oops"]
    assert _decode_json_columnar(values, FIELDS, [0.0] * len(values)) is None
    out = decode_json(values, FIELDS, 0.0)
    assert out.events == FAST_PATH_MIN and [d.message for d in out.dead] == [FAST_PATH_MIN]


def test_decode_batch_keeps_message_positions_across_content_types() -> None:
    values = [ev(id="a"), ipc(pa.table({"model": ["fraud"], "version": ["7"], "x": [1.0]})), b""]
    out = decode_batch(values, [None, ARROW, None], FIELDS, [0.0, 0.0, 0.0])
    (table,) = [t for ts in out.tables.values() for t in ts if "x" in t.column_names]
    assert table.column(MESSAGE).to_pylist() == [1]
    assert [(d.code, d.message) for d in out.dead] == [("empty", 2)]


def test_float_categories_print_as_numbers_at_any_magnitude() -> None:
    """A categorical column sent as floats: integral values print as integers, the others
    as floats, NaN and ±inf included; 2⁵³ + 2 (integral, past the range a checked int64 →
    float64 cast accepts) once raised out of the engine (found by tests/test_fuzz.py)."""
    from driftline.columns import CategoryEncoder, to_strings
    from driftline.detectors import categorical_reference

    big = float(2**53 + 2)
    values = [3.0, -0.0, 2.5, big, 1e300, -1e300, float("nan"), float("inf"), None]
    strings, errors = to_strings(pa.array(values, pa.float64()))
    assert errors == 0
    assert strings.to_pylist() == [
        "3",
        "0",
        "2.5",
        "9007199254740994",
        "1e+300",
        "-1e+300",
        "nan",
        "inf",
        None,
    ]
    encoder = CategoryEncoder(categorical_reference(["3", "9007199254740994", "x"]))
    codes, type_errors = encoder.encode(pa.array(values, pa.float64()))
    ref = encoder.reference
    assert type_errors == 0
    assert codes[0] == ref.categories.index("3")
    assert codes[3] == ref.categories.index("9007199254740994")


def test_integers_past_two_to_the_53_become_the_nearest_float() -> None:
    """Feature values and event times sent as Arrow integers past ±2⁵³ (hashed ids,
    nanosecond clocks) read as the nearest float, as JSON numbers do; a checked cast raised
    on them."""
    from driftline.columns import to_float
    from driftline.windows import to_seconds

    for arr in (
        pa.array([2**53 + 1, -(2**62), 3, None], pa.int64()),
        pa.array([2**64 - 1, 0], pa.uint64()),
    ):
        want = [float(v) if v is not None else None for v in arr.to_pylist()]
        values, errors = to_float(arr)
        assert errors == 0
        assert [None if v != v else v for v in values.tolist()] == want
        seconds = to_seconds(arr)
        assert [None if v != v else v for v in seconds.tolist()] == want


def test_half_floats_and_dictionaries_of_nested_values_as_categories() -> None:
    """Arrow has no comparison of half floats, and no cast of a dictionary of structs to
    its values: both raised out of the engine (found in review). Half floats now print as
    float32 values do; the structs are type errors."""
    from driftline.columns import to_strings

    half = pa.array([3.0, 0.5, None, float("nan")], pa.float32()).cast(pa.float16())
    indices = pa.array([0, 1, None, 2], pa.int8())
    for arr in (half, pa.DictionaryArray.from_arrays(indices, half.drop_null())):
        strings, errors = to_strings(arr)
        assert (strings.to_pylist(), errors) == (["3", "0.5", None, "nan"], 0)
    nested = pa.DictionaryArray.from_arrays(
        pa.array([0, 1, None, 0], pa.int8()), pa.array([{"a": 0}, {"a": 1}])
    )
    strings, errors = to_strings(nested)
    assert (strings.to_pylist(), errors) == ([None] * 4, 3)
    big = pa.array([2.0**63, -(2.0**63), 2.0**62])
    assert to_strings(big)[0].to_pylist() == [
        "9.223372036854776e+18",
        "-9.223372036854776e+18",
        "4611686018427387904",
    ]


def test_dictionary_encoded_numbers_are_numbers() -> None:
    """A dictionary-encoded numeric feature reads as its values (it was all type errors);
    a dictionary of structs is all type errors."""
    from driftline.columns import to_float

    values, errors = to_float(pa.array([1.5, 2.0, None, 1.5]).dictionary_encode())
    assert errors == 0 and values[[0, 1, 3]].tolist() == [1.5, 2.0, 1.5]
    assert values[2] != values[2]  # NaN where missing
    texts, errors = to_float(pa.array(["1", "x", None]).dictionary_encode())
    assert errors == 1 and texts[0] == 1.0
    nested = pa.DictionaryArray.from_arrays(pa.array([0, None], pa.int8()), pa.array([{"a": 0}]))
    values, errors = to_float(nested)
    assert errors == 1 and all(v != v for v in values)
