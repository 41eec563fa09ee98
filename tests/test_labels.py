"""The label join and realised quality: metrics against scikit-learn, the join against a
naive pure-Python model of its rules (TTL by chunk in arrival order, eviction, replacement,
counters), and checkpoints: snapshot → JSON / .npy → restore goes on exactly as an
uninterrupted join."""

from __future__ import annotations

import inspect
import io
import json
import math
from collections import Counter
from typing import Any

import numpy as np
import orjson
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn import metrics as skm

from driftline.labels import LabelJoin, Matched, label_values, realised_quality

NAN = math.nan
CLASSIFICATION = ("accuracy", "precision", "recall", "log_loss", "roc_auc")
REL = 1e-12

# ---------------------------------------------------------------- realised quality


def sk_log_loss(y: np.ndarray, p: np.ndarray) -> float:
    # scikit-learn 1.9 renamed y_pred to y_proba (the old name warns, and warnings fail)
    if "y_proba" in inspect.signature(skm.log_loss).parameters:
        return float(skm.log_loss(y, y_proba=p, labels=[0, 1]))
    return float(skm.log_loss(y, p, labels=[0, 1]))


def expected_classification(
    threshold: float, s: np.ndarray, y: np.ndarray
) -> dict[str, float | None]:
    """scikit-learn on the finite pairs, None where the metric is undefined."""
    keep = np.isfinite(s) & np.isfinite(y)
    s, y = s[keep], y[keep]
    out: dict[str, float | None] = dict.fromkeys(CLASSIFICATION)
    out["pairs"] = s.shape[0]
    if s.shape[0] == 0:
        return out
    called = s >= threshold
    out["accuracy"] = skm.accuracy_score(y, called)
    if called.any():
        out["precision"] = skm.precision_score(y, called)
    if (y == 1).any():
        out["recall"] = skm.recall_score(y, called)
    if s.min() >= 0 and s.max() <= 1:
        out["log_loss"] = sk_log_loss(y, s)
    if 0 < (y == 1).sum() < y.shape[0]:
        out["roc_auc"] = skm.roc_auc_score(y, s)
    return out


def assert_metrics(got: dict[str, float | None], want: dict[str, float | None]) -> None:
    assert got.keys() == want.keys()
    assert got["pairs"] == want["pairs"]
    assert isinstance(got["pairs"], int)
    for k, v in want.items():
        if v is None:
            assert got[k] is None, k
        else:
            assert got[k] == pytest.approx(v, rel=REL, abs=1e-13), k


unit = st.floats(0.0, 1.0)
thresholds = st.sampled_from([0.0, 0.25, 0.5, 0.75, 1.0])


@st.composite
def classified(draw: st.DrawFn) -> tuple[np.ndarray, np.ndarray]:
    """Up to 200 (score, label) pairs: scores free, or from a few values (ties, scores on
    the thresholds, constant scores); labels of both classes or of one; NaN now and then."""
    palette = draw(
        st.one_of(
            st.none(),
            st.lists(
                st.one_of(unit, st.sampled_from([0.0, 0.25, 0.5, 1.0])), min_size=1, max_size=4
            ),
        )
    )
    score = unit if palette is None else st.sampled_from(palette)
    classes = draw(st.sampled_from([[0.0, 1.0], [0.0], [1.0]]))
    nan_rate = draw(st.sampled_from([0.0, 0.1]))
    n = draw(st.integers(0, 200))
    s = np.array([draw(score) for _ in range(n)], dtype=np.float64)
    y = np.array([draw(st.sampled_from(classes)) for _ in range(n)], dtype=np.float64)
    if nan_rate and n:
        rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
        s[rng.random(n) < nan_rate] = NAN
        y[rng.random(n) < nan_rate] = NAN
    return s, y


@settings(max_examples=300, deadline=None)
@given(data=classified(), threshold=thresholds)
def test_classification_matches_scikit_learn(
    data: tuple[np.ndarray, np.ndarray], threshold: float
) -> None:
    s, y = data
    got = realised_quality("classification", threshold, s, y)
    assert_metrics(got, expected_classification(threshold, s, y))


