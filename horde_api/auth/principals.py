"""Who is calling: API key -> principal, with a short in-memory cache.

Verified keys are cached for `cache_seconds` (default 1 s), so a busy client costs one database
query per second instead of one per request, and a revoked key stops working within that time.
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy.orm import Session, sessionmaker

from horde_api.auth.keys import parse_key, secret_matches
from horde_api.db.users import key_with_owner
from horde_api.errors import InvalidApiKey
from horde_api.queue.descriptors import Priority, Tier
from horde_protocol import ANONYMOUS_API_KEY

ANONYMOUS_USERNAME = "Anonymous"


@dataclass(frozen=True)
class Principal:
    user_id: int | None
    username: str
    trusted: bool
    concurrency: int
    key_id: str | None
    moderator: bool = False
    kudos_cents: int = 0  # the balance when the key was looked up (at most a second ago)

    @property
    def anonymous(self) -> bool:
        return self.user_id is None

    @property
    def tier(self) -> Tier:
        if self.anonymous:
            return Tier.ANONYMOUS
        return Tier.TRUSTED if self.trusted else Tier.REGISTERED

    @property
    def priority(self) -> Priority:
        return Priority.of(self.tier, self.kudos_cents)

    @property
    def display_name(self) -> str:
        return f"{self.username}#{self.user_id or 0}"

    def in_flight_key(self, client_ip: str) -> str:
        """Anonymous callers share one key, so their limit counts per IP."""
        return f"anon:{client_ip}" if self.anonymous else str(self.user_id)


class KeyVerifier:
    def __init__(
        self,
        session_factory: sessionmaker[Session],
        anonymous_concurrency: int,
        cache_seconds: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._sessions = session_factory
        self._cache_seconds = cache_seconds
        self._clock = clock
        # Both answers are kept briefly: a bad key hammered at the horde must not cost a database
        # query per request either.
        self._cache: dict[bytes, tuple[Principal | InvalidApiKey, float]] = {}
        self._lock = threading.Lock()
        self.anonymous = Principal(
            user_id=None,
            username=ANONYMOUS_USERNAME,
            trusted=False,
            concurrency=anonymous_concurrency,
            key_id=None,
        )

    def forget_cached(self) -> None:
        """Look every key up again: after a change to users this process made itself."""
        with self._lock:
            self._cache.clear()

    def known(self, apikey: str | None) -> Principal | None:
        """The caller when it is known without the database (anonymous, or cached), else None.
        Raises InvalidApiKey for a key found bad a moment ago or not of this horde's formats."""
        if not apikey or apikey == ANONYMOUS_API_KEY:
            return self.anonymous
        if parse_key(apikey) is None:
            raise InvalidApiKey("Invalid API key: not a key of this horde")
        cached = self._cache.get(hashlib.sha256(apikey.encode()).digest())
        if cached is None or cached[1] <= self._clock():
            return None
        if isinstance(cached[0], InvalidApiKey):
            raise InvalidApiKey(cached[0].message)
        return cached[0]

    def verify(self, apikey: str | None) -> Principal:
        """The caller of `apikey`; a missing key or the anonymous key is the anonymous user.
        May query the database: call it off the event loop when `known` said None."""
        principal = self.known(apikey)
        if principal is not None:
            return principal
        assert apikey is not None
        try:
            found: Principal | InvalidApiKey = self._lookup(apikey)
        except InvalidApiKey as refused:
            found = refused
        with self._lock:
            if len(self._cache) > 10_000:
                self._cache.clear()
            digest = hashlib.sha256(apikey.encode()).digest()
            self._cache[digest] = (found, self._clock() + self._cache_seconds)
        if isinstance(found, InvalidApiKey):
            raise InvalidApiKey(found.message)
        return found

    def _lookup(self, apikey: str) -> Principal:
        parsed = parse_key(apikey)
        assert parsed is not None  # `known` refused other formats
        key_id, secret = parsed
        with self._sessions() as session:
            found = key_with_owner(session, key_id)
        if found is None:
            raise InvalidApiKey("Invalid API key: unknown key")
        key, user = found
        if key.revoked_at is not None or not secret_matches(key.salt, key.secret_hash, secret):
            raise InvalidApiKey("Invalid API key: unknown or revoked key")
        return Principal(
            user_id=user.id,
            username=user.username,
            trusted=user.trusted,
            concurrency=user.concurrency,
            key_id=key.key_id,
            moderator=user.moderator,
            kudos_cents=user.kudos_cents,
        )
