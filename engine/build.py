"""Build a baseline from a training file in one streaming pass.

Per numeric column: count, missing (null or NaN), ±inf, mean and variance merged batch by
batch (Chan, Golub & LeVeque, 1979), min, max, and a seeded reservoir sample of the finite
values (Vitter's Algorithm R, 1985), from which the quantile edges and bin proportions are
taken. When the column has no more finite values than the sample size, the sample is the
whole column and everything is exact; above it, the proportions carry sampling error of
about sqrt(p(1−p)/sample) (≈0.1 % at the default 100,000).

Per categorical column: exact counts of every value (up to the vocabulary cap).

Type inference: strings, booleans and dictionary columns are categorical; integer columns
with at most ``LOW_CARDINALITY`` distinct values are categorical (codes, flags, counts of
a few); other numbers are numeric; timestamps, dates and nested columns are skipped (and
reported). ``categorical=`` and ``numeric=`` override the inference.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from numpy.typing import NDArray

from driftline.baseline import Baseline, Column, Role, now_iso
from driftline.columns import is_categorical_type, is_numeric_type, to_float, to_strings
from driftline.connectors.files import read_batches
from driftline.detectors import categorical_reference_from_counts, numeric_reference_from_sample
from driftline.detectors.build import (
    DEFAULT_BINS,
    DEFAULT_SAMPLE,
    DEFAULT_TOP_K,
    DEFAULT_VOCABULARY_CAP,
)
from driftline.detectors.location import merge_moments
from driftline.exceptions import ConfigError, DataError

LOW_CARDINALITY = 10
"""Integer columns with at most this many distinct values are treated as categorical."""


@dataclass(frozen=True)
class BuildOptions:
    categorical: tuple[str, ...] = ()
    numeric: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()
    prediction: str | None = None
    label: str | None = None
    bins: int = DEFAULT_BINS
    sample: int = DEFAULT_SAMPLE
    top_k: int = DEFAULT_TOP_K
    seed: int = 0
    model: str | None = None
    version: str | None = None

    def __post_init__(self) -> None:
        for name, value in (("bins", self.bins), ("sample", self.sample), ("top_k", self.top_k)):
            if value < 1:
                raise ConfigError(
                    f"--{name.replace('_', '-')} must be a positive integer, got {value}"
                )
        both = set(self.categorical) & set(self.numeric)
        if both:
            raise ConfigError(f"columns named both --categorical and --numeric: {sorted(both)}")


@dataclass
class _Numeric:
    sample_size: int
    rng: np.random.Generator
    count: int = 0
    missing: int = 0
    nonfinite: int = 0
    type_errors: int = 0
    n: int = 0
    mean: float = 0.0
    m2: float = 0.0
    lo: float = np.inf
    hi: float = -np.inf
    reservoir: NDArray[np.float64] = field(default_factory=lambda: np.empty(0))

    def add(self, values: NDArray[np.float64], type_errors: int) -> None:
        self.count += values.shape[0]
        self.type_errors += type_errors
        nan = np.isnan(values)
        self.missing += int(nan.sum()) - type_errors
        fin = values[np.isfinite(values)]
        self.nonfinite += values.shape[0] - int(nan.sum()) - fin.shape[0]
        if fin.shape[0] == 0:
            return
        mb = float(fin.mean())
        m2b = float(((fin - mb) ** 2).sum())
        merged = merge_moments(self.n, self.mean, self.m2, fin.shape[0], mb, m2b)
        self.lo = min(self.lo, float(fin.min()))
        self.hi = max(self.hi, float(fin.max()))
        self._reservoir(fin)  # counts from the values seen before these
        self.n, self.mean, self.m2 = merged

    def _reservoir(self, fin: NDArray[np.float64]) -> None:
        room = self.sample_size - self.reservoir.shape[0]
        if room > 0:
            self.reservoir = np.concatenate([self.reservoir, fin[:room]])
            fin = fin[room:]
            seen = self.n + room
        else:
            seen = self.n
        if fin.shape[0] == 0:
            return
        # Algorithm R: the t-th value (0-based) replaces slot j ~ U{0..t} when j < size.
        t = seen + np.arange(fin.shape[0])
        j = self.rng.integers(0, t + 1)
        keep = j < self.sample_size
        self.reservoir[j[keep]] = fin[keep]

    def finish(self, bins: int) -> Any:
        nan = float("nan")
        return numeric_reference_from_sample(
            self.reservoir,
            count=self.count,
            missing=self.missing + self.type_errors,
            nonfinite=self.nonfinite,
            mean=self.mean if self.n else nan,
            std=float(np.sqrt(self.m2 / self.n)) if self.n else nan,
            minimum=self.lo if self.n else nan,
            maximum=self.hi if self.n else nan,
            bins=bins,
        )


@dataclass
class _Categorical:
    cap: int
    count: int = 0
    missing: int = 0
    counts: dict[str, int] = field(default_factory=dict)
    overflow: bool = False

    def add(self, arr: pa.Array) -> None:
        strings, _ = to_strings(arr)  # a value with no string form is null: counted missing
        self.count += len(strings)
        self.missing += strings.null_count
        vc = pc.value_counts(strings)
        for value, n in zip(
            vc.field("values").to_pylist(), vc.field("counts").to_pylist(), strict=True
        ):
            if value is None:
                continue
            if value in self.counts:
                self.counts[value] += n
            elif len(self.counts) < self.cap * 2:
                self.counts[value] = n
            else:
                self.overflow = True

    def distinct(self) -> int:
        return len(self.counts)

    def finish(self, top_k: int) -> Any:
        return categorical_reference_from_counts(
            self.counts,
            count=self.count,
            missing=self.missing,
            top_k=top_k,
            vocabulary_cap=self.cap,
            vocabulary_complete=not self.overflow,
        )


@dataclass
class BuildReport:
    rows: int = 0
    skipped: dict[str, str] = field(default_factory=dict)
    inferred: dict[str, str] = field(default_factory=dict)


def _plan(schema: pa.Schema, opts: BuildOptions, report: BuildReport) -> dict[str, str]:
    """Column name → 'numeric' | 'categorical' | 'int?' (decided after the pass)."""
    names = set(schema.names)
    for flag, cols in (
        ("--categorical", opts.categorical),
        ("--numeric", opts.numeric),
        ("--exclude", opts.exclude),
    ):
        unknown = [c for c in cols if c not in names]
        if unknown:
            raise ConfigError(
                f"{flag} names columns not in the data: {', '.join(unknown)} "
                f"(columns: {', '.join(schema.names)})"
            )
    for flag, col in (("--prediction", opts.prediction), ("--label", opts.label)):
        if col is not None and col not in names:
            raise ConfigError(
                f"{flag} column '{col}' is not in the data (columns: {', '.join(schema.names)})"
            )
    plan: dict[str, str] = {}
    for f in schema:
        if f.name in opts.exclude:
            continue
        if f.name in opts.categorical:
            plan[f.name] = "categorical"
        elif f.name in opts.numeric:
            plan[f.name] = "numeric"
        elif pa.types.is_integer(f.type):
            plan[f.name] = "int?"
        elif is_numeric_type(f.type):
            plan[f.name] = "numeric"
        elif is_categorical_type(f.type):
            plan[f.name] = "categorical"
        else:
            report.skipped[f.name] = f"type {f.type} is neither numeric nor categorical"
    return plan


def build_from_batches(
    batches: Iterable[pa.RecordBatch],
    opts: BuildOptions,
    *,
    source: dict[str, Any] | None = None,
    progress: Callable[[int], None] | None = None,
) -> tuple[Baseline, BuildReport]:
    report = BuildReport()
    it: Iterator[pa.RecordBatch] = iter(batches)
    first = next(it, None)
    if first is None:
        raise DataError("the data has no rows")
    plan = _plan(first.schema, opts, report)
    if not plan:
        raise DataError("no column to build a baseline from")
    numerics: dict[str, _Numeric] = {}
    cats: dict[str, _Categorical] = {}
    for i, (name, kind) in enumerate(plan.items()):
        if kind in ("numeric", "int?"):
            numerics[name] = _Numeric(opts.sample, np.random.default_rng([opts.seed, i]))
        if kind in ("categorical", "int?"):
            cats[name] = _Categorical(DEFAULT_VOCABULARY_CAP)

    def consume(batch: pa.RecordBatch) -> None:
        for name in plan:
            idx = batch.schema.get_field_index(name)
            if idx < 0:
                raise DataError(f"column '{name}' disappears part-way through the data")
            arr = batch.column(idx)
            if name in numerics:
                values, errors = to_float(arr)
                numerics[name].add(values, errors)
            if name in cats:
                acc = cats[name]
                if plan[name] == "int?" and acc.distinct() > LOW_CARDINALITY:
                    continue
                acc.add(arr)
        report.rows += batch.num_rows
        if progress is not None:
            progress(report.rows)

    consume(first)
    for batch in it:
        consume(batch)

    columns: list[Column] = []
    for name, kind in plan.items():
        if kind == "int?":
            low = cats[name].distinct() <= LOW_CARDINALITY
            kind = "categorical" if low else "numeric"
            report.inferred[name] = (
                f"{kind} (integer column, {'≤' if low else '>'}{LOW_CARDINALITY} distinct values)"
            )
        ref = (
            numerics[name].finish(opts.bins) if kind == "numeric" else cats[name].finish(opts.top_k)
        )
        role = Role.FEATURE
        if name == opts.prediction:
            role = Role.PREDICTION
        elif name == opts.label:
            role = Role.LABEL
        columns.append(Column(name, role, ref))
    options = {
        "bins": opts.bins,
        "sample": opts.sample,
        "top_k": opts.top_k,
        "seed": opts.seed,
        "low_cardinality": LOW_CARDINALITY,
    }
    baseline = Baseline(
        columns=tuple(columns),
        model=opts.model,
        version=opts.version,
        created=now_iso(),
        source={**(source or {}), "rows": report.rows},
        options=options,
    )
    return baseline, report


def build_from_file(
    path: str | Path, opts: BuildOptions, progress: Callable[[int], None] | None = None
) -> tuple[Baseline, BuildReport]:
    p = Path(path)
    return build_from_batches(read_batches(p), opts, source={"path": p.name}, progress=progress)
