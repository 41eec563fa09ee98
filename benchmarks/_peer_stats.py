"""Agreement with SciPy and detection delays for benchmarks/peers.py (pure Python, no NumPy:
the driver stays light so that its children's peak RSS is their own)."""

from __future__ import annotations

import math
import statistics
from statistics import NormalDist
from typing import Any

# Statistics compared with scipy_reference.py, by feature kind.
NUMERIC_STATS = ["ks_statistic", "ks_pvalue", "psi", "js_distance", "wasserstein"]
CATEGORICAL_STATS = ["chi2_pvalue", "psi", "js_distance"]
TOLERANCE = {"ks_pvalue": 1e-6, "chi2_pvalue": 1e-6}  # others 1e-9, as in replay.py

# Why a tool's figure differs from SciPy's (read from each tool's documentation and
# source, checked against the figures of a run: peers.py prints the largest difference).
EXPLAIN: dict[tuple[str, str], str] = {
    ("evidently", "ks_pvalue"): "scipy.stats.ks_2samp with its default method: asymptotic "
    "for a 100,000-row reference, as SciPy's; equal up to rounding",
    ("evidently", "psi numeric"): "equal-width bins (Sturges' rule on reference ∪ window, "
    "about 18) instead of 10 reference-quantile bins; empty bins filled with 1e-4",
    ("evidently", "psi categorical"): "one bin per category seen in reference ∪ window (no "
    "top-K / __other__); only empty bins filled (1e-4) instead of every proportion floored "
    "at 1e-4",
    ("evidently", "chi2_pvalue"): "goodness of fit of window counts to the reference "
    "proportions (scipy.stats.chisquare), as SciPy's, without the 1e-4 floor on proportions",
    ("nannyml", "ks_statistic"): "mode auto: with 10,000 or more reference rows NannyML "
    "estimates KS from a cumulative histogram of 10,000 equal-width bins over the reference "
    "range (values beyond it land in the end bins); exact mode: scipy.stats.ks_2samp",
    ("nannyml", "js_distance numeric"): "base 2, but on Doane's-rule equal-width bins of the "
    "reference instead of 10 reference-quantile bins",
    ("nannyml", "js_distance categorical"): "base 2 on category proportions: the same "
    "figure when every category is in the top 50",
    ("alibi", "ks_statistic"): "scipy.stats.ks_2samp (mode 'asymp'), stored as float32",
    ("alibi", "ks_pvalue"): "asymptotic p-value as SciPy's, stored as float32 (p < 1e-45 "
    "becomes 0)",
    ("alibi", "chi2_pvalue"): "chi2_contingency: a 2 × k homogeneity test of reference "
    "counts against window counts (the reference's own sampling error counted), not a "
    "goodness-of-fit test against reference proportions; float32",
    ("frouros", "ks_statistic"): "scipy.stats.ks_2samp with method 'auto' (asymptotic here)",
    ("frouros", "ks_pvalue"): "scipy.stats.ks_2samp with method 'auto' (asymptotic here)",
    ("frouros", "psi numeric"): "10 equal-width bins over reference ∪ window; an empty bin "
    "gets sys.float_info.min (2.2e-308), so one empty bin adds up to ~700 to the sum",
    ("frouros", "psi categorical"): "10 equal-width bins over the category codes (not one "
    "per category); empty bins as for numeric",
    ("frouros", "js_distance numeric"): "natural-log base; densities from NumPy's 'auto' "
    "histograms integrated over 9 equal-width intervals of the merged range",
    ("frouros", "js_distance categorical"): "as for numeric, over the category codes",
    ("frouros", "chi2_pvalue"): "chi2_contingency homogeneity test of reference and window "
    "counts (see Alibi Detect)",
}


def _tool_key(label: str) -> str:
    low = label.lower()
    for key in ("evidently", "nannyml", "alibi", "frouros", "driftline"):
        if low.startswith(key):
            return key
    return low


