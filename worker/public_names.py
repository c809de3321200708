"""On the public AI Horde a model name is a promise: requesters pick `stable_diffusion` and expect
that model's weights. So a worker serving the public horde offers a name only when the model
reference knows it and the files it serves are the reference's (same sha256); anything else
stops the start with the reason, before minutes go into loading.
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlparse

from horde_worker.config import CHECKPOINT_SUFFIXES, REFERENCE_SOURCE, WorkerSettings
from horde_worker.file_hashes import FileHashes
from horde_worker.model_reference import ReferenceModel

PUBLIC_HORDE_HOSTS = ("aihorde.net", "stablehorde.net")


def is_public_horde(horde_url: str) -> bool:
    host = (urlparse(horde_url).hostname or "").lower()
    return any(host == known or host.endswith(f".{known}") for known in PUBLIC_HORDE_HOSTS)


def name_problem(
    name: str,
    source: str,
    reference: dict[str, ReferenceModel],
    hashes: FileHashes,
) -> str | None:
    """Why `name` served from `source` would not be the public horde's `name`, or None."""
    model = reference.get(name)
    if model is None:
        return (
            "the public horde's model reference does not know this name; serve a name it lists"
            " (`horde-worker models`), e.g. --model stable_diffusion"
        )
    if source == REFERENCE_SOURCE:
        return None  # fetched from the reference and verified against its sha256
    path = Path(source).expanduser()
    checkpoints = [f for f in model.files if f.relative_path.endswith(CHECKPOINT_SUFFIXES)]
    if not (path.is_file() and len(model.files) == 1 and checkpoints and checkpoints[0].sha256):
        return (
            f"{source} cannot be matched with the reference's files for {name!r}; give the"
            f" reference's checkpoint file, or --model {name!r} to fetch it"
        )
    if hashes.sha256(path) != checkpoints[0].sha256:
        return (
            f"{source} is not the reference's {name!r}: its sha256 differs from"
            f" {checkpoints[0].sha256}; serve it under a name of your own on another horde, or"
            f" --model {name!r} to fetch the reference's file"
        )
    return None


def public_name_problems(
    settings: WorkerSettings, reference: dict[str, ReferenceModel], hashes: FileHashes
) -> list[str]:
    """One line per configured model the public horde must not get under its name."""
    problems = []
    for name, source in settings.require_models().items():
        problem = name_problem(name, source, reference, hashes)
        if problem:
            problems.append(f"{name}={source}: {problem}")
    return problems
