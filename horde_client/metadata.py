"""What an image file carries about its making, and reading it back (`horde info`).

PNG: a `krita-horde` text chunk holding the record as JSON, plus a `parameters` chunk in the
form other Stable Diffusion tools read ("prompt / Negative prompt: … / Steps: …, Seed: …").
WebP: the same JSON inside an XMP packet (WebP has no text chunks; XMP is its metadata place).
"""

from __future__ import annotations

import io
import json
import xml.etree.ElementTree as ElementTree
from datetime import datetime, timezone
from pathlib import Path
from typing import Any
from xml.sax.saxutils import quoteattr

from PIL import Image, PngImagePlugin
from pydantic import BaseModel, ConfigDict, ValidationError

from horde_client.errors import UsageError

PNG_KEY = "krita-horde"
XMP_NAMESPACE = "https://github.com/krita-horde/ns/1.0/"
_XMP_RECORD = f"{{{XMP_NAMESPACE}}}record"


class ImageRecord(BaseModel):
    """The settings an image was made with, as stored in the file."""

    model_config = ConfigDict(extra="allow")

    created: datetime
    prompt: str
    negative: str = ""
    model: str | None = None
    seed: str
    steps: int
    scale: float
    strength: float | None = None
    sampler: str
    width: int
    height: int
    kind: str
    parent: str | None = None
    transform: str | None = None
    color_corrected: bool = False
    horde: str | None = None
    request_id: str | None = None
    generation_id: str | None = None
    worker: str | None = None
    frame: int | None = None
    interpolation: dict[str, Any] | None = None

    def parameters_text(self) -> str:
        """The A1111-style summary other tools show."""
        lines = [self.prompt]
        if self.negative:
            lines.append(f"Negative prompt: {self.negative}")
        fields = [
            f"Steps: {self.steps}",
            f"Sampler: {self.sampler}",
            f"CFG scale: {self.scale:g}",
            f"Seed: {self.seed}",
            f"Size: {self.width}x{self.height}",
        ]
        if self.model:
            fields.append(f"Model: {self.model}")
        if self.strength is not None:
            fields.append(f"Denoising strength: {self.strength:g}")
        lines.append(", ".join(fields))
        return "\n".join(lines)


def now() -> datetime:
    return datetime.now(timezone.utc).astimezone()


def encode_image(image: Image.Image, record: ImageRecord, image_format: str) -> bytes:
    """The file's bytes: `image` in `image_format` (png or webp) with `record` embedded."""
    payload = record.model_dump_json()
    buffer = io.BytesIO()
    if image_format == "png":
        info = PngImagePlugin.PngInfo()
        info.add_itxt(PNG_KEY, payload)
        info.add_itxt("parameters", record.parameters_text())
        image.save(buffer, format="PNG", pnginfo=info)
    else:
        xmp = (
            '<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF'
            ' xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#"><rdf:Description'
            f' xmlns:kh="{XMP_NAMESPACE}" kh:record={quoteattr(payload)}/>'
            "</rdf:RDF></x:xmpmeta>"
        )
        # Lossless: the file is the horde's pixels, and a source for later transforms.
        image.save(buffer, format="WEBP", lossless=True, xmp=xmp.encode("utf-8"))
    return buffer.getvalue()


def raw_record(image: Image.Image) -> str | None:
    """The embedded JSON text, or None when the file has none."""
    text = image.info.get(PNG_KEY)
    if isinstance(text, str):
        return text
    xmp = image.info.get("xmp")
    if not isinstance(xmp, bytes):
        return None
    try:
        root = ElementTree.fromstring(xmp)
    except ElementTree.ParseError:
        return None
    for element in root.iter():
        if _XMP_RECORD in element.attrib:
            return element.attrib[_XMP_RECORD]
    return None


def read_record(path: Path) -> ImageRecord | None:
    """The record embedded in `path`; None when it has none; UsageError when unreadable."""
    try:
        with Image.open(path) as image:
            text = raw_record(image)
    except FileNotFoundError:
        raise UsageError(f"{path}: no such file") from None
    except OSError as error:
        raise UsageError(f"{path}: not an image Pillow can read ({error})") from None
    if text is None:
        return None
    try:
        return ImageRecord.model_validate(json.loads(text))
    except (ValueError, ValidationError) as error:
        raise UsageError(f"{path}: its krita-horde metadata is damaged ({error})") from None
