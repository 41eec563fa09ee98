"""Replay benchmark: driftline vs a plain NumPy/SciPy implementation of the same statistics.

    python benchmarks/replay.py [--rows 1000000] [--ref-rows 100000] [--window 10000]
                                [--repeat 1] [--quick]

Steps:

1. generate the seeded workload (benchmarks/workload.py) into the cache dir if needed;
2. ``driftline baseline build reference.parquet -o <cache>/reference.dlb --categorical ...``
   (timed and reported separately);
3. one untimed ``driftline replay`` to warm Numba's on-disk cache;
4. ``driftline replay serving.parquet --baseline ... --window W --format jsonl -o ...``
   timed as a whole subprocess (wall time including interpreter start-up; peak RSS from
   the child's rusage), ``--repeat`` times;
5. ``benchmarks/scipy_reference.py`` timed the same way;
6. a table (wall s, rows/s, feature-values/s, peak RSS MB, scipy/driftline ratio), then a
   window-by-window comparison of the two JSONL outputs (max |difference| per statistic).

Figures go to ``benchmarks/results/replay.json`` (``replay-quick.json`` with ``--quick``).
Exit status: 0 on success, 1 if the number of windows differs (or a step fails).
"""

from __future__ import annotations

import argparse
import datetime as dt
import importlib.metadata
import json
import math
import os
import platform
import shlex
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

# This driver deliberately imports nothing heavy (no numpy/pyarrow) and generates the
# workload in a subprocess: on Linux a child's ru_maxrss includes the parent's resident set
# at fork/vfork time (exec keeps the old mm's high-water mark), so a fat parent would
# inflate every child's "peak RSS".
HERE = Path(__file__).resolve().parent
REPO_ROOT = HERE.parent
DEFAULT_CACHE = REPO_ROOT / ".bench"
RESULTS_DIR = HERE / "results"

# Statistics compared, and the tolerance each is held to when listing disagreements.
STATS = [
    "ks_statistic",
    "ks_pvalue",
    "psi",
    "js_distance",
    "wasserstein",
    "linf",
    "chi2_pvalue",
    "missing_rate",
    "unseen_rate",
]
TOLERANCE = {s: 1e-9 for s in STATS} | {"ks_pvalue": 1e-6, "chi2_pvalue": 1e-6}


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


# ----------------------------------------------------------------------------- running


def run_timed(cmd: list[str], logfile: Path, env: dict[str, str] | None = None) -> dict[str, Any]:
    """Run ``cmd`` as a child; return wall seconds, peak RSS (MB) and exit code."""
    load_before = os.getloadavg()[0]
    with open(logfile, "wb") as out:
        t0 = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, cwd=REPO_ROOT, env=env)
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - t0
    proc.returncode = os.waitstatus_to_exitcode(status)
    # ru_maxrss is KiB on Linux (bytes on macOS).
    maxrss_kib = usage.ru_maxrss / 1024 if sys.platform == "darwin" else usage.ru_maxrss
    return {
        "wall_s": wall,
        "peak_rss_mb": maxrss_kib / 1024,
        "returncode": proc.returncode,
        "user_s": usage.ru_utime,
        "sys_s": usage.ru_stime,
        "cpu_s": usage.ru_utime + usage.ru_stime,
        # 1-minute load average just before the run: other work on the machine inflates
        # wall time (cpu_s is much less sensitive to it).
        "loadavg_1m_before": load_before,
    }


def check(result: dict[str, Any], what: str, logfile: Path) -> None:
    if result["returncode"] != 0:
        tail = logfile.read_text(errors="replace")[-4000:]
        log(f"\n{what} failed with exit code {result['returncode']}; log {logfile}:\n{tail}")
        raise SystemExit(1)


