"""Calibrated thresholds: per-column distance thresholds that hit a target false-alarm rate.

Method: under "no drift" a window of n rows is n draws from the training distribution, so
its bin (or category-bucket) counts are Multinomial(n, reference proportions) — exactly what
resampling n values with replacement from the reference sample gives (Efron's bootstrap).
For each column, ``resamples`` such windows are drawn, the decision distance (PSI or JS
distance, computed from bin proportions) is taken for each, and the threshold is the
(1 − false_alarm_rate) quantile of those values (the "higher" order statistic, so the rate
is not exceeded by interpolation). A stationary window of that size then crosses it with
probability ≈ false_alarm_rate, per column.

What it leaves out: the reference is itself a finite sample, and the bootstrap treats it as
the population; with a reference ten or more times the window, that adds little.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import replace

import numpy as np
from numpy.typing import NDArray

from driftline.baseline import Baseline, Calibration, Reference
from driftline.detectors import PSI_EPSILON, NumericReference, Statistic
from driftline.exceptions import ConfigError

CALIBRATABLE = frozenset({Statistic.PSI, Statistic.JS_DISTANCE, Statistic.LINF})


def default_resamples(false_alarm_rate: float) -> int:
    """Enough draws that ~50 fall beyond the quantile, within [1000, 20000]."""
    return int(min(20_000, max(1_000, math.ceil(50 / false_alarm_rate))))


def _null_distances(
    props: NDArray[np.float64],
    window: int,
    resamples: int,
    stat: Statistic,
    rng: np.random.Generator,
) -> NDArray[np.float64]:
    r = props / props.sum()
    c = rng.multinomial(window, r, size=resamples) / window
    if stat is Statistic.PSI:
        rf = np.maximum(r, PSI_EPSILON)
        cf = np.maximum(c, PSI_EPSILON)
        out: NDArray[np.float64] = np.sum((cf - rf) * np.log(cf / rf), axis=1)
        return out
    if stat is Statistic.LINF:
        out = np.max(np.abs(c - r), axis=1)
        return out
    m = 0.5 * (c + r)
    with np.errstate(divide="ignore", invalid="ignore"):
        kl_c = np.where(c > 0, c * np.log(c / m), 0.0).sum(axis=1)
        kl_r = np.where(r > 0, r * np.log(r / m), 0.0).sum()
    out = np.sqrt(np.maximum((kl_c + kl_r) / (2 * np.log(2)), 0.0))
    return out


def calibrate(
    baseline: Baseline,
    *,
    window: int,
    false_alarm_rate: float,
    resamples: int | None = None,
    seed: int = 0,
    numeric_statistic: Statistic = Statistic.PSI,
    categorical_statistic: Statistic = Statistic.PSI,
    progress: Callable[[str], None] | None = None,
) -> Baseline:
    if window < 1:
        raise ConfigError(f"--window must be a positive integer, got {window}")
    if not 0 < false_alarm_rate < 1:
        raise ConfigError(f"--false-alarm-rate must be in (0, 1), got {false_alarm_rate}")
    for s in (numeric_statistic, categorical_statistic):
        if s not in CALIBRATABLE:
            raise ConfigError(f"calibration supports {sorted(CALIBRATABLE)}, got {s}")
    if numeric_statistic is Statistic.LINF:
        raise ConfigError("linf is a categorical statistic")
    n_draws = resamples if resamples is not None else default_resamples(false_alarm_rate)
    if n_draws < 1 / false_alarm_rate:
        raise ConfigError(
            f"--resamples {n_draws} is too few for a false-alarm rate of {false_alarm_rate}; "
            f"use at least {math.ceil(1 / false_alarm_rate)}"
        )
    rng = np.random.default_rng(seed)
    thresholds: dict[str, float] = {}
    for col in baseline.monitored:
        ref: Reference = col.reference
        stat = numeric_statistic if isinstance(ref, NumericReference) else categorical_statistic
        if ref.proportions.sum() <= 0:
            continue
        null = _null_distances(ref.proportions, window, n_draws, stat, rng)
        thresholds[col.name] = float(np.quantile(null, 1 - false_alarm_rate, method="higher"))
        if progress is not None:
            progress(f"{col.name}: {stat} threshold {thresholds[col.name]:.4g}")
    cal = Calibration(
        window=window,
        false_alarm_rate=false_alarm_rate,
        resamples=n_draws,
        seed=seed,
        numeric_statistic=numeric_statistic.value,
        categorical_statistic=categorical_statistic.value,
        thresholds=thresholds,
    )
    return replace(baseline, calibration=cal)
