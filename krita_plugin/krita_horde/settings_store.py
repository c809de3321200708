"""The artist's settings in Krita's configuration (kritarc, group `krita_horde`)."""

from __future__ import annotations

from typing import Any

from .settings import SETTINGS_GROUP


class KritaSettingsStore:
    """Settings in Krita's kritarc (group `krita_horde`)."""

    def __init__(self, app: Any) -> None:
        self._app = app

    def read(self, key: str, default: str) -> str:
        value = self._app.readSetting(SETTINGS_GROUP, key, default)
        return value if isinstance(value, str) else default

    def write(self, key: str, value: str) -> None:
        self._app.writeSetting(SETTINGS_GROUP, key, value)
