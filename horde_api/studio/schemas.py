"""Bodies of the library endpoints (`/api/v2/library/...`, our extension; docs/protocol.md)."""

from __future__ import annotations

import json
from enum import Enum
from typing import Any

from pydantic import Field

from horde_api.studio.models import LibraryImage, LibraryRequest
from horde_protocol.base import ReplyBody, RequestBody

API = "/api/v2/library"


class SourceKind(str, Enum):
    UPLOAD = "upload"
    LIBRARY = "library"
    URL = "url"


class SourceNote(RequestBody):
    """Where the client took a request's source image from, kept with the request."""

    kind: SourceKind
    label: str = Field("", max_length=300, description="file name, URL or library image id")
    image_id: str | None = Field(None, max_length=36, description="library image it came from")


class KeepBody(RequestBody):
    id: str = Field(min_length=1, max_length=64, description="request id from /generate/async")
    source: SourceNote | None = None


class FetchSourceBody(RequestBody):
    url: str = Field(min_length=1, max_length=2048, description="http(s) URL of a public image")


class LibraryImageReply(ReplyBody):
    id: str
    index: int
    seed: str
    model: str
    worker_name: str
    censored: bool
    size_bytes: int
    url: str = Field(description="GET with the same headers: the image (WebP)")


class LibraryRequestReply(ReplyBody):
    request_id: str
    state: str = Field(description="pending, done, cancelled, faulted, expired or lost")
    n: int
    prompt: str
    negative_prompt: str
    model: str
    source_processing: str | None
    params: dict[str, Any]
    source: dict[str, Any] | None
    source_url: str | None
    queued_at: float
    started_at: float | None
    finished_at: float | None
    wait_seconds: float | None = Field(description="queued until a worker took the first image")
    generation_seconds: float | None = Field(description="first image taken until the last done")
    total_seconds: float | None
    images: list[LibraryImageReply]


class LibraryPage(ReplyBody):
    total: int
    offset: int
    requests: list[LibraryRequestReply]


class LibrarySummary(ReplyBody):
    owner: str = Field(description="the user, or 'Anonymous (this browser)'")
    anonymous: bool
    images: int
    pending_images: int
    max_images: int
    retention_days: float = Field(description="0: kept until deleted")


class DeletedReply(ReplyBody):
    deleted_images: int


def split_prompt(prompt: str) -> tuple[str, str]:
    """The public horde's "positive ### negative" prompt, split."""
    positive, _, negative = prompt.partition("###")
    return positive.strip(), negative.strip()


def image_reply(image: LibraryImage) -> LibraryImageReply:
    return LibraryImageReply(
        id=image.id,
        index=image.index,
        seed=image.seed,
        model=image.model,
        worker_name=image.worker_name,
        censored=image.state == "censored",
        size_bytes=image.size_bytes,
        url=f"{API}/images/{image.id}.webp",
    )


def _span(start: float | None, end: float | None) -> float | None:
    return round(end - start, 2) if start is not None and end is not None else None


def request_reply(row: LibraryRequest) -> LibraryRequestReply:
    settings = json.loads(row.settings)
    prompt, negative = split_prompt(settings.get("prompt", ""))
    models = settings.get("models") or []
    return LibraryRequestReply(
        request_id=row.request_id,
        state=row.state,
        n=row.n,
        prompt=prompt,
        negative_prompt=negative,
        model=models[0] if models else "",
        source_processing=settings.get("source_processing") if settings.get("source") else None,
        params=settings.get("params", {}),
        source=json.loads(row.source) if row.source else None,
        source_url=f"{API}/requests/{row.request_id}/source" if row.source_ref else None,
        queued_at=row.queued_at,
        started_at=row.started_at,
        finished_at=row.finished_at,
        wait_seconds=_span(row.queued_at, row.started_at),
        generation_seconds=_span(row.started_at, row.finished_at),
        total_seconds=_span(row.queued_at, row.finished_at),
        images=[image_reply(image) for image in row.images],
    )
