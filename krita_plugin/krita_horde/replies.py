"""Typed readings of the horde's JSON replies. A reply of the wrong shape raises ReplyError
naming the field, so a broken or foreign server gives a clear message instead of a crash.
Unknown fields are ignored (the protocol lets replies grow)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


class ReplyError(ValueError):
    """A reply whose shape is not what the AI Horde v2 protocol says."""


def _field(data: dict[str, Any], name: str, kinds: type | tuple[type, ...], default: Any) -> Any:
    value = data.get(name, default)
    if value is None:
        return default
    # bool is an int subclass: a count must not accept true/false, a flag must not accept 1.
    if isinstance(value, bool) and bool not in (kinds if isinstance(kinds, tuple) else (kinds,)):
        raise ReplyError(f"field {name!r} should be a number, got {value!r}")
    if not isinstance(value, kinds):
        raise ReplyError(f"field {name!r} has the wrong type ({type(value).__name__})")
    return value


def _object(data: Any, what: str) -> dict[str, Any]:
    if not isinstance(data, dict):
        raise ReplyError(f"the {what} reply is not a JSON object")
    return data


@dataclass(frozen=True)
class SubmitReply:
    id: str
    kudos: float
    message: str | None
    warnings: tuple[str, ...]


def parse_submit(data: Any) -> SubmitReply:
    body = _object(data, "submit")
    request_id = body.get("id")
    if not isinstance(request_id, str) or not request_id:
        raise ReplyError("the submit reply has no request id")
    warnings = body.get("warnings") or []
    texts = tuple(
        str(item.get("message", item)) if isinstance(item, dict) else str(item)
        for item in (warnings if isinstance(warnings, list) else [])
    )
    message = body.get("message")
    return SubmitReply(
        id=request_id,
        kudos=float(_field(body, "kudos", (int, float), 0)),
        message=message if isinstance(message, str) else None,
        warnings=texts,
    )


@dataclass(frozen=True)
class CheckReply:
    done: bool
    faulted: bool
    finished: int
    processing: int
    waiting: int
    restarted: int
    queue_position: int
    wait_time: int
    is_possible: bool
    progress: float | None  # our horde's extension; None from the public horde
    has_progress_extension: bool
    kudos: float = 0.0  # consumed so far
    preview_available: bool = False  # our extension: GET /generate/preview/{id} may have one

    @property
    def total(self) -> int:
        return self.finished + self.processing + self.waiting


def parse_check(data: Any) -> CheckReply:
    body = _object(data, "check")
    if "done" not in body:
        raise ReplyError("the check reply has no 'done' field")
    progress = _field(body, "progress", (int, float), None)
    if progress is not None and not 0 <= progress <= 1:
        raise ReplyError(f"field 'progress' should be between 0 and 1, got {progress}")
    return CheckReply(
        done=_field(body, "done", bool, False),
        faulted=_field(body, "faulted", bool, False),
        finished=int(_field(body, "finished", int, 0)),
        processing=int(_field(body, "processing", int, 0)),
        waiting=int(_field(body, "waiting", int, 0)),
        restarted=int(_field(body, "restarted", int, 0)),
        queue_position=int(_field(body, "queue_position", int, 0)),
        wait_time=int(_field(body, "wait_time", (int, float), 0)),
        is_possible=_field(body, "is_possible", bool, True),
        progress=float(progress) if progress is not None else None,
        has_progress_extension="progress" in body,
        kudos=float(_field(body, "kudos", (int, float), 0)),
        preview_available=_field(body, "preview_available", bool, False),
    )


@dataclass(frozen=True)
class GenerationReply:
    img: str
    seed: str
    model: str
    worker_name: str
    state: str
    censored: bool


@dataclass(frozen=True)
class StatusReply:
    check: CheckReply
    generations: tuple[GenerationReply, ...]


def parse_status(data: Any) -> StatusReply:
    body = _object(data, "status")
    check = parse_check(body)
    raw = body.get("generations", [])
    if not isinstance(raw, list):
        raise ReplyError("field 'generations' should be a list")
    generations = []
    for index, item in enumerate(raw):
        if not isinstance(item, dict):
            raise ReplyError(f"generation {index} is not a JSON object")
        img = item.get("img")
        if not isinstance(img, str):
            raise ReplyError(f"generation {index} has no image")
        seed = item.get("seed", "")
        generations.append(
            GenerationReply(
                img=img,
                seed=str(seed) if isinstance(seed, (str, int)) else "",
                model=str(item.get("model") or ""),
                worker_name=str(item.get("worker_name") or ""),
                state=str(item.get("state") or "ok"),
                censored=item.get("censored") is True,
            )
        )
    return StatusReply(check, tuple(generations))


@dataclass(frozen=True)
class ModelInfo:
    name: str
    count: int  # live workers serving it


def parse_models(data: Any) -> list[ModelInfo]:
    """`/status/models`, sorted by live workers (most first), then name."""
    if not isinstance(data, list):
        raise ReplyError("the models reply is not a JSON list")
    models = []
    for item in data:
        if not isinstance(item, dict) or not isinstance(item.get("name"), str):
            raise ReplyError("a model entry has no name")
        if item.get("type", "image") != "image":
            continue
        count = item.get("count", 0)
        if isinstance(count, bool) or not isinstance(count, (int, float)):
            raise ReplyError(f"model {item['name']!r} has a non-numeric worker count")
        models.append(ModelInfo(item["name"], int(count)))
    models.sort(key=lambda model: (-model.count, model.name.lower()))
    return models


@dataclass(frozen=True)
class WorkerInfo:
    """What one live worker takes (`GET /workers`): the plug-in sizes its jobs by these."""

    name: str
    models: tuple[str, ...]
    max_pixels: int
    img2img: bool
    painting: bool
    nsfw: bool


def parse_workers(data: Any) -> list[WorkerInfo]:
    """`/workers?type=image`: every worker with its models and limits."""
    if not isinstance(data, list):
        raise ReplyError("the workers reply is not a JSON list")
    workers = []
    for index, item in enumerate(data):
        if not isinstance(item, dict):
            raise ReplyError(f"worker {index} is not a JSON object")
        models = item.get("models") or []
        if not isinstance(models, list):
            raise ReplyError(f"worker {index}: field 'models' should be a list")
        workers.append(
            WorkerInfo(
                name=str(item.get("name") or ""),
                models=tuple(str(model) for model in models),
                max_pixels=int(_field(item, "max_pixels", int, 0)),
                img2img=_field(item, "img2img", bool, False),
                painting=_field(item, "painting", bool, False),
                nsfw=_field(item, "nsfw", bool, False),
            )
        )
    return workers


def parse_price(data: Any) -> float:
    """The reply to a `dry_run`: `{"kudos": x}`."""
    body = _object(data, "price")
    if "kudos" not in body:
        raise ReplyError("the price reply has no 'kudos' field")
    return float(_field(body, "kudos", (int, float), 0))


@dataclass(frozen=True)
class UserInfo:
    username: str
    kudos: float


def parse_user(data: Any) -> UserInfo:
    """`/find_user`: who the key belongs to and their kudos."""
    body = _object(data, "user")
    return UserInfo(str(body.get("username") or ""), float(_field(body, "kudos", (int, float), 0)))
