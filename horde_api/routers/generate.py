"""Client side: submit a request, watch it, fetch its images, cancel it.

Handlers are `async def` and call Redis directly: each call is a short round trip, cheaper than
a hop to the thread pool. Only slow work (decoding images) goes to the pool.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import time
from typing import Annotated

from fastapi import APIRouter, Path, Query, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse
from sqlalchemy import select

from horde_api.auth.principals import Principal
from horde_api.context import HordeContext
from horde_api.db.models import Worker
from horde_api.deps import BaseUrlDep, ClientIpDep, ContextDep, PrincipalDep
from horde_api.errors import (
    CorruptPrompt,
    KudosUpfront,
    NotFound,
    RateLimited,
    TooManyPrompts,
    WorkerNotFound,
)
from horde_api.generation_checks import (
    MAX_TARGETED_WORKERS,
    check_features,
    check_models,
    check_sources,
)
from horde_api.kudos.ledger import to_cents
from horde_api.kudos.prices import request_price
from horde_api.kudos.upfront import downgrade, max_resolution, upfront_reason
from horde_api.openapi_replies import READ_BY_ID, error_replies
from horde_api.prompt_filters import PromptVerdict
from horde_api.queue.descriptors import kind_of, needs_of
from horde_api.queue.enqueue import ConcurrencyExceeded, Requester, Routing
from horde_api.queue.progress import read_preview
from horde_api.queue.rate_limits import RateLimitExceeded, request_counters
from horde_api.queue.requests import RequestView, cancel_request, view_request
from horde_api.status_replies import capable_workers, check_reply, status_reply
from horde_protocol import (
    DryRunReply,
    GenerationInput,
    RequestAsyncReply,
    RequestStatus,
    RequestStatusCheck,
    RequestWarning,
)
from horde_protocol.ids import canonical_id

log = logging.getLogger(__name__)
router = APIRouter(prefix="/api/v2/generate", tags=["generate"])

MAX_WAIT_SECONDS = 30.0
RequestId = Annotated[str, Path(description="request id from /generate/async", max_length=64)]
_READ_ERRORS = error_replies(*READ_BY_ID)


def _view_or_404(ctx: HordeContext, request_id: str, touch: bool = True) -> RequestView:
    view = None
    canonical = canonical_id(request_id)
    if canonical is not None:
        view = view_request(ctx.redis, ctx.keys, canonical, ctx.clock(), touch=touch)
    if view is None:
        raise NotFound(f"No request with id {request_id!r} (unknown, or its results expired)")
    return view


@router.post(
    "/async",
    status_code=202,
    response_model=RequestAsyncReply,
    responses={
        200: {"model": DryRunReply, "description": "`dry_run`: the price only, nothing queued"},
        202: {"description": "Queued; poll /generate/check/{id}"},
        **error_replies(400, 401, 403, 404, 413, 429, 503),
    },
    summary="Queue an image request (or price it with dry_run)",
)
async def request_async(
    spec: GenerationInput, ctx: ContextDep, principal: PrincipalDep, ip: ClientIpDep
) -> JSONResponse:
    check_models(spec.models)
    warnings = check_features(spec, principal.trusted)
    spec = _filtered(ctx, spec, warnings, principal)
    routing = _routing(ctx, spec)
    if spec.source_image is not None:
        # Decoding images takes long enough to stall other requests: do it off the event loop.
        sources = await run_in_threadpool(check_sources, spec, ctx.settings)
    else:
        sources = check_sources(spec, ctx.settings)
    spec = _paid_for(ctx, spec, principal)
    price = request_price(spec)
    if spec.dry_run:
        return JSONResponse(DryRunReply(kudos=price.total).model_dump(), status_code=200)
    now = ctx.clock()
    counters = request_counters(
        ctx.keys,
        now,
        key_id=principal.key_id,
        ip=ip,
        per_key=ctx.settings.rate_limit_per_key_per_minute,
        per_ip=ctx.settings.rate_limit_per_ip_per_minute,
        window_seconds=ctx.settings.rate_limit_window_seconds,
    )
    requester = Requester(
        user_key=principal.in_flight_key(ip),
        priority=principal.priority,
        concurrency=principal.concurrency,
        user_id=principal.user_id or 0,
        kudos_cents=principal.kudos_cents,
    )
    try:
        request_id = ctx.writer.enqueue_request(
            spec, requester, sources, price, now, counters, routing
        )
    except RateLimitExceeded as exc:
        raise RateLimited(
            f"Too many requests from this {exc.label} in the current"
            f" {ctx.settings.rate_limit_window_seconds} s window; try again when it ends"
        ) from None
    except ConcurrencyExceeded as exc:
        raise TooManyPrompts(
            f"You have {exc.in_flight} images queued or generating and may have at most"
            f" {exc.limit}; wait for some to finish (this request asked for {spec.params.n})"
        ) from None
    wanted = {
        "models": spec.models,
        "pixels": spec.params.width * spec.params.height,
        "kind": kind_of(sources.image is not None, spec.source_processing),
        "nsfw": spec.nsfw,
        "needs": needs_of(spec.params, censored=spec.censor_nsfw and not spec.nsfw),
    }
    if not capable_workers(ctx.live_workers.get(), wanted):
        warnings.append(
            RequestWarning(
                code="NoAvailableWorker",
                message="No worker online can take this request now; it waits for one"
                f" (for {ctx.settings.request_expiry_seconds:.0f} s without activity).",
            )
        )
    reply = RequestAsyncReply(id=request_id, kudos=price.total, warnings=warnings or None)
    return JSONResponse(reply.model_dump(exclude_none=True), status_code=202)


def _filtered(
    ctx: HordeContext,
    spec: GenerationInput,
    warnings: list[RequestWarning],
    principal: Principal,
) -> GenerationInput:
    """The request as the prompt filters let it through: refused, censored, or unchanged."""
    found = ctx.filters.check(spec.prompt, spec.nsfw)
    if found.verdict is PromptVerdict.REFUSED:
        # The operator sees who tried and which filter terms matched, never the whole prompt.
        log.warning("prompt of %s refused by filters %s", principal.display_name, found.matches)
        raise CorruptPrompt(
            "This prompt was refused by the horde's prompt filters: it combines terms that"
            " describe content illegal to generate. Rephrase it; refusals are logged."
        )
    if found.verdict is PromptVerdict.CENSORED and not spec.censor_nsfw:
        warnings.append(
            RequestWarning(
                code="CensorshipApplied",
                message="The prompt names explicit content but the request is not NSFW: its"
                " images go through the worker's safety checker, and flagged ones come back"
                " as censored placeholders.",
            )
        )
        return spec.model_copy(update={"censor_nsfw": True})
    return spec


def _paid_for(ctx: HordeContext, spec: GenerationInput, principal: Principal) -> GenerationInput:
    """The request as the requester's balance allows: a request that needs kudos up front
    (kudos/upfront.py) and costs more than the balance is refused, or made smaller when it
    allows a downgrade."""
    live = ctx.live_workers.get()
    waiting = int(ctx.redis.zcard(ctx.keys.activity))
    max_res = max_resolution(sum(w.threads for w in live), waiting)
    reason = upfront_reason(spec, max_res)
    if reason is None:
        return spec
    total = request_price(spec).total
    if to_cents(total) <= principal.kudos_cents:
        return spec
    if spec.allow_downgrade:
        return downgrade(spec, max_res)
    raise KudosUpfront(
        f"This request needs its kudos up front because {reason}, and your balance"
        f" ({principal.kudos_cents / 100:g} kudos) is less than its price ({total:g} kudos)."
        f" Ask for at most {max_res}x{max_res} pixels, at most 50 steps (20 with ControlNet) and"
        " any worker (slow_workers: true), or send allow_downgrade: true to have it made so."
    )


def _routing(ctx: HordeContext, spec: GenerationInput) -> Routing:
    """Which workers may take the request's images; every named worker must exist."""
    targeted = tuple(dict.fromkeys(spec.workers))[:MAX_TARGETED_WORKERS]
    if targeted:
        with ctx.sessions() as session:
            known = set(session.scalars(select(Worker.id).where(Worker.id.in_(targeted))))
        missing = [worker_id for worker_id in targeted if worker_id not in known]
        if missing:
            raise WorkerNotFound(f"workers: no worker with id {missing[0]!r}")
    return Routing(
        workers=targeted,
        workers_are_blacklist=spec.worker_blacklist,
        trusted_workers=spec.trusted_workers,
        fast_workers_only=not spec.slow_workers,
        extra_slow_workers=spec.extra_slow_workers,
    )


