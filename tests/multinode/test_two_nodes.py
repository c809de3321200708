"""Two API nodes on two hosts, one Redis, one PostgreSQL, one bucket: an artist talks to node A
only, workers to node B only. Requests go end to end across the nodes, a long-poll on A wakes
when B's worker submits, and SIGKILLing A mid-load loses nothing."""

from __future__ import annotations

import io
import threading
import time
from collections.abc import Sequence
from typing import Any

import httpx
import pytest
from PIL import Image
from redis import Redis

from tests.faults.horde_client import HordeClient, SimWorker, wait_until
from tests.faults.images import webp_b64
from tests.multinode.conftest import Cluster

pytestmark = [pytest.mark.redis, pytest.mark.postgres, pytest.mark.slow]

LONG_POLL_SECONDS = 20.0
# Generous: a wake crosses Redis pub/sub and two forwarders on a small shared machine.
WAKE_BOUND_SECONDS = 5.0
DEADLINE_SECONDS = 40.0


class Follower:
    """An artist's client that follows requests to their end with `check?wait=` long-polls.
    A node that stops answering (the connection dies, or is refused, or it answers 5xx) is left
    for the next one in `apis`: the horde's state is shared, so any node answers for any
    request."""

    def __init__(self, apis: Sequence[str], apikey: str, request_ids: Sequence[str]) -> None:
        self.apis = list(apis)
        self.request_ids = list(request_ids)
        self.http = httpx.Client(headers={"apikey": apikey, "Client-Agent": "two-nodes:1:none"})
        self.final: dict[str, dict[str, Any]] = {}
        self.failovers = 0
        self._thread = threading.Thread(target=self._run, name="follower", daemon=True)

    def start(self) -> Follower:
        self._thread.start()
        return self

    def join(self, timeout: float) -> None:
        self._thread.join(timeout)
        self.http.close()
        assert not self._thread.is_alive(), f"still following after {timeout} s: {self.final}"

    def _run(self) -> None:
        node = 0
        deadline = time.monotonic() + DEADLINE_SECONDS
        for request_id in self.request_ids:
            while time.monotonic() < deadline:
                url = f"{self.apis[node]}/generate/check/{request_id}"
                try:
                    reply = self.http.get(url, params={"wait": 10}, timeout=LONG_POLL_SECONDS + 5)
                except httpx.TransportError:
                    reply = None
                if reply is None or reply.status_code >= 500:
                    self.failovers += 1
                    node = (node + 1) % len(self.apis)
                    continue
                body = reply.json()
                if reply.status_code == 200 and body["done"]:
                    self.final[request_id] = body
                    break


def queue(client: HordeClient, n: int) -> str:
    return client.request_id("two nodes", params={"n": n}, r2=True)


def test_a_long_poll_on_node_a_wakes_when_a_worker_on_node_b_submits(cluster: Cluster) -> None:
    images = 6
    with (
        HordeClient(cluster.a.api, cluster.artist_key) as artist,
        HordeClient(cluster.b.api, cluster.volunteer_key) as worker,
    ):
        request_id = queue(artist, images)
        # Every image out to a worker on B first (one name each: a worker holds one job), so
        # from here on the request changes only by submits.
        jobs = [worker.pop(f"node-b-worker-{i}").json().get("id") for i in range(images)]
        assert all(jobs), f"B did not find every job of the request queued on A: {jobs}"
        woke: dict[str, Any] = {}
        returned = threading.Event()

        def long_poll() -> None:
            started = time.monotonic()
            reply = artist.call(
                "GET",
                f"/generate/check/{request_id}",
                params={"wait": LONG_POLL_SECONDS},
                timeout=LONG_POLL_SECONDS + 10,
            )
            woke.update(reply=reply, at=time.monotonic(), seconds=time.monotonic() - started)
            returned.set()

        threading.Thread(target=long_poll, daemon=True).start()
        # One submit at a time on B until the long-poll on A comes back. A long-poll whose
        # request is not done returns before its wait only when the request changes, so an
        # early return with images still out proves a submit on B woke A: the first one, or
        # a later one if the poll reached A late.
        submitted_at, left = 0.0, list(jobs)
        while left and not returned.is_set():
            job_id = left.pop()
            submit = worker.submit(job_id, generation=webp_b64(64, 64, tag=job_id))
            assert submit.status_code == 200, submit.text
            submitted_at = time.monotonic()
            returned.wait(WAKE_BOUND_SECONDS)
        assert returned.is_set(), "the long-poll on A never came back"
        body = woke["reply"].json()
        assert woke["reply"].status_code == 200, body
        assert not body["done"] and 1 <= body["finished"] < images, body
        assert woke["seconds"] < LONG_POLL_SECONDS, "it ran out its wait: no wake reached A"
        assert woke["at"] - submitted_at < WAKE_BOUND_SECONDS

        # The rest, then the whole request as A tells it.
        for job_id in left:
            assert worker.submit(job_id).status_code == 200
        status = artist.wait_done(request_id, timeout=DEADLINE_SECONDS)
    assert status["done"] and not status["faulted"]
    assert len(status["generations"]) == images
    assert {g["worker_name"] for g in status["generations"]} == {
        f"node-b-worker-{i}" for i in range(images)
    }


