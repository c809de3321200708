"""Putting a validated request into the queue: one rq Job per image, in its descriptor's queue."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass

from redis import Redis
from rq.job import Job
from rq.queue import Queue
from rq.serializers import JSONSerializer

from horde_api.queue.descriptors import (
    MODEL_SEPARATOR,
    SEVERAL_MODELS,
    Tier,
    accurate_steps,
    counted_models,
    descriptor,
    kind_of,
    models_part,
    needs_of,
)
from horde_api.queue.keys import RedisKeys
from horde_api.queue.rate_limits import RateCounter, RateLimitExceeded
from horde_api.queue.rq_jobs import generated_by_horde_worker
from horde_api.queue.wants import wants_json, wants_of
from horde_protocol import GenerationInput
from horde_protocol.ids import new_id
from horde_protocol.seeds import image_seeds


@dataclass(frozen=True)
class Requester:
    """Who asks: `user_key` names the in-flight counter (user id, or `anon:<ip>`); `user_id` is
    0 for the anonymous user."""

    user_key: str
    tier: Tier
    concurrency: int
    user_id: int = 0


@dataclass(frozen=True)
class Routing:
    """Which workers may take the request's images, beyond what its queue says."""

    workers: tuple[str, ...] = ()
    workers_are_blacklist: bool = False
    trusted_workers: bool = False
    fast_workers_only: bool = False
    extra_slow_workers: bool = False

    def as_json(self) -> str | None:
        """The job hash's `route` field, or None when any worker may take the images."""
        route: dict[str, object] = {}
        if self.workers:
            route["wl"] = list(self.workers)
            route["wlb"] = self.workers_are_blacklist
        if self.trusted_workers:
            route["tw"] = True
        if self.fast_workers_only:
            route["fast"] = True
        if self.extra_slow_workers:
            route["xslow"] = True
        return json.dumps(route, separators=(",", ":")) if route else None


@dataclass(frozen=True)
class SourceImages:
    """Validated base64 images as the worker will receive them."""

    image: str | None = None
    mask: str | None = None


class ConcurrencyExceeded(Exception):
    def __init__(self, in_flight: int, limit: int) -> None:
        super().__init__(f"{in_flight} images in flight, limit {limit}")
        self.in_flight = in_flight
        self.limit = limit


