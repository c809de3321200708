"""The tiny random-weight NSFW safety checker (horde_worker.tiny_checker) with the verdict a
test chooses: FLAG_ALL flags every image, FLAG_NONE none, whatever the pictures."""

from __future__ import annotations

from pathlib import Path

from horde_worker.tiny_checker import FLAG_ALL, FLAG_NONE, build_tiny_checker

__all__ = ["FLAG_ALL", "FLAG_NONE", "write_safety_checker"]


def write_safety_checker(folder: Path, *, threshold: float, nested: bool = True) -> Path:
    return build_tiny_checker(folder, threshold=threshold, nested=nested)
