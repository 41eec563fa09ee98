"""atheris: JSON events through driftline.events.decode_batch (both paths: one message
alone, and beside 16 good events, where pyarrow's columnar reader is tried first).

Invariant: never an exception; every message is a decoded row or a dead letter, once."""

from __future__ import annotations

import sys

import atheris

import driftline.detectors  # noqa: F401 (imported, not instrumented: Numba compiles it)

with atheris.instrument_imports(
    include=["driftline.events", "driftline.columns", "driftline.windows"]
):
    from driftline.events import JSON, MESSAGE, FieldMap, decode_batch

from _common import main

FIELDS = FieldMap()
GOOD = (
    b'{"model":"fraud","version":"7","id":"g","ts":1795300000.5,'
    b'"features":{"amount":1.5,"country":"DE"},"prediction":0.5}'
)


def check(values: list[bytes]) -> None:
    n = len(values)
    out = decode_batch(values, [JSON] * n, FIELDS, [1795300000.0] * n)
    seen: list[int] = []
    for tables in out.tables.values():
        for t in tables:
            seen += t.column(MESSAGE).to_pylist()
    dead = [d.message for d in out.dead]
    assert all(d.reason and d.code for d in out.dead), out.dead
    assert sorted(seen + dead) == list(range(n)), (seen, dead)


def test_one_input(data: bytes) -> None:
    messages = data.split(b"\n") if b"\n" in data[:1] else [data]  # "\n…": a batch
    check(messages)
    check([GOOD] * 16 + messages)


if __name__ == "__main__":
    sys.setrecursionlimit(10_000)
    main(test_one_input)
