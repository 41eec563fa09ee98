"""The shift test's two-window scale: a window and the one before it tested as one sample
against the reference (Welch for numeric columns, χ² for categorical ones), each scale at
half of ``shift_alpha``. Checked against SciPy on the concatenated windows, for its false
flag rate, and through every path that computes it (detectors, replay, engine)."""

from __future__ import annotations

import math
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import naive
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from kafka_io import json_messages
from scipy import stats
from sinks import MemorySink
from test_engine import config as engine_config

from driftline.baseline import Baseline, Column, Role
from driftline.config import WindowConfig
from driftline.detectors import (
    CategoricalDriftDetector,
    DatasetDriftDetector,
    DriftPolicy,
    Method,
    NumericDriftDetector,
    categorical_reference,
    categorical_statistics,
    numeric_reference,
    numeric_statistics,
)
from driftline.detectors.location import pooled_shift_pvalue
from driftline.detectors.reference import CategoricalReference
from driftline.detectors.statistics import CategoricalStatistics, NumericStatistics
from driftline.engine import Engine, sliding
from driftline.monitor import Monitor, policy_for
from driftline.windows import Window

values = hnp.arrays(
    np.float64,
    st.integers(0, 40),
    elements=st.integers(-3, 3).map(float) | st.sampled_from([0.5, np.nan, np.inf]),
)


@settings(max_examples=200)
@given(values, values, st.sampled_from(["normal", "ties", "constant"]))
def test_the_two_window_pvalue_is_welch_on_the_concatenated_windows(
    before: np.ndarray, cur: np.ndarray, kind: str
) -> None:
    rng = np.random.default_rng(1)
    raw = {
        "normal": rng.normal(size=500),
        "ties": rng.integers(-2, 3, size=500).astype(float),
        "constant": np.full(500, 0.5),
    }[kind]
    ref = numeric_reference(raw)
    got = numeric_statistics(ref, cur, before=before).pooled_mean_pvalue
    fb, fc = before[np.isfinite(before)], cur[np.isfinite(cur)]
    if fb.size == 0 or fc.size == 0:  # a scale of its own only with values on both sides
        assert math.isnan(got)
        return
    want = naive.mean_shift(raw, np.concatenate([fb, fc]))[1]
    if math.isnan(want):
        assert math.isnan(got)
    else:
        assert got == pytest.approx(want, rel=1e-9, abs=1e-12)
    # the kernel on sorted values gives the same
    sb, sc = np.sort(fb), np.sort(fc)
    assert naive.same(pooled_shift_pvalue(sb, sc, ref.mean, ref.std, ref.finite), got)


def shift_chi2(counts: np.ndarray, ref: CategoricalReference) -> float:
    """The shift test's χ² p-value written out: SciPy's goodness-of-fit statistic against
    the reference proportions (floored as the kernels do), divided by 1 + n/N."""
    stat = naive.chi2(counts, ref.proportions)[0]
    factor = 1 + counts.sum() / (ref.count - ref.missing)
    return float(stats.chi2.sf(stat / factor, counts.size - 1))


# Counts of x, y, z and ``other`` (w, which the reference below keeps out of its top 3, so
# that ``other`` has a real share: the pooled counts are checked in every bucket).
four = st.lists(st.integers(0, 50), min_size=4, max_size=4)


@settings(max_examples=200)
@given(four, four)
def test_the_two_window_chi2_is_the_shift_chi2_of_the_added_counts(
    a: list[int], b: list[int]
) -> None:
    # buckets x, y, z, other (w)
    ref = categorical_reference(["x"] * 50 + ["y"] * 30 + ["z"] * 15 + ["w"] * 5, top_k=3)
    codes = np.repeat(np.arange(4), b)
    got = categorical_statistics(ref, codes, before_counts=np.array(a))
    assert got.bucket_counts.tolist() == b
    if sum(b) == 0:
        assert math.isnan(got.chi2_shift_pvalue) and math.isnan(got.pooled_chi2_pvalue)
        return
    assert got.chi2_shift_pvalue == pytest.approx(shift_chi2(np.array(b), ref), rel=1e-9, abs=1e-12)
    assert got.chi2_pvalue == pytest.approx(naive.chi2(np.array(b), ref.proportions)[1], rel=1e-9)
    if sum(a) == 0:
        assert math.isnan(got.pooled_chi2_pvalue)
        return
    want = shift_chi2(np.array(a) + np.array(b), ref)
    assert got.pooled_chi2_pvalue == pytest.approx(want, rel=1e-9, abs=1e-12)
    without = categorical_statistics(ref, codes)
    assert math.isnan(without.pooled_chi2_pvalue)
    assert without.chi2_shift_pvalue == got.chi2_shift_pvalue


