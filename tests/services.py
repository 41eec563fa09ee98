"""What a test does when a real service it needs is not installed."""

from __future__ import annotations

import os

import pytest


def missing_service(reason: str) -> None:
    """Skip the test here, or fail it in CI (``DRIFTLINE_REQUIRE_SERVICES=1``, set by
    ``.ci/run``), where every service must be present."""
    if os.environ.get("DRIFTLINE_REQUIRE_SERVICES") == "1":
        pytest.fail(f"required test service missing: {reason}")
    pytest.skip(reason)