def test_killing_node_a_mid_load_loses_nothing(cluster: Cluster) -> None:
    requests, images = 10, 2
    a, b = cluster.a, cluster.b
    with (
        HordeClient(a.api, cluster.artist_key) as artist,
        HordeClient(b.api, cluster.volunteer_key) as held_worker,
    ):
        request_ids = [queue(artist, images) for _ in range(requests)]
        # A job popped before the kill and delivered after it: load A's death must not touch.
        held = held_worker.pop("holder").json()
        assert held.get("id"), held
        followers = [
            Follower([a.api, b.api], cluster.artist_key, request_ids[i::3]).start()
            for i in range(3)
        ]
        workers = [
            SimWorker(
                b.api, cluster.volunteer_key, f"sim-{i}", upload_verify=str(cluster.tls.ca_file)
            )
            for i in range(2)
        ]
        for sim in workers:
            sim.start()
        try:
            wait_until(lambda: sum(len(s.record.submitted) for s in workers) >= 6, 20)
            a.kill()
            left = [
                rid
                for rid in request_ids
                if not held_worker.check(rid).json()["done"]  # asked of B: A is dead
            ]
            assert left, "the load was over before A died: the kill proved nothing"
            assert held_worker.submit(held["id"]).status_code == 200
            a.start()  # A comes back on the same address and settings
            for follower in followers:
                follower.join(DEADLINE_SECONDS)
        finally:
            for sim in workers:
                sim.stop()

        assert sum(f.failovers for f in followers) >= 1, "no follower was cut off by the kill"
        generation_ids: list[str] = []
        for rid in request_ids:
            status = artist.status(rid).json()  # asked of A, restarted
            assert status["done"] and not status["faulted"], (rid, status)
            assert len(status["generations"]) == images, (rid, status)
            generation_ids += [g["id"] for g in status["generations"]]
    popped = [job for sim in workers for job in sim.record.popped] + [held["id"]]
    assert len(popped) == len(set(popped)) == requests * images, "a job was handed out twice"
    assert all(not s.record.duplicate and not s.record.aborted for s in workers)
    assert len(set(generation_ids)) == len(generation_ids) == requests * images
    # Every job's result is in the one bucket, named by its job id, whichever node wrote it.
    stored = cluster.bucket.keys()
    results = {key.rsplit("/", 1)[-1] for key in stored if "/uploads/" not in key}
    assert {f"{job}.webp" for job in popped} <= results
    link = status["generations"][0]["img"]
    assert link.startswith(cluster.bucket.settings["results_s3_endpoint_url"]), link
    fetched = httpx.get(link, verify=str(cluster.tls.ca_file))
    assert fetched.status_code == 200
    assert Image.open(io.BytesIO(fetched.content)).format == "WEBP"


