"""Realised quality's test on per-pair losses (``proxy.LossShift``): its z against the
two-sample formula computed from the pooled pairs, its CUSUM against the recursion by hand,
its behaviour on quiet, near-perfect and shifted models, ``labels.pair_losses`` against
``realised_quality``, and the tracker that feeds it (checkpoint, config keys)."""

from __future__ import annotations

import math
import pickle
import re
import sys
from pathlib import Path

import numpy as np
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st
from scipy import special, stats
from test_engine import config

from driftline import baseline as bl
from driftline.exceptions import ConfigError
from driftline.labels import LOSS_BOUNDS, pair_losses, realised_quality
from driftline.proxy import LossShift, ProxyConfig, ProxyTracker, poisson_z
from driftline.quality import performance_record, quality_tracker


def oracle_z(reference: list[np.ndarray], window: np.ndarray, pseudo: float) -> float:
    """The two-sample z of the window mean against every reference pair and one pseudo-pair,
    from the concatenated pairs (population variance, as the pooled sums give)."""
    ref = np.concatenate([*reference, [pseudo]])
    sigma = ref.std()
    return float((window.mean() - ref.mean()) / (sigma * math.sqrt(1 / window.size + 1 / ref.size)))


def oracle_poisson_z(count: float, expected: float) -> float:
    """SciPy: Φ⁻¹ of the mid-p upper tail ½(P(X ≥ c) + P(X ≥ c + 1)) of a Poisson count,
    P(X ≥ a) the regularized lower incomplete gamma P(a, λ) (1 for a ≤ 0). For a subnormal
    a SciPy's gammainc gives 0 (with a small λ), where P(a, λ) tends to 1 as a → 0 (and
    SciPy gives 1 from the smallest normal a on): the oracle takes the limit there."""

    def tail(a: float) -> float:
        if a <= 0 or a < sys.float_info.min:
            return 1.0
        return float(special.gammainc(a, expected))

    return float(stats.norm.isf(0.5 * (tail(count) + tail(count + 1))))


@settings(max_examples=300, deadline=None)
@given(
    count=st.one_of(st.integers(0, 60).map(float), st.floats(0.0, 60.0)),
    expected=st.floats(1e-3, 50.0),
)
def test_poisson_z_equals_scipy(count: float, expected: float) -> None:
    """Equal to 1e-6 for |z| ≤ 6; further out (tails below 1e-9, where 1 − Q(a, λ) loses
    digits) only the side matters, since one window's z counts at most 4."""
    want = oracle_poisson_z(count, expected)
    got = poisson_z(count, expected)
    if abs(want) > 6:
        assert math.copysign(1, got) == math.copysign(1, want) and abs(got) > 5.9
    else:
        assert got == pytest.approx(want, rel=1e-6, abs=1e-6)


windows = st.lists(
    st.lists(
        st.one_of(st.floats(0.0, 40.0), st.sampled_from([0.0, 1.0, 36.04])),
        min_size=0,
        max_size=40,
    ),
    min_size=1,
    max_size=8,
)


