"""JSON over HTTP with QNetworkAccessManager: asynchronous on the GUI thread, a timeout on every
request, every outcome (reply, HTTP error, garbage, dropped connection) turned into an HttpResult
with a message in plain words. Nothing here raises into Qt's event loop.

TLS certificate checks stay as Qt does them by default (verified); nothing here changes them.
The API key goes into a header and is never part of a message or log line.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from PyQt5.QtCore import QByteArray, QObject, QTimer, QUrl
from PyQt5.QtNetwork import (
    QNetworkAccessManager,
    QNetworkReply,
    QNetworkRequest,
    QSsl,
    QSslCertificate,
    QSslConfiguration,
    QSslSocket,
)

log = logging.getLogger(__name__)

DEFAULT_TIMEOUT_S = 30.0
# The largest reply read into memory. A status reply carries its images inline (base64): 20
# images of a few MiB each stay far below; a horde sending more is broken or hostile, and
# reading it all would take Krita's memory.
MAX_REPLY_BYTES = 256 * 1024 * 1024
# QNetworkReply error codes 1..199 are transport and proxy failures; 201 and up mirror HTTP
# statuses, which the status code describes better.
_LAST_TRANSPORT_ERROR = 199


@dataclass(frozen=True)
class HttpResult:
    """The outcome of one request. `status` is 0 when no HTTP reply arrived."""

    status: int
    data: Any = None
    error: str | None = None
    rc: str | None = None  # the horde's error code (`rc`) of a 4xx/5xx JSON reply
    permanent: bool = False  # asking again would get the same failure (a reply too large)

    @property
    def ok(self) -> bool:
        return self.error is None

    @property
    def transient(self) -> bool:
        """Worth retrying: anything but a 4xx refusal (rate limiting excepted) or a permanent
        failure: no reply, a timeout, a server-side failure, a garbled 2xx body."""
        if self.permanent:
            return False
        return not 400 <= self.status < 500 or self.status == 429


ResultCallback = Callable[[HttpResult], None]


def describe_transport_error(code: int, host: str, error_string: str) -> str:
    """Plain words for a QNetworkReply transport error."""
    if "TLS initialization failed" in error_string and not QSslSocket.supportsSsl():
        return (
            f"cannot open a secure (https) connection to {host}: this Qt cannot load OpenSSL"
            f" (it needs {QSslSocket.sslLibraryBuildVersionString() or 'OpenSSL'})"
        )
    messages = {
        QNetworkReply.ConnectionRefusedError: (
            f"could not connect to {host}: connection refused (is the horde running there?)"
        ),
        QNetworkReply.HostNotFoundError: f"could not find the host {host} (check the horde URL)",
        QNetworkReply.RemoteHostClosedError: (
            f"{host} closed the connection before the reply was complete"
        ),
        QNetworkReply.SslHandshakeFailedError: (
            f"secure connection to {host} failed: its TLS certificate is not trusted (if the"
            " horde uses a certificate authority of its own, give its CA file under ⚙)"
        ),
        QNetworkReply.NetworkSessionFailedError: "the network is not available",
        QNetworkReply.TemporaryNetworkFailureError: "the network connection was lost",
    }
    return messages.get(code, f"network error talking to {host}: {error_string}")


def describe_http_error(status: int, data: Any, body: bytes) -> tuple[str, str | None]:
    """(message, rc) for an HTTP error reply: the horde's own `message` when it sent one."""
    rc = None
    detail = ""
    if isinstance(data, dict):
        if isinstance(data.get("message"), str):
            detail = data["message"]
        if isinstance(data.get("rc"), str):
            rc = data["rc"]
    if not detail:
        detail = snippet(body) or "no details"
    prefixes = {
        400: "the horde refused the request",
        401: "the horde refused the API key",
        403: "the horde does not allow this",
        404: "the horde does not know this request (it may have expired)",
        413: "the request is too large for the horde (try a smaller area or max size)",
        429: "the horde is rate-limiting you (too many requests at once); try again shortly",
    }
    prefix = prefixes.get(status) or (
        f"the horde failed (HTTP {status})" if status >= 500 else f"HTTP error {status}"
    )
    return f"{prefix}: {detail}", rc


