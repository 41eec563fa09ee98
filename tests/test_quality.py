"""Labels joined to predictions in the engine: performance windows with realised quality
(checked against scikit-learn on the same pairs) beside CBPE, what is counted and
dead-lettered, checkpoints, and realised quality feeding health."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from kafka_io import arrow_message, events
from sinks import MemorySink
from sklearn.metrics import accuracy_score, log_loss, roc_auc_score

from driftline import config as cfgmod
from driftline.engine import Engine, Messages
from driftline.events import ARROW, JSON
from driftline.exceptions import ConfigError
from driftline.proxy import estimated_quality


def config(data: Path, tmp: Path, extra: str = "", labels: str = "window = 1000") -> cfgmod.Config:
    path = tmp / "driftline.toml"
    path.write_text(
        "[kafka.topics]\ninference = 'inf'\nlabels = 'lab'\n"
        f"[state]\ndir = '{tmp / 'state'}'\n[window]\nsize = 2000\n[health]\nhysteresis = 1\n"
        f"[labels]\n{labels}\n"
        f"[[models]]\nname = 'fraud'\nbaseline = '{data / 'fraud.dlb'}'\n{extra}"
    )
    return cfgmod.load(path)


def inference(table: pa.Table, start: int = 0) -> Messages:
    values = [orjson.dumps(e) for e in events(table)]
    n = len(values)
    return Messages("inf", 0, list(range(start, start + n)), values, [JSON] * n, [0.0] * n)


def label_messages(values: list[bytes], start: int = 0, ctype: str = JSON) -> Messages:
    n = len(values)
    return Messages("lab", 0, list(range(start, start + n)), values, [ctype] * n, [0.0] * n)


def labels_of(table: pa.Table, flip: bool = False) -> list[bytes]:
    rows = table.select(["id", "label"]).to_pylist()
    return [orjson.dumps({"id": r["id"], "label": (1 - r["label"]) if flip else r["label"]})
            for r in rows]  # fmt: skip


def performance(sink: MemorySink) -> list[dict[str, Any]]:
    return [r for r in sink.records if r["kind"] == "performance"]


def test_performance_windows_match_sklearn_on_the_same_pairs(data: Path, tmp_path: Path) -> None:
    table = pq.read_table(data / "serving.parquet")
    sink = MemorySink()
    engine = Engine(config(data, tmp_path), sink)
    engine.process(inference(table))
    order = np.random.default_rng(4).permutation(table.num_rows)  # labels come in any order
    shuffled = table.take(pa.array(order))
    for start in range(0, table.num_rows, 700):
        engine.process(label_messages(labels_of(shuffled.slice(start, 700)), start))
    got = performance(sink)
    assert [r["window"]["index"] for r in got] == list(range(12))
    train = np.asarray(pq.read_table(data / "training.parquet").column("score"), dtype=float)
    trained = estimated_quality(np.sort(train), 0.5)
    for i, r in enumerate(got):
        part = shuffled.slice(i * 1000, 1000)
        y = np.asarray(part.column("label"), dtype=float)
        s = np.asarray(part.column("score"), dtype=float)
        q = r["realised"]
        assert r["window"]["count"] == q["pairs"] == 1000
        assert q["accuracy"] == pytest.approx(accuracy_score(y, s >= 0.5), abs=1e-12)
        assert q["log_loss"] == pytest.approx(log_loss(y, s, labels=[0, 1]), rel=1e-9)
        assert q["roc_auc"] == pytest.approx(roc_auc_score(y, s), rel=1e-9)
        assert r["estimated"] == pytest.approx(estimated_quality(np.sort(s), 0.5))
        ts = np.asarray(part.column("ts"), dtype=float)
        assert (r["window"]["start"], r["window"]["end"]) == (ts.min(), ts.max())
        assert r["baseline"]["accuracy"] == pytest.approx(trained["accuracy"])  # CBPE, training
        assert r["health"] == "critical"  # the version's health now (its inputs drifted)
    assert got[-1]["labels"] == {"unmatched": 0, "expired": 0, "evicted": 0, "pending": 0}
    assert engine.counters.labels == table.num_rows
    engine.close()


def test_unmatched_bad_and_arrow_labels(data: Path, tmp_path: Path) -> None:
    table = pq.read_table(data / "serving.parquet").slice(0, 3000)
    sink = MemorySink()
    engine = Engine(config(data, tmp_path), sink)
    early = labels_of(table.slice(0, 10))
    engine.process(label_messages(early))  # before their predictions: unmatched
    engine.process(inference(table))
    bad = [b"{oops", b"[1]", b'{"id": "x"}', b'{"id": "req-0002500", "label": "yes"}',
           b'{"label": 1}']  # fmt: skip
    engine.process(label_messages(bad, 10))
    arrow = arrow_message(table.slice(10, 990).select(["id", "label"]))
    engine.process(label_messages([arrow, b"not arrow"], 20, ARROW))
    engine.process(label_messages(labels_of(table.slice(0, 10)), 30))  # matched now
    dead = sorted((origin.offset, letter.code) for letter, origin in sink.dead)
    assert dead == [(10, "not_json"), (11, "not_object"), (12, "missing_field"),
                    (13, "bad_label"), (14, "missing_field"), (21, "bad_arrow")]  # fmt: skip
    (r,) = performance(sink)
    assert r["window"]["count"] == 1000 and r["labels"]["unmatched"] == 10
    assert r["labels"]["pending"] == 2000
    # the event whose label was bad is still pending: a good label later matches it
    engine.process(label_messages([b'{"id": "req-0002500", "label": true}'], 40))
    assert engine.quality is not None and engine.quality.join.counters.unmatched == 10
    assert engine.quality.join.pending == 1999
    engine.close()


def test_a_checkpoint_resumes_the_join_and_the_open_window(data: Path, tmp_path: Path) -> None:
    table = pq.read_table(data / "serving.parquet")
    labels = labels_of(table)

    def run(split: int | None) -> list[dict[str, Any]]:
        sink = MemorySink()
        cfg = config(data, tmp_path)
        engine = Engine(cfg, sink)
        engine.process(inference(table.slice(0, 6000)))
        engine.process(label_messages(labels[:4500]))
        if split is not None:
            snap = engine.snapshot()
            engine.close()
            engine = Engine(cfg, sink)
            engine.restore(snap)
        engine.process(inference(table.slice(6000), 6000))
        engine.process(label_messages(labels[4500:], 4500))
        engine.close()
        return sink.records

    assert run(1) == run(None)


def test_realised_quality_rules_feed_health(data: Path, tmp_path: Path) -> None:
    rule = (
        "[models.proxy]\ndetector = 'none'\n[[models.proxy.rules]]\nmetric = 'accuracy'\n"
        "min_ratio = 0.8\nseverity = 'critical'\n"
    )
    table = pq.read_table(data / "serving.parquet").slice(0, 4000)
    sink = MemorySink()
    engine = Engine(config(data, tmp_path, rule), sink)
    engine.process(inference(table.slice(0, 2000)))  # one calm window: ok
    engine.process(label_messages(labels_of(table.slice(0, 2000), flip=True)))  # wrong labels
    perf = performance(sink)
    assert len(perf) == 2
    assert perf[0]["observed_health"] == "critical"
    assert perf[0]["reasons"][0].startswith("realised accuracy")
    engine.process(inference(table.slice(2000, 2000), 2000))  # the next inference window
    skew = [r for r in sink.records if r["kind"] == "skew"]
    assert skew[0]["observed_health"] == "ok" and skew[1]["health"] == "critical"
    assert "health_change" in skew[1]
    engine.close()


def test_labels_config(data: Path, tmp_path: Path) -> None:
    cfg = config(data, tmp_path, labels="ttl = '2h'\nmax_pending = 5000\nwindow = 200")
    assert (cfg.labels.ttl, cfg.labels.max_pending, cfg.labels.window) == (7200.0, 5000, 200)
    with pytest.raises(ConfigError, match=r"labels\.window must be a positive integer"):
        config(data, tmp_path, labels="window = 0")
    with pytest.raises(ConfigError, match=r"labels\.speed: unknown key"):
        config(data, tmp_path, labels="speed = 1")
    path = tmp_path / "no-topic.toml"
    path.write_text(
        f"[labels]\nwindow = 10\n[[models]]\nname = 'fraud'\nbaseline = '{data / 'fraud.dlb'}'\n"
    )
    with pytest.raises(ConfigError, match=r"set kafka\.topics\.labels"):
        cfgmod.load(path)
