"""A pop held until a job it may take is queued (`long_poll_seconds`, our extension).

The pop tries to claim; with nothing for it, it waits (as a future, holding no thread) for the
next `jobs-queued` message, which any API process sharing the Redis sends when it puts an image
in a queue (new, or requeued), then tries again, until the job comes or the time is up. It
subscribes before each try, so an image queued between a try and the wait still wakes it.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

from starlette.requests import Request

from horde_api.queue.notifier import RequestNotifier
from horde_api.queue.pop import Claim, NothingFits


async def claim_or_wait(
    claim: Callable[[], Claim | NothingFits],
    notifier: RequestNotifier,
    seconds: float,
    request: Request,
) -> Claim | NothingFits:
    """`claim()` now and, while nothing fits, again after each queued image, for at most
    `seconds`; a worker that hung up meanwhile is left without a new lease."""
    if seconds <= 0:
        return claim()
    deadline = time.monotonic() + seconds
    while True:
        queued = notifier.subscribe_jobs()
        try:
            result = claim()
            if not isinstance(result, NothingFits) or result.maintenance:
                return result
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return result
            try:
                await asyncio.wait_for(queued, timeout=remaining)
            except TimeoutError:
                return result
            if await request.is_disconnected():
                return result
        finally:
            notifier.unsubscribe_jobs(queued)