def byte_size_text(size: int) -> str:
    """A size in plain words for messages: "1.5 MiB", or "300 bytes" under a MiB."""
    return f"{size / 2**20:.3g} MiB" if size >= 2**20 else f"{size} bytes"


def snippet(body: bytes, limit: int = 80) -> str:
    text = body[:limit].decode("utf-8", "replace").strip().replace("\n", " ")
    return text + ("…" if len(body) > limit else "")


def interpret_reply(
    status: int,
    body: bytes,
    transport_error: int,
    error_string: str,
    host: str,
    raw: bool = False,
) -> HttpResult:
    """Turn what arrived into an HttpResult (pure; tested without a network). With `raw` a
    2xx body is handed on as bytes (an image), errors are read as usual."""
    if 0 < transport_error <= _LAST_TRANSPORT_ERROR or (status == 0 and transport_error):
        return HttpResult(0, error=describe_transport_error(transport_error, host, error_string))
    if raw and 200 <= status < 300:
        return HttpResult(status, data=body)
    data: Any = None
    parse_error = None
    if body.strip():
        try:
            data = json.loads(body.decode("utf-8"))
        except (UnicodeDecodeError, ValueError):
            parse_error = f"'{snippet(body, 40)}'"
    if status >= 400:
        message, rc = describe_http_error(status, data, body)
        return HttpResult(status, data=data, error=message, rc=rc)
    if parse_error is not None or data is None:
        what = parse_error or "an empty body"
        return HttpResult(
            status, error=f"{host} did not answer like a horde (HTTP {status}, got {what})"
        )
    return HttpResult(status, data=data)


class JsonHttp(QObject):
    """Sends JSON requests; each answer comes back through a callback on the GUI thread."""

    def __init__(
        self,
        manager: QNetworkAccessManager | None = None,
        parent: QObject | None = None,
        max_reply_bytes: int = MAX_REPLY_BYTES,
    ) -> None:
        super().__init__(parent)
        self.manager = manager or QNetworkAccessManager(self)
        self.max_reply_bytes = max_reply_bytes
        self._pending: set[_PendingRequest] = set()
        self._ca_cache: dict[str, list[QSslCertificate]] = {}
        self._ca_file_in_use = ""

    def request(
        self,
        method: str,
        url: str,
        callback: ResultCallback,
        *,
        headers: dict[str, str] | None = None,
        body: Any = None,
        timeout_s: float = DEFAULT_TIMEOUT_S,
        raw: bool = False,
        ca_file: str = "",
    ) -> _PendingRequest:
        request = QNetworkRequest(QUrl(url))
        if ca_file != self._ca_file_in_use:
            # Qt keeps one connection per host and gives it the TLS configuration of the
            # request that opened it: after the trusted CAs changed, open fresh connections.
            self.manager.clearConnectionCache()
            self._ca_file_in_use = ca_file
        if ca_file:
            # Trust this CA too (a horde with a certificate of its own CA): verification
            # stays on, only the list of trusted authorities grows.
            config = QSslConfiguration.defaultConfiguration()
            config.setCaCertificates(config.caCertificates() + self._certificates(ca_file))
            request.setSslConfiguration(config)
        request.setAttribute(
            QNetworkRequest.RedirectPolicyAttribute, QNetworkRequest.NoLessSafeRedirectPolicy
        )
        request.setRawHeader(b"Accept", b"application/json")
        for name, value in (headers or {}).items():
            request.setRawHeader(name.encode("ascii"), value.encode("utf-8"))
        payload = QByteArray()
        if body is not None:
            request.setHeader(QNetworkRequest.ContentTypeHeader, "application/json")
            payload = QByteArray(json.dumps(body).encode("utf-8"))
        verb = method.upper()
        if verb == "GET":
            reply = self.manager.get(request)
        elif verb == "POST":
            reply = self.manager.post(request, payload)
        elif verb == "PUT":
            reply = self.manager.put(request, payload)
        elif verb == "DELETE":
            reply = self.manager.deleteResource(request)
        else:
            raise ValueError(f"unsupported HTTP method {method!r}")
        pending = _PendingRequest(self, reply, urlsplit(url).netloc, callback, timeout_s, raw)
        self._pending.add(pending)
        return pending

    def _certificates(self, path: str) -> list[QSslCertificate]:
        """The CA certificates of a PEM file, read once per path (none if unreadable)."""
        if path not in self._ca_cache:
            certificates = QSslCertificate.fromPath(path, QSsl.Pem)
            if not certificates:
                log.warning("no CA certificate could be read from %s", path)
            self._ca_cache[path] = list(certificates)
        return self._ca_cache[path]

    def _forget(self, pending: _PendingRequest) -> None:
        self._pending.discard(pending)

    @property
    def pending_count(self) -> int:
        return len(self._pending)


