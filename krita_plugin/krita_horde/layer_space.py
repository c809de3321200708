"""Layers for documents whose colour model Krita converts (CMYK, Lab, XYZ, YCbCr): a new layer
is made 8-bit sRGB before the plug-in writes its 8-bit sRGB pixels, then Krita converts it into
the document's model, depth and profile with its own colour management.

Checked in the real Krita 5.1.5: `Node.setColorSpace` works on a layer that is not in the tree
yet and on one that is; it converts the layer's pixels (and only that layer: the document keeps
its colour space), waits for the image to be done, and is one step of Krita's undo history
("Convert Layer Color Space"). Krita composes layers of different colour spaces, so a preview
layer may simply stay 8-bit sRGB until it is removed.
"""

from __future__ import annotations

from typing import Any

from .colorspace import PixelFormat

SRGB = ("RGBA", "U8", "sRGB-elle-V2-srgbtrc.icc")  # Krita's default 8-bit RGB profile


class LayerSpaceError(RuntimeError):
    """Krita refused to convert a layer."""


def make_srgb(layer: Any) -> None:
    """Make `layer` 8-bit sRGB, so it takes the plug-in's B,G,R,A bytes as they are."""
    _convert(layer, *SRGB)


def into_document_space(layer: Any, fmt: PixelFormat) -> None:
    """Convert an 8-bit sRGB layer into the document's colour space (`fmt`)."""
    _convert(layer, fmt.model, fmt.depth, fmt.profile)


def _convert(layer: Any, model: str, depth: str, profile: str) -> None:
    if not layer.setColorSpace(model, depth, profile):
        raise LayerSpaceError(f"Krita could not convert the layer to {model}/{depth} {profile}")
