"""Queue descriptors, size classes and seeds (pure functions)."""

from __future__ import annotations

from horde_api.queue.descriptors import (
    LAST_BAND,
    SIZE_CLASS_BOUNDS,
    Kind,
    Priority,
    Tier,
    counted_models,
    descriptor,
    kind_of,
    kudos_band,
    models_part,
    parse_descriptor,
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


def test_descriptor_names_priority_size_kind_nsfw_and_models() -> None:
    registered = Priority.of(Tier.REGISTERED, kudos_cents=12_345)
    text = descriptor(registered, 512 * 512, Kind.IMG2IMG, True, "a", "lp")
    assert text == "1.14|65536|i|1lp|a"
    anonymous = Priority.of(Tier.ANONYMOUS, kudos_cents=0)
    assert descriptor(anonymous, 64 * 64, Kind.TXT2IMG, False, "*") == "2.00|0|t|0|*"
    prefix = "horde:q|"
    parsed = parse_descriptor(prefix + text, prefix)
    assert parsed is not None and parsed.priority == registered and parsed.needs == "lp"
    # Queues named before kudos bands existed: every balance was 0, the last band.
    old = parse_descriptor(prefix + "1|65536|i|1lp|a", prefix)
    assert old is not None and old.priority == Priority(Tier.REGISTERED, LAST_BAND)


def test_kudos_bands_order_requesters_by_half_decades_of_kudos() -> None:
    def band(kudos: float) -> int:
        return kudos_band(round(kudos * 100))

    assert band(0) == LAST_BAND == 19
    assert band(0.99) == 19 and band(1) == 18 and band(3.17) == 17 and band(10) == 16
    assert band(99.99) == 15 and band(100) == 14 and band(1e9) == 0 and band(1e12) == 0
    # More kudos, a band served earlier; within a tier only: tiers come first.
    assert Priority.of(Tier.REGISTERED, 10_000) < Priority.of(Tier.REGISTERED, 100)
    assert Priority.of(Tier.TRUSTED, 0) < Priority.of(Tier.REGISTERED, 10**12)
    assert Priority.of(Tier.REGISTERED, 0) < Priority.of(Tier.ANONYMOUS, 0)
    # A balance below zero waits behind everyone, anonymous requests too.
    assert Priority.of(Tier.ANONYMOUS, 0) < Priority.of(Tier.TRUSTED, -1)
    assert Priority.of(Tier.TRUSTED, -1) == Priority.of(Tier.REGISTERED, -500)


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
