"""atheris: bytes as a .dlb baseline file through driftline.baseline.load.

Invariant: a Baseline, or BaselineError naming the file; never another exception, never a
MemoryError from a length field that lies."""

from __future__ import annotations

import tempfile
from pathlib import Path

import atheris

import driftline.detectors  # noqa: F401 (imported, not instrumented: Numba compiles it)

with atheris.instrument_imports(include=["driftline.baseline"]):
    from driftline import baseline
    from driftline.exceptions import BaselineError

from _common import main

PATH = Path(tempfile.mkdtemp(prefix="driftline-fuzz-baseline-")) / "fuzz.dlb"


def test_one_input(data: bytes) -> None:
    PATH.write_bytes(data)
    try:
        baseline.load(PATH)
    except BaselineError as exc:
        assert str(exc).startswith(str(PATH)), exc


if __name__ == "__main__":
    main(test_one_input)
