"""Seeded synthetic workload for the replay benchmark.

Writes two Parquet files into a cache directory (default ``<repo>/.bench/``):

* ``reference.parquet`` — the training baseline, ``ref_rows`` rows (default 100,000);
* ``serving.parquet``   — the serving stream, ``rows`` rows (default 1,000,000), with
  drift injected from row ``drift_start`` on (default: half-way).

Columns: 20 numeric features ``num_00``..``num_19`` and 5 categorical string features
``cat_0``..``cat_4``.

Numeric features (reference distribution; serving is the same before ``drift_start``):

=========  ===============================================  ===========================
column     distribution                                      drift from ``drift_start``
=========  ===============================================  ===========================
num_00-03  normal, assorted means / standard deviations      mean + 0.5 reference std
num_04     normal(10, 2)                                     scale x1.5 about the mean
num_05-07  lognormal                                         none
num_08-10  exponential                                       none
num_11-13  integer-valued with heavy ties (Poisson, dice,    none
           binomial)
num_14     integer-valued, few distinct values (0..4)        none
num_15     normal, 1% nulls                                  none
num_16-19  normal / uniform / gamma / Student-t              none
=========  ===============================================  ===========================

Categorical features (string values, Zipf-like skewed frequencies):

=====  ======  ==========================================================================
col    levels  drift from ``drift_start``
=====  ======  ==========================================================================
cat_0  8       mix changes visibly (frequencies reversed)
cat_1  12      a new category ``c1_NEW`` never seen in the reference appears at 5%
cat_2  5       none
cat_3  40      none
cat_4  20      none (0.5% nulls throughout, to exercise categorical missing_rate)
=====  ======  ==========================================================================

With ``--drift ramp`` (the peer comparison, ``benchmarks/peers.py``) the drift is gradual
instead: from ``drift_start`` the means of num_00..num_04 move linearly up to +0.5
reference standard deviations over ``rows // 4`` rows (250,000 by default) and stay there,
and cat_0 and cat_1 draw a share of their values, ramping linearly to 30 % over the same
rows, from the reversed (Zipf) frequencies; no new category appears and num_04 keeps its
scale. Every other column is undrifted, as above.

Generation is chunked (``CHUNK_ROWS`` rows per Parquet row group), so memory stays at a
few tens of MB regardless of ``rows``. The files are regenerated only when missing or
when the parameters recorded in ``workload.json`` differ.

Usage::

    python benchmarks/workload.py [--rows N] [--ref-rows N] [--drift-start N] [--seed S]
                                  [--drift step|ramp] [--cache DIR] [--force]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

GENERATOR_VERSION = 1
REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_CACHE = REPO_ROOT / ".bench"
CHUNK_ROWS = 100_000

NUMERIC = [f"num_{i:02d}" for i in range(20)]
CATEGORICAL = [f"cat_{i}" for i in range(5)]

# (name, n_levels, zipf exponent)
_CAT_SPEC = [
    ("cat_0", 8, 1.1),
    ("cat_1", 12, 1.0),
    ("cat_2", 5, 0.8),
    ("cat_3", 40, 1.2),
    ("cat_4", 20, 0.9),
]
CAT_NULL_RATE = {"cat_4": 0.005}
NUM_NULL_RATE = {"num_15": 0.01}
NEW_CATEGORY = "c1_NEW"
NEW_CATEGORY_RATE = 0.05
DRIFTS = ("step", "ramp")
RAMP_SHIFT_SD = 0.5  # ramp: final mean shift of num_00..num_04, in reference std
RAMP_MIX = 0.3  # ramp: final share of cat_0 / cat_1 values drawn from reversed frequencies
RAMP_CATEGORICAL = ("cat_0", "cat_1")

# Normal features num_00..num_04: (mean, std)
_NORMAL = {
    "num_00": (0.0, 1.0),
    "num_01": (5.0, 2.0),
    "num_02": (-3.0, 0.5),
    "num_03": (100.0, 15.0),
    "num_04": (10.0, 2.0),
}


def _levels(name: str, n: int) -> list[str]:
    return [f"c{name[-1]}_{chr(ord('a') + i % 26)}{i // 26 or ''}" for i in range(n)]


def _zipf_probs(n: int, s: float) -> np.ndarray:
    w: np.ndarray = 1.0 / np.arange(1, n + 1) ** s
    return np.asarray(w / w.sum())


CAT_LEVELS = {name: _levels(name, n) for name, n, _ in _CAT_SPEC}
CAT_PROBS = {name: _zipf_probs(n, s) for name, n, s in _CAT_SPEC}


def schema() -> pa.Schema:
    return pa.schema([(c, pa.float64()) for c in NUMERIC] + [(c, pa.string()) for c in CATEGORICAL])


def _numeric_chunk(
    rng: np.random.Generator, n: int, drifted: np.ndarray, ramp: np.ndarray | None = None
) -> dict[str, Any]:
    """Generate numeric columns for ``n`` rows; ``drifted`` marks rows past drift_start;
    ``ramp`` (``--drift ramp``) is each row's progress through the ramp, 0..1."""
    cols: dict[str, Any] = {}
    for name, (mu, sd) in _NORMAL.items():
        x = rng.normal(mu, sd, n)
        if ramp is not None:
            x = x + RAMP_SHIFT_SD * sd * ramp
        elif name == "num_04":
            x = np.where(drifted, mu + (x - mu) * 1.5, x)
        else:
            x = np.where(drifted, x + 0.5 * sd, x)
        cols[name] = x
    cols["num_05"] = rng.lognormal(0.0, 1.0, n)
    cols["num_06"] = rng.lognormal(3.0, 0.5, n)
    cols["num_07"] = rng.lognormal(-1.0, 1.5, n)
    cols["num_08"] = rng.exponential(1.0, n)
    cols["num_09"] = rng.exponential(25.0, n)
    cols["num_10"] = rng.exponential(0.1, n)
    cols["num_11"] = rng.poisson(3.0, n).astype(np.float64)
    cols["num_12"] = rng.integers(1, 7, n).astype(np.float64)  # dice: 6 values
    cols["num_13"] = rng.binomial(50, 0.3, n).astype(np.float64)
    cols["num_14"] = rng.choice(5, n, p=[0.5, 0.2, 0.15, 0.1, 0.05]).astype(np.float64)
    cols["num_15"] = rng.normal(50.0, 10.0, n)
    cols["num_16"] = rng.normal(0.0, 1e-3, n)
    cols["num_17"] = rng.uniform(-1.0, 1.0, n)
    cols["num_18"] = rng.gamma(2.0, 2.0, n)
    cols["num_19"] = rng.standard_t(5, n)
    out: dict[str, Any] = {}
    for name in NUMERIC:
        rate = NUM_NULL_RATE.get(name)
        if rate:
            mask = rng.random(n) < rate
            out[name] = pa.array(cols[name], type=pa.float64(), mask=mask)
        else:
            out[name] = pa.array(cols[name], type=pa.float64())
    return out


