"""Fair accounting under faults (issue 12): restarts have a limit, in-flight counts cannot leak,
a cancelled image frees its requester's slot when its worker answers, censored images are not
paid for."""

from __future__ import annotations

from typing import Any

import pytest

from horde_api.queue import enqueue, leases
from horde_api.queue.in_flight import repair_in_flight_counts
from tests.api.conftest import Horde, HordeFactory


def _in_flight(horde: Horde, user_key: str) -> int:
    return int(horde.ctx.redis.get(horde.ctx.keys.user_in_flight(user_key)) or 0)


def _anonymous_in_flight(horde: Horde) -> int:
    return _in_flight(horde, "anon:testclient")


def test_a_job_handed_back_unstarted_is_not_a_restart_until_it_keeps_coming_back(
    make_horde: HordeFactory,
) -> None:
    horde = make_horde(max_faults_per_request=2)
    key = horde.user("volunteer")
    rid = horde.request()["id"]
    # Workers stopping one after another hand the image back (our `unstarted` extension):
    # far more often than the request's restart limit, and it still waits for a worker.
    for _ in range(leases.MAX_HAND_BACKS):
        job = horde.pop(key)
        reply = horde.submit(key, job["id"], generation="", state="faulted", unstarted=True)
        assert reply.status_code == 200, reply.text
        check = horde.check(rid)
        assert (check["waiting"], check["restarted"], check["faulted"]) == (1, 0, False)
    # Beyond that, a hand-back is a restart like any fault: a broken worker popping and handing
    # back the same image cannot keep its request from ending.
    for _ in range(3):
        job = horde.pop(key)
        horde.submit(key, job["id"], generation="", state="faulted", unstarted=True)
    check = horde.check(rid)
    assert check["faulted"] and check["done"] and check["restarted"] == 3


def test_unstarted_is_only_for_a_faulted_answer(horde: Horde) -> None:
    key = horde.user("volunteer")
    horde.request()
    job = horde.pop(key)
    reply = horde.submit(key, job["id"], unstarted=True)
    assert reply.status_code == 400, reply.text
    assert "unstarted is only for a state of 'faulted'" in reply.text


def test_an_image_whose_lease_keeps_expiring_fails_its_request_at_the_limit(
    make_horde: HordeFactory,
) -> None:
    horde = make_horde(max_faults_per_request=2)
    key = horde.user("volunteer")
    rid = horde.request()["id"]
    for restart in range(3):
        assert horde.pop(key)["id"] is not None, f"restart {restart}: the image is back"
        horde.clock.advance(200)  # past the lease's ttl (150 s), not the request's expiry
        horde.janitor()
    check = horde.check(rid)
    # The public horde's rule: the third restart fails the request, which says so.
    assert check["faulted"] and check["done"] and check["restarted"] == 3
    assert horde.pop(key)["id"] is None, "it does not come back for ever"
    assert _anonymous_in_flight(horde) == 0


def test_a_failure_while_queueing_leaves_no_in_flight_count_behind(
    horde: Horde, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The count rose in one round trip and the request was created in another: a failure (or a
    process death) between them left the user counted for a request that does not exist."""

    def broken_create(*_: Any, **__: Any) -> Any:
        raise ConnectionError("the process dies here")

    monkeypatch.setattr(enqueue.Job, "create", broken_create)
    with pytest.raises(ConnectionError):
        horde.request()
    assert _anonymous_in_flight(horde) == 0
    monkeypatch.undo()
    horde.request()
    assert _anonymous_in_flight(horde) == 1


def test_the_repair_pass_recomputes_counts_from_the_live_requests(horde: Horde) -> None:
    key = horde.user("volunteer")
    horde.request(params={"n": 3})
    horde.pop(key)
    redis, keys = horde.ctx.redis, horde.ctx.keys
    redis.set(keys.user_in_flight("anon:testclient"), 99)  # a count gone wrong
    redis.sadd(keys.in_flight_owners, "ghost")
    redis.set(keys.user_in_flight("ghost"), 5)  # a requester with nothing left
    assert repair_in_flight_counts(redis, keys, horde.clock()) == 2
    assert _anonymous_in_flight(horde) == 3
    assert redis.get(keys.user_in_flight("ghost")) is None
    assert horde.janitor()["in_flight_repaired"] == 0, "nothing wrong: nothing repaired"


@pytest.mark.parametrize("answer", ["image", "faulted"])
def test_a_cancelled_image_frees_its_slot_when_its_worker_answers(
    horde: Horde, answer: str
) -> None:
    key = horde.user("volunteer")
    rid = horde.request(params={"n": 2})["id"]
    job = horde.pop(key)
    assert _anonymous_in_flight(horde) == 2
    horde.client.delete(f"/api/v2/generate/status/{rid}")
    # The waiting image freed its slot at once; the running one holds it until answered.
    assert horde.check(rid)["done"] and _anonymous_in_flight(horde) == 1
    if answer == "image":
        reply = horde.submit(key, job["id"])
    else:
        reply = horde.submit(key, job["id"], state="faulted", generation="")
    assert reply.status_code == 200, reply.text
    assert _anonymous_in_flight(horde) == 0
    assert horde.check(rid)["finished"] == (1 if answer == "image" else 0)
    again = horde.submit(key, job["id"])
    assert again.status_code == 400 and again.json()["rc"] == "DuplicateGen"


def test_an_unanswered_cancelled_image_frees_its_slot_at_its_ttl(horde: Horde) -> None:
    horde.user("volunteer")
    rid = horde.request()["id"]
    horde.pop(horde.keys["volunteer"])
    horde.client.delete(f"/api/v2/generate/status/{rid}")
    assert _anonymous_in_flight(horde) == 1
    horde.clock.advance(200)
    horde.janitor()
    assert _anonymous_in_flight(horde) == 0
    assert horde.check(rid)["restarted"] == 0, "a cancelled image is not restarted"


@pytest.mark.parametrize("state", ["censored", "csam"])
def test_censored_and_csam_images_are_recorded_as_such_and_not_paid(
    horde: Horde, state: str
) -> None:
    key = horde.user("volunteer")
    rid = horde.request()["id"]
    job = horde.pop(key)
    reply = horde.submit(key, job["id"], state=state)
    assert reply.status_code == 200 and reply.json() == {"reward": 0}
    status = horde.status(rid)
    assert status["done"] and status["finished"] == 1
    if state == "censored":
        (generation,) = status["generations"]
        assert generation["censored"] and generation["state"] == "censored"
    else:
        assert status["generations"] == [], "nothing of a CSAM verdict is kept"
    (worker,) = horde.client.get("/api/v2/workers").json()
    assert worker["requests_fulfilled"] == 0
    me = horde.client.get("/api/v2/find_user", headers={"apikey": key}).json()
    assert me["records"]["fulfillment"]["image"] == 0
