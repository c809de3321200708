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


def test_the_pace_of_the_recent_steps_decides() -> None:
    clock = Clock()
    lease = Lease.start(80, margin=10, clock=clock)  # steps must end by 100 + 70
    assert lease is not None
    for step in range(1, 12):  # set-up until 105, then 1 s a step
        clock.now = 104.0 + step
        assert lease.can_finish(step, 41)  # at step 11: the 30 left end at 145, in time
    clock.now = 117.0  # then 2 s a step: the median of the last 5 steps is still 1 s
    assert lease.can_finish(12, 41)
    clock.now = 119.0
    assert lease.can_finish(13, 41)
    clock.now = 121.0  # now it is 2 s: the 27 steps left would end at 175, too late
    assert not lease.can_finish(14, 41)


def test_slow_warm_up_steps_do_not_condemn_a_job() -> None:
    # Seen on a loaded 2-core machine: steps 2-5 of a job took 2-5 s each, then 0.2 s.
    clock = Clock()
    lease = Lease.start(150, margin=10, clock=clock)  # steps must end by 240
    assert lease is not None
    for step, now in enumerate((100.1, 104.9, 110.4, 112.3, 114.2), start=1):
        clock.now = now
        assert lease.can_finish(step, 60), step
    for step in range(6, 61):
        clock.now = 114.2 + 0.2 * (step - 5)
        assert lease.can_finish(step, 60), step


def test_a_slow_first_step_does_not_condemn_a_job() -> None:
    clock = Clock()
    lease = Lease.start(80, margin=10, clock=clock)  # steps must end by 170
    assert lease is not None
    assert lease.can_finish(1, 100)
    clock.now = 110.0  # 10 s for one step (warm-up at a new size), then 0.1 s a step
    assert lease.can_finish(2, 100)
    for step in range(3, 30):
        clock.now = 110.0 + 0.1 * (step - 2)
        assert lease.can_finish(step, 100), step


def test_the_deadline_stops_a_job_even_before_its_pace_is_known() -> None:
    clock = Clock()
    lease = Lease.start(40, margin=10, received=80.0, clock=clock)  # steps end by 110
    assert lease is not None
    clock.now = 109.0
    assert lease.can_finish(1, 2)
    clock.now = 110.0
    assert not lease.can_finish(1, 2)


def test_a_short_ttl_keeps_at_most_a_quarter_of_it_as_margin() -> None:
    clock = Clock()
    lease = Lease.start(8, margin=10, clock=clock)  # a 10 s margin would leave no time at all
    assert lease is not None and lease.finish_by == 100 + 8 - 2
    long_lease = Lease.start(150, margin=10, clock=clock)
    assert long_lease is not None and long_lease.finish_by == 100 + 150 - 10
