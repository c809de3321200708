"""Whose library a call reads: a registered user's (by API key), or one anonymous browser's.

All anonymous callers share one API key, so an anonymous library is keyed by a random token the
browser makes once and keeps (header `library-token`). Only its SHA-256 is stored: the token is
the secret that opens the library, as an API key opens a user's.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Header

from horde_api.auth.principals import Principal
from horde_api.deps import PrincipalDep
from horde_api.errors import BadRequest

TOKEN_PATTERN = re.compile(r"^[A-Za-z0-9_-]{22,64}$")

LibraryTokenHeader = Annotated[
    str | None,
    Header(
        alias="library-token",
        description="Anonymous callers: the browser's own random library token (22-64 url-safe"
        " characters); ignored with a registered key",
        max_length=200,
    ),
]


@dataclass(frozen=True)
class LibraryOwner:
    key: str
    principal: Principal
    label: str

    @property
    def anonymous(self) -> bool:
        return self.principal.anonymous


def library_owner(principal: Principal, token: str | None) -> LibraryOwner:
    if not principal.anonymous:
        return LibraryOwner(f"user:{principal.user_id}", principal, principal.display_name)
    if not token:
        raise BadRequest(
            "An anonymous library needs its token in the `library-token` header (22-64 url-safe"
            " characters the browser makes once); or send a registered `apikey`"
        )
    if not TOKEN_PATTERN.match(token):
        raise BadRequest(
            "library-token must be 22 to 64 characters from A-Z, a-z, 0-9, '-' and '_'"
        )
    digest = hashlib.sha256(token.encode()).hexdigest()
    return LibraryOwner(f"anon:{digest}", principal, "Anonymous (this browser)")


async def get_library_owner(
    principal: PrincipalDep, token: LibraryTokenHeader = None
) -> LibraryOwner:
    return library_owner(principal, token)


OwnerDep = Annotated[LibraryOwner, Depends(get_library_owner)]
