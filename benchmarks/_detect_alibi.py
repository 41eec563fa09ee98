"""Alibi Detect's online detectors over the detection streams (``benchmarks/detection.py``),
run in Alibi Detect's own virtualenv (``make bench-peers``; it is BSL-licensed and never a
driftline dependency).

    python benchmarks/_detect_alibi.py STREAMS_DIR [--detectors cvm,mmd] [--cvm-ert 1000]
        [--mmd-ert 5000] -o OUT.json

For every ``*.npz`` in STREAMS_DIR (``ref``: reference rows × columns, ``x``: the stream),
``CVMDriftOnline`` (univariate per column, its thresholds corrected for the number of
columns) and ``MMDDriftOnline`` (multivariate, PyTorch backend) are configured with an
expected run time (events between false alarms), as their documentation describes, then fed
the stream one event at a time. The calibration simulates ``n_bootstraps`` streams and
estimates the 1 − β quantile of their statistics, which Alibi refuses unless n_bootstraps
exceeds about 1/β: ERT for MMD, ERT × columns for CVM (β = 1 − (1 − 1/ERT)^(1/d)). So the
ERTs are what a few thousand bootstraps allow, not the stream length. After each alarm the
detector's state is reset (``reset_state``), as a monitor that goes on watching would.

Both keep a random subsample of the reference (``--cvm-ref``, ``--mmd-ref`` rows): CVM's
calibration builds an (n + t)² comparison matrix per simulated stream, n reference rows and
t up to twice the largest window, which for 5,000 rows and 15,000 streams is beyond this
machine. CVM's thresholds depend only on the reference size, the windows, the ERT and the
number of columns (the statistic is rank-based, so its null distribution is the same for
every continuous distribution, as Alibi's ``_configure_thresholds`` says and simulates with
Gaussian data): they are simulated once per shape and reused for every stream of that shape
(``SharedThresholds``). MMD's depend on the data and are simulated per stream.
Output: the event positions of the alarms per stream and detector, with the calibration and
run seconds.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import sys
import time
import warnings
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np


def stream_digest(path: Path) -> str:
    """SHA-256 of a stream file's arrays (not of the file: ``np.savez`` stamps the time), so
    that ``detection.py --reuse-alibi`` can tell the streams it writes are the ones measured."""
    z = np.load(path)
    h = hashlib.sha256()
    for key in ("ref", "x"):
        a = np.ascontiguousarray(z[key], dtype=np.float64)
        h.update(f"{key}{a.shape}".encode())
        h.update(a.tobytes())
    return h.hexdigest()


def standardise(ref: np.ndarray, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    mu, sd = ref.mean(0), ref.std(0)
    sd[sd == 0] = 1.0
    return ((ref - mu) / sd).astype(np.float32), ((x - mu) / sd).astype(np.float32)


def alarms(det: Any, x: np.ndarray) -> list[int]:
    out = []
    for t in range(x.shape[0]):
        if det.predict(x[t], return_test_stat=False)["data"]["is_drift"]:
            out.append(t)
            det.reset_state()
    return out


def shared_thresholds(base: type, cache: dict[tuple[Any, ...], np.ndarray]) -> type:
    """``base`` (CVMDriftOnline) whose thresholds are simulated once per (reference rows,
    windows, ERT, columns, bootstraps) and reused: see the module's docstring."""

    class SharedThresholds(base):  # type: ignore[misc, valid-type]
        def _configure_thresholds(self) -> None:
            key = (self.n, tuple(self.window_sizes), self.ert, self.n_features, self.n_bootstraps)
            if key not in cache:
                super()._configure_thresholds()
                cache[key] = self.thresholds
            self.thresholds = cache[key]

    return SharedThresholds


def subsample(ref: np.ndarray, rows: int) -> np.ndarray:
    rng = np.random.default_rng(0)
    return ref[rng.choice(ref.shape[0], min(rows, ref.shape[0]), replace=False)]


