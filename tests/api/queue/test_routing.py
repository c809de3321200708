"""The pop matcher honours what a worker announces and what a request asks of its workers, as
the public horde does, with its `skipped` reasons (docs/protocol.md, "Which worker gets a job")."""

from __future__ import annotations

from typing import Any

import pytest

from tests.api.conftest import WORKER_MODEL, Horde, image_b64


def _counted(reply: dict[str, Any]) -> dict[str, int]:
    return {reason: count for reason, count in reply["skipped"].items() if count}


@pytest.mark.parametrize(
    ("params", "flag", "reason"),
    [
        ({"loras": [{"name": "detail-tweaker"}]}, "allow_lora", "lora"),
        ({"tis": [{"name": "bad-hands"}]}, "allow_lora", "lora"),
        ({"post_processing": ["GFPGAN"]}, "allow_post_processing", "post-processing"),
        ({"hires_fix": True}, "allow_hires_fix", "hires_fix"),
        ({"tiling": True}, "allow_tiling", "tiling"),
        (
            {"interpolation": {"to_seed": "8", "seed_t": 0.25, "to_prompt": "a b", "prompt_t": 1}},
            "allow_interpolation",
            "interpolation",
        ),
    ],
)
def test_a_feature_reaches_only_workers_that_allow_it(
    horde: Horde, params: dict[str, Any], flag: str, reason: str
) -> None:
    key = horde.user("volunteer")
    horde.request(params=params, prompt="featured")
    without = horde.pop(key, name="plain", **{flag: False})
    assert without["id"] is None and _counted(without) == {reason: 1}
    job = horde.pop(key, name="capable", **{flag: True})
    assert job["payload"]["prompt"] == "featured"
    for name, value in params.items():
        if name != "tis":
            assert job["payload"][name] == value or name == "loras"


def test_interpolation_is_off_for_workers_that_do_not_announce_it(horde: Horde) -> None:
    """Workers written for the public horde never send allow_interpolation: they never get
    such images, and the client hears that none could take it."""
    key = horde.user("volunteer")
    horde.pop(key, name="public-kind")  # a live worker, without the extension
    reply = horde.request(params={"interpolation": {"to_seed": "8", "seed_t": 0.5}})
    assert [w["code"] for w in reply.get("warnings", [])] == ["NoAvailableWorker"]
    assert _counted(horde.pop(key, name="public-kind")) == {"interpolation": 1}
    check = horde.client.get(f"/api/v2/generate/check/{reply['id']}").json()
    assert check["is_possible"] is False


def test_seed_interpolation_of_a_source_image_is_refused(horde: Horde) -> None:
    reply = horde.client.post(
        "/api/v2/generate/async",
        json={
            "prompt": "p",
            "source_image": image_b64(),
            "params": {"interpolation": {"to_seed": "8"}},
        },
        headers={"apikey": horde.user("artist")},
    )
    assert reply.status_code == 400
    assert reply.json()["rc"] == "InterpolationNeedsTxt2img"


def test_controlnet_needs_allow_controlnet_which_is_off_unless_sent(horde: Horde) -> None:
    key = horde.user("volunteer")
    horde.request(params={"control_type": "canny"}, source_image=image_b64())
    default = horde.pop(key, name="default")  # the public horde's default: no ControlNet
    assert _counted(default) == {"controlnet": 1}
    job = horde.pop(key, name="cn", allow_controlnet=True)
    assert job["payload"]["control_type"] == "canny" and job["source_image"]


def test_loras_go_to_the_worker_with_their_settings(horde: Horde) -> None:
    key = horde.user("volunteer")
    lora = {"name": "detail-tweaker", "model": 0.5, "clip": 1.0}
    horde.request(params={"loras": [lora]})
    (sent,) = horde.pop(key, allow_lora=True)["payload"]["loras"]
    assert {k: sent[k] for k in lora} == lora


def test_plain_requests_carry_no_empty_feature_lists_to_the_worker(horde: Horde) -> None:
    """The public horde routes on a `loras` key even when empty: never send one we don't mean."""
    key = horde.user("volunteer")
    horde.request()
    payload = horde.pop(key)["payload"]
    assert not {"loras", "tis", "post_processing"} & set(payload)


def test_limit_max_steps_skips_heavy_images(horde: Horde) -> None:
    key = horde.user("volunteer")
    # k_heun counts its steps twice: 20 steps weigh 40, above the limit of 30.
    horde.request(params={"steps": 20, "sampler_name": "k_heun"}, prompt="heavy")
    horde.request(params={"steps": 25}, prompt="light")
    limited = horde.pop(key, name="small-gpu", limit_max_steps=True)
    assert limited["payload"]["prompt"] == "light"
    assert horde.pop(key, name="small-gpu", limit_max_steps=True)["skipped"]["step_count"] == 1
    assert horde.pop(key, name="big-gpu")["payload"]["prompt"] == "heavy"


