"""Build dist/krita_horde-<version>.zip: the archive Krita's Tools › Scripts › Import Python
Plugin from File… accepts (the .desktop file and the package folder at the top level).

Usage: python scripts/build_plugin_zip.py [--out DIR]
"""

from __future__ import annotations

import argparse
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PLUGIN_DIR = ROOT / "krita_plugin"
PACKAGE = "krita_horde"
EXCLUDED_DIRS = {"__pycache__", ".pytest_cache", ".mypy_cache", ".ruff_cache", "tests"}
EXCLUDED_SUFFIXES = {".pyc", ".pyo"}


VERSION_FILE = ROOT / "VERSION"


def plugin_version() -> str:
    """The project's version (the repository's VERSION file, its one definition)."""
    return VERSION_FILE.read_text(encoding="utf-8").strip()


def plugin_files() -> list[Path]:
    """The files that go into the zip, relative to krita_plugin/."""
    files = [Path(f"{PACKAGE}.desktop")]
    for path in sorted((PLUGIN_DIR / PACKAGE).rglob("*")):
        relative = path.relative_to(PLUGIN_DIR)
        if path.is_dir() or EXCLUDED_DIRS & set(relative.parts):
            continue
        if path.suffix in EXCLUDED_SUFFIXES or path.name.startswith("."):
            continue
        files.append(relative)
    return files


def build(out_dir: Path) -> Path:
    out_dir.mkdir(parents=True, exist_ok=True)
    target = out_dir / f"{PACKAGE}-{plugin_version()}.zip"
    with zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as archive:
        for relative in plugin_files():
            # Fixed timestamps: the same sources always give the same zip.
            info = zipfile.ZipInfo(relative.as_posix(), date_time=(2024, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            archive.writestr(info, (PLUGIN_DIR / relative).read_bytes())
        # The plug-in reads its version from this copy once installed in Krita.
        info = zipfile.ZipInfo(f"{PACKAGE}/VERSION", date_time=(2024, 1, 1, 0, 0, 0))
        info.compress_type = zipfile.ZIP_DEFLATED
        info.external_attr = 0o644 << 16
        archive.writestr(info, VERSION_FILE.read_bytes())
    return target


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "dist", help="output folder")
    args = parser.parse_args(argv)
    print(build(args.out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
