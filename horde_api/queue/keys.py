"""Every Redis key and channel the horde uses, built from one prefix in one place.

rq adds its own namespace in front of queue names and job ids (`rq:queue:<name>`,
`rq:job:<id>`); our queue names start with the prefix, so `rq info` lists them and tests with
different prefixes never see each other's queues. Job ids are random UUIDs.
"""

from __future__ import annotations

from dataclasses import dataclass

from rq.job import Job
from rq.queue import Queue


@dataclass(frozen=True)
class RedisKeys:
    prefix: str

    # Requests and their images.
    def request(self, request_id: str) -> str:
        return f"{self.prefix}req:{request_id}"

    def request_source(self, request_id: str) -> str:
        return f"{self.prefix}req:{request_id}:src"

    def request_jobs(self, request_id: str) -> str:
        return f"{self.prefix}req:{request_id}:jobs"

    def request_generations(self, request_id: str) -> str:
        return f"{self.prefix}req:{request_id}:gens"

    def request_progress(self, request_id: str) -> str:
        return f"{self.prefix}req:{request_id}:progress"

    def request_preview(self, request_id: str) -> str:
        return f"{self.prefix}req:{request_id}:preview"

    def request_events(self, request_id: str) -> str:
        return f"{self.prefix}ev:{request_id}"

    @property
    def request_events_pattern(self) -> str:
        return f"{self.prefix}ev:*"

    @property
    def jobs_queued(self) -> str:
        """Channel told of every image put in a queue (new or requeued): wakes held pops."""
        return f"{self.prefix}jobs-queued"

    def job(self, job_id: str) -> str:
        """Our per-image bookkeeping, next to rq's own job hash."""
        return f"{self.prefix}job:{job_id}"

    def lease(self, lease_id: str) -> str:
        return f"{self.prefix}lease:{lease_id}"

    def waiting_index(self, queue_name: str) -> str:
        """Sorted set of a queue's waiting images by sequence number (age): how many images of
        a queue are older than a given one, in O(log n), for queue positions."""
        return f"{self.prefix}waiting:{queue_name}"

    def rq_queue_name(self, descriptor: str) -> str:
        return f"{self.prefix}q|{descriptor}"

    @staticmethod
    def rq_queue_key(queue_name: str) -> str:
        return Queue.redis_queue_namespace_prefix + queue_name

    @staticmethod
    def rq_job_key(job_id: str) -> str:
        return Job.redis_job_namespace_prefix + job_id

    # Indexes.
    @property
    def active_queues(self) -> str:
        """Set of rq queue names that may hold waiting jobs (cleaned lazily by pops)."""
        return f"{self.prefix}active-queues"

    @property
    def leases(self) -> str:
        """Sorted set lease id -> expiry time."""
        return f"{self.prefix}leases"

    @property
    def unsent_leases(self) -> str:
        """Sorted set lease id -> time of its pop, until its pop reply was sent (or the worker
        showed it has the job): a lease still here after the pickup window never reached its
        worker."""
        return f"{self.prefix}leases:unsent"

    def pop_nonce(self, worker_id: str, nonce: str) -> str:
        """The lease ids a pop with this nonce handed out (our idempotent-pop extension)."""
        return f"{self.prefix}pop-nonce:{worker_id}:{nonce}"

    @property
    def activity(self) -> str:
        """Sorted set of unfinished request ids -> time of last activity."""
        return f"{self.prefix}activity"

    @property
    def finished(self) -> str:
        """Sorted set of finished request ids -> time they finished."""
        return f"{self.prefix}finished"

    @property
    def sequence(self) -> str:
        return f"{self.prefix}seq"

    @property
    def queued_per_model(self) -> str:
        """Hash model part of a queue descriptor -> waiting images."""
        return f"{self.prefix}queued"

    @property
    def queued_megapixelsteps(self) -> str:
        """Hash model part of a queue descriptor -> megapixel-steps of its waiting images."""
        return f"{self.prefix}queued-mps"

    @property
    def known_models(self) -> str:
        """Set of the model names workers have announced in their pops."""
        return f"{self.prefix}models:known"

    @property
    def stats(self) -> str:
        return f"{self.prefix}stats"

    @property
    def in_flight_owners(self) -> str:
        """Set of the requesters that have an in-flight counter (for its repair pass)."""
        return f"{self.prefix}inflight-owners"

    def user_in_flight(self, user_key: str) -> str:
        """Images of one requester not yet finished (user id, or `anon:<ip>`)."""
        return f"{self.prefix}user:{user_key}:inflight"

    def user_records(self, user_id: int | str) -> str:
        """Hash of a user's counts (images requested and generated, megapixel-steps used and
        contributed); user 0 is the anonymous user."""
        return f"{self.prefix}user:{user_id}:records"

    def rate_counter(self, kind: str, who: str, window: int) -> str:
        return f"{self.prefix}rl:{kind}:{who}:{window}"

    # Kudos.
    @property
    def kudos_events(self) -> str:
        """List of kudos events (JSON) waiting to be settled into the database."""
        return f"{self.prefix}kudos:events"

    @property
    def kudos_events_bad(self) -> str:
        return f"{self.prefix}kudos:events:bad"

    @property
    def kudos_settling(self) -> str:
        """Lock held by the process settling kudos events."""
        return f"{self.prefix}kudos:settling"

    def recent_transfer(self, source_id: int, target_id: int) -> str:
        """Set for a minute after `source_id` sent kudos to `target_id`."""
        return f"{self.prefix}kudos:sent:{source_id}:{target_id}"

    # Workers.
    @property
    def workers_seen(self) -> str:
        """Sorted set worker id -> time of its last pop."""
        return f"{self.prefix}workers:seen"

    def worker(self, worker_id: str) -> str:
        return f"{self.prefix}worker:{worker_id}"

    @property
    def maintenance(self) -> str:
        return f"{self.prefix}workers:maintenance"
