"""`driftline replay` and `baseline build` end to end, through the real command line."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import naive
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from driftline.cli import main
from driftline.connectors.files import read_batches
from driftline.windows import count_windows, time_windows

NUMERIC_FIELDS = {
    "type",
    "psi",
    "ks_statistic",
    "ks_pvalue",
    "js_distance",
    "wasserstein",
    "missing_rate",
    "drift",
}
CATEGORICAL_FIELDS = {
    "type",
    "psi",
    "linf",
    "chi2_pvalue",
    "js_distance",
    "unseen_rate",
    "missing_rate",
    "drift",
}


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "driftline", *args], capture_output=True, text=True, timeout=300
    )


def replay(data: Path, *args: str, baseline: str = "m.dlb") -> subprocess.CompletedProcess[str]:
    """``driftline replay`` of the module's serving file against a baseline in ``data``."""
    return run("replay", str(data / "serve.parquet"), "--baseline", str(data / baseline), *args)


def replay_records(data: Path, *args: str) -> list[dict[str, Any]]:
    """The JSON records of a successful replay."""
    r = replay(data, *args, "--format", "jsonl", "-q")
    assert r.returncode == 0, r.stderr
    return [json.loads(line) for line in r.stdout.splitlines()]


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("replay")
    rng = np.random.default_rng(21)
    n_ref, n_cur = 20_000, 9_000
    pq.write_table(
        pa.table(
            {
                "x": rng.normal(0, 1, n_ref),
                "y": rng.exponential(2.0, n_ref),
                "c": rng.choice(["a", "b", "c"], n_ref, p=[0.5, 0.3, 0.2]),
                "score": rng.random(n_ref),
            }
        ),
        d / "train.parquet",
    )
    x = rng.normal(0, 1, n_cur)
    x[6000:] += 0.8  # the last window shifts
    c = rng.choice(["a", "b", "c"], n_cur, p=[0.5, 0.3, 0.2]).astype(object)
    c[6000:6300] = "zz"
    pq.write_table(
        pa.table(
            {
                "ts": 1_700_000_000.0 + np.arange(n_cur) * 0.1,
                "x": x,
                "c": c,
                "score": rng.random(n_cur),
                "extra": np.zeros(n_cur),
            }
        ),
        d / "serve.parquet",
    )
    r = run(
        "baseline",
        "build",
        str(d / "train.parquet"),
        "-o",
        str(d / "m.dlb"),
        "--prediction",
        "score",
        "--model",
        "m",
        "--model-version",
        "2",
    )
    assert r.returncode == 0, r.stderr
    return d


def test_jsonl_follows_the_output_contract(data: Path) -> None:
    records = replay_records(data, "--window", "3000")
    assert [rec["window"]["index"] for rec in records] == [0, 1, 2]
    first = records[0]
    assert (first["model"], first["version"], first["kind"]) == ("m", "2", "skew")
    assert first["window"]["count"] == 3000
    assert set(first["features"]) == {"x", "y", "c"}  # 'extra' is not in the baseline
    assert set(first["features"]["x"]) >= NUMERIC_FIELDS
    assert set(first["features"]["c"]) >= CATEGORICAL_FIELDS
    assert first["features"]["y"]["absent"] is True  # in the baseline, not in the data
    assert first["quality"]["missing_fields"] == 1
    assert set(first["prediction"]) >= NUMERIC_FIELDS
    assert set(first["dataset_drift"]) >= {"share", "drift"}
    # the statistics are the oracle's, on the window's rows
    train = pq.read_table(data / "train.parquet")
    serve = pq.read_table(data / "serve.parquet")
    last = records[2]["features"]["x"]
    want = naive.numeric_window(
        train.column("x").to_numpy(), serve.column("x").to_numpy()[6000:9000]
    )
    for key, value in want.items():
        assert last[key] == pytest.approx(value, rel=1e-9, abs=1e-6), key
    cwant = naive.categorical_window(
        train.column("c").to_pylist(), serve.column("c").to_pylist()[6000:9000]
    )
    for key, value in cwant.items():
        assert records[2]["features"]["c"][key] == pytest.approx(value, rel=1e-9, abs=1e-6), key
    assert records[2]["features"]["c"]["unseen_rate"] == pytest.approx(0.1)
    # decisions: the stationary windows are ok but for the absent column; the last drifts
    assert [rec["features"]["x"]["drift"] for rec in records] == [False, False, True]
    assert records[2]["features"]["c"]["drift"] is True
    assert records[0]["health"] == "warning" and "absent from the data: y" in records[0]["reasons"]
    assert records[2]["health"] == "critical"


