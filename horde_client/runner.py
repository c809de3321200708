"""Keeping the horde busy: up to `parallel` requests in flight, each followed to its end.

One thread per request in flight submits it, checks it (long-poll or paced, see pacing.py) and
fetches its images; the main thread hands out work and receives results, so every file is
written by one thread. A stop (Ctrl-C, SIGTERM, a reached count or time, a fatal error) cancels
every request still in flight with `DELETE /generate/status/{id}`; what was finished before
comes back with that reply and is still handed to the caller: nothing finished is lost.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

from horde_client.api import HordeApi
from horde_client.errors import ClientError, NoCapableWorker
from horde_client.images import decode_base64
from horde_client.pacing import CheckPacer, state_of
from horde_client.payloads import RequestSpec, build_body
from horde_client.progress import Board
from horde_protocol import GenerationState, RequestStatus

NO_WORKER = "NoAvailableWorker"


class Outcome(str, Enum):
    DONE = "done"
    FAULTED = "faulted"
    CANCELLED = "cancelled"
    TIMED_OUT = "timed out"


@dataclass
class Work:
    """One request to run; `tag` is the caller's (which frame, which chain step …)."""

    spec: RequestSpec
    label: str
    tag: Any = None


@dataclass
class GeneratedImage:
    data: bytes
    seed: str
    generation_id: str
    worker: str
    model: str
    censored: bool


@dataclass
class Finished:
    work: Work
    request_id: str
    outcome: Outcome
    images: list[GeneratedImage] = field(default_factory=list)


@dataclass
class RunOptions:
    parallel: int
    check_wait: float
    check_interval: float
    timeout: float
    # dream/animate: a request no worker can take is an error, not something to wait out.
    require_worker: bool = False
    worker_hint: str = ""


