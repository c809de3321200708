"""Worker side: pop a job, report progress (extension), upload and submit the result."""

from __future__ import annotations

import hmac
import json
from typing import Annotated, NoReturn

from fastapi import APIRouter, Path, Query, Request, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse
from starlette.background import BackgroundTask

from horde_api.auth.principals import Principal
from horde_api.context import HordeContext, RegisteredWorker
from horde_api.db.users import WorkerNameTaken, register_worker
from horde_api.deps import BaseUrlDep, ContextDep, RegisteredPrincipalDep
from horde_api.errors import (
    AbortedGen,
    BadRequest,
    BodyTooLarge,
    DuplicateGen,
    Forbidden,
    HordeError,
    ImageValidationFailed,
    NotFound,
    WorkerMaintenance,
    WrongCredentials,
)
from horde_api.fault_injection import crash_after_pop_commit
from horde_api.images import as_webp, check_image, decode_and_check
from horde_api.kudos.ledger import to_cents
from horde_api.kudos.prices import bridge_factor
from horde_api.kudos.uptime import uptime_reward
from horde_api.openapi_replies import WORKER_POST, error_replies
from horde_api.pop_long_poll import claim_or_wait
from horde_api.pop_replies import job_reply, no_job_reply
from horde_api.queue.descriptors import served_needs
from horde_api.queue.leases import (
    LeaseState,
    SubmitOutcome,
    read_lease,
    read_submit_context,
    submit_lease,
)
from horde_api.queue.pickup import mark_sent
from horde_api.queue.pop import NothingFits, WorkerOffer, claim_job
from horde_api.queue.progress import ProgressOutcome, report_progress, store_preview
from horde_api.queue.wants import offered
from horde_protocol import (
    MAX_RESULT_PIXELS,
    GenerationState,
    PopReply,
    PopRequest,
    ProgressReply,
    ProgressRequest,
    SubmitReply,
    SubmitRequest,
)
from horde_protocol.ids import canonical_id

router = APIRouter(prefix="/api/v2/generate", tags=["worker"])

_JOB_ERRORS = error_replies(*WORKER_POST)
MAX_PREVIEW_PIXELS = 1024 * 1024
# Results up to this many base64 characters are decoded on the event loop; bigger ones in the
# thread pool, so a large image does not stall every other request.
INLINE_DECODE_LIMIT = 64 * 1024


def _checked_preview(ctx: HordeContext, text: str) -> bytes:
    image = decode_and_check(text, "preview", ctx.settings.max_preview_bytes, MAX_PREVIEW_PIXELS)
    return as_webp(image)


def registered_worker(ctx: HordeContext, name: str, principal: Principal) -> RegisteredWorker:
    assert principal.user_id is not None
    known = ctx.worker_registry.get(name)
    if known is None:
        try:
            with ctx.sessions() as session:
                worker = register_worker(session, name, principal.user_id)
        except WorkerNameTaken:
            raise WrongCredentials(
                f"The worker name {name!r} is registered to another user; pick another name"
            ) from None
        known = RegisteredWorker(worker_id=worker.id, owner_id=worker.owner_id)
        with ctx.registry_lock:
            ctx.worker_registry[name] = known
    if known.owner_id != principal.user_id:
        raise WrongCredentials(
            f"The worker name {name!r} is registered to another user; pick another name"
        )
    return known


