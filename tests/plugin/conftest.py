"""Plug-in tests run under PyQt5 offscreen, without Krita (the repo conftest puts
krita_plugin/ on sys.path, so `import krita_horde` works as it does inside Krita)."""

from __future__ import annotations

import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
