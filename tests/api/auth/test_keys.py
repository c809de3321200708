"""API keys: format, salted hashing, constant-time check, caching and revocation."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from horde_api.auth.keys import generate_key, hash_secret, parse_key, secret_matches
from horde_api.auth.principals import KeyVerifier
from horde_api.db.engine import make_engine, make_session_factory
from horde_api.db.migrate import upgrade
from horde_api.db.models import ApiKey
from horde_api.db.users import create_user, revoke_key
from horde_api.errors import InvalidApiKey
from horde_api.queue.descriptors import Tier


def test_key_has_public_id_and_128_bit_secret() -> None:
    key = generate_key()
    parsed = parse_key(key.apikey)
    assert parsed == (key.key_id, key.secret)
    assert len(key.secret) * 4 >= 128
    assert generate_key().apikey != key.apikey


def test_hash_is_salted() -> None:
    a, b = generate_key(), generate_key()
    assert hash_secret(a.salt, "same") != hash_secret(b.salt, "same")
    assert secret_matches(a.salt, a.secret_hash, a.secret)
    assert not secret_matches(a.salt, a.secret_hash, b.secret)
    assert a.secret_hash != hashlib.sha256(a.secret.encode()).hexdigest()


def test_malformed_keys_do_not_parse() -> None:
    for text in ("", "0000000000", "kh_xyz_abc", "kh_" + "a" * 12 + "_" + "a" * 31):
        assert parse_key(text) is None


def test_database_holds_no_clear_key(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'db.sqlite3'}")
    upgrade(engine)
    sessions = make_session_factory(engine)
    with sessions() as session:
        _, key = create_user(session, "alice")
        row = session.query(ApiKey).one()
    assert key.secret not in (row.salt, row.secret_hash, row.key_id)
    assert key.secret.encode() not in (tmp_path / "db.sqlite3").read_bytes()


class _Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_verifier_caches_briefly_and_revocation_takes_effect(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'db.sqlite3'}")
    upgrade(engine)
    sessions = make_session_factory(engine)
    with sessions() as session:
        user, key = create_user(session, "alice", trusted=True)
    clock = _Clock()
    verifier = KeyVerifier(sessions, anonymous_concurrency=5, cache_seconds=1.0, clock=clock)
    principal = verifier.verify(key.apikey)
    assert principal.user_id == user.id and principal.tier == Tier.TRUSTED
    assert verifier.verify("0000000000").tier == Tier.ANONYMOUS
    assert verifier.verify(None).anonymous

    with sessions() as session:
        assert revoke_key(session, key.key_id)
    assert verifier.verify(key.apikey).user_id == user.id  # still cached
    clock.now += 1.1
    with pytest.raises(InvalidApiKey):
        verifier.verify(key.apikey)


def test_wrong_secret_for_a_known_key_id_is_refused(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'db.sqlite3'}")
    upgrade(engine)
    sessions = make_session_factory(engine)
    with sessions() as session:
        _, key = create_user(session, "alice")
    verifier = KeyVerifier(sessions, anonymous_concurrency=5)
    forged = f"kh_{key.key_id}_{'0' * 32}"
    with pytest.raises(InvalidApiKey):
        verifier.verify(forged)
