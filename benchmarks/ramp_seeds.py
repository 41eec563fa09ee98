"""How often driftline's defaults meet the peer benchmark's detection bar, over seeds.

The bar of ``benchmarks/peers.py`` (every drifted feature flagged within 3 windows of the
ramp's onset, no false flag on the 2,150 undrifted feature-windows) is judged on one seeded
workload; whether a detector meets it there is partly luck. This script generates the same
workload (``workload.py --drift ramp``) with other seeds, builds the baseline and replays it
as ``peers.py`` does, and reads two decision rules off each replay's records:

* **defaults**: the records' own ``drift`` flags (the shift test on the window alone and
  on the window with the one before it, each at ``shift_alpha / 2``);
* **one scale**: the rule before the two-window scale, recomputed from the same records:
  PSI ≥ 0.1, or the window's own p-value (``mean_pvalue``, or the plain goodness-of-fit
  ``chi2_pvalue`` that the categorical shift test used then) below ``shift_alpha`` with the
  effect floors.

Per seed: the worst delay over the 7 drifted features (windows from the onset, the onset
window counting as 1) and the false flags; then how many seeds meet the bar under each.

    python benchmarks/ramp_seeds.py [--seeds 10] [--first-seed 1] [--rows N]

Results: ``benchmarks/results/ramp_seeds.json``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from _peer_stats import _flags, _score  # noqa: E402
from replay import (  # noqa: E402
    DEFAULT_CACHE,
    REPO_ROOT,
    RESULTS_DIR,
    find_driftline,
    load_jsonl,
    log,
    machine_info,
    replay_command,
    workload_command,
)

from driftline.detectors.policy import (  # noqa: E402  (the defaults the rule is judged at)
    DEFAULT_MIN_LINF,
    DEFAULT_MIN_MEAN_SHIFT,
    DEFAULT_MIN_ROWS_FOR_DISTANCE,
    DEFAULT_SHIFT_ALPHA,
    DEFAULT_THRESHOLD,
)

DRIFTED = ["num_00", "num_01", "num_02", "num_03", "num_04", "cat_0", "cat_1"]


def one_scale(f: dict[str, Any]) -> bool:
    """The decision of a windows-of-10,000 feature entry without the two-window scale."""
    if (f.get("psi") or 0.0) >= DEFAULT_THRESHOLD:
        return True
    if f["type"] == "numeric":
        p, effect = f.get("mean_pvalue"), abs(f.get("mean_shift") or 0.0) >= DEFAULT_MIN_MEAN_SHIFT
    else:
        p, effect = f.get("chi2_pvalue"), (f.get("linf") or 0.0) >= DEFAULT_MIN_LINF
    return bool(effect and p is not None and p < DEFAULT_SHIFT_ALPHA)


def judge(records: list[dict[str, Any]], onset: int, window: int) -> dict[str, Any]:
    """Worst delay and false flags under both rules (``_peer_stats``'s scoring, as
    ``peers.py`` judges its bar)."""
    out: dict[str, Any] = {}
    for rule, flag in (("defaults", lambda f: f.get("drift")), ("one scale", one_scale)):
        score = _score(_flags(records, flag), onset // window, DRIFTED, window)
        worst = score["max_delay_windows"]
        out[rule] = {
            "worst_delay": worst,
            "per_feature": {n: score["delays_windows"].get(n) for n in DRIFTED},
            "false_flags": score["false_alarms"],
            "met": worst is not None and worst <= 3 and score["false_alarms"] == 0,
        }
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seeds", type=int, default=10)
    ap.add_argument("--first-seed", type=int, default=1, help="peers.py uses seed 0")
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--ref-rows", type=int, default=100_000)
    ap.add_argument("--window", type=int, default=10_000)
    ap.add_argument("--cache", type=Path, default=DEFAULT_CACHE / "ramp-seeds")
    ap.add_argument("--output", type=Path, default=RESULTS_DIR / "ramp_seeds.json")
    a = ap.parse_args(argv)
    if a.seeds < 1:
        ap.error("--seeds must be at least 1")
    if a.window < DEFAULT_MIN_ROWS_FOR_DISTANCE:  # smaller windows are decided by BH tests
        ap.error(f"--window must be at least {DEFAULT_MIN_ROWS_FOR_DISTANCE:,}")
    driftline = find_driftline()
    seeds: dict[str, Any] = {}
    for seed in range(a.first_seed, a.first_seed + a.seeds):
        t0 = time.perf_counter()
        cache = a.cache / f"s{seed}"
        wl = json.loads(
            subprocess.run(
                workload_command(a.rows, a.ref_rows, seed, cache, "--drift", "ramp"),
                stdout=subprocess.PIPE,
                text=True,
                cwd=REPO_ROOT,
                check=True,
            ).stdout
        )
        baseline = cache / "reference.dlb"
        categorical = ",".join(wl["categorical"])
        build = [*driftline, "baseline", "build", wl["reference"], "-o", str(baseline)]
        subprocess.run([*build, "--categorical", categorical, "-q"], check=True, cwd=REPO_ROOT)
        out = cache / "replay.jsonl"
        subprocess.run(
            replay_command(driftline, wl["serving"], baseline, a.window, out, "-q"),
            check=True,
            cwd=REPO_ROOT,
        )
        seeds[str(seed)] = judge(load_jsonl(out), wl["drift_start"], a.window)
        d, o = seeds[str(seed)]["defaults"], seeds[str(seed)]["one scale"]
        log(
            f"seed {seed} ({time.perf_counter() - t0:.0f} s): defaults worst {d['worst_delay']}, "
            f"{d['false_flags']} false; one scale worst {o['worst_delay']}, "
            f"{o['false_flags']} false"
        )
    summary = {
        rule: {
            "met": sum(s[rule]["met"] for s in seeds.values()),
            "seeds": len(seeds),
            "false_flags": sum(s[rule]["false_flags"] for s in seeds.values()),
            "worst_delays": [s[rule]["worst_delay"] for s in seeds.values()],
        }
        for rule in ("defaults", "one scale")
    }
    res = {
        "benchmark": "ramp_seeds",
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "command": " ".join(
            ["benchmarks/ramp_seeds.py", *(sys.argv[1:] if argv is None else argv)]
        ),
        "machine": machine_info(),
        "parameters": {"rows": a.rows, "ref_rows": a.ref_rows, "window": a.window},
        "seeds": seeds,
        "summary": summary,
    }
    a.output.parent.mkdir(parents=True, exist_ok=True)
    a.output.write_text(json.dumps(res, indent=2) + "\n")
    print(f"\n{'rule':<12}{'bar met':>10}{'false flags':>13}  worst delay per seed")
    for rule, s in summary.items():
        delays = " ".join("-" if d is None else str(d) for d in s["worst_delays"])
        print(f"{rule:<12}{s['met']:>5}/{s['seeds']:<4}{s['false_flags']:>13}  {delays}")
    print(f"\nresults written to {a.output}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
