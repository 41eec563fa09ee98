"""The API against its own OpenAPI schema (schemathesis): whatever a client sends, the
answer is a documented status, never a 5xx.

Generated cases run with and without the bearer token, so that both the token check and
what lies behind it (event decoding, action decisions) see hostile input.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error
from test_api import AUTH, Rig, _propose


@pytest.fixture(scope="module")
def rig(data: Path, tmp_path_factory: pytest.TempPathFactory) -> Rig:
    rig = Rig(data, tmp_path_factory.mktemp("schema"))
    _propose(rig.store, 1)  # one pending action for approve/reject to find
    return rig


def test_no_input_gives_a_server_error(rig: Rig) -> None:
    schema = schemathesis.openapi.from_asgi("/openapi.json", rig.app)
    operations = [result.ok() for result in schema.get_all_operations()]
    assert {op.path for op in operations} >= {"/v1/events", "/v1/actions/{action_id}/approve"}
    for op in operations:

        @given(case=op.as_strategy())
        @settings(
            max_examples=40,
            deadline=None,
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
        )
        def check(case: Any) -> None:
            case.call_and_validate(checks=[not_a_server_error])
            case.call_and_validate(headers=AUTH, checks=[not_a_server_error])

        check()