@settings(deadline=None)
@given(
    s=st.lists(st.floats(-3.0, 4.0), min_size=1, max_size=100),
    seed=st.integers(0, 2**32 - 1),
)
def test_scores_outside_the_unit_interval_have_no_log_loss(s: list[float], seed: int) -> None:
    scores = np.array(s)
    y = np.random.default_rng(seed).integers(0, 2, scores.shape[0]).astype(np.float64)
    got = realised_quality("classification", 0.5, scores, y)
    want = expected_classification(0.5, scores, y)
    assert_metrics(got, want)
    assert (got["log_loss"] is None) == bool((scores < 0).any() or (scores > 1).any())


def test_classification_by_hand() -> None:
    s = np.array([0.9, 0.5, 0.5, 0.2, 0.1, NAN, 0.7])
    y = np.array([1.0, 1.0, 0.0, 1.0, 0.0, 1.0, NAN])
    got = realised_quality("classification", 0.5, s, y)
    # called: 0.9 (TP), 0.5 (TP), 0.5 (FP); not: 0.2 (FN), 0.1 (TN); two pairs left out
    assert got["pairs"] == 5
    assert got["accuracy"] == pytest.approx(3 / 5, rel=REL)
    assert got["precision"] == pytest.approx(2 / 3, rel=REL)
    assert got["recall"] == pytest.approx(2 / 3, rel=REL)
    # positives 0.9, 0.5, 0.2 against negatives 0.5, 0.1: 1 + 1 + ½ + 1 + 0 + 1 of 6
    assert got["roc_auc"] == pytest.approx(4.5 / 6, rel=REL)
    want_ll = -np.mean(np.log([0.9, 0.5, 0.5, 0.2, 0.9]))
    assert got["log_loss"] == pytest.approx(want_ll, rel=REL)


def test_classification_edges() -> None:
    nothing = realised_quality("classification", 0.5, np.array([NAN]), np.array([1.0]))
    assert nothing == {**dict.fromkeys(CLASSIFICATION), "pairs": 0}
    empty = realised_quality("classification", 0.5, np.empty(0), np.empty(0))
    assert empty == {**dict.fromkeys(CLASSIFICATION), "pairs": 0}
    const = realised_quality("classification", 0.5, np.full(4, 0.3), np.array([0, 1, 0, 1.0]))
    assert const["roc_auc"] == 0.5 and const["precision"] is None
    assert const["recall"] == 0.0 and const["accuracy"] == 0.5
    one_class = realised_quality("classification", 0.5, np.array([0.2, 0.8]), np.ones(2))
    assert one_class["roc_auc"] is None and one_class["recall"] == 0.5
    sure = realised_quality("classification", 0.5, np.array([0.0, 1.0]), np.array([1.0, 0.0]))
    assert sure["log_loss"] == pytest.approx(-math.log(np.finfo(np.float64).eps), rel=REL)
    # a label neither 0 nor 1 is left out like a missing one
    odd = realised_quality("classification", 0.5, np.array([0.2, 0.8]), np.array([2.0, 1.0]))
    assert odd["pairs"] == 1 and odd["accuracy"] == 1.0


@settings(deadline=None)
@given(
    pairs=st.lists(
        st.tuples(
            st.one_of(st.floats(-1e6, 1e6), st.just(NAN), st.just(math.inf)),
            st.one_of(st.floats(-1e6, 1e6), st.just(NAN)),
        ),
        max_size=200,
    )
)
def test_regression_matches_numpy(pairs: list[tuple[float, float]]) -> None:
    s = np.array([p[0] for p in pairs], dtype=np.float64)
    y = np.array([p[1] for p in pairs], dtype=np.float64)
    got = realised_quality("regression", 0.5, s, y)
    keep = np.isfinite(s) & np.isfinite(y)
    n = int(keep.sum())
    assert got["pairs"] == n and isinstance(got["pairs"], int)
    if n == 0:
        assert got == {"mae": None, "rmse": None, "pairs": 0}
        return
    err = s[keep] - y[keep]
    assert got["mae"] == pytest.approx(np.abs(err).sum() / n, rel=1e-10, abs=1e-9)
    assert got["rmse"] == pytest.approx(math.sqrt(np.square(err).sum() / n), rel=1e-10, abs=1e-9)


def test_realised_quality_refuses_bad_arguments() -> None:
    with pytest.raises(ValueError, match=r"task must be.*'ranking'"):
        realised_quality("ranking", 0.5, np.zeros(1), np.zeros(1))  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="one length"):
        realised_quality("regression", 0.5, np.zeros(2), np.zeros(3))


