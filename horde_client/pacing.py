"""How often to ask a horde about a request.

Our horde holds `check?wait=S` until something changes (long-poll); the public horde ignores
`wait` and answers at once. A client that loops on checks against the latter sends thousands a
minute and gets rate limited. So: a reply that came back at once with nothing changed proves
that `wait` is not honoured, and from then on checks are spaced by `interval`.
"""

from __future__ import annotations

from dataclasses import dataclass

from horde_protocol import RequestStatusCheck

# A reply faster than this (and faster than half the wait) "came back at once".
AT_ONCE_SECONDS = 1.0
# Even a horde that long-polls is not asked more often than this.
MIN_GAP_SECONDS = 0.1


def state_of(check: RequestStatusCheck) -> tuple[object, ...]:
    return (
        check.finished,
        check.processing,
        check.waiting,
        check.restarted,
        check.done,
        check.faulted,
        check.queue_position,
        check.progress,
    )


@dataclass
class CheckPacer:
    """One per horde and run, shared by the threads following its requests."""

    wait: float
    interval: float
    honoured: bool | None = None  # None until a reply tells

    def pause_after(self, changed: bool, seconds_taken: float) -> float:
        """Seconds to pause before the next check of a request whose last check took
        `seconds_taken` and did (not) show a change of its state."""
        at_once = seconds_taken < min(AT_ONCE_SECONDS, self.wait / 2)
        if at_once and not changed:
            # Proof enough, and for good: a horde does not start honouring `wait` later.
            self.honoured = False
        elif not at_once and self.honoured is None:
            self.honoured = True
        if self.honoured is False:
            return max(0.0, self.interval - seconds_taken)
        return MIN_GAP_SECONDS