def test_drifted_features_carry_the_windows_histogram(data: Path) -> None:
    """``bins`` on a drifted feature: the training's shares and the window's on the
    training's bins, equal to counting the window's rows by hand; none on the others."""
    from driftline import baseline as bl

    records = replay_records(data, "--window", "3000")
    base = bl.load(data / "m.dlb")
    serve = pq.read_table(data / "serve.parquet")
    last = records[2]["features"]
    x_ref = base.column("x").reference
    bins = last["x"]["bins"]
    assert bins["edges"] == [float(e) for e in x_ref.edges]
    assert bins["training"] == pytest.approx(list(x_ref.proportions), abs=1e-6)
    x = serve.column("x").to_numpy(zero_copy_only=False)[6000:9000].astype(float)
    x = x[np.isfinite(x)]
    counts = np.bincount(
        np.searchsorted(x_ref.edges, x, side="right"), minlength=len(bins["window"])
    )
    assert bins["window"] == pytest.approx(list(counts / counts.sum()), abs=1e-6)
    c_ref = base.column("c").reference
    cbins = last["c"]["bins"]
    assert cbins["categories"] == [*c_ref.categories, "__other__"]
    values = [v for v in serve.column("c").to_pylist()[6000:9000] if v is not None]
    top = set(c_ref.categories)
    want = [sum(v == c for v in values) / len(values) for c in c_ref.categories]
    want.append(sum(v not in top for v in values) / len(values))
    assert cbins["window"] == pytest.approx(want, abs=1e-6)
    assert sum(cbins["window"]) == pytest.approx(1.0)
    # not drifted: no bins (records stay small)
    assert "bins" not in records[0]["features"]["x"]
    assert all("bins" not in f for f in records[0]["features"].values())


def test_table_format_and_fail_on_drift(data: Path) -> None:
    r = replay(
        data,
        "--window",
        "3000",
        "--fail-on-drift",
    )
    assert r.returncode == 1
    lines = r.stdout.splitlines()
    assert lines[0].split()[:4] == ["window", "rows", "share", "health"]
    assert "x (psi" in lines[3] and "critical" in lines[3]
    assert "3 windows: 0 ok, 2 warning, 1 critical" in r.stdout


def test_event_time_windows(data: Path) -> None:
    # 9000 rows at 10 per second: 900 s, so 5-minute windows give 3 windows of 3000 rows
    recs = replay_records(data, "--window", "5m", "--time-column", "ts")
    starts = [rec["window"]["start"] for rec in recs]
    assert all(s % 300 == 0 for s in starts) and starts == sorted(starts)
    assert sum(rec["window"]["count"] for rec in recs) == 9000
    assert all(rec["window"]["end"] - rec["window"]["start"] == 300 for rec in recs)


def test_late_and_untimed_rows_are_counted() -> None:
    ts = pa.array([0.0, 1.0, 65.0, 2.0, 130.0, None, 10.0, 200.0])
    batches = [
        pa.record_batch({"ts": ts.slice(i, 2), "v": pa.array(range(i, i + 2))})
        for i in range(0, 8, 2)
    ]
    wins = list(time_windows(batches, "ts", 60.0))
    assert [(w.start, w.count) for w in wins] == [(0.0, 3), (60.0, 1), (120.0, 1), (180.0, 1)]
    # 10.0 arrives after the 0–60 window closed (watermark 130): late, reported next
    assert sum(w.late_events for w in wins) == 1
    assert sum(w.invalid_time for w in wins) == 1


