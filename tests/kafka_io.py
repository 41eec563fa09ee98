"""Producing serving data to, and reading records from, a real broker (test helpers)."""

from __future__ import annotations

import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import orjson
import pyarrow as pa
from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from kafka.admin import KafkaAdminClient, NewTopic

from driftline.engine import Messages
from driftline.events import JSON

FEATURES = ("amount", "age", "hour", "items", "country", "device")


def json_messages(
    table: pa.Table, start: int = 0, topic: str = "inf", *, model: str = "fraud", version: str = "7"
) -> Messages:
    """The rows of ``table`` as one poll's JSON messages (offsets from ``start``), for
    ``Engine.process`` without a broker."""
    values = [orjson.dumps(e) for e in events(table, model=model, version=version)]
    n = len(values)
    return Messages(topic, 0, list(range(start, start + n)), values, [JSON] * n, [0.0] * n)


def topics_for(name: str) -> dict[str, str]:
    """The input, output, dead-letter and alert topics of one test, named after it."""
    return {
        "inference": f"{name}-in",
        "windows": f"{name}-win",
        "dead_letter": f"{name}-dlq",
        "alerts": f"{name}-alerts",
    }


def create_topics(broker: str, names: Iterable[str], partitions: int = 1, **kw: Any) -> None:
    admin = KafkaAdminClient(bootstrap_servers=broker, **kw)
    try:
        admin.create_topics([NewTopic(n, partitions, 1) for n in names])
    finally:
        admin.close()


def events(table: pa.Table, model: str = "fraud", version: str = "7") -> list[dict[str, Any]]:
    out = []
    for row in table.to_pylist():
        out.append(
            {
                "model": model,
                "version": version,
                "id": row["id"],
                "ts": row["ts"],
                "features": {f: row[f] for f in FEATURES if f in row},
                "prediction": row["score"],
            }
        )
    return out


def producer(broker: str, **kw: Any) -> KafkaProducer:
    return KafkaProducer(
        bootstrap_servers=broker,
        linger_ms=20,
        batch_size=256 * 1024,
        max_request_size=16 << 20,
        allow_auto_create_topics=False,
        **kw,
    )


def produce_json(
    broker: str, topic: str, values: Iterable[bytes], key: bytes = b"fraud", **kw: Any
) -> int:
    p = producer(broker, **kw)
    n = 0
    headers = [("content-type", JSON.encode())]
    for v in values:
        p.send(topic, v, key=key, headers=headers)
        n += 1
    p.flush()
    p.close()
    return n


def produce_events(broker: str, topic: str, evs: list[dict[str, Any]], **kw: Any) -> int:
    return produce_json(broker, topic, (orjson.dumps(e) for e in evs), **kw)


def arrow_message(table: pa.Table) -> bytes:
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema) as w:
        w.write_table(table)
    return sink.getvalue().to_pybytes()


def read_all(
    broker: str, topic: str, expected: int, timeout: float = 60.0, **kw: Any
) -> list[tuple[bytes | None, bytes, dict[str, bytes]]]:
    """Every record of a one-partition topic: at least ``expected``, or what came in time."""
    c = KafkaConsumer(
        bootstrap_servers=broker,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        allow_auto_create_topics=False,
        **kw,
    )
    c.assign([TopicPartition(topic, 0)])
    c.seek_to_beginning()
    out: list[tuple[bytes | None, bytes, dict[str, bytes]]] = []
    deadline = time.monotonic() + timeout
    quiet = 0
    try:
        while time.monotonic() < deadline:
            got = c.poll(timeout_ms=300, max_records=10_000)
            for records in got.values():
                out.extend((r.key, r.value, dict(r.headers)) for r in records)
            if len(out) >= expected:
                quiet += 0 if got else 1
                if quiet >= 2:  # nothing more after reaching the count
                    break
    finally:
        c.close()
    return out


def write_config(
    path: Path,
    broker: str,
    topics: dict[str, str],
    baseline: Path,
    state: Path,
    window: str = "size = 2000",
    extra: str = "",
    api: str = "port = 0  # a free port: tests run side by side",
) -> Path:
    lines = [
        "[kafka]",
        f'bootstrap_servers = "{broker}"',
        f'group_id = "g-{path.parent.name}"',
        "session_timeout_ms = 6000",
        'mode = "assign"',
        "[kafka.topics]",
        *(f'{k} = "{v}"' for k, v in topics.items()),
        "[state]",
        f'dir = "{state}"',
        'checkpoint_interval = "1s"',
        "[api]",
        api,
        "[window]",
        window,
        "[[models]]",
        'name = "fraud"',
        f'baseline = "{baseline}"',
        extra,
    ]
    path.write_text("\n".join(lines) + "\n")
    return path