@router.get(
    "/check/{request_id}",
    response_model=RequestStatusCheck,
    responses=_READ_ERRORS,
    summary="Light status of a request; ?wait=S long-polls (our extension)",
)
async def check(
    request_id: RequestId,
    ctx: ContextDep,
    wait: Annotated[
        float,
        Query(ge=0, le=MAX_WAIT_SECONDS, description="extension: wait up to S s for a change"),
    ] = 0,
) -> RequestStatusCheck:
    if wait <= 0:
        view = _view_or_404(ctx, request_id)
        return check_reply(ctx, view)
    # Events are published under the request's canonical id; subscribe to that.
    request_id = canonical_id(request_id) or request_id
    future = ctx.notifier.subscribe(request_id)
    try:
        view = _view_or_404(ctx, request_id)
        if view.done:
            return check_reply(ctx, view)
        deadline = time.monotonic() + wait
        # Woken or not, answer with the state as it is now: a change whose event never reached
        # this process (its subscription was being made again) is still reported.
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(future, timeout=max(0.0, deadline - time.monotonic()))
        view = _view_or_404(ctx, request_id)
        return check_reply(ctx, view)
    finally:
        ctx.notifier.unsubscribe(request_id, future)


@router.get(
    "/status/{request_id}",
    response_model=RequestStatus,
    responses=_READ_ERRORS,
    summary="Full status with the generated images",
)
async def status(request_id: RequestId, ctx: ContextDep, base_url: BaseUrlDep) -> RequestStatus:
    # Reading result files and base64-encoding them takes long for big images: off the loop.
    return await run_in_threadpool(status_reply, ctx, _view_or_404(ctx, request_id), base_url)


