"""Counters behind the periodic summary line."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field


@dataclass
class WorkerStats:
    started: float = field(default_factory=time.monotonic)
    jobs_ok: int = 0
    jobs_faulted: int = 0
    jobs_cancelled: int = 0
    jobs_undelivered: int = 0
    jobs_returned: int = 0  # popped ahead, handed back unstarted (shutdown, or its ttl)
    images: int = 0
    images_censored: int = 0  # replaced by the safety checker's placeholder
    steps: int = 0
    jobs_generated: int = 0  # generations that finished (delivered or not): the s/job divisor
    generation_seconds: float = 0.0
    kudos: float = 0.0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def add(self, **increments: float) -> None:
        with self._lock:
            for name, amount in increments.items():
                setattr(self, name, getattr(self, name) + amount)

    def summary(self) -> str:
        with self._lock:
            uptime = time.monotonic() - self.started
            speed = self.steps / self.generation_seconds if self.generation_seconds else 0.0
            per_job = self.generation_seconds / self.jobs_generated if self.jobs_generated else 0.0
            return (
                f"summary: uptime={uptime / 60:.1f}min jobs ok={self.jobs_ok}"
                f" faulted={self.jobs_faulted} cancelled={self.jobs_cancelled}"
                f" undelivered={self.jobs_undelivered} returned={self.jobs_returned}"
                f" images={self.images}"
                f" censored={self.images_censored}"
                f" s/job={per_job:.2f} it/s={speed:.2f} kudos={self.kudos:.1f}"
            )
