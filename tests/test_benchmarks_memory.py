"""benchmarks/runtime_memory.py: each step measured in a fresh interpreter."""

from __future__ import annotations

from pathlib import Path

import pytest

pytestmark = pytest.mark.skipif(not Path("/proc/self/smaps").exists(), reason="needs /proc")


@pytest.fixture(scope="module")
def rm(bench_module):  # type: ignore[no-untyped-def]
    return bench_module("runtime_memory")


def test_each_step_is_measured_in_a_fresh_interpreter(rm) -> None:  # type: ignore[no-untyped-def]
    numpy = rm.measure(rm.STEPS["numpy"])
    kernels = rm.measure(rm.STEPS["... + first kernel calls"])
    # anonymous and file-backed parts add up to the resident size (to the kB's rounding)
    for m in (numpy, kernels):
        assert m["anon"] + m["file"] == pytest.approx(m["rss"], abs=2.0)
    assert numpy["llvm"] == 0  # numpy alone maps no LLVM
    assert 0 < kernels["llvm"] < kernels["file"]  # Numba's kernels did: part of the files
    assert kernels["rss"] > numpy["rss"] + kernels["llvm"]  # fresh: numpy's again, and more
