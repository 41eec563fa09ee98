"""Proxy metrics of a model version's windows, and the jumps in them.

Before labels arrive, what the model outputs is the first sign of trouble. Per window:

- ``prediction_mean``: the mean of the finite predictions;
- ``positive_rate`` (classification): the share of predictions at or above the threshold;
- ``prediction_null_rate``: the share of events whose prediction is missing or not finite;
- ``event_rate``: events per second of event time (``null`` when the window spans none);
- the mean of every numeric field the user names (``[models.proxy] fields``), e.g. a
  latency or a user action such as "moved to spam" (0/1);
- ``estimated`` (classification, scores in [0, 1]): accuracy, precision, recall and ROC AUC
  expected from the scores alone, assuming they are calibrated probabilities — the
  confidence-based performance estimation (CBPE) of NannyML's documentation: a prediction
  scored p is correct with probability p when called positive and 1 − p when called
  negative, so the expected confusion matrix is a sum of scores (expected TP = Σ p over the
  positives called, FP = Σ (1 − p) over them, FN = Σ p over the negatives called).

Each series is checked for jumps two ways (:class:`ProxyTracker`):

- river's change detectors, Page-Hinkley (Page 1954; Hinkley 1971) by default or ADWIN
  (Bifet & Gavaldà 2007), fed the value relative to the training baseline (value / baseline,
  so 1.0 means "as in training" and one threshold fits every metric), or, when there is
  no baseline (event rate, fields not in the baseline), the value relative to the series'
  first one;
- relative-change rules against the baseline (``[[models.proxy.rules]]``), e.g.
  ``metric = "positive_rate", max_ratio = 3.0``: "positive rate up 3× vs training".

A detected change or a broken rule is a reason of the window's health (``warning``, or the
rule's ``severity``).
"""

from __future__ import annotations

import math
import pickle
from collections.abc import Mapping
from dataclasses import dataclass, field
from statistics import NormalDist
from typing import Any

import numpy as np
from numpy.typing import NDArray

from driftline.baseline import Baseline
from driftline.detectors import NumericReference
from driftline.detectors.location import merge_moments
from driftline.detectors.special import chi2_sf
from driftline.health import Health

TASKS = ("classification", "regression")
DETECTORS = ("page_hinkley", "adwin", "none")
SEVERITIES = ("warning", "critical")
_TOL = 1e-12


@dataclass(frozen=True)
class Rule:
    """A window's ``metric`` against its training value: broken when the ratio
    value / baseline is at least ``max_ratio`` or at most ``min_ratio``."""

    metric: str
    max_ratio: float | None = None
    min_ratio: float | None = None
    severity: str = "warning"

    def check(self, value: float | None, baseline: float | None) -> str | None:
        """The reason when broken, else None (also when either side is unknown or 0)."""
        if value is None or baseline is None or baseline == 0:
            return None
        ratio = value / baseline
        # compared with a relative tolerance of 1e-12: 0.3 / 0.1 is 2.9999999999999996
        if self.max_ratio is not None and ratio >= self.max_ratio * (1 - _TOL):
            return f"{self.metric} {value:.4g} is {ratio:.2f}× training ({baseline:.4g})"
        if self.min_ratio is not None and ratio <= self.min_ratio * (1 + _TOL):
            return f"{self.metric} {value:.4g} is {ratio:.2f}× training ({baseline:.4g})"
        return None


@dataclass(frozen=True)
class ProxyConfig:
    """``[models.proxy]``."""

    task: str = "classification"
    threshold: float = 0.5
    """Classification: a prediction at or above it is a positive."""
    fields: tuple[str, ...] = ()
    """Numeric event fields (features or top-level) whose window mean is tracked."""
    detector: str = "page_hinkley"
    rules: tuple[Rule, ...] = ()
    ph_threshold: float = 1.0
    """Page-Hinkley's threshold on the cumulative deviation of the relative series: 1.0
    is, e.g., one window at 2× training, or five windows 20 % off."""
    min_windows: int = 5
    """Windows seen before a detector may signal."""
    cusum_k: float = 1.0
    """Realised quality's :class:`LossShift`: the allowance k per window, in standard
    errors."""
    cusum_h: float = 5.0
    """Realised quality's :class:`LossShift`: the decision threshold h, in standard
    errors."""


