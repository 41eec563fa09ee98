"""The label join (driftline.labels.LabelJoin) against a plain dict of Python tuples.

    python benchmarks/label_join.py [--quick]

100 inference batches of 10,000 predictions (10 with ``--quick``), string request ids in a
pyarrow array as the engine has them; after each batch, the labels of a random 10 % of the
predictions made five batches earlier arrive (the rest at the end). The baseline stores
each prediction as ``dict[id] = (model, version, ts, score)`` and pops it for its label,
one Python statement per row, with no TTL or memory bound. Best of 3, both in this run;
printed: predictions per second of each and the ratio baseline time / join time.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import pyarrow as pa

from driftline.labels import LabelJoin

BATCH = 10_000
LAG = 5  # batches between a prediction and its label


def workload(batches: int) -> tuple[list[tuple[Any, ...]], list[tuple[list[str], Any]]]:
    rng = np.random.default_rng(0)
    preds, labels = [], []
    for b in range(batches):
        ids = [f"req-{b:04d}-{i:05d}-{rng.integers(1 << 30):08x}" for i in range(BATCH)]
        ts = b + rng.random(BATCH)
        preds.append((pa.array(ids, type=pa.string()), ts, rng.random(BATCH)))
        picked = rng.choice(BATCH, BATCH // 10, replace=False)
        labels.append(([ids[i] for i in picked], rng.integers(0, 2, picked.shape[0]) * 1.0))
    return preds, labels


def run_join(preds: list[tuple[Any, ...]], labels: list[tuple[list[str], Any]]) -> int:
    join = LabelJoin(ttl=3600.0, max_pending=10_000_000)
    matched = 0
    for b, (ids, ts, scores) in enumerate(preds):
        join.add("fraud", "7", ids, ts, scores)
        if b >= LAG:
            matched += sum(len(m) for m in join.match(*labels[b - LAG]).values())
    for label_ids, y in labels[max(0, len(preds) - LAG) :]:
        matched += sum(len(m) for m in join.match(label_ids, y).values())
    return matched


def run_dict(preds: list[tuple[Any, ...]], labels: list[tuple[list[str], Any]]) -> int:
    store: dict[str | None, tuple[str, str, float, float]] = {}

    def match(label_ids: list[str], y: Any) -> int:
        out: dict[tuple[str, str], list[tuple[float, float, float]]] = {}
        for i, label in zip(label_ids, y.tolist(), strict=True):
            p = store.pop(i, None)
            if p is not None:
                out.setdefault((p[0], p[1]), []).append((p[2], p[3], label))
        return sum(len(v) for v in out.values())

    matched = 0
    for b, (ids, ts, scores) in enumerate(preds):
        for i, t, s in zip(ids.to_pylist(), ts.tolist(), scores.tolist(), strict=True):
            if i is not None:
                store[i] = ("fraud", "7", t, s)
        if b >= LAG:
            matched += match(*labels[b - LAG])
    for label_ids, y in labels[max(0, len(preds) - LAG) :]:
        matched += match(label_ids, y)
    return matched


def best_of(fn: Callable[[], int], n: int = 3) -> tuple[float, int]:
    times, result = [], 0
    for _ in range(n):
        t0 = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - t0)
    return min(times), result


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="10 batches instead of 100")
    a = ap.parse_args()
    batches = 10 if a.quick else 100
    preds, labels = workload(batches)
    rows = batches * BATCH
    join_s, join_n = best_of(lambda: run_join(preds, labels))
    dict_s, dict_n = best_of(lambda: run_dict(preds, labels))
    assert join_n == dict_n == rows // 10, (join_n, dict_n)
    print(f"{batches} batches of {BATCH:,} predictions, {join_n:,} labels matched (best of 3)")
    print(
        f"  LabelJoin {rows / join_s:12,.0f} predictions/s   "
        f"dict of tuples {rows / dict_s:12,.0f} predictions/s   "
        f"ratio {dict_s / join_s:.2f}x"
    )


if __name__ == "__main__":
    main()
