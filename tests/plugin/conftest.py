"""Plug-in tests run under PyQt5 offscreen, without Krita (the repo conftest puts
krita_plugin/ on sys.path, so `import krita_horde` works as it does inside Krita)."""

from __future__ import annotations

import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")


from collections.abc import Iterator

import pytest
from PyQt5.QtGui import QColor, QImage

from krita_horde.images import encode_base64

from .fake_krita import FakeApp
from .stub_horde import StubHorde


@pytest.fixture
def stub(qapp) -> Iterator[StubHorde]:
    """The stub horde answering every job with red 64x64 images (two by default)."""
    horde = StubHorde()
    image = QImage(64, 64, QImage.Format_RGB32)
    image.fill(QColor(255, 0, 0))
    horde.state.images = [encode_base64(image, fmt="png")] * 2
    horde.start()
    yield horde
    horde.stop()


@pytest.fixture
def app() -> FakeApp:
    return FakeApp()
