"""Horde-wide status: heartbeat and the models live workers serve."""

from __future__ import annotations

import math

from fastapi import APIRouter

from horde_api import __version__
from horde_api.deps import ContextDep
from horde_api.openapi_replies import error_replies
from horde_api.queue.descriptors import ANY_MODEL, MODEL_SEPARATOR
from horde_api.status_replies import DEFAULT_SECONDS_PER_MEGAPIXELSTEP
from horde_protocol import HeartbeatReply, ModelStatus

router = APIRouter(prefix="/api/v2/status", tags=["status"])


@router.get("/heartbeat", response_model=HeartbeatReply, summary="Is the horde up?")
async def heartbeat() -> HeartbeatReply:
    return HeartbeatReply(message="OK", version=__version__)


@router.get(
    "/models",
    response_model=list[ModelStatus],
    responses=error_replies(503),
    summary="Models served by live workers, with worker count, queued images and ETA",
)
async def models(ctx: ContextDep) -> list[ModelStatus]:
    workers = [w for w in ctx.live_workers.get() if not w.maintenance]
    counts: dict[str, int] = {}
    for worker in workers:
        for model in worker.models:
            counts[model] = counts.get(model, 0) + 1
    queued: dict[str, int] = {}
    for part, value in ctx.redis.hgetall(ctx.keys.queued_per_model).items():
        waiting = max(0, int(value))
        names = part.decode()
        targets = counts.keys() if names == ANY_MODEL else names.split(MODEL_SEPARATOR)
        for name in targets:
            queued[name] = queued.get(name, 0) + waiting
    raw_speed = ctx.redis.hget(ctx.keys.stats, "sec_per_mps")
    sec_per_mps = float(raw_speed) if raw_speed else DEFAULT_SECONDS_PER_MEGAPIXELSTEP
    # A typical image (512x512, 30 steps) is 7.9 megapixel-steps.
    per_image = 512 * 512 * 30 / 1_000_000 * sec_per_mps
    reply = []
    for name in sorted(counts):
        count = counts[name]
        waiting = queued.get(name, 0)
        reply.append(
            ModelStatus(
                name=name,
                count=count,
                performance=round(1 / sec_per_mps, 3) if sec_per_mps else 0,
                queued=waiting,
                jobs=waiting,
                eta=math.ceil(waiting * per_image / count),
            )
        )
    return reply