@router.post(
    "/pop",
    response_model=PopReply,
    responses=error_replies(400, 401, 403, 413, 503),
    summary="Worker: ask for a job",
)
async def pop(
    body: PopRequest,
    ctx: ContextDep,
    principal: RegisteredPrincipalDep,
    base_url: BaseUrlDep,
    request: Request,
) -> JSONResponse:
    worker = registered_worker(ctx, body.name, principal)
    serves = served_needs(
        lora=body.allow_lora,
        post_processing=body.allow_post_processing,
        controlnet=body.allow_controlnet,
        hires_fix=body.allow_hires_fix,
        tiling=body.allow_tiling,
        safety_checker=body.nsfw_censor is not False,
        interpolation=body.allow_interpolation,
    )
    worker_fields = {
        "name": body.name,
        "owner": principal.display_name,
        "models": json.dumps(body.models),
        "max_pixels": str(body.max_pixels),
        "nsfw": _flag(body.nsfw),
        "img2img": _flag(body.allow_img2img),
        "painting": _flag(body.allow_painting),
        "serves": serves,
        "sdxl_controlnet": _flag(body.allow_sdxl_controlnet),
        "threads": str(body.threads),
        "bridge_agent": body.bridge_agent,
        # The share of an image's price its owner earns (kudos/prices.py), read by the submit.
        "kudos_factor": str(bridge_factor(body.bridge_agent)),
        "trusted": _flag(principal.trusted),
        # What exactly it has ("*" = it listed none: any), shown by /workers and /status/models.
        "lists": json.dumps(
            {
                "pp": offered(body.post_processors),
                "cn": offered(body.controlnet_types),
                "cm": offered(body.control_map_types),
                "lo": offered(body.loras, lower=True),
                "ti": offered(body.textual_inversions, lower=True),
            }
        ),
    }
    offer = WorkerOffer(
        worker_id=worker.worker_id,
        owner_id=worker.owner_id,
        models=body.models,
        max_pixels=body.max_pixels,
        nsfw=body.nsfw,
        blacklist=body.blacklist,
        allow_img2img=body.allow_img2img,
        allow_painting=body.allow_painting,
        serves=serves,
        trusted=principal.trusted,
        limit_max_steps=body.limit_max_steps,
        require_upfront_kudos=body.require_upfront_kudos,
        extra_slow_worker=body.extra_slow_worker,
        amount=body.amount,
        nonce=body.nonce or "",
        uptime_reward_cents=to_cents(uptime_reward(len(body.models), body.allow_lora)),
        post_processors=body.post_processors,
        controlnet_types=body.controlnet_types,
        control_map_types=body.control_map_types,
        loras=body.loras,
        textual_inversions=body.textual_inversions,
    )
    # Our extension: held up to this long for a job (0 = answered at once, as the public horde).
    hold = min(body.long_poll_seconds, ctx.settings.pop_long_poll_max_seconds)
    claim = await claim_or_wait(
        lambda: claim_job(ctx.redis, ctx.keys, offer, ctx.lease_policy, ctx.clock(), worker_fields),
        ctx.notifier,
        hold,
        request,
    )
    ctx.live_workers.note_seen(worker.worker_id)
    held = {"long_poll_seconds": hold} if hold > 0 else {}
    if isinstance(claim, NothingFits):
        if claim.maintenance:
            raise WorkerMaintenance(
                f"Worker {body.name!r} is in maintenance mode and no request of its owner waits;"
                " its owner can end maintenance with PUT /api/v2/workers/{id}"
            )
        return JSONResponse({**no_job_reply(claim.skipped), **held})
    crash_after_pop_commit(body.name)
    # Once the reply has left, its leases no longer count as unsent (horde_api/queue/pickup.py).
    sent = BackgroundTask(mark_sent, ctx.redis, ctx.keys, claim.lease_ids)
    return JSONResponse({**job_reply(claim, base_url, ctx.store), **held}, background=sent)


def _flag(on: bool) -> str:
    return "1" if on else "0"


