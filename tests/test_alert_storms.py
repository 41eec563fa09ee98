"""Alert storms are contained: a statistic that flaps from window to window produces no more
alerts than the health changes its hysteresis allows (the engine, a real outbox file)."""

from __future__ import annotations

from itertools import pairwise
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from kafka_io import json_messages
from sinks import MemorySink
from test_engine import config

from driftline import config as cfgmod
from driftline.alerts import Alerter
from driftline.engine import Engine
from driftline.outbox import Outbox


def flapping(data: Path) -> pa.Table:
    """12 windows of 2,000 events alternating between the example's calm start and its
    drifted end: observed health flips every window (critical on a drifted window; a calm
    one is ok, or warning as it drifts from the drifted window before it)."""
    serving = pq.read_table(data / "serving.parquet")
    calm, drifted = serving.slice(0, 2000), serving.slice(10_000, 2000)
    return pa.concat_tables([calm if i % 2 == 0 else drifted for i in range(12)])


@pytest.mark.parametrize("hysteresis", [1, 2, 3])
def test_a_flapping_stream_alerts_once_per_allowed_state_change(
    data: Path,
    tmp_path: Path,
    hysteresis: int,
) -> None:
    path = config(data, tmp_path).path
    path.write_text(path.read_text().replace("hysteresis = 2", f"hysteresis = {hysteresis}"))
    cfg = cfgmod.load(path)
    outbox = Outbox(tmp_path / "alerts.db")
    alerter = Alerter(outbox, ["oncall"])
    alerts = []

    def on_change(model: str, version: str, change: object) -> None:
        alert = alerter.on_change(model, version, change)  # type: ignore[arg-type]
        if alert is not None:
            alerts.append(alert)

    sink = MemorySink()
    engine = Engine(cfg, sink, on_change=on_change)
    table = flapping(data)
    for start in range(0, table.num_rows, 2000):
        engine.process(json_messages(table.slice(start, 2000), start))
    engine.close()
    skew = [r for r in sink.records if r["kind"] == "skew"]
    observed = [r["observed_health"] for r in skew]
    assert len(skew) == 12
    assert all(a != b for a, b in pairwise(observed))  # it flaps
    changes = [r["health_change"] for r in skew if "health_change" in r]
    # one alert per state change, and a state changes only after `hysteresis` windows
    assert [a.health for a in alerts] == [c["to"] for c in changes]
    assert outbox.counts()["pending"] == len(changes)  # one delivery row each, one receiver
    assert len(changes) <= len(skew) // hysteresis
    if hysteresis == 1:  # every flip is a change
        flips = sum(a != b for a, b in pairwise(["ok", *observed]))
        assert len(changes) == flips >= 11
    else:
        assert len(changes) == 1  # the one step up to the level both sides share
    outbox.close()
