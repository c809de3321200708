"""What the OpenAPI schema says each route answers, kept equal to what the server really sends.

FastAPI documents a 422 reply for every route with parameters, but our validation handler answers
400 `ValidationError` (as the AI Horde does); `install_honest_openapi` removes those 422s, and the
routes list their real error statuses with `error_replies(...)`.
"""

from __future__ import annotations

import json
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

from horde_protocol import ErrorReply

_WHEN = {
    400: "Bad input (`ValidationError`, `ImageValidationFailed`, ...) or a refused job state",
    401: "Missing, unknown or revoked API key (`InvalidAPIKey`)",
    403: "Not allowed for this key (`WrongCredentials`, `Forbidden`, `AnonForbidden`)",
    404: "Unknown id (`NotFound`)",
    413: "Body above the size limit (`BodyTooLarge`)",
    429: "Too many images in flight or requests per minute (`TooManyPrompts`, `RateLimited`)",
    503: "Redis or the database is unreachable (`ServiceUnavailable`)",
}


def error_replies(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """`responses=` entries for these error statuses, each a `{message, rc}` body."""
    return {status: {"model": ErrorReply, "description": _WHEN[status]} for status in statuses}


# The statuses of the usual kinds of route: reads by id, and bodies sent by a key holder.
READ_BY_ID = (400, 404, 503)
WORKER_POST = (400, 401, 403, 404, 413, 503)


def install_honest_openapi(app: FastAPI) -> None:
    """Serve the generated schema without the 422 replies the server never sends."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = get_openapi(
                title=app.title,
                version=app.version,
                description=app.description,
                routes=app.routes,
            )
            for path in schema.get("paths", {}).values():
                for operation in path.values():
                    operation.get("responses", {}).pop("422", None)
            components = schema.get("components", {}).get("schemas", {})
            for name in ("HTTPValidationError", "ValidationError"):
                if f'"#/components/schemas/{name}"' not in json.dumps(schema["paths"]):
                    components.pop(name, None)
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
