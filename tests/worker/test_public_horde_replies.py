"""Our worker reads pop replies shaped like the public horde's (tests/fixtures/public_horde),
including fields it does not know."""

from __future__ import annotations

from horde_protocol import PopReply
from horde_worker.job import Capabilities, Mode, job_from_pop
from tests.fixtures.public_horde import public_reply

CAPS = Capabilities(
    models=("stable_diffusion",), max_pixels=512 * 512, allow_img2img=True, allow_painting=True
)


def test_a_public_pop_without_a_job_is_no_job_not_a_malformed_reply() -> None:
    reply = PopReply.model_validate(public_reply("pop_no_job"))
    assert not reply.has_job
    assert reply.payload is not None and reply.payload.prompt is None
    assert reply.skipped["post-processing"] == 0 and reply.skipped["models"] == 120


def test_a_public_batch_pop_becomes_one_job_of_two_images() -> None:
    reply = PopReply.model_validate(public_reply("pop_batch"))
    assert reply.has_job
    job = job_from_pop(reply, CAPS)
    assert job.ids == [
        "0b6f3c6e-2b8d-4a55-9f3c-1d2a3b4c5d6e",
        "7c1e2d3f-4a5b-4c6d-8e9f-0a1b2c3d4e5f",
    ]
    assert job.seeds == [3829382, 3829383]
    assert (job.prompt, job.negative_prompt) == ("a red fox in the snow", "blurry")
    assert job.mode is Mode.TXT2IMG and (job.width, job.height, job.steps) == (64, 64, 4)
    assert job.karras and job.sampler_name == "k_euler"
    # One presigned upload per image, in the order of the ids.
    assert [url.split("?")[0].rsplit("/", 1)[1] for url in job.r2_uploads if url] == [
        f"{job_id}.webp" for job_id in job.ids
    ]


def test_an_older_public_horde_sending_the_seed_as_a_number_is_read() -> None:
    raw = public_reply("pop_batch")
    raw["payload"]["seed"] = 3829382
    job = job_from_pop(PopReply.model_validate(raw), CAPS)
    assert job.seeds[0] == 3829382
