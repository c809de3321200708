"""The two kinds of body: what a caller sends (tolerant) and what the horde answers (extensible)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class RequestBody(BaseModel):
    """Base of every body a client or worker sends: unknown fields are ignored.

    Real clients send misspellings (`trust_workers`) and fields of newer or older protocol
    versions; the public horde accepts them, so we do too.
    """

    model_config = ConfigDict(extra="ignore", populate_by_name=True)


class ReplyBody(BaseModel):
    """Base of every body the horde sends: readers keep fields they do not know."""

    model_config = ConfigDict(extra="allow", populate_by_name=True)
