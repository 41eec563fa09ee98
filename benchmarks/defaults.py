"""The measurements behind driftline's default thresholds (docs/statistics.md, "Decisions").

    python benchmarks/defaults.py

With no drift, how large do the candidate distances get on windows of 1,000 and 2,000 rows
(a 100,000-row normal reference, 10 quantile bins), and how large are they after a shift?
Each statistic is driftline's own, which the test suite checks against SciPy. Seeded; the
printed figures are the ones the docs quote.
"""

from __future__ import annotations

import numpy as np

from driftline.detectors import (
    categorical_reference,
    categorical_statistics,
    numeric_reference,
    numeric_statistics,
)

TRIALS = 300


def main() -> None:
    rng = np.random.default_rng(0)
    ref = numeric_reference(rng.normal(size=100_000))
    print(f"numeric, N(0,1) reference of 100,000, {TRIALS} stationary windows per size")
    for n in (500, 1000, 2000, 5000):
        stats = [numeric_statistics(ref, rng.normal(size=n)) for _ in range(TRIALS)]
        psi = np.array([s.psi for s in stats])
        w = np.array([s.wasserstein for s in stats])
        js = np.array([s.js_distance for s in stats])
        print(
            f"  n={n:>5}: PSI q99 {np.quantile(psi, 0.99):.3f} max {psi.max():.3f} | "
            f"Wasserstein q99 {np.quantile(w, 0.99):.3f} max {w.max():.3f} | "
            f"JS q99 {np.quantile(js, 0.99):.3f}"
        )
    print("numeric, mean shift in reference standard deviations, windows of 5,000")
    for shift in (0.1, 0.25, 0.5):
        s = numeric_statistics(ref, rng.normal(shift, 1.0, 5000))
        print(
            f"  shift {shift}: PSI {s.psi:.3f}  Wasserstein {s.wasserstein:.3f}  "
            f"JS {s.js_distance:.3f}"
        )

    levels = [f"c{i}" for i in range(40)]
    p = rng.dirichlet(np.full(40, 0.5))
    cref = categorical_reference(list(rng.choice(levels, 100_000, p=p)))
    print(f"categorical, 40 levels, {TRIALS} stationary windows per size")
    for n in (1000, 2000):
        stats = [
            categorical_statistics(cref, cref.encode(list(rng.choice(levels, n, p=p))))
            for _ in range(TRIALS)
        ]
        js = np.array([s.js_distance for s in stats])
        psi = np.array([s.psi for s in stats])
        linf = np.array([s.linf for s in stats])
        print(
            f"  n={n:>5}: JS q99 {np.quantile(js, 0.99):.3f} max {js.max():.3f} | "
            f"PSI q99 {np.quantile(psi, 0.99):.3f} | L-inf q99 {np.quantile(linf, 0.99):.3f}"
        )


if __name__ == "__main__":
    main()
