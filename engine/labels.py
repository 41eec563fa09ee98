"""Late labels joined to the predictions they grade, and the quality they realise.

Ground truth arrives on a topic of its own, long after the prediction it grades:
``{"id": "req-81f3", "label": 1}``. :class:`LabelJoin` keeps every prediction that carries a
request id *pending* until its label comes (:meth:`LabelJoin.match` hands back the
prediction's event time and score beside the label, per model version) or it is given up:

- *expired*: event time is the clock, never the wall clock. The watermark is the largest
  prediction event time seen; a prediction expires once it is more than ``ttl`` seconds
  behind it, and a label that comes later is not matched. A prediction already that old
  when it arrives is expired at once. A prediction without a finite event time is taken to
  be as old as the watermark when it arrives.
- *evicted*: memory is bounded. Whenever more than ``max_pending`` predictions are pending,
  the oldest chunks are dropped whole (and, when the newest alone holds too many, its
  oldest rows), so at most ``max_pending`` are pending after any call.

The predictions of one :meth:`LabelJoin.add` are kept together as a *chunk*, and memory is
given back per chunk, in arrival order: a chunk is dropped once every row in it is older
than the cutoff and every chunk before it is gone. A chunk that arrived out of event-time
order therefore holds its memory until the chunks before it go (its rows still expire on
time: a label for one is not matched). A chunk that matches have thinned to less than half
pending is compacted, so fewer than 2 · ``max_pending`` rows are held between calls:
memory is O(max_pending + one chunk).

One index, request id → (chunk, row), finds a label's prediction whatever its model
version; it is updated with bulk C-level dict calls, not a Python loop per row, since
:meth:`LabelJoin.add` runs on every inference batch. A later prediction with an id already
pending replaces it.

What is counted (:class:`JoinCounters`): predictions without an id (``no_id``), pending ones
replaced by a later one with the same id (``replaced``), expired and evicted ones per
(model, version), and labels with no pending prediction (``unmatched``: an id never seen,
null, expired, evicted or already matched).

:func:`realised_quality` grades a window of matched pairs; :func:`label_values` turns
decoded JSON label values into floats and says which are invalid, for dead-lettering.
"""

from __future__ import annotations

import math
from collections import Counter, OrderedDict, deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from itertools import compress, repeat
from typing import Any, Literal

import numpy as np
import pyarrow as pa
from numpy.typing import NDArray

Task = Literal["classification", "regression"]

SNAPSHOT_FORMAT = 1

# Scores are clipped to [eps, 1 - eps] before the log in the log loss, so that a confident
# wrong prediction (score 0 for a positive) costs -ln(eps) ≈ 36 instead of infinity. The
# float64 machine epsilon is the clip scikit-learn's log_loss uses (its default since 1.3).
_LOG_LOSS_EPS = float(np.finfo(np.float64).eps)

# An index entry is one int: the chunk's serial number in the high bits, the row below.
_ROW_BITS = 32
_ROW_MASK = (1 << _ROW_BITS) - 1


def realised_quality(
    task: Task,
    threshold: float,
    scores: NDArray[np.float64],
    labels: NDArray[np.float64],
) -> dict[str, float | None]:
    """The quality of predicted ``scores`` against their ``labels``, pair by pair.

    Classification (labels 0 or 1, a score the probability of class 1, a positive call at
    or above ``threshold``): ``accuracy``, ``precision`` (None when nothing is called
    positive), ``recall`` (None without a positive label), ``log_loss`` (None when a score
    lies outside [0, 1]) and ``roc_auc`` (None unless both classes are present).
    Regression: ``mae`` and ``rmse``. Pairs whose score or label is not finite, and in
    classification pairs whose label is neither 0 nor 1, are left out; ``pairs`` is the
    number used. With none, every metric is None.
    """
    if task not in ("classification", "regression"):
        raise ValueError(f"task must be 'classification' or 'regression', got {task!r}")
    s = np.asarray(scores, dtype=np.float64)
    y = np.asarray(labels, dtype=np.float64)
    if s.shape != y.shape or s.ndim != 1:
        raise ValueError(
            f"scores and labels must be 1-d arrays of one length, got {s.shape} and {y.shape}"
        )
    keep = graded(task, s, y)
    if task == "classification":
        return _classification(threshold, s[keep], y[keep] == 1.0)
    return _regression(s[keep], y[keep])


