"""The horde's HTTP API as the CLI uses it (httpx), with rate limits and transient faults handled.

Every call goes through `_send`: a 429 waits for `Retry-After` (or backs off 1, 2, 4 … s when the
horde gives none), a network fault or 5xx is retried the same way, and any other error becomes a
`HordeError` with the horde's own message. Waits go through `pause`, which the caller wires to its
stop event, so Ctrl-C never waits out a back-off.
"""

from __future__ import annotations

import email.utils
import time
from collections.abc import Callable
from typing import Any

import httpx

from horde_client import __version__
from horde_client.errors import HordeError
from horde_protocol import (
    HeartbeatReply,
    ModelStatus,
    RequestAsyncReply,
    RequestStatus,
    RequestStatusCheck,
    UserDetails,
)

CLIENT_AGENT = f"krita-horde-cli:{__version__}:https://github.com/krita-horde/krita-horde"
RETRY_STATUSES = frozenset({429, 502, 503, 504})
# Statuses after which the horde certainly queued nothing (429: refused; 503: "nothing changed").
SAFE_POST_RETRIES = frozenset({429, 503})
MAX_BACKOFF = 60.0
# Attempts at a horde that does not answer at all (1 + 2 + 4 s of waiting, then an error).
UNREACHABLE_ATTEMPTS = 4


def retry_after(reply: httpx.Response, now: float | None = None) -> float | None:
    """Seconds the horde asks us to wait (`Retry-After` as seconds or as an HTTP date)."""
    value = reply.headers.get("Retry-After")
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value).timestamp()
    except (TypeError, ValueError):
        return None
    return max(0.0, when - (time.time() if now is None else now))


def _error_text(reply: httpx.Response) -> tuple[str, str | None]:
    try:
        body = reply.json()
    except ValueError:
        return reply.text[:300] or reply.reason_phrase, None
    if isinstance(body, dict):
        return str(body.get("message") or body), body.get("rc")
    return str(body)[:300], None


class HordeApi:
    def __init__(
        self,
        url: str,
        apikey: str,
        *,
        transport: httpx.BaseTransport | None = None,
        pause: Callable[[float], bool] | None = None,
        on_retry: Callable[[str], None] | None = None,
        max_attempts: int = 8,
    ) -> None:
        self.url = url.rstrip("/")
        self.api = f"{self.url}/api/v2"
        self._client = httpx.Client(
            headers={"apikey": apikey, "Client-Agent": CLIENT_AGENT},
            timeout=httpx.Timeout(60.0, connect=10.0),
            transport=transport,
        )
        # pause(seconds) -> True when interrupted: the waiting is the caller's (its stop event).
        self._pause = pause or (lambda seconds: bool(time.sleep(seconds)))
        self._on_retry = on_retry or (lambda message: None)
        self.max_attempts = max_attempts

    def close(self) -> None:
        self._client.close()

    def _send(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        backoff = 1.0
        for attempt in range(1, self.max_attempts + 1):
            reply_status: int | None = None
            try:
                reply = self._client.request(method, f"{self.api}{path}", **kwargs)
            except httpx.TransportError as error:
                # A POST may have been queued before the link broke: only a refused connection
                # is safe to repeat (a second queued request would cost the user twice).
                if method == "POST" and not isinstance(error, httpx.ConnectError):
                    raise HordeError(
                        f"{method} {path}: {type(error).__name__}; the request may or may not"
                        " have been queued"
                    ) from None
                problem, delay = f"{type(error).__name__} reaching {self.url}", None
            else:
                if reply.status_code < 400:
                    return reply
                message, rc = _error_text(reply)
                if reply.status_code not in RETRY_STATUSES or (
                    method == "POST" and reply.status_code not in SAFE_POST_RETRIES
                ):
                    raise HordeError(
                        f"the horde refused {method} {path}: {reply.status_code} {rc or ''}"
                        f" {message}".replace("  ", " "),
                        reply.status_code,
                        rc,
                    )
                problem, delay = f"{reply.status_code} {rc or ''} {message}", retry_after(reply)
                reply_status = reply.status_code
            # An unreachable horde is reported soon; a busy one (429/5xx) is waited out longer.
            attempts = self.max_attempts if reply_status is not None else UNREACHABLE_ATTEMPTS
            if attempt >= attempts:
                raise HordeError(f"{method} {path} failed {attempt} times, last: {problem.strip()}")
            wait = min(MAX_BACKOFF, delay if delay is not None else backoff)
            backoff = min(MAX_BACKOFF, backoff * 2)
            self._on_retry(f"{method} {path}: {problem.strip()}; retrying in {wait:g} s")
            if self._pause(wait):
                raise HordeError(f"{method} {path} interrupted while waiting to retry")
        raise AssertionError("unreachable")

    def heartbeat(self) -> HeartbeatReply:
        return HeartbeatReply.model_validate(self._send("GET", "/status/heartbeat").json())

    def submit(self, body: dict[str, Any]) -> RequestAsyncReply:
        return RequestAsyncReply.model_validate(
            self._send("POST", "/generate/async", json=body).json()
        )

    def check(self, request_id: str, wait: float | None = None) -> RequestStatusCheck:
        params = {"wait": f"{wait:g}"} if wait else None
        timeout = httpx.Timeout((wait or 0) + 60.0, connect=10.0)
        reply = self._send("GET", f"/generate/check/{request_id}", params=params, timeout=timeout)
        return RequestStatusCheck.model_validate(reply.json())

    def status(self, request_id: str) -> RequestStatus:
        return RequestStatus.model_validate(
            self._send("GET", f"/generate/status/{request_id}").json()
        )

    def cancel(self, request_id: str) -> RequestStatus:
        return RequestStatus.model_validate(
            self._send("DELETE", f"/generate/status/{request_id}").json()
        )

    def find_user(self) -> UserDetails:
        """The caller's own account (its kudos balance among the rest)."""
        return UserDetails.model_validate(self._send("GET", "/find_user").json())

    def models(self) -> list[ModelStatus]:
        reply = self._send("GET", "/status/models", params={"type": "image"})
        return [ModelStatus.model_validate(item) for item in reply.json()]

    def download(self, url: str) -> bytes:
        """An image the horde gave as a link (r2). No apikey header leaves for another host."""
        try:
            reply = httpx.get(url, timeout=60.0, follow_redirects=True)
        except httpx.TransportError as error:
            raise HordeError(f"downloading {url}: {type(error).__name__}") from None
        if reply.status_code >= 400:
            raise HordeError(f"downloading {url}: HTTP {reply.status_code}", reply.status_code)
        return reply.content
