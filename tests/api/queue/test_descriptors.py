"""Queue descriptors, size classes and seeds (pure functions)."""

from __future__ import annotations

from horde_api.queue.descriptors import (
    SIZE_CLASS_BOUNDS,
    Kind,
    Tier,
    counted_models,
    descriptor,
    kind_of,
    models_part,
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
    text = descriptor(Tier.REGISTERED, 512 * 512, Kind.IMG2IMG, True, "a", "lp")
    assert text == "1|65536|i|1lp|a"
    assert descriptor(Tier.ANONYMOUS, 64 * 64, Kind.TXT2IMG, False, "*") == "2|0|t|0|*"


def test_only_models_workers_announced_get_queues_of_their_own() -> None:
    known = {"a", "b"}
    assert models_part([], known) == "*"
    assert models_part(["a", "a"], known) == "a"
    # Several models, or one no worker announced: the one shared queue, matched image by image.
    assert models_part(["a", "b"], known) == "+"
    assert models_part(["invented-by-a-client"], known) == "+"
    assert counted_models(["b", "a", "x", "a"]) == "a,b,x" and counted_models([]) == "*"


def test_kinds() -> None:
    assert kind_of(False, SourceProcessing.INPAINTING) == Kind.TXT2IMG
    assert kind_of(True, SourceProcessing.IMG2IMG) == Kind.IMG2IMG
    assert kind_of(True, SourceProcessing.OUTPAINTING) == Kind.PAINTING
    assert worker_kinds(False, True) == "tp"
    assert worker_kinds(True, False) == "ti"
