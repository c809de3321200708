"""What the live workers of a model take: the `/workers` reply read, and the largest image a
job of a model, mode and NSFW setting can be sized to."""

from __future__ import annotations

import pytest

from krita_horde.capacity import max_pixels_by_model, model_capacity
from krita_horde.replies import ReplyError, parse_workers

WORKERS = parse_workers(
    [
        {"name": "small", "models": ["a"], "max_pixels": 262144, "img2img": True,
         "painting": False, "nsfw": False, "online": True},
        {"name": "big", "models": ["a", "b"], "max_pixels": 1048576, "img2img": False,
         "painting": True, "nsfw": True},
        {"name": "any", "models": ["*"], "max_pixels": 409600, "img2img": True,
         "painting": True, "nsfw": False},
    ]
)  # fmt: skip


def test_capacity_follows_model_mode_and_nsfw() -> None:
    assert model_capacity(WORKERS, "a", None, False).max_pixels == 1048576
    # img2img: the big worker does not take it; the one that takes any model does.
    assert model_capacity(WORKERS, "a", "img2img", False).max_pixels == 409600
    assert model_capacity(WORKERS, "a", "inpainting", False).workers == 2
    # NSFW requests go only to workers that accept them.
    assert model_capacity(WORKERS, "a", "img2img", True).workers == 0
    assert model_capacity(WORKERS, "c", None, False).workers == 1  # only "*" serves it
    assert model_capacity(None, "a", None, False).max_pixels is None  # not loaded


def test_model_list_limits() -> None:
    assert max_pixels_by_model(WORKERS) == {"a": 1048576, "b": 1048576, "*": 409600}


@pytest.mark.parametrize(
    ("reply", "message"),
    [
        ({"not": "a list"}, "the workers reply is not a JSON list"),
        ([{"models": "a"}], "worker 0: field 'models' should be a list"),
        ([{"max_pixels": "big"}], "field 'max_pixels' has the wrong type"),
    ],
)
def test_broken_workers_replies_are_named(reply, message) -> None:
    with pytest.raises(ReplyError, match=message):
        parse_workers(reply)
