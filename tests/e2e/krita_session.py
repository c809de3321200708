"""Runs the real Krita under Xvfb with the plug-in (from its zip) and the test driver installed.

Each run gets a fresh HOME, so Krita starts as on a new machine: the plug-ins are copied into
`~/.local/share/krita/pykrita/` and enabled in kritarc, and the driver plays the scenario given to
it. Everything a failure needs (report, Krita's output, screenshot, pixel snapshots) stays in the
run's folder.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

DRIVER_DIR = Path(__file__).resolve().parent / "driver"
DRIVER_NAME = "krita_horde_e2e_driver"
PLUGIN_NAME = "krita_horde"


@dataclass
class KritaRun:
    returncode: int
    report: dict[str, Any]
    folder: Path
    output_path: Path
    crash: str | None

    def explain(self) -> str:
        """Where to look when the run went wrong."""
        tail = self.output_path.read_text(errors="replace").splitlines()[-40:]
        return (
            f"Krita exit code {self.returncode}; artifacts in {self.folder}\n"
            f"report: {json.dumps(self.report, indent=1)[:4000]}\n"
            f"crash: {self.crash}\n"
            "Krita output (last lines):\n" + "\n".join(tail)
        )


def install_plugins(home: Path, plugin_zip: Path) -> None:
    pykrita = home / ".local/share/krita/pykrita"
    pykrita.mkdir(parents=True)
    with zipfile.ZipFile(plugin_zip) as archive:
        archive.extractall(pykrita)
    shutil.copy(DRIVER_DIR / f"{DRIVER_NAME}.desktop", pykrita)
    shutil.copytree(DRIVER_DIR / DRIVER_NAME, pykrita / DRIVER_NAME)
    config = home / ".config"
    config.mkdir(parents=True)
    (config / "kritarc").write_text(
        f"[python]\nenable_{PLUGIN_NAME}=true\nenable_{DRIVER_NAME}=true\n", encoding="utf-8"
    )


def run_krita(
    plugin_zip: Path, folder: Path, scenario: dict[str, Any], timeout_s: int = 600
) -> KritaRun:
    """Play `scenario` in a fresh Krita; returns its exit code and the driver's report."""
    home = folder / "home"
    artifacts = folder / "artifacts"
    artifacts.mkdir(parents=True, exist_ok=True)
    install_plugins(home, plugin_zip)
    xdg = home / "xdg"
    xdg.mkdir(mode=0o700)
    report_path = folder / "report.json"
    config_path = folder / "scenario.json"
    config_path.write_text(
        json.dumps({**scenario, "report": str(report_path), "artifacts": str(artifacts)}),
        encoding="utf-8",
    )
    crash_path = folder / "crash.txt"
    env = {
        key: value
        for key, value in os.environ.items()
        # Krita embeds its own Python: the test venv's variables must not leak into it.
        if key not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV", "QT_QPA_PLATFORM")
    }
    env.update(
        HOME=str(home),
        XDG_RUNTIME_DIR=str(xdg),
        KRITA_HORDE_E2E_CONFIG=str(config_path),
        KRITA_HORDE_E2E_CRASH=str(crash_path),
    )
    output_path = folder / "krita-output.log"
    command = [
        "timeout", "-k", "10", str(timeout_s),
        "xvfb-run", "-a", "-s", "-screen 0 1600x1000x24",
        "krita", "--nosplash",
    ]  # fmt: skip
    with output_path.open("wb") as output:
        completed = subprocess.run(
            command, env=env, stdout=output, stderr=subprocess.STDOUT, cwd=folder, check=False
        )
    report = json.loads(report_path.read_text()) if report_path.exists() else {}
    crash = crash_path.read_text() if crash_path.exists() else None
    return KritaRun(completed.returncode, report, folder, output_path, crash)