def test_count_windows_stream_without_reading_ahead() -> None:
    def endless():  # an unbounded source: windows must come out as they fill
        i = 0
        while True:
            yield pa.record_batch({"v": pa.array(np.arange(i, i + 700, dtype=float))})
            i += 700

    it = count_windows(endless(), 1000)
    first, second = next(it), next(it)
    assert (first.count, second.count) == (1000, 1000)
    assert (
        first.chunks("v")[0].to_pylist()[0] == 0.0
        and second.chunks("v")[0].to_pylist()[0] == 1000.0
    )


def test_tolerant_jsonl_counts_bad_lines_and_type_errors(data: Path, tmp_path: Path) -> None:
    lines = []
    rng = np.random.default_rng(3)
    for i in range(2500):
        ev = {"id": f"r{i}", "features": {"x": float(rng.normal()), "c": "a"}, "prediction": 0.5}
        if i == 10:
            ev["features"]["x"] = "twelve"
        lines.append(json.dumps(ev))
    lines.insert(50, "{not json")
    lines.insert(60, "[1, 2]")
    p = tmp_path / "events.jsonl"
    p.write_text("\n".join(lines) + "\n")
    r = run(
        "replay", str(p), "--baseline", str(data / "m.dlb"), "--window", "5000", "--format", "jsonl"
    )
    assert r.returncode == 0, r.stderr
    assert "line 51 skipped: not JSON" in r.stderr and "line 61 skipped: a JSON list" in r.stderr
    rec = json.loads(r.stdout.splitlines()[0])
    assert rec["quality"]["invalid_events"] == 2
    assert rec["features"]["x"]["type_errors"] == 1
    assert rec["window"]["count"] == 2500 and rec["window"]["partial"] is True
    assert rec["prediction"]["missing_rate"] == 0.0  # found as "prediction"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["replay", "nope.parquet", "--baseline", "{b}", "--window", "10"],
            "nope.parquet: no such file",
        ),
        (
            ["replay", "{d}/serve.parquet", "--baseline", "missing.dlb", "--window", "10"],
            "missing.dlb: no such baseline file",
        ),
        (
            ["replay", "{d}/serve.parquet", "--baseline", "{b}", "--window", "-3"],
            "a duration looks like",
        ),
        (
            ["replay", "{d}/serve.parquet", "--baseline", "{b}", "--window", "5m"],
            "needs --time-column",
        ),
        (
            [
                "replay",
                "{d}/serve.parquet",
                "--baseline",
                "{b}",
                "--window",
                "10",
                "--threshold",
                "-1",
            ],
            "threshold must be a positive number",
        ),
        (
            ["replay", "{d}/garbage.parquet", "--baseline", "{b}", "--window", "10"],
            "cannot read as parquet",
        ),
        (
            ["replay", "{d}/serve.txt", "--baseline", "{b}", "--window", "10"],
            "cannot tell the file format",
        ),
        (
            ["baseline", "build", "{d}/train.parquet", "-o", "{d}/x.dlb", "--categorical", "nope"],
            "--categorical names columns not in the data: nope",
        ),
        (
            ["baseline", "build", "{d}/train.parquet", "-o", "{d}/x.dlb", "--calibrate"],
            "--calibrate needs --window",
        ),
        (
            ["baseline", "build", "{d}/train.parquet", "-o", "/proc/x.dlb"],
            "cannot write the baseline",
        ),
    ],
)
def test_bad_input_exits_2_with_one_line(data: Path, args: list[str], message: str) -> None:
    (data / "garbage.parquet").write_bytes(b"PAR1 not really")
    (data / "serve.txt").write_text("x\n")
    argv = [a.format(d=data, b=data / "m.dlb") for a in args]
    r = run(*argv)
    assert r.returncode == 2
    errors = [line for line in r.stderr.splitlines() if line.startswith("driftline: error: ")]
    assert len(errors) == 1 and message in errors[0], r.stderr
    assert "Traceback" not in r.stderr


