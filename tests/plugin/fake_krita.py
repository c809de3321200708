"""A small fake of the parts of Krita's scripting API the plug-in uses (unit tests only).

It follows Krita 5.1's documented behaviour where it matters: pixelData of an 8-bit RGBA
document is B,G,R,A; reading outside the canvas gives transparent pixels; setPixelData on a
group does nothing; a new transparency mask only exists through the
`add_new_transparency_mask` action on the active node (no `createTransparencyMask`).
Colour conversions (`Document.projection`, `Node.setColorSpace`) know 8-bit RGBA and 8-bit
CMYKA only, with a naive formula (C = 255 - R, …, K = 0) in place of Krita's colour management.
"""

from __future__ import annotations

from typing import Any

from PyQt5.QtGui import QImage

SRGB = "sRGB-elle-V2-srgbtrc.icc"
_CHANNELS = {"RGBA": 4, "GRAYA": 2, "CMYKA": 5}


def _bgra_to_cmyka(data: bytes) -> bytes:
    out = bytearray()
    for i in range(0, len(data), 4):
        b, g, r, a = data[i : i + 4]
        out += bytes((255 - r, 255 - g, 255 - b, 0, a))
    return bytes(out)


def _cmyka_to_bgra(data: bytes) -> bytes:
    out = bytearray()
    for i in range(0, len(data), 5):
        c, m, y, k, a = data[i : i + 5]
        out += bytes((max(0, 255 - y - k), max(0, 255 - m - k), max(0, 255 - c - k), a))
    return bytes(out)


_CONVERT = {("RGBA", "CMYKA"): _bgra_to_cmyka, ("CMYKA", "RGBA"): _cmyka_to_bgra}


class FakeSelection:
    def __init__(self, x: int, y: int, width: int, height: int, mask: bytes | None = None):
        self._x, self._y, self._w, self._h = x, y, width, height
        self._mask = mask if mask is not None else bytes([255]) * (width * height)

    def x(self) -> int:
        return self._x

    def y(self) -> int:
        return self._y

    def width(self) -> int:
        return self._w

    def height(self) -> int:
        return self._h

    def pixelData(self, x: int, y: int, w: int, h: int) -> bytes:
        out = bytearray(w * h)
        for row in range(h):
            for col in range(w):
                sx, sy = x + col - self._x, y + row - self._y
                if 0 <= sx < self._w and 0 <= sy < self._h:
                    out[row * w + col] = self._mask[sy * self._w + sx]
        return bytes(out)


class _Raster:
    """Canvas-sized pixel storage with `channels` bytes per pixel."""

    def __init__(self, width: int, height: int, channels: int) -> None:
        self.width, self.height, self.channels = width, height, channels
        self.data = bytearray(width * height * channels)

    def read(self, x: int, y: int, w: int, h: int) -> bytes:
        c = self.channels
        out = bytearray(w * h * c)
        for row in range(h):
            sy = y + row
            if not 0 <= sy < self.height:
                continue
            x0, x1 = max(x, 0), min(x + w, self.width)
            if x0 >= x1:
                continue
            src = (sy * self.width + x0) * c
            dst = (row * w + (x0 - x)) * c
            out[dst : dst + (x1 - x0) * c] = self.data[src : src + (x1 - x0) * c]
        return bytes(out)

    def write(self, data: bytes, x: int, y: int, w: int, h: int) -> None:
        c = self.channels
        if len(data) != w * h * c:
            return  # Krita ignores a buffer of the wrong size
        for row in range(h):
            sy = y + row
            if not 0 <= sy < self.height:
                continue
            x0, x1 = max(x, 0), min(x + w, self.width)
            if x0 >= x1:
                continue
            dst = (sy * self.width + x0) * c
            src = (row * w + (x0 - x)) * c
            self.data[dst : dst + (x1 - x0) * c] = data[src : src + (x1 - x0) * c]


