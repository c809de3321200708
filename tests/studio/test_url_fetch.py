"""The advanced page's URL source, fetched by the horde: only http(s) to public addresses, with
size and time limits. The real fetcher runs against a local HTTP server of the test; since that
server is on loopback (not public), the tests that must reach it allow 127.0.0.1 by name."""

from __future__ import annotations

import ipaddress
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from horde_api.studio.url_fetch import SourceFetcher, SourceFetchError, is_public
from tests.api.conftest import image_b64
from tests.studio.conftest import StudioHorde

PNG = __import__("base64").b64decode(image_b64(32, 16))
STALL = threading.Event()


class Handler(BaseHTTPRequestHandler):
    def log_message(self, *args: object) -> None:
        pass

    def do_GET(self) -> None:
        routes = {
            "/image.png": (200, {"Content-Type": "image/png"}, PNG),
            "/text": (200, {"Content-Type": "text/plain"}, b"hello"),
            "/missing": (404, {}, b"no"),
            "/to-image": (302, {"Location": "/image.png"}, b""),
            "/to-private": (302, {"Location": f"http://127.0.0.2:{self.server.server_port}/"}, b""),
            "/loop": (302, {"Location": "/loop"}, b""),
            "/big": (200, {"Content-Length": str(10_000)}, b"x" * 10_000),
        }
        if self.path == "/unsized-big":
            self.send_response(200)
            self.end_headers()  # no Content-Length: read until the limit trips
            self.wfile.write(b"x" * 10_000)
            return
        if self.path == "/stall":
            self.send_response(200)
            self.send_header("Content-Length", "100")
            self.end_headers()
            STALL.wait(10)
            return
        status, headers, body = routes.get(self.path, (404, {}, b""))
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        if "Content-Length" not in headers:
            self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    httpd.daemon_threads = True
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_port}"
    STALL.set()
    httpd.shutdown()


def _only_first_loopback(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    return str(address) == "127.0.0.1"


def fetcher(**overrides: object) -> SourceFetcher:
    options: dict[str, object] = {
        "timeout_seconds": 5,
        "max_bytes": 5000,
        "max_pixels": 1024 * 1024,
        "allow": _only_first_loopback,
    }
    options.update(overrides)
    return SourceFetcher(**options)  # type: ignore[arg-type]


def test_a_public_image_is_fetched_and_checked(server: str) -> None:
    fetched = fetcher().fetch(f"{server}/image.png")
    assert (fetched.media_type, fetched.width, fetched.height) == ("image/png", 32, 16)
    assert fetched.data == PNG
    assert fetcher().fetch(f"{server}/to-image").data == PNG


@pytest.mark.parametrize(
    ("path", "reason"),
    [
        ("/text", "does not give a PNG, JPEG or WebP image"),
        ("/missing", "answered HTTP 404"),
        ("/to-private", "127.0.0.2, which is not a public address"),
        ("/loop", "more than 3 redirects"),
        ("/big", "larger than 5000 bytes"),
        ("/unsized-big", "larger than 5000 bytes"),
    ],
)
def test_refusals_say_why(server: str, path: str, reason: str) -> None:
    with pytest.raises(SourceFetchError, match=reason):
        fetcher().fetch(server + path)


def test_a_slow_server_runs_into_the_time_limit(server: str) -> None:
    with pytest.raises(SourceFetchError, match=r"ReadTimeoutError|longer than"):
        fetcher(timeout_seconds=0.5).fetch(f"{server}/stall")


def test_too_many_pixels_are_refused(server: str) -> None:
    with pytest.raises(SourceFetchError, match="32x16; at most 100 pixels"):
        fetcher(max_pixels=100).fetch(f"{server}/image.png")


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("file:///etc/passwd", "only http:// and https://"),
        ("ftp://example.org/a.png", "only http:// and https://"),
        ("http://user:secret@example.org/a.png", "user name or password"),
        ("http:///a.png", "no host"),
        ("http://127.0.0.1/a.png", "not a public address"),
        ("http://localhost/a.png", "not a public address"),
        ("http://10.1.2.3/a.png", "not a public address"),
        ("http://192.168.0.1/a.png", "not a public address"),
        ("http://169.254.169.254/latest/meta-data", "not a public address"),
        ("http://[::1]/a.png", "not a public address"),
        ("http://[fd00::1]/a.png", "not a public address"),
        ("http://0.0.0.0/a.png", "not a public address"),
        ("http://example.org:99999/", "not a valid URL"),
    ],
)
def test_only_public_http_addresses_are_fetched(url: str, reason: str) -> None:
    # The default rule (public addresses only); none of these is ever connected to.
    with pytest.raises(SourceFetchError, match=reason):
        fetcher(allow=is_public).fetch(url)


def test_every_address_of_a_name_must_be_public() -> None:
    mixed = fetcher(allow=is_public, resolver=lambda host, port: ["93.184.215.14", "10.0.0.1"])
    with pytest.raises(SourceFetchError, match=r"10\.0\.0\.1, which is not a public address"):
        mixed.fetch("http://two-faced.example/a.png")


def test_the_endpoint_is_for_registered_users_and_refuses_loopback(
    studio: StudioHorde, server: str
) -> None:
    url = f"{server}/image.png"
    keyless = studio.client.post("/api/v2/library/fetch-source", json={"url": url})
    assert keyless.status_code == 401
    anonymous = studio.library("anon:someone", "POST", "/fetch-source", json={"url": url})
    assert anonymous.status_code == 403 and anonymous.json()["rc"] == "AnonForbidden"
    reply = studio.library("alice", "POST", "/fetch-source", json={"url": url})
    assert reply.status_code == 400 and "not a public address" in reply.json()["message"]
    # With loopback allowed (as a public server would be), the image comes back as it is.
    studio.client.app.state.studio.fetcher.allow = _only_first_loopback
    reply = studio.library("alice", "POST", "/fetch-source", json={"url": url})
    assert reply.status_code == 200 and reply.headers["content-type"] == "image/png"
    assert reply.content == PNG
