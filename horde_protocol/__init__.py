"""The AI Horde v2 image protocol as krita-horde speaks it: pydantic models and shared rules.

The horde (`horde_api`), the worker (`horde_worker`) and the contract tests of the Krita plug-in
share this one definition. It imports nothing but pydantic and the standard library.

Compatibility rules (see docs/protocol.md):
- request bodies ignore fields they do not know, reply bodies may gain fields, and readers
  ignore what they do not know;
- our additions (progress, previews, long-poll) are extra fields or endpoints; the meaning of an
  existing field never changes.
"""

from horde_protocol.base import ReplyBody, RequestBody
from horde_protocol.errors import ErrorCode, ErrorReply
from horde_protocol.filters import (
    AddFilterInput,
    FilterDetails,
    FilterPromptSuspicion,
    FilterRegex,
    PatchFilterInput,
    TestPromptInput,
)
from horde_protocol.generation import (
    FACE_FIXERS,
    MAX_LORAS,
    MAX_TEXTUAL_INVERSIONS,
    POST_PROCESSORS,
    UPSCALER_FACTORS,
    UPSCALERS,
    ControlType,
    DryRunReply,
    Generation,
    GenerationInput,
    GenerationMetadata,
    GenerationParams,
    GenerationState,
    Interpolation,
    LoraEntry,
    PostProcessingOrder,
    RequestAsyncReply,
    RequestStatus,
    RequestStatusCheck,
    RequestWarning,
    SourceProcessing,
    TextualInversionEntry,
)
from horde_protocol.jobs import (
    PopPayload,
    PopReply,
    PopRequest,
    ProgressReply,
    ProgressRequest,
    SubmitReply,
    SubmitRequest,
)
from horde_protocol.kudos import KudosTransferInput, KudosTransferReply
from horde_protocol.limits import (
    ANONYMOUS_API_KEY,
    DEFAULT_CLIENT_AGENT,
    MAX_IMAGES_PER_REQUEST,
    MAX_RESULT_PIXELS,
    MAX_SIDE,
    MIN_SIDE,
    SIDE_MULTIPLE,
)
from horde_protocol.prompts import NEGATIVE_PROMPT_SEPARATOR, split_prompt
from horde_protocol.samplers import SAMPLER_NAMES
from horde_protocol.status import (
    Extension,
    HeartbeatReply,
    ModelStatus,
    ModifyWorkerInput,
    ModifyWorkerReply,
    TeamDetailsLite,
    UserActiveGenerations,
    UserAmountRecords,
    UserDetails,
    UserKudosDetails,
    UserRecords,
    UserThingRecords,
    WorkerDetails,
    WorkerKudosDetails,
)

__all__ = [
    "ANONYMOUS_API_KEY",
    "DEFAULT_CLIENT_AGENT",
    "FACE_FIXERS",
    "MAX_IMAGES_PER_REQUEST",
    "MAX_LORAS",
    "MAX_RESULT_PIXELS",
    "MAX_SIDE",
    "MAX_TEXTUAL_INVERSIONS",
    "MIN_SIDE",
    "NEGATIVE_PROMPT_SEPARATOR",
    "POST_PROCESSORS",
    "SAMPLER_NAMES",
    "SIDE_MULTIPLE",
    "UPSCALERS",
    "UPSCALER_FACTORS",
    "AddFilterInput",
    "ControlType",
    "DryRunReply",
    "ErrorCode",
    "ErrorReply",
    "Extension",
    "FilterDetails",
    "FilterPromptSuspicion",
    "FilterRegex",
    "Generation",
    "GenerationInput",
    "GenerationMetadata",
    "GenerationParams",
    "GenerationState",
    "HeartbeatReply",
    "Interpolation",
    "KudosTransferInput",
    "KudosTransferReply",
    "LoraEntry",
    "ModelStatus",
    "ModifyWorkerInput",
    "ModifyWorkerReply",
    "PatchFilterInput",
    "PopPayload",
    "PopReply",
    "PopRequest",
    "PostProcessingOrder",
    "ProgressReply",
    "ProgressRequest",
    "ReplyBody",
    "RequestAsyncReply",
    "RequestBody",
    "RequestStatus",
    "RequestStatusCheck",
    "RequestWarning",
    "SourceProcessing",
    "SubmitReply",
    "SubmitRequest",
    "TeamDetailsLite",
    "TestPromptInput",
    "TextualInversionEntry",
    "UserActiveGenerations",
    "UserAmountRecords",
    "UserDetails",
    "UserKudosDetails",
    "UserRecords",
    "UserThingRecords",
    "WorkerDetails",
    "WorkerKudosDetails",
    "split_prompt",
]
