"""Generation with the tiny random-weight pipeline on CPU: sizes, seeds, masks, interruption."""

from __future__ import annotations

from typing import Any

import pytest
from PIL import Image, ImageChops

from horde_protocol import PopPayload, PopReply
from horde_worker.generate import JobInterrupted, effective_steps, generate
from horde_worker.job import Capabilities, Mode, job_from_pop
from horde_worker.models import LoadedModel
from tests.worker.images_util import box_mask, centre_box, encode, striped, with_hole


def pop(width: int = 64, height: int = 64, **extra: Any) -> PopReply:
    payload: dict[str, Any] = {
        "prompt": "a red fox###blurry",
        "ddim_steps": 4,
        "seed": "1234",
        "sampler_name": "k_euler",
        "cfg_scale": 7.0,
        "width": width,
        "height": height,
    }
    payload.update(extra.pop("payload", {}))
    return PopReply(
        id=extra.pop("id", "job-1"),
        model="krita-horde-tiny",
        payload=PopPayload.model_validate(payload),
        **extra,
    )


def pixels(image: Image.Image) -> bytes:
    return image.convert("RGB").tobytes()


@pytest.mark.parametrize(
    ("mode", "width", "height"),
    [(Mode.TXT2IMG, 64, 128), (Mode.IMG2IMG, 128, 64), (Mode.INPAINTING, 64, 64)],
)
def test_each_mode_gives_the_requested_size(
    tiny_model: LoadedModel, capabilities: Capabilities, mode: Mode, width: int, height: int
) -> None:
    extra: dict[str, Any] = {}
    if mode is not Mode.TXT2IMG:
        # A source of another size: the worker must fit it to the job's size.
        extra["source_image"] = encode(striped(96, 96))
        extra["source_processing"] = "img2img" if mode is Mode.IMG2IMG else "inpainting"
    if mode is Mode.INPAINTING:
        extra["source_mask"] = encode(box_mask(96, 96))
    job = job_from_pop(pop(width, height, **extra), capabilities)
    assert job.mode is mode
    outcome = generate(job, tiny_model)
    assert [image.image.size for image in outcome.images] == [(width, height)]
    assert outcome.steps_run > 0


def test_same_seed_same_pixels_other_seed_other_pixels(
    tiny_model: LoadedModel, capabilities: Capabilities
) -> None:
    first = generate(job_from_pop(pop(), capabilities), tiny_model).images[0]
    again = generate(job_from_pop(pop(), capabilities), tiny_model).images[0]
    other = generate(job_from_pop(pop(payload={"seed": "99"}), capabilities), tiny_model).images[0]
    assert first.seed == again.seed == 1234
    assert pixels(first.image) == pixels(again.image)
    assert pixels(first.image) != pixels(other.image)


def test_text_seed_is_hashed_stably(tiny_model: LoadedModel, capabilities: Capabilities) -> None:
    one = job_from_pop(pop(payload={"seed": "hello"}), capabilities)
    two = job_from_pop(pop(payload={"seed": "hello"}), capabilities)
    assert one.seeds == two.seeds
    assert 0 <= one.seeds[0] < 2**32


def test_batch_gives_one_image_per_id_with_consecutive_seeds(
    tiny_model: LoadedModel, capabilities: Capabilities
) -> None:
    job = job_from_pop(pop(ids=["a", "b"], id="a"), capabilities)
    outcome = generate(job, tiny_model)
    assert [(image.id, image.seed) for image in outcome.images] == [("a", 1234), ("b", 1235)]
    assert pixels(outcome.images[0].image) != pixels(outcome.images[1].image)


def _unmasked_difference(result: Image.Image, source: Image.Image) -> int:
    """Largest per-channel difference outside the centre box."""
    difference = ImageChops.difference(result.convert("RGB"), source.convert("RGB"))
    difference.paste((0, 0, 0), centre_box(*source.size))
    return max(high for _, high in difference.getextrema())


def test_inpainting_with_mask_keeps_unmasked_pixels(
    tiny_model: LoadedModel, capabilities: Capabilities
) -> None:
    source = striped(64, 64)
    reply = pop(
        source_image=encode(source),
        source_processing="inpainting",
        source_mask=encode(box_mask(64, 64)),
    )
    result = generate(job_from_pop(reply, capabilities), tiny_model).images[0].image
    assert _unmasked_difference(result, source) <= 2
    inside = ImageChops.difference(result, source).crop(centre_box(64, 64))
    assert max(high for _, high in inside.getextrema()) > 20, "masked area was not repainted"


def test_inpainting_without_mask_repaints_transparent_pixels(
    tiny_model: LoadedModel, capabilities: Capabilities
) -> None:
    source = striped(64, 64)
    reply = pop(source_image=encode(with_hole(source)), source_processing="inpainting")
    job = job_from_pop(reply, capabilities)
    assert job.mask is not None
    assert job.mask.getpixel((32, 32)) == 255 and job.mask.getpixel((2, 2)) == 0
    result = generate(job, tiny_model).images[0].image
    assert _unmasked_difference(result, source) <= 2


def test_webp_source_is_accepted(tiny_model: LoadedModel, capabilities: Capabilities) -> None:
    reply = pop(source_image=encode(striped(64, 64), "WEBP"), payload={"denoising_strength": 0.5})
    job = job_from_pop(reply, capabilities)
    assert job.mode is Mode.IMG2IMG and job.strength == 0.5
    assert generate(job, tiny_model).images[0].image.size == (64, 64)


def test_low_strength_still_runs_a_step(
    tiny_model: LoadedModel, capabilities: Capabilities
) -> None:
    assert effective_steps(4, 0.1) == 10
    reply = pop(source_image=encode(striped(64, 64)), payload={"denoising_strength": 0.1})
    outcome = generate(job_from_pop(reply, capabilities), tiny_model)
    assert outcome.steps_run >= 1


def test_clip_skip_changes_the_image(tiny_model: LoadedModel, capabilities: Capabilities) -> None:
    plain = generate(job_from_pop(pop(), capabilities), tiny_model).images[0]
    skipped = generate(job_from_pop(pop(payload={"clip_skip": 2}), capabilities), tiny_model)
    assert pixels(plain.image) != pixels(skipped.images[0].image)


class StopAt:
    def __init__(self, step: int) -> None:
        self.step = step
        self.seen: list[tuple[int, int]] = []

    def on_step(self, step: int, total: int, latents: Any) -> bool:
        self.seen.append((step, total))
        return step >= self.step


def test_observer_sees_every_step_and_can_stop_the_job(
    tiny_model: LoadedModel, capabilities: Capabilities
) -> None:
    observer = StopAt(2)
    with pytest.raises(JobInterrupted):
        generate(job_from_pop(pop(payload={"ddim_steps": 8}), capabilities), tiny_model, observer)
    assert observer.seen == [(1, 8), (2, 8)]
