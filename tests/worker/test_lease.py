"""A job's lease (worker/lease.py): when a generation can no longer be submitted within the
pop reply's ttl. A hand-moved clock: no sleeps, no timing luck."""

from __future__ import annotations

from horde_worker.lease import Lease


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_no_ttl_no_lease() -> None:
    assert Lease.start(None, margin=10) is None
    assert Lease.start(0, margin=10) is None


def test_the_pace_of_the_steps_decides() -> None:
    clock = Clock()
    lease = Lease.start(60, margin=10, clock=clock)  # steps must end by 100 + 50
    assert lease is not None
    clock.now = 105.0  # set-up before the first step does not count as step time
    assert lease.can_finish(1, 41)
    clock.now = 106.0  # 1 s a step: 40 more steps end at 145, in time
    assert lease.can_finish(2, 41)
    clock.now = 111.0  # 2 s a step since the first: the 37 left would end at 185, too late
    assert not lease.can_finish(4, 41)


def test_the_deadline_stops_a_job_even_before_its_pace_is_known() -> None:
    clock = Clock()
    lease = Lease.start(30, margin=10, received=90.0, clock=clock)  # steps end by 110
    assert lease is not None
    clock.now = 109.0
    assert lease.can_finish(1, 2)
    clock.now = 110.0
    assert not lease.can_finish(1, 2)