class FakeNode:
    def __init__(self, doc: FakeDocument, name: str, node_type: str) -> None:
        self.doc = doc
        self._name = name
        self._type = node_type
        self.children: list[FakeNode] = []  # bottom to top, like Krita
        self.parent: FakeNode | None = None
        channels = {"paintlayer": doc.pixel_bytes, "transparencymask": 1}.get(node_type)
        self.raster = _Raster(doc.width(), doc.height(), channels) if channels else None
        self._model, self._profile = doc.colorModel(), doc.colorProfile()
        if node_type == "transparencymask":
            self.raster.data[:] = b"\xff" * len(self.raster.data)

    def name(self) -> str:
        return self._name

    def setName(self, name: str) -> None:
        self._name = name

    def type(self) -> str:
        return self._type

    def parentNode(self) -> FakeNode | None:
        return self.parent

    def childNodes(self) -> list[FakeNode]:
        return list(self.children)

    def addChildNode(self, child: FakeNode, above: FakeNode | None) -> bool:
        index = self.children.index(above) + 1 if above is not None else 0
        self.children.insert(index, child)
        child.parent = self
        # Krita activates a node added to a document's tree (its shape controller asks the
        # node manager to), so the artist's active layer moves to whatever a script adds.
        if self.doc.rootNode() is not None and self._in_tree():
            self.doc.setActiveNode(child)
        return True

    def _in_tree(self) -> bool:
        node: FakeNode | None = self
        while node is not None and node is not self.doc._root:
            node = node.parent
        return node is self.doc._root

    def remove(self) -> bool:
        """Take the node out of its parent, like Krita's Node.remove()."""
        if self.parent is None:
            return False
        self.parent.children.remove(self)
        self.parent = None
        return True

    def pixelData(self, x: int, y: int, w: int, h: int) -> bytes:
        if self.raster is None:
            return bytes(w * h * 4)
        return self.raster.read(x, y, w, h)

    def setPixelData(self, data: bytes, x: int, y: int, w: int, h: int) -> bool:
        if self.raster is None:
            return False  # groups silently ignore pixels
        self.raster.write(data, x, y, w, h)
        return True

    def colorModel(self) -> str:
        return self._model

    def colorProfile(self) -> str:
        return self._profile

    def setColorSpace(self, model: str, depth: str, profile: str) -> bool:
        """Convert the layer's pixels (8-bit RGBA <-> 8-bit CMYKA), one undo step."""
        if self.raster is None or depth != "U8" or profile not in (SRGB, self.doc.colorProfile()):
            return False
        if model != self._model:
            convert = _CONVERT[(self._model, model)]
            old, new = self.raster, _Raster(self.raster.width, self.raster.height, _CHANNELS[model])
            new.data[:] = convert(bytes(old.data))
            self.raster = new
        self._model, self._profile = model, profile
        self.doc.undo_steps.append(("convert layer", self._name, model))
        return True