def test_the_shift_chi2_holds_its_level_where_the_plain_one_does_not() -> None:
    """40 categories, references of 20,000 values, windows of 10,000 from the same
    distribution (a new reference each time, as the correction is for the reference's own
    sampling error): the shift test's p-value is below 0.01 in about 1 % of the windows, the
    plain goodness-of-fit p-value far more often, and more so for two windows pooled."""
    rng = np.random.default_rng(3)
    k = 40
    p = 1.0 / np.arange(1, k + 1)
    p /= p.sum()
    cats = tuple(f"c{i}" for i in range(k))
    plain = shift = pooled = 0
    trials = 1500
    for _ in range(trials):
        y = rng.multinomial(20_000, p)
        ref = CategoricalReference(cats, np.append(y / 20_000, 0.0), cats, True, 20_000, 0)
        before = np.append(rng.multinomial(10_000, p), 0)
        codes = np.repeat(np.arange(k), rng.multinomial(10_000, p))
        s = categorical_statistics(ref, codes, before_counts=before)
        plain += s.chi2_pvalue < 0.01
        shift += s.chi2_shift_pvalue < 0.01
        pooled += s.pooled_chi2_pvalue < 0.01
    # binomial(1500, 0.01): mean 15, sd 3.9 (20 and 21 here)
    assert 4 <= shift <= 30 and 4 <= pooled <= 30
    assert plain > 300  # (1 + n/N)·χ² read as χ²: over a third of the windows (546 here)


def test_before_counts_of_another_reference_are_refused() -> None:
    ref = categorical_reference(["x", "y"])
    with pytest.raises(ValueError, match="before_counts has shape"):
        categorical_statistics(ref, np.array([0, 1]), before_counts=np.array([1, 2, 3, 4, 5]))


def num(shift: float, p: float, pooled: float) -> NumericStatistics:
    nan = math.nan
    return NumericStatistics(
        10_000,
        10_000,
        0.0,
        nan,
        nan,
        nan,
        nan,
        shift,
        p,
        0,
        0,
        0,
        0,
        np.zeros(10, np.int64),
        pooled,
    )


def cat(linf: float, p: float, pooled: float) -> CategoricalStatistics:
    return CategoricalStatistics(
        10_000, 10_000, 0.0, linf, 0.0, 0.5, 0.0, 0, 0, 0, np.zeros(3, np.int64),
        chi2_shift_pvalue=p, pooled_chi2_pvalue=pooled,
    )  # fmt: skip


@pytest.mark.parametrize(
    ("stats", "statistic", "threshold"),
    [
        (num(0.05, 8e-6, math.nan), "mean_pvalue", 1e-5),  # no window before: one scale
        (num(0.05, 8e-6, 0.5), None, None),  # two scales: 8e-6 is not below 5e-6
        (num(0.05, 4e-6, 0.5), "mean_pvalue", 5e-6),
        (num(0.05, 0.01, 4e-6), "pooled_mean_pvalue", 5e-6),
        (num(0.05, 0.2, 1e-9), None, None),  # the window alone does not lean the same way
        (num(0.05, 0.04, 1e-9), "pooled_mean_pvalue", 5e-6),  # just under POOLED_GATE
        (num(0.05, 0.06, 1e-9), None, None),  # just over it
        (num(0.01, 1e-9, 1e-12), None, None),  # the window's own shift is under the floor
        (num(math.nan, math.nan, math.nan), None, None),
        (cat(0.01, 8e-6, math.nan), "chi2_shift_pvalue", 1e-5),
        (cat(0.01, 0.03, 1e-7), "pooled_chi2_pvalue", 5e-6),
        (cat(0.01, 0.3, 1e-7), None, None),
        (cat(0.001, 0.3, 1e-30), None, None),  # linf under the floor
    ],
)
def test_the_policy_splits_shift_alpha_between_the_scales(
    stats: NumericStatistics | CategoricalStatistics, statistic: str | None, threshold: float | None
) -> None:
    got = DriftPolicy().shift(stats)
    if statistic is None:
        assert got is None
        return
    assert got is not None and got.drift and got.method is Method.TEST
    assert (got.statistic, got.threshold) == (statistic, threshold)
    assert DriftPolicy(shift_alpha=0).shift(stats) is None


