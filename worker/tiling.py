"""Seamless tiling: every padded convolution of the UNet and VAE wraps around the image's edges.

With circular padding the network sees the image as a torus, so the left edge continues the
right one and the top the bottom: the result tiles without a seam (the public horde's `tiling`).
The change is made on the shared modules for one job and undone afterwards (worker/model_use.py
makes sure no other job runs meanwhile).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any


def _padded_convolutions(*modules: Any) -> list[Any]:
    from torch import nn

    found = []
    for module in modules:
        if module is None:
            continue
        for layer in module.modules():
            if isinstance(layer, nn.Conv2d) and any(side > 0 for side in layer.padding):
                found.append(layer)
    return found


@contextmanager
def seamless(pipeline: Any, *extra_modules: Any) -> Iterator[int]:
    """Circular padding in the pipeline's UNet and VAE (and `extra_modules`, e.g. a ControlNet)
    for the duration; yields how many convolutions were changed."""
    layers = _padded_convolutions(
        getattr(pipeline, "unet", None), getattr(pipeline, "vae", None), *extra_modules
    )
    saved = [(layer, layer.padding_mode) for layer in layers]
    for layer in layers:
        layer.padding_mode = "circular"
    try:
        yield len(layers)
    finally:
        for layer, mode in saved:
            layer.padding_mode = mode
