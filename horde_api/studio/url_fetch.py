"""Fetching a source image from a URL for the advanced page, safely.

Only http(s), only to public addresses (every address the name resolves to must be public, and
the connection goes to the checked address, so a second DNS answer cannot point it elsewhere),
at most a few redirects (each checked the same way), a size limit and one time limit for the
whole fetch, and the body must be a PNG, JPEG or WebP image of allowed dimensions.
"""

from __future__ import annotations

import io
import ipaddress
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from urllib.parse import urljoin, urlsplit

import urllib3
from PIL import Image, UnidentifiedImageError

IpAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
Resolver = Callable[[str, int], list[str]]

MAX_REDIRECTS = 3
MAX_URL_LENGTH = 2048
MEDIA_TYPES = {"PNG": "image/png", "JPEG": "image/jpeg", "WEBP": "image/webp"}
_REDIRECTS = {301, 302, 303, 307, 308}


class SourceFetchError(Exception):
    """The URL cannot be used; the message says why and what is allowed."""


def is_public(address: IpAddress) -> bool:
    return address.is_global and not address.is_multicast


def resolve(host: str, port: int) -> list[str]:
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        raise SourceFetchError(f"cannot resolve the host {host!r}: {exc}") from None
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


@dataclass
class FetchedImage:
    data: bytes
    media_type: str
    width: int
    height: int


@dataclass
class SourceFetcher:
    timeout_seconds: float
    max_bytes: int
    max_pixels: int
    allow: Callable[[IpAddress], bool] = is_public
    resolver: Resolver = field(default=resolve)

    def fetch(self, url: str) -> FetchedImage:
        deadline = time.monotonic() + self.timeout_seconds
        for _ in range(MAX_REDIRECTS + 1):
            status, location, data = self._get(url, deadline)
            if status in _REDIRECTS:
                if not location:
                    raise SourceFetchError(f"the server answered {status} without a Location")
                url = urljoin(url, location)
                continue
            if status != 200:
                raise SourceFetchError(f"the server answered HTTP {status}, not an image")
            return self._image(data)
        raise SourceFetchError(f"more than {MAX_REDIRECTS} redirects")

    def _target(self, url: str) -> tuple[str, str, int, str]:
        """(scheme, host, port, path) of an allowed URL, or a clear refusal."""
        if len(url) > MAX_URL_LENGTH:
            raise SourceFetchError(f"the URL is longer than {MAX_URL_LENGTH} characters")
        try:
            parts = urlsplit(url.strip())
            port = parts.port
        except ValueError as exc:
            raise SourceFetchError(f"not a valid URL: {exc}") from None
        scheme = parts.scheme.lower()
        if scheme not in ("http", "https"):
            raise SourceFetchError("only http:// and https:// URLs can be fetched")
        if not parts.hostname:
            raise SourceFetchError("the URL has no host")
        if parts.username or parts.password:
            raise SourceFetchError("URLs with a user name or password are not fetched")
        port = port or (443 if scheme == "https" else 80)
        path = parts.path or "/"
        if parts.query:
            path += "?" + parts.query
        return scheme, parts.hostname, port, path

    def _address(self, host: str, port: int) -> str:
        try:
            literal = ipaddress.ip_address(host)
            addresses = [str(literal)]
        except ValueError:
            addresses = self.resolver(host, port)
        if not addresses:
            raise SourceFetchError(f"the host {host!r} has no address")
        for text in addresses:
            if not self.allow(ipaddress.ip_address(text.split("%", 1)[0])):
                raise SourceFetchError(
                    f"{host!r} points to {text}, which is not a public address: only images on"
                    " public internet addresses can be fetched"
                )
        return addresses[0]

    def _get(self, url: str, deadline: float) -> tuple[int, str | None, bytes]:
        scheme, host, port, path = self._target(url)
        address = self._address(host, port)
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise SourceFetchError(f"the fetch took longer than {self.timeout_seconds:g} s")
        timeout = urllib3.Timeout(connect=remaining, read=remaining)
        pool: urllib3.HTTPConnectionPool
        if scheme == "https":
            pool = urllib3.HTTPSConnectionPool(
                address, port, timeout=timeout, retries=False,
                server_hostname=host, assert_hostname=host, cert_reqs="CERT_REQUIRED",
            )  # fmt: skip
        else:
            pool = urllib3.HTTPConnectionPool(address, port, timeout=timeout, retries=False)
        default_port = 443 if scheme == "https" else 80
        name = f"[{host}]" if ":" in host else host
        host_header = name if port == default_port else f"{name}:{port}"
        try:
            with pool:
                reply = pool.urlopen(
                    "GET",
                    path,
                    headers={"Host": host_header, "Accept": "image/*", "User-Agent": "krita-horde"},
                    redirect=False,
                    preload_content=False,
                )
                try:
                    if reply.status != 200:
                        return reply.status, reply.headers.get("Location"), b""
                    return reply.status, None, self._read(reply, deadline)
                finally:
                    reply.release_conn()
        except urllib3.exceptions.HTTPError as exc:
            raise SourceFetchError(f"the fetch failed: {type(exc).__name__}") from None

    def _read(self, reply: urllib3.BaseHTTPResponse, deadline: float) -> bytes:
        declared = reply.headers.get("Content-Length")
        if declared and declared.isdigit() and int(declared) > self.max_bytes:
            raise SourceFetchError(self._too_large())
        chunks: list[bytes] = []
        size = 0
        for chunk in reply.stream(64 * 1024):
            size += len(chunk)
            if size > self.max_bytes:
                raise SourceFetchError(self._too_large())
            if time.monotonic() > deadline:
                raise SourceFetchError(f"the fetch took longer than {self.timeout_seconds:g} s")
            chunks.append(chunk)
        return b"".join(chunks)

    def _too_large(self) -> str:
        return f"the image is larger than {self.max_bytes} bytes, the limit of a URL source"

    def _image(self, data: bytes) -> FetchedImage:
        try:
            with Image.open(io.BytesIO(data)) as image:
                kind = image.format or ""
                width, height = image.size
        except (UnidentifiedImageError, OSError, Image.DecompressionBombError):
            raise SourceFetchError("the URL does not give a PNG, JPEG or WebP image") from None
        if kind not in MEDIA_TYPES:
            raise SourceFetchError(f"the URL gives a {kind} image; PNG, JPEG or WebP are allowed")
        if width * height > self.max_pixels:
            raise SourceFetchError(
                f"the image is {width}x{height}; at most {self.max_pixels} pixels are allowed"
            )
        return FetchedImage(data, MEDIA_TYPES[kind], width, height)
