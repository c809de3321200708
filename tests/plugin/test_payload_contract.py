"""Every body the plug-in sends to /generate/async must be one the server accepts: checked
against the server's own pydantic model (horde_protocol.GenerationInput)."""

from __future__ import annotations

import base64

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from horde_protocol import GenerationInput, split_prompt
from krita_horde.document import DocumentCanvas
from krita_horde.geometry import Extent
from krita_horde.payload import (
    IMG2IMG,
    INPAINTING,
    TXT2IMG,
    JobSources,
    build_payload,
    full_prompt,
    resolve_mode,
)
from krita_horde.preparation import prepare_job
from krita_horde.settings import MODES, SAMPLERS, JobSettings

from .fake_krita import FakeDocument, FakeSelection

SOURCE = base64.b64encode(b"source").decode()
MASK = base64.b64encode(b"mask").decode()

job_settings = st.builds(
    JobSettings,
    prompt=st.text(min_size=1, max_size=200).filter(lambda t: t.strip() and "###" not in t),
    negative=st.text(max_size=100).filter(lambda t: "###" not in t),
    model=st.sampled_from(["", "krita-horde-tiny", "stable_diffusion"]),
    denoise=st.floats(0.01, 1.0).map(lambda v: round(v, 2)),
    cfg=st.floats(0, 100).map(lambda v: round(v, 1)),
    steps=st.integers(1, 500),
    sampler=st.sampled_from(SAMPLERS),
    karras=st.booleans(),
    seed=st.one_of(st.just(""), st.integers(0, 2**32).map(str), st.text(max_size=20)),
    n=st.integers(1, 20),
    clip_skip=st.integers(1, 12),
    nsfw=st.booleans(),
)
sizes = st.builds(
    Extent, st.integers(1, 48).map(lambda k: k * 64), st.integers(1, 48).map(lambda k: k * 64)
)


@given(
    settings_=job_settings, generation=sizes, mode=st.sampled_from([TXT2IMG, IMG2IMG, INPAINTING])
)
@settings(max_examples=200)
def test_every_payload_validates_against_the_server_model(
    settings_: JobSettings, generation: Extent, mode: str
) -> None:
    settings_.validate()
    body = build_payload(settings_, generation, mode, JobSources(SOURCE, MASK))
    parsed = GenerationInput.model_validate(body)
    assert parsed.params.width == generation.width
    assert parsed.params.height == generation.height
    assert parsed.r2 is False
    positive, negative = split_prompt(parsed.prompt)
    assert positive == settings_.prompt.strip()
    assert negative == settings_.negative.strip()
    if mode == TXT2IMG:
        assert parsed.source_image is None and parsed.source_mask is None
    else:
        assert parsed.source_processing.value == mode
        assert parsed.params.denoising_strength == settings_.denoise
        assert (parsed.source_mask is not None) == (mode == INPAINTING)
    assert parsed.params.seed == (settings_.seed.strip() or None)
    # n images of one seed differ: the horde adds seed_variation per image.
    expected_variation = 1 if settings_.seed.strip() and settings_.n > 1 else None
    assert parsed.params.seed_variation == expected_variation


def test_negative_prompt_goes_after_the_separator() -> None:
    assert full_prompt(JobSettings(prompt=" a cat ", negative="dogs")) == "a cat ### dogs"
    assert full_prompt(JobSettings(prompt="a cat")) == "a cat"


@pytest.mark.parametrize(
    ("requested", "content", "mask", "expected"),
    [
        ("auto", False, False, TXT2IMG),
        ("auto", True, False, IMG2IMG),
        ("auto", True, True, INPAINTING),
        ("auto", False, True, INPAINTING),
        ("img2img", False, False, IMG2IMG),
        ("txt2img", True, True, TXT2IMG),
    ],
)
def test_auto_mode_follows_the_sources(
    requested: str, content: bool, mask: bool, expected: str
) -> None:
    assert resolve_mode(requested, has_content=content, has_mask=mask) == expected
    assert requested in MODES


def _document(width: int = 300, height: int = 200) -> FakeDocument:
    return FakeDocument(width, height)


def _prepared(doc: FakeDocument, **values):
    settings_ = JobSettings(prompt="a fox", url="http://127.0.0.1:1", **values)
    prepared = prepare_job(DocumentCanvas(doc), settings_)
    GenerationInput.model_validate(prepared.payload)
    return prepared


def test_empty_canvas_gives_txt2img_of_the_whole_canvas() -> None:
    prepared = _prepared(_document())
    assert prepared.mode == TXT2IMG
    assert prepared.payload["params"]["width"] == 768  # 300x200 → short side 512 → 768x512
    assert prepared.payload["params"]["height"] == 512
    assert prepared.selection_mask is None


def test_content_under_a_rectangular_selection_gives_img2img() -> None:
    doc = _document()
    doc.paint((0, 0, 255, 255), 0, 0, 300, 200)
    doc.setSelection(FakeSelection(10, 10, 64, 64))
    prepared = _prepared(doc)
    assert prepared.mode == IMG2IMG
    assert "source_mask" not in prepared.payload
    assert prepared.area.bounds.x == 10 and prepared.selection_mask is None


def test_feathered_selection_gives_inpainting_with_its_shape_as_mask() -> None:
    doc = _document()
    doc.paint((0, 255, 0, 255), 0, 0, 300, 200)
    shape = bytes([255, 128] * 32) * 64  # 64x64, every other pixel half-selected
    doc.setSelection(FakeSelection(20, 30, 64, 64, shape))
    prepared = _prepared(doc)
    assert prepared.mode == INPAINTING
    assert prepared.selection_mask == shape
    assert prepared.payload["source_processing"] == "inpainting"


def test_painted_mask_layer_gives_inpainting() -> None:
    doc = _document()
    layer = doc.createNode("Horde Mask", "paintlayer")
    doc.rootNode().addChildNode(layer, None)
    layer.setPixelData(bytes([255, 255, 255, 255]) * 100, 0, 0, 10, 10)
    prepared = _prepared(doc)
    assert prepared.mode == INPAINTING
    assert prepared.selection_mask is None  # no selection: nothing to cut the results to


def test_forced_inpainting_of_a_plain_rectangle_repaints_it_all() -> None:
    doc = _document()
    doc.setSelection(FakeSelection(0, 0, 100, 100))
    prepared = _prepared(doc, mode="inpainting")
    assert prepared.mode == INPAINTING
    assert prepared.payload["source_mask"]