def test_amount_takes_several_images_of_one_request(horde: Horde) -> None:
    key = horde.user("volunteer")
    first = horde.request(params={"n": 3, "seed": "7", "seed_variation": 1})["id"]
    horde.request(prompt="another request")
    job = horde.pop(key, amount=5)
    assert len(job["ids"]) == 3 and job["payload"]["n_iter"] == 3, "one request per pop"
    assert job["id"] == job["ids"][0] and job["payload"]["seed"] == "7"
    assert len(job["r2_uploads"]) == 3 and job["r2_upload"] == job["r2_uploads"][0]
    for job_id, upload in zip(job["ids"], job["r2_uploads"], strict=True):
        assert f"/upload/{job_id}?" in upload
    assert horde.check(first)["processing"] == 3
    for index, job_id in enumerate(job["ids"]):
        assert horde.submit(key, job_id, seed=7 + index).status_code == 200
    status = horde.status(first)
    assert status["done"] and sorted(g["seed"] for g in status["generations"]) == ["7", "8", "9"]


def test_a_targeted_request_reaches_only_its_workers(horde: Horde) -> None:
    key = horde.user("volunteer")
    horde.pop(key, name="chosen")
    horde.pop(key, name="other")
    workers = {w["name"]: w["id"] for w in horde.client.get("/api/v2/workers").json()}
    horde.request(workers=[workers["chosen"]], prompt="for chosen")
    assert _counted(horde.pop(key, name="other")) == {"worker_id": 1}
    assert horde.pop(key, name="chosen")["payload"]["prompt"] == "for chosen"
    horde.request(workers=[workers["chosen"]], worker_blacklist=True, prompt="not for chosen")
    assert _counted(horde.pop(key, name="chosen")) == {"worker_id": 1}
    assert horde.pop(key, name="other")["payload"]["prompt"] == "not for chosen"


def test_trusted_workers_only_serve_requests_asking_for_them(horde: Horde) -> None:
    plain = horde.user("volunteer")
    trusted = horde.user("known", trusted=True)
    horde.request(trusted_workers=True)
    assert _counted(horde.pop(plain, name="anyone")) == {"untrusted": 1}
    assert horde.pop(trusted, name="vetted")["id"] is not None


def test_extra_slow_workers_take_only_requests_that_allow_them(horde: Horde) -> None:
    key = horde.user("volunteer")
    horde.request(prompt="default")
    assert _counted(horde.pop(key, name="slow", extra_slow_worker=True)) == {"performance": 1}
    horde.request(prompt="patient", extra_slow_workers=True)
    assert horde.pop(key, name="slow", extra_slow_worker=True)["payload"]["prompt"] == "patient"


def test_a_measured_slow_worker_does_not_get_requests_for_fast_workers(horde: Horde) -> None:
    key = horde.user("volunteer")
    horde.request(params={"width": 512, "height": 512, "steps": 10})
    job = horde.pop(key, name="slow")
    horde.clock.advance(60)  # 2.6 megapixel-steps in 60 s: far below 0.5 per second
    assert horde.submit(key, job["id"]).status_code == 200
    # Fast workers only needs the kudos up front, as on the public horde.
    hurried = horde.user("hurried")
    horde.give_kudos("hurried", 100)
    horde.request(apikey=hurried, slow_workers=False, prompt="hurry")
    assert _counted(horde.pop(key, name="slow")) == {"performance": 1}
    assert horde.pop(key, name="unmeasured")["payload"]["prompt"] == "hurry"


def test_require_upfront_kudos_serves_requesters_who_can_pay_trusted_ones_and_its_owner(
    horde: Horde,
) -> None:
    owner = horde.user("volunteer")
    trusted = horde.user("studio", trusted=True)
    poor = horde.user("poor")
    rich = horde.user("rich")
    horde.give_kudos("rich", 50)
    horde.request(prompt="anonymous")
    horde.request(apikey=poor, prompt="poor")
    assert _counted(horde.pop(owner, require_upfront_kudos=True)) == {"kudos": 2}
    horde.request(apikey=owner, prompt="mine")
    horde.request(apikey=trusted, prompt="trusted")
    horde.request(apikey=rich, prompt="rich")
    got = {horde.pop(owner, require_upfront_kudos=True)["payload"]["prompt"] for _ in range(3)}
    assert got == {"mine", "trusted", "rich"}


def test_workers_list_shows_the_announced_capabilities(horde: Horde) -> None:
    key = horde.user("volunteer")
    horde.pop(key, name="full", allow_lora=True, allow_controlnet=True, allow_tiling=False)
    (worker,) = horde.client.get("/api/v2/workers").json()
    assert (worker["lora"], worker["controlnet"], worker["post-processing"]) == (True, True, True)
    assert (worker["tiling"], worker["hires_fix"]) == (False, True)
    assert worker["models"] == [WORKER_MODEL]


def test_the_heartbeat_names_our_extensions(horde: Horde) -> None:
    """Clients learn from it that this horde routes `params.interpolation` (the public horde's
    heartbeat has no `extensions`)."""
    heartbeat = horde.client.get("/api/v2/status/heartbeat").json()
    assert heartbeat["message"] == "OK"
    assert set(heartbeat["extensions"]) == {"check_wait", "progress", "interpolation"}
