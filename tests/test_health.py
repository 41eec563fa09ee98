"""Health hysteresis: windows must be worse (or better) for N in a row before the state
changes, and it changes to the level of that run nearest the old state."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from driftline.health import Change, Health, HealthTracker

OK, WARN, CRIT = Health.OK, Health.WARNING, Health.CRITICAL


def run(tracker: HealthTracker, levels: list[Health]) -> list[tuple[int, Health, Health]]:
    changes = []
    for i, level in enumerate(levels):
        c = tracker.update(level, i)
        if c is not None:
            changes.append((c.window, c.previous, c.current))
    return changes


def test_one_noisy_window_changes_nothing() -> None:
    assert run(HealthTracker(2), [OK, CRIT, OK, WARN, OK]) == []


def test_changes_after_holding_for_n_windows() -> None:
    t = HealthTracker(2)
    assert run(t, [OK, CRIT, CRIT, CRIT, OK, OK]) == [(2, OK, CRIT), (5, CRIT, OK)]
    assert t.state is OK


def test_a_run_of_worse_windows_moves_to_its_mildest_level() -> None:
    t = HealthTracker(3)
    # warning, warning, critical: three bad windows, the mildest is warning; then three
    # critical windows in a row escalate
    assert run(t, [WARN, WARN, CRIT, CRIT, CRIT, CRIT]) == [(2, OK, WARN), (5, WARN, CRIT)]
    # critical, then ok, warning: two better windows, the nearest to critical is warning
    t = HealthTracker(2)
    assert run(t, [CRIT, CRIT, OK, WARN]) == [(1, OK, CRIT), (3, CRIT, WARN)]


def test_a_window_on_the_other_side_restarts_the_count() -> None:
    t = HealthTracker(2, state=WARN)
    assert run(t, [CRIT, OK, CRIT, OK]) == []


def test_hysteresis_one_follows_every_window() -> None:
    assert run(HealthTracker(1), [WARN, OK, CRIT]) == [(0, OK, WARN), (1, WARN, OK), (2, OK, CRIT)]


def test_change_carries_reasons_and_validation() -> None:
    t = HealthTracker(1)
    assert t.update(CRIT, 0, ("x drifted",)) == Change(OK, CRIT, 0, ("x drifted",))
    with pytest.raises(ValueError, match="hysteresis must be a positive integer, got 0"):
        HealthTracker(0)
    with pytest.raises(ValueError, match="health must be ok, warning or critical"):
        Health.parse("bad")


levels = st.lists(st.sampled_from([OK, WARN, CRIT]), max_size=40)


@given(levels, levels, st.integers(1, 4))
def test_snapshot_restore_is_transparent(before: list[Health], after: list[Health], n: int) -> None:
    a = HealthTracker(n)
    run(a, before)
    b = HealthTracker.restore(a.snapshot())
    assert [a.update(x, i) for i, x in enumerate(after)] == [
        b.update(x, i) for i, x in enumerate(after)
    ]


@given(levels, st.integers(1, 4))
def test_state_moves_only_after_n_windows_on_one_side(seq: list[Health], n: int) -> None:
    t = HealthTracker(n)
    for i, level in enumerate(seq):
        before = t.state
        c = t.update(level, i)
        if c is not None:
            run_ = seq[i + 1 - n : i + 1]
            assert i + 1 >= n
            if c.current > before:
                assert all(x > before for x in run_) and c.current == min(run_)
            else:
                assert all(x < before for x in run_) and c.current == max(run_)