def test_argparse_errors_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["baseline", "build", "x.parquet", "-o", "y.dlb", "--bins", "0"])
    assert exc.value.code == 2
    assert "expected a positive integer, got 0" in capsys.readouterr().err


def test_calibrated_baseline_is_used(data: Path, tmp_path: Path) -> None:
    cal = tmp_path / "cal.dlb"
    r = run(
        "baseline",
        "build",
        str(data / "train.parquet"),
        "-o",
        str(cal),
        "--prediction",
        "score",
        "--calibrate",
        "--window",
        "3000",
        "--false-alarm-rate",
        "0.01",
    )
    assert r.returncode == 0 and "calibrated for windows of 3000 rows" in r.stderr
    show = run("baseline", "show", str(cal), "--format", "json")
    info = json.loads(show.stdout)
    thresholds = {c["name"]: c.get("calibrated_threshold") for c in info["columns"]}
    assert all(0 < (t or 0) < 0.1 for t in thresholds.values()), thresholds
    r = run(
        "replay",
        str(data / "serve.parquet"),
        "--baseline",
        str(cal),
        "--window",
        "3000",
        "--format",
        "jsonl",
        "-q",
    )
    rec = json.loads(r.stdout.splitlines()[0])
    assert rec["features"]["x"]["decision"]["threshold"] == thresholds["x"]


def test_reader_streams_in_batches(data: Path) -> None:
    sizes = [b.num_rows for b in read_batches(data / "serve.parquet", batch_rows=2000)]
    assert max(sizes) <= 2000 and sum(sizes) == 9000


def test_quality_problems_raise_health() -> None:
    from driftline.build import BuildOptions, build_from_batches
    from driftline.monitor import Monitor, policy_for
    from driftline.windows import Window

    rng = np.random.default_rng(4)
    x = rng.normal(size=5000)
    x[::100] = np.nan  # 1 % missing in training
    b, _ = build_from_batches(
        pa.table({"x": x, "k": ["a", "b"] * 2500}).to_batches(), BuildOptions()
    )
    mon = Monitor(b, policy_for(b), "m", "1", threads=1)

    def window(values: list[object], keys: list[object]) -> Window:
        return Window(0, (pa.table({"x": pa.array(values), "k": pa.array(keys)}),), None, None)

    clean = [float(v) for v in rng.normal(size=2000)]
    keys = ["a", "b"] * 1000
    assert mon.record(window(clean, keys))["quality"]["problems"] == []
    broken = [None if i % 2 else v for i, v in enumerate(clean)]  # 50 % missing
    rec = mon.record(window(broken, keys))
    assert rec["quality"]["problems"] == ["x: missing rate 50.0% (training 1.0%)"]
    assert rec["health"] == "warning" and not rec["features"]["x"]["drift"]
    typed = [str(v) for v in clean[:1950]] + ["n/a"] * 50  # 2.5 % not numbers
    rec = mon.record(window(typed, keys))
    assert rec["features"]["x"]["type_errors"] == 50
    assert "x: 50 values of the wrong type" in rec["quality"]["problems"]
    mon.close()


def test_mixed_time_formats_parse_value_by_value() -> None:
    from driftline.windows import to_seconds

    # no single Arrow cast reads both forms, so each value is parsed on its own
    arr = pa.array(["2026-11-22T00:00:00+01:00", "2026-11-22 00:00:00", "soon", None])
    got = to_seconds(arr)
    assert got[0] == 1795302000.0  # 2026-11-21T23:00:00Z
    assert got[1] - got[0] == 3600.0  # the naive one is UTC, the other an hour ahead of it
    assert np.isnan(got[2]) and np.isnan(got[3])


