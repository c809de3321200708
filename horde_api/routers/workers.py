"""Workers: list, details, and maintenance mode for their owners."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path
from sqlalchemy import select

from horde_api.db.models import User, Worker
from horde_api.deps import ContextDep, RegisteredPrincipalDep, SessionDep
from horde_api.errors import Forbidden, NotFound
from horde_api.openapi_replies import READ_BY_ID, WORKER_POST, error_replies
from horde_api.queue.workers import LiveWorker, read_worker, set_maintenance
from horde_protocol import ModifyWorkerInput, ModifyWorkerReply, WorkerDetails

router = APIRouter(prefix="/api/v2/workers", tags=["workers"])
WorkerId = Annotated[str, Path(max_length=64)]


def _details(
    ctx: ContextDep, worker: Worker, owner: User, live: LiveWorker | None
) -> WorkerDetails:
    now = ctx.clock()
    online = live is not None and now - live.last_seen <= ctx.settings.worker_offline_seconds
    return WorkerDetails(
        name=worker.name,
        id=worker.id,
        online=online,
        models=live.models if live else [],
        max_pixels=live.max_pixels if live else 0,
        uptime=int(now - live.first_seen) if live and live.first_seen else 0,
        maintenance_mode=worker.maintenance,
        trusted=owner.trusted,
        threads=live.threads if live else 1,
        img2img=live.img2img if live else True,
        painting=live.painting if live else True,
        nsfw=live.nsfw if live else False,
        requests_fulfilled=live.fulfilled if live else 0,
        owner=f"{owner.username}#{owner.id}",
    )


@router.get(
    "",
    response_model=list[WorkerDetails],
    responses=error_replies(503),
    summary="All registered workers",
)
def list_workers(ctx: ContextDep, session: SessionDep) -> list[WorkerDetails]:
    rows = session.execute(select(Worker, User).join(User, Worker.owner_id == User.id)).all()
    return [_details(ctx, w, u, read_worker(ctx.redis, ctx.keys, w.id)) for w, u in rows]


@router.get(
    "/{worker_id}",
    response_model=WorkerDetails,
    responses=error_replies(*READ_BY_ID),
    summary="One worker",
)
def get_worker(worker_id: WorkerId, ctx: ContextDep, session: SessionDep) -> WorkerDetails:
    row = session.execute(
        select(Worker, User).join(User, Worker.owner_id == User.id).where(Worker.id == worker_id)
    ).first()
    if row is None:
        raise NotFound(f"No worker with id {worker_id!r}")
    return _details(ctx, row[0], row[1], read_worker(ctx.redis, ctx.keys, worker_id))


@router.put(
    "/{worker_id}",
    response_model=ModifyWorkerReply,
    responses=error_replies(*WORKER_POST),
    summary="Owner: switch maintenance mode (a worker in maintenance gets no jobs)",
)
def modify_worker(
    worker_id: WorkerId,
    body: ModifyWorkerInput,
    ctx: ContextDep,
    session: SessionDep,
    principal: RegisteredPrincipalDep,
) -> ModifyWorkerReply:
    worker = session.get(Worker, worker_id)
    if worker is None:
        raise NotFound(f"No worker with id {worker_id!r}")
    if worker.owner_id != principal.user_id:
        raise Forbidden("Only the owner of a worker may change it")
    if body.maintenance is not None:
        worker.maintenance = body.maintenance
        if body.maintenance_msg is not None:
            worker.maintenance_msg = body.maintenance_msg
        session.commit()
        set_maintenance(ctx.redis, ctx.keys, worker_id, body.maintenance)
        ctx.live_workers.invalidate()
    return ModifyWorkerReply(maintenance=worker.maintenance)
