"""The preview layer draws previews coalesced and throttled: while one is drawn, or within the
interval after it, newer previews replace the pending one and only the newest is drawn; the
projection refresh runs in an event-loop turn after the pixel write."""

from __future__ import annotations

from PyQt5.QtCore import QTimer
from PyQt5.QtGui import QColor, QImage

from krita_horde.colorspace import NATIVE
from krita_horde.geometry import Bounds, Extent, SizeLimits, job_area
from krita_horde.preview import PreviewLayer

from .fake_krita import FakeApp, FakeDocument


def _image(red: int) -> QImage:
    image = QImage(64, 64, QImage.Format_RGB32)
    image.fill(QColor(red, 0, 0))
    return image


def _preview(app: FakeApp, interval_ms: int) -> tuple[FakeDocument, PreviewLayer]:
    doc = app.open(FakeDocument(128, 128))
    area = job_area(Extent(128, 128), Bounds(16, 16, 64, 64), SizeLimits(64, 64))
    preview = PreviewLayer(app, doc, area, NATIVE, 1)
    preview.interval_ms = interval_ms
    return doc, preview


def _red_at(preview: PreviewLayer) -> int | None:
    if preview.layer is None:
        return None
    return preview.layer.pixelData(20, 20, 1, 1)[2]


def test_previews_arriving_while_one_is_drawn_are_coalesced_to_the_newest(qtbot, app) -> None:
    doc, preview = _preview(app, interval_ms=300)
    preview.show(_image(10))
    for red in (20, 30, 40):  # arrive while the first is fitted, written and refreshed
        preview.show(_image(red))
    qtbot.waitUntil(lambda: preview.shown == 1, timeout=5_000)
    assert _red_at(preview) == 10
    qtbot.waitUntil(lambda: preview.shown == 2, timeout=5_000)
    assert _red_at(preview) == 40  # the newest; 20 and 30 were never drawn
    qtbot.wait(400)  # longer than the interval: nothing else is pending
    assert preview.shown == 2 and doc.refreshes == 2


def test_a_preview_after_a_quiet_interval_is_drawn_without_waiting_for_another(qtbot, app) -> None:
    _, preview = _preview(app, interval_ms=0)
    preview.show(_image(50))
    qtbot.waitUntil(lambda: preview.shown == 1, timeout=5_000)
    preview.show(_image(60))
    qtbot.waitUntil(lambda: preview.shown == 2, timeout=5_000)
    assert _red_at(preview) == 60


def test_refresh_comes_in_a_turn_after_the_pixel_write(qtbot, app, monkeypatch) -> None:
    doc, preview = _preview(app, interval_ms=0)
    order: list[str] = []
    original_refresh = doc.refreshProjection

    def refresh() -> None:
        order.append("refresh")
        original_refresh()

    monkeypatch.setattr(doc, "refreshProjection", refresh)
    preview.show(_image(70))
    qtbot.waitUntil(lambda: preview.layer is not None, timeout=5_000)
    original_write = preview.layer.setPixelData

    def write(*args):
        order.append("write")
        # Runs at the next event-loop turn: before the refresh only if that waits a turn too.
        QTimer.singleShot(0, lambda: order.append("next turn"))
        return original_write(*args)

    monkeypatch.setattr(preview.layer, "setPixelData", write)
    qtbot.waitUntil(lambda: preview.shown == 1, timeout=5_000)
    assert order == ["write", "next turn", "refresh"]


def test_a_removed_preview_draws_nothing_pending(qtbot, app) -> None:
    doc, preview = _preview(app, interval_ms=200)
    preview.show(_image(10))
    qtbot.waitUntil(lambda: preview.shown == 1, timeout=5_000)
    preview.show(_image(20))  # pending, waiting for the interval
    preview.remove()
    qtbot.wait(300)
    assert preview.shown == 1 and preview.layer is None
    assert doc.rootNode().childNodes() == []
