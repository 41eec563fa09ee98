"""Write benchmarks/RESULTS.md from the JSON files the benchmarks leave in benchmarks/results/.

    python benchmarks/report.py [--output FILE]

Every figure in RESULTS.md comes from a results file, which names the command, the
machine, the versions and the date of the run that produced it.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"
OUT = HERE / "RESULTS.md"
ORDER = ["replay.json", "replay-blas1.json", "replay-quick.json"]


def _relative(command: str) -> str:
    """The command as typed in the repository (absolute paths of the run's checkout removed)."""
    root = str(HERE.parent) + "/"
    return command.replace(root, "")


def _row(name: str, t: dict[str, Any]) -> str:
    return (
        f"| {name} | {t['wall_s']:.2f} | {t['rows_per_s']:,.0f} | "
        f"{t['feature_values_per_s']:,.0f} | {t['peak_rss_mb']:.0f} |"
    )


def _section(path: Path) -> list[str]:
    r = json.loads(path.read_text())
    w, m = r["workload"], r["machine"]
    versions = ", ".join(f"{k} {v}" for k, v in m["versions"].items())
    t = r["timings"]
    agreement = r["agreement"]
    lines = [
        f"## `{path.name}`",
        "",
        f"- command: `{_relative(r['command'])}`",
        f"- date: {r['date']}; machine: {m['cpu_model']}, {m['nproc']} cores, {m['platform']}",
        f"- versions: {versions}",
        f"- workload: {w['rows']:,} serving rows × {r['n_features']} features "
        f"(20 numeric, 5 categorical), {w['ref_rows']:,} reference rows, windows of "
        f"{r['window']:,}, drift from row {w['drift_start']:,}; median of {r['repeat']} runs"
        + (f"; BLAS threads {r['blas_threads']}" if r.get("blas_threads") else ""),
        "",
        "| tool | wall s | rows/s | feature-values/s | peak RSS MB |",
        "|---|---|---|---|---|",
        _row("driftline replay (whole process)", t["driftline"]),
        _row("NumPy/SciPy reference", t["scipy_reference"]),
        "",
        f"**SciPy time / driftline time: {r['ratio_scipy_over_driftline']:.1f}×** "
        f"(CPU time: {r['ratio_cpu_scipy_over_driftline']:.1f}×). Baseline build: "
        f"{r['baseline_build']['wall_s']:.2f} s.",
        "",
        f"Agreement over {agreement['windows_compared']} windows (max |driftline − SciPy|): "
        + ", ".join(f"{k} {v['max_abs_diff']:.1e}" for k, v in agreement["statistics"].items())
        + f"; {agreement['n_violations']} beyond tolerance.",
        "",
    ]
    return lines


def _kafka_section(path: Path) -> list[str]:
    r = json.loads(path.read_text())
    m = r["machine"]
    lines = [
        "## Kafka throughput (`benchmarks/kafka_throughput.py`)",
        "",
        f"{r['date']}, `{_relative(r['command'])}`; {m.get('cpu_model', '?')}, "
        f"{m.get('nproc', '?')} cores. {r['events']:,} inference events with "
        f"{r['features']} features on one partition of a Tansu broker; windows of "
        f"{r['window']:,}; Arrow messages of {r['arrow_rows']:,} events. The bare consumer "
        "polls every message and touches its value; the engine decodes, windows, computes "
        "skew and drift, publishes the records and checkpoints.",
        "",
        "With several runs the rates are medians, and *engine / bare* is the median of the "
        "runs' own ratios (each run's consumer and engine measured back to back), with their "
        "range; *best / best* is the fastest engine run over the fastest bare run (noise from "
        "other tenants of a shared machine only slows a run down).",
        "",
        "| format | bare kafka-python events/s | engine events/s | engine / bare "
        "| best / best | runs |",
        "|---|---:|---:|---:|---:|---|",
    ]
    for fmt, f in r["formats"].items():
        n = _runs(f)
        runs = "1" if n == 1 else f"{n}; ratio {f['ratio_min']:.2f}–{f['ratio_max']:.2f}"
        best = f"{f['ratio_best']:.2f}" if "ratio_best" in f else "–"
        lines.append(
            f"| {fmt} | {f['bare_events_per_s']:,.0f} | {f['engine_events_per_s']:,.0f} "
            f"| {f['ratio']:.2f} | {best} | {runs} |"
        )
    alone = r.get("engine_alone")
    if alone:
        cpu = f", {alone['cpu_s']:.2f} CPU-s" if "cpu_s" in alone else ""
        lines += [
            "",
            f"The engine alone on the Arrow messages (`Engine.process`, no broker, one message "
            f"per call): {alone['events_per_s']:,.0f} events/s, "
            f"{alone['ms_per_window']:.1f} ms per window{cpu}.",
        ]
    with_cpu = {fmt: f["cpu"] for fmt, f in r["formats"].items() if "cpu" in f}
    if with_cpu:
        cores = next(iter(with_cpu.values()))["cores"]
        lines += [
            "",
            "Where the time goes (CPU seconds, medians over the runs): the run's own process "
            "and the broker's, over the same span. *Cores busy*: their share of the "
            f"{cores} cores' time during the engine run. *At full use*: the engine / bare "
            "ratio had they kept every core busy throughout (the bare seconds over their CPU "
            "seconds / cores). No schedule beats it with the same CPU work: past it only "
            "less CPU per event helps.",
            "",
            "| format | bare: consumer + broker CPU-s | engine: process + broker CPU-s "
            "| cores busy | engine / bare at full use |",
            "|---|---:|---:|---:|---:|",
        ]
        for fmt, c in with_cpu.items():
            lines.append(
                f"| {fmt} | {c['bare_cpu_s']:.2f} + {c['bare_broker_cpu_s']:.2f} "
                f"| {c['engine_cpu_s']:.2f} + {c['engine_broker_cpu_s']:.2f} "
                f"| {c['cores_busy']:.0%} | {c['ratio_at_full_use']:.2f} |"
            )
        threads = [
            f"{fmt}: "
            + ", ".join(f"{n} {v:.2f}" for n, v in c["engine_threads"].items() if v >= 0.005)
            for fmt, c in with_cpu.items()
            if "engine_threads" in c
        ]
        if threads:
            lines += [
                "",
                "The engine process's CPU seconds per thread (medians; `driftline-column_*` "
                "compute the numeric columns, `driftline-engine` decodes, windows and writes "
                "the records, `kafka-io-*` is kafka-python's network thread, `MainThread` "
                "polls (kafka-python makes a record object per message there: most of it on "
                "JSON), `native` are threads not started from Python (pyarrow's JSON "
                "reader)): " + "; ".join(threads) + ".",
            ]
    return [*lines, ""]


def _soak_section(path: Path) -> list[str]:
    r = json.loads(path.read_text())
    m, p = r["machine"], r["parameters"]
    e, mem, w = r["engine"], r["memory"], r["window_close_seconds"]
    lines = [
        "## Soak (`benchmarks/soak.py`)",
        "",
        f"{r['date']}, `{_relative(r['command'])}`; {m.get('cpu_model', '?')}, "
        f"{m.get('nproc', '?')} cores ({r['note']}). {p['models']} models × {p['features']} "
        f"features, JSON events at {p['rate']:,.0f}/s for {p['minutes']:g} minutes through a "
        f"Tansu broker, windows of {p['window']:,} per model.",
        "",
        f"- Producer: {r['producer']['sent']:,} events, "
        f"{r['ratios']['achieved_vs_target']:.2f} of the target rate. Engine: "
        f"{e['sustained_events_per_s']:,.0f} events/s sustained after warm-up "
        f"(processed/sent {r['ratios']['keep_up_processed_vs_sent'] or float('nan'):.2f}), "
        f"{e['windows']:,} windows, backlog at the end {e['backlog_at_end']:,}.",
        f"- Window close latency: p50 {_ms(w['p50'])}, p99 {_ms(w['p99'])} (from the "
        "histogram's buckets).",
    ]
    if mem.get("verdict") == "INCONCLUSIVE":
        lines.append(f"- Memory: INCONCLUSIVE ({mem['reason']}).")
    else:
        lines.append(
            f"- Memory: serve's RSS {mem['warm_rss_mb']:.0f} MB at the end of warm-up, "
            f"{mem['final_rss_mb']:.0f} MB at the end; fitted slope "
            f"{mem['slope_mb_per_min']:+.2f} MB/min over {mem['post_warmup_minutes']:.1f} min "
            f"(growth {mem['fitted_growth_mb']:+.1f} MB against a tolerance of "
            f"{mem['tolerance_mb']:.1f} MB): **{mem['verdict']}**."
        )
    cap = r.get("capacity")
    if cap:
        line = (
            f"- Capacity (the engine re-reading {cap['messages']:,} of the soak's messages as "
            f"fast as it can): {cap['events_per_s']:,.0f} events/s, "
            f"{cap['feature_values_per_s']:,.0f} feature-values/s, {cap['vs_bare']:.2f} of a "
            "bare consumer of the same messages."
        )
        ref = cap.get("engine_benchmark")
        if ref:
            line += (
                f" The engine benchmark ({ref['date']}, {ref['features']} features): "
                f"{ref['feature_values_per_s']:,.0f} feature-values/s; soak ÷ benchmark "
                f"{cap['fv_vs_benchmark']:.2f} in feature-values/s (no more than 20 % below: "
                f"**{'yes' if cap['within_20pct'] else 'no'}**), "
                f"{cap['events_vs_benchmark']:.2f} in events/s."
            )
        lines.append(line)
    return [*lines, ""]


def _ms(x: float | None) -> str:
    return "n/a" if x is None else f"{1000 * x:.1f} ms"


def _fmt_s(x: float | None) -> str:
    return "-" if x is None else f"{x:.2f}"


def _peers_section(path: Path) -> list[str]:
    """benchmarks/peers.py: speed, memory, agreement with SciPy, detection on the workload."""
    r = json.loads(path.read_text())
    w, m = r["workload"], r["machine"]
    t = r["tools"]
    base = t.get("NumPy/SciPy")
    lines = [
        f"## Peer comparison (`{path.name}`, `benchmarks/peers.py`)",
        "",
        f"- command: `{_relative(r['command'])}`",
        f"- date: {r['date']}; machine: {m['cpu_model']}, {m['nproc']} cores, {m['platform']}; "
        "the machine is shared with other engineers' work, so wall times are medians of "
        f"repeats (`--repeat {r['repeat']}`; a tool slower than 100 s on its first run is run "
        "once)",
        f"- workload: {w['rows']:,} serving rows × {r['n_features']} features (20 numeric, 5 "
        f"categorical), {w['ref_rows']:,} reference rows, windows of {r['window']:,}; from row "
        f"{w['drift_start']:,} the means of num_00..num_04 ramp to +0.5 reference std over "
        f"{w['ramp_rows']:,} rows and cat_0, cat_1 ramp to 30 % reversed frequencies",
        "- every tool in its own process, in this run; peers from their own virtualenvs "
        "(`make bench-peers`). Wall time is the whole process (interpreter, imports, loading "
        "the same `.npy` arrays, fitting the reference, every window); *fit + compute* is the "
        "tool's own time for fitting and the windows. Ratios: NumPy/SciPy wall time / tool "
        "wall time (>1 is faster than the baseline).",
        "",
        "| tool | versions | wall s | fit + compute s | rows/s | feature-values/s "
        "| peak RSS MB | × NumPy/SciPy |",
        "|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    for label, s in t.items():
        runs = s.get("runs") or []
        meta = runs[0].get("meta") if runs else None
        if meta:
            v = meta["versions"]
            main = [k for k in v if k not in ("python", "numpy", "scipy", "pandas")]
            versions = ", ".join(f"{k} {v[k]}" for k in main if v[k]) + (
                f"; numpy {v['numpy']}" if v.get("numpy") else ""
            )
        else:
            versions = "driftline's .venv"
        ratio = f"{base['wall_s'] / s['wall_s']:.2f}" if base else "-"
        extra = ""
        if label == "driftline replay":
            extra = f" (+ baseline build {s['baseline_build_s']:.2f} s)"
        if s.get("detection_only"):
            extra = " (detection only, 1 run)"
        lines.append(
            f"| {label}{extra} | {versions} | {s['wall_s']:.2f} | {_fmt_s(s.get('fit_compute_s'))} "
            f"| {s['rows_per_s']:,.0f} | {s['feature_values_per_s']:,.0f} "
            f"| {s['peak_rss_mb']:.0f} | {ratio} |"
        )
    for label, why in r.get("not_run", {}).items():
        lines.append(f"| {label} | not run: {why} | | | | | | |")
    bars = r.get("bars", {})
    sp = bars.get("speed")
    if sp:
        lines += [
            "",
            f"**Speed bar** (≥ 5× the fastest peer, {sp['fastest_peer']} at "
            f"{sp['fastest_peer_s']:.2f} s; ≥ 10× the fastest exact-KS peer, "
            f"{sp['fastest_exact_ks_peer']} at {_fmt_s(sp['fastest_exact_ks_peer_s'])} s):",
            "",
            "| driftline measured as | s | fastest peer / driftline | 5× met | "
            "fastest exact-KS peer / driftline | 10× met |",
            "|---|---:|---:|---|---:|---|",
        ]
        for view, v in sp["views"].items():
            lines.append(
                f"| {view} | {v['seconds']:.2f} | {v['vs_fastest_peer']:.1f}× "
                f"| {'yes' if v['met_5x'] else '**no**'} | {v['vs_fastest_exact_ks_peer']:.1f}× "
                f"| {'yes' if v['met_10x'] else '**no**'} |"
            )
    mem = bars.get("memory")
    if mem:
        rss = ", ".join(f"{k} {v:.0f} MB" for k, v in mem["driftline_rss_mb"].items())
        if mem["met"]:
            verdict = "met."
        elif mem.get("met_commands"):
            verdict = (
                "**not met** like for like: the kernels view, whose harness holds the whole "
                "data set in memory as every peer's process does, is above it. "
                "`python benchmarks/runtime_memory.py` shows what a process holds before any "
                "data: Numba's runtime (its first kernel calls load the cached machine code "
                "through LLVM) is what the peers do not carry. The commands a user runs, "
                "`driftline baseline build` and `driftline replay`, stream the file and stay "
                "below it."
            )
        else:
            verdict = "**not met**."
        lines += [
            "",
            f"**Memory bar** (peak RSS no higher than the lowest peer's, {mem['lowest_peer']} "
            f"at {mem['lowest_peer_rss_mb']:.0f} MB): {rss} — {verdict}",
        ]
    lines += [
        "",
        "### Agreement with NumPy/SciPy",
        "",
        "Max |tool − SciPy| over every window and feature; *n/a*: the tool does not compute "
        "that statistic (it is not dropped). Where a tool differs, the reason follows the table.",
        "",
    ]
    stats_order: list[str] = []
    for a in r["agreement"].values():
        stats_order += [k for k in a if k not in stats_order]
    lines.append("| tool | " + " | ".join(stats_order) + " |")
    lines.append("|---|" + "---:|" * len(stats_order))
    notes: list[str] = []
    sys.path.insert(0, str(HERE))
    from _peer_stats import explain

    for label, a in r["agreement"].items():
        cells = []
        for k in stats_order:
            e = a.get(k, {"status": "n/a"})
            if e["status"] in ("n/a", "null"):
                cells.append(e["status"])
                continue
            cells.append(f"{e['max_abs_diff']:.1e}" + ("" if e["status"] == "agrees" else " ✗"))
            if e["status"] == "differs":
                why = explain(label, k) or "unexplained"
                wh = e["where"]
                notes.append(
                    f"- {label}, {k}: max |diff| {e['max_abs_diff']:.3g} ({wh['feature']} window "
                    f"{wh['window']}: {wh['tool']:.4g} vs {wh['scipy']:.4g}), median "
                    f"{e['median_abs_diff']:.2g} — {why}."
                )
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    lines += ["", "✗ beyond tolerance (p-values 1e-6, others 1e-9):", "", *notes, ""]
    lines += [
        "### Detection on this workload",
        "",
        "Delay: windows from the onset (row "
        f"{w['drift_start']:,}) to a drifted feature's first flag, the onset window counting "
        "as 1 (so 3 means within 30,000 rows), worst over the 7 drifted features; false "
        "alarms: flags on undrifted feature-windows (undrifted features, and drifted ones "
        "before the onset).",
        "",
        "| decision | worst delay (windows) | per feature | missed | false alarms |",
        "|---|---:|---|---|---:|",
    ]
    for label, d in r["detection"].items():
        per = ", ".join(f"{k} {'-' if v is None else v}" for k, v in d["delays_windows"].items())
        worst = "-" if d["max_delay_windows"] is None else d["max_delay_windows"]
        lines.append(
            f"| {label} | {worst} "
            f"| {per} | {', '.join(d['missed']) or '-'} | {d['false_alarms']} "
            f"of {d['undrifted_feature_windows']} |"
        )
    db = bars.get("detection")
    if db:
        lines += [
            "",
            "**Detection bar** (no false alarm, every drifted feature within 3 windows; goal 2): "
            + ("met" if db["met_3_windows"] else "**not met**")
            + f" — driftline's defaults: worst delay {db['max_delay_windows']} windows, "
            f"{db['false_alarms']} false alarms"
            + (f", missed {', '.join(db['missed'])}" if db["missed"] else "")
            + (
                "; the 2-window goal is met."
                if db["met_2_windows_goal"]
                else "; the 2-window goal is not met."
            ),
        ]
    seeds = RESULTS / "ramp_seeds.json"
    if seeds.is_file():
        other = json.loads(seeds.read_text())
        wl = r["workload"]
        shape = {"rows": wl["rows"], "ref_rows": wl["ref_rows"], "window": r["window"]}
        if other["parameters"] == shape:  # other seeds of this very workload
            lines += ["", *_ramp_seeds(other)]
    exp = r.get("experiment")
    if exp:
        lines += [
            "",
            "What would reach the goal — decision rules tried on driftline's own per-window "
            "statistics (each equal to SciPy's) in this run:",
            "",
            "| rule | worst delay (windows) | per feature | false alarms |",
            "|---|---:|---|---:|",
        ]
        for label, d in exp.items():
            per = ", ".join(
                f"{k} {v if v is not None else '-'}" for k, v in d["delays_windows"].items()
            )
            worst = "-" if d["max_delay_windows"] is None else d["max_delay_windows"]
            lines.append(f"| {label} | {worst} | {per} | {d['false_alarms']} |")
    k = r.get("kafka")
    standalone = RESULTS / "kafka_throughput.json"
    source = "this run's copy of `results/kafka_throughput.json`"
    if standalone.is_file():  # a Kafka run made after this peer run is the one to show
        latest = json.loads(standalone.read_text())
        if k is None or latest["date"] > r["date"]:
            k, source = latest, "`results/kafka_throughput.json`, run after this peer run"
    if k:
        runs = max(_runs(f) for f in k["formats"].values())
        lines += [
            "",
            f"### End to end (Kafka), from {source}",
            "",
            f"{k['date']}: {k['events']:,} events × {k['features']} features through a Tansu "
            "broker into `driftline serve`'s engine, windows of "
            f"{k['window']:,}: "
            + "; ".join(
                f"{fmt} {f['engine_events_per_s']:,.0f} events/s "
                f"({f['ratio']:.2f}× a bare kafka-python consumer)"
                for fmt, f in k["formats"].items()
            )
            + (f" (medians of {runs} runs)" if runs > 1 else "")
            + (
                f"; the engine alone {k['engine_alone']['events_per_s']:,.0f} events/s."
                if k.get("engine_alone")
                else "."
            ),
        ]
    return [*lines, ""]


def _runs(fmt: dict[str, Any]) -> int:
    """Runs behind one format's figures (files before ``--repeat`` hold one, and no list)."""
    return len(fmt.get("runs", ())) or 1


def _ramp_seeds(r: dict[str, Any]) -> list[str]:
    """benchmarks/ramp_seeds.py: how often the detection bar is met on other seeds."""
    s = r["summary"]
    seeds = list(r["seeds"])
    lines = [
        f"Whether a rule meets the bar on one seeded workload is partly luck. "
        f"`{_relative(r['command'])}` ({r['date']}) generated the same workload with seeds "
        f"{seeds[0]}–{seeds[-1]} and replayed each with the defaults:",
        "",
        "| rule | bar met | false alarms (all seeds) | worst delay per seed |",
        "|---|---:|---:|---|",
    ]
    names = {
        "defaults": "driftline's defaults (shift test on one and two windows)",
        "one scale": "the rule before the two-window scale (one window, plain χ²)",
    }
    for rule, d in s.items():
        delays = " ".join("-" if x is None else str(x) for x in d["worst_delays"])
        lines.append(
            f"| {names.get(rule, rule)} | {d['met']} of {d['seeds']} | {d['false_flags']} "
            f"| {delays} |"
        )
    return lines


def _detection_section(path: Path) -> list[str]:
    r = json.loads(path.read_text())
    m, p = r["machine"], r["parameters"]
    lines = [
        f"## Detection quality (`{path.name}`, `benchmarks/detection.py`)",
        "",
        f"- command: `{_relative(r['command'])}`; date: {r['date']}; machine: "
        f"{m['cpu_model']}, {m['nproc']} cores (shared)",
        f"- streams: {p['ref_events']:,} reference events, then {p['events']:,} serving "
        f"events with one change half-way (gradual: over {p['width']:,} events, the change "
        f"point is where it starts), {p['seeds']} seed(s) each; driftline windows of "
        f"{p['window']:,}",
        "- driftline's defaults: `driftline baseline build --prediction score --label label` "
        "on the reference, `driftline replay --window "
        f"{p['window']}`; an alarm is a window whose health leaves ok. river's detectors: "
        "the per-event error of a decision tree trained on the reference. Delay in events; "
        "false alarms per million pre-change events.",
    ]
    if r.get("alibi_not_run"):
        lines.append(f"- Alibi Detect's online detectors: not run — {r['alibi_not_run']}")
    elif r.get("alibi"):
        a = r["alibi"]
        run = a.get("detectors", ["cvm", "mmd"])
        described = []
        if "cvm" in run:
            described.append(
                f"CVMDriftOnline (ERT {a['cvm_ert']:,.0f}, windows {a['cvm_windows']}, "
                f"{a.get('cvm_ref', 'all')} reference rows, thresholds from "
                f"{a['cvm_bootstraps']:,} simulated streams per number of columns)"
            )
        if "mmd" in run:
            described.append(
                f"MMDDriftOnline (ERT {a['mmd_ert']:,.0f}, window {a['mmd_window']}, "
                f"{a['mmd_ref']} reference rows, thresholds from {a['mmd_bootstraps']:,} "
                "bootstrap streams per stream)"
            )
        reused = a.get("reused")
        lines.append(
            f"- Alibi Detect {a['versions']['alibi-detect']}: "
            + " and ".join(described)
            + (
                f"; alarms {reused} (`--reuse-alibi`: the same streams, by digest)"
                if reused
                else ""
            )
        )
        if r.get("alibi_partial"):
            lines.append(f"- {r['alibi_partial']}")
    lines += [
        "",
        "| detector | stream family | detected | median delay | false alarms / M |",
        "|---|---|---:|---:|---:|",
    ]
    for det, fams in r["summary"].items():
        for fam, d in fams.items():
            md = d["median_delay"]
            fa = d["false_alarms_per_million"]
            lines.append(
                f"| {det} | {fam} | {d['detected']}/{d['changes']} "
                f"| {'-' if md is None else f'{md:,.0f}'} | {'-' if fa is None else f'{fa:,.0f}'} |"
            )
    flat = [
        n
        for n, e in r["streams"].items()
        if abs(e["error_rate_after"] - e["error_rate_before"]) < 0.01
        and abs(e["label_rate_after"] - e["label_rate_before"]) < 0.01
    ]
    lines += [
        "",
        "Per stream, the fixed model's error rate and the positive-label rate before → after "
        "the change: "
        + "; ".join(
            f"{n} {e['error_rate_before']:.3f} → {e['error_rate_after']:.3f}, "
            f"{e['label_rate_before']:.3f} → {e['label_rate_after']:.3f}"
            for n, e in r["streams"].items()
        )
        + ".",
    ]
    if flat:
        lines.append(
            f"In {', '.join(flat)} neither changes by 0.01: the two hyperplanes gave the model "
            "the same error, so no detector should fire there and the alarms counted as "
            "detections on those streams are chance alarms."
        )
    lines += [
        "",
        "driftline's defaults watch the distributions of features and score against the "
        "training baseline and, since the streams carry the label, grade the score against "
        "it window by window (`replay`'s performance records, as `serve` grades its label "
        "join: realised accuracy and log loss through a CUSUM of each window's z against the "
        "pairs before it, whose z counts at most 4 so that two windows are needed; precision, "
        "recall and ROC AUC through Page-Hinkley). A window counts as an alarm when its "
        "health leaves `ok`, at the window's end: detection delays are whole windows.",
    ]
    b = r["bar"]
    missed = b["missed_but_caught_by_a_peer"]
    lines += [
        "",
        "**Bar** (driftline's defaults miss no change a peer catches; false alarms no higher "
        "than the best peer's): "
        + ("met" if b["met_no_miss"] and b["met_false_alarms"] else "**not met**")
        + f". Missed but caught by a peer: {len(missed)} stream(s)"
        + (f" ({', '.join(x['stream'] for x in missed)})" if missed else "")
        + (
            f", of which {len(set(x['stream'] for x in missed) & set(flat))} on a stream whose "
            "error and label rates moved by less than 0.01"
            if missed
            else ""
        )
        + f"; driftline {b['driftline_false_alarms_per_million']:,.0f} false alarms per million, "
        f"best peer {b['best_peer']} {b['best_peer_false_alarms_per_million']:,.0f}.",
        "",
    ]
    return lines


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--output", type=Path, default=OUT, help=f"default: {OUT}")
    out = ap.parse_args(argv).output
    files = [RESULTS / n for n in ORDER if (RESULTS / n).is_file()]
    if not files:
        print("no results yet: run python benchmarks/replay.py first", file=sys.stderr)
        return 2
    lines = [
        "# Benchmark results",
        "",
        "Generated by `python benchmarks/report.py` from `benchmarks/results/*.json`.",
        "Re-run with `make bench-all` (peers and detection, after `make bench-peers`), or",
        "`python benchmarks/replay.py` (full), `--quick` (smoke) or",
        "`--blas-threads 1` (SciPy without OpenBLAS threads, steadier on a busy machine).",
        "driftline is timed as a whole process (interpreter start-up included, Numba compile",
        "excluded by the on-disk cache after a warm-up run); the reference is a plain",
        "NumPy/SciPy implementation of the same statistics (`benchmarks/scipy_reference.py`),",
        "in its own process in the same run.",
        "",
    ]
    for f in files:
        lines += _section(f)
    for name in ("peers.json", "peers-quick.json"):
        if (RESULTS / name).is_file():
            lines += _peers_section(RESULTS / name)
            break
    for name in ("detection.json", "detection-quick.json"):
        if (RESULTS / name).is_file():
            lines += _detection_section(RESULTS / name)
            break
    kafka = RESULTS / "kafka_throughput.json"
    if kafka.is_file():
        lines += _kafka_section(kafka)
    for name in ("soak.json", "soak-quick.json"):
        if (RESULTS / name).is_file():
            lines += _soak_section(RESULTS / name)
            break
    out.write_text("\n".join(lines))
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
