"""``driftline produce --rate``: a steady stream of events (the compose stack's producer).

The pacing is checked on a fake clock with a recording producer in place of kafka-python's
(exact send times), then once end to end through the CLI and a real broker (Tansu).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import orjson
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from kafka_io import read_all, write_config

from driftline.cli import main
from driftline.config import KafkaConfig, Topics
from driftline.connectors import kafka as kafka_connector
from driftline.connectors.kafka import produce_file


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        assert seconds > 0
        self.sleeps.append(seconds)
        self.now += seconds


class Recorder:
    """Stands in for KafkaProducer: remembers when (on the fake clock) each message went."""

    def __init__(self) -> None:
        self.clock = FakeClock()
        self.sent: list[tuple[float, bytes]] = []
        self.lag: dict[int, float] = {}
        """Seconds a send takes, by message index (a slow broker)."""

    def __call__(self, **_: Any) -> Recorder:  # KafkaProducer(**config)
        return self

    def send(self, topic: str, value: bytes, **_: Any) -> None:
        self.sent.append((self.clock.now, value))
        self.clock.now += self.lag.get(len(self.sent) - 1, 0.0)

    def flush(self) -> None:
        pass

    def close(self) -> None:
        pass


@pytest.fixture
def recorder(monkeypatch: pytest.MonkeyPatch) -> Recorder:
    recorder = Recorder()
    monkeypatch.setattr(kafka_connector, "KafkaProducer", recorder)
    return recorder


def rows(n: int, batch: int) -> list[pa.RecordBatch]:
    table = pa.table(
        {
            "id": [f"r{i}" for i in range(n)],
            "amount": [float(i) for i in range(n)],
            "score": [0.5] * n,
        }
    )
    return table.to_batches(max_chunksize=batch)


def send(recorder: Recorder, n: int, batch: int, **kw: Any) -> int:
    clock = recorder.clock
    return produce_file(
        KafkaConfig(topics=Topics(inference="inference")),
        rows(n, batch),
        model="fraud",
        version="7",
        prediction="score",
        clock=clock,
        sleep=clock.sleep,
        **kw,
    )


def offsets(recorder: Recorder) -> list[float]:
    return [round(t - 100.0, 9) for t, _ in recorder.sent]


def test_json_events_are_sent_evenly_at_the_rate(recorder: Recorder) -> None:
    assert send(recorder, 10, batch=4, rate=5.0) == 10
    assert offsets(recorder) == [i / 5 for i in range(10)]
    ids = [orjson.loads(v)["id"] for _, v in recorder.sent]
    assert ids == [f"r{i}" for i in range(10)]


def test_a_late_send_is_caught_up_not_carried_forward(recorder: Recorder) -> None:
    recorder.lag = {2: 1.0}  # the third send takes a second: the 4th to 7th are overdue
    send(recorder, 10, batch=10, rate=5.0)
    assert offsets(recorder) == [0.0, 0.2, 0.4, 1.4, 1.4, 1.4, 1.4, 1.4, 1.6, 1.8]


def test_arrow_messages_go_when_their_last_row_is_due(recorder: Recorder) -> None:
    assert send(recorder, 10, batch=4, rate=2.0, arrow=True) == 10
    # rows 0-3, 4-7, 8-9: the last rows are due at 3/2, 7/2 and 9/2 seconds
    assert offsets(recorder) == [1.5, 3.5, 4.5]


def test_without_a_rate_nothing_waits(recorder: Recorder) -> None:
    send(recorder, 10, batch=3)
    assert recorder.clock.sleeps == []
    assert offsets(recorder) == [0.0] * 10


@pytest.mark.parametrize("rate", [0.0, -1.0, float("nan"), float("inf")])
def test_a_rate_that_is_not_a_positive_number_is_refused(recorder: Recorder, rate: float) -> None:
    with pytest.raises(ValueError, match="rate must be a positive number"):
        send(recorder, 3, batch=3, rate=rate)
    assert recorder.sent == []


@pytest.mark.parametrize("rate", ["0", "-5", "nan"])
def test_the_cli_refuses_a_bad_rate_before_connecting(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], rate: str
) -> None:
    argv = ["produce", "x.parquet", "--config", str(tmp_path / "missing.toml")]
    assert main([*argv, "--model", "fraud", "--model-version", "7", "--rate", rate]) == 2
    assert "--rate must be a positive number of events per second" in capsys.readouterr().err


def test_produce_with_a_rate_through_a_real_broker(
    broker: str, topic: str, data: Path, tmp_path: Path
) -> None:
    serving = pq.read_table(data / "serving.parquet").slice(0, 40)
    pq.write_table(serving, tmp_path / "serving.parquet")
    config = write_config(
        tmp_path / "driftline.toml",
        broker,
        {"inference": topic},
        data / "fraud.dlb",
        tmp_path / "state",
    )
    argv = ["produce", str(tmp_path / "serving.parquet"), "--config", str(config)]
    argv += ["--model", "fraud", "--model-version", "7", "--prediction", "score"]
    began = time.monotonic()
    assert main([*argv, "--exclude", "label", "--rate", "80", "--quiet"]) == 0
    elapsed = time.monotonic() - began
    assert elapsed >= 39 / 80
    records = read_all(broker, topic, 40)
    sent = [orjson.loads(v) for _, v, _ in records]
    assert [e["id"] for e in sent] == serving.column("id").to_pylist()
    assert {k for e in sent for k in e["features"]} == {
        "amount",
        "age",
        "hour",
        "items",
        "country",
        "device",
    }
