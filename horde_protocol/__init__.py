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
from horde_protocol.generation import (
    DryRunReply,
    Generation,
    GenerationInput,
    GenerationMetadata,
    GenerationParams,
    GenerationState,
    RequestAsyncReply,
    RequestStatus,
    RequestStatusCheck,
    SourceProcessing,
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
from horde_protocol.limits import (
    ANONYMOUS_API_KEY,
    DEFAULT_CLIENT_AGENT,
    MAX_IMAGES_PER_REQUEST,
    MAX_SIDE,
    MIN_SIDE,
    SIDE_MULTIPLE,
)
from horde_protocol.prompts import NEGATIVE_PROMPT_SEPARATOR, split_prompt
from horde_protocol.samplers import SAMPLER_NAMES
from horde_protocol.status import (
    HeartbeatReply,
    ModelStatus,
    ModifyWorkerInput,
    ModifyWorkerReply,
    UserDetails,
    WorkerDetails,
)

__all__ = [
    "ANONYMOUS_API_KEY",
    "DEFAULT_CLIENT_AGENT",
    "MAX_IMAGES_PER_REQUEST",
    "MAX_SIDE",
    "MIN_SIDE",
    "NEGATIVE_PROMPT_SEPARATOR",
    "SAMPLER_NAMES",
    "SIDE_MULTIPLE",
    "DryRunReply",
    "ErrorCode",
    "ErrorReply",
    "Generation",
    "GenerationInput",
    "GenerationMetadata",
    "GenerationParams",
    "GenerationState",
    "HeartbeatReply",
    "ModelStatus",
    "ModifyWorkerInput",
    "ModifyWorkerReply",
    "PopPayload",
    "PopReply",
    "PopRequest",
    "ProgressReply",
    "ProgressRequest",
    "ReplyBody",
    "RequestAsyncReply",
    "RequestBody",
    "RequestStatus",
    "RequestStatusCheck",
    "SourceProcessing",
    "SubmitReply",
    "SubmitRequest",
    "UserDetails",
    "WorkerDetails",
    "split_prompt",
]