@settings(max_examples=300, deadline=None)
@given(series=windows, bound=st.sampled_from([None, 1.0, 36.04, 40.0]))
@example(series=[[2.2e-313], [1.0]], bound=None)  # a subnormal largest loss: count overflows
@example(series=[[1.0], [2.2e-313]], bound=None)  # a subnormal count: P(a, λ) → 1
def test_z_and_cusum_equal_the_formula_over_the_pooled_pairs(
    series: list[list[float]], bound: float | None
) -> None:
    """Sizes 0-40 pairs, ties (losses 0 and the bound), constant windows, empty windows
    (no change of state): z equals the two-sample formula on the concatenated reference
    with its pseudo-pair, and S the capped recursion; h is out of reach, so nothing resets."""
    shift = LossShift(k=0.5, h=1e9, min_windows=1, bound=bound)
    reference: list[np.ndarray] = []
    s = 0.0
    for values in series:
        x = np.asarray(values, dtype=np.float64)
        before = (shift.n, shift.mean, shift.m2, shift.windows, shift.s)
        assert shift.update(x) is False
        if x.size == 0:
            assert (shift.n, shift.mean, shift.m2, shift.windows, shift.s) == before
            continue
        if reference:
            pairs = np.concatenate(reference)
            pseudo = pairs.max() if bound is None else bound
            ref = np.concatenate([pairs, [pseudo]])
            scale = max(abs(ref.mean()), abs(x.mean()), 1e-300)
            if ref.std() <= 1e-12 * scale:
                # every loss so far equal: no spread to measure against
                normal = math.inf if x.mean() - ref.mean() > 1e-12 * scale else 0.0
            else:
                normal = oracle_z(reference, x, pseudo)
            want = normal
            if pseudo > 0:  # the Poisson count in units of the pseudo-pair, if smaller
                # Python floats: a subnormal largest loss makes the count overflow to inf
                count = float(x.sum()) / float(pseudo)
                poisson = oracle_poisson_z(count, x.size * float(ref.mean()) / float(pseudo))
                want = min(normal, poisson)
            if abs(want) > 6:  # far out in a tail: the side is the value (see above)
                assert math.copysign(1, shift.z) == math.copysign(1, want), (shift.z, want)
                assert abs(shift.z) > 5.9, (shift.z, want)
            else:
                assert shift.z == pytest.approx(want, rel=1e-6, abs=1e-6)
            s = max(0.0, s + min(shift.z, shift.cap) - shift.k)
        else:
            assert math.isnan(shift.z)
        assert shift.s == pytest.approx(s, rel=1e-9, abs=1e-9)
        reference.append(x)
        assert shift.n == sum(r.size for r in reference)
        assert shift.mean == pytest.approx(np.concatenate(reference).mean(), rel=1e-9, abs=1e-12)


def test_non_finite_losses_are_left_out() -> None:
    a, b = LossShift(min_windows=1, bound=1.0), LossShift(min_windows=1, bound=1.0)
    for w in ([0.0, 1.0, 0.0], [1.0, 1.0, 0.0]):
        a.update(np.array(w))
        b.update(np.array([*w, math.nan, math.inf]))
    assert (a.n, a.mean, a.m2, a.z, a.s) == (b.n, b.mean, b.m2, b.z, b.s)
    assert b.update(np.array([math.nan])) is False and b.n == 6


def errors(rng: np.random.Generator, rate: float, n: int = 1000) -> np.ndarray:
    return (rng.random(n) < rate).astype(np.float64)


def test_a_quiet_model_does_not_signal_and_a_worse_one_does_within_two_windows() -> None:
    """Error 0.012 for 2,000 windows of 1,000 pairs (2 million pairs): no signal. Then
    0.075 (SEA's change in benchmarks/detection.py): signalled at the second window,
    since one window's z counts at most 4."""
    rng = np.random.default_rng(8)
    shift = LossShift(bound=1.0)
    assert not any(shift.update(errors(rng, 0.012)) for _ in range(2000))
    got = [shift.update(errors(rng, 0.075)) for _ in range(3)]
    assert got == [False, True, False]  # the reference restarts from the signalling window


@pytest.mark.parametrize(
    ("rate", "pairs"),
    [(1e-4, 1000), (1e-3, 1000), (0.012, 20), (0.012, 5)],
)
def test_rare_mistakes_do_not_signal(rate: float, pairs: int) -> None:
    """A quiet model whose windows hold about 0.1 to 12 mistakes: 20,000 windows, no signal
    (the normal z alone, the Poisson guard taken out of LossShift, signals on these)."""
    rng = np.random.default_rng(3)
    shift = LossShift(bound=1.0)
    assert not any(shift.update(errors(rng, rate, pairs)) for _ in range(20_000))


def test_a_near_perfect_models_rare_confident_mistakes_do_not_signal_in_log_loss() -> None:
    rng = np.random.default_rng(3)
    top = LOSS_BOUNDS["log_loss"]
    shift = LossShift(bound=top)
    signals = 0
    for _ in range(20_000):
        x = -np.log(rng.uniform(0.95, 0.999, 1000))
        x[rng.random(1000) < 1e-4] = top
        signals += shift.update(x)
    assert signals == 0


def test_constant_losses_are_not_rounding_noise() -> None:
    """Every |error| 0.7 (not exact in binary): the pooled spread is ~1e-29, not 0; no z
    is read from it, and a rise of the constant is still a change."""
    for value in (0.3, 0.7):
        shift = LossShift()
        assert not any(shift.update(np.full(1000 + 7 * w, value)) for w in range(12))
        assert shift.z == 0.0
    assert shift.update(np.full(1000, 0.8)) is False and shift.z > shift.cap
    assert shift.update(np.full(1000, 0.8))


