"""The worker's pops (worker/popper.py) against the loopback stub, which, as the public horde,
answers at once and does not echo `long_poll_seconds`: the worker falls back to its idle back-off
and stops asking. The held pop on our horde is tested in tests/api/routers/test_pop_long_poll.py
and measured in bench/bench_pickup.py."""

from __future__ import annotations

from collections.abc import Callable

from tests.worker.conftest import RunningLoop
from tests.worker.stub_horde import StubHorde


def test_a_horde_that_does_not_hold_pops_is_polled_with_the_back_off(
    stub: StubHorde, start_loop: Callable[..., RunningLoop]
) -> None:
    running = start_loop(stub.url, pop_long_poll_seconds=20)
    stub.wait_for(lambda: len(stub.pops) >= 3)
    running.stop()
    first, *later = stub.pops
    assert first.long_poll_seconds == 20
    assert later and all(pop.long_poll_seconds == 0 for pop in later)


def test_a_worker_told_not_to_long_poll_never_asks(
    stub: StubHorde, start_loop: Callable[..., RunningLoop]
) -> None:
    running = start_loop(stub.url, pop_long_poll_seconds=0)
    stub.wait_for(lambda: len(stub.pops) >= 2)
    running.stop()
    assert all(pop.long_poll_seconds == 0 for pop in stub.pops)