def _categorical_chunk(
    rng: np.random.Generator, n: int, drifted: np.ndarray, ramp: np.ndarray | None = None
) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name in CATEGORICAL:
        levels = CAT_LEVELS[name]
        probs = CAT_PROBS[name]
        idx = rng.choice(len(levels), n, p=probs)
        dictionary = list(levels)
        if ramp is not None:
            if name in RAMP_CATEGORICAL:
                idx_drift = rng.choice(len(levels), n, p=probs[::-1])
                idx = np.where(rng.random(n) < RAMP_MIX * ramp, idx_drift, idx)
        elif name == "cat_0":
            # Visible mix change: frequencies reversed after drift_start.
            idx_drift = rng.choice(len(levels), n, p=probs[::-1])
            idx = np.where(drifted, idx_drift, idx)
        elif name == "cat_1":
            dictionary.append(NEW_CATEGORY)
            new = drifted & (rng.random(n) < NEW_CATEGORY_RATE)
            idx = np.where(new, len(levels), idx)
        rate = CAT_NULL_RATE.get(name)
        mask = rng.random(n) < rate if rate else None
        indices = pa.array(idx.astype(np.int32), type=pa.int32(), mask=mask)
        arr = pa.DictionaryArray.from_arrays(indices, pa.array(dictionary, type=pa.string()))
        out[name] = arr.cast(pa.string())
    return out


