"""API key format and hashing.

A key is `kh_<key id>_<secret>`: the key id (48 random bits, public, stored in clear) finds the
row; the secret (128 random bits) is checked against a salted SHA-256 in constant time. A fast
hash is enough because the secret is random and long (no dictionary to attack), and a slow KDF
on every request would cap the horde's throughput.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass

KEY_PREFIX = "kh"
_KEY_PATTERN = re.compile(r"^kh_([0-9a-f]{12})_([0-9a-f]{32})$")


@dataclass(frozen=True)
class NewKey:
    key_id: str
    secret: str
    salt: str
    secret_hash: str

    @property
    def apikey(self) -> str:
        return f"{KEY_PREFIX}_{self.key_id}_{self.secret}"


def hash_secret(salt: str, secret: str) -> str:
    return hashlib.sha256(bytes.fromhex(salt) + secret.encode()).hexdigest()


def generate_key() -> NewKey:
    key_id = secrets.token_hex(6)
    secret = secrets.token_hex(16)
    salt = secrets.token_hex(16)
    return NewKey(key_id=key_id, secret=secret, salt=salt, secret_hash=hash_secret(salt, secret))


def parse_key(apikey: str) -> tuple[str, str] | None:
    """(key id, secret) of a well-formed key, else None."""
    match = _KEY_PATTERN.match(apikey)
    return (match.group(1), match.group(2)) if match else None


def secret_matches(salt: str, secret_hash: str, secret: str) -> bool:
    return hmac.compare_digest(hash_secret(salt, secret), secret_hash)
