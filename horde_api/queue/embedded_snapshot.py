"""Persistence of the embedded (in-process) Redis across restarts of a single-process horde.

With no Redis server, the queue lives in fakeredis inside the API process. To keep waiting
requests across a restart, the whole store is written to `<data_dir>/embedded-redis.snapshot`
every few seconds and at shutdown (DUMP of every key inside one MULTI, so the snapshot is
consistent), and restored at startup. A crash loses at most the last interval.
"""

from __future__ import annotations

import base64
import json
import logging
import os
from pathlib import Path

from redis import Redis

log = logging.getLogger(__name__)


def save_snapshot(redis: Redis, path: Path) -> int:
    keys = list(redis.scan_iter(count=1000))
    with redis.pipeline(transaction=True) as pipe:
        for key in keys:
            pipe.dump(key)
            pipe.pttl(key)
        values = pipe.execute()
    temporary = path.with_suffix(".tmp")
    written = 0
    with temporary.open("w") as out:
        for index, key in enumerate(keys):
            dumped, ttl = values[2 * index], values[2 * index + 1]
            if dumped is None:
                continue
            record = {
                "k": base64.b64encode(key).decode(),
                "v": base64.b64encode(dumped).decode(),
                "t": ttl if ttl and ttl > 0 else 0,
            }
            out.write(json.dumps(record) + "\n")
            written += 1
    os.replace(temporary, path)
    return written


def load_snapshot(redis: Redis, path: Path) -> int:
    if not path.exists():
        return 0
    restored = 0
    with path.open() as source, redis.pipeline(transaction=False) as pipe:
        for line in source:
            record = json.loads(line)
            pipe.restore(
                base64.b64decode(record["k"]),
                record["t"],
                base64.b64decode(record["v"]),
                replace=True,
            )
            restored += 1
        pipe.execute()
    log.info("restored %d keys of the embedded store from %s", restored, path)
    return restored