def find_driftline() -> list[str]:
    """The driftline command: the venv's console script, else ``python -m driftline``."""
    candidates = []
    script = Path(sys.executable).parent / "driftline"
    if script.exists():
        candidates.append([str(script)])
    candidates.append([sys.executable, "-m", "driftline"])
    for cmd in candidates:
        try:
            p = subprocess.run(
                [*cmd, "replay", "--help"],
                capture_output=True,
                text=True,
                timeout=120,
                cwd=REPO_ROOT,
            )
        except (OSError, subprocess.TimeoutExpired):
            continue
        if p.returncode == 0 and "usage" in (p.stdout + p.stderr).lower():
            return cmd
    log(
        "driftline CLI not usable: neither `driftline replay --help` nor "
        "`python -m driftline replay --help` printed a usage message"
    )
    raise SystemExit(2)


# ----------------------------------------------------------------------------- comparison


def load_jsonl(path: Path) -> list[dict[str, Any]]:
    with open(path) as fh:
        return [json.loads(line) for line in fh if line.strip()]


def compare(dl_rows: list[dict[str, Any]], ref_rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Window-by-window comparison of driftline's and the reference's statistics."""
    per_stat: dict[str, dict[str, Any]] = {
        s: {"max_abs_diff": 0.0, "n": 0, "where": None, "null_mismatch": 0} for s in STATS
    }
    violations: list[dict[str, Any]] = []
    problems: list[str] = []
    n = min(len(dl_rows), len(ref_rows))
    for i in range(n):
        d, r = dl_rows[i], ref_rows[i]
        di, ri = d.get("window", {}), r.get("window", {})
        if di.get("index") != ri.get("index") or di.get("count") != ri.get("count"):
            problems.append(f"window {i}: driftline window {di} vs reference {ri}")
        dfeat, rfeat = d.get("features", {}), r.get("features", {})
        for name in sorted(set(rfeat) - set(dfeat)):
            problems.append(f"window {i}: feature {name} missing from driftline output")
        for name, rf in rfeat.items():
            df = dfeat.get(name)
            if df is None:
                continue
            for s in STATS:
                if s not in rf:
                    continue
                a: Any = df.get(s, "<absent>")
                b: Any = rf[s]
                entry = per_stat[s]
                if a is None and b is None:
                    continue
                where = {"statistic": s, "feature": name, "window": i, "driftline": a, "scipy": b}
                if a is None or b is None or a == "<absent>":
                    entry["null_mismatch"] += 1
                    violations.append({**where, "abs_diff": None})
                    continue
                diff = abs(float(a) - float(b))
                if math.isnan(diff):
                    diff = math.inf
                entry["n"] += 1
                if entry["where"] is None or diff > entry["max_abs_diff"]:
                    entry["max_abs_diff"] = diff
                    entry["where"] = {"feature": name, "window": i, "driftline": a, "scipy": b}
                if diff > TOLERANCE[s]:
                    violations.append({**where, "abs_diff": diff})
    return {
        "windows_driftline": len(dl_rows),
        "windows_scipy": len(ref_rows),
        "windows_compared": n,
        "statistics": per_stat,
        "tolerance": TOLERANCE,
        "n_violations": len(violations),
        "violations": violations[:500],
        "problems": problems[:100],
    }


# ----------------------------------------------------------------------------- reporting


def driver_rss_mb() -> float | None:
    """This driver's own peak RSS: a floor under every child's reported ru_maxrss."""
    try:
        import resource

        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    except (ImportError, OSError):
        return None


def machine_info() -> dict[str, Any]:
    cpu = None
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    try:
        nproc: int | None = len(os.sched_getaffinity(0))
    except AttributeError:
        nproc = os.cpu_count()
    versions: dict[str, str | None] = {"python": platform.python_version()}
    for pkg in ("numpy", "scipy", "numba", "pyarrow", "orjson", "driftline"):
        try:
            versions[pkg] = importlib.metadata.version(pkg)
        except importlib.metadata.PackageNotFoundError:
            versions[pkg] = None
    return {
        "platform": platform.platform(),
        "machine": platform.machine(),
        "cpu_model": cpu,
        "nproc": nproc,
        "cpu_count": os.cpu_count(),
        "versions": versions,
    }


def timed_runs(
    label: str,
    cmd: list[str],
    log_path: Path,
    env: dict[str, str],
    repeat: int,
    *,
    on_run: Callable[[dict[str, Any]], None] | None = None,
    stop_above_s: float | None = None,
) -> list[dict[str, Any]]:
    """``repeat`` timed runs of ``cmd``, each checked and logged; ``on_run`` is called with
    each run's figures (to add what the run wrote), and a run slower than ``stop_above_s``
    is the last."""
    runs = []
    for k in range(repeat):
        log(f"== {label} (timed, run {k + 1}/{repeat})")
        r = run_timed(cmd, log_path, env)
        check(r, label, log_path)
        if on_run is not None:
            on_run(r)
        log(f"  {r['wall_s']:.2f} s, peak RSS {r['peak_rss_mb']:.0f} MB")
        runs.append(r)
        if stop_above_s is not None and r["wall_s"] > stop_above_s and k + 1 < repeat:
            log(f"  slower than {stop_above_s:.0f} s: not repeated")
            break
    return runs


def summarise(runs: list[dict[str, Any]], rows: int, n_features: int) -> dict[str, Any]:
    wall = statistics.median(r["wall_s"] for r in runs)
    return {
        "wall_s": wall,
        "wall_s_min": min(r["wall_s"] for r in runs),
        "rows_per_s": rows / wall,
        "feature_values_per_s": rows * n_features / wall,
        "peak_rss_mb": max(r["peak_rss_mb"] for r in runs),
        "cpu_s": statistics.median(r["cpu_s"] for r in runs),
        "runs": runs,
    }


def fmt(x: Any) -> str:
    if x is None:
        return "-"
    if isinstance(x, float):
        return f"{x:.3g}" if x != 0 else "0"
    return str(x)


def print_report(res: dict[str, Any]) -> None:
    t = res["timings"]
    print()
    print(
        f"workload: {res['workload']['rows']:,} serving rows x {res['n_features']} features, "
        f"{res['workload']['ref_rows']:,} reference rows, window {res['window']:,}, "
        f"repeat {res['repeat']}, BLAS threads {res['blas_threads'] or 'default'}"
    )
    b = res["baseline_build"]
    print(f"baseline build: {b['wall_s']:.2f} s wall, peak RSS {b['peak_rss_mb']:.0f} MB")
    print()
    hdr = (
        f"{'tool':<18}{'wall s':>10}{'rows/s':>14}{'feature-values/s':>19}{'peak RSS MB':>14}"
        f"{'cpu s':>10}"
    )
    print(hdr)
    print("-" * len(hdr))
    for tool in ("driftline", "scipy_reference"):
        s = t[tool]
        print(
            f"{tool:<18}{s['wall_s']:>10.2f}{s['rows_per_s']:>14,.0f}"
            f"{s['feature_values_per_s']:>19,.0f}{s['peak_rss_mb']:>14.0f}{s['cpu_s']:>10.2f}"
        )
    print(f"\nspeed-up (scipy time / driftline time): {res['ratio_scipy_over_driftline']:.2f}x")
    print(f"cpu-time ratio (scipy / driftline):     {res['ratio_cpu_scipy_over_driftline']:.2f}x")
    loads = [r["loadavg_1m_before"] for t_ in t.values() for r in t_["runs"]]
    nproc = res["machine"]["nproc"] or 1
    # The 1-minute average still carries this benchmark's own previous run (about 1.0),
    # so only a figure well above that points at other work on the machine.
    if max(loads) > max(1.5, 0.75 * nproc):
        print(
            f"note: 1-minute load average before timed runs was up to {max(loads):.2f} on "
            f"{nproc} CPUs (about 1.0 of it is this benchmark's previous run): other work "
            "was probably running, and wall times may be inflated"
        )
    c = res["agreement"]
    print(
        f"\nagreement: {c['windows_compared']} windows compared "
        f"(driftline {c['windows_driftline']}, scipy {c['windows_scipy']})"
    )
    print(f"{'statistic':<14}{'max |diff|':>12}{'n':>8}{'null mismatch':>15}  where")
    for s, e in c["statistics"].items():
        w = e["where"]
        where = f"{w['feature']} window {w['window']}" if w and e["max_abs_diff"] > 0 else ""
        print(
            f"{s:<14}{fmt(e['max_abs_diff']) if e['n'] else '-':>12}{e['n']:>8}"
            f"{e['null_mismatch']:>15}  {where}"
        )
    if c["problems"]:
        print("\nstructural problems:")
        for p in c["problems"][:20]:
            print("  " + p)
    if c["n_violations"]:
        print(
            f"\n{c['n_violations']} values outside tolerance "
            "(p-values 1e-6, others 1e-9); first 25:"
        )
        for v in c["violations"][:25]:
            print(
                f"  {v['statistic']:<13} {v['feature']:<8} window {v['window']:<4} "
                f"driftline={v['driftline']!r} scipy={v['scipy']!r} diff={fmt(v['abs_diff'])}"
            )
    else:
        print("\nall values within tolerance (p-values 1e-6, others 1e-9)")


# ----------------------------------------------------------------------------- main


def workload_command(rows: int, ref_rows: int, seed: int, cache: Path, *extra: str) -> list[str]:
    """``benchmarks/workload.py`` generating (or finding in ``cache``) the seeded workload;
    it prints the workload's description as JSON."""
    return [
        sys.executable, str(HERE / "workload.py"), "--rows", str(rows), "--ref-rows",
        str(ref_rows), "--seed", str(seed), "--cache", str(cache), *extra,
    ]  # fmt: skip


def replay_command(
    driftline: list[str], serving: Path | str, baseline: Path, window: int, out: Path, *extra: str
) -> list[str]:
    """``driftline replay`` of ``serving`` against ``baseline`` in windows of ``window`` rows,
    its JSONL records written to ``out``."""
    return [
        *driftline, "replay", str(serving), "--baseline", str(baseline), "--window",
        str(window), "--format", "jsonl", "-o", str(out), *extra,
    ]  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="driftline replay benchmark vs NumPy/SciPy")
    ap.add_argument("--rows", type=int, default=None, help="serving rows (default 1,000,000)")
    ap.add_argument("--ref-rows", type=int, default=None, help="reference rows (default 100,000)")
    ap.add_argument("--window", type=int, default=10_000)
    ap.add_argument("--repeat", type=int, default=1, help="timed runs per tool (median kept)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument(
        "--drift-start",
        type=int,
        default=None,
        help="first drifted serving row (default rows // 2)",
    )
    ap.add_argument(
        "--quick",
        action="store_true",
        help="smoke run: 100,000 serving rows, 20,000 reference rows",
    )
    ap.add_argument(
        "--blas-threads",
        type=int,
        default=None,
        help="set OPENBLAS_NUM_THREADS/MKL_NUM_THREADS for the timed tools (default: leave "
        "the environment alone). SciPy's wasserstein_distance does a large BLAS dot per "
        "call, and OpenBLAS's spinning worker threads make its time swing on a busy machine.",
    )
    ap.add_argument("--cache", type=Path, default=DEFAULT_CACHE)
    ap.add_argument(
        "--driftline",
        default=None,
        help="driftline command to use (default: auto-detect the venv's)",
    )
    ap.add_argument(
        "--output",
        type=Path,
        default=None,
        help="results JSON (default benchmarks/results/replay[-quick].json)",
    )
    a = ap.parse_args(argv)

    rows = a.rows if a.rows is not None else (100_000 if a.quick else 1_000_000)
    ref_rows = a.ref_rows if a.ref_rows is not None else (20_000 if a.quick else 100_000)
    # Separate cache sub-directories so a quick run does not throw away the full workload.
    cache = a.cache / ("quick" if a.quick else "full")
    output = a.output or RESULTS_DIR / ("replay-quick.json" if a.quick else "replay.json")

    log("== workload")
    wl_cmd = workload_command(rows, ref_rows, a.seed, cache)
    if a.drift_start is not None:
        wl_cmd += ["--drift-start", str(a.drift_start)]
    t0 = time.perf_counter()
    p = subprocess.run(wl_cmd, stdout=subprocess.PIPE, text=True, cwd=REPO_ROOT)
    if p.returncode != 0:
        log(f"workload generation failed (exit code {p.returncode})")
        return 1
    wl = json.loads(p.stdout)
    log(f"  workload ready in {time.perf_counter() - t0:.1f} s")
    ref_path, srv_path = Path(wl["reference"]), Path(wl["serving"])
    n_features = len(wl["numeric"]) + len(wl["categorical"])
    categorical = ",".join(wl["categorical"])

    env = dict(os.environ)
    if a.blas_threads is not None:
        env["OPENBLAS_NUM_THREADS"] = env["MKL_NUM_THREADS"] = str(a.blas_threads)
    driftline = shlex.split(a.driftline) if a.driftline else find_driftline()
    log(f"driftline command: {shlex.join(driftline)}")
    baseline = cache / "reference.dlb"
    dl_out = cache / "driftline.jsonl"
    sp_out = cache / "scipy.jsonl"

    log("== driftline baseline build")
    build_cmd = [
        *driftline,
        "baseline",
        "build",
        str(ref_path),
        "-o",
        str(baseline),
        "--categorical",
        categorical,
    ]
    build = run_timed(build_cmd, cache / "baseline_build.log", env)
    check(build, "baseline build", cache / "baseline_build.log")
    log(f"  {build['wall_s']:.2f} s, peak RSS {build['peak_rss_mb']:.0f} MB")

    replay_cmd = replay_command(driftline, srv_path, baseline, a.window, dl_out)
    log("== driftline replay (warm-up, untimed: fills the Numba cache)")
    warm = run_timed(replay_cmd, cache / "driftline_warmup.log", env)
    check(warm, "driftline replay (warm-up)", cache / "driftline_warmup.log")
    log(f"  {warm['wall_s']:.2f} s")

    dl_runs = timed_runs(
        "driftline replay", replay_cmd, cache / "driftline_replay.log", env, a.repeat
    )

    scipy_cmd = [
        sys.executable,
        str(HERE / "scipy_reference.py"),
        str(ref_path),
        str(srv_path),
        "--window",
        str(a.window),
        "--categorical",
        categorical,
        "-o",
        str(sp_out),
    ]
    sp_runs = timed_runs(
        "scipy_reference.py", scipy_cmd, cache / "scipy_reference.log", env, a.repeat
    )

    log("== comparing outputs")
    agreement = compare(load_jsonl(dl_out), load_jsonl(sp_out))

    timings = {
        "driftline": summarise(dl_runs, rows, n_features),
        "scipy_reference": summarise(sp_runs, rows, n_features),
    }
    res = {
        "benchmark": "replay",
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "command": shlex.join([sys.executable, *sys.argv])
        if argv is None
        else shlex.join(["benchmarks/replay.py", *argv]),
        "machine": machine_info(),
        "workload": {
            k: wl[k] for k in ("rows", "ref_rows", "drift_start", "seed", "generator_version")
        },
        "n_features": n_features,
        "window": a.window,
        "repeat": a.repeat,
        "blas_threads": a.blas_threads,
        "thread_env": {
            k: env.get(k)
            for k in (
                "OPENBLAS_NUM_THREADS",
                "MKL_NUM_THREADS",
                "OMP_NUM_THREADS",
                "NUMBA_NUM_THREADS",
            )
        },
        "commands": {
            "baseline_build": shlex.join(build_cmd),
            "driftline": shlex.join(replay_cmd),
            "scipy_reference": shlex.join(scipy_cmd),
        },
        "driver_rss_mb": driver_rss_mb(),
        "baseline_build": build,
        "driftline_warmup": warm,
        "timings": timings,
        "ratio_scipy_over_driftline": timings["scipy_reference"]["wall_s"]
        / timings["driftline"]["wall_s"],
        "ratio_cpu_scipy_over_driftline": timings["scipy_reference"]["cpu_s"]
        / timings["driftline"]["cpu_s"],
        "agreement": agreement,
    }
    print_report(res)
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(json.dumps(res, indent=2) + "\n")
    print(f"\nresults written to {output}")
    if agreement["windows_driftline"] != agreement["windows_scipy"]:
        print(
            f"window count differs: driftline {agreement['windows_driftline']}, "
            f"scipy {agreement['windows_scipy']}"
        )
        return 1
    if agreement["n_violations"]:
        print(f"{agreement['n_violations']} statistics disagree with SciPy beyond tolerance")
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