def test_a_better_model_never_signals() -> None:
    rng = np.random.default_rng(9)
    shift = LossShift(bound=1.0)
    for _ in range(20):
        shift.update(errors(rng, 0.3))
    assert not any(shift.update(errors(rng, 0.01)) for _ in range(50))
    assert shift.s == 0.0


def test_a_near_perfect_model_needs_more_than_one_bad_window() -> None:
    """A reference without a single mistake: the pseudo-pair keeps σ above 0, so the first
    mistakes are a finite z; one window of 4 mistakes in 1,000 (z above the cap) is not
    a signal alone, a second one right after it is."""
    shift = LossShift(bound=1.0)
    for _ in range(9):
        assert not shift.update(np.zeros(1000))
    assert shift.m2 == 0.0
    four = np.zeros(1000)
    four[:4] = 1.0
    assert not shift.update(four)
    assert math.isfinite(shift.z) and shift.z > shift.cap
    assert shift.update(four)


def test_without_a_bound_the_largest_loss_seen_is_the_pseudo_pair() -> None:
    shift = LossShift(min_windows=1)
    ref = np.array([1.0, 2.0, 3.0])
    shift.update(ref)
    shift.update(np.array([3.0, 3.0]))
    pooled = np.array([1.0, 2.0, 3.0, 3.0])  # the reference and its pseudo-pair at 3
    want = min(
        oracle_z([ref], np.array([3.0, 3.0]), 3.0),
        oracle_poisson_z(6.0 / 3.0, 2 * pooled.mean() / 3.0),
    )
    assert shift.z == pytest.approx(want)
    assert shift.z != pytest.approx(oracle_z([ref], np.array([3.0, 3.0]), 0.0))
    # constant so far, pseudo-pair included: the normal z of any rise is infinite, so the
    # Poisson count decides (1.5 against 1 expected, one pair: z 0.56, nothing to add to S);
    # a thousand pairs so raised is a z beyond the cap
    const = LossShift(min_windows=1)
    const.update(np.array([1.0, 1.0]))
    const.update(np.array([1.0]))
    assert const.z == 0.0
    const.update(np.array([1.5]))
    assert const.z == pytest.approx(oracle_poisson_z(1.5, 1.0)) and const.s == 0.0
    big = LossShift(min_windows=1)
    big.update(np.ones(1000))
    big.update(np.full(1000, 1.5))
    assert big.z > big.cap and big.s == pytest.approx(big.cap - big.k)


@settings(max_examples=200, deadline=None)
@given(
    scores=st.lists(st.one_of(st.floats(0.0, 1.0), st.sampled_from([0.0, 0.5, 1.0])), max_size=50),
    seed=st.integers(0, 2**32 - 1),
    threshold=st.sampled_from([0.1, 0.5, 0.9]),
)
def test_pair_losses_average_to_the_realised_metrics(
    scores: list[float], seed: int, threshold: float
) -> None:
    """Accuracy = 1 − mean 0/1 loss and log loss = mean of −ln p (realised_quality's, itself
    checked against scikit-learn in test_labels); pairs with a NaN score or label, or a
    label neither 0 nor 1, are left out of both."""
    rng = np.random.default_rng(seed)
    s = np.asarray(scores, dtype=np.float64)
    y = rng.integers(0, 2, s.size).astype(np.float64)
    if s.size:
        s[rng.random(s.size) < 0.1] = math.nan
        y[rng.random(s.size) < 0.1] = 2.0
    got = pair_losses("classification", threshold, s, y)
    want = realised_quality("classification", threshold, s, y)
    if want["pairs"] == 0:
        assert got["accuracy"].size == 0
        return
    assert got["accuracy"].size == want["pairs"]
    assert 1.0 - got["accuracy"].mean() == pytest.approx(want["accuracy"], abs=1e-12)
    assert got["log_loss"].mean() == pytest.approx(want["log_loss"], rel=1e-12, abs=1e-12)
    assert got["log_loss"].max() <= LOSS_BOUNDS["log_loss"] + 1e-12


