"""The plug-in's version: the zip name, the Client-Agent header and the docs use it.

Defined once, in the repository's VERSION file: the plug-in zip carries a copy as
`krita_horde/VERSION` (scripts/build_plugin_zip.py); from a checkout it is read in place.
"""

from pathlib import Path

_HERE = Path(__file__).resolve().parent


def _version() -> str:
    for candidate in (_HERE / "VERSION", _HERE.parents[1] / "VERSION"):  # zip, then checkout
        if candidate.is_file():
            return candidate.read_text(encoding="utf-8").strip()
    # Installed with the Python packages (pip), where other clients import its geometry.
    from importlib import metadata

    return metadata.version("krita-horde")


__version__ = _version()
CLIENT_AGENT = f"krita-horde:{__version__}:https://github.com/krita-horde"