@dataclass(frozen=True)
class ProxyBaseline:
    """The training values the relative series and the rules are measured against."""

    values: Mapping[str, float]

    @classmethod
    def of(cls, baseline: Baseline, cfg: ProxyConfig) -> ProxyBaseline:
        out: dict[str, float] = {}
        pred = baseline.prediction
        if pred is not None and isinstance(pred.reference, NumericReference):
            ref = pred.reference
            out["prediction_mean"] = ref.mean
            total = ref.count + ref.missing + ref.nonfinite
            if total:
                out["prediction_null_rate"] = (ref.missing + ref.nonfinite) / total
            if cfg.task == "classification" and ref.sample.shape[0]:
                below = np.searchsorted(ref.sample, cfg.threshold, side="left")
                out["positive_rate"] = 1.0 - below / ref.sample.shape[0]
        for name in cfg.fields:
            col = next((c for c in baseline.monitored if c.name == name), None)
            if col is not None and isinstance(col.reference, NumericReference):
                out[name] = col.reference.mean
        return cls({k: float(v) for k, v in out.items() if math.isfinite(v)})


def _mean(values: NDArray[np.float64]) -> float | None:
    return float(values.mean()) if values.shape[0] else None


def estimated_quality(scores: NDArray[np.float64], threshold: float) -> dict[str, float | None]:
    """CBPE: accuracy, precision, recall and ROC AUC expected from sorted finite scores in
    [0, 1], taken as calibrated probabilities of the positive class (see the module
    docstring). AUC: the expected ROC curve has TPR(t) = Σ_{p ≥ t} p / Σ p and
    FPR(t) = Σ_{p ≥ t} (1 − p) / Σ (1 − p); its area by the trapezoid rule over the
    distinct scores."""
    n = scores.shape[0]
    none: dict[str, float | None] = {
        "accuracy": None,
        "precision": None,
        "recall": None,
        "roc_auc": None,
    }
    if n == 0 or scores[0] < 0.0 or scores[-1] > 1.0:
        return none
    k = int(np.searchsorted(scores, threshold, side="left"))  # the first positive call
    pos, neg = scores[k:], scores[:k]
    tp = float(pos.sum())
    fp = float((1.0 - pos).sum())
    fn = float(neg.sum())
    tn = float((1.0 - neg).sum())
    out = dict(none)
    out["accuracy"] = (tp + tn) / n
    out["precision"] = tp / (tp + fp) if pos.shape[0] else None
    out["recall"] = tp / (tp + fn) if tp + fn > 0 else None
    p_all, q_all = tp + fn, fp + tn
    if p_all > 0 and q_all > 0:
        # sweep the threshold down through the distinct scores
        desc = scores[::-1]
        tps = np.cumsum(desc)
        fps = np.cumsum(1.0 - desc)
        last = np.append(desc[1:] != desc[:-1], True)  # the end of each run of ties
        tpr = np.concatenate(([0.0], tps[last] / p_all))
        fpr = np.concatenate(([0.0], fps[last] / q_all))
        out["roc_auc"] = float(np.sum((fpr[1:] - fpr[:-1]) * (tpr[1:] + tpr[:-1]) / 2.0))
    return out


def window_metrics(
    cfg: ProxyConfig,
    predictions: NDArray[np.float64] | None,
    prediction_count: int,
    count: int,
    span: float | None,
    fields: Mapping[str, NDArray[np.float64] | None],
) -> dict[str, Any]:
    """The proxy metrics of one window: ``predictions`` sorted and finite (None when the
    window has no prediction column), ``prediction_count`` its rows, ``count`` the events,
    ``span`` the event time it covers in seconds, ``fields`` each named field's values
    (NaN where missing; None when absent)."""
    out: dict[str, Any] = {}
    if predictions is not None:
        n = predictions.shape[0]
        out["prediction_mean"] = _mean(predictions)
        out["prediction_null_rate"] = (
            (prediction_count - n) / prediction_count if prediction_count else None
        )
        if cfg.task == "classification":
            above = n - int(np.searchsorted(predictions, cfg.threshold, side="left"))
            out["positive_rate"] = above / n if n else None
            out["estimated"] = estimated_quality(predictions, cfg.threshold)
    out["event_rate"] = count / span if span is not None and span > 0 else None
    for name, values in fields.items():
        if values is None:
            out[name] = None
            continue
        finite = values[np.isfinite(values)]
        out[name] = _mean(finite)
    return out


