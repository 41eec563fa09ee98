"""Baseline files: build from every format, round-trip exactly, refuse what they cannot read."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import naive
import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.feather as feather
import pyarrow.parquet as pq
import pytest

from driftline import baseline as bl
from driftline.build import BuildOptions, build_from_batches, build_from_file
from driftline.calibrate import calibrate
from driftline.detectors import CategoricalReference, NumericReference
from driftline.exceptions import BaselineError, ConfigError, DataError


def training_table(n: int = 5000, seed: int = 1) -> pa.Table:
    rng = np.random.default_rng(seed)
    x = rng.normal(10, 2, n)
    x[::50] = np.nan
    return pa.table(
        {
            "x": x,
            "count": rng.integers(0, 1000, n),
            "flag": rng.integers(0, 3, n),
            "city": rng.choice(["a", "b", "c", "d"], n, p=[0.4, 0.3, 0.2, 0.1]),
            "ok": rng.random(n) < 0.3,
            "when": pa.array(np.arange(n).astype("datetime64[s]")),
            "score": rng.random(n),
        }
    )


def write(table: pa.Table, path: Path) -> Path:
    if path.suffix == ".parquet":
        pq.write_table(table, path)
    elif path.suffix == ".csv":
        pacsv.write_csv(table, path)
    elif path.suffix == ".arrow":
        feather.write_feather(table, path)
    else:
        path.write_text("\n".join(json.dumps(r, default=str) for r in table.to_pylist()))
    return path


def test_inference_and_summaries(tmp_path: Path) -> None:
    table = training_table()
    b, report = build_from_batches(
        table.to_batches(max_chunksize=700), BuildOptions(prediction="score")
    )
    kinds = {c.name: c.kind for c in b.columns}
    assert kinds == {
        "x": "numeric",
        "count": "numeric",  # integers with many values
        "flag": "categorical",  # integers with 3 values
        "city": "categorical",
        "ok": "categorical",
        "score": "numeric",
    }
    assert "when" in report.skipped
    assert b.prediction is not None and b.prediction.name == "score"
    x = b.column("x").reference
    assert isinstance(x, NumericReference)
    raw = table.column("x").to_numpy()
    fin = raw[np.isfinite(raw)]
    assert x.count == 5000 and x.missing == 100
    assert x.mean == pytest.approx(fin.mean(), rel=1e-12)
    assert x.std == pytest.approx(fin.std(), rel=1e-12)
    assert (x.min, x.max) == (fin.min(), fin.max())
    # under the sample cap the sample is the column, so edges match the oracle exactly
    assert np.array_equal(x.edges, naive.edges(fin))
    assert np.allclose(x.proportions, naive.props(fin, x.edges), atol=0)
    city = b.column("city").reference
    assert isinstance(city, CategoricalReference)
    assert city.categories == ("a", "b", "c", "d")
    ok = b.column("ok").reference
    assert isinstance(ok, CategoricalReference) and set(ok.categories) == {"true", "false"}


@pytest.mark.parametrize("suffix", [".parquet", ".csv", ".jsonl", ".arrow"])
def test_every_format_gives_the_same_baseline(tmp_path: Path, suffix: str) -> None:
    table = training_table(2000).drop_columns(["when"])
    b, _ = build_from_file(write(table, tmp_path / f"train{suffix}"), BuildOptions())
    ref, _ = build_from_batches(table.to_batches(), BuildOptions())
    for col in ref.columns:
        got = b.column(col.name).reference
        want = col.reference
        assert type(got) is type(want)
        if isinstance(want, NumericReference):
            assert np.allclose(got.sample, want.sample, rtol=1e-12)  # type: ignore[union-attr]
        else:
            assert np.array_equal(got.proportions, want.proportions)


def test_reservoir_sample_is_seeded_and_capped() -> None:
    rng = np.random.default_rng(0)
    table = pa.table({"x": rng.normal(size=30_000)})
    batches = table.to_batches(max_chunksize=1000)
    a, _ = build_from_batches(batches, BuildOptions(sample=5000, seed=3))
    b, _ = build_from_batches(batches, BuildOptions(sample=5000, seed=3))
    c, _ = build_from_batches(batches, BuildOptions(sample=5000, seed=4))
    sa = a.column("x").reference.sample  # type: ignore[union-attr]
    assert sa.shape == (5000,)
    assert np.array_equal(sa, b.column("x").reference.sample)  # type: ignore[union-attr]
    assert not np.array_equal(sa, c.column("x").reference.sample)  # type: ignore[union-attr]
    # a uniform sample of the whole stream: early and late rows both present
    full = table.column("x").to_numpy()
    pos = np.isin(full, sa).nonzero()[0]
    assert pos.min() < 3000 and pos.max() > 27_000
    assert abs(np.median(pos) - 15_000) < 1500


def test_round_trip_is_exact(tmp_path: Path) -> None:
    b, _ = build_from_batches(
        training_table().to_batches(), BuildOptions(label="flag", model="m", version="3")
    )
    b = calibrate(b, window=500, false_alarm_rate=0.05, resamples=200)
    path = bl.save(b, tmp_path / "m.dlb")
    back = bl.load(path)
    assert (back.model, back.version) == ("m", "3")
    assert back.label is not None and back.label.name == "flag"
    assert back.calibration == b.calibration
    for col in b.columns:
        got, want = back.column(col.name).reference, col.reference
        if isinstance(want, NumericReference):
            assert isinstance(got, NumericReference)
            for f in ("sample", "edges", "proportions"):
                assert np.array_equal(getattr(got, f), getattr(want, f))
            assert (got.mean, got.std, got.min, got.max) == (
                want.mean,
                want.std,
                want.min,
                want.max,
            )
        else:
            assert isinstance(got, CategoricalReference)
            assert got.categories == want.categories and got.vocabulary == want.vocabulary
            assert np.array_equal(got.proportions, want.proportions)


def _rewrite_manifest(src: Path, dst: Path, **changes: object) -> Path:
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w") as zout:
        for item in zin.infolist():
            data = zin.read(item.filename)
            if item.filename == "manifest.json":
                m = json.loads(data)
                m.update(changes)
                data = json.dumps(m).encode()
            zout.writestr(item, data)
    return dst


def test_newer_format_is_refused(tmp_path: Path) -> None:
    b, _ = build_from_batches(training_table(500).to_batches(), BuildOptions())
    good = bl.save(b, tmp_path / "good.dlb")
    newer = _rewrite_manifest(good, tmp_path / "newer.dlb", format_version=bl.FORMAT_VERSION + 1)
    with pytest.raises(BaselineError, match=r"format version 2 .* reads up to version 1\. Upgrade"):
        bl.load(newer)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"not a zip", "not a zip archive"),
        (b"", "not a zip archive"),
    ],
)
def test_corrupt_files_are_refused(tmp_path: Path, content: bytes, message: str) -> None:
    p = tmp_path / "bad.dlb"
    p.write_bytes(content)
    with pytest.raises(BaselineError, match=message):
        bl.load(p)


def test_wrong_format_and_missing_parts(tmp_path: Path) -> None:
    b, _ = build_from_batches(training_table(500).to_batches(), BuildOptions())
    good = bl.save(b, tmp_path / "good.dlb")
    with pytest.raises(BaselineError, match="not a driftline baseline"):
        bl.load(_rewrite_manifest(good, tmp_path / "other.dlb", format="something-else"))
    no_manifest = tmp_path / "empty.dlb"
    with zipfile.ZipFile(no_manifest, "w") as z:
        z.writestr("x", b"")
    with pytest.raises(BaselineError, match=r"manifest\.json"):
        bl.load(no_manifest)
    with pytest.raises(BaselineError, match="no such baseline file"):
        bl.load(tmp_path / "absent.dlb")


def test_option_errors_name_the_column(tmp_path: Path) -> None:
    batches = training_table(100).to_batches()
    with pytest.raises(ConfigError, match="--categorical names columns not in the data: nope"):
        build_from_batches(batches, BuildOptions(categorical=("nope",)))
    with pytest.raises(ConfigError, match="--prediction column 'p'"):
        build_from_batches(batches, BuildOptions(prediction="p"))
    with pytest.raises(ConfigError, match="both --categorical and --numeric"):
        BuildOptions(categorical=("x",), numeric=("x",))
    with pytest.raises(DataError, match="no rows"):
        build_from_batches([], BuildOptions())


def test_forced_numeric_string_column_counts_type_errors() -> None:
    table = pa.table({"v": ["1.5", "2", "oops", None, "4"]})
    b, _ = build_from_batches(table.to_batches(), BuildOptions(numeric=("v",)))
    ref = b.column("v").reference
    assert isinstance(ref, NumericReference)
    assert ref.sample.tolist() == [1.5, 2.0, 4.0]
    assert ref.missing == 2  # the null and the value that is not a number
