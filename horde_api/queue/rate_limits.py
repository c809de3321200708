"""Fixed-window request counters in Redis, per API key and per client IP.

The counters are incremented in the same round trip that reserves a request's in-flight slots
(see `QueueWriter.enqueue_request`), so limiting costs no extra call to Redis.
"""

from __future__ import annotations

from dataclasses import dataclass

from horde_api.queue.keys import RedisKeys

DEFAULT_WINDOW_SECONDS = 60


@dataclass(frozen=True)
class RateCounter:
    key: str
    limit: int
    label: str
    # Kept two windows, so a counter is never dropped while its window is still counting.
    keep_seconds: int = 2 * DEFAULT_WINDOW_SECONDS


class RateLimitExceeded(Exception):
    def __init__(self, label: str) -> None:
        super().__init__(label)
        self.label = label


def request_counters(
    keys: RedisKeys,
    now: float,
    *,
    key_id: str | None,
    ip: str,
    per_key: int,
    per_ip: int,
    window_seconds: int = DEFAULT_WINDOW_SECONDS,
) -> list[RateCounter]:
    """Counters of the fixed window (`window_seconds` long, aligned to the epoch) holding `now`."""
    window = int(now // window_seconds)
    keep = 2 * window_seconds
    counters = [RateCounter(keys.rate_counter("ip", ip, window), per_ip, "IP", keep)]
    if key_id is not None:
        counters.append(RateCounter(keys.rate_counter("key", key_id, window), per_key, "key", keep))
    return counters
