"""Turning a request's stored state into `check` and `status` replies."""

from __future__ import annotations

import base64
import math
from typing import Any

from horde_api.context import HordeContext
from horde_api.queue.positions import images_ahead
from horde_api.queue.requests import RequestState, RequestView, generation_records
from horde_api.queue.workers import LiveWorker
from horde_protocol import Generation, GenerationState, RequestStatus, RequestStatusCheck

DEFAULT_SECONDS_PER_MEGAPIXELSTEP = 1.0


def capable_workers(workers: list[LiveWorker], spec: dict[str, Any]) -> list[LiveWorker]:
    """Live workers that could take a request with this stored spec."""
    models = spec.get("models", [])
    pixels = spec.get("pixels", 0)
    kind = spec.get("kind", "t")
    nsfw = spec.get("nsfw", False)
    needs = spec.get("needs", "")
    wants = spec.get("wants")
    return [w for w in workers if w.could_take(models, pixels, kind, nsfw, needs, wants)]


def wait_seconds(view: RequestView, ahead: int, capable_workers: int) -> int:
    """Images ahead plus our own, times the recent speed, shared by the capable workers."""
    if view.waiting == 0 and view.processing == 0:
        return 0
    params = view.spec.get("params", {})
    work = view.spec.get("pixels", 0) * params.get("steps", 30) / 1_000_000
    per_image = work * (view.sec_per_mps or DEFAULT_SECONDS_PER_MEGAPIXELSTEP)
    images = ahead + view.waiting + view.processing
    return math.ceil(images * per_image / max(1, capable_workers))


def check_reply(ctx: HordeContext, view: RequestView) -> RequestStatusCheck:
    return RequestStatusCheck(**_check_fields(ctx, view))


def _check_fields(ctx: HordeContext, view: RequestView) -> dict[str, Any]:
    capable = capable_workers(ctx.live_workers.get(), view.spec)
    faulted = view.state in (RequestState.FAULTED, RequestState.EXPIRED)
    ahead = images_ahead(ctx.redis, ctx.keys, view, capable)
    return {
        "finished": view.finished,
        "processing": view.processing,
        "restarted": view.restarted,
        "waiting": view.waiting,
        # As on the public horde, a faulted request is done: clients stop waiting on `done`.
        "done": view.done or faulted,
        "faulted": faulted,
        "wait_time": wait_seconds(view, ahead, len(capable)),
        "queue_position": ahead,
        "kudos": view.kudos,
        "is_possible": bool(capable) or view.done,
        "progress": round(view.progress_fraction, 4),
        "cancelled": view.state == RequestState.CANCELLED,
        "preview_available": view.processing > 0,
    }


def status_reply(ctx: HordeContext, view: RequestView, base_url: str) -> RequestStatus:
    generations = []
    # `r2` asks for links (to our API, or presigned ones to the result bucket); clients of the
    # public horde fetch only https links and read anything else as base64, so a link that is
    # not https is replaced by the image inline (docs/protocol.md).
    r2 = bool(view.spec.get("r2", True))
    for record in generation_records(ctx.redis, ctx.keys, view.request_id):
        ref = record.get("ref")
        if not ref:
            continue
        link = ctx.store.result_url(ref, record.get("job", record["id"]), base_url) if r2 else ""
        if link.startswith("https://"):
            img = link
        else:
            data = ctx.store.read(ref)
            if data is None:
                continue
            img = base64.b64encode(data).decode()
        generations.append(
            Generation(
                img=img,
                seed=str(record.get("seed", "")),
                id=record["id"],
                worker_id=record.get("worker_id", ""),
                worker_name=record.get("worker_name", ""),
                model=record.get("model", ""),
                censored=record.get("state") == GenerationState.CENSORED.value,
                state=GenerationState(record.get("state", "ok")),
                gen_metadata=record.get("gen_metadata", []),
            )
        )
    return RequestStatus(
        **_check_fields(ctx, view),
        generations=generations,
        shared=bool(view.spec.get("shared", False)),
    )
