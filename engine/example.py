"""A seeded example: a fraud model's training set and drifting serving traffic.

Training: ``amount`` (log-normal), ``age`` (integer years, some missing), ``hour`` (0–23),
``items`` (1–5, so categorical by the low-cardinality rule), ``country`` and ``device``
(categorical), the model's ``score`` (a logistic model of those) and the ``label``.

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
    score = 1 / (1 + np.exp(-(logit + rng.normal(0, 0.3, n))))
    return {
        "amount": amount.round(2),
        "age": age,
        "hour": hour,
        "items": items,
        "country": country,
        "device": device,
        "score": score,
        "label": label,
    }


def write_example(
    directory: Path, *, rows: int = 50_000, serving_rows: int = 60_000, seed: int = 7
) -> list[Path]:
    """Write ``training.parquet`` and ``serving.parquet`` into ``directory``."""
    directory.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    train = _frame(rng, rows, None)
    age_missing = rng.random(rows) < 0.01
    train_table = pa.table({**train, "age": pa.array(train["age"], mask=age_missing)})
    serve = _frame(rng, serving_rows, 0.4)
    broken = (np.arange(serving_rows) >= 0.7 * serving_rows) & (rng.random(serving_rows) < 0.5)
    serve_cols = {
        "ts": START_TS + 0.05 * np.arange(serving_rows),
        "id": np.array([f"req-{i:07d}" for i in range(serving_rows)], dtype=object),
        **serve,
        "age": pa.array(serve["age"], mask=broken | (rng.random(serving_rows) < 0.01)),
    }
    out = []
    for name, table in (("training", train_table), ("serving", pa.table(serve_cols))):
        path = directory / f"{name}.parquet"
        pq.write_table(table, path)
        out.append(path)
    return out