@pytest.mark.parametrize(
    ("service", "says", "following"),
    # Following a request (check, status) needs Redis and the bucket only: an artist still sees
    # it move on while the user database is down.
    [("postgres", "user database", 200), ("redis", "queue store (Redis)", 503)],
    ids=["postgresql-down", "redis-down"],
)
def test_a_shared_store_outage_is_a_503_on_both_nodes_and_loses_nothing(
    cluster: Cluster, service: str, says: str, following: int
) -> None:
    links = cluster.links(service)
    with (
        HordeClient(cluster.a.api, cluster.artist_key) as artist,
        HordeClient(cluster.b.api, cluster.volunteer_key) as worker,
    ):
        before = queue(artist, 2)
        for link in links:  # both nodes lose it at once, as when the store itself goes down
            link.drop()
        try:
            calls = [
                lambda: artist.generate({"prompt": "in the outage", "params": {"n": 1}}),
                lambda: worker.pop("outage-worker"),
            ]
            for call in calls:
                # A key checked within the last second is still cached: wait for the cache to go.
                reply = wait_until(lambda call=call: (r := call()).status_code == 503 and r, 15)
                assert reply.json()["rc"] == "ServiceUnavailable", reply.text
                assert says in reply.json()["message"], reply.text
            assert artist.check(before).status_code == following
            assert artist.status(before).status_code == following
        finally:
            for link in links:
                link.pass_through()
        after = queue(artist, 2)
        with SimWorker(cluster.b.api, cluster.volunteer_key, "after-outage"):
            for request_id in (before, after):
                status = artist.wait_done(request_id, timeout=DEADLINE_SECONDS)
                assert not status["faulted"] and len(status["generations"]) == 2, status


def test_a_node_that_lost_redis_while_the_other_went_on_still_answers_its_long_polls(
    cluster: Cluster, redis_url: str
) -> None:
    """Node A loses Redis for a moment while B's worker finishes the request A's artist is
    long-polling: the event published then never reaches A. The long-poll must still answer,
    with the request done, as soon as A has Redis again, not when its wait runs out."""
    link_a = cluster.redis_links["a"]
    observer = Redis.from_url(redis_url)
    activity = f"{cluster.redis_prefix}activity"
    with (
        HordeClient(cluster.a.api, cluster.artist_key) as artist,
        HordeClient(cluster.b.api, cluster.volunteer_key) as worker,
    ):
        request_id = queue(artist, 1)
        job = worker.pop("node-b-worker").json()["id"]
        last_read = observer.zscore(activity, request_id)
        answers: list[tuple[float, int, dict[str, Any]]] = []

        def follow() -> None:
            # As a client does: an early answer with nothing new (or a 503 while A is cut off)
            # is followed by the next long-poll.
            while True:
                reply = artist.call(
                    "GET",
                    f"/generate/check/{request_id}",
                    params={"wait": LONG_POLL_SECONDS},
                    timeout=LONG_POLL_SECONDS + 10,
                )
                answers.append((time.monotonic(), reply.status_code, reply.json()))
                if reply.status_code == 200 and reply.json()["done"]:
                    return

        poller = threading.Thread(target=follow, daemon=True)
        poller.start()
        # A check counts as the request's activity, and listens before it reads: once its read
        # shows in Redis, a long-poll is waiting on A.
        wait_until(lambda: observer.zscore(activity, request_id) != last_read, 10)
        link_a.drop()
        try:
            wait_until(lambda: link_a.live_connections() == 0, 10)  # A's listener is cut too
            assert worker.submit(job).status_code == 200  # B goes on; A hears nothing of it
        finally:
            link_a.pass_through()
        back = time.monotonic()
        poller.join(LONG_POLL_SECONDS + 10)
    observer.close()
    assert not poller.is_alive(), f"no long-poll answered done: {answers}"
    done_at = answers[-1][0]
    assert done_at - back < WAKE_BOUND_SECONDS, (
        "a long-poll waited out its wait after Redis came back"
    )