LOSS_BOUNDS = {"accuracy": 1.0, "log_loss": -math.log(_LOG_LOSS_EPS)}
"""The largest per-pair loss of each bounded realised metric (:func:`pair_losses`): a
mistake costs 1 in accuracy, and a confident mistake costs −ln ε ≈ 36.04 in log loss.
MAE and RMSE have no bound."""


def pair_losses(
    task: Task,
    threshold: float,
    scores: NDArray[np.float64],
    labels: NDArray[np.float64],
) -> dict[str, NDArray[np.float64]]:
    """Per graded pair, the loss whose mean is (or, for RMSE, whose mean's square root is)
    the realised metric of :func:`realised_quality`, keyed by that metric, oriented so that
    a larger loss is worse: ``accuracy`` → 1 for a wrong call, 0 for a right one;
    ``log_loss`` → −ln of the clipped probability given to the true class (absent when a
    score lies outside [0, 1]); ``mae`` → |score − label|; ``rmse`` → (score − label)²."""
    s = np.asarray(scores, dtype=np.float64)
    y = np.asarray(labels, dtype=np.float64)
    keep = graded(task, s, y)
    s, y = s[keep], y[keep]
    if task == "regression":
        err = s - y
        return {"mae": np.abs(err), "rmse": err * err}
    pos = y == 1.0
    out = {"accuracy": ((s >= threshold) != pos).astype(np.float64)}
    if s.shape[0] and s.min() >= 0.0 and s.max() <= 1.0:
        out["log_loss"] = _log_losses(s, pos)
    return out


def _log_losses(s: NDArray[np.float64], pos: NDArray[np.bool_]) -> NDArray[np.float64]:
    """Each pair's binary cross-entropy, natural log: −(y ln p + (1 − y) ln(1 − p)) (Bishop
    2006, eq. 4.90), p clipped to [ε, 1 − ε]; 1 − p is taken before clipping, as
    scikit-learn does."""
    p_true = np.where(pos, s, 1.0 - s)
    losses: NDArray[np.float64] = -np.log(np.clip(p_true, _LOG_LOSS_EPS, 1 - _LOG_LOSS_EPS))
    return losses


def graded(
    task: Task, scores: NDArray[np.float64], labels: NDArray[np.float64]
) -> NDArray[np.bool_]:
    """The pairs :func:`realised_quality` grades: score and label finite and, in
    classification, the label 0 or 1."""
    keep = np.isfinite(scores) & np.isfinite(labels)
    if task == "classification":
        keep &= (labels == 0.0) | (labels == 1.0)
    return keep


def _regression(s: NDArray[np.float64], y: NDArray[np.float64]) -> dict[str, float | None]:
    n = int(s.shape[0])
    if n == 0:
        return {"mae": None, "rmse": None, "pairs": 0}
    err = s - y
    return {
        "mae": float(np.mean(np.abs(err))),
        "rmse": float(np.sqrt(np.mean(err * err))),
        "pairs": n,
    }


def _classification(
    threshold: float, s: NDArray[np.float64], pos: NDArray[np.bool_]
) -> dict[str, float | None]:
    n = int(s.shape[0])
    out: dict[str, float | None] = {
        "accuracy": None,
        "precision": None,
        "recall": None,
        "log_loss": None,
        "roc_auc": None,
        "pairs": n,
    }
    if n == 0:
        return out
    # the confusion matrix (Fawcett 2006, "An introduction to ROC analysis", fig. 1)
    called = s >= threshold
    tp = int(np.count_nonzero(called & pos))
    n_called = int(np.count_nonzero(called))
    n_pos = int(np.count_nonzero(pos))
    tn = n - n_called - n_pos + tp
    out["accuracy"] = (tp + tn) / n
    out["precision"] = tp / n_called if n_called else None
    out["recall"] = tp / n_pos if n_pos else None
    if s.min() >= 0.0 and s.max() <= 1.0:
        out["log_loss"] = float(np.mean(_log_losses(s, pos)))
    if 0 < n_pos < n:
        out["roc_auc"] = _auc(s, pos, n_pos)
    return out


