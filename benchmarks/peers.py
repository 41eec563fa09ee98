"""Peer comparison: driftline against Evidently, NannyML, Alibi Detect, frouros and NumPy/SciPy.

    python benchmarks/peers.py [--repeat 3] [--quick] [--tools driftline,scipy,nannyml,...]

One seeded workload (benchmarks/workload.py ``--drift ramp``: a 100,000-row reference and a
1,000,000-row serving stream, 20 numeric and 5 categorical features; from row 500,000 the
means of 5 numeric features ramp to +0.5 reference std over 250,000 rows and 2 categorical
mixes ramp to 30 % reversed frequencies), windows of 10,000, through every tool, each in a
process of its own, in this run:

* ``driftline replay`` (whole process, after ``driftline baseline build``, timed apart);
* driftline's kernels (``driftline.detectors``) called per column and window;
* ``benchmarks/scipy_reference.py``: plain NumPy/SciPy, the baseline of every ratio and
  of every agreement figure;
* Evidently, NannyML (approximate and exact KS), Alibi Detect and frouros, each from its own
  virtualenv (``make bench-peers``); a tool whose virtualenv is missing is reported as not
  run, never silently dropped.

Every tool except the two whole-program ones reads the same ``.npy`` arrays
(``benchmarks/_peer_run.py prepare``). Reported per tool: wall time of the process (median of
``--repeat``), rows/s, feature-values/s, peak RSS, the tool's own compute seconds, and its
agreement with SciPy on each statistic it shares with driftline (or "n/a"). Then the
detection bar on this workload: per drifted feature the delay from the onset to the first
flag, and flags on undrifted feature-windows, for every tool's default decision and for a
few rules on driftline's own statistics. The Kafka benchmark's end-to-end figures
(``results/kafka_throughput.json``) are copied into the same results file.

Results: ``benchmarks/results/peers.json`` (``peers-quick.json`` with ``--quick``).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import math
import os
import shlex
import statistics
import subprocess
import sys
from pathlib import Path
from typing import Any

# The driver stays light (no numpy, no pyarrow): a child's ru_maxrss includes the parent's
# resident set at fork (see replay.py).
HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from _peer_stats import agreement, detection, experiment  # noqa: E402
from replay import (  # noqa: E402
    DEFAULT_CACHE,
    REPO_ROOT,
    RESULTS_DIR,
    check,
    driver_rss_mb,
    find_driftline,
    load_jsonl,
    log,
    machine_info,
    replay_command,
    run_timed,
    timed_runs,
    workload_command,
)
from replay import summarise as summarise_runs  # noqa: E402

# (label, virtualenv, _peer_run tool, mode, KS computed on exact values?)
PEERS = [
    (
        "Evidently (KS + PSI, chi-square + PSI)",
        ".venv-bench-evidently",
        "evidently",
        "psi_ks",
        True,
    ),
    ("NannyML (KS auto: binned estimate)", ".venv-bench-nannyml", "nannyml", "default", False),
    ("NannyML (KS exact)", ".venv-bench-nannyml", "nannyml", "exact", True),
    ("Alibi Detect (KSDrift, ChiSquareDrift)", ".venv-bench-alibi", "alibi", "default", True),
    ("frouros (KSTest, ChiSquareTest, PSI, JS)", ".venv-bench-frouros", "frouros", "default", True),
]
# Run once, for the detection bar only (not a speed figure): Evidently's automatic methods.
EVIDENTLY_DEFAULTS = ("Evidently (defaults)", ".venv-bench-evidently", "evidently", "defaults")
# A tool slower than this on its first timed run is not repeated (its median is of 1 run).
SLOW_S = 100.0
# Peers collect usage telemetry over the network by default; this machine has none, and
# a benchmark should not phone home. These are the switches their docs name.
QUIET_ENV = {
    "NML_DISABLE_USAGE_LOGGING": "1",
    "EVIDENTLY_DISABLE_TELEMETRY": "1",
    "DO_NOT_TRACK": "1",
    "TF_CPP_MIN_LOG_LEVEL": "3",
}


def summarise(runs: list[dict[str, Any]], rows: int, n_features: int) -> dict[str, Any]:
    """:func:`replay.summarise`, with the number of runs and the median fit + compute time
    the tools report themselves."""
    out = {**summarise_runs(runs, rows, n_features), "repeats": len(runs)}
    inner = [r["meta"]["compute_s"] + r["meta"]["fit_s"] for r in runs if r.get("meta")]
    if inner:
        out["fit_compute_s"] = statistics.median(inner)
    return out


def timed(
    label: str, cmd: list[str], logfile: Path, env: dict[str, str], repeat: int, out: Path | None
) -> list[dict[str, Any]]:
    """:func:`replay.timed_runs`, each run with the ``meta`` line its tool wrote last in
    ``out`` (fit and compute times), and not repeated after a run slower than SLOW_S."""

    def read_meta(r: dict[str, Any]) -> None:
        rows = load_jsonl(out) if out is not None else []
        if rows and "meta" in rows[-1]:
            r["meta"] = rows[-1]["meta"]

    return timed_runs(label, cmd, logfile, env, repeat, on_run=read_meta, stop_above_s=SLOW_S)


def windows_of(path: Path) -> list[dict[str, Any]]:
    """Window records of a tool's JSONL, without the trailing meta line."""
    return [r for r in load_jsonl(path) if "meta" not in r]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rows", type=int, default=None, help="serving rows (default 1,000,000)")
    ap.add_argument("--ref-rows", type=int, default=None, help="reference rows (default 100,000)")
    ap.add_argument("--window", type=int, default=10_000)
    ap.add_argument("--repeat", type=int, default=1, help="timed runs per tool (median kept)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--quick", action="store_true", help="smoke run: 100,000 / 20,000 rows")
    ap.add_argument(
        "--tools",
        default="driftline,scipy,peers,evidently-defaults",
        help="comma-separated: driftline, scipy, peers (all five peer runs), or a peer "
        "tool name (evidently, nannyml, alibi, frouros), evidently-defaults",
    )
    ap.add_argument("--cache", type=Path, default=DEFAULT_CACHE)
    ap.add_argument("--output", type=Path, default=None)
    a = ap.parse_args(argv)

    rows = a.rows if a.rows is not None else (100_000 if a.quick else 1_000_000)
    ref_rows = a.ref_rows if a.ref_rows is not None else (20_000 if a.quick else 100_000)
    cache = a.cache / ("peers-quick" if a.quick else "peers")
    output = a.output or RESULTS_DIR / ("peers-quick.json" if a.quick else "peers.json")
    wanted = set(a.tools.split(","))
    if "peers" in wanted:
        wanted |= {"evidently", "nannyml", "alibi", "frouros"}
    env = {**os.environ, **QUIET_ENV}

    log("== workload (drift: ramp)")
    p = subprocess.run(
        workload_command(rows, ref_rows, a.seed, cache, "--drift", "ramp"),
        stdout=subprocess.PIPE,
        text=True,
        cwd=REPO_ROOT,
        check=True,
    )
    wl = json.loads(p.stdout)
    (cache / "workload-info.json").write_text(p.stdout)
    data = cache / "arrays"
    if wl["generated"] or not (data / "meta.json").is_file():
        log("== arrays for the tools (_peer_run.py prepare)")
        subprocess.run(
            [
                sys.executable,
                str(HERE / "_peer_run.py"),
                "prepare",
                str(cache / "workload-info.json"),
                str(data),
            ],
            check=True,
            cwd=REPO_ROOT,
        )
    numeric, categorical = wl["numeric"], wl["categorical"]
    n_features = len(numeric) + len(categorical)
    runner = str(HERE / "_peer_run.py")
    tools: dict[str, dict[str, Any]] = {}
    outputs: dict[str, Path] = {}
    commands: dict[str, str] = {}

    if "driftline" in wanted:
        driftline = find_driftline()
        baseline = cache / "reference.dlb"
        build_cmd = [
            *driftline,
            "baseline",
            "build",
            wl["reference"],
            "-o",
            str(baseline),
            "--categorical",
            ",".join(categorical),
        ]
        log("== driftline baseline build")
        build = run_timed(build_cmd, cache / "baseline_build.log", env)
        check(build, "baseline build", cache / "baseline_build.log")
        out = cache / "driftline_replay.jsonl"
        replay_cmd = replay_command(driftline, wl["serving"], baseline, a.window, out, "-q")
        log("== driftline replay (warm-up, untimed: fills the Numba cache)")
        check(run_timed(replay_cmd, cache / "warmup.log", env), "warm-up", cache / "warmup.log")
        runs = timed("driftline replay", replay_cmd, cache / "replay.log", env, a.repeat, None)
        tools["driftline replay"] = summarise(runs, rows, n_features)
        tools["driftline replay"]["baseline_build_s"] = build["wall_s"]
        tools["driftline replay"]["baseline_build_rss_mb"] = build["peak_rss_mb"]
        outputs["driftline replay"] = out
        commands["driftline baseline build"] = shlex.join(build_cmd)
        commands["driftline replay"] = shlex.join(replay_cmd)

        out = cache / "driftline_kernels.jsonl"
        cmd = [sys.executable, runner, "run", "driftline", str(data), "--window", str(a.window)]
        cmd += ["-o", str(out)]
        check(run_timed(cmd, cache / "warmup.log", env), "warm-up", cache / "warmup.log")
        runs = timed("driftline kernels", cmd, cache / "kernels.log", env, a.repeat, out)
        tools["driftline kernels"] = summarise(runs, rows, n_features)
        outputs["driftline kernels"] = out
        commands["driftline kernels"] = shlex.join(cmd)

    scipy_out = cache / "scipy.jsonl"
    if "scipy" in wanted:
        cmd = [
            sys.executable,
            str(HERE / "scipy_reference.py"),
            wl["reference"],
            wl["serving"],
            "--window",
            str(a.window),
            "--categorical",
            ",".join(categorical),
            "-o",
            str(scipy_out),
        ]
        runs = timed(
            "NumPy/SciPy (scipy_reference.py)", cmd, cache / "scipy.log", env, a.repeat, None
        )
        tools["NumPy/SciPy"] = summarise(runs, rows, n_features)
        outputs["NumPy/SciPy"] = scipy_out
        commands["NumPy/SciPy"] = shlex.join(cmd)

    not_run: dict[str, str] = {}
    peer_info: dict[str, dict[str, Any]] = {}
    runs_for = [(*p, a.repeat) for p in PEERS if p[2] in wanted]
    if "evidently-defaults" in wanted:
        runs_for.append((*EVIDENTLY_DEFAULTS, None, 1))
    for label, venv, tool, mode, exact, repeat in runs_for:
        python = REPO_ROOT / venv / "bin" / "python"
        if not python.exists():
            not_run[label] = f"{venv} missing: run `make bench-peers`"
            log(f"== {label}: not run ({not_run[label]})")
            continue
        out = cache / f"{tool}-{mode}.jsonl"
        cmd = [str(python), runner, "run", tool, str(data), "--window", str(a.window)]
        cmd += ["--mode", mode, "-o", str(out)]
        runs = timed(label, cmd, cache / f"{tool}-{mode}.log", env, repeat, out)
        tools[label] = summarise(runs, rows, n_features)
        tools[label]["exact_ks"] = exact
        tools[label]["detection_only"] = exact is None
        outputs[label] = out
        commands[label] = shlex.join(cmd)
        peer_info[label] = {"venv": venv, "tool": tool, "mode": mode}

    log("== agreement with NumPy/SciPy and detection")
    scipy_rows = windows_of(scipy_out) if scipy_out.is_file() else []
    agree: dict[str, Any] = {}
    records = {label: windows_of(path) for label, path in outputs.items()}
    for label, recs in records.items():
        if label != "NumPy/SciPy" and scipy_rows and not tools[label].get("detection_only"):
            agree[label] = agreement(recs, scipy_rows)
    onset = wl["drift_start"] // a.window
    drifted = [*numeric[:5], "cat_0", "cat_1"]
    det = detection(records, scipy_rows, onset, drifted, a.window)
    exp = experiment(records.get("driftline kernels", []), onset, drifted, a.window, n_features)

    kafka_path = RESULTS_DIR / "kafka_throughput.json"
    kafka = json.loads(kafka_path.read_text()) if kafka_path.is_file() else None
    res: dict[str, Any] = {
        "benchmark": "peers",
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "command": shlex.join(["benchmarks/peers.py", *(sys.argv[1:] if argv is None else argv)]),
        "machine": machine_info(),
        "shared_machine_note": "2 cores shared with other engineers' work; medians of repeats",
        "workload": {
            k: wl[k]
            for k in ("rows", "ref_rows", "drift_start", "seed", "generator_version", "drift")
        }
        | {"ramp_rows": wl.get("ramp_rows"), "drifted": drifted},
        "n_features": n_features,
        "window": a.window,
        "repeat": a.repeat,
        "commands": commands,
        "driver_rss_mb": driver_rss_mb(),
        "tools": tools,
        "peer_info": peer_info,
        "not_run": not_run,
        "agreement": agree,
        "detection": det,
        "experiment": exp,
        "kafka": kafka,
    }
    res["bars"] = bars(res)
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(json.dumps(res, indent=2) + "\n")
    print_summary(res)
    print(f"\nresults written to {output}")
    return 0


