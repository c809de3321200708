"""Where result images live: an interface, and the filesystem store used by default.

A reference (`ref`) names one stored image; it is built only from the day and the id of the
lease that produced it (a UUID; 32 hex digits for results stored before ids became dashed
UUIDs), never from user input, so no request can name a file outside the store.
The S3-compatible store (horde_api/store/s3.py) implements the same methods.
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Callable
from pathlib import Path
from typing import Protocol

_ID_TEXT = r"(?:[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}|[0-9a-f]{32})"
_ID = re.compile(rf"^{_ID_TEXT}$")
_REF = re.compile(rf"^\d{{4}}-\d{{2}}-\d{{2}}/{_ID_TEXT}\.webp$")


def is_lease_id(text: str) -> bool:
    return _ID.match(text) is not None


def is_ref(text: str) -> bool:
    return _REF.match(text) is not None


def make_ref(lease_id: str, now: float) -> str:
    """`<YYYY-MM-DD>/<lease id>.webp`: the day (UTC) it was stored, so old days are easy to see."""
    if not is_lease_id(lease_id):
        raise ValueError(f"not a lease id: {lease_id!r}")
    day = time.strftime("%Y-%m-%d", time.gmtime(now))
    return f"{day}/{lease_id}.webp"


# Turns an upload as it arrived into the WebP to keep; raises (a 400 of horde_api/errors.py) on
# a body that is no acceptable image or is larger than the store's read limit allows.
UploadCheck = Callable[[bytes], bytes]


class ResultStoreUnavailable(Exception):
    """The storage did not answer (after its own retries). Nothing was changed: the caller may
    try again later; the API answers 503."""


class ResultStore(Protocol):
    def put(self, lease_id: str, webp: bytes, now: float) -> str: ...

    def read(self, ref: str) -> bytes | None: ...

    def delete(self, ref: str) -> None: ...

    def put_upload(self, lease_id: str, webp: bytes) -> None: ...

    def take_upload(self, lease_id: str, now: float, check: UploadCheck) -> str | None:
        """Make the upload of `lease_id` a result; None when nothing was uploaded. `check` is
        applied by stores whose uploads did not pass through our upload endpoint."""
        ...

    def upload_ids(self) -> set[str]: ...

    def delete_upload(self, lease_id: str) -> None: ...

    def upload_url(self, lease_id: str, token: str, base_url: str, expires_seconds: int) -> str:
        """Where a worker PUTs the image of this lease (a pop reply's `r2_upload`)."""
        ...

    def result_url(self, ref: str, image_id: str, base_url: str) -> str:
        """A link clients may GET the stored image at (`status` with `r2: true`)."""
        ...


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

    def _path(self, ref: str) -> Path | None:
        return self.root / ref if is_ref(ref) else None

    def put(self, lease_id: str, webp: bytes, now: float) -> str:
        ref = make_ref(lease_id, now)
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
        if not is_lease_id(lease_id):
            raise ValueError(f"not a lease id: {lease_id!r}")
        return self.uploads / f"{lease_id}.webp"

    def put_upload(self, lease_id: str, webp: bytes) -> None:
        path = self._upload_path(lease_id)
        temporary = path.with_suffix(f".{os.getpid()}.tmp")
        temporary.write_bytes(webp)
        os.replace(temporary, path)

    def take_upload(self, lease_id: str, now: float, check: UploadCheck) -> str | None:
        # `check` is not applied: uploads reach this store only through our upload endpoint,
        # which checked and converted them before put_upload.
        source = self._upload_path(lease_id)
        if not source.exists():
            return None
        ref = make_ref(lease_id, now)
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
                if is_lease_id(lease_id):
                    ids.add(lease_id)
        return ids

    def delete_upload(self, lease_id: str) -> None:
        path = self._upload_path(lease_id)
        path.unlink(missing_ok=True)
        # Temporary files of writes that died half-way (`<lease id>.<pid>.tmp`).
        for temporary in self.uploads.glob(f"{lease_id}.*.tmp"):
            temporary.unlink(missing_ok=True)

    def upload_url(self, lease_id: str, token: str, base_url: str, expires_seconds: int) -> str:
        # Our own upload endpoint: it refuses the PUT once the lease is over, so the link needs
        # no lifetime of its own.
        return f"{base_url}/api/v2/generate/upload/{lease_id}?token={token}"

    def result_url(self, ref: str, image_id: str, base_url: str) -> str:
        return f"{base_url}/api/v2/generate/result/{image_id}.webp"
