"""Worker liveness and capabilities, kept in Redis (a worker is online while it pops)."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from redis import Redis

from horde_api.queue.descriptors import ANY_MODEL, SEVERAL_MODELS, Descriptor, Need
from horde_api.queue.keys import RedisKeys
from horde_api.queue.wants import ANY, worker_can_do


@dataclass(frozen=True)
class LiveWorker:
    worker_id: str
    name: str
    owner: str
    models: list[str]
    max_pixels: int
    nsfw: bool
    img2img: bool
    painting: bool
    threads: int
    first_seen: float
    last_seen: float
    fulfilled: int
    maintenance: bool
    serves: str = ""
    bridge_agent: str = "unknown:0:unknown"
    sdxl_controlnet: bool = False
    info: str | None = None
    speed: float | None = None
    megapixelsteps: float = 0.0
    # What exactly it has, by kind (pp, cn, cm, lo, ti: see queue/wants.py); "*" = any.
    lists: dict[str, list[str] | str] = field(default_factory=dict)

    def listed(self, kind: str) -> list[str] | None:
        """The names of `kind` it listed, or None when it takes any."""
        value = self.lists.get(kind, ANY)
        return None if value == ANY else list(value)

    def could_take(
        self,
        models: list[str],
        pixels: int,
        kind: str,
        nsfw: bool,
        needs: str = "",
        wants: dict[str, Any] | None = None,
    ) -> bool:
        if self.maintenance or pixels > self.max_pixels or (nsfw and not self.nsfw):
            return False
        if (kind == "i" and not self.img2img) or (kind == "p" and not self.painting):
            return False
        if any(need not in self.serves for need in needs):
            return False
        if wants and not worker_can_do(
            wants,
            post_processors=self.lists.get("pp"),
            controlnet_types=self.lists.get("cn"),
            control_map_types=self.lists.get("cm"),
            loras=self.lists.get("lo"),
            textual_inversions=self.lists.get("ti"),
        ):
            return False
        return not models or not self.models or any(m in self.models for m in models)

    def could_take_queue(self, queue: Descriptor) -> bool:
        """Could this worker take images of the queue (by its descriptor alone)?"""
        if self.maintenance or queue.floor >= self.max_pixels or (queue.nsfw and not self.nsfw):
            return False
        if (queue.kind == "i" and not self.img2img) or (queue.kind == "p" and not self.painting):
            return False
        if any(need not in self.serves for need in queue.needs):
            return False
        if queue.models in (ANY_MODEL, SEVERAL_MODELS) or not self.models:
            return True
        return queue.models in self.models

    def serves_need(self, need: Need) -> bool:
        return need.value in self.serves


def set_maintenance(redis: Redis, keys: RedisKeys, worker_id: str, on: bool) -> None:
    if on:
        redis.sadd(keys.maintenance, worker_id)
    else:
        redis.srem(keys.maintenance, worker_id)


def read_worker(redis: Redis, keys: RedisKeys, worker_id: str) -> LiveWorker | None:
    with redis.pipeline(transaction=False) as pipe:
        pipe.hgetall(keys.worker(worker_id))
        pipe.sismember(keys.maintenance, worker_id)
        raw, maintenance = pipe.execute()
    if not raw:
        return None
    return _parse(worker_id, raw, bool(maintenance))


def _parse(worker_id: str, raw: dict, maintenance: bool) -> LiveWorker:
    f = {k.decode(): v.decode() for k, v in raw.items()}
    return LiveWorker(
        worker_id=worker_id,
        name=f.get("name", ""),
        owner=f.get("owner", ""),
        models=json.loads(f.get("models", "[]")),
        max_pixels=int(f.get("max_pixels", 0)),
        nsfw=f.get("nsfw") == "1",
        img2img=f.get("img2img", "1") == "1",
        painting=f.get("painting", "1") == "1",
        threads=int(f.get("threads", 1)),
        first_seen=float(f.get("first_seen", 0)),
        last_seen=float(f.get("last_seen", 0)),
        fulfilled=int(f.get("fulfilled", 0)),
        maintenance=maintenance,
        serves=f.get("serves", ""),
        bridge_agent=f.get("bridge_agent", "unknown:0:unknown"),
        sdxl_controlnet=f.get("sdxl_controlnet") == "1",
        info=f.get("info") or None,
        speed=float(f["mps"]) if f.get("mps") else None,
        megapixelsteps=float(f.get("mps_total", 0)),
        lists=json.loads(f.get("lists", "{}")),
    )


def live_workers(
    redis: Redis, keys: RedisKeys, now: float, offline_seconds: float
) -> list[LiveWorker]:
    ids = [
        i.decode() for i in redis.zrangebyscore(keys.workers_seen, now - offline_seconds, "+inf")
    ]
    if not ids:
        return []
    with redis.pipeline(transaction=False) as pipe:
        for worker_id in ids:
            pipe.hgetall(keys.worker(worker_id))
        pipe.smembers(keys.maintenance)
        *raws, maintenance = pipe.execute()
    in_maintenance = {m.decode() for m in maintenance}
    return [
        _parse(worker_id, raw, worker_id in in_maintenance)
        for worker_id, raw in zip(ids, raws, strict=False)
        if raw
    ]


class LiveWorkersCache:
    """Live workers, re-read at most every `max_age` seconds (is_possible runs per request)."""

    def __init__(
        self,
        load: Callable[[], list[LiveWorker]],
        max_age: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._load = load
        self._max_age = max_age
        self._clock = clock
        self._value: list[LiveWorker] = []
        self._loaded_at = float("-inf")
        self._lock = threading.Lock()

    def get(self) -> list[LiveWorker]:
        now = self._clock()
        if now - self._loaded_at > self._max_age:
            with self._lock:
                if now - self._loaded_at > self._max_age:
                    self._value = self._load()
                    self._loaded_at = now
        return self._value

    def invalidate(self) -> None:
        self._loaded_at = float("-inf")

    def note_seen(self, worker_id: str) -> None:
        """A worker just popped: reload soon if it is new to us, so it counts at once."""
        if all(w.worker_id != worker_id for w in self._value):
            self.invalidate()
