"""Persistence of the embedded (in-process) Redis across restarts of a single-process horde.

With no Redis server, the queue lives in fakeredis inside the API process. To keep waiting
requests across a restart, the whole store is written to `<data_dir>/embedded-redis.snapshot`
by the janitor once HORDE_EMBEDDED_SNAPSHOT_SECONDS have passed, and at shutdown, and restored at
startup. A clean stop loses nothing; a crash loses what changed since the last snapshot (a few
seconds, more when a big store makes snapshots slow; docs/operator.md).

The snapshot pickles fakeredis's key table while holding its server lock: one consistent copy
about ten times faster than DUMPing every key through the command layer (which stalled pops
for seconds at 10 000 waiting images). The file is only ever read back by this process's
successor from the operator's own data directory.
"""

from __future__ import annotations

import logging
import os
import pickle
from pathlib import Path

from fakeredis import FakeServer

log = logging.getLogger(__name__)


def save_snapshot(server: FakeServer, path: Path) -> int:
    with server.lock:
        tables = {index: dict(db._dict) for index, db in server.dbs.items()}
        data = pickle.dumps(tables, protocol=pickle.HIGHEST_PROTOCOL)
    temporary = path.with_suffix(".tmp")
    temporary.write_bytes(data)
    os.replace(temporary, path)
    return sum(len(t) for t in tables.values())


def load_snapshot(server: FakeServer, path: Path) -> int:
    if not path.exists():
        return 0
    try:
        tables = pickle.loads(path.read_bytes())
    except Exception:
        log.exception("embedded store snapshot %s is unreadable; starting empty", path)
        return 0
    restored = 0
    with server.lock:
        for index, table in tables.items():
            db = server.dbs[index]
            for key, item in table.items():
                db[key] = item  # also schedules the key's expiry
                restored += 1
    log.info("restored %d keys of the embedded store from %s", restored, path)
    return restored
