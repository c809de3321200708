"""A fault-injecting TCP proxy on loopback, for the network fault tests.

`FaultProxy` listens on 127.0.0.1 (or `listen_host`: the bridge address of a test's network
namespaces, tests/helpers/netns.py) and forwards every connection to a target port. A test switches
its mode at any time, from any thread:

- `PASS`: bytes flow both ways untouched;
- `DROP`: every connection (new and ongoing) is reset at once, as if the link went down;
- `STALL`: connections are accepted but nothing is forwarded (the kernel buffers what it can;
  bytes read as the stall began are held too), as if the link hung; switching back to `PASS`
  lets the held bytes through;
- `DROP_REPLIES`: requests reach the target, but a connection is reset as soon as the target
  starts to answer; the sender cannot know whether its request took effect (the case that
  proves an operation is idempotent or done exactly once).

It is bounded: at most `max_connections` live connections (beyond that a new one is reset), a
fixed read size, and one thread per connection that polls the mode often enough to react within
`poll_interval` seconds.
"""

from __future__ import annotations

import contextlib
import enum
import select
import socket
import struct
import threading
from collections.abc import Iterator
from dataclasses import dataclass

READ_SIZE = 64 * 1024


class Mode(enum.Enum):
    PASS = "pass"
    DROP = "drop"
    STALL = "stall"
    DROP_REPLIES = "drop_replies"


@dataclass
class ProxyStats:
    """Counts since the proxy started (a snapshot; the live counters are behind a lock)."""

    accepted: int = 0
    reset: int = 0
    refused_over_limit: int = 0
    bytes_up: int = 0
    bytes_down: int = 0


def _reset(sock: socket.socket) -> None:
    """Close with RST instead of FIN, as a dropped link looks to the peer."""
    with contextlib.suppress(OSError):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    with contextlib.suppress(OSError):
        sock.close()


def _close(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)
    with contextlib.suppress(OSError):
        sock.close()


