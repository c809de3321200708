"""Kudos as requesters and workers see them: charged and earned when images finish, settled into
the database by the janitor, in both storage modes (real Redis and PostgreSQL in one)."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from horde_api.kudos.ledger import KudosEvent, UserKudos, apply_events
from tests.api.conftest import Horde

OUR_WORKER = "krita-horde-worker:0.3.0:https://example.org/krita-horde"
# 64×64 at 4 steps: price 0.49 (0.1232 × 4), each finished image burns 1.49, the request 1 more.
SMALL = {"width": 64, "height": 64, "steps": 4}


def _me(horde: Horde, name: str) -> dict[str, Any]:
    reply = horde.client.get("/api/v2/find_user", headers={"apikey": horde.user(name)})
    assert reply.status_code == 200, reply.text
    return reply.json()


def _finish(horde: Horde, request_id: str, images: int, **pop: Any) -> list[Any]:
    worker_key = horde.user("volunteer")
    replies = []
    for _ in range(images):
        job = horde.pop(worker_key, **pop)
        assert job["id"], job
        replies.append(horde.submit(worker_key, job["id"], **pop.pop("submit", {})).json())
    assert horde.check(request_id)["done"]
    return replies


def test_a_finished_request_charges_its_requester_and_pays_its_worker(horde: Horde) -> None:
    alice = horde.user("alice")
    horde.give_kudos("alice", 100)
    queued = horde.request(alice, params={**SMALL, "n": 2})
    assert queued["kudos"] == 3.98  # 1 + 2 × 1.49, as the public horde quotes it
    replies = _finish(horde, queued["id"], 2, bridge_agent=OUR_WORKER)
    assert replies == [{"reward": 0.49}, {"reward": 0.49}]
    assert horde.check(queued["id"])["kudos"] == 3.98
    horde.settle_kudos()

    assert horde.balance("alice") == 96.02
    details = _me(horde, "alice")["kudos_details"]
    assert (details["accumulated"], details["gifted"], details["received"], details["admin"]) == (
        -3.98,
        0,
        0,
        100,
    )
    assert horde.balance("volunteer") == 0.98
    (worker,) = horde.client.get("/api/v2/workers").json()
    assert worker["kudos_rewards"] == 0.98
    assert worker["kudos_details"]["generated"] == 0.98


def test_other_worker_software_earns_three_quarters(horde: Horde) -> None:
    alice = horde.user("alice")
    queued = horde.request(alice, params=SMALL)
    (reply,) = _finish(horde, queued["id"], 1)  # bridge_agent "unknown:0:unknown"
    assert reply == {"reward": 0.49}  # the image's price, as the public horde replies
    horde.settle_kudos()
    assert horde.balance("volunteer") == 0.37  # 0.49 × 0.75
    assert horde.balance("alice") == -2.49  # no floor: the balance may go below zero


@pytest.mark.parametrize("state", ["censored", "csam"])
def test_a_withheld_image_pays_no_reward_and_costs_only_the_tax(horde: Horde, state: str) -> None:
    alice = horde.user("alice")
    queued = horde.request(alice, params=SMALL)
    worker_key = horde.user("volunteer")
    job = horde.pop(worker_key, bridge_agent=OUR_WORKER)
    assert horde.submit(worker_key, job["id"], state=state).json() == {"reward": 0}
    horde.settle_kudos()
    assert horde.balance("volunteer") == 0
    assert horde.balance("alice") == -2.0  # activation tax + the censored image's 1
    assert horde.check(queued["id"])["kudos"] == 2.0


def test_anonymous_requests_move_no_balance(horde: Horde) -> None:
    queued = horde.request(params=SMALL)
    _finish(horde, queued["id"], 1, bridge_agent=OUR_WORKER)
    horde.settle_kudos()
    assert horde.balance("volunteer") == 0.49
    with horde.ctx.sessions() as session:
        from horde_api.db.models import KudosEntry

        assert {entry.kind for entry in session.query(KudosEntry)} == {"accumulated"}
        assert session.query(KudosEntry).count() == 1


def test_settling_an_event_twice_changes_a_balance_once(horde: Horde) -> None:
    event = KudosEvent("admin:once", horde.user_id("alice"), 500, UserKudos.ADMIN)
    with horde.ctx.sessions() as session:
        assert apply_events(session, [event, event]) == 1
        session.commit()
        assert apply_events(session, [event]) == 0
        session.commit()
    # The same event left twice in the queue (a settlement that crashed before removing its
    # batch) is applied once.
    again = KudosEvent("admin:twice", event.user_id, 700, UserKudos.ADMIN)
    horde.ctx.redis.rpush(horde.ctx.keys.kudos_events, again.to_json(), again.to_json())
    horde.settle_kudos()
    assert horde.balance("alice") == 12.0


def test_an_unreadable_event_is_kept_aside_and_does_not_block_the_rest(horde: Horde) -> None:
    good = KudosEvent("admin:good", horde.user_id("alice"), 300, UserKudos.ADMIN)
    horde.ctx.redis.rpush(horde.ctx.keys.kudos_events, b"{not json", good.to_json())
    horde.settle_kudos()
    assert horde.balance("alice") == 3.0
    assert horde.ctx.redis.lrange(horde.ctx.keys.kudos_events_bad, 0, -1) == [b"{not json"]


def test_richer_requesters_are_served_first_and_debtors_last(horde: Horde) -> None:
    for name, kudos in (("poor", 0), ("rich", 5000), ("middle", 50), ("debtor", -10)):
        horde.user(name)
        if kudos:
            horde.give_kudos(name, kudos)
    order = ["debtor", "poor", "anonymous", "middle", "rich"]
    ids = {}
    for name in order:  # queued in this order: oldest first
        key = "0000000000" if name == "anonymous" else horde.user(name)
        ids[horde.request(key, params=SMALL)["id"]] = name
    worker_key = horde.user("volunteer")
    served = []
    for _ in order:
        job = horde.pop(worker_key)
        assert horde.submit(worker_key, job["id"]).status_code == 200
        served.append(next(n for rid, n in ids.items() if horde.check(rid)["done"]
                           and n not in served))  # fmt: skip
    assert served == ["rich", "middle", "poor", "anonymous", "debtor"]
    check = horde.check(next(rid for rid, n in ids.items() if n == "debtor"))
    assert check["done"]


def test_a_request_that_needs_kudos_up_front(horde: Horde) -> None:
    alice = horde.user("alice")
    body = {"prompt": "a cat", "params": {**SMALL, "steps": 60}}
    refused = horde.client.post("/api/v2/generate/async", json=body, headers={"apikey": alice})
    assert refused.status_code == 403
    assert refused.json()["rc"] == "KudosUpfront"
    assert "60 steps, over 50" in refused.json()["message"]
    assert "allow_downgrade" in refused.json()["message"]

    downgraded = horde.request(alice, **body, allow_downgrade=True)
    job = horde.pop(horde.user("volunteer"))
    assert job["payload"]["ddim_steps"] == 30
    assert downgraded["kudos"] == 1 + 1 + 3.7  # 30 steps: price 3.70

    horde.give_kudos("alice", 100)
    paid = horde.client.post("/api/v2/generate/async", json=body, headers={"apikey": alice})
    assert paid.status_code == 202, paid.text


def test_workers_that_require_upfront_kudos_take_only_covered_images(horde: Horde) -> None:
    horde.user("alice")
    horde.user("rich")
    horde.give_kudos("rich", 100)
    poor = horde.request(horde.user("alice"), params=SMALL)["id"]
    covered = horde.request(horde.user("rich"), params=SMALL)["id"]
    job = horde.pop(horde.user("volunteer"), require_upfront_kudos=True)
    assert horde.submit(horde.user("volunteer"), job["id"]).status_code == 200
    assert horde.check(covered)["done"] and not horde.check(poor)["done"]
    assert horde.pop(horde.user("volunteer"), require_upfront_kudos=True)["id"] is None


def test_uptime_earns_its_owner_kudos_every_ten_minutes_online(horde: Horde) -> None:
    worker_key = horde.user("volunteer")
    for _ in range(13):  # 13 check-ins 50 s apart: 600 s online
        horde.pop(worker_key)
        horde.clock.advance(50)
    horde.settle_kudos()
    assert horde.balance("volunteer") == 52.0  # 50 + 2 for its one model
    horde.clock.advance(400)  # silent for longer than HORDE_WORKER_OFFLINE_SECONDS
    for _ in range(12):
        horde.pop(worker_key)
        horde.clock.advance(50)
    horde.settle_kudos()
    assert horde.balance("volunteer") == 52.0, "time offline earns nothing"
    horde.pop(worker_key)
    horde.settle_kudos()
    assert horde.balance("volunteer") == 104.0
    (worker,) = horde.client.get("/api/v2/workers").json()
    assert worker["kudos_details"]["uptime"] == 104


def test_many_workers_submitting_at_once_lose_and_double_no_kudos(horde: Horde) -> None:
    """Eight workers of four owners finish 32 images at once; after settlement every kudos is
    where the rules put it: the requesters paid exactly what the owners earned plus the burns'
    surplus, and the ledger holds each movement once."""
    requesters = [f"artist{i}" for i in range(4)]
    owners = [f"owner{i}" for i in range(4)]
    request_ids = [
        horde.request(horde.user(name), params={**SMALL, "n": 8})["id"] for name in requesters
    ]
    owner_keys = [horde.user(name) for name in owners]
    jobs = []
    for index in range(32):
        key = owner_keys[index % 4]
        job = horde.pop(key, name=f"w{index % 8}", bridge_agent=OUR_WORKER)
        jobs.append((key, job["id"]))

    def submit(job: tuple[str, str]) -> int:
        return horde.submit(*job).status_code

    with ThreadPoolExecutor(max_workers=8) as pool:
        assert set(pool.map(submit, jobs)) == {200}
    assert all(horde.check(rid)["done"] for rid in request_ids)
    horde.settle_kudos()
    assert [horde.balance(name) for name in requesters] == [-(1 + 8 * 1.49)] * 4
    assert [horde.balance(name) for name in owners] == [8 * 0.49] * 4
    with horde.ctx.sessions() as session:
        from sqlalchemy import func, select

        from horde_api.db.models import KudosEntry

        total = session.scalar(select(func.sum(KudosEntry.cents)))
        count = session.scalar(select(func.count(KudosEntry.id)))
    assert total == -4 * (100 + 8 * 149) + 32 * 49
    assert count == 4 + 32 + 32  # taxes, burns, rewards
