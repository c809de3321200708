"""The held pop (`long_poll_seconds`, our extension): it answers as soon as an image it may
take is queued, on any API process sharing the Redis, and answers empty after its time; a pop
that does not ask (any public-horde worker) is answered at once, unchanged."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

import pytest

from tests.api.conftest import WORKER_MODEL, Horde, HordeFactory

# Generous bounds, only so that a broken wake fails instead of hanging: nothing is timed.
HOLD_SECONDS = 20.0
JOIN_SECONDS = 30.0


class HeldPop:
    """A pop with `long_poll_seconds` running in a thread of the test."""

    def __init__(self, horde: Horde, apikey: str, name: str, seconds: float) -> None:
        self.reply: dict[str, Any] | None = None
        self.seconds_taken = 0.0

        def pop() -> None:
            started = time.monotonic()
            self.reply = horde.pop(apikey, name=name, long_poll_seconds=seconds)
            self.seconds_taken = time.monotonic() - started

        self.thread = threading.Thread(target=pop, daemon=True)
        self.thread.start()

    def result(self) -> dict[str, Any]:
        self.thread.join(JOIN_SECONDS)
        assert not self.thread.is_alive(), "the held pop was not woken"
        assert self.reply is not None
        return self.reply


def _wait(condition: Callable[[], bool]) -> None:
    deadline = time.monotonic() + JOIN_SECONDS
    while not condition():
        assert time.monotonic() < deadline, "condition not met"
        time.sleep(0.01)


def _held(horde: Horde, count: int = 1) -> None:
    """Wait until `count` pops are held on `horde`'s process (they tried and found nothing)."""
    _wait(lambda: horde.ctx.notifier.held_pops >= count)


def test_a_held_pop_returns_the_job_queued_while_it_waits(horde: Horde) -> None:
    worker_key = horde.user("volunteer")
    held = HeldPop(horde, worker_key, "w1", HOLD_SECONDS)
    _held(horde)
    request = horde.request(models=[WORKER_MODEL], r2=False)
    reply = held.result()
    assert reply["id"] is not None
    assert reply["long_poll_seconds"] == HOLD_SECONDS
    assert horde.check(request["id"])["processing"] == 1
    assert held.seconds_taken < HOLD_SECONDS


def test_a_held_pop_answers_empty_after_its_time(horde: Horde) -> None:
    worker_key = horde.user("volunteer")
    held = HeldPop(horde, worker_key, "w1", 0.3)
    reply = held.result()
    assert reply["id"] is None and reply["ids"] == []
    assert reply["long_poll_seconds"] == 0.3
    assert held.seconds_taken >= 0.3
    assert horde.ctx.notifier.held_pops == 0


def test_a_held_pop_does_not_take_a_job_it_cannot_serve(horde: Horde) -> None:
    worker_key = horde.user("volunteer")
    held = HeldPop(horde, worker_key, "w1", 0.5)
    _held(horde)
    other = horde.request(models=["another-model"], r2=False)
    reply = held.result()
    assert reply["id"] is None
    assert horde.check(other["id"])["waiting"] == 1


def test_a_faulted_submit_wakes_a_held_pop_with_the_requeued_image(horde: Horde) -> None:
    worker_key = horde.user("volunteer")
    horde.request(models=[WORKER_MODEL], r2=False)
    first = horde.pop(worker_key, name="w1")
    held = HeldPop(horde, worker_key, "w2", HOLD_SECONDS)
    _held(horde)
    faulted = horde.submit(worker_key, first["id"], generation="", state="faulted")
    assert faulted.status_code == 200, faulted.text
    reply = held.result()
    assert reply["id"] is not None and reply["id"] != first["id"]


def test_the_horde_caps_the_hold(make_horde: HordeFactory) -> None:
    horde = make_horde(pop_long_poll_max_seconds=0.2)
    worker_key = horde.user("volunteer")
    reply = HeldPop(horde, worker_key, "w1", HOLD_SECONDS).result()
    assert reply["id"] is None and reply["long_poll_seconds"] == 0.2


def test_a_public_horde_pop_is_answered_at_once_and_unchanged(horde: Horde) -> None:
    worker_key = horde.user("volunteer")
    empty = horde.pop(worker_key)
    assert empty["id"] is None
    assert "long_poll_seconds" not in empty
    assert horde.ctx.notifier.held_pops == 0
    horde.request(models=[WORKER_MODEL], r2=False)
    job = horde.pop(worker_key)
    assert job["id"] is not None and "long_poll_seconds" not in job


@pytest.mark.redis
@pytest.mark.postgres
def test_an_image_queued_on_another_api_process_wakes_the_held_pop(
    make_horde: HordeFactory, storage_env: dict[str, Any]
) -> None:
    if not storage_env:
        pytest.skip("two API processes share state only through Redis + PostgreSQL")
    node_a, node_b = make_horde(), make_horde()
    worker_key = node_a.user("volunteer")
    held = HeldPop(node_a, worker_key, "w1", HOLD_SECONDS)
    _held(node_a)
    assert node_b.ctx.notifier.held_pops == 0
    request = node_b.request(models=[WORKER_MODEL], r2=False)
    reply = held.result()
    assert reply["id"] is not None
    assert node_b.check(request["id"])["processing"] == 1
