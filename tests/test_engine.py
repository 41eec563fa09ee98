"""The engine without a broker: messages in, records and dead letters out, state round trips.

The oracle for window statistics is the replay path (``Monitor.record`` over
``count_windows`` of the same rows), itself checked against SciPy in test_replay and
test_conformance.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from kafka_io import arrow_message, events, json_messages
from sinks import MemorySink

from driftline import baseline as bl
from driftline import config as cfgmod
from driftline.engine import Engine, Messages
from driftline.events import ARROW, JSON
from driftline.exceptions import ConfigError
from driftline.monitor import Monitor, policy_for
from driftline.state import StateDir, StateError
from driftline.windows import count_windows


def config(data: Path, tmp: Path, window: str = "size = 2000", extra: str = "") -> cfgmod.Config:
    path = tmp / "driftline.toml"
    path.write_text(
        "[kafka.topics]\ninference = 'inf'\nfeatures = 'feat'\n"
        f"[state]\ndir = '{tmp / 'state'}'\n[window]\n{window}\n[health]\nhysteresis = 2\n"
        f"[[models]]\nname = 'fraud'\nbaseline = '{data / 'fraud.dlb'}'\n{extra}"
    )
    return cfgmod.load(path)


def serving(data: Path) -> pa.Table:
    return pq.read_table(data / "serving.parquet")


def test_skew_records_equal_the_replay_path(data: Path, tmp_path: Path) -> None:
    cfg = config(data, tmp_path)
    sink = MemorySink()
    engine = Engine(cfg, sink)
    table = serving(data)
    for start in range(0, table.num_rows, 1500):  # polls that do not line up with windows
        engine.process(json_messages(table.slice(start, 1500), start))
    skew = [r for r in sink.records if r["kind"] == "skew"]
    assert len(skew) == 6 and [r["window"]["index"] for r in skew] == list(range(6))

    base = bl.load(data / "fraud.dlb")
    monitor = Monitor(base, policy_for(base), "fraud", "7", threads=1)
    batches = table.rename_columns(["ts", "id", *table.column_names[2:]]).to_batches(
        max_chunksize=1000
    )
    want = [monitor.record(w) for w in count_windows(batches, 2000, "ts")]
    for got, exp in zip(skew, want, strict=True):
        assert got["window"]["count"] == exp["window"]["count"] == 2000
        assert got["window"]["start"] == exp["window"]["start"]
        for name, feat in exp["features"].items():
            for stat, value in feat.items():
                assert got["features"][name][stat] == value, (name, stat)
        assert got["prediction"]["psi"] == exp["prediction"]["psi"]
        assert got["dataset_drift"] == exp["dataset_drift"]


def test_drift_compares_each_window_with_the_previous_one(data: Path, tmp_path: Path) -> None:
    sink = MemorySink()
    engine = Engine(config(data, tmp_path), sink)
    engine.process(json_messages(serving(data)))
    drift = [r for r in sink.records if r["kind"] == "drift"]
    assert [r["window"]["index"] for r in drift] == [1, 2, 3, 4, 5]
    # the serving data change at 40 % (row 4800, in window 2): a new country arrives. The
    # drift record of window 2 sees the jump against window 1; windows 4 and 5 look like
    # their predecessors again, while the skew against training stays high
    country = {r["window"]["index"]: r["features"]["country"]["psi"] for r in drift}
    assert country[2] > 0.1 > max(country[4], country[5])
    skew = [r["features"]["country"]["psi"] for r in sink.records if r["kind"] == "skew"]
    assert skew[5] > 0.1
    assert all(r["source"] == "inference" for r in sink.records)


def test_health_changes_only_after_hysteresis(data: Path, tmp_path: Path) -> None:
    sink = MemorySink()
    engine = Engine(config(data, tmp_path), sink)
    engine.process(json_messages(serving(data)))
    skew = [r for r in sink.records if r["kind"] == "skew"]
    observed = [r["observed_health"] for r in skew]
    tracked = [r["health"] for r in skew]
    first_bad = next(i for i, h in enumerate(observed) if h != "ok")
    assert tracked[first_bad] == "ok"  # one bad window is not enough with hysteresis 2
    assert observed[first_bad + 1] != "ok" and tracked[first_bad + 1] != "ok"
    changes = [r["health_change"] for r in skew if "health_change" in r]
    assert changes and changes[0]["from"] == "ok"


def test_bad_messages_are_dead_lettered_with_their_offsets(data: Path, tmp_path: Path) -> None:
    sink = MemorySink()
    engine = Engine(config(data, tmp_path), sink)
    good = json_messages(serving(data).slice(0, 100), 10)
    values = [b"{nope", *good.values[:50], b'{"model": "fraud"}', *good.values[50:], b""]
    values += [orjson.dumps({**events(serving(data).slice(0, 1))[0], "model": "spam"})]
    values += [b"\x00\x01", b'{"model":"fraud","version":"7","features":{}}']
    n = len(values)
    ctypes = [JSON] * n
    ctypes[-2] = ARROW
    engine.process(Messages("inf", 0, list(range(n)), values, ctypes, [0.0] * n))
    codes = sorted(((d.code, o.offset) for d, o in sink.dead), key=lambda c: c[1])
    assert codes == [
        ("not_json", 0),
        ("missing_field", 51),
        ("empty", 102),
        ("no_baseline", 103),
        ("not_arrow", 104),
    ]
    dead = {o.offset: d for d, o in sink.dead}
    assert dead[51].value == b'{"model": "fraud"}'
    assert "no baseline configured for model 'spam'" in dead[103].reason
    assert sum(engine.counters.events.values()) == 101  # 100 good + the empty-features one
    assert engine.counters.invalid == {
        "not_json": 1,
        "missing_field": 1,
        "empty": 1,
        "no_baseline": 1,
        "not_arrow": 1,
    }
    assert engine.positions == {("inf", 0): n}


def test_arrow_messages_give_the_same_records_as_json(data: Path, tmp_path: Path) -> None:
    table = serving(data)
    as_json, as_arrow = MemorySink(), MemorySink()
    Engine(config(data, tmp_path), as_json).process(json_messages(table))
    values = []
    for start in range(0, table.num_rows, 3000):
        part = table.slice(start, 3000)
        values.append(
            arrow_message(
                pa.table(
                    {
                        "model": ["fraud"] * part.num_rows,
                        "version": ["7"] * part.num_rows,
                        "ts": part.column("ts"),
                        "features": pa.StructArray.from_arrays(
                            [
                                part.column(c).combine_chunks()
                                for c in ("amount", "age", "hour", "items", "country", "device")
                            ],
                            ["amount", "age", "hour", "items", "country", "device"],
                        ),
                        "prediction": part.column("score"),
                    }
                )
            )
        )
    n = len(values)
    Engine(config(data, tmp_path), as_arrow).process(
        Messages("inf", 0, list(range(n)), values, [ARROW] * n, [0.0] * n)
    )
    assert as_arrow.records == as_json.records


def run_engine(
    data: Path, tmp: Path, table: pa.Table, chunk: int, restarts: set[int], window: str
) -> list[dict[str, Any]]:
    """Process ``table`` in polls of ``chunk`` messages; before the polls in ``restarts``,
    checkpoint to a real state directory and continue in a new engine restored from it."""
    cfg = config(data, tmp, window)
    sink = MemorySink()
    engine = Engine(cfg, sink)
    for i, start in enumerate(range(0, table.num_rows, chunk)):
        if i in restarts:
            with StateDir(cfg.state_dir) as state:
                state.write(engine.snapshot())
                engine.close()
                engine = Engine(cfg, sink)
                snap = state.read()
                assert snap is not None
                engine.restore(snap)
            assert engine.positions == {("inf", 0): start}
        engine.process(json_messages(table.slice(start, chunk), start))
    engine.close()
    return sink.records


@settings(max_examples=8, deadline=None)
@given(
    chunk=st.sampled_from([700, 1300, 2000]),
    restarts=st.sets(st.integers(1, 15), max_size=4),
    window=st.sampled_from(["size = 2000", "size = 2000\nstep = 500", 'duration = "60s"']),
)
def test_a_restored_engine_produces_the_same_records(
    data: Path,
    tmp_path_factory: pytest.TempPathFactory,
    chunk: int,
    restarts: set[int],
    window: str,
) -> None:
    table = serving(data)
    plain = run_engine(data, tmp_path_factory.mktemp("a"), table, chunk, set(), window)
    resumed = run_engine(data, tmp_path_factory.mktemp("b"), table, chunk, restarts, window)
    assert len(plain) > 4
    assert resumed == plain


def test_release_reports_the_open_window_as_partial(data: Path, tmp_path: Path) -> None:
    sink = MemorySink()
    engine = Engine(config(data, tmp_path), sink)
    engine.process(json_messages(serving(data).slice(0, 2500)))
    assert len(sink.records) == 1
    engine.release({("inf", 0)})
    partial = [r for r in sink.records if r["window"]["partial"]]
    assert [r["window"]["count"] for r in partial] == [500, 500]  # skew and drift
    assert engine.streams == {} and engine.positions == {}


def test_a_model_keeps_at_most_max_versions_and_retires_the_one_active_longest_ago(
    data: Path, tmp_path: Path
) -> None:
    """``models[].max_versions = 2``: a third version retires the version whose last event
    came longest ago. Its open window is published as a partial one (no event goes
    unreported) and its state goes; the choice survives a checkpoint."""
    cfg = config(data, tmp_path, extra="max_versions = 2\n")
    assert cfg.models[0].max_versions == 2
    sink = MemorySink()
    engine = Engine(cfg, sink)
    table = serving(data)
    engine.process(json_messages(table.slice(0, 2500), 0, version="1"))  # window 0 closed, 500 open
    engine.process(json_messages(table.slice(2500, 300), 2500, version="2"))
    engine.process(json_messages(table.slice(2800, 100), 2800, version="1"))  # 1 active after 2
    assert {k[1] for k in engine.streams} == {"1", "2"}
    engine.process(json_messages(table.slice(2900, 100), 2900, version="3"))  # retires 2
    assert {k[1] for k in engine.streams} == {"1", "3"}
    assert engine.counters.retired == 1
    partial = [r for r in sink.records if r["window"]["partial"]]
    assert [(r["version"], r["kind"], r["window"]["count"]) for r in partial] == [
        ("2", "skew", 300)
    ]
    assert ("fraud", "2") not in engine.health and ("fraud", "1") in engine.health
    assert ("fraud", "2", "inference") not in engine.counters.events

    snap = engine.snapshot()  # version 3 now the latest, 1 the one active longest ago
    again = Engine(cfg, MemorySink())
    again.restore(snap)
    again.process(json_messages(table.slice(3000, 100), 3000, version="4"))
    assert {k[1] for k in again.streams} == {"3", "4"}
    assert again.counters.retired == 1
    engine.close()
    again.close()


def test_a_version_retired_in_the_batch_that_closed_its_window_publishes_it_first(
    data: Path, tmp_path: Path
) -> None:
    """One poll carries versions 1 and 2 (each closing a window) and then a new version 3,
    with ``max_versions = 2``: version 1, pushed first, is retired while its closed window
    waits to be computed with the batch. It is published, then the partial one."""
    engine = Engine(config(data, tmp_path, extra="max_versions = 2\n"), sink := MemorySink())
    table = serving(data)
    parts = [
        json_messages(table.slice(0, 2500), 0, version="1"),
        json_messages(table.slice(2500, 2500), 2500, version="2"),
        json_messages(table.slice(5000, 100), 5000, version="3"),
    ]
    values = [v for m in parts for v in m.values]
    n = len(values)
    engine.process(Messages("inf", 0, list(range(n)), values, [JSON] * n, [0.0] * n))
    assert {k[1] for k in engine.streams} == {"2", "3"}
    got = [
        (r["version"], r["kind"], r["window"]["index"], r["window"]["count"]) for r in sink.records
    ]
    assert got == [
        ("1", "skew", 0, 2000),
        ("1", "skew", 1, 500),
        ("1", "drift", 1, 500),  # the partial window against window 0
        ("2", "skew", 0, 2000),
    ]
    assert [r["window"]["partial"] for r in sink.records] == [False, True, True, False]
    engine.close()


def test_versions_without_a_baseline_are_remembered_up_to_a_cap(
    data: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Events of made-up models are dead-lettered; the engine remembers when to look each
    up again for at most MAX_UNKNOWN of them, so a flood of names cannot grow it."""
    import driftline.engine as engine_module

    monkeypatch.setattr(engine_module, "MAX_UNKNOWN", 3)
    engine = Engine(config(data, tmp_path), MemorySink())
    table = serving(data).slice(0, 1)
    for i in range(10):
        rows = events(table, model=f"made-up-{i}")
        engine.process(Messages("inf", 0, [i], [orjson.dumps(rows[0])], [JSON], [0.0]))
    assert engine.counters.invalid["no_baseline"] == 10
    assert list(engine._unknown) == [(f"made-up-{i}", "7") for i in (7, 8, 9)]
    engine.close()