def exact_normal(n: int, shift: float = 0.0) -> np.ndarray:
    """n values with the standard normal's quantiles: a window whose mean and spread are
    what they should be, not what a seed gives."""
    return stats.norm.ppf((np.arange(n) + 0.5) / n) + shift


def test_a_small_step_is_flagged_at_its_second_window_by_the_two_windows() -> None:
    """A step of 0.045 reference std on windows of 10,000: Welch's z is ≈ 4.3 on one window
    (p ≈ 2e-5, not below 1e-5) and ≈ 5.8 on two, so the first window after the step is not
    flagged and the second is, by the two-window scale."""
    ref = numeric_reference(exact_normal(100_000))
    det = NumericDriftDetector(ref)
    quiet = det.update(exact_normal(10_000))
    assert not quiet.drift_detected and math.isnan(quiet.statistics.pooled_mean_pvalue)  # type: ignore[union-attr]
    first = det.update(exact_normal(10_000, 0.045))
    assert not first.drift_detected
    s1 = first.statistics
    assert s1 is not None and 1e-5 < s1.mean_pvalue < 1e-4 and s1.pooled_mean_pvalue > 1e-3
    second = det.update(exact_normal(10_000, 0.045))
    assert second.drift_detected
    assert second.decision is not None and second.decision.statistic == "pooled_mean_pvalue"
    s2 = second.statistics
    assert s2 is not None and s2.mean_pvalue == s1.mean_pvalue and s2.pooled_mean_pvalue < 1e-8
    # the same windows through a dataset detector, the replay path and the engine's batch
    windows = [exact_normal(10_000), exact_normal(10_000, 0.045), exact_normal(10_000, 0.045)]
    ds = DatasetDriftDetector({"x": ref})
    flags = ["x" in ds.update({"x": w}).drifted for w in windows]
    assert flags == [False, False, True]
    base = Baseline(columns=(Column("x", Role.FEATURE, ref),))
    tables = [Window(i, (pa.table({"x": w}),), None, None) for i, w in enumerate(windows)]
    replay = Monitor(base, policy_for(base), "m", "1", threads=1)
    one_by_one = [replay.record(t) for t in tables]
    replay.close()
    with ThreadPoolExecutor(2) as pool:
        engine = Monitor(base, policy_for(base), "m", "1", threads=2, pool=pool)
        batch, _ = engine.compare_windows(tables, None)
    assert [r["features"]["x"]["drift"] for r in one_by_one] == [False, False, True]
    for a, (b, _) in zip(one_by_one, batch, strict=True):
        assert a["features"] == b["features"]
    assert one_by_one[2]["features"]["x"]["decision"]["statistic"] == "pooled_mean_pvalue"
    assert one_by_one[2]["features"]["x"]["pooled_mean_pvalue"] == s2.pooled_mean_pvalue
    assert one_by_one[0]["features"]["x"]["pooled_mean_pvalue"] is None


def test_a_window_back_to_normal_is_not_flagged_for_the_one_before() -> None:
    """After a window shifted by 0.1 std, a window exactly like the reference: the two
    together still differ from the reference (p ≈ 1e-10), but the window alone does not
    (p ≈ 1), so it is not flagged."""
    ref = numeric_reference(exact_normal(100_000))
    det = NumericDriftDetector(ref)
    assert det.update(exact_normal(10_000, 0.1)).drift_detected
    back = det.update(exact_normal(10_000))
    s = back.statistics
    assert s is not None and s.pooled_mean_pvalue < 1e-8 and s.mean_pvalue > 0.9
    assert not back.drift_detected