# ---------------------------------------------------------------- label values


def test_label_values() -> None:
    values, invalid = label_values(
        [True, False, 1, 0, 0.25, -3, None, "1", [1], {"a": 1}, NAN, math.inf, 10**400]
    )
    assert values[:6].tolist() == [1.0, 0.0, 1.0, 0.0, 0.25, -3.0]
    assert invalid == [6, 7, 8, 9, 10, 11, 12]
    assert np.isnan(values[6:]).all()
    empty, none = label_values([])
    assert empty.shape == (0,) and empty.dtype == np.float64 and none == []


json_values = st.one_of(
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=True, allow_infinity=True),
    st.none(),
    st.text(max_size=3),
    st.lists(st.integers(), max_size=2),
)


def expected_label(v: Any) -> float | None:
    if isinstance(v, bool):
        return 1.0 if v else 0.0
    if not isinstance(v, int | float):
        return None
    try:
        x = float(v)
    except OverflowError:  # an int beyond float range
        return None
    return x if math.isfinite(x) else None


@given(st.lists(json_values, max_size=30))
def test_label_values_property(raw: list[Any]) -> None:
    values, invalid = label_values(raw)
    assert values.dtype == np.float64 and values.shape == (len(raw),)
    for i, v in enumerate(raw):
        want = expected_label(v)
        if want is None:
            assert math.isnan(values[i]) and i in invalid
        else:
            assert values[i] == want and i not in invalid
    assert invalid == sorted(invalid)


# ---------------------------------------------------------------- the join by hand


def arr(*ids: str | None) -> pa.Array:
    return pa.array(list(ids), type=pa.string())


def f(*xs: float) -> np.ndarray:
    return np.array(xs, dtype=np.float64)


def test_match_after_add_per_model_version_in_label_order() -> None:
    join = LabelJoin(ttl=60, max_pending=100)
    join.add("fraud", "7", arr("a", "b", "c"), f(1, 2, 3), f(0.1, 0.2, 0.3))
    join.add("fraud", "8", arr("d", "e"), f(4, 5), f(0.4, 0.5))
    assert join.pending == len(join) == 5
    got = join.match(["e", "c", "a", "d"], f(1, 0, 1, 0))
    assert set(got) == {("fraud", "7"), ("fraud", "8")}
    v7, v8 = got[("fraud", "7")], got[("fraud", "8")]
    assert v7.ts.tolist() == [3.0, 1.0] and v7.scores.tolist() == [0.3, 0.1]
    assert v7.labels.tolist() == [0.0, 1.0] and len(v7) == 2
    assert v8.ts.tolist() == [5.0, 4.0] and v8.labels.tolist() == [1.0, 0.0]
    assert join.pending == 1 and join.counters.unmatched == 0
    assert join.match(pa.array(["b"]), f(1))[("fraud", "7")].scores.tolist() == [0.2]
    assert join.pending == 0 and join.held == 0


def test_null_ids_are_counted_not_kept() -> None:
    join = LabelJoin(ttl=60, max_pending=100)
    ids = pa.chunked_array([arr("a", None), arr(None, "b")])
    join.add("m", "1", ids, f(1, 2, 3, 4), f(0.1, 0.2, 0.3, 0.4))
    assert join.counters.no_id == 2 and join.pending == 2
    got = join.match(["a", "b"], f(1, 1))[("m", "1")]
    assert got.ts.tolist() == [1.0, 4.0] and got.scores.tolist() == [0.1, 0.4]


def test_unmatched_labels_are_counted() -> None:
    join = LabelJoin(ttl=10, max_pending=100)
    join.add("m", "1", arr("a", "b"), f(0, 0), f(0.1, 0.2))
    assert join.match(["nope"], f(1)) == {}
    assert join.counters.unmatched == 1
    got = join.match(["a", "a", None], f(1, 0, 1))  # a second label for a: unmatched
    assert got[("m", "1")].labels.tolist() == [1.0]
    assert join.counters.unmatched == 3
    join.match(pa.array([None], type=pa.string()), f(1))
    assert join.counters.unmatched == 4
    join.add("m", "1", arr("z"), f(11), f(0.5))  # b is 11 s behind: expired
    assert join.counters.expired == Counter({("m", "1"): 1})
    assert join.match(["b"], f(1)) == {}
    assert join.counters.unmatched == 5