class FaultProxy:
    """Forwards `listen_host`:`port` to `target_host`:`target_port` with switchable faults."""

    def __init__(
        self,
        target_port: int,
        *,
        target_host: str = "127.0.0.1",
        listen_port: int = 0,
        listen_host: str = "127.0.0.1",
        max_connections: int = 64,
        poll_interval: float = 0.05,
    ) -> None:
        self.target = (target_host, target_port)
        self.max_connections = max_connections
        self.poll_interval = poll_interval
        self._lock = threading.Lock()
        self._mode = Mode.PASS
        self._stats = ProxyStats()
        self._live: set[threading.Thread] = set()
        self._stopping = threading.Event()
        self._listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._listener.bind((listen_host, listen_port))
        self._listener.listen(128)
        self._listener.settimeout(poll_interval)
        self.host: str = listen_host
        self.port: int = self._listener.getsockname()[1]
        self._acceptor = threading.Thread(target=self._accept_loop, name="fault-proxy", daemon=True)

    # -- control, thread-safe -------------------------------------------------------------------

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def mode(self) -> Mode:
        with self._lock:
            return self._mode

    def set_mode(self, mode: Mode) -> None:
        with self._lock:
            self._mode = mode

    def pass_through(self) -> None:
        self.set_mode(Mode.PASS)

    def drop(self) -> None:
        self.set_mode(Mode.DROP)

    def stall(self) -> None:
        self.set_mode(Mode.STALL)

    def drop_replies(self) -> None:
        self.set_mode(Mode.DROP_REPLIES)

    def stats(self) -> ProxyStats:
        with self._lock:
            return ProxyStats(**vars(self._stats))

    def live_connections(self) -> int:
        with self._lock:
            return len(self._live)

    # -- lifecycle ------------------------------------------------------------------------------

    def start(self) -> FaultProxy:
        self._acceptor.start()
        return self

    def stop(self, timeout: float = 5.0) -> None:
        self._stopping.set()
        self._acceptor.join(timeout)
        with self._lock:
            threads = list(self._live)
        for thread in threads:
            thread.join(timeout)
        with contextlib.suppress(OSError):
            self._listener.close()

    def __enter__(self) -> FaultProxy:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- internals ------------------------------------------------------------------------------

    def _count(self, field: str, amount: int = 1) -> None:
        with self._lock:
            setattr(self._stats, field, getattr(self._stats, field) + amount)

    def _accept_loop(self) -> None:
        while not self._stopping.is_set():
            try:
                client, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            with self._lock:
                self._stats.accepted += 1
                over_limit = len(self._live) >= self.max_connections
                dropping = self._mode is Mode.DROP
            if over_limit or dropping:
                self._count("refused_over_limit" if over_limit else "reset")
                _reset(client)
                continue
            thread = threading.Thread(target=self._serve, args=(client,), daemon=True)
            with self._lock:
                self._live.add(thread)
            thread.start()

    def _serve(self, client: socket.socket) -> None:
        upstream: socket.socket | None = None
        faulted = True
        try:
            upstream = self._connect_when_allowed(client)
            if upstream is not None:
                faulted = self._pipe(client, upstream)
        finally:
            # A fault resets (RST) both sides; a peer's orderly close is passed on as a close.
            close = _reset if faulted else _close
            close(client)
            if upstream is not None:
                close(upstream)
            with self._lock:
                self._live.discard(threading.current_thread())

    def _connect_when_allowed(self, client: socket.socket) -> socket.socket | None:
        """Connect upstream once the mode lets bytes flow; None if the connection must die."""
        while not self._stopping.is_set():
            mode = self.mode
            if mode is Mode.DROP:
                self._count("reset")
                return None
            if mode is Mode.STALL:
                self._stopping.wait(self.poll_interval)
                continue
            try:
                return socket.create_connection(self.target, timeout=5)
            except OSError:
                return None
        return None

    def _pipe(self, client: socket.socket, upstream: socket.socket) -> bool:
        """Forward until a peer closes (False) or a fault cuts the link (True)."""
        peers = {client: upstream, upstream: client}
        # Bytes read while the link stalls wait here, in order, until it passes again.
        held: list[tuple[socket.socket, bytes]] = []
        while not self._stopping.is_set():
            mode = self.mode
            if mode is Mode.DROP:
                self._count("reset")
                return True
            if mode is Mode.STALL:
                self._stopping.wait(self.poll_interval)
                continue
            for sock, data in held:
                if not self._forward(data, peers[sock], upward=sock is client):
                    return True
            held.clear()
            readable, _, _ = select.select(list(peers), [], [], self.poll_interval)
            for sock in readable:
                if sock is upstream and self.mode is Mode.DROP_REPLIES:
                    self._count("reset")
                    return True
                try:
                    data = sock.recv(READ_SIZE)
                except OSError:
                    return True
                if not data:
                    return False
                # The mode is read again after the bytes came: what a peer sent after a stall
                # was asked is held, even if this select began before it.
                if self.mode is Mode.STALL or held:
                    held.append((sock, data))
                elif not self._forward(data, peers[sock], upward=sock is client):
                    return True
        return False

    def _forward(self, data: bytes, peer: socket.socket, *, upward: bool) -> bool:
        """Send `data` on to `peer`; False if the link broke."""
        # Counted before forwarding, so a peer that has the bytes sees them counted.
        self._count("bytes_up" if upward else "bytes_down", len(data))
        try:
            peer.sendall(data)
        except OSError:
            return False
        return True


@contextlib.contextmanager
def fault_proxy(target_port: int, **kwargs: object) -> Iterator[FaultProxy]:
    """`with fault_proxy(port) as proxy:` — a started proxy, stopped on exit."""
    proxy = FaultProxy(target_port, **kwargs)  # type: ignore[arg-type]
    with proxy:
        yield proxy