class FakeDocument:
    def __init__(
        self,
        width: int,
        height: int,
        color_model: str = "RGBA",
        color_depth: str = "U8",
        profile: str = "sRGB-elle-V2-srgbtrc.icc",
    ) -> None:
        self._w, self._h = width, height
        self._model, self._depth, self._profile = color_model, color_depth, profile
        self._selection: FakeSelection | None = None
        channels = _CHANNELS.get(color_model, 4)
        self.pixel_bytes = channels * {"U8": 1, "U16": 2, "F16": 2, "F32": 4}[color_depth]
        self.visible = _Raster(width, height, self.pixel_bytes)  # what the artist sees
        self.open = True
        self._root = FakeNode(self, "root", "grouplayer")
        self._active: FakeNode | None = None
        self.refreshes = 0
        self.undo_steps: list[tuple] = []  # what Krita's undo history would hold

    def width(self) -> int:
        return self._w

    def height(self) -> int:
        return self._h

    def colorModel(self) -> str:
        return self._model

    def colorDepth(self) -> str:
        return self._depth

    def colorProfile(self) -> str:
        return self._profile

    def selection(self) -> FakeSelection | None:
        return self._selection

    def setSelection(self, selection: FakeSelection | None) -> None:
        self._selection = selection

    def paint(self, pixel: tuple[int, ...] | bytes, x: int, y: int, w: int, h: int) -> None:
        """Put visible content on the canvas (what `pixelData` returns): `pixel` is one pixel
        in the document's format (B,G,R,A bytes for 8-bit RGBA)."""
        self.visible.write(bytes(pixel) * (w * h), x, y, w, h)

    def pixelData(self, x: int, y: int, w: int, h: int) -> bytes:
        return self.visible.read(x, y, w, h)

    def projection(self, x: int, y: int, w: int, h: int) -> QImage:
        """The visible pixels as an 8-bit sRGB ARGB32 QImage (outside the canvas:
        transparent), converted like Krita would (here: naively, see the module)."""
        data = self.visible.read(x, y, w, h)
        if self._model != "RGBA":
            data = _CONVERT[(self._model, "RGBA")](data)
        return QImage(data, w, h, w * 4, QImage.Format_ARGB32).copy()

    def rootNode(self) -> FakeNode | None:
        return self._root if self.open else None

    def createNode(self, name: str, node_type: str) -> FakeNode:
        return FakeNode(self, name, node_type)

    def createGroupLayer(self, name: str) -> FakeNode:
        return FakeNode(self, name, "grouplayer")

    def activeNode(self) -> FakeNode | None:
        return self._active

    def setActiveNode(self, node: FakeNode) -> None:
        self._active = node

    def waitForDone(self) -> None:
        pass

    def resizeImage(self, x: int, y: int, w: int, h: int) -> bool:
        """Krita's Image › Resize Canvas: the canvas becomes x,y,w,h of the old one (negative
        x/y extend it left/up); every layer keeps its pixels; one undo step."""

        def moved(raster: _Raster) -> _Raster:
            new = _Raster(w, h, raster.channels)
            new.write(raster.read(x, y, w, h), 0, 0, w, h)
            return new

        self.visible = moved(self.visible)
        for node in self.walk():
            if node.raster is not None:
                node.raster = moved(node.raster)
        self._w, self._h = w, h
        self.undo_steps.append(("resize canvas", x, y, w, h))
        return True

    def refreshProjection(self) -> None:
        self.refreshes += 1

    def walk(self, node: FakeNode | None = None) -> list[FakeNode]:
        node = node or self._root
        found = []
        for child in node.children:
            found.append(child)
            found.extend(self.walk(child))
        return found


class FakeAction:
    def __init__(self, app: FakeApp, name: str) -> None:
        self.app, self.name = app, name
        self.triggered = 0

    def trigger(self) -> None:
        self.triggered += 1
        doc = self.app.activeDocument()
        if self.name == "add_new_transparency_mask" and doc is not None:
            target = doc.activeNode()
            if target is not None and self.app.mask_action_works:
                mask = FakeNode(doc, "Transparency Mask", "transparencymask")
                target.addChildNode(mask, None)
                doc.setActiveNode(mask)


class FakeApp:
    """Stands in for `Krita.instance()`."""

    def __init__(self) -> None:
        self.docs: list[FakeDocument] = []
        self.active: FakeDocument | None = None
        self.settings: dict[tuple[str, str], str] = {}
        self.actions: dict[str, FakeAction] = {}
        self.mask_action_works = True

    def open(self, doc: FakeDocument) -> FakeDocument:
        self.docs.append(doc)
        self.active = doc
        return doc

    def close(self, doc: FakeDocument) -> None:
        doc.open = False
        self.docs.remove(doc)
        if self.active is doc:
            self.active = self.docs[-1] if self.docs else None

    def documents(self) -> list[FakeDocument]:
        return list(self.docs)

    def activeDocument(self) -> FakeDocument | None:
        return self.active

    def readSetting(self, group: str, key: str, default: str) -> str:
        return self.settings.get((group, key), default)

    def writeSetting(self, group: str, key: str, value: str) -> None:
        self.settings[(group, key)] = value

    def action(self, name: str) -> Any:
        return self.actions.setdefault(name, FakeAction(self, name))