def test_ttl_expiry_by_watermark_per_model_version() -> None:
    join = LabelJoin(ttl=50, max_pending=1000)
    join.add("fraud", "7", arr("a", "b", "c"), f(0, 5, 9), f(0.1, 0.2, 0.3))
    join.add("fraud", "8", arr("d", "e"), f(10, 30), f(0.4, 0.5))
    join.add("fraud", "8", arr("f"), f(59.5), f(0.6))  # cutoff 9.5: the first chunk goes
    assert join.watermark == 59.5
    assert join.counters.expired == Counter({("fraud", "7"): 3})
    assert join.pending == 3
    join.add("churn", "1", arr("g"), f(100), f(0.7))  # cutoff 50: d, e (version 8) go
    assert join.counters.expired == Counter({("fraud", "7"): 3, ("fraud", "8"): 2})
    assert join.pending == 2
    got = join.match(["a", "d", "f", "g"], f(1, 1, 0, 1))
    assert set(got) == {("fraud", "8"), ("churn", "1")}
    assert got[("fraud", "8")].scores.tolist() == [0.6]
    assert join.counters.unmatched == 2


def test_expiry_is_per_chunk_but_an_expired_prediction_never_matches() -> None:
    join = LabelJoin(ttl=50, max_pending=1000)
    # one chunk, out of event-time order
    join.add("m", "1", arr("old", "edge", "new"), f(49, 50, 80), f(0.1, 0.2, 0.3))
    join.add("m", "1", arr("x"), f(100), f(0.4))  # cutoff 50: "old" has expired
    assert join.pending == 4  # ... but its chunk is kept while "new" is in time
    got = join.match(["old", "edge", "new"], f(1, 0, 1))[("m", "1")]
    assert got.scores.tolist() == [0.2, 0.3]  # exactly at the cutoff is in time
    assert join.counters.unmatched == 1
    assert join.counters.expired == Counter({("m", "1"): 1})
    # a prediction already past the TTL on arrival is expired at once
    join.add("m", "2", arr("late", "fine"), f(49.5, 99), f(0.5, 0.6))
    assert join.counters.expired == Counter({("m", "1"): 1, ("m", "2"): 1})
    assert join.pending == 2


def test_a_prediction_without_event_time_is_as_old_as_the_watermark() -> None:
    join = LabelJoin(ttl=10, max_pending=100)
    join.add("m", "1", arr("a", "b"), f(100, NAN), f(0.1, 0.2))
    join.add("m", "1", arr("c"), f(math.inf), f(0.3))  # not a time either
    assert join.watermark == 100
    got = join.match(["b", "c"], f(1, 0))[("m", "1")]
    assert got.ts.tolist() == [100.0, 100.0]


def test_replaced_predictions() -> None:
    join = LabelJoin(ttl=60, max_pending=100)
    join.add("m", "1", arr("a", "b"), f(1, 2), f(0.1, 0.2))
    join.add("m", "2", arr("a", "c", "c", "c"), f(3, 4, 5, 6), f(0.3, 0.4, 0.5, 0.6))
    assert join.counters.replaced == 3  # a from version 1, c twice within the batch
    assert join.pending == 3
    got = join.match(["a", "c", "b"], f(1, 1, 1))
    assert got[("m", "2")].scores.tolist() == [0.3, 0.6]
    assert got[("m", "1")].scores.tolist() == [0.2]


def test_eviction_bounds_memory() -> None:
    join = LabelJoin(ttl=1e9, max_pending=10)
    join.add("m", "1", arr(*"abcd"), f(0, 1, 2, 3), np.zeros(4))
    join.add("m", "2", arr(*"efgh"), f(4, 5, 6, 7), np.zeros(4))
    join.add("m", "2", arr(*"ijkl"), f(8, 9, 10, 11), np.zeros(4))  # 12 > 10: the first goes
    assert join.counters.evicted == Counter({("m", "1"): 4})
    assert join.pending == 8
    # one batch larger than the bound keeps its newest rows
    join.add("m", "3", arr(*"mnopqrstuvwxyz"), np.arange(12.0, 26.0), np.zeros(14))
    assert join.pending == 10
    assert join.counters.evicted == Counter({("m", "1"): 4, ("m", "2"): 8, ("m", "3"): 4})
    assert set(join.match(list("mnopqrstuvwxyz"), np.ones(14))[("m", "3")].ts) == set(
        np.arange(16.0, 26.0)
    )


