"""Smoke test of benchmarks/peers.py's own code paths (no peer virtualenv needed): the ramp
workload, the shared arrays, driftline's kernel runner and the NumPy/SciPy reference on
them, and the agreement and detection scoring that compare the two."""

from __future__ import annotations

import json
from pathlib import Path

import pytest


@pytest.fixture(scope="module")
def bench_modules(bench_module):  # type: ignore[no-untyped-def]
    return tuple(
        bench_module(m) for m in ("workload", "_peer_run", "_peer_stats", "scipy_reference")
    )


def test_driftline_and_scipy_paths_agree(tmp_path: Path, bench_modules) -> None:  # type: ignore[no-untyped-def]
    workload, peer_run, peer_stats, scipy_reference = bench_modules
    wl = workload.ensure_workload(
        tmp_path / "wl", rows=20_000, ref_rows=5_000, drift="ramp", progress=False
    )
    assert wl["ramp_rows"] == 5_000 and wl["drift"] == "ramp"
    info = tmp_path / "workload.json"
    info.write_text(json.dumps(wl))
    peer_run.prepare(info, tmp_path / "arrays")
    out = tmp_path / "driftline.jsonl"
    peer_run.run("driftline", tmp_path / "arrays", 2_000, "default", out)
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert rows[-1]["meta"]["windows"] == 10
    dl = rows[:-1]
    sp = tmp_path / "scipy.jsonl"
    with open(sp, "w") as fh:
        scipy_reference.run(
            Path(wl["reference"]), Path(wl["serving"]), 2_000, set(wl["categorical"]), fh
        )
    ref = [json.loads(line) for line in sp.read_text().splitlines()]
    agreement = peer_stats.agreement(dl, ref)
    assert {k: v["status"] for k, v in agreement.items()} == dict.fromkeys(agreement, "agrees")
    drifted = [*wl["numeric"][:5], "cat_0", "cat_1"]
    det = peer_stats.detection({"driftline kernels": dl}, ref, 5, drifted, 2_000)
    d = det["driftline kernels: its default decision"]
    assert d["undrifted_feature_windows"] == 18 * 10 + 7 * 5
    assert set(d["delays_windows"]) == set(drifted)
    exp = peer_stats.experiment(dl, 5, drifted, 2_000, 25)
    assert "PSI >= 0.1 alone (the default before the shift test)" in exp


def test_agreement_marks_missing_statistics_na(bench_modules) -> None:  # type: ignore[no-untyped-def]
    _, _, peer_stats, _ = bench_modules
    ref = [{"features": {"a": {"type": "numeric", "ks_statistic": 0.1, "psi": 0.2}}}]
    tool = [{"features": {"a": {"ks_statistic": 0.1}}}]
    a = peer_stats.agreement(tool, ref)
    assert a["ks_statistic"]["status"] == "agrees"
    assert a["psi numeric"]["status"] == "n/a"
