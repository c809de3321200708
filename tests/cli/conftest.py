"""The CLI's live layer: one real horde with one tiny-model worker for the whole session, and
the `horde` command run as a subprocess against it (through a recording proxy where a test
asserts what reached the horde)."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.cli.recording_proxy import RecordingProxy, recording_proxy
from tests.helpers.live_setup import LiveSetup, horde_with_worker

# Tiny and quick: the tiny model's 64 px images take a fraction of a second each.
CONFIG = """\
model = "krita-horde-tiny"
size = 64
steps = 4
sampler = "k_euler"
batch = 2
check_wait = 10
check_interval = 0.2
timeout = 300
"""


@pytest.fixture(scope="session")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveSetup]:
    with horde_with_worker(tmp_path_factory.mktemp("cli-horde"), "artist", "cli-worker") as live:
        yield live


@pytest.fixture
def proxy(live: LiveSetup) -> Iterator[RecordingProxy]:
    with recording_proxy(live.horde.url) as running:
        yield running


@dataclass
class Cli:
    """`horde` in a folder of its own, configured for the tiny model, key in the environment."""

    cwd: Path
    env: dict[str, str]

    def popen(self, *args: str) -> subprocess.Popen[str]:
        return subprocess.Popen(
            [sys.executable, "-m", "horde_client.cli", *args],
            cwd=self.cwd, env=self.env, text=True,
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        )  # fmt: skip

    def run(self, *args: str, input: str = "", timeout: float = 300) -> subprocess.CompletedProcess:
        process = self.popen(*args)
        stdout, stderr = process.communicate(input, timeout=timeout)
        return subprocess.CompletedProcess(process.args, process.returncode, stdout, stderr)

    def ok(self, *args: str, input: str = "") -> list[Path]:
        """Run, expect success, return the saved files (stdout lines)."""
        result = self.run(*args, input=input)
        assert result.returncode == 0, result.stderr[-3000:]
        return [self.cwd / line for line in result.stdout.split()]


def make_cli(tmp_path: Path, url: str, key: str, config: str = CONFIG) -> Cli:
    (tmp_path / "cli.toml").write_text(config)
    env = {k: v for k, v in os.environ.items() if not k.startswith("HORDE_")}
    env.update(
        HORDE_CLI_CONFIG=str(tmp_path / "cli.toml"),
        HORDE_CLI_URL=url,
        HORDE_APIKEY=key,
        PYTHONUNBUFFERED="1",
    )
    return Cli(tmp_path, env)


@pytest.fixture
def cli(tmp_path: Path, live: LiveSetup, proxy: RecordingProxy) -> Cli:
    return make_cli(tmp_path, proxy.url, live.artist_key)
