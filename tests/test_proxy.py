"""Proxy metrics: their values against plain NumPy, CBPE against its definition and against
labels drawn from calibrated scores, the change detectors and rules, their config, and the
engine publishing them (and health reacting) on a stream whose scores jump."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from kafka_io import json_messages
from sinks import MemorySink
from test_engine import config

from driftline.engine import Engine
from driftline.exceptions import ConfigError
from driftline.proxy import (
    ProxyBaseline,
    ProxyConfig,
    ProxyTracker,
    Rule,
    estimated_quality,
    window_metrics,
)
from driftline.quality import WORSE


def expected_auc(p: np.ndarray) -> float:
    """The published definition, pair by pair: every event is a positive with weight p and a
    negative with weight 1 − p; AUC = P(score of a positive > score of a negative), ties
    counting one half (Hanley & McNeil 1982), self-pairs included as the ROC sweep has them."""
    pos = (p / p.sum())[:, None]  # weights normalised first: subnormal scores would
    neg = ((1.0 - p) / (1.0 - p).sum())[None, :]  # underflow in a product of the sums
    gt = (p[:, None] > p[None, :]).astype(float) + 0.5 * (p[:, None] == p[None, :])
    return float((pos * neg * gt).sum())


scores = st.lists(
    st.one_of(st.floats(0.0, 1.0), st.sampled_from([0.0, 0.25, 0.5, 1.0])), max_size=60
)


@settings(max_examples=200, deadline=None)
@given(values=scores, threshold=st.sampled_from([0.1, 0.5, 0.9]))
def test_cbpe_matches_the_expected_confusion_matrix(values: list[float], threshold: float) -> None:
    p = np.sort(np.array(values, dtype=np.float64))
    got = estimated_quality(p, threshold)
    if p.shape[0] == 0:
        assert got == {"accuracy": None, "precision": None, "recall": None, "roc_auc": None}
        return
    called = p >= threshold
    tp, fp = p[called].sum(), (1 - p[called]).sum()
    fn, tn = p[~called].sum(), (1 - p[~called]).sum()
    assert got["accuracy"] == pytest.approx((tp + tn) / p.shape[0], abs=1e-12)
    if called.any():
        assert got["precision"] == pytest.approx(tp / (tp + fp), abs=1e-12)
    else:
        assert got["precision"] is None
    if tp + fn > 0:
        assert got["recall"] == pytest.approx(tp / (tp + fn), abs=1e-12)
    if p.sum() > 0 and (1 - p).sum() > 0:
        assert got["roc_auc"] == pytest.approx(expected_auc(p), abs=1e-9)
    else:
        assert got["roc_auc"] is None


def test_cbpe_estimates_what_labels_drawn_from_calibrated_scores_give() -> None:
    rng = np.random.default_rng(7)
    p = np.sort(rng.beta(0.6, 2.0, size=200_000))
    labels = rng.random(p.shape[0]) < p  # calibrated: P(label = 1 | score p) = p
    called = p >= 0.5
    est = estimated_quality(p, 0.5)
    assert est["accuracy"] == pytest.approx((called == labels).mean(), abs=0.005)
    assert est["precision"] == pytest.approx(labels[called].mean(), abs=0.01)
    assert est["recall"] == pytest.approx(called[labels].mean(), abs=0.01)
    # realised AUC by Mann-Whitney on the drawn labels
    ranks = np.argsort(np.argsort(p)) + 1.0
    n1, n0 = labels.sum(), (~labels).sum()
    auc = (ranks[labels].sum() - n1 * (n1 + 1) / 2) / (n1 * n0)
    assert est["roc_auc"] == pytest.approx(auc, abs=0.005)


def test_scores_outside_0_1_have_no_estimate() -> None:
    assert estimated_quality(np.array([-0.5, 0.2, 3.0]), 0.5)["accuracy"] is None


def test_window_metrics_against_numpy() -> None:
    rng = np.random.default_rng(1)
    raw = rng.random(1000)
    raw[::10] = np.nan
    finite = np.sort(raw[np.isfinite(raw)])
    latency = rng.gamma(2.0, 30.0, 1000)
    latency[:5] = np.nan
    cfg = ProxyConfig(threshold=0.7, fields=("latency_ms", "absent"))
    got = window_metrics(cfg, finite, 1000, 1000, 50.0, {"latency_ms": latency, "absent": None})
    assert got["prediction_mean"] == pytest.approx(np.nanmean(raw))
    assert got["positive_rate"] == pytest.approx((finite >= 0.7).mean())
    assert got["prediction_null_rate"] == pytest.approx(0.1)
    assert got["event_rate"] == pytest.approx(20.0)
    assert got["latency_ms"] == pytest.approx(np.nanmean(latency))
    assert got["absent"] is None
    regression = window_metrics(ProxyConfig(task="regression"), finite, 1000, 1000, None, {})
    assert "positive_rate" not in regression and "estimated" not in regression
    assert regression["event_rate"] is None


def test_rules_compare_with_the_training_value() -> None:
    up = Rule("positive_rate", max_ratio=3.0)
    assert up.check(0.30, 0.1) is not None and "3.00× training" in str(up.check(0.30, 0.1))
    assert up.check(0.29, 0.1) is None
    assert up.check(None, 0.1) is None and up.check(0.5, None) is None and up.check(1, 0) is None
    down = Rule("prediction_mean", min_ratio=0.5, severity="critical")
    assert down.check(0.05, 0.1) is not None and down.check(0.051, 0.1) is None


def positive_rates(rng: np.random.Generator, n: int, rate: float) -> list[float]:
    return list(rng.binomial(10_000, rate, size=n) / 10_000)


def test_page_hinkley_and_adwin_stay_quiet_on_noise_and_catch_a_jump() -> None:
    rng = np.random.default_rng(3)
    for detector in ("page_hinkley", "adwin"):
        tracker = ProxyTracker(
            ProxyConfig(detector=detector), ProxyBaseline({"positive_rate": 0.1})
        )
        quiet = [tracker.update({"positive_rate": r})[0] for r in positive_rates(rng, 300, 0.1)]
        assert not any(quiet), detector
        jumped = [tracker.update({"positive_rate": r})[0] for r in positive_rates(rng, 10, 0.3)]
        first = next(i for i, c in enumerate(jumped) if c)
        # Page-Hinkley signals on the first window at 3×; ADWIN needs enough windows on
        # each side of its cut for its bound (measured: 4-5 windows over five seeds)
        assert first <= {"page_hinkley": 0, "adwin": 6}[detector], (detector, first)
        assert jumped[first][0]["metric"] == "positive_rate"
        assert jumped[first][0]["by"] == detector


def test_a_series_without_a_training_value_is_taken_relative_to_its_first_value() -> None:
    """The event rate has no training value: 1,000 events/s with 1 % noise is quiet (fed
    raw, Page-Hinkley's threshold of 1.0 was crossed by the noise), a doubling is caught,
    and the scale survives a checkpoint (an old checkpoint without it still loads)."""
    rng = np.random.default_rng(7)
    tracker = ProxyTracker(ProxyConfig(), ProxyBaseline({}))
    quiet = [tracker.update({"event_rate": float(r)})[0] for r in rng.normal(1000, 10, 100)]
    assert not any(quiet)
    assert tracker.first["event_rate"] == pytest.approx(1000, rel=0.05)
    again = ProxyTracker(ProxyConfig(), ProxyBaseline({}))
    again.loads(tracker.dumps())
    assert again.first == tracker.first
    jumped = [again.update({"event_rate": float(r)})[0] for r in rng.normal(2000, 20, 5)]
    assert any(jumped)
    old = ProxyTracker(ProxyConfig(), ProxyBaseline({}))
    old.loads(pickle.dumps(tracker.detectors))  # the format before ``first``
    assert old.detectors.keys() == tracker.detectors.keys() and old.first == {}


def test_a_realised_metric_counts_only_when_it_gets_worse() -> None:
    """Realised quality (``quality.WORSE``): accuracy that jumps up, or a log loss that
    falls, raises nothing; the same jumps the other way are changes. Both detectors."""
    rng = np.random.default_rng(5)
    for detector in ("page_hinkley", "adwin"):
        # large jumps: ADWIN's bound is loose for values this close together
        for metric, better, worse in (("accuracy", 0.95, 0.1), ("log_loss", 0.1, 3.0)):
            for after, counts in ((better, False), (worse, True)):
                tracker = ProxyTracker(
                    ProxyConfig(detector=detector),
                    ProxyBaseline({}),
                    series=(metric,),
                    worse=WORSE,
                )
                start = 0.6 if metric == "accuracy" else 1.0
                values = [*rng.normal(start, 0.01, 50), *rng.normal(after, 0.01, 40)]
                changes = [tracker.update({metric: float(v)})[0] for v in values]
                assert not any(changes[:50]), (detector, metric)
                assert any(changes[50:]) == counts, (detector, metric, after)


def test_a_broken_rule_gives_its_severity_and_reason() -> None:
    cfg = ProxyConfig(
        detector="none", rules=(Rule("positive_rate", max_ratio=3.0, severity="critical"),)
    )
    tracker = ProxyTracker(cfg, ProxyBaseline({"positive_rate": 0.1}))
    assert tracker.update({"positive_rate": 0.12}) == ([], [], "ok")
    changes, reasons, severity = tracker.update({"positive_rate": 0.35})
    assert severity == "critical" and changes[0]["by"] == "rule"
    assert reasons == ["positive_rate 0.35 is 3.50× training (0.1)"]


def test_a_pickled_tracker_continues_where_it_stopped() -> None:
    rng = np.random.default_rng(5)
    series = positive_rates(rng, 40, 0.1) + positive_rates(rng, 20, 0.16)
    cfg = ProxyConfig()
    base = ProxyBaseline({"positive_rate": 0.1})
    plain = ProxyTracker(cfg, base)
    want = [plain.update({"positive_rate": r}) for r in series]
    first = ProxyTracker(cfg, base)
    got = [first.update({"positive_rate": r}) for r in series[:30]]
    second = ProxyTracker(cfg, base)
    second.loads(first.dumps())
    got += [second.update({"positive_rate": r}) for r in series[30:]]
    assert got == want
    assert any(c for c, _, _ in want)  # the series does change, so the state matters


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ("[models.proxy]\ntask = 'ranking'", "models[0].proxy.task must be one of"),
        ("[models.proxy]\nthreshold = 'high'", "models[0].proxy.threshold must be a number"),
        ("[models.proxy]\nfields = ['event_rate']", "is a built-in metric"),
        ("[models.proxy]\nwindows = 3", "models[0].proxy.windows: unknown key"),
        (
            "[[models.proxy.rules]]\nmetric = 'latency'\nmax_ratio = 2",
            "models[0].proxy.rules[0].metric must be one of",
        ),
        (
            "[[models.proxy.rules]]\nmetric = 'positive_rate'",
            "models[0].proxy.rules[0]: give max_ratio and/or min_ratio",
        ),
    ],
)
def test_proxy_config_errors_name_the_key(
    data: Path,
    tmp_path: Path,
    extra: str,
    message: str,
) -> None:
    with pytest.raises(ConfigError, match=message.replace("[", r"\[").replace("]", r"\]")):
        config(data, tmp_path, extra=extra)


def test_engine_publishes_proxy_metrics_and_health_follows_a_score_jump(
    data: Path,
    tmp_path: Path,
) -> None:
    # The example's serving stream drifts from its third window of 2,000 on: the share of
    # scores above the training 90th percentile goes from ~0.1 to over 0.2.
    train = pq.read_table(data / "training.parquet")["score"].to_numpy()
    threshold = float(np.quantile(train, 0.9))
    extra = (
        f"[models.proxy]\nthreshold = {threshold!r}\nfields = ['amount']\nmin_windows = 2\n"
        "[[models.proxy.rules]]\nmetric = 'positive_rate'\nmax_ratio = 2.0\n"
        "severity = 'critical'\n"
    )
    cfg = config(data, tmp_path, extra=extra)
    table = pq.read_table(data / "serving.parquet")
    sink = MemorySink()
    engine = Engine(cfg, sink)
    for start in range(0, table.num_rows, 2000):
        engine.process(json_messages(table.slice(start, 2000), start))
    engine.close()
    skew = [r for r in sink.records if r["kind"] == "skew"]
    assert len(skew) == 6
    for record, start in zip(skew, range(0, 12_000, 2000), strict=True):
        window = table.slice(start, 2000)
        scores = window["score"].to_numpy()
        proxy = record["proxy"]
        assert proxy["prediction_mean"] == pytest.approx(scores.mean())
        assert proxy["positive_rate"] == pytest.approx((scores >= threshold).mean())
        assert proxy["prediction_null_rate"] == 0.0
        assert proxy["amount"] == pytest.approx(pc.mean(window["amount"]).as_py())
        assert proxy["baseline"]["positive_rate"] == pytest.approx(
            (train >= threshold).mean(), abs=1e-3
        )
        assert proxy["estimated"]["accuracy"] is not None
    assert not any(r["proxy"]["changes"] for r in skew[:2])
    rates = [r["proxy"]["positive_rate"] / r["proxy"]["baseline"]["positive_rate"] for r in skew]
    broken = [i for i, ratio in enumerate(rates) if ratio >= 2.0]
    assert broken and broken[0] >= 2
    hit = skew[broken[0]]
    assert "rule" in {c["by"] for c in hit["proxy"]["changes"]}
    assert any(r.startswith("positive_rate") for r in hit["reasons"])
    assert hit["observed_health"] == "critical"
    assert any("page_hinkley" in {c["by"] for c in r["proxy"]["changes"]} for r in skew[2:])


def test_river_is_imported_only_when_a_detector_is_made() -> None:
    """river.drift pulls in scikit-learn, pandas and scipy.stats (about 190 MB and 1.5 s):
    a replay or engine that never makes a change detector must not pay for it."""
    import subprocess
    import sys

    code = (
        "import sys\n"
        "import driftline.replay, driftline.engine, driftline.proxy as p\n"
        "assert 'river' not in sys.modules, 'imported at start'\n"
        "t = p.ProxyTracker(p.ProxyConfig(), p.ProxyBaseline({}))\n"
        "t.update({'prediction_mean': 0.5})\n"
        "assert 'river' in sys.modules, 'not imported by the first detector'\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
