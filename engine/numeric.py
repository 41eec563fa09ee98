"""A model version's numeric columns compared in one compiled call per batch of windows.

The engine's Kafka consumer is pure Python and holds the interpreter lock most of the time;
every return from a kernel to Python waits for that lock. So rather than a handful of
calls per column and window, :meth:`NumericColumns.compare` makes one call per worker
thread for every numeric column of every window that closed together: each column's values
are sorted (NaN and ±inf counted), compared with the baseline's reference (skew) and with
the previous window's sorted values (drift), window after window.

Inputs and outputs are laid end to end in flat arrays with offsets (references once per
monitor, window values per call), since a compiled function cannot take a list of arrays
of different lengths cheaply.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from driftline.detectors import NumericReference, NumericStatistics
from driftline.detectors._jit import kernel
from driftline.detectors.ecdf import cdf_integral
from driftline.detectors.location import pooled_moments_pvalue, window_moments
from driftline.detectors.sorting import finite_sorted
from driftline.detectors.statistics import (
    N_NUMERIC,
    NumericValues,
    _compare_samples,
    _numeric_compare,
    numeric_result,
)

F64 = NDArray[np.float64]
I64 = NDArray[np.int64]


def _offsets(lengths: Sequence[int]) -> I64:
    out = np.zeros(len(lengths) + 1, dtype=np.int64)
    np.cumsum(lengths, out=out[1:])
    return out


@kernel
def _store(row: F64, values: NumericValues) -> None:
    for k, v in enumerate(values):
        row[k] = v


@kernel
def _compare_columns(
    cols: I64,
    n_win: int,
    samples: F64,
    s_off: I64,
    integrals: F64,
    edges: F64,
    e_off: I64,
    props: F64,
    lo: F64,
    hi: F64,
    mean: F64,
    std: F64,
    finite: I64,
    values: F64,
    v_off: I64,
    present: NDArray[np.bool_],
    prev: F64,
    prev_off: I64,
    has_prev: NDArray[np.bool_],
    out_sorted: F64,
    counts_out: I64,
    c_off: I64,
    stats: F64,
    ints: I64,
    pooled: F64,
    drift: bool,
    two_window: bool,
) -> None:
    """For each column ``c`` in ``cols`` and window ``w`` (item ``c·n_win + w``): sort the
    item's values into ``out_sorted`` (same offsets), count NaN, ±inf and finite values into
    ``ints[item, 0:3]``, the bin counts into ``counts_out`` at ``c_off[item]``, and the
    statistics against the reference (``stats[item, 0]``, out-of-range ``ints[item, 3]``) and
    against the window before (``stats[item, 1]``, ``ints[item, 4]``; left as they are
    without one, or when not ``drift``), and the two-window test's p-value of the item with
    the window before (``pooled[item]``, left as it is without one or when not
    ``two_window``)."""
    for c in cols:
        s0, s1 = s_off[c], s_off[c + 1]
        sample = samples[s0:s1]
        integral = integrals[s0 + c : s1 + c + 1]  # M + 1 values per column
        e0, e1 = e_off[c], e_off[c + 1]
        col_edges = edges[e0:e1]
        col_props = props[e0 + c : e1 + c + 1]  # one more bin than edges
        before = prev[prev_off[c] : prev_off[c + 1]]
        have = has_prev[c]
        # the window before's moments (count, mean, squared deviations), taken once: for the
        # shift test against it (drift) and for the two-window test
        b_n, b_mean, b_ss = 0, 0.0, 0.0
        if have and (drift or two_window):
            b_n = before.shape[0]
            b_mean, b_ss = window_moments(before)
        for w in range(n_win):
            item = c * n_win + w
            if not present[item]:
                have = False
                b_n = 0
                continue
            v0 = v_off[item]
            cur, n_nan, n_inf = finite_sorted(values[v0 : v_off[item + 1]])
            n = cur.shape[0]
            out_sorted[v0 : v0 + n] = cur
            c_mean, c_ss = window_moments(cur)
            got, oor, counts = _numeric_compare(
                sample,
                integral,
                col_edges,
                col_props,
                lo[c],
                hi[c],
                mean[c],
                std[c],
                finite[c],
                cur,
                c_mean,
                c_ss,
            )
            counts_out[c_off[item] : c_off[item] + counts.shape[0]] = counts
            _store(stats[item, 0], got)
            ints[item, 0] = n_nan
            ints[item, 1] = n_inf
            ints[item, 2] = n
            ints[item, 3] = oor
            if have:  # without a window before, the row stays NaN (and 0 out of range)
                if drift:
                    got, oor = _compare_samples(
                        before, b_mean, b_ss, col_edges, cur, counts, c_mean, c_ss
                    )
                    _store(stats[item, 1], got)
                    ints[item, 4] = oor
                if two_window:
                    pooled[item] = pooled_moments_pvalue(
                        b_n, b_mean, b_ss, n, c_mean, c_ss, mean[c], std[c], finite[c]
                    )
            before = out_sorted[v0 : v0 + n]
            b_n, b_mean, b_ss = n, c_mean, c_ss
            have = True


@dataclass(frozen=True)
class Compared:
    """One numeric column of one window: its sorted finite values and its statistics against
    the reference and (when there was a window before) against that window."""

    sorted: F64
    skew: NumericStatistics
    drift: NumericStatistics | None


def end_to_end(parts: list[F64]) -> F64:
    """``np.concatenate(parts)``; or, when the parts already lie end to end in one array
    (``baseline.load`` lays a baseline's samples out so), a view of that array."""
    if not parts:
        return np.empty(0)
    base = parts[0].base
    adjacent = isinstance(base, np.ndarray) and all(
        p.base is base and p.flags.c_contiguous and p.dtype == np.float64 for p in parts
    )
    for a, b in itertools.pairwise(parts):
        adjacent = adjacent and a.ctypes.data + a.nbytes == b.ctypes.data
    if not adjacent:
        return np.concatenate(parts)
    assert isinstance(base, np.ndarray)
    offset = parts[0].ctypes.data - base.ctypes.data
    total = sum(p.shape[0] for p in parts)
    return np.ndarray((total,), dtype=np.float64, buffer=base, offset=offset)


class NumericColumns:
    """The numeric references of one baseline, laid end to end."""

    def __init__(self, names: list[str], refs: list[NumericReference]) -> None:
        self.names = names
        self.index = {n: i for i, n in enumerate(names)}
        self.samples = end_to_end([r.sample for r in refs])
        self.s_off = _offsets([r.sample.shape[0] for r in refs])
        self.integrals = (
            np.concatenate([cdf_integral(r.sample) for r in refs]) if refs else np.empty(0)
        )
        self.edges = np.concatenate([r.edges for r in refs]) if refs else np.empty(0)
        self.e_off = _offsets([r.edges.shape[0] for r in refs])
        self.props = np.concatenate([r.proportions for r in refs]) if refs else np.empty(0)
        self.lo = np.array([r.min for r in refs], dtype=np.float64)
        self.hi = np.array([r.max for r in refs], dtype=np.float64)
        self.mean = np.array([r.mean for r in refs], dtype=np.float64)
        self.std = np.array([r.std for r in refs], dtype=np.float64)
        self.finite = np.array([r.finite for r in refs], dtype=np.int64)
        self.bins = [r.edges.shape[0] + 1 for r in refs]

    def compare(
        self,
        values: list[list[F64 | None]],
        previous: list[F64 | None],
        errors: list[list[int]],
        pool: ThreadPoolExecutor | None,
        groups: int,
        drift: bool = True,
        two_window: bool = True,
    ) -> list[list[Compared | None]]:
        """``values[c][w]``: column ``c``'s float64 values (NaN where missing) in window
        ``w``, None when the window lacks the column; ``previous[c]``: the sorted finite
        values of the window before, if any; ``errors[c][w]``: its wrong-type count. Returns
        ``[c][w]``. The columns are split into ``groups`` calls run on ``pool``. With
        ``drift=False`` the statistics against the window before are not computed (None);
        the two-window test is, unless ``two_window`` is False."""
        n_cols = len(self.names)
        n_win = len(values[0]) if values else 0
        items = [v for col in values for v in col]
        lengths = [0 if v is None else v.shape[0] for v in items]
        v_off = _offsets(lengths)
        flat = [v for v in items if v is not None and v.shape[0]]
        joined = np.concatenate(flat) if flat else np.empty(0)
        present = np.array([v is not None for v in items], dtype=np.bool_)
        prev_parts = [np.empty(0) if p is None else p for p in previous]
        prev = np.concatenate(prev_parts) if prev_parts else np.empty(0)
        prev_off = _offsets([p.shape[0] for p in prev_parts])
        has_prev = np.array([p is not None for p in previous], dtype=np.bool_)
        c_off = _offsets([self.bins[c] for c in range(n_cols) for _ in range(n_win)])
        out_sorted = np.empty(joined.shape[0])
        counts_out = np.zeros(int(c_off[-1]), dtype=np.int64)
        stats = np.full((len(items), 2, N_NUMERIC), math.nan)
        ints = np.zeros((len(items), 5), dtype=np.int64)
        pooled = np.full(len(items), math.nan)

        def run(cols: I64) -> None:
            _compare_columns(
                cols,
                n_win,
                self.samples,
                self.s_off,
                self.integrals,
                self.edges,
                self.e_off,
                self.props,
                self.lo,
                self.hi,
                self.mean,
                self.std,
                self.finite,
                joined,
                v_off,
                present,
                prev,
                prev_off,
                has_prev,
                out_sorted,
                counts_out,
                c_off,
                stats,
                ints,
                pooled,
                drift,
                two_window,
            )

        everything = np.arange(n_cols, dtype=np.int64)
        if pool is None or groups < 2 or n_cols < 2:
            run(everything)
        else:  # interleaved: neighbouring columns tend to cost alike
            list(pool.map(run, [everything[g::groups] for g in range(groups)]))

        out: list[list[Compared | None]] = []
        for c in range(n_cols):
            row: list[Compared | None] = []
            for w in range(n_win):
                item = c * n_win + w
                if not present[item]:
                    row.append(None)
                    continue
                n_nan, n_inf, n, oor, drift_oor = (int(x) for x in ints[item])
                v0 = int(v_off[item])
                counts = counts_out[c_off[item] : c_off[item + 1]]
                common = (lengths[item], n, n_nan, n_inf, errors[c][w])
                skew = numeric_result(
                    tuple(stats[item, 0]), oor, counts, *common, pooled=float(pooled[item])
                )
                drift_stats = None
                if drift and (present[item - 1] if w > 0 else has_prev[c]):  # a window before
                    drift_stats = numeric_result(tuple(stats[item, 1]), drift_oor, counts, *common)
                row.append(Compared(out_sorted[v0 : v0 + n], skew, drift_stats))
            out.append(row)
        return out