SERIES = ("prediction_mean", "positive_rate", "prediction_null_rate", "event_rate")


@dataclass
class LossShift:
    """Has the mean loss per pair risen by more than the sampling error of a window
    explains? A one-sided CUSUM (Page 1954, "Continuous inspection schemes") of standardised
    window means, for a realised metric whose pairs each carry a loss (0/1 for accuracy,
    −ln p for log loss, |e| for MAE, e² for RMSE's mean square).

    Window t's mean loss m_t (n_t pairs) is compared with the pooled mean μ and variance σ²
    of the N pairs before it, since the first window or the last signal:

        z_t = (m_t − μ) / (σ · sqrt(1/n_t + 1/N))

    the two-sample z statistic, ≈ N(0, 1) by the central limit theorem while nothing
    changes; and since each window joins the reference only after it is tested, z_1, z_2,
    … are nearly independent (recursive residuals; Brown, Durbin & Evans 1975). The
    CUSUM S_t = max(0, S_{t−1} + min(z_t, c) − k) signals when S_t > h (once at least
    ``min_windows`` windows were seen); the reference then starts again from that window.
    With k = 1 and h = 5 a quiet series signals once in about 10⁵ windows (Siegmund's
    approximation of the in-control run length, exp(2k(h + 1.166)) / 2k²), and a shift of
    z = 2 per window within six on average.

    z is winsorised at c = 4 (Hawkins 1993, "Robustification of cumulative sum charts by
    winsorization"), so no single window signals alone, however extreme: two in a row
    above 3.5 do. One bad batch of labels pages nobody; and for a near-perfect model,
    whose reference has almost no mistakes, the normal approximation of a few mistakes is
    poor (see below).

    Standardising by the window's own sampling error is what a series of window values
    fed to Page-Hinkley lacks: there one threshold in the metric's units must fit a
    near-perfect model (a log loss of 0.01 that one confident mistake moves by 0.036) and
    a mediocre one (a log loss of 7 with a window-to-window spread of 0.5).

    The reference holds one pseudo-pair at the largest loss possible (``bound``; for MAE
    and RMSE, which have none, the largest seen), as Laplace's rule of succession adds one
    to the count of an event not yet seen: without it, a reference of windows with no
    mistake at all has σ = 0, and a model's first mistake would be an infinite z.

    When losses are rare — a near-perfect model's few mistakes, or windows of a few pairs —
    the window mean is far from normal: one mistake where 0.1 is expected reads as z ≈ 2.8
    (upper tail 0.003), while such a window comes once in ten. So z is also read from the
    window's losses counted in units of that largest loss c, as a Poisson count against
    the reference's rate (:func:`poisson_z`), and the smaller z is used. For 0/1 losses at
    a low rate the binomial is close to that Poisson count; losses spread below c are
    less variable than c times a Poisson count of the same mean (Bennett 1962, "Probability
    inequalities for the sum of independent random variables", bounds their tail by the
    Poisson one), so there the normal z is the smaller and stands.
    """

    k: float = 1.0
    h: float = 5.0
    min_windows: int = 5
    bound: float | None = None
    cap: float = 4.0
    """c: the most one window's z adds to the CUSUM."""
    n: int = 0
    """Pairs in the reference (the pseudo-pair not counted)."""
    mean: float = 0.0
    m2: float = 0.0
    """Sum of squared deviations from ``mean`` of the reference pairs."""
    top: float = 0.0
    """The largest loss in the reference (the pseudo-pair's value without a bound)."""
    windows: int = 0
    """Windows seen since the first or the last signal."""
    s: float = 0.0
    z: float = math.nan
    """The latest window's z (NaN before the reference has a window)."""

    def update(self, losses: NDArray[np.float64]) -> bool:
        """Test one window's per-pair losses, add them to the reference, and return
        whether the CUSUM signals. Non-finite losses are left out; a window without a
        finite one changes nothing."""
        x = np.asarray(losses, dtype=np.float64)
        x = x[np.isfinite(x)]
        n = int(x.shape[0])
        if n == 0:
            return False
        m = float(x.mean())
        m2 = float(((x - m) ** 2).sum())
        self.windows += 1
        self.z = math.nan
        if self.n:
            pseudo = self.top if self.bound is None else self.bound
            big, mu, var_sum = merge_moments(self.n, self.mean, self.m2, 1, pseudo, 0.0)
            sigma = math.sqrt(var_sum / big)
            scale = max(abs(mu), abs(m), 1e-300)
            if sigma > _TINY * scale:
                self.z = (m - mu) / (sigma * math.sqrt(1.0 / n + 1.0 / big))
            else:  # every loss so far equal (up to rounding), the pseudo-pair among them
                self.z = math.inf if m - mu > _TINY * scale else 0.0
            if pseudo > 0.0:
                self.z = min(self.z, poisson_z(float(x.sum()) / pseudo, n * mu / pseudo))
            self.s = max(0.0, self.s + min(self.z, self.cap) - self.k)
        signal = self.s > self.h and self.windows >= self.min_windows
        if signal:  # the new regime is the reference from here on
            self.n, self.mean, self.m2, self.s, self.windows = 0, 0.0, 0.0, 0.0, 1
            self.top = 0.0
        self.n, self.mean, self.m2 = merge_moments(self.n, self.mean, self.m2, n, m, m2)
        self.top = max(self.top, float(x.max()))
        return signal


