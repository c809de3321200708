"""The CLI's HTTP client: rate limits, transient faults and refusals (httpx mock transport)."""

from __future__ import annotations

import httpx
import pytest

from horde_client.api import HordeApi, retry_after
from horde_client.errors import HordeError

ASYNC = {"id": "4f9c3a2e-1d0b-4a55-9d59-0c6f0e7f3b21", "kudos": 1}


def api_with(
    replies: list[httpx.Response | Exception],
) -> tuple[HordeApi, list[float], list[httpx.Request]]:
    """An api whose calls get `replies` in turn; pauses are recorded, never slept."""
    pauses: list[float] = []
    seen: list[httpx.Request] = []
    queue = list(replies)

    def handle(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        reply = queue.pop(0)
        if isinstance(reply, Exception):
            raise reply
        return reply

    def pause(seconds: float) -> bool:
        pauses.append(seconds)
        return False

    api = HordeApi("http://horde", "k" * 22, transport=httpx.MockTransport(handle), pause=pause)
    return api, pauses, seen


def test_429_waits_as_long_as_retry_after_says() -> None:
    api, pauses, seen = api_with(
        [
            httpx.Response(429, headers={"Retry-After": "7"}, json={"rc": "RateLimited"}),
            httpx.Response(202, json=ASYNC),
        ]
    )
    assert api.submit({"prompt": "p"}).id == ASYNC["id"]
    assert pauses == [7.0] and len(seen) == 2


def test_429_without_retry_after_backs_off_doubling() -> None:
    api, pauses, _ = api_with([httpx.Response(429)] * 3 + [httpx.Response(202, json=ASYNC)])
    api.submit({"prompt": "p"})
    assert pauses == [1.0, 2.0, 4.0]


def test_a_horde_that_keeps_refusing_gives_a_clear_error() -> None:
    api, pauses, _ = api_with([httpx.Response(429, json={"message": "slow down"})] * 8)
    with pytest.raises(HordeError, match=r"failed 8 times, last: 429.*slow down"):
        api.submit({"prompt": "p"})
    assert len(pauses) == 7


def test_a_refusal_is_not_retried_and_says_what_the_horde_said() -> None:
    api, pauses, _ = api_with(
        [httpx.Response(400, json={"message": "params.width: bad", "rc": "ValidationError"})]
    )
    with pytest.raises(HordeError, match=r"400 ValidationError params\.width: bad") as caught:
        api.submit({"prompt": "p"})
    assert caught.value.rc == "ValidationError" and pauses == []


def test_a_post_cut_off_after_sending_is_not_repeated() -> None:
    """It may have been queued: sending it again could make the user pay twice."""
    api, _, seen = api_with([httpx.ReadTimeout("slow")])
    with pytest.raises(HordeError, match="may or may not have been queued"):
        api.submit({"prompt": "p"})
    assert len(seen) == 1


def test_an_unreachable_horde_is_reported_after_a_few_seconds() -> None:
    api, pauses, _ = api_with([httpx.ConnectError("refused")] * 4)
    with pytest.raises(HordeError, match="ConnectError"):
        api.heartbeat()
    assert pauses == [1.0, 2.0, 4.0]


def test_a_stop_ends_the_waiting() -> None:
    api, _, _ = api_with([httpx.Response(503)] * 2)
    api._pause = lambda seconds: True  # the stop event was set
    with pytest.raises(HordeError, match="interrupted"):
        api.check("id")


@pytest.mark.parametrize(
    ("header", "expected"),
    [("12", 12.0), ("Thu, 01 Jan 1970 00:01:40 GMT", 40.0), ("soon", None)],
)
def test_retry_after_as_seconds_or_date(header: str, expected: float | None) -> None:
    reply = httpx.Response(429, headers={"Retry-After": header})
    assert retry_after(reply, now=60.0) == expected


def test_the_key_travels_in_the_header_only() -> None:
    api, _, seen = api_with([httpx.Response(200, json={"message": "OK", "version": "1"})])
    api.heartbeat()
    assert seen[0].headers["apikey"] == "k" * 22
    assert "k" * 22 not in str(seen[0].url)
