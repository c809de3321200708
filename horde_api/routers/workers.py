"""Workers: the online ones, one by id or name, and what their owners may change."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Path, Query
from fastapi.responses import JSONResponse
from sqlalchemy import select

from horde_api.db.models import User, Worker
from horde_api.deps import ContextDep, RegisteredPrincipalDep, SessionDep
from horde_api.errors import BadRequest, Forbidden, NotFound
from horde_api.openapi_replies import READ_BY_ID, WORKER_POST, error_replies
from horde_api.queue.descriptors import Need
from horde_api.queue.workers import LiveWorker, live_workers, read_worker, set_maintenance
from horde_protocol import (
    ErrorCode,
    ModifyWorkerInput,
    ModifyWorkerReply,
    WorkerDetails,
    WorkerKudosDetails,
)

router = APIRouter(prefix="/api/v2/workers", tags=["workers"])
WorkerId = Annotated[str, Path(max_length=64)]
WorkerType = Literal["", "image", "text", "interrogation"]


def _details(
    ctx: ContextDep, worker: Worker, owner: User, live: LiveWorker | None
) -> WorkerDetails:
    now = ctx.clock()
    online = live is not None and now - live.last_seen <= ctx.settings.worker_offline_seconds
    speed = live.speed if live and live.speed is not None else 0.0
    return WorkerDetails(
        name=worker.name,
        id=worker.id,
        online=online,
        requests_fulfilled=live.fulfilled if live else 0,
        # What its owner earned through it, as settled into the database (kudos/ledger.py).
        kudos_rewards=(worker.generated_cents + worker.uptime_cents) / 100,
        kudos_details=WorkerKudosDetails(
            generated=worker.generated_cents / 100, uptime=worker.uptime_cents // 100
        ),
        performance=f"{speed:.1f} megapixelsteps per second",
        threads=live.threads if live else 1,
        uptime=int(now - live.first_seen) if live and live.first_seen else 0,
        maintenance_mode=worker.maintenance,
        info=worker.info,
        nsfw=live.nsfw if live else False,
        owner=f"{owner.username}#{owner.id}",
        trusted=owner.trusted,
        models=live.models if live else [],
        bridge_agent=live.bridge_agent if live else "unknown:0:unknown",
        max_pixels=live.max_pixels if live else 0,
        megapixelsteps_generated=round(live.megapixelsteps) if live else 0,
        img2img=live.img2img if live else False,
        painting=live.painting if live else False,
        post_processing=live.serves_need(Need.POST_PROCESSING) if live else False,
        lora=live.serves_need(Need.LORA) if live else False,
        controlnet=live.serves_need(Need.CONTROLNET) if live else False,
        sdxl_controlnet=live.sdxl_controlnet if live else False,
        hires_fix=live.serves_need(Need.HIRES_FIX) if live else None,
        tiling=live.serves_need(Need.TILING) if live else None,
        post_processors=_names(live, "pp", Need.POST_PROCESSING),
        controlnet_types=_names(live, "cn", Need.CONTROLNET),
        control_map_types=_names(live, "cm", Need.CONTROLNET),
        loras=_names(live, "lo", Need.LORA),
        textual_inversions=_names(live, "ti", Need.LORA),
        interpolation=live.serves_need(Need.INTERPOLATION) if live else None,
    )


def _names(live: LiveWorker | None, kind: str, need: Need) -> list[str] | None:
    """What it has of a kind: [] when it does not serve the kind, None when it takes any."""
    if live is None or not live.serves_need(need):
        return []
    return live.listed(kind)


def _with_owner(session: SessionDep, *conditions: object) -> tuple[Worker, User] | None:
    row = session.execute(
        select(Worker, User).join(User, Worker.owner_id == User.id).where(*conditions)
    ).first()
    return (row[0], row[1]) if row else None


@router.get(
    "",
    response_model=list[WorkerDetails],
    responses=error_replies(400, 503),
    summary="The workers online now (popped within HORDE_WORKER_OFFLINE_SECONDS)",
)
def list_workers(
    ctx: ContextDep,
    session: SessionDep,
    type: Annotated[
        WorkerType, Query(description="image, text or interrogation; empty = all")
    ] = "",
    name: Annotated[str | None, Query(max_length=100)] = None,
) -> list[WorkerDetails]:
    if type in ("text", "interrogation"):
        return []  # an image horde: it has no such workers
    # Read fresh (not the 1 s cache the request checks use): counts must be current here.
    found = live_workers(ctx.redis, ctx.keys, ctx.clock(), ctx.settings.worker_offline_seconds)
    online = {w.worker_id: w for w in found}
    if not online:
        return []
    query = select(Worker, User).join(User, Worker.owner_id == User.id)
    query = query.where(Worker.id.in_(online))
    if name:
        query = query.where(Worker.name == name)
    rows = session.execute(query.order_by(Worker.name)).all()
    return [_details(ctx, w, u, online[w.id]) for w, u in rows]


@router.get(
    "/name/{worker_name}",
    response_model=WorkerDetails,
    responses=error_replies(*READ_BY_ID),
    summary="One worker, by name",
)
def get_worker_by_name(
    worker_name: Annotated[str, Path(max_length=100)], ctx: ContextDep, session: SessionDep
) -> WorkerDetails:
    found = _with_owner(session, Worker.name == worker_name)
    if found is None:
        raise NotFound(f"No worker named {worker_name!r}")
    worker, owner = found
    return _details(ctx, worker, owner, read_worker(ctx.redis, ctx.keys, worker.id))


@router.get(
    "/{worker_id}",
    response_model=WorkerDetails,
    responses=error_replies(*READ_BY_ID),
    summary="One worker",
)
def get_worker(worker_id: WorkerId, ctx: ContextDep, session: SessionDep) -> WorkerDetails:
    found = _with_owner(session, Worker.id == worker_id.lower())
    if found is None:
        raise NotFound(f"No worker with id {worker_id!r}")
    worker, owner = found
    return _details(ctx, worker, owner, read_worker(ctx.redis, ctx.keys, worker.id))


@router.put(
    "/{worker_id}",
    response_model=ModifyWorkerReply,
    responses=error_replies(*WORKER_POST),
    summary="Owner: maintenance mode (only its owner's requests reach it) and info text",
)
def modify_worker(
    worker_id: WorkerId,
    body: ModifyWorkerInput,
    ctx: ContextDep,
    session: SessionDep,
    principal: RegisteredPrincipalDep,
) -> JSONResponse:
    worker = session.get(Worker, worker_id.lower())
    if worker is None:
        raise NotFound(f"No worker with id {worker_id!r}")
    if worker.owner_id != principal.user_id:
        raise Forbidden("Only the owner of a worker may change it")
    for field in ("name", "team", "paused"):
        if getattr(body, field) is not None:
            raise BadRequest(
                f"{field}: this horde does not change a worker's {field};"
                " maintenance, maintenance_msg and info can be changed"
            )
    changed: dict[str, object] = {}
    if body.maintenance is not None:
        worker.maintenance = body.maintenance
        if body.maintenance_msg is not None:
            worker.maintenance_msg = body.maintenance_msg
        changed["maintenance"] = body.maintenance
    if body.info is not None:
        worker.info = body.info or None
        changed["info"] = body.info
    if not changed:
        raise BadRequest(
            "Nothing to change: send maintenance and/or info", rc=ErrorCode.NO_WORKER_MOD_SELECTED
        )
    session.commit()
    if "maintenance" in changed:
        set_maintenance(ctx.redis, ctx.keys, worker.id, worker.maintenance)
        ctx.live_workers.invalidate()
    # As on the public horde: only what changed comes back.
    return JSONResponse(changed)
