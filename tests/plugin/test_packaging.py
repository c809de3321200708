"""What Krita needs from the plug-in: only the standard library and PyQt5, Python 3.10 syntax,
a .desktop file matching the package, and a zip that "Import Python Plugin from File" takes."""

from __future__ import annotations

import ast
import configparser
import sys
import zipfile
from pathlib import Path

import pytest

from scripts.build_plugin_zip import build, plugin_version

ROOT = Path(__file__).resolve().parents[2]
PLUGIN_DIR = ROOT / "krita_plugin"
SOURCES = sorted((PLUGIN_DIR / "krita_horde").rglob("*.py"))
# What Krita's embedded Python offers besides the standard library.
ALLOWED_THIRD_PARTY = {"PyQt5", "krita"}


@pytest.mark.parametrize("path", SOURCES, ids=lambda path: path.name)
def test_imports_only_the_standard_library_pyqt5_and_krita(path: Path) -> None:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            roots = {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0:
            roots = {(node.module or "").split(".")[0]}
        else:
            continue
        foreign = roots - set(sys.stdlib_module_names) - ALLOWED_THIRD_PARTY
        assert not foreign, f"{path.name}:{node.lineno} imports {foreign}: Krita does not ship it"


@pytest.mark.parametrize("path", SOURCES, ids=lambda path: path.name)
def test_sources_parse_as_python_3_10(path: Path) -> None:
    # Krita's Windows and macOS builds embed Python 3.10.
    ast.parse(path.read_text(encoding="utf-8"), feature_version=(3, 10))


def test_desktop_file_names_the_package() -> None:
    parser = configparser.ConfigParser()
    parser.optionxform = str  # keys are case-sensitive
    parser.read(PLUGIN_DIR / "krita_horde.desktop", encoding="utf-8")
    entry = parser["Desktop Entry"]
    assert entry["Type"] == "Service"
    assert entry["ServiceTypes"] == "Krita/PythonPlugin"
    assert entry["X-KDE-Library"] == "krita_horde"
    assert entry["X-Python-2-Compatible"] == "false"
    assert entry["Name"]


def test_zip_holds_the_desktop_file_and_the_package_only(tmp_path: Path) -> None:
    (PLUGIN_DIR / "krita_horde" / "__pycache__").mkdir(exist_ok=True)
    target = build(tmp_path)
    assert target.name == f"krita_horde-{plugin_version()}.zip"
    with zipfile.ZipFile(target) as archive:
        names = archive.namelist()
    assert "krita_horde.desktop" in names
    assert "krita_horde/__init__.py" in names
    assert {f"krita_horde/{path.name}" for path in SOURCES} <= set(names)
    assert not [name for name in names if "__pycache__" in name or name.endswith(".pyc")]
    assert all(name == "krita_horde.desktop" or name.startswith("krita_horde/") for name in names)
    # Same sources, same bytes: the build is reproducible.
    assert build(tmp_path / "again").read_bytes() == target.read_bytes()


def test_the_version_is_defined_once_and_travels_in_the_zip(tmp_path: Path) -> None:
    """One VERSION file: the Python packages, the plug-in and its zip all report it."""
    import horde_api
    import horde_protocol.version
    import horde_worker

    version = (ROOT / "VERSION").read_text().strip()
    assert plugin_version() == version
    assert horde_api.__version__ == horde_worker.__version__ == version
    assert horde_protocol.version.__version__ == version
    with zipfile.ZipFile(build(tmp_path)) as archive:
        archive.extractall(tmp_path / "pykrita")
    installed = tmp_path / "pykrita" / "krita_horde" / "version.py"
    namespace: dict[str, object] = {"__file__": str(installed)}
    exec(compile(installed.read_text(), str(installed), "exec"), namespace)
    assert namespace["__version__"] == version
    # No other file of the project spells it out.
    spelled = [
        path
        for folder in ("horde_api", "horde_protocol", "worker", "krita_plugin", "scripts")
        for path in (ROOT / folder).rglob("*.py")
        if f'"{version}"' in path.read_text(encoding="utf-8")
    ]
    assert spelled == []


def test_package_imports_without_krita() -> None:
    import krita_horde

    assert krita_horde.__version__ == plugin_version()
    assert "krita" not in sys.modules or not hasattr(sys.modules["krita"], "Krita")


def test_one_name_everywhere_docker_plugin_manager_and_readme() -> None:
    """The docker title, the Python Plugin Manager's name (.desktop) and the docs agree on
    "Krita Horde": "AI Horde" is the name of another popular docker."""
    from krita_horde.docker import DOCKER_TITLE

    parser = configparser.ConfigParser()
    parser.optionxform = str
    parser.read(PLUGIN_DIR / "krita_horde.desktop", encoding="utf-8")
    assert DOCKER_TITLE == parser["Desktop Entry"]["Name"] == "Krita Horde"
    for doc in (ROOT / "README.md", ROOT / "docs" / "plugin.md"):
        text = doc.read_text(encoding="utf-8")
        assert "Dockers › Krita Horde" in text, doc.name
        assert "Dockers › AI Horde" not in text and "Dockers › krita-horde" not in text
