"""How long the plug-in takes to build a job on a big canvas, and to turn a result into layer
pixels: a 4096x4096 canvas with a 2048x2048 selection (generated at 1024x1024).

Building a job is split like the docker splits it: `read_canvas` (on Krita's GUI thread: the
bytes handed out the way `pixelData` would) and `build_job` (scaling, masks, encoding: in a
background thread inside Krita). Both are reported with their total. Turning a result into
layer pixels runs in the background too; only `setPixelData` stays on the GUI thread. Krita's
own pixel reads and writes (C++) are not measured. Prints the median of repeated runs per case.

Usage: QT_QPA_PLATFORM=offscreen python bench/bench_plugin_job.py [--runs N]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "krita_plugin"))

from _record import record
from PyQt5.QtCore import QByteArray, QPointF
from PyQt5.QtGui import QColor, QGuiApplication, QImage, QLinearGradient, QPainter

from krita_horde.colorspace import PixelFormat
from krita_horde.geometry import Bounds, Extent
from krita_horde.images import image_format, qimage_to_bgra
from krita_horde.inserter import _result_pixels
from krita_horde.job import GeneratedImage
from krita_horde.preparation import build_job, prepare_job, read_canvas
from krita_horde.settings import JobSettings

CANVAS = Extent(4096, 4096)
SELECTION = Bounds(1024, 1024, 2048, 2048)


class PreparedCanvas:
    """A CanvasSource answering like Krita's `pixelData` would: with a QByteArray, here made
    beforehand (Krita's C++ read is not measured)."""

    def __init__(self, pixels: bytes, mask: bytes) -> None:
        self.pixels = QByteArray(pixels)
        self.mask = QByteArray(mask)

    def extent(self) -> Extent:
        return CANVAS

    def selection_bounds(self) -> Bounds:
        return SELECTION

    def selection_mask(self, bounds: Bounds) -> QByteArray:
        return self.mask

    def visible_pixels(self, bounds: Bounds) -> QByteArray:
        return self.pixels

    def mask_layer_pixels(self, bounds: Bounds) -> None:
        return None

    def pixel_format(self) -> PixelFormat:
        return PixelFormat()  # 8-bit RGBA, as the bench's pixels are


def painted_area(extent: Extent) -> bytes:
    image = QImage(extent.width, extent.height, QImage.Format_ARGB32)
    gradient = QLinearGradient(QPointF(0, 0), QPointF(extent.width, extent.height))
    gradient.setColorAt(0, QColor(250, 120, 30))
    gradient.setColorAt(1, QColor(20, 60, 220))
    painter = QPainter(image)
    painter.fillRect(image.rect(), gradient)
    for index in range(0, extent.width, 97):
        painter.setPen(QColor(index % 255, 200, 90))
        painter.drawEllipse(index, index // 2, 300, 180)
    painter.end()
    return qimage_to_bgra(image)


def feathered_mask(extent: Extent) -> bytes:
    """A round selection with a soft edge."""
    cx, cy, radius = extent.width / 2, extent.height / 2, extent.width / 2
    rows = []
    for y in range(extent.height):
        row = bytearray(extent.width)
        dy = (y - cy) / radius
        for x in range(0, extent.width, 8):
            dx = (x - cx) / radius
            value = max(0.0, min(1.0, (1 - (dx * dx + dy * dy)) * 4))
            row[x : x + 8] = bytes([int(value * 255)]) * 8
        rows.append(bytes(row))
    return b"".join(rows)


def median_seconds(action: Callable[[], object], runs: int) -> float:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        action()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args(argv)
    _app = QGuiApplication([])
    pixels = painted_area(SELECTION.extent)
    full = bytes([255]) * (SELECTION.width * SELECTION.height)
    feathered = feathered_mask(SELECTION.extent)
    settings = JobSettings(prompt="a lighthouse at dusk", url="http://127.0.0.1:7420")
    img2img = PreparedCanvas(pixels, full)
    inpaint = PreparedCanvas(pixels, feathered)

    prepared = prepare_job(img2img, settings)
    result = QImage(prepared.area.generation.width, prepared.area.generation.height,
                    QImage.Format_RGB32)  # fmt: skip
    result.fill(QColor(90, 140, 200))
    generated = GeneratedImage(result, "1", "m", "w")
    cases: list[tuple[str, Callable[[], object]]] = []
    for name, canvas in (("img2img", img2img), ("inpainting", inpaint)):
        read = read_canvas(canvas, settings)
        cases += [
            (f"build {name} job: total", lambda c=canvas: prepare_job(c, settings)),
            (f"build {name} job: GUI thread (read)", lambda c=canvas: read_canvas(c, settings)),
            (f"build {name} job: background (build)", lambda r=read: build_job(r)),
        ]
    cases += [
        (
            "result 1024² → 2048² layer pixels (background)",
            lambda: _result_pixels(generated, prepared.area, None, False),
        ),
        (
            "result → layer pixels, mask baked (background)",
            lambda: _result_pixels(generated, prepared.area, feathered, True),
        ),
    ]
    print(
        f"canvas {CANVAS.width}x{CANVAS.height}, selection {SELECTION.width}x{SELECTION.height}"
        f" → generation {prepared.area.generation.width}x{prepared.area.generation.height},"
        f" images as {image_format()}, median of {args.runs} runs; img2img: rectangular"
        " selection, inpainting: feathered selection"
    )
    for label, action in cases:
        milliseconds = median_seconds(action, args.runs) * 1000
        print(f"  {label:50s} {milliseconds:8.1f} ms")
        # The GUI thread's share must stay well under the 50 ms event-loop stall goal.
        target = "< 50 ms" if "GUI thread" in label else ""
        record("plugin job", label, round(milliseconds, 1), "ms", target)
    return 0


if __name__ == "__main__":
    sys.exit(main())
