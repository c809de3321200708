"""The plug-in reads replies shaped like the public horde's (tests/fixtures/public_horde),
including fields it does not know."""

from __future__ import annotations

import base64
import io

from PIL import Image

from krita_horde.replies import parse_check, parse_models, parse_status, parse_submit
from tests.fixtures.public_horde import public_reply


def _webp() -> str:
    out = io.BytesIO()
    Image.new("RGB", (8, 8), (1, 2, 3)).save(out, format="WEBP")
    return base64.b64encode(out.getvalue()).decode()


def test_async_reply_with_the_public_hordes_warning() -> None:
    reply = parse_submit(public_reply("async"))
    assert reply.id == "4f9c3a2e-1d0b-4a55-9d59-0c6f0e7f3b21" and reply.kudos == 21
    assert reply.warnings and "No available workers" in reply.warnings[0]


def test_check_reply_without_our_progress_extension() -> None:
    check = parse_check(public_reply("check"))
    assert (check.finished, check.processing, check.waiting, check.total) == (1, 1, 2, 4)
    assert check.queue_position == 12 and check.wait_time == 37
    assert check.progress is None and not check.has_progress_extension


def test_status_reply_with_inline_images_and_a_censored_one() -> None:
    status = parse_status(public_reply("status_inline", webp_base64=_webp()))
    assert status.check.done and len(status.generations) == 2
    first, second = status.generations
    assert (first.seed, first.state, first.censored) == ("3829382", "ok", False)
    assert second.censored and second.worker_name == "a GPU far away"
    assert Image.open(io.BytesIO(base64.b64decode(first.img))).size == (8, 8)


def test_models_reply_counts_workers() -> None:
    models = parse_models(public_reply("models"))
    assert [(m.name, m.count) for m in models] == [("stable_diffusion", 14), ("Deliberate", 3)]
