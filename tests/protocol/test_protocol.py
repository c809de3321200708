"""The shared wire models: AI Horde v2 defaults, tolerance of unknown fields, clear rejections."""

import ast
import json
import sys
from pathlib import Path

import pytest
from pydantic import ValidationError

import horde_protocol as protocol
from horde_protocol import (
    GenerationInput,
    GenerationMetadata,
    GenerationParams,
    GenerationState,
    MetadataType,
    MetadataValue,
    PopReply,
    PopRequest,
    RequestStatus,
    SubmitRequest,
    split_prompt,
)


def test_defaults_follow_the_public_horde() -> None:
    body = GenerationInput(prompt="a cat")
    assert (body.params.width, body.params.height) == (512, 512)
    assert body.params.steps == 30
    assert body.params.cfg_scale == 7.5
    assert body.params.sampler_name == "k_euler_a"
    assert body.params.n == 1
    assert body.r2 is True
    assert body.source_processing == "img2img"


def test_unknown_request_fields_are_ignored() -> None:
    # Real clients send misspellings ("trust_workers") and fields of other protocol versions.
    body = GenerationInput.model_validate(
        {"prompt": "x", "trust_workers": True, "params": {"steps": 5, "future_knob": 1}}
    )
    assert body.params.steps == 5
    assert not hasattr(body, "trust_workers")


def test_reply_fields_we_do_not_know_are_kept() -> None:
    reply = RequestStatus.model_validate({"done": True, "new_field": 3})
    assert reply.done is True
    assert reply.model_extra == {"new_field": 3}


@pytest.mark.parametrize("side", [0, 32, 100, 3136, 4096])
def test_sides_outside_range_or_not_multiple_of_64_are_rejected(side: int) -> None:
    with pytest.raises(ValidationError) as error:
        GenerationParams(width=side)
    assert "width" in str(error.value)


def test_the_side_error_says_what_is_allowed() -> None:
    with pytest.raises(ValidationError) as error:
        GenerationParams(height=500)
    assert "multiple of 64 between 64 and 3072" in str(error.value)


@pytest.mark.parametrize(
    ("field", "value"), [("steps", 0), ("steps", 501), ("n", 21), ("cfg_scale", -1)]
)
def test_params_out_of_range_are_rejected(field: str, value: float) -> None:
    with pytest.raises(ValidationError):
        GenerationParams(**{field: value})


def test_unknown_sampler_is_rejected_with_the_allowed_list() -> None:
    with pytest.raises(ValidationError) as error:
        GenerationParams(sampler_name="k_magic")
    assert "k_euler_a" in str(error.value)


def test_numeric_seed_becomes_text() -> None:
    assert GenerationParams(seed=42).seed == "42"


def test_split_prompt_on_the_negative_separator() -> None:
    assert split_prompt("a cat ### blurry, dark") == ("a cat", "blurry, dark")
    assert split_prompt("a cat") == ("a cat", "")
    assert split_prompt("a ### b ### c") == ("a", "b ### c")


def test_pop_and_submit_round_trip() -> None:
    pop = PopRequest(name="w", models=["m"], max_pixels=262144)
    assert pop.allow_img2img and pop.amount == 1
    empty = PopReply.model_validate({"id": None, "ids": [], "skipped": {"models": 2}})
    assert empty.id is None and empty.skipped == {"models": 2}
    submit = SubmitRequest.model_validate({"id": "abc", "generation": "R2", "seed": "7"})
    assert submit.seed == 7 and submit.state == "ok"


def test_a_censored_submit_carries_the_public_metadata_words_on_the_wire() -> None:
    submit = SubmitRequest(
        id="abc",
        generation="UklGR",
        seed=1,
        state=GenerationState.CENSORED,
        gen_metadata=[GenerationMetadata(type=MetadataType.CENSORSHIP, value=MetadataValue.NSFW)],
    )
    wire = json.loads(submit.model_dump_json())
    assert wire["state"] == "censored"
    assert wire["gen_metadata"] == [{"type": "censorship", "value": "nsfw", "ref": None}]


def test_the_protocol_package_imports_only_pydantic_and_the_standard_library() -> None:
    """The worker and the contract tests import it without the server's dependencies."""
    imported = set()
    modules = sorted(Path(protocol.__file__).parent.glob("*.py"))
    assert len(modules) > 5
    for module in modules:
        for node in ast.walk(ast.parse(module.read_text())):
            if isinstance(node, ast.Import):
                imported |= {alias.name.split(".")[0] for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.module:
                imported.add(node.module.split(".")[0])
    assert imported - {"horde_protocol", "pydantic"} <= set(sys.stdlib_module_names)
    assert {"horde_api", "horde_worker", "worker"}.isdisjoint(imported)
