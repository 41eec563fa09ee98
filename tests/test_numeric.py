"""The batched numeric comparison (``driftline.numeric``): every numeric column of several
windows in one compiled call, checked against the one-column functions and SciPy."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import naive
import numpy as np
import pyarrow as pa
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from driftline.baseline import Baseline, Column, Role
from driftline.detectors import (
    numeric_reference,
    numeric_statistics,
    numeric_statistics_between,
)
from driftline.monitor import Monitor, policy_for
from driftline.numeric import NumericColumns
from driftline.windows import Window

FIELDS = ("psi", "ks_statistic", "ks_pvalue", "js_distance", "wasserstein")


column = hnp.arrays(
    np.float64,
    st.integers(0, 60),
    elements=st.integers(-4, 4).map(float) | st.sampled_from([np.nan, np.inf, 0.5]),
)


@settings(max_examples=60)
@given(st.lists(st.lists(column | st.none(), min_size=3, max_size=3), min_size=1, max_size=3))
def test_batch_equals_one_column_at_a_time(data: list[list[np.ndarray | None]]) -> None:
    """Columns × 3 windows (None: the window lacks the column), compared in one call, in
    two interleaved groups on a pool, with and without the statistics against the window
    before, give what the one-column functions give (the two-window test included)."""
    rng = np.random.default_rng(0)
    refs = [numeric_reference(rng.normal(size=200).round(1)) for _ in data]
    cols = NumericColumns([f"c{i}" for i in range(len(data))], refs)
    errors = [[0] * 3 for _ in data]
    with ThreadPoolExecutor(2) as pool:
        for got, with_drift in (
            (cols.compare(data, [None] * len(data), errors, None, 1), True),
            (cols.compare(data, [None] * len(data), errors, pool, 2), True),
            (cols.compare(data, [None] * len(data), errors, pool, 2, drift=False), False),
        ):
            for ref, windows, out in zip(refs, data, got, strict=True):
                prev = None
                for values, c in zip(windows, out, strict=True):
                    if values is None:
                        assert c is None
                        prev = None
                        continue
                    assert c is not None
                    skew = numeric_statistics(ref, values)
                    fin = np.sort(values[np.isfinite(values)])
                    assert c.sorted.tolist() == fin.tolist()
                    assert (c.skew.count, c.skew.missing) == (
                        values.size,
                        int(np.isnan(values).sum()),
                    )
                    for f in FIELDS:
                        assert naive.same(getattr(c.skew, f), getattr(skew, f)), f
                    assert c.skew.out_of_range == skew.out_of_range
                    assert c.skew.bin_counts.tolist() == skew.bin_counts.tolist()
                    pooled = numeric_statistics(ref, values, before=prev).pooled_mean_pvalue
                    assert naive.same(c.skew.pooled_mean_pvalue, pooled)
                    if prev is None or not with_drift:
                        assert c.drift is None
                    else:
                        assert c.drift is not None
                        drift = numeric_statistics_between(
                            prev, ref.edges, fin, values.size, c.skew.missing, c.skew.nonfinite
                        )
                        for f in FIELDS:
                            assert naive.same(getattr(c.drift, f), getattr(drift, f)), f
                        assert c.drift.out_of_range == drift.out_of_range
                    prev = fin


def test_drift_records_match_scipy() -> None:
    """The engine's drift record of a window: the statistics of that window against the
    one before (KS and Wasserstein by SciPy, PSI and JS on the baseline's bins)."""
    rng = np.random.default_rng(5)
    ref = numeric_reference(rng.normal(size=5000))
    base = Baseline(columns=(Column("x", Role.FEATURE, ref),))
    monitor = Monitor(base, policy_for(base), "m", "1", threads=2)
    w1 = rng.normal(size=3000)
    w2 = rng.normal(0.3, 1.2, size=3000)
    w2[::50] = np.nan
    windows = [
        Window(i, (pa.table({"x": pa.array(v, from_pandas=False)}),), None, None)
        for i, v in enumerate((w1, w2))
    ]
    records, last = monitor.compare_windows(windows, None)
    monitor.close()
    assert records[0][1] is None  # no window before the first
    drift = records[1][1]
    assert drift is not None and drift["kind"] == "drift"
    x = drift["features"]["x"]
    d, p = naive.ks(w1, w2)
    assert x["ks_statistic"] == d
    assert abs(x["ks_pvalue"] - p) <= 1e-6
    assert abs(x["wasserstein"] - naive.wasserstein(w1, w2)) <= 1e-9
    r, c = naive.props(w1, ref.edges), naive.props(w2, ref.edges)
    assert abs(x["psi"] - naive.psi(r, c)) <= 1e-9
    assert abs(x["js_distance"] - naive.js(r, c)) <= 1e-9
    assert x["missing_rate"] == 60 / 3000
    prepared = last["x"]
    assert prepared is not None
    assert prepared.values.tolist() == np.sort(w2[np.isfinite(w2)]).tolist()