class Runner:
    def __init__(
        self,
        api: HordeApi,
        options: RunOptions,
        board: Board,
        stop: threading.Event | None = None,
    ) -> None:
        self.api = api
        self.options = options
        self.board = board
        # Shared with the api's back-off waits, so a stop also ends those.
        self.stop = stop or threading.Event()
        self.pacer = CheckPacer(options.check_wait, options.check_interval)
        self._in_flight: dict[str, Work] = {}
        self._lock = threading.Lock()

    # --- the request threads ---

    def _follow(self, work: Work) -> Finished:
        task = self.board.start_request(work.label, work.spec.n)
        try:
            return self._follow_request(work, task)
        finally:
            self.board.end_request(task)

    def _follow_request(self, work: Work, task: Any) -> Finished:
        if self.stop.is_set():
            return Finished(work, "", Outcome.CANCELLED)
        reply = self.api.submit(build_body(work.spec))
        request_id = reply.id
        with self._lock:
            self._in_flight[request_id] = work
        try:
            for warning in reply.warnings or []:
                if warning.code == NO_WORKER and self.options.require_worker:
                    self._cancel_quietly(request_id)
                    raise NoCapableWorker(
                        f"{warning.message} ({warning.code}). {self.options.worker_hint}".strip()
                    )
                self.board.warn_once(warning.code, f"{warning.message} ({warning.code})")
            return self._wait_for(work, request_id, task)
        finally:
            with self._lock:
                self._in_flight.pop(request_id, None)

    def _wait_for(self, work: Work, request_id: str, task: Any) -> Finished:
        deadline = time.monotonic() + self.options.timeout
        last: tuple[object, ...] | None = None
        while True:
            if self.stop.is_set():
                return self._finished(
                    work, request_id, Outcome.CANCELLED, self.api.cancel(request_id)
                )
            started = time.monotonic()
            check = self.api.check(request_id, wait=self.options.check_wait)
            taken = time.monotonic() - started
            self.board.update_request(task, work.label, check)
            if check.done or check.faulted:
                status = self.api.status(request_id)
                outcome = Outcome.FAULTED if check.faulted else Outcome.DONE
                if status.cancelled:
                    outcome = Outcome.CANCELLED
                return self._finished(work, request_id, outcome, status)
            if not check.is_possible:
                message = (
                    f"no live worker of {self.api.url} can take request {request_id} now"
                    " (is_possible: false)"
                )
                if self.options.require_worker:
                    self._cancel_quietly(request_id)
                    raise NoCapableWorker(f"{message}. {self.options.worker_hint}".strip())
                self.board.warn_once(
                    f"impossible:{request_id}", f"{message}; it waits for one until --timeout"
                )
            if time.monotonic() > deadline:
                self.board.warn_once(
                    f"timeout:{request_id}",
                    f"request {request_id} not done after {self.options.timeout:g} s: cancelled",
                )
                return self._finished(
                    work, request_id, Outcome.TIMED_OUT, self.api.cancel(request_id)
                )
            state = state_of(check)
            pause = self.pacer.pause_after(state != last, taken)
            last = state
            self.stop.wait(pause)

    def _finished(
        self, work: Work, request_id: str, outcome: Outcome, status: RequestStatus
    ) -> Finished:
        images = []
        for generation in status.generations:
            if generation.state not in (GenerationState.OK, GenerationState.CENSORED):
                continue
            data = (
                self.api.download(generation.img)
                if generation.img.startswith(("http://", "https://"))
                else decode_base64(generation.img)
            )
            images.append(
                GeneratedImage(
                    data=data,
                    seed=generation.seed,
                    generation_id=generation.id,
                    worker=generation.worker_name,
                    model=generation.model,
                    censored=generation.censored or generation.state == GenerationState.CENSORED,
                )
            )
        self.board.spent(status.kudos)
        return Finished(work, request_id, outcome, images)

    def _cancel_quietly(self, request_id: str) -> None:
        try:
            self.api.cancel(request_id)
        except ClientError as error:
            self.board.warn_once(f"cancel:{request_id}", f"could not cancel {request_id}: {error}")

    # --- the main thread ---

    def cancel_in_flight(self) -> None:
        """Stop: cancel every request in flight (their threads then see them done)."""
        self.stop.set()
        with self._lock:
            ids = list(self._in_flight)
        for request_id in ids:
            self._cancel_quietly(request_id)

    def run(
        self,
        works: Iterable[Work],
        on_finished: Callable[[Finished], Iterable[Work]],
    ) -> None:
        """Run `works` (pulled lazily, so an endless generator is fine) and the follow-ups
        `on_finished` returns, until all are done or `stop` is set. Raises KeyboardInterrupt
        after a clean stop when interrupted, and the first fatal error of a request."""
        source: Iterator[Work] = iter(works)
        follow_ups: deque[Work] = deque()
        pending: set[Future[Finished]] = set()
        failure: BaseException | None = None
        with ThreadPoolExecutor(self.options.parallel, thread_name_prefix="request") as pool:

            def fill() -> None:
                while len(pending) < self.options.parallel and not self.stop.is_set():
                    work = follow_ups.popleft() if follow_ups else next(source, None)
                    if work is None:
                        return
                    pending.add(pool.submit(self._follow, work))

            try:
                fill()
                while pending:
                    # A timeout, so that Ctrl-C reaches this thread promptly.
                    done, _ = wait(pending, timeout=0.5, return_when=FIRST_COMPLETED)
                    for future in done:
                        pending.discard(future)
                        try:
                            finished = future.result()
                        except Exception as error:  # any request's failure stops the run
                            failure = failure or error
                            self.cancel_in_flight()
                            continue
                        # Saved even when stopping; only follow-ups are dropped then.
                        next_works = list(on_finished(finished))
                        if not self.stop.is_set():
                            follow_ups.extend(next_works)
                    fill()
            except KeyboardInterrupt:
                self.board.say("interrupted: cancelling the requests in flight …")
                self.cancel_in_flight()
                self._drain(pending, on_finished)
                raise
            if failure is None:
                return
        raise failure

    def _drain(
        self, pending: set[Future[Finished]], on_finished: Callable[[Finished], Iterable[Work]]
    ) -> None:
        """After a stop: hand over what the cancelled requests had finished."""
        for future in list(pending):
            try:
                finished = future.result()
            except Exception:  # stopping anyway: keep what the others finished
                continue
            list(on_finished(finished))