def agreement(recs: list[dict[str, Any]], scipy_rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Per statistic (and feature kind): max and median |tool − SciPy| over every window
    and feature, or ``n/a`` when the tool does not produce it."""
    out: dict[str, Any] = {}
    pairs: dict[str, list[tuple[float, str, int, float, float]]] = {}
    present: dict[str, int] = {}
    for i in range(min(len(recs), len(scipy_rows))):
        mine = recs[i]["features"]
        ref = scipy_rows[i]["features"]
        for name, r in ref.items():
            kind = r.get("type", "numeric")
            stats = NUMERIC_STATS if kind == "numeric" else CATEGORICAL_STATS
            m = mine.get(name, {})
            for s in stats:
                label = f"{s} {kind}" if s in ("psi", "js_distance") else s
                if s not in m:
                    continue
                present[label] = present.get(label, 0) + 1
                a, b = m[s], r.get(s)
                if a is None or b is None:
                    continue
                diff = abs(float(a) - float(b))
                pairs.setdefault(label, []).append((diff, name, i, float(a), float(b)))
    labels = [f"{s} numeric" if s in ("psi", "js_distance") else s for s in NUMERIC_STATS]
    labels += [f"{s} categorical" if s in ("psi", "js_distance") else s for s in CATEGORICAL_STATS]
    for label in dict.fromkeys(labels):
        if label not in present:
            out[label] = {"status": "n/a"}
            continue
        ds = pairs.get(label, [])
        if not ds:
            out[label] = {"status": "null", "n": 0}
            continue
        worst = max(ds)
        tol = TOLERANCE.get(label.split()[0], 1e-9)
        out[label] = {
            "status": "agrees" if worst[0] <= tol else "differs",
            "n": len(ds),
            "max_abs_diff": worst[0],
            "median_abs_diff": statistics.median(d[0] for d in ds),
            "where": {"feature": worst[1], "window": worst[2], "tool": worst[3], "scipy": worst[4]},
        }
    return out


def explain(label: str, stat: str) -> str | None:
    key = _tool_key(label)
    return EXPLAIN.get((key, stat)) or EXPLAIN.get((key, stat.split()[0]))


# ----------------------------------------------------------------------------- detection


def _score(
    flags: dict[str, list[bool]], onset: int, drifted: list[str], window: int
) -> dict[str, Any]:
    """Delay (windows from the onset to the first flag, counting the onset window as 1) per
    drifted feature, and flags on undrifted feature-windows (every window of an undrifted
    feature, and the windows of a drifted one before its onset)."""
    delays: dict[str, int | None] = {}
    false_alarms = 0
    undrifted_windows = 0
    for name, fl in flags.items():
        if name in drifted:
            pre = fl[:onset]
            first = next((i for i in range(onset, len(fl)) if fl[i]), None)
            delays[name] = None if first is None else first - onset + 1
        else:
            pre = fl
        false_alarms += sum(pre)
        undrifted_windows += len(pre)
    found = [d for d in delays.values() if d is not None]
    return {
        "delays_windows": delays,
        "max_delay_windows": max(found) if len(found) == len(delays) and found else None,
        "max_delay_rows": max(found) * window if len(found) == len(delays) and found else None,
        "missed": [n for n, d in delays.items() if d is None],
        "false_alarms": false_alarms,
        "undrifted_feature_windows": undrifted_windows,
    }


def _flags(recs: list[dict[str, Any]], rule: Any) -> dict[str, list[bool]]:
    names = list(recs[0]["features"]) if recs else []
    return {n: [bool(rule(r["features"].get(n) or {})) for r in recs] for n in names}


def _p(entry: dict[str, Any]) -> float:
    p = entry.get("ks_pvalue", entry.get("chi2_pvalue"))
    return math.nan if p is None else float(p)


def detection(
    records: dict[str, list[dict[str, Any]]],
    scipy_rows: list[dict[str, Any]],
    onset: int,
    drifted: list[str],
    window: int,
) -> dict[str, Any]:
    """Each tool's own default decision (its ``drift`` flags), and two textbook rules on
    SciPy's statistics: KS / chi-square p < 0.05 per feature, and PSI >= 0.25."""
    out: dict[str, Any] = {}
    for label, recs in records.items():
        if label == "NumPy/SciPy" or not recs:
            continue
        name = f"{label}: its default decision"
        out[name] = _score(_flags(recs, lambda e: e.get("drift")), onset, drifted, window)
    if scipy_rows:
        out["KS / chi-square p < 0.05 (SciPy, uncorrected)"] = _score(
            _flags(scipy_rows, lambda e: _p(e) < 0.05), onset, drifted, window
        )
        out["PSI >= 0.25 (SciPy, 10 quantile bins)"] = _score(
            _flags(scipy_rows, lambda e: (e.get("psi") or 0) >= 0.25), onset, drifted, window
        )
    return out


def experiment(
    recs: list[dict[str, Any]], onset: int, drifted: list[str], window: int, n_features: int
) -> dict[str, Any]:
    """What decision rule on driftline's own per-window statistics (all equal to SciPy's)
    would meet the bar: delay and false alarms of candidate rules, for the report."""
    if not recs:
        return {}
    n_windows = len(recs)
    z_of = NormalDist().inv_cdf

    def z(e: dict[str, Any]) -> float:
        p = _p(e)
        if math.isnan(p):
            return 0.0
        return -z_of(min(max(p, 1e-300), 1 - 1e-16))  # Φ⁻¹(1 − p), without 1 − p rounding

    rules: dict[str, Any] = {
        "PSI >= 0.1 alone (the default before the shift test)": lambda e: (
            (e.get("psi") or 0) >= 0.1
        ),
        "KS / chi-square p < 0.05 / 25 (Bonferroni over features)": lambda e: (
            _p(e) < 0.05 / n_features
        ),
        f"KS / chi-square p < 0.05 / {n_features * n_windows} (Bonferroni over "
        "feature-windows)": lambda e: _p(e) < 0.05 / (n_features * n_windows),
    }
    out = {
        label: _score(_flags(recs, rule), onset, drifted, window) for label, rule in rules.items()
    }
    # Accumulating evidence over windows: a one-sided CUSUM of each feature's test z-score
    # (z = Φ⁻¹(1 − p)), S = max(0, S + z − k), alarm when S > h. Under no drift z ~ N(0, 1).
    names = list(recs[0]["features"])
    for k, h in ((1.0, 8.0), (2.0, 6.0)):
        flags: dict[str, list[bool]] = {}
        for n in names:
            s = 0.0
            fl = []
            for r in recs:
                s = max(0.0, s + z(r["features"].get(n) or {}) - k)
                fl.append(s > h)
            flags[n] = fl
        out[f"CUSUM of test z-scores, k={k:g}, h={h:g}"] = _score(flags, onset, drifted, window)
    return out
