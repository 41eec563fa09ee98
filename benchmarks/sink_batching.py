"""CPU of the window records' producer: the sink's batching against kafka-python's defaults.

    python benchmarks/sink_batching.py [--records 200] [--size 11000] [--every 0.016]
                                       [--repeat 3]

On a Tansu broker started for the run, ``KafkaSink`` publishes ``--records`` window records
of about ``--size`` bytes, one every ``--every`` seconds (a window of 10,000 events closes
about that often in ``kafka_throughput.py``'s Arrow run), then flushes; the process's CPU
time over that is mostly the producer's sender thread's (the publishing thread encodes each
record and sleeps). Once with the sink's settings (``connectors/kafka.py``: ``LINGER_MS``,
``BATCH_BYTES``) and once with the 20 ms linger and kafka-python's 16 kB batches it had
before, in turn ``--repeat`` times; printed: the medians and the ratio old / new.

A batch of kafka-python's default 16 kB holds one such record, so each was a produce request
of its own, and kafka-python's sender spends about a millisecond of CPU per request; this
measures what batching saves.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

from kafka.admin import KafkaAdminClient, NewTopic

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests"))

from brokers import tansu  # noqa: E402

from driftline.config import KafkaConfig  # noqa: E402
from driftline.connectors import kafka as sink_module  # noqa: E402

SETTINGS = {
    "old (linger 20 ms, 16 kB batches)": (20, 16_384),
    f"sink (linger {sink_module.LINGER_MS} ms, {sink_module.BATCH_BYTES >> 10} kB batches)": (
        sink_module.LINGER_MS,
        sink_module.BATCH_BYTES,
    ),
}


def publish_cpu(
    cfg: KafkaConfig, linger_ms: int, batch: int, records: int, size: int, every: float
) -> float:
    """CPU seconds of the process while the sink publishes and flushes the records."""
    sink = sink_module.KafkaSink(cfg, linger_ms=linger_ms, batch_bytes=batch)
    record = {"model": "bench", "version": "1", "kind": "skew", "payload": "x" * size}
    sink.publish(record)  # connected, metadata fetched: not timed
    sink.flush()
    c0 = time.process_time()
    for _ in range(records):
        sink.publish(record)
        time.sleep(every)
    sink.flush()
    cpu = time.process_time() - c0
    sink.close()
    return cpu


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--records", type=int, default=200)
    ap.add_argument(
        "--size", type=int, default=11_000, help="bytes of each (kafka_throughput.py's: 10-12 kB)"
    )
    ap.add_argument("--every", type=float, default=0.016, help="seconds between records")
    ap.add_argument("--repeat", type=int, default=3)
    a = ap.parse_args(argv)
    if a.records < 1 or a.repeat < 1:
        ap.error("--records and --repeat must be at least 1")
    cpu: dict[str, list[float]] = {name: [] for name in SETTINGS}
    with tansu(Path(tempfile.mkdtemp(prefix="driftline-sink-bench-")) / "tansu.log") as broker:
        cfg = KafkaConfig(bootstrap_servers=broker)
        admin = KafkaAdminClient(bootstrap_servers=broker)
        admin.create_topics([NewTopic(cfg.topics.windows, 1, 1)])
        admin.close()
        for r in range(a.repeat):
            for name, (linger, batch) in SETTINGS.items():
                cpu[name].append(publish_cpu(cfg, linger, batch, a.records, a.size, a.every))
                print(f"run {r + 1}/{a.repeat}, {name}: {cpu[name][-1]:.3f} CPU-s", file=sys.stderr)
    print(f"{a.records} records of {a.size:,} bytes, one every {a.every * 1000:g} ms (medians):")
    medians = {name: statistics.median(v) for name, v in cpu.items()}
    for name, m in medians.items():
        print(f"  {name}: {m:.3f} CPU-s, {1000 * m / a.records:.2f} ms per record")
    old, new = medians.values()
    print(f"  old / sink: {old / new:.1f}x" if new > 0 else "  old / sink: (no CPU measured)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
