"""Putting a validated request into the queue: one rq Job per image, in its descriptor's queue."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass

from redis import Redis
from redis.client import Pipeline
from redis.exceptions import WatchError
from rq.job import Job
from rq.queue import Queue
from rq.serializers import JSONSerializer

from horde_api.kudos.ledger import KudosEvent, UserKudos, to_cents
from horde_api.kudos.prices import ACTIVATION_TAX, RequestPrice
from horde_api.queue.descriptors import (
    MODEL_SEPARATOR,
    SEVERAL_MODELS,
    Priority,
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
    priority: Priority
    concurrency: int
    user_id: int = 0
    kudos_cents: int = 0  # the balance at the time of the request


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


@dataclass(frozen=True)
class PlannedRequest:
    """Everything a request writes, computed before the transaction that writes it."""

    request_id: str
    n: int
    queue_name: str
    request_fields: dict[str, object]
    job_ids: list[str]
    job_fields: list[dict[str, object]]
    counted_models: str
    megapixelsteps: float


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
        price: RequestPrice,
        now: float,
        rate_counters: Sequence[RateCounter] = (),
        routing: Routing = Routing(),
    ) -> str:
        """Queue the request, or raise RateLimitExceeded / ConcurrencyExceeded having changed
        nothing but the rate counters."""
        n = spec.params.n
        keys = self.keys
        with self.redis.pipeline(transaction=False) as pipe:
            for counter in rate_counters:
                pipe.incr(counter.key)
                pipe.expire(counter.key, counter.keep_seconds)
            # Sequence numbers order images by age; one lost to a refused request is a gap.
            pipe.incrby(keys.sequence, n)
            named = sorted(set(spec.models))
            if named:
                pipe.smismember(keys.known_models, named)
            results = pipe.execute()
        announced = results.pop() if named else []
        *counts, last_seq = results
        for index, counter in enumerate(rate_counters):
            if counts[2 * index] > counter.limit:
                raise RateLimitExceeded(counter.label)
        known = {name for name, is_known in zip(named, announced, strict=True) if is_known}
        plan = self._plan(spec, requester, sources, price, now, routing, known, last_seq - n + 1)
        in_flight_key = keys.user_in_flight(requester.user_key)
        with self.redis.pipeline(transaction=True) as pipe:
            # The user's in-flight count rises in the same transaction that creates the request
            # (WATCH: retried if another request of this user got in between), so no failure
            # or process death can leave it raised for a request that does not exist.
            while True:
                try:
                    pipe.watch(in_flight_key)
                    in_flight = int(pipe.get(in_flight_key) or 0)
                    if in_flight + n > requester.concurrency:
                        raise ConcurrencyExceeded(in_flight, requester.concurrency)
                    pipe.multi()  # rq's enqueue_job expects a caller's pipeline in MULTI mode
                    pipe.incrby(in_flight_key, n)
                    pipe.sadd(keys.in_flight_owners, requester.user_key)
                    self._write(pipe, plan, sources, requester, now)
                    pipe.execute()
                    return plan.request_id
                except WatchError:
                    continue

    def _plan(
        self,
        spec: GenerationInput,
        requester: Requester,
        sources: SourceImages,
        price: RequestPrice,
        now: float,
        routing: Routing,
        known: set[str],
        first_seq: int,
    ) -> PlannedRequest:
        n = spec.params.n
        request_id = new_id()
        pixels = spec.params.width * spec.params.height
        kind = kind_of(sources.image is not None, spec.source_processing)
        needs = needs_of(spec.params, censored=spec.censor_nsfw and not spec.nsfw)
        part = models_part(spec.models, known)
        queue_name = self.keys.rq_queue_name(
            descriptor(requester.priority, pixels, kind, spec.nsfw, part, needs)
        )
        megapixelsteps = pixels * spec.params.steps / 1_000_000
        counted = counted_models(spec.models)
        wants = wants_of(spec.params)
        per_job: dict[str, object] = {
            "req": request_id,
            "px": pixels,
            "steps": spec.params.steps,
            "queue": queue_name,
            "model": counted,
            "prompt": spec.prompt.lower(),
            "owner": requester.user_key,
            "asteps": accurate_steps(spec.params, kind),
            "mps": megapixelsteps,
            "state": "waiting",
            # For workers that require upfront kudos: the requester's balance and the price.
            "bal": requester.kudos_cents,
            "price": to_cents(price.image),
        }
        route = routing.as_json()
        if route:
            per_job["route"] = route
        if part == SEVERAL_MODELS:
            # The shared queue's images are matched to workers by their model names.
            per_job["models"] = MODEL_SEPARATOR.join(sorted(set(spec.models)))
        wants_field = wants_json(wants)
        if wants_field:
            per_job["wants"] = wants_field
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
        seeds = image_seeds(spec.params.seed, n, spec.params.seed_variation)
        return PlannedRequest(
            request_id=request_id,
            n=n,
            queue_name=queue_name,
            request_fields={
                "state": "active",
                "owner": requester.user_key,
                "tier": requester.priority.tier,
                "band": requester.priority.band,
                "n": n,
                "waiting": n,
                "processing": 0,
                "finished": 0,
                "restarted": 0,
                "faults": 0,
                "created": now,
                "kudos": price.total,
                # What each finished image costs its requester (a censored one less), what its
                # worker earns before its bridge factor, and what the request consumed so far.
                "burn_c": to_cents(price.burn),
                "burn0_c": to_cents(price.censored_burn),
                "price_c": to_cents(price.image),
                "consumed_c": to_cents(ACTIVATION_TAX),
                "spec": json.dumps(stored_spec),
                "queue": queue_name,
                "uid": requester.user_id,
                "nobatch": int(spec.disable_batching),
            },
            job_ids=[new_id() for _ in range(n)],
            job_fields=[
                {**per_job, "idx": index, "seq": first_seq + index, "seed": seeds[index]}
                for index in range(n)
            ],
            counted_models=counted,
            megapixelsteps=megapixelsteps,
        )

    def _write(
        self,
        pipe: Pipeline,
        plan: PlannedRequest,
        sources: SourceImages,
        requester: Requester,
        now: float,
    ) -> None:
        keys = self.keys
        pipe.hset(keys.request(plan.request_id), mapping=plan.request_fields)
        if sources.image is not None:
            source_fields = {"image": sources.image}
            if sources.mask is not None:
                source_fields["mask"] = sources.mask
            pipe.hset(keys.request_source(plan.request_id), mapping=source_fields)
        pipe.rpush(keys.request_jobs(plan.request_id), *plan.job_ids)
        queue = self._queue(plan.queue_name)
        for index, (job_id, fields) in enumerate(zip(plan.job_ids, plan.job_fields, strict=True)):
            pipe.hset(keys.job(job_id), mapping=fields)
            job = Job.create(
                generated_by_horde_worker,
                args=(plan.request_id, index),
                id=job_id,
                connection=self.redis,
                serializer=JSONSerializer,
                description=f"image {index + 1}/{plan.n} of horde request {plan.request_id}",
                timeout=-1,
                result_ttl=-1,
            )
            queue.enqueue_job(job, pipeline=pipe)
        pipe.zadd(
            keys.waiting_index(plan.queue_name),
            {
                job_id: fields["seq"]
                for job_id, fields in zip(plan.job_ids, plan.job_fields, strict=True)
            },
        )
        pipe.sadd(keys.active_queues, plan.queue_name)
        # Wakes pops held waiting for a job (horde_api/pop_long_poll.py), on every API process.
        pipe.publish(keys.jobs_queued, plan.queue_name)
        pipe.hincrby(keys.queued_per_model, plan.counted_models, plan.n)
        pipe.hincrbyfloat(
            keys.queued_megapixelsteps, plan.counted_models, plan.n * plan.megapixelsteps
        )
        pipe.zadd(keys.activity, {plan.request_id: now})
        pipe.hincrby(keys.user_records(requester.user_id), "request_image", plan.n)
        if requester.user_id:
            tax = KudosEvent(
                event_id=f"tax:{plan.request_id}",
                user_id=requester.user_id,
                cents=-to_cents(ACTIVATION_TAX),
                kind=UserKudos.ACCUMULATED,
                request_id=plan.request_id,
            )
            pipe.rpush(keys.kudos_events, tax.to_json())
