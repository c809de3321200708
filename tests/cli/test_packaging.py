"""The CLI installs without the server or the worker: it imports only the protocol package and
the libraries of the `client` extra."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import tomllib

ROOT = Path(__file__).resolve().parents[2]
# Import names of the client extra's distributions.
IMPORT_NAMES = {
    "httpx": "httpx",
    "Pillow": "PIL",
    "pydantic-settings": "pydantic_settings",
    "typer": "typer",
    "rich": "rich",
    "numpy": "numpy",
    "scikit-image": "skimage",
    "av": "av",
}


def test_the_cli_imports_only_the_protocol_and_its_extra() -> None:
    extra = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    listed = {spec.split(">")[0].split(";")[0].strip() for spec in extra["client"]}
    assert set(IMPORT_NAMES) <= listed
    # krita_horde.geometry: the docker's pure sizing rules, shared with `horde gimp-job`.
    allowed = {"horde_client", "horde_protocol", "pydantic", *IMPORT_NAMES.values()}
    for path in sorted((ROOT / "horde_client").glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            names = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            for name in names:
                if name == "krita_horde.geometry":
                    continue
                top = name.split(".")[0]
                assert top in allowed or top in sys.stdlib_module_names or top == "__future__", (
                    f"{path.name} imports {name}"
                )


def test_the_console_script_is_horde() -> None:
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    assert scripts["horde"] == "horde_client.cli:run"
    assert "generate" not in (ROOT / "horde_api" / "cli.py").read_text()
