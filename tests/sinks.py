"""A sink that keeps what the engine publishes, for in-process engine tests."""

from __future__ import annotations

from typing import Any

import orjson

from driftline.engine import Origin
from driftline.events import DeadLetter


class MemorySink:
    def __init__(self) -> None:
        self.records: list[dict[str, Any]] = []
        self.dead: list[tuple[DeadLetter, Origin]] = []
        self.flushes = 0

    def publish(self, record: dict[str, Any]) -> None:
        self.records.append(orjson.loads(orjson.dumps(record)))  # as a consumer sees it

    def dead_letter(self, letter: DeadLetter, origin: Origin) -> None:
        self.dead.append((letter, origin))

    def flush(self) -> None:
        self.flushes += 1
