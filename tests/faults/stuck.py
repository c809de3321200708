"""Saying which image of a request is stuck, and in which state, when a fault test's deadline
passes (read straight from the horde's Redis: the test knows its prefix)."""

from __future__ import annotations

import redis


def describe_request(redis_url: str, prefix: str, request_id: str) -> str:
    """One line per image: its job id, state, lease and the lease's state and expiry."""
    client = redis.Redis.from_url(redis_url, decode_responses=True)
    try:
        fields = client.hgetall(f"{prefix}req:{request_id}")
        lines = [
            f"request {request_id}: state={fields.get('state')} waiting={fields.get('waiting')}"
            f" processing={fields.get('processing')} finished={fields.get('finished')}"
        ]
        unsent = set(client.zrange(f"{prefix}leases:unsent", 0, -1))
        for job_id in client.lrange(f"{prefix}req:{request_id}:jobs", 0, -1):
            job = client.hgetall(f"{prefix}job:{job_id}")
            lease_id = job.get("lease") or ""
            lease = client.hgetall(f"{prefix}lease:{lease_id}") if lease_id else {}
            lines.append(
                f"  job {job_id}: state={job.get('state')} lease={lease_id or '-'}"
                f" lease_state={lease.get('state', '-')} expires={lease.get('expires', '-')}"
                f" unsent={lease_id in unsent}"
            )
        return "\n".join(lines)
    finally:
        client.close()