def _auc(s: NDArray[np.float64], pos: NDArray[np.bool_], n_pos: int) -> float:
    """P(a random positive scores above a random negative), ties counting one half: the
    Mann-Whitney U of the positives over n1 · n0 (Hanley & McNeil 1982, "The meaning and
    use of the area under a ROC curve", eq. 1), from mid-ranks of the sorted scores."""
    n = int(s.shape[0])
    order = np.argsort(s, kind="stable")
    sorted_s = s[order]
    starts = np.flatnonzero(np.r_[True, sorted_s[1:] != sorted_s[:-1]])  # runs of ties
    ends = np.r_[starts[1:], n]
    # a run at sorted positions [start, end) shares the mean of ranks start+1 .. end
    mid = (starts + ends + 1) / 2.0
    ranks = np.repeat(mid, ends - starts)
    rank_sum = float(ranks[pos[order]].sum())
    u = rank_sum - n_pos * (n_pos + 1) / 2.0
    return u / (n_pos * (n - n_pos))


def label_values(values: Sequence[Any]) -> tuple[NDArray[np.float64], list[int]]:
    """Decoded JSON label values as floats: true/false → 1.0/0.0, a finite number → itself.
    Anything else (null, text, a list or object, NaN or ±inf, a number beyond float range)
    is invalid: NaN in its place, and its position in the list returned beside."""
    out = np.fromiter(map(_label_value, values), dtype=np.float64, count=len(values))
    invalid = np.flatnonzero(~np.isfinite(out))
    out[invalid] = np.nan  # ±inf too
    return out, invalid.tolist()


def _label_value(v: Any) -> float:
    if isinstance(v, bool):
        return 1.0 if v else 0.0
    if isinstance(v, int | float):
        try:
            return float(v)
        except OverflowError:  # an int beyond float range
            return math.nan
    return math.nan


@dataclass(frozen=True, eq=False)
class Matched:
    """The predictions of one model version that labels matched, in label order: each
    prediction's event time and score, and its label."""

    ts: NDArray[np.float64]
    scores: NDArray[np.float64]
    labels: NDArray[np.float64]

    def __len__(self) -> int:
        return int(self.labels.shape[0])


ModelVersion = tuple[str, str]


@dataclass
class JoinCounters:
    """What a :class:`LabelJoin` did not join, since it started (carried by checkpoints)."""

    no_id: int = 0
    """Predictions without a request id."""
    replaced: int = 0
    """Pending predictions replaced by a later one with the same id."""
    unmatched: int = 0
    """Labels with no pending prediction: id never seen, null, expired, evicted, matched."""
    expired: Counter[ModelVersion] = field(default_factory=Counter)
    """Predictions older than the TTL before their label came, per (model, version)."""
    evicted: Counter[ModelVersion] = field(default_factory=Counter)
    """Predictions dropped to keep at most ``max_pending`` pending, per (model, version)."""


@dataclass(slots=True)
class _Chunk:
    """The predictions of one :meth:`LabelJoin.add`, rows in arrival order."""

    serial: int
    key: ModelVersion
    ids: list[str]
    ts: NDArray[np.float64]
    scores: NDArray[np.float64]
    pending: NDArray[np.bool_]
    n_pending: int
    ts_max: float
    """The largest event time of the rows it was made with: fixed, so that compaction and
    checkpoints never change when the chunk expires."""


