"""Write the seed corpora of the harnesses from real example data (driftline example):
``python fuzz/make_corpus.py``. The seeds are committed; run this again after a format
change."""

from __future__ import annotations

import tempfile
from pathlib import Path

import orjson
import pyarrow as pa
import pyarrow.parquet as pq

from driftline import baseline as bl
from driftline.build import BuildOptions, build_from_file
from driftline.connectors.kafka import arrow_events
from driftline.example import write_example

HERE = Path(__file__).resolve().parent / "corpus"
FEATURES = ("amount", "country", "age", "device")


def main() -> None:
    tmp = Path(tempfile.mkdtemp())
    write_example(tmp, rows=300, serving_rows=300, seed=3)
    base, _ = build_from_file(tmp / "training.parquet", BuildOptions(prediction="score"))
    serving = pq.read_table(tmp / "serving.parquet").slice(0, 8)
    rows = serving.to_pylist()
    d = HERE / "json_events"
    d.mkdir(parents=True, exist_ok=True)
    events = [
        {
            "model": "fraud",
            "version": "7",
            "id": r["id"],
            "ts": r["ts"],
            "features": {f: r[f] for f in FEATURES if f in r},
            "prediction": r["score"],
        }
        for r in rows
    ]
    for i, e in enumerate(events[:4]):
        (d / f"event-{i}.json").write_bytes(orjson.dumps(e))
    (d / "batch.ndjson").write_bytes(b"\n" + b"\n".join(orjson.dumps(e) for e in events))
    d = HERE / "arrow_events"
    d.mkdir(parents=True, exist_ok=True)
    batch = serving.to_batches()[0]
    (d / "flat.arrows").write_bytes(arrow_events(batch, "fraud", "7", "score", ("label",)))
    nested = pa.table(
        {
            "model": ["fraud"] * 3,
            "version": pa.array([7, 7, 8]),
            "id": ["a", "b", "c"],
            "ts": pa.array([1_795_300_000, 1_795_300_001, None], pa.timestamp("s")),
            "features": pa.array([{"amount": 1.5, "country": "DE"}] * 3),
            "prediction": [0.1, 0.2, 0.3],
            "label": [0, 1, None],
        }
    )
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, nested.schema) as w:
        w.write_table(nested)
    (d / "struct.arrows").write_bytes(sink.getvalue().to_pybytes())
    d = HERE / "baseline_file"
    d.mkdir(parents=True, exist_ok=True)
    bl.save(base, d / "fraud.dlb")
    d = HERE / "config_file"
    d.mkdir(parents=True, exist_ok=True)
    (d / "minimal.toml").write_text("[[models]]\nname = 'fraud'\nbaseline = 'fraud.dlb'\n")
    examples = Path(__file__).resolve().parents[1] / "examples" / "driftline.toml"
    text = examples.read_text().replace("data/fraud.dlb", "fraud.dlb")
    (d / "example.toml").write_text(text)


if __name__ == "__main__":
    main()
