"""schemathesis over the running API's `/openapi.json`: no input makes a 5xx, and every reply's
status and body match the schema the API publishes. Bounded (a few dozen examples per operation
and mode) so it stays within a CI budget of about a minute on two shared cores."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.core.failures import FailureGroup
from schemathesis.specs.openapi.checks import (
    response_schema_conformance,
    status_code_conformance,
)

from tests.faults.conftest import horde

pytestmark = pytest.mark.slow

MAX_EXAMPLES = int(os.environ.get("FAULTS_FUZZ_EXAMPLES", "25"))
# status_code_conformance: every status the server answers is one the schema lists for that
# operation (no undocumented 422s or 503s, no missing dry_run 200).
CHECKS = [not_a_server_error, status_code_conformance, response_schema_conformance]


def _fuzz(
    operation: Any, mode: GenerationMode, base_url: str, apikey: str, statuses: list[int]
) -> None:
    @given(case=operation.as_strategy(generation_mode=mode))
    @settings(
        max_examples=MAX_EXAMPLES,
        deadline=None,
        database=None,
        derandomize=True,
        suppress_health_check=list(HealthCheck),
        phases=[Phase.explicit, Phase.generate],
    )
    def run(case: Any) -> None:
        # The generated case may carry its own apikey header; ours fills it in otherwise.
        headers = {"apikey": apikey, **(case.headers or {})}
        reply = case.call_and_validate(
            base_url=base_url, headers=headers, checks=CHECKS, timeout=30
        )
        statuses.append(reply.status_code)

    run()


def test_no_input_makes_a_5xx_and_replies_match_the_schema(tmp_path: Path) -> None:
    with horde(tmp_path) as live:
        apikey = live.create_user("fuzzer")
        schema = schemathesis.openapi.from_url(f"{live.url}/openapi.json")
        failures: list[str] = []
        operations = 0
        statuses: list[int] = []
        for result in schema.get_all_operations():
            operation = result.ok()
            operations += 1
            for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
                try:
                    _fuzz(operation, mode, live.url, apikey, statuses)
                except Unsatisfiable:
                    continue  # e.g. no negative value exists for a free-form path parameter
                except (Exception, FailureGroup) as failure:
                    failures.append(f"{operation.label} [{mode.value}]: {failure}")
        # The server is still up after all that.
        assert httpx.get(f"{live.api}/status/heartbeat", timeout=5).status_code == 200
        log = live.log_path.read_text()
    assert operations >= 10, "the schema should list every endpoint of the protocol"
    assert not failures, "\n\n".join(failures)
    # Not vacuous: many calls were made, and both accepted and refused inputs were among them.
    assert len(statuses) >= operations * 5, len(statuses)
    assert any(200 <= s < 300 for s in statuses) and any(400 <= s < 500 for s in statuses)
    print(f"fuzz: {operations} operations, {len(statuses)} calls, statuses {sorted(set(statuses))}")
    assert apikey not in log
