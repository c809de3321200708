"""The public horde's kudos transfer: POST /v2/kudos/transfer."""

from __future__ import annotations

from pydantic import Field

from horde_protocol.base import ReplyBody, RequestBody


class KudosTransferInput(RequestBody):
    username: str = Field(
        min_length=1, max_length=120, description="who receives the kudos: `name#id` or `name`"
    )
    amount: float = Field(
        default=100,
        allow_inf_nan=False,
        description="kudos to send, in hundredths at the finest",
    )


class KudosTransferReply(ReplyBody):
    transferred: float
