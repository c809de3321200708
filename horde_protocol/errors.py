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
    IMAGE_VALIDATION_FAILED = "ImageValidationFailed"
    SOURCE_MASK_UNNEEDED = "SourceMaskUnneeded"
    FORBIDDEN = "Forbidden"
    ANONYMOUS_FORBIDDEN = "AnonForbidden"
    LOCKED = "Locked"
    RATE_LIMITED = "RateLimited"
    BODY_TOO_LARGE = "BodyTooLarge"
    SERVICE_UNAVAILABLE = "ServiceUnavailable"
    INTERNAL_ERROR = "InternalServerError"


class ErrorReply(ReplyBody):
    message: str
    rc: str
