"""Fetching one file over plain HTTP: resumable, hash-checked, never half-served.

Bytes go to `<file>.part`; a broken transfer is resumed with a `Range` request (from where the
`.part` file ends, also across restarts of the worker); only a file whose sha256 matches is
renamed into place. A mismatch removes the file: a corrupt or substituted model is never served.
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path

import requests

log = logging.getLogger(__name__)

# Small enough that a broken transfer loses little of what had arrived.
_CHUNK = 1 << 16


class DownloadError(RuntimeError):
    """A download failed or was refused; the message names the file and why."""


@dataclass
class DownloadStats:
    """What the network really carried (a resumed file counts only its missing part)."""

    bytes_fetched: int = 0
    resumed: int = 0


def human_size(size: int) -> str:
    value = float(size)
    for unit in ("B", "KB", "MB", "GB"):
        if value < 1000 or unit == "GB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1000
    raise AssertionError("unreachable")


def ensure_free_space(directory: Path, needed: int, what: str) -> None:
    """Refuse before the first byte when `directory`'s disk cannot hold `needed` more bytes:
    a disk filled half-way breaks more than the download."""
    directory.mkdir(parents=True, exist_ok=True)
    free = shutil.disk_usage(directory).free
    if needed > free:
        raise DownloadError(
            f"not enough disk space for {what} in {directory}: it needs {human_size(needed)},"
            f" {human_size(free)} free; free some space or choose another models_dir"
        )


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def download_file(
    url: str,
    target: Path,
    sha256: str,
    *,
    stats: DownloadStats | None = None,
    attempts: int = 3,
    timeout: float = 30.0,
    session: requests.Session | None = None,
) -> Path:
    """Fetch `url` into `target` and verify it against `sha256`. A transfer that breaks is
    resumed (up to `attempts` tries in all) from the bytes already in `target.part`."""
    stats = stats if stats is not None else DownloadStats()
    session = session or requests.Session()
    part = target.with_name(target.name + ".part")
    target.parent.mkdir(parents=True, exist_ok=True)
    last_error: Exception | None = None
    for attempt in range(1, attempts + 1):
        try:
            _transfer(session, url, part, stats, timeout)
            break
        except requests.RequestException as error:
            status = error.response.status_code if error.response is not None else None
            if status is not None and status < 500 and status != 429:
                raise DownloadError(
                    f"download of {target.name} from {url}: HTTP {status}"
                ) from error
            # A dropped connection mid-body (ChunkedEncodingError), a timeout, a 5xx: resume.
            last_error = error
            have = part.stat().st_size if part.exists() else 0
            log.warning(
                "download of %s broke after %s (attempt %d of %d): %s",
                target.name,
                human_size(have),
                attempt,
                attempts,
                error,
            )
    else:
        raise DownloadError(
            f"download of {target.name} from {url} failed {attempts} times: {last_error};"
            f" start again to resume from the {part.name} file"
        )
    actual = sha256_of(part)
    if actual != sha256.lower():
        part.unlink(missing_ok=True)
        raise DownloadError(
            f"{target.name}: sha256 {actual} does not match the reference's {sha256.lower()};"
            " the file was removed and is not served"
        )
    os.replace(part, target)
    return target


def _transfer(
    session: requests.Session, url: str, part: Path, stats: DownloadStats, timeout: float
) -> None:
    offset = part.stat().st_size if part.exists() else 0
    headers = {"Range": f"bytes={offset}-"} if offset else {}
    with session.get(url, headers=headers, stream=True, timeout=timeout) as response:
        if response.status_code == 416 and offset:
            return  # the .part file is already whole; the hash decides
        response.raise_for_status()
        if offset and response.status_code == 206:
            stats.resumed += 1
            mode = "ab"
        else:
            offset = 0  # the server ignored the range: start over
            mode = "wb"
        length = response.headers.get("Content-Length")
        total = offset + int(length) if length is not None else None
        from tqdm import tqdm

        with (
            part.open(mode) as out,
            tqdm(
                total=total,
                initial=offset,
                unit="B",
                unit_scale=True,
                desc=part.name.removesuffix(".part"),
                # A bar only where someone watches; a log file gets the log lines.
                disable=not sys.stderr.isatty(),
            ) as bar,
        ):
            for chunk in response.iter_content(_CHUNK):
                out.write(chunk)
                stats.bytes_fetched += len(chunk)
                bar.update(len(chunk))
        if total is not None and part.stat().st_size < total:
            raise requests.ConnectionError(
                f"connection closed after {part.stat().st_size} of {total} bytes"
            )
