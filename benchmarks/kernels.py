"""Micro-benchmarks of the pieces whose speed the code comments rely on.

    python benchmarks/kernels.py [--cache .bench/full]

1. sorting a 10,000-value window: driftline's radix sort vs ``np.sort``;
2. the KS + Wasserstein walk against a 100,000-value reference, per window size (rerun
   after changing ``_SCAN`` in detectors/_search.py to compare scan lengths);
3. the same walk as the engine runs it: 21 columns in turn, each with its own reference,
   so no reference stays in cache and the branch predictor has not seen the data; against
   the same call repeated, and against SciPy's ``ks_2samp`` + ``wasserstein_distance``;
4. reading the benchmark workload's Parquet file: whole row groups vs ``iter_batches``
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
from numpy.typing import NDArray
from scipy import stats

from driftline.connectors.files import read_batches
from driftline.detectors.ecdf import cdf_integral, ks_w1_merge, ks_w1_sorted
from driftline.detectors.sorting import finite_sorted


def per_call_us(fn: Callable[..., Any], *args: Any, repeat: int = 300) -> float:
    fn(*args)  # compile / warm
    t0 = time.perf_counter()
    for _ in range(repeat):
        fn(*args)
    return (time.perf_counter() - t0) / repeat * 1e6


def cycled_us(fn: Callable[..., Any], cases: list[tuple[Any, ...]], rounds: int) -> float:
    """Per call, calling ``fn`` on each case in turn ``rounds`` times (after one warm pass)."""
    for case in cases:
        fn(*case)
    t0 = time.perf_counter()
    for _ in range(rounds):
        for case in cases:
            fn(*case)
    return (time.perf_counter() - t0) / (rounds * len(cases)) * 1e6


def scipy_ks_w1(ref: NDArray[np.float64], cur: NDArray[np.float64]) -> tuple[float, float]:
    d = stats.ks_2samp(ref, cur).statistic
    return float(d), float(stats.wasserstein_distance(ref, cur))


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

    # 1.6 MB of reference and integral per column, 34 MB for 21: more than a 32 MB L3.
    cols = 21
    refs = [np.sort(rng.normal(size=100_000)) for _ in range(cols)]
    kernel_cases = [(r, cdf_integral(r), np.sort(rng.normal(0.05, 1.0, 10_000))) for r in refs]
    print(
        f"KS + Wasserstein, {cols} columns in turn, 100,000 reference values each, "
        "10,000-value windows (µs per call)"
    )
    cycled = cycled_us(ks_w1_sorted, kernel_cases, rounds=30)
    repeated = per_call_us(ks_w1_sorted, *kernel_cases[0], repeat=300)
    scipy = cycled_us(scipy_ks_w1, [(r, c) for r, _, c in kernel_cases], rounds=1)
    print(
        f"  columns in turn {cycled:7.0f}   same call repeated {repeated:7.0f}   "
        f"SciPy in turn {scipy:7.0f}   ratio {scipy / cycled:.0f}x"
    )

    # drift: a window against the one before; the galloping walk needs the CDF integral too
    pairs = [(np.sort(rng.normal(size=10_000)), np.sort(rng.normal(0.05, 1.0, 10_000)))]
    pairs += [(b, a) for a, b in pairs]
    merge = cycled_us(ks_w1_merge, pairs, rounds=100)
    gallop = cycled_us(lambda a, b: ks_w1_sorted(a, cdf_integral(a), b), pairs, rounds=100)
    print("KS + Wasserstein, a 10,000-value window against the one before (µs per call)")
    print(
        f"  merge {merge:7.0f}   galloping walk + integral {gallop:7.0f}   "
        f"ratio {gallop / merge:.1f}x"
    )

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
