"""Exact feature routing: a worker that lists its post-processors, ControlNet types, LoRAs and
textual inversions gets only images whose every part it has, with the public horde's `skipped`
reasons; a worker that lists none takes any (the public horde's assumption); /workers and
/status/models show what live workers offer."""

from __future__ import annotations

from typing import Any

import pytest

from tests.api.conftest import WORKER_MODEL, Horde, image_b64


def _counted(reply: dict[str, Any]) -> dict[str, int]:
    return {reason: count for reason, count in reply["skipped"].items() if count}


LISTS = {
    "post_processors": [],
    "controlnet_types": [],
    "control_map_types": [],
    "loras": [],
    "textual_inversions": [],
}


def _worker(**lists: Any) -> dict[str, Any]:
    """A pop body like our worker's: every list sent, the allow flags following them."""
    body: dict[str, Any] = {**LISTS, **lists}
    body.update(
        allow_post_processing=bool(body["post_processors"]),
        allow_controlnet=bool(body["controlnet_types"]),
        allow_lora=bool(body["loras"] or body["textual_inversions"]),
    )
    return body


@pytest.mark.parametrize(
    ("params", "lacking", "having", "reason"),
    [
        (
            {"post_processing": ["RealESRGAN_x4plus"]},
            {"post_processors": ["RealESRGAN_x2plus"]},
            {"post_processors": ["RealESRGAN_x2plus", "RealESRGAN_x4plus"]},
            "post-processing",
        ),
        (
            {"loras": [{"name": "Detail-Tweaker"}, {"name": "58390"}]},
            {"loras": ["detail-tweaker"]},
            {"loras": ["58390", "DETAIL-TWEAKER"]},
            "lora",
        ),
        (
            {"tis": [{"name": "bad-hands"}]},
            {"loras": ["bad-hands"]},
            {"textual_inversions": ["bad-hands"]},
            "lora",
        ),
    ],
)
def test_a_worker_gets_only_images_whose_every_part_it_has(
    horde: Horde,
    params: dict[str, Any],
    lacking: dict[str, Any],
    having: dict[str, Any],
    reason: str,
) -> None:
    key = horde.user("volunteer")
    horde.request(params=params, prompt="exact")
    without = horde.pop(key, name="lacking", **_worker(**lacking))
    assert without["id"] is None and _counted(without) == {reason: 1}
    job = horde.pop(key, name="having", **_worker(**having))
    assert job["payload"]["prompt"] == "exact"


def test_a_worker_that_lists_nothing_takes_any_name_as_on_the_public_horde(horde: Horde) -> None:
    key = horde.user("volunteer")
    horde.request(params={"post_processing": ["CodeFormers"], "loras": [{"name": "x"}]})
    job = horde.pop(key, allow_post_processing=True, allow_lora=True)
    assert job["payload"]["post_processing"] == ["CodeFormers"]


def test_controlnet_routes_by_type_and_by_who_computes_the_map(horde: Horde) -> None:
    key = horde.user("volunteer")
    source = image_b64()
    horde.request(params={"control_type": "canny"}, source_image=source, prompt="from a sketch")
    horde.request(
        params={"control_type": "depth", "image_is_control": True},
        source_image=source,
        prompt="depth map given",
    )
    # Has canny weights but cannot compute a canny map; has no depth weights.
    weights_only = _worker(controlnet_types=["canny"])
    assert _counted(horde.pop(key, name="a", **weights_only)) == {"controlnet": 2}
    ours = _worker(controlnet_types=["canny", "depth"], control_map_types=["canny"])
    prompts = {horde.pop(key, name="b", **ours)["payload"]["prompt"] for _ in range(2)}
    assert prompts == {"from a sketch", "depth map given"}


def test_is_possible_counts_only_workers_that_have_every_part(horde: Horde) -> None:
    key = horde.user("volunteer")
    horde.pop(key, name="no-lora", **_worker(loras=["other"]))
    request = horde.request(params={"loras": [{"name": "wanted"}]})
    assert horde.check(request["id"])["is_possible"] is False
    horde.pop(key, name="with-lora", **_worker(loras=["other", "wanted"]))
    horde.ctx.live_workers.invalidate()
    assert horde.check(request["id"])["is_possible"] is True


def test_workers_and_models_show_what_live_workers_offer(horde: Horde) -> None:
    key = horde.user("volunteer")
    horde.pop(
        key,
        name="ours",
        **_worker(
            post_processors=["RealESRGAN_x4plus"],
            controlnet_types=["canny"],
            control_map_types=["canny"],
            loras=["Detail-Tweaker"],
        ),
    )
    (worker,) = horde.client.get("/api/v2/workers").json()
    assert worker["post_processors"] == ["RealESRGAN_x4plus"]
    assert (worker["controlnet_types"], worker["control_map_types"]) == (["canny"], ["canny"])
    assert (worker["loras"], worker["textual_inversions"]) == (["detail-tweaker"], [])
    assert (worker["post-processing"], worker["controlnet"], worker["lora"]) == (True, True, True)
    (model,) = horde.client.get(f"/api/v2/status/models/{WORKER_MODEL}").json()
    assert model["post_processors"] == ["RealESRGAN_x4plus"]
    assert (model["controlnet_types"], model["loras"], model["lora"]) == (
        ["canny"],
        ["detail-tweaker"],
        True,
    )
    assert (model["hires_fix"], model["tiling"]) == (True, True)
    # A public-horde style worker (allows post-processing, lists none) offers every name.
    horde.pop(key, name="public-style", allow_post_processing=True)
    horde.ctx.live_workers.invalidate()
    (model,) = horde.client.get(f"/api/v2/status/models/{WORKER_MODEL}").json()
    assert "CodeFormers" in model["post_processors"]


def test_an_upscaled_result_is_accepted_and_too_large_an_upscale_refused(horde: Horde) -> None:
    key = horde.user("volunteer")
    request = horde.request(params={"post_processing": ["RealESRGAN_x4plus"]})
    job = horde.pop(key, **_worker(post_processors=["RealESRGAN_x4plus"]))
    upscaled = image_b64(256, 256, fmt="WEBP")  # the 64x64 request, upscaled 4x
    assert horde.submit(key, job["id"], generation=upscaled).status_code == 200
    assert horde.status(request["id"])["done"] is True
    reply = horde.client.post(
        "/api/v2/generate/async",
        json={
            "prompt": "huge",
            "params": {"width": 2048, "height": 2048, "post_processing": ["RealESRGAN_x4plus"]},
        },
        headers={"apikey": key},
    )
    assert reply.status_code == 400
    assert "at most" in reply.json()["message"] and "2x upscaler" in reply.json()["message"]
