"""A request's queue position: the waiting images a capable worker would take before its first.

Counted over every queue (not only the request's own): images of a higher priority (tier, then
kudos band) in any queue that some worker able to take this request could also take, plus the
older images of its own priority in such queues. Each queue keeps a sorted set of its waiting
images by age (`RedisKeys.waiting_index`), so a position costs one ZCARD or ZCOUNT per active
queue: it does not grow with the number of waiting images (bench/bench_pop_depth.py measures it
at 10 000).
"""

from __future__ import annotations

from redis import Redis

from horde_api.queue.descriptors import parse_descriptor
from horde_api.queue.keys import RedisKeys
from horde_api.queue.requests import RequestView
from horde_api.queue.workers import LiveWorker


def images_ahead(
    redis: Redis, keys: RedisKeys, view: RequestView, capable: list[LiveWorker]
) -> int:
    """Waiting images that a worker able to take this request would take before its first
    waiting image; 0 when none of its images waits."""
    if view.first_waiting_seq < 0:
        return 0
    counted: list[tuple[str, bool]] = []  # (queue, whole queue ahead: a higher priority)
    for raw in redis.smembers(keys.active_queues):
        name = raw.decode()
        descriptor = parse_descriptor(name, keys.rq_queue_name(""))
        if descriptor is None or descriptor.priority > view.priority:
            continue
        if name != view.queue and not any(w.could_take_queue(descriptor) for w in capable):
            continue
        counted.append((name, descriptor.priority < view.priority))
    if not counted:
        return 0
    with redis.pipeline(transaction=False) as pipe:
        for name, whole in counted:
            index = keys.waiting_index(name)
            if whole:
                pipe.zcard(index)
            else:
                pipe.zcount(index, "-inf", f"({view.first_waiting_seq}")
        return int(sum(pipe.execute()))
