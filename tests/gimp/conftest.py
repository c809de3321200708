"""The GIMP layer: the plug-in built by scripts/gimp_plugin.sh, installed in a fresh GIMP home,
run by Debian's real gimp-console in batch mode against a real horde with the tiny worker."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.cli.recording_proxy import RecordingProxy, recording_proxy
from tests.helpers.live_setup import LiveSetup, horde_with_worker

ROOT = Path(__file__).resolve().parents[2]
# Quick on the tiny model; the plug-in's own arguments win over these.
CLI_CONFIG = """\
sampler = "k_euler"
check_wait = 5
check_interval = 0.2
timeout = 120
"""
# Scheme helpers for the batch: every layer's name, offsets and size as one console message.
REPORT_LAYERS = """
(define (report-layers img)
  (for-each
    (lambda (layer)
      (let ((offsets (gimp-drawable-offsets layer)))
        (gimp-message (string-append
          "LAYER|" (car (gimp-item-get-name layer))
          "|" (number->string (car offsets)) "|" (number->string (cadr offsets))
          "|" (number->string (car (gimp-drawable-width layer)))
          "|" (number->string (car (gimp-drawable-height layer)))))))
    (vector->list (cadr (gimp-image-get-layers img)))))
"""


@dataclass
class Layer:
    name: str
    x: int
    y: int
    width: int
    height: int


@dataclass
class GimpRun:
    returncode: int
    stderr: str

    def layers(self) -> list[Layer]:
        found = []
        for line in self.stderr.splitlines():
            if "LAYER|" in line:
                name, *numbers = line.split("LAYER|", 1)[1].split("|")
                found.append(Layer(name, *map(int, numbers)))
        return found


@dataclass
class Gimp:
    binary: str
    home: Path
    env: dict[str, str]

    def batch(self, *commands: str, timeout: float = 240) -> GimpRun:
        """Run Script-Fu commands (console messages on stderr), then quit GIMP. They are one
        batch command: every -b has definitions of its own. A command that fails ends the
        batch unless wrapped in `(catch #f …)`."""
        script = "\n".join(("(begin", REPORT_LAYERS, *commands, ")"))
        command = [self.binary, "-i", "-d", "-f", "-b", "(gimp-message-set-handler 1)"]
        command += ["-b", script, "-b", "(gimp-quit 0)"]
        result = subprocess.run(
            command, cwd=self.home, env=self.env, capture_output=True, text=True, timeout=timeout
        )
        return GimpRun(result.returncode, result.stderr)


@pytest.fixture(scope="session")
def plugin_binary(gimp_console: str, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The plug-in, built exactly as `./run gimp-plugin` builds it, running this venv's horde."""
    out = tmp_path_factory.mktemp("gimp-build")
    horde = Path(sys.executable).parent / "horde"
    result = subprocess.run(
        ["bash", str(ROOT / "scripts" / "gimp_plugin.sh"), "--build", str(out)],
        env={**os.environ, "HORDE_CLI": str(horde)},
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return out / "ai-horde"


@pytest.fixture(scope="session")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveSetup]:
    folder = tmp_path_factory.mktemp("gimp-horde")
    # Kudos: test_gimp_job's long request (500 steps, to be cancelled) is paid up front.
    with horde_with_worker(folder, "painter", "gimp-worker", kudos=100_000) as live:
        yield live


@pytest.fixture
def proxy(live: LiveSetup) -> Iterator[RecordingProxy]:
    with recording_proxy(live.horde.url) as running:
        yield running


def make_gimp(binary: str, plugin: Path, home: Path, apikey: str) -> Gimp:
    """GIMP with a home of its own holding only our plug-in; the key in the environment (a batch
    script on the command line is visible to every local user)."""
    plugins = home / ".config" / "GIMP" / "2.10" / "plug-ins" / "ai-horde"
    plugins.mkdir(parents=True)
    shutil.copy2(plugin, plugins / "ai-horde")
    (home / "cli.toml").write_text(CLI_CONFIG)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HORDE_", "XDG_"))}
    env.update(HOME=str(home), HORDE_APIKEY=apikey, HORDE_CLI_CONFIG=str(home / "cli.toml"))
    return Gimp(binary, home, env)


@pytest.fixture
def gimp(gimp_console: str, plugin_binary: Path, live: LiveSetup, tmp_path: Path) -> Gimp:
    return make_gimp(gimp_console, plugin_binary, tmp_path / "home", live.artist_key)
