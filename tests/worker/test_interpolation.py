"""Our `interpolation` extension on the tiny model: the ends are the plain images, the walk is
smooth, and what cannot be interpolated is refused."""

from __future__ import annotations

from itertools import pairwise
from typing import Any

import pytest
import torch
from PIL import Image, ImageChops, ImageStat

from horde_worker.generate import generate
from horde_worker.interpolation import slerp
from horde_worker.job import Capabilities, JobRejected, job_from_pop
from horde_worker.models import LoadedModel
from tests.worker.images_util import encode, striped
from tests.worker.test_generate import pixels, pop


def _image(model: LoadedModel, capabilities: Capabilities, **payload: Any) -> Image.Image:
    job = job_from_pop(pop(payload=payload), capabilities)
    return generate(job, model).images[0].image


def _difference(a: Image.Image, b: Image.Image) -> float:
    return sum(ImageStat.Stat(ImageChops.difference(a, b)).mean) / 3


def test_slerp_keeps_the_ends_and_the_norm() -> None:
    generator = torch.Generator().manual_seed(0)
    a = torch.randn(4, 8, 8, generator=generator)
    b = torch.randn(4, 8, 8, generator=generator)
    assert torch.equal(slerp(a, b, 0.0), a) and torch.equal(slerp(a, b, 1.0), b)
    ends = (float(a.norm()) + float(b.norm())) / 2
    # A straight average of two independent noises loses about 30 % of the norm; slerp not.
    assert abs(float(slerp(a, b, 0.5).norm()) / ends - 1) < 0.05
    assert float(((a + b) / 2).norm()) / ends < 0.8


def test_seed_walk_starts_and_ends_on_the_plain_images(
    tiny_model: LoadedModel, capabilities: Capabilities
) -> None:
    start = _image(tiny_model, capabilities, seed="11")
    end = _image(tiny_model, capabilities, seed="12")
    at_0 = _image(tiny_model, capabilities, seed="11", interpolation={"to_seed": "12"})
    at_1 = _image(
        tiny_model, capabilities, seed="11", interpolation={"to_seed": "12", "seed_t": 1.0}
    )
    assert pixels(at_0) == pixels(start)
    # At t = 1 the noise is the other seed's; the generator (ancestral noise) stays this seed's,
    # which k_euler does not use: the image is the other seed's.
    assert pixels(at_1) == pixels(end)


def test_seed_walk_is_smooth(tiny_model: LoadedModel, capabilities: Capabilities) -> None:
    frames = [
        _image(tiny_model, capabilities, seed="11", interpolation={"to_seed": "12", "seed_t": t})
        for t in (0.0, 0.25, 0.5, 0.75, 1.0)
    ]
    steps = [_difference(a, b) for a, b in pairwise(frames)]
    unrelated = _difference(frames[0], frames[-1])
    assert max(steps) < unrelated
    assert all(step > 0 for step in steps)


def test_prompt_walk_starts_and_ends_on_the_plain_images(
    tiny_model: LoadedModel, capabilities: Capabilities
) -> None:
    start = _image(tiny_model, capabilities, prompt="a red fox###blurry")
    end = _image(tiny_model, capabilities, prompt="a blue whale###blurry")
    at_0 = _image(
        tiny_model, capabilities, prompt="a red fox###blurry",
        interpolation={"to_prompt": "a blue whale"},
    )  # fmt: skip
    halfway = _image(
        tiny_model, capabilities, prompt="a red fox###blurry",
        interpolation={"to_prompt": "a blue whale", "prompt_t": 0.5},
    )  # fmt: skip
    at_1 = _image(
        tiny_model, capabilities, prompt="a red fox###blurry",
        interpolation={"to_prompt": "a blue whale", "prompt_t": 1.0},
    )  # fmt: skip
    assert pixels(at_0) == pixels(start)
    assert pixels(start) != pixels(end)
    # t = 1 equals the other prompt up to float rounding of a + (b - a).
    assert _difference(at_1, end) < 0.5
    assert pixels(halfway) not in (pixels(start), pixels(end))


def test_seed_interpolation_of_img2img_is_refused(capabilities: Capabilities) -> None:
    reply = pop(
        source_image=encode(striped(64, 64)),
        payload={"interpolation": {"to_seed": "5"}, "denoising_strength": 0.5},
    )
    with pytest.raises(JobRejected, match="needs txt2img"):
        job_from_pop(reply, capabilities)


def test_prompt_interpolation_works_on_img2img(
    tiny_model: LoadedModel, capabilities: Capabilities
) -> None:
    source = encode(striped(64, 64))
    plain = generate(
        job_from_pop(pop(source_image=source, payload={"denoising_strength": 0.6}), capabilities),
        tiny_model,
    ).images[0]
    walked = generate(
        job_from_pop(
            pop(
                source_image=source,
                payload={
                    "denoising_strength": 0.6,
                    "interpolation": {"to_prompt": "a blue whale", "prompt_t": 1.0},
                },
            ),
            capabilities,
        ),
        tiny_model,
    ).images[0]
    assert pixels(plain.image) != pixels(walked.image)