def bars(res: dict[str, Any]) -> dict[str, Any]:
    """The issue's bars, evaluated on this run's figures."""
    t = res["tools"]
    peers = {k: v for k, v in t.items() if k in res["peer_info"] and not v.get("detection_only")}
    out: dict[str, Any] = {}
    if "driftline replay" in t and peers:
        fastest = min(peers, key=lambda k: peers[k]["wall_s"])
        exact = {k: v for k, v in peers.items() if v.get("exact_ks")}
        fastest_exact = min(exact, key=lambda k: exact[k]["wall_s"]) if exact else None
        lowest_rss = min(peers, key=lambda k: peers[k]["peak_rss_mb"])
        views = {
            "driftline replay": t["driftline replay"]["wall_s"],
            "driftline baseline build + replay": t["driftline replay"]["wall_s"]
            + t["driftline replay"]["baseline_build_s"],
            "driftline kernels (process)": t["driftline kernels"]["wall_s"],
        }
        speed = {}
        for view, secs in views.items():
            r5 = peers[fastest]["wall_s"] / secs
            r10 = exact[fastest_exact]["wall_s"] / secs if fastest_exact else math.nan
            speed[view] = {
                "seconds": secs,
                "vs_fastest_peer": r5,
                "vs_fastest_exact_ks_peer": r10,
                "met_5x": r5 >= 5,
                "met_10x": r10 >= 10,
            }
        rss = {
            "driftline replay": t["driftline replay"]["peak_rss_mb"],
            "driftline baseline build": t["driftline replay"]["baseline_build_rss_mb"],
            "driftline kernels": t["driftline kernels"]["peak_rss_mb"],
        }
        out["speed"] = {
            "fastest_peer": fastest,
            "fastest_peer_s": peers[fastest]["wall_s"],
            "fastest_exact_ks_peer": fastest_exact,
            "fastest_exact_ks_peer_s": exact[fastest_exact]["wall_s"] if fastest_exact else None,
            "views": speed,
        }
        out["memory"] = {
            "lowest_peer": lowest_rss,
            "lowest_peer_rss_mb": peers[lowest_rss]["peak_rss_mb"],
            "driftline_rss_mb": rss,
            "met": max(rss.values()) <= peers[lowest_rss]["peak_rss_mb"],
            # the commands a user runs (baseline build, then replay of the file), without
            # the kernels view, whose harness holds the whole data set as every peer does
            "met_commands": max(rss["driftline replay"], rss["driftline baseline build"])
            <= peers[lowest_rss]["peak_rss_mb"],
        }
    d = next((v for k, v in res["detection"].items() if k.startswith("driftline replay")), None)
    if d:
        out["detection"] = {
            "false_alarms": d["false_alarms"],
            "max_delay_windows": d["max_delay_windows"],
            "missed": d["missed"],
            "met_3_windows": d["false_alarms"] == 0
            and not d["missed"]
            and d["max_delay_windows"] is not None
            and d["max_delay_windows"] <= 3,
            "met_2_windows_goal": d["false_alarms"] == 0
            and not d["missed"]
            and d["max_delay_windows"] is not None
            and d["max_delay_windows"] <= 2,
        }
    return out


def print_summary(res: dict[str, Any]) -> None:
    print(f"\n{'tool':<44}{'wall s':>9}{'fit+compute s':>15}{'rows/s':>12}{'RSS MB':>9}")
    for label, s in res["tools"].items():
        fc = s.get("fit_compute_s")
        print(
            f"{label:<44}{s['wall_s']:>9.2f}{(f'{fc:.2f}' if fc is not None else '-'):>15}"
            f"{s['rows_per_s']:>12,.0f}{s['peak_rss_mb']:>9.0f}"
        )
    for label, why in res["not_run"].items():
        print(f"{label:<44} not run: {why}")
    print("\ndetection on the shared workload (delay in windows from the onset; false alarms)")
    for label, d in res["detection"].items():
        print(
            f"  {label:<52} max delay {d['max_delay_windows']!s:>5}  missed {len(d['missed'])}"
            f"  false alarms {d['false_alarms']}"
        )
    print("\nbars:", json.dumps(res["bars"], indent=1))


if __name__ == "__main__":
    raise SystemExit(main())
