"""Ids of requests, jobs and generations: UUIDs, as on the public horde.

The horde hands ids out in the dashed form (`4f9c3a2e-1d0b-4a55-...`); clients may send them back
in any form Python's `uuid.UUID` reads (upper case, without dashes, in braces, as a URN) — the
public horde's SDK, for one, rewrites every id it receives into the dashed form.
"""

from __future__ import annotations

import uuid


def new_id() -> str:
    return str(uuid.uuid4())


def canonical_id(text: str) -> str | None:
    """The dashed lower-case form of a UUID in any notation, or None if `text` is no UUID."""
    if len(text) > 45:  # the longest notation, a URN: "urn:uuid:" + 36
        return None
    try:
        return str(uuid.UUID(text.strip()))
    except ValueError:
        return None
