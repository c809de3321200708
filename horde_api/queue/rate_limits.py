"""Fixed-window request counters in Redis, per API key and per client IP.

The counters are incremented in the same round trip that reserves a request's in-flight slots
(see `QueueWriter.enqueue_request`), so limiting costs no extra call to Redis.
"""

from __future__ import annotations

from dataclasses import dataclass

from horde_api.queue.keys import RedisKeys

WINDOW_SECONDS = 60


@dataclass(frozen=True)
class RateCounter:
    key: str
    limit: int
    label: str


class RateLimitExceeded(Exception):
    def __init__(self, label: str) -> None:
        super().__init__(label)
        self.label = label


def request_counters(
    keys: RedisKeys, now: float, *, key_id: str | None, ip: str, per_key: int, per_ip: int
) -> list[RateCounter]:
    window = int(now // WINDOW_SECONDS)
    counters = [RateCounter(keys.rate_counter("ip", ip, window), per_ip, "IP")]
    if key_id is not None:
        counters.append(RateCounter(keys.rate_counter("key", key_id, window), per_key, "key"))
    return counters
