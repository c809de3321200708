"""Domain errors, each with its HTTP status and AI Horde `rc`, and their `{message, rc}` replies."""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from redis.exceptions import RedisError
from sqlalchemy.exc import OperationalError
from starlette.exceptions import HTTPException as StarletteHTTPException

from horde_api.store.results import ResultStoreUnavailable
from horde_protocol import ErrorCode

log = logging.getLogger(__name__)


class HordeError(Exception):
    status_code = 400
    rc: ErrorCode = ErrorCode.BAD_REQUEST

    def __init__(self, message: str, rc: ErrorCode | None = None) -> None:
        super().__init__(message)
        self.message = message
        if rc is not None:
            self.rc = rc


class BadRequest(HordeError):
    status_code = 400
    rc = ErrorCode.BAD_REQUEST


class ValidationFailed(HordeError):
    status_code = 400
    rc = ErrorCode.VALIDATION_ERROR


class ImageValidationFailed(HordeError):
    status_code = 400
    rc = ErrorCode.IMAGE_VALIDATION_FAILED


class InvalidApiKey(HordeError):
    status_code = 401
    rc = ErrorCode.INVALID_API_KEY


class WrongCredentials(HordeError):
    status_code = 403
    rc = ErrorCode.WRONG_CREDENTIALS


class Forbidden(HordeError):
    status_code = 403
    rc = ErrorCode.FORBIDDEN


class CorruptPrompt(HordeError):
    status_code = 400
    rc = ErrorCode.CORRUPT_PROMPT


class KudosUpfront(HordeError):
    status_code = 403
    rc = ErrorCode.KUDOS_UPFRONT


class AnonymousForbidden(HordeError):
    status_code = 403
    rc = ErrorCode.ANONYMOUS_FORBIDDEN


class WorkerMaintenance(HordeError):
    status_code = 403
    rc = ErrorCode.WORKER_MAINTENANCE


class NotFound(HordeError):
    status_code = 404
    rc = ErrorCode.NOT_FOUND


class WorkerNotFound(NotFound):
    rc = ErrorCode.WORKER_NOT_FOUND


class DuplicateGen(HordeError):
    status_code = 400
    rc = ErrorCode.DUPLICATE_GEN


class AbortedGen(HordeError):
    status_code = 400
    rc = ErrorCode.ABORTED_GEN


class TooManyPrompts(HordeError):
    status_code = 429
    rc = ErrorCode.TOO_MANY_PROMPTS


class RateLimited(HordeError):
    status_code = 429
    rc = ErrorCode.RATE_LIMITED


class BodyTooLarge(HordeError):
    status_code = 413
    rc = ErrorCode.BODY_TOO_LARGE


def error_response(
    status_code: int, message: str, rc: str, errors: dict[str, str] | None = None
) -> JSONResponse:
    body: dict[str, object] = {"message": message, "rc": rc}
    if errors:
        body["errors"] = errors
    return JSONResponse(body, status_code=status_code)


def _describe_validation(exc: RequestValidationError) -> tuple[str, dict[str, str]]:
    """The message and, as on the public horde, `errors`: field -> what is wrong with it."""
    errors: dict[str, str] = {}
    for error in exc.errors()[:10]:
        location = ".".join(str(p) for p in error.get("loc", ()) if p not in ("body",))
        message = str(error.get("msg", "invalid"))
        if message.startswith("Value error, "):
            message = message[len("Value error, ") :]
        errors.setdefault(location or "body", message)
    parts = [f"{field}: {message}" for field, message in errors.items()]
    return "Input payload validation failed: " + "; ".join(parts), errors


_STATUS_RC = {
    400: ErrorCode.BAD_REQUEST,
    401: ErrorCode.INVALID_API_KEY,
    403: ErrorCode.FORBIDDEN,
    404: ErrorCode.NOT_FOUND,
    413: ErrorCode.BODY_TOO_LARGE,
    429: ErrorCode.RATE_LIMITED,
}


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(HordeError)
    async def _horde_error(_: Request, exc: HordeError) -> JSONResponse:
        return error_response(exc.status_code, exc.message, exc.rc.value)

    @app.exception_handler(RequestValidationError)
    async def _validation_error(_: Request, exc: RequestValidationError) -> JSONResponse:
        message, errors = _describe_validation(exc)
        return error_response(400, message, ErrorCode.VALIDATION_ERROR.value, errors)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        rc = _STATUS_RC.get(exc.status_code, ErrorCode.BAD_REQUEST)
        message = exc.detail if isinstance(exc.detail, str) else "request failed"
        if exc.status_code == 404 and message == "Not Found":
            message = "No such endpoint; see /openapi.json for the API"
        return error_response(exc.status_code, message, rc.value)

    @app.exception_handler(RedisError)
    async def _redis_down(_: Request, exc: RedisError) -> JSONResponse:
        log.error("Redis failed: %s", exc)
        return error_response(
            503,
            "The queue store (Redis) is unreachable; nothing was changed, try again shortly",
            ErrorCode.SERVICE_UNAVAILABLE.value,
        )

    @app.exception_handler(OperationalError)
    async def _database_down(_: Request, exc: OperationalError) -> JSONResponse:
        log.error("database failed: %s", type(exc).__name__)
        return error_response(
            503,
            "The user database is unreachable; try again shortly",
            ErrorCode.SERVICE_UNAVAILABLE.value,
        )

    @app.exception_handler(ResultStoreUnavailable)
    async def _results_down(_: Request, exc: ResultStoreUnavailable) -> JSONResponse:
        # The store logged what failed; the caller learns only that it may try again.
        return error_response(
            503,
            "The result storage is unreachable; nothing was lost, try again shortly",
            ErrorCode.SERVICE_UNAVAILABLE.value,
        )

    @app.exception_handler(Exception)
    async def _unexpected(_: Request, exc: Exception) -> JSONResponse:
        log.exception("unexpected error while serving a request")
        return error_response(500, "Internal server error", ErrorCode.INTERNAL_ERROR.value)
