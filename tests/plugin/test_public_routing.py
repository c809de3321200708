"""Every body the plug-in sends reaches a plain worker of the public AI Horde, unless the artist
asked for what narrows it (NSFW, a CLIP skip): checked against the public horde's own routing
rules (tests/fixtures/public_horde/routing.json, cited from its source)."""

from __future__ import annotations

import base64
from dataclasses import replace

import pytest

from krita_horde.geometry import Extent
from krita_horde.payload import IMG2IMG, INPAINTING, TXT2IMG, JobSources, build_payload
from krita_horde.settings import JobSettings
from tests.fixtures.public_horde import ROUTING_RULES, routing_reasons

SOURCES = JobSources(base64.b64encode(b"source").decode(), base64.b64encode(b"mask").decode())
ARTIST = JobSettings(prompt="a lighthouse", negative="fog", seed="1234", n=3)


@pytest.mark.parametrize("mode", [TXT2IMG, IMG2IMG, INPAINTING])
def test_a_default_job_reaches_every_plain_worker(mode: str) -> None:
    body = build_payload(ARTIST, Extent(512, 512), mode, SOURCES)
    assert routing_reasons(body) == []
    assert body["params"]["seed_variation"] == 1, "n images of one seed must differ"
    assert "loras" not in body["params"] and "post_processing" not in body["params"]


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"nsfw": True}, ROUTING_RULES["top_level"]["nsfw"]["reason"]),
        ({"clip_skip": 2}, ROUTING_RULES["params_above"]["clip_skip"]["reason"]),
    ],
)
def test_only_what_the_artist_asked_for_narrows_the_workers(
    change: dict[str, object], reason: str
) -> None:
    body = build_payload(replace(ARTIST, **change), Extent(512, 512), TXT2IMG, SOURCES)
    assert routing_reasons(body) == [reason]
