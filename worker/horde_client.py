"""HTTP calls to the horde. One attempt per call: retrying is the caller's decision.

Every failure is one of two kinds: `TransientError` (network fault, timeout, 5xx, 429: worth
retrying) or `HordeRefusal` (any other non-2xx: the horde understood and said no).
"""

from __future__ import annotations

import threading
from typing import Any

import requests
from pydantic import ValidationError
from urllib3.exceptions import ReadTimeoutError

from horde_protocol import (
    PopReply,
    PopRequest,
    ProgressReply,
    ProgressRequest,
    SubmitReply,
    SubmitRequest,
)
from horde_worker import __version__

BRIDGE_AGENT = f"krita-horde-worker:{__version__}:https://github.com/krita-horde/krita-horde"
_RETRYABLE_STATUS = {408, 425, 429}


class TransientError(Exception):
    """The call may succeed if repeated later."""


class HordeRefusal(Exception):
    """The horde answered with a definitive error (`rc` as the horde names it)."""

    def __init__(self, status: int, rc: str, message: str) -> None:
        super().__init__(f"HTTP {status} {rc}: {message}")
        self.status = status
        self.rc = rc
        self.message = message


class MalformedReply(Exception):
    """The horde answered 2xx with a body that does not fit the protocol (a horde bug)."""

    def __init__(self, message: str, job_id: str | None = None) -> None:
        super().__init__(message)
        self.job_id = job_id


def _failure_name(error: requests.RequestException) -> str:
    """The kind of failure, for the log: a hung link reads `ReadTimeout` wherever it hung
    (requests calls a timeout in the middle of a reply's body a `ConnectionError`)."""
    if isinstance(error, requests.ConnectionError) and any(
        isinstance(arg, ReadTimeoutError) for arg in error.args
    ):
        return "ReadTimeout"
    return type(error).__name__


class HordeClient:
    def __init__(
        self,
        base_url: str,
        api_key: str,
        *,
        connect_timeout: float = 10.0,
        read_timeout: float = 60.0,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.api = f"{self.base_url}/api/v2"
        self._api_key = api_key
        self.timeout = (connect_timeout, read_timeout)
        # requests.Session is not documented as thread-safe: one per thread.
        self._local = threading.local()

    def _session(self) -> requests.Session:
        session = getattr(self._local, "session", None)
        if session is None:
            session = requests.Session()
            session.headers.update({"apikey": self._api_key, "Client-Agent": BRIDGE_AGENT})
            self._local.session = session
        return session

    def _request(
        self, method: str, url: str, *, timeout: tuple[float, float] | None = None, **kwargs: Any
    ) -> requests.Response:
        try:
            response = self._session().request(
                method, url, timeout=timeout or self.timeout, **kwargs
            )
        except requests.RequestException as error:
            # Connection refused/reset, DNS, timeouts, truncated bodies: all worth a retry.
            raise TransientError(f"{method} {_path(url)}: {_failure_name(error)}") from error
        if response.status_code >= 500 or response.status_code in _RETRYABLE_STATUS:
            raise TransientError(f"{method} {_path(url)}: HTTP {response.status_code}")
        if response.status_code >= 400:
            rc, message = _error_fields(response)
            raise HordeRefusal(response.status_code, rc, message)
        return response

    def _json(self, method: str, path_or_url: str, body: Any, **kwargs: Any) -> dict[str, Any]:
        url = path_or_url if "://" in path_or_url else f"{self.api}{path_or_url}"
        response = self._request(
            method, url, json=body.model_dump(mode="json", exclude_none=True), **kwargs
        )
        try:
            data = response.json()
        except ValueError as error:
            # A proxy that cut the reply short, or an HTML error page with a 200.
            raise TransientError(f"{method} {_path(url)}: reply is not JSON") from error
        if not isinstance(data, dict):
            raise TransientError(f"{method} {_path(url)}: reply is not a JSON object")
        return data

    def pop(self, request: PopRequest, wait: float = 0.0) -> PopReply:
        """`wait`: the seconds the horde may hold the pop (long-poll), added to the read
        timeout so that a held pop is not taken for a hung link."""
        timeout = (self.timeout[0], self.timeout[1] + wait)
        data = self._json("POST", "/generate/pop", request, timeout=timeout)
        try:
            return PopReply.model_validate(data)
        except ValidationError as error:
            job_id = data.get("id") if isinstance(data.get("id"), str) else None
            problems = "; ".join(
                f"{'.'.join(str(p) for p in item['loc'])}: {item['msg']}" for item in error.errors()
            )
            raise MalformedReply(
                f"pop reply does not fit the protocol: {problems}", job_id
            ) from None

    def submit(self, request: SubmitRequest) -> SubmitReply:
        return SubmitReply.model_validate(self._json("POST", "/generate/submit", request))

    def progress(self, url: str, request: ProgressRequest) -> ProgressReply:
        # Short read timeout: a progress report that is late is worthless.
        timeout = (self.timeout[0], min(self.timeout[1], 5.0))
        return ProgressReply.model_validate(self._json("POST", url, request, timeout=timeout))

    def heartbeat(self) -> dict[str, Any]:
        return self._request("GET", f"{self.api}/status/heartbeat").json()

    def upload(self, url: str, data: bytes) -> None:
        """PUT a result to a presigned URL (the horde's R2 bucket). No apikey header leaves
        for a third-party host."""
        try:
            response = requests.put(
                url, data=data, headers={"Content-Type": "image/webp"}, timeout=self.timeout
            )
        except requests.RequestException as error:
            raise TransientError(f"upload: {type(error).__name__}") from error
        if response.status_code >= 500 or response.status_code in _RETRYABLE_STATUS:
            raise TransientError(f"upload: HTTP {response.status_code}")
        if response.status_code >= 400:
            raise HordeRefusal(response.status_code, "UploadRefused", response.text[:200])

    def download(self, url: str, max_bytes: int = 64 * 1024 * 1024) -> bytes:
        """GET a source image the horde handed out as a link."""
        try:
            response = requests.get(url, timeout=self.timeout, stream=True)
            if response.status_code >= 500 or response.status_code in _RETRYABLE_STATUS:
                raise TransientError(f"download: HTTP {response.status_code}")
            if response.status_code >= 400:
                raise HordeRefusal(response.status_code, "DownloadFailed", url[:100])
            chunks = []
            size = 0
            for chunk in response.iter_content(64 * 1024):
                size += len(chunk)
                if size > max_bytes:
                    raise HordeRefusal(200, "DownloadFailed", f"larger than {max_bytes} bytes")
                chunks.append(chunk)
            return b"".join(chunks)
        except requests.RequestException as error:
            raise TransientError(f"download: {type(error).__name__}") from error


def _path(url: str) -> str:
    # Logged instead of the URL: presigned URLs carry credentials in their query string.
    return url.split("?", 1)[0]


def _error_fields(response: requests.Response) -> tuple[str, str]:
    try:
        data = response.json()
    except ValueError:
        return "HTTPError", response.text[:200]
    if isinstance(data, dict):
        return str(data.get("rc", "HTTPError")), str(data.get("message", ""))[:500]
    return "HTTPError", str(data)[:200]
