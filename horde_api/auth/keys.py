"""API key format and hashing.

A key is 22 url-safe characters (`secrets.token_urlsafe(16)`, 128 random bits), the format of the
public AI Horde's keys, which its SDK and workers check before they send anything. The database
never holds a key: each row has a public *key id* (the first 16 hex digits of the key's SHA-256,
listed and used to revoke; it finds the row without revealing the key) and a salted SHA-256 of
the key, compared in constant time. A fast hash is enough because the key is random and long (no
dictionary to attack), and a slow KDF on every request would cap the horde's throughput.

Keys issued before this format, `kh_<12 hex key id>_<32 hex secret>`, keep working unchanged:
their key id is the 12 hex digits and their secret the 32 (see docs/operator.md, "Upgrading").
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass

KEY_BYTES = 16
KEY_LENGTH = 22  # len(secrets.token_urlsafe(16))
_KEY_PATTERN = re.compile(r"^[A-Za-z0-9_-]{22}$")
_LEGACY_KEY_PATTERN = re.compile(r"^kh_([0-9a-f]{12})_([0-9a-f]{32})$")


@dataclass(frozen=True)
class NewKey:
    apikey: str
    key_id: str
    salt: str
    secret_hash: str


def key_id_of(apikey: str) -> str:
    """The public id of a current-format key."""
    return hashlib.sha256(apikey.encode()).hexdigest()[:16]


def hash_secret(salt: str, secret: str) -> str:
    return hashlib.sha256(bytes.fromhex(salt) + secret.encode()).hexdigest()


def generate_key() -> NewKey:
    apikey = secrets.token_urlsafe(KEY_BYTES)
    salt = secrets.token_hex(16)
    return NewKey(
        apikey=apikey, key_id=key_id_of(apikey), salt=salt, secret_hash=hash_secret(salt, apikey)
    )


def parse_key(apikey: str) -> tuple[str, str] | None:
    """(key id, secret to check) of a well-formed key of either format, else None."""
    if _KEY_PATTERN.match(apikey):
        return key_id_of(apikey), apikey
    legacy = _LEGACY_KEY_PATTERN.match(apikey)
    return (legacy.group(1), legacy.group(2)) if legacy else None


def secret_matches(salt: str, secret_hash: str, secret: str) -> bool:
    return hmac.compare_digest(hash_secret(salt, secret), secret_hash)
