"""A pop's reply can be lost: a retried pop with the same nonce gets the same images back, and a
lease whose reply never left comes back within the pickup window (never to two workers)."""

from __future__ import annotations

from horde_api.queue.pop import Claim, WorkerOffer, claim_job
from tests.api.conftest import WORKER_MODEL, Horde


def _offer(horde: Horde, key: str, name: str) -> WorkerOffer:
    """The offer the API would build for this worker (registering it by a first pop)."""
    horde.pop(key, name=name)
    worker = horde.ctx.worker_registry[name]
    return WorkerOffer(
        worker_id=worker.worker_id,
        owner_id=worker.owner_id,
        models=[WORKER_MODEL],
        max_pixels=512 * 512,
        nsfw=True,
    )


def test_a_pop_repeated_with_its_nonce_gets_the_same_job(horde: Horde) -> None:
    key = horde.user("volunteer")
    rid = horde.request(params={"n": 2})["id"]
    first = horde.pop(key, nonce="nonce-aaaaaaaa")
    again = horde.pop(key, nonce="nonce-aaaaaaaa")
    assert again["ids"] == first["ids"] and again["r2_upload"] == first["r2_upload"]
    assert horde.check(rid)["processing"] == 1 and horde.check(rid)["waiting"] == 1
    other = horde.pop(key, nonce="nonce-bbbbbbbb")
    assert other["ids"] and other["ids"] != first["ids"]
    assert horde.submit(key, first["id"]).status_code == 200
    # Once its job is submitted, the nonce no longer hands anything back.
    assert horde.pop(key, nonce="nonce-aaaaaaaa")["id"] is None


def test_a_repeated_pop_renews_its_leases_up_to_twice_their_ttl(horde: Horde) -> None:
    key = horde.user("volunteer")
    rid = horde.request()["id"]
    first = horde.pop(key, nonce="nonce-renewed")
    ttl = first["ttl"]
    # The reply was lost behind a hung link; the worker learns of its job only now.
    horde.clock.advance(ttl * 0.75)
    again = horde.pop(key, nonce="nonce-renewed")
    assert again["id"] == first["id"] and again["ttl"] == ttl, "a whole ttl again from now"
    horde.clock.advance(ttl * 0.75)
    assert horde.janitor()["leases_requeued"] == 0, "the renewed lease is alive past its first ttl"
    # Renewed again, but not past twice the ttl from the first pop: 0.5 ttl are left.
    last = horde.pop(key, nonce="nonce-renewed")
    assert last["id"] == first["id"] and last["ttl"] == int(ttl * 0.5)
    horde.clock.advance(ttl * 0.5 + 1)
    assert horde.janitor()["leases_requeued"] == 1
    assert horde.check(rid)["restarted"] == 1
    assert horde.pop(key, nonce="nonce-renewed")["id"] != first["id"], "the expired lease is gone"


def test_a_lease_granted_before_leases_recorded_their_ttl_is_renewed_by_its_first_expiry(
    horde: Horde,
) -> None:
    key = horde.user("volunteer")
    horde.request()
    first = horde.pop(key, nonce="nonce-upgraded")
    lease_key = horde.ctx.keys.lease(first["id"])
    horde.ctx.redis.hdel(lease_key, "ttl")  # as written by the pop script before this field
    horde.clock.advance(first["ttl"] * 0.75)
    again = horde.pop(key, nonce="nonce-upgraded")
    assert again["id"] == first["id"] and again["ttl"] == first["ttl"]
    assert float(horde.ctx.redis.hget(lease_key, "ttl")) == first["ttl"]


def test_a_lease_whose_reply_never_left_comes_back_within_the_pickup_window(
    make_horde,  # type: ignore[no-untyped-def]
) -> None:
    horde = make_horde(pop_pickup_seconds=5)
    key = horde.user("volunteer")
    offer = _offer(horde, key, "crashed")
    rid = horde.request()["id"]
    # What a pop does before an API process dies without replying: the lease is committed.
    lost = claim_job(horde.ctx.redis, horde.ctx.keys, offer, horde.ctx.lease_policy, horde.clock())
    assert isinstance(lost, Claim) and horde.check(rid)["processing"] == 1
    horde.clock.advance(4)
    horde.janitor()
    assert horde.check(rid)["processing"] == 1, "not before the pickup window"
    horde.clock.advance(2)
    assert horde.janitor()["unsent_requeued"] == 1
    check = horde.check(rid)
    assert (check["waiting"], check["processing"], check["restarted"]) == (1, 0, 0)
    served = horde.pop(key, name="rescuer")
    assert served["id"] is not None
    # The lost lease is dead: a late submit through it is refused, the image is done once.
    late = horde.submit(key, lost.lease_ids[0])
    assert late.status_code == 400 and late.json()["rc"] == "AbortedGen"
    assert horde.submit(key, served["id"]).status_code == 200
    assert horde.check(rid)["finished"] == 1


def test_a_lease_whose_reply_left_stays_with_its_worker(make_horde) -> None:  # type: ignore[no-untyped-def]
    horde = make_horde(pop_pickup_seconds=5)
    key = horde.user("volunteer")
    rid = horde.request()["id"]
    job = horde.pop(key)  # the reply is sent: the lease is no longer unsent
    horde.clock.advance(60)
    assert horde.janitor()["unsent_requeued"] == 0
    assert horde.check(rid)["processing"] == 1
    assert horde.submit(key, job["id"]).status_code == 200


def test_progress_shows_the_worker_has_the_job(make_horde) -> None:  # type: ignore[no-untyped-def]
    horde = make_horde(pop_pickup_seconds=5)
    key = horde.user("volunteer")
    offer = _offer(horde, key, "quiet")
    rid = horde.request()["id"]
    claim = claim_job(horde.ctx.redis, horde.ctx.keys, offer, horde.ctx.lease_policy, horde.clock())
    assert isinstance(claim, Claim)
    reply = horde.client.post(
        "/api/v2/generate/progress",
        json={"id": claim.lease_ids[0], "step": 1, "total": 4},
        headers={"apikey": key},
    )
    assert reply.status_code == 200, reply.text
    horde.clock.advance(60)
    assert horde.janitor()["unsent_requeued"] == 0
    assert horde.check(rid)["processing"] == 1