def test_state_dir_is_locked_and_checkpoints_are_checked(data: Path, tmp_path: Path) -> None:
    with StateDir(tmp_path / "s") as state:
        with pytest.raises(ConfigError, match="in use by driftline pid"):
            StateDir(tmp_path / "s")
        (tmp_path / "s" / "checkpoint.zip").write_bytes(b"not a zip")
        with pytest.raises(StateError, match="cannot be read"):
            state.read()
    with StateDir(tmp_path / "s") as state:  # released on close
        assert state.path == tmp_path / "s"


def test_unknown_config_keys_for_the_engine_are_refused(data: Path, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"kafka\.mode must be one of"):
        config(data, tmp_path, extra="[kafka]\nmode = 'broadcast'\n")
    with pytest.raises(ConfigError, match=r"window\.duration must be a whole multiple"):
        config(data, tmp_path, window='duration = "60s"\nstep = "25s"')
    with pytest.raises(ConfigError, match=r"events\.bogus: unknown key"):
        config(data, tmp_path, extra="[events]\nbogus = 'x'\n")


def test_monitors_of_one_baseline_share_its_prepared_references(data: Path) -> None:
    """Many model versions on one baseline file hold one copy of its prepared numeric
    references (the soak benchmark's 50 models took ~2.9 GB before); another baseline
    object gets its own."""
    base = bl.load(data / "fraud.dlb")
    policy = policy_for(base)
    a = Monitor(base, policy, "fraud", "7", threads=1)
    b = Monitor(base, policy, "fraud", "8", threads=1)
    assert a._numeric is b._numeric
    other = bl.load(data / "fraud.dlb")
    c = Monitor(other, policy, "fraud", "9", threads=1)
    assert c._numeric is not a._numeric
    assert c._numeric.samples.tobytes() == a._numeric.samples.tobytes()
    for m in (a, b, c):
        m.close()
