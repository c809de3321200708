"""The public AI Horde's image model reference: which names exist, their files and hashes.

The reference is a JSON object keyed by model name (Haidra-Org/AI-Horde-image-model-reference,
`stable_diffusion.json`); each entry has a `baseline`, an `inpainting` flag,
`size_on_disk_bytes` and `config.files` (`path`, `sha256sum`) beside `config.download`
(`file_name`, `file_path`, `file_url`). It is remote data: a file name that would leave the
models folder is refused, and a file without a sha256 cannot be verified, so it is not fetched.
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import urlparse

from horde_worker.prediction import Prediction, from_reference_files

log = logging.getLogger(__name__)

PUBLIC_REFERENCE_URL = (
    "https://raw.githubusercontent.com/Haidra-Org/AI-Horde-image-model-reference/main/"
    "stable_diffusion.json"
)
CACHED_REFERENCE_NAME = "stable_diffusion.json"
_CHECKPOINTS = (".safetensors", ".ckpt")


class ModelReferenceError(RuntimeError):
    """The reference cannot be read, or a model is not in it; the message says what to do."""


@dataclass(frozen=True)
class ReferenceFile:
    relative_path: str  # inside the models folder, POSIX separators
    url: str
    sha256: str | None


@dataclass(frozen=True)
class ReferenceModel:
    name: str
    baseline: str
    inpainting: bool
    nsfw: bool
    size_on_disk_bytes: int | None
    files: tuple[ReferenceFile, ...]
    # What the original inference config among the entry's files says (worker/prediction.py).
    prediction: Prediction | None = None

    def local_source(self, models_dir: Path) -> Path:
        """What the worker loads once the files are there: the folder of a diffusers layout
        (one of the files is a `model_index.json`), else the checkpoint file."""
        for item in self.files:
            if PurePosixPath(item.relative_path).name == "model_index.json":
                return models_dir / PurePosixPath(item.relative_path).parent
        checkpoints = [f for f in self.files if f.relative_path.endswith(_CHECKPOINTS)]
        if not checkpoints:
            raise ModelReferenceError(
                f"model {self.name!r}: the reference lists no checkpoint file"
            )
        return models_dir / checkpoints[0].relative_path

    def problem(self) -> str | None:
        """Why this entry cannot be fetched and verified, or None."""
        if not self.files:
            return "the reference gives no download for it"
        unverifiable = [f.relative_path for f in self.files if not f.sha256]
        if unverifiable:
            return f"the reference gives no sha256 for {', '.join(unverifiable)}: cannot verify"
        return None


def _safe_relative(file_path: str, file_name: str) -> str:
    joined = PurePosixPath(file_path or ".", file_name)
    if joined.is_absolute() or ".." in joined.parts or not file_name or "\\" in str(joined):
        raise ValueError(f"file {str(joined)!r} would leave the models folder")
    return str(joined)


def _parse_entry(name: str, entry: dict[str, Any]) -> ReferenceModel:
    config = entry.get("config") or {}
    hashes = {
        str(item.get("path")): item.get("sha256sum")
        for item in config.get("files") or []
        if isinstance(item, dict)
    }
    files = []
    for item in config.get("download") or []:
        relative = _safe_relative(str(item.get("file_path") or ""), str(item.get("file_name")))
        sha256 = hashes.get(relative) or hashes.get(str(item.get("file_name")))
        files.append(
            ReferenceFile(
                relative_path=relative,
                url=str(item["file_url"]),
                sha256=sha256.lower() if isinstance(sha256, str) else None,
            )
        )
    size = entry.get("size_on_disk_bytes")
    return ReferenceModel(
        name=str(entry.get("name") or name),
        baseline=str(entry.get("baseline") or ""),
        inpainting=bool(entry.get("inpainting", False)),
        nsfw=bool(entry.get("nsfw", False)),
        size_on_disk_bytes=int(size) if isinstance(size, int) else None,
        files=tuple(files),
        prediction=from_reference_files(
            [str(item.get("path")) for item in config.get("files") or [] if isinstance(item, dict)]
        ),
    )


def parse_reference(data: Any) -> dict[str, ReferenceModel]:
    """The models of a reference JSON object, by name. Entries that are malformed or would
    write outside the models folder are left out (and logged): one bad entry must not stop a
    worker serving another model."""
    if not isinstance(data, dict):
        raise ModelReferenceError("the model reference is not a JSON object of models by name")
    models = {}
    for name, entry in data.items():
        if not isinstance(entry, dict):
            continue
        try:
            model = _parse_entry(str(name), entry)
        except (KeyError, TypeError, ValueError) as error:
            log.warning("model reference: entry %r left out: %s", name, error)
            continue
        models[model.name] = model
    return models


def _is_local(url: str) -> bool:
    return urlparse(url).scheme in ("", "file")


def _local_path(url: str) -> Path:
    parsed = urlparse(url)
    return Path(parsed.path if parsed.scheme == "file" else url).expanduser()


def load_reference(
    url: str, cache_dir: Path, *, offline: bool, timeout: float = 30.0
) -> dict[str, ReferenceModel]:
    """The reference from `url` (http(s), or a local file), kept in `cache_dir` so that an
    offline start, or a start while the URL is unreachable, still knows the names."""
    cached = cache_dir / CACHED_REFERENCE_NAME
    if _is_local(url):
        try:
            text = _local_path(url).read_text(encoding="utf-8")
        except OSError as error:
            raise ModelReferenceError(f"model reference {url}: {error}") from error
    elif offline:
        if not cached.is_file():
            raise ModelReferenceError(
                f"offline: the model reference is not cached at {cached}; start once without"
                " --offline, or set model_reference_url to a local copy of the file"
            )
        text = cached.read_text(encoding="utf-8")
    else:
        text = _fetch(url, cached, timeout)
    try:
        return parse_reference(json.loads(text))
    except ValueError as error:
        raise ModelReferenceError(f"model reference {url}: not valid JSON: {error}") from error


def _fetch(url: str, cached: Path, timeout: float) -> str:
    import requests

    try:
        response = requests.get(url, timeout=timeout)
        response.raise_for_status()
        text = response.text
        json.loads(text)  # only a parsable reference replaces the cached one
    except (requests.RequestException, ValueError) as error:
        if cached.is_file():
            log.warning("model reference %s unreachable (%s); using the cached copy", url, error)
            return cached.read_text(encoding="utf-8")
        raise ModelReferenceError(f"model reference {url} unreachable: {error}") from error
    cached.parent.mkdir(parents=True, exist_ok=True)
    # Atomic: a worker starting beside this one never reads half a file.
    handle, scratch = tempfile.mkstemp(dir=cached.parent, prefix=".reference-")
    with os.fdopen(handle, "w", encoding="utf-8") as out:
        out.write(text)
    os.replace(scratch, cached)
    return text


def require_model(models: dict[str, ReferenceModel], name: str, url: str) -> ReferenceModel:
    model = models.get(name)
    if model is None:
        close = sorted(known for known in models if name.lower() in known.lower())[:5]
        hint = f"; similar names: {', '.join(close)}" if close else ""
        raise ModelReferenceError(
            f"model {name!r} is not in the model reference {url}"
            f"{hint} (`horde-worker models` lists them)"
        )
    return model
