"""Detection quality on streams with known change points: driftline's defaults against river's
ADWIN, KSWIN and Page-Hinkley and Alibi Detect's online detectors.

    python benchmarks/detection.py [--quick] [--seeds 2] [--events 30000]

Streams (each: a reference of ``--ref-events`` from the first concept, then ``--events``
serving events with one change half-way; "gradual" changes over ``--width`` events, and
its change point is where the transition starts: for river's sigmoid transition, the first
event drawn from the new concept with probability 1 % (``sigmoid_start``, about
``position − 1.15 · width``); for the linear ramp of the demo streams, ``position −
width / 2``):

* river's synthetic generators, two concepts mixed by ``ConceptDriftStream`` (sudden:
  width 1; gradual): Agrawal (classification function 0 → 2), SEA (variant 0 → 2) and
  Hyperplane (10 features, one random hyperplane → another with half its features
  mirrored: ``mirrored_hyperplane``). A decision tree trained on the
  reference scores every event, so the stream carries features, the model's ``score`` and
  the ``label``; these changes are of P(label | features), not of the features;
* covariate shift from the repository's demo data set (``driftline.example``): amounts up
  60 %, a new country, the device mix turned to mobile, sudden and gradual.

Detectors, all on the same streams:

* driftline's defaults: ``driftline baseline build`` on the reference (``--prediction score
  --label label``), ``driftline replay --window 1000`` with every threshold at its default;
  an alert is a window whose health leaves ``ok`` (what pages on-call), at the window's end;
* river's ADWIN, KSWIN and Page-Hinkley, with their defaults, fed each event's error (0/1)
  of the same fixed model: the textbook use of these detectors (they are univariate);
* Alibi Detect's ``CVMDriftOnline`` and ``MMDDriftOnline`` on the standardised features,
  score and label, with thresholds calibrated for an expected run time (ERT) in events
  (``benchmarks/_detect_alibi.py``, in ``.venv-bench-alibi``, says which ERT and why).

Per stream and detector: detection delay (events from the change to the first alarm at or
after it), missed changes, and false alarms (alarms before the change) per million events.
Results: ``benchmarks/results/detection.json`` (``detection-quick.json`` with ``--quick``).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import math
import shlex
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from _detect_alibi import DETECTORS, parse_detectors, stream_digest  # noqa: E402
from replay import (  # noqa: E402
    DEFAULT_CACHE,
    REPO_ROOT,
    RESULTS_DIR,
    find_driftline,
    log,
    machine_info,
    replay_command,
)

ALIBI_PYTHON = REPO_ROOT / ".venv-bench-alibi" / "bin" / "python"


# ----------------------------------------------------------------------------- streams


def river_stream(name: str, kind: str, seed: int, n_ref: int, n: int, width: int) -> dict[str, Any]:
    from river.datasets import synth

    def concept(which: int, s: int) -> Any:
        if name == "agrawal":
            return synth.Agrawal(classification_function=(0, 2)[which], seed=s)
        if name == "sea":
            return synth.SEA(variant=(0, 2)[which], seed=s)
        # Hyperplane: the concept is the random hyperplane its seed draws; the new one is
        # another, with half its features mirrored (see mirrored_hyperplane)
        if which == 1:
            return mirrored_hyperplane(seed + 1000)
        return synth.Hyperplane(seed=seed, n_features=10, mag_change=0.0, noise_percentage=0.05)

    position = n // 2
    w = 1 if kind == "sudden" else width
    ref_src = concept(0, seed + 500)
    if name == "hyperplane":  # same hyperplane, other points: a fresh generator of concept 0
        ref_src = synth.Hyperplane(seed=seed, n_features=10, mag_change=0.0, noise_percentage=0.05)
        ref_rows = list(ref_src.take(n_ref + n))[n:]
    else:
        ref_rows = list(ref_src.take(n_ref))
    if kind == "sudden":
        # ConceptDriftStream's sigmoid overflows math.exp at width 1: a switch is a splice
        rows = list(concept(0, seed).take(position)) + list(concept(1, seed + 1).take(n - position))
    else:
        stream = synth.ConceptDriftStream(
            stream=concept(0, seed),
            drift_stream=concept(1, seed + 1),
            position=position,
            width=w,
            seed=seed,
        )
        rows = list(stream.take(n))
    cols = list(ref_rows[0][0])
    ref = np.array([[float(x[c]) for c in cols] for x, _ in ref_rows])
    x = np.array([[float(r[c]) for c in cols] for r, _ in rows])
    y_ref = np.array([int(y) for _, y in ref_rows])
    y = np.array([int(v) for _, v in rows])
    from sklearn.tree import DecisionTreeClassifier

    model = DecisionTreeClassifier(max_depth=8, random_state=0).fit(ref, y_ref)
    names = [f"x{c}" if isinstance(c, int) else str(c) for c in cols]  # SEA's keys are ints
    return {
        "columns": names,
        "categorical": [],
        "ref": {c: ref[:, j] for j, c in enumerate(names)},
        "x": {c: x[:, j] for j, c in enumerate(names)},
        "score_ref": model.predict_proba(ref)[:, 1],
        "score": model.predict_proba(x)[:, 1],
        "y_ref": y_ref,
        "y": y,
        "change": sigmoid_start(position, w) if w > 1 else position,
        # from here on the new concept is drawn with probability ≥ 99 %
        "settled": 2 * position - sigmoid_start(position, w) if w > 1 else position,
    }


def mirrored_hyperplane(seed: int) -> Any:
    """River's Hyperplane (10 features) with its first 5 features mirrored, x → 1 − x.

    River draws every weight of a hyperplane from [0, 1], so two seeds give nearly the same
    concept: a tree trained on one erred 0.235 on it and 0.239 on another, a change no
    detector could see. Mirroring half the features leaves P(features) as it was (uniform
    on [0, 1]) and gives the label a hyperplane whose normal has those 5 signs flipped: a
    real change of P(label | features)."""
    from river.datasets import synth

    class Mirrored(synth.Hyperplane):
        def __iter__(self) -> Any:
            for x, y in super().__iter__():
                yield {k: (1.0 - v if int(k) < 5 else v) for k, v in x.items()}, y

    return Mirrored(seed=seed, n_features=10, mag_change=0.0, noise_percentage=0.05)


def sigmoid_start(position: int, width: int, share: float = 0.01) -> int:
    """The first event at which ``ConceptDriftStream`` draws from the new concept with
    probability ``share``: it draws with probability 1 / (1 + exp(-4 (t - position) /
    width)) (river's ``concept_drift_stream.py``), so already 12 % at ``position − width /
    2``; an alarm there sees a real change and is not a false alarm."""
    return math.ceil(position + width / 4 * math.log(share / (1 - share)))


def example_stream(kind: str, seed: int, n_ref: int, n: int, width: int) -> dict[str, Any]:
    """The demo data set's world (``driftline.example``): before and after its change."""
    from driftline.example import _frame

    rng = np.random.default_rng(seed)
    ref = _frame(rng, n_ref, None)
    before = _frame(rng, n, None)
    after = _frame(rng, n, 0.0)
    position = n // 2
    if kind == "sudden":
        new = np.arange(n) >= position
        change = position
    else:
        ramp = np.clip((np.arange(n) - (position - width / 2)) / width, 0.0, 1.0)
        new = rng.random(n) < ramp
        change = position - width // 2
    x = {c: np.where(new, after[c], before[c]) for c in before}
    cols = ["amount", "age", "hour", "items", "country", "device"]
    from sklearn.tree import DecisionTreeClassifier

    levels = {c: sorted(set(ref[c].tolist()) | set(x[c].tolist())) for c in ("country", "device")}

    def features(f: dict[str, Any]) -> np.ndarray:
        num = [np.asarray(f[c], dtype=np.float64) for c in cols[:4]]
        cat = [np.array([levels[c].index(v) for v in f[c].tolist()]) for c in cols[4:]]
        return np.column_stack([*num, *cat])

    model = DecisionTreeClassifier(max_depth=6, random_state=0)
    model.fit(features(ref), ref["label"])
    return {
        "columns": cols,
        "categorical": ["country", "device"],
        "ref": {c: ref[c] for c in cols},
        "x": {c: x[c] for c in cols},
        "score_ref": model.predict_proba(features(ref))[:, 1],
        "score": model.predict_proba(features(x))[:, 1],
        "y_ref": ref["label"],
        "y": x["label"],
        "change": change,
        "settled": change if kind == "sudden" else change + width,
    }


def write_stream(s: dict[str, Any], directory: Path, name: str, npz_dir: Path) -> None:
    for tag, cols, score, y in (
        ("reference", s["ref"], s["score_ref"], s["y_ref"]),
        ("serving", s["x"], s["score"], s["y"]),
    ):
        table = pa.table({**cols, "score": score, "label": y})
        pq.write_table(table, directory / f"{name}.{tag}.parquet")

    def matrix(cols: dict[str, Any], score: Any, y: Any) -> np.ndarray:
        out = []
        for c in s["columns"]:
            v = cols[c]
            if c in s["categorical"]:
                levels = sorted(set(s["ref"][c].tolist()) | set(s["x"][c].tolist()))
                v = np.array([levels.index(t) for t in v.tolist()], dtype=np.float64)
            out.append(np.asarray(v, dtype=np.float64))
        return np.column_stack([*out, score, y])

    np.savez(
        npz_dir / f"{name}.npz",
        ref=matrix(s["ref"], s["score_ref"], s["y_ref"]),
        x=matrix(s["x"], s["score"], s["y"]),
    )


# ----------------------------------------------------------------------------- detectors


def driftline_alarms(
    driftline: list[str], directory: Path, name: str, s: dict[str, Any], window: int
) -> tuple[list[int], dict[str, Any]]:
    baseline = directory / f"{name}.dlb"
    build = [
        *driftline,
        "baseline",
        "build",
        str(directory / f"{name}.reference.parquet"),
        "-o",
        str(baseline),
        "--prediction",
        "score",
        "--label",
        "label",
        "-q",
    ]
    if s["categorical"]:
        build += ["--categorical", ",".join(s["categorical"])]
    subprocess.run(build, check=True, cwd=REPO_ROOT, capture_output=True)
    out = directory / f"{name}.windows.jsonl"
    serving = directory / f"{name}.serving.parquet"
    replay = replay_command(driftline, serving, baseline, window, out, "-q")
    subprocess.run(replay, check=True, cwd=REPO_ROOT, capture_output=True)
    records = [json.loads(line) for line in out.read_text().splitlines() if line.strip()]
    alarms = []
    previous = "ok"
    first_reasons: dict[str, Any] = {}
    for r in records:
        if r.get("kind", "skew") != "skew":
            continue
        health = r.get("health", "ok")
        end = (r["window"]["index"] + 1) * window - 1
        if health != "ok" and previous == "ok":
            alarms.append(end)
            if end >= s["change"] and not first_reasons:
                first_reasons = {
                    "window": r["window"]["index"],
                    "reasons": r.get("reasons", [])[:5],
                }
        previous = health
    return alarms, {"commands": [shlex.join(build), shlex.join(replay)], "first": first_reasons}


def river_alarms(errors: np.ndarray) -> dict[str, list[int]]:
    from river import drift

    out: dict[str, list[int]] = {}
    for label, det in (
        ("river ADWIN", drift.ADWIN()),
        ("river KSWIN", drift.KSWIN(seed=0)),
        ("river Page-Hinkley", drift.PageHinkley()),
    ):
        alarms = []
        for t, e in enumerate(errors.tolist()):
            det.update(e)
            if det.drift_detected:
                alarms.append(t)
        out[label] = alarms
    return out


def reused_alibi(path: Path, npz: Path) -> dict[str, Any]:
    """The Alibi results of an earlier run, if it measured exactly the streams in ``npz``
    (same arrays, by digest); SystemExit with the reason otherwise."""
    if not path.exists():
        raise SystemExit(f"--reuse-alibi: no {path}; run without --reuse-alibi first")
    info: dict[str, Any] = json.loads(path.read_text())
    digests = info.get("digests") or {}
    here = {p.stem: stream_digest(p) for p in sorted(npz.glob("*.npz"))}
    if digests != here:
        changed = sorted(k for k in set(here) | set(digests) if here.get(k) != digests.get(k))
        raise SystemExit(
            f"--reuse-alibi: {path} measured other streams ({', '.join(changed[:5])}"
            f"{' …' if len(changed) > 5 else ''} differ); run without --reuse-alibi"
        )
    when = dt.datetime.fromtimestamp(path.stat().st_mtime, dt.UTC).isoformat(timespec="seconds")
    info["reused"] = f"measured by the run that wrote it at {when}"
    return info


def score(alarms: list[int], change: int, n: int) -> dict[str, Any]:
    after = [t for t in alarms if t >= change]
    return {
        "delay": after[0] - change if after else None,
        "false_alarms": sum(t < change for t in alarms),
        "pre_change_events": change,
        "alarms": len(alarms),
    }


# ----------------------------------------------------------------------------- main


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--events", type=int, default=30_000, help="serving events per stream")
    ap.add_argument("--ref-events", type=int, default=5_000)
    ap.add_argument("--width", type=int, default=4_000, help="gradual change width")
    ap.add_argument("--seeds", type=int, default=2, help="seeds per synthetic stream")
    ap.add_argument("--window", type=int, default=1_000, help="driftline's window (rows)")
    ap.add_argument("--quick", action="store_true", help="smoke run: 1 seed, 6,000 events")
    ap.add_argument("--no-alibi", action="store_true", help="skip Alibi Detect")
    ap.add_argument("--no-alibi-reason", default=None, help="why, for the results file")
    ap.add_argument(
        "--alibi-detectors",
        default="cvm,mmd",
        help="Alibi Detect's online detectors to run: cvm, mmd or both (default both)",
    )
    ap.add_argument(
        "--reuse-alibi",
        action="store_true",
        help="take Alibi Detect's alarms from the last run's alibi.json in the cache (about an "
        "hour of calibration here) when it measured these same streams; an error otherwise",
    )
    ap.add_argument(
        "--alibi-skipped-reason",
        default=None,
        help="with --alibi-detectors naming one: why the other was not run, for the results file",
    )
    ap.add_argument("--cache", type=Path, default=DEFAULT_CACHE)
    ap.add_argument("--output", type=Path, default=None)
    a = ap.parse_args(argv)
    if parse_detectors(a.alibi_detectors) is None:  # checked before hours of work
        ap.error(f"--alibi-detectors: cvm, mmd or both, got {a.alibi_detectors!r}")
    if a.quick:
        a.events, a.ref_events, a.width, a.seeds = 6_000, 2_000, 1_000, 1
    directory = a.cache / ("detection-quick" if a.quick else "detection")
    npz = directory / "npz"
    npz.mkdir(parents=True, exist_ok=True)
    for old in npz.glob("*.npz"):
        old.unlink()
    output = a.output or RESULTS_DIR / ("detection-quick.json" if a.quick else "detection.json")
    driftline = find_driftline()

    streams: dict[str, dict[str, Any]] = {}
    for seed in range(a.seeds):
        for gen in ("agrawal", "sea", "hyperplane"):
            for kind in ("sudden", "gradual"):
                streams[f"{gen}-{kind}-s{seed}"] = {"gen": gen, "kind": kind, "seed": seed}
        for kind in ("sudden", "gradual"):
            streams[f"example-{kind}-s{seed}"] = {"gen": "example", "kind": kind, "seed": seed}

    results: dict[str, Any] = {}
    for name, spec in streams.items():
        t0 = time.perf_counter()
        if spec["gen"] == "example":
            s = example_stream(spec["kind"], spec["seed"], a.ref_events, a.events, a.width)
        else:
            s = river_stream(
                spec["gen"], spec["kind"], spec["seed"], a.ref_events, a.events, a.width
            )
        write_stream(s, directory, name, npz)
        errors = ((s["score"] >= 0.5).astype(int) != s["y"]).astype(float)
        entry: dict[str, Any] = {
            **spec,
            "change": s["change"],
            "events": a.events,
            "error_rate_before": float(errors[: s["change"]].mean()),
            "error_rate_after": float(errors[s["settled"] :].mean()),
            "label_rate_before": float(np.mean(s["y"][: s["change"]])),
            "label_rate_after": float(np.mean(s["y"][s["settled"] :])),
            "detectors": {},
        }
        alarms, info = driftline_alarms(driftline, directory, name, s, a.window)
        entry["detectors"]["driftline (defaults)"] = score(alarms, s["change"], a.events)
        entry["driftline"] = info
        for label, al in river_alarms(errors).items():
            entry["detectors"][label] = score(al, s["change"], a.events)
        results[name] = entry
        summary = ", ".join(f"{k}: {v['delay']}" for k, v in entry["detectors"].items())
        log(f"== {name} ({time.perf_counter() - t0:.1f} s): delays {summary}")

    alibi_info: dict[str, Any] | None = None
    alibi_not_run = None
    out = directory / "alibi.json"
    if a.no_alibi:
        alibi_not_run = a.no_alibi_reason or "--no-alibi"
    elif a.reuse_alibi:
        alibi_info = reused_alibi(out, npz)
        log(f"== Alibi Detect online detectors: the alarms in {out} ({alibi_info['reused']})")
    elif ALIBI_PYTHON.exists():
        log("== Alibi Detect online detectors (expected-run-time calibration per stream)")
        subprocess.run(
            [
                str(ALIBI_PYTHON),
                str(HERE / "_detect_alibi.py"),
                str(npz),
                "--detectors",
                a.alibi_detectors,
                "-o",
                str(out),
            ],
            check=True,
            cwd=REPO_ROOT,
        )
        alibi_info = json.loads(out.read_text())
    else:
        alibi_not_run = ".venv-bench-alibi missing: make bench-peers"
    if alibi_info is not None:
        for name, per in alibi_info["streams"].items():
            for det, r in per.items():
                results[name]["detectors"][f"Alibi {det}"] = score(
                    r["alarms"], results[name]["change"], a.events
                )
    if alibi_not_run:
        log(f"== Alibi Detect: not run ({alibi_not_run})")

    res = {
        "benchmark": "detection",
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "command": shlex.join(
            ["benchmarks/detection.py", *(sys.argv[1:] if argv is None else argv)]
        ),
        "machine": machine_info(),
        "parameters": {
            "events": a.events,
            "ref_events": a.ref_events,
            "width": a.width,
            "seeds": a.seeds,
            "window": a.window,
        },
        "alibi": {k: v for k, v in (alibi_info or {}).items() if k not in ("streams", "digests")}
        or None,
        "alibi_not_run": alibi_not_run,
        "alibi_partial": (
            a.alibi_skipped_reason
            if alibi_info and set(alibi_info["detectors"]) != set(DETECTORS)
            else None
        ),
        "streams": results,
        "summary": summarise(results),
    }
    res["bar"] = bar(res["summary"], results)
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(json.dumps(res, indent=2) + "\n")
    print_summary(res)
    print(f"\nresults written to {output}")
    return 0


def summarise(results: dict[str, Any]) -> dict[str, Any]:
    """Per detector and stream family: changes detected, median delay, false alarms per
    million pre-change events."""
    out: dict[str, Any] = {}
    for entry in results.values():
        family = f"{entry['gen']} {entry['kind']}"
        for det, r in entry["detectors"].items():
            d = out.setdefault(det, {}).setdefault(
                family, {"changes": 0, "detected": 0, "delays": [], "false_alarms": 0, "pre": 0}
            )
            d["changes"] += 1
            d["detected"] += r["delay"] is not None
            if r["delay"] is not None:
                d["delays"].append(r["delay"])
            d["false_alarms"] += r["false_alarms"]
            d["pre"] += r["pre_change_events"]
    for fams in out.values():
        total = {"changes": 0, "detected": 0, "delays": [], "false_alarms": 0, "pre": 0}
        for d in fams.values():
            for k in total:
                total[k] += d[k]
        fams["all"] = total
        for d in fams.values():
            d["median_delay"] = float(np.median(d["delays"])) if d["delays"] else None
            d["false_alarms_per_million"] = d["false_alarms"] / d["pre"] * 1e6 if d["pre"] else None
    return out


def bar(summary: dict[str, Any], results: dict[str, Any]) -> dict[str, Any]:
    """driftline's defaults miss no change that any peer catches, with false alarms per
    million no higher than the best peer's."""
    dl = "driftline (defaults)"
    missed_caught = []
    for name, entry in results.items():
        dets = entry["detectors"]
        if dets[dl]["delay"] is None:
            caught = [k for k, v in dets.items() if k != dl and v["delay"] is not None]
            if caught:
                # the model's error rate on each side of the change: what a detector fed the
                # errors (river's) or grading the labels (driftline's) can see
                missed_caught.append(
                    {
                        "stream": name,
                        "caught_by": caught,
                        "error_rate_before": entry["error_rate_before"],
                        "error_rate_after": entry["error_rate_after"],
                    }
                )
    peers = {k: v["all"]["false_alarms_per_million"] for k, v in summary.items() if k != dl}
    best = min(peers, key=lambda k: peers[k]) if peers else None
    fa = summary[dl]["all"]["false_alarms_per_million"]
    return {
        "missed_but_caught_by_a_peer": missed_caught,
        "driftline_false_alarms_per_million": fa,
        "best_peer": best,
        "best_peer_false_alarms_per_million": peers.get(best) if best else None,
        "met_no_miss": not missed_caught,
        "met_false_alarms": best is None or fa <= peers[best],
    }


def print_summary(res: dict[str, Any]) -> None:
    print(f"\n{'detector':<28}{'family':<22}{'detected':>10}{'median delay':>14}{'FA/M':>10}")
    for det, fams in res["summary"].items():
        for fam, d in fams.items():
            md = d["median_delay"]
            fa = d["false_alarms_per_million"]
            print(
                f"{det:<28}{fam:<22}{d['detected']:>5}/{d['changes']:<4}"
                f"{(f'{md:.0f}' if md is not None else '-'):>14}{fa:>10.0f}"
            )
    print("\nbar:", json.dumps(res["bar"], indent=1))


if __name__ == "__main__":
    raise SystemExit(main())
