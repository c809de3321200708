"""What the user sees while a run goes on: an overall bar and one bar per request in flight
(rich, on stderr; stdout gets only the paths of the saved files, one per line)."""

from __future__ import annotations

import contextlib
import sys
import threading
from collections.abc import Iterator

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from horde_protocol import RequestStatusCheck


def describe_check(check: RequestStatusCheck) -> str:
    """A request's state in a few words, from the public horde's fields and our progress."""
    if check.processing:
        percent = f" {check.progress:.0%}" if check.progress is not None else ""
        return f"generating{percent}"
    if check.waiting:
        return f"queued #{check.queue_position}, ~{check.wait_time} s"
    return f"{check.finished} done"


class Board:
    """The progress display of one run. Safe to call from the request threads."""

    def __init__(self, console: Console | None = None) -> None:
        # soft_wrap: a message is one line in a log, however narrow the terminal.
        self.console = console or Console(stderr=True, soft_wrap=True)
        self._progress = Progress(
            TextColumn("{task.description}"),
            BarColumn(bar_width=24),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
            TextColumn("{task.fields[state]}"),
            console=self.console,
            # A log file or a pipe gets the messages, not a redrawn screen.
            disable=not self.console.is_terminal,
        )
        self._overall: TaskID | None = None
        self._lock = threading.Lock()
        self._warned: set[str] = set()
        self.kudos_spent = 0.0

    def __enter__(self) -> Board:
        self._progress.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._progress.stop()

    @contextlib.contextmanager
    def paused(self) -> Iterator[None]:
        """The live display stopped, e.g. while the user answers a question."""
        self._progress.stop()
        try:
            yield
        finally:
            self._progress.start()

    def overall(self, description: str, total: int | None) -> None:
        """A new overall bar (in place of the previous one)."""
        if self._overall is not None:
            self._progress.remove_task(self._overall)
        self._overall = self._progress.add_task(description, total=total, state="")

    def advance(self, images: int = 1) -> None:
        if self._overall is not None:
            self._progress.advance(self._overall, images)

    def start_request(self, label: str, images: int) -> TaskID:
        return self._progress.add_task(f"  {label}", total=images, state="submitting")

    def update_request(self, task: TaskID, label: str, check: RequestStatusCheck) -> None:
        total = check.finished + check.processing + check.waiting
        # Our horde's `progress` counts steps over all images; the public horde has only counts.
        done = check.progress * total if check.progress is not None and total else check.finished
        self._progress.update(task, completed=done, state=describe_check(check))

    def end_request(self, task: TaskID) -> None:
        self._progress.remove_task(task)

    def spent(self, kudos: float) -> None:
        """Count what a finished request cost (the horde's `kudos` of its final status)."""
        with self._lock:
            self.kudos_spent += kudos

    def say(self, message: str) -> None:
        self._progress.console.print(message, highlight=False)

    def warn_once(self, key: str, message: str) -> None:
        with self._lock:
            if key in self._warned:
                return
            self._warned.add(key)
        self.say(f"[yellow]warning:[/yellow] {message}")


def print_path(path: object) -> None:
    """A saved file, on stdout (scripts read these lines)."""
    print(path, file=sys.stdout, flush=True)
