"""Where result images live: an interface, and the filesystem store used by default.

A reference (`ref`) names one stored image; it is built only from the day and the id of the
lease that produced it (a UUID; 32 hex digits for results stored before ids became dashed
UUIDs), never from user input, so no request can name a file outside the store.
An S3-compatible store can implement the same methods later.
"""

from __future__ import annotations

import os
import re
import time
from pathlib import Path
from typing import Protocol

_ID_TEXT = r"(?:[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}|[0-9a-f]{32})"
_ID = re.compile(rf"^{_ID_TEXT}$")
_REF = re.compile(rf"^\d{{4}}-\d{{2}}-\d{{2}}/{_ID_TEXT}\.webp$")


class ResultStore(Protocol):
    def put(self, lease_id: str, webp: bytes, now: float) -> str: ...

    def read(self, ref: str) -> bytes | None: ...

    def delete(self, ref: str) -> None: ...

    def put_upload(self, lease_id: str, webp: bytes) -> None: ...

    def take_upload(self, lease_id: str, now: float) -> str | None: ...

    def upload_ids(self) -> set[str]: ...

    def delete_upload(self, lease_id: str) -> None: ...


class FilesystemResultStore:
    """`<root>/<YYYY-MM-DD>/<lease id>.webp`; uploads wait in `<root>/uploads/<lease id>.webp`."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.uploads = root / "uploads"
        self.uploads.mkdir(parents=True, exist_ok=True)
        self._made_dirs: set[Path] = set()

    def _ensure_dir(self, path: Path) -> None:
        if path not in self._made_dirs:
            path.mkdir(parents=True, exist_ok=True)
            self._made_dirs.add(path)

    def _ref(self, lease_id: str, now: float) -> str:
        if not _ID.match(lease_id):
            raise ValueError(f"not a lease id: {lease_id!r}")
        day = time.strftime("%Y-%m-%d", time.gmtime(now))
        return f"{day}/{lease_id}.webp"

    def _path(self, ref: str) -> Path | None:
        return self.root / ref if _REF.match(ref) else None

    def put(self, lease_id: str, webp: bytes, now: float) -> str:
        ref = self._ref(lease_id, now)
        path = self.root / ref
        self._ensure_dir(path.parent)
        temporary = path.with_suffix(f".{os.getpid()}.tmp")
        temporary.write_bytes(webp)
        os.replace(temporary, path)
        return ref

    def read(self, ref: str) -> bytes | None:
        path = self._path(ref)
        if path is None:
            return None
        try:
            return path.read_bytes()
        except FileNotFoundError:
            return None

    def delete(self, ref: str) -> None:
        path = self._path(ref)
        if path is not None:
            path.unlink(missing_ok=True)

    def _upload_path(self, lease_id: str) -> Path:
        if not _ID.match(lease_id):
            raise ValueError(f"not a lease id: {lease_id!r}")
        return self.uploads / f"{lease_id}.webp"

    def put_upload(self, lease_id: str, webp: bytes) -> None:
        path = self._upload_path(lease_id)
        temporary = path.with_suffix(f".{os.getpid()}.tmp")
        temporary.write_bytes(webp)
        os.replace(temporary, path)

    def take_upload(self, lease_id: str, now: float) -> str | None:
        source = self._upload_path(lease_id)
        if not source.exists():
            return None
        ref = self._ref(lease_id, now)
        target = self.root / ref
        self._ensure_dir(target.parent)
        os.replace(source, target)
        return ref

    def upload_ids(self) -> set[str]:
        """Lease ids with an upload waiting for its submit (or a half-written one)."""
        ids = set()
        with os.scandir(self.uploads) as entries:
            for entry in entries:
                lease_id = entry.name.split(".", 1)[0]
                if _ID.match(lease_id):
                    ids.add(lease_id)
        return ids

    def delete_upload(self, lease_id: str) -> None:
        path = self._upload_path(lease_id)
        path.unlink(missing_ok=True)
        # Temporary files of writes that died half-way (`<lease id>.<pid>.tmp`).
        for temporary in self.uploads.glob(f"{lease_id}.*.tmp"):
            temporary.unlink(missing_ok=True)
