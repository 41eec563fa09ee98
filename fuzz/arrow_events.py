"""atheris: Arrow IPC streams through driftline.events.decode_arrow and the label decoder.

Invariant: never an exception, never a crash of the process (corrupt buffers are refused
before any compute kernel reads them); a refused message is one dead letter."""

from __future__ import annotations

import atheris

import driftline.detectors  # noqa: F401 (imported, not instrumented: Numba compiles it)

with atheris.instrument_imports(
    include=["driftline.events", "driftline.columns", "driftline.windows", "driftline.labels"]
):
    from driftline.events import ARROW, FieldMap, decode_arrow, decode_labels

from _common import main

FIELDS = FieldMap()


def test_one_input(data: bytes) -> None:
    out = decode_arrow(data, FIELDS, 1795300000.0, message=2)
    assert all(d.reason and d.code and d.message == 2 for d in out.dead), out.dead
    for tables in out.tables.values():
        for t in tables:
            t.validate(full=True)
            t.column("id").to_pylist()  # ids and times are what the engine reads as Python
            t.column("ts").to_pylist()
    labels = decode_labels([data], [ARROW], FIELDS)
    assert len(labels.ids) == len(labels.values)


if __name__ == "__main__":
    main(test_one_input)
