"""Queue descriptors, size classes and seeds (pure functions)."""

from __future__ import annotations

from horde_api.queue.descriptors import (
    SIZE_CLASS_BOUNDS,
    Kind,
    Tier,
    descriptor,
    kind_of,
    size_class_floor,
    worker_kinds,
)
from horde_protocol import SourceProcessing


def test_size_class_floor_is_the_previous_bound() -> None:
    assert size_class_floor(64 * 64) == 0
    assert size_class_floor(256 * 256) == 0
    assert size_class_floor(256 * 256 + 4096) == 256 * 256
    assert size_class_floor(512 * 512) == 256 * 256
    assert size_class_floor(3072 * 3072) == SIZE_CLASS_BOUNDS[-2]


def test_descriptor_names_tier_size_kind_nsfw_and_models() -> None:
    text = descriptor(Tier.REGISTERED, 512 * 512, Kind.IMG2IMG, True, ["b", "a", "a"])
    assert text == "1|65536|i|1|a,b"
    assert descriptor(Tier.ANONYMOUS, 64 * 64, Kind.TXT2IMG, False, []) == "2|0|t|0|*"


def test_kinds() -> None:
    assert kind_of(False, SourceProcessing.INPAINTING) == Kind.TXT2IMG
    assert kind_of(True, SourceProcessing.IMG2IMG) == Kind.IMG2IMG
    assert kind_of(True, SourceProcessing.OUTPAINTING) == Kind.PAINTING
    assert worker_kinds(False, True) == "tp"
    assert worker_kinds(True, False) == "ti"