@settings(deadline=None)
@given(
    batches=st.lists(st.integers(0, 40), max_size=30),
    max_pending=st.integers(1, 60),
    matched=st.floats(0.0, 1.0),
)
def test_pending_and_memory_stay_bounded(
    batches: list[int], max_pending: int, matched: float
) -> None:
    join = LabelJoin(ttl=1e9, max_pending=max_pending)
    rng = np.random.default_rng(len(batches))
    start = matched_total = unmatched = 0
    for size in batches:
        ids = [f"r{i}" for i in range(start, start + size)]
        join.add("m", "1", pa.array(ids, type=pa.string()), np.arange(float(size)), np.zeros(size))
        assert join.pending <= max_pending
        assert join.held <= 2 * join.pending
        start += size
        picked = [i for i in ids if rng.random() < matched]
        join.match(picked, np.ones(len(picked)))
        assert join.held <= 2 * join.pending
        matched_total += len(picked) - (join.counters.unmatched - unmatched)
        unmatched = join.counters.unmatched
    # every prediction is pending, matched or evicted (nothing expires, no id repeats)
    assert join.pending + matched_total + sum(join.counters.evicted.values()) == start


def test_constructor_errors() -> None:
    for ttl in (0, -1.5, NAN, math.inf, "10"):
        with pytest.raises(ValueError, match=rf"ttl must be a positive .*{ttl!r}"):
            LabelJoin(ttl=ttl, max_pending=10)  # type: ignore[arg-type]
    for mp in (0, -3, 1.5, True, None):
        with pytest.raises(ValueError, match=rf"max_pending must be a positive integer.*{mp!r}"):
            LabelJoin(ttl=10, max_pending=mp)  # type: ignore[arg-type]
    join = LabelJoin(ttl=10, max_pending=np.int64(5))  # type: ignore[arg-type]
    assert join.max_pending == 5 and type(join.max_pending) is int
    with pytest.raises(ValueError, match="one length"):
        join.add("m", "1", arr("a"), f(1, 2), f(0.5))
    with pytest.raises(ValueError, match="one length"):
        join.match(["a"], f(1, 0))


# ---------------------------------------------------------------- against a naive model


class NaiveJoin:
    """The join's rules, row by row in plain Python: the oracle of the hypothesis tests."""

    def __init__(self, ttl: float, max_pending: int):
        self.ttl, self.max_pending = ttl, max_pending
        self.watermark = -math.inf
        self.chunks: list[dict[str, Any]] = []  # {"key", "ts_max", "rows": [[id, t, s, live, key]]}
        self.where: dict[str, list[Any]] = {}  # id → its live row
        self.c = {"no_id": 0, "replaced": 0, "unmatched": 0}
        self.expired: Counter[tuple[str, str]] = Counter()
        self.evicted: Counter[tuple[str, str]] = Counter()

    def _purge(self) -> None:
        self.chunks = [c for c in self.chunks if any(r[3] for r in c["rows"])]

    def _kill(self, chunk: dict[str, Any]) -> int:
        live = [r for r in chunk["rows"] if r[3]]
        for r in live:
            r[3] = False
            del self.where[r[0]]
        return len(live)

    def add(self, key: tuple[str, str], ids: list[str | None], ts: list[float], sc: list[float]):
        for t in ts:
            if math.isfinite(t):
                self.watermark = max(self.watermark, t)
        rows = []
        for i, t, s in zip(ids, ts, sc, strict=True):
            if i is None:
                self.c["no_id"] += 1
                continue
            t = t if math.isfinite(t) else self.watermark
            if t < self.watermark - self.ttl:
                self.expired[key] += 1
                continue
            row = [i, t, s, True, key]
            if i in self.where:
                self.where[i][3] = False
                self.c["replaced"] += 1
            self.where[i] = row
            rows.append(row)
        if rows:
            self.chunks.append({"key": key, "ts_max": max(r[1] for r in rows), "rows": rows})
        self._purge()
        while self.chunks and self.chunks[0]["ts_max"] < self.watermark - self.ttl:
            self.expired[self.chunks[0]["key"]] += self._kill(self.chunks.pop(0))
        while len(self.where) > self.max_pending and len(self.chunks) > 1:
            self.evicted[self.chunks[0]["key"]] += self._kill(self.chunks.pop(0))
        excess = len(self.where) - self.max_pending
        if excess > 0:
            last = self.chunks[-1]
            for r in [r for r in last["rows"] if r[3]][:excess]:
                r[3] = False
                del self.where[r[0]]
            self.evicted[last["key"]] += excess
        self._purge()

    def match(self, ids: list[str | None], labels: list[float]) -> dict[Any, Any]:
        out: dict[tuple[str, str], list[tuple[float, float, float]]] = {}
        for i, y in zip(ids, labels, strict=True):
            row = self.where.pop(i, None) if i is not None else None
            if row is None:
                self.c["unmatched"] += 1
                continue
            row[3] = False
            key = row[4]
            if row[1] < self.watermark - self.ttl:
                self.expired[key] += 1
                self.c["unmatched"] += 1
            else:
                out.setdefault(key, []).append((row[1], row[2], y))
        self._purge()
        return out


