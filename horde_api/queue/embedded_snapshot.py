"""Persistence of the embedded (in-process) Redis across restarts of a single-process horde.

With no Redis server, the queue lives in fakeredis inside the API process. To keep waiting
requests across a restart, the whole store is written to `<data_dir>/embedded-redis.snapshot`
by the janitor once HORDE_EMBEDDED_SNAPSHOT_SECONDS have passed (stretched to twenty times the
last snapshot's duration, so a big store is not snapshotted back to back), and at shutdown, and
restored at startup. A clean stop loses nothing; a crash loses what changed since the last
snapshot (docs/operator.md).

Only Redis's own commands are used: one Lua script SCANs every key and DUMPs it with its PTTL —
one atomic step, so the snapshot is a consistent point in time (no pop half in, half out) —
and a restore RESTOREs each key with its remaining time. Nothing of fakeredis's internals is
touched, so a fakeredis release cannot silently break restarts (a test pins that no private
attribute of any library is read here).

File format (our own, no pickle): the magic line, then per key: key length, key, DUMP payload
length, DUMP payload (4-byte big-endian lengths), PTTL in milliseconds (8 bytes, -1 = none).
"""

from __future__ import annotations

import logging
import os
import struct
from collections.abc import Iterator
from pathlib import Path

from redis import Redis

log = logging.getLogger(__name__)

MAGIC = b"krita-horde embedded snapshot 2\n"
_LENGTH = struct.Struct(">I")
_TTL = struct.Struct(">q")

# No arguments. Returns key, DUMP payload, PTTL for every key of the selected database.
_DUMP_ALL_LUA = r"""
local out = {}
local cursor = '0'
repeat
  local page = redis.call('SCAN', cursor, 'COUNT', 1000)
  cursor = page[1]
  for _, key in ipairs(page[2]) do
    local payload = redis.call('DUMP', key)
    if payload then
      out[#out + 1] = key
      out[#out + 1] = payload
      out[#out + 1] = redis.call('PTTL', key)
    end
  end
until cursor == '0'
return out
"""


def save_snapshot(redis: Redis, path: Path) -> int:
    """Write every key of `redis` to `path` (atomically replaced); returns the number of keys."""
    flat = redis.eval(_DUMP_ALL_LUA, 0)
    chunks = [MAGIC]
    for index in range(0, len(flat), 3):
        key, payload, ttl = flat[index], flat[index + 1], int(flat[index + 2])
        chunks += [_LENGTH.pack(len(key)), key, _LENGTH.pack(len(payload)), payload]
        chunks.append(_TTL.pack(ttl if ttl > 0 else -1))
    temporary = path.with_suffix(".tmp")
    temporary.write_bytes(b"".join(chunks))
    os.replace(temporary, path)
    return len(flat) // 3


def _records(data: bytes) -> Iterator[tuple[bytes, bytes, int]]:
    if not data.startswith(MAGIC):
        raise ValueError("not a krita-horde embedded snapshot (or one of an older format)")
    offset = len(MAGIC)
    while offset < len(data):
        (key_length,) = _LENGTH.unpack_from(data, offset)
        offset += _LENGTH.size
        key = data[offset : offset + key_length]
        offset += key_length
        (payload_length,) = _LENGTH.unpack_from(data, offset)
        offset += _LENGTH.size
        payload = data[offset : offset + payload_length]
        offset += payload_length
        (ttl,) = _TTL.unpack_from(data, offset)
        offset += _TTL.size
        if len(key) != key_length or len(payload) != payload_length:
            raise ValueError("snapshot is truncated")
        yield key, payload, ttl


def load_snapshot(redis: Redis, path: Path) -> int:
    """Restore the keys saved in `path` (none if it does not exist or is unreadable)."""
    if not path.exists():
        return 0
    try:
        records = list(_records(path.read_bytes()))
    except (ValueError, struct.error) as error:
        # Kept aside, never overwritten: an operator may still want what it holds.
        aside = path.with_name(path.name + ".unreadable")
        os.replace(path, aside)
        log.error("embedded snapshot unreadable (%s); kept as %s, starting empty", error, aside)
        return 0
    with redis.pipeline(transaction=True) as pipe:
        for key, payload, ttl in records:
            pipe.restore(key, max(ttl, 0), payload, replace=True)
        pipe.execute()
    log.info("restored %d keys of the embedded store from %s", len(records), path)
    return len(records)
