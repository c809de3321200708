"""Unit tests of the fault-injecting proxy, against a real TCP echo server on loopback."""

from __future__ import annotations

import socket
import socketserver
import threading
import time
from collections.abc import Iterator

import pytest

from tests.faults.proxy import FaultProxy, Mode, fault_proxy


class _EchoHandler(socketserver.BaseRequestHandler):
    def handle(self) -> None:
        while True:
            try:
                data = self.request.recv(65536)
            except OSError:
                return
            if not data:
                return
            self.server.received.append(data)  # type: ignore[attr-defined]
            self.request.sendall(data)


class _EchoServer(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _EchoHandler)
        self.received: list[bytes] = []


@pytest.fixture
def echo() -> Iterator[_EchoServer]:
    server = _EchoServer()
    thread = threading.Thread(target=server.serve_forever, args=(0.02,), daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def _connect(proxy: FaultProxy) -> socket.socket:
    return socket.create_connection(("127.0.0.1", proxy.port), timeout=5)


def _connect_is_cut(proxy: FaultProxy) -> bool:
    """True when a new connection is reset: at connect (the RST can beat the client's own
    handshake bookkeeping) or at the first read."""
    try:
        sock = _connect(proxy)
    except ConnectionResetError:
        return True
    with sock:
        return _is_cut(sock)


def _recv_exactly(sock: socket.socket, size: int) -> bytes:
    data = b""
    while len(data) < size:
        chunk = sock.recv(size - len(data))
        if not chunk:
            break
        data += chunk
    return data


def _wait_until(predicate, timeout: float = 5.0) -> bool:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.01)
    return predicate()


def _is_cut(sock: socket.socket) -> bool:
    """True when the peer reset or closed the connection (a recv sees it at once)."""
    try:
        return sock.recv(1) == b""
    except (ConnectionResetError, BrokenPipeError):
        return True


def test_pass_through_forwards_both_ways(echo: _EchoServer) -> None:
    with fault_proxy(echo.server_address[1]) as proxy, _connect(proxy) as sock:
        payload = b"x" * 200_000
        sock.sendall(payload)
        assert _recv_exactly(sock, len(payload)) == payload
        stats = proxy.stats()
        assert stats.accepted == 1
        assert stats.bytes_up == len(payload)
        assert stats.bytes_down == len(payload)


def test_drop_resets_ongoing_and_new_connections(echo: _EchoServer) -> None:
    with fault_proxy(echo.server_address[1]) as proxy:
        ongoing = _connect(proxy)
        ongoing.sendall(b"hello")
        assert _recv_exactly(ongoing, 5) == b"hello"
        proxy.drop()
        assert _is_cut(ongoing)
        assert _connect_is_cut(proxy)
        proxy.pass_through()
        with _connect(proxy) as after:
            after.sendall(b"again")
            assert _recv_exactly(after, 5) == b"again"
        assert proxy.stats().reset >= 2


def test_stall_holds_bytes_until_pass(echo: _EchoServer) -> None:
    # A long poll interval: the proxy is still waiting in the select it began before the stall
    # when "two" arrives, and must hold it all the same. (The pause lets it enter that select;
    # were it slower, it would see the stall first: the test holds either way.)
    with fault_proxy(echo.server_address[1], poll_interval=1.0) as proxy, _connect(proxy) as sock:
        sock.sendall(b"one")
        assert _recv_exactly(sock, 3) == b"one"
        time.sleep(0.2)
        proxy.stall()
        sock.sendall(b"two")
        sock.settimeout(0.3)
        with pytest.raises(TimeoutError):
            sock.recv(3)
        assert echo.received == [b"one"]
        proxy.pass_through()
        sock.settimeout(5)
        assert _recv_exactly(sock, 3) == b"two"


def test_stalled_new_connection_connects_upstream_only_after_pass(echo: _EchoServer) -> None:
    with fault_proxy(echo.server_address[1]) as proxy:
        proxy.stall()
        with _connect(proxy) as sock:
            sock.sendall(b"late")
            sock.settimeout(0.3)
            with pytest.raises(TimeoutError):
                sock.recv(4)
            assert echo.received == []
            proxy.pass_through()
            sock.settimeout(5)
            assert _recv_exactly(sock, 4) == b"late"


def test_drop_replies_delivers_request_but_cuts_the_answer(echo: _EchoServer) -> None:
    with fault_proxy(echo.server_address[1]) as proxy:
        proxy.drop_replies()
        with _connect(proxy) as sock:
            sock.sendall(b"did it arrive?")
            assert _is_cut(sock)
        assert _wait_until(lambda: b"".join(echo.received) == b"did it arrive?")
        assert proxy.stats().bytes_down == 0


def test_connections_beyond_the_bound_are_refused(echo: _EchoServer) -> None:
    with fault_proxy(echo.server_address[1], max_connections=2) as proxy:
        first, second = _connect(proxy), _connect(proxy)
        for sock in (first, second):
            sock.sendall(b"ok")
            assert _recv_exactly(sock, 2) == b"ok"
        assert _connect_is_cut(proxy)
        assert proxy.stats().refused_over_limit == 1
        first.close()
        assert _wait_until(lambda: proxy.live_connections() == 1)
        with _connect(proxy) as fourth:
            fourth.sendall(b"ok")
            assert _recv_exactly(fourth, 2) == b"ok"
        second.close()


def test_mode_can_be_switched_from_many_threads(echo: _EchoServer) -> None:
    with fault_proxy(echo.server_address[1]) as proxy:
        modes = list(Mode)
        threads = [
            threading.Thread(target=lambda m=m: [proxy.set_mode(m) for _ in range(200)])
            for m in modes
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert proxy.mode in modes
        proxy.pass_through()
        with _connect(proxy) as sock:
            sock.sendall(b"fine")
            assert _recv_exactly(sock, 4) == b"fine"


def test_stop_ends_every_connection_thread(echo: _EchoServer) -> None:
    proxy = FaultProxy(echo.server_address[1]).start()
    socks = [_connect(proxy) for _ in range(3)]
    for sock in socks:
        sock.sendall(b"hi")
        assert _recv_exactly(sock, 2) == b"hi"
    proxy.stop()
    assert proxy.live_connections() == 0
    for sock in socks:
        sock.close()
