"""The embedded store's snapshot: Redis commands only, a faithful round trip, nothing destroyed."""

from __future__ import annotations

import ast
from pathlib import Path

import fakeredis

from horde_api.queue import embedded_snapshot
from horde_api.queue.embedded_snapshot import load_snapshot, save_snapshot
from tests.api.conftest import Horde


def test_the_snapshot_code_reads_no_private_attribute_of_any_library() -> None:
    """A fakeredis release that renames an internal must not break every embedded restart."""
    source = Path(embedded_snapshot.__file__).read_text()
    tree = ast.parse(source)
    private = [
        node.attr
        for node in ast.walk(tree)
        if isinstance(node, ast.Attribute)
        and node.attr.startswith("_")
        and not node.attr.startswith("__")
    ]
    assert private == []
    imported = {
        alias.name.split(".")[0]
        for node in ast.walk(tree)
        if isinstance(node, ast.Import | ast.ImportFrom)
        for alias in getattr(node, "names", [])
    } | {node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
    assert "pickle" not in imported and "fakeredis" not in imported


def _state(redis: fakeredis.FakeRedis) -> dict[bytes, bytes]:
    return {key: redis.dump(key) for key in redis.scan_iter(count=1000)}


def test_a_live_queue_survives_the_round_trip(embedded_horde: Horde, tmp_path: Path) -> None:
    horde = embedded_horde
    key = horde.user("volunteer")
    horde.request(params={"n": 3}, prompt="waiting")
    popped = horde.pop(key)
    redis = horde.ctx.redis
    before = _state(redis)
    lease_key = horde.ctx.keys.lease(popped["id"])
    ttl_before = redis.pttl(lease_key)
    assert ttl_before > 0

    path = tmp_path / "snapshot"
    assert save_snapshot(redis, path) == len(before)
    fresh = fakeredis.FakeRedis(server=fakeredis.FakeServer())
    assert load_snapshot(fresh, path) == len(before)
    assert _state(fresh) == before
    assert 0 < fresh.pttl(lease_key) <= ttl_before, "expiry times come back with the keys"


def test_an_unreadable_snapshot_is_kept_aside_not_overwritten(tmp_path: Path) -> None:
    path = tmp_path / "embedded-redis.snapshot"
    path.write_bytes(b"\x80\x05an older format")
    redis = fakeredis.FakeRedis(server=fakeredis.FakeServer())
    assert load_snapshot(redis, path) == 0
    assert not path.exists()
    aside = tmp_path / "embedded-redis.snapshot.unreadable"
    assert aside.read_bytes() == b"\x80\x05an older format"
