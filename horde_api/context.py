"""Everything a request handler needs, built once per process by the app factory."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from fakeredis import FakeServer
from redis import Redis
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from horde_api.auth.principals import KeyVerifier
from horde_api.prompt_filters import FilterCache
from horde_api.queue.enqueue import QueueWriter
from horde_api.queue.janitor import Janitor
from horde_api.queue.keys import RedisKeys
from horde_api.queue.notifier import RequestNotifier
from horde_api.queue.pop import LeasePolicy
from horde_api.queue.workers import LiveWorkersCache
from horde_api.settings import HordeSettings
from horde_api.store.results import ResultStore


@dataclass(frozen=True)
class RegisteredWorker:
    worker_id: str
    owner_id: int


@dataclass
class HordeContext:
    settings: HordeSettings
    redis: Redis
    keys: RedisKeys
    engine: Engine
    sessions: sessionmaker[Session]
    verifier: KeyVerifier
    writer: QueueWriter
    store: ResultStore
    notifier: RequestNotifier
    janitor: Janitor
    live_workers: LiveWorkersCache
    lease_policy: LeasePolicy
    filters: FilterCache
    clock: Callable[[], float] = time.time
    embedded_server: FakeServer | None = None
    # Worker name -> registration; a name never changes owner, so this never goes stale.
    worker_registry: dict[str, RegisteredWorker] = field(default_factory=dict)
    registry_lock: threading.Lock = field(default_factory=threading.Lock)