@router.delete(
    "/status/{request_id}",
    response_model=RequestStatus,
    responses=_READ_ERRORS,
    summary="Cancel: waiting images leave the queue, running ones are told to stop",
)
async def cancel(request_id: RequestId, ctx: ContextDep, base_url: BaseUrlDep) -> RequestStatus:
    canonical = canonical_id(request_id)
    if canonical is None or cancel_request(ctx.redis, ctx.keys, canonical, ctx.clock()) is None:
        raise NotFound(f"No request with id {request_id!r} (unknown, or its results expired)")
    view = _view_or_404(ctx, canonical, touch=False)
    return await run_in_threadpool(status_reply, ctx, view, base_url)


@router.get(
    "/result/{job_id}.webp",
    response_class=Response,
    responses={200: {"content": {"image/webp": {}}}, **_READ_ERRORS},
    summary="One generated image (the URL `status` gives when r2 is true)",
)
async def result_image(job_id: Annotated[str, Path(max_length=64)], ctx: ContextDep) -> Response:
    ref = None
    # Jobs queued before ids became dashed UUIDs are named by 32 hex digits in their URLs.
    key = job_id if re.fullmatch(r"[0-9a-f]{32}", job_id) else canonical_id(job_id)
    if key is not None:
        raw = ctx.redis.hget(ctx.keys.job(key), "ref")
        ref = raw.decode() if raw else None
    # Off the event loop: with a bucket, this read is a request over the network.
    data = await run_in_threadpool(ctx.store.read, ref) if ref else None
    if data is None:
        raise NotFound(f"No image {job_id!r} (unknown, not finished, or expired)")
    return Response(
        data, media_type="image/webp", headers={"Cache-Control": "private, max-age=3600"}
    )


@router.get(
    "/preview/{request_id}",
    response_class=Response,
    responses={200: {"content": {"image/webp": {}}}, **_READ_ERRORS},
    summary="Extension: latest preview a worker sent for this request",
)
async def preview(request_id: RequestId, ctx: ContextDep) -> Response:
    data = None
    canonical = canonical_id(request_id)
    if canonical is not None:
        data = read_preview(ctx.redis, ctx.keys, canonical)
    if data is None:
        raise NotFound(f"No preview for request {request_id!r} yet")
    return Response(data, media_type="image/webp", headers={"Cache-Control": "no-store"})
