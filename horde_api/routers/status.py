"""Horde-wide status: heartbeat and the models live workers serve."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Annotated, Literal

from fastapi import APIRouter, Path, Query

from horde_api import __version__
from horde_api.context import HordeContext
from horde_api.deps import ContextDep
from horde_api.openapi_replies import error_replies
from horde_api.queue.descriptors import ANY_MODEL, MODEL_SEPARATOR, Need
from horde_api.queue.workers import LiveWorker
from horde_api.status_replies import DEFAULT_SECONDS_PER_MEGAPIXELSTEP
from horde_protocol import POST_PROCESSORS, ControlType, Extension, HeartbeatReply, ModelStatus

router = APIRouter(prefix="/api/v2/status", tags=["status"])
ModelType = Literal["image", "text"]
ModelState = Literal["known", "custom", "all"]


@router.get("/heartbeat", response_model=HeartbeatReply, summary="Is the horde up?")
async def heartbeat() -> HeartbeatReply:
    return HeartbeatReply(
        message="OK", version=__version__, extensions=[extension.value for extension in Extension]
    )


def _model_statuses(ctx: HordeContext) -> list[ModelStatus]:
    """Every model a live worker serves or a waiting image asks for (with count 0)."""
    threads: dict[str, int] = {}
    offers: dict[str, _Offer] = {}
    for worker in ctx.live_workers.get():
        if worker.maintenance:
            continue
        for model in worker.models:
            threads[model] = threads.get(model, 0) + worker.threads
            offers.setdefault(model, _Offer()).add(worker)
    with ctx.redis.pipeline(transaction=False) as pipe:
        pipe.hgetall(ctx.keys.queued_per_model)
        pipe.hgetall(ctx.keys.queued_megapixelsteps)
        pipe.smembers(ctx.keys.known_models)
        images_per_part, mps_per_part, announced = pipe.execute()
    queued: dict[str, int] = {}
    queued_mps: dict[str, float] = {}
    for part, value in images_per_part.items():
        waiting = max(0, int(value))
        mps = max(0.0, float(mps_per_part.get(part, 0)))
        names = part.decode()
        # Only names workers announced: a client could invent any other.
        targets = (
            threads.keys()
            if names == ANY_MODEL
            else [name for name in names.split(MODEL_SEPARATOR) if name.encode() in announced]
        )
        for name in targets:
            queued[name] = queued.get(name, 0) + waiting
            queued_mps[name] = queued_mps.get(name, 0.0) + mps
    raw_speed = ctx.redis.hget(ctx.keys.stats, "sec_per_mps")
    sec_per_mps = float(raw_speed) if raw_speed else DEFAULT_SECONDS_PER_MEGAPIXELSTEP
    reply = []
    for name in sorted(set(threads) | {n for n, w in queued.items() if w > 0}):
        count = threads.get(name, 0)
        waiting = queued.get(name, 0)
        mps = queued_mps.get(name, 0.0)
        reply.append(
            ModelStatus(
                name=name,
                count=count,
                performance=round(1 / sec_per_mps, 3) if sec_per_mps else 0,
                queued=round(mps, 2),
                jobs=waiting,
                # The public horde's figure for a model nobody serves.
                eta=math.ceil(mps * sec_per_mps / count) if count else 10000 if waiting else 0,
                **offers.get(name, _Offer()).fields(),
            )
        )
    return reply


# Each list kind: the need a worker must serve for it, and every name there is when it lists
# none (the public horde's workers take any post-processor and control type they allow).
_KINDS: dict[str, tuple[Need, tuple[str, ...]]] = {
    "post_processors": (Need.POST_PROCESSING, POST_PROCESSORS),
    "controlnet_types": (Need.CONTROLNET, tuple(member.value for member in ControlType)),
    "control_map_types": (Need.CONTROLNET, tuple(member.value for member in ControlType)),
    "loras": (Need.LORA, ()),
    "textual_inversions": (Need.LORA, ()),
}
_LIST_KEYS = {
    "post_processors": "pp",
    "controlnet_types": "cn",
    "control_map_types": "cm",
    "loras": "lo",
    "textual_inversions": "ti",
}


@dataclass
class _Offer:
    """The union of what the live workers serving one model offer with it."""

    names: dict[str, set[str]] = field(default_factory=lambda: {kind: set() for kind in _KINDS})
    lora: bool = False
    hires_fix: bool = False
    tiling: bool = False

    def add(self, worker: LiveWorker) -> None:
        for kind, (need, every) in _KINDS.items():
            if worker.serves_need(need):
                listed = worker.listed(_LIST_KEYS[kind])
                self.names[kind].update(every if listed is None else listed)
        self.lora = self.lora or worker.serves_need(Need.LORA)
        self.hires_fix = self.hires_fix or worker.serves_need(Need.HIRES_FIX)
        self.tiling = self.tiling or worker.serves_need(Need.TILING)

    def fields(self) -> dict[str, object]:
        sorted_names = {kind: sorted(names) for kind, names in self.names.items()}
        return {
            **sorted_names,
            "lora": self.lora,
            "hires_fix": self.hires_fix,
            "tiling": self.tiling,
        }


@router.get(
    "/models",
    response_model=list[ModelStatus],
    responses=error_replies(400, 503),
    summary="Models served by live workers or asked for by waiting images",
)
async def models(
    ctx: ContextDep,
    type: Annotated[
        ModelType, Query(description="image (text: an image horde has none)")
    ] = "image",
    min_count: Annotated[int | None, Query(ge=0)] = None,
    max_count: Annotated[int | None, Query(ge=0)] = None,
    model_state: Annotated[
        ModelState, Query(description="known/custom/all: this horde has no model reference")
    ] = "all",
) -> list[ModelStatus]:
    if type == "text":
        return []
    return [
        model
        for model in _model_statuses(ctx)
        if (min_count is None or model.count >= min_count)
        and (max_count is None or model.count <= max_count)
    ]


@router.get(
    "/models/{model_name}",
    response_model=list[ModelStatus],
    responses=error_replies(400, 503),
    summary="One model's status, as a list (empty when nobody serves or asks for it)",
)
async def model(
    model_name: Annotated[str, Path(max_length=255)], ctx: ContextDep
) -> list[ModelStatus]:
    return [m for m in _model_statuses(ctx) if m.name == model_name]