@router.post(
    "/submit",
    response_model=SubmitReply,
    responses=_JOB_ERRORS,
    summary="Worker: hand back a result",
)
async def submit(
    body: SubmitRequest, ctx: ContextDep, principal: RegisteredPrincipalDep
) -> SubmitReply:
    assert principal.user_id is not None
    lease_id = canonical_id(body.id)
    found = read_submit_context(ctx.redis, ctx.keys, lease_id) if lease_id else None
    if found is None or lease_id is None:
        raise NotFound(f"No job with id {body.id!r} was handed out (or it expired long ago)")
    lease = found.lease
    if lease.state not in (LeaseState.ACTIVE, LeaseState.CANCELLED):
        _raise_for(SUBMIT_REFUSALS.get(lease.state, SubmitOutcome.ABORTED), body.id)
    if lease.owner_id != principal.user_id:
        _raise_for(SubmitOutcome.FORBIDDEN, body.id)
    # The obsolete `censored` flag (horde-sdk still sets it) means the censored state.
    state = body.state
    if body.censored and state == GenerationState.OK:
        state = GenerationState.CENSORED
    now = ctx.clock()
    ref = ""
    # A CSAM verdict keeps nothing; a censored image keeps the worker's placeholder.
    if state in (GenerationState.OK, GenerationState.CENSORED):
        # "R2" takes the upload: with a bucket, a read, a check and a write over the network.
        if body.generation == "R2" or len(body.generation) > INLINE_DECODE_LIMIT:
            ref = await run_in_threadpool(_store_result, ctx, lease_id, body, now)
        else:
            ref = _store_result(ctx, lease_id, body, now)
    record = {
        "index": found.index,
        # The generation's id is the id its worker was handed, as on the public horde.
        "id": lease_id,
        "job": lease.job_id,
        "seed": str(body.seed) if body.seed else found.seed,
        "worker_id": lease.worker_id,
        "worker_name": found.worker_name,
        "model": lease.model,
        "state": state.value,
        "gen_metadata": [m.model_dump(exclude_none=True) for m in body.gen_metadata],
        "ref": ref,
    }
    result = submit_lease(
        ctx.redis,
        ctx.keys,
        lease_id,
        principal.user_id,
        state.value,
        json.dumps(record),
        ref,
        ctx.settings.max_faults_per_request,
        now,
        unstarted=bool(body.unstarted),
    )
    if result.outcome not in KEEPS_THE_IMAGE and ref:
        await run_in_threadpool(ctx.store.delete, ref)
    if result.outcome in ANSWERED:
        return SubmitReply(reward=result.reward)
    _raise_for(result.outcome, body.id)


# What each submit outcome answers: a reply (the reward; 0 but for a delivered image) or an
# error of the public horde's.
ANSWERED = {
    SubmitOutcome.OK,
    SubmitOutcome.WITHHELD,
    SubmitOutcome.CANCELLED,
    SubmitOutcome.FAULTED,
}
KEEPS_THE_IMAGE = {
    SubmitOutcome.OK,
    SubmitOutcome.WITHHELD,
    SubmitOutcome.CANCELLED,
    SubmitOutcome.DUPLICATE,
}
SUBMIT_REFUSALS = {
    LeaseState.SUBMITTED: SubmitOutcome.DUPLICATE,
    LeaseState.FAULTED: SubmitOutcome.DUPLICATE,
    LeaseState.ANSWERED: SubmitOutcome.DUPLICATE,
}
_ERRORS: dict[SubmitOutcome, tuple[type[HordeError], str]] = {
    SubmitOutcome.DUPLICATE: (DuplicateGen, "Job {id} was already submitted"),
    SubmitOutcome.ABORTED: (
        AbortedGen,
        "Job {id} ran past its ttl (or its reply never reached a worker) and went back to the"
        " queue",
    ),
    SubmitOutcome.FORBIDDEN: (WrongCredentials, "This job was handed to a worker of another user"),
    SubmitOutcome.NOT_FOUND: (NotFound, "No job with id {id!r}"),
}


def _raise_for(outcome: SubmitOutcome, job_id: str) -> NoReturn:
    error, message = _ERRORS[outcome]
    raise error(message.format(id=job_id))


def _store_result(ctx: HordeContext, lease_id: str, body: SubmitRequest, now: float) -> str:
    if body.generation == "R2":
        ref = ctx.store.take_upload(lease_id, now, lambda raw: _checked_upload(ctx, raw))
        if ref is None:
            raise BadRequest(
                f'generation is "R2" but nothing was uploaded for job {body.id};'
                " PUT the WebP to the r2_upload URL first, or send base64 in generation"
            )
        return ref
    if not body.generation:
        raise BadRequest(
            'generation is empty; send the image as base64 WebP/PNG, or "R2" after an upload'
        )
    image = decode_and_check(
        body.generation, "generation", ctx.settings.max_result_bytes, MAX_RESULT_PIXELS
    )
    return ctx.store.put(lease_id, as_webp(image), now)


