"""One test over every detector class: defaults, validation, reading does not change state,
pickling, and snapshot → restore → the same outputs on the next window."""

from __future__ import annotations

import pickle
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

from driftline.detectors import (
    CategoricalDriftDetector,
    DatasetDriftDetector,
    NumericDriftDetector,
    categorical_reference,
    numeric_reference,
)

rng = np.random.default_rng(8)
NUM_REF = numeric_reference(rng.normal(size=20_000))
CAT_REF = categorical_reference(list(rng.choice(list("abcde"), 20_000)))


def windows_numeric(seed: int) -> list[Any]:
    r = np.random.default_rng(seed)
    return [r.normal(0.0, 1.0, 3000), r.normal(0.7, 1.0, 3000), r.normal(0.0, 1.0, 200)]


def windows_categorical(seed: int) -> list[Any]:
    r = np.random.default_rng(seed)
    return [list(r.choice(list("abcde"), 3000)), list(r.choice(list("abz"), 3000))]


def windows_dataset(seed: int) -> list[Any]:
    return [
        {"x": n, "c": c}
        for n, c in zip(windows_numeric(seed), windows_categorical(seed), strict=False)
    ]


CASES: dict[str, tuple[Callable[[], Any], Callable[[int], list[Any]]]] = {
    "numeric": (lambda: NumericDriftDetector(NUM_REF), windows_numeric),
    "categorical": (lambda: CategoricalDriftDetector(CAT_REF), windows_categorical),
    "dataset": (lambda: DatasetDriftDetector({"x": NUM_REF, "c": CAT_REF}), windows_dataset),
}


def outputs(det: Any) -> tuple[Any, ...]:
    return (det.drift_detected, repr(det.statistics), repr(det.decision))


@pytest.mark.parametrize("name", sorted(CASES))
def test_detector_conformance(name: str) -> None:
    make, windows = CASES[name]
    det = make()
    # defaults: nothing seen, nothing detected
    assert det.drift_detected is False
    first, second, *_ = windows(1)
    assert det.update(first) is det  # update returns self
    before = outputs(det)
    assert outputs(det) == before  # reading twice changes nothing
    assert det.drift_detected is False  # a stationary window
    restored = pickle.loads(pickle.dumps(det))
    assert outputs(restored) == before
    assert outputs(det.update(second)) == outputs(restored.update(second))
    assert det.drift_detected is True  # the shifted window
