"""Drift decisions: the defaults' behaviour on stationary and shifted data, BH against
SciPy, the dataset share, and calibrated thresholds hitting their false-alarm rate."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from scipy import stats

from driftline.baseline import Baseline, Column, Role
from driftline.calibrate import calibrate
from driftline.detectors import (
    CategoricalDriftDetector,
    DatasetDriftDetector,
    DriftPolicy,
    Method,
    NumericDriftDetector,
    Statistic,
    benjamini_hochberg,
    categorical_reference,
    numeric_reference,
    numeric_statistics,
)
from driftline.monitor import policy_for

DISTS = {
    "normal": lambda rng, n, s=0.0: rng.normal(s, 1.0, n),
    "lognormal": lambda rng, n, s=0.0: (
        rng.lognormal(0.0, 0.8, n) + s * np.std(rng.lognormal(0.0, 0.8, 100_000))
    ),
    "integers": lambda rng, n, s=0.0: np.round(rng.normal(5 + s * 2, 2, n)),
}


@pytest.mark.parametrize("dist", sorted(DISTS))
def test_defaults_no_false_alarm_on_stationary_windows(dist: str) -> None:
    rng = np.random.default_rng(42)
    ref = numeric_reference(DISTS[dist](rng, 100_000))
    det = NumericDriftDetector(ref)
    alarms = sum(det.update(DISTS[dist](rng, 2000)).drift_detected for _ in range(200))
    assert alarms == 0


@pytest.mark.parametrize("dist", sorted(DISTS))
def test_defaults_flag_half_a_std_shift(dist: str) -> None:
    rng = np.random.default_rng(43)
    base = DISTS[dist](rng, 100_000)
    ref = numeric_reference(base)
    det = NumericDriftDetector(ref)
    sd = float(np.std(base))
    hits = sum(det.update(DISTS[dist](rng, 2000) + 0.5 * sd).drift_detected for _ in range(50))
    assert hits == 50


def test_categorical_defaults() -> None:
    rng = np.random.default_rng(5)
    levels = np.array([f"c{i}" for i in range(12)])
    p = rng.dirichlet(np.ones(12))
    ref = categorical_reference(list(rng.choice(levels, 100_000, p=p)))
    det = CategoricalDriftDetector(ref)
    stationary = sum(
        det.update(list(rng.choice(levels, 2000, p=p))).drift_detected for _ in range(100)
    )
    assert stationary == 0
    # a visibly changed mix: 15 points move from the largest category to the smallest
    q = p.copy()
    q[np.argmax(p)] -= 0.15
    q[np.argmin(p)] += 0.15
    moved = sum(det.update(list(rng.choice(levels, 2000, p=q))).drift_detected for _ in range(20))
    assert moved == 20
    # a new category at 5 %
    new = [*rng.choice(levels, 1900, p=p), *(["brand-new"] * 100)]
    assert det.update(new).drift_detected


def test_small_windows_use_bh_corrected_tests() -> None:
    rng = np.random.default_rng(9)
    refs = {f"x{i}": numeric_reference(rng.normal(size=50_000)) for i in range(10)}
    det = DatasetDriftDetector(refs)
    window = {f"x{i}": rng.normal(1.0 if i == 0 else 0.0, 1.0, 300) for i in range(10)}
    det.update(window)
    assert det.decision is not None
    d0 = det.decision.features["x0"]
    assert d0.method is Method.TEST and d0.statistic == "ks_pvalue" and d0.drift
    pvals = np.array([s.ks_pvalue for s in det.statistics.values()])  # type: ignore[union-attr]
    want = stats.false_discovery_control(pvals, method="bh")
    got = np.array([d.adjusted_pvalue for d in det.decision.features.values()])
    assert np.allclose(got, want, rtol=1e-12)
    assert det.drifted == ["x0"]
    assert det.share == pytest.approx(0.1) and not det.drift_detected


@given(st.lists(st.floats(0, 1) | st.just(float("nan")), max_size=40))
def test_benjamini_hochberg_matches_scipy(p: list[float]) -> None:
    arr = np.array(p, dtype=float)
    got = benjamini_hochberg(arr)
    ok = ~np.isnan(arr)
    assert np.array_equal(np.isnan(got), ~ok)
    if ok.any():
        want = stats.false_discovery_control(arr[ok], method="bh")
        assert np.allclose(got[ok], want, rtol=1e-12, atol=0)


def test_dataset_share_and_absent_features() -> None:
    rng = np.random.default_rng(1)
    refs = {n: numeric_reference(rng.normal(size=20_000)) for n in "abcd"}
    det = DatasetDriftDetector(refs, DriftPolicy(drift_share=0.5))
    shifted = {n: rng.normal(1.0, 1, 3000) for n in "ab"}
    det.update({**shifted, "c": rng.normal(size=3000)})  # d is absent: not counted
    assert det.drifted == ["a", "b"]
    assert det.share == pytest.approx(2 / 3) and det.drift_detected
    assert det.decision is not None and det.decision.features["d"].method is Method.NONE


def test_policy_validation_names_the_parameter() -> None:
    with pytest.raises(ValueError, match="threshold must be a positive number, got -1"):
        DriftPolicy(threshold=-1)
    with pytest.raises(ValueError, match="alpha must be in"):
        DriftPolicy(alpha=2)
    with pytest.raises(ValueError, match="numeric_statistic cannot be linf"):
        DriftPolicy(numeric_statistic=Statistic.LINF)
    with pytest.raises(ValueError, match="statistic must be one of"):
        NumericDriftDetector(numeric_reference([1.0, 2.0]), Statistic.LINF)


def test_wasserstein_policy_uses_its_own_threshold() -> None:
    rng = np.random.default_rng(2)
    ref = numeric_reference(rng.normal(size=50_000))
    distance_only = DriftPolicy(Statistic.WASSERSTEIN, threshold=0.2, shift_alpha=0)
    det = NumericDriftDetector(ref, policy=distance_only)
    assert not det.update(rng.normal(0.1, 1, 5000)).drift_detected
    assert det.update(rng.normal(0.3, 1, 5000)).drift_detected
    assert det.decision is not None and det.decision.statistic == "wasserstein"


@pytest.mark.parametrize("rate", [0.01, 0.05])
def test_calibrated_thresholds_hit_the_false_alarm_rate(rate: float) -> None:
    rng = np.random.default_rng(12)
    cols = (
        Column("x", Role.FEATURE, numeric_reference(rng.gamma(2.0, size=100_000))),
        Column(
            "c", Role.FEATURE, categorical_reference(list(rng.choice(list("abcdefgh"), 100_000)))
        ),
    )
    b = calibrate(Baseline(columns=cols), window=800, false_alarm_rate=rate, seed=1)
    assert b.calibration is not None and set(b.calibration.thresholds) == {"x", "c"}
    policy = policy_for(b)
    # Fresh stationary windows from the same population: the per-feature alarm rate should
    # be near the target (binomial 99.9 % band over 3000 windows).
    n = 3000
    xs = NumericDriftDetector(cols[0].reference, policy=policy, name="x")  # type: ignore[arg-type]
    alarms = sum(xs.update(rng.gamma(2.0, size=800)).drift_detected for _ in range(n))
    band = 3.3 * np.sqrt(rate * (1 - rate) / n) + 0.006
    assert abs(alarms / n - rate) < band


# -- the shift test --------------------------------------------------------------------------


def test_shift_test_flags_a_slow_mean_shift_below_the_distance_threshold() -> None:
    """A 0.06-std shift on 10,000 rows: PSI ≈ 0.004, far below 0.1, but Welch's z ≈ 6."""
    rng = np.random.default_rng(21)
    ref = numeric_reference(rng.normal(size=100_000))
    det = NumericDriftDetector(ref)
    assert det.update(rng.normal(0.06, 1.0, 10_000)).drift_detected
    d = det.decision
    assert d is not None and d.method is Method.TEST and d.statistic == "mean_pvalue"
    assert d.value < 1e-5 and d.threshold == 1e-5 and math.isnan(d.adjusted_pvalue)
    # the distance alone does not see it, and shift_alpha = 0 turns the test off
    assert det._stats is not None and det._stats.psi < 0.02
    off = NumericDriftDetector(ref, policy=DriftPolicy(shift_alpha=0))
    assert not off.update(rng.normal(0.06, 1.0, 10_000)).drift_detected
    # an undrifted window does not flag
    assert not det.update(rng.normal(0.0, 1.0, 10_000)).drift_detected