class LabelJoin:
    """Pending predictions by request id, across model versions, within a TTL of event
    time and at most ``max_pending`` of them (see the module docstring).

    >>> import numpy as np, pyarrow as pa
    >>> join = LabelJoin(ttl=60.0, max_pending=1000)
    >>> ts = np.array([0.0, 1.0, 2.0])
    >>> join.add("fraud", "7", pa.array(["a", None, "c"]), ts, np.array([0.9, 0.2, 0.4]))
    >>> m = join.match(["c", "zz"], np.array([1.0, 0.0]))[("fraud", "7")]
    >>> m.scores.tolist(), m.labels.tolist(), join.pending
    ([0.4], [1.0], 1)
    >>> join.counters.no_id, join.counters.unmatched
    (1, 1)
    """

    def __init__(self, ttl: float, max_pending: int):
        if not (isinstance(ttl, int | float) and math.isfinite(ttl) and ttl > 0):
            raise ValueError(f"ttl must be a positive number of seconds, got {ttl!r}")
        if (
            isinstance(max_pending, bool)
            or not isinstance(max_pending, int | np.integer)
            or max_pending < 1
        ):
            raise ValueError(f"max_pending must be a positive integer, got {max_pending!r}")
        self.ttl = float(ttl)
        self.max_pending = int(max_pending)
        self._reset()

    def _reset(self) -> None:
        self.counters = JoinCounters()
        self._watermark = -math.inf
        self._chunks: OrderedDict[int, _Chunk] = OrderedDict()
        self._index: dict[str | None, int] = {}
        self._serial = 0

    @property
    def watermark(self) -> float:
        """The largest prediction event time seen (-inf before any)."""
        return self._watermark

    @property
    def pending(self) -> int:
        """Predictions waiting for their label."""
        return len(self._index)

    @property
    def held(self) -> int:
        """Rows kept in memory, pending or not yet compacted away: at most twice
        :attr:`pending` between calls."""
        return sum(c.pending.shape[0] for c in self._chunks.values())

    def __len__(self) -> int:
        return len(self._index)

    def add(
        self,
        model: str,
        version: str,
        ids: pa.Array | pa.ChunkedArray,
        ts: NDArray[np.float64],
        scores: NDArray[np.float64],
    ) -> None:
        """Remember one batch of predictions of ``model`` ``version``: request ``ids``
        (strings, nulls allowed), event times ``ts`` in seconds and ``scores``."""
        n = len(ids)
        ts = np.asarray(ts, dtype=np.float64)
        scores = np.asarray(scores, dtype=np.float64)
        if ts.shape != (n,) or scores.shape != (n,):
            raise ValueError(
                f"ids, ts and scores must have one length, got {n}, {ts.shape} and {scores.shape}"
            )
        finite = np.isfinite(ts)
        if finite.any():
            self._watermark = max(self._watermark, float(ts[finite].max()))
        keep = np.where(finite, ts >= self._watermark - self.ttl, True)  # no time: "now"
        key = (model, version)
        if ids.null_count:
            valid = np.asarray(ids.is_valid(), dtype=np.bool_)
            self.counters.no_id += n - int(np.count_nonzero(valid))
            late = int(np.count_nonzero(valid & ~keep))
            keep &= valid
        else:
            late = n - int(np.count_nonzero(keep))
        if late:
            self.counters.expired[key] += late  # already past the TTL on arrival
        ts = np.where(finite, ts, self._watermark)
        if not keep.all():
            ids, ts, scores = ids.filter(pa.array(keep)), ts[keep], scores[keep]
        if len(ids):
            self._append(key, ids.to_pylist(), ts, scores)
        self._expire()
        self._evict()

    def _append(
        self,
        key: ModelVersion,
        ids: list[str],
        ts: NDArray[np.float64],
        scores: NDArray[np.float64],
    ) -> None:
        n = len(ids)
        if n > _ROW_MASK:
            raise ValueError(f"a batch holds at most {_ROW_MASK} predictions, got {n}")
        self._serial += 1
        base = self._serial << _ROW_BITS
        codes = np.arange(base, base + n, dtype=np.int64)
        # one C-level pass: a new id takes its code; a pending one keeps (and returns) its own
        got = np.fromiter(
            map(self._index.setdefault, ids, range(base, base + n)), dtype=np.int64, count=n
        )
        chunk = _Chunk(
            serial=self._serial,
            key=key,
            ids=ids,
            ts=ts,
            scores=np.array(scores, dtype=np.float64),  # not a view of the caller's
            pending=np.ones(n, dtype=np.bool_),
            n_pending=n,
            ts_max=float(ts.max()),
        )
        self._chunks[chunk.serial] = chunk
        clash = np.flatnonzero(got != codes)
        if clash.shape[0]:
            # ids pending already (in an earlier chunk, or earlier in this batch): the later
            # prediction replaces the earlier, in arrival order
            replaced = np.empty(clash.shape[0], dtype=np.int64)
            for j, row in enumerate(clash.tolist()):
                replaced[j] = self._index[ids[row]]
                self._index[ids[row]] = base + row
            self.counters.replaced += replaced.shape[0]
            for c, rows in self._by_chunk(replaced):
                self._release(c, rows)

    def _by_chunk(self, codes: NDArray[np.int64]) -> list[tuple[_Chunk, NDArray[np.int64]]]:
        """Index codes grouped by chunk: each chunk with its rows."""
        serials = codes >> _ROW_BITS
        rows = codes & _ROW_MASK
        out = []
        for s in np.unique(serials).tolist():
            out.append((self._chunks[s], rows[serials == s]))
        return out

    def _release(self, chunk: _Chunk, rows: NDArray[np.int64]) -> None:
        """Rows of ``chunk`` are pending no more (the index no longer points at them):
        drop the chunk once none is, compact it once fewer than half are."""
        chunk.pending[rows] = False
        chunk.n_pending -= rows.shape[0]
        if chunk.n_pending == 0:
            del self._chunks[chunk.serial]
        elif 2 * chunk.n_pending < chunk.pending.shape[0]:
            keep = chunk.pending
            chunk.ids = list(compress(chunk.ids, keep.tolist()))
            chunk.ts, chunk.scores = chunk.ts[keep], chunk.scores[keep]
            chunk.pending = np.ones(chunk.n_pending, dtype=np.bool_)
            base = chunk.serial << _ROW_BITS
            self._index.update(zip(chunk.ids, range(base, base + chunk.n_pending), strict=True))

    def _drop(self, chunk: _Chunk) -> int:
        """Forget a whole chunk; the number of its rows that were pending."""
        del self._chunks[chunk.serial]
        ids = chunk.ids
        if chunk.n_pending < len(ids):
            ids = list(compress(ids, chunk.pending.tolist()))
        deque(map(self._index.pop, ids), maxlen=0)  # consumed in C
        return chunk.n_pending

    def _expire(self) -> None:
        cutoff = self._watermark - self.ttl
        while self._chunks:
            front = next(iter(self._chunks.values()))
            if not front.ts_max < cutoff:
                return
            self.counters.expired[front.key] += self._drop(front)

    def _evict(self) -> None:
        excess = len(self._index) - self.max_pending
        while excess > 0 and len(self._chunks) > 1:
            front = next(iter(self._chunks.values()))
            dropped = self._drop(front)
            self.counters.evicted[front.key] += dropped
            excess -= dropped
        if excess > 0:  # the newest chunk alone holds too many: its oldest rows go
            (last,) = self._chunks.values()
            rows = np.flatnonzero(last.pending)[:excess]
            deque(map(self._index.pop, [last.ids[i] for i in rows.tolist()]), maxlen=0)
            self.counters.evicted[last.key] += excess
            self._release(last, rows)

    def match(
        self, ids: Sequence[str | None] | pa.Array | pa.ChunkedArray, labels: NDArray[np.float64]
    ) -> dict[ModelVersion, Matched]:
        """Join labels to their pending predictions by request id; each prediction matched
        is pending no more. The labels are taken as they are: drop invalid ones first (see
        :func:`label_values`), or their predictions are used up."""
        id_list: list[str | None] = (
            ids.to_pylist() if isinstance(ids, pa.Array | pa.ChunkedArray) else list(ids)
        )
        n = len(id_list)
        labels = np.asarray(labels, dtype=np.float64)
        if labels.shape != (n,):
            raise ValueError(f"ids and labels must have one length, got {n} and {labels.shape}")
        codes = np.fromiter(map(self._index.pop, id_list, repeat(-1, n)), np.int64, count=n)
        hit = np.flatnonzero(codes >= 0)
        self.counters.unmatched += n - hit.shape[0]
        if hit.shape[0] == 0:
            return {}
        hit_codes = codes[hit]
        ts = np.empty(hit.shape[0])
        scores = np.empty(hit.shape[0])
        group = np.empty(hit.shape[0], dtype=np.int64)
        keys: list[ModelVersion] = []
        serials = hit_codes >> _ROW_BITS
        for s in np.unique(serials).tolist():
            at = np.flatnonzero(serials == s)
            chunk = self._chunks[s]
            rows = hit_codes[at] & _ROW_MASK
            ts[at], scores[at] = chunk.ts[rows], chunk.scores[rows]
            if chunk.key not in keys:
                keys.append(chunk.key)
            group[at] = keys.index(chunk.key)
            self._release(chunk, rows)
        # a prediction past the TTL whose chunk is still kept has expired all the same
        old = ts < self._watermark - self.ttl
        if old.any():
            self.counters.unmatched += int(np.count_nonzero(old))
            for g, k in enumerate(keys):
                if expired := int(np.count_nonzero(old & (group == g))):
                    self.counters.expired[k] += expired
            fresh = ~old
            hit, ts, scores, group = hit[fresh], ts[fresh], scores[fresh], group[fresh]
        out: dict[ModelVersion, Matched] = {}
        for g, k in enumerate(keys):
            sel = np.flatnonzero(group == g)
            if sel.shape[0]:
                out[k] = Matched(ts[sel], scores[sel], labels[hit[sel]])
        return out

    def snapshot(self) -> tuple[dict[str, Any], dict[str, NDArray[Any]]]:
        """The join as a JSON-able ``meta`` and plain arrays: the pending rows of each chunk
        in arrival order (compacted), ids as UTF-8 bytes with offsets."""
        chunks = list(self._chunks.values())
        ids = [i for c in chunks for i in compress(c.ids, c.pending.tolist())]
        text = pa.array(ids, type=pa.large_string())
        _, offsets_buf, data_buf = text.buffers()
        offsets = np.frombuffer(offsets_buf, dtype=np.int64, count=len(ids) + 1).copy()
        data = np.frombuffer(data_buf, dtype=np.uint8, count=int(offsets[-1])).copy()
        c = self.counters
        meta = {
            "format": SNAPSHOT_FORMAT,
            "watermark": _json_float(self._watermark),
            "counters": {
                "no_id": c.no_id,
                "replaced": c.replaced,
                "unmatched": c.unmatched,
                "expired": [[m, v, k] for (m, v), k in c.expired.items()],
                "evicted": [[m, v, k] for (m, v), k in c.evicted.items()],
            },
            "chunks": [
                {
                    "model": ch.key[0],
                    "version": ch.key[1],
                    "rows": ch.n_pending,
                    "ts_max": _json_float(ch.ts_max),
                }
                for ch in chunks
            ],
        }
        empty = np.empty(0)
        arrays: dict[str, NDArray[Any]] = {
            "ids_offsets": offsets,
            "ids_utf8": data,
            "ts": np.concatenate([ch.ts[ch.pending] for ch in chunks] or [empty]),
            "scores": np.concatenate([ch.scores[ch.pending] for ch in chunks] or [empty]),
        }
        return meta, arrays

    @classmethod
    def restore(
        cls,
        ttl: float,
        max_pending: int,
        meta: dict[str, Any],
        arrays: dict[str, NDArray[Any]],
    ) -> LabelJoin:
        """A join that goes on exactly as the one :meth:`snapshot` was taken of (with a
        smaller ``ttl`` or ``max_pending``, it expires or evicts what they no longer
        allow)."""
        if meta.get("format") != SNAPSHOT_FORMAT:
            raise ValueError(f"label join snapshot: unknown format {meta.get('format')!r}")
        join = cls(ttl, max_pending)
        offsets = np.asarray(arrays["ids_offsets"], dtype=np.int64)
        data = np.asarray(arrays["ids_utf8"], dtype=np.uint8)
        ts = np.asarray(arrays["ts"], dtype=np.float64)
        scores = np.asarray(arrays["scores"], dtype=np.float64)
        n = offsets.shape[0] - 1
        sizes = [int(ch["rows"]) for ch in meta["chunks"]]
        if n < 0 or ts.shape != (n,) or scores.shape != (n,) or sum(sizes) != n:
            raise ValueError("label join snapshot: ids, times, scores and chunks disagree")
        text = pa.LargeStringArray.from_buffers(n, pa.py_buffer(offsets), pa.py_buffer(data))
        try:
            text.validate(full=True)
        except pa.ArrowInvalid as e:
            raise ValueError(f"label join snapshot: the ids are not UTF-8 text ({e})") from e
        ids: list[str] = text.to_pylist()
        join._watermark = _from_json_float(meta["watermark"])
        c = meta["counters"]
        join.counters = JoinCounters(
            no_id=int(c["no_id"]),
            replaced=int(c["replaced"]),
            unmatched=int(c["unmatched"]),
            expired=Counter({(m, v): int(k) for m, v, k in c["expired"]}),
            evicted=Counter({(m, v): int(k) for m, v, k in c["evicted"]}),
        )
        start = 0
        for ch, size in zip(meta["chunks"], sizes, strict=True):
            join._serial += 1
            end = start + size
            chunk = _Chunk(
                serial=join._serial,
                key=(str(ch["model"]), str(ch["version"])),
                ids=ids[start:end],
                ts=ts[start:end].copy(),
                scores=scores[start:end].copy(),
                pending=np.ones(size, dtype=np.bool_),
                n_pending=size,
                ts_max=_from_json_float(ch["ts_max"]),
            )
            base = chunk.serial << _ROW_BITS
            join._index.update(zip(chunk.ids, range(base, base + size), strict=True))
            join._chunks[chunk.serial] = chunk
            start = end
        if len(join._index) != n:
            raise ValueError("label join snapshot: a request id is pending twice")
        join._expire()
        join._evict()
        return join


def _json_float(x: float) -> float | None:
    """-inf (nothing seen yet) as JSON null."""
    return None if x == -math.inf else x


def _from_json_float(x: float | None) -> float:
    return -math.inf if x is None else float(x)
