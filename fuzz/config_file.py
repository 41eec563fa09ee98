"""atheris: bytes as a driftline.toml through driftline.config.load.

Invariant: the config loads, or ConfigError naming the file; never another exception."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import atheris

import driftline.detectors  # noqa: F401 (imported, not instrumented: Numba compiles it)

with atheris.instrument_imports(
    include=[
        "driftline.config",
        "driftline.windows",
        "driftline.connectors.webhooks",
        "driftline.baseline",
    ]
):
    from driftline import config
    from driftline.exceptions import ConfigError

from _common import main

DIR = Path(tempfile.mkdtemp(prefix="driftline-fuzz-config-"))
PATH = DIR / "driftline.toml"
# the seed configs name baseline "fraud.dlb": a real one, so that fuzzed configs get past
# the baseline check into the rest of the loader
shutil.copy(Path(__file__).resolve().parent / "corpus" / "baseline_file" / "fraud.dlb", DIR)


def test_one_input(data: bytes) -> None:
    PATH.write_bytes(data)
    try:
        config.load(PATH)
    except ConfigError as exc:
        assert str(exc).startswith(str(PATH)), exc


if __name__ == "__main__":
    main(test_one_input)
