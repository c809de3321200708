"""The worker's HTTP client against a loopback server that hangs: how the failure is named."""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable, Iterator

import pytest

from horde_protocol import PopRequest
from horde_worker.horde_client import HordeClient, TransientError

HEADERS_ONLY = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n"


@pytest.fixture
def hanging_server() -> Iterator[Callable[[bytes], str]]:
    """`start(reply_start)`: a server that reads one request, sends `reply_start` and then
    nothing more until the test ends; returns its URL."""
    release = threading.Event()
    listeners: list[socket.socket] = []

    def start(reply_start: bytes) -> str:
        listener = socket.create_server(("127.0.0.1", 0))
        listeners.append(listener)

        def serve() -> None:
            connection, _ = listener.accept()
            with connection:
                connection.recv(65536)
                connection.sendall(reply_start)
                release.wait(10)

        threading.Thread(target=serve, daemon=True).start()
        return f"http://127.0.0.1:{listener.getsockname()[1]}"

    yield start
    release.set()
    for listener in listeners:
        listener.close()


@pytest.mark.parametrize(
    "reply_start", [b"", HEADERS_ONLY], ids=["before-the-headers", "in-the-body"]
)
def test_a_reply_that_hangs_is_a_transient_read_timeout_wherever_it_hangs(
    hanging_server: Callable[[bytes], str], reply_start: bytes
) -> None:
    url = hanging_server(reply_start)
    client = HordeClient(url, "k" * 22, read_timeout=0.3)
    with pytest.raises(TransientError) as failure:
        client.pop(PopRequest(name="w", models=["m"]))
    assert str(failure.value) == f"POST {url}/api/v2/generate/pop: ReadTimeout"
