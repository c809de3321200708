"""How long this worker takes for a job, from its own recent generations: what decides whether
a job popped ahead can still be honoured within its ttl."""

from __future__ import annotations

from horde_protocol import PopReply

# Weight of the newest generation in the running average: recent enough to follow a change
# (another model, a warm-up ending), smooth enough that one slow job does not stop pop-ahead.
NEWEST_WEIGHT = 0.3


class Pace:
    """Seconds per megapixel-step (one step of one image of one million pixels)."""

    def __init__(self) -> None:
        self.seconds_per_mps: float | None = None

    def add(self, seconds: float, width: int, height: int, steps_run: int) -> None:
        """One finished generation: `steps_run` steps over all its images."""
        work = width * height / 1e6 * steps_run
        if work <= 0 or seconds <= 0:
            return
        measured = seconds / work
        previous = self.seconds_per_mps
        self.seconds_per_mps = (
            measured
            if previous is None
            else NEWEST_WEIGHT * measured + (1 - NEWEST_WEIGHT) * previous
        )

    def estimate(self, reply: PopReply) -> float | None:
        """The seconds a popped job should take here; None before any generation (no pace
        yet) or for a reply without a payload."""
        payload = reply.payload
        if self.seconds_per_mps is None or payload is None:
            return None
        images = max(1, len(reply.ids))
        # A hires-fixed image runs a second pass at full size.
        passes = 2 if payload.hires_fix else 1
        work = payload.width * payload.height / 1e6 * payload.ddim_steps * images * passes
        return work * self.seconds_per_mps