def calibrate_and_run(make: Callable[[], Any], x: np.ndarray) -> dict[str, Any]:
    """Build a detector with ``make`` (its ERT calibration) and run it over ``x``, timing both."""
    t0 = time.perf_counter()
    det = make()
    t1 = time.perf_counter()
    return {"alarms": alarms(det, x), "calibrate_s": t1 - t0, "run_s": time.perf_counter() - t1}


DETECTORS = ("cvm", "mmd")
"""The online detectors this runs (``--detectors``)."""


def parse_detectors(text: str) -> list[str] | None:
    """``--detectors``' value as a sorted list of names of :data:`DETECTORS`; None when it
    names none, or one that is not there."""
    chosen = {d.strip() for d in text.split(",") if d.strip()}
    return sorted(chosen) if chosen and chosen <= set(DETECTORS) else None


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("streams", type=Path)
    ap.add_argument("--detectors", default="cvm,mmd", help="which to run: cvm, mmd, or both")
    ap.add_argument("--cvm-ert", type=float, default=1_000)
    ap.add_argument("--mmd-ert", type=float, default=5_000)
    ap.add_argument("--cvm-windows", default="100,500")
    ap.add_argument("--mmd-window", type=int, default=100)
    ap.add_argument("--cvm-ref", type=int, default=500, help="reference rows CVM keeps")
    ap.add_argument("--mmd-ref", type=int, default=500, help="reference rows MMD keeps")
    ap.add_argument("--cvm-bootstraps", type=int, default=15_000)
    ap.add_argument("--mmd-bootstraps", type=int, default=6_000)
    ap.add_argument("-o", "--output", type=Path, required=True)
    a = ap.parse_args()
    warnings.simplefilter("ignore")
    logging.getLogger("alibi_detect").setLevel(logging.ERROR)
    import importlib.metadata

    import torch
    from alibi_detect.cd import CVMDriftOnline, MMDDriftOnline

    torch.manual_seed(0)
    torch.set_num_threads(1)
    run = parse_detectors(a.detectors)
    if run is None:
        ap.error(f"--detectors: cvm, mmd or both, got {a.detectors!r}")
    cvm = shared_thresholds(CVMDriftOnline, {})
    results: dict[str, Any] = {
        "detectors": run,
        "versions": {
            p: importlib.metadata.version(p) for p in ("alibi-detect", "torch", "numpy", "scipy")
        },
        "cvm_ert": a.cvm_ert,
        "mmd_ert": a.mmd_ert,
        "cvm_windows": [int(w) for w in a.cvm_windows.split(",")],
        "mmd_window": a.mmd_window,
        "cvm_ref": a.cvm_ref,
        "mmd_ref": a.mmd_ref,
        "cvm_bootstraps": a.cvm_bootstraps,
        "mmd_bootstraps": a.mmd_bootstraps,
        "streams": {},
        "digests": {},
    }
    for path in sorted(a.streams.glob("*.npz")):
        z = np.load(path)
        ref, x = standardise(z["ref"], z["x"])
        entry: dict[str, Any] = {}
        if "cvm" in run:
            entry["CVMDriftOnline"] = calibrate_and_run(
                partial(
                    cvm,
                    subsample(ref, a.cvm_ref),
                    ert=a.cvm_ert,
                    window_sizes=results["cvm_windows"],
                    n_bootstraps=a.cvm_bootstraps,
                    verbose=False,
                ),
                x,
            )
        if "mmd" in run:
            entry["MMDDriftOnline"] = calibrate_and_run(
                partial(
                    MMDDriftOnline,
                    subsample(ref, a.mmd_ref),
                    ert=a.mmd_ert,
                    window_size=a.mmd_window,
                    backend="pytorch",
                    n_bootstraps=a.mmd_bootstraps,
                    verbose=False,
                ),
                x,
            )
        results["streams"][path.stem] = entry
        results["digests"][path.stem] = stream_digest(path)
        summary = ", ".join(
            f"{k} {len(v['alarms'])} alarms (calibration {v['calibrate_s']:.0f} s)"
            for k, v in entry.items()
        )
        print(f"  alibi {path.stem}: {summary}", file=sys.stderr, flush=True)
    a.output.write_text(json.dumps(results))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
