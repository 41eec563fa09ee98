"""Events through a real broker: produced with every compression codec a serving stack
uses, read back with kafka-python, decoded by driftline (good ones kept, bad ones
dead-lettered)."""

from __future__ import annotations

import time

import orjson
import pyarrow as pa
import pytest
from kafka import KafkaProducer, OffsetAndMetadata, TopicPartition
from kafka import errors as kafka_errors
from kafka_io import read_all

from driftline.config import KafkaConfig, Topics
from driftline.connectors.kafka import BATCH_BYTES, LINGER_MS, KafkaSink, KafkaSource
from driftline.events import ARROW, JSON, Decoded, FieldMap, decode_batch


def decode_topic(broker: str, topic: str, expected: int) -> Decoded:
    """Every message of the topic, decoded as the engine does (by content-type header)."""
    records = read_all(broker, topic, expected)
    ctypes = [h["content-type"].decode() if "content-type" in h else None for _, _, h in records]
    values = [v for _, v, _ in records]
    return decode_batch(values, ctypes, FieldMap(), [0.0] * len(values))


@pytest.mark.parametrize("codec", ["gzip", "snappy", "lz4", "zstd", None])
def test_compressed_json_events_round_trip(broker: str, topic: str, codec: str | None) -> None:
    producer = KafkaProducer(bootstrap_servers=broker, compression_type=codec, linger_ms=5)
    for i in range(500):
        event = {
            "model": "fraud",
            "version": "7",
            "id": f"r{i}",
            "ts": 1000.0 + i,
            "features": {"amount": float(i), "country": "DE"},
            "prediction": 0.5,
        }
        producer.send(
            topic, orjson.dumps(event), key=b"fraud", headers=[("content-type", JSON.encode())]
        )
    producer.send(topic, b"{broken", key=b"fraud")
    producer.flush()
    producer.close()
    decoded = decode_topic(broker, topic, 501)
    table = pa.concat_tables(decoded.tables[("fraud", "7")])
    assert table.num_rows == 500
    assert table.column("amount").to_pylist() == [float(i) for i in range(500)]
    assert len(decoded.dead) == 1 and decoded.dead[0].reason.startswith("not JSON")


def test_arrow_batches_round_trip(broker: str, topic: str) -> None:
    producer = KafkaProducer(
        bootstrap_servers=broker, compression_type="lz4", max_request_size=8 << 20
    )
    batch = pa.table(
        {
            "model": ["fraud"] * 10_000,
            "version": ["7"] * 10_000,
            "ts": [float(i) for i in range(10_000)],
            "features": pa.array([{"x": float(i)} for i in range(10_000)]),
        }
    )
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, batch.schema) as w:
        w.write_table(batch)
    for _ in range(3):
        producer.send(
            topic, sink.getvalue().to_pybytes(), headers=[("content-type", ARROW.encode())]
        )
    producer.flush()
    producer.close()
    decoded = decode_topic(broker, topic, 3)
    assert decoded.dead == [] and decoded.events == 30_000


@pytest.mark.parametrize("divergent", [300, None])
def test_a_truncated_log_moves_the_source_back_and_is_reported(
    broker: str, topic: str, monkeypatch: pytest.MonkeyPatch, divergent: int | None
) -> None:
    """KIP-320: an unclean leader election rolled back records the source had read, and
    kafka-python raises LogTruncationError from poll (a one-node broker cannot do that, so
    the error is raised in its place). The source reads again from where the log diverged
    (or, when the broker does not know, from the ``auto_offset_reset`` end), and reports it
    as a reset. A real broker and consumer otherwise."""
    producer = KafkaProducer(bootstrap_servers=broker)
    for i in range(500):
        producer.send(topic, orjson.dumps({"i": i}))
    producer.flush()
    producer.close()
    cfg = KafkaConfig(bootstrap_servers=broker, mode="assign", topics=Topics(inference=topic))
    source = KafkaSource(cfg, [topic])
    try:
        source.start()
        read = 0
        deadline = time.monotonic() + 30
        while read < 500 and time.monotonic() < deadline:
            read += sum(len(m.offsets) for m in source.poll(200))
        assert read == 500
        tp = TopicPartition(topic, 0)
        offset = None if divergent is None else OffsetAndMetadata(divergent, "", 0)
        truncated = kafka_errors.LogTruncationError({tp: offset})

        def poll(**_: object) -> None:
            raise truncated

        monkeypatch.setattr(source.consumer, "poll", poll)
        assert source.poll(200) == []
        monkeypatch.undo()
        (reset,) = source.take_resets()
        assert (reset.topic, reset.partition, reset.offset) == (topic, 0, 500)
        if divergent is None:  # by the policy: earliest
            assert reset.truncated_to is None and "out of range" in reset.describe()
        else:
            assert reset.truncated_to == 300
            assert "log truncated below offset 500" in reset.describe()
            assert "read again from offset 300" in reset.describe()
        again: list[int] = []
        want = 200 if divergent is not None else 500
        deadline = time.monotonic() + 30
        while len(again) < want and time.monotonic() < deadline:
            again.extend(o for m in source.poll(200) for o in m.offsets)
        assert again == list(range(500 - want, 500))
    finally:
        source.close()


def test_the_sinks_producer_batches_as_it_is_given(broker: str) -> None:
    """The window-record producer's linger and batch size: the sink's defaults, or what a
    caller passes (benchmarks/sink_batching.py compares the two)."""
    cfg = KafkaConfig(bootstrap_servers=broker)
    sinks = [KafkaSink(cfg), KafkaSink(cfg, linger_ms=20, batch_bytes=16_384)]
    try:
        got = [(s.producer.config["linger_ms"], s.producer.config["batch_size"]) for s in sinks]
    finally:
        for s in sinks:
            s.close()
    assert got == [(LINGER_MS, BATCH_BYTES), (20, 16_384)]