def as_lists(got: dict[tuple[str, str], Matched]) -> dict[Any, Any]:
    return {
        k: list(zip(m.ts.tolist(), m.scores.tolist(), m.labels.tolist(), strict=True))
        for k, m in got.items()
    }


def counters(join: LabelJoin) -> tuple[Any, ...]:
    c = join.counters
    return (c.no_id, c.replaced, c.unmatched, dict(+c.expired), dict(+c.evicted))


IDS = ["a", "b", "c", "é", "日本", "a\x00", "x\x00", "𝔘nicode", "", "Zoë\u0301"]
KEYS = [("fraud", "7"), ("fraud", "8"), ("churn", "1")]

add_op = st.tuples(
    st.just("add"),
    st.sampled_from(KEYS),
    st.lists(
        st.tuples(
            st.one_of(st.sampled_from(IDS), st.none()),
            st.one_of(st.integers(0, 40).map(float), st.just(NAN)),
            st.floats(0.0, 1.0),
        ),
        max_size=8,
    ),
)
match_op = st.tuples(
    st.just("match"),
    st.none(),
    st.lists(
        st.tuples(st.one_of(st.sampled_from(IDS), st.none()), st.sampled_from([0.0, 1.0])),
        max_size=6,
    ),
)
ops = st.lists(st.one_of(add_op, match_op), max_size=30)


def run(join: LabelJoin | NaiveJoin, op: tuple[Any, ...]) -> dict[Any, Any]:
    kind, key, rows = op
    if kind == "add":
        ids, ts, sc = [r[0] for r in rows], [r[1] for r in rows], [r[2] for r in rows]
        if isinstance(join, NaiveJoin):
            join.add(key, ids, ts, sc)
        else:
            join.add(*key, pa.array(ids, type=pa.string()), f(*ts), f(*sc))
        return {}
    ids, labels = [r[0] for r in rows], [r[1] for r in rows]
    if isinstance(join, NaiveJoin):
        return join.match(ids, labels)
    return as_lists(join.match(ids, f(*labels)))


@settings(max_examples=300, deadline=None)
@given(script=ops, ttl=st.sampled_from([3.0, 5.0, 30.0, 1e9]), max_pending=st.integers(1, 12))
def test_join_follows_the_naive_model(
    script: list[tuple[Any, ...]], ttl: float, max_pending: int
) -> None:
    join, naive = LabelJoin(ttl, max_pending), NaiveJoin(ttl, max_pending)
    for op in script:
        assert run(join, op) == run(naive, op)
        assert counters(join) == (*naive.c.values(), dict(+naive.expired), dict(+naive.evicted))
        assert join.pending == len(naive.where) <= max_pending
        assert join.held <= 2 * join.pending
        assert join.watermark == naive.watermark


def round_trip(join: LabelJoin, ttl: float, max_pending: int) -> LabelJoin:
    """Through the checkpoint's encodings: meta as JSON, arrays as .npy without pickle."""
    meta, arrays = join.snapshot()
    meta = orjson.loads(orjson.dumps(meta))
    assert json.loads(json.dumps(meta, allow_nan=False)) == meta
    loaded = {}
    for name, a in arrays.items():
        buf = io.BytesIO()
        np.save(buf, a, allow_pickle=False)
        buf.seek(0)
        loaded[name] = np.load(buf, allow_pickle=False)
    return LabelJoin.restore(ttl, max_pending, meta, loaded)