def test_pair_losses_of_a_regression_and_out_of_range_scores() -> None:
    s = np.array([1.0, 3.0, math.nan, 10.0])
    y = np.array([2.0, 3.0, 1.0, 4.0])
    got = pair_losses("regression", 0.5, s, y)
    want = realised_quality("regression", 0.5, s, y)
    assert got["mae"].tolist() == [1.0, 0.0, 6.0]
    assert got["mae"].mean() == want["mae"]
    assert math.sqrt(got["rmse"].mean()) == pytest.approx(want["rmse"])
    # a score outside [0, 1] has no log loss, as realised_quality has none
    got = pair_losses("classification", 0.5, np.array([0.2, 1.5]), np.array([0.0, 1.0]))
    assert set(got) == {"accuracy"}


def test_the_realised_tracker_tests_losses_and_survives_a_checkpoint(data: Path) -> None:
    """quality_tracker: accuracy and log loss go to a LossShift each (the record's change
    says ``cusum`` and the window's z); the tracker pickled half-way continues as an
    uninterrupted one; a checkpoint of the format before the shifts still loads."""
    baseline = bl.load(data / "fraud.dlb")
    cfg = ProxyConfig()
    rng = np.random.default_rng(4)
    n = 1000
    batches = []
    for i in range(16):
        y = (rng.random(n) < 0.3).astype(np.float64)
        wrong = rng.random(n) < (0.05 if i < 12 else 0.2)
        right_score = rng.uniform(0.6, 0.95, n)
        p_pos = np.where(y == 1.0, right_score, 1.0 - right_score)
        batches.append((np.where(wrong, 1.0 - p_pos, p_pos), y))
    ts = np.zeros(n)

    def run(tracker: ProxyTracker, part: list) -> list[dict]:
        return [
            performance_record(("m", "1"), i, tracker, ts, s, y, source="data")
            for i, (s, y) in enumerate(part)
        ]

    plain = run(quality_tracker(baseline, cfg), batches)
    flagged = [r["window"]["index"] for r in plain if r["changes"]]
    assert flagged and min(flagged) >= 12
    change = next(c for r in plain for c in r["changes"] if c["metric"] == "accuracy")
    assert change["by"] == "cusum" and change["z"] > 3.5
    assert any(x.startswith("realised accuracy: worse at") for r in plain for x in r["reasons"])

    first = quality_tracker(baseline, cfg)
    got = run(first, batches[:10])
    second = quality_tracker(baseline, cfg)
    second.loads(first.dumps())
    got += [
        performance_record(("m", "1"), 10 + i, second, ts, s, y, source="data")
        for i, (s, y) in enumerate(batches[10:])
    ]
    assert got == plain

    old = quality_tracker(baseline, cfg)
    old.loads(pickle.dumps((first.detectors, first.first)))  # before ``shifts``
    assert old.detectors.keys() == first.detectors.keys() != set() and old.shifts == {}


def test_regression_mae_in_large_units_is_quiet_on_noise_and_caught_on_a_rise(data: Path) -> None:
    """MAE and RMSE need no training value: an error of about 50,000 per pair is quiet for
    100 windows; errors half as large again are caught."""
    tracker = quality_tracker(bl.load(data / "fraud.dlb"), ProxyConfig(task="regression"))
    rng = np.random.default_rng(11)
    ts = np.zeros(500)

    def window(scale: float) -> dict:
        y = rng.normal(0.0, 1.0, 500)
        s = y + rng.normal(0.0, scale, 500)
        return performance_record(("m", "1"), 0, tracker, ts, s, y, source="data")

    assert not any(window(62_500)["changes"] for _ in range(100))
    rise = [window(94_000)["changes"] for _ in range(5)]
    assert any(rise) and {c["metric"] for r in rise for c in r} <= {"mae", "rmse"}


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ("cusum_k = -1", "models[0].proxy.cusum_k must be a number in [0.0, inf]"),
        ("cusum_h = 0", "models[0].proxy.cusum_h must be a number in (0.0, inf]"),
        ("cusum_h = 'high'", "models[0].proxy.cusum_h must be a number"),
    ],
)
def test_cusum_keys_are_checked(data: Path, tmp_path: Path, extra: str, message: str) -> None:
    with pytest.raises(ConfigError, match=re.escape(message)):
        config(data, tmp_path, extra=f"[models.proxy]\n{extra}\n")
    ok = config(data, tmp_path, extra="[models.proxy]\ncusum_k = 0\ncusum_h = 8\n")
    assert (ok.models[0].proxy.cusum_k, ok.models[0].proxy.cusum_h) == (0.0, 8.0)
