"""Jobs are checked before any heavy work; each refusal says what was wrong."""

from __future__ import annotations

import base64
from typing import Any

import pytest

from horde_protocol import PopPayload, PopReply
from horde_worker.job import Capabilities, JobRejected, Mode, job_from_pop
from tests.worker.images_util import encode, striped


def pop(**extra: Any) -> PopReply:
    payload: dict[str, Any] = {
        "prompt": "castle ### fog, people",
        "ddim_steps": 10,
        "seed": "5",
        "sampler_name": "k_euler_a",
        "cfg_scale": 6.5,
        "width": 128,
        "height": 64,
    }
    payload.update(extra.pop("payload", {}))
    extra.setdefault("model", "krita-horde-tiny")
    return PopReply(id="j", payload=PopPayload.model_validate(payload), **extra)


CAPS = Capabilities(("krita-horde-tiny",), 128 * 128, True, True)


def test_txt2img_fields_are_read() -> None:
    job = job_from_pop(pop(), CAPS)
    assert (job.prompt, job.negative_prompt) == ("castle", "fog, people")
    assert (job.mode, job.width, job.height, job.steps) == (Mode.TXT2IMG, 128, 64, 10)
    assert (job.cfg_scale, job.sampler_name, job.seeds, job.ids) == (6.5, "k_euler_a", [5], ["j"])


@pytest.mark.parametrize(
    ("extra", "caps", "expected"),
    [
        ({"payload": {"sampler_name": "k_magic"}}, CAPS, "unknown sampler 'k_magic'"),
        ({"payload": {"width": 256, "height": 256}}, CAPS, "exceeds this worker's max_pixels"),
        ({"model": "other-model"}, CAPS, "model 'other-model' is not served here"),
        ({"payload": {"post_processing": ["GFPGAN"]}}, CAPS, "post-processor GFPGAN is not served"),
        (
            {"source_image": encode(striped(64, 64))},
            Capabilities(("krita-horde-tiny",), 128 * 128, False, True),
            "img2img is disabled",
        ),
        (
            {"source_image": encode(striped(64, 64)), "source_processing": "inpainting"},
            Capabilities(("krita-horde-tiny",), 128 * 128, True, False),
            "inpainting is disabled",
        ),
        (
            {"source_image": encode(striped(64, 64)), "source_processing": "inpainting"},
            CAPS,
            "inpainting needs a source_mask or transparent pixels",
        ),
        ({"source_image": "not base64 at all!"}, CAPS, "source_image: is not valid base64"),
        (
            {"source_image": base64.b64encode(b"GIF89a-nope").decode()},
            CAPS,
            "source_image: is not a readable WebP or PNG image",
        ),
        (
            {
                "source_image": encode(striped(64, 64)),
                "source_processing": "inpainting",
                "source_mask": base64.b64encode(b"\x89PNG broken").decode(),
            },
            CAPS,
            "source_mask: is not a readable WebP or PNG image",
        ),
    ],
)
def test_bad_jobs_are_rejected_with_a_reason(
    extra: dict[str, Any], caps: Capabilities, expected: str
) -> None:
    with pytest.raises(JobRejected) as rejected:
        job_from_pop(pop(**extra), caps)
    assert expected in rejected.value.reason


def test_bad_image_rejection_names_the_field_for_gen_metadata() -> None:
    with pytest.raises(JobRejected) as rejected:
        job_from_pop(pop(source_image="%%%"), CAPS)
    assert (rejected.value.meta_type, rejected.value.meta_value) == ("source_image", "parse_failed")


def test_outpainting_is_served_as_inpainting_and_strength_defaults() -> None:
    source = striped(64, 64).convert("RGBA")
    source.putpixel((0, 0), (0, 0, 0, 0))
    job = job_from_pop(pop(source_image=encode(source), source_processing="outpainting"), CAPS)
    assert job.mode is Mode.INPAINTING and job.strength == 1.0
    img2img = job_from_pop(pop(source_image=encode(striped(64, 64))), CAPS)
    assert img2img.mode is Mode.IMG2IMG and img2img.strength == 0.75