@settings(max_examples=300, deadline=None)
@given(
    script=ops,
    split=st.integers(0, 30),
    ttl=st.sampled_from([3.0, 5.0, 30.0, 1e9]),
    max_pending=st.integers(1, 12),
)
def test_restore_goes_on_as_the_uninterrupted_join(
    script: list[tuple[Any, ...]], split: int, ttl: float, max_pending: int
) -> None:
    whole, parted = LabelJoin(ttl, max_pending), LabelJoin(ttl, max_pending)
    split = min(split, len(script))
    for op in script[:split]:
        run(whole, op)
        run(parted, op)
    parted = round_trip(parted, ttl, max_pending)
    assert counters(parted) == counters(whole) and parted.pending == whole.pending
    for op in script[split:]:
        assert run(parted, op) == run(whole, op)
        assert counters(parted) == counters(whole)
        assert parted.pending == whole.pending and parted.watermark == whole.watermark
    # and what is left is the same: every id still pending matches alike
    rest = [*IDS, None]
    assert as_lists(parted.match(rest, np.ones(len(rest)))) == as_lists(
        whole.match(rest, np.ones(len(rest)))
    )
    assert counters(parted) == counters(whole)


def test_non_ascii_ids_round_trip_exactly() -> None:
    ids = ["é", "e\u0301", "日本語", "🦀", "x\x00", "\x00", "", "tab\tnl\n", "𝔘" * 50]
    join = LabelJoin(ttl=60, max_pending=100)
    join.add("m", "ß", pa.array(ids), np.arange(float(len(ids))), np.linspace(0, 1, len(ids)))
    _, arrays = join.snapshot()
    assert all(a.dtype != object for a in arrays.values())
    back = round_trip(join, 60, 100)
    assert back.pending == len(ids)
    got = back.match(ids[::-1], np.ones(len(ids)))
    assert got[("m", "ß")].ts.tolist() == list(np.arange(float(len(ids)))[::-1])
    assert back.counters.unmatched == 0


def test_empty_join_round_trips() -> None:
    join = round_trip(LabelJoin(ttl=5, max_pending=3), 5, 3)
    assert join.pending == 0 and join.watermark == -math.inf
    join.add("m", "1", arr("a"), f(1), f(0.5))
    assert join.match(["a"], f(1))[("m", "1")].scores.tolist() == [0.5]


def test_restore_applies_a_smaller_bound() -> None:
    join = LabelJoin(ttl=100, max_pending=10)
    join.add("m", "1", arr(*"abc"), f(0, 1, 2), np.zeros(3))
    join.add("m", "2", arr(*"def"), f(3, 4, 5), np.zeros(3))
    meta, arrays = join.snapshot()
    smaller = LabelJoin.restore(100, 4, meta, arrays)
    assert smaller.pending == 3 and smaller.counters.evicted == Counter({("m", "1"): 3})
    shorter = LabelJoin.restore(2, 10, meta, arrays)
    assert shorter.pending == 3 and shorter.counters.expired == Counter({("m", "1"): 3})


def test_restore_refuses_a_corrupt_snapshot() -> None:
    join = LabelJoin(ttl=100, max_pending=10)
    join.add("m", "1", arr("a", "b"), f(0, 1), f(0.1, 0.2))
    meta, arrays = join.snapshot()
    with pytest.raises(ValueError, match="unknown format"):
        LabelJoin.restore(100, 10, {**meta, "format": 99}, arrays)
    with pytest.raises(ValueError, match="disagree"):
        LabelJoin.restore(100, 10, meta, {**arrays, "ts": np.zeros(5)})
    with pytest.raises(ValueError, match="pending twice"):
        dup = {**arrays, "ids_utf8": np.frombuffer(b"aa", dtype=np.uint8)}
        LabelJoin.restore(100, 10, meta, dup)
    with pytest.raises(ValueError, match="not UTF-8"):
        bad = {**arrays, "ids_utf8": np.frombuffer(b"\xff\xfe", dtype=np.uint8)}
        LabelJoin.restore(100, 10, meta, bad)
