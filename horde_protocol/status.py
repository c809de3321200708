"""The horde's public state: models, workers, users and the heartbeat.

Fields follow the public horde's reply models; where it always sends a field, so do we, with an
honest value (docs/protocol.md says which values we do not track and what we send instead).
"""

from __future__ import annotations

from enum import Enum

from pydantic import Field

from horde_protocol.base import ReplyBody, RequestBody


class ModelStatus(ReplyBody):
    name: str
    count: int = Field(description="threads of the live workers serving the model")
    performance: float = 0
    queued: float = Field(0, description="megapixel-steps waiting")
    jobs: float = Field(0, description="images waiting")
    eta: int = 0
    type: str = "image"
    # Our extensions: what the live workers serving this model offer with it (the Krita docker
    # offers a field only when some worker serves it). A worker that lists no names of a kind
    # takes any (the public horde's workers fetch LoRAs on demand): `lora` is then true, and
    # its names are not in `loras`.
    post_processors: list[str] | None = None
    controlnet_types: list[str] | None = None
    control_map_types: list[str] | None = None
    lora: bool | None = None
    loras: list[str] | None = None
    textual_inversions: list[str] | None = None
    hires_fix: bool | None = None
    tiling: bool | None = None


class WorkerKudosDetails(ReplyBody):
    generated: float = 0
    uptime: int = 0


class TeamDetailsLite(ReplyBody):
    name: str | None = None
    id: str | None = None


class WorkerDetails(ReplyBody):
    type: str = "image"
    name: str
    id: str
    online: bool
    requests_fulfilled: int = 0
    uncompleted_jobs: int = 0
    kudos_rewards: float = 0
    kudos_details: WorkerKudosDetails = Field(default_factory=WorkerKudosDetails)
    performance: str = "0.0 megapixelsteps per second"
    threads: int = 1
    uptime: int = 0
    maintenance_mode: bool = False
    info: str | None = None
    nsfw: bool = False
    owner: str | None = None
    trusted: bool = False
    flagged: bool = False
    models: list[str] = Field(default_factory=list)
    team: TeamDetailsLite = Field(default_factory=TeamDetailsLite)
    bridge_agent: str = "unknown:0:unknown"
    max_pixels: int = 0
    megapixelsteps_generated: int = 0
    img2img: bool = True
    painting: bool = True
    post_processing: bool = Field(True, alias="post-processing")
    lora: bool = False
    controlnet: bool = False
    sdxl_controlnet: bool = False
    # Our extensions: what the worker announced beyond the public horde's flags.
    hires_fix: bool | None = None
    tiling: bool | None = None
    # null = it listed none of that kind: it takes any (the public horde's assumption).
    post_processors: list[str] | None = None
    controlnet_types: list[str] | None = None
    control_map_types: list[str] | None = None
    loras: list[str] | None = None
    textual_inversions: list[str] | None = None
    interpolation: bool | None = None


class ModifyWorkerInput(RequestBody):
    maintenance: bool | None = None
    maintenance_msg: str | None = Field(None, max_length=500)
    info: str | None = Field(None, max_length=1000)
    # Known to the public horde, not changeable here: refused by name (docs/protocol.md).
    name: str | None = None
    team: str | None = None
    paused: bool | None = None


class ModifyWorkerReply(ReplyBody):
    maintenance: bool | None = None
    info: str | None = None


class UserKudosDetails(ReplyBody):
    accumulated: float = 0
    gifted: float = 0
    donated: float = 0
    admin: float = 0
    received: float = 0
    recurring: float = 0
    awarded: float = 0
    styled: float = 0


class UserThingRecords(ReplyBody):
    megapixelsteps: float = 0
    tokens: int = 0


class UserAmountRecords(ReplyBody):
    image: int = 0
    text: int = 0
    interrogation: int = 0


class UserRecords(ReplyBody):
    usage: UserThingRecords = Field(default_factory=UserThingRecords)
    contribution: UserThingRecords = Field(default_factory=UserThingRecords)
    fulfillment: UserAmountRecords = Field(default_factory=UserAmountRecords)
    request: UserAmountRecords = Field(default_factory=UserAmountRecords)


class UsageDetails(ReplyBody):
    """Obsolete on the public horde (`records` replaces it); filled from the same counts."""

    megapixelsteps: float = 0
    requests: int = 0


class ContributionDetails(ReplyBody):
    megapixelsteps: float = 0
    fulfillments: int = 0


class UserActiveGenerations(ReplyBody):
    image: list[str] = Field(default_factory=list)
    text: list[str] = Field(default_factory=list)
    alchemy: list[str] = Field(default_factory=list)


class UserDetails(ReplyBody):
    username: str
    id: int
    kudos: float = 0
    kudos_details: UserKudosDetails = Field(default_factory=UserKudosDetails)
    usage: UsageDetails = Field(default_factory=lambda: UsageDetails(), description="obsolete")
    contributions: ContributionDetails = Field(
        default_factory=lambda: ContributionDetails(), description="obsolete; see records"
    )
    records: UserRecords = Field(default_factory=UserRecords)
    concurrency: int = 30
    worker_invited: int = 0
    moderator: bool = False
    trusted: bool = False
    flagged: bool = False
    pseudonymous: bool = False
    service: bool = False
    education: bool = False
    account_age: int = 0
    worker_count: int = 0
    worker_ids: list[str] | None = None
    sharedkey_ids: list[str] | None = None
    active_generations: UserActiveGenerations | None = None


class Extension(str, Enum):
    """Names of our protocol extensions, as the heartbeat lists them (docs/protocol.md)."""

    CHECK_WAIT = "check_wait"  # GET /generate/check/{id}?wait=S long-polls
    PROGRESS = "progress"  # POST /generate/progress, check's progress and previews
    INTERPOLATION = "interpolation"  # params.interpolation, routed to workers announcing it


class HeartbeatReply(ReplyBody):
    message: str = "OK"
    version: str
    # Our extension: the protocol extensions this horde serves (the public horde sends none), so
    # a client can tell before it relies on one.
    extensions: list[str] | None = None