@pytest.fixture(scope="module")
def labelled(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A model whose labels follow its scores until row 6,000, then stop following them:
    the features do not move, only P(label | features) does (a concept change)."""
    d = tmp_path_factory.mktemp("labelled")
    rng = np.random.default_rng(5)

    def rows(n: int, flip_from: int | None) -> pa.Table:
        x = rng.normal(0, 1, n)
        score = 1 / (1 + np.exp(-3 * x))
        label = (rng.random(n) < score).astype(np.int64)
        if flip_from is not None:
            label[flip_from:] = (rng.random(n - flip_from) < 1 - score[flip_from:]).astype(int)
        return pa.table({"x": x, "score": score, "label": label})

    pq.write_table(rows(20_000, None), d / "train.parquet")
    pq.write_table(rows(12_000, 6_000), d / "serve.parquet")
    r = run(
        "baseline", "build", str(d / "train.parquet"), "-o", str(d / "m.dlb"),
        "--prediction", "score", "--label", "label",
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    return d


def test_labels_in_the_data_are_graded_window_by_window(labelled: Path) -> None:
    records = replay_records(labelled, "--window", "1000")
    skew = [r for r in records if r["kind"] == "skew"]
    perf = [r for r in records if r["kind"] == "performance"]
    assert len(skew) == len(perf) == 12
    served = pq.read_table(labelled / "serve.parquet")
    score = served.column("score").to_numpy()
    label = served.column("label").to_numpy()
    for i, p in enumerate(perf):
        s, y = score[1000 * i : 1000 * (i + 1)], label[1000 * i : 1000 * (i + 1)]
        assert p["source"] == "data" and p["window"]["index"] == i
        assert p["realised"]["pairs"] == 1000
        assert p["realised"]["accuracy"] == pytest.approx(np.mean((s >= 0.5) == (y == 1)))
        assert p["realised"]["log_loss"] == pytest.approx(
            -np.mean(np.where(y == 1, np.log(s), np.log(1 - s)))
        )
    # the features never drift: the change shows only through the labels
    assert all(not f["drift"] for r in skew for f in r["features"].values())
    first = next(i for i, r in enumerate(skew) if r["health"] != "ok")
    assert 6 <= first <= 8, [r["health"] for r in skew]
    assert skew[first]["reasons"] and all(
        reason.startswith("realised ") for reason in skew[first]["reasons"]
    )
    assert perf[first]["observed_health"] == skew[first]["health"]
    assert all(r["health"] == "ok" for r in skew[:6])


def test_regression_task_and_score_threshold(labelled: Path) -> None:
    perf = [
        r
        for r in replay_records(labelled, "--window", "4000", "--task", "regression")
        if r["kind"] == "performance"
    ]
    served = pq.read_table(labelled / "serve.parquet")
    err = served.column("score").to_numpy()[:4000] - served.column("label").to_numpy()[:4000]
    assert perf[0]["task"] == "regression"
    assert perf[0]["realised"]["mae"] == pytest.approx(np.mean(np.abs(err)))
    assert perf[0]["realised"]["rmse"] == pytest.approx(np.sqrt(np.mean(err**2)))
    high = replay_records(labelled, "--window", "4000", "--score-threshold", "0.9")
    p = next(r for r in high if r["kind"] == "performance")
    s = served.column("score").to_numpy()[:4000]
    y = served.column("label").to_numpy()[:4000]
    assert p["realised"]["precision"] == pytest.approx(np.mean(y[s >= 0.9] == 1))


def test_no_label_column_in_the_data_no_performance_records(labelled: Path, tmp_path: Path) -> None:
    pq.write_table(
        pq.read_table(labelled / "serve.parquet").drop_columns(["label"]), tmp_path / "s.parquet"
    )
    r = run(
        "replay", str(tmp_path / "s.parquet"), "--baseline", str(labelled / "m.dlb"),
        "--window", "3000", "--format", "jsonl", "-q",
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    kinds = {json.loads(line)["kind"] for line in r.stdout.splitlines()}
    assert kinds == {"skew"}


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--score-threshold", "1.5"], "--score-threshold must be in [0, 1], got 1.5"),
        (["--task", "ranking"], "invalid choice: 'ranking'"),
    ],
)
def test_bad_grading_options_exit_2(labelled: Path, args: list[str], message: str) -> None:
    r = replay(labelled, "--window", "1000", *args)
    assert r.returncode == 2
    assert message in r.stderr and "Traceback" not in r.stderr
