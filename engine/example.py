"""A seeded example: a fraud model's training set and drifting serving traffic.

Training: ``amount`` (log-normal), ``age`` (integer years, some missing), ``hour`` (0–23),
``items`` (1–5, so categorical by the low-cardinality rule), ``country`` and ``device``
(categorical), the ``label`` (drawn from a logistic model of those), and the ``score`` of
a classifier fitted to the training set (:class:`FraudModel`), for training and serving
rows alike.

Serving: the same world for the first 40 % of rows, then it changes — amounts grow 60 %, a
new country (``BR``) arrives, the device mix turns to mobile, and from 70 % an upstream bug
nulls ``age`` half of the time. ``ts`` is event time, one event every 0.05 s from a fixed
start.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from driftline import baseline as bl
from driftline.baseline import Baseline
from driftline.build import BuildOptions, build_from_file

COUNTRIES = ["DE", "FR", "GB", "ES", "IT", "NL", "PL", "SE"]
COUNTRY_P = [0.28, 0.2, 0.17, 0.1, 0.1, 0.07, 0.05, 0.03]
DEVICES = ["desktop", "mobile", "tablet"]
START_TS = 1_795_300_000.0


def _frame(rng: np.random.Generator, n: int, drift_from: float | None) -> dict[str, np.ndarray]:
    idx = np.arange(n)
    drifted = idx >= (drift_from * n if drift_from is not None else n)
    amount = rng.lognormal(3.0, 1.0, n) * np.where(drifted, 1.6, 1.0)
    age = rng.normal(41, 12, n).clip(18, 90).round()
    hour = rng.integers(0, 24, n).astype(np.int64)
    items = rng.integers(1, 6, n).astype(np.int64)
    country = np.array(COUNTRIES, dtype=object)[rng.choice(len(COUNTRIES), n, p=COUNTRY_P)]
    new_country = drifted & (rng.random(n) < 0.12)
    country[new_country] = "BR"
    device_p_old = [0.55, 0.35, 0.10]
    device_p_new = [0.3, 0.62, 0.08]
    dev_old = rng.choice(3, n, p=device_p_old)
    dev_new = rng.choice(3, n, p=device_p_new)
    device = np.array(DEVICES, dtype=object)[np.where(drifted, dev_new, dev_old)]
    logit = (
        -4.0
        + 0.9 * (np.log(amount) - 3.0)
        - 0.02 * (age - 41)
        + 0.6 * (device == "mobile")
        + 0.8 * np.isin(country, ["BR", "PL"])
        + 0.3 * ((hour < 6) | (hour > 22))
    )
    p = 1 / (1 + np.exp(-logit))
    label = (rng.random(n) < p).astype(np.int64)
    return {
        "amount": amount.round(2),
        "age": age,
        "hour": hour,
        "items": items,
        "country": country,
        "device": device,
        "label": label,
    }


class FraudModel:
    """The example's classifier: a logistic regression fitted to the training set, on
    log(amount), age (missing imputed with the training median, plus a missing flag), a
    night-time flag, items, and one-hot country and device. A country it never saw (``BR``)
    gets no country term, so it under-rates those events, as a deployed model would."""

    def __init__(self, train: dict[str, np.ndarray], age_missing: np.ndarray) -> None:
        self.age_median = float(np.median(train["age"][~age_missing]))
        x = self.design(train, age_missing)
        self.mean = x[:, 1:].mean(axis=0)
        self.scale = x[:, 1:].std(axis=0) + 1e-12
        self.coef = _fit_logistic(self._standard(x), train["label"].astype(np.float64))

    def design(self, f: dict[str, np.ndarray], age_missing: np.ndarray) -> np.ndarray:
        age = np.where(age_missing, self.age_median, f["age"])
        night = (f["hour"] < 6) | (f["hour"] > 22)
        cols = [np.ones(len(age)), np.log(f["amount"]), age, age_missing, night, f["items"]]
        cols += [f["country"] == c for c in COUNTRIES[1:]]  # DE is the reference level
        cols += [f["device"] == d for d in DEVICES[1:]]
        return np.column_stack(cols).astype(np.float64)

    def _standard(self, x: np.ndarray) -> np.ndarray:
        out = x.copy()
        out[:, 1:] = (x[:, 1:] - self.mean) / self.scale
        return out

    def score(self, f: dict[str, np.ndarray], age_missing: np.ndarray) -> np.ndarray:
        """P(fraud) for each row."""
        z = self._standard(self.design(f, age_missing)) @ self.coef
        return np.asarray(1 / (1 + np.exp(-z)))


def _with_score(f: dict[str, np.ndarray], score: np.ndarray) -> dict[str, np.ndarray]:
    """The columns with ``score`` before ``label``."""
    label = f.pop("label")
    return {**f, "score": score, "label": label}


def _fit_logistic(x: np.ndarray, y: np.ndarray, ridge: float = 1e-3, steps: int = 50) -> np.ndarray:
    """Logistic regression by Newton's method (iteratively reweighted least squares, as in
    Hastie, Tibshirani & Friedman, The Elements of Statistical Learning, 2nd ed., §4.4.1),
    with a small L2 penalty on the non-intercept terms so that it always converges."""
    beta = np.zeros(x.shape[1])
    penalty = np.full(x.shape[1], ridge * len(y))
    penalty[0] = 0.0
    for _ in range(steps):
        p = 1 / (1 + np.exp(-(x @ beta)))
        grad = x.T @ (y - p) - penalty * beta
        hess = (x * (p * (1 - p))[:, None]).T @ x + np.diag(penalty)
        step = np.linalg.solve(hess, grad)
        beta += step
        if np.max(np.abs(step)) < 1e-10:
            break
    return beta


def write_example(
    directory: Path, *, rows: int = 50_000, serving_rows: int = 60_000, seed: int = 7
) -> list[Path]:
    """Write ``training.parquet`` and ``serving.parquet`` into ``directory``."""
    directory.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    train = _frame(rng, rows, None)
    age_missing = rng.random(rows) < 0.01
    model = FraudModel(train, age_missing)
    train = _with_score(train, model.score(train, age_missing))
    train_table = pa.table({**train, "age": pa.array(train["age"], mask=age_missing)})
    serve = _frame(rng, serving_rows, 0.4)
    broken = (np.arange(serving_rows) >= 0.7 * serving_rows) & (rng.random(serving_rows) < 0.5)
    serve_missing = broken | (rng.random(serving_rows) < 0.01)
    serve = _with_score(serve, model.score(serve, serve_missing))  # what serving's model said
    serve_cols = {
        "ts": START_TS + 0.05 * np.arange(serving_rows),
        "id": np.array([f"req-{i:07d}" for i in range(serving_rows)], dtype=object),
        **serve,
        "age": pa.array(serve["age"], mask=serve_missing),
    }
    out = []
    for name, table in (("training", train_table), ("serving", pa.table(serve_cols))):
        path = directory / f"{name}.parquet"
        pq.write_table(table, path)
        out.append(path)
    return out


def write_example_baseline(
    directory: Path, *, model: str | None = None, version: str | None = None
) -> Baseline:
    """Build the baseline of ``directory/training.parquet`` (written by :func:`write_example`;
    prediction ``score``, label ``label``), save it as ``directory/fraud.dlb`` and return it."""
    opts = BuildOptions(prediction="score", label="label", model=model, version=version)
    base, _ = build_from_file(directory / "training.parquet", opts)
    bl.save(base, directory / "fraud.dlb")
    return base