class _PendingRequest:
    """One request in flight: its timeout timer and the callback to call exactly once."""

    def __init__(
        self,
        owner: JsonHttp,
        reply: QNetworkReply,
        host: str,
        callback: ResultCallback,
        timeout_s: float,
        raw: bool = False,
    ) -> None:
        self._owner = owner
        self._raw = raw
        self._reply = reply
        self._host = host
        self._callback: ResultCallback | None = callback
        self._timeout_s = timeout_s
        self._timed_out = False
        self._too_large = False
        self._timer = QTimer(owner)
        self._timer.setSingleShot(True)
        self._timer.timeout.connect(self._on_timeout)
        self._timer.start(int(timeout_s * 1000))
        reply.downloadProgress.connect(self._on_download_progress)
        reply.finished.connect(self._on_finished)

    def abort(self) -> None:
        """Stop the request; its callback is not called."""
        self._callback = None
        if self._reply is not None:
            self._reply.abort()

    def _on_timeout(self) -> None:
        self._timed_out = True
        if self._reply is not None:
            self._reply.abort()  # finished fires, which reports the timeout

    def _on_download_progress(self, received: int, total: int) -> None:
        # `total` is the announced Content-Length (-1 if none): refuse before reading a byte.
        if max(received, total) > self._owner.max_reply_bytes and self._reply is not None:
            self._too_large = True
            self._reply.abort()  # finished fires, which reports it

    def _on_finished(self) -> None:
        reply = self._reply
        self._reply = None
        self._timer.stop()
        self._timer.deleteLater()
        self._owner._forget(self)
        if reply is None:
            return
        try:
            if self._timed_out:
                result = HttpResult(
                    0, error=f"{self._host} did not answer within {self._timeout_s:g} s"
                )
            elif self._too_large:
                limit = byte_size_text(self._owner.max_reply_bytes)
                result = HttpResult(
                    0,
                    error=f"the reply from {self._host} is larger than {limit}, the most the"
                    " plug-in reads: refused",
                    permanent=True,
                )
            else:
                status = reply.attribute(QNetworkRequest.HttpStatusCodeAttribute) or 0
                result = interpret_reply(
                    int(status),
                    bytes(reply.readAll()),
                    int(reply.error()),
                    reply.errorString(),
                    self._host,
                    self._raw,
                )
        except Exception as error:  # a reply Qt itself could not describe
            result = HttpResult(0, error=f"could not read the reply from {self._host}: {error}")
        finally:
            reply.deleteLater()
        callback, self._callback = self._callback, None
        if callback is None:
            return
        try:
            callback(result)
        except Exception:
            # Never let a bug in a handler escape into Qt's event loop (Krita would show a
            # script-error window); the handler's owner sees no reply and times out instead.
            log.exception("error while handling a reply from %s", self._host)
