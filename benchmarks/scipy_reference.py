"""Plain NumPy/SciPy reference implementation of driftline's per-window skew statistics.

This is the baseline driftline is benchmarked and cross-checked against: the same
statistics, written the way a careful data scientist would write them with
numpy/scipy — no Numba, no incremental tricks, no deliberate slowness either.

    python benchmarks/scipy_reference.py REFERENCE.parquet SERVING.parquet \
        [--window 10000] [--categorical cat_0,cat_1,...] [-o OUT.jsonl]

Conventions (must match driftline exactly):

Numeric feature (reference = all finite values of the training column, no sampling)
  * bin edges  = np.unique(np.quantile(ref, np.arange(1, B) / B)), B = 10; bins are
    open-ended: index = np.searchsorted(edges, v, side="right"), len(edges) + 1 bins;
    proportions = counts / number of finite values.
  * window: nulls and NaN are missing; +-inf are excluded from the statistics;
    missing_rate = (nulls + NaN) / window rows.
  * psi = sum((c - r) * ln(c / r)), c and r floored at eps = 1e-4, no renormalisation.
  * ks_statistic / ks_pvalue = scipy.stats.ks_2samp(ref, cur[, method="asymp"]).
  * js_distance = scipy.spatial.distance.jensenshannon(r, c, base=2) on raw proportions.
  * wasserstein = scipy.stats.wasserstein_distance(ref, cur) / np.std(ref) (1.0 if 0).
Categorical feature (values as strings)
  * buckets = top-50 reference categories by frequency (ties by string order) plus
    "__other__" (always present); proportions over non-missing values.
  * window: nulls are missing; values outside the top-50 go to "__other__";
    unseen_rate = share of non-missing window values never seen in the reference.
  * psi as above; js_distance as above; linf = max |c - r| over all buckets;
    chi2_pvalue = scipy.stats.chisquare(counts, n * r2).pvalue,
    r2 = max(r, 1e-4) / sum(max(r, 1e-4)).
A window with no usable values has null statistics (missing_rate is still reported).
Only closed (full) windows are emitted unless --emit-partial is given.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any, TextIO

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from scipy import stats
from scipy.spatial.distance import jensenshannon

BINS = 10
EPS = 1e-4
TOP_K = 50
OTHER = "__other__"
# scipy's ks_2samp(method="auto") uses the exact method when max(n1, n2) <= 10,000
# (scipy.stats._stats_py.MAX_AUTO_N); otherwise "auto" is "asymp" and one call suffices.
KS_EXACT_MAX_N = 10_000


# ----------------------------------------------------------------------------- helpers


def as_float(col: pa.Array | pa.ChunkedArray) -> np.ndarray:
    """Column -> float64 numpy array with nulls as NaN."""
    return np.asarray(col.cast(pa.float64()).to_numpy(zero_copy_only=False), dtype=np.float64)


def psi(r: np.ndarray, c: np.ndarray) -> float:
    r = np.maximum(r, EPS)
    c = np.maximum(c, EPS)
    return float(np.sum((c - r) * np.log(c / r)))


def clean(x: Any) -> Any:
    """Python float for JSON; NaN/inf -> null."""
    if x is None:
        return None
    x = float(x)
    return x if math.isfinite(x) else None


# ----------------------------------------------------------------------------- reference


class NumericRef:
    def __init__(self, values: np.ndarray) -> None:
        ref = values[np.isfinite(values)]
        self.ref = ref
        self.edges = np.unique(np.quantile(ref, np.arange(1, BINS) / BINS))
        counts = np.bincount(
            np.searchsorted(self.edges, ref, side="right"), minlength=len(self.edges) + 1
        )
        self.props = counts / ref.size
        std = float(np.std(ref))
        self.scale = std if std != 0 else 1.0

    def window_stats(self, x: np.ndarray) -> dict[str, Any]:
        n_rows = x.size
        missing = int(np.isnan(x).sum())
        cur = x[np.isfinite(x)]
        out: dict[str, Any] = {"type": "numeric"}
        if cur.size == 0:
            out.update(
                psi=None, ks_statistic=None, ks_pvalue=None, js_distance=None, wasserstein=None
            )
        else:
            counts = np.bincount(
                np.searchsorted(self.edges, cur, side="right"), minlength=len(self.edges) + 1
            )
            c = counts / cur.size
            ks = stats.ks_2samp(self.ref, cur, method="asymp")
            ks_stat = ks.statistic
            if max(self.ref.size, cur.size) <= KS_EXACT_MAX_N:
                # method="auto" picks the exact method here, which snaps the statistic to
                # the 1/lcm(n1, n2) lattice; the convention is the default-method statistic.
                ks_stat = stats.ks_2samp(self.ref, cur).statistic
            out.update(
                psi=psi(self.props, c),
                ks_statistic=clean(ks_stat),
                ks_pvalue=clean(ks.pvalue),
                js_distance=clean(jensenshannon(self.props, c, base=2)),
                wasserstein=clean(stats.wasserstein_distance(self.ref, cur) / self.scale),
            )
        out["missing_rate"] = missing / n_rows if n_rows else None
        return out


class CategoricalRef:
    def __init__(self, col: pa.ChunkedArray | pa.Array) -> None:
        values = col.cast(pa.string()).drop_null().to_numpy(zero_copy_only=False)
        cats, counts = np.unique(values, return_counts=True)
        ranked = sorted(
            zip(cats.tolist(), counts.tolist(), strict=True), key=lambda t: (-t[1], t[0])
        )
        top = ranked[:TOP_K]
        self.buckets = [cat for cat, _ in top] + [OTHER]
        self.index = {cat: i for i, cat in enumerate(self.buckets[:-1])}
        self.other = len(self.buckets) - 1
        self.seen = set(cats.tolist())
        ref_counts = np.zeros(len(self.buckets))
        for cat, n in top:
            ref_counts[self.index[cat]] = n
        ref_counts[self.other] = sum(n for _, n in ranked[TOP_K:])
        self.props = ref_counts / values.size
        floored = np.maximum(self.props, EPS)
        self.props_chi2 = floored / floored.sum()

    def window_stats(self, col: pa.Array | pa.ChunkedArray) -> dict[str, Any]:
        n_rows = len(col)
        missing = col.null_count
        values = col.cast(pa.string()).drop_null().to_numpy(zero_copy_only=False)
        n = values.size
        out: dict[str, Any] = {"type": "categorical"}
        if n == 0:
            out.update(psi=None, linf=None, chi2_pvalue=None, js_distance=None, unseen_rate=None)
        else:
            cats, cnts = np.unique(values, return_counts=True)
            counts = np.zeros(len(self.buckets))
            unseen = 0
            for cat, k in zip(cats.tolist(), cnts.tolist(), strict=True):
                counts[self.index.get(cat, self.other)] += k
                if cat not in self.seen:
                    unseen += k
            c = counts / n
            out.update(
                psi=psi(self.props, c),
                linf=float(np.max(np.abs(c - self.props))),
                chi2_pvalue=clean(stats.chisquare(f_obs=counts, f_exp=n * self.props_chi2).pvalue),
                js_distance=clean(jensenshannon(self.props, c, base=2)),
                unseen_rate=unseen / n,
            )
        out["missing_rate"] = missing / n_rows if n_rows else None
        return out


def build_reference(path: Path, categorical: set[str]) -> dict[str, NumericRef | CategoricalRef]:
    table = pq.read_table(path)
    refs: dict[str, NumericRef | CategoricalRef] = {}
    for name in table.column_names:
        col = table.column(name)
        if name in categorical or not (
            pa.types.is_integer(col.type) or pa.types.is_floating(col.type)
        ):
            refs[name] = CategoricalRef(col)
        else:
            refs[name] = NumericRef(as_float(col))
    return refs


# ----------------------------------------------------------------------------- windows


def windows(path: Path, size: int, columns: list[str], emit_partial: bool) -> Iterator[pa.Table]:
    """Yield pyarrow Tables of exactly `size` rows, streaming the Parquet file."""
    pf = pq.ParquetFile(path)
    pending: list[pa.RecordBatch] = []
    pending_rows = 0
    for batch in pf.iter_batches(batch_size=size, columns=columns):
        pending.append(batch)
        pending_rows += batch.num_rows
        while pending_rows >= size:
            table = pa.Table.from_batches(pending)
            yield table.slice(0, size)
            rest = table.slice(size)
            pending = rest.to_batches()
            pending_rows = rest.num_rows
    if emit_partial and pending_rows:
        yield pa.Table.from_batches(pending)


def run(
    reference: Path,
    serving: Path,
    window: int,
    categorical: set[str],
    out: TextIO,
    emit_partial: bool = False,
) -> int:
    refs = build_reference(reference, categorical)
    names = list(refs)
    n_windows = 0
    for index, table in enumerate(windows(serving, window, names, emit_partial)):
        features: dict[str, Any] = {}
        for name in names:
            ref = refs[name]
            col = table.column(name)
            if isinstance(ref, NumericRef):
                features[name] = ref.window_stats(as_float(col))
            else:
                features[name] = ref.window_stats(col)
        record = {
            "model": "scipy_reference",
            "version": reference.stem,
            "kind": "skew",
            "window": {"index": index, "start": None, "end": None, "count": table.num_rows},
            "features": features,
        }
        out.write(json.dumps(record) + "\n")
        n_windows += 1
    return n_windows


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="NumPy/SciPy reference skew statistics per window")
    ap.add_argument("reference", type=Path)
    ap.add_argument("serving", type=Path)
    ap.add_argument("--window", type=int, default=10_000)
    ap.add_argument(
        "--categorical",
        default="",
        help="comma-separated categorical columns (non-numeric columns always are)",
    )
    ap.add_argument("-o", "--output", type=Path, default=None, help="JSONL output (default stdout)")
    ap.add_argument(
        "--emit-partial", action="store_true", help="also emit a trailing partial window"
    )
    a = ap.parse_args(argv)
    categorical = {c for c in a.categorical.split(",") if c}
    if a.output is None:
        n = run(a.reference, a.serving, a.window, categorical, sys.stdout, a.emit_partial)
    else:
        with open(a.output, "w") as fh:
            n = run(a.reference, a.serving, a.window, categorical, fh, a.emit_partial)
    print(f"scipy_reference: {n} windows", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