_TINY = 1e-12
"""Spreads and differences below this share of the values are rounding, not data."""


def poisson_z(count: float, expected: float) -> float:
    """The z of ``count`` against a Poisson count with mean ``expected``: Φ⁻¹ of its upper
    mid-p tail ½(P(X ≥ count) + P(X ≥ count + 1)) (Lancaster 1961's mid-p, which keeps
    a discrete test's size close to nominal). P(X ≥ a) = P(a, λ), the regularized lower
    incomplete gamma function, for a > 0 — the Poisson tail for a whole ``count``, and
    continuous between, as a count of fractional losses needs. Taken as 1 − Q(a, λ), it
    loses digits in tails below about 1e-9 (|z| > 6), beyond the cap of a window's z."""

    def tail(a: float) -> float:
        return 1.0 if a <= 0.0 else 1.0 - chi2_sf(2.0 * expected, 2.0 * a)

    p = 0.5 * (tail(count) + tail(count + 1.0))
    if p <= 0.0:
        return math.inf
    if p >= 1.0:
        return -math.inf
    return -NormalDist().inv_cdf(p)


@dataclass
class ProxyTracker:
    """The proxy series of one model version: a change detector per series and the rules.
    Pickled whole into checkpoints (river's detectors are plain Python objects), so that a
    restarted engine signals exactly where an uninterrupted one would."""

    cfg: ProxyConfig
    baseline: ProxyBaseline
    detectors: dict[str, Any] = field(default_factory=dict)
    series: tuple[str, ...] | None = None
    """The metrics watched by detectors; None: :data:`SERIES` and the named fields."""
    first: dict[str, float] = field(default_factory=dict)
    """For a series without a training value (the event rate, a field the baseline does not
    hold): its first finite non-zero value. Later values are divided by it,
    so the series reaches the detector on the scale of 1.0, where its threshold is set;
    fed raw, a series in large units (1,000 events/s) crosses it on its noise alone."""
    worse: Mapping[str, str] = field(default_factory=dict)
    """Metric → ``"up"`` or ``"down"``: the one direction in which a change of that series
    counts (realised accuracy getting better pages nobody). A metric not named counts
    both ways, as a proxy metric should: a prediction mean moving either way is news."""
    bounds: Mapping[str, float | None] = field(default_factory=dict)
    """Metric → its largest per-pair loss (None: unbounded) for the series tested on their
    pairs' losses by a :class:`LossShift` instead of the change detector: those whose
    losses :meth:`update` is given."""
    shifts: dict[str, LossShift] = field(default_factory=dict)

    def _detector(self, metric: str) -> Any:
        d = self.detectors.get(metric)
        if d is None:
            # Imported on first use: river.drift's package imports scikit-learn, pandas and
            # scipy.stats, which a run without a proxy series never needs
            # (tests/test_proxy.py::test_river_is_imported_only_when_a_detector_is_made).
            from river import drift

            if self.cfg.detector == "adwin":
                # clock=1: check for a cut at every window, not every 32nd (the default
                # suits a series of single events; this one gets a value per window)
                d = drift.ADWIN(  # type: ignore[no-untyped-call]
                    clock=1, grace_period=self.cfg.min_windows, min_window_length=2
                )
            else:
                d = drift.PageHinkley(
                    min_instances=self.cfg.min_windows,
                    threshold=self.cfg.ph_threshold,
                    mode=self.worse.get(metric, "both"),
                )
            self.detectors[metric] = d
        return d

    def update(
        self,
        metrics: Mapping[str, Any],
        losses: Mapping[str, NDArray[np.float64]] | None = None,
    ) -> tuple[list[dict[str, Any]], list[str], str]:
        """Feed one window's metrics, and for the metrics in :attr:`bounds` the window's
        per-pair ``losses`` (:func:`~driftline.labels.pair_losses`). Returns (changes for
        the record, health reasons, the worst severity among them, or "ok")."""
        changes: list[dict[str, Any]] = []
        reasons: list[str] = []
        level = Health.OK
        series = self.series if self.series is not None else (*SERIES, *self.cfg.fields)
        names = [m for m in series if metrics.get(m) is not None]
        for metric in names:
            value = float(metrics[metric])
            base = self.baseline.values.get(metric)
            found = self._jump(metric, value, base, losses)
            if found is not None:
                by, extra, why = found
                changes.append(
                    {"metric": metric, "by": by, "value": value, "baseline": base, **extra}
                )
                reasons.append(f"{metric}: {why}")
                level = max(level, Health.WARNING)
        for rule in self.cfg.rules:
            observed = metrics.get(rule.metric)
            base = self.baseline.values.get(rule.metric)
            reason = rule.check(observed, base)
            if reason is not None:
                changes.append(
                    {
                        "metric": rule.metric,
                        "by": "rule",
                        "value": observed,
                        "baseline": base,
                        "severity": rule.severity,
                    }
                )
                reasons.append(reason)
                level = max(level, Health.parse(rule.severity))
        return changes, reasons, str(level)

    def _jump(
        self,
        metric: str,
        value: float,
        base: float | None,
        losses: Mapping[str, NDArray[np.float64]] | None,
    ) -> tuple[str, dict[str, Any], str] | None:
        """Feed one value (or, for a metric in :attr:`bounds`, its pairs' losses) to the
        metric's test; (by, extra record fields, reason) when it signals a change that
        counts, else None."""
        if self.cfg.detector == "none":
            return None
        if metric in self.bounds:
            pairs = losses.get(metric) if losses is not None else None
            if pairs is None:
                return None
            shift = self._shift(metric)
            if not shift.update(pairs):
                return None
            if not math.isfinite(shift.z):
                return (
                    "cusum",
                    {"z": None},
                    f"worse at {value:.4g}, every loss before was lower (cusum)",
                )
            z = round(shift.z, 2)
            return "cusum", {"z": z}, f"worse at {value:.4g}, z {shift.z:.1f} per window (cusum)"
        if not math.isfinite(value):
            return None
        if not base and value != 0:
            self.first.setdefault(metric, value)
        scale = base or self.first.get(metric)
        det = self._detector(metric)
        before = det.estimation if self.cfg.detector == "adwin" else None
        det.update(value / scale if scale else value)
        if not (det.drift_detected and self._counts(metric, before, det)):
            return None
        return self.cfg.detector, {}, f"jump to {value:.4g} ({self.cfg.detector})"

    def _shift(self, metric: str) -> LossShift:
        shift = self.shifts.get(metric)
        if shift is None:
            shift = self.shifts[metric] = LossShift(
                k=self.cfg.cusum_k,
                h=self.cfg.cusum_h,
                min_windows=self.cfg.min_windows,
                bound=self.bounds[metric],
            )
        return shift

    def _counts(self, metric: str, before: float | None, det: Any) -> bool:
        """Whether a change the detector found is in the direction that counts. Page-Hinkley
        watches that direction only (its ``mode``); ADWIN watches both, so its mean after
        the cut is compared with its mean before."""
        way = self.worse.get(metric)
        if way is None or before is None:
            return True
        after = float(det.estimation)
        return after > before if way == "up" else after < before

    def dumps(self) -> bytes:
        return pickle.dumps((self.detectors, self.first, self.shifts))

    def loads(self, data: bytes) -> None:
        state = pickle.loads(data)  # the engine's own state directory
        if isinstance(state, tuple) and len(state) == 3:
            self.detectors, self.first, self.shifts = state
        elif isinstance(state, tuple):  # a checkpoint written before ``shifts``
            self.detectors, self.first = state
        else:  # a checkpoint written before ``first``
            self.detectors = state
