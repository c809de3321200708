"""The plug-in's version: the zip name, the Client-Agent header and the docs use it.

Defined once, in the repository's VERSION file: the plug-in zip carries a copy as
`krita_horde/VERSION` (scripts/build_plugin_zip.py); from a checkout it is read in place.
"""

from pathlib import Path

_HERE = Path(__file__).resolve().parent
_FILE = _HERE / "VERSION"
if not _FILE.is_file():  # running from the repository (tests), not from an installed zip
    _FILE = _HERE.parents[1] / "VERSION"
__version__ = _FILE.read_text(encoding="utf-8").strip()
CLIENT_AGENT = f"krita-horde:{__version__}:https://github.com/krita-horde"
