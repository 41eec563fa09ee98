"""Every docstring example in the installed package runs and prints what it says."""

from __future__ import annotations

import doctest
import importlib
import pkgutil

import pytest

import driftline
import driftline.connectors
import driftline.detectors

PACKAGES = (driftline, driftline.detectors, driftline.connectors)


def _modules() -> list[str]:
    # Each package is walked on its own: installed editable, the sub-packages live in
    # other directories than driftline's.
    names = {p.__name__ for p in PACKAGES}
    for pkg in PACKAGES:
        names.update(m.name for m in pkgutil.iter_modules(pkg.__path__, pkg.__name__ + "."))
    return sorted(n for n in names if not n.endswith("__main__"))


@pytest.mark.parametrize("name", _modules())
def test_docstring_examples(name: str) -> None:
    module = importlib.import_module(name)
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert result.failed == 0, f"{result.failed} doctest(s) failed in {name}"
