"""Which job a pop gets: fit, priority, order, and `skipped` when nothing fits."""

from __future__ import annotations

import threading

from horde_api.pop_replies import ALWAYS_SKIPPED
from tests.api.conftest import WORKER_MODEL, Horde, image_b64


def test_only_fitting_jobs_are_handed_out(horde: Horde) -> None:
    key = horde.user("volunteer")
    horde.request(models=["other-model"])
    horde.request(params={"width": 768, "height": 768})
    horde.request(source_image=image_b64())
    horde.request(
        source_image=image_b64(), source_mask=image_b64(mode="L"), source_processing="inpainting"
    )
    horde.request(nsfw=True)
    horde.request(prompt="a forbidden castle")
    reply = horde.pop(
        key,
        max_pixels=512 * 512,
        allow_img2img=False,
        allow_painting=False,
        nsfw=False,
        blacklist=["FORBIDDEN"],
    )
    assert reply["id"] is None and reply["ids"] == []
    counted = {reason: count for reason, count in reply["skipped"].items() if count}
    assert counted == {
        "models": 1,
        "max_pixels": 1,
        "img2img": 1,
        "painting": 1,
        "nsfw": 1,
        "blacklist": 1,
    }
    # As on the public horde, its twelve reasons are always there, zero or not.
    assert set(ALWAYS_SKIPPED) <= set(reply["skipped"])


def test_each_job_reaches_a_worker_that_fits_it(horde: Horde) -> None:
    key = horde.user("volunteer")
    horde.request(models=["other-model"], prompt="other")
    horde.request(params={"width": 768, "height": 768}, prompt="big")
    horde.request(nsfw=True, prompt="spicy")
    assert horde.pop(key, name="a", models=["other-model"])["payload"]["prompt"] == "other"
    assert horde.pop(key, name="b", max_pixels=1024 * 1024)["payload"]["prompt"] == "big"
    assert horde.pop(key, name="c", nsfw=True)["payload"]["prompt"] == "spicy"


def test_request_without_models_goes_to_any_worker_which_names_its_model(horde: Horde) -> None:
    key = horde.user("volunteer")
    horde.request(models=[])
    job = horde.pop(key, models=["some-model"])
    assert job["model"] == "some-model"


def test_big_image_behind_small_ones_in_the_same_size_class(horde: Horde) -> None:
    key = horde.user("volunteer")
    # 576x512 and 512x512 share a size class; a 512*512 worker skips the first, takes the second.
    horde.request(params={"width": 576, "height": 512}, prompt="wide")
    horde.request(params={"width": 512, "height": 512}, prompt="square")
    job = horde.pop(key, max_pixels=512 * 512)
    assert job["payload"]["prompt"] == "square"


def test_priority_tiers_then_age(horde: Horde) -> None:
    trusted = horde.user("trusted", trusted=True)
    registered = horde.user("registered")
    horde.request(apikey="0000000000", prompt="anonymous")
    horde.request(apikey=registered, prompt="registered-1")
    horde.request(apikey=trusted, prompt="trusted")
    horde.request(apikey=registered, prompt="registered-2")
    order = [horde.pop(registered)["payload"]["prompt"] for _ in range(4)]
    assert order == ["trusted", "registered-1", "registered-2", "anonymous"]


def test_oldest_first_across_queues_of_one_tier(horde: Horde) -> None:
    key = horde.user("volunteer")
    horde.request(models=[WORKER_MODEL], prompt="first")
    horde.request(models=[], prompt="second")
    horde.request(params={"width": 512, "height": 512}, prompt="third")
    order = [horde.pop(key)["payload"]["prompt"] for _ in range(3)]
    assert order == ["first", "second", "third"]


def test_concurrent_pops_never_share_a_job(horde: Horde) -> None:
    key = horde.user("volunteer")
    for _ in range(4):
        horde.request(apikey=key, params={"n": 5})
    got: list[str] = []
    lock = threading.Lock()

    def worker(name: str) -> None:
        while True:
            job = horde.pop(key, name=name)
            if job["id"] is None:
                return
            with lock:
                got.append(job["id"])

    threads = [threading.Thread(target=worker, args=(f"w{i}",)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert len(got) == 20 and len(set(got)) == 20


def test_concurrency_limit_is_429(make_horde) -> None:  # type: ignore[no-untyped-def]
    horde = make_horde(anonymous_concurrency=3)
    horde.request(params={"n": 2})
    body = {"prompt": "x", "params": {"n": 2, "width": 64, "height": 64}}
    reply = horde.client.post("/api/v2/generate/async", json=body)
    assert reply.status_code == 429
    assert reply.json()["rc"] == "TooManyPrompts"
    # Finishing work frees the slots again.
    key = horde.user("volunteer")
    for _ in range(2):
        horde.submit(key, horde.pop(key)["id"])
    horde.request(params={"n": 3})


def test_rate_limit_per_ip(make_horde) -> None:  # type: ignore[no-untyped-def]
    horde = make_horde(rate_limit_per_ip_per_minute=2)
    horde.request()
    horde.request()
    reply = horde.client.post("/api/v2/generate/async", json={"prompt": "x"})
    assert reply.status_code == 429
    assert reply.json()["rc"] == "RateLimited"
    horde.clock.advance(61)
    horde.request()


def test_rate_limit_window_is_configurable(make_horde) -> None:  # type: ignore[no-untyped-def]
    horde = make_horde(rate_limit_per_key_per_minute=2, rate_limit_window_seconds=600)
    key = horde.user("steady")
    horde.request(apikey=key)
    horde.request(apikey=key)
    horde.clock.advance(61)  # a minute is not enough: the window is 10 minutes long
    reply = horde.client.post(
        "/api/v2/generate/async", json={"prompt": "x"}, headers={"apikey": key}
    )
    assert reply.status_code == 429
    assert reply.json()["rc"] == "RateLimited"
    assert "600 s window" in reply.json()["message"]
    (counter,) = horde.ctx.redis.keys(f"{horde.ctx.keys.prefix}rl:key:*")
    assert 600 < horde.ctx.redis.ttl(counter) <= 1200, "a counter lives for two windows"
    horde.clock.advance(600 - 61)
    horde.request(apikey=key)
