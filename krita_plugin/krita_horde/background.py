"""Runs CPU-heavy image work off Krita's GUI thread and hands the outcome back to it.

Scaling, encoding and decoding images of a big selection take a few hundred milliseconds: on
the GUI thread that freezes Krita. QImage (and QImageReader/QImageWriter/QPainter on a QImage)
is reentrant, so that work runs in a small thread pool; its outcome comes back through a queued
signal, i.e. as an event handled by Krita's GUI event loop, where the caller may use Krita's
API again. A work function must touch neither Krita objects, nor QPixmap, nor widgets.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any, Generic, TypeVar

from PyQt5.QtCore import QObject, QRunnable, Qt, QThreadPool, pyqtSignal, pyqtSlot

log = logging.getLogger(__name__)

T = TypeVar("T")

# Two threads: a job's preparation and another job's results can overlap, and a 2-core machine
# keeps one core for Krita itself. A pool of our own, so Krita's global pool (used by its own
# filters) is never filled with our work.
MAX_THREADS = 2


class _Relay(QObject):
    """Carries outcomes from the pool to the GUI thread. One instance, created on the GUI
    thread and never deleted, so no worker thread ever owns the last reference to a QObject."""

    ready = pyqtSignal(int, object, object)  # task number, result, exception (or None)

    def __init__(self) -> None:
        super().__init__()
        self.pool = QThreadPool()
        self.pool.setMaxThreadCount(MAX_THREADS)
        self.tasks: dict[int, BackgroundTask[Any]] = {}
        self.counter = 0
        # Queued: the slot runs as an event of the GUI thread (this object's thread), never
        # in the worker thread that emits.
        self.ready.connect(self._deliver, Qt.QueuedConnection)

    @pyqtSlot(int, object, object)
    def _deliver(self, number: int, result: Any, error: Any) -> None:
        task = self.tasks.pop(number, None)
        if task is not None:
            task._deliver(result, error)


_relay: _Relay | None = None


def _the_relay() -> _Relay:
    global _relay
    if _relay is None:
        _relay = _Relay()
    return _relay


def thread_pool() -> QThreadPool:
    """The plug-in's own pool (tests wait on it with `waitForDone`)."""
    return _the_relay().pool


class _Runnable(QRunnable):
    def __init__(self, work: Callable[[], Any], number: int, relay: _Relay) -> None:
        super().__init__()
        self._work: Callable[[], Any] | None = work
        self._number = number
        self._ready = relay.ready

    def run(self) -> None:
        work, self._work = self._work, None  # the (possibly big) inputs go with the work
        assert work is not None
        try:
            result = work()
        except Exception as error:  # handed to the GUI thread, reported there
            self._ready.emit(self._number, None, error)
        else:
            self._ready.emit(self._number, result, None)


class BackgroundTask(Generic[T]):
    """One piece of work in the pool. Exactly one of `done(result)` / `failed(error)` is
    called later on the GUI thread, unless `cancel()` came first."""

    def __init__(self, done: Callable[[T], None], failed: Callable[[Exception], None]) -> None:
        self._done: Callable[[T], None] | None = done
        self._failed: Callable[[Exception], None] | None = failed

    @property
    def cancelled(self) -> bool:
        return self._done is None

    def cancel(self) -> None:
        """Forget the outcome (the thread cannot be stopped midway; its result is dropped)."""
        self._done = self._failed = None

    def _deliver(self, result: Any, error: Exception | None) -> None:
        done, failed = self._done, self._failed
        self._done = self._failed = None
        try:
            if error is not None:
                if failed is not None:
                    failed(error)
            elif done is not None:
                done(result)
        except Exception:
            # Never into Krita's event loop (it would open its script-error window).
            log.exception("error while handling the outcome of background work")


def run_in_background(
    work: Callable[[], T], done: Callable[[T], None], failed: Callable[[Exception], None]
) -> BackgroundTask[T]:
    """Run `work()` in the plug-in's thread pool; call `done`/`failed` on the GUI thread.
    Must be called from the GUI thread."""
    relay = _the_relay()
    task: BackgroundTask[T] = BackgroundTask(done, failed)
    relay.counter += 1
    relay.tasks[relay.counter] = task
    relay.pool.start(_Runnable(work, relay.counter, relay))
    return task
