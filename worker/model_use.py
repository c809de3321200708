"""Who may use a loaded model's modules at the same time.

Jobs share one UNet, VAE and text encoder (`from_pipe`). A plain job only reads them, so several
run at once (`threads`); a job that changes them for its duration — LoRAs and textual
inversions patched in, circular padding for seamless tiling — must have the model alone, or a
job running beside it would be generated with another job's changes.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager


class ModelUse:
    """A readers-writer lock that does not starve the writer: once a changing job waits, new
    plain jobs wait behind it."""

    def __init__(self) -> None:
        self._condition = threading.Condition()
        self._readers = 0
        self._writing = False
        self._writers_waiting = 0

    @contextmanager
    def shared(self) -> Iterator[None]:
        with self._condition:
            self._condition.wait_for(lambda: not self._writing and not self._writers_waiting)
            self._readers += 1
        try:
            yield
        finally:
            with self._condition:
                self._readers -= 1
                self._condition.notify_all()

    @contextmanager
    def exclusive(self) -> Iterator[None]:
        with self._condition:
            self._writers_waiting += 1
            self._condition.wait_for(lambda: not self._writing and self._readers == 0)
            self._writers_waiting -= 1
            self._writing = True
        try:
            yield
        finally:
            with self._condition:
                self._writing = False
                self._condition.notify_all()
