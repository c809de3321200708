"""A job's lease: the pop reply's `ttl`, the seconds the horde waits for the submit before it
gives the job to another worker. A generation that can no longer be submitted within it is
stopped and answered `faulted` at once (the horde requeues it now, not when the ttl runs out)
instead of being finished for a submit the horde would refuse (`AbortedGen`).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass


@dataclass
class Lease:
    ttl: float
    # Monotonic time by which the last step must be done: the ttl less `margin`, the time kept
    # for decoding, post-processing, the safety checker, encoding and the submit itself.
    finish_by: float
    clock: Callable[[], float] = time.monotonic
    _first_step: tuple[int, float] | None = None

    @classmethod
    def start(
        cls,
        ttl: int | None,
        margin: float,
        received: float | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> Lease | None:
        """The lease of a job popped at `received` (default now); None when the horde gave no
        ttl (then nothing is stopped for time)."""
        if ttl is None or ttl <= 0:
            return None
        begun = clock() if received is None else received
        return cls(ttl=float(ttl), finish_by=begun + ttl - margin, clock=clock)

    def can_finish(self, step: int, total: int) -> bool:
        """Whether the job, at `step` of `total`, still ends in time at the pace of the steps
        seen so far. The pace is measured from the first step seen, so the set-up before it
        (prompt encoding, a first-use compile) does not count as step time."""
        now = self.clock()
        if now >= self.finish_by:
            return False
        if self._first_step is None:
            self._first_step = (step, now)
            return True
        first_step, first_time = self._first_step
        if step <= first_step:
            return True
        seconds_per_step = (now - first_time) / (step - first_step)
        return now + (total - step) * seconds_per_step <= self.finish_by
