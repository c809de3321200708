"""API keys: format, salted hashing, constant-time check, caching and revocation."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

import pytest
from sqlalchemy.orm import Session, sessionmaker

from horde_api.auth.keys import generate_key, hash_secret, parse_key, secret_matches
from horde_api.auth.principals import KeyVerifier
from horde_api.db.engine import make_engine, make_session_factory
from horde_api.db.migrate import upgrade
from horde_api.db.models import ApiKey
from horde_api.db.users import create_user, revoke_key
from horde_api.errors import InvalidApiKey
from horde_api.queue.descriptors import Tier


def test_key_is_22_url_safe_characters_as_on_the_public_horde() -> None:
    key = generate_key()
    assert re.fullmatch(r"[A-Za-z0-9_-]{22}", key.apikey)
    assert parse_key(key.apikey) == (key.key_id, key.apikey)
    assert re.fullmatch(r"[0-9a-f]{16}", key.key_id) and key.key_id not in key.apikey
    assert generate_key().apikey != key.apikey


def test_legacy_keys_still_parse() -> None:
    legacy = "kh_" + "a1" * 6 + "_" + "0f" * 16
    assert parse_key(legacy) == ("a1" * 6, "0f" * 16)


def test_hash_is_salted() -> None:
    a, b = generate_key(), generate_key()
    assert hash_secret(a.salt, "same") != hash_secret(b.salt, "same")
    assert secret_matches(a.salt, a.secret_hash, a.apikey)
    assert not secret_matches(a.salt, a.secret_hash, b.apikey)
    assert a.secret_hash != hashlib.sha256(a.apikey.encode()).hexdigest()


def test_malformed_keys_do_not_parse() -> None:
    for text in (
        "",
        "0000000000",
        "kh_xyz_abc",
        "kh_" + "a" * 12 + "_" + "a" * 31,
        "a" * 21,
        "a" * 23,
        "a" * 21 + "=",
    ):
        assert parse_key(text) is None


def test_database_holds_no_clear_key(tmp_path: Path) -> None:
    sessions = _sessions(tmp_path)
    with sessions() as session:
        _, key = create_user(session, "alice")
        row = session.query(ApiKey).one()
    assert key.apikey not in (row.salt, row.secret_hash, row.key_id)
    assert key.apikey.encode() not in (tmp_path / "db.sqlite3").read_bytes()


def _sessions(tmp_path: Path) -> sessionmaker[Session]:
    engine = make_engine(f"sqlite:///{tmp_path / 'db.sqlite3'}")
    upgrade(engine)
    return make_session_factory(engine)


class _Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_verifier_caches_briefly_and_revocation_takes_effect(tmp_path: Path) -> None:
    sessions = _sessions(tmp_path)
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
    sessions = _sessions(tmp_path)
    with sessions() as session:
        _, key = create_user(session, "alice")
    verifier = KeyVerifier(sessions, anonymous_concurrency=5)
    with pytest.raises(InvalidApiKey):
        verifier.verify("A" * 22)
    legacy_form = f"kh_{key.key_id[:12]}_{'0' * 32}"
    with pytest.raises(InvalidApiKey):
        verifier.verify(legacy_form)


def test_keys_issued_in_the_legacy_format_still_authenticate(tmp_path: Path) -> None:
    """Keys made before the 22-character format (`kh_<id>_<secret>`) keep working unchanged."""
    sessions = _sessions(tmp_path)
    with sessions() as session:
        user, _ = create_user(session, "alice")
        key_id, secret, salt = "0123456789ab", "f" * 32, "00" * 16
        session.add(
            ApiKey(key_id=key_id, salt=salt, secret_hash=hash_secret(salt, secret), user_id=user.id)
        )
        session.commit()
    verifier = KeyVerifier(sessions, anonymous_concurrency=5)
    assert verifier.verify(f"kh_{key_id}_{secret}").user_id == user.id
    with pytest.raises(InvalidApiKey):
        verifier.verify(f"kh_{key_id}_{'e' * 32}")


def test_a_bad_key_is_remembered_briefly_so_a_flood_of_it_does_not_reach_the_database(
    tmp_path: Path,
) -> None:
    sessions = _sessions(tmp_path)
    with sessions() as session:
        _, key = create_user(session, "alice")
    clock = _Clock()
    verifier = KeyVerifier(sessions, anonymous_concurrency=5, cache_seconds=1.0, clock=clock)
    lookups = []
    real_lookup = verifier._lookup

    def counted(apikey: str) -> object:
        lookups.append(apikey)
        return real_lookup(apikey)

    verifier._lookup = counted  # type: ignore[method-assign]
    unknown = "B" * 22
    assert verifier.known(unknown) is None, "not seen yet: the caller must look it up"
    for _ in range(50):
        with pytest.raises(InvalidApiKey):
            verifier.verify(unknown)
    assert lookups == [unknown]
    with pytest.raises(InvalidApiKey):
        verifier.known(unknown)  # answered from the cache, no database
    clock.now += 1.1
    assert verifier.known(unknown) is None
    # A good key is known from the cache after its first lookup.
    verifier.verify(key.apikey)
    known = verifier.known(key.apikey)
    assert known is not None and known.username == "alice"
