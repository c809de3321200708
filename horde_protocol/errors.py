"""Error replies: `{"message": ..., "rc": ...}` with the public horde's return codes."""

from __future__ import annotations

from enum import Enum

from horde_protocol.base import ReplyBody


class ErrorCode(str, Enum):
    """`rc` values of error replies, as the public horde names them (plus our own few)."""

    BAD_REQUEST = "BadRequest"
    VALIDATION_ERROR = "ValidationError"
    NOT_FOUND = "NotFound"
    INVALID_API_KEY = "InvalidAPIKey"
    WRONG_CREDENTIALS = "WrongCredentials"
    DUPLICATE_GEN = "DuplicateGen"
    ABORTED_GEN = "AbortedGen"
    TOO_MANY_PROMPTS = "TooManyPrompts"
    KUDOS_UPFRONT = "KudosUpfront"
    KUDOS_TRANSFER_FROM_ANON = "KudosTransferFromAnon"
    INVALID_TARGET_USERNAME = "InvalidTargetUsername"
    KUDOS_TRANSFER_TO_ANON = "KudosTransferToAnon"
    KUDOS_TRANSFER_TO_SELF = "KudosTransferToSelf"
    TOO_FAST_KUDOS_TRANSFERS = "TooFastKudosTransfers"
    NEGATIVE_KUDOS_TRANSFER = "NegativeKudosTransfer"
    INVALID_KUDOS_TRANSFER_AMOUNT = "InvalidKudosTransferAmount"
    KUDOS_TRANSFER_NOT_ENOUGH = "KudosTransferNotEnough"
    IMAGE_VALIDATION_FAILED = "ImageValidationFailed"
    SOURCE_MASK_UNNEEDED = "SourceMaskUnneeded"
    FORBIDDEN = "Forbidden"
    CORRUPT_PROMPT = "CorruptPrompt"
    ANONYMOUS_FORBIDDEN = "AnonForbidden"
    LOCKED = "Locked"
    WORKER_MAINTENANCE = "WorkerMaintenance"
    WORKER_NOT_FOUND = "WorkerNotFound"
    NO_WORKER_MOD_SELECTED = "NoWorkerModSelected"
    # Requests asking for what this horde cannot route or no worker protocol can express
    # (the public horde's codes where it has one, docs/protocol.md "Compatibility").
    TOO_MANY_LORAS = "TooManyLoras"
    BAD_LORA_VERSION = "BadLoraVersion"
    TOO_MANY_TIS = "TooManyTIs"
    TOO_MANY_UPSCALERS = "TooManyUpscalers"
    CONTROLNET_SOURCE_MISSING = "ControlNetSourceMissing"
    CONTROLNET_INPAINTING_MISMATCH = "ControlNetInpaintingMismatch"
    SPECIAL_FIELD_NEEDS_SPECIAL_USER = "SpecialFieldNeedsSpecialUser"
    ONLY_SERVICE_ACCOUNT_PROXY = "OnlyServiceAccountProxy"
    REQUIRES_TRUST = "RequiresTrust"
    INVALID_REMIX = "InvalidRemix"
    INVALID_EXTRA_SOURCE_IMAGES = "InvalidExtraSourceImages"
    INVALID_EXTRA_TEXTS = "InvalidExtraTexts"
    UNSUPPORTED_WORKFLOW = "UnsupportedWorkflow"
    UNSUPPORTED_TRANSPARENCY = "UnsupportedTransparency"
    UNSUPPORTED_STYLE = "UnsupportedStyle"
    INTERPOLATION_NEEDS_TXT2IMG = "InterpolationNeedsTxt2img"  # our extension's own
    RATE_LIMITED = "RateLimited"
    BODY_TOO_LARGE = "BodyTooLarge"
    SERVICE_UNAVAILABLE = "ServiceUnavailable"
    INTERNAL_ERROR = "InternalServerError"


class ErrorReply(ReplyBody):
    message: str
    rc: str
    # Input validation failures name each bad field, as the public horde's replies do.
    errors: dict[str, str] | None = None