class QueueWriter:
    """Creates requests and their rq jobs; rq Queue objects are cached per name."""

    def __init__(self, redis: Redis, keys: RedisKeys) -> None:
        self.redis = redis
        self.keys = keys
        self._queues: dict[str, Queue] = {}

    def _queue(self, name: str) -> Queue:
        queue = self._queues.get(name)
        if queue is None:
            queue = Queue(name, connection=self.redis, serializer=JSONSerializer)
            self._queues[name] = queue
        return queue

    def enqueue_request(
        self,
        spec: GenerationInput,
        requester: Requester,
        sources: SourceImages,
        kudos: float,
        now: float,
        rate_counters: Sequence[RateCounter] = (),
        routing: Routing = Routing(),
    ) -> str:
        n = spec.params.n
        keys = self.keys
        in_flight_key = keys.user_in_flight(requester.user_key)
        with self.redis.pipeline(transaction=False) as pipe:
            for counter in rate_counters:
                pipe.incr(counter.key)
                pipe.expire(counter.key, counter.keep_seconds)
            pipe.incrby(in_flight_key, n)
            pipe.incrby(keys.sequence, n)
            named = sorted(set(spec.models))
            if named:
                pipe.smismember(keys.known_models, named)
            results = pipe.execute()
        announced = results.pop() if named else []
        *counts, in_flight, last_seq = results
        known = {name for name, is_known in zip(named, announced, strict=True) if is_known}
        for index, counter in enumerate(rate_counters):
            if counts[2 * index] > counter.limit:
                self.redis.decrby(in_flight_key, n)
                raise RateLimitExceeded(counter.label)
        if in_flight > requester.concurrency:
            self.redis.decrby(in_flight_key, n)
            raise ConcurrencyExceeded(in_flight - n, requester.concurrency)

        request_id = new_id()
        pixels = spec.params.width * spec.params.height
        kind = kind_of(sources.image is not None, spec.source_processing)
        needs = needs_of(spec.params)
        part = models_part(spec.models, known)
        queue_name = keys.rq_queue_name(
            descriptor(requester.tier, pixels, kind, spec.nsfw, part, needs)
        )
        steps_of_work = accurate_steps(spec.params, kind)
        megapixelsteps = pixels * spec.params.steps / 1_000_000
        route = routing.as_json()
        counted = counted_models(spec.models)
        # The shared queue's images are matched to workers by their model names.
        shared_queue_fields = (
            {"models": MODEL_SEPARATOR.join(named)} if part == SEVERAL_MODELS else {}
        )
        wants = wants_of(spec.params)
        wants_field = wants_json(wants)
        stored_spec = {
            "prompt": spec.prompt,
            "params": spec.params.model_dump(mode="json"),
            "models": spec.models,
            "source_processing": spec.source_processing.value,
            "kind": kind,
            "needs": needs,
            "wants": wants,
            "pixels": pixels,
            "nsfw": spec.nsfw,
            "censor_nsfw": spec.censor_nsfw,
            "r2": spec.r2,
            "shared": spec.shared,
        }
        first_seq = last_seq - n + 1
        seeds = image_seeds(spec.params.seed, n, spec.params.seed_variation)
        job_ids = [new_id() for _ in range(n)]
        queue = self._queue(queue_name)
        prompt_lower = spec.prompt.lower()
        with self.redis.pipeline(transaction=True) as pipe:
            pipe.multi()  # rq's enqueue_job expects a caller's pipeline in MULTI mode
            pipe.hset(
                keys.request(request_id),
                mapping={
                    "state": "active",
                    "owner": requester.user_key,
                    "tier": int(requester.tier),
                    "n": n,
                    "waiting": n,
                    "processing": 0,
                    "finished": 0,
                    "restarted": 0,
                    "faults": 0,
                    "created": now,
                    "kudos": kudos,
                    "spec": json.dumps(stored_spec),
                    "queue": queue_name,
                    "uid": requester.user_id,
                    "nobatch": int(spec.disable_batching),
                },
            )
            if sources.image is not None:
                source_fields = {"image": sources.image}
                if sources.mask is not None:
                    source_fields["mask"] = sources.mask
                pipe.hset(keys.request_source(request_id), mapping=source_fields)
            pipe.rpush(keys.request_jobs(request_id), *job_ids)
            for index, job_id in enumerate(job_ids):
                pipe.hset(
                    keys.job(job_id),
                    mapping={
                        "req": request_id,
                        "idx": index,
                        "seq": first_seq + index,
                        "px": pixels,
                        "steps": spec.params.steps,
                        "seed": seeds[index],
                        "queue": queue_name,
                        "model": counted,
                        "prompt": prompt_lower,
                        "owner": requester.user_key,
                        "asteps": steps_of_work,
                        "mps": megapixelsteps,
                        "state": "waiting",
                        **({"route": route} if route else {}),
                        **shared_queue_fields,
                        **({"wants": wants_field} if wants_field else {}),
                    },
                )
                job = Job.create(
                    generated_by_horde_worker,
                    args=(request_id, index),
                    id=job_id,
                    connection=self.redis,
                    serializer=JSONSerializer,
                    description=f"image {index + 1}/{n} of horde request {request_id}",
                    timeout=-1,
                    result_ttl=-1,
                )
                queue.enqueue_job(job, pipeline=pipe)
            pipe.sadd(keys.active_queues, queue_name)
            pipe.hincrby(keys.queued_per_model, counted, n)
            pipe.hincrbyfloat(keys.queued_megapixelsteps, counted, n * megapixelsteps)
            pipe.zadd(keys.activity, {request_id: now})
            pipe.hincrby(keys.user_records(requester.user_id), "request_image", n)
            pipe.execute()
        return request_id
