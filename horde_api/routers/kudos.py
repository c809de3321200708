"""Kudos between users: the public horde's POST /v2/kudos/transfer, with its checks and codes."""

from __future__ import annotations

import uuid

from fastapi import APIRouter

from horde_api.db.users import find_user
from horde_api.deps import ContextDep, PrincipalDep, SessionDep
from horde_api.errors import BadRequest
from horde_api.kudos.ledger import NotEnoughKudos, to_cents, transfer
from horde_api.openapi_replies import error_replies
from horde_protocol import ErrorCode, KudosTransferInput, KudosTransferReply

router = APIRouter(prefix="/api/v2/kudos", tags=["kudos"])

# A user who just received kudos from someone may not send kudos back to them for this long.
RETURN_TRANSFER_SECONDS = 60
# More than any balance can hold (balances are BIGINT hundredths): refused before the database.
MAX_TRANSFER_KUDOS = 10**15


@router.post(
    "/transfer",
    response_model=KudosTransferReply,
    responses=error_replies(400, 401, 503),
    summary="Send kudos to another user",
)
def transfer_kudos(
    body: KudosTransferInput, principal: PrincipalDep, ctx: ContextDep, session: SessionDep
) -> KudosTransferReply:
    if principal.user_id is None:
        raise BadRequest(
            "The anonymous user has no kudos to send; use your own API key",
            rc=ErrorCode.KUDOS_TRANSFER_FROM_ANON,
        )
    target = find_user(session, body.username)
    if target is None:
        if body.username.split("#", 1)[0].lower() == "anonymous":
            raise BadRequest(
                "Kudos sent to the anonymous user would be lost; name a registered user",
                rc=ErrorCode.KUDOS_TRANSFER_TO_ANON,
            )
        raise BadRequest(
            f"No user {body.username!r}: name the receiver as name#id or name",
            rc=ErrorCode.INVALID_TARGET_USERNAME,
        )
    if target.id == principal.user_id:
        raise BadRequest("You cannot send kudos to yourself", rc=ErrorCode.KUDOS_TRANSFER_TO_SELF)
    if ctx.redis.exists(ctx.keys.recent_transfer(target.id, principal.user_id)):
        raise BadRequest(
            f"{target.username}#{target.id} sent you kudos less than a minute ago; wait at least"
            " a minute before sending kudos back",
            rc=ErrorCode.TOO_FAST_KUDOS_TRANSFERS,
        )
    if body.amount < 0:
        raise BadRequest("The amount must not be negative", rc=ErrorCode.NEGATIVE_KUDOS_TRANSFER)
    if body.amount > MAX_TRANSFER_KUDOS:
        raise BadRequest(
            f"Not enough kudos: nobody has {body.amount:g} kudos to send",
            rc=ErrorCode.KUDOS_TRANSFER_NOT_ENOUGH,
        )
    cents = to_cents(body.amount)
    if cents == 0 or abs(cents - body.amount * 100) > 1e-6:
        raise BadRequest(
            f"Transfer amount {body.amount:g}: send a positive amount in hundredths of a kudos"
            " at the finest",
            rc=ErrorCode.INVALID_KUDOS_TRANSFER_AMOUNT,
        )
    try:
        transfer(session, principal.user_id, target.id, cents, uuid.uuid4().hex)
    except NotEnoughKudos:
        raise BadRequest(
            f"Not enough kudos: sending {body.amount:g} needs a balance of at least that much",
            rc=ErrorCode.KUDOS_TRANSFER_NOT_ENOUGH,
        ) from None
    ctx.redis.set(
        ctx.keys.recent_transfer(principal.user_id, target.id), 1, ex=RETURN_TRANSFER_SECONDS
    )
    return KudosTransferReply(transferred=cents / 100)
