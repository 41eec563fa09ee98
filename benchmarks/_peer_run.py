"""One tool of the peer comparison (``benchmarks/peers.py``), in a process of its own.

    python benchmarks/_peer_run.py prepare WORKLOAD.json DATA_DIR      # driftline's .venv
    python benchmarks/_peer_run.py run TOOL DATA_DIR --window W -o OUT.jsonl

``prepare`` turns the workload's Parquet files into plain ``.npy`` arrays (numeric columns
as float64 with NaN for nulls, categorical columns as int32 level codes with -1 for nulls,
the level names in ``meta.json``), so that every tool reads the same data the same way and
no peer's virtualenv needs pyarrow. ``run`` loads them, fits the tool on the reference and
computes every window, writing one JSON line per window:
``{"window": i, "features": {name: {statistic: value, ..., "drift": bool}}}``, then one
line ``{"meta": {...}}`` with the tool's versions and its own load / fit / compute seconds.

Each tool runs in the virtualenv that has it (``make bench-peers``); this module imports
only NumPy at the top, and each tool's library inside its own function, so that it runs
under any of them. Statistic names follow driftline's output contract; a tool that does not
produce a statistic leaves it out (``peers.py`` marks it "n/a").
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

HERE = Path(__file__).resolve().parent
ALPHA = 0.05  # the level every p-value decision below uses (each tool's documented default)


# ----------------------------------------------------------------------------- data


class Data:
    """The workload as arrays: ``ref_num``/``srv_num`` (rows × numeric), ``ref_cat``/
    ``srv_cat`` (rows × categorical codes), names and level names."""

    def __init__(self, directory: Path) -> None:
        meta = json.loads((directory / "meta.json").read_text())
        self.numeric: list[str] = meta["numeric"]
        self.categorical: list[str] = meta["categorical"]
        self.levels: dict[str, list[str]] = meta["levels"]
        self.ref_num = np.load(directory / "ref_num.npy")
        self.srv_num = np.load(directory / "srv_num.npy")
        self.ref_cat = np.load(directory / "ref_cat.npy")
        self.srv_cat = np.load(directory / "srv_cat.npy")

    def windows(self, size: int) -> Iterator[tuple[int, slice]]:
        for i in range(self.srv_num.shape[0] // size):
            yield i, slice(i * size, (i + 1) * size)

    def strings(self, j: int, codes: np.ndarray) -> np.ndarray:
        """Categorical column ``j`` as an object array of strings, None for nulls."""
        table = np.array([*self.levels[self.categorical[j]], None], dtype=object)
        return table[np.where(codes < 0, len(table) - 1, codes)]


def prepare(workload_json: Path, out: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    wl = json.loads(workload_json.read_text())
    out.mkdir(parents=True, exist_ok=True)
    levels: dict[str, list[str]] = {}
    for tag, path in (("ref", wl["reference"]), ("srv", wl["serving"])):
        table = pq.read_table(path)
        num = np.column_stack(
            [
                table.column(c).cast(pa.float64()).to_numpy().astype(np.float64)
                for c in wl["numeric"]
            ]
        )
        cats = []
        for c in wl["categorical"]:
            col = table.column(c).combine_chunks().dictionary_encode()
            names = col.dictionary.to_pylist()
            known = levels.setdefault(c, sorted(names))
            for name in names:
                if name not in known:
                    known.append(name)
            lut = np.array([known.index(n) for n in names], dtype=np.int32)
            idx = col.indices.fill_null(-1).to_numpy()
            cats.append(np.where(idx < 0, -1, lut[np.maximum(idx, 0)]).astype(np.int32))
        np.save(out / f"{tag}_num.npy", np.ascontiguousarray(num))
        np.save(out / f"{tag}_cat.npy", np.ascontiguousarray(np.column_stack(cats)))
    meta = {"numeric": wl["numeric"], "categorical": wl["categorical"], "levels": levels}
    (out / "meta.json").write_text(json.dumps(meta))


def _f(x: Any) -> float | None:
    x = float(x)
    return x if math.isfinite(x) else None


def _versions(*packages: str) -> dict[str, str | None]:
    import importlib.metadata
    import platform

    out: dict[str, str | None] = {"python": platform.python_version()}
    for p in ("numpy", "scipy", "pandas", *packages):
        try:
            out[p] = importlib.metadata.version(p)
        except importlib.metadata.PackageNotFoundError:
            out[p] = None
    return out


# A tool is a function (data, window, mode) -> (versions, fit(), window_stats(slice)).
Tool = Callable[
    [Data, int, str],
    tuple[dict[str, str | None], Callable[[], None], Callable[[slice], dict[str, Any]]],
]


# ----------------------------------------------------------------------------- driftline


def tool_driftline(data: Data, window: int, mode: str) -> Any:
    """driftline's public kernels (``driftline.detectors``), one call per column and window,
    and its default decision policy (PSI >= 0.1 on windows of 1,000 rows or more, and the
    shift test on the window alone and with the window before, which each call is given)."""
    from driftline.detectors import (
        DriftPolicy,
        categorical_reference,
        categorical_statistics,
        numeric_reference,
    )
    from driftline.detectors.statistics import numeric_statistics_and_sorted

    refs: list[Any] = []
    crefs: list[Any] = []
    prev_counts: dict[str, Any] = {}
    prev_sorted: dict[str, Any] = {}
    luts: list[np.ndarray] = []
    policy = DriftPolicy()

    def fit() -> None:
        for j in range(len(data.numeric)):
            refs.append(numeric_reference(data.ref_num[:, j]))
        for j, name in enumerate(data.categorical):
            cref = categorical_reference(data.strings(j, data.ref_cat[:, j]).tolist())
            crefs.append(cref)
            # level code -> driftline bucket code (what the engine does on Arrow columns)
            luts.append(np.array([*cref.encode(list(data.levels[name])), -1], dtype=np.int64))

    def stats(sl: slice) -> dict[str, Any]:
        window_stats: dict[str, Any] = {}
        for j, name in enumerate(data.numeric):
            # the window before's sorted values, for the two-window shift test
            window_stats[name], prev_sorted[name] = numeric_statistics_and_sorted(
                refs[j], data.srv_num[sl, j], before=prev_sorted.get(name)
            )
        for j, name in enumerate(data.categorical):
            codes = data.srv_cat[sl, j]
            lut = luts[j]
            window_stats[name] = categorical_statistics(
                crefs[j], lut[codes], before_counts=prev_counts.get(name)
            )
            prev_counts[name] = window_stats[name].bucket_counts
        decision = policy.decide(window_stats)
        out: dict[str, Any] = {}
        for name, s in window_stats.items():
            d = decision.features[name]
            if name in data.numeric:
                out[name] = {
                    "psi": _f(s.psi),
                    "ks_statistic": _f(s.ks_statistic),
                    "ks_pvalue": _f(s.ks_pvalue),
                    "js_distance": _f(s.js_distance),
                    "wasserstein": _f(s.wasserstein),
                    "drift": d.drift,
                }
            else:
                out[name] = {
                    "psi": _f(s.psi),
                    "chi2_statistic": _f(s.chi2_statistic),
                    "chi2_pvalue": _f(s.chi2_pvalue),
                    "js_distance": _f(s.js_distance),
                    "linf": _f(s.linf),
                    "drift": d.drift,
                }
        return out

    return _versions("numba", "driftline"), fit, stats


# ----------------------------------------------------------------------------- Evidently


def tool_evidently(data: Data, window: int, mode: str) -> Any:
    """Evidently's ``Report`` of per-column ``ValueDrift`` metrics, one report per window.
    mode ``psi_ks``: KS (numeric; p-value only) and PSI, chi-square (categorical) and PSI;
    mode ``defaults``: each column's automatic method and threshold (for more than 1,000
    reference rows: normed Wasserstein for numeric columns with more than 5 values,
    Jensen-Shannon otherwise, both at 0.1)."""
    import pandas as pd
    from evidently import DataDefinition, Dataset, Report
    from evidently.metrics import ValueDrift

    definition = DataDefinition(
        numerical_columns=list(data.numeric), categorical_columns=list(data.categorical)
    )
    metrics: list[tuple[str, str, Any]] = []  # (column, statistic, metric)
    if mode == "defaults":
        for c in [*data.numeric, *data.categorical]:
            metrics.append((c, "default", ValueDrift(column=c)))
    else:
        for c in data.numeric:
            metrics.append((c, "ks_pvalue", ValueDrift(column=c, method="ks")))
            metrics.append((c, "psi", ValueDrift(column=c, method="psi")))
        for c in data.categorical:
            metrics.append((c, "chi2_pvalue", ValueDrift(column=c, method="chisquare")))
            metrics.append((c, "psi", ValueDrift(column=c, method="psi")))
    state: dict[str, Any] = {}

    def frame(num: np.ndarray, cat: np.ndarray) -> Any:
        cols: dict[str, Any] = {c: num[:, j] for j, c in enumerate(data.numeric)}
        for j, c in enumerate(data.categorical):
            cols[c] = data.strings(j, cat[:, j])
        return pd.DataFrame(cols)

    def fit() -> None:
        state["ref"] = Dataset.from_pandas(
            frame(data.ref_num, data.ref_cat), data_definition=definition
        )

    def stats(sl: slice) -> dict[str, Any]:
        cur = Dataset.from_pandas(
            frame(data.srv_num[sl], data.srv_cat[sl]), data_definition=definition
        )
        snapshot = Report([m for _, _, m in metrics]).run(
            current_data=cur, reference_data=state["ref"]
        )
        values = [m["value"] for m in snapshot.dict()["metrics"]]
        out: dict[str, Any] = {}
        for (col, stat, _), value in zip(metrics, values, strict=True):
            entry = out.setdefault(col, {"drift": False})
            v = _f(value)
            if stat == "default":
                entry["default_score"] = v
                entry["drift"] = v is not None and v >= 0.1
            else:
                entry[stat] = v
                if stat.endswith("pvalue"):
                    entry["drift"] |= v is not None and v < ALPHA
                else:  # PSI: Evidently's default threshold 0.1
                    entry["drift"] |= v is not None and v >= 0.1
        return out

    return _versions("evidently"), fit, stats


# ----------------------------------------------------------------------------- NannyML


def tool_nannyml(data: Data, window: int, mode: str) -> Any:
    """NannyML's ``UnivariateDriftCalculator`` with Kolmogorov-Smirnov and Jensen-Shannon
    (numeric) and chi2 and Jensen-Shannon (categorical), chunks of ``window`` rows. mode
    ``default``: KS ``calculation_method="auto"``, which for a reference of 10,000 rows or
    more is NannyML's estimate on 10,000 equal-width bins; mode ``exact``: scipy's ks_2samp.
    Alerts: NannyML's default thresholds (mean + 3 std of the reference chunks; chi2 p <
    0.05)."""
    import logging

    import nannyml as nml
    import pandas as pd

    logging.getLogger("nannyml").setLevel(logging.ERROR)
    params = None
    if mode == "exact":
        # NannyML 0.13 reads calculation_method from the top level of the dict, but only
        # when the method's own key is in it too (KolmogorovSmirnovStatistic.__init__).
        params = {"kolmogorov_smirnov": {}, "calculation_method": "exact"}
    calc = nml.UnivariateDriftCalculator(
        column_names=[*data.numeric, *data.categorical],
        treat_as_categorical=list(data.categorical),
        continuous_methods=["kolmogorov_smirnov", "jensen_shannon"],
        categorical_methods=["chi2", "jensen_shannon"],
        chunk_size=window,
        computation_params=params,
    )

    def frame(num: np.ndarray, cat: np.ndarray) -> Any:
        cols: dict[str, Any] = {c: num[:, j] for j, c in enumerate(data.numeric)}
        for j, c in enumerate(data.categorical):
            cols[c] = data.strings(j, cat[:, j])
        return pd.DataFrame(cols)

    state: dict[str, Any] = {}

    def fit() -> None:
        calc.fit(frame(data.ref_num, data.ref_cat))

    def stats(sl: slice) -> dict[str, Any]:
        # One calculate() per window, as a monitor sees them; the chunker makes one chunk.
        res = calc.calculate(frame(data.srv_num[sl], data.srv_cat[sl])).filter(period="analysis")
        df = res.to_df()
        row = df.iloc[0]
        out: dict[str, Any] = {}
        for c in [*data.numeric, *data.categorical]:
            entry: dict[str, Any] = {"drift": False}
            methods = (
                (("kolmogorov_smirnov", "ks_statistic"), ("jensen_shannon", "js_distance"))
                if c in data.numeric
                else (("chi2", "chi2_statistic"), ("jensen_shannon", "js_distance"))
            )
            for method, stat in methods:
                entry[stat] = _f(row[(c, method, "value")])
                entry["drift"] |= bool(row[(c, method, "alert")])
            out[c] = entry
        state["n"] = state.get("n", 0) + 1
        return out

    return _versions("nannyml"), fit, stats


# ----------------------------------------------------------------------------- Alibi Detect


def tool_alibi(data: Data, window: int, mode: str) -> Any:
    """Alibi Detect's ``KSDrift`` (numeric) and ``ChiSquareDrift`` (categorical) with their
    defaults (p_val 0.05, Bonferroni correction). Both need complete rows: the columns with
    nulls (num_15, cat_4) get a detector of their own fed their non-null values."""
    import logging

    from alibi_detect.cd import ChiSquareDrift, KSDrift

    logging.getLogger("alibi_detect").setLevel(logging.ERROR)
    groups: list[tuple[str, list[int], Any]] = []
    n_features = len(data.numeric) + len(data.categorical)

    def fit() -> None:
        for kind, ref in (("num", data.ref_num), ("cat", data.ref_cat)):
            has_null = np.isnan(ref).any(0) if kind == "num" else (ref < 0).any(0)
            complete = [j for j in range(ref.shape[1]) if not has_null[j]]
            sets = [complete] + [[j] for j in range(ref.shape[1]) if has_null[j]]
            for cols in sets:
                x = ref[:, cols]
                keep = ~np.isnan(x).any(1) if kind == "num" else (x >= 0).all(1)
                x = x[keep]
                if kind == "num":
                    det = KSDrift(x, p_val=ALPHA)
                else:
                    # categories_per_feature=None: every feature is categorical, its
                    # categories taken from the reference
                    det = ChiSquareDrift(x.astype(np.int64), p_val=ALPHA)
                groups.append((kind, cols, det))

    def stats(sl: slice) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for kind, cols, det in groups:
            x = (data.srv_num if kind == "num" else data.srv_cat)[sl][:, cols]
            keep = ~np.isnan(x).any(1) if kind == "num" else (x >= 0).all(1)
            x = x[keep]
            pred = det.predict(x if kind == "num" else x.astype(np.int64))["data"]
            names = data.numeric if kind == "num" else data.categorical
            for k, j in enumerate(cols):
                p = _f(pred["p_val"][k])
                stat = "ks" if kind == "num" else "chi2"
                out[names[j]] = {
                    f"{stat}_statistic": _f(pred["distance"][k]),
                    f"{stat}_pvalue": p,
                    # Bonferroni over all 25 features, as one KSDrift over them would do
                    "drift": p is not None and p < ALPHA / n_features,
                }
        return out

    return _versions("alibi-detect", "torch"), fit, stats


# ----------------------------------------------------------------------------- frouros


def tool_frouros(data: Data, window: int, mode: str) -> Any:
    """frouros's batch detectors with their defaults, one per column: ``KSTest`` and ``PSI``
    and ``JS`` (10 bins) for numeric columns, ``ChiSquareTest``, ``PSI`` and ``JS`` on the
    category codes for categorical ones (nulls dropped). Drift: KS / chi-square p < 0.05."""
    from frouros.detectors.data_drift import JS, PSI, ChiSquareTest, KSTest

    dets: dict[str, list[tuple[str, Any]]] = {}

    def fit() -> None:
        for j, c in enumerate(data.numeric):
            x = data.ref_num[:, j]
            x = x[np.isfinite(x)]
            dets[c] = [("ks", KSTest()), ("psi", PSI()), ("js", JS())]
            for _, d in dets[c]:
                d.fit(X=x)
        for j, c in enumerate(data.categorical):
            x = data.ref_cat[:, j]
            x = x[x >= 0]
            dets[c] = [("chi2", ChiSquareTest()), ("psi", PSI()), ("js", JS())]
            for _, d in dets[c]:
                d.fit(X=x)

    def stats(sl: slice) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for j, c in enumerate(data.numeric):
            x = data.srv_num[sl, j]
            out[c] = _frouros_column(dets[c], x[np.isfinite(x)])
        for j, c in enumerate(data.categorical):
            x = data.srv_cat[sl, j]
            out[c] = _frouros_column(dets[c], x[x >= 0])
        return out

    return _versions("frouros"), fit, stats


def _frouros_column(dets: list[tuple[str, Any]], x: np.ndarray) -> dict[str, Any]:
    entry: dict[str, Any] = {"drift": False}
    for name, d in dets:
        result = d.compare(X=x)[0]
        if name in ("ks", "chi2"):
            entry[f"{name}_statistic"] = _f(result.statistic)
            entry[f"{name}_pvalue"] = _f(result.p_value)
            entry["drift"] |= bool(result.p_value < ALPHA)
        elif name == "psi":
            entry["psi"] = _f(result.distance)
        else:
            entry["js_distance"] = _f(result.distance)
    return entry


# ----------------------------------------------------------------------------- main

TOOLS: dict[str, Tool] = {
    "driftline": tool_driftline,
    "evidently": tool_evidently,
    "nannyml": tool_nannyml,
    "alibi": tool_alibi,
    "frouros": tool_frouros,
}


def run(tool: str, directory: Path, window: int, mode: str, out: Path) -> None:
    t0 = time.perf_counter()
    data = Data(directory)
    t_load = time.perf_counter() - t0
    versions, fit, stats = TOOLS[tool](data, window, mode)
    t1 = time.perf_counter()
    fit()
    t_fit = time.perf_counter() - t1
    t2 = time.perf_counter()
    n = 0
    with open(out, "w") as fh:
        for i, sl in data.windows(window):
            fh.write(json.dumps({"window": i, "features": stats(sl)}) + "\n")
            n += 1
            if n % 10 == 0:
                print(f"  {tool}: {n} windows", file=sys.stderr, flush=True)
        t_compute = time.perf_counter() - t2
        meta = {
            "tool": tool,
            "mode": mode,
            "windows": n,
            "versions": versions,
            "load_s": t_load,
            "fit_s": t_fit,
            "compute_s": t_compute,
            "import_and_setup_s": t1 - t0 - t_load,
        }
        fh.write(json.dumps({"meta": meta}) + "\n")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="command", required=True)
    p = sub.add_parser("prepare")
    p.add_argument("workload", type=Path)
    p.add_argument("directory", type=Path)
    r = sub.add_parser("run")
    r.add_argument("tool", choices=sorted(TOOLS))
    r.add_argument("directory", type=Path)
    r.add_argument("--window", type=int, default=10_000)
    r.add_argument("--mode", default="default")
    r.add_argument("-o", "--output", type=Path, required=True)
    a = ap.parse_args(argv)
    if a.command == "prepare":
        prepare(a.workload, a.directory)
    else:
        warnings.simplefilter("ignore")
        run(a.tool, a.directory, a.window, a.mode, a.output)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
