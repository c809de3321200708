"""`check?wait=` answers with the state as it is when it answers, also when no event woke it:
an API node whose Redis subscription was being made again misses the events of that moment
(horde_api/queue/notifier.py), and its long-polls must not then report what they read before."""

from __future__ import annotations

from typing import Any

import pytest

from horde_api.routers import generate
from tests.api.conftest import Horde


def test_a_long_poll_that_no_event_woke_reports_the_state_it_ends_on(
    horde: Horde, monkeypatch: pytest.MonkeyPatch
) -> None:
    rid = horde.request()["id"]
    before_the_pop = generate._view_or_404(horde.ctx, rid)  # waiting 1, as the poll reads first
    horde.pop(horde.user("volunteer"))
    # The pop's event is lost to this process, and the poll's first read comes just before it.
    monkeypatch.setattr(horde.ctx.notifier, "_wake", lambda _request_id: None)
    real_view = generate._view_or_404
    reads: list[Any] = []

    def view_or_404(ctx: Any, request_id: str, touch: bool = True) -> Any:
        reads.append(request_id)
        return before_the_pop if len(reads) == 1 else real_view(ctx, request_id, touch)

    monkeypatch.setattr(generate, "_view_or_404", view_or_404)
    reply = horde.client.get(f"/api/v2/generate/check/{rid}", params={"wait": 0.2})
    assert reply.status_code == 200, reply.text
    body = reply.json()
    assert (body["waiting"], body["processing"]) == (0, 1), body
    assert len(reads) == 2, "read again when the wait ran out"
