"""What `/generate/check` tells a waiting client (queue position, wait time, is_possible) and
when a silent worker counts as offline, in both storage modes."""

from __future__ import annotations

from typing import Any

from tests.api.conftest import WORKER_MODEL, Horde, HordeFactory

BIG = {"width": 512, "height": 512, "steps": 30}


def _estimates(horde: Horde, request_ids: list[str]) -> list[tuple[int, int]]:
    return [
        (check["queue_position"], check["wait_time"])
        for check in (horde.check(rid) for rid in request_ids)
    ]


def test_queue_position_and_wait_time_fall_as_earlier_requests_are_popped(
    horde: Horde,
) -> None:
    key = horde.user("volunteer")
    horde.pop(key, name="gpu-a")  # one capable worker online, nothing to do yet
    first, second, third = (horde.request(params=BIG)["id"] for _ in range(3))

    waiting = _estimates(horde, [first, second, third])
    assert [position for position, _ in waiting] == [0, 1, 2]
    waits = [wait for _, wait in waiting]
    assert 0 < waits[0] < waits[1] < waits[2], waits

    job = horde.pop(key, name="gpu-a")  # takes the first request's image
    after_pop = _estimates(horde, [first, second, third])
    assert [position for position, _ in after_pop] == [0, 0, 1]
    assert after_pop[1][1] < waits[1] and after_pop[2][1] < waits[2], (waits, after_pop)
    assert after_pop[0][1] > 0, "an image being generated is not finished yet"

    # A second capable worker comes online (its blacklist makes this pop come back empty, so
    # the queue itself is unchanged): the same queue is shared, the estimates drop.
    idle = horde.pop(horde.user("helper"), name="gpu-b", blacklist=["cat"])
    assert idle["id"] is None and idle["skipped"]["blacklist"] == 2
    two_workers = _estimates(horde, [second, third])
    assert [position for position, _ in two_workers] == [0, 1]
    assert two_workers[0][1] < after_pop[1][1] and two_workers[1][1] < after_pop[2][1]

    assert horde.submit(key, job["id"]).status_code == 200
    done = horde.check(first)
    assert done["done"] and (done["queue_position"], done["wait_time"]) == (0, 0)


def _worker(horde: Horde, name: str) -> dict[str, Any]:
    reply = horde.client.get(f"/api/v2/workers/name/{name}")
    assert reply.status_code == 200, reply.text
    worker = dict(reply.json())
    # As on the public horde, the list holds only the workers online now.
    listed = [w["name"] for w in horde.client.get("/api/v2/workers").json()]
    assert (name in listed) == worker["online"]
    return worker


def test_worker_is_offline_after_the_configured_silence(make_horde: HordeFactory) -> None:
    horde = make_horde(worker_offline_seconds=30)
    key = horde.user("volunteer")
    horde.pop(key, name="quiet-gpu")
    rid = horde.request()["id"]
    assert _worker(horde, "quiet-gpu")["online"]
    assert horde.check(rid)["is_possible"]

    horde.clock.advance(30)
    assert _worker(horde, "quiet-gpu")["online"], "online up to the configured silence"
    horde.clock.advance(1)
    assert not _worker(horde, "quiet-gpu")["online"]
    # The live-worker list is cached for a second of real time; re-read it now.
    horde.ctx.live_workers.invalidate()
    check = horde.check(rid)
    assert not check["is_possible"] and check["waiting"] == 1

    horde.pop(key, name="quiet-gpu")  # a pop is a sign of life
    assert _worker(horde, "quiet-gpu")["online"]
    assert horde.check(rid)["processing"] == 1


def test_queue_position_counts_every_image_a_capable_worker_takes_first(horde: Horde) -> None:
    """Across tiers and size classes: a trusted user's images in another queue come first for
    the worker that could take ours; images no such worker could take do not count."""
    volunteer = horde.user("volunteer")
    trusted = horde.user("studio", trusted=True)
    registered = horde.user("artist")
    horde.pop(volunteer, name="gpu", max_pixels=1024 * 1024)  # the worker that takes ours
    horde.pop(volunteer, name="other-gpu", models=["other-model"])  # serves only another model
    ours = horde.request(
        apikey=registered, models=[WORKER_MODEL], params={"width": 64, "height": 64}
    )["id"]
    # A higher tier, another size class: the worker takes these first.
    horde.request(apikey=trusted, params={"n": 3, "width": 768, "height": 768})
    # Same tier, older than ours? No: newer, so behind us.
    horde.request(apikey=registered, params={"n": 2, "width": 512, "height": 512})
    # Another model, which the worker that takes ours does not serve: it never delays ours.
    horde.request(apikey=trusted, models=["other-model"], params={"n": 4})
    check = horde.check(ours)
    assert check["queue_position"] == 3, check
    assert horde.pop(volunteer, name="gpu", max_pixels=1024 * 1024)["payload"]["width"] == 768
    assert horde.check(ours)["queue_position"] == 2
