"""The horde's HTTP endpoints the plug-in uses, as asynchronous calls with callbacks."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from PyQt5.QtCore import QObject

from .network import DEFAULT_TIMEOUT_S, HttpResult, JsonHttp, ResultCallback
from .settings import JobSettings
from .version import CLIENT_AGENT

API_PREFIX = "/api/v2"
# Submitting carries the source image and mask: give slow uplinks more time.
SUBMIT_TIMEOUT_S = 120.0
STATUS_TIMEOUT_S = 120.0


class HordeClient(QObject):
    """Talks to one horde (base URL without /api/v2) with one API key."""

    def __init__(
        self,
        base_url: str,
        apikey: str,
        http: JsonHttp | None = None,
        parent: QObject | None = None,
        timeout_s: float = DEFAULT_TIMEOUT_S,
        ca_file: str = "",
    ) -> None:
        super().__init__(parent)
        self.base_url = base_url.rstrip("/")
        self._apikey = apikey
        self.http = http or JsonHttp(parent=self)
        self.timeout_s = timeout_s
        self.ca_file = ca_file

    @classmethod
    def for_settings(
        cls, settings: JobSettings, http: JsonHttp, parent: QObject | None = None
    ) -> HordeClient:
        """The client of the horde, key and trusted CA file in `settings`."""
        return cls(settings.base_url, settings.apikey, http, parent, ca_file=settings.ca_file)

    def __repr__(self) -> str:  # never shows the key
        return f"HordeClient({self.base_url!r})"

    def url(self, path: str) -> str:
        return f"{self.base_url}{API_PREFIX}{path}"

    def _headers(self) -> dict[str, str]:
        return {"apikey": self._apikey, "Client-Agent": CLIENT_AGENT}

    def _send(
        self,
        method: str,
        path: str,
        callback: ResultCallback,
        body: Any = None,
        timeout_s: float | None = None,
        raw: bool = False,
    ):
        return self.http.request(
            method,
            self.url(path),
            callback,
            headers=self._headers(),
            body=body,
            timeout_s=timeout_s or self.timeout_s,
            raw=raw,
            ca_file=self.ca_file,
        )

    def submit(self, payload: dict[str, Any], callback: ResultCallback):
        return self._send("POST", "/generate/async", callback, payload, SUBMIT_TIMEOUT_S)

    def check(self, request_id: str, callback: ResultCallback, wait_s: int = 0):
        """Light status. With wait_s > 0 our horde holds the reply until something changes
        (long-poll); a horde without that extension ignores the parameter."""
        path = f"/generate/check/{quote(request_id, safe='')}"
        if wait_s > 0:
            path += f"?wait={wait_s}"
        return self._send("GET", path, callback, timeout_s=self.timeout_s + wait_s)

    def status(self, request_id: str, callback: ResultCallback):
        path = f"/generate/status/{quote(request_id, safe='')}"
        return self._send("GET", path, callback, timeout_s=max(self.timeout_s, STATUS_TIMEOUT_S))

    def cancel(self, request_id: str, callback: ResultCallback | None = None):
        path = f"/generate/status/{quote(request_id, safe='')}"
        return self._send("DELETE", path, callback or _ignore)

    def models(self, callback: ResultCallback):
        return self._send("GET", "/status/models?type=image", callback)

    def preview(self, request_id: str, callback: ResultCallback):
        """Our horde's extension: the latest preview (WebP bytes) a worker sent, 404 if none."""
        path = f"/generate/preview/{quote(request_id, safe='')}"
        return self._send("GET", path, callback, raw=True)

    def price(self, payload: dict[str, Any], callback: ResultCallback):
        """What `payload` would cost in kudos, without queueing it (`dry_run`)."""
        return self._send("POST", "/generate/async", callback, {**payload, "dry_run": True})

    def find_user(self, callback: ResultCallback):
        """The user owning the API key (their kudos balance)."""
        return self._send("GET", "/find_user", callback)

    def workers(self, callback: ResultCallback):
        """The live image workers with their models and limits (`max_pixels`, …)."""
        return self._send("GET", "/workers?type=image", callback)


def _ignore(_result: HttpResult) -> None:
    """Cancelling is best effort: the request expires on the horde anyway."""
