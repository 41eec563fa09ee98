"""Micro-benchmarks of the pieces whose speed the code comments rely on.

    python benchmarks/kernels.py [--cache .bench/full]

1. sorting a 10,000-value window: driftline's radix sort vs ``np.sort``;
2. the KS + Wasserstein walk against a 100,000-value reference, per window size (rerun
   after changing ``_SCAN`` in detectors/_search.py to compare scan lengths);
3. reading the benchmark workload's Parquet file: whole row groups vs ``iter_batches``
   (needs ``benchmarks/replay.py`` to have generated it).

Each figure is printed with the baseline it is compared with, measured in the same run.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow.parquet as pq

from driftline.connectors.files import read_batches
from driftline.detectors.ecdf import cdf_integral, ks_w1_sorted
from driftline.detectors.sorting import finite_sorted


def per_call_us(fn: Callable[..., Any], *args: Any, repeat: int = 300) -> float:
    fn(*args)  # compile / warm
    t0 = time.perf_counter()
    for _ in range(repeat):
        fn(*args)
    return (time.perf_counter() - t0) / repeat * 1e6


def best_of(fn: Callable[[], Any], n: int = 3) -> float:
    times = []
    for _ in range(n):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument(
        "--cache", type=Path, default=Path(__file__).resolve().parent.parent / ".bench" / "full"
    )
    a = ap.parse_args()
    rng = np.random.default_rng(0)

    print("sort a 10,000-value window (µs per call)")
    for name, x in (
        ("normal", rng.normal(size=10_000)),
        ("lognormal", rng.lognormal(size=10_000)),
        ("integers", np.round(rng.normal(5, 2, 10_000))),
    ):
        radix = per_call_us(finite_sorted, x)
        numpy = per_call_us(np.sort, x)
        print(
            f"  {name:<10} radix {radix:7.0f}   np.sort {numpy:7.0f}   ratio {numpy / radix:.2f}x"
        )

    ref = np.sort(rng.normal(size=100_000))
    integ = cdf_integral(ref)
    print("KS + Wasserstein walk against 100,000 reference values (µs per call)")
    for m in (1_000, 10_000, 100_000):
        cur = np.sort(rng.normal(size=m))
        print(f"  window {m:>7,}: {per_call_us(ks_w1_sorted, ref, integ, cur, repeat=100):8.0f}")

    path = a.cache / "serving.parquet"
    if not path.is_file():
        print(f"Parquet read: skipped, {path} not found (run benchmarks/replay.py first)")
        return
    print(f"read {path} (best of 3, seconds)")
    groups = best_of(lambda: sum(b.num_rows for b in read_batches(path)))
    threaded = best_of(
        lambda: sum(b.num_rows for b in pq.ParquetFile(path).iter_batches(batch_size=65_536))
    )
    print(
        f"  driftline (row groups) {groups:.2f}   iter_batches (threads) {threaded:.2f}   "
        f"ratio {threaded / groups:.2f}x"
    )


if __name__ == "__main__":
    main()
