"""What keeps a replay's memory low, each checked for giving what the plain way gives:
``columns.numpy_of`` against pyarrow's ``to_numpy``, ``columns.string_array`` against
``pa.array``, the baseline's samples held once (``numeric.end_to_end``), Parquet schemas
from the footer, and a replay process that loads neither pandas nor SciPy's BLAS."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from driftline import baseline as bl
from driftline.build import BuildOptions, build_from_batches
from driftline.columns import numpy_of, string_array
from driftline.connectors.files import schema_of
from driftline.detectors import NumericReference
from driftline.exceptions import DataError
from driftline.monitor import shared_numeric_columns
from driftline.numeric import end_to_end

TYPES = [
    pa.int8(), pa.int16(), pa.int32(), pa.int64(), pa.uint8(), pa.uint32(), pa.uint64(),
    pa.float16(), pa.float32(), pa.float64(), pa.bool_(),
]  # fmt: skip


@st.composite
def arrow_arrays(draw: st.DrawFn) -> pa.Array | pa.ChunkedArray:
    """Arrays of every fixed-width type, with or without nulls, sliced (a non-zero offset),
    chunked, or empty."""
    t = draw(st.sampled_from(TYPES))
    nulls = not pa.types.is_boolean(t) and draw(st.booleans())

    def one() -> pa.Array:
        n = draw(st.integers(0, 40))
        if pa.types.is_boolean(t):
            values: list = draw(st.lists(st.booleans(), min_size=n, max_size=n))
        elif pa.types.is_floating(t):
            floats = st.sampled_from([0.0, -1.5, 2.25, math.inf, math.nan])
            values = draw(st.lists(floats, min_size=n, max_size=n))
        else:
            lo = 0 if pa.types.is_unsigned_integer(t) else -(2 ** (t.bit_width - 1))
            hi = 2 ** (t.bit_width - (0 if pa.types.is_unsigned_integer(t) else 1)) - 1
            values = draw(st.lists(st.integers(lo, hi), min_size=n, max_size=n))
        if nulls and values:
            values = [None if draw(st.booleans()) else v for v in values]
        if pa.types.is_floating(t) and t.bit_width == 16:
            # pyarrow takes half floats from NumPy only
            halves = np.array([np.nan if v is None else v for v in values], np.float16)
            mask = np.array([v is None for v in values], bool) if values else None
            arr = pa.array(halves, type=t, mask=mask)
        else:
            arr = pa.array(values, type=t)
        start = draw(st.integers(0, len(arr)))
        return arr.slice(start, draw(st.integers(0, len(arr) - start)))

    if draw(st.booleans()):
        return pa.chunked_array([one() for _ in range(draw(st.integers(0, 3)))], type=t)
    return one()


@settings(max_examples=400, deadline=None)
@given(arr=arrow_arrays())
def test_numpy_of_equals_to_numpy(arr: pa.Array | pa.ChunkedArray) -> None:
    if pa.types.is_boolean(arr.type) and arr.null_count:
        with pytest.raises(ValueError):
            numpy_of(arr)
        return
    want = (
        arr.to_numpy(zero_copy_only=False) if len(arr) else np.empty(0, arr.type.to_pandas_dtype())
    )
    got = numpy_of(arr)
    assert got.shape == want.shape
    if arr.null_count:
        assert got.dtype == np.float64
        np.testing.assert_array_equal(got, np.asarray(want, dtype=np.float64))
    else:
        assert got.dtype == want.dtype
        np.testing.assert_array_equal(got, want)
    # a view of Arrow's memory is read-only, as to_numpy's is: writing never changes the array
    if got.flags.writeable and got.size:
        before = np.array(want, copy=True)
        got[0] = 0 if got[0] != 0 else 1
        np.testing.assert_array_equal(arr.to_numpy(zero_copy_only=False), before)


def test_numpy_of_refuses_other_types() -> None:
    with pytest.raises(TypeError, match="numeric or boolean"):
        numpy_of(pa.array(["a"]))


@settings(max_examples=200, deadline=None)
@given(values=st.lists(st.text(max_size=8), max_size=30))
def test_string_array_equals_pa_array(values: list[str]) -> None:
    got = string_array(values)
    got.validate(full=True)
    assert got.equals(pa.array(values, type=pa.string()))


def test_a_monitor_holds_the_baseline_samples_once(data: Path) -> None:
    """baseline.load lays the monitored numeric samples end to end; the monitor's
    columns are a view of them, not a copy. Parts that are not adjacent are copied."""
    b = bl.load(data / "fraud.dlb")
    refs = [c.reference for c in b.monitored if isinstance(c.reference, NumericReference)]
    assert len(refs) >= 2
    joined = end_to_end([r.sample for r in refs])
    assert not joined.flags.owndata and all(np.shares_memory(joined, r.sample) for r in refs)
    np.testing.assert_array_equal(joined, np.concatenate([r.sample for r in refs]))
    samples = shared_numeric_columns(b).samples
    assert all(np.shares_memory(samples, r.sample) for r in refs)
    backwards = end_to_end([r.sample for r in refs[::-1]])
    assert backwards.flags.owndata
    np.testing.assert_array_equal(backwards, np.concatenate([r.sample for r in refs[::-1]]))
    assert end_to_end([]).shape == (0,)


def test_parquet_schema_comes_from_the_footer(tmp_path: Path) -> None:
    path = tmp_path / "d.parquet"
    pq.write_table(pa.table({"a": [1.0, 2.0], "b": ["x", "y"]}), path)
    assert schema_of(path).names == ["a", "b"]
    empty = tmp_path / "empty.parquet"
    pq.write_table(pa.table({"a": pa.array([], pa.float64())}), empty)
    with pytest.raises(DataError, match="no rows"):
        schema_of(empty)
    broken = tmp_path / "broken.parquet"
    broken.write_bytes(path.read_bytes()[:-12])
    with pytest.raises(DataError, match="cannot read as parquet"):
        schema_of(broken)


def test_replay_loads_neither_pandas_nor_blas(data: Path, tmp_path: Path) -> None:
    """``driftline replay`` in a process of its own, of data without labels to grade (river,
    which grading loads, imports both): the records as ever, and neither pandas (which
    pyarrow's conversions import) nor SciPy's BLAS (which Numba probes for) loaded; SciPy's
    linalg can still be imported afterwards."""
    features = pq.read_table(data / "serving.parquet").drop(["ts", "id", "score", "label"])
    baseline, _ = build_from_batches(features.to_batches(), BuildOptions())
    bl.save(baseline, tmp_path / "features.dlb")
    out = tmp_path / "r.jsonl"
    code = (
        "import sys, json\n"
        "from driftline.cli import main\n"
        f"rc = main(['replay', {str(data / 'serving.parquet')!r}, '--baseline', "
        f"{str(tmp_path / 'features.dlb')!r}, '--window', '2000', '--format', 'jsonl', '-o', "
        f"{str(out)!r}, '-q'])\n"
        "loaded = {m: m in sys.modules for m in ('pandas', 'scipy.linalg')}\n"
        "import numba.np.arraymath as am\n"
        "import scipy.linalg\n"
        "print(json.dumps({'rc': rc, 'loaded': loaded, 'blas': am._HAVE_BLAS}))\n"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    got = json.loads(r.stdout.splitlines()[-1])
    assert got == {"rc": 0, "loaded": {"pandas": False, "scipy.linalg": False}, "blas": False}
    records = [json.loads(line) for line in out.read_text().splitlines()]
    assert [r["window"]["index"] for r in records if r["kind"] == "skew"][:3] == [0, 1, 2]
