"""Signal handling: the first SIGINT/SIGTERM stops popping, the second aborts the running job."""

from __future__ import annotations

import logging
import signal
import threading
from types import FrameType

log = logging.getLogger(__name__)


class Shutdown:
    def __init__(self) -> None:
        self.stop_popping = threading.Event()
        self.abort_job = threading.Event()
        self.signals = 0

    def request(self) -> None:
        """One more stop request (what a signal does)."""
        self.signals += 1
        if self.signals == 1:
            log.info("stopping: no new jobs; finishing the current one (signal again to abort it)")
            self.stop_popping.set()
        else:
            log.warning("aborting the current job; it goes back to the horde as faulted")
            self.stop_popping.set()
            self.abort_job.set()

    def install(self) -> None:
        """Handle SIGINT and SIGTERM (main thread only, as Python requires)."""

        def handler(signum: int, frame: FrameType | None) -> None:
            log.info("received %s", signal.Signals(signum).name)
            self.request()

        signal.signal(signal.SIGINT, handler)
        signal.signal(signal.SIGTERM, handler)
