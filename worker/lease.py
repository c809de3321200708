"""A job's lease: the pop reply's `ttl`, the seconds the horde waits for the submit before it
gives the job to another worker. A generation that can no longer be submitted within it is
stopped and answered `faulted` at once (the horde requeues it now, not when the ttl runs out)
instead of being finished for a submit the horde would refuse (`AbortedGen`).
"""

from __future__ import annotations

import itertools
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

# The pace is judged over at least this many recent steps (and a tenth of the job), as their
# median duration: the first steps at a new size can be many times slower than the rest
# (kernel selection, allocator warm-up), and such a step must not condemn a job that ends in
# time.
MIN_PACE_STEPS = 5
# The first steps of a job never set its pace: on a loaded machine each of them can take
# seconds (measured: steps 2–5 at 2–5 s, then 0.1–0.2 s), so a window of them alone would
# condemn a job that ends well in time. The deadline itself still applies to them.
WARM_UP_STEPS = 5
# The margin never takes more than this share of the ttl: a horde that gives short leases (a
# small image on a fast horde, or an operator's override) must still get its jobs finished.
MAX_MARGIN_SHARE = 0.25


@dataclass
class Lease:
    ttl: float
    # Monotonic time by which the last step must be done: the ttl less `margin`, the time kept
    # for decoding, post-processing, the safety checker, encoding and the submit itself.
    finish_by: float
    clock: Callable[[], float] = time.monotonic
    _recent: deque[tuple[int, float]] = field(default_factory=deque, repr=False)

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
        kept = min(margin, ttl * MAX_MARGIN_SHARE)
        return cls(ttl=float(ttl), finish_by=begun + ttl - kept, clock=clock)

    def can_finish(self, step: int, total: int) -> bool:
        """Whether the job, at `step` of `total`, still ends in time: False once the time is
        up, or once the median pace of the recent steps ends it too late."""
        now = self.clock()
        if now >= self.finish_by:
            return False
        if step <= WARM_UP_STEPS:
            return True
        window = max(MIN_PACE_STEPS, total // 10)
        self._recent.append((step, now))
        while len(self._recent) > window + 1:
            self._recent.popleft()
        if len(self._recent) <= window:
            return True
        paces = sorted(
            (later - earlier) / (later_step - step_before)
            for (step_before, earlier), (later_step, later) in itertools.pairwise(self._recent)
            if later_step > step_before
        )
        if not paces:
            return True
        seconds_per_step = paces[len(paces) // 2]
        return now + (total - step) * seconds_per_step <= self.finish_by
