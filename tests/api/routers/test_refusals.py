"""No silent downgrades: what no worker of this horde could honour is refused by name (with the
public horde's `rc` where it has one), what is ignored comes with a warning, field by field."""

from __future__ import annotations

from typing import Any

import pytest

from tests.api.conftest import Horde, image_b64

SOURCE = {"source_image": image_b64(), "source_processing": "img2img"}


@pytest.mark.parametrize(
    ("body", "rc", "field"),
    [
        ({"params": {"special": {"x": 1}}}, "SpecialFieldNeedsSpecialUser", "params.special"),
        ({"params": {"workflow": "qr_code"}}, "UnsupportedWorkflow", "params.workflow"),
        (
            {"params": {"extra_texts": [{"text": "hi", "reference": "qr_code"}]}},
            "InvalidExtraTexts",
            "params.extra_texts",
        ),
        ({"params": {"transparent": True}}, "UnsupportedTransparency", "params.transparent"),
        (
            {"extra_source_images": [{"image": image_b64()}]},
            "InvalidExtraSourceImages",
            "extra_source_images",
        ),
        ({**SOURCE, "source_processing": "remix"}, "InvalidRemix", "remix"),
        ({"proxied_account": "someone"}, "OnlyServiceAccountProxy", "proxied_account"),
        ({"style": "cinematic"}, "UnsupportedStyle", "style"),
        (
            {"params": {"loras": [{"name": f"lora{i}"} for i in range(6)]}},
            "TooManyLoras",
            "params.loras",
        ),
        (
            {"params": {"loras": [{"name": "not-a-number", "is_version": True}]}},
            "BadLoraVersion",
            "params.loras",
        ),
        (
            {"params": {"tis": [{"name": f"ti{i}"} for i in range(21)]}},
            "TooManyTIs",
            "params.tis",
        ),
        (
            {"params": {"post_processing": ["RealESRGAN_x4plus", "NMKD_Siax"]}},
            "TooManyUpscalers",
            "params.post_processing",
        ),
        ({"params": {"control_type": "canny"}}, "ControlNetSourceMissing", "params.control_type"),
        (
            {
                "params": {"control_type": "canny"},
                "source_image": image_b64(),
                "source_mask": image_b64(mode="L"),
                "source_processing": "inpainting",
            },
            "ControlNetInpaintingMismatch",
            "params.control_type",
        ),
        (
            {"params": {"n": 2}, "disable_batching": True},
            "RequiresTrust",
            "disable_batching",
        ),
    ],
)
def test_what_no_worker_can_honour_is_refused_by_name(
    embedded_horde: Horde, body: dict[str, Any], rc: str, field: str
) -> None:
    reply = embedded_horde.client.post("/api/v2/generate/async", json={"prompt": "x", **body})
    assert reply.status_code == 400, reply.text
    assert reply.json()["rc"] == rc
    assert field in reply.json()["message"]


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"post_processing": ["NotAnUpscaler"]}, "params.post_processing"),
        ({"control_type": "telepathy"}, "params.control_type"),
        ({"post_processing_order": "random"}, "params.post_processing_order"),
        ({"loras": [{"name": "x", "model": 9}]}, "params.loras.0.model"),
        ({"tis": [{"name": "x", "inject_ti": "both"}]}, "params.tis.0.inject_ti"),
        ({"seed_variation": 0}, "params.seed_variation"),
        ({"hires_fix_denoising_strength": 2}, "params.hires_fix_denoising_strength"),
    ],
)
def test_malformed_public_fields_are_validation_errors_naming_the_field(
    embedded_horde: Horde, params: dict[str, Any], field: str
) -> None:
    reply = embedded_horde.client.post(
        "/api/v2/generate/async", json={"prompt": "x", "params": params}
    )
    assert reply.status_code == 400, reply.text
    body = reply.json()
    assert body["rc"] == "ValidationError"
    # As on the public horde, `errors` names each bad field.
    assert field in body["errors"], body


def test_unknown_worker_in_the_workers_list_is_refused(embedded_horde: Horde) -> None:
    reply = embedded_horde.client.post(
        "/api/v2/generate/async", json={"prompt": "x", "workers": ["no-such-worker"]}
    )
    assert reply.status_code == 404 and reply.json()["rc"] == "WorkerNotFound"


def test_ignored_fields_are_accepted_with_a_warning(embedded_horde: Horde) -> None:
    reply = embedded_horde.request(webhook="https://example.invalid/hook", shared=True)
    codes = {w["code"] for w in reply["warnings"]}
    assert {"WebhookIgnored", "SharingIgnored", "NoAvailableWorker"} <= codes


def test_a_plain_request_has_no_warnings_key_when_a_worker_can_take_it(
    embedded_horde: Horde,
) -> None:
    embedded_horde.pop(embedded_horde.user("volunteer"))  # a worker comes online
    reply = embedded_horde.request(models=["krita-horde-tiny"])
    assert "warnings" not in reply and set(reply) == {"id", "kudos"}


def test_a_trusted_user_may_disable_batching(embedded_horde: Horde) -> None:
    key = embedded_horde.user("studio", trusted=True)
    embedded_horde.request(apikey=key, params={"n": 2}, disable_batching=True)
    job = embedded_horde.pop(key, amount=2)
    assert len(job["ids"]) == 1, "disable_batching: one image per pop"
