"""sha256 of model files, remembered while a file stays unchanged.

Hashing a 2-7 GB checkpoint takes tens of seconds; a worker that starts every day should pay that
once per file, not per start. An entry is reused only while the file's size and modification
time are the ones it was hashed at.
"""

from __future__ import annotations

import json
import os
import tempfile
import threading
from pathlib import Path

from horde_worker.downloads import sha256_of

_lock = threading.Lock()


class FileHashes:
    def __init__(self, store: Path) -> None:
        self.store = store

    def _read(self) -> dict[str, dict[str, object]]:
        try:
            data = json.loads(self.store.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {}
        return data if isinstance(data, dict) else {}

    def sha256(self, path: Path) -> str:
        """The file's sha256, from the store while the file is unchanged, else computed."""
        resolved = path.resolve()
        stat = resolved.stat()
        key = str(resolved)
        with _lock:
            entry = self._read().get(key)
        if (
            isinstance(entry, dict)
            and entry.get("size") == stat.st_size
            and entry.get("mtime_ns") == stat.st_mtime_ns
            and isinstance(entry.get("sha256"), str)
        ):
            return str(entry["sha256"])
        digest = sha256_of(resolved)
        self.remember(resolved, digest)
        return digest

    def remember(self, path: Path, digest: str) -> None:
        resolved = path.resolve()
        stat = resolved.stat()
        with _lock:
            data = self._read()
            data[str(resolved)] = {
                "size": stat.st_size,
                "mtime_ns": stat.st_mtime_ns,
                "sha256": digest,
            }
            self.store.parent.mkdir(parents=True, exist_ok=True)
            handle, scratch = tempfile.mkstemp(dir=self.store.parent, prefix=".hashes-")
            with os.fdopen(handle, "w", encoding="utf-8") as out:
                json.dump(data, out, indent=1)
            os.replace(scratch, self.store)

    def matches(self, path: Path, expected: str) -> bool:
        return path.is_file() and self.sha256(path) == expected.lower()
