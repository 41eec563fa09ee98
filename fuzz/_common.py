"""Shared set-up of the atheris harnesses: run one with ``python fuzz/<name>.py [corpus
dirs] [libFuzzer flags]`` (see fuzz/README.md)."""

from __future__ import annotations

import sys
from collections.abc import Callable

import atheris


def main(test_one_input: Callable[[bytes], None]) -> None:
    atheris.Setup(sys.argv, test_one_input)
    atheris.Fuzz()