def test_shift_test_needs_the_effect_floor_on_huge_windows() -> None:
    """On 2,000,000 rows against 1,000,000 a 0.012-std shift is significant (z ≈ 10) but
    below the 0.02 floor."""
    rng = np.random.default_rng(22)
    ref = numeric_reference(rng.normal(size=1_000_000))
    s = numeric_statistics(ref, rng.normal(0.012, 1.0, 2_000_000))
    assert s.mean_pvalue < 1e-5 and abs(s.mean_shift) < 0.02
    assert not DriftPolicy().decide({"x": s}).features["x"].drift
    assert DriftPolicy(min_mean_shift=0.005).decide({"x": s}).features["x"].drift


def test_shift_test_on_categories_uses_chi2_with_the_linf_floor() -> None:
    """A 4 % move of the mix towards the rarest category: PSI ≈ 0.03 < 0.1, χ² p ≈ 0."""
    levels = ["a", "b", "c", "d"]
    ref = categorical_reference(list(np.repeat(levels, [4000, 3000, 2000, 1000])))
    window = list(np.repeat(levels, [3600, 2800, 1900, 1700]))
    det = CategoricalDriftDetector(ref)
    det.update(window)
    d = det.decision
    assert d is not None and d.drift and d.statistic == "chi2_shift_pvalue"
    assert det._stats is not None and det._stats.psi < 0.1 and det._stats.linf >= 0.005
    strict = CategoricalDriftDetector(ref, policy=DriftPolicy(min_linf=0.1))
    assert not strict.update(window).drift_detected


def test_shift_policy_values_are_checked() -> None:
    with pytest.raises(ValueError, match="shift_alpha must be in"):
        DriftPolicy(shift_alpha=1.0)
    with pytest.raises(ValueError, match="min_mean_shift must be a number >= 0"):
        DriftPolicy(min_mean_shift=-0.1)
    with pytest.raises(ValueError, match="min_linf must be a number >= 0"):
        DriftPolicy(min_linf=math.nan)