def test_the_categorical_detector_pools_its_last_window() -> None:
    ref = categorical_reference(["a"] * 5000 + ["b"] * 3000 + ["c"] * 2000)
    det = CategoricalDriftDetector(ref)
    w1 = ["a"] * 490 + ["b"] * 300 + ["c"] * 210
    w2 = ["a"] * 480 + ["b"] * 300 + ["c"] * 220
    assert math.isnan(det.update(w1).statistics.pooled_chi2_pvalue)  # type: ignore[union-attr]
    s = det.update(w2).statistics
    assert s is not None
    want = shift_chi2(np.array([970, 600, 430, 0]), ref)
    assert s.pooled_chi2_pvalue == pytest.approx(want, rel=1e-9)


def test_two_scales_keep_the_false_flag_rate_at_shift_alpha() -> None:
    """8,000 stationary windows of 1,000 values, the shift test alone deciding (no distance
    flag, no effect floor) at shift_alpha = 0.01: the share of flagged windows stays under
    0.01 (Bonferroni over the two scales; they are correlated, so it lands near 0.0065).
    Both scales at the full 0.01 flag 81 windows with this seed (measured by removing the
    halving), just over the bound: the policy table above is the firm check of it."""
    rng = np.random.default_rng(11)
    ref = numeric_reference(rng.normal(size=20_000))
    policy = DriftPolicy(threshold=1e9, shift_alpha=0.01, min_mean_shift=0.0)
    det = NumericDriftDetector(ref, policy=policy)
    flags = sum(det.update(rng.normal(size=1000)).drift_detected for _ in range(8000))
    assert 24 <= flags <= 80  # 0.003 to 0.01 of the windows


def test_sliding_windows_have_no_two_window_scale() -> None:
    """A sliding window shares rows with the one before: pooled, they would count twice."""
    assert sliding(WindowConfig(size=1000, step=500))
    assert sliding(WindowConfig(duration=300.0, step=60.0))
    assert not sliding(WindowConfig(size=1000))
    assert not sliding(WindowConfig(size=1000, step=1000))
    ref = numeric_reference(exact_normal(10_000))
    base = Baseline(columns=(Column("x", Role.FEATURE, ref),))
    windows = [Window(i, (pa.table({"x": exact_normal(2000, 0.1)}),), None, None) for i in (0, 1)]
    on = Monitor(base, policy_for(base), "m", "1", threads=1)
    off = Monitor(base, policy_for(base), "m", "1", threads=1, two_window=False)
    (_, (b_on, _)), _ = on.compare_windows(windows, None)
    (_, (b_off, _)), _ = off.compare_windows(windows, None)
    on.close()
    off.close()
    assert b_on["features"]["x"]["pooled_mean_pvalue"] is not None
    assert b_off["features"]["x"]["pooled_mean_pvalue"] is None
    assert b_on["features"]["x"]["mean_pvalue"] == b_off["features"]["x"]["mean_pvalue"]


@pytest.mark.parametrize(
    ("window", "pooled"), [("size = 1000", True), ("size = 1000\nstep = 500", False)]
)
def test_the_engine_pools_tumbling_windows_only(
    data: Path, tmp_path: Path, window: str, pooled: bool
) -> None:
    """Through ``Engine``: its monitors get the two-window scale on tumbling windows, not on
    sliding ones (``engine.sliding``)."""
    engine = Engine(engine_config(data, tmp_path, window), MemorySink())
    engine.process(json_messages(pq.read_table(data / "serving.parquet").slice(0, 4000), 0))
    skew = [r for r in engine.sink.records if r["kind"] == "skew"]  # type: ignore[attr-defined]
    assert len(skew) >= 3
    later = [r["features"]["amount"]["pooled_mean_pvalue"] for r in skew[1:]]
    assert all((p is not None) is pooled for p in later)
    later = [r["features"]["country"]["pooled_chi2_pvalue"] for r in skew[1:]]
    assert all((p is not None) is pooled for p in later)  # categorical columns alike
