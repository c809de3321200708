"""The public horde's prompt-filter API (/v2/filters), which moderators use."""

from __future__ import annotations

from pydantic import Field

from horde_protocol.base import ReplyBody, RequestBody

# The public horde accepts filter types 10..29 and uses 10 and 11 (minors) and 20 (sexual).
MIN_FILTER_TYPE = 10
MAX_FILTER_TYPE = 29


class FilterDetails(ReplyBody):
    id: str
    regex: str
    filter_type: int
    description: str | None = None
    replacement: str = ""
    user: str = Field(description="The moderator who added or last changed this filter")


class FilterRegex(ReplyBody):
    """All filters of one type as one regex, for a client that checks prompts itself."""

    filter_type: int
    regex: str


class FilterPromptSuspicion(ReplyBody):
    suspicion: int
    matches: list[str]


class AddFilterInput(RequestBody):
    regex: str = Field(min_length=1, max_length=1000)
    filter_type: int = Field(ge=MIN_FILTER_TYPE, le=MAX_FILTER_TYPE)
    description: str | None = Field(default=None, max_length=1000)
    replacement: str = Field(default="", max_length=1000)


class PatchFilterInput(RequestBody):
    regex: str | None = Field(default=None, min_length=1, max_length=1000)
    filter_type: int | None = Field(default=None, ge=MIN_FILTER_TYPE, le=MAX_FILTER_TYPE)
    description: str | None = Field(default=None, max_length=1000)
    replacement: str | None = Field(default=None, max_length=1000)


class TestPromptInput(RequestBody):
    prompt: str = Field(min_length=1)
    filter_type: int | None = Field(default=None, ge=MIN_FILTER_TYPE, le=MAX_FILTER_TYPE)
