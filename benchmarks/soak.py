"""Soak: many models, a sustained event rate through the broker, memory over time (issue 8).

    python benchmarks/soak.py [--models 50] [--rate 10000] [--minutes 10] [--window 5000]
                              [--interval 5] [--output benchmarks/results/soak.json] [--quick]
                              [--no-capacity]

Steps, on a Tansu broker started for the run (``driftline.connectors.tansu``, in memory):

1. build ONE baseline from a seeded 100,000-row reference with 30 features: the 20 numeric
   and 5 categorical columns of ``benchmarks/workload.py`` plus 5 more normal columns
   ``num_20``..``num_24``, and a ``score`` prediction; a config with ``--models``
   ``[[models]]`` (``m00``, ``m01``, ...) all using it, count windows of ``--window``
   events, ``mode = "assign"``, the API on a free port;
2. run ``driftline serve`` as a subprocess;
3. a producer process (kafka-python) sends pre-encoded JSON events (a pool of 20,011
   undrifted rows, the model name spliced in, keyed by model, models in turn) to one
   partition at ``--rate`` events/s for ``--minutes``, paced in 10 ms ticks;
4. every ``--interval`` seconds: serve's RSS (``VmRSS`` of ``/proc/PID/status``), the
   broker's RSS, and from ``/metrics`` the events processed, the windows closed and the
   consumer lag; a progress line about every 10 s;
5. at the end: the producer stops, serve drains (up to 60 s), the last ``/metrics``
   gives the window-close latency p50/p99 from ``driftline_window_close_seconds``
   (linear interpolation inside the bucket holding the quantile, as Prometheus's
   ``histogram_quantile`` does; so the figures are only as fine as the buckets), then
   serve gets SIGTERM;
6. capacity (unless ``--no-capacity``): a bare consumer re-reads the topic's first (at most
   ``--bare-max``) messages, then the engine does, as fast as it can, in this process
   (``kafka_throughput.engine_run``, the engine benchmark's own code, with a consumer group
   of its own and a fresh state directory). Its events/s and feature-values/s are compared
   with the engine benchmark's JSON run in ``benchmarks/results/kafka_throughput.json``
   (1 model × 20 features): the soak's events carry 30 features, and the engine's cost per
   event grows with them, so "within 20 %" is decided on feature-values/s.

Memory verdict: warm-up ends at the first sample where every model has closed enough
windows to fill the API's buffer of recent records (:data:`KEEP_WINDOWS`), plus a margin
(``max(30 s, 10 %)`` of the run; ``--quick``: 5 s). Over the samples after it, a
least-squares line of serve's RSS against time gives a slope in MB/min; the
fitted growth over that span (slope × span) must stay under ``--tolerance`` (default 5 %)
of the RSS at the end of warm-up: PASS, else FAIL. The max-min of those samples is printed
too. The broker's RSS grows by design (it keeps every message in memory); it is shown for
context only.

Ratios (the project rule: a baseline measured in the same run):

* keep-up: events the engine processed ÷ events the producer sent, over the post-warm-up
  span (1.00 = kept up; below it, a backlog grew), and the producer's achieved rate ÷ the
  target. The engine is rate-limited here, so its throughput says nothing about capacity
  unless the keep-up ratio drops below 1;
* a bare ``KafkaConsumer`` (``kafka_throughput.bare``) re-reading the first (at most
  1,000,000) messages of the same topic after the run: its events/s, and the sustained
  engine rate ÷ it — the share of a bare consumer's capacity the soak rate used. That is
  utilisation, not the engine's ceiling (``kafka_throughput.py`` measures the ceiling).

``driftline_consumer_lag`` is printed at the end, but Tansu's end offsets are wrong when the
last batch holds more than one record (/work/shared/TEST-SERVICES.md), so the backlog
computed as sent − processed is printed beside it and is the one to trust.

Other processes share this machine's cores: all figures are noisy, and the output says so.
Results go to ``--output`` (default ``benchmarks/results/soak.json``; ``--quick``: 30 s,
5 models, 2,000 events/s, windows of 500, to ``benchmarks/results/soak-quick.json``).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import logging
import multiprocessing as mp
import os
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pyarrow as pa
import pyarrow.compute as pc
from kafka import KafkaProducer
from kafka.admin import KafkaAdminClient, NewTopic
from prometheus_client.parser import text_string_to_metric_families

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import workload as wl  # noqa: E402
from kafka_throughput import bare, engine_run, write_config  # noqa: E402
from replay import find_driftline, machine_info  # noqa: E402

from driftline.baseline import save  # noqa: E402
from driftline.build import BuildOptions, build_from_batches  # noqa: E402
from driftline.connectors.tansu import free_port, tansu  # noqa: E402
from driftline.processes import stop as stop_process  # noqa: E402

RESULTS = HERE / "results"
KAFKA_RESULTS = RESULTS / "kafka_throughput.json"
TOPIC = "soak-events"
EXTRA = [f"num_{i:02d}" for i in range(20, 25)]
POOL = 20_011
"""Rows in the event pool: a prime, so that every model (models take events in turn)
goes through every row. With a pool that is a multiple of the model count, each model
would see the same few hundred rows over and over, and the shift test, reading repeated
rows as independent ones, would flag drift that is not there."""
KEEP_WINDOWS = 10
"""``[api] keep_windows`` of the soak's engine. The API keeps the last records of every
model version (skew and drift: two per window), a bounded buffer that grows until it is
full; at the default 100 it fills after 51 windows per model, 21 minutes into a default
soak, so its filling would read as growth. With 10 it is full after 6 windows per model,
inside the warm-up."""
FULL_WINDOWS = KEEP_WINDOWS // 2 + 1
"""Windows per model that fill the API's record buffer (the first window has no drift
record)."""
NOISY = "figures are noisy: other processes share this machine's cores"


def log(msg: str) -> None:
    print(f"[soak] {msg}", file=sys.stderr, flush=True)


# ----------------------------------------------------------------------------- workload


def table(rows: int, seed: int) -> pa.Table:
    """``rows`` undrifted rows: workload.py's 25 columns, 5 more normal ones, a score;
    floats rounded to 5 decimals to keep the JSON messages short (~650 bytes)."""
    rng = np.random.default_rng(seed)
    none = np.zeros(rows, dtype=bool)
    cols: dict[str, Any] = {}
    for name, arr in wl._numeric_chunk(rng, rows, none).items():
        cols[name] = pc.round(arr, 5)
    for name in EXTRA:
        cols[name] = pa.array(np.round(rng.normal(0.0, 1.0, rows), 5))
    cols.update(wl._categorical_chunk(rng, rows, none))
    cols["score"] = pa.array(np.round(rng.random(rows), 5))
    return pa.table(cols)


def bodies(rows: int, seed: int) -> list[bytes]:
    """The event pool, each without its opening brace: ``"id":...,"features":{...},...}``."""
    out = []
    for i, row in enumerate(table(rows, seed).to_pylist()):
        score = row.pop("score")
        out.append(orjson.dumps({"id": f"r{i}", "features": row, "prediction": score})[1:])
    return out


def produce(
    broker: str,
    models: int,
    rate: float,
    seconds: float,
    seed: int,
    sent: Any,
    elapsed: Any,
    started: Any,
    stop: Any,
) -> None:
    """The producer process: models in turn, paced in 10 ms ticks. Shared with the parent:
    ``sent``, ``elapsed`` (seconds from the first send to the flush) and ``started`` (set
    once the pool is encoded and the producer connected)."""
    pool = bodies(POOL, seed)
    names = [f"m{m:02d}" for m in range(models)]
    prefix = [f'{{"model":"{n}","version":"1",'.encode() for n in names]
    keys = [n.encode() for n in names]
    producer = KafkaProducer(
        bootstrap_servers=broker,
        linger_ms=20,
        batch_size=256 * 1024,
        allow_auto_create_topics=False,
    )
    producer.partitions_for(TOPIC)  # connected, metadata fetched
    n = 0
    start = time.monotonic()
    started.set()
    try:
        while not stop.is_set():
            now = time.monotonic() - start
            if now >= seconds:
                break
            due = int(now * rate) + 1
            while n < due:
                m = n % models
                producer.send(TOPIC, prefix[m] + pool[n % POOL], key=keys[m])
                n += 1
            sent.value = n
            time.sleep(max(0.0, 0.01 - ((time.monotonic() - start) % 0.01)))
        producer.flush()
        sent.value = n
        elapsed.value = time.monotonic() - start
    finally:
        producer.close()


# ----------------------------------------------------------------------------- sampling


def rss_mb(pid: int) -> float | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return None


def child_pid(name: str) -> int | None:
    """A child of this process whose command name is ``name`` (the broker)."""
    me = os.getpid()
    for d in Path("/proc").iterdir():
        if not d.name.isdigit():
            continue
        try:
            stat = (d / "stat").read_text()
        except OSError:
            continue
        comm = stat[stat.index("(") + 1 : stat.rindex(")")]
        ppid = int(stat[stat.rindex(")") + 2 :].split()[1])
        if ppid == me and comm == name:
            return int(d.name)
    return None


def scrape(url: str) -> dict[str, Any]:
    """Events, windows per model (skew records), lag and the close-latency buckets."""
    with urllib.request.urlopen(url, timeout=5) as r:
        text = r.read().decode()
    out: dict[str, Any] = {"events": 0, "windows": 0, "models_with_window": 0, "lag": 0}
    per_model: dict[str, float] = {}
    buckets: list[tuple[float, float]] = []
    for fam in text_string_to_metric_families(text):
        for s in fam.samples:
            if s.name == "driftline_events_total":
                out["events"] += int(s.value)
            elif s.name == "driftline_windows_total" and s.labels.get("kind") == "skew":
                out["windows"] += int(s.value)
                per_model[s.labels["model"]] = per_model.get(s.labels["model"], 0) + s.value
            elif s.name == "driftline_consumer_lag":
                out["lag"] += int(s.value)
            elif s.name == "driftline_window_close_seconds_bucket":
                buckets.append((float(s.labels["le"]), s.value))
    out["models_with_window"] = sum(1 for v in per_model.values() if v > 0)
    out["fewest_windows"] = int(min(per_model.values())) if per_model else 0
    out["buckets"] = sorted(buckets)
    return out


def quantile(q: float, buckets: list[tuple[float, float]]) -> float | None:
    """``histogram_quantile``: linear interpolation inside the bucket holding rank q·total
    (the first bucket from 0); in the +Inf bucket, the highest finite bound."""
    if not buckets or buckets[-1][1] == 0:
        return None
    rank = q * buckets[-1][1]
    lo_bound, lo_count = 0.0, 0.0
    for bound, count in buckets:
        if count >= rank:
            if bound == float("inf"):
                return lo_bound
            if count == lo_count:
                return bound
            return lo_bound + (bound - lo_bound) * (rank - lo_count) / (count - lo_count)
        lo_bound, lo_count = bound, count
    return lo_bound


# ----------------------------------------------------------------------------- run


def wait_ready(url: str, proc: subprocess.Popen[bytes], logfile: Path, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"serve exited ({proc.returncode}): {logfile.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(url, timeout=1) as r:
                if r.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.2)
    raise SystemExit(f"serve not ready after {timeout:.0f} s: {logfile.read_text()[-3000:]}")


def verdict(samples: list[dict[str, Any]], warm_t: float | None, tol: float) -> dict[str, Any]:
    post = [s for s in samples if warm_t is not None and s["t"] >= warm_t and s["rss_mb"]]
    if len(post) < 3:
        return {"verdict": "INCONCLUSIVE", "reason": "fewer than 3 samples after warm-up"}
    t = np.array([s["t"] for s in post]) / 60
    rss = np.array([s["rss_mb"] for s in post])
    slope = float(np.polyfit(t, rss, 1)[0])
    span = float(t[-1] - t[0])
    growth = slope * span
    warm = float(rss[0])
    return {
        "verdict": "PASS" if growth < tol * warm else "FAIL",
        "warm_rss_mb": warm,
        "final_rss_mb": float(rss[-1]),
        "slope_mb_per_min": slope,
        "post_warmup_minutes": span,
        "fitted_growth_mb": growth,
        "tolerance_mb": tol * warm,
        "max_minus_min_mb": float(rss.max() - rss.min()),
        "samples": len(post),
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--models", type=int, default=50)
    ap.add_argument("--rate", type=float, default=10_000, help="target events/s")
    ap.add_argument("--minutes", type=float, default=10.0)
    ap.add_argument("--window", type=int, default=5_000)
    ap.add_argument("--interval", type=float, default=5.0, help="seconds between samples")
    ap.add_argument("--tolerance", type=float, default=0.05, help="allowed growth / warm RSS")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--bare-max", type=int, default=1_000_000)
    ap.add_argument(
        "--no-capacity", action="store_true", help="skip the capacity run after the soak"
    )
    ap.add_argument(
        "--quick", action="store_true", help="30 s, 5 models, 2,000 events/s, windows of 500"
    )
    ap.add_argument("--output", type=Path)
    args = ap.parse_args(argv)
    if args.quick:
        args.minutes, args.models, args.rate, args.window = 0.5, 5, 2_000, 500
        args.interval = min(args.interval, 2.0)
    out = args.output or RESULTS / ("soak-quick.json" if args.quick else "soak.json")
    seconds = args.minutes * 60
    margin = 5.0 if args.quick else max(30.0, 0.1 * seconds)
    logging.basicConfig(level=logging.WARNING)
    tmp = Path(tempfile.mkdtemp(prefix="driftline-soak-"))
    log(f"workdir {tmp}; {NOISY}")

    ref = table(100_000, args.seed + 1)
    baseline, _ = build_from_batches(ref.to_batches(), BuildOptions(prediction="score"))
    base_path = save(baseline, tmp / "soak.dlb")
    n_features = len(ref.column_names) - 1
    results: dict[str, Any] = {
        "benchmark": "soak",
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "command": " ".join(["python", "benchmarks/soak.py", *(argv or sys.argv[1:])]),
        "machine": machine_info(),
        "note": NOISY,
        "parameters": {
            "models": args.models,
            "features": n_features,
            "rate": args.rate,
            "minutes": args.minutes,
            "window": args.window,
            "interval": args.interval,
            "tolerance": args.tolerance,
            "warmup_margin_s": margin,
            "format": "json",
            "partitions": 1,
        },
    }
    driftline = find_driftline()
    with tansu(tmp / "tansu.log") as broker:
        broker_pid = child_pid("tansu")
        admin = KafkaAdminClient(bootstrap_servers=broker)
        admin.create_topics([NewTopic(n, 1, 1) for n in (TOPIC, "windows", "dead", "alerts")])
        admin.close()
        port = free_port()
        cfg = tmp / "soak.toml"
        models = [f"m{m:02d}" for m in range(args.models)]
        write_config(
            cfg,
            broker,
            TOPIC,
            base_path,
            tmp / "state",
            args.window,
            models=models,
            extra=f"[api]\nport = {port}\nkeep_windows = {KEEP_WINDOWS}\n",
        )
        metrics = f"http://127.0.0.1:{port}/metrics"
        serve_log = tmp / "serve.log"
        with serve_log.open("wb") as fh:
            proc = subprocess.Popen(
                [*driftline, "serve", "--config", str(cfg), "--log-level", "warning"],
                stdout=fh,
                stderr=subprocess.STDOUT,
            )
        producer = None
        try:
            wait_ready(f"http://127.0.0.1:{port}/readyz", proc, serve_log, 120)
            log(f"serve ready (pid {proc.pid}), RSS {rss_mb(proc.pid):.0f} MB; producing")
            ctx = mp.get_context("spawn")
            sent, elapsed, started, stop = (
                ctx.Value("q", 0),
                ctx.Value("d", 0.0),
                ctx.Event(),
                ctx.Event(),
            )
            producer = ctx.Process(
                target=produce,
                args=(
                    broker,
                    args.models,
                    args.rate,
                    seconds,
                    args.seed,
                    sent,
                    elapsed,
                    started,
                    stop,
                ),
            )
            producer.start()
            if not started.wait(120):
                raise SystemExit("the producer did not start within 120 s")
            samples: list[dict[str, Any]] = []
            warm_t: float | None = None
            t0 = time.monotonic()
            last_print = -10.0
            while True:
                time.sleep(args.interval)
                t = time.monotonic() - t0
                m = scrape(metrics)
                s = {
                    "t": round(t, 2),
                    "sent": sent.value,
                    "events": m["events"],
                    "windows": m["windows"],
                    "models_with_window": m["models_with_window"],
                    "lag": m["lag"],
                    "rss_mb": rss_mb(proc.pid),
                    "broker_rss_mb": rss_mb(broker_pid) if broker_pid else None,
                }
                if samples:
                    p = samples[-1]
                    s["events_per_s"] = (s["events"] - p["events"]) / (t - p["t"])
                samples.append(s)
                if (
                    warm_t is None
                    and m["models_with_window"] >= args.models
                    and m["fewest_windows"] >= FULL_WINDOWS
                ):
                    warm_t = t + margin
                    log(
                        f"every model closed {FULL_WINDOWS} windows at {t:.0f} s (the API's record "
                        f"buffers are full); warm-up ends at {warm_t:.0f} s"
                    )
                if t - last_print >= 10:
                    last_print = t
                    log(
                        f"{t:5.0f} s  sent {s['sent']:>10,}  processed {s['events']:>10,}  "
                        f"{s.get('events_per_s', 0):>8,.0f} ev/s  windows {s['windows']:>6,}  "
                        f"backlog {s['sent'] - s['events']:>8,}  serve RSS {s['rss_mb']:.0f} MB  "
                        f"broker RSS {s['broker_rss_mb'] or 0:.0f} MB"
                    )
                if proc.poll() is not None:
                    raise SystemExit(f"serve died: {serve_log.read_text()[-3000:]}")
                if not producer.is_alive():
                    break
            producer.join()
            produce_end = time.monotonic() - t0
            total = sent.value
            drain_deadline = time.monotonic() + 60
            while (m := scrape(metrics))["events"] < total and time.monotonic() < drain_deadline:
                time.sleep(0.5)
            drained = time.monotonic() - t0 - produce_end
            final = scrape(metrics)
            final_rss = rss_mb(proc.pid)
        finally:
            if producer is not None and producer.is_alive():
                stop.set()
                producer.join(30)
                if producer.is_alive():
                    producer.terminate()
            stop_process(proc, 60)
        bare_n = min(total, args.bare_max)
        bare_s = bare(broker, TOPIC, bare_n)["seconds"]
        capacity = None
        if not args.no_capacity:
            log(f"capacity: the engine re-reads the first {bare_n:,} messages as fast as it can")
            cap_cfg = write_config(
                tmp / "capacity.toml",
                broker,
                TOPIC,
                base_path,
                tmp / "state-capacity",
                args.window,
                models=models,
                group="soak-capacity",  # the soak's group committed the end of the topic
            )
            cap, cap_windows = engine_run(cap_cfg, TOPIC, bare_n, tmp / "state-capacity")
            capacity = {"messages": bare_n, "seconds": cap["seconds"], "windows": cap_windows}

    # throughput: the post-warm-up samples taken while the producer was still sending
    post = [s for s in samples if warm_t is not None and warm_t <= s["t"] <= elapsed.value + 0.5]
    span = (post[-1]["t"] - post[0]["t"]) if len(post) >= 2 else 0.0
    if span > 0:
        sustained = (post[-1]["events"] - post[0]["events"]) / span
        sent_rate = (post[-1]["sent"] - post[0]["sent"]) / span
    else:
        sustained = sent_rate = float("nan")
    achieved = total / (elapsed.value or produce_end)
    bare_rate = bare_n / bare_s
    mem = verdict(samples, warm_t, args.tolerance)
    cap = capacity_summary(capacity, bare_rate, n_features)
    p50 = quantile(0.5, final["buckets"])
    p99 = quantile(0.99, final["buckets"])
    results.update(
        {
            "samples": samples,
            "warmup_end_s": warm_t,
            "producer": {"sent": total, "seconds": elapsed.value, "events_per_s": achieved},
            "engine": {
                "processed": final["events"],
                "windows": final["windows"],
                "sustained_events_per_s": sustained,
                "drain_seconds": drained,
                "final_rss_mb": final_rss,
                "backlog_at_end": total - final["events"],
                "consumer_lag_metric": final["lag"],
            },
            "window_close_seconds": {
                "p50": p50,
                "p99": p99,
                "method": "linear interpolation within the Prometheus bucket",
                "buckets": [[str(b), c] for b, c in final["buckets"]],
            },
            "bare_consumer": {"messages": bare_n, "seconds": bare_s, "events_per_s": bare_rate},
            "ratios": {
                "achieved_vs_target": achieved / args.rate,
                "keep_up_processed_vs_sent": sustained / sent_rate if span > 0 else None,
                "engine_sustained_vs_bare": sustained / bare_rate,
            },
            "memory": mem,
            "capacity": cap,
        }
    )
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2) + "\n")

    def ms(x: float | None) -> str:
        return "n/a" if x is None else f"{1000 * x:.1f} ms"

    r = results["ratios"]
    print(f"\nsoak: {args.models} models × {n_features} features, windows of {args.window:,}")
    print(f"({NOISY})")
    print(
        f"producer: {total:,} events in {elapsed.value:.0f} s = {achieved:,.0f} events/s "
        f"(target {args.rate:,.0f}; achieved/target {r['achieved_vs_target']:.2f})"
    )
    print(
        f"engine:   {sustained:,.0f} events/s sustained after warm-up; processed/sent "
        f"{r['keep_up_processed_vs_sent'] or float('nan'):.2f}; {final['windows']:,} windows; "
        f"backlog at end {total - final['events']:,} after {drained:.0f} s of drain; "
        f"driftline_consumer_lag {final['lag']:,} (Tansu's end offsets are unreliable)"
    )
    print(
        f"bare kafka-python consumer, same topic: {bare_rate:,.0f} events/s "
        f"({bare_n:,} messages); engine sustained / bare {r['engine_sustained_vs_bare']:.2f} "
        "(utilisation at the soak rate, not the engine's ceiling)"
    )
    print(
        f"window close latency: p50 {ms(p50)}, p99 {ms(p99)} "
        "(from the histogram buckets, linear interpolation within a bucket)"
    )
    if mem["verdict"] == "INCONCLUSIVE":
        print(f"memory: INCONCLUSIVE ({mem['reason']})")
    else:
        print(
            f"memory: serve RSS {mem['warm_rss_mb']:.0f} MB at warm-up end "
            f"({warm_t:.0f} s), {mem['final_rss_mb']:.0f} MB at the end; slope "
            f"{mem['slope_mb_per_min']:+.2f} MB/min over {mem['post_warmup_minutes']:.1f} min, "
            f"fitted growth {mem['fitted_growth_mb']:+.1f} MB, max-min "
            f"{mem['max_minus_min_mb']:.1f} MB; tolerance {args.tolerance:.0%} of warm RSS "
            f"= {mem['tolerance_mb']:.1f} MB: {mem['verdict']}"
        )
    if cap is not None:
        print(
            f"capacity: the engine re-read {cap['messages']:,} soak messages at "
            f"{cap['events_per_s']:,.0f} events/s ({cap['feature_values_per_s']:,.0f} "
            f"feature-values/s), {cap['vs_bare']:.2f} of the bare consumer"
        )
        ref = cap.get("engine_benchmark")
        if ref is None:
            print(f"  (no {KAFKA_RESULTS.name} to compare with: run kafka_throughput.py)")
        else:
            print(
                f"  engine benchmark ({ref['date']}, JSON, {ref['features']} features): "
                f"{ref['events_per_s']:,.0f} events/s = {ref['feature_values_per_s']:,.0f} "
                f"feature-values/s, {ref['vs_bare']:.2f} of its bare consumer"
            )
            print(
                f"  soak ÷ benchmark: feature-values/s {cap['fv_vs_benchmark']:.2f} "
                "(no more than 20 % below: "
                f"{'yes' if cap['within_20pct'] else 'NO'}); events/s "
                f"{cap['events_vs_benchmark']:.2f}; share of a bare consumer "
                f"{cap['share_vs_benchmark']:.2f}"
            )
    print(f"results: {out}")
    return 0 if mem["verdict"] != "FAIL" else 1


def capacity_summary(
    capacity: dict[str, Any] | None, bare_rate: float, n_features: int
) -> dict[str, Any] | None:
    """The capacity run's rates, and the comparison with the engine benchmark's JSON run
    (``benchmarks/results/kafka_throughput.json``, 1 model × 20 features). The engine's cost
    per event grows with its features (each is decoded, windowed and compared), so the
    comparison that decides "within 20 %" is in feature-values/s; events/s and the share of
    a bare consumer (each measured in its own run) are reported beside it."""
    if capacity is None:
        return None
    rate = capacity["messages"] / capacity["seconds"]
    out: dict[str, Any] = {
        **capacity,
        "events_per_s": rate,
        "feature_values_per_s": rate * n_features,
        "vs_bare": rate / bare_rate,
        "method": "engine_run of kafka_throughput.py (in process, assign mode, a fresh state "
        "directory) over the soak topic's first messages, after the soak",
    }
    try:
        kt = json.loads(KAFKA_RESULTS.read_text())
        js = kt["formats"]["json"]
    except (OSError, KeyError, ValueError):
        return out
    out["engine_benchmark"] = {
        "file": str(KAFKA_RESULTS.relative_to(HERE.parent)),
        "date": kt["date"],
        "features": kt["features"],
        "events_per_s": js["engine_events_per_s"],
        "feature_values_per_s": js["engine_events_per_s"] * kt["features"],
        "vs_bare": js["ratio"],
    }
    out["fv_vs_benchmark"] = (
        out["feature_values_per_s"] / out["engine_benchmark"]["feature_values_per_s"]
    )
    out["events_vs_benchmark"] = rate / js["engine_events_per_s"]
    out["share_vs_benchmark"] = out["vs_bare"] / js["ratio"]
    out["within_20pct"] = out["fv_vs_benchmark"] >= 0.8
    return out


if __name__ == "__main__":
    sys.exit(main())