def _write(
    path: Path,
    rng: np.random.Generator,
    rows: int,
    drift_start: int | None,
    progress: bool,
    ramp_rows: int | None = None,
) -> None:
    tmp = path.with_suffix(".parquet.tmp")
    sch = schema()
    with pq.ParquetWriter(tmp, sch, compression="snappy") as writer:
        for lo in range(0, rows, CHUNK_ROWS):
            n = min(CHUNK_ROWS, rows - lo)
            pos = np.arange(lo, lo + n)
            drifted = pos >= drift_start if drift_start is not None else np.zeros(n, dtype=bool)
            ramp = None
            if ramp_rows is not None:
                start = drift_start if drift_start is not None else rows
                ramp = np.clip((pos - start + 1) / ramp_rows, 0.0, 1.0)
            cols = _numeric_chunk(rng, n, drifted, ramp)
            cols.update(_categorical_chunk(rng, n, drifted, ramp))
            writer.write_table(pa.table(cols, schema=sch))
            if progress:
                print(f"  {path.name}: {lo + n:,}/{rows:,} rows", file=sys.stderr, flush=True)
    os.replace(tmp, path)


def params_dict(
    rows: int, ref_rows: int, drift_start: int, seed: int, drift: str = "step"
) -> dict[str, Any]:
    params: dict[str, Any] = {
        "generator_version": GENERATOR_VERSION,
        "rows": rows,
        "ref_rows": ref_rows,
        "drift_start": drift_start,
        "seed": seed,
        "chunk_rows": CHUNK_ROWS,
    }
    if drift != "step":  # the step workload's parameters (and caches) are as before
        params["drift"] = drift
        params["ramp_rows"] = rows // 4
    return params


def ensure_workload(
    cache: Path | str = DEFAULT_CACHE,
    rows: int = 1_000_000,
    ref_rows: int = 100_000,
    drift_start: int | None = None,
    seed: int = 0,
    force: bool = False,
    progress: bool = True,
    drift: str = "step",
) -> dict[str, Any]:
    """Generate the workload into ``cache`` unless an identical one is already there.

    Returns a dict with the parameters and the paths of the two files.
    """
    cache = Path(cache)
    cache.mkdir(parents=True, exist_ok=True)
    if drift_start is None:
        drift_start = rows // 2
    if drift not in DRIFTS:
        raise ValueError(f"drift must be one of {DRIFTS}, got {drift!r}")
    params = params_dict(rows, ref_rows, drift_start, seed, drift)
    meta_path = cache / "workload.json"
    ref_path = cache / "reference.parquet"
    srv_path = cache / "serving.parquet"
    result = {
        **params,
        "reference": str(ref_path),
        "serving": str(srv_path),
        "numeric": NUMERIC,
        "categorical": CATEGORICAL,
        "generated": False,
    }
    if not force and meta_path.exists() and ref_path.exists() and srv_path.exists():
        try:
            if json.loads(meta_path.read_text()) == params:
                if progress:
                    print(f"workload: up to date in {cache}", file=sys.stderr, flush=True)
                return result
        except (OSError, ValueError):
            pass
    meta_path.unlink(missing_ok=True)
    t0 = time.perf_counter()
    if progress:
        print(
            f"workload: generating {ref_rows:,} reference + {rows:,} serving rows "
            f"(drift from row {drift_start:,}, seed {seed}) into {cache}",
            file=sys.stderr,
            flush=True,
        )
    # Independent streams for the two files, both derived from the one seed.
    ref_rng, srv_rng = (np.random.default_rng(s) for s in np.random.SeedSequence(seed).spawn(2))
    _write(ref_path, ref_rng, ref_rows, None, progress)
    _write(srv_path, srv_rng, rows, drift_start, progress, params.get("ramp_rows"))
    meta_path.write_text(json.dumps(params))
    if progress:
        print(f"workload: done in {time.perf_counter() - t0:.1f} s", file=sys.stderr, flush=True)
    result["generated"] = True
    return result


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--ref-rows", type=int, default=100_000)
    ap.add_argument(
        "--drift-start",
        type=int,
        default=None,
        help="first drifted serving row (default rows // 2)",
    )
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument(
        "--drift", choices=DRIFTS, default="step", help="step (default) or ramp (see above)"
    )
    ap.add_argument("--cache", type=Path, default=DEFAULT_CACHE)
    ap.add_argument("--force", action="store_true", help="regenerate even if up to date")
    a = ap.parse_args(argv)
    info = ensure_workload(
        a.cache, a.rows, a.ref_rows, a.drift_start, a.seed, a.force, drift=a.drift
    )
    print(json.dumps(info))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
