"""Events through a real broker: produced with every compression codec a serving stack
uses, read back with kafka-python, decoded by driftline (good ones kept, bad ones
dead-lettered)."""

from __future__ import annotations

import orjson
import pyarrow as pa
import pytest
from kafka import KafkaProducer
from kafka_io import read_all

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