@router.put(
    "/upload/{lease_id}",
    responses={200: {"description": "stored"}, **error_replies(400, 403, 404, 413, 503)},
    summary="Worker: upload the result image (the pop reply's r2_upload URL)",
)
async def upload(
    lease_id: Annotated[str, Path(max_length=64)],
    request: Request,
    ctx: ContextDep,
    token: Annotated[str, Query(max_length=200)] = "",
) -> Response:
    canonical = canonical_id(lease_id)
    lease = read_lease(ctx.redis, ctx.keys, canonical) if canonical else None
    if lease is None or canonical is None:
        raise NotFound(f"No job with id {lease_id!r}")
    lease_id = canonical
    if not hmac.compare_digest(lease.upload_token.encode(), token.encode()):
        raise Forbidden("The upload token does not match this job")
    if lease.state != LeaseState.ACTIVE:
        raise AbortedGen(f"Job {lease_id} is no longer running")
    mark_sent(ctx.redis, ctx.keys, [lease_id])  # the worker has the job
    body = bytearray()
    async for chunk in request.stream():
        body.extend(chunk)
        if len(body) > ctx.settings.max_result_bytes:
            raise BodyTooLarge(f"Upload larger than {ctx.settings.max_result_bytes} bytes")
    if len(body) > INLINE_DECODE_LIMIT:
        # As in submit: decoding (and converting a PNG) of a large image would hold up every
        # other request of this process's event loop.
        await run_in_threadpool(_store_upload, ctx, lease_id, bytes(body))
    else:
        _store_upload(ctx, lease_id, bytes(body))
    return Response(status_code=200)


def _checked_upload(ctx: HordeContext, raw: bytes) -> bytes:
    """The checks of an uploaded image, wherever it was uploaded to: our endpoint, or the bucket
    (checked at submit, since the bucket takes any PUT of a valid presigned URL)."""
    if len(raw) > ctx.settings.max_result_bytes:
        raise ImageValidationFailed(
            f"uploaded image is larger than the allowed {ctx.settings.max_result_bytes} bytes"
        )
    return as_webp(check_image(raw, "uploaded image", MAX_RESULT_PIXELS))


def _store_upload(ctx: HordeContext, lease_id: str, raw: bytes) -> None:
    ctx.store.put_upload(lease_id, _checked_upload(ctx, raw))


@router.post(
    "/progress",
    response_model=ProgressReply,
    responses=_JOB_ERRORS,
    summary="Extension: worker reports step/total (and a preview); reply says if cancelled",
)
async def progress(
    body: ProgressRequest, ctx: ContextDep, principal: RegisteredPrincipalDep
) -> ProgressReply:
    assert principal.user_id is not None
    preview = None
    if body.preview:
        preview = await run_in_threadpool(_checked_preview, ctx, body.preview)
    lease_id = canonical_id(body.id)
    if lease_id is None:
        raise NotFound(f"No job with id {body.id!r}")
    outcome, request_id = report_progress(
        ctx.redis, ctx.keys, lease_id, principal.user_id, body.step, body.total, ctx.clock()
    )
    if outcome in PROGRESS_ERRORS:
        _raise_for(PROGRESS_ERRORS[outcome], body.id)
    if outcome == ProgressOutcome.RUNNING and preview is not None and request_id is not None:
        store_preview(
            ctx.redis, ctx.keys, request_id, preview, ctx.settings.result_retention_seconds
        )
    return ProgressReply(cancelled=outcome == ProgressOutcome.CANCELLED)


PROGRESS_ERRORS = {
    ProgressOutcome.NOT_FOUND: SubmitOutcome.NOT_FOUND,
    ProgressOutcome.FORBIDDEN: SubmitOutcome.FORBIDDEN,
}
