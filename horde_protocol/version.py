"""The project's version, defined once in the repository's VERSION file.

Installed, it is the distribution's version (setuptools reads VERSION when building); in a
checkout that is not installed, the file itself.
"""

from __future__ import annotations

from importlib import metadata
from pathlib import Path

DISTRIBUTION = "krita-horde"


def _version() -> str:
    try:
        return metadata.version(DISTRIBUTION)
    except metadata.PackageNotFoundError:
        return (Path(__file__).resolve().parents[1] / "VERSION").read_text().strip()


__version__ = _version()
