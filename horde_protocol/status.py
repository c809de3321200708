"""The horde's public state: models, workers, users and the heartbeat."""

from __future__ import annotations

from pydantic import Field

from horde_protocol.base import ReplyBody, RequestBody


class ModelStatus(ReplyBody):
    name: str
    count: int
    performance: float = 0
    queued: float = 0
    jobs: float = 0
    eta: int = 0
    type: str = "image"


class WorkerDetails(ReplyBody):
    name: str
    id: str
    online: bool
    models: list[str] = Field(default_factory=list)
    max_pixels: int = 0
    performance: str = "0 megapixelsteps per second"
    kudos_rewards: float = 0
    uptime: int = 0
    maintenance_mode: bool = False
    trusted: bool = False
    threads: int = 1
    type: str = "image"
    img2img: bool = True
    painting: bool = True
    nsfw: bool = False
    requests_fulfilled: int = 0
    owner: str | None = None


class ModifyWorkerInput(RequestBody):
    maintenance: bool | None = None
    maintenance_msg: str | None = Field(None, max_length=500)


class ModifyWorkerReply(ReplyBody):
    maintenance: bool | None = None


class UserDetails(ReplyBody):
    username: str
    id: int
    kudos: float = 0
    worker_ids: list[str] = Field(default_factory=list)
    concurrency: int = 30
    trusted: bool = False
    worker_count: int = 0


class HeartbeatReply(ReplyBody):
    message: str = "OK"
    version: str
