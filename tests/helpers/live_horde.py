"""A real `horde-api serve` subprocess for tests that need the server over real HTTP.

with start_horde(tmp_path) as horde:                  # embedded fakeredis + SQLite
    key = horde.create_user("alice")
    requests.get(horde.api + "/status/heartbeat")

with start_horde(tmp_path, redis_url=redis_url, redis_prefix=redis_prefix,
                 database_url=postgres_schema_url) as horde: ...
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

import httpx

from tests.helpers.tls import TlsFiles

STARTUP_TIMEOUT = 30.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class LiveHorde:
    """`host` is where it listens and is reached; `launcher` prefixes its command line (e.g.
    `ip netns exec NS`, to run it on a host of a test's own: tests/helpers/netns.py)."""

    def __init__(
        self,
        tmp_path: Path,
        env: dict[str, str],
        tls: TlsFiles | None = None,
        *,
        host: str = "127.0.0.1",
        launcher: Sequence[str] = (),
    ) -> None:
        self.tmp_path = tmp_path
        self.env = env
        self.tls = tls
        self.host = host
        self.launcher = list(launcher)
        self.port = free_port()
        scheme = "https" if tls else "http"
        self.url = f"{scheme}://{host}:{self.port}"
        self.api = f"{self.url}/api/v2"
        self.log_path = tmp_path / f"horde-api-{self.port}.log"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        log = self.log_path.open("ab")
        serve = ["serve", "--host", self.host, "--port", str(self.port)]
        self.process = subprocess.Popen(
            [*self.launcher, sys.executable, "-m", "horde_api.cli", *serve],
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            # Its own process group: with Redis, `serve` runs one uvicorn process per CPU, and
            # kill() must take them all down, as a crash of the machine would.
            start_new_session=True,
        )
        log.close()
        deadline = time.monotonic() + STARTUP_TIMEOUT
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(
                    f"horde-api exited with {self.process.returncode}:\n{self.log_text()}"
                )
            try:
                heartbeat = httpx.get(f"{self.api}/status/heartbeat", timeout=1, verify=self.verify)
                if heartbeat.status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.05)
        self.kill()
        raise RuntimeError(
            f"horde-api did not answer within {STARTUP_TIMEOUT}s:\n{self.log_text()}"
        )

    @property
    def verify(self) -> str | bool:
        """What an HTTP client must trust to reach this horde (the test CA under TLS)."""
        return str(self.tls.ca_file) if self.tls else True

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def create_user(
        self, name: str, trusted: bool = False, moderator: bool = False, kudos: float = 0
    ) -> str:
        """Create a user through the CLI (same settings as the server); returns the API key.
        `kudos` are given with `horde-api kudos add`, e.g. for requests that need them up front."""
        command = [sys.executable, "-m", "horde_api.cli", "user", "create", name, "--json"]
        if trusted:
            command.append("--trusted")
        if moderator:
            command.append("--moderator")
        result = self._cli(command)
        if kudos:
            self._cli([sys.executable, "-m", "horde_api.cli", "kudos", "add", name, str(kudos)])
        return str(json.loads(result.stdout)["apikey"])

    def _cli(self, command: list[str]) -> subprocess.CompletedProcess[str]:
        return subprocess.run(command, env=self.env, capture_output=True, text=True, check=True)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.kill()

    def kill(self) -> None:
        """SIGKILL the server and every process it started."""
        if self.process is not None and self.process.poll() is None:
            with suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(5)

    def restart(self) -> None:
        """Stop gracefully and start again on the same port and settings."""
        self.stop()
        self.start()


def new_horde(
    tmp_path: Path,
    *,
    redis_url: str | None = None,
    redis_prefix: str | None = None,
    database_url: str | None = None,
    extra_env: dict[str, str] | None = None,
    tls: TlsFiles | None = None,
    host: str = "127.0.0.1",
    launcher: Sequence[str] = (),
) -> LiveHorde:
    """A `LiveHorde` with these settings, not started yet (tests that start several at once)."""
    tmp_path.mkdir(parents=True, exist_ok=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith("HORDE_")}
    env["HORDE_DATA_DIR"] = str(tmp_path / "horde-data")
    env["HORDE_REDIS_URL"] = redis_url or ""
    if redis_prefix:
        env["HORDE_REDIS_PREFIX"] = redis_prefix
    if database_url:
        env["HORDE_DATABASE_URL"] = database_url
    if tls:
        env["HORDE_TLS_CERT_FILE"] = str(tls.cert_file)
        env["HORDE_TLS_KEY_FILE"] = str(tls.key_file)
    env.update(extra_env or {})
    return LiveHorde(tmp_path, env, tls, host=host, launcher=launcher)


@contextmanager
def start_horde(tmp_path: Path, **settings: Any) -> Iterator[LiveHorde]:
    """A started `new_horde(tmp_path, **settings)`, stopped on exit."""
    horde = new_horde(tmp_path, **settings)
    horde.start()
    try:
        yield horde
    finally:
        horde.stop()
